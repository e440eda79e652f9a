// Masked MoCo / Masked BYOL (§3) and the momentum encoder on a tiny ViT: one full step (momentum
// update, loss, gradients, AdamW) against PyTorch 1.13 (test/fixtures/method.json, written by
// test/fixtures/make_method_fixtures.py after MoCo v3's builder.py), n = m = 1 against an
// independent recomputation of MoCo v3's / BYOL's loss (features from the modules directly, the
// loss in plain JS doubles), the EMA formula, gradient flow (online yes, target no), κ stats, and
// a few training steps (loss goes down, no tensor leaks).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import { optim } from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import { VisionTransformer } from '../../src/models/index.js';
import {
  chunkMask,
  chunksOfPermutation,
  emaUpdate_,
  MaskedContrastive,
  MomentumEncoder,
  trainStep,
  type MaskedContrastiveOptions,
  type ViewMask,
} from '../../src/ssl/index.js';

const { tidy, noGrad, liveTensors } = torch;

const B = 6;

function tinyBackbone(): VisionTransformer {
  return new VisionTransformer({ imgSize: 16, patchSize: 4, embedDim: 32, depth: 2, numHeads: 4 });
}

function tinyModel(o: MaskedContrastiveOptions = {}): MaskedContrastive {
  return new MaskedContrastive(tinyBackbone(), {
    projector: { hiddenDim: 64, outDim: 16 },
    predictor: { hiddenDim: 64 },
    ...o,
  });
}

function views(seed = 1): [Tensor, Tensor] {
  torch.manualSeed(seed);
  const x1 = torch.randn([B, 3, 16, 16]);
  const x2 = x1.add(torch.randn([B, 3, 16, 16]).mul(0.3));
  return [x1, x2];
}

/** Rows of a 2-D tensor as JS arrays of doubles. */
function rows(t: Tensor): number[][] {
  const [r, c] = t.shape as [number, number];
  const a = Array.from(t.detach().double().contiguous().toTypedArray() as Float64Array);
  return Array.from({ length: r }, (_, i) => a.slice(i * c, (i + 1) * c));
}

const unit = (v: number[]): number[] => {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return v.map((x) => x / Math.max(n, 1e-12));
};
const dot = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i]!, 0);

/** MoCo v3's contrastive_loss(q, k) = CE(q̂·k̂ᵀ/τ, arange) · 2τ, in doubles. */
function mocoLoss(q: number[][], k: number[][], tau: number): number {
  const qn = q.map(unit);
  const kn = k.map(unit);
  let ce = 0;
  qn.forEach((qi, i) => {
    const logits = kn.map((kj) => dot(qi, kj) / tau);
    const mx = Math.max(...logits);
    const lse = mx + Math.log(logits.reduce((s, l) => s + Math.exp(l - mx), 0));
    ce += lse - logits[i]!;
  });
  return (ce / q.length) * 2 * tau;
}

/** BYOL: mean over the batch of 2 − 2·cos(q, k). */
function byolLossJs(q: number[][], k: number[][]): number {
  return q.reduce((s, qi, i) => s + 2 - 2 * dot(unit(qi), unit(k[i]!)), 0) / q.length;
}

/** q = predictor(projector(CLS of the online backbone)), k = projector(CLS of the target backbone), full views. */
function features(model: MaskedContrastive, x: Tensor): { q: number[][]; k: number[][] } {
  return tidy(() => {
    const on = model.base_encoder;
    const z = on.projector.forward(on.backbone.forwardFeatures(x).select(1, 0));
    const q = model.predictor.forward(z);
    const tg = model.momentum_encoder;
    const k = noGrad(() => tg.projector.forward(tg.backbone.forwardFeatures(x).select(1, 0)));
    return { q: rows(q), k: rows(k) };
  });
}

function close(got: number, want: number, tol: number, what: string): void {
  assert.ok(Math.abs(got - want) <= tol * (1 + Math.abs(want)), `${what}: ${got} vs ${want}`);
}

/** Moves the online parameters away from the target's so that the EMA update is visible. */
function perturbOnline(model: MaskedContrastive, scale = 0.05): void {
  noGrad(() => {
    for (const p of model.base_encoder.parameters()) p.add_(torch.randnLike(p).mul(scale));
  });
}

