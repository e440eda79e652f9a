// Fine-tuning and evaluation preprocessing, as MAE's main_finetune.py builds them with timm's
// create_transform: training is RandomResizedCrop (bicubic) -> flip -> RandAugment
// ('rand-m9-mstd0.5-inc1') -> to float -> normalise -> RandomErasing (0.25, 'pixel'); mixup/cutmix
// (./mixup.ts) then acts on the batch together with its labels. Evaluation resizes the shorter
// edge to size / 0.875 (bicubic) and centre-crops.
import { tidy, type Tensor } from '../../torch/index.js';
import { IMAGENET_MEAN, IMAGENET_STD, normalize } from './color.js';
import { dims, type Interpolation } from './common.js';
import { RandomErasing, type RandomErasingOptions } from './erasing.js';
import { RandomHorizontalFlip, RandomResizedCrop, ResizeCenterCrop, toFloat } from './geometry.js';
import { RandAugment, randAugmentFromString, type RandAugmentParams } from './randaugment.js';
import type { Box } from './common.js';

export interface FinetuneAugmentationOptions {
  size?: number;
  scale?: readonly [number, number];
  ratio?: readonly [number, number];
  interpolation?: Interpolation;
  antialias?: boolean;
  flipP?: number;
  /** timm's RandAugment config string; null for none. Default 'rand-m9-mstd0.5-inc1'. */
  randAugment?: string | null;
  /** Random erasing; null for none. Default probability 0.25, mode 'pixel', one box. */
  erasing?: RandomErasingOptions | null;
  mean?: readonly number[];
  std?: readonly number[];
}

export interface FinetuneParams {
  crop: Box[];
  flip: boolean[];
  randAugment: RandAugmentParams | null;
  erasing: Box[][] | null;
}

export class FinetuneAugmentation {
  readonly crop: RandomResizedCrop;
  readonly flip: RandomHorizontalFlip;
  readonly randAugment: RandAugment | null;
  readonly erasing: RandomErasing | null;
  readonly mean: readonly number[];
  readonly std: readonly number[];

  constructor(o: FinetuneAugmentationOptions = {}) {
    const size = o.size ?? 224;
    this.crop = new RandomResizedCrop(size, {
      scale: o.scale ?? [0.08, 1],
      ratio: o.ratio ?? [3 / 4, 4 / 3],
      interpolation: o.interpolation ?? 'bicubic',
      antialias: o.antialias ?? true,
    });
    this.flip = new RandomHorizontalFlip(o.flipP ?? 0.5);
    this.mean = o.mean ?? IMAGENET_MEAN;
    this.std = o.std ?? IMAGENET_STD;
    const ra = o.randAugment === undefined ? 'rand-m9-mstd0.5-inc1' : o.randAugment;
    // timm's hparams in MAE: fill = the mean on the 0..255 scale, the crop's interpolation
    const fill = this.mean.map((m) => Math.min(255, Math.round(255 * m)));
    this.randAugment = ra
      ? randAugmentFromString(ra, {
          fill,
          interpolation: o.interpolation ?? 'bicubic',
        })
      : null;
    this.erasing = o.erasing === null ? null : new RandomErasing({ probability: 0.25, mode: 'pixel', ...o.erasing });
  }

  sampleParams(n: number, height: number, width: number): FinetuneParams {
    const [s] = this.crop.size;
    return {
      crop: this.crop.sampleParams(n, height, width),
      flip: this.flip.sampleParams(n),
      randAugment: this.randAugment ? this.randAugment.sampleParams(n) : null,
      erasing: this.erasing ? this.erasing.sampleParams(n, s, this.crop.size[1]) : null,
    };
  }

  /** uint8 or float images in, normalised float32 out. */
  apply(x: Tensor, p: FinetuneParams): Tensor {
    return tidy(() => {
      let y = this.flip.apply(this.crop.apply(x, p.crop), p.flip);
      // float bicubic crops can overshoot [0, 1] (uint8 ones are clamped, as PIL's are)
      if (y.dtype !== 'uint8' && this.crop.resizeOptions.interpolation === 'bicubic') y = y.clamp(0, 1);
      if (this.randAugment && p.randAugment) y = this.randAugment.apply(y, p.randAugment);
      y = normalize(toFloat(y), this.mean, this.std);
      if (this.erasing && p.erasing) y = this.erasing.apply(y, p.erasing);
      return y;
    });
  }

  forward(x: Tensor): Tensor {
    const [n, , h, w] = dims(x, 'FinetuneAugmentation');
    return this.apply(x, this.sampleParams(n, h, w));
  }
}

export interface EvalTransformOptions {
  size?: number;
  /** The centre crop's share of the resized image; default 224/256. */
  cropPct?: number;
  interpolation?: Interpolation;
  antialias?: boolean;
  /** a batch already size × size skips the resize (ResizeCenterCrop's passCropSized); default false */
  passSized?: boolean;
  mean?: readonly number[];
  std?: readonly number[];
}

/** Resize the shorter edge to size / cropPct, centre-crop to size, to float, normalise. */
export class EvalTransform {
  readonly resizeCrop: ResizeCenterCrop;
  readonly mean: readonly number[];
  readonly std: readonly number[];

  constructor(o: EvalTransformOptions = {}) {
    const size = o.size ?? 224;
    const resizeTo = Math.trunc(size / (o.cropPct ?? 224 / 256));
    this.resizeCrop = new ResizeCenterCrop(resizeTo, size, {
      interpolation: o.interpolation ?? 'bicubic',
      antialias: o.antialias ?? true,
      passCropSized: o.passSized ?? false,
    });
    this.mean = o.mean ?? IMAGENET_MEAN;
    this.std = o.std ?? IMAGENET_STD;
  }

  forward(x: Tensor): Tensor {
    return tidy(() => normalize(toFloat(this.resizeCrop.forward(x)), this.mean, this.std));
  }
}
