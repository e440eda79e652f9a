// torch.nn against PyTorch: default initialisation and nn.init bit for bit under a seed, layers'
// forward and backward, batch-norm statistics, dropout masks, and a small nested model's state
// dict (names, order, loading PyTorch's values). The reference values are in
// test/fixtures/nn.json, written by test/fixtures/make_nn_fixtures.py (run it with Debian's
// python3-torch); the Module mechanics (copy, modes, freezing, dtype moves) are checked here.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import { nn, type DType, type Tensor } from '../../src/torch/index.js';

const { tidy, liveTensors, manualSeed, noGrad } = torch;

// ---- the fixture ----

interface Rec {
  dtype: DType;
  shape: number[];
  data: number[];
}
type Recs = Record<string, Rec>;
interface LayerCase {
  seed: number;
  x: Rec;
  params?: Recs;
  go: Rec;
  out: Rec;
  dx: Rec;
  dparams: Recs;
}
interface BnCase {
  options: { affine?: boolean; momentum?: number | null; eps?: number; track_running_stats?: boolean };
  params?: Recs;
  x1: Rec;
  go: Rec;
  out: Rec;
  dx: Rec;
  dparams: Recs;
  buffers1: Recs;
  x2: Rec;
  out2: Rec;
  buffers2: Recs;
  x3: Rec;
  out_eval: Rec;
  buffers_eval: Recs;
  state_keys: string[];
}
interface Fixture {
  torch: string;
  init: Record<string, { seed: number; ts: string; state: Recs; probe: Rec }>;
  init_fns: Record<string, { seed: number; out: Rec; probe: Rec }>;
  gains: Record<string, number>;
  layers: Record<string, LayerCase>;
  batchnorm: Record<string, BnCase>;
  dropout: Record<string, { seed: number; p: number; scale_by_keep?: boolean; x: Rec; out: Rec; probe: Rec }>;
  model: {
    seed: number;
    init_state: Recs;
    state_keys: string[];
    parameter_names: string[];
    buffer_names: string[];
    module_names: string[];
    train: { seed: number; x: Rec; out: Rec; go: Rec; grads: Recs };
    state: Recs;
    eval: { x: Rec; out: Rec };
  };
}

function findFixture(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'test/fixtures/nn.json');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('test/fixtures/nn.json not found');
    dir = parent;
  }
}
const fx = JSON.parse(readFileSync(findFixture(), 'utf8')) as Fixture;

function T(r: Rec): Tensor {
  switch (r.dtype) {
    case 'float64':
      return torch.tensor(Float64Array.from(r.data), { shape: r.shape });
    case 'int64':
      return torch.tensor(
        BigInt64Array.from(r.data, (v) => BigInt(v)),
        { shape: r.shape },
      );
    default:
      return torch.tensor(Float32Array.from(r.data), { shape: r.shape, dtype: r.dtype });
  }
}
const values = (t: Tensor): number[] => Array.from(t.toTypedArray() as ArrayLike<number | bigint>, Number);
const sd = (recs: Recs): Map<string, Tensor> => new Map(Object.entries(recs).map(([k, r]) => [k, T(r)]));

/** Same shape, dtype and every element (float32 values are stored as decimals that read back exactly). */
function assertExact(got: Tensor, want: Rec, what: string): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  assert.equal(got.dtype, want.dtype, `${what}: dtype`);
  const g = values(got);
  const single = want.dtype === 'float32';
  for (let i = 0; i < g.length; i++) {
    const w = single ? Math.fround(want.data[i]!) : want.data[i]!;
    if (g[i] !== w) assert.fail(`${what}[${i}]: got ${g[i]}, want ${w} (not bit-identical)`);
  }
}

/** Same shape and dtype, elements within rtol/atol (the same libtorch kernels; only summation order may differ). */
function assertClose(got: Tensor, want: Rec, what: string, rtol = 1e-5, atol = 1e-6): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  assert.equal(got.dtype, want.dtype, `${what}: dtype`);
  const g = values(got);
  for (let i = 0; i < g.length; i++) {
    const w = want.data[i]!;
    if (!(Math.abs(g[i]! - w) <= atol + rtol * Math.abs(w))) assert.fail(`${what}[${i}]: got ${g[i]}, want ${w}`);
  }
}

/**
 * A test whose body runs in a tidy scope and whose modules (passed through `own`) are disposed
 * at its end; it fails if any tensor outlives it.
 */
function check(name: string, body: (own: <M extends nn.Module>(m: M) => M) => void): void {
  test(name, () => {
    const before = liveTensors();
    const owned: nn.Module[] = [];
    try {
      tidy(() =>
        body((m) => {
          owned.push(m);
          return m;
        }),
      );
    } finally {
      for (const m of owned) m.dispose();
    }
    assert.equal(liveTensors(), before, 'tensors leaked');
  });
}

