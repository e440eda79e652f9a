// The paper's three pre-training augmentation strategies (§4.1), each turning a batch of images
// into two views:
//
// - strong: MoCo v3 / BYOL's recipe — two independent RandomResizedCrops, colour jitter, grayscale,
//   Gaussian blur on both (p 1.0 / 0.1) and solarize on the second (p 0 / 0.2), flip.
// - medium: one crop of 256/224 the output size, then two output-size crops along its diagonal at
//   a random distance of 0..32/224 of the size (after CMAE's pixel shift), then colour augmentation.
// - light: one shared crop (+ flip), colour augmentation applied twice independently.
//
// Where the paper is silent this follows MoCo v3's main_moco.py: crop scale (0.08, 1) (its ViT
// setting, --crop-min 0.08), ColorJitter(0.4, 0.4, 0.2, 0.1) with p 0.8, grayscale p 0.2,
// blur sigma in [0.1, 2], solarize at PIL's threshold 128, flip p 0.5, ImageNet normalisation.
// "Colour augmentation" in medium/light is read as the jitter + grayscale the paper names for
// strong (blur and solarize are listed separately there); both can be switched on by option. The
// Gaussian kernel is the odd size nearest a tenth of the side (23 at 224: SimCLR/BYOL's), since
// MoCo v3 blurs with PIL's radius-sigma filter, which has no kernel size. The medium and light
// strategies flip the shared crop once (so both views keep the same geometry).
import { cat, tidy, type Tensor } from '../../torch/index.js';
import { GaussianBlur, blurKernelFor, type GaussianBlurParams } from './blur.js';
import {
  ColorJitter,
  IMAGENET_MEAN,
  IMAGENET_STD,
  RandomGrayscale,
  RandomSolarize,
  normalize,
  type ColorJitterOptions,
  type ColorJitterParams,
  type Range,
} from './color.js';
import { bernoulli, dims, randInts, uniform, type Box, type Interpolation } from './common.js';
import { RandomHorizontalFlip, RandomResizedCrop, toFloat } from './geometry.js';

export type PretrainStrategy = 'strong' | 'medium' | 'light';

export interface ViewPair {
  view1: Tensor;
  view2: Tensor;
}

export interface PretrainAugmentationOptions {
  /** Output side; default 224. */
  size?: number;
  /** RandomResizedCrop area range; default [0.08, 1]. */
  scale?: Range;
  ratio?: Range;
  interpolation?: Interpolation;
  /** Antialiased downsampling in the crop's resize; default true (PIL, which MoCo v3 used, always is). */
  antialias?: boolean;
  flipP?: number;
  /** Colour jitter (with its apply probability p); null for none. */
  jitter?: ColorJitterOptions | null;
  grayscaleP?: number;
  /** Blur probability per view. */
  blurP?: readonly [number, number];
  blurSigma?: Range;
  /** Blur kernel size; default the odd size nearest size / 10. */
  blurKernel?: number;
  /** Solarize probability per view. */
  solarizeP?: readonly [number, number];
  /** Final normalisation; null leaves the views in [0, 1]. Default ImageNet's mean and std. */
  normalize?: { mean: readonly number[]; std: readonly number[] } | null;
  /** medium: the shared crop's side over the output side; default 256/224. */
  outerScale?: number;
  /** medium: the largest diagonal distance between the two views, as a fraction of the size; default 32/224. */
  maxShift?: number;
}

const MOCO_JITTER: ColorJitterOptions = { brightness: 0.4, contrast: 0.4, saturation: 0.2, hue: 0.1, p: 0.8 };

export interface ColorAugmentationParams {
  jitter: ColorJitterParams;
  grayscale: boolean[];
  blur: GaussianBlurParams;
  solarize: boolean[];
}

/** One view's colour pipeline: jitter, grayscale, blur, solarize (MoCo v3's order). */
export class ColorAugmentation {
  readonly jitter: ColorJitter | null;
  readonly grayscale: RandomGrayscale;
  readonly blur: GaussianBlur;
  readonly solarize: RandomSolarize;

  constructor(o: {
    jitter: ColorJitterOptions | null;
    grayscaleP: number;
    blurP: number;
    blurSigma: Range;
    blurKernel: number;
    solarizeP: number;
  }) {
    this.jitter = o.jitter ? new ColorJitter(o.jitter) : null;
    this.grayscale = new RandomGrayscale(o.grayscaleP);
    this.blur = new GaussianBlur(o.blurKernel, { sigma: o.blurSigma, p: o.blurP });
    this.solarize = new RandomSolarize(o.solarizeP);
  }

