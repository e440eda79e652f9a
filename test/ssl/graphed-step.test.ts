// GraphedTrainStep runs trainStep's arithmetic with the per-step numbers in tensors: on the CPU
// (no graph) it must follow trainStep step for step — same masks (same RNG draws), losses and
// parameters within float32 rounding — and its tensor-lr AdamW must equal AdamW. On a GPU with
// CUDA graphs the captured replays follow the eager steps (n = 1 draws no masks, so the runs
// are comparable) and masks drawn inside the graph change from step to step.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { optim, type Tensor } from '../../src/torch/index.js';
import { VisionTransformer } from '../../src/models/index.js';
import { GraphedTrainStep, MaskedContrastive, trainStep } from '../../src/ssl/index.js';

/** A 2-block ViT at 16 px with narrow heads (κ monitored unless the options say otherwise). */
function tiny(
  options: ConstructorParameters<typeof MaskedContrastive>[1],
  o: { seed?: number; device?: torch.Device; adamw?: ConstructorParameters<typeof optim.AdamW>[1] } = {},
): { model: MaskedContrastive; opt: optim.AdamW } {
  torch.manualSeed(o.seed ?? 8);
  const backbone = new VisionTransformer({ imgSize: 16, patchSize: 4, embedDim: 32, depth: 2, numHeads: 2 });
  const model = new MaskedContrastive(backbone, {
    projector: { hiddenDim: 32, outDim: 16 },
    predictor: { hiddenDim: 32 },
    ...options,
  }).to(o.device ?? 'cpu');
  model.train();
  return { model, opt: new optim.AdamW(model.onlineParameters(), o.adamw ?? { lr: 1e-3 }) };
}

/** The comparisons' model: MoCo v3's BN heads, no κ, AdamW with weight decay. */
const build = (n: number, device: torch.Device = 'cpu') =>
  tiny(
    {
      numChunks: n,
      temperature: 0.2,
      headNorm: 'bn',
      projector: { numLayers: 3, hiddenDim: 48, outDim: 16 },
      predictor: { numLayers: 2, hiddenDim: 48 },
      monitorKappa: false,
    },
    { seed: 11, device, adamw: { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0.1 } },
  );

const schedule = (): optim.WarmupCosine =>
  new optim.WarmupCosine({ lr: 2e-3, warmupEpochs: 1, epochs: 4, itersPerEpoch: 3 });

function maxRelDiff(a: readonly Tensor[], b: readonly Tensor[]): number {
  let worst = 0;
  a.forEach((x, i) => {
    const d = x.sub(b[i]!).abs().max().item() as number;
    const s = Math.max(1e-3, b[i]!.abs().max().item() as number);
    worst = Math.max(worst, d / s);
  });
  return worst;
}

test('adamwTensorLrStep equals AdamW.step (lr and step count in tensors)', () => {
  torch.tidy(() => {
    torch.manualSeed(2);
    const p0 = [torch.randn(5, 3), torch.randn(7)];
    const a = p0.map((p) => p.clone().requiresGrad_(true));
    const b = p0.map((p) => p.clone());
    const ma = b.map((p) => torch.zerosLike(p));
    const va = b.map((p) => torch.zerosLike(p));
    const opt = new optim.AdamW(a, { lr: 0.01, betas: [0.9, 0.95], weightDecay: 0.05, eps: 1e-8 });
    const step = torch.zeros([]);
    const lr = torch.zeros([]);
    for (let k = 0; k < 5; k++) {
      const g = p0.map((p) => torch.randn(p.shape));
      a.forEach((p, i) => (p.grad = g[i]!.clone()));
      opt.setLr(0.01 * (k + 1));
      opt.step();
      lr.fill_(0.01 * (k + 1));
      optim.adamwTensorLrStep(b, g, ma, va, step, lr, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.05 });
    }
    assert.equal(step.item(), 5);
    const d = maxRelDiff(b, a);
    assert.ok(d < 1e-5, `parameters after 5 steps differ by ${d} (relative)`);
    const m = a.map((p) => opt.state.get(p)!.exp_avg as Tensor);
    assert.ok(maxRelDiff(ma, m) < 1e-6);
  });
});

