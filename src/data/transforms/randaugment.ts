// timm's RandAugment (rand_augment_transform, e.g. 'rand-m9-mstd0.5-inc1' as in the MAE/BEiT
// fine-tuning recipe) on image batches: per image, `numLayers` ops chosen uniformly (with
// replacement) from timm's op set, each applied with probability 0.5 at a magnitude drawn from
// N(m, mstd) clipped to [0, mmax], through timm's level-to-argument maps (random sign where timm
// negates). The ops are tensor ops (./ops.ts, torchvision semantics) instead of PIL's.
//
// Batched: for each layer, each op runs once on the sub-batch of images that drew it, with one
// argument per image, so a layer is at most 15 batched ops whatever the batch size.
import { tidy, type Tensor } from '../../torch/index.js';
import { adjustBrightness, adjustContrast, adjustSaturation, solarize } from './color.js';
import { applyTo, bernoulli, dims, maxValue, normal, randInts, uniform, indicesOf } from './common.js';
import {
  adjustSharpness,
  affine,
  autocontrast,
  equalize,
  invert,
  posterize,
  rotationMatrix,
  shearXMatrix,
  shearYMatrix,
  solarizeAdd,
  translateXMatrix,
  translateYMatrix,
  type GridInterpolation,
} from './ops.js';

/** timm's _RAND_TRANSFORMS. */
export const RAND_TRANSFORMS = [
  'AutoContrast',
  'Equalize',
  'Invert',
  'Rotate',
  'Posterize',
  'Solarize',
  'SolarizeAdd',
  'Color',
  'Contrast',
  'Brightness',
  'Sharpness',
  'ShearX',
  'ShearY',
  'TranslateXRel',
  'TranslateYRel',
] as const;

/** timm's _RAND_INCREASING_TRANSFORMS ('inc1'): severity grows with magnitude for every op. */
export const RAND_INCREASING_TRANSFORMS = [
  'AutoContrast',
  'Equalize',
  'Invert',
  'Rotate',
  'PosterizeIncreasing',
  'SolarizeIncreasing',
  'SolarizeAdd',
  'ColorIncreasing',
  'ContrastIncreasing',
  'BrightnessIncreasing',
  'SharpnessIncreasing',
  'ShearX',
  'ShearY',
  'TranslateXRel',
  'TranslateYRel',
] as const;

export type RandAugmentOp = (typeof RAND_TRANSFORMS)[number] | (typeof RAND_INCREASING_TRANSFORMS)[number];

const LEVEL_DENOM = 10;

/**
 * timm's LEVEL_TO_ARG: the op's argument at magnitude `level` (0..10 scale); `negate` is the coin
 * timm's _randomly_negate flips (ignored by unsigned ops). Null for ops without an argument.
 * Translations come back as a fraction of the image side.
 */
export function levelToArg(op: RandAugmentOp, level: number, negate: boolean, translatePct = 0.45): number | null {
  const f = level / LEVEL_DENOM;
  const sign = (v: number): number => (negate ? -v : v);
  switch (op) {
    case 'AutoContrast':
    case 'Equalize':
    case 'Invert':
      return null;
    case 'Rotate':
      return sign(f * 30);
    case 'Posterize':
      return Math.trunc(f * 4);
    case 'PosterizeIncreasing':
      return 4 - Math.trunc(f * 4);
    case 'Solarize':
      return Math.trunc(f * 256);
    case 'SolarizeIncreasing':
      return 256 - Math.trunc(f * 256);
    case 'SolarizeAdd':
      return Math.trunc(f * 110);
    case 'Color':
    case 'Contrast':
    case 'Brightness':
    case 'Sharpness':
      return f * 1.8 + 0.1;
    case 'ColorIncreasing':
    case 'ContrastIncreasing':
    case 'BrightnessIncreasing':
    case 'SharpnessIncreasing':
      return Math.max(0.1, 1 + sign(f * 0.9));
    case 'ShearX':
    case 'ShearY':
      return sign(f * 0.3);
    case 'TranslateXRel':
    case 'TranslateYRel':
      return sign(f * translatePct);
  }
}

