// The epoch loop of a run folder, shared by `mmoco pretrain`, `linprobe` and `finetune`: it
// continues where resumeOrStart left off (a mid-epoch checkpoint's batches are not read again,
// its losses count in the epoch's mean), seeds each batch's draws by (seed, epoch, rank, batch),
// disposes each batch, stops a run whose loss is not finite (a `stop` record, then
// TrainingDiverged), writes a checkpoint inside an epoch when `checkpointEveryMinutes` passed and
// one at each epoch's end, and keeps the ranks together with a barrier after it. What a step
// and an epoch's end compute is the command's.
import * as torch from '../torch/index.js';
import type { Batch } from '../data/index.js';
import { CheckpointClock, RunDir, TrainingDiverged, batchSeed, type RunStart } from './run-dir.js';

/** Where a step is: its epoch, global step (0-based) and batch within the epoch. */
export interface StepAt {
  epoch: number;
  step: number;
  batch: number;
}

/** An epoch whose batches are done. */
export interface EpochEnd {
  epoch: number;
  /** global steps done after it */
  step: number;
  /** batches done in the epoch (a resumed one's included) and of them run by this process */
  batches: number;
  batchesRun: number;
  /** mean loss over the epoch's batches */
  loss: number;
  /** performance.now() when this process began the epoch, and seconds of its training steps */
  started: number;
  trainS: number;
}

export interface EpochLoop<R extends { loss: number }> {
  run: RunDir;
  /** what resumeOrStart returned */
  begin: RunStart;
  epochs: number;
  /** batches per epoch (the loader may have more) */
  batches: number;
  seed: number;
  rank: number;
  /** the rank that writes the run folder */
  lead: boolean;
  /** the ranks of a data-parallel run, null for one process */
  group: torch.distributed.ProcessGroup | null;
  loader: { epoch(epoch: number, o: { from: number }): AsyncIterable<Batch> };
  /** what a checkpoint holds besides `progress` */
  state: torch.io.TrainingState;
  checkpointEveryMinutes: number;
  log: (message: string) => void;
  /**
   * One training step (the batch's tensors are disposed after it). A non-finite `loss`, or a
   * TrainingDiverged it throws, stops the run; with several ranks the loss should be the global one.
   */
  step(batch: Batch, at: StepAt): R;
  /** at an epoch's start, before its first batch is read */
  beginEpoch?(epoch: number): void;
  /** after each step whose loss is finite (every rank) */
  afterStep?(r: R, at: StepAt): void;
  /** fields saved with every checkpoint beside epoch and step */
  progress?(): Record<string, unknown>;
  /** at an epoch's end, on every rank, before its checkpoint (evaluation, the epoch's record) */
  endEpoch?(e: EpochEnd): void | Promise<void>;
  /** on the lead rank, after the epoch's checkpoint */
  saved?(e: EpochEnd): void;
}

/** Runs the epochs from `begin` to `epochs`; returns the global steps done. */
export async function runEpochs<R extends { loss: number }>(o: EpochLoop<R>): Promise<number> {
  const { run, begin, batches, lead } = o;
  const clock = new CheckpointClock(o.checkpointEveryMinutes);
  const progress = (): Record<string, unknown> => o.progress?.() ?? {};
  let step = begin.step;
  for (let epoch = begin.startEpoch; epoch < o.epochs; epoch++) {
    const started = performance.now();
    const resumed = epoch === begin.startEpoch ? begin.partial : null;
    const from = resumed?.batch ?? 0;
    let lossSum = resumed?.lossSum ?? 0;
    let i = from;
    o.beginEpoch?.(epoch);
    const diverged = (value: number): never => {
      if (lead) run.log({ kind: 'stop', reason: `loss ${value}`, epoch, step });
      throw new TrainingDiverged({ step, value, epoch, checkpoint: run.checkpoint() });
    };
    for await (const batch of o.loader.epoch(epoch, { from })) {
      if (i >= batches) {
        torch.dispose([batch.images, batch.labels]);
        break;
      }
      const at = { epoch, step, batch: i };
      // augmentations, masks and mixup draw from a generator seeded per batch, so that a resumed
      // run and every rank draw what an uninterrupted run draws (see batchSeed)
      torch.manualSeed(batchSeed(o.seed, epoch, o.rank, i));
      let r: R;
      try {
        r = o.step(batch, at);
      } catch (e) {
        if (e instanceof TrainingDiverged) diverged(e.value);
        throw e;
      } finally {
        torch.dispose([batch.images, batch.labels]);
      }
      if (!Number.isFinite(r.loss)) diverged(r.loss);
      o.afterStep?.(r, at);
      lossSum += r.loss;
      step++;
      i++;
      if (lead && i < batches && clock.due()) {
        run.save(o.state, { epoch, step, ...progress() }, { epoch, batch: i, lossSum });
        clock.reset();
        o.log(`checkpoint inside epoch ${epoch} after batch ${i}/${batches} (step ${step})`);
      }
    }
    const e: EpochEnd = {
      epoch,
      step,
      batches: i,
      batchesRun: i - from,
      loss: lossSum / Math.max(1, i),
      started,
      trainS: (performance.now() - started) / 1000,
    };
    await o.endEpoch?.(e);
    if (lead) {
      run.save(o.state, { epoch, step, ...progress() });
      clock.reset();
      o.saved?.(e);
    }
    // the others wait while the lead rank evaluates and writes, so that no collective times out
    o.group?.barrier();
  }
  return step;
}