test('GraphedTrainStep without a graph follows trainStep step for step (n = 4, CPU)', () => {
  const ref = build(4);
  const gr = build(4);
  torch.manualSeed(5);
  const views = Array.from({ length: 4 }, () => [torch.randn(6, 3, 16, 16), torch.randn(6, 3, 16, 16)] as const);
  const sched1 = schedule();
  const sched2 = schedule();
  const stepper = new GraphedTrainStep(gr.model, gr.opt, [6, 3, 16, 16], { lrSchedule: sched2 });
  assert.equal(stepper.graphed, false);
  views.forEach(([x1, x2], iter) => {
    torch.manualSeed(100 + iter); // the masks: the same draws on both sides
    const a = trainStep(ref.model, ref.opt, x1, x2, { iter, lrSchedule: sched1 });
    torch.manualSeed(100 + iter);
    const b = stepper.step(x1, x2, iter);
    assert.equal(b.lr, a.lr);
    assert.equal(b.momentum, a.momentum);
    assert.ok(Math.abs(b.loss - a.loss) <= 1e-5 * Math.abs(a.loss), `step ${iter}: ${b.loss} vs ${a.loss}`);
  });
  // Parameters whose gradient is zero by construction move by ±lr under Adam whatever the
  // rounding noise of that zero is, so two correct implementations part there: the key third of
  // each qkv bias (softmax ignores a shift shared by all keys) and the backbone's final norm
  // bias (the BN projector subtracts the batch mean right after it). Everything else must agree.
  const structuralZeroGrad = /attn\.qkv\.bias$|backbone\.norm\.bias$/;
  const nb = new Map(gr.model.namedParameters());
  const pairs = ref.model.namedParameters().filter(([k]) => !structuralZeroGrad.test(k));
  assert.ok(pairs.length > 40);
  const d = torch.tidy(() =>
    maxRelDiff(
      pairs.map(([k]) => nb.get(k)!),
      pairs.map(([, p]) => p),
    ),
  );
  assert.ok(d < 1e-4, `parameters (online and target) after 4 steps differ by ${d} (relative)`);
  for (const p of gr.opt.params()) assert.equal(gr.opt.state.get(p)!.step, 4, 'AdamW state keeps the step count');
  stepper.dispose();
  torch.dispose(views.flat());
});

test('GraphedTrainStep computes κ as trainStep does, on the steps asked for (n = 4, CPU)', () => {
  const withKappa = () => tiny({ numChunks: 4, headNorm: 'ln' }, { seed: 3 });
  const ref = withKappa();
  const gr = withKappa();
  assert.equal(gr.model.monitorKappa, true);
  const stepper = new GraphedTrainStep(gr.model, gr.opt, [4, 3, 16, 16], { lrSchedule: schedule() });
  assert.equal(stepper.kappa, true);
  torch.manualSeed(9);
  const views = Array.from({ length: 3 }, () => [torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)] as const);
  const sched = schedule();
  views.forEach(([x1, x2], iter) => {
    torch.manualSeed(200 + iter);
    const a = trainStep(ref.model, ref.opt, x1, x2, { iter, lrSchedule: sched });
    torch.manualSeed(200 + iter);
    const b = stepper.step(x1, x2, iter, { kappa: iter !== 1 });
    for (const k of ['kappaRep', 'kappaProj', 'kappaPred'] as const) {
      assert.ok(Number.isFinite(a[k]) && a[k] > 0, `trainStep ${k} = ${a[k]}`);
      if (iter === 1) assert.ok(Number.isNaN(b[k]), `step 1 asked for no κ, got ${k} = ${b[k]}`);
      else assert.ok(Math.abs(b[k] - a[k]) <= 1e-4 * a[k], `step ${iter} ${k}: ${b[k]} vs ${a[k]}`);
    }
  });
  stepper.dispose();
  torch.dispose(views.flat());
  ref.model.dispose();
  gr.model.dispose();
});

test('the step body reads nothing back under every method option (run eagerly under forbidHostSync)', () => {
  const variants: [string, ConstructorParameters<typeof MaskedContrastive>[1], boolean][] = [
    ['M-MoCo n = 8, κ', { numChunks: 8 }, false],
    ['MoCo v3 n = 1, BN heads', { numChunks: 1, headNorm: 'bn' }, false],
    ['M-BYOL n = 4', { method: 'mbyol', numChunks: 4 }, false],
    ['target chunks m = 2', { numChunks: 4, targetChunks: 2 }, false],
    ['class-attention blocks', { numChunks: 4, classAttention: true }, false],
    ['bf16 autocast', { numChunks: 4 }, true],
  ];
  for (const [name, options, bf16] of variants) {
    const { model, opt } = tiny(options);
    const stepper = new GraphedTrainStep(model, opt, [4, 3, 16, 16], {
      lrSchedule: schedule(),
      ...(bf16 ? { autocast: { device: 'cpu', dtype: 'bfloat16' } as const } : {}),
    });
    const x1 = torch.randn(4, 3, 16, 16);
    const x2 = torch.randn(4, 3, 16, 16);
    for (let iter = 0; iter < 2; iter++) {
      const r = stepper.step(x1, x2, iter);
      assert.ok(Number.isFinite(r.loss), `${name}: step ${iter} loss ${r.loss}`);
      if (stepper.kappa) assert.ok(r.kappaRep > 0, `${name}: κ ${r.kappaRep}`);
    }
    stepper.dispose();
    model.dispose();
    torch.dispose([x1, x2]);
  }
});

test('a step body that reads a value back is refused by name, on the CPU too', () => {
  const { model, opt } = tiny({ numChunks: 2 });
  const step = new GraphedTrainStep(model, opt, [2, 3, 16, 16], { lrSchedule: schedule() });
  const x = torch.randn(2, 3, 16, 16);
  assert.ok(Number.isFinite(step.step(x, x, 0).loss));
  // a forward that logs a number mid-step, as a debugging edit might
  const forward = model.forward.bind(model);
  model.forward = (...a: Parameters<typeof forward>) => {
    const out = forward(...a);
    void out.loss.item();
    return out;
  };
  assert.throws(
    () => step.step(x, x, 1),
    /Tensor\.item\(\) .* inside GraphedTrainStep's step: a CUDA graph cannot hold it/,
  );
  step.dispose();
  model.dispose();
  x.dispose();
});

