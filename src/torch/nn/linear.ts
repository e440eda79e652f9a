// Linear and Identity.
import { empty, type TensorOptions } from '../creation.js';
import * as F from '../functional.js';
import type { Tensor } from '../tensor.js';
import * as init from './init.js';
import { Module } from './module.js';

/** Where a layer's parameters are made (PyTorch's factory_kwargs): float32 on the CPU by default. */
export type FactoryOptions = Pick<TensorOptions, 'dtype' | 'device'>;

export const factory = (o: FactoryOptions): TensorOptions => ({ dtype: o.dtype, device: o.device });

/** Returns its input (a placeholder where a layer is optional), as torch.nn.Identity. */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export interface LinearOptions extends FactoryOptions {
  bias?: boolean;
}

/** y = x Wᵀ + b over the last dimension; weight (outFeatures, inFeatures), as torch.nn.Linear. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(inFeatures: number, outFeatures: number, o: LinearOptions = {}) {
    super();
    checkSize('Linear', { inFeatures, outFeatures });
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.weight = this.registerParameter('weight', empty(outFeatures, inFeatures, factory(o)));
    this.bias = this.registerParameter('bias', (o.bias ?? true) ? empty(outFeatures, factory(o)) : null);
    this.resetParameters();
  }

  /** PyTorch's default: kaiming_uniform_(a=√5) for the weight, U(±1/√fanIn) for the bias. */
  resetParameters(): void {
    resetLinearLike(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias);
  }
}

/** Linear's and the convolutions' reset_parameters. */
export function resetLinearLike(weight: Tensor, bias: Tensor | null): void {
  init.kaimingUniform(weight, { a: Math.sqrt(5) });
  if (bias) {
    const [fanIn] = init.calculateFanInAndFanOut(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    init.uniform(bias, -bound, bound);
  }
}

export function checkSize(layer: string, sizes: Record<string, number>): void {
  for (const [name, v] of Object.entries(sizes)) {
    if (!Number.isInteger(v) || v < 0)
      throw new RangeError(`${layer}: ${name} must be a non-negative integer, got ${v}`);
  }
}
