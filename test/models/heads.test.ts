// Projector/predictor MLPs (MoCo-v3's _build_mlp with BatchNorm, ExtreMA's LayerNorm variant,
// the BYOL/MoCo-v3 predictor without an output norm) and CaiT's class-attention blocks against
// plain-PyTorch references (test/fixtures/models.json, from test/fixtures/make_model_fixtures.py).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { nn } from '../../src/torch/index.js';
import {
  buildMlp,
  buildPredictor,
  buildProjector,
  ClassAttentionStack,
  VisionTransformer,
} from '../../src/models/index.js';
import { assertClose, fx, sd, T, type Rec, type Recs } from './fixture.js';

const { tidy, liveTensors } = torch;

interface HeadCase {
  num_layers: number;
  last_norm: boolean;
  norm: 'bn' | 'ln';
  dims: [number, number, number];
  state: Recs;
  keys: string[];
  x: Rec;
  out: Rec;
  go: Rec;
  grads: Recs;
  buffers_after: Recs;
  out_eval: Rec;
}

for (const [name, c] of Object.entries(fx.heads as Record<string, HeadCase>)) {
  test(`head ${name}: state-dict names, train/eval outputs, gradient and running stats match`, () => {
    const before = liveTensors();
    const m = buildMlp(c.num_layers, ...c.dims, { norm: c.norm, lastNorm: c.last_norm });
    assert.deepEqual(
      tidy(() => [...m.stateDict().keys()]),
      c.keys,
    );
    tidy(() => void m.loadStateDict(sd(c.state)));
    m.train();
    tidy(() => {
      const out = m.forward(T(c.x));
      assertClose(out, c.out, `${name}: train output`);
      out.mul(T(c.go)).sum().backward();
      const w0 = (m.get(0) as nn.Linear).weight.grad;
      assert.ok(w0);
      assertClose(w0, c.grads['0.weight']!, `${name}: d/d 0.weight`);
    });
    tidy(() => {
      const state = m.stateDict();
      for (const [k, r] of Object.entries(c.buffers_after)) assertClose(state.get(k)!, r, `${name}: ${k}`);
    });
    m.eval();
    tidy(() => assertClose(m.forward(T(c.x)), c.out_eval, `${name}: eval output`));
    m.zeroGrad();
    m.dispose();
    assert.equal(liveTensors(), before);
  });
}

test('projector and predictor presets: MoCo-v3 sizes and layouts', () => {
  const before = liveTensors();
  const proj = buildProjector(384);
  const keys = tidy(() => [...proj.stateDict().keys()]);
  assert.deepEqual(keys.slice(0, 6), [
    '0.weight',
    '1.weight',
    '1.bias',
    '1.running_mean',
    '1.running_var',
    '1.num_batches_tracked',
  ]);
  assert.equal(proj.length, 8); // Linear BN ReLU Linear BN ReLU Linear BN(affine=False)
  assert.deepEqual((proj.get(0) as nn.Linear).weight.shape, [4096, 384]);
  assert.deepEqual((proj.get(6) as nn.Linear).weight.shape, [256, 4096]);
  assert.equal((proj.get(7) as nn.BatchNorm1d).affine, false);
  const pred = buildPredictor(256);
  assert.equal(pred.length, 4); // Linear BN ReLU Linear: no output norm (MoCo-v3 last_bn=False, BYOL)
  assert.deepEqual((pred.get(3) as nn.Linear).weight.shape, [256, 4096]);
  const ln = buildProjector(32, { norm: 'ln', hiddenDim: 8, outDim: 4 });
  assert.ok(ln.get(1) instanceof nn.LayerNorm && ln.get(2) instanceof nn.GELU);
  assert.ok((ln.get(0) as nn.Linear).bias);
  assert.throws(() => buildMlp(0, 4, 4, 4), /numLayers/);
  proj.dispose();
  pred.dispose();
  ln.dispose();
  assert.equal(liveTensors(), before);
});

test('class-attention stack: names, CLS output and gradients match CaiT; patch tokens pass through', () => {
  const before = liveTensors();
  const c = fx.class_attention as {
    dim: number;
    heads: number;
    depth: number;
    state: Recs;
    keys: string[];
    tokens: Rec;
    out: Rec;
    go: Rec;
    grads: Recs;
  };
  const m = new ClassAttentionStack(c.dim, c.heads, { depth: c.depth });
  assert.deepEqual(
    tidy(() => [...m.stateDict().keys()]),
    c.keys,
  );
  tidy(() => {
    // LayerScale gammas start at 1e-5
    assert.ok(torch.allclose(m.blocks.get(0).gamma_1, torch.full([c.dim], 1e-5)));
  });
  tidy(() => void m.loadStateDict(sd(c.state)));
  tidy(() => {
    const tokens = T(c.tokens);
    const out = m.forward(tokens);
    assertClose(out, c.out, 'class attention output');
    assert.ok(torch.equal(out.slice(1, 1), tokens.slice(1, 1)), 'patch tokens unchanged');
    out.mul(T(c.go)).sum().backward();
  });
  const params = new Map(m.namedParameters());
  for (const [pname, g] of Object.entries(c.grads)) {
    tidy(() => {
      const grad = params.get(pname)?.grad;
      assert.ok(grad, pname);
      assertClose(grad, g, `d/d ${pname}`);
    });
  }
  m.zeroGrad();
  m.dispose();
  assert.equal(liveTensors(), before);
});

test('backbone → class attention → projector runs on kept-token rows', () => {
  const before = liveTensors();
  const vit = new VisionTransformer({ imgSize: 16, patchSize: 4, embedDim: 32, depth: 1, numHeads: 2 });
  const ca = new ClassAttentionStack(32, 2, { initValues: 0.1 });
  const proj = buildProjector(32, { hiddenDim: 16, outDim: 8 });
  tidy(() => {
    const x = torch.randn([2, 3, 16, 16]);
    const keep = torch.cat([torch.randperm(16).reshape(2, 8), torch.randperm(16).reshape(2, 8)], 0);
    const feats = ca.forward(vit.forwardFeatures(x, { keep, rowsPerImage: 2 }));
    assert.deepEqual(feats.shape, [4, 9, 32]);
    const z = proj.forward(feats.select(1, 0));
    assert.deepEqual(z.shape, [4, 8]);
    z.square().sum().backward();
  });
  tidy(() => assert.ok(ca.blocks.get(1).gamma_2.grad && vit.cls_token.grad));
  for (const m of [vit, ca, proj]) {
    m.zeroGrad();
    m.dispose();
  }
  assert.equal(liveTensors(), before);
});
