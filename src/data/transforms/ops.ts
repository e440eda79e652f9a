// The pixel and geometric ops RandAugment draws from, batched with one argument per image, with
// torchvision's functional_tensor (0.14) semantics where torchvision has the op. Posterize and
// equalize are defined on 8-bit levels: float batches are quantised to round(255 x) for them.
import {
  cat,
  F,
  linspace,
  ones,
  onesLike,
  stack,
  tensor,
  tidy,
  where as select,
  zeros,
  type Tensor,
} from '../../torch/index.js';
import { blend, type Factors, type HostFactors } from './color.js';
import { castBack, dims, floatType, maxValue, perImage, same } from './common.js';

/** Bound minus the pixel value. */
export const invert = (x: Tensor): Tensor => x.rsub(maxValue(x));

/** Stretches each channel of each image to the full range (torchvision's autocontrast). */
export function autocontrast(x: Tensor): Tensor {
  dims(x, 'autocontrast');
  return tidy(() => {
    const bound = maxValue(x);
    const ft = floatType(x);
    const lo = x.amin([-2, -1], true).to(ft);
    const hi = x.amax([-2, -1], true).to(ft);
    const scale = hi.sub(lo).reciprocal().mul(bound);
    const flat = scale.isfinite().logicalNot();
    const lo2 = select(flat, 0, lo);
    const scale2 = select(flat, 1, scale);
    return castBack(x.sub(lo2).mul(scale2).clamp(0, bound), x.dtype, 'trunc');
  });
}

/** The batch on 0..255 integer levels (uint8 as is; floats rounded from 255 x). */
const levels = (x: Tensor): Tensor => (x.dtype === 'uint8' ? x : x.mul(255).round().clamp(0, 255).to('uint8'));
/** Back from 0..255 levels to the batch's dtype. */
const fromLevels = (y: Tensor, like: Tensor): Tensor => (like.dtype === 'uint8' ? y : y.to(like.dtype).div(255));

/**
 * Histogram equalisation per channel of each image (torchvision's equalize, PIL's algorithm): all
 * channels of the batch at once, histograms by scatter-add, lookup tables by cumsum and gather.
 */
export function equalize(x: Tensor): Tensor {
  const [n, c, h, w] = dims(x, 'equalize');
  return tidy(() => {
    const v = levels(x)
      .reshape(n * c, h * w)
      .to('int64');
    const hist = zeros([n * c, 256], { dtype: 'int64', device: x.device }).scatterAdd(1, v, onesLike(v));
    // PIL's step: the pixels outside the brightest level present, over 255
    const lastCount = hist.gather(1, v.amax(1, true));
    const step = lastCount.rsub(h * w).div(255, 'floor');
    const flat = step.eq(0);
    const lut0 = hist
      .cumsum(1)
      .add(step.div(2, 'floor'))
      .div(select(flat, 1, step), 'floor');
    const lut = cat([zeros([n * c, 1], { dtype: 'int64', device: x.device }), lut0.narrow(1, 0, 255)], 1).clamp(0, 255);
    const out = select(flat, v, lut.gather(1, v));
    return fromLevels(out.to('uint8').reshape(n, c, h, w), x);
  });
}

/** Keeps the top `bits` bits of each 8-bit level (one count per image or for the batch). */
export function posterize(x: Tensor, bits: HostFactors): Tensor {
  dims(x, 'posterize');
  return tidy(() => {
    const bs = typeof bits === 'number' ? [bits] : bits;
    for (const b of bs) if (!(Number.isInteger(b) && b >= 0 && b <= 8)) throw new RangeError(`posterize: bits ${b}`);
    const q =
      typeof bits === 'number'
        ? 2 ** (8 - bits)
        : perImage(
            bits.map((b) => 2 ** (8 - b)),
            x,
          );
    const v = levels(x).to('float32');
    return fromLevels(v.div(q).floor().mul(q).to('uint8'), x);
  });
}

/**
 * timm's solarize_add: adds `add` (on the 0..255 scale) to levels below `threshold` (0..255),
 * saturating at the top.
 */
export function solarizeAdd(x: Tensor, add: HostFactors, threshold = 128): Tensor {
  dims(x, 'solarizeAdd');
  return tidy(() => {
    const bound = maxValue(x);
    const k = bound / 255;
    const a =
      typeof add === 'number'
        ? add * k
        : perImage(
            add.map((v) => v * k),
            x,
          );
    const added = castBack(x.to(floatType(x)).add(a).clamp(null, bound), x.dtype, 'trunc');
    return select(x.lt(threshold * k), added, x);
  });
}

