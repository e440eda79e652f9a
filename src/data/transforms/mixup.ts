// timm's Mixup in 'batch' mode (the MAE/DeiT fine-tuning recipe: mixup 0.8, cutmix 1.0, switch
// probability 0.5, label smoothing 0.1): one lambda and, for cutmix, one box per batch; each image
// is mixed with its mirror in the batch (x.flip(0)), and the targets become smoothed one-hots
// mixed with the same lambda, so every row sums to 1.
import { full, tidy, type Tensor } from '../../torch/index.js';
import { dims, randInt, same, uniform } from './common.js';
import { sampleBeta } from './random.js';

/** A cutmix box as timm's (yl, yh, xl, xh): rows yl..yh-1, columns xl..xh-1. */
export interface CutmixBox {
  yl: number;
  yh: number;
  xl: number;
  xh: number;
}

export interface MixupParams {
  /** Weight of each image itself (1: no mixing); for cutmix, the area share outside the box. */
  lam: number;
  useCutmix: boolean;
  box: CutmixBox | null;
}

export interface MixupOptions {
  numClasses: number;
  /** Beta(alpha, alpha) for mixup's lambda; 0 disables mixup; default 0.8. */
  mixupAlpha?: number;
  /** Beta(alpha, alpha) for cutmix's lambda; 0 disables cutmix; default 1. */
  cutmixAlpha?: number;
  /** Box side range as fractions of the image side, instead of lambda's box; default none. */
  cutmixMinmax?: readonly [number, number] | null;
  /** Probability of mixing a batch at all; default 1. */
  prob?: number;
  /** Probability of cutmix rather than mixup when both are on; default 0.5. */
  switchProb?: number;
  /** Recompute lambda from the clipped box's area; default true. */
  correctLam?: boolean;
  /** Label smoothing of the targets; default 0.1. */
  labelSmoothing?: number;
}

/**
 * Smoothed one-hot targets of `target` (int64 class indices) mixed with those of its mirror
 * target.flip(0): lam * y + (1 - lam) * y.flip(0), float32 on `device`.
 */
export function mixupTarget(target: Tensor, numClasses: number, lam: number, smoothing = 0, device?: string): Tensor {
  return tidy(() => {
    const off = smoothing / numClasses;
    const on = 1 - smoothing + off;
    const dev = device ?? target.device;
    const t = target.to({ dtype: 'int64', device: dev }).view(-1, 1);
    const oneHot = (idx: Tensor): Tensor => full([idx.shape[0]!, numClasses], off, { device: dev }).scatter(1, idx, on);
    return oneHot(t)
      .mul(lam)
      .add(oneHot(t.flip(0)).mul(1 - lam));
  });
}

/**
 * timm's rand_bbox / rand_bbox_minmax and lambda correction for an h x w image: a box of side
 * sqrt(1 - lam) of the image's around a uniform centre, clipped to the image.
 */
export function cutmixBox(
  h: number,
  w: number,
  lam: number,
  minmax: readonly [number, number] | null = null,
  correctLam = true,
): { box: CutmixBox; lam: number } {
  let box: CutmixBox;
  if (minmax) {
    const cutH = randInt(Math.trunc(h * minmax[0]), Math.trunc(h * minmax[1]));
    const cutW = randInt(Math.trunc(w * minmax[0]), Math.trunc(w * minmax[1]));
    const yl = randInt(0, h - cutH);
    const xl = randInt(0, w - cutW);
    box = { yl, yh: yl + cutH, xl, xh: xl + cutW };
  } else {
    const ratio = Math.sqrt(1 - lam);
    const cutH = Math.trunc(h * ratio);
    const cutW = Math.trunc(w * ratio);
    const cy = randInt(0, h);
    const cx = randInt(0, w);
    const clip = (v: number, hi: number): number => Math.min(Math.max(v, 0), hi);
    box = {
      yl: clip(cy - Math.floor(cutH / 2), h),
      yh: clip(cy + Math.floor(cutH / 2), h),
      xl: clip(cx - Math.floor(cutW / 2), w),
      xh: clip(cx + Math.floor(cutW / 2), w),
    };
  }
  if (correctLam || minmax) lam = 1 - ((box.yh - box.yl) * (box.xh - box.xl)) / (h * w);
  return { box, lam };
}

