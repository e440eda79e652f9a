// Progress output: on a TTY one line redrawn in place (bar, step, loss, lr, images/s, ETA);
// elsewhere (a log file, a pipe) a line each `lineEveryPercent` of an epoch, and the caller
// prints one concise line per epoch.
import type { EpochInfo } from '../train/pretrain.js';

export class ProgressBar {
  private last = 0;
  private readonly tty: boolean;
  private lastDone = Infinity;
  private lastBucket = 0;

  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly o: { lineEveryPercent?: number } = {},
  ) {
    this.tty = Boolean(stream.isTTY);
    const every = o.lineEveryPercent ?? 10;
    if (!(every > 0 && every <= 100)) throw new RangeError(`lineEveryPercent must be in (0, 100], got ${every}`);
  }

  /** Redraws at most 10 times a second; without a TTY, writes a line when `done` crosses the next step of percent. */
  update(done: number, total: number, text: string): void {
    if (!this.tty) {
      const every = this.o.lineEveryPercent ?? 10;
      const bucket = (n: number): number => Math.floor((100 * n) / Math.max(1, total) / every + 1e-9);
      // a new epoch (or a resume inside one): count from the step before this one
      if (done <= this.lastDone) this.lastBucket = bucket(done - 1);
      this.lastDone = done;
      const b = bucket(done);
      // the last step's line would repeat the epoch's summary line that follows it
      if (b > this.lastBucket && done < total) {
        this.stream.write(`${done}/${total} (${Math.floor((100 * done) / total)}%) ${text}\n`);
      }
      this.lastBucket = Math.max(this.lastBucket, b);
      return;
    }
    const now = Date.now();
    if (now - this.last < 100 && done < total) return;
    this.last = now;
    const width = 24;
    const filled = Math.round((width * done) / Math.max(1, total));
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const cols = this.stream.columns ?? 120;
    this.stream.write(`\r${`${bar} ${done}/${total} ${text}`.slice(0, cols - 1)}\x1b[K`);
  }

  /** Clears the bar so that a normal line can be printed. */
  clear(): void {
    if (this.tty) this.stream.write('\r\x1b[K');
  }
}

/**
 * The rest of an epoch's time, from the steps this process ran in it: after a resume the steps
 * done before it (by another process) do not count as done in no time. The first step seen in an
 * epoch is the reference point, so the data loader's start and the first step's warm-up are left out.
 */
export class EpochEta {
  private epoch = NaN;
  private t0 = 0;
  private done0 = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** After step `done` (1-based, within the epoch) of `total`: seconds left and steps per second (NaN until known). */
  update(epoch: number, done: number, total: number): { etaS: number; stepsPerS: number } {
    const t = this.now();
    if (epoch !== this.epoch || done <= this.done0) {
      this.epoch = epoch;
      this.t0 = t;
      this.done0 = done;
      return { etaS: NaN, stepsPerS: NaN };
    }
    const stepsPerS = (done - this.done0) / ((t - this.t0) / 1000);
    return { etaS: (total - done) / stepsPerS, stepsPerS };
  }
}

/** What a training step reports to the progress output. */
export interface StepProgress {
  epoch: number;
  epochs: number;
  /** step within the epoch (0-based) and steps per epoch */
  batch: number;
  batches: number;
  /** images per step */
  images: number;
  loss: number;
  lr?: number;
}

/**
 * The `onStep` of the training commands: epoch, loss, lr, images/s and the epoch's ETA (both
 * from the steps this process ran, see EpochEta) on the bar or, without a TTY, in its lines.
 */
export function stepReporter(bar: ProgressBar, eta = new EpochEta()): (s: StepProgress) => void {
  return (s) => {
    const done = s.batch + 1;
    const e = eta.update(s.epoch, done, s.batches);
    const ips = e.stepsPerS * s.images;
    bar.update(
      done,
      s.batches,
      `epoch ${s.epoch + 1}/${s.epochs} loss ${s.loss.toFixed(4)}` +
        (s.lr !== undefined ? ` lr ${s.lr.toExponential(2)}` : '') +
        ` ${Number.isFinite(ips) ? ips.toFixed(1) : '?'} img/s eta ${formatSeconds(e.etaS)}`,
    );
  };
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.floor(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/**
 * The hooks a training command gives its run: messages and epoch lines printed above the progress
 * bar, each after `tag` (a rank's, under launch).
 */
export function consoleHooks<E>(
  epochLine: (e: E) => string,
  o: { tag?: string } = {},
): { log: (m: string) => void; onStep: (s: StepProgress) => void; onEpoch: (e: E) => void } {
  const bar = new ProgressBar();
  const log = (m: string): void => {
    bar.clear();
    console.error((o.tag ?? '') + m);
  };
  return { log, onStep: stepReporter(bar), onEpoch: (e) => log(epochLine(e)) };
}

/** A pre-training epoch's line: loss, kNN top-1 when measured, images/s and wall time. */
export function pretrainEpochLine(e: EpochInfo): string {
  const knn = e.knnTop1 === null ? '' : ` knn@1 ${e.knnTop1.toFixed(2)}%`;
  return `epoch ${e.epoch + 1}/${e.epochs} loss ${e.loss.toFixed(4)}${knn} ${e.imagesPerSec.toFixed(1)} img/s ${formatSeconds(e.wallS)}`;
}
