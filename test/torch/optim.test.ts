// torch.optim against PyTorch: AdamW, SGD and MoCo v3's LARS over 20 steps of a small MLP with
// two parameter groups (different lr, weight decay and lr scale, an MAE-style schedule for the
// last 10 steps), and clip_grad_norm_. The reference values are in test/fixtures/optim.json,
// written by test/fixtures/make_optim_fixtures.py (run it with Debian's python3-torch). Also:
// the schedules by hand, exact resume through the state dict, and the optimiser mechanics.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  F,
  cuda,
  liveTensors,
  manualSeed,
  noGrad,
  optim,
  rand,
  randn,
  tensor,
  tidy,
  zeros,
  type DType,
  type Tensor,
} from '../../src/torch/index.js';

// ---- the fixture ----

type Names = 'w1' | 'b1' | 'w2' | 'b2' | 'unused';
type FixtureDType = 'float64' | 'float32' | 'bfloat16';
interface CaseRec {
  name: string;
  optimizer: 'adamw' | 'sgd' | 'lars';
  options: Record<string, unknown>;
  groups: ({ params: Names[] } & Record<string, unknown>)[];
  clip?: number;
  expected: Record<
    FixtureDType,
    { params: Record<Names, number[]>; losses: number[]; lrs: number[]; stateKeys: Record<Names, string[]> }
  >;
}
interface ClipRec {
  dtype: 'float64' | 'float32';
  normType: number | 'inf';
  maxNorm: number;
  grads: { shape: number[]; data: number[] }[];
  total: number;
  totalDtype: DType;
  clipped: number[][];
}
interface Fixture {
  steps: number;
  scheduleFrom: number;
  schedule: { lr: number; minLr: number; warmupEpochs: number; epochs: number; itersPerEpoch: number };
  shapes: Record<Names, number[]>;
  order: Names[];
  data: Record<FixtureDType, { params: Record<Names, number[]>; x: number[]; y: number[] }>;
  cases: CaseRec[];
  clip: ClipRec[];
}

function findFixture(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'test/fixtures/optim.json');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('test/fixtures/optim.json not found');
    dir = parent;
  }
}
const fx = JSON.parse(readFileSync(findFixture(), 'utf8')) as Fixture;

// ---- helpers ----

// bfloat16 runs the generic path of the native steps, PyTorch's ops one by one: bit for bit
// with libtorch 1.13 (the fixture's); libtorch 2.11 rounds some bfloat16 ops otherwise, which
// leaves its results within 2 ulps (1.7e-2) after the 20 steps.
const TOL = { float64: 1e-6, float32: 1e-5, bfloat16: 3e-2 } as const;

/** max |a - b| / max |b| (the error relative to the tensor's scale). */
function relErr(actual: ArrayLike<number>, expected: readonly number[]): number {
  assert.equal(actual.length, expected.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < expected.length; i++) {
    num = Math.max(num, Math.abs(actual[i]! - expected[i]!));
    den = Math.max(den, Math.abs(expected[i]!));
  }
  return den === 0 ? num : num / den;
}

const values = (t: Tensor): number[] => Array.from(t.double().toTypedArray() as Float64Array);

interface Model {
  p: Record<Names, Tensor>;
  x: Tensor;
  y: Tensor;
}

function model(dtype: FixtureDType): Model {
  const d = fx.data[dtype];
  const p = Object.fromEntries(
    fx.order.map((n) => [n, tensor(d.params[n], { dtype, shape: fx.shapes[n] }).requiresGrad_(true)]),
  ) as Record<Names, Tensor>;
  return { p, x: tensor(d.x, { dtype, shape: [10, 5] }), y: tensor(d.y, { dtype, shape: [10, 3] }) };
}

function loss(m: Model): Tensor {
  const h = F.linear(m.x, m.p.w1, m.p.b1).tanh();
  return F.linear(h, m.p.w2, m.p.b2).sub(m.y).square().mean();
}

