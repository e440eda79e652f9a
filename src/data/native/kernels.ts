// The augmentations' CPU kernels (native/src/image/color.cc, crops.cc): each a batched
// torchvision transform in one native call, used by src/data/transforms on float32 CPU batches.
import { _wrap, type Tensor } from '../../torch/tensor.js';
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