/** Blends each image with its 3x3 smoothed version (torchvision's adjust_sharpness). */
export function adjustSharpness(x: Tensor, factor: Factors): Tensor {
  const [, c, h, w] = dims(x, 'adjustSharpness');
  if (h <= 2 || w <= 2) return same(x);
  return tidy(() => {
    const ft = floatType(x);
    const kernel = tensor([1, 1, 1, 1, 5, 1, 1, 1, 1], { dtype: ft, device: x.device })
      .div(13)
      .view(1, 1, 3, 3)
      .expand(c, 1, 3, 3);
    const smooth = castBack(F.conv2d(x.to(ft), kernel, null, { groups: c }), x.dtype, 'round');
    const degenerate = x.clone();
    degenerate
      .narrow(2, 1, h - 2)
      .narrow(3, 1, w - 2)
      .copy_(smooth);
    return blend(x, degenerate, factor);
  });
}

export type GridInterpolation = 'nearest' | 'bilinear' | 'bicubic';

export interface AffineOptions {
  interpolation?: GridInterpolation;
  /** Value outside the image: one number, or one per channel, on the batch's scale; null leaves zeros. */
  fill?: number | readonly number[] | null;
}

/**
 * Resamples each image through its own affine map: `matrices[i]` = [a, b, c, d, e, f] takes an
 * output pixel centre (x, y), measured from the image centre, to the input point
 * (a x + b y + c, d x + e y + f) — torchvision's inverse matrix for F.affine / F.rotate. The
 * grids of all images come from one batched matmul and one grid_sample; the fill colour is
 * blended in through a coverage channel, as torchvision does. Bicubic results are clamped.
 */
export function affine(x: Tensor, matrices: readonly (readonly number[])[], o: AffineOptions = {}): Tensor {
  const [n, c, h, w] = dims(x, 'affine');
  if (matrices.length !== n || matrices.some((m) => m.length !== 6)) {
    throw new RangeError(`affine: expected ${n} matrices of 6 numbers`);
  }
  const mode = o.interpolation ?? 'bilinear';
  const fill = o.fill === undefined ? null : o.fill;
  return tidy(() => {
    const ft = floatType(x);
    const dev = x.device;
    let img = x.to(ft);
    const theta = tensor(matrices.flat() as number[], { dtype: ft, device: dev, shape: [n, 2, 3] });
    const xs = linspace(-w * 0.5 + 0.5, w * 0.5 + 0.5 - 1, w, { dtype: ft, device: dev });
    const ys = linspace(-h * 0.5 + 0.5, h * 0.5 + 0.5 - 1, h, { dtype: ft, device: dev });
    const base = stack(
      [xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w), ones([h, w], { dtype: ft, device: dev })],
      -1,
    )
      .view(1, h * w, 3)
      .expand(n, h * w, 3);
    const halfSize = tensor([0.5 * w, 0.5 * h], { dtype: ft, device: dev });
    const grid = base.bmm(theta.transpose(1, 2).div(halfSize)).view(n, h, w, 2);
    if (fill !== null) img = cat([img, ones([n, 1, h, w], { dtype: ft, device: dev })], 1);
    let out = F.gridSample(img, grid, { mode, paddingMode: 'zeros', alignCorners: false });
    if (fill !== null) {
      const mask = out.narrow(1, c, 1).expand(n, c, h, w);
      out = out.narrow(1, 0, c);
      const fills = typeof fill === 'number' ? [fill] : fill;
      if (fills.length !== 1 && fills.length !== c)
        throw new RangeError(`affine: ${fills.length} fill values for ${c} channels`);
      const fillT = tensor(fills as number[], { dtype: ft, device: dev }).view(1, fills.length, 1, 1);
      out =
        mode === 'nearest'
          ? select(mask.lt(0.5), fillT.expand(n, c, h, w), out)
          : out.mul(mask).add(mask.rsub(1).mul(fillT));
    }
    if (mode === 'bicubic') out = out.clamp(0, maxValue(x));
    return castBack(out, x.dtype, 'round');
  });
}

const rad = (deg: number): number => (deg * Math.PI) / 180;

/** torchvision's inverse matrix for a counter-clockwise rotation by `degrees` about the centre. */
export function rotationMatrix(degrees: number): number[] {
  const r = rad(-degrees);
  return [Math.cos(r), Math.sin(r), 0, -Math.sin(r), Math.cos(r), 0];
}

/**
 * PIL's img.transform(AFFINE, (1, f, 0, 0, 1, 0)) — timm's shear_x, a shear about the top-left
 * corner — as a centred matrix for `affine`.
 */
export const shearXMatrix = (f: number, height: number): number[] => [1, f, (f * height) / 2, 0, 1, 0];
/** timm's shear_y: PIL's (1, 0, 0, f, 1, 0). */
export const shearYMatrix = (f: number, width: number): number[] => [1, 0, 0, f, 1, (f * width) / 2];
/** timm's translate: the output at x shows the input at x + pixels. */
export const translateXMatrix = (pixels: number): number[] => [1, 0, pixels, 0, 1, 0];
export const translateYMatrix = (pixels: number): number[] => [1, 0, 0, 0, 1, pixels];
