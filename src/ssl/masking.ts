// Masking of §3.2–3.3 (Figure 2): shuffle the N patch positions of each image and cut the
// permutation into n chunks; each chunk is fed to the ViT as its own "image" (with its own CLS
// token). Every patch is seen (§3.2: the encoder sees as many patches as MoCo v3): with
// N = q·n + r, the first r chunks of the permutation hold q + 1 patches and the other n − r hold
// q. The same function serves the online encoder (n chunks) and the target encoder (m chunks);
// `sphericalMean` combines the m keys of an image (Eq. 4).
import * as torch from '../torch/index.js';
import type { Tensor } from '../torch/index.js';

const { F } = torch;

/** Chunks of one length, run through the ViT as one batch. */
export interface ChunkGroup {
  /**
   * int64 [B·count, length]: the patch positions of chunks first … first + count − 1 of every
   * image; row b·count + i is chunk first + i of image b.
   */
  keep: Tensor;
  /** Index of the group's first chunk within an image. */
  first: number;
  /** Chunks per image in this group (rowsPerImage of its `keep`). */
  count: number;
  /** Patches per chunk. */
  length: number;
}

export interface ChunkMask {
  /**
   * One group when n divides N, else two: the r chunks of ⌈N/n⌉ patches, then the n − r of
   * ⌊N/n⌋ (a ViT batch needs rows of one length).
   */
  groups: ChunkGroup[];
  /** n: image b owns chunk rows b·n … b·n + n − 1 (image-major, across the groups). */
  rowsPerImage: number;
  /** Patches of chunk j (the same for every image): r × ⌈N/n⌉ then (n − r) × ⌊N/n⌋. */
  lengths: number[];
}

/** Sizes of the split of N positions into n chunks: r = N mod n chunks of q + 1, n − r of q. */
export function chunkLengths(numPatches: number, numChunks: number): number[] {
  checkInt('numPatches', numPatches, 1);
  checkInt('numChunks', numChunks, 1);
  if (numChunks > numPatches) {
    throw new RangeError(`numChunks (${numChunks}) must not exceed numPatches (${numPatches})`);
  }
  const q = Math.floor(numPatches / numChunks);
  const r = numPatches - q * numChunks;
  return Array.from({ length: numChunks }, (_, j) => (j < r ? q + 1 : q));
}

export interface ChunkMaskOptions {
  /** Device of the keeps (and of the random draw); default cpu. */
  device?: string;
  /**
   * Shuffle even when n = 1. Default false: n = 1 gives every position in identity order and
   * draws nothing from the RNG (the ViT's output does not depend on the order of its tokens,
   * since position embeddings are added before the gather).
   */
  shuffleWhenSingle?: boolean;
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
}

/**
 * The chunks of given per-image permutations: `perm` int64 [B, N] (each row a permutation of
 * 0 … N − 1, not checked) cut into n consecutive pieces, the first N mod n of them one longer.
 * The groups' keeps are new tensors (`disposeChunkMask` releases them).
 */
export function chunksOfPermutation(perm: Tensor, numChunks: number): ChunkMask {
  if (perm.ndim !== 2) throw new RangeError(`chunksOfPermutation: perm must be [B, N], got [${perm.shape.join(', ')}]`);
  const [batch, numPatches] = perm.shape as [number, number];
  const lengths = chunkLengths(numPatches, numChunks);
  const q = lengths[numChunks - 1]!;
  const r = lengths.filter((l) => l > q).length;
  return torch.tidy(() => {
    const groups: ChunkGroup[] = [];
    const cut = (first: number, count: number, length: number): void => {
      if (count === 0) return;
      // chunk `first` starts at first·(q + 1): only longer chunks precede it
      const keep = perm
        .narrow(1, first * (q + 1), count * length)
        .reshape(batch * count, length)
        .contiguous();
      groups.push({ keep, first, count, length });
    };
    cut(0, r, q + 1);
    cut(r, numChunks - r, q);
    return { groups, rowsPerImage: numChunks, lengths };
  });
}

/**
 * Random disjoint chunks covering the patch positions of a batch of `batch` images of
 * `numPatches` patches.
 *
 * Randomness: per image a permutation `torch.rand([B, N]).argsort(1)` drawn from the library's
 * global RNG (as MAE's random_masking does), so `torch.manualSeed` makes it reproducible. The
 * permutation is cut as `chunksOfPermutation` does: which chunks are longer draws nothing (the
 * first N mod n of the permutation), and since the permutation is uniform any patch is equally
 * likely to land in a longer chunk. Positions inside a chunk are in random order.
 */
export function chunkMask(batch: number, numPatches: number, numChunks: number, o: ChunkMaskOptions = {}): ChunkMask {
  checkInt('batch', batch, 1);
  chunkLengths(numPatches, numChunks);
  const device = o.device ?? 'cpu';
  return torch.tidy(() => {
    const perm =
      numChunks === 1 && !o.shuffleWhenSingle
        ? torch.arange(0, numPatches, 1, { device }).unsqueeze(0).expand(batch, numPatches)
        : torch.rand([batch, numPatches], { device }).argsort(1);
    return chunksOfPermutation(perm, numChunks);
  });
}

/** Disposes the keeps of a mask. */
export function disposeChunkMask(m: ChunkMask): void {
  torch.dispose(m.groups.map((g) => g.keep));
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
