// LayerNorm and batch norm, with PyTorch's parameter and buffer names.
import { empty, ones, zeros } from '../creation.js';
import * as F from '../functional.js';
import type { Tensor } from '../tensor.js';
import * as init from './init.js';
import { checkSize, factory, type FactoryOptions } from './linear.js';
import { Module } from './module.js';

export interface LayerNormOptions extends FactoryOptions {
  eps?: number;
  /** learnable per-element weight (ones) and bias (zeros) */
  elementwiseAffine?: boolean;
  /** with elementwiseAffine, whether there is a bias (PyTorch 2.1's option) */
  bias?: boolean;
}

/** Normalises over the trailing `normalizedShape` dimensions, as torch.nn.LayerNorm. */
export class LayerNorm extends Module {
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;

  constructor(normalizedShape: number | readonly number[], o: LayerNormOptions = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.normalizedShape.forEach((n, i) => checkSize('LayerNorm', { [`normalizedShape[${i}]`]: n }));
    this.eps = o.eps ?? 1e-5;
    this.elementwiseAffine = o.elementwiseAffine ?? true;
    const affine = this.elementwiseAffine;
    this.weight = this.registerParameter('weight', affine ? empty(this.normalizedShape, factory(o)) : null);
    this.bias = this.registerParameter(
      'bias',
      affine && (o.bias ?? true) ? empty(this.normalizedShape, factory(o)) : null,
    );
    this.resetParameters();
  }

  resetParameters(): void {
    if (this.weight) init.ones(this.weight);
    if (this.bias) init.zeros(this.bias);
  }

  forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }
}

export interface BatchNormOptions extends FactoryOptions {
  eps?: number;
  /** weight of the new batch in the running statistics; null for a cumulative average */
  momentum?: number | null;
  /** learnable per-channel weight (ones) and bias (zeros) */
  affine?: boolean;
  /** keep running_mean / running_var for eval; without them eval uses batch statistics too */
  trackRunningStats?: boolean;
}

/** Batch norm over dim 1 (channels); BatchNorm1d and BatchNorm2d differ only in the input's rank. */
export abstract class BatchNorm extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly running_mean: Tensor | null;
  readonly running_var: Tensor | null;
  readonly num_batches_tracked: Tensor | null;
  /**
   * Set by `distributed.convertSyncBatchNorm`: in training the statistics are those of the
   * global batch over this process group (torch.nn.SyncBatchNorm); null: this process's batch.
   */
  syncGroup: { readonly id: number } | null = null;

  constructor(numFeatures: number, o: BatchNormOptions = {}) {
    super();
    checkSize(this.constructor.name, { numFeatures });
    this.numFeatures = numFeatures;
    this.eps = o.eps ?? 1e-5;
    this.momentum = o.momentum === undefined ? 0.1 : o.momentum;
    this.affine = o.affine ?? true;
    this.trackRunningStats = o.trackRunningStats ?? true;
    const f = factory(o);
    this.weight = this.registerParameter('weight', this.affine ? empty(numFeatures, f) : null);
    this.bias = this.registerParameter('bias', this.affine ? empty(numFeatures, f) : null);
    const track = this.trackRunningStats;
    this.running_mean = this.registerBuffer('running_mean', track ? zeros(numFeatures, f) : null);
    this.running_var = this.registerBuffer('running_var', track ? ones(numFeatures, f) : null);
    this.num_batches_tracked = this.registerBuffer(
      'num_batches_tracked',
      track ? zeros([], { dtype: 'int64', device: o.device }) : null,
    );
    this.resetParameters();
  }

  resetRunningStats(): void {
    if (this.running_mean) init.zeros(this.running_mean);
    if (this.running_var) init.ones(this.running_var);
    if (this.num_batches_tracked) init.zeros(this.num_batches_tracked);
  }

  resetParameters(): void {
    this.resetRunningStats();
    if (this.weight) init.ones(this.weight);
    if (this.bias) init.zeros(this.bias);
  }

  /** The input ranks this layer accepts. */
  protected abstract readonly ranks: readonly number[];

  /**
   * In training: normalises with the batch's statistics and, when tracking, folds them into
   * the running ones (in place) and counts the batch. In eval: normalises with the running
   * statistics (batch statistics if it does not track them).
   */
  forward(x: Tensor): Tensor {
    if (!this.ranks.includes(x.ndim)) {
      const want = this.ranks.map((r) => `${r}D`).join(' or ');
      throw new RangeError(`${this.constructor.name}: expected ${want} input (got ${x.ndim}D input)`);
    }
    let factor = this.momentum ?? 0;
    if (this.training && this.trackRunningStats && this.num_batches_tracked) {
      this.num_batches_tracked.add_(1);
      if (this.momentum === null) factor = 1 / Number(this.num_batches_tracked.item());
    }
    const batchStats = this.training || (this.running_mean === null && this.running_var === null);
    const useRunning = !this.training || this.trackRunningStats;
    if (this.syncGroup && batchStats) {
      const rm = useRunning ? this.running_mean : null;
      const rv = useRunning ? this.running_var : null;
      return F.syncBatchNorm(x, this.syncGroup.id, rm, rv, {
        weight: this.weight,
        bias: this.bias,
        momentum: factor,
        eps: this.eps,
      });
    }
    return F.batchNorm(x, useRunning ? this.running_mean : null, useRunning ? this.running_var : null, {
      weight: this.weight,
      bias: this.bias,
      training: batchStats,
      momentum: factor,
      eps: this.eps,
    });
  }
}

/** Batch norm over (N, C) or (N, C, L), as torch.nn.BatchNorm1d. */
export class BatchNorm1d extends BatchNorm {
  protected readonly ranks = [2, 3] as const;
}

/** Batch norm over (N, C, H, W), as torch.nn.BatchNorm2d. */
export class BatchNorm2d extends BatchNorm {
  protected readonly ranks = [4] as const;
}
