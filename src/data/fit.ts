// Per-sample functions for DataLoader's `perSample` that bring images of different sizes to
// one batch size: a center crop (pure JavaScript) and a resize (sharp).
import type { RgbImage, Sample } from './dataset.js';
import { resizeImage } from './decode.js';

/**
 * torchvision's offset along one side: pad floor((crop − size) / 2) before when the image is
 * smaller (a negative offset), else round((size − crop) / 2) with Python's round (half to even).
 */
export function cropOffset(size: number, crop: number): number {
  if (size < crop) return -Math.floor((crop - size) / 2);
  const x = (size - crop) / 2;
  const f = Math.floor(x);
  return x - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(x);
}

/**
 * Crops the center width × height (torchvision's CenterCrop rounding); an image smaller than
 * that is padded with zeros first, as torchvision does.
 */
export function centerCropImage(img: RgbImage, width: number, height = width): RgbImage {
  if (img.width === width && img.height === height) return img;
  const out = new Uint8Array(width * height * 3);
  // offsets of the crop in the source (negative: padding)
  const left = cropOffset(img.width, width);
  const top = cropOffset(img.height, height);
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= img.height) continue;
    const x0 = Math.max(0, -left);
    const x1 = Math.min(width, img.width - left);
    if (x1 <= x0) continue;
    const from = 3 * (sy * img.width + x0 + left);
    out.set(img.data.subarray(from, from + 3 * (x1 - x0)), 3 * (y * width + x0));
  }
  return { data: out, width, height };
}

/** perSample: center crop to size × size (or [width, height]). */
export function centerCrop(size: number | readonly [number, number]): (s: Sample) => RgbImage {
  const [w, h] = typeof size === 'number' ? [size, size] : size;
  return (s) => centerCropImage(s.image, w, h);
}

/**
 * perSample: resize so the shorter side is `resizeTo` (keeping the aspect ratio), then center
 * crop `crop` × `crop` (torchvision's Resize + CenterCrop evaluation pipeline).
 */
export function resizeCenterCrop(resizeTo: number, crop: number): (s: Sample) => Promise<RgbImage> {
  return async (s) => {
    const { width: w, height: h } = s.image;
    // torchvision's Resize(int): the longer side truncated
    const rw = w <= h ? resizeTo : Math.floor((resizeTo * w) / h);
    const rh = w <= h ? Math.floor((resizeTo * h) / w) : resizeTo;
    return centerCropImage(await resizeImage(s.image, rw, rh), crop, crop);
  };
}
