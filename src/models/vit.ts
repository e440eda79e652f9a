// Vision Transformer with timm's VisionTransformer parameter names (so a state dict loads into
// timm), MoCo-v3's fixed sin-cos position embedding and weight initialisation, and a forward
// that runs only the kept patch tokens of each row (MAE-style token dropping).
import { arange, cat, F, nn, noGrad, tidy, zeros } from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { buildSincosPosEmbed } from './pos-embed.js';

type Pair = number | readonly [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** timm's PatchEmbed: a conv with kernel = stride = patch size; output [B, N, D]. */
export class PatchEmbed extends nn.Module {
  readonly imgSize: [number, number];
  readonly patchSize: [number, number];
  readonly gridSize: [number, number];
  readonly numPatches: number;
  readonly proj: nn.Conv2d;

  constructor(imgSize: Pair, patchSize: Pair, inChans: number, embedDim: number) {
    super();
    this.imgSize = pair(imgSize);
    this.patchSize = pair(patchSize);
    const [h, w] = this.imgSize;
    const [ph, pw] = this.patchSize;
    if (h % ph !== 0 || w % pw !== 0) {
      throw new RangeError(`PatchEmbed: image size ${h}x${w} is not a multiple of the patch size ${ph}x${pw}`);
    }
    this.gridSize = [h / ph, w / pw];
    this.numPatches = this.gridSize[0] * this.gridSize[1];
    this.proj = this.registerModule(
      'proj',
      new nn.Conv2d(inChans, embedDim, this.patchSize, { stride: this.patchSize }),
    );
  }

  forward(x: Tensor): Tensor {
    const [, , h, w] = x.shape;
    if (h !== this.imgSize[0] || w !== this.imgSize[1]) {
      throw new RangeError(`PatchEmbed: input ${h}x${w} does not match the model's ${this.imgSize.join('x')}`);
    }
    return tidy(() => this.proj.forward(x).flatten(2).transpose(1, 2));
  }
}

/** timm's Attention: one qkv Linear (with bias), heads, fused scaled-dot-product attention, proj. */
export class Attention extends nn.Module {
  readonly numHeads: number;
  readonly qkv: nn.Linear;
  readonly proj: nn.Linear;

  constructor(dim: number, numHeads: number, o: { qkvBias?: boolean } = {}) {
    super();
    if (dim % numHeads !== 0) throw new RangeError(`Attention: dim ${dim} is not divisible by ${numHeads} heads`);
    this.numHeads = numHeads;
    this.qkv = this.registerModule('qkv', new nn.Linear(dim, dim * 3, { bias: o.qkvBias ?? true }));
    this.proj = this.registerModule('proj', new nn.Linear(dim, dim));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      const [b, n, c] = x.shape as [number, number, number];
      const h = this.numHeads;
      const qkv = this.qkv
        .forward(x)
        .reshape(b, n, 3, h, c / h)
        .permute(2, 0, 3, 1, 4);
      const [q, k, v] = qkv.unbind(0) as [Tensor, Tensor, Tensor];
      const o = F.scaledDotProductAttention(q, k, v);
      return this.proj.forward(o.transpose(1, 2).reshape(b, n, c));
    });
  }
}

/** timm's Mlp: fc1 → GELU → fc2. */
export class Mlp extends nn.Module {
  readonly fc1: nn.Linear;
  readonly act: nn.GELU;
  readonly fc2: nn.Linear;
  constructor(dim: number, hidden: number) {
    super();
    this.fc1 = this.registerModule('fc1', new nn.Linear(dim, hidden));
    this.act = this.registerModule('act', new nn.GELU());
    this.fc2 = this.registerModule('fc2', new nn.Linear(hidden, dim));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.fc2.forward(this.act.forward(this.fc1.forward(x))));
  }
}

/** timm's pre-norm Block: x + dp(attn(norm1(x))), then x + dp(mlp(norm2(x))). */
export class Block extends nn.Module {
  readonly norm1: nn.LayerNorm;
  readonly attn: Attention;
  readonly dropPath: nn.DropPath;
  readonly norm2: nn.LayerNorm;
  readonly mlp: Mlp;

  constructor(dim: number, numHeads: number, o: { mlpRatio?: number; qkvBias?: boolean; dropPath?: number } = {}) {
    super();
    this.norm1 = this.registerModule('norm1', new nn.LayerNorm(dim, { eps: 1e-6 }));
    this.attn = this.registerModule('attn', new Attention(dim, numHeads, { qkvBias: o.qkvBias }));
    // DropPath has no state, so it adds no names (timm's drop_path1/drop_path2)
    this.dropPath = this.registerModule('drop_path', new nn.DropPath(o.dropPath ?? 0));
    this.norm2 = this.registerModule('norm2', new nn.LayerNorm(dim, { eps: 1e-6 }));
    this.mlp = this.registerModule('mlp', new Mlp(dim, Math.floor(dim * (o.mlpRatio ?? 4))));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      const y = x.add(this.dropPath.forward(this.attn.forward(this.norm1.forward(x))));
      return y.add(this.dropPath.forward(this.mlp.forward(this.norm2.forward(y))));
    });
  }
}