/** What a seeded thing left of the generator: equal to PyTorch's only if it drew as much. */
function assertProbe(want: Rec, what: string): void {
  assertExact(torch.rand(3), want, `${what}: the next draw (generator consumed differently)`);
}

// ---- default initialisation ----

const LAYERS: Record<string, () => nn.Module> = {
  linear_5_3: () => new nn.Linear(5, 3),
  linear_7_4_nobias: () => new nn.Linear(7, 4, { bias: false }),
  linear_24_16: () => new nn.Linear(24, 16),
  linear_3_2_float64: () => new nn.Linear(3, 2, { dtype: 'float64' }),
  conv_4_6_k3_g2: () => new nn.Conv2d(4, 6, 3, { groups: 2 }),
  conv_3_8_k35_nobias: () => new nn.Conv2d(3, 8, [3, 5], { bias: false }),
  conv_3_16_k4_s4: () => new nn.Conv2d(3, 16, 4, { stride: 4 }),
  layernorm_3x4: () => new nn.LayerNorm([3, 4]),
  batchnorm1d_5: () => new nn.BatchNorm1d(5),
};

test('every init fixture has a layer here and vice versa', () => {
  assert.deepEqual(Object.keys(LAYERS).sort(), Object.keys(fx.init).sort());
});

for (const [name, c] of Object.entries(fx.init)) {
  check(`default init bit-identical to PyTorch: ${c.ts} after manualSeed(${c.seed})`, (own) => {
    manualSeed(c.seed);
    const m = own(LAYERS[name]!());
    const state = m.stateDict();
    assert.deepEqual([...state.keys()], Object.keys(c.state), 'state dict names and order');
    for (const [k, want] of Object.entries(c.state)) assertExact(state.get(k)!, want, k);
    assertProbe(c.probe, name);
  });
}

// ---- nn.init ----

const INIT_FNS: Record<string, (t: Tensor) => Tensor> = {
  xavier_uniform: (t) => nn.init.xavierUniform(t),
  xavier_uniform_gain_conv: (t) => nn.init.xavierUniform(t, nn.init.calculateGain('relu')),
  xavier_normal: (t) => nn.init.xavierNormal(t),
  trunc_normal_default: (t) => nn.init.truncNormal(t),
  trunc_normal_std002: (t) => nn.init.truncNormal(t, { std: 0.02 }),
  trunc_normal_narrow: (t) => nn.init.truncNormal(t, { mean: 1, std: 0.5, a: 0, b: 1.5 }),
  trunc_normal_float64: (t) => nn.init.truncNormal(t, { mean: 0.3, std: 2, a: -1, b: 3 }),
  trunc_normal_float64_default: (t) => nn.init.truncNormal(t),
  normal: (t) => nn.init.normal(t, 0.5, 2),
  uniform: (t) => nn.init.uniform(t, -3, 1),
  uniform_float64: (t) => nn.init.uniform(t, -0.1, 0.7),
  kaiming_uniform_default: (t) => nn.init.kaimingUniform(t),
  kaiming_uniform_sqrt5: (t) => nn.init.kaimingUniform(t, { a: Math.sqrt(5) }),
  kaiming_uniform_fan_out_relu: (t) => nn.init.kaimingUniform(t, { mode: 'fan_out', nonlinearity: 'relu' }),
  kaiming_normal_fan_out_relu: (t) => nn.init.kaimingNormal(t, { mode: 'fan_out', nonlinearity: 'relu' }),
  zeros: (t) => nn.init.zeros(t),
  ones: (t) => nn.init.ones(t),
  constant: (t) => nn.init.constant(t, 0.25),
};

test('every init_fns fixture has a call here and vice versa', () => {
  assert.deepEqual(Object.keys(INIT_FNS).sort(), Object.keys(fx.init_fns).sort());
});

for (const [name, c] of Object.entries(fx.init_fns)) {
  check(`nn.init ${name} bit-identical to PyTorch after manualSeed(${c.seed})`, () => {
    manualSeed(c.seed);
    const t = torch.empty(c.out.shape, { dtype: c.out.dtype }).fill_(7);
    const r = INIT_FNS[name]!(t);
    assert.equal(r, t, 'returns its argument');
    assert.equal(t.requiresGrad, false);
    assertExact(t, c.out, name);
    assertProbe(c.probe, name);
  });
}

