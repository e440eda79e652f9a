// bf16 autocast on the method's parity cases (test/fixtures/method.json): the loss and the
// gradients of one step with the forward under autocast against the same step in float32.
//
// The bound and why: bfloat16 keeps 8 significant bits, unit roundoff u = 2^-8. Autocast rounds
// both operands of every matmul to bf16 (products accumulate in float32), so each matmul's output
// moves by up to ~2u relative to Σ|a·b|, and the loss sits behind a handful of such stages:
// |L_bf16 − L_fp32| ≤ 8u·|L| (3.1 %). Gradients pass twice as many stages and, more importantly,
// inherit the conditioning of the network: with BatchNorm heads over 4-image batches (these
// fixtures) a perturbation of the *inputs alone* by u, computed entirely in float32, already moves
// the gradient by 10–40 %, since BN's backward subtracts large, nearly equal terms. So the gradient
// bound is relative to that measured sensitivity ρ (the same step in float32 with the two views
// multiplied by 1 + u·N(0, 1), averaged over 3 draws): ‖g_bf16 − g_fp32‖ ≤ max(16u, 8ρ)·‖g_fp32‖
// over all online parameters — bf16 may be no worse than eight input-level roundings (autocast
// rounds weights and activations at every matmul, not only the input: with every patch seen, the
// worst case, BYOL n = 2, m = 3 with BN heads and class attention, measured 0.48 = 7.4ρ here;
// six random masks of the same case gave 0.08–0.35), and for the well-conditioned LN heads no
// worse than 16u (6.25 %) —
// and the direction must agree (cosine ≥ 0.9).
//
// Those bounds alone would pass with autocast off (bf16 = float32 exactly), so each case also
// checks that autocast ran: a matmul inside the same scope yields bfloat16, and the step moved —
// loss by more than u/64 relative, gradient by more than u/4 (measured: at least 2.9e-4 = u/13
// and 4.1e-3 = u, against exactly 0 in float32).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import { VisionTransformer } from '../../src/models/index.js';
import { chunksOfPermutation, MaskedContrastive, type ViewMask } from '../../src/ssl/index.js';
import { T, type Rec } from '../models/fixture.js';

const U = 2 ** -8;

interface Case {
  method: 'mmoco' | 'mbyol';
  n: number;
  m: number;
  norm: 'bn' | 'ln';
  class_attention: boolean;
  momentum: number;
  state: string;
  predictor_last_norm: boolean;
  /** equal chunks: keep rows; uneven chunks: the per-image permutations */
  keeps: Partial<Record<'q1' | 'q2' | 'k1' | 'k2', Rec>>;
  perms: Partial<Record<'q1' | 'q2' | 'k1' | 'k2', Rec>>;
}

const fixture = JSON.parse(
  readFileSync(join(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/method.json'), 'utf8'),
) as { cases: Record<string, Case>; states: Record<string, Record<string, Rec>>; views: { x1: Rec; x2: Rec } };

/** Loss and flattened online gradient of one step; `mode` picks bf16 autocast or jittered float32 views. */
function step(
  c: Case,
  mode: 'fp32' | 'bf16' | { jitterSeed: number },
): { loss: number; grad: Tensor; matmulDtype: string } {
  return torch.tidy(() => {
    const backbone = new VisionTransformer({ imgSize: 16, patchSize: 4, embedDim: 16, depth: 2, numHeads: 2 });
    const model = new MaskedContrastive(backbone, {
      method: c.method,
      numChunks: c.n,
      targetChunks: c.m,
      headNorm: c.norm,
      classAttention: c.class_attention,
      projector: { hiddenDim: 32, outDim: 8 },
      predictor: { hiddenDim: 32 },
      predictorLastNorm: c.predictor_last_norm,
    });
    model.loadStateDict(new Map(Object.entries(fixture.states[c.state]!).map(([k, r]) => [k, T(r)])));
    let x1 = T(fixture.views.x1);
    let x2 = T(fixture.views.x2);
    if (typeof mode === 'object') {
      torch.manualSeed(mode.jitterSeed);
      x1 = x1.mul(torch.randnLike(x1).mul(U).add(1));
      x2 = x2.mul(torch.randnLike(x2).mul(U).add(1));
    }
    const mask = (k: 'q1' | 'q2' | 'k1' | 'k2'): ViewMask | undefined => {
      const perm = c.perms[k];
      if (perm) return chunksOfPermutation(T(perm), k.startsWith('q') ? c.n : c.m);
      return c.keeps[k] && T(c.keeps[k]);
    };
    const pair = (a?: ViewMask, b?: ViewMask): [ViewMask, ViewMask] | undefined => (a && b ? [a, b] : undefined);
    const masks = { online: pair(mask('q1'), mask('q2')), target: pair(mask('k1'), mask('k2')) };
    const fwd = (): Tensor => model.forward(x1, x2, c.momentum, masks).loss;
    // the dtype of a matmul run in the same scope as the forward
    let matmulDtype = '';
    const probed = (): Tensor => {
      const l = fwd();
      matmulDtype = torch.matmul(torch.ones([2, 3]), torch.ones([3, 2])).dtype;
      return l;
    };
    const loss = mode === 'bf16' ? torch.autocast({ device: 'cpu', dtype: 'bfloat16' }, probed) : probed();
    loss.backward();
    const grads = model.onlineParameters().map((p) => p.grad!.reshape(-1));
    const grad = torch.cat(grads, 0);
    const v = Number(loss.item());
    model.dispose();
    return { loss: v, grad, matmulDtype };
  });
}

for (const [name, c] of Object.entries(fixture.cases)) {
  test(`bf16 step agrees with float32 within bf16 tolerance (${name})`, () => {
    torch.tidy(() => {
      const f = step(c, 'fp32');
      const b = step(c, 'bf16');
      // autocast ran: bf16 matmuls, and the step is not float32's
      assert.equal(f.matmulDtype, 'float32');
      assert.equal(b.matmulDtype, 'bfloat16', 'a matmul under autocast is bfloat16');
      assert.ok(
        Math.abs(b.loss - f.loss) > (U / 64) * Math.abs(f.loss),
        `bf16 loss ${b.loss} equals float32's ${f.loss}`,
      );
      assert.ok(Math.abs(b.loss - f.loss) <= 8 * U * Math.abs(f.loss), `loss ${b.loss} vs ${f.loss}`);
      const gnorm = Number(f.grad.norm().item());
      const rho =
        [1, 2, 3]
          .map((s) => Number(step(c, { jitterSeed: s }).grad.sub(f.grad).norm().item()) / gnorm)
          .reduce((s, x) => s + x, 0) / 3;
      const err = Number(b.grad.sub(f.grad).norm().item()) / gnorm;
      assert.ok(err > U / 4, `gradient: bf16 moved it by only ${err} relative: did autocast run?`);
      const bound = Math.max(16 * U, 8 * rho);
      assert.ok(
        err <= bound,
        `gradient: relative error ${err.toFixed(4)} > bound ${bound.toFixed(4)} (ρ ${rho.toFixed(4)})`,
      );
      const cos = Number(b.grad.mul(f.grad).sum().item()) / (Number(b.grad.norm().item()) * gnorm);
      assert.ok(cos >= 0.9, `gradient direction: cosine ${cos}`);
    });
  });
}
