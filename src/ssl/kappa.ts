// Concentration monitor of §3.4: the n chunk outputs of an image, normalised to unit vectors,
// are treated as samples of a von Mises–Fisher distribution on S^{p−1}; its concentration κ is
// estimated with Banerjee et al. (2005): κ ≈ R̄(p − R̄²)/(1 − R̄²), R̄ = ‖mean of the unit vectors‖.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

const { F } = torch;

export interface KappaResult {
  /** Mean of the per-image κ over the batch (Infinity if some image has R̄ = 1). */
  kappa: number;
  /** Mean of the per-image R̄ over the batch. */
  meanResultantLength: number;
  /** float64 [B]: κ of each image (only with `perImage: true`; the caller disposes it). */
  perImage?: Tensor;
}

/** R̄ at or above 1 − this counts as exactly 1 (all samples identical): κ = Infinity. */
export const KAPPA_RBAR_ONE_TOL = 1e-12;

/**
 * Banerjee et al.'s κ for each image of image-major rows `z` [B·n, p] (row b·n + j = chunk j of
 * image b), averaged over the batch. Computed in float64, without autograd.
 *
 * n = 1 is undefined (one sample always has R̄ = 1): throws a RangeError. R̄ = 1 (all n samples
 * identical, up to 1e-12) gives κ = Infinity for that image, and so for the batch mean.
 */
export function vmfKappa(z: Tensor, rowsPerImage: number, o: { perImage?: boolean } = {}): KappaResult {
  if (!Number.isInteger(rowsPerImage) || rowsPerImage < 2) {
    throw new RangeError(`vmfKappa: κ needs at least 2 samples per image (rowsPerImage = ${rowsPerImage})`);
  }
  if (z.ndim !== 2 || z.shape[0]! % rowsPerImage !== 0 || z.shape[0] === 0) {
    throw new RangeError(`vmfKappa: z must be [B·n, p] with rows divisible by n=${rowsPerImage}, got [${z.shape}]`);
  }
  const [rows, p] = z.shape as [number, number];
  const images = rows / rowsPerImage;
  const [rbar, kappa] = torch.noGrad(() =>
    torch.tidy(() => {
      const u = F.normalize(z.detach().double(), 2, 1);
      const r = u.reshape(images, rowsPerImage, p).mean(1).norm(2, 1).clampMax(1);
      const r2 = r.square();
      // where R̄ ≈ 1: κ = +Infinity (the sign of the 0 denominator must not give −Infinity)
      const one = r.ge(1 - KAPPA_RBAR_ONE_TOL);
      const k = r.mul(r2.rsub(p)).div(r2.rsub(1).clampMin(0));
      return [r, torch.where(one, Number.POSITIVE_INFINITY, k)] as const;
    }),
  );
  const rArr = rbar.toTypedArray() as Float64Array;
  const kArr = kappa.toTypedArray() as Float64Array;
  rbar.dispose();
  const mean = (a: Float64Array): number => a.reduce((s, v) => s + v, 0) / a.length;
  const result: KappaResult = { kappa: mean(kArr), meanResultantLength: mean(rArr) };
  if (o.perImage) result.perImage = kappa;
  else kappa.dispose();
  return result;
}