check('nn.init works in place on a parameter that requires grad (under noGrad), keeping it a leaf', (own) => {
  const lin = own(new nn.Linear(4, 3));
  const w = lin.weight;
  nn.init.truncNormal(w, { std: 0.02 });
  nn.init.zeros(lin.bias!);
  assert.equal(w.isLeaf, true);
  assert.equal(w.requiresGrad, true);
  assert.equal(w.gradFn, null);
  assert.ok(values(w).every((v) => Math.abs(v) <= 2 && v !== 0));
  assert.deepEqual(values(lin.bias!), [0, 0, 0]);
});

test('nn.init.truncNormal releases its intermediates and leaves its argument to its own scope', () => {
  const before = liveTensors();
  tidy(() => {
    const w = torch.empty(5);
    tidy(() => {
      nn.init.truncNormal(w); // its internal scope must not hand w to this one
    });
    assert.equal(w.isDisposed, false, 'still owned by the scope that made it');
    assert.equal(w.numel(), 5);
  });
  assert.equal(liveTensors(), before);
});

test('calculateGain matches PyTorch', () => {
  for (const [k, want] of Object.entries(fx.gains)) {
    const got =
      k === 'leaky_relu_sqrt5'
        ? nn.init.calculateGain('leaky_relu', Math.sqrt(5))
        : nn.init.calculateGain(k as nn.init.Nonlinearity);
    assert.equal(got, want, k);
  }
});

check('fan-based initialisers refuse tensors with fewer than 2 dimensions', () => {
  assert.throws(() => nn.init.xavierUniform(torch.empty(3)), /fewer than 2 dimensions/);
  assert.throws(() => nn.init.kaimingUniform(torch.empty(3)), /fewer than 2 dimensions/);
});

// ---- layers: forward and backward ----

const LAYER_CASES: Record<string, () => nn.TensorModule> = {
  linear_2d: () => new nn.Linear(5, 3),
  linear_3d: () => new nn.Linear(5, 3),
  linear_nobias: () => new nn.Linear(6, 2, { bias: false }),
  conv_s2_p1_g2: () => new nn.Conv2d(4, 6, 3, { stride: 2, padding: 1, groups: 2 }),
  conv_dil_rect_nobias: () => new nn.Conv2d(3, 4, [2, 3], { dilation: 2, padding: [1, 0], bias: false }),
  conv_same_even: () => new nn.Conv2d(2, 3, 4, { padding: 'same' }),
  conv_same_odd_dil: () => new nn.Conv2d(2, 2, 3, { padding: 'same', dilation: 2 }),
  conv_unbatched: () => new nn.Conv2d(2, 3, 3, { padding: 1 }),
  layernorm_affine: () => new nn.LayerNorm(6),
  layernorm_2d_eps_noaffine: () => new nn.LayerNorm([3, 4], { eps: 1e-3, elementwiseAffine: false }),
  gelu: () => new nn.GELU(),
  gelu_tanh: () => new nn.GELU({ approximate: 'tanh' }),
  relu: () => new nn.ReLU(),
};

test('every layers fixture has a layer here and vice versa', () => {
  assert.deepEqual(Object.keys(LAYER_CASES).sort(), Object.keys(fx.layers).sort());
});

for (const [name, c] of Object.entries(fx.layers)) {
  check(`${name}: forward and backward match PyTorch`, (own) => {
    manualSeed(c.seed);
    const m = own(LAYER_CASES[name]!());
    if (c.params) m.loadStateDict(sd(c.params));
    const x = T(c.x).requiresGrad_(true);
    const out = m.forward(x);
    assertClose(out, c.out, 'output');
    out.mul(T(c.go)).sum().backward();
    assertClose(x.grad!, c.dx, 'grad of the input');
    const params = new Map(m.namedParameters());
    assert.deepEqual([...params.keys()], Object.keys(c.dparams), 'parameters');
    for (const [k, want] of Object.entries(c.dparams))
      assertClose(params.get(k)!.grad!, want, `grad of ${k}`, 1e-5, 1e-5);
  });
}

// ---- batch norm ----

