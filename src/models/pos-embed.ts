// Fixed 2-D sin-cos position embedding, as MoCo-v3's `build_2d_sincos_position_embedding`.
import { arange, cat, zeros } from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { tidy } from '../torch/index.js';

/**
 * The [1, (clsToken ? 1 : 0) + gridH·gridW, dim] table of MoCo-v3 (vits.py): for the patch at
 * flat index m = i·gridH + j (the meshgrid of (w, h) in 'ij' order, as MoCo-v3 writes it),
 * [sin(i·ω), cos(i·ω), sin(j·ω), cos(j·ω)] with ω_d = 1 / temperature^(d / (dim/4)); a zero row
 * for the CLS slot first. dim must be a multiple of 4. Computed in float32 with the same ops as
 * PyTorch, so it equals MoCo-v3's table exactly.
 */
export function buildSincosPosEmbed(
  gridH: number,
  gridW: number,
  dim: number,
  o: { temperature?: number; clsToken?: boolean } = {},
): Tensor {
  if (dim % 4 !== 0) throw new RangeError(`sincos position embedding: dim must be a multiple of 4, got ${dim}`);
  const temperature = o.temperature ?? 10000;
  return tidy(() => {
    const f32 = { dtype: 'float32' as const };
    // torch.meshgrid(grid_w, grid_h) (indexing 'ij'): shapes [w, h]
    const gw = arange(gridW, undefined, 1, f32).reshape(gridW, 1).expand(gridW, gridH).flatten();
    const gh = arange(gridH, undefined, 1, f32).reshape(1, gridH).expand(gridW, gridH).flatten();
    const posDim = dim / 4;
    const omega = arange(posDim, undefined, 1, f32).div(posDim).rpow(temperature).reciprocal();
    const outW = gw.unsqueeze(1).mul(omega.unsqueeze(0));
    const outH = gh.unsqueeze(1).mul(omega.unsqueeze(0));
    const pe = cat([outW.sin(), outW.cos(), outH.sin(), outH.cos()], 1).unsqueeze(0);
    return (o.clsToken ?? true) ? cat([zeros([1, 1, dim], f32), pe], 1) : pe;
  });
}
