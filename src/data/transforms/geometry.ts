// Crops, resizes and flips (torchvision.transforms.functional / functional_tensor 0.14 semantics
// for tensors), and the random transforms built on them: RandomResizedCrop, RandomHorizontalFlip.
import { cat, F, tidy, type Tensor } from '../../torch/index.js';
import { resizedCrops } from '../native/kernels.js';
import {
  applyTo,
  bernoulli,
  castBack,
  dims,
  floatType,
  roundHalfEven,
  same,
  uniform,
  indicesOf,
  type Box,
  type Interpolation,
} from './common.js';

export interface ResizeOptions {
  interpolation?: Interpolation;
  /** Antialiased downsampling (torchvision's tensor `antialias` flag); default true, as PIL does. */
  antialias?: boolean;
}

/** [h, w] from a number (square) or a pair. */
export const sizePair = (size: number | readonly [number, number]): [number, number] =>
  typeof size === 'number' ? [size, size] : [size[0], size[1]];

/**
 * Resizes the batch to [h, w] as torchvision's F.resize on tensors: uint8 goes through float32
 * and comes back rounded (clamped to 0..255 after bicubic); floats are not clamped. The batch is
 * returned as it is (a new handle) when it already has that size.
 */
export function resize(x: Tensor, size: readonly [number, number], o: ResizeOptions = {}): Tensor {
  const [, , h, w] = dims(x, 'resize');
  if (h === size[0] && w === size[1]) return same(x);
  return tidy(() => {
    const mode = o.interpolation ?? 'bilinear';
    let y = F.interpolate(x.dtype === 'uint8' ? x.to('float32') : x, {
      size: [size[0], size[1]],
      mode,
      alignCorners: false,
      antialias: o.antialias ?? true,
    });
    if (mode === 'bicubic' && x.dtype === 'uint8') y = y.clamp(0, 255);
    return castBack(y, x.dtype, 'round');
  });
}

/** torchvision's output size for resizing the shorter edge to `size` (the longer edge truncated). */
export function shorterEdgeSize(h: number, w: number, size: number): [number, number] {
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.trunc((size * long) / short);
  return w <= h ? [newLong, size] : [size, newLong];
}

/** Resizes so that the shorter edge is `size` (torchvision's Resize(int)). */
export function resizeShorter(x: Tensor, size: number, o: ResizeOptions = {}): Tensor {
  const [, , h, w] = dims(x, 'resizeShorter');
  return resize(x, shorterEdgeSize(h, w, size), o);
}

/** The same box of every image, zero-padded where it leaves the image (torchvision's F.crop). */
export function crop(x: Tensor, box: Box): Tensor {
  const [, , h, w] = dims(x, 'crop');
  const { top, left, height, width } = box;
  const bottom = top + height;
  const right = left + width;
  if (top >= 0 && left >= 0 && bottom <= h && right <= w) return x.narrow(2, top, height).narrow(3, left, width);
  return tidy(() => {
    const t0 = Math.max(top, 0);
    const l0 = Math.max(left, 0);
    const inner = x
      .narrow(2, t0, Math.max(0, Math.min(bottom, h) - t0))
      .narrow(3, l0, Math.max(0, Math.min(right, w) - l0));
    const pads = [
      Math.max(-left + Math.min(0, right), 0),
      Math.max(right - Math.max(w, left), 0),
      Math.max(-top + Math.min(0, bottom), 0),
      Math.max(bottom - Math.max(h, top), 0),
    ];
    return F.pad(inner, pads, 'constant', 0);
  });
}

/**
 * torchvision's F.center_crop of an h x w image as zero pads [left, right, top, bottom] (null:
 * none; it pads first when the crop is larger than the image) and the box to take from the
 * padded image.
 */
export function centerCropPlan(
  h: number,
  w: number,
  size: number | readonly [number, number],
): { pads: [number, number, number, number] | null; box: Box } {
  const [ch, cw] = sizePair(size);
  let pads: [number, number, number, number] | null = null;
  if (cw > w || ch > h) {
    pads = [
      cw > w ? Math.floor((cw - w) / 2) : 0,
      cw > w ? Math.floor((cw - w + 1) / 2) : 0,
      ch > h ? Math.floor((ch - h) / 2) : 0,
      ch > h ? Math.floor((ch - h + 1) / 2) : 0,
    ];
    w += pads[0] + pads[1];
    h += pads[2] + pads[3];
  }
  return { pads, box: { top: roundHalfEven((h - ch) / 2), left: roundHalfEven((w - cw) / 2), height: ch, width: cw } };
}

