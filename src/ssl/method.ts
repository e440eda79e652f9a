// Masked MoCo / Masked BYOL (§3): MoCo v3's structure (online = backbone → [class attention] →
// projector → predictor; target = EMA of backbone → [class attention] → projector) with the
// online views cut into n chunks (§3.2, Eq. 3) and the target views into m chunks combined by
// their spherical mean (§3.3, Eq. 4). n = m = 1 is MoCo v3 / BYOL exactly.
import * as torch from '../torch/index.js';
import { distributed, nn, optim } from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import {
  buildPredictor,
  buildProjector,
  ClassAttentionStack,
  DEFAULT_HEAD_NORM,
  PROJECTOR_SIZE,
} from '../models/index.js';
import type { ClassAttentionOptions, HeadNorm, VisionTransformer } from '../models/index.js';
import { chunkMask, sphericalMean } from './masking.js';
import type { ChunkMask } from './masking.js';
import { symmetricByolLoss, symmetricInfoNCE } from './losses.js';
import { vmfKappa } from './kappa.js';
import { MomentumEncoder } from './momentum.js';
import {
  DEFAULT_BASE_MOMENTUM,
  DEFAULT_METHOD,
  DEFAULT_NUM_CHUNKS,
  DEFAULT_PREDICTOR_LAST_NORM,
  DEFAULT_TARGET_CHUNKS,
  DEFAULT_TEMPERATURE,
  METHODS,
  type MethodName,
} from './defaults.js';

export {
  DEFAULT_BASE_MOMENTUM,
  DEFAULT_METHOD,
  DEFAULT_NUM_CHUNKS,
  DEFAULT_PREDICTOR_LAST_NORM,
  DEFAULT_TARGET_CHUNKS,
  METHODS,
  type MethodName,
};

export interface HeadSizes {
  numLayers?: number;
  hiddenDim?: number;
}

export interface MaskedContrastiveOptions {
  /** 'mmoco' (InfoNCE, default) or 'mbyol' (2 − 2·cos). */
  method?: MethodName;
  /** n: chunks per online view (default 8). */
  numChunks?: number;
  /** m: chunks per target view, combined by their spherical mean (default 1: the full view). */
  targetChunks?: number;
  /** InfoNCE temperature τ (default 0.2; unused by BYOL). */
  temperature?: number;
  /** Norm of the projector and predictor: 'bn' (MoCo v3, default) or 'ln' (§3.4). */
  headNorm?: HeadNorm;
  /** Class-attention blocks between backbone and projector (§3.4): true for two blocks, or options. */
  classAttention?: boolean | (ClassAttentionOptions & { depth?: number });
  /** Projector: 3 layers, hidden 4096, out 256 by default (MoCo v3). */
  projector?: HeadSizes & { outDim?: number };
  /** Predictor: 2 layers, hidden 4096 by default; its output has the projector's size. */
  predictor?: HeadSizes;
  /**
   * A norm without affine parameters on the predictor's output ('mmoco' only). Default false:
   * MoCo v3's code builds the predictor with last_bn=False; true follows the paper's §3.1 text
   * (BN after every fc layer, removed from the predictor's output for BYOL only). BYOL never has
   * one.
   */
  predictorLastNorm?: boolean;
  /** Compute the κ statistics in `forward` (default true; each costs a host sync). */
  monitorKappa?: boolean;
}

/** κ of §3.4 (Banerjee's vMF estimate over the n chunk outputs of each image, both views pooled). */
export interface MethodStats {
  /**
   * κ of the "rep" layer (§3.4): per chunk row, the average of the last transformer block's
   * output patch tokens, CLS excluded (before the ViT's final LayerNorm: `forwardBlocks`).
   */
  kappaRep: number;
  /** κ of the projector output. */
  kappaProj: number;
  /** κ of the predictor output. */
  kappaPred: number;
}

export interface MethodOutput {
  /** The symmetrised loss (a 0-dim tensor with a graph to the online parameters). */
  loss: Tensor;
  /** NaN when n = 1 (κ needs ≥ 2 samples per image) or unless `kappa` is 'stats'. */
  stats: MethodStats;
  /** With `kappa: 'inputs'` and n > 1: the rows κ is computed from. */
  kappaInputs?: KappaInputs;
}

/**
 * The chunks of one view: a `ChunkMask` (as `chunkMask` or `chunksOfPermutation` make it), or a
 * single int64 keep [B·c, k] of equal-length chunks, rows image-major.
 */
export type ViewMask = ChunkMask | Tensor;

