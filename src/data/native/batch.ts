// The loader's batch assembly (native/src/image/batch.cc).
import { _wrap, type Tensor } from '../../torch/tensor.js';
import { IMG } from './binding.js';

const { wrap } = _wrap;

/**
 * width × height HWC RGB images as one uint8 [n, 3, height, width] tensor, read and transposed
 * in one pass. An image of another size is an error naming it.
 */
export function imagesToBatch(images: readonly Uint8Array[], width: number, height: number): Tensor {
  return wrap(IMG.imagesToBatch(images, width, height));
}
