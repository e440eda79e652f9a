// CaiT's class-attention blocks (LayerScale_Block_CA with Class_Attention): the CLS token
// attends to [CLS, patches] and is updated; the patch tokens pass through unchanged.
import { cat, F, nn, ones, tidy } from '../torch/index.js';
import type { Tensor } from '../torch/index.js';
import { Mlp } from './vit.js';
import { CLASS_ATTENTION_DEPTH } from './sizes.js';

/** CaiT's Class_Attention: q from the CLS token, k and v from all tokens; output [B, 1, C]. */
export class ClassAttention extends nn.Module {
  readonly numHeads: number;
  readonly q: nn.Linear;
  readonly k: nn.Linear;
  readonly v: nn.Linear;
  readonly proj: nn.Linear;

  constructor(dim: number, numHeads: number, o: { qkvBias?: boolean } = {}) {
    super();
    if (dim % numHeads !== 0) throw new RangeError(`ClassAttention: dim ${dim} is not divisible by ${numHeads} heads`);
    this.numHeads = numHeads;
    const bias = o.qkvBias ?? true;
    this.q = this.registerModule('q', new nn.Linear(dim, dim, { bias }));
    this.k = this.registerModule('k', new nn.Linear(dim, dim, { bias }));
    this.v = this.registerModule('v', new nn.Linear(dim, dim, { bias }));
    this.proj = this.registerModule('proj', new nn.Linear(dim, dim));
  }

  forward(x: Tensor): Tensor {
    return tidy(() => {
      const [b, n, c] = x.shape as [number, number, number];
      const h = this.numHeads;
      const q = this.q
        .forward(x.slice(1, 0, 1))
        .reshape(b, 1, h, c / h)
        .transpose(1, 2);
      const k = this.k
        .forward(x)
        .reshape(b, n, h, c / h)
        .transpose(1, 2);
      const v = this.v
        .forward(x)
        .reshape(b, n, h, c / h)
        .transpose(1, 2);
      const o = F.scaledDotProductAttention(q, k, v);
      return this.proj.forward(o.transpose(1, 2).reshape(b, 1, c));
    });
  }
}

export interface ClassAttentionOptions {
  mlpRatio?: number;
  qkvBias?: boolean;
  /** LayerScale's initial gamma (CaiT: 1e-5 for its deep models) */
  initValues?: number;
  dropPath?: number;
  eps?: number;
}

/** CaiT's LayerScale_Block_CA: cls += γ1·attn(norm1([cls, x])); cls += γ2·mlp(norm2(cls)). */
export class ClassAttentionBlock extends nn.Module {
  readonly norm1: nn.LayerNorm;
  readonly attn: ClassAttention;
  readonly dropPath: nn.DropPath;
  readonly norm2: nn.LayerNorm;
  readonly mlp: Mlp;
  readonly gamma_1: Tensor;
  readonly gamma_2: Tensor;

  constructor(dim: number, numHeads: number, o: ClassAttentionOptions = {}) {
    super();
    const eps = o.eps ?? 1e-6;
    this.norm1 = this.registerModule('norm1', new nn.LayerNorm(dim, { eps }));
    this.attn = this.registerModule('attn', new ClassAttention(dim, numHeads, { qkvBias: o.qkvBias }));
    this.dropPath = this.registerModule('drop_path', new nn.DropPath(o.dropPath ?? 0));
    this.norm2 = this.registerModule('norm2', new nn.LayerNorm(dim, { eps }));
    this.mlp = this.registerModule('mlp', new Mlp(dim, Math.floor(dim * (o.mlpRatio ?? 4))));
    const g = o.initValues ?? 1e-5;
    this.gamma_1 = this.registerParameter('gamma_1', ones(dim).mul_(g));
    this.gamma_2 = this.registerParameter('gamma_2', ones(dim).mul_(g));
  }

  /** x: the patch tokens [B, N, C]; cls: [B, 1, C]; returns the new cls [B, 1, C]. */
  forward(x: Tensor, cls: Tensor): Tensor {
    return tidy(() => {
      const u = cat([cls, x], 1);
      const c1 = cls.add(this.dropPath.forward(this.attn.forward(this.norm1.forward(u)).mul(this.gamma_1)));
      return c1.add(this.dropPath.forward(this.mlp.forward(this.norm2.forward(c1)).mul(this.gamma_2)));
    });
  }
}

/**
 * A stack of class-attention blocks (two by default) between the backbone and the projector:
 * takes the backbone's output [B, 1 + N, C] (CLS first), updates the CLS token through the
 * blocks and returns [B, 1 + N, C] with the new CLS and the backbone's patch tokens unchanged.
 * Parameter names: blocks.{i}.{norm1, attn.{q,k,v,proj}, norm2, mlp.fc1, mlp.fc2, gamma_1, gamma_2}.
 */
export class ClassAttentionStack extends nn.Module {
  readonly blocks: nn.ModuleList<ClassAttentionBlock>;

  constructor(dim: number, numHeads: number, o: ClassAttentionOptions & { depth?: number } = {}) {
    super();
    const depth = o.depth ?? CLASS_ATTENTION_DEPTH;
    const blocks = Array.from({ length: depth }, () => new ClassAttentionBlock(dim, numHeads, o));
    this.blocks = this.registerModule('blocks', new nn.ModuleList(blocks));
  }

  forward(tokens: Tensor): Tensor {
    return tidy(() => {
      const x = tokens.slice(1, 1);
      let cls = tokens.slice(1, 0, 1);
      for (const blk of this.blocks) cls = blk.forward(x, cls);
      return cat([cls, x], 1);
    });
  }
}
