// torch.nn.functional: the layers' math as functions of tensors.
import { dtypeCode, type DType } from './dtype.js';
import { N } from './native.js';
import { _wrap, type Tensor } from './tensor.js';

const { wrap } = _wrap;
const opt = (t: Tensor | null | undefined): number | null => (t == null ? null : t.id);
const pair = (v: number | readonly number[]): number[] => (typeof v === 'number' ? [v, v] : [...v]);

export type Reduction = 'mean' | 'sum' | 'none';

export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return wrap(N.linear(x.id, weight.id, opt(bias)));
}

export interface Conv2dOptions {
  stride?: number | readonly number[];
  padding?: number | readonly number[];
  dilation?: number | readonly number[];
  groups?: number;
}
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: Conv2dOptions = {}): Tensor {
  return wrap(
    N.conv2d(
      x.id,
      weight.id,
      opt(bias),
      pair(o.stride ?? 1),
      pair(o.padding ?? 0),
      pair(o.dilation ?? 1),
      o.groups ?? 1,
    ),
  );
}

export function layerNorm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  return wrap(N.layerNorm(x.id, normalizedShape, opt(weight), opt(bias), eps));
}

export function groupNorm(
  x: Tensor,
  numGroups: number,
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  return wrap(N.groupNorm(x.id, numGroups, opt(weight), opt(bias), eps));
}

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  training?: boolean;
  momentum?: number;
  eps?: number;
}
/** Batch norm over dim 1; in training mode the running statistics are updated in place. */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  o: BatchNormOptions = {},
): Tensor {
  return wrap(
    N.batchNorm(
      x.id,
      opt(o.weight),
      opt(o.bias),
      opt(runningMean),
      opt(runningVar),
      o.training ?? false,
      o.momentum ?? 0.1,
      o.eps ?? 1e-5,
    ),
  );
}

/**
 * Batch norm with the statistics of the global batch over process group `groupId` (training;
 * the running statistics are updated with the global ones), as torch.nn.SyncBatchNorm.
 */
export function syncBatchNorm(
  x: Tensor,
  groupId: number,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  o: Omit<BatchNormOptions, 'training'> = {},
): Tensor {
  return wrap(
    N.syncBatchNorm(
      groupId,
      x.id,
      opt(o.weight),
      opt(o.bias),
      opt(runningMean),
      opt(runningVar),
      true,
      o.momentum ?? 0.1,
      o.eps ?? 1e-5,
    ),
  );
}

export function softmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return wrap(N.softmax(x.id, dim, dtype === undefined ? null : dtypeCode(dtype)));
}
export function logSoftmax(x: Tensor, dim: number, dtype?: DType): Tensor {
  return wrap(N.logSoftmax(x.id, dim, dtype === undefined ? null : dtypeCode(dtype)));
}

export interface CrossEntropyOptions {
  weight?: Tensor | null;
  reduction?: Reduction;
  ignoreIndex?: number;
  labelSmoothing?: number;
}
/** Cross entropy of logits against class indices (int64) or class probabilities (float, same shape). */
export function crossEntropy(logits: Tensor, target: Tensor, o: CrossEntropyOptions = {}): Tensor {
  return wrap(
    N.crossEntropy(
      logits.id,
      target.id,
      opt(o.weight),
      o.reduction ?? 'mean',
      o.ignoreIndex ?? -100,
      o.labelSmoothing ?? 0,
    ),
  );
}
export function nllLoss(
  logProbs: Tensor,
  target: Tensor,
  o: { weight?: Tensor | null; reduction?: Reduction; ignoreIndex?: number } = {},
): Tensor {
  return wrap(N.nllLoss(logProbs.id, target.id, opt(o.weight), o.reduction ?? 'mean', o.ignoreIndex ?? -100));
}
export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return wrap(N.mseLoss(input.id, target.id, reduction));
}
export function smoothL1Loss(input: Tensor, target: Tensor, reduction: Reduction = 'mean', beta = 1): Tensor {
  return wrap(N.smoothL1Loss(input.id, target.id, reduction, beta));
}
export function binaryCrossEntropyWithLogits(
  input: Tensor,
  target: Tensor,
  o: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {},
): Tensor {
  return wrap(
    N.binaryCrossEntropyWithLogits(input.id, target.id, opt(o.weight), opt(o.posWeight), o.reduction ?? 'mean'),
  );
}