interface Rec {
  dtype: 'float32' | 'float64' | 'int64';
  shape: number[];
  data: number[];
}
interface StepCase {
  method: 'mmoco' | 'mbyol';
  n: number;
  m: number;
  norm: 'bn' | 'ln';
  class_attention: boolean;
  momentum: number;
  /** the predictor has a norm on its output (§3.1's "BN after every fc") */
  predictor_last_norm: boolean;
  /** key of the shared state dict (`states`) */
  state: string;
  /** equal chunks (n | N): keep rows [B·c, N/c] */
  keeps: Partial<Record<'q1' | 'q2' | 'k1' | 'k2', Rec>>;
  /** uneven chunks (n ∤ N): the per-image permutations [B, N], cut by the reference's own split */
  perms: Partial<Record<'q1' | 'q2' | 'k1' | 'k2', Rec>>;
  loss: number;
  /** κ of rep / proj / pred (n > 1), null for n = 1 */
  kappa: { rep: number; proj: number; pred: number } | null;
  grads: Record<string, Rec>;
  after_update: Record<string, Rec>;
  after_step: Record<string, Rec>;
}

function findFixture(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'test/fixtures/method.json');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('test/fixtures/method.json not found (run make_method_fixtures.py)');
    dir = parent;
  }
}

function T(r: Rec): Tensor {
  if (r.dtype === 'int64')
    return torch.tensor(
      BigInt64Array.from(r.data, (v) => BigInt(v)),
      { shape: r.shape },
    );
  if (r.dtype === 'float64') return torch.tensor(Float64Array.from(r.data), { shape: r.shape });
  return torch.tensor(Float32Array.from(r.data), { shape: r.shape });
}

/** max |got − want| ≤ rel · max(1, max |want|), same shape. */
function assertClose(got: Tensor, want: Rec, what: string, rel = 1e-4): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const g = Array.from(got.detach().double().contiguous().toTypedArray() as Float64Array);
  const scale = Math.max(1, ...want.data.map(Math.abs));
  let worst = 0;
  g.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want.data[i]!))));
  assert.ok(worst <= rel * scale, `${what}: max |diff| ${worst} > ${rel * scale}`);
}

const methodFixture = JSON.parse(readFileSync(findFixture(), 'utf8')) as {
  cases: Record<string, StepCase>;
  states: Record<string, Record<string, Rec>>;
  views: { x1: Rec; x2: Rec };
};
const stepCases = methodFixture.cases;

for (const [name, c] of Object.entries(stepCases)) {
  test(`PyTorch parity of one step (${name}): momentum update, loss, gradients, AdamW step`, () => {
    // the uneven cases must really be uneven (16 patches), the others even
    for (const k of Object.keys(c.perms)) assert.ok(16 % (k.startsWith('q') ? c.n : c.m) !== 0, `${name} ${k}`);
    const before = liveTensors();
    tidy(() => {
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
      model.loadStateDict(new Map(Object.entries(methodFixture.states[c.state]!).map(([k, r]) => [k, T(r)])));
      const opt = new optim.AdamW(model.onlineParameters(), { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0.1 });
      const mask = (k: 'q1' | 'q2' | 'k1' | 'k2'): ViewMask | undefined => {
        const perm = c.perms[k];
        if (perm) return chunksOfPermutation(T(perm), k.startsWith('q') ? c.n : c.m);
        return c.keeps[k] && T(c.keeps[k]);
      };
      const pair = (a?: ViewMask, b?: ViewMask): [ViewMask, ViewMask] | undefined => (a && b ? [a, b] : undefined);
      const { loss, stats } = model.forward(T(methodFixture.views.x1), T(methodFixture.views.x2), c.momentum, {
        online: pair(mask('q1'), mask('q2')),
        target: pair(mask('k1'), mask('k2')),
      });
      close(Number(loss.item()), c.loss, 1e-5, 'loss');
      if (c.kappa) {
        close(stats.kappaRep, c.kappa.rep, 1e-4, 'κ rep');
        close(stats.kappaProj, c.kappa.proj, 1e-4, 'κ proj');
        close(stats.kappaPred, c.kappa.pred, 1e-4, 'κ pred');
      } else {
        assert.ok(Number.isNaN(stats.kappaRep), 'κ is NaN for n = 1');
      }
      opt.zeroGrad();
      loss.backward();
      const params = new Map(model.namedParameters());
      for (const [k, r] of Object.entries(c.grads)) assertClose(params.get(k)!.grad!, r, `grad ${k}`);
      for (const [k, r] of Object.entries(c.after_update)) assertClose(params.get(k)!, r, `target ${k}`, 1e-6);
      opt.step();
      for (const [k, r] of Object.entries(c.after_step)) assertClose(params.get(k)!, r, `stepped ${k}`, 1e-5);
      model.dispose();
      for (const s of opt.state.values()) for (const v of Object.values(s)) if (typeof v !== 'number') v.dispose();
    });
    assert.equal(liveTensors(), before);
  });
}

