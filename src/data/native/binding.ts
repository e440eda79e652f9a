// The addon's image kernels (native/src/image, exported as its `image` functions): decoding,
// batch assembly and augmentation kernels of the data pipeline, kept out of mmoco/torch.
import { addonGroup } from '../../torch/native.js';
import { IMAGE_OPS, type ImageOp } from './ops.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ImageBinding = { readonly [K in ImageOp]: (...args: any[]) => any };

function load(): ImageBinding {
  const g = addonGroup('image');
  const missing = IMAGE_OPS.filter((op) => typeof g[op] !== 'function');
  if (missing.length > 0)
    throw new Error(
      `mmoco: the native addon lacks image.${missing.join(', image.')}; rebuild it (npm run build:native)`,
    );
  return g as ImageBinding;
}

export const IMG: ImageBinding = load();