type AnyOptimizer = optim.AdamW | optim.SGD | optim.LARS;

function makeOptimizer(c: CaseRec, m: Model): AnyOptimizer {
  const groups = c.groups.map((g) => ({ ...g, params: g.params.map((n) => m.p[n]) }));
  switch (c.optimizer) {
    case 'adamw':
      return new optim.AdamW(groups as never, c.options);
    case 'sgd':
      return new optim.SGD(groups as never, c.options as optim.SGDOptions);
    case 'lars':
      return new optim.LARS(groups as never, c.options);
  }
}

/** Runs steps [from, to) of the fixture's training loop; returns the losses and scheduled lrs. */
function train(c: CaseRec, m: Model, opt: AnyOptimizer, from: number, to: number): { losses: number[]; lrs: number[] } {
  const sched = new optim.WarmupCosine(fx.schedule);
  const losses: number[] = [];
  const lrs: number[] = [];
  for (let step = from; step < to; step++) {
    if (step >= fx.scheduleFrom) lrs.push(sched.applyAt(opt, step - fx.scheduleFrom));
    opt.zeroGrad();
    tidy(() => {
      const l = loss(m);
      l.backward();
      if (c.clip !== undefined) optim.clipGradNorm(Object.values(m.p), c.clip);
      losses.push(Number(l.item()));
      opt.step();
    });
  }
  return { losses, lrs };
}

// ---- against PyTorch ----

for (const c of fx.cases) {
  for (const dtype of ['float64', 'float32', 'bfloat16'] as const) {
    test(`${c.name} (${dtype}): 20 steps match PyTorch`, () => {
      const m = model(dtype);
      const opt = makeOptimizer(c, m);
      const before = liveTensors();
      const { losses, lrs } = train(c, m, opt, 0, fx.steps);
      // state tensors exist once (made at the first step); steps leave nothing else behind
      const grew = liveTensors() - before;
      const exp = c.expected[dtype];
      for (const n of fx.order) {
        const err = relErr(values(m.p[n]), exp.params[n]);
        assert.ok(err <= TOL[dtype], `${n}: relative error ${err} > ${TOL[dtype]}`);
      }
      assert.ok(relErr(losses, exp.losses) <= TOL[dtype], `losses ${losses} vs ${exp.losses}`);
      assert.equal(lrs.length, exp.lrs.length);
      lrs.forEach((lr, i) => assert.ok(Math.abs(lr - exp.lrs[i]!) <= 1e-15, `lr ${i}: ${lr} vs ${exp.lrs[i]}`));
      // the parameter without a grad is untouched and has no state, as in PyTorch
      assert.deepEqual(values(m.p.unused), fx.data[dtype].params.unused);
      for (const n of fx.order) {
        assert.deepEqual(Object.keys(opt.state.get(m.p[n]) ?? {}).sort(), exp.stateKeys[n], `state keys of ${n}`);
      }
      const stateTensors = [...opt.state.values()].flatMap((s) =>
        Object.values(s).filter((v) => typeof v !== 'number'),
      );
      assert.equal(grew, stateTensors.length);
    });
  }
}

for (const [k, c] of fx.clip.entries()) {
  test(`clipGradNorm ${c.dtype} norm ${c.normType} max ${c.maxNorm} (#${k}) matches clip_grad_norm_`, () => {
    tidy(() => {
      const ps = c.grads.map((g) => {
        const p = zeros(g.shape, { dtype: c.dtype }).requiresGrad_(true);
        p.grad = tensor(g.data, { dtype: c.dtype, shape: g.shape });
        return p;
      });
      const noGradParam = zeros([3], { dtype: c.dtype }).requiresGrad_(true);
      const total = optim.clipGradNorm([...ps, noGradParam], c.maxNorm, c.normType);
      assert.equal(total.dtype, c.totalDtype);
      assert.equal(total.ndim, 0);
      const tol = TOL[c.dtype];
      assert.ok(Math.abs(Number(total.item()) - c.total) <= tol * c.total, `total ${total.item()} vs ${c.total}`);
      ps.forEach((p, i) => {
        const err = relErr(values(p.grad!), c.clipped[i]!);
        assert.ok(err <= tol, `grad ${i}: relative error ${err}`);
      });
      assert.equal(noGradParam.grad, null);
    });
  });
}