/**
 * Explicit masks for `forward` (tests, reproducible runs): per view, n chunks (online) or m
 * (target). Omitted, the masks are drawn at random (and n = 1 / m = 1 use the full, unpermuted
 * view).
 */
export interface ForwardMasks {
  online?: readonly [ViewMask, ViewMask];
  target?: readonly [ViewMask, ViewMask];
}

export interface ForwardOptions extends ForwardMasks {
  /**
   * What forward does about κ (n > 1 only): 'stats' computes it (host syncs; the default with
   * `monitorKappa`), 'inputs' returns its detached rows as `kappaInputs` for `kappaStats` later
   * (nothing read back, so the forward can run inside a CUDA graph or κ wait until the step is
   * done), 'none' skips it (the default without `monitorKappa`).
   */
  kappa?: 'stats' | 'inputs' | 'none';
}

/** What the κ monitor reads: the n chunk rows of every image of both views, image-major. */
export interface KappaInputs {
  rep: Tensor;
  z: Tensor;
  q: Tensor;
  rowsPerImage: number;
}

/** κ of the rep layer, the projector and the predictor from their rows (one host sync each). */
export function kappaStats(k: KappaInputs): MethodStats {
  return {
    kappaRep: vmfKappa(k.rep, k.rowsPerImage).kappa,
    kappaProj: vmfKappa(k.z, k.rowsPerImage).kappa,
    kappaPred: vmfKappa(k.q, k.rowsPerImage).kappa,
  };
}

export interface EncoderOutput {
  /**
   * The "rep" layer of §3.4 per row [rows, D]: the last block's patch tokens (before the final
   * norm, CLS excluded) averaged; null unless asked for.
   */
  rep: Tensor | null;
  /** Projector output [rows, outDim], rows image-major. */
  z: Tensor;
}

/**
 * Row order that takes the concatenated group outputs (group g's row b·count_g + i is chunk
 * first_g + i of image b) to image-major rows b·n + j.
 */
function imageMajorOrder(m: ChunkMask, batch: number, device: string): Tensor {
  const n = m.rowsPerImage;
  const order = new BigInt64Array(batch * n);
  let offset = 0;
  for (const g of m.groups) {
    for (let b = 0; b < batch; b++)
      for (let i = 0; i < g.count; i++) order[b * n + g.first + i] = BigInt(offset + b * g.count + i);
    offset += batch * g.count;
  }
  return torch.tensor(order, { shape: [batch * n], device });
}

/**
 * What the target copies: backbone → [class-attention stack] → projector on the CLS token.
 * (MoCo v3's ViT `base_encoder` with its head replaced by the projector.)
 */
export class ContrastiveEncoder extends nn.Module {
  readonly backbone: VisionTransformer;
  readonly class_attn: ClassAttentionStack | null;
  readonly projector: nn.Sequential;

  constructor(backbone: VisionTransformer, projector: nn.Sequential, classAttn: ClassAttentionStack | null) {
    super();
    this.backbone = this.registerModule('backbone', backbone);
    this.class_attn = classAttn ? this.registerModule('class_attn', classAttn) : null;
    this.projector = this.registerModule('projector', projector);
  }

  /**
   * Projector outputs of the chunk rows of `mask` (omitted: one row per whole image). Chunks of
   * different lengths run through the backbone (and class attention) as separate batches; their
   * CLS features are put back in image-major order before the projector, whose BatchNorm sees
   * all rows together. `withRep` also returns the "rep" rows (κ monitor).
   */
  encode(images: Tensor, mask?: ViewMask, o: { withRep?: boolean } = {}): EncoderOutput {
    return torch.tidy(() => {
      const b = images.shape[0]!;
      const groups = !mask
        ? [{}]
        : mask instanceof torch.Tensor
          ? [{ keep: mask }]
          : mask.groups.map((g) => ({ keep: g.keep, rowsPerImage: g.count }));
      const blocks = this.backbone.forwardBlockGroups(images, groups);
      const cls = blocks.map((x) => {
        const tokens = this.backbone.norm.forward(x);
        return (this.class_attn ? this.class_attn.forward(tokens) : tokens).select(1, 0);
      });
      const order =
        mask && !(mask instanceof torch.Tensor) && mask.groups.length > 1
          ? imageMajorOrder(mask, b, images.device)
          : null;
      const merge = (ts: Tensor[]): Tensor => (order ? torch.cat(ts, 0).indexSelect(0, order) : ts[0]!);
      const rep = o.withRep ? merge(blocks.map((x) => x.slice(1, 1).mean(1))) : null;
      return { rep, z: this.projector.forward(merge(cls)) };
    });
  }