for (const [name, c] of Object.entries(fx.batchnorm)) {
  const o = c.options;
  const BN = c.x1.shape.length === 4 ? nn.BatchNorm2d : nn.BatchNorm1d;
  check(`${BN.name} ${name} ${JSON.stringify(o)}: training and eval match PyTorch`, (own) => {
    const bn = own(
      new BN(c.x1.shape[1]!, {
        affine: o.affine,
        momentum: o.momentum,
        eps: o.eps,
        trackRunningStats: o.track_running_stats,
      }),
    );
    assert.deepEqual([...bn.stateDict().keys()], c.state_keys, 'state dict names');
    if (c.params) {
      const r = bn.loadStateDict(sd(c.params), { strict: false });
      assert.deepEqual(r.unexpectedKeys, []);
      assert.deepEqual(
        r.missingKeys,
        c.state_keys.filter((k) => !(k in c.params!)),
      );
    }
    // a training step, with gradients
    const x1 = T(c.x1).requiresGrad_(true);
    const out1 = bn.forward(x1);
    assertClose(out1, c.out, 'training output');
    out1.mul(T(c.go)).sum().backward();
    assertClose(x1.grad!, c.dx, 'grad of the input', 1e-5, 1e-5);
    for (const [k, want] of Object.entries(c.dparams)) {
      const p = new Map(bn.namedParameters()).get(k)!;
      assertClose(p.grad!, want, `grad of ${k}`, 1e-5, 1e-5);
    }
    const checkBuffers = (want: Recs, when: string): void => {
      const got = new Map(bn.namedBuffers());
      assert.deepEqual([...got.keys()], Object.keys(want), `${when}: buffers`);
      for (const [k, w] of Object.entries(want)) {
        if (w.dtype === 'int64') assertExact(got.get(k)!, w, `${when}: ${k}`);
        else assertClose(got.get(k)!, w, `${when}: ${k}`);
      }
    };
    checkBuffers(c.buffers1, 'after one training step');
    // a second training step
    assertClose(bn.forward(T(c.x2)), c.out2, 'second training output');
    checkBuffers(c.buffers2, 'after two training steps');
    // eval: running statistics, which stay as they are
    bn.eval();
    assertClose(bn.forward(T(c.x3)), c.out_eval, 'eval output');
    checkBuffers(c.buffers_eval, 'after eval');
  });
}

check('BatchNorm1d refuses inputs that are not 2-D or 3-D; BatchNorm2d takes 4-D', (own) => {
  const bn = own(new nn.BatchNorm1d(3));
  assert.throws(() => bn.forward(torch.zeros(2, 3, 4, 5)), /BatchNorm1d: expected 2D or 3D input \(got 4D input\)/);
  assert.throws(() => bn.forward(torch.zeros(3)), /got 1D input/);
  const bn2 = own(new nn.BatchNorm2d(3));
  assert.deepEqual(bn2.forward(torch.randn(2, 3, 4, 4)).shape, [2, 3, 4, 4]);
  assert.throws(() => bn2.forward(torch.zeros(2, 3)), /BatchNorm2d: expected 4D input/);
});

// ---- dropout ----

check('Dropout: the seeded mask is PyTorch’s in training; identity in eval', (own) => {
  const c = fx.dropout.dropout_p03!;
  const d = own(new nn.Dropout(c.p));
  const x = T(c.x);
  manualSeed(c.seed);
  assertExact(d.forward(x), c.out, 'training output');
  assertProbe(c.probe, 'dropout');
  d.eval();
  manualSeed(0);
  const before = torch.rand(1).item();
  manualSeed(0);
  assert.deepEqual(values(d.forward(x)), values(x), 'eval is the identity');
  assert.equal(torch.rand(1).item(), before, 'eval draws nothing');
  assert.throws(() => new nn.Dropout(1.5), /between 0 and 1/);
});

for (const name of ['drop_path_p03', 'drop_path_p07', 'drop_path_noscale', 'drop_path_p1']) {
  check(`DropPath ${name}: the seeded mask is timm's drop_path's`, (own) => {
    const c = fx.dropout[name]!;
    const dp = own(new nn.DropPath(c.p, { scaleByKeep: c.scale_by_keep }));
    manualSeed(c.seed);
    assertExact(dp.forward(T(c.x)), c.out, 'output');
    assertProbe(c.probe, name);
  });
}

check('DropPath drops whole samples, keeps the expectation, and is the identity in eval or at p = 0', (own) => {
  manualSeed(7);
  const p = 0.25;
  const keep = 1 - p;
  const n = 20000;
  const x = torch.randn(n, 2, 3);
  const dp = own(new nn.DropPath(p));
  const y = dp.forward(x);
  assert.deepEqual(y.shape, x.shape);
  // each sample either all zero or exactly x / keep (the float32 mask value 1/keep times x)
  const scale = Math.fround(1 / keep);
  const xs = values(x);
  const ys = values(y);
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const row = ys.slice(6 * i, 6 * i + 6);
    const zero = row.every((v) => v === 0);
    const scaled = row.every((v, j) => v === Math.fround(xs[6 * i + j]! * scale));
    assert.ok(zero || scaled, `sample ${i} is neither dropped nor x/keepProb: ${row.join(', ')}`);
    if (!zero) kept++;
  }
  // kept fraction within 5 standard deviations of keepProb
  const sd = Math.sqrt((keep * (1 - keep)) / n);
  assert.ok(Math.abs(kept / n - keep) < 5 * sd, `kept ${kept / n}, want ${keep} ± ${5 * sd}`);
  // the mean of ones through DropPath is 1 (per-sample value 0 or 1/keep: sd √(p/keep) / √n)
  const ones = dp.forward(torch.ones(n, 4));
  const mean = ones.mean().item() as number;
  const sdMean = Math.sqrt(p / keep / n);
  assert.ok(Math.abs(mean - 1) < 5 * sdMean, `mean ${mean}, want 1 ± ${5 * sdMean}`);
  // identity (the very tensor) in eval and at p = 0
  dp.eval();
  assert.equal(dp.forward(x), x);
  const zero = own(new nn.DropPath(0));
  assert.equal(zero.forward(x), x);
  assert.throws(() => new nn.DropPath(-0.1), /between 0 and 1/);
});