test('GraphedTrainStep refuses what a graph cannot hold', () => {
  assert.throws(
    () => new GraphedTrainStep(build(2).model, build(2).opt, [2, 3, 16, 16], { lrSchedule: schedule(), graph: true }),
    torch.cuda.graphsAvailable() ? /needs the model on a CUDA device \(it is on cpu\)/ : /no CUDA graphs/,
  );
});

const graphs = torch.cuda.isAvailable() && torch.cuda.graphsAvailable();

test('on CUDA, graph replays follow the eager steps (n = 1, bf16 autocast)', { skip: !graphs }, () => {
  const eager = build(1, 'cuda');
  const graphed = build(1, 'cuda');
  torch.manualSeed(7);
  const views = Array.from({ length: 8 }, () => [
    torch.randn([8, 3, 16, 16], { device: 'cuda' }),
    torch.randn([8, 3, 16, 16], { device: 'cuda' }),
  ]);
  const amp = { device: 'cuda', dtype: 'bfloat16' } as const;
  const a = new GraphedTrainStep(eager.model, eager.opt, [8, 3, 16, 16], {
    lrSchedule: schedule(),
    graph: false,
    autocast: amp,
  });
  const b = new GraphedTrainStep(graphed.model, graphed.opt, [8, 3, 16, 16], {
    lrSchedule: schedule(),
    warmup: 2,
    autocast: amp,
  });
  assert.equal(b.graphed, true);
  views.forEach(([x1, x2], iter) => {
    const la = a.step(x1!, x2!, iter).loss;
    const lb = b.step(x1!, x2!, iter).loss;
    assert.ok(Math.abs(la - lb) <= 2e-3 * Math.abs(la), `step ${iter}: eager ${la}, graphed ${lb}`);
  });
  const structuralZeroGrad = /attn\.qkv\.bias$|backbone\.norm\.bias$/; // see the CPU test
  const ng = new Map(graphed.model.namedParameters());
  const pairs = eager.model.namedParameters().filter(([k]) => !structuralZeroGrad.test(k));
  const d = torch.tidy(() =>
    maxRelDiff(
      pairs.map(([k]) => ng.get(k)!),
      pairs.map(([, p]) => p),
    ),
  );
  assert.ok(d < 1e-2, `parameters after 8 steps differ by ${d} (relative)`);
  a.dispose();
  b.dispose();
  torch.dispose(views.flat());
});

test('on CUDA, masks drawn inside the graph change with every replay (n = 4)', { skip: !graphs }, () => {
  const { model, opt } = build(4, 'cuda');
  const b = new GraphedTrainStep(model, opt, [8, 3, 16, 16], { lrSchedule: schedule(), warmup: 1 });
  const x1 = torch.randn([8, 3, 16, 16], { device: 'cuda' });
  const x2 = torch.randn([8, 3, 16, 16], { device: 'cuda' });
  const losses = Array.from({ length: 6 }, (_, iter) => b.step(x1, x2, iter).loss);
  assert.ok(losses.every(Number.isFinite), String(losses));
  // the same views each step: only new masks (and the updated weights) change the loss
  assert.equal(new Set(losses.slice(1)).size, losses.length - 1, String(losses));
  b.dispose();
  torch.dispose([x1, x2]);
});

test('on CUDA, κ is read from the graph after each replay (n = 4)', { skip: !graphs }, () => {
  const { model, opt } = tiny({ numChunks: 4 }, { seed: 4, device: 'cuda', adamw: { lr: 1e-4 } });
  const b = new GraphedTrainStep(model, opt, [8, 3, 16, 16], { lrSchedule: schedule(), warmup: 1 });
  assert.equal(b.graphed, true);
  const x1 = torch.randn([8, 3, 16, 16], { device: 'cuda' });
  const x2 = torch.randn([8, 3, 16, 16], { device: 'cuda' });
  const rs = Array.from({ length: 5 }, (_, iter) => b.step(x1, x2, iter));
  // step 0 is eager (its κ from the eager body), the rest are replays; at lr 1e-4 the weights
  // barely move, so κ stays near step 0's while the masks drawn inside the graph change it a little
  for (const k of ['kappaRep', 'kappaProj', 'kappaPred'] as const) {
    const v = rs.map((r) => r[k]);
    assert.ok(
      v.every((x) => Number.isFinite(x) && x > 0),
      `${k}: ${v}`,
    );
    for (const x of v.slice(1)) assert.ok(x > v[0]! / 2 && x < v[0]! * 2, `${k}: replays ${v.slice(1)}, eager ${v[0]}`);
    assert.ok(new Set(v.slice(1)).size > 1, `${k} is the same on every replay: ${v}`);
  }
  b.dispose();
  model.dispose();
  torch.dispose([x1, x2]);
});
