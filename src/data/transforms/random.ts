// Gamma and Beta variates from the library's generator (for mixup/cutmix's lambda), by
// Marsaglia and Tsang's method; the uniform and normal draws come from torch.rand / torch.randn in
// small blocks, so one seed fixes them.
import { normal, uniform } from './common.js';

/** Uniform and standard normal numbers fetched from the generator a block at a time. */
class Draws {
  private u: number[] = [];
  private z: number[] = [];
  uniform(): number {
    if (this.u.length === 0) this.u = uniform(16);
    return this.u.pop()!;
  }
  normal(): number {
    if (this.z.length === 0) this.z = normal(16);
    return this.z.pop()!;
  }
}

function gamma(shape: number, d: Draws): number {
  if (shape < 1) {
    // boost: Gamma(k) = Gamma(k + 1) * U^(1/k)
    const u = d.uniform();
    return gamma(shape + 1, d) * Math.pow(u, 1 / shape);
  }
  const a = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * a);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = d.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = d.uniform();
    if (u < 1 - 0.0331 * x * x * x * x) return a * v;
    if (Math.log(u) < 0.5 * x * x + a * (1 - v + Math.log(v))) return a * v;
  }
}

/** One Gamma(shape, 1) draw. */
export function sampleGamma(shape: number): number {
  if (!(shape > 0)) throw new RangeError(`sampleGamma: shape must be positive, got ${shape}`);
  return gamma(shape, new Draws());
}

/** One Beta(a, b) draw (numpy.random.beta's distribution). */
export function sampleBeta(a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new RangeError(`sampleBeta: a and b must be positive, got ${a}, ${b}`);
  const d = new Draws();
  const x = gamma(a, d);
  const y = gamma(b, d);
  // both underflow only for tiny shapes; the limit is a Bernoulli(a / (a + b))
  if (x + y === 0) return d.uniform() < a / (a + b) ? 1 : 0;
  return x / (x + y);
}