// ---- containers ----

check('Sequential chains its modules, named "0", "1", ...; ModuleList indexes, appends, inserts', (own) => {
  manualSeed(0);
  const seq = own(new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Identity(), new nn.Linear(8, 2)));
  assert.deepEqual(
    seq.namedChildren().map(([k]) => k),
    ['0', '1', '2', '3'],
  );
  assert.deepEqual([...seq.stateDict().keys()], ['0.weight', '0.bias', '3.weight', '3.bias']);
  assert.equal(seq.length, 4);
  assert.ok(seq.get(-1) instanceof nn.Linear);
  assert.throws(() => seq.get(4), /out of range/);
  const x = torch.randn(3, 4);
  const l0 = seq.get(0) as nn.Linear;
  const l3 = seq.get(3) as nn.Linear;
  const want = l3.forward(l0.forward(x).relu());
  assert.deepEqual(values(seq.forward(x)), values(want));
  assert.deepEqual(
    [...seq].map((m) => m.constructor.name),
    ['Linear', 'ReLU', 'Identity', 'Linear'],
  );
  const named = own(
    nn.Sequential.fromEntries([
      ['fc', new nn.Linear(2, 2)],
      ['act', new nn.GELU()],
    ]),
  );
  assert.deepEqual([...named.stateDict().keys()], ['fc.weight', 'fc.bias']);

  const list = own(new nn.ModuleList([new nn.Linear(1, 1), new nn.Linear(2, 2)]));
  list.append(new nn.Linear(3, 3));
  list.insert(0, new nn.Linear(4, 4));
  assert.equal(list.length, 4);
  assert.deepEqual(
    list.map((m) => (m as nn.Linear).inFeatures),
    [4, 1, 2, 3],
  );
  assert.deepEqual(
    list.namedChildren().map(([k]) => k),
    ['0', '1', '2', '3'],
  );
  assert.equal((list.get(-1) as nn.Linear).inFeatures, 3);
  assert.deepEqual(list.stateDict().get('0.weight')!.shape, [4, 4]);
  const old = list.get(1);
  list.set(1, new nn.Linear(5, 5));
  old.dispose();
  assert.deepEqual(list.stateDict().get('1.weight')!.shape, [5, 5]);
});

// ---- a small nested model, as in the fixture script ----

class Mlp extends nn.Module {
  fc1: nn.Linear;
  act: nn.GELU;
  drop: nn.Dropout;
  fc2: nn.Linear;
  constructor(dim: number, hidden: number) {
    super();
    this.fc1 = this.registerModule('fc1', new nn.Linear(dim, hidden));
    this.act = this.registerModule('act', new nn.GELU());
    this.drop = this.registerModule('drop', new nn.Dropout(0.1));
    this.fc2 = this.registerModule('fc2', new nn.Linear(hidden, dim));
  }
  forward(x: Tensor): Tensor {
    return this.drop.forward(this.fc2.forward(this.drop.forward(this.act.forward(this.fc1.forward(x)))));
  }
}

class Block extends nn.Module {
  norm1: nn.LayerNorm;
  mlp: Mlp;
  drop_path: nn.DropPath;
  norm2: nn.BatchNorm1d;
  constructor(dim: number, dropPath: number) {
    super();
    this.norm1 = this.registerModule('norm1', new nn.LayerNorm(dim));
    this.mlp = this.registerModule('mlp', new Mlp(dim, 2 * dim));
    this.drop_path = this.registerModule('drop_path', new nn.DropPath(dropPath));
    this.norm2 = this.registerModule('norm2', new nn.BatchNorm1d(dim));
  }
  forward(x: Tensor): Tensor {
    const y = x.add(this.drop_path.forward(this.mlp.forward(this.norm1.forward(x))));
    return this.norm2.forward(y.transpose(1, 2)).transpose(1, 2);
  }
}