export interface ViTOptions {
  /** image size (square or [H, W]); default 224 */
  imgSize?: Pair;
  /** patch size; default 16 */
  patchSize?: Pair;
  inChans?: number;
  embedDim?: number;
  depth?: number;
  numHeads?: number;
  mlpRatio?: number;
  qkvBias?: boolean;
  /** stochastic depth: block i drops with rate i/(depth-1)·dropPathRate (timm's linspace) */
  dropPathRate?: number;
  /** classifier classes; 0 (default) makes `head` an Identity */
  numClasses?: number;
  /** MoCo-v3's stop_grad_conv1: the patch embedding is frozen (requiresGrad false) */
  stopGradConv1?: boolean;
  /** 'mocov3' (default): MoCo-v3's weight init; 'torch': the layers' PyTorch defaults */
  init?: 'mocov3' | 'torch';
  /**
   * What the head sees, as timm's `global_pool` (MAE's fine-tuning models): 'token' (default),
   * the normed CLS token; 'avg', the mean of the patch tokens (no CLS) through `fc_norm`, a
   * LayerNorm(eps 1e-6), with `norm` an Identity (so `norm.*` keys disappear, `fc_norm.*` appear).
   */
  globalPool?: 'token' | 'avg';
}

export interface ForwardHeadOptions {
  /** stop before the head: the pooled (and fc_norm-ed) feature, timm's pre_logits */
  preLogits?: boolean;
}

export interface ForwardOptions {
  /** int64 [rows, k]: the patch indices (0..N-1) each row keeps; omitted, every row is a whole image */
  keep?: Tensor;
  /** rows per image (row r belongs to image ⌊r / rowsPerImage⌋); default rows / B */
  rowsPerImage?: number;
}

/**
 * ViT with timm's names (cls_token, pos_embed, patch_embed.proj, blocks.i.{norm1, attn.qkv,
 * attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head) and MoCo-v3's fixed 2-D sin-cos position
 * embedding (a parameter with requiresGrad false, CLS slot zero, as MoCo-v3 keeps it).
 */
export class VisionTransformer extends nn.Module {
  readonly embedDim: number;
  readonly numHeads: number;
  readonly depth: number;
  readonly numPatches: number;
  readonly patch_embed: PatchEmbed;
  readonly cls_token: Tensor;
  readonly pos_embed: Tensor;
  readonly blocks: nn.ModuleList<Block>;
  readonly globalPool: 'token' | 'avg';
  /** LayerNorm on every token ('token' pooling), Identity with 'avg' */
  readonly norm: nn.LayerNorm | nn.Identity;
  /** LayerNorm on the averaged patch tokens ('avg' pooling), Identity with 'token' */
  readonly fc_norm: nn.LayerNorm | nn.Identity;
  readonly head: nn.Linear | nn.Identity;

  constructor(o: ViTOptions = {}) {
    super();
    const dim = (this.embedDim = o.embedDim ?? 768);
    this.depth = o.depth ?? 12;
    this.numHeads = o.numHeads ?? 12;
    this.patch_embed = new PatchEmbed(o.imgSize ?? 224, o.patchSize ?? 16, o.inChans ?? 3, dim);
    this.numPatches = this.patch_embed.numPatches;
    this.cls_token = this.registerParameter('cls_token', zeros([1, 1, dim]));
    const [gh, gw] = this.patch_embed.gridSize;
    this.pos_embed = this.registerParameter('pos_embed', buildSincosPosEmbed(gh, gw, dim));
    this.pos_embed.requiresGrad_(false);
    this.registerModule('patch_embed', this.patch_embed);
    const dpr = o.dropPathRate ?? 0;
    const blocks: Block[] = [];
    for (let i = 0; i < this.depth; i++) {
      const rate = this.depth > 1 ? (dpr * i) / (this.depth - 1) : 0;
      blocks.push(new Block(dim, this.numHeads, { mlpRatio: o.mlpRatio, qkvBias: o.qkvBias, dropPath: rate }));
    }
    this.blocks = this.registerModule('blocks', new nn.ModuleList(blocks));
    const pool = (this.globalPool = o.globalPool ?? 'token');
    if (pool !== 'token' && pool !== 'avg') {
      throw new RangeError(`VisionTransformer: globalPool must be 'token' or 'avg', got '${String(pool)}'`);
    }
    const ln = (): nn.LayerNorm => new nn.LayerNorm(dim, { eps: 1e-6 });
    // registered before head, as timm orders norm, fc_norm, head (an Identity adds no keys)
    this.norm = this.registerModule('norm', pool === 'avg' ? new nn.Identity() : ln());
    this.fc_norm = this.registerModule('fc_norm', pool === 'avg' ? ln() : new nn.Identity());
    const nc = o.numClasses ?? 0;
    this.head = this.registerModule('head', nc > 0 ? new nn.Linear(dim, nc) : new nn.Identity());
    if ((o.init ?? 'mocov3') === 'mocov3') this.initMocoV3();
    if (o.stopGradConv1) {
      this.patch_embed.proj.weight.requiresGrad_(false);
      this.patch_embed.proj.bias?.requiresGrad_(false);
    }
  }

