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
import { findCheckpoint } from '../torch/io/checkpoint.js';
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