  forward(images: Tensor): Tensor {
    return torch.tidy(() => this.encode(images).z);
  }
}

/** An explicit mask must have `chunks` rows per image (a keep of equal chunks) or be a ChunkMask of `chunks`. */
function checkRows(mask: ViewMask | undefined, batch: number, chunks: number, which: string): void {
  if (!mask) return;
  const got = mask instanceof torch.Tensor ? mask.shape[0]! / batch : mask.rowsPerImage;
  const rows = mask instanceof torch.Tensor ? mask.shape[0]! : mask.groups.reduce((s, g) => s + g.keep.shape[0]!, 0);
  if (got !== chunks || rows !== batch * chunks) {
    throw new RangeError(
      `MaskedContrastive: the ${which} mask has ${rows} rows for ${batch} images; expected ${chunks} chunks per image`,
    );
  }
}

/**
 * Masked MoCo / Masked BYOL. Sub-modules (state-dict prefixes, after MoCo v3's): `base_encoder`
 * (a ContrastiveEncoder), `predictor`, `momentum_encoder` (the EMA target, frozen). Optimise
 * `onlineParameters()`.
 */
export class MaskedContrastive extends nn.Module {
  readonly method: MethodName;
  readonly numChunks: number;
  readonly targetChunks: number;
  readonly temperature: number;
  readonly monitorKappa: boolean;
  /** Width of the projector's output and the predictor's: the space the loss compares in. */
  readonly outDim: number;
  readonly base_encoder: ContrastiveEncoder;
  readonly predictor: nn.Sequential;
  readonly momentum_encoder: ContrastiveEncoder;
  readonly ema: MomentumEncoder<ContrastiveEncoder>;
  /** Data-parallel training: the process group whose keys the loss gathers (null: one process). */
  group: distributed.ProcessGroup | null = null;

  constructor(backbone: VisionTransformer, o: MaskedContrastiveOptions = {}) {
    super();
    this.method = o.method ?? DEFAULT_METHOD;
    if (!METHODS.includes(this.method)) {
      throw new RangeError(`MaskedContrastive: method must be 'mmoco' or 'mbyol', got '${String(this.method)}'`);
    }
    this.numChunks = o.numChunks ?? DEFAULT_NUM_CHUNKS;
    this.targetChunks = o.targetChunks ?? DEFAULT_TARGET_CHUNKS;
    for (const [name, v] of [
      ['numChunks', this.numChunks],
      ['targetChunks', this.targetChunks],
    ] as const) {
      if (!Number.isInteger(v) || v < 1 || v > backbone.numPatches) {
        throw new RangeError(`MaskedContrastive: ${name} must be an integer in [1, ${backbone.numPatches}], got ${v}`);
      }
    }
    this.temperature = o.temperature ?? DEFAULT_TEMPERATURE;
    if (!(this.temperature > 0)) throw new RangeError(`MaskedContrastive: invalid temperature ${this.temperature}`);
    this.monitorKappa = o.monitorKappa ?? true;
    const norm = o.headNorm ?? DEFAULT_HEAD_NORM;
    const dim = backbone.embedDim;
    let ca: ClassAttentionStack | null = null;
    if (o.classAttention) {
      const cao = o.classAttention === true ? {} : o.classAttention;
      ca = new ClassAttentionStack(dim, backbone.numHeads, cao);
    }
    this.outDim = o.projector?.outDim ?? PROJECTOR_SIZE.outDim;
    if (!Number.isInteger(this.outDim) || this.outDim < 1) {
      throw new RangeError(`MaskedContrastive: projector.outDim must be a positive integer, got ${this.outDim}`);
    }
    const proj = buildProjector(dim, { ...o.projector, outDim: this.outDim, norm });
    const predictorLastNorm = o.predictorLastNorm ?? DEFAULT_PREDICTOR_LAST_NORM;
    if (predictorLastNorm && this.method === 'mbyol') {
      throw new RangeError(
        'MaskedContrastive: predictorLastNorm must be false for mbyol (BYOL has no norm on the predictor output)',
      );
    }
    const pred = buildPredictor(this.outDim, {
      ...o.predictor,
      outDim: this.outDim,
      norm,
      lastNorm: predictorLastNorm,
    });
    this.base_encoder = this.registerModule('base_encoder', new ContrastiveEncoder(backbone, proj, ca));
    this.predictor = this.registerModule('predictor', pred);
    this.ema = new MomentumEncoder(this.base_encoder);
    this.momentum_encoder = this.registerModule('momentum_encoder', this.ema.target);
  }