  /**
   * MoCo-v3's init (vits.py): xavier-uniform on every Linear, with qkv's bound from a d×d
   * matrix (Q, K, V treated as three), zero biases; patch embedding uniform with the bound of
   * xavier on the flattened conv weight, zero bias; cls_token N(0, 1e-6²).
   */
  initMocoV3(): void {
    noGrad(() => {
      for (const [name, m] of this.namedModules()) {
        if (!(m instanceof nn.Linear)) continue;
        if (name.endsWith('qkv')) {
          const bound = Math.sqrt(6 / (m.weight.shape[0]! / 3 + m.weight.shape[1]!));
          nn.init.uniform(m.weight, -bound, bound);
        } else {
          nn.init.xavierUniform(m.weight);
        }
        if (m.bias) nn.init.zeros(m.bias);
      }
      nn.init.normal(this.cls_token, 0, 1e-6);
      const w = this.patch_embed.proj.weight;
      const [out, inC, kh, kw] = w.shape as [number, number, number, number];
      const bound = Math.sqrt(6 / (inC * kh * kw + out));
      nn.init.uniform(w, -bound, bound);
      if (this.patch_embed.proj.bias) nn.init.zeros(this.patch_embed.proj.bias);
    });
  }

  /**
   * Patch-embeds the B images once, adds the position embeddings, gathers each row's kept patch
   * tokens (row r from image ⌊r / rowsPerImage⌋), prepends CLS (+ its zero position embedding)
   * and runs the blocks on [rows, 1 + k, D]. Returns the last block's output (before the final
   * norm): CLS at index 0, then the kept tokens in `keep`'s order.
   */
  forwardBlocks(images: Tensor, o: ForwardOptions = {}): Tensor {
    return tidy(() => this.forwardBlockGroups(images, [o])[0]!);
  }

  /**
   * `forwardBlocks` for several row groups of the same images (chunks of different lengths):
   * the patch embedding runs once for all groups, then each group goes through the blocks as
   * its own batch. Returns one [rows_g, 1 + k_g, D] per group.
   */
  forwardBlockGroups(images: Tensor, groups: readonly ForwardOptions[]): Tensor[] {
    return tidy(() => {
      const b = images.shape[0]!;
      const x = this.patch_embed.forward(images).add(this.pos_embed.slice(1, 1));
      return groups.map((o) => {
        let t = x;
        if (o.keep) {
          if (o.keep.ndim !== 2)
            throw new RangeError(`forwardBlocks: keep must be [rows, k], got [${o.keep.shape.join(', ')}]`);
          const rows = o.keep.shape[0]!;
          const per = o.rowsPerImage ?? rows / b;
          if (!Number.isInteger(per) || per <= 0 || per * b !== rows) {
            throw new RangeError(`forwardBlocks: ${rows} rows do not split into ${b} images (rowsPerImage ${per})`);
          }
          const img = arange(rows, undefined, 1, { dtype: 'int64', device: images.device })
            .div(per, 'floor')
            .unsqueeze(1);
          t = x.index([img, o.keep.to({ device: images.device, dtype: 'int64' })]);
        } else if (o.rowsPerImage !== undefined && o.rowsPerImage !== 1) {
          throw new RangeError('forwardBlocks: rowsPerImage needs keep');
        }
        const cls = this.cls_token.add(this.pos_embed.slice(1, 0, 1)).expand(t.shape[0]!, -1, -1);
        t = cat([cls, t], 1);
        for (const blk of this.blocks) t = blk.forward(t);
        return t;
      });
    });
  }

  /**
   * The final-norm output of `forwardBlocks`: CLS at index 0, then the kept tokens in `keep`'s
   * order (timm's forward_features; with 'avg' pooling `norm` is an Identity, so the tokens are
   * the last block's).
   */
  forwardFeatures(images: Tensor, o: ForwardOptions = {}): Tensor {
    return tidy(() => this.norm.forward(this.forwardBlocks(images, o)));
  }

  /**
   * timm's forward_head on `forwardFeatures`' tokens [B, 1 + k, D]: pool (CLS, or the mean of the
   * other tokens), `fc_norm`, then the head unless `preLogits`.
   */
  forwardHead(tokens: Tensor, o: ForwardHeadOptions = {}): Tensor {
    return tidy(() => {
      const pooled = this.globalPool === 'avg' ? tokens.slice(1, 1).mean(1) : tokens.select(1, 0);
      const x = this.fc_norm.forward(pooled);
      return o.preLogits ? x : this.head.forward(x);
    });
  }

  /** The head (Identity by default) on the pooled feature. */
  forward(images: Tensor, o: ForwardOptions = {}): Tensor {
    return tidy(() => this.forwardHead(this.forwardFeatures(images, o)));
  }
}
