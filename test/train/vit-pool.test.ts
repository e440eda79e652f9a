// VisionTransformer's global pooling against MAE's models_vit (test/fixtures/train.json): the
// 'avg' model (norm an Identity, fc_norm on the mean of the patch tokens) and the 'token' model,
// logits and pre-logits, timm's state-dict names; loading a pre-trained backbone as MAE does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import { VisionTransformer } from '../../src/models/index.js';
import { initHead, interpolatePosEmbed, loadPretrainedBackbone } from '../../src/train/index.js';
import { assertClose, fixtureVit, T, tx, values } from './fixture.js';

const { tidy, liveTensors, manualSeed } = torch;

test("globalPool 'avg' and 'token' match MAE's models_vit (logits and pre-logits)", () => {
  const before = liveTensors();
  for (const pool of ['avg', 'token'] as const) {
    const m = fixtureVit(pool).eval();
    tidy(() => {
      const x = T(tx.vit.x);
      assertClose(m.forward(x), tx.vit[`${pool}_logits`], `${pool} logits`, 1e-5);
      const feats = m.forwardHead(m.forwardFeatures(x), { preLogits: true });
      assertClose(feats, tx.vit[`${pool}_pre_logits`], `${pool} pre-logits`, 1e-5);
    });
    assert.deepEqual(
      m.namedParameters().map(([n]) => n),
      tx.vit[`param_names_${pool}`],
      `${pool}: timm's parameter names, in timm's order`,
    );
    m.dispose();
  }
  assert.equal(liveTensors(), before);
});

test("globalPool 'avg': norm has no keys, fc_norm is a LayerNorm(eps 1e-6); bad values are refused", () => {
  const m = new VisionTransformer({ imgSize: 8, patchSize: 4, embedDim: 8, depth: 1, numHeads: 2, globalPool: 'avg' });
  const keys = tidy(() => [...m.stateDict().keys()]);
  assert.ok(!keys.some((k) => k.startsWith('norm.')));
  assert.deepEqual(
    keys.filter((k) => k.startsWith('fc_norm.')),
    ['fc_norm.weight', 'fc_norm.bias'],
  );
  assert.equal((m.fc_norm as torch.nn.LayerNorm).eps, 1e-6);
  const t = new VisionTransformer({ imgSize: 8, patchSize: 4, embedDim: 8, depth: 1, numHeads: 2 });
  assert.ok(tidy(() => [...t.stateDict().keys()]).includes('norm.weight'));
  assert.ok(!tidy(() => [...t.stateDict().keys()]).some((k) => k.startsWith('fc_norm')));
  // @ts-expect-error: not a pooling mode
  assert.throws(() => new VisionTransformer({ embedDim: 8, depth: 1, numHeads: 2, globalPool: 'max' }), /globalPool/);
  m.dispose();
  t.dispose();
});

function backboneState(): Map<string, Tensor> {
  // a pre-training backbone: CLS model with the final norm, no head
  manualSeed(3);
  const pre = new VisionTransformer({ imgSize: 16, patchSize: 4, embedDim: 16, depth: 2, numHeads: 2 });
  const s = pre.stateDict();
  const out = new Map([...s].map(([k, v]) => [k, torch.keep(v.clone())]));
  torch.dispose([...s.values()]);
  pre.dispose();
  return out;
}

test('loadPretrainedBackbone into a global-pool classifier: missing head/fc_norm, unexpected norm, as MAE', () => {
  const before = liveTensors();
  const sdict = backboneState();
  const m = fixtureVit('avg', { load: false });
  const r = loadPretrainedBackbone(m, sdict);
  assert.deepEqual(r.missingKeys.sort(), ['fc_norm.bias', 'fc_norm.weight', 'head.bias', 'head.weight']);
  assert.deepEqual(r.unexpectedKeys.sort(), ['norm.bias', 'norm.weight']);
  assert.deepEqual(r.droppedKeys, []);
  tidy(() => {
    const got = m.stateDict();
    for (const k of ['blocks.1.mlp.fc2.weight', 'cls_token', 'patch_embed.proj.weight'])
      assert.deepEqual(values(got.get(k)!), values(sdict.get(k)!), k);
  });
  // MAE's head re-init: trunc-normal std 2e-5, zero bias
  manualSeed(0);
  initHead(m.head as torch.nn.Linear, 2e-5);
  tidy(() => {
    const w = values((m.head as torch.nn.Linear).weight);
    const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    assert.ok(std > 1e-5 && std < 3e-5, `head std ${std}`);
    assert.ok(values((m.head as torch.nn.Linear).bias!).every((v) => v === 0));
  });
  m.dispose();
  torch.dispose([...sdict.values()]);
  assert.equal(liveTensors(), before);
});

