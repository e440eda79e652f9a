// perSample for DataLoader: brings images of different sizes to one batch size with the data
// pipeline's one ResizeCenterCrop (transforms/geometry.ts): its plan for the image's size, run
// by the same libtorch ops on the image alone in a native pool thread (native/kernels.ts), so
// the pixels are the batch transform's and the images of a batch are resized in parallel, off
// the JS thread.
import type { RgbImage, Sample } from './dataset.js';
import { resizeCropImage } from './native/kernels.js';
import { ResizeCenterCrop } from './transforms/geometry.js';

/** One HWC RGB image through `op` (as a batch of one would go), back to HWC RGB. */
export async function fitImage(op: ResizeCenterCrop, img: RgbImage): Promise<RgbImage> {
  const p = op.plan(img.height, img.width);
  // unchanged (or a crop of the whole image): nothing to do
  if (!p || (!p.resize && !p.pads && p.box.height === img.height && p.box.width === img.width)) return img;
  const { top, left, height, width } = p.box;
  return resizeCropImage(img, p.resize, p.pads, [top, left, height, width], {
    mode: op.resizeOptions.interpolation ?? 'bilinear',
    antialias: op.resizeOptions.antialias ?? true,
  });
}

/**
 * perSample: torchvision's Resize(resizeTo) (shorter side, bilinear, antialiased) then
 * CenterCrop(crop) (a side, or [height, width]; zero-padded where smaller); resizeTo null: the
 * centre crop alone. Each call resolves when its image is done; the loader issues a batch's
 * calls at once, so they run side by side in libuv's pool (UV_THREADPOOL_SIZE threads).
 */
export function resizeCenterCrop(
  resizeTo: number | null,
  crop: number | readonly [number, number],
): (s: Sample) => Promise<RgbImage> {
  const op = new ResizeCenterCrop(resizeTo, crop);
  return (s) => fitImage(op, s.image);
}
