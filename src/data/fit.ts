// perSample for DataLoader: brings images of different sizes to one batch size with the data
// pipeline's one ResizeCenterCrop (transforms/geometry.ts), applied to each image as a batch of
// one (the loader's batches must have one size before they are tensors).
import { tidy } from '../torch/index.js';
import type { RgbImage, Sample } from './dataset.js';
import { imagesToBatch } from './native/batch.js';
import { ResizeCenterCrop } from './transforms/geometry.js';

/** One HWC RGB image through `op` (as a batch of one), back to HWC RGB. */
export function applyToImage(op: ResizeCenterCrop, img: RgbImage): RgbImage {
  const [ch, cw] = op.cropSize;
  // already the crop's size, and a resize would keep it: nothing to do (no tensor round trip)
  const keeps = op.resizeTo === null || op.resizeTo === Math.min(img.width, img.height);
  if (img.width === cw && img.height === ch && keeps) return img;
  return tidy(() => {
    const y = op.forward(imagesToBatch([img.data], img.width, img.height));
    const [, , height, width] = y.shape as [number, number, number, number];
    return { data: y.permute([0, 2, 3, 1]).toTypedArray() as Uint8Array, width, height };
  });
}

/**
 * perSample: torchvision's Resize(resizeTo) (shorter side, bilinear, antialiased) then
 * CenterCrop(crop) (a side, or [height, width]; zero-padded where smaller); resizeTo null: the
 * centre crop alone. Runs on the calling thread, as libtorch ops on a batch of one.
 */
export function resizeCenterCrop(
  resizeTo: number | null,
  crop: number | readonly [number, number],
): (s: Sample) => RgbImage {
  const op = new ResizeCenterCrop(resizeTo, crop);
  return (s) => applyToImage(op, s.image);
}