export class Mixup {
  readonly numClasses: number;
  readonly mixupAlpha: number;
  readonly cutmixAlpha: number;
  readonly cutmixMinmax: readonly [number, number] | null;
  readonly prob: number;
  readonly switchProb: number;
  readonly correctLam: boolean;
  readonly labelSmoothing: number;
  /** Set false to pass batches through unmixed (targets still smoothed), as timm's mixup_enabled. */
  enabled = true;

  constructor(o: MixupOptions) {
    if (!(Number.isInteger(o.numClasses) && o.numClasses > 0)) throw new RangeError('Mixup: numClasses must be set');
    this.numClasses = o.numClasses;
    this.mixupAlpha = o.mixupAlpha ?? 0.8;
    this.cutmixMinmax = o.cutmixMinmax ?? null;
    // timm forces cutmix alpha 1 when a min/max box range is given
    this.cutmixAlpha = this.cutmixMinmax ? 1 : (o.cutmixAlpha ?? 1);
    this.prob = o.prob ?? 1;
    this.switchProb = o.switchProb ?? 0.5;
    this.correctLam = o.correctLam ?? true;
    this.labelSmoothing = o.labelSmoothing ?? 0.1;
    if (!(this.mixupAlpha > 0 || this.cutmixAlpha > 0))
      throw new RangeError('Mixup: mixupAlpha or cutmixAlpha must be > 0');
  }

  /** timm's _params_per_batch, plus the cutmix box for an h x w batch. */
  sampleParams(h: number, w: number): MixupParams {
    if (!this.enabled || !(this.prob >= 1 || uniform(1)[0]! < this.prob))
      return { lam: 1, useCutmix: false, box: null };
    let useCutmix: boolean;
    if (this.mixupAlpha > 0 && this.cutmixAlpha > 0) useCutmix = uniform(1)[0]! < this.switchProb;
    else useCutmix = this.cutmixAlpha > 0;
    const alpha = useCutmix ? this.cutmixAlpha : this.mixupAlpha;
    const lam = sampleBeta(alpha, alpha);
    if (!useCutmix || lam === 1) return { lam, useCutmix, box: null };
    const { box, lam: corrected } = cutmixBox(h, w, lam, this.cutmixMinmax, this.correctLam);
    return { lam: corrected, useCutmix, box };
  }

  /** Mixes the batch (even size) and its int64 targets with the given parameters. */
  apply(x: Tensor, target: Tensor, params: MixupParams): { x: Tensor; target: Tensor } {
    const [n] = dims(x, 'Mixup');
    if (n % 2 !== 0) throw new RangeError(`Mixup: the batch size must be even, got ${n}`);
    return tidy(() => {
      let out: Tensor;
      if (params.lam === 1 && params.box === null) {
        out = same(x);
      } else if (params.useCutmix && params.box) {
        const { yl, yh, xl, xh } = params.box;
        out = x.clone();
        if (yh > yl && xh > xl) {
          const region = (t: Tensor): Tensor => t.narrow(2, yl, yh - yl).narrow(3, xl, xh - xl);
          region(out).copy_(region(x.flip(0)));
        }
      } else {
        out = x.mul(params.lam).add(x.flip(0).mul(1 - params.lam));
      }
      return { x: out, target: mixupTarget(target, this.numClasses, params.lam, this.labelSmoothing, x.device) };
    });
  }

  forward(x: Tensor, target: Tensor): { x: Tensor; target: Tensor } {
    const [, , h, w] = dims(x, 'Mixup');
    return this.apply(x, target, this.sampleParams(h, w));
  }
}
