// A run folder: config.json (the resolved config, written once), metrics.jsonl (one JSON object
// per line: step / epoch / eval / resume / stop records) and checkpoint/ (the last complete
// epoch, replaced atomically). A killed run resumes from checkpoint/: the metrics written after
// it are cut off (the checkpoint records the log's length), so the log reads as one run.
import {
  appendFileSync,
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { findCheckpoint, loadCheckpoint, type TrainingState } from '../torch/io/checkpoint.js';
import { writeFileAtomic } from '../torch/io/atomic.js';

export type MetricsRecord = { kind: 'step' | 'epoch' | 'eval' | 'resume' | 'stop' | 'start' } & Record<string, unknown>;

/** A non-finite loss: the run stops (after logging a `stop` record) instead of training on garbage. */
export class TrainingDiverged extends Error {
  constructor(
    readonly step: number,
    readonly epoch: number,
    readonly value: number,
    checkpoint: string | null,
  ) {
    super(
      `the loss became ${value} at step ${step} (epoch ${epoch}); the run stopped` +
        (checkpoint ? `; the last good checkpoint is ${checkpoint}` : '; no checkpoint was written yet'),
    );
    this.name = 'TrainingDiverged';
  }
}

/** Where a run begins: epoch 0 of a fresh run, or the epoch after its last checkpoint. */
export interface RunStart {
  startEpoch: number;
  step: number;
  /** the epoch resumed at, null for a fresh run */
  resumedFrom: number | null;
  /** what the checkpoint saved beside the weights (epoch, step, metricsLength, ...), null when fresh */
  progress: Record<string, unknown> | null;
}

export class RunDir {
  readonly configPath: string;
  readonly metricsPath: string;
  readonly checkpointDir: string;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.configPath = join(dir, 'config.json');
    this.metricsPath = join(dir, 'metrics.jsonl');
    this.checkpointDir = join(dir, 'checkpoint');
  }

  /** The checkpoint folder when a complete one exists. */
  checkpoint(): string | null {
    return existsSync(this.checkpointDir) ? findCheckpoint(this.checkpointDir) : null;
  }

  readConfig(): Record<string, unknown> | null {
    if (!existsSync(this.configPath)) return null;
    return JSON.parse(readFileSync(this.configPath, 'utf8')) as Record<string, unknown>;
  }

  writeConfig(config: Record<string, unknown>): void {
    writeFileAtomic(this.configPath, Buffer.from(JSON.stringify(config, null, 2) + '\n'));
  }

  /**
   * Resumes from the last checkpoint into `state` — refusing, naming the keys and values, a
   * config that would not continue the same run (keys outside `freeKeys` changed) — or starts a
   * fresh run: config.json, an empty log and a `start` record. Only the lead rank writes.
   */
  resumeOrStart(o: {
    config: Record<string, unknown>;
    freeKeys: readonly string[];
    state: TrainingState;
    lead: boolean;
    log: (message: string) => void;
    /** fields of the `start` record */
    start: Record<string, unknown>;
  }): RunStart {
    const ckpt = this.checkpoint();
    if (!ckpt) {
      if (o.lead) {
        this.writeConfig(o.config);
        this.resetMetrics();
        this.log({ kind: 'start', ...o.start });
      }
      return { startEpoch: 0, step: 0, resumedFrom: null, progress: null };
    }
    const saved = this.readConfig();
    if (saved) {
      const diff = configMismatch(saved, o.config, o.freeKeys);
      if (diff.length) {
        const change = (k: string): string => `${k}: ${JSON.stringify(saved[k])} → ${JSON.stringify(o.config[k])}`;
        throw new Error(
          `${this.dir}: holds a run with a different config (${diff.map(change).join(', ')}); ` +
            'use another --out, or the same settings to resume',
        );
      }
    }
    const progress = loadCheckpoint(ckpt, o.state);
    const startEpoch = Number(progress.epoch) + 1;
    const step = Number(progress.step);
    if (o.lead) {
      this.truncateMetrics(Number(progress.metricsLength));
      this.log({ kind: 'resume', epoch: startEpoch, step });
      o.log(`resuming ${this.dir} at epoch ${startEpoch} (step ${step})`);
    }
    return { startEpoch, step, resumedFrom: startEpoch, progress };
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
    writeFileAtomic(this.metricsPath, new Uint8Array(0));
  }

  log(record: MetricsRecord): void {
    appendFileSync(this.metricsPath, JSON.stringify({ ...record, time: Date.now() }) + '\n');
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

/** The keys whose change on resume would not continue the same run. */
export function configMismatch(
  saved: Record<string, unknown>,
  now: Record<string, unknown>,
  free: readonly string[],
): string[] {
  const keys = new Set([...Object.keys(saved), ...Object.keys(now)]);
  return [...keys].filter((k) => !free.includes(k) && JSON.stringify(saved[k]) !== JSON.stringify(now[k]));
}