test('loadPretrainedBackbone: a prefix, a differently shaped head dropped, shape errors name the key', () => {
  const before = liveTensors();
  const sdict = backboneState();
  const prefixed = new Map([...sdict].map(([k, v]) => [`base_encoder.backbone.${k}`, v]));
  prefixed.set('base_encoder.projector.0.weight', torch.zeros([4, 4]));
  const m = fixtureVit('token', { load: false });
  const r = loadPretrainedBackbone(m, prefixed, { prefix: 'base_encoder.backbone.' });
  assert.deepEqual(r.missingKeys.sort(), ['head.bias', 'head.weight']);
  assert.deepEqual(r.unexpectedKeys, []);
  // without the prefix the backbone keys are missing: an error that suggests the prefix
  assert.throws(() => loadPretrainedBackbone(m, prefixed), /lacks \d+ backbone key\(s\): cls_token.*prefix/);
  // a 1000-class head in the checkpoint is dropped (MAE's fine-tuning)
  const withHead = new Map(sdict);
  withHead.set('head.weight', torch.zeros([1000, 16]));
  withHead.set('head.bias', torch.zeros([1000]));
  const r2 = loadPretrainedBackbone(m, withHead);
  assert.deepEqual(r2.droppedKeys, ['head.weight', 'head.bias']);
  // any other shape difference is an error naming the key and both shapes
  const bad = new Map(sdict);
  bad.set('pos_embed', torch.zeros([1, 6, 16])); // CLS + 5: no square grid to interpolate from
  assert.throws(() => loadPretrainedBackbone(m, bad), /pos_embed: checkpoint \[1, 6, 16\], model \[1, 17, 16\]/);
  m.dispose();
  torch.dispose([
    ...sdict.values(),
    ...withHead.values(),
    bad.get('pos_embed'),
    prefixed.get('base_encoder.projector.0.weight'),
  ]);
  assert.equal(liveTensors(), before);
});

test("interpolatePosEmbed equals MAE's interpolate_pos_embed; loadPretrainedBackbone resizes a 2x2 table", () => {
  const before = liveTensors();
  tidy(() => {
    const pe = T(tx.pos_interp.src);
    const n = tx.pos_interp.new_size as number;
    assertClose(interpolatePosEmbed(pe, [n, n]), tx.pos_interp.out, 'bicubic 4x4 -> 6x6', 1e-5);
    assert.throws(() => interpolatePosEmbed(pe.narrow(1, 0, 16), [n, n]), /square grid/);
  });
  const sdict = backboneState();
  const small = new Map(sdict);
  const pe2 = torch.keep(torch.randn([1, 5, 16])); // CLS + 2x2 grid
  small.set('pos_embed', pe2);
  const m = fixtureVit('token', { load: false });
  const r = loadPretrainedBackbone(m, small);
  assert.deepEqual(r.interpolatedKeys, ['pos_embed']);
  tidy(() => {
    const want = interpolatePosEmbed(pe2, [4, 4]);
    assert.deepEqual(values(m.pos_embed), values(want));
    assert.deepEqual(values(m.pos_embed.narrow(1, 0, 1)), values(pe2.narrow(1, 0, 1)), 'CLS row kept');
  });
  assert.throws(() => loadPretrainedBackbone(m, small, { interpolatePosEmbed: false }), /pos_embed: checkpoint/);
  m.dispose();
  torch.dispose([...sdict.values(), pe2]);
  assert.equal(liveTensors(), before);
});