test('clipGradNorm: no grads gives 0; a single tensor; errorIfNonfinite', () => {
  tidy(() => {
    const p = zeros([2]).requiresGrad_(true);
    assert.equal(optim.clipGradNorm([p], 1).item(), 0);
    p.grad = tensor([3, 4]);
    assert.equal(optim.clipGradNorm(p, 100).item(), 5);
    assert.deepEqual(p.grad.toArray(), [3, 4]);
    p.grad = tensor([Infinity, 1]);
    assert.throws(() => optim.clipGradNorm(p, 1, 2, { errorIfNonfinite: true }), /non-finite/);
  });
});

// ---- schedules, by hand ----

test('WarmupCosine: 0 at the start, the peak at the end of the warmup, the midpoint, minLr at the end', () => {
  const s = new optim.WarmupCosine({ lr: 1e-3, minLr: 1e-5, warmupEpochs: 5, epochs: 105, itersPerEpoch: 100 });
  assert.equal(s.lr(0), 0);
  assert.equal(s.lr(2.5), 0.5e-3); // linear warmup, fractional epoch
  assert.equal(s.lrAt(250), 0.5e-3);
  assert.equal(s.lr(5), 1e-3); // end of warmup: cos(0) = 1
  assert.ok(Math.abs(s.lr(55) - (1e-5 + (1e-3 - 1e-5) / 2)) < 1e-18); // halfway through the cosine
  assert.equal(s.lr(105), 1e-5); // the end: cos(pi) = -1
  assert.ok(s.lr(30) > s.lr(80));
  // MAE's formula, written out
  const e = 37.25;
  const mae = 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + Math.cos((Math.PI * (e - 5)) / (105 - 5)));
  assert.equal(s.lr(e), mae);
  assert.equal(optim.warmupCosineLr(e, { lr: 1e-3, minLr: 1e-5, warmupEpochs: 5, epochs: 105 }), mae);
  assert.throws(() => new optim.WarmupCosine({ lr: 1, warmupEpochs: 10, epochs: 10 }), RangeError);
});

test('schedule apply sets group lr = lr * lrScale (MAE layer-wise decay)', () => {
  const a = zeros([2]).requiresGrad_(true);
  const b = zeros([2]).requiresGrad_(true);
  const opt = new optim.AdamW([
    { params: [a], lrScale: 1 },
    { params: [b], lrScale: 0.25, lr: 5 },
  ]);
  assert.equal(opt.paramGroups[1]!.lr, 5); // the constructor does not scale
  const s = new optim.WarmupCosine({ lr: 0.1, warmupEpochs: 1, epochs: 3 });
  assert.equal(s.apply(opt, 0.5), 0.05);
  assert.deepEqual(
    opt.paramGroups.map((g) => g.lr),
    [0.05, 0.0125],
  );
  assert.equal(optim.adjustLearningRate(opt, 1, { lr: 0.2, warmupEpochs: 1, epochs: 3 }), 0.2);
  assert.deepEqual(
    opt.paramGroups.map((g) => g.lr),
    [0.2, 0.05],
  );
  opt.setLr(1);
  assert.deepEqual(
    opt.paramGroups.map((g) => g.lr),
    [1, 0.25],
  );
});

