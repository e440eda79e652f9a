// Colour ops with torchvision's functional_tensor (0.14) semantics, batched: each takes one
// factor for the whole batch or one per image (broadcast as an [n, 1, 1, 1] tensor), so a batch
// with different factors per image is still one op. Blends clamp to the dtype's range and cast
// uint8 back by truncation, as torchvision does.
import { stack, tensor, tidy, where as select, type Tensor } from '../../torch/index.js';
import { colorJitterCpu } from '../native/kernels.js';
import {
  applyTo,
  bernoulli,
  castBack,
  dims,
  floatType,
  maxValue,
  permutations,
  perImage,
  pick,
  same,
  uniform,
  upload,
  indicesOf,
} from './common.js';

/** Numbers from JavaScript: one for the batch or one per image. */
export type HostFactors = number | readonly number[];
/**
 * Per-image factors already on the batch's device (1-D): the values and 1 minus them, the latter
 * computed in double precision on the host as torchvision's Python floats are.
 */
export interface DeviceFactors {
  ratio: Tensor;
  complement: Tensor;
}
/** One factor for the batch, or one per image (from JavaScript, or already on the device). */
export type Factors = HostFactors | DeviceFactors;
const isDevice = (f: Factors): f is DeviceFactors => typeof f === 'object' && 'ratio' in f;

// uint8 goes to float first: an integral JS number is an integer scalar, which would keep uint8
const scaled = (t: Tensor, f: number | Tensor): Tensor => (t.dtype === 'uint8' ? t.to('float32') : t).mul(f);

function pair(f: Factors, like: Tensor): [number | Tensor, number | Tensor] {
  if (typeof f === 'number') return [f, 1 - f];
  if (isDevice(f)) return [f.ratio.view(-1, 1, 1, 1), f.complement.view(-1, 1, 1, 1)];
  return [
    perImage(f, like),
    perImage(
      f.map((r) => 1 - r),
      like,
    ),
  ];
}

/** ratio * img1 + (1 - ratio) * img2, clamped and cast back (torchvision's _blend). */
export function blend(img1: Tensor, img2: Tensor, ratio: Factors): Tensor {
  return tidy(() => {
    const [a, b] = pair(ratio, img1);
    const y = scaled(img1, a).add(scaled(img2, b));
    return castBack(y.clamp(0, maxValue(img1)), img1.dtype, 'trunc');
  });
}

/** Luma 0.2989 R + 0.587 G + 0.114 B in the batch's dtype; 1 or 3 (repeated) channels. */
export function rgbToGrayscale(x: Tensor, numOutputChannels: 1 | 3 = 1): Tensor {
  const [n, c, h, w] = dims(x, 'rgbToGrayscale');
  return tidy(() => {
    let l: Tensor;
    if (c === 3) {
      const [r, g, b] = x.unbind(1) as [Tensor, Tensor, Tensor];
      l = castBack(r.mul(0.2989).add(g.mul(0.587)).add(b.mul(0.114)), x.dtype, 'trunc').unsqueeze(1);
    } else if (c === 1) {
      l = x.clone();
    } else {
      throw new RangeError(`rgbToGrayscale: expected 1 or 3 channels, got ${c}`);
    }
    return numOutputChannels === 3 ? l.expand(n, 3, h, w).contiguous() : l;
  });
}

export function adjustBrightness(x: Tensor, factor: Factors): Tensor {
  return tidy(() => {
    const [a] = pair(factor, x);
    // torchvision blends with zeros: ratio * img + (1 - ratio) * 0
    return castBack(scaled(x, a).clamp(0, maxValue(x)), x.dtype, 'trunc');
  });
}

export function adjustContrast(x: Tensor, factor: Factors): Tensor {
  const [, c] = dims(x, 'adjustContrast');
  return tidy(() => {
    const gray = c === 3 ? rgbToGrayscale(x) : x;
    const mean = gray.to(floatType(x)).mean([-3, -2, -1], true);
    return blend(x, mean, factor);
  });
}

export function adjustSaturation(x: Tensor, factor: Factors): Tensor {
  const [, c] = dims(x, 'adjustSaturation');
  if (c === 1) return same(x);
  return tidy(() => blend(x, rgbToGrayscale(x), factor));
}