class Net extends nn.Module {
  patch_embed: nn.Conv2d;
  cls_token: Tensor;
  blocks: nn.ModuleList<Block>;
  norm: nn.LayerNorm;
  head: nn.Sequential;
  scale: Tensor;
  constructor(dim = 8, depth = 2, classes = 5) {
    super();
    this.patch_embed = this.registerModule('patch_embed', new nn.Conv2d(3, dim, 4, { stride: 4 }));
    this.cls_token = this.registerParameter('cls_token', torch.zeros(1, 1, dim));
    this.blocks = this.registerModule(
      'blocks',
      new nn.ModuleList(Array.from({ length: depth }, (_, i) => new Block(dim, 0.1 * (i + 1)))),
    );
    this.norm = this.registerModule('norm', new nn.LayerNorm(dim));
    this.head = this.registerModule(
      'head',
      new nn.Sequential(
        new nn.Linear(dim, dim),
        new nn.ReLU(),
        new nn.BatchNorm1d(dim),
        new nn.Identity(),
        new nn.Linear(dim, classes),
      ),
    );
    this.scale = this.registerBuffer('scale', torch.full([1], 1.5));
    this.registerBuffer('scratch', torch.zeros(1), false);
    nn.init.truncNormal(this.cls_token, { std: 0.02 });
  }
  forward(img: Tensor): Tensor {
    let x = this.patch_embed.forward(img).flatten(2).transpose(1, 2);
    x = torch.cat([this.cls_token.expand(x.shape[0]!, -1, -1), x], 1);
    for (const blk of this.blocks) x = blk.forward(x);
    x = this.norm.forward(x);
    return this.head.forward(x.select(1, 0)).mul(this.scale);
  }
}

const M = fx.model;

check('a nested model names its state as PyTorch does, in the same order', (own) => {
  const net = own(new Net());
  assert.deepEqual([...net.stateDict().keys()], M.state_keys, 'state dict');
  assert.deepEqual(
    net.namedParameters().map(([k]) => k),
    M.parameter_names,
    'named parameters',
  );
  assert.deepEqual(
    net.namedBuffers().map(([k]) => k),
    M.buffer_names,
    'named buffers (non-persistent ones included)',
  );
  assert.deepEqual(
    net.namedModules().map(([k]) => k),
    M.module_names,
    'named modules',
  );
  for (const [k, t] of net.stateDict()) assert.deepEqual(t.shape, M.init_state[k]!.shape, `${k}: shape`);
});

check('a nested model built after manualSeed has PyTorch’s initial values bit for bit', (own) => {
  manualSeed(M.seed);
  const net = own(new Net());
  for (const [k, t] of net.stateDict()) assertExact(t, M.init_state[k]!, k);
});

check('a seeded training step of the nested model matches PyTorch (dropout and drop-path masks included)', (own) => {
  manualSeed(M.seed);
  const net = own(new Net());
  manualSeed(M.train.seed);
  const out = net.forward(T(M.train.x));
  assertClose(out, M.train.out, 'output', 1e-5, 1e-5);
  out.mul(T(M.train.go)).sum().backward();
  // rtol 2e-4, atol 3e-5: gradients are float32 sums over batch and tokens whose order follows the
  // CPU's BLAS kernels; on a Haswell core they land up to 1.3e-4 (relative) and 1.1e-5 (absolute,
  // for a bias gradient that cancels to ~1e-5) from the fixture machine's. A wrong gradient is
  // off by orders of magnitude more.
  for (const [k, p] of net.namedParameters()) assertClose(p.grad!, M.train.grads[k]!, `grad of ${k}`, 2e-4, 3e-5);
  for (const [k, t] of net.stateDict()) {
    if (t.dtype === 'int64') assertExact(t, M.state[k]!, k);
    else assertClose(t, M.state[k]!, k);
  }
});

check('loading a PyTorch state dict gives PyTorch’s eval outputs', (own) => {
  manualSeed(12345);
  const net = own(new Net());
  const r = net.loadStateDict(sd(M.state));
  assert.deepEqual(r, { missingKeys: [], unexpectedKeys: [] });
  for (const [k, t] of net.stateDict()) assertExact(t, M.state[k]!, k);
  net.eval();
  assertClose(net.forward(T(M.eval.x)), M.eval.out, 'eval output', 1e-5, 1e-5);
});