test('lrFromBlr and the cosine momentum schedule', () => {
  assert.equal(optim.lrFromBlr(1.5e-4, 4096), 2.4e-3);
  assert.equal(optim.lrFromBlr(1e-3, 256), 1e-3);
  assert.equal(optim.cosineMomentum(0, 100, 0.99), 0.99);
  assert.equal(optim.cosineMomentum(100, 100, 0.99), 1);
  assert.ok(Math.abs(optim.cosineMomentum(50, 100, 0.99) - 0.995) < 1e-15);
  const e = 12.5;
  assert.equal(optim.cosineMomentum(e, 100, 0.996), 1 - 0.5 * (1 + Math.cos((Math.PI * e) / 100)) * (1 - 0.996));
});

// ---- exact resume ----

/** The state dict through JSON, its tensors cloned, as a checkpoint round trip would give it. */
function roundTrip(sd: optim.OptimizerStateDict): optim.OptimizerStateDict {
  const tensors: Tensor[] = [];
  const json = JSON.stringify(sd, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && 'dtype' in v && typeof (v as Tensor).clone === 'function'
      ? { $tensor: tensors.push((v as Tensor).clone()) - 1 }
      : v,
  );
  return JSON.parse(json, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && '$tensor' in v ? tensors[(v as { $tensor: number }).$tensor] : v,
  ) as optim.OptimizerStateDict;
}

for (const name of ['adamw', 'adamw betas eps amsgrad', 'sgd nesterov weight decay', 'lars']) {
  test(`${name}: stateDict -> loadStateDict into a fresh optimiser continues bit for bit`, () => {
    const c = fx.cases.find((k) => k.name === name)!;
    for (const dtype of ['float32', 'float64'] as const) {
      const straight = model(dtype);
      const o1 = makeOptimizer(c, straight);
      train(c, straight, o1, 0, fx.steps);

      const first = model(dtype);
      const o2 = makeOptimizer(c, first);
      train(c, first, o2, 0, 7);
      const saved = roundTrip(o2.stateDict());
      const savedParams = Object.fromEntries(fx.order.map((n) => [n, first.p[n].detach().clone()]));
      // a new process: fresh parameters loaded with the saved values, a fresh optimiser
      const resumed = model(dtype);
      noGrad(() => fx.order.forEach((n) => resumed.p[n].copy_(savedParams[n]!)));
      const o3 = makeOptimizer(c, resumed);
      o3.loadStateDict(saved);
      assert.deepEqual(
        o3.paramGroups.map((g) => g.lr),
        o2.paramGroups.map((g) => g.lr),
      );
      train(c, resumed, o3, 7, fx.steps);
      for (const n of fx.order) {
        assert.deepEqual(values(resumed.p[n]), values(straight.p[n]), `${dtype} ${n}`);
      }
      // the loaded state is the optimiser's own copy
      const s3 = o3.stateDict().state;
      const s0 = saved.state;
      for (const [i, s] of Object.entries(s3)) {
        for (const [k, v] of Object.entries(s)) {
          if (typeof v !== 'number') assert.ok(!v.isSame(s0[Number(i)]![k] as Tensor), `${k} is shared`);
        }
      }
    }
  });
}