/** x / max(||x||_p, eps) along `dim`. */
export function normalize(x: Tensor, p = 2, dim = 1, eps = 1e-12): Tensor {
  return wrap(N.normalize(x.id, p, dim, eps));
}
export function cosineSimilarity(x1: Tensor, x2: Tensor, dim = 1, eps = 1e-8): Tensor {
  return wrap(N.cosineSimilarity(x1.id, x2.id, dim, eps));
}
/** Zeroes elements with probability p and scales the rest by 1/(1-p) when `training`. */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  if (p < 0 || p > 1) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  return wrap(N.dropout(x.id, p, training));
}
export function oneHot(indices: Tensor, numClasses = -1): Tensor {
  return wrap(N.oneHot(indices.id, numClasses));
}

export interface InterpolateOptions {
  size?: number | readonly number[];
  scaleFactor?: number | readonly number[];
  mode?: 'bilinear' | 'bicubic' | 'nearest';
  alignCorners?: boolean;
  antialias?: boolean;
}
/** Resizes an NCHW batch (2-D spatial), as F.interpolate. */
export function interpolate(x: Tensor, o: InterpolateOptions): Tensor {
  if ((o.size === undefined) === (o.scaleFactor === undefined)) {
    throw new TypeError('interpolate: give exactly one of size and scaleFactor');
  }
  const mode = o.mode ?? 'nearest';
  if (mode === 'nearest' && o.alignCorners)
    throw new TypeError("interpolate: alignCorners needs mode 'bilinear' or 'bicubic'");
  return wrap(
    N.interpolate(x.id, o.size ?? null, o.scaleFactor ?? null, mode, o.alignCorners ?? false, o.antialias ?? false),
  );
}

export interface GridSampleOptions {
  mode?: 'bilinear' | 'nearest' | 'bicubic';
  paddingMode?: 'zeros' | 'border' | 'reflection';
  alignCorners?: boolean;
}
/**
 * Samples an NCHW batch at the grid's locations, as F.grid_sample: `grid` is [N, Hout, Wout, 2]
 * holding (x, y) in [-1, 1] (the input's left/top and right/bottom edges, or the corner pixels'
 * centres with `alignCorners`).
 */
export function gridSample(x: Tensor, grid: Tensor, o: GridSampleOptions = {}): Tensor {
  return wrap(N.gridSample(x.id, grid.id, o.mode ?? 'bilinear', o.paddingMode ?? 'zeros', o.alignCorners ?? false));
}

/** Pads the last dimensions: `pads` = [left, right, top, bottom, ...] as F.pad. */
export function pad(
  x: Tensor,
  pads: readonly number[],
  mode: 'constant' | 'reflect' | 'replicate' | 'circular' = 'constant',
  value = 0,
): Tensor {
  return wrap(N.pad(x.id, pads, mode, mode === 'constant' ? value : null));
}

export interface Pool2dOptions {
  stride?: number | readonly number[];
  padding?: number | readonly number[];
  ceilMode?: boolean;
}
export function avgPool2d(
  x: Tensor,
  kernelSize: number | readonly number[],
  o: Pool2dOptions & { countIncludePad?: boolean } = {},
): Tensor {
  return wrap(
    N.avgPool2d(
      x.id,
      pair(kernelSize),
      pair(o.stride ?? kernelSize),
      pair(o.padding ?? 0),
      o.ceilMode ?? false,
      o.countIncludePad ?? true,
    ),
  );
}
export function maxPool2d(
  x: Tensor,
  kernelSize: number | readonly number[],
  o: Pool2dOptions & { dilation?: number | readonly number[] } = {},
): Tensor {
  return wrap(
    N.maxPool2d(
      x.id,
      pair(kernelSize),
      pair(o.stride ?? kernelSize),
      pair(o.padding ?? 0),
      pair(o.dilation ?? 1),
      o.ceilMode ?? false,
    ),
  );
}
export function adaptiveAvgPool2d(x: Tensor, outputSize: number | readonly number[]): Tensor {
  return wrap(N.adaptiveAvgPool2d(x.id, pair(outputSize)));
}

/** softmax(q kᵀ / √d + mask) v; libtorch's fused kernel where the version has one. */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  o: { attnMask?: Tensor | null; dropoutP?: number; isCausal?: boolean } = {},
): Tensor {
  return wrap(N.scaledDotProductAttention(q.id, k.id, v.id, opt(o.attnMask), o.dropoutP ?? 0, o.isCausal ?? false));
}

export const relu = (x: Tensor): Tensor => x.relu();
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor => x.gelu(approximate);
export const silu = (x: Tensor): Tensor => x.silu();
export const sigmoid = (x: Tensor): Tensor => x.sigmoid();
export const tanh = (x: Tensor): Tensor => x.tanh();
export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return wrap(N.leakyRelu(x.id, negativeSlope));
}
export function softplus(x: Tensor, beta = 1, threshold = 20): Tensor {
  return wrap(N.softplus(x.id, beta, threshold));
}