check('loadStateDict: strict names every bad key in one error and copies nothing; non-strict reports', (own) => {
  manualSeed(1);
  const net = own(new Net());
  const before = new Map([...net.stateDict()].map(([k, t]) => [k, values(t)]));
  const state = sd(M.state);
  state.delete('norm.bias');
  state.delete('blocks.1.norm2.running_var');
  state.set('head.9.weight', torch.zeros(2));
  state.set('extra', torch.zeros(1));
  state.set('patch_embed.bias', torch.zeros(9));
  state.set('head.4.weight', torch.zeros(5, 9));
  let message = '';
  assert.throws(
    () => net.loadStateDict(state),
    (e: Error) => {
      message = e.message;
      return true;
    },
  );
  for (const k of ['norm.bias', 'blocks.1.norm2.running_var', 'head.9.weight', 'extra']) {
    assert.ok(message.includes(k), `the error names ${k}: ${message}`);
  }
  assert.match(message, /patch_embed\.bias \(checkpoint \[9\], model \[8\]\)/);
  assert.match(message, /head\.4\.weight \(checkpoint \[5, 9\], model \[5, 8\]\)/);
  assert.match(message, /2 with a different shape/);
  assert.match(message, /2 missing/);
  assert.match(message, /2 unexpected/);
  for (const [k, t] of net.stateDict()) assert.deepEqual(values(t), before.get(k), `${k} untouched`);
  // a different shape is an error even when not strict (as in PyTorch)
  assert.throws(() => net.loadStateDict(state, { strict: false }), /2 with a different shape/);
  // without shape mismatches, non-strict loads what matches and returns the rest
  state.set('patch_embed.bias', T(M.state['patch_embed.bias']!));
  state.set('head.4.weight', T(M.state['head.4.weight']!));
  const r = net.loadStateDict(state, { strict: false });
  assert.deepEqual(r.missingKeys, ['blocks.1.norm2.running_var', 'norm.bias']);
  assert.deepEqual(r.unexpectedKeys, ['head.9.weight', 'extra']);
  assertExact(net.stateDict().get('head.4.weight')!, M.state['head.4.weight']!, 'loaded');
  assert.deepEqual(values(net.norm.bias!), before.get('norm.bias'), 'missing left as it was');
});

// ---- Module mechanics ----

check('copy(): independent storage, equal values, requiresGrad as it was, same structure', (own) => {
  manualSeed(3);
  const net = own(new Net());
  net.head.requiresGrad_(false); // a frozen part, to see that copy keeps it frozen
  net.blocks.get(1).eval();
  const c = own(net.copy());
  assert.ok(c instanceof Net);
  assert.notEqual(c.blocks, net.blocks);
  assert.deepEqual([...c.stateDict().keys()], [...net.stateDict().keys()]);
  const mine = new Map(net.namedParameters());
  for (const [k, p] of c.namedParameters()) {
    const q = mine.get(k)!;
    assert.equal(p.isSame(q), false, `${k}: a different tensor`);
    assert.deepEqual(values(p), values(q), `${k}: equal values`);
    assert.equal(p.requiresGrad, q.requiresGrad, `${k}: requiresGrad`);
    assert.equal(p.isLeaf, true, `${k}: a leaf`);
    assert.equal(p.grad, null, `${k}: no gradient`);
  }
  assert.equal(c.head.get(0).training, true);
  assert.equal(c.blocks.get(1).training, false, 'modes are copied');
  // fields and registrations point at the same copied tensors
  assert.equal(c.cls_token, new Map(c.namedParameters()).get('cls_token'));
  assert.equal(c.scale, new Map(c.namedBuffers()).get('scale'));
  // writing to the copy leaves the original alone (storage is not shared), buffers included
  noGrad(() => {
    for (const p of c.parameters()) p.add_(1);
    c.scale.fill_(-1);
  });
  for (const [k, p] of c.namedParameters()) {
    const q = mine.get(k)!;
    assert.ok(
      values(p).every((v, i) => Math.abs(v - (values(q)[i]! + 1)) < 1e-6),
      `${k}: the copy moved, the original did not`,
    );
  }
  assert.deepEqual(values(net.scale), [1.5]);
});

check('train() and eval() reach every submodule; a subtree can be switched alone', (own) => {
  const net = own(new Net());
  const modes = (): boolean[] => net.modules().map((m) => m.training);
  assert.ok(modes().every((t) => t));
  net.eval();
  assert.ok(modes().every((t) => !t));
  net.train();
  assert.ok(modes().every((t) => t));
  net.blocks.get(0).eval();
  assert.deepEqual(
    net
      .namedModules()
      .filter(([, m]) => !m.training)
      .map(([k]) => k),
    M.module_names.filter((k) => k.startsWith('blocks.0')),
  );
  net.train(false);
  assert.ok(modes().every((t) => !t));
});