test('n = m = 1 M-MoCo is MoCo v3: loss equals an independent recomputation', () => {
  const before = liveTensors();
  tidy(() => {
    torch.manualSeed(0);
    const model = tinyModel({ numChunks: 1, targetChunks: 1 });
    perturbOnline(model);
    const [x1, x2] = views();
    const { loss, stats } = model.forward(x1, x2, 0.9);
    // the target was updated first: recompute with the modules as they are now
    const f1 = features(model, x1);
    const f2 = features(model, x2);
    const want = mocoLoss(f1.q, f2.k, 0.2) + mocoLoss(f2.q, f1.k, 0.2);
    close(Number(loss.item()), want, 1e-5, 'loss');
    assert.ok(Number.isNaN(stats.kappaRep) && Number.isNaN(stats.kappaProj) && Number.isNaN(stats.kappaPred));
    model.dispose();
  });
  assert.equal(liveTensors(), before);
});

test('n = m = 1 M-BYOL is BYOL: loss equals an independent recomputation (LN heads)', () => {
  tidy(() => {
    torch.manualSeed(0);
    const model = tinyModel({ method: 'mbyol', numChunks: 1, headNorm: 'ln' });
    perturbOnline(model);
    const [x1, x2] = views(3);
    const { loss } = model.forward(x1, x2, 0.996);
    const f1 = features(model, x1);
    const f2 = features(model, x2);
    const want = byolLossJs(f1.q, f2.k) + byolLossJs(f2.q, f1.k);
    close(Number(loss.item()), want, 1e-5, 'loss');
    model.dispose();
  });
});

test('the momentum update runs first and equals m·θ_t + (1 − m)·θ_o; buffers are not averaged', () => {
  tidy(() => {
    torch.manualSeed(0);
    const model = tinyModel({ numChunks: 4 });
    perturbOnline(model);
    const name = 'backbone.blocks.1.attn.qkv.weight';
    const on = new Map(model.base_encoder.namedParameters()).get(name)!;
    const tg = new Map(model.momentum_encoder.namedParameters()).get(name)!;
    const want = tg.mul(0.9).add(on.mul(0.1));
    const rmName = 'projector.1.running_mean';
    const rmOnline = new Map(model.base_encoder.namedBuffers()).get(rmName)!;
    const rmTarget = new Map(model.momentum_encoder.namedBuffers()).get(rmName)!;
    noGrad(() => rmOnline.fill_(5));
    const [x1, x2] = views();
    model.forward(x1, x2, 0.9);
    assert.ok(Number(tg.sub(want).abs().max().item()) < 1e-6, 'EMA formula');
    // the target's running mean moved from 0 by its own forward, not towards the online's 5
    assert.ok(Number(rmTarget.abs().max().item()) < 4, 'buffers not averaged');
    assert.equal(tg.requiresGrad, false);
    model.dispose();
  });
});

test('emaUpdate_ and MomentumEncoder: formula, m = 1 keeps, m = 0 copies', () => {
  tidy(() => {
    torch.manualSeed(2);
    const online = tinyBackbone();
    const ema = new MomentumEncoder(online);
    assert.ok(ema.target.parameters().every((p) => !p.requiresGrad));
    noGrad(() => online.cls_token.add_(1));
    ema.update(1);
    assert.ok(Number(ema.target.cls_token.sub(online.cls_token).abs().max().item()) > 0.5);
    ema.update(0);
    assert.equal(ema.target.cls_token.sub(online.cls_token).abs().max().item(), 0);
    const a = torch.randn([5]);
    const b = torch.randn([5]);
    const want = a.mul(0.7).add(b.mul(0.3));
    emaUpdate_([a], [b], 0.7);
    assert.ok(Number(a.sub(want).abs().max().item()) < 1e-6);
    assert.throws(() => emaUpdate_([a], [b], 1.5), RangeError);
    online.dispose();
    ema.target.dispose();
  });
});