test('stateDict layout: state by parameter index, groups with hyper-parameters and indices', () => {
  const m = model('float32');
  const opt = new optim.AdamW(
    [
      { params: [m.p.w1, m.p.b1], weightDecay: 0.05, name: 'decay' },
      { params: [m.p.w2, m.p.b2, m.p.unused], weightDecay: 0, lrScale: 0.5 },
    ],
    { lr: 1e-3 },
  );
  tidy(() => loss(m).backward());
  opt.step();
  opt.step();
  const sd = opt.stateDict();
  assert.deepEqual(Object.keys(sd.state), ['0', '1', '2', '3']); // 'unused' (4) never had a grad
  assert.equal(sd.state[0]!.step, 2);
  assert.deepEqual(Object.keys(sd.state[2]!).sort(), ['exp_avg', 'exp_avg_sq', 'step']);
  assert.deepEqual((sd.state[2]!.exp_avg as Tensor).shape, [3, 6]);
  assert.deepEqual(sd.paramGroups, [
    {
      lr: 1e-3,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weightDecay: 0.05,
      amsgrad: false,
      maximize: false,
      lrScale: 1,
      name: 'decay',
      params: [0, 1],
    },
    {
      lr: 1e-3,
      betas: [0.9, 0.999],
      eps: 1e-8,
      weightDecay: 0,
      amsgrad: false,
      maximize: false,
      lrScale: 0.5,
      params: [2, 3, 4],
    },
  ]);
  // PyTorch 1.13 keeps step as a 0-dim tensor: accepted
  const fresh = new optim.AdamW([{ params: [m.p.w1, m.p.b1] }, { params: [m.p.w2, m.p.b2, m.p.unused] }]);
  const withTensorStep = { ...sd, state: { ...sd.state, 0: { ...sd.state[0]!, step: tensor(2) } } };
  fresh.loadStateDict(withTensorStep);
  assert.equal(fresh.state.get(m.p.w1)!.step, 2);
  assert.equal(fresh.paramGroups[0]!.weightDecay, 0.05);
  // mismatched groups are refused, and nothing changes
  const other = new optim.AdamW([m.p.w1, m.p.b1, m.p.w2, m.p.b2, m.p.unused]);
  assert.throws(() => other.loadStateDict(sd), /2 parameter groups/);
  const sizes = new optim.AdamW([{ params: [m.p.w1] }, { params: [m.p.w2, m.p.b2, m.p.unused, m.p.b1] }]);
  assert.throws(() => sizes.loadStateDict(sd), /parameter group 0 has 2 parameters/);
  assert.equal(sizes.state.size, 0);
});

// ---- mechanics ----

test('zeroGrad drops the grads (default) or zeroes them', () => {
  const m = model('float64');
  const opt = new optim.SGD(Object.values(m.p), { lr: 0.1 });
  tidy(() => loss(m).backward());
  assert.ok(m.p.w1.grad);
  opt.zeroGrad(false);
  assert.deepEqual(values(m.p.w1.grad!), new Array(30).fill(0));
  opt.zeroGrad();
  assert.equal(m.p.w1.grad, null);
  assert.equal(m.p.unused.grad, null);
});

test('constructor checks: groups, duplicates, non-leaves, hyper-parameters', () => {
  const a = zeros([2]).requiresGrad_(true);
  const b = zeros([2]).requiresGrad_(true);
  assert.throws(() => new optim.AdamW([]), /empty/);
  assert.throws(() => new optim.AdamW([{ params: [a] }, { params: [a, b] }]), /more than one parameter group/);
  assert.throws(() => new optim.AdamW([a.mul(2)]), /non-leaf/);
  assert.throws(() => new optim.AdamW([a], { betas: [1, 0.9] }), /beta/);
  assert.throws(() => new optim.AdamW([a], { lr: -1 }), /lr/);
  assert.throws(() => new optim.SGD([a], { lr: 0.1, nesterov: true }), /Nesterov/);
  assert.throws(() => new optim.LARS([{ params: [b], weightDecay: -1 }]), /weightDecay/);
  const opt = new optim.SGD([{ params: [a] }], { lr: 0.1, momentum: 0.9 });
  opt.addParamGroup({ params: [b], lr: 0.5 });
  assert.deepEqual(
    opt.paramGroups.map((g) => [g.lr, g.momentum]),
    [
      [0.1, 0.9],
      [0.5, 0.9],
    ],
  );
  assert.throws(() => opt.addParamGroup({ params: [b] }), /more than one parameter group/);
});

test('step bumps the version: a graph that saved a parameter refuses to backpropagate after it', () => {
  tidy(() => {
    const p = randn(4, 4).requiresGrad_(true);
    const opt = new optim.AdamW([p]);
    const y = p.mul(p).sum();
    p.grad = randn(4, 4);
    opt.step();
    assert.throws(() => y.backward(), /modified by an inplace operation/);
  });
});