check('requiresGrad_(false) freezes: no gradients reach the parameters; true unfreezes', (own) => {
  manualSeed(4);
  const net = own(new Net());
  net.eval();
  net.requiresGrad_(false);
  assert.ok(net.parameters().every((p) => !p.requiresGrad));
  const x = T(M.eval.x).requiresGrad_(true);
  net.forward(x).sum().backward();
  assert.ok(x.grad, 'the input still gets a gradient');
  assert.ok(net.parameters().every((p) => p.grad === null));
  net.requiresGrad_(true);
  assert.ok(net.parameters().every((p) => p.requiresGrad && p.isLeaf));
  net.forward(T(M.eval.x)).sum().backward();
  assert.ok(net.parameters().every((p) => p.grad !== null));
  net.zeroGrad();
  assert.ok(net.parameters().every((p) => p.grad === null));
});

check("to('float64') converts in place: the same leaf tensors, floating buffers converted, counters kept", (own) => {
  manualSeed(5);
  const net = own(new Net());
  net.eval();
  const x = T(M.eval.x);
  const y32 = net.forward(x);
  const params = net.namedParameters();
  const buffers = net.namedBuffers();
  const before = new Map(params.map(([k, p]) => [k, values(p)]));
  assert.equal(net.to('float64'), net);
  for (const [k, p] of params) {
    assert.equal(new Map(net.namedParameters()).get(k), p, `${k}: the same Tensor object`);
    assert.equal(p.dtype, 'float64', k);
    assert.equal(p.isLeaf, true, k);
    assert.equal(p.requiresGrad, true, k);
    assert.deepEqual(values(p), before.get(k), `${k}: values kept`);
  }
  for (const [k, b] of buffers) {
    assert.equal(new Map(net.namedBuffers()).get(k), b, `${k}: the same Tensor object`);
    assert.equal(b.dtype, k.endsWith('num_batches_tracked') ? 'int64' : 'float64', k);
  }
  assert.equal(net.cls_token.dtype, 'float64', 'fields see the change');
  const y64 = net.forward(x.double());
  assert.equal(y64.dtype, 'float64');
  const a = values(y32);
  values(y64).forEach((v, i) => assert.ok(Math.abs(v - a[i]!) < 1e-4, `output ${i}: ${v} vs ${a[i]}`));
  // gradients flow to the converted leaves
  y64.sum().backward();
  assert.equal(net.patch_embed.weight.grad!.dtype, 'float64');
  net.zeroGrad();
  net.to('float32');
  assert.equal(net.patch_embed.weight.dtype, 'float32');
});

check('parameters shared between modules are listed once, but named at every place in the state dict', (own) => {
  class Tied extends nn.Module {
    a: nn.Linear;
    b: nn.Linear;
    constructor() {
      super();
      this.a = this.registerModule('a', new nn.Linear(3, 3));
      this.b = this.registerModule('b', new nn.Linear(3, 3, { bias: false }));
      this.b.weight.dispose(); // replaced by a's weight (weight tying)
      this.b._parameters.set('weight', this.a.weight);
    }
  }
  const m = own(new Tied());
  assert.deepEqual(
    m.namedParameters().map(([k]) => k),
    ['a.weight', 'a.bias'],
  );
  assert.equal(m.numParameters(), 12);
  assert.deepEqual([...m.stateDict().keys()], ['a.weight', 'a.bias', 'b.weight']);
  const shared = own(new nn.ReLU());
  const twice = own(new nn.Sequential(shared, shared));
  assert.deepEqual(
    twice.namedModules().map(([k]) => k),
    ['', '0'],
  );
  assert.equal(twice.children().length, 1);
  assert.deepEqual(twice.forward(torch.tensor([-1, 2])).toArray(), [0, 2], 'forward still runs both places');
});

check('apply() visits children before their parent; names cannot be reused across kinds', (own) => {
  const net = own(new Net());
  const seen: string[] = [];
  net.apply((m) => seen.push(m.constructor.name));
  assert.equal(seen[seen.length - 1], 'Net');
  assert.deepEqual(seen.slice(0, 5), ['Conv2d', 'LayerNorm', 'Linear', 'GELU', 'Dropout']);
  // re-initialise every Linear's weight, timm-style
  net.apply((m) => {
    if (m instanceof nn.Linear) {
      nn.init.truncNormal(m.weight, { std: 0.02 });
      if (m.bias) nn.init.zeros(m.bias);
    }
  });
  assert.deepEqual(values(net.head.get(0).stateDict().get('bias')!), new Array(8).fill(0));
  class Clash extends nn.Module {
    constructor() {
      super();
      this.registerParameter('w', null);
      this.registerBuffer('w', torch.zeros(1));
    }
  }
  assert.throws(() => new Clash(), /'w' is already registered as a different kind of member/);
});