/** torchvision's F.center_crop: zero-pads first when the crop is larger than the image. */
export function centerCrop(x: Tensor, size: number | readonly [number, number]): Tensor {
  const [, , h, w] = dims(x, 'centerCrop');
  const { pads, box } = centerCropPlan(h, w, size);
  return tidy(() => {
    if (!pads) return crop(x, box);
    const img = F.pad(x, pads, 'constant', 0);
    const [, , ph, pw] = img.shape as [number, number, number, number];
    return box.height === ph && box.width === pw ? img : crop(img, box);
  });
}

/**
 * Crops a box per image (`boxes[i]` for image i) and resizes each crop to `size`, as
 * torchvision's F.resized_crop image by image. The boxes differ in size, so this loops over the
 * images (one crop and one interpolate each) and joins the results; the dtype round trip of
 * uint8 is done once for the batch.
 */
export function resizedCrop(
  x: Tensor,
  boxes: readonly Box[],
  size: number | readonly [number, number],
  o: ResizeOptions = {},
): Tensor {
  const [n, , h, w] = dims(x, 'resizedCrop');
  if (boxes.length !== n) throw new RangeError(`resizedCrop: ${boxes.length} boxes for ${n} images`);
  const [oh, ow] = sizePair(size);
  const mode = o.interpolation ?? 'bilinear';
  return tidy(() => {
    const src = x.dtype === 'uint8' ? x.to('float32') : x;
    boxes.forEach((b, i) => {
      if (b.top < 0 || b.left < 0 || b.top + b.height > h || b.left + b.width > w || b.height < 1 || b.width < 1) {
        throw new RangeError(`resizedCrop: box ${JSON.stringify(b)} of image ${i} is not inside ${h}x${w}`);
      }
    });
    const antialias = o.antialias ?? true;
    let y: Tensor;
    if (src.device === 'cpu' && !src.requiresGrad) {
      // one native call for the batch (per-image interpolations spread over the threads)
      const flat = boxes.flatMap((b) => [b.top, b.left, b.height, b.width]);
      y = resizedCrops(src, flat, [oh, ow], { mode, antialias });
    } else {
      const parts = boxes.map((b, i) => {
        const c = src.narrow(0, i, 1).narrow(2, b.top, b.height).narrow(3, b.left, b.width);
        if (b.height === oh && b.width === ow) return c;
        return F.interpolate(c, { size: [oh, ow], mode, alignCorners: false, antialias });
      });
      y = cat(parts, 0);
    }
    if (mode === 'bicubic' && x.dtype === 'uint8') y = y.clamp(0, 255);
    return castBack(y, x.dtype, 'round');
  });
}

/** Mirrors every image left to right. */
export const hflip = (x: Tensor): Tensor => x.flip(3);

export interface RandomResizedCropOptions extends ResizeOptions {
  /** Range of the crop's area as a fraction of the image's; default [0.08, 1]. */
  scale?: readonly [number, number];
  /** Range of the crop's aspect ratio (width / height); default [3/4, 4/3]. */
  ratio?: readonly [number, number];
}

/**
 * torchvision's RandomResizedCrop: per image, up to 10 attempts at a box with a random area
 * fraction in `scale` and a log-uniform aspect ratio in `ratio`, falling back to a centred crop
 * of the whole image clipped to the ratio range.
 */
export class RandomResizedCrop {
  readonly size: [number, number];
  readonly scale: readonly [number, number];
  readonly ratio: readonly [number, number];
  readonly resizeOptions: ResizeOptions;

  constructor(size: number | readonly [number, number], o: RandomResizedCropOptions = {}) {
    this.size = sizePair(size);
    this.scale = o.scale ?? [0.08, 1];
    this.ratio = o.ratio ?? [3 / 4, 4 / 3];
    this.resizeOptions = { interpolation: o.interpolation ?? 'bilinear', antialias: o.antialias ?? true };
  }

  /** One box per image of an n-image batch of height x width images. */
  sampleParams(n: number, height: number, width: number): Box[] {
    const attempts = 10;
    const u = uniform(n * attempts * 4);
    const area = height * width;
    const [lr0, lr1] = [Math.log(this.ratio[0]), Math.log(this.ratio[1])];
    const boxes: Box[] = [];
    for (let i = 0; i < n; i++) {
      let box: Box | null = null;
      for (let k = 0; k < attempts && box === null; k++) {
        const o = (i * attempts + k) * 4;
        const targetArea = area * (this.scale[0] + (this.scale[1] - this.scale[0]) * u[o]!);
        const aspect = Math.exp(lr0 + (lr1 - lr0) * u[o + 1]!);
        const w = roundHalfEven(Math.sqrt(targetArea * aspect));
        const h = roundHalfEven(Math.sqrt(targetArea / aspect));
        if (w > 0 && w <= width && h > 0 && h <= height) {
          const top = Math.min(height - h, Math.floor(u[o + 2]! * (height - h + 1)));
          const left = Math.min(width - w, Math.floor(u[o + 3]! * (width - w + 1)));
          box = { top, left, height: h, width: w };
        }
      }
      boxes.push(box ?? fallbackBox(height, width, this.ratio));
    }
    return boxes;
  }

