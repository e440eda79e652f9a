// Activation layers.
import type { Tensor } from '../tensor.js';
import { Module } from './module.js';

/** GELU, exact (erf) by default or with the tanh approximation, as torch.nn.GELU. */
export class GELU extends Module {
  readonly approximate: 'none' | 'tanh';
  constructor(o: { approximate?: 'none' | 'tanh' } = {}) {
    super();
    this.approximate = o.approximate ?? 'none';
    if (this.approximate !== 'none' && this.approximate !== 'tanh') {
      throw new RangeError(`GELU: approximate must be 'none' or 'tanh', got '${String(this.approximate)}'`);
    }
  }
  forward(x: Tensor): Tensor {
    return x.gelu(this.approximate);
  }
}

/** max(x, 0), as torch.nn.ReLU. */
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}
