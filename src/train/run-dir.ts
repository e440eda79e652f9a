// A run folder: config.json (the resolved config; rewritten only when a resume changes
// `epochs`), metrics.jsonl (one JSON object per line: step / epoch / eval / resume / extend /
// stop records) and checkpoint/ (the end of the last epoch, or a point inside an epoch when
// `checkpointEveryMinutes` passed; replaced atomically). A killed run resumes from checkpoint/:
// the metrics written after it are cut off (the checkpoint records the log's length), so the log
// reads as one run. epochs.ts runs the epoch loop of pretrain, linprobe and finetune around it.
import {
  appendFileSync,
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { io } from '../torch/index.js';
import { mixKey } from '../data/rng.js';

export type MetricsRecord = {
  kind: 'step' | 'epoch' | 'eval' | 'resume' | 'extend' | 'stop' | 'start';
} & Record<string, unknown>;

/**
 * A non-finite loss. A trainer's step (LinearProbe, Finetuner) throws it with the step alone; a
 * run's epoch loop (epochs.ts) detects it or catches that one, logs a `stop` record and throws it
 * again with the epoch and the run's last good checkpoint, instead of training on garbage.
 */
export class TrainingDiverged extends Error {
  readonly step: number;
  readonly value: number;
  /** the epoch, when a run's epoch loop stopped; null from a trainer's step */
  readonly epoch: number | null;
  /** the run's last good checkpoint (null: none yet); undefined from a trainer's step */
  readonly checkpoint: string | null | undefined;

  constructor(at: { step: number; value: number; epoch?: number; checkpoint?: string | null; source?: string }) {
    super(
      at.epoch === undefined
        ? `${at.source ? `${at.source}: ` : ''}the loss became ${at.value} at step ${at.step}`
        : `the loss became ${at.value} at step ${at.step} (epoch ${at.epoch}); the run stopped` +
            (at.checkpoint ? `; the last good checkpoint is ${at.checkpoint}` : '; no checkpoint was written yet'),
    );
    this.name = 'TrainingDiverged';
    this.step = at.step;
    this.value = at.value;
    this.epoch = at.epoch ?? null;
    this.checkpoint = at.checkpoint;
  }
}

/**
 * How far into an epoch a mid-epoch checkpoint was written (the checkpoint's `progress.partial`;
 * `progress.epoch` then stays the last complete epoch).
 */
export interface PartialEpoch {
  epoch: number;
  /** batches of `epoch` done */
  batch: number;
  /** sum of their losses, for the epoch's mean */
  lossSum: number;
}

/** Where a run begins: epoch 0 of a fresh run, or where its last checkpoint stopped. */
export interface RunStart {
  startEpoch: number;
  /** batches of `startEpoch` already done (a mid-epoch checkpoint), else 0 */
  startBatch: number;
  step: number;
  /** the epoch resumed at, null for a fresh run */
  resumedFrom: number | null;
  /** what the checkpoint saved beside the weights (epoch, step, metricsLength, ...), null when fresh */
  progress: Record<string, unknown> | null;
  /** the epoch the checkpoint stopped inside, null when it was written at an epoch's end */
  partial: PartialEpoch | null;
}

/**
 * When a checkpoint inside an epoch is due: `everyMinutes` after the last one (or the start of
 * this process), so a kill loses at most that much work. 0: only at epoch ends.
 */
export class CheckpointClock {
  private last: number;

  constructor(
    readonly everyMinutes: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(everyMinutes >= 0)) throw new RangeError(`checkpointEveryMinutes must be ≥ 0, got ${everyMinutes}`);
    this.last = now();
  }

  due(): boolean {
    return this.everyMinutes > 0 && this.now() - this.last >= this.everyMinutes * 60_000;
  }

  /** A checkpoint was written now. */
  reset(): void {
    this.last = this.now();
  }
}