export interface RandAugmentOpOptions {
  /** Fill for pixels the geometric ops bring in, on the 0..255 scale (timm's img_mean). */
  fill?: readonly number[];
  /** Resampling of the geometric ops; timm uses hparams.interpolation (bicubic in MAE). */
  interpolation?: GridInterpolation;
}

/** Applies one RandAugment op to every image of `x`, `args[i]` being image i's levelToArg. */
export function applyRandAugmentOp(
  op: RandAugmentOp,
  x: Tensor,
  args: readonly (number | null)[],
  o: RandAugmentOpOptions = {},
): Tensor {
  const [, c, h, w] = dims(x, op);
  const a = args as number[];
  const scale = maxValue(x) / 255;
  let fill = o.fill ?? [128, 128, 128];
  // a colour fill for single-channel images: its luma
  if (c === 1 && fill.length === 3) fill = [0.2989 * fill[0]! + 0.587 * fill[1]! + 0.114 * fill[2]!];
  const geo = { interpolation: o.interpolation ?? 'bicubic', fill: fill.map((v) => v * scale) };
  switch (op) {
    case 'AutoContrast':
      return autocontrast(x);
    case 'Equalize':
      return equalize(x);
    case 'Invert':
      return invert(x);
    case 'Rotate':
      return affine(x, a.map(rotationMatrix), geo);
    case 'Posterize':
    case 'PosterizeIncreasing':
      return posterize(x, a);
    case 'Solarize':
    case 'SolarizeIncreasing':
      return solarize(
        x,
        a.map((t) => t * scale),
      );
    case 'SolarizeAdd':
      return solarizeAdd(x, a);
    case 'Color':
    case 'ColorIncreasing':
      return adjustSaturation(x, a);
    case 'Contrast':
    case 'ContrastIncreasing':
      return adjustContrast(x, a);
    case 'Brightness':
    case 'BrightnessIncreasing':
      return adjustBrightness(x, a);
    case 'Sharpness':
    case 'SharpnessIncreasing':
      return adjustSharpness(x, a);
    case 'ShearX':
      return affine(
        x,
        a.map((f) => shearXMatrix(f, h)),
        geo,
      );
    case 'ShearY':
      return affine(
        x,
        a.map((f) => shearYMatrix(f, w)),
        geo,
      );
    case 'TranslateXRel':
      return affine(
        x,
        a.map((p) => translateXMatrix(p * w)),
        geo,
      );
    case 'TranslateYRel':
      return affine(
        x,
        a.map((p) => translateYMatrix(p * h)),
        geo,
      );
  }
}

export interface RandAugmentOptions extends RandAugmentOpOptions {
  /** The op set; default timm's increasing set (inc1). */
  ops?: readonly RandAugmentOp[];
  /** Ops per image (n); default 2. */
  numLayers?: number;
  /** Magnitude (m) on the 0..10 scale; default 9. */
  magnitude?: number;
  /** Std of the magnitude noise (mstd); Infinity draws uniformly in [0, m]; default 0.5. */
  magnitudeStd?: number;
  /** Upper clip of the magnitude (mmax); default 10. */
  magnitudeMax?: number;
  /** Probability that a chosen op is applied; default 0.5. */
  prob?: number;
  /** timm's translate_pct; default 0.45. */
  translatePct?: number;
}

export interface RandAugmentLayerParams {
  /** Index into the op set, per image. */
  op: number[];
  apply: boolean[];
  /** The clipped magnitude per image. */
  magnitude: number[];
  negate: boolean[];
}

export interface RandAugmentParams {
  layers: RandAugmentLayerParams[];
}

/** ImageNet's mean on the 0..255 scale, as timm's img_mean hparam: (124, 116, 104). */
export const IMAGENET_FILL = [124, 116, 104] as const;

export class RandAugment {
  readonly ops: readonly RandAugmentOp[];
  readonly numLayers: number;
  readonly magnitude: number;
  readonly magnitudeStd: number;
  readonly magnitudeMax: number;
  readonly prob: number;
  readonly translatePct: number;
  readonly opOptions: RandAugmentOpOptions;