test('non-contiguous parameters and grads take the strided path with the same result', () => {
  const cases: [string, (p: Tensor[]) => AnyOptimizer][] = [
    ['adamw', (p) => new optim.AdamW(p, { lr: 0.1, weightDecay: 0.1, amsgrad: true })],
    ['sgd', (p) => new optim.SGD(p, { lr: 0.1, momentum: 0.9, weightDecay: 0.1 })],
    ['lars', (p) => new optim.LARS(p, { lr: 0.1, weightDecay: 0.1, trustCoefficient: 0.1 })],
  ];
  for (const [name, make] of cases) {
    tidy(() => {
      const w = randn(6, 5, { dtype: 'float64' });
      const a = w.t().detach().requiresGrad_(true); // non-contiguous leaf [5, 6]
      const b = w.t().contiguous().requiresGrad_(true);
      assert.ok(!a.isContiguous());
      const oa = make([a]);
      const ob = make([b]);
      for (let i = 0; i < 3; i++) {
        const g = randn(5, 6, { dtype: 'float64' });
        a.grad = g; // contiguous grad on a transposed parameter
        b.grad = g.clone();
        oa.step();
        ob.step();
      }
      if (name === 'lars') {
        // the norms are reductions, summed in another order over the transposed layout
        assert.ok(relErr(values(a), values(b)) < 1e-14, name);
      } else {
        assert.deepEqual(values(a), values(b), name); // elementwise: bit for bit
      }
    });
  }
});

test('large tensors (split over threads) match the op-by-op formulas', () => {
  noGrad(() =>
    tidy(() => {
      const shape = [1000, 700];
      const w = randn(shape, { dtype: 'float64' });
      const grads = [0, 1, 2].map(() => randn(shape, { dtype: 'float64' }));
      const [lr, wd] = [0.01, 0.1];
      const check = (
        name: string,
        make: (p: Tensor[]) => AnyOptimizer,
        ref: (p: Tensor, g: Tensor, t: number) => void,
      ) => {
        const p = w.clone().requiresGrad_(true);
        const opt = make([p]);
        const r = w.clone();
        grads.forEach((g, t) => {
          p.grad = g;
          opt.step();
          ref(r, g, t + 1);
        });
        const err = relErr(values(p), values(r));
        assert.ok(err < 1e-14, `${name}: ${err}`);
      };
      const m = zeros(shape, { dtype: 'float64' });
      const v = zeros(shape, { dtype: 'float64' });
      check(
        'adamw',
        (p) => new optim.AdamW(p, { lr, weightDecay: wd }),
        (r, g, t) => {
          r.mul_(1 - lr * wd);
          m.mul_(0.9).add_(g, 1 - 0.9);
          v.mul_(0.999).addcmul_(g, g, 1 - 0.999);
          const denom = v
            .sqrt()
            .div(Math.sqrt(1 - 0.999 ** t))
            .add(1e-8);
          r.addcdiv_(m, denom, -(lr / (1 - 0.9 ** t)));
        },
      );
      const buf = zeros(shape, { dtype: 'float64' });
      check(
        'sgd',
        (p) => new optim.SGD(p, { lr, momentum: 0.9, weightDecay: wd, nesterov: true }),
        (r, g, t) => {
          const d = g.add(r, wd);
          if (t === 1) buf.copy_(d);
          else buf.mul_(0.9).add_(d);
          r.add_(d.add(buf, 0.9), -lr);
        },
      );
      const mu = zeros(shape, { dtype: 'float64' });
      check(
        'lars',
        (p) => new optim.LARS(p, { lr, weightDecay: wd, trustCoefficient: 0.01 }),
        (r, g) => {
          const dp = g.add(r, wd);
          const q = r.norm().mul(0.01).div(dp.norm());
          mu.mul_(0.9).add_(dp.mul(q));
          r.add_(mu, -lr);
        },
      );
    }),
  );
});