/** RGB in [0, 1] to HSV along dim 1 (torchvision's _rgb2hsv). */
export function rgbToHsv(img: Tensor): Tensor {
  return tidy(() => {
    const [r, g, b] = img.unbind(1) as [Tensor, Tensor, Tensor];
    const maxc = img.amax(1);
    const minc = img.amin(1);
    const eqc = maxc.eq(minc);
    const cr = maxc.sub(minc);
    const s = cr.div(select(eqc, 1, maxc));
    const crDivisor = select(eqc, 1, cr);
    const rc = maxc.sub(r).div(crDivisor);
    const gc = maxc.sub(g).div(crDivisor);
    const bc = maxc.sub(b).div(crDivisor);
    const isR = maxc.eq(r);
    const isG = maxc.eq(g).logicalAnd(isR.logicalNot());
    const isB = maxc.ne(g).logicalAnd(isR.logicalNot());
    const hr = isR.mul(bc.sub(gc));
    const hg = isG.mul(rc.add(2).sub(bc));
    const hb = isB.mul(gc.add(4).sub(rc));
    const h = hr.add(hg).add(hb).div(6).add(1).remainder(1);
    return stack([h, s, maxc], 1);
  });
}

/** HSV to RGB along dim 1 (torchvision's _hsv2rgb; the sector is picked with a gather). */
export function hsvToRgb(img: Tensor): Tensor {
  return tidy(() => {
    const [h, s, v] = img.unbind(1) as [Tensor, Tensor, Tensor];
    const h6 = h.mul(6);
    const iF = h6.floor();
    const f = h6.sub(iF);
    const i = iF.to('int64').remainder(6);
    const p = v.mul(s.rsub(1)).clamp(0, 1);
    const q = v.mul(s.mul(f).rsub(1)).clamp(0, 1);
    const t = v.mul(s.mul(f.rsub(1)).rsub(1)).clamp(0, 1);
    // the (r, g, b) of each of the 6 sectors, [n, 3, 6, h, w]; torchvision sums them under a
    // one-hot mask, a gather picks the same values
    const table = stack([stack([v, q, p, p, t, v], 1), stack([t, v, v, q, p, p], 1), stack([p, p, t, v, v, q], 1)], 1);
    const [n, hh, ww] = v.shape as [number, number, number];
    return table.gather(2, i.view(n, 1, 1, hh, ww).expand(n, 3, 1, hh, ww)).squeeze(2);
  });
}

/** Rotates the hue by `factor` turns (in [-0.5, 0.5]) via RGB -> HSV -> RGB. */
export function adjustHue(x: Tensor, factor: Factors): Tensor {
  const [, c] = dims(x, 'adjustHue');
  const fs = typeof factor === 'number' ? [factor] : isDevice(factor) ? [] : factor;
  for (const f of fs)
    if (!(f >= -0.5 && f <= 0.5)) throw new RangeError(`adjustHue: factor ${f} is not in [-0.5, 0.5]`);
  if (c === 1) return same(x);
  return tidy(() => {
    const img = x.dtype === 'uint8' ? x.to('float32').div(255) : x;
    const hsv = rgbToHsv(img);
    const [h, s, v] = hsv.unbind(1) as [Tensor, Tensor, Tensor];
    const shift =
      typeof factor === 'number'
        ? factor
        : isDevice(factor)
          ? factor.ratio.view(-1, 1, 1)
          : perImage(factor, img).squeeze(1);
    const h2 = h.add(shift).remainder(1);
    const rgb = hsvToRgb(stack([h2, s, v], 1));
    return x.dtype === 'uint8' ? rgb.mul(255).to('uint8') : rgb;
  });
}

/** Inverts pixels at or above the threshold (0..255 for uint8, 0..1 for floats). */
export function solarize(x: Tensor, threshold: HostFactors): Tensor {
  return tidy(() => {
    const thr = typeof threshold === 'number' ? threshold : perImage(threshold, x);
    return select(x.ge(thr), x.rsub(maxValue(x)), x);
  });
}