for (const o of [
  { numChunks: 8, targetChunks: 1 },
  { numChunks: 4, targetChunks: 4 },
  { numChunks: 4, targetChunks: 2, classAttention: true, headNorm: 'ln' as const },
  { numChunks: 8, targetChunks: 1, method: 'mbyol' as const },
]) {
  test(`${JSON.stringify(o)}: finite loss, gradients reach the online network only, finite κ`, () => {
    const before = liveTensors();
    tidy(() => {
      torch.manualSeed(5);
      const model = tinyModel(o);
      const [x1, x2] = views();
      const { loss, stats } = model.forward(x1, x2, 0.99);
      assert.ok(Number.isFinite(loss.item()), 'finite loss');
      loss.backward();
      const online = new Map([
        ...model.base_encoder.namedParameters('base_encoder'),
        ...model.predictor.namedParameters('predictor'),
      ]);
      assert.deepEqual(
        model.onlineParameters(),
        [...online.values()].filter((p) => p.requiresGrad),
      );
      for (const [name, p] of online) {
        if (p.requiresGrad) assert.ok(p.grad, `online ${name} has a gradient`);
        else assert.equal(p.grad, null, `frozen ${name} has no gradient`);
      }
      // non-zero where the loss depends on the parameter (with BN heads, e.g. the backbone's final
      // norm bias shifts every row alike, so its exact gradient is 0 and only rounding remains)
      const nonZero = [
        'base_encoder.backbone.patch_embed.proj.weight',
        'base_encoder.backbone.cls_token',
        'base_encoder.backbone.blocks.0.attn.qkv.weight',
        'base_encoder.backbone.blocks.1.mlp.fc2.weight',
        'base_encoder.projector.0.weight',
        'predictor.0.weight',
        'predictor.3.weight',
        ...(o.classAttention
          ? ['base_encoder.class_attn.blocks.0.attn.q.weight', 'base_encoder.class_attn.blocks.1.gamma_2']
          : []),
      ];
      for (const name of nonZero) {
        const g = online.get(name)?.grad;
        assert.ok(g && Number(g.abs().sum().item()) > 1e-6, `online ${name} has a non-zero gradient`);
      }
      for (const [name, p] of model.momentum_encoder.namedParameters()) {
        assert.equal(p.grad, null, `target ${name} has no gradient`);
        assert.equal(p.requiresGrad, false);
      }
      for (const k of ['kappaRep', 'kappaProj', 'kappaPred'] as const) {
        assert.ok(Number.isFinite(stats[k]) && stats[k] > 0, `${k} = ${stats[k]}`);
      }
      model.dispose();
    });
    assert.equal(liveTensors(), before);
  });
}

test("trainStep: κ is its forward's (read after the optimiser step), and none with kappa: false", () => {
  const make = (): MaskedContrastive => {
    torch.manualSeed(7);
    const m = tinyModel({ numChunks: 2 });
    m.train();
    return m;
  };
  const [x1, x2] = views(12);
  const a = make();
  const b = make();
  const sched = new optim.WarmupCosine({ lr: 1e-2, warmupEpochs: 0, epochs: 100, itersPerEpoch: 1 });
  torch.manualSeed(30); // the masks: the same draws on both sides
  const want = torch.tidy(() => a.forward(x1, x2, optim.cosineMomentum(0, 100, 0.99)).stats);
  const opt = new optim.AdamW(b.onlineParameters(), { lr: 1e-2 });
  torch.manualSeed(30);
  const r = trainStep(b, opt, x1, x2, { iter: 0, lrSchedule: sched });
  for (const k of ['kappaRep', 'kappaProj', 'kappaPred'] as const) {
    assert.ok(Number.isFinite(want[k]) && Math.abs(r[k] - want[k]) <= 1e-6 * want[k], `${k}: ${r[k]} vs ${want[k]}`);
  }
  const skip = trainStep(b, opt, x1, x2, { iter: 1, lrSchedule: sched, kappa: false });
  assert.ok(Number.isFinite(skip.loss));
  assert.ok(Number.isNaN(skip.kappaRep) && Number.isNaN(skip.kappaProj) && Number.isNaN(skip.kappaPred));
  a.dispose();
  b.dispose();
});