  /**
   * Data-parallel training over `group` (MoCo v3 under DDP): BatchNorm layers become SyncBN,
   * every rank takes rank 0's weights, the loss gathers the keys of all ranks, and `trainStep`
   * averages the gradients over the ranks.
   */
  distribute(group: distributed.ProcessGroup): this {
    this.group = group;
    distributed.convertSyncBatchNorm(this, group);
    distributed.broadcastModule(this, group);
    return this;
  }

  /** The trainable online parameters (base encoder and predictor, requiresGrad true), for the optimiser. */
  onlineParameters(): Tensor[] {
    return [...this.base_encoder.parameters(), ...this.predictor.parameters()].filter((p) => p.requiresGrad);
  }

  /** θ_t ← m·θ_t + (1 − m)·θ_o (MoCo v3's `_update_momentum_encoder`). */
  updateMomentumEncoder(m: number | Tensor): void {
    this.ema.update(m);
  }

  /** Online branch for one view: n chunks per image; returns tokens, z and q = predictor(z), rows image-major. */
  private online(x: Tensor, mask: ViewMask | undefined, withRep: boolean): EncoderOutput & { q: Tensor } {
    const n = this.numChunks;
    const b = x.shape[0]!;
    if (!mask && n > 1) mask = chunkMask(b, this.base_encoder.backbone.numPatches, n, { device: x.device });
    checkRows(mask, b, n, 'online');
    const out = this.base_encoder.encode(x, mask, { withRep });
    return { ...out, q: this.predictor.forward(out.z) };
  }

  /** Target key for one view, without autograd: [B, D] (the spherical mean of m chunk keys when m > 1). */
  private key(x: Tensor, mask?: ViewMask): Tensor {
    const m = this.targetChunks;
    return torch.noGrad(() => {
      if (!mask && m > 1)
        mask = chunkMask(x.shape[0]!, this.momentum_encoder.backbone.numPatches, m, { device: x.device });
      checkRows(mask, x.shape[0]!, m, 'target');
      const z = this.momentum_encoder.encode(x, mask).z;
      return m > 1 ? sphericalMean(z, m) : z;
    });
  }

  /**
   * MoCo v3's forward(x1, x2, m): first the momentum update with `momentum`, then queries
   * q1, q2 [B·n, D] from n random chunks of each view, keys k1, k2 [B, D] from the target (full
   * views, or m chunks and their spherical mean), and the symmetrised loss
   * L(q1, k2) + L(q2, k1), each averaged over its B·n queries (InfoNCE ·2τ for 'mmoco',
   * 2 − 2·cos for 'mbyol'). Masks are drawn with `chunkMask` (the library RNG) unless given.
   */
  forward(x1: Tensor, x2: Tensor, momentum: number | Tensor, o: ForwardOptions = {}): MethodOutput {
    // a guard for untyped callers: a missing momentum would otherwise surface inside the EMA
    if (typeof momentum !== 'number' && !(momentum instanceof torch.Tensor)) {
      throw new TypeError(
        `MaskedContrastive.forward: momentum must be a number or a scalar tensor, got ${momentum === null ? 'null' : typeof momentum}`,
      );
    }
    if (x1.shape.join() !== x2.shape.join()) {
      throw new RangeError(`MaskedContrastive.forward: views differ in shape: [${x1.shape}] vs [${x2.shape}]`);
    }
    this.updateMomentumEncoder(momentum);
    const n = this.numChunks;
    const kappa = n > 1 ? (o.kappa ?? (this.monitorKappa ? 'stats' : 'none')) : 'none';
    return torch.tidy(() => {
      const o1 = this.online(x1, o.online?.[0], kappa !== 'none');
      const o2 = this.online(x2, o.online?.[1], kappa !== 'none');
      const k1 = this.key(x1, o.target?.[0]);
      const k2 = this.key(x2, o.target?.[1]);
      // the loss in float32 even under autocast (bf16 logits would round the softmax's inputs)
      const device = x1.device.startsWith('cuda') ? 'cuda' : 'cpu';
      const loss = torch.autocast({ device, enabled: false }, () => {
        const [q1, q2, a1, a2] = [o1.q.float(), o2.q.float(), k1.float(), k2.float()] as const;
        if (this.method !== 'mmoco') return symmetricByolLoss(q1, q2, a1, a2);
        const g = this.group;
        // distributed: every query against the keys of all ranks (MoCo v3's concat_all_gather)
        const banks = g
          ? {
              k1: { all: g.allGather(a1), offset: g.rank * a1.shape[0]! },
              k2: { all: g.allGather(a2), offset: g.rank * a2.shape[0]! },
            }
          : undefined;
        return symmetricInfoNCE(q1, q2, a1, a2, this.temperature, banks);
      });
      const none: MethodStats = { kappaRep: NaN, kappaProj: NaN, kappaPred: NaN };
      if (kappa === 'none') return { loss, stats: none };
      const inputs: KappaInputs = torch.noGrad(() => ({
        rep: torch.cat([o1.rep!, o2.rep!], 0).detach(),
        z: torch.cat([o1.z, o2.z], 0).detach(),
        q: torch.cat([o1.q, o2.q], 0).detach(),
        rowsPerImage: n,
      }));
      return kappa === 'inputs' ? { loss, stats: none, kappaInputs: inputs } : { loss, stats: kappaStats(inputs) };
    });
  }
}

