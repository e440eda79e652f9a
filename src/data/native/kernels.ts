// The augmentations' CPU kernels (native/src/image/color.cc, crops.cc): each a batched
// torchvision transform in one native call, used by src/data/transforms on float32 CPU batches;
// and the loader's per-image resize + crop (src/data/fit.ts), off the JS thread.
import { _wrap, type Tensor } from '../../torch/tensor.js';
import type { RgbImage } from '../dataset.js';
import { IMG } from './binding.js';

const { wrap } = _wrap;

/**
 * torchvision's ColorJitter on a float32 CPU batch [n, 3, h, w] in one fused pass per op and
 * image: `order` int64 [n, 4] lists each image's ops as applied (0 brightness, 1 contrast,
 * 2 saturation, 3 hue; -1 none), `ratio` [n, 4] their factors (the hue's shift in turns) and
 * `complement` [n, 4] 1 minus the factors (computed in double on the host, as torchvision's
 * Python floats are). Returns a new tensor; no autograd (an input that requires grad is refused).
 */
export function colorJitterCpu(x: Tensor, order: Tensor, ratio: Tensor, complement: Tensor): Tensor {
  return wrap(IMG.colorJitterCpu(x.id, order.id, ratio.id, complement.id));
}

/**
 * Per image i, the box [top, left, height, width] = boxes[4i .. 4i+3] of x [n, c, h, w] resized
 * to `size` by `interpolate` (alignCorners false): torchvision's resized_crop with a different
 * box per image, in one call (the images are spread over the intra-op threads); no autograd (an
 * input that requires grad is refused).
 */
export function resizedCrops(
  x: Tensor,
  boxes: readonly number[],
  size: readonly [number, number],
  o: { mode?: 'bilinear' | 'bicubic' | 'nearest'; antialias?: boolean } = {},
): Tensor {
  return wrap(IMG.resizedCrops(x.id, boxes, size[0], size[1], o.mode ?? 'bilinear', o.antialias ?? false));
}

/**
 * One HWC RGB image resized to `resize` [height, width] (null: not resized) as F.resize on
 * uint8 does it (float32, interpolate with alignCorners false, antialiased unless told
 * otherwise, rounded back), zero-padded by `pads` [left, right, top, bottom] and cropped to
 * `box` [top, left, height, width] of the padded image: ResizeCenterCrop.forward's libtorch ops
 * on a batch of one, run in the libuv pool on one intra-op thread (so many images in flight use
 * the cores). The pixels must not change before the promise settles. Bad arguments (a buffer of
 * the wrong length, a box outside the image) are errors naming them.
 */
export async function resizeCropImage(
  img: RgbImage,
  resize: readonly [number, number] | null,
  pads: readonly [number, number, number, number] | null,
  box: readonly [number, number, number, number],
  o: { mode?: 'bilinear' | 'bicubic' | 'nearest'; antialias?: boolean } = {},
): Promise<RgbImage> {
  const data = (await IMG.resizeCropImage(
    img.data,
    img.width,
    img.height,
    resize?.[0] ?? 0,
    resize?.[1] ?? 0,
    o.mode ?? 'bilinear',
    o.antialias ?? true,
    pads ?? [0, 0, 0, 0],
    box,
  )) as Buffer;
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: box[3], height: box[2] };
}
