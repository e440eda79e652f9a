// Conv2d.
import { empty } from '../creation.js';
import * as F from '../functional.js';
import { tidy } from '../scope.js';
import type { Tensor } from '../tensor.js';
import { checkSize, factory, resetLinearLike, type FactoryOptions } from './linear.js';
import { Module } from './module.js';

type Pair = number | readonly [number, number];

export interface Conv2dOptions extends FactoryOptions {
  stride?: Pair;
  /** zeros added on both sides; 'valid' is 0, 'same' keeps the size (stride 1 only; an odd total pads one more at the end) */
  padding?: Pair | 'valid' | 'same';
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** 2-D convolution over (N, C, H, W) or (C, H, W); weight (out, in/groups, kH, kW), as torch.nn.Conv2d. */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | 'same';
  readonly dilation: [number, number];
  readonly groups: number;
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, o: Conv2dOptions = {}) {
    super();
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = pair(kernelSize);
    this.stride = pair(o.stride ?? 1);
    this.dilation = pair(o.dilation ?? 1);
    this.groups = o.groups ?? 1;
    const padding = o.padding ?? 0;
    this.padding = padding === 'same' ? 'same' : padding === 'valid' ? [0, 0] : pair(padding);
    checkSize('Conv2d', { inChannels, outChannels, groups: this.groups });
    for (const [name, v] of [
      ['kernelSize', this.kernelSize],
      ['stride', this.stride],
      ['dilation', this.dilation],
    ] as const) {
      if (!v.every((e) => Number.isInteger(e) && e > 0))
        throw new RangeError(`Conv2d: ${name} must be positive integers`);
    }
    if (this.padding !== 'same' && !this.padding.every((e) => Number.isInteger(e) && e >= 0)) {
      throw new RangeError('Conv2d: padding must be non-negative integers');
    }
    if (this.groups <= 0) throw new RangeError('Conv2d: groups must be a positive integer');
    if (inChannels % this.groups !== 0) throw new RangeError('Conv2d: in_channels must be divisible by groups');
    if (outChannels % this.groups !== 0) throw new RangeError('Conv2d: out_channels must be divisible by groups');
    if (this.padding === 'same' && this.stride.some((s) => s !== 1)) {
      throw new RangeError("Conv2d: padding='same' is not supported for strided convolutions");
    }
    const [kh, kw] = this.kernelSize;
    this.weight = this.registerParameter('weight', empty(outChannels, inChannels / this.groups, kh, kw, factory(o)));
    this.bias = this.registerParameter('bias', (o.bias ?? true) ? empty(outChannels, factory(o)) : null);
    this.resetParameters();
  }

  /** PyTorch's default: kaiming_uniform_(a=√5) for the weight, U(±1/√fanIn) for the bias. */
  resetParameters(): void {
    resetLinearLike(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    const opts = { stride: this.stride, dilation: this.dilation, groups: this.groups };
    if (this.padding !== 'same') return F.conv2d(x, this.weight, this.bias, { ...opts, padding: this.padding });
    // As libtorch's 'same' mode: total padding d·(k-1) per dimension, half on each side, and
    // the odd one out at the end (right, bottom) by an explicit pad.
    const left: number[] = [];
    const extra: number[] = [];
    for (let i = 0; i < 2; i++) {
      const total = this.dilation[i]! * (this.kernelSize[i]! - 1);
      left.push(Math.floor(total / 2));
      extra.push(total - 2 * Math.floor(total / 2));
    }
    if (extra.every((e) => e === 0)) return F.conv2d(x, this.weight, this.bias, { ...opts, padding: left });
    return tidy(() =>
      F.conv2d(F.pad(x, [0, extra[1]!, 0, extra[0]!]), this.weight, this.bias, { ...opts, padding: left }),
    );
  }
}
