// Gradient clipping (torch.nn.utils.clip_grad_norm_), one native call over all the grads.
import { N } from '../native.js';
import { Tensor, _wrap } from '../tensor.js';

export interface ClipGradNormOptions {
  /** Throw when the total norm is NaN or infinite instead of scaling by it (PyTorch's error_if_nonfinite). */
  errorIfNonfinite?: boolean;
}

/**
 * torch.nn.utils.clip_grad_norm_: the `normType`-norm of all the parameters' grads together
 * (as if concatenated into one vector), and every grad scaled in place by
 * min(1, maxNorm / (total + 1e-6)). Parameters without a grad are ignored. Returns the total
 * norm before clipping, a 0-dim tensor (0 when no parameter has a grad). `normType` may be
 * Infinity (or 'inf') for the largest absolute value.
 */
export function clipGradNorm(
  params: Iterable<Tensor> | Tensor,
  maxNorm: number,
  normType: number | 'inf' = 2,
  opts: ClipGradNormOptions = {},
): Tensor {
  const list = params instanceof Tensor ? [params] : [...params];
  const p = normType === 'inf' ? Infinity : normType;
  return _wrap.wrap(
    N.clipGradNorm(
      list.map((t) => t.id),
      maxNorm,
      p,
      opts.errorIfNonfinite ?? false,
    ) as number,
  );
}