  apply(x: Tensor, boxes: readonly Box[]): Tensor {
    return resizedCrop(x, boxes, this.size, this.resizeOptions);
  }

  forward(x: Tensor): Tensor {
    const [n, , h, w] = dims(x, 'RandomResizedCrop');
    return this.apply(x, this.sampleParams(n, h, w));
  }
}

/** torchvision's fallback after 10 failed attempts: a central crop within the ratio range. */
function fallbackBox(height: number, width: number, ratio: readonly [number, number]): Box {
  const inRatio = width / height;
  let w = width;
  let h = height;
  if (inRatio < Math.min(...ratio)) {
    h = roundHalfEven(w / Math.min(...ratio));
  } else if (inRatio > Math.max(...ratio)) {
    w = roundHalfEven(h * Math.max(...ratio));
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

/** Mirrors each image with probability p. Parameters: one flag per image. */
export class RandomHorizontalFlip {
  constructor(readonly p = 0.5) {}

  sampleParams(n: number): boolean[] {
    return bernoulli(n, this.p);
  }

  apply(x: Tensor, flips: readonly boolean[]): Tensor {
    return tidy(() => applyTo(x, indicesOf(flips), hflip));
  }

  forward(x: Tensor): Tensor {
    return this.apply(x, this.sampleParams(dims(x, 'RandomHorizontalFlip')[0]));
  }
}

export interface ResizeCenterCropOptions extends ResizeOptions {
  /**
   * A batch that already has the crop's size passes as it is, not resized first (a resize and
   * crop would only blur small images, such as CIFAR's at the model's size). Default false.
   */
  passCropSized?: boolean;
}

/** ResizeCenterCrop's steps for one image (ResizeCenterCrop.plan). */
export interface ResizeCenterCropPlan {
  /** [height, width] after the resize; null: no resize */
  resize: [number, number] | null;
  /** zero pads [left, right, top, bottom] of the resized image; null: none */
  pads: [number, number, number, number] | null;
  /** the crop from the padded image */
  box: Box;
}

/**
 * The one resize + centre crop of the data pipeline (training's `loadSize`, evaluation, the
 * kNN monitor, the data bench): torchvision's Resize(resizeTo) — the shorter edge to resizeTo,
 * bilinear and antialiased unless told otherwise — then CenterCrop(cropTo), zero-padded where
 * the image is smaller. resizeTo null: the centre crop alone.
 */
export class ResizeCenterCrop {
  readonly cropSize: [number, number];

  constructor(
    readonly resizeTo: number | null,
    readonly cropTo: number | readonly [number, number],
    readonly resizeOptions: ResizeCenterCropOptions = {},
  ) {
    const bad = (v: number): boolean => !Number.isInteger(v) || v < 1;
    if (resizeTo !== null && bad(resizeTo))
      throw new RangeError(`ResizeCenterCrop: resizeTo must be a positive integer or null, got ${resizeTo}`);
    this.cropSize = sizePair(cropTo);
    if (this.cropSize.some(bad))
      throw new RangeError(`ResizeCenterCrop: cropTo must be positive integers, got ${JSON.stringify(cropTo)}`);
  }

  /**
   * What forward does to one h x w image: the size it is resized to (null: not resized), then
   * the zero pads and the box as centerCropPlan; null when it passes unchanged. The loader's
   * per-image path (src/data/fit.ts) runs these steps natively off the JS thread.
   */
  plan(h: number, w: number): ResizeCenterCropPlan | null {
    const [ch, cw] = this.cropSize;
    if (h === ch && w === cw && (this.resizeTo === null || this.resizeOptions.passCropSized)) return null;
    const size = this.resizeTo === null ? null : shorterEdgeSize(h, w, this.resizeTo);
    const resize = size && (size[0] !== h || size[1] !== w) ? size : null;
    const [rh, rw] = resize ?? [h, w];
    return { resize, ...centerCropPlan(rh, rw, this.cropSize) };
  }

  forward(x: Tensor): Tensor {
    const [, , h, w] = dims(x, 'ResizeCenterCrop');
    const [ch, cw] = this.cropSize;
    if (h === ch && w === cw && (this.resizeTo === null || this.resizeOptions.passCropSized)) return same(x);
    return tidy(() =>
      centerCrop(this.resizeTo === null ? x : resizeShorter(x, this.resizeTo, this.resizeOptions), this.cropSize),
    );
  }
}

/** Converts a uint8 batch to float in [0, 1] (torchvision's ToTensor / convert_image_dtype); floats pass. */
export function toFloat(x: Tensor): Tensor {
  if (x.dtype !== 'uint8') return same(x);
  return tidy(() => x.to(floatType(x)).div(255));
}