/** (x - mean) / std per channel; float batches only. */
export function normalize(x: Tensor, mean: readonly number[], std: readonly number[]): Tensor {
  const [, c] = dims(x, 'normalize');
  if (x.dtype === 'uint8') throw new TypeError('normalize: expected a float batch (convert uint8 with toFloat first)');
  if (mean.length !== c || std.length !== c) {
    throw new RangeError(`normalize: ${mean.length} means and ${std.length} stds for ${c} channels`);
  }
  if (std.some((s) => s === 0)) throw new RangeError('normalize: a std is zero');
  return tidy(() => {
    const [m, s] = upload([mean, std], x) as [Tensor, Tensor];
    return x.sub(m.view(1, c, 1, 1)).div(s.view(1, c, 1, 1));
  });
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export class Normalize {
  constructor(
    readonly mean: readonly number[] = IMAGENET_MEAN,
    readonly std: readonly number[] = IMAGENET_STD,
  ) {}
  forward(x: Tensor): Tensor {
    return normalize(x, this.mean, this.std);
  }
}

// ---- random colour transforms ----

export type Range = readonly [number, number];

export interface ColorJitterOptions {
  /** Factor range [max(0, 1 - b), 1 + b] for a number b, or [min, max]; 0 disables. */
  brightness?: number | Range;
  contrast?: number | Range;
  saturation?: number | Range;
  /** Shift range [-h, h] for a number h (at most 0.5), or [min, max]. */
  hue?: number | Range;
  /** Probability that an image is jittered at all (torchvision's RandomApply around it); default 1. */
  p?: number;
}

export interface ColorJitterParams {
  /** Whether each image is jittered. */
  apply: boolean[];
  /** Per image, the order of the ops: 0 brightness, 1 contrast, 2 saturation, 3 hue. */
  order: number[][];
  brightness: number[];
  contrast: number[];
  saturation: number[];
  hue: number[];
}

function jitterRange(v: number | Range | undefined, name: string, center: number, clipAtZero: boolean): Range | null {
  if (v === undefined) return null;
  let r: Range;
  if (typeof v === 'number') {
    if (v < 0) throw new RangeError(`ColorJitter: ${name} must be non-negative, got ${v}`);
    r = [clipAtZero ? Math.max(0, center - v) : center - v, center + v];
  } else {
    r = v;
    if (r[0] > r[1]) throw new RangeError(`ColorJitter: ${name} range [${r.join(', ')}] is not [min, max]`);
  }
  return r[0] === center && r[1] === center ? null : r;
}

const JITTER_OPS = [adjustBrightness, adjustContrast, adjustSaturation, adjustHue] as const;

/**
 * torchvision's ColorJitter (inside a RandomApply with probability p): per image a random order
 * of brightness, contrast, saturation and hue, each with a factor drawn uniformly from its range.
 * Applied as 4 steps; at each step every op runs once on the images that have it in that place.
 */
export class ColorJitter {
  readonly ranges: readonly (Range | null)[];
  readonly p: number;

  constructor(o: ColorJitterOptions = {}) {
    const hue = jitterRange(o.hue, 'hue', 0, false);
    if (hue && (hue[0] < -0.5 || hue[1] > 0.5)) throw new RangeError('ColorJitter: hue must lie in [-0.5, 0.5]');
    this.ranges = [
      jitterRange(o.brightness, 'brightness', 1, true),
      jitterRange(o.contrast, 'contrast', 1, true),
      jitterRange(o.saturation, 'saturation', 1, true),
      hue,
    ];
    this.p = o.p ?? 1;
  }

  sampleParams(n: number): ColorJitterParams {
    const apply = bernoulli(n, this.p);
    const order = permutations(n, 4);
    // a disabled op gets its neutral factor (it is skipped anyway)
    const [b, c, s, h] = this.ranges.map((r, op) =>
      r === null ? new Array<number>(n).fill(op === 3 ? 0 : 1) : uniform(n, r[0], r[1]),
    );
    return { apply, order, brightness: b!, contrast: c!, saturation: s!, hue: h! };
  }

  apply(x: Tensor, params: ColorJitterParams): Tensor {
    const factors = [params.brightness, params.contrast, params.saturation, params.hue];
    if (x.dtype === 'float32' && x.device === 'cpu' && !x.requiresGrad && dims(x, 'ColorJitter')[1] === 3)
      return this.fused(x, params, factors);
    // the (step, op) sub-batches and their factors are known up front: one upload for all
    const groups: { op: number; idx: number[] }[] = [];
    for (let step = 0; step < 4; step++) {
      for (let op = 0; op < 4; op++) {
        if (this.ranges[op] === null) continue;
        const idx = indicesOf(params.order.map((ord, i) => params.apply[i]! && ord[step] === op));
        if (idx.length > 0) groups.push({ op, idx });
      }
    }
    return tidy(() => {
      if (groups.length === 0) return same(x);
      const f = groups.flatMap((g) => pick(factors[g.op]!, g.idx));
      const [index, ratio, complement] = upload([groups.flatMap((g) => g.idx), f, f.map((r) => 1 - r)], x) as [
        Tensor,
        Tensor,
        Tensor,
      ];
      const index64 = index.to('int64');
      // one copy of the batch, then each sub-batch is written into it
      let y = x.clone();
      let off = 0;
      for (const g of groups) {
        const k = g.idx.length;
        const o = { inPlace: true, index: index64.narrow(0, off, k) };
        const fk = { ratio: ratio.narrow(0, off, k), complement: complement.narrow(0, off, k) };
        y = applyTo(y, g.idx, (sub) => JITTER_OPS[g.op]!(sub, fk), o);
        off += k;
      }
      return y;
    });
  }

  /** float32 on the CPU: each image's ops in one native pass each (colorJitterCpu). */
  private fused(x: Tensor, params: ColorJitterParams, factors: readonly (readonly number[])[]): Tensor {
    const n = params.apply.length;
    const order = new BigInt64Array(4 * n).fill(-1n);
    const ratio = new Float32Array(4 * n);
    const complement = new Float32Array(4 * n);
    for (let i = 0; i < n; i++) {
      for (let op = 0; op < 4; op++) {
        ratio[4 * i + op] = factors[op]![i]!;
        complement[4 * i + op] = 1 - factors[op]![i]!;
      }
      if (!params.apply[i]) continue;
      let k = 0;
      for (const op of params.order[i]!) if (this.ranges[op] !== null) order[4 * i + k++] = BigInt(op);
    }
    return tidy(() =>
      colorJitterCpu(
        x,
        tensor(order, { shape: [n, 4] }),
        tensor(ratio, { shape: [n, 4] }),
        tensor(complement, { shape: [n, 4] }),
      ),
    );
  }

  forward(x: Tensor): Tensor {
    return this.apply(x, this.sampleParams(dims(x, 'ColorJitter')[0]));
  }
}

/** Converts each image to grayscale (kept as 3 channels) with probability p. */
export class RandomGrayscale {
  constructor(readonly p = 0.1) {}

  sampleParams(n: number): boolean[] {
    return bernoulli(n, this.p);
  }

  apply(x: Tensor, flags: readonly boolean[]): Tensor {
    const [, c] = dims(x, 'RandomGrayscale');
    return tidy(() => applyTo(x, indicesOf(flags), (sub) => rgbToGrayscale(sub, c === 3 ? 3 : 1)));
  }

  forward(x: Tensor): Tensor {
    return this.apply(x, this.sampleParams(dims(x, 'RandomGrayscale')[0]));
  }
}

/**
 * Solarizes each image with probability p. The threshold is on the 0..1 scale and used as
 * `threshold * 255` for uint8; the default 128/255 is PIL's ImageOps.solarize default (MoCo v3,
 * BYOL).
 */
export class RandomSolarize {
  constructor(
    readonly p = 0.5,
    readonly threshold = 128 / 255,
  ) {}

  sampleParams(n: number): boolean[] {
    return bernoulli(n, this.p);
  }

  apply(x: Tensor, flags: readonly boolean[]): Tensor {
    return tidy(() => applyTo(x, indicesOf(flags), (sub) => solarize(sub, this.threshold * maxValue(x))));
  }

  forward(x: Tensor): Tensor {
    return this.apply(x, this.sampleParams(dims(x, 'RandomSolarize')[0]));
  }
}