export class RunDir {
  readonly configPath: string;
  readonly metricsPath: string;
  readonly checkpointDir: string;
  /** the run's length (config key `epochs`) since resumeOrStart, saved in each checkpoint */
  private epochs: number | null = null;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.configPath = join(dir, 'config.json');
    this.metricsPath = join(dir, 'metrics.jsonl');
    this.checkpointDir = join(dir, 'checkpoint');
  }

  /** The checkpoint folder when a complete one exists. */
  checkpoint(): string | null {
    return existsSync(this.checkpointDir) ? io.findCheckpoint(this.checkpointDir) : null;
  }

  readConfig(): Record<string, unknown> | null {
    if (!existsSync(this.configPath)) return null;
    return JSON.parse(readFileSync(this.configPath, 'utf8')) as Record<string, unknown>;
  }

  writeConfig(config: Record<string, unknown>): void {
    named(this.configPath, () =>
      io.writeFileAtomic(this.configPath, Buffer.from(JSON.stringify(config, null, 2) + '\n')),
    );
  }

  /**
   * Resumes from the last checkpoint into `state` — refusing, naming the keys and values, a
   * config that would not continue the same run (keys outside `freeKeys` changed) — or starts a
   * fresh run: config.json, an empty log and a `start` record. Only the lead rank writes.
   * `epochs` may change on resume, as MAE's resume allows (the schedules, computed from it and
   * the global step, follow the new length), but not below the epochs done: the new value is
   * written to config.json and an `extend` record to the log.
   */
  resumeOrStart(o: {
    config: Record<string, unknown>;
    freeKeys: readonly string[];
    state: io.TrainingState;
    lead: boolean;
    log: (message: string) => void;
    /** fields of the `start` record */
    start: Record<string, unknown>;
  }): RunStart {
    if (o.lead) {
      for (const f of this.removeStaleTemps()) o.log(`removed ${f}, left behind by an interrupted write`);
    }
    const ckpt = this.checkpoint();
    if (!ckpt) {
      this.epochs = typeof o.config.epochs === 'number' ? o.config.epochs : null;
      if (o.lead) {
        this.writeConfig(o.config);
        this.resetMetrics();
        this.log({ kind: 'start', ...o.start });
      }
      return { startEpoch: 0, startBatch: 0, step: 0, resumedFrom: null, progress: null, partial: null };
    }
    const saved = this.readConfig();
    if (saved) {
      const diff = configMismatch(saved, o.config, [...o.freeKeys, 'epochs']);
      if (diff.length) {
        const change = (k: string): string => `${k}: ${JSON.stringify(saved[k])} → ${JSON.stringify(o.config[k])}`;
        throw new Error(
          `${this.dir}: holds a run with a different config (${diff.map(change).join(', ')}); ` +
            'use another --out, or the same settings to resume',
        );
      }
    }
    const progress = readProgress(ckpt);
    const partial = partialOf(progress);
    const startEpoch = partial ? partial.epoch : Number(progress.epoch) + 1;
    const startBatch = partial ? partial.batch : 0;
    const step = Number(progress.step);
    const epochs = o.config.epochs;
    // the checkpoint's own length (config.json already has the new one if a run extended then
    // was killed before its next checkpoint, whose log the resume cuts)
    const before = typeof progress.epochs === 'number' ? progress.epochs : saved?.epochs;
    const extend = typeof epochs === 'number' && typeof before === 'number' && epochs !== before;
    // a partly done epoch counts as done: its first batches were trained on the old schedule
    const done = startEpoch + (startBatch > 0 ? 1 : 0);
    if (typeof epochs === 'number' && epochs < done) {
      throw new Error(
        `${this.dir}: epochs ${epochs} is less than the ${done} epochs this run has done` +
          (partial ? ` (epoch ${partial.epoch} partly)` : '') +
          `; give epochs ≥ ${done} to continue it, or another --out`,
      );
    }
    io.loadCheckpoint(ckpt, o.state);
    this.epochs = typeof epochs === 'number' ? epochs : null;
    if (o.lead) {
      this.truncateMetrics(Number(progress.metricsLength));
      this.log({ kind: 'resume', epoch: startEpoch, step, ...(partial ? { batch: startBatch } : {}) });
      o.log(
        `resuming ${this.dir} at epoch ${startEpoch}` + (partial ? `, batch ${startBatch}` : '') + ` (step ${step})`,
      );
      if (saved && saved.epochs !== epochs) this.writeConfig({ ...saved, epochs });
      if (extend) {
        this.log({ kind: 'extend', epoch: startEpoch, step, fromEpochs: before, toEpochs: epochs });
        o.log(
          `epochs ${before} → ${epochs}: the learning-rate and momentum schedules follow the new length from step ${step}`,
        );
      }
    }
    return { startEpoch, startBatch, step, resumedFrom: startEpoch, progress, partial };
  }

  /**
   * Removes what an interrupted write left in the run folder: checkpoint temporary folders and
   * temporary files of processes that no longer run (or of this pid, reused: nothing of this
   * process is being written yet), and the previous checkpoint kept by a save that was killed
   * after its new folder was in place. Returns the names removed.
   */
  removeStaleTemps(): string[] {
    if (!existsSync(this.dir)) return [];
    const removed: string[] = [];
    const complete = existsSync(join(this.checkpointDir, 'state.json'));
    for (const f of readdirSync(this.dir)) {
      const m = /^\..+\.(tmp|old)-(\d+)(-[a-z0-9]+)?$/.exec(f);
      if (!m) continue;
      const pid = Number(m[2]);
      if (pid !== process.pid && alive(pid)) continue;
      // an old checkpoint is the one to resume from until the new one is complete
      if (m[1] === 'old' && !complete) continue;
      rmSync(join(this.dir, f), { recursive: true, force: true });
      removed.push(f);
    }
    return removed;
  }

  /**
   * Writes checkpoint/ with `progress` and the log's length. Inside an epoch (`partial` given)
   * `progress.epoch` is the last complete epoch and `progress.partial` says how far `partial.epoch` got.
   */
  save(
    state: io.TrainingState,
    progress: { epoch: number; step: number } & Record<string, unknown>,
    partial?: PartialEpoch,
  ): void {
    const p = partial ? { ...progress, epoch: partial.epoch - 1, partial } : progress;
    const epochs = this.epochs === null ? {} : { epochs: this.epochs };
    io.saveCheckpoint(this.checkpointDir, {
      ...state,
      progress: { ...p, ...epochs, metricsLength: this.metricsLength() },
    });
  }

  /** Bytes in metrics.jsonl now (stored in checkpoints). */
  metricsLength(): number {
    return existsSync(this.metricsPath) ? statSync(this.metricsPath).size : 0;
  }

  /** Cuts metrics.jsonl back to `length` bytes (what a checkpoint saw). */
  truncateMetrics(length: number): void {
    if (!existsSync(this.metricsPath)) return;
    const fd = openSync(this.metricsPath, 'r+');
    try {
      ftruncateSync(fd, Math.min(length, statSync(this.metricsPath).size));
    } finally {
      closeSync(fd);
    }
  }

  /** Starts a fresh log (a new run in an empty folder). */
  resetMetrics(): void {
    io.writeFileAtomic(this.metricsPath, new Uint8Array(0));
  }

  log(record: MetricsRecord): void {
    named(this.metricsPath, () =>
      appendFileSync(this.metricsPath, JSON.stringify({ ...record, time: Date.now() }) + '\n'),
    );
  }

  /** The records of metrics.jsonl (a torn last line is ignored). */
  readMetrics(): MetricsRecord[] {
    if (!existsSync(this.metricsPath)) return [];
    const out: MetricsRecord[] = [];
    for (const line of readFileSync(this.metricsPath, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        out.push(JSON.parse(line) as MetricsRecord);
      } catch {
        // the last line of a killed run may be cut short
      }
    }
    return out;
  }
}