  constructor(o: RandAugmentOptions = {}) {
    this.ops = o.ops ?? RAND_INCREASING_TRANSFORMS;
    this.numLayers = o.numLayers ?? 2;
    this.magnitude = o.magnitude ?? 9;
    this.magnitudeStd = o.magnitudeStd ?? 0.5;
    this.magnitudeMax = o.magnitudeMax ?? LEVEL_DENOM;
    this.prob = o.prob ?? 0.5;
    this.translatePct = o.translatePct ?? 0.45;
    this.opOptions = { fill: o.fill ?? IMAGENET_FILL, interpolation: o.interpolation ?? 'bicubic' };
  }

  sampleParams(n: number): RandAugmentParams {
    const layers: RandAugmentLayerParams[] = [];
    for (let l = 0; l < this.numLayers; l++) {
      const op = randInts(n, 0, this.ops.length);
      const apply = bernoulli(n, this.prob);
      let magnitude: number[];
      if (this.magnitudeStd === Infinity) magnitude = uniform(n, 0, this.magnitude);
      else if (this.magnitudeStd > 0) magnitude = normal(n, this.magnitude, this.magnitudeStd);
      else magnitude = new Array<number>(n).fill(this.magnitude);
      magnitude = magnitude.map((m) => Math.max(0, Math.min(m, this.magnitudeMax)));
      layers.push({ op, apply, magnitude, negate: bernoulli(n, 0.5) });
    }
    return { layers };
  }

  apply(x: Tensor, params: RandAugmentParams): Tensor {
    dims(x, 'RandAugment');
    return tidy(() => {
      // one copy of the batch, then each op's sub-batch is written into it
      let y = x.clone();
      for (const layer of params.layers) {
        this.ops.forEach((op, k) => {
          const idx = indicesOf(layer.op.map((o, i) => o === k && layer.apply[i]!));
          const run = (sub: Tensor, ix: readonly number[]): Tensor => {
            const args = ix.map((i) => levelToArg(op, layer.magnitude[i]!, layer.negate[i]!, this.translatePct));
            return applyRandAugmentOp(op, sub, args, this.opOptions);
          };
          y = applyTo(y, idx, run, { inPlace: true });
        });
      }
      return y;
    });
  }

  forward(x: Tensor): Tensor {
    return this.apply(x, this.sampleParams(dims(x, 'RandAugment')[0]));
  }
}

/**
 * A RandAugment from timm's config string: 'rand' then dash-separated sections m (magnitude),
 * n (layers), mstd (magnitude std; above 100 means uniform), mmax (magnitude clip), inc (1: the
 * increasing op set), p (op probability). timm's weighted op choice ('w') is not supported.
 */
export function randAugmentFromString(
  config: string,
  o: RandAugmentOpOptions & { translatePct?: number } = {},
): RandAugment {
  const parts = config.split('-');
  if (parts[0] !== 'rand') throw new RangeError(`randAugmentFromString: '${config}' does not start with 'rand'`);
  const opts: RandAugmentOptions = { ...o, magnitude: LEVEL_DENOM, magnitudeStd: 0, ops: RAND_TRANSFORMS };
  for (const section of parts.slice(1)) {
    const m = /^([a-z]+)(\d.*)$/.exec(section);
    if (!m) continue;
    const [, key, val] = m as unknown as [string, string, string];
    const v = Number(val);
    if (Number.isNaN(v)) throw new RangeError(`randAugmentFromString: bad value in section '${section}'`);
    if (key === 'm') opts.magnitude = v;
    else if (key === 'n') opts.numLayers = v;
    else if (key === 'mstd') opts.magnitudeStd = v > 100 ? Infinity : v;
    else if (key === 'mmax') opts.magnitudeMax = v;
    // (timm tests the section's string, so its 'inc0' also selects the increasing set; here 0 means no)
    else if (key === 'inc') opts.ops = v ? RAND_INCREASING_TRANSFORMS : RAND_TRANSFORMS;
    else if (key === 'p') opts.prob = v;
    else throw new RangeError(`randAugmentFromString: unknown section '${section}' (known: m, n, mstd, mmax, inc, p)`);
  }
  return new RandAugment(opts);
}