  sampleParams(n: number): ColorAugmentationParams {
    return {
      jitter: this.jitter ? this.jitter.sampleParams(n) : new ColorJitter({ p: 0 }).sampleParams(n),
      grayscale: this.grayscale.sampleParams(n),
      blur: this.blur.sampleParams(n),
      solarize: this.solarize.sampleParams(n),
    };
  }

  apply(x: Tensor, p: ColorAugmentationParams): Tensor {
    return tidy(() => {
      let y = this.jitter ? this.jitter.apply(x, p.jitter) : x;
      y = this.grayscale.apply(y, p.grayscale);
      y = this.blur.apply(y, p.blur);
      return this.solarize.apply(y, p.solarize);
    });
  }
}

interface Common {
  size: number;
  flip: RandomHorizontalFlip;
  colors: [ColorAugmentation, ColorAugmentation];
  norm: { mean: readonly number[]; std: readonly number[] } | null;
  interpolation: Interpolation;
}

function common(
  o: PretrainAugmentationOptions,
  blurP: readonly [number, number],
  solarizeP: readonly [number, number],
): Common {
  const size = o.size ?? 224;
  const view = (v: 0 | 1): ColorAugmentation =>
    new ColorAugmentation({
      jitter: o.jitter === undefined ? MOCO_JITTER : o.jitter,
      grayscaleP: o.grayscaleP ?? 0.2,
      blurP: (o.blurP ?? blurP)[v],
      blurSigma: o.blurSigma ?? [0.1, 2],
      blurKernel: o.blurKernel ?? blurKernelFor(size),
      solarizeP: (o.solarizeP ?? solarizeP)[v],
    });
  return {
    size,
    flip: new RandomHorizontalFlip(o.flipP ?? 0.5),
    colors: [view(0), view(1)],
    norm: o.normalize === undefined ? { mean: IMAGENET_MEAN, std: IMAGENET_STD } : o.normalize,
    interpolation: o.interpolation ?? 'bilinear',
  };
}

function cropper(o: PretrainAugmentationOptions, size: number): RandomResizedCrop {
  return new RandomResizedCrop(size, {
    scale: o.scale ?? [0.08, 1],
    ratio: o.ratio ?? [3 / 4, 4 / 3],
    interpolation: o.interpolation ?? 'bilinear',
    antialias: o.antialias ?? true,
  });
}

/** Bicubic can overshoot: views are kept in [0, 1] for the colour ops (PIL's crops are). */
const inRange = (x: Tensor, c: Common): Tensor => (c.interpolation === 'bicubic' ? x.clamp(0, 1) : x);

/** Colour augmentation, then normalisation, of one view. */
function finish(x: Tensor, c: Common, v: 0 | 1, p: ColorAugmentationParams): Tensor {
  const y = c.colors[v].apply(x, p);
  return c.norm ? normalize(y, c.norm.mean, c.norm.std) : y;
}

export interface StrongParams {
  crops: [Box[], Box[]];
  flips: [boolean[], boolean[]];
  colors: [ColorAugmentationParams, ColorAugmentationParams];
}

export class StrongAugmentation {
  readonly strategy = 'strong' as const;
  private readonly c: Common;
  readonly crop: RandomResizedCrop;

  constructor(o: PretrainAugmentationOptions = {}) {
    this.c = common(o, [1, 0.1], [0, 0.2]);
    this.crop = cropper(o, this.c.size);
  }

  sampleParams(n: number, height: number, width: number): StrongParams {
    return {
      crops: [this.crop.sampleParams(n, height, width), this.crop.sampleParams(n, height, width)],
      flips: [this.c.flip.sampleParams(n), this.c.flip.sampleParams(n)],
      colors: [this.c.colors[0].sampleParams(n), this.c.colors[1].sampleParams(n)],
    };
  }

  apply(x: Tensor, p: StrongParams): ViewPair {
    return tidy(() => {
      const img = toFloat(x);
      const view = (v: 0 | 1): Tensor => {
        const crop = this.c.flip.apply(inRange(this.crop.apply(img, p.crops[v]), this.c), p.flips[v]);
        return finish(crop, this.c, v, p.colors[v]);
      };
      return { view1: view(0), view2: view(1) };
    });
  }

  forward(x: Tensor): ViewPair {
    const [n, , h, w] = dims(x, 'StrongAugmentation');
    return this.apply(x, this.sampleParams(n, h, w));
  }
}