test('trainStep: lr and momentum from the schedules, the loss goes down on a fixed batch, no leaks', () => {
  torch.manualSeed(7);
  const model = tinyModel({ numChunks: 2 });
  const [x1, x2] = views(11);
  const opt = new optim.AdamW(model.onlineParameters(), { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0.1 });
  const sched = new optim.WarmupCosine({ lr: 2e-3, warmupEpochs: 2, epochs: 100, itersPerEpoch: 1 });
  const losses: number[] = [];
  let live = 0;
  for (let it = 0; it < 12; it++) {
    const r = trainStep(model, opt, x1, x2, { iter: it, lrSchedule: sched });
    assert.equal(r.lr, sched.lr(it));
    assert.equal(r.momentum, optim.cosineMomentum(it, 100, 0.99));
    assert.ok(Number.isFinite(r.kappaRep) && Number.isFinite(r.kappaProj) && Number.isFinite(r.kappaPred));
    losses.push(r.loss);
    if (it === 1) live = liveTensors();
    else if (it > 1) assert.equal(liveTensors(), live, `live tensors at step ${it}`);
  }
  assert.ok(
    model.onlineParameters().every((p) => p.grad === null),
    'gradients dropped',
  );
  const first = (losses[0]! + losses[1]!) / 2;
  const last = (losses[10]! + losses[11]!) / 2;
  assert.ok(last < first, `loss ${losses.map((l) => l.toFixed(4)).join(' ')}`);
  model.dispose();
  x1.dispose();
  x2.dispose();
});

test('options are validated', () => {
  tidy(() => {
    const bb = tinyBackbone();
    assert.throws(() => new MaskedContrastive(bb, { numChunks: 0 }), RangeError);
    assert.throws(() => new MaskedContrastive(bb, { targetChunks: 17 }), RangeError);
    assert.throws(() => new MaskedContrastive(bb, { method: 'simclr' as never }), RangeError);
    assert.throws(() => new MaskedContrastive(bb, { temperature: 0 }), RangeError);
    assert.throws(
      () => new MaskedContrastive(bb, { method: 'mbyol', predictorLastNorm: true }),
      /predictorLastNorm must be false for mbyol/,
    );
    bb.dispose();
  });
});

test('the projector width is stored at construction: as given (default 256), the predictor maps it to itself', () => {
  tidy(() => {
    for (const headNorm of ['bn', 'ln'] as const) {
      const model = tinyModel({ headNorm, projector: { hiddenDim: 64, outDim: 12 } });
      assert.equal(model.outDim, 12);
      const linears = (s: torch.nn.Sequential): torch.nn.Linear[] =>
        s.children().filter((m): m is torch.nn.Linear => m instanceof torch.nn.Linear);
      assert.equal(linears(model.base_encoder.projector).at(-1)!.outFeatures, 12, headNorm);
      const pred = linears(model.predictor);
      assert.deepEqual([pred[0]!.inFeatures, pred.at(-1)!.outFeatures], [12, 12], headNorm);
      const [x1] = views();
      assert.deepEqual(model.base_encoder.encode(x1).z.shape, [B, 12]);
      model.dispose();
    }
    const bb = tinyBackbone();
    const d = new MaskedContrastive(bb, { projector: { hiddenDim: 8 }, predictor: { hiddenDim: 8 } });
    assert.equal(d.outDim, 256);
    assert.throws(
      () => new MaskedContrastive(bb, { projector: { outDim: 0 } }),
      /projector.outDim must be a positive integer, got 0/,
    );
    d.dispose();
  });
});

test('the predictor output norm: none by default (MoCo v3), a BN/LN without affine with predictorLastNorm', () => {
  tidy(() => {
    const layers = (o: MaskedContrastiveOptions): string[] =>
      tinyModel(o)
        .predictor.children()
        .map((m) => m.constructor.name);
    assert.deepEqual(layers({}), ['Linear', 'BatchNorm1d', 'ReLU', 'Linear']);
    assert.deepEqual(layers({ predictorLastNorm: true }), ['Linear', 'BatchNorm1d', 'ReLU', 'Linear', 'BatchNorm1d']);
    assert.deepEqual(layers({ predictorLastNorm: true, headNorm: 'ln' }), [
      'Linear',
      'LayerNorm',
      'GELU',
      'Linear',
      'LayerNorm',
    ]);
  });
});

test('an explicit mask with the wrong number of chunks per image, or no momentum, is refused', () => {
  tidy(() => {
    torch.manualSeed(1);
    const model = tinyModel({ numChunks: 3 });
    const [x1, x2] = views();
    const m4 = chunkMask(B, 16, 4);
    assert.throws(
      () => model.forward(x1, x2, 0.99, { online: [m4, m4] }),
      /online mask has 24 rows for 6 images; expected 3 chunks/,
    );
    // momentum is required (the type says so; untyped callers get an error naming it)
    const untyped = model.forward as (...a: unknown[]) => unknown;
    assert.throws(
      () => untyped.call(model, x1, x2),
      /forward: momentum must be a number or a scalar tensor, got undefined/,
    );
    model.dispose();
  });
});
