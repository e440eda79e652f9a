// Masking of §3.2–3.3 (Figure 2): shuffle the N patch positions of each image and cut the
// permutation into n chunks of equal length; each chunk is fed to the ViT as its own "image"
// (with its own CLS token). The same function serves the online encoder (n chunks) and the
// target encoder (m chunks); `sphericalMean` combines the m keys of an image (Eq. 4).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

const { F } = torch;

export interface ChunkMask {
  /** int64 [B·n, ⌊N/n⌋]: the patch positions kept by each row; row b·n + j is chunk j of image b. */
  keep: Tensor;
  /** n: row r belongs to image ⌊r / rowsPerImage⌋. */
  rowsPerImage: number;
  /** ⌊N/n⌋ patches per chunk. */
  chunkLen: number;
  /** N mod n: positions of each image that no chunk uses. */
  dropped: number;
}

export interface RemainderInfo {
  numPatches: number;
  numChunks: number;
  chunkLen: number;
  dropped: number;
}

export interface ChunkMaskOptions {
  /** Device of `keep` (and of the random draw); default cpu. */
  device?: string;
  /**
   * Shuffle even when n = 1. Default false: n = 1 gives every position in identity order and
   * draws nothing from the RNG (the ViT's output does not depend on the order of its tokens,
   * since position embeddings are added before the gather).
   */
  shuffleWhenSingle?: boolean;
  /**
   * Called when N is not divisible by n (the last N mod n positions of each permutation are
   * dropped). Without it, a process warning is emitted once per (N, n) pair.
   */
  onRemainder?: (info: RemainderInfo) => void;
}

const warned = new Set<string>();

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
}

/**
 * Random disjoint chunks of patch positions for a batch of `batch` images of `numPatches` patches.
 *
 * Randomness: per image a permutation `torch.rand([B, N]).argsort(1)` drawn from the library's
 * global RNG (as MAE's random_masking does), so `torch.manualSeed` makes it reproducible. The
 * permutation is cut into n consecutive pieces of ⌊N/n⌋ positions; the N mod n positions at its
 * end are dropped (reported through `onRemainder` or a once-only warning). Rows are image-major:
 * row b·n + j holds chunk j of image b. Positions inside a chunk are in random order.
 */
export function chunkMask(batch: number, numPatches: number, numChunks: number, o: ChunkMaskOptions = {}): ChunkMask {
  checkInt('batch', batch, 1);
  checkInt('numPatches', numPatches, 1);
  checkInt('numChunks', numChunks, 1);
  if (numChunks > numPatches) {
    throw new RangeError(`numChunks (${numChunks}) must not exceed numPatches (${numPatches})`);
  }
  const chunkLen = Math.floor(numPatches / numChunks);
  const dropped = numPatches - chunkLen * numChunks;
  if (dropped > 0) {
    const info: RemainderInfo = { numPatches, numChunks, chunkLen, dropped };
    if (o.onRemainder) o.onRemainder(info);
    else {
      const key = `${numPatches}/${numChunks}`;
      if (!warned.has(key)) {
        warned.add(key);
        process.emitWarning(
          `chunkMask: ${numPatches} patches do not split into ${numChunks} chunks; ` +
            `${dropped} random position(s) per image are dropped (chunks of ${chunkLen})`,
          'MaskingWarning',
        );
      }
    }
  }
  const device = o.device ?? 'cpu';
  const keep = torch.tidy(() => {
    let perm: Tensor;
    if (numChunks === 1 && !o.shuffleWhenSingle) {
      perm = torch.arange(0, numPatches, 1, { device }).unsqueeze(0).expand(batch, numPatches);
    } else {
      perm = torch.rand([batch, numPatches], { device }).argsort(1);
    }
    return perm
      .narrow(1, 0, chunkLen * numChunks)
      .reshape(batch * numChunks, chunkLen)
      .contiguous();
  });
  return { keep, rowsPerImage: numChunks, chunkLen, dropped };
}

/**
 * Spherical mean of the m keys of each image (Eq. 4): k̂ = Σ_j k_j / ‖Σ_j k_j‖, from image-major
 * rows [B·m, D] to [B, D]. Each k_j is first normalised to a unit vector (the paper's keys are unit
 * vectors; pass `normalizeFirst: false` to sum the raw rows). m = 1 gives normalize(keys).
 */
export function sphericalMean(keys: Tensor, rowsPerImage: number, o: { normalizeFirst?: boolean } = {}): Tensor {
  checkInt('rowsPerImage', rowsPerImage, 1);
  const [rows, dim] = keys.shape as [number, number];
  if (keys.ndim !== 2 || rows % rowsPerImage !== 0) {
    throw new RangeError(`sphericalMean: keys must be [B·m, D] with rows divisible by m=${rowsPerImage}`);
  }
  return torch.tidy(() => {
    const k = o.normalizeFirst === false ? keys : F.normalize(keys, 2, 1);
    return F.normalize(k.reshape(rows / rowsPerImage, rowsPerImage, dim).sum(1), 2, 1);
  });
}
