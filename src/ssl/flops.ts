// Analytic forward cost of a ViT with chunked (masked) inputs, and of a training step.
//
// Convention: we count multiply-accumulates (MACs) of the matrix products only — the patch
// embedding conv, the linear layers, the two attention products q·kᵀ and attn·v — as fvcore
// (whose "flops" are MACs) and timm's tables do. LayerNorm/BatchNorm, softmax, GELU, the scale,
// residual adds, position embeddings and the final norm are elementwise and not counted (< 1 %
// of the total for ViT-S). FLOPs = 2 · MACs. ViT-S/16 at 224: ≈ 4.6 G MACs ≈ 9.2 GFLOPs.
//
// Chunks: with n chunks every patch is in exactly one chunk (masking.ts): with N = q·n + r, r
// chunks of q + 1 patches and n − r of q, each plus its own CLS token(s) an independent sequence
// of T_j = prefix + len_j tokens; the patch embedding runs on all N patches (it happens before
// the shuffle, as position embeddings do).
// the tensor-free module, not the models' index: the FLOP counter loads no libtorch
import { PREDICTOR_SIZE, PROJECTOR_SIZE, VIT_SIZES } from '../models/sizes.js';

export interface VitFlopConfig {
  imgSize: number;
  patchSize: number;
  inChans?: number;
  dim: number;
  depth: number;
  /** Recorded for completeness: splitting D into heads does not change the MAC count. */
  heads: number;
  mlpRatio?: number;
  /** CLS tokens per chunk (default 1). */
  prefixTokens?: number;
  /** CaiT-style class-attention blocks after the trunk (default 0). */
  classAttnBlocks?: number;
  /** Classifier on the CLS output (default 0: none). */
  numClasses?: number;
}

/** MACs of one image (one view) cut into n chunks. */
export interface VitMacs {
  numChunks: number;
  /** Mean sequence length of a chunk: prefix + N/n (chunks differ by at most one token). */
  tokensPerChunk: number;
  /** Sequence length of each chunk (prefix + its patches), longer chunks first. */
  chunkTokens: number[];
  patchEmbed: number;
  /** qkv and output projections, all blocks. */
  attnProj: number;
  /** q·kᵀ and attn·v, all blocks. */
  attnMatmul: number;
  mlp: number;
  classAttn: number;
  head: number;
  total: number;
}

export type TokenCount = 'exact' | 'ideal';

function numPatches(c: VitFlopConfig): number {
  return Math.floor(c.imgSize / c.patchSize) ** 2;
}

/** Sequence length of each of the n chunks. */
function chunkTokens(c: VitFlopConfig, n: number, mode: TokenCount): number[] {
  const N = numPatches(c);
  // 'ideal': N/n patch tokens, no CLS (the smooth curve of the paper's Figure 3(a))
  if (mode === 'ideal') return Array.from({ length: n }, () => N / n);
  const q = Math.floor(N / n);
  const r = N - q * n;
  return Array.from({ length: n }, (_, j) => (c.prefixTokens ?? 1) + (j < r ? q + 1 : q));
}

const sum = (xs: readonly number[], f: (x: number) => number = (x) => x): number => xs.reduce((s, x) => s + f(x), 0);

/** Per-block MACs of one chunked image: {attnProj, attnMatmul, mlp}. */
export function blockMacs(
  c: VitFlopConfig,
  n = 1,
  mode: TokenCount = 'exact',
): { attnProj: number; attnMatmul: number; mlp: number } {
  const D = c.dim;
  const hidden = Math.round((c.mlpRatio ?? 4) * D);
  const T = chunkTokens(c, n, mode);
  return {
    attnProj: sum(T) * D * (3 * D + D),
    attnMatmul: sum(T, (t) => 2 * t * t * D),
    mlp: sum(T) * 2 * D * hidden,
  };
}

/** Forward MACs of the backbone for one image (one view) cut into n chunks. */
export function vitForwardMacs(c: VitFlopConfig, n = 1): VitMacs {
  if (!Number.isInteger(n) || n < 1 || n > numPatches(c)) throw new RangeError(`numChunks must be in 1..N, got ${n}`);
  const D = c.dim;
  const hidden = Math.round((c.mlpRatio ?? 4) * D);
  const T = chunkTokens(c, n, 'exact');
  const patchEmbed = numPatches(c) * (c.inChans ?? 3) * c.patchSize ** 2 * D;
  const b = blockMacs(c, n);
  // class attention (timm's CaiT ClassAttn): q from the CLS token only, k and v from all T tokens
  const ca = sum(T, (t) => D * D + t * 2 * D * D + 2 * t * D + D * D + 2 * D * hidden);
  const classAttn = (c.classAttnBlocks ?? 0) * ca;
  const head = n * (c.numClasses ?? 0) * D;
  const r: VitMacs = {
    numChunks: n,
    tokensPerChunk: sum(T) / n,
    chunkTokens: T,
    patchEmbed,
    attnProj: c.depth * b.attnProj,
    attnMatmul: c.depth * b.attnMatmul,
    mlp: c.depth * b.mlp,
    classAttn,
    head,
    total: 0,
  };
  r.total = r.patchEmbed + r.attnProj + r.attnMatmul + r.mlp + r.classAttn + r.head;
  return r;
}