export interface MediumParams {
  /** The shared outer crop (256/224 of the size) and its flip. */
  crop: Box[];
  flip: boolean[];
  /** Per view, the top-left offset (same along both axes: the diagonal) inside the outer crop. */
  offsets: [number[], number[]];
  colors: [ColorAugmentationParams, ColorAugmentationParams];
}

export class MediumAugmentation {
  readonly strategy = 'medium' as const;
  private readonly c: Common;
  readonly crop: RandomResizedCrop;
  readonly outerSize: number;
  readonly maxShift: number;

  constructor(o: PretrainAugmentationOptions = {}) {
    this.c = common(o, [0, 0], [0, 0]);
    this.outerSize = Math.round(this.c.size * (o.outerScale ?? 256 / 224));
    this.maxShift = Math.min(this.outerSize - this.c.size, Math.round(this.c.size * (o.maxShift ?? 32 / 224)));
    this.crop = cropper(o, this.outerSize);
  }

  sampleParams(n: number, height: number, width: number): MediumParams {
    // distance d uniform in 0..maxShift, the pair's start uniform where both fit, order random
    const d = randInts(n, 0, this.maxShift + 1);
    const room = this.outerSize - this.c.size;
    const start = uniform(n).map((u, i) => Math.min(room - d[i]!, Math.floor(u * (room - d[i]! + 1))));
    const swap = bernoulli(n, 0.5);
    const a = start.map((s, i) => (swap[i] ? s + d[i]! : s));
    const b = start.map((s, i) => (swap[i] ? s : s + d[i]!));
    return {
      crop: this.crop.sampleParams(n, height, width),
      flip: this.c.flip.sampleParams(n),
      offsets: [a, b],
      colors: [this.c.colors[0].sampleParams(n), this.c.colors[1].sampleParams(n)],
    };
  }

  apply(x: Tensor, p: MediumParams): ViewPair {
    const s = this.c.size;
    return tidy(() => {
      const outer = this.c.flip.apply(inRange(this.crop.apply(toFloat(x), p.crop), this.c), p.flip);
      const view = (v: 0 | 1): Tensor => {
        // a different offset per image: one narrow per image, joined
        const parts = p.offsets[v].map((o, i) => outer.narrow(0, i, 1).narrow(2, o, s).narrow(3, o, s));
        return finish(cat(parts, 0), this.c, v, p.colors[v]);
      };
      return { view1: view(0), view2: view(1) };
    });
  }

  forward(x: Tensor): ViewPair {
    const [n, , h, w] = dims(x, 'MediumAugmentation');
    return this.apply(x, this.sampleParams(n, h, w));
  }
}

export interface LightParams {
  /** The one crop both views share, and its flip. */
  crop: Box[];
  flip: boolean[];
  colors: [ColorAugmentationParams, ColorAugmentationParams];
}

export class LightAugmentation {
  readonly strategy = 'light' as const;
  private readonly c: Common;
  readonly crop: RandomResizedCrop;

  constructor(o: PretrainAugmentationOptions = {}) {
    this.c = common(o, [0, 0], [0, 0]);
    this.crop = cropper(o, this.c.size);
  }

  sampleParams(n: number, height: number, width: number): LightParams {
    return {
      crop: this.crop.sampleParams(n, height, width),
      flip: this.c.flip.sampleParams(n),
      colors: [this.c.colors[0].sampleParams(n), this.c.colors[1].sampleParams(n)],
    };
  }

  apply(x: Tensor, p: LightParams): ViewPair {
    return tidy(() => {
      const shared = this.c.flip.apply(inRange(this.crop.apply(toFloat(x), p.crop), this.c), p.flip);
      return { view1: finish(shared, this.c, 0, p.colors[0]), view2: finish(shared, this.c, 1, p.colors[1]) };
    });
  }

  forward(x: Tensor): ViewPair {
    const [n, , h, w] = dims(x, 'LightAugmentation');
    return this.apply(x, this.sampleParams(n, h, w));
  }
}

export type PretrainAugmentation = StrongAugmentation | MediumAugmentation | LightAugmentation;

/** The strategy by name. */
export function pretrainAugmentation(
  strategy: PretrainStrategy,
  o: PretrainAugmentationOptions = {},
): PretrainAugmentation {
  switch (strategy) {
    case 'strong':
      return new StrongAugmentation(o);
    case 'medium':
      return new MediumAugmentation(o);
    case 'light':
      return new LightAugmentation(o);
    default:
      throw new RangeError(`pretrainAugmentation: unknown strategy '${String(strategy)}' (strong, medium, light)`);
  }
}
