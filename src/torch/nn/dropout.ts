// Dropout and DropPath (stochastic depth).
import { rand } from '../creation.js';
import { tidy } from '../scope.js';
import * as F from '../functional.js';
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

function checkP(layer: string, p: number): void {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`${layer}: probability has to be between 0 and 1, but got ${p}`);
}

/** Zeroes each element with probability p in training and scales the rest by 1/(1-p), as torch.nn.Dropout. */
export class Dropout extends Module {
  readonly p: number;
  constructor(p = 0.5) {
    super();
    checkP('Dropout', p);
    this.p = p;
  }
  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
}

/**
 * Stochastic depth, as timm's `drop_path`: in training, each sample of the batch (dim 0) is
 * dropped whole with probability p, and the kept ones are scaled by 1/(1-p) (unless
 * `scaleByKeep` is false), so the expectation is unchanged; identity when not training or
 * p = 0. The keep mask, of shape (B, 1, 1, ...), is drawn as timm's `bernoulli_(1 - p)` draws
 * it on the CPU (one double U[0,1) per sample, kept where it is below 1 - p), so under the same
 * seed the CPU masks are timm's. Returns x itself when it is the identity.
 */
export function dropPath(x: Tensor, p = 0, training = false, scaleByKeep = true): Tensor {
  checkP('dropPath', p);
  if (p === 0 || !training) return x;
  const keepProb = 1 - p;
  const shape = [x.shape[0]!, ...new Array<number>(x.ndim - 1).fill(1)];
  return tidy(() => {
    const mask = rand(shape, { dtype: 'float64', device: x.device }).lt(keepProb).to(x.dtype);
    if (keepProb > 0 && scaleByKeep) mask.div_(keepProb);
    return x.mul(mask);
  });
}

/** Stochastic depth per sample (on the residual branch), as timm's DropPath. */
export class DropPath extends Module {
  readonly p: number;
  readonly scaleByKeep: boolean;
  constructor(p = 0, o: { scaleByKeep?: boolean } = {}) {
    super();
    checkP('DropPath', p);
    this.p = p;
    this.scaleByKeep = o.scaleByKeep ?? true;
  }
  forward(x: Tensor): Tensor {
    return dropPath(x, this.p, this.training, this.scaleByKeep);
  }
}