/** MACs of an MLP head for one row: dims [in, hidden, …, hidden, out] with `layers` linears. */
export function mlpHeadMacs(inDim: number, layers: number, hidden: number, out: number): number {
  if (layers <= 0) return 0;
  const dims = [inDim, ...Array.from({ length: layers - 1 }, () => hidden), out];
  let s = 0;
  for (let i = 0; i + 1 < dims.length; i++) s += dims[i]! * dims[i + 1]!;
  return s;
}

export interface HeadConfig {
  layers: number;
  hidden: number;
  out: number;
}

export interface TrainStepConfig {
  vit: VitFlopConfig;
  /** n, online chunks (default 1). */
  numChunks?: number;
  /** m, target chunks (default 1). */
  targetChunks?: number;
  /** Default MoCo v3's: 3 layers, 4096 hidden, 256 out. */
  projector?: HeadConfig;
  /** Default MoCo v3's: 2 layers, 4096 hidden, 256 out; `layers: 0` for none. */
  predictor?: HeadConfig;
}

export interface TrainStepMacs {
  /** Online forward, both views: 2 · (backbone(n) + n · (projector + predictor)). */
  onlineForward: number;
  /** Target forward, both views: 2 · (backbone(m) + m · projector). */
  targetForward: number;
  /** 3 · onlineForward (forward + backward ≈ 2 × forward) + targetForward (no backward). */
  total: number;
}

export const MOCO_PROJECTOR: HeadConfig = {
  layers: PROJECTOR_SIZE.numLayers,
  hidden: PROJECTOR_SIZE.hiddenDim,
  out: PROJECTOR_SIZE.outDim,
};
export const MOCO_PREDICTOR: HeadConfig = {
  layers: PREDICTOR_SIZE.numLayers,
  hidden: PREDICTOR_SIZE.hiddenDim,
  out: PROJECTOR_SIZE.outDim,
};

/** MACs per image of one training step (two views, symmetrised loss), by the convention above. */
export function trainStepMacs(s: TrainStepConfig): TrainStepMacs {
  const n = s.numChunks ?? 1;
  const m = s.targetChunks ?? 1;
  const proj = s.projector ?? MOCO_PROJECTOR;
  const pred = s.predictor ?? MOCO_PREDICTOR;
  const projMacs = mlpHeadMacs(s.vit.dim, proj.layers, proj.hidden, proj.out);
  const predMacs = mlpHeadMacs(proj.out, pred.layers, pred.hidden, pred.out);
  const onlineForward = 2 * (vitForwardMacs(s.vit, n).total + n * (projMacs + predMacs));
  const targetForward = 2 * (vitForwardMacs(s.vit, m).total + m * projMacs);
  return { onlineForward, targetForward, total: 3 * onlineForward + targetForward };
}

const { vit_small: S } = VIT_SIZES;
export const VIT_S16_224: VitFlopConfig = {
  imgSize: 224,
  patchSize: 16,
  dim: S.embedDim,
  depth: S.depth,
  heads: S.numHeads,
};

export interface Figure3aRow {
  n: number;
  /** Mean sequence length of a chunk. */
  tokensPerChunk: number;
  /** Attention module (qkv + q·kᵀ + attn·v + proj) MACs relative to n = 1. */
  attention: number;
  /** Whole block (attention + FFN) MACs relative to n = 1. */
  block: number;
}

/**
 * Figure 3(a): relative MACs (= relative FLOPs) of the attention module and of a whole block as n
 * goes 1…maxN. `mode: 'exact'` counts what the model runs (all N patches in chunks of ⌈N/n⌉ or
 * ⌊N/n⌋, plus one CLS per chunk: the CLS overhead grows with n);
 * `'ideal'` counts N/n patch tokens per chunk and no CLS, a steady drop like the paper's figure.
 */
export function figure3aTable(c: VitFlopConfig = VIT_S16_224, maxN = 10, mode: TokenCount = 'exact'): Figure3aRow[] {
  const cost = (n: number): { att: number; blk: number } => {
    const b = blockMacs(c, n, mode);
    const att = b.attnProj + b.attnMatmul;
    return { att, blk: att + b.mlp };
  };
  const base = cost(1);
  const rows: Figure3aRow[] = [];
  for (let n = 1; n <= maxN; n++) {
    const x = cost(n);
    rows.push({
      n,
      tokensPerChunk: sum(chunkTokens(c, n, mode)) / n,
      attention: x.att / base.att,
      block: x.blk / base.blk,
    });
  }
  return rows;
}

/** "4.60 GMACs (9.20 GFLOPs)". */
export function formatMacs(macs: number): string {
  const [scale, unit] = macs >= 1e9 ? [1e9, 'G'] : macs >= 1e6 ? [1e6, 'M'] : [1e3, 'K'];
  return `${(macs / scale).toFixed(2)} ${unit}MACs (${((2 * macs) / scale).toFixed(2)} ${unit}FLOPs)`;
}

/** Figure 3(a) as a text table (one line per n). */
export function formatFigure3a(rows: readonly Figure3aRow[]): string {
  const lines = ['n  tokens/chunk  attention  block'];
  for (const r of rows) {
    lines.push(
      `${String(r.n).padEnd(3)}${String(+r.tokensPerChunk.toFixed(1)).padEnd(14)}${r.attention.toFixed(3).padEnd(11)}${r.block.toFixed(3)}`,
    );
  }
  return lines.join('\n');
}
