// Per-iteration schedules, as MAE's util/lr_sched.py and MoCo v3's main_moco.py: a linear
// warmup then a half-cosine decay of the learning rate, the linear scaling rule, and the
// cosine schedule of an EMA target's momentum. Epochs are fractional: at iteration `it` of
// epoch `e`, with `n` iterations per epoch, the position is e + it / n.

/** Anything with parameter groups whose lr can be set (the optimisers here). */
export interface LrSettable {
  setLr(lr: number): void;
}

export interface WarmupCosineOptions {
  /** the peak learning rate, reached at the end of the warmup */
  lr: number;
  /** the learning rate at the end of training (default 0) */
  minLr?: number;
  /** length of the linear warmup from 0, in epochs (default 0) */
  warmupEpochs?: number;
  /** total length of training, in epochs */
  epochs: number;
}

/**
 * MAE's adjust_learning_rate: lr·epoch/warmupEpochs during the warmup, then
 * minLr + (lr - minLr)·½(1 + cos(π·(epoch - warmupEpochs)/(epochs - warmupEpochs))).
 */
export function warmupCosineLr(epoch: number, o: WarmupCosineOptions): number {
  const minLr = o.minLr ?? 0;
  const warmup = o.warmupEpochs ?? 0;
  if (epoch < warmup) return (o.lr * epoch) / warmup;
  return minLr + (o.lr - minLr) * 0.5 * (1 + Math.cos((Math.PI * (epoch - warmup)) / (o.epochs - warmup)));
}

/** The learning-rate schedule of MAE / MoCo v3 as an object: `lr(epoch)`, `lrAt(iter)` and `apply`. */
export class WarmupCosine {
  readonly lrMax: number;
  readonly minLr: number;
  readonly warmupEpochs: number;
  readonly epochs: number;
  /** iterations per epoch, for `lrAt` and `applyAt` (default 1: iterations are epochs) */
  readonly itersPerEpoch: number;

  constructor(o: WarmupCosineOptions & { itersPerEpoch?: number }) {
    this.lrMax = o.lr;
    this.minLr = o.minLr ?? 0;
    this.warmupEpochs = o.warmupEpochs ?? 0;
    this.epochs = o.epochs;
    this.itersPerEpoch = o.itersPerEpoch ?? 1;
    if (!(this.epochs > this.warmupEpochs)) {
      throw new RangeError(`WarmupCosine: epochs (${this.epochs}) must exceed warmupEpochs (${this.warmupEpochs})`);
    }
    if (!(this.itersPerEpoch > 0)) throw new RangeError(`WarmupCosine: invalid itersPerEpoch ${this.itersPerEpoch}`);
  }

  /** The learning rate at a fractional epoch. */
  lr(epoch: number): number {
    return warmupCosineLr(epoch, {
      lr: this.lrMax,
      minLr: this.minLr,
      warmupEpochs: this.warmupEpochs,
      epochs: this.epochs,
    });
  }

  /** The learning rate at global iteration `iter` (epoch = iter / itersPerEpoch). */
  lrAt(iter: number): number {
    return this.lr(iter / this.itersPerEpoch);
  }

  /** Sets the optimiser's groups to `lr(epoch) · group.lrScale` and returns lr(epoch). */
  apply(optimizer: LrSettable, epoch: number): number {
    const lr = this.lr(epoch);
    optimizer.setLr(lr);
    return lr;
  }

  /** `apply` at global iteration `iter`. */
  applyAt(optimizer: LrSettable, iter: number): number {
    return this.apply(optimizer, iter / this.itersPerEpoch);
  }
}

/** MAE's adjust_learning_rate(optimizer, epoch, args): sets each group's lr to lr(epoch)·lrScale; returns lr(epoch). */
export function adjustLearningRate(optimizer: LrSettable, epoch: number, o: WarmupCosineOptions): number {
  const lr = warmupCosineLr(epoch, o);
  optimizer.setLr(lr);
  return lr;
}

/** The linear scaling rule of MAE / MoCo v3: absolute lr = blr · batchSize / 256. */
export function lrFromBlr(blr: number, batchSize: number): number {
  return (blr * batchSize) / 256;
}

/**
 * MoCo v3's adjust_moco_momentum: the EMA momentum rises from m0 at epoch 0 to 1 at the end,
 * m = 1 - ½(1 + cos(π·epoch/epochs))·(1 - m0).
 */
export function cosineMomentum(epoch: number, epochs: number, m0: number): number {
  return 1 - 0.5 * (1 + Math.cos((Math.PI * epoch) / epochs)) * (1 - m0);
}
