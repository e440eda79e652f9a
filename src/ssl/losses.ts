// Losses of §3.1–3.3: InfoNCE as MoCo v3's contrastive_loss (Eq. 1, scaled by 2τ) and BYOL's
// 2 − 2·cos (Eq. 2), both averaged over the n queries of each image (Eq. 3). Queries are
// image-major rows [B·n, D] (row b·n + j is chunk j of image b); keys are [B, D] (one per image:
// the full view, or the spherical mean of m chunks, Eq. 4). Keys are constants: the functions
// detach them, so no gradient flows into the target branch.
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { DEFAULT_TEMPERATURE } from './defaults.js';

export { DEFAULT_TEMPERATURE };

const { F } = torch;

function queriesPerImage(q: Tensor, k: Tensor, fn: string): number {
  if (q.ndim !== 2 || k.ndim !== 2 || q.shape[1] !== k.shape[1]) {
    throw new RangeError(`${fn}: q must be [B·n, D] and k [B, D], got [${q.shape}] and [${k.shape}]`);
  }
  const rows = q.shape[0]!;
  const b = k.shape[0]!;
  if (b === 0 || rows % b !== 0) {
    throw new RangeError(`${fn}: q has ${rows} rows, not a multiple of the ${b} keys`);
  }
  return rows / b;
}

/** int64 [B·n]: the image of each image-major row, ⌊r / n⌋. */
export function rowLabels(images: number, rowsPerImage: number, device = 'cpu'): Tensor {
  return torch.tidy(() =>
    torch
      .arange(0, images, 1, { device })
      .unsqueeze(1)
      .expand(images, rowsPerImage)
      .reshape(images * rowsPerImage),
  );
}

/** The keys of every rank, for data-parallel training (MoCo v3's concat_all_gather). */
export interface KeyBank {
  /** the keys of the global batch (all ranks, rank-major), each rank's B keys one block */
  all: Tensor;
  /** where this rank's keys start in `all` (rank · B): its queries' labels are offset by it */
  offset: number;
}

/**
 * One direction of M-MoCo's loss: MoCo v3's contrastive_loss(q, k) with the paper's averaging.
 * q, k are L2-normalised; logits = q·kᵀ/τ against the keys of the whole batch; the label of query
 * row r is its own image ⌊r/n⌋; cross-entropy averaged over all B·n rows (= mean over the n
 * queries of Eq. 3, then over images), times 2τ. n = 1 is MoCo v3's loss exactly.
 *
 * `bank`: distributed training: the logits are taken against the keys of every rank, and the
 * labels point into this rank's block.
 */
export function infoNCE(q: Tensor, k: Tensor, temperature = DEFAULT_TEMPERATURE, bank?: KeyBank): Tensor {
  const n = queriesPerImage(q, k, 'infoNCE');
  return torch.tidy(() => {
    const qn = F.normalize(q, 2, 1);
    const kn = F.normalize((bank ? bank.all : k).detach(), 2, 1);
    const logits = qn.mm(kn.t()).div(temperature);
    let labels = rowLabels(k.shape[0]!, n, q.device);
    if (bank && bank.offset) labels = labels.add(bank.offset);
    return F.crossEntropy(logits, labels).mul(2 * temperature);
  });
}

/** Symmetrised M-MoCo loss, as MoCo v3's forward: infoNCE(q1, k2) + infoNCE(q2, k1) (a sum). */
export function symmetricInfoNCE(
  q1: Tensor,
  q2: Tensor,
  k1: Tensor,
  k2: Tensor,
  temperature = DEFAULT_TEMPERATURE,
  banks?: { k1: KeyBank; k2: KeyBank },
): Tensor {
  return torch.tidy(() => infoNCE(q1, k2, temperature, banks?.k2).add(infoNCE(q2, k1, temperature, banks?.k1)));
}

/**
 * One direction of M-BYOL's loss (Eq. 2 averaged as Eq. 3): mean over the B·n query rows of
 * 2 − 2·cos(q_r, k_⌊r/n⌋) = ‖q̂ − k̂‖².
 */
export function byolLoss(q: Tensor, k: Tensor): Tensor {
  const n = queriesPerImage(q, k, 'byolLoss');
  return torch.tidy(() => {
    const qn = F.normalize(q, 2, 1);
    let kn = F.normalize(k.detach(), 2, 1);
    if (n > 1) kn = kn.unsqueeze(1).expand(k.shape[0]!, n, k.shape[1]!).reshape(q.shape[0]!, k.shape[1]!);
    return qn.mul(kn).sum(1).mean().mul(-2).add(2);
  });
}

/** Symmetrised M-BYOL loss, as BYOL: byolLoss(q1, k2) + byolLoss(q2, k1) (a sum). */
export function symmetricByolLoss(q1: Tensor, q2: Tensor, k1: Tensor, k2: Tensor): Tensor {
  return torch.tidy(() => byolLoss(q1, k2).add(byolLoss(q2, k1)));
}
