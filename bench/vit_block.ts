// A ViT-Tiny transformer block (dim 192, 3 heads, MLP 768, 65 tokens) for the thread study:
// pre-norm attention and GELU MLP with residuals; bench/threads_torch.py builds the same one.
import { F, noGrad, randn, tidy, type Tensor } from '../src/torch/index.js';

export const VIT_TINY = { dim: 192, heads: 3, mlp: 768, tokens: 65 } as const;

export interface VitBlock {
  params: Tensor[];
  /** One training step on input x [batch, 65, 192]: grads set to none, forward, loss = mean, backward. */
  step(x: Tensor): void;
}

export function vitBlock(): VitBlock {
  const { dim, heads, mlp, tokens } = VIT_TINY;
  const headDim = dim / heads;
  const scale = 1 / Math.sqrt(headDim);
  const param = (shape: number[], fill?: number): Tensor =>
    noGrad(() =>
      tidy(() =>
        fill === undefined ? randn(shape).mul(1 / Math.sqrt(shape[shape.length - 1]!)) : randn(shape).mul(0).add(fill),
      ),
    ).requiresGrad_(true);
  const ln1w = param([dim], 1);
  const ln1b = param([dim], 0);
  const qkvW = param([3 * dim, dim]);
  const qkvB = param([3 * dim], 0);
  const projW = param([dim, dim]);
  const projB = param([dim], 0);
  const ln2w = param([dim], 1);
  const ln2b = param([dim], 0);
  const fc1W = param([mlp, dim]);
  const fc1B = param([mlp], 0);
  const fc2W = param([dim, mlp]);
  const fc2B = param([dim], 0);
  const params = [ln1w, ln1b, qkvW, qkvB, projW, projB, ln2w, ln2b, fc1W, fc1B, fc2W, fc2B];

  const forward = (x: Tensor): Tensor => {
    const b = x.size(0) as number;
    const h = F.layerNorm(x, [dim], ln1w, ln1b);
    const qkv = F.linear(h, qkvW, qkvB).reshape(b, tokens, 3, heads, headDim).permute(2, 0, 3, 1, 4);
    const [q, k, v] = qkv.unbind(0) as [Tensor, Tensor, Tensor];
    const att = F.softmax(q.matmul(k.mT).mul(scale), -1);
    const o = att.matmul(v).transpose(1, 2).reshape(b, tokens, dim);
    const x1 = x.add(F.linear(o, projW, projB));
    const m = F.linear(F.gelu(F.linear(F.layerNorm(x1, [dim], ln2w, ln2b), fc1W, fc1B)), fc2W, fc2B);
    return x1.add(m);
  };

  return {
    params,
    step: (x) =>
      tidy(() => {
        for (const p of params) p.grad = null;
        forward(x).mean().backward();
      }),
  };
}