export interface TrainStepOptions {
  /** Global iteration (0-based); epoch = iter / itersPerEpoch (fractional, as MoCo v3). */
  iter: number;
  /** Iterations per epoch (default: `lrSchedule.itersPerEpoch`). */
  itersPerEpoch?: number;
  /** Total epochs of the momentum schedule (default: `lrSchedule.epochs`). */
  epochs?: number;
  /** Learning-rate schedule; its `apply` sets every group's lr (times its lrScale). */
  lrSchedule: optim.WarmupCosine;
  /** Base momentum m0 of `cosineMomentum` (default 0.99 for 'mmoco', 0.996 for 'mbyol'). */
  baseMomentum?: number;
  /** Clip the online gradients to this global L2 norm (default: no clipping). */
  clipGradNorm?: number;
  /**
   * Mixed precision: the forward (online and target) runs under libtorch's autocast with these
   * options; backward, the optimiser and the loss stay float32. Default: none (float32).
   */
  autocast?: torch.AutocastOptions | null;
  /** Explicit masks (tests, equivalence checks); default: drawn with `chunkMask`. */
  masks?: ForwardMasks;
  /**
   * Compute κ when the model monitors it (default true). It is read after the optimiser step,
   * so its host syncs never stall the step; pass false on steps whose κ nobody reads.
   */
  kappa?: boolean;
}

export interface TrainStepResult extends MethodStats {
  loss: number;
  lr: number;
  momentum: number;
}

/**
 * One training step as MoCo v3's main loop: set lr (WarmupCosine at epoch iter/itersPerEpoch)
 * and momentum (cosineMomentum), loss = model.forward(x1, x2, momentum) (which updates the target
 * first), zeroGrad, backward, optimiser step, then drop the gradients. Everything runs in a tidy
 * scope: only the optimiser's state and the model's own tensors stay.
 */
export function trainStep(
  model: MaskedContrastive,
  optimizer: optim.Optimizer<optim.BaseHyper>,
  x1: Tensor,
  x2: Tensor,
  o: TrainStepOptions,
): TrainStepResult {
  const epoch = o.iter / (o.itersPerEpoch ?? o.lrSchedule.itersPerEpoch);
  const lr = o.lrSchedule.apply(optimizer, epoch);
  const momentum = optim.cosineMomentum(
    epoch,
    o.epochs ?? o.lrSchedule.epochs,
    o.baseMomentum ?? DEFAULT_BASE_MOMENTUM[model.method],
  );
  const kappa = o.kappa !== false && model.monitorKappa ? 'inputs' : 'none';
  return torch.tidy(() => {
    const amp = o.autocast;
    const fwd = (): MethodOutput => model.forward(x1, x2, momentum, { ...o.masks, kappa });
    const { loss, stats, kappaInputs } = amp ? torch.autocast(amp, fwd) : fwd();
    optimizer.zeroGrad();
    loss.backward();
    // data-parallel: gradients averaged over the ranks before clipping and the step (DDP)
    if (model.group) distributed.allReduceGradients(model.onlineParameters(), model.group);
    if (o.clipGradNorm !== undefined) optim.clipGradNorm(optimizer.params(), o.clipGradNorm);
    optimizer.step();
    optimizer.zeroGrad();
    return { loss: Number(loss.item()), lr, momentum, ...(kappaInputs ? kappaStats(kappaInputs) : stats) };
  });
}
