// Synthetic run folders for the report tests: config.json plus a metrics.jsonl with the record
// kinds a training run writes (step / epoch / eval / resume / stop).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SyntheticRun {
  command?: 'pretrain' | 'linprobe' | 'finetune';
  epochs?: number;
  stepsPerEpoch?: number;
  /** Log κ (n > 1); false writes nulls as an n = 1 run does. */
  kappa?: boolean;
  /** A kill during this epoch and a resume at its start (its logged steps are re-done). */
  resumeEpoch?: number;
  /** A NaN stop at this global step (the log ends there). */
  stopStep?: number;
  /** kNN only every k epochs (and the last); null otherwise, as a run logs it. */
  knnEvery?: number;
  /** Append half a JSON line at the end (a run killed mid-write). */
  truncate?: boolean;
}

const made: string[] = [];

/** A fresh temporary folder, removed by `removeTempDirs`. */
export function tempDir(prefix = 'mmoco-report-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Removes every folder `tempDir`/`makeRun` made (call from an `after` hook). */
export function removeTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Writes a run into a fresh temporary folder and returns the folder. */
export function makeRun(o: SyntheticRun = {}): string {
  const dir = tempDir();
  writeRun(dir, o);
  return dir;
}

export function writeRun(dir: string, o: SyntheticRun = {}): void {
  const command = o.command ?? 'pretrain';
  const epochs = o.epochs ?? 10;
  const spe = o.stepsPerEpoch ?? 50;
  const pre = command === 'pretrain';
  const config = {
    command,
    method: pre ? 'mmoco' : undefined,
    model: 'vit_tiny',
    numChunks: o.kappa === false ? 1 : 8,
    targetChunks: 1,
    epochs,
    batchSize: 256,
    data: { name: 'cifar10', root: 'datasets/cifar10' },
  };
  const lines: string[] = [];
  const t0 = Date.UTC(2026, 10, 27, 6, 0, 0);
  let time = t0;
  const log = (r: Record<string, unknown>) => lines.push(JSON.stringify({ ...r, time }));
  let rng = 12345;
  const noise = () => {
    rng = (rng * 1103515245 + 12345) % 2 ** 31;
    return rng / 2 ** 31 - 0.5;
  };
  lines.push(JSON.stringify({ kind: 'start', epochs, stepsPerEpoch: spe, time }));
  const total = epochs * spe;
  const stepRecord = (epoch: number, step: number) => {
    const t = step / total;
    const r: Record<string, unknown> = {
      kind: 'step',
      epoch,
      step,
      loss: 3 * Math.exp(-3 * t) + 0.5 + 0.2 * noise(),
      lr: 1.5e-4 * Math.min(1, step / (spe * 2)) * (0.5 + 0.5 * Math.cos(Math.PI * t)),
      imagesPerSec: 200 + 20 * noise() + (step % 97 === 0 ? -150 : 0),
      extra: 'ignored',
    };
    if (pre) {
      r.momentum = 1 - 0.01 * (0.5 + 0.5 * Math.cos(Math.PI * t));
      r.kappaRep = o.kappa === false ? null : 10 * Math.exp(2 * t) * (1 + 0.3 * noise());
      r.kappaProj = o.kappa === false ? null : 40 + 30 * t;
      r.kappaPred = o.kappa === false ? null : 55 + 100 * t * t;
    }
    return r;
  };
  for (let epoch = 0; epoch < epochs; epoch++) {
    const start = time;
    for (let i = 0; i < spe; i++) {
      const step = epoch * spe + i;
      if (o.stopStep === step) {
        log({ kind: 'stop', reason: 'loss NaN', epoch, step });
        return finish(dir, config, lines, o);
      }
      if (o.resumeEpoch === epoch && i === Math.floor(spe / 2)) {
        // killed half-way through this epoch (after a bogus, higher loss); resumes at its start
        log({ ...stepRecord(epoch, step), loss: 99 });
        lines.push('{"kind":"step","epoch":' + epoch + ',"st');
        time += 3_600_000; // an hour of downtime that the wall time must not count
        log({ kind: 'resume', epoch, step: epoch * spe });
        i = -1;
        o = { ...o, resumeEpoch: undefined };
        continue;
      }
      time += 1000;
      log(stepRecord(epoch, step));
    }
    const wallS = (time - start) / 1000;
    if (pre) {
      log({
        kind: 'epoch',
        epoch,
        loss: 3 * Math.exp((-3 * (epoch + 0.5)) / epochs) + 0.5,
        knnTop1: (epoch + 1) % (o.knnEvery ?? 1) === 0 || epoch === epochs - 1 ? 20 + 3 * epoch : null,
        imagesPerSec: 205,
        wallS,
      });
    } else {
      log({ kind: 'epoch', epoch, loss: 2 - epoch * 0.1, imagesPerSec: 900, wallS });
      log({ kind: 'eval', epoch, top1: 40 + 2 * epoch, top5: 80 + epoch, loss: 1.7 - 0.05 * epoch });
    }
    log({ kind: 'checkpoint', epoch, path: 'checkpoint' }); // an unknown kind
  }
  finish(dir, config, lines, o);
}

function finish(dir: string, config: object, lines: string[], o: SyntheticRun): void {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  writeFileSync(
    join(dir, 'metrics.jsonl'),
    lines.join('\n') + '\n' + (o.truncate ? '{"kind":"step","epoch":3,"loss":2.' : ''),
  );
}
