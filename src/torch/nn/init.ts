// torch.nn.init: in-place initialisers. Each follows PyTorch's arithmetic (bounds computed in
// double precision exactly as torch/nn/init.py does) and draws from the generator with the
// same calls in the same order, so that under the same seed the values are PyTorch's bit for bit.
import { noGrad } from '../autograd.js';
import { tensor } from '../creation.js';
import { tidy } from '../scope.js';
import type { Tensor } from '../tensor.js';

export type Nonlinearity =
  | 'linear'
  | 'conv1d'
  | 'conv2d'
  | 'conv3d'
  | 'conv_transpose1d'
  | 'conv_transpose2d'
  | 'conv_transpose3d'
  | 'sigmoid'
  | 'tanh'
  | 'relu'
  | 'leaky_relu'
  | 'selu';

export type FanMode = 'fan_in' | 'fan_out';

/** The recommended gain for a nonlinearity (torch.nn.init.calculate_gain); `param` is leaky_relu's slope. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv1d':
    case 'conv2d':
    case 'conv3d':
    case 'conv_transpose1d':
    case 'conv_transpose2d':
    case 'conv_transpose3d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5.0 / 3;
    case 'relu':
      return Math.sqrt(2.0);
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      if (!Number.isFinite(slope)) throw new TypeError(`calculateGain: negative slope ${slope} is not a valid number`);
      return Math.sqrt(2.0 / (1 + slope * slope)); // slope ** 2 in Python: x*x is the same double
    }
    case 'selu':
      return 3.0 / 4;
    default:
      throw new RangeError(`calculateGain: unsupported nonlinearity ${String(nonlinearity)}`);
  }
}

/** [fanIn, fanOut] of a weight: dims 1 and 0, times the receptive field (dims 2...). */
export function calculateFanInAndFanOut(t: Tensor): [number, number] {
  const shape = t.shape;
  if (shape.length < 2) {
    throw new RangeError('Fan in and fan out can not be computed for tensor with fewer than 2 dimensions');
  }
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [shape[1]! * receptive, shape[0]! * receptive];
}

function correctFan(t: Tensor, mode: FanMode): number {
  if (mode !== 'fan_in' && mode !== 'fan_out') {
    throw new RangeError(`Mode ${String(mode)} not supported, please use one of fan_in, fan_out`);
  }
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  return mode === 'fan_in' ? fanIn : fanOut;
}

/** Fills t with U(a, b). */
export function uniform(t: Tensor, a = 0, b = 1): Tensor {
  return noGrad(() => t.uniform_(a, b));
}

/** Fills t with N(mean, std²). */
export function normal(t: Tensor, mean = 0, std = 1): Tensor {
  return noGrad(() => t.normal_(mean, std));
}

export function constant(t: Tensor, value: number): Tensor {
  return noGrad(() => t.fill_(value));
}
export function ones(t: Tensor): Tensor {
  return constant(t, 1);
}
export function zeros(t: Tensor): Tensor {
  return noGrad(() => t.zero_());
}

/** Glorot uniform: U(-a, a), a = gain·√(6 / (fanIn + fanOut)). */
export function xavierUniform(t: Tensor, gain = 1): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  const std = gain * Math.sqrt(2.0 / (fanIn + fanOut));
  const a = Math.sqrt(3.0) * std;
  return uniform(t, -a, a);
}

/** Glorot normal: N(0, std²), std = gain·√(2 / (fanIn + fanOut)). */
export function xavierNormal(t: Tensor, gain = 1): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  const std = gain * Math.sqrt(2.0 / (fanIn + fanOut));
  return normal(t, 0, std);
}

export interface KaimingOptions {
  /** leaky_relu's negative slope (0 by default, as PyTorch) */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

/** He uniform: U(-b, b), b = gain·√(3 / fan). PyTorch's Linear and Conv use a = √5. */
export function kaimingUniform(t: Tensor, o: KaimingOptions = {}): Tensor {
  if (t.numel() === 0) return t; // PyTorch warns and leaves an empty tensor alone
  const fan = correctFan(t, o.mode ?? 'fan_in');
  const gain = calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0);
  const std = gain / Math.sqrt(fan);
  const bound = Math.sqrt(3.0) * std;
  return uniform(t, -bound, bound);
}

/** He normal: N(0, std²), std = gain / √fan. */
export function kaimingNormal(t: Tensor, o: KaimingOptions = {}): Tensor {
  if (t.numel() === 0) return t;
  const fan = correctFan(t, o.mode ?? 'fan_in');
  const gain = calculateGain(o.nonlinearity ?? 'leaky_relu', o.a ?? 0);
  return normal(t, 0, gain / Math.sqrt(fan));
}

export interface TruncNormalOptions {
  mean?: number;
  std?: number;
  /** lower cutoff (an absolute value, not in standard deviations) */
  a?: number;
  /** upper cutoff */
  b?: number;
}

// The standard normal CDF at a cutoff, with libtorch's float64 erf (JS has no erf). PyTorch
// uses the C library's erf here; the two can differ in the last bit of a float64, which moves a
// float32 draw almost never (the float32 fixtures match bit for bit).
const normCdf = (x: number): number =>
  tidy(
    () =>
      (1 +
        (tensor([x / Math.SQRT2], { dtype: 'float64' })
          .erf()
          .item() as number)) /
      2,
  );

/**
 * N(mean, std²) truncated to [a, b], by PyTorch's (and timm's) inverse-CDF method: uniform
 * draws between the cutoffs' CDF values mapped through erfinv, then clamped.
 */
export function truncNormal(t: Tensor, o: TruncNormalOptions = {}): Tensor {
  const mean = o.mean ?? 0;
  const std = o.std ?? 1;
  const a = o.a ?? -2;
  const b = o.b ?? 2;
  if (mean < a - 2 * std || mean > b + 2 * std) {
    process.emitWarning(
      'mean is more than 2 std from [a, b] in nn.init.truncNormal. The distribution of values may be incorrect.',
    );
  }
  const l = normCdf((a - mean) / std);
  const u = normCdf((b - mean) / std);
  noGrad(() =>
    tidy(() => {
      t.uniform_(2 * l - 1, 2 * u - 1);
      t.copy_(t.erfinv()); // erfinv_: the same kernel, out of place
      t.mul_(std * Math.sqrt(2));
      t.add_(mean);
      t.clamp_(a, b);
    }),
  );
  return t; // not through tidy, which would hand t to the innermost scope
}