test('float16 on the CPU: the generic path follows float32 closely (or fails as PyTorch 1.13 does)', () => {
  tidy(() => {
    manualSeed(7);
    const w = randn(8, 8);
    // grads away from 0: in float16, (1-beta2)·g² of a tiny g underflows and AdamW's update
    // divides by 0 (eps = 1e-8 rounds to 0), in PyTorch as here
    const g = rand(8, 8).add(0.5);
    const run = (dtype: DType, make: (p: Tensor[]) => AnyOptimizer): number[] => {
      const p = w.to({ dtype, copy: true }).requiresGrad_(true);
      const opt = make([p]);
      for (let i = 0; i < 3; i++) {
        p.grad = g.to(dtype);
        opt.step();
      }
      return values(p);
    };
    const sgd = (p: Tensor[]): AnyOptimizer => new optim.SGD(p, { lr: 0.01, momentum: 0.9 });
    const err = relErr(run('float16', sgd), run('float32', sgd));
    assert.ok(err < 5e-3, `SGD float16 vs float32: ${err}`);
    // libtorch 1.13 has no float16 addcmul on the CPU (torch.optim.AdamW fails there too); 2.x has
    const adamw = (p: Tensor[]): AnyOptimizer => new optim.AdamW(p, { lr: 0.01 });
    let half: number[] | null = null;
    try {
      half = run('float16', adamw);
    } catch (e) {
      assert.match((e as Error).message, /adamwStep: .*Half/);
    }
    if (half) assert.ok(relErr(half, run('float32', adamw)) < 5e-3);
  });
});

test('a step inside tidy keeps the state; steps leak no handles', () => {
  const m = model('float32');
  const opt = new optim.AdamW(Object.values(m.p), { lr: 1e-2 });
  const c = fx.cases[0]!;
  train(c, m, opt, 0, 2);
  const live = liveTensors();
  train(c, m, opt, 2, 6);
  assert.equal(liveTensors(), live);
  for (const s of opt.state.values()) assert.ok(!(s.exp_avg as Tensor).isDisposed);
});

test('on CUDA, the steps (multi-tensor path) match the CPU (fused path)', { skip: !cuda.isAvailable() }, () => {
  const makers: [string, (p: Tensor[]) => AnyOptimizer][] = [
    ['adamw', (p) => new optim.AdamW(p, { lr: 0.01, weightDecay: 0.1 })],
    ['adamw amsgrad maximize', (p) => new optim.AdamW(p, { lr: 0.01, amsgrad: true, maximize: true })],
    ['sgd', (p) => new optim.SGD(p, { lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.1 })],
    ['sgd nesterov', (p) => new optim.SGD(p, { lr: 0.1, momentum: 0.9, nesterov: true })],
    ['lars', (p) => new optim.LARS(p, { lr: 0.1, weightDecay: 0.1, trustCoefficient: 0.01 })],
  ];
  for (const [name, make] of makers) {
    noGrad(() =>
      tidy(() => {
        const shapes = [[64, 32], [64], [3, 5, 7]];
        const init = shapes.map((s) => randn(s, { dtype: 'float64' }));
        const cpu = init.map((t) => t.clone().requiresGrad_(true));
        const gpu = init.map((t) => t.to({ device: 'cuda', copy: true }).requiresGrad_(true));
        const [oc, og] = [make(cpu), make(gpu)];
        for (let step = 0; step < 5; step++) {
          init.forEach((t, i) => {
            const g = randn(t.shape, { dtype: 'float64' });
            cpu[i]!.grad = g;
            gpu[i]!.grad = g.to({ device: 'cuda' });
          });
          oc.step();
          og.step();
        }
        gpu.forEach((p, i) => {
          assert.equal(p.device, 'cuda:0');
          const err = relErr(values(p.cpu()), values(cpu[i]!));
          assert.ok(err < 1e-12, `${name} param ${i}: ${err}`);
        });
        const total = optim.clipGradNorm(gpu, 0.1);
        assert.equal(total.device, 'cuda:0');
      }),
    );
  }
});