/**
 * The seed of the generator that batch `batch` of `epoch` on `rank` draws its augmentations and
 * masks from: a resumed run — from an epoch's end or inside one — and every rank of a
 * distributed run reproduce exactly what an uninterrupted run draws.
 */
export function batchSeed(seed: number, epoch: number, rank: number, batch: number): number {
  return mixKey(seed, epoch, rank, batch) % 2 ** 53;
}

/** The `progress` of the checkpoint folder `dir` (without loading its tensors). */
function readProgress(dir: string): Record<string, unknown> {
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as { progress?: Record<string, unknown> };
  return state.progress ?? {};
}

function partialOf(progress: Record<string, unknown>): PartialEpoch | null {
  const p = progress.partial as Partial<PartialEpoch> | undefined;
  if (!p) return null;
  if (!Number.isInteger(p.epoch) || !Number.isInteger(p.batch) || typeof p.lossSum !== 'number') {
    throw new Error(
      `checkpoint progress.partial is malformed: ${JSON.stringify(p)} (expected {epoch, batch, lossSum})`,
    );
  }
  return { epoch: p.epoch!, batch: p.batch!, lossSum: p.lossSum };
}

/** Runs a write; a failure (full disk, no permission) names the file, which Node's message does not. */
function named(path: string, write: () => void): void {
  try {
    write();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw Object.assign(new Error(`could not write ${path} (${err.message})`), { code: err.code });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The keys whose change on resume would not continue the same run. */
export function configMismatch(
  saved: Record<string, unknown>,
  now: Record<string, unknown>,
  free: readonly string[],
): string[] {
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
  return [...keys].filter((k) => !free.includes(k) && JSON.stringify(saved[k]) !== JSON.stringify(now[k]));
}
