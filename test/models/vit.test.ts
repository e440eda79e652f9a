// The ViT against a plain-PyTorch reference of timm's VisionTransformer with MoCo-v3's sin-cos
// position embedding (test/fixtures/models.json, from test/fixtures/make_model_fixtures.py):
// state-dict names, features for full sequences and for kept-token rows, gradients, the
// position table (exactly), MoCo-v3's init statistics, the frozen patch embedding, and the
// preset parameter counts against timm's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import {
  buildSincosPosEmbed,
  createModel,
  VisionTransformer,
  vitBase,
  vitSmall,
  vitTiny,
} from '../../src/models/index.js';
import { assertClose, assertExact, fx, sd, T, values, type Rec, type Recs } from './fixture.js';

const { tidy, liveTensors, manualSeed } = torch;

interface Case {
  out: Rec;
  go: Rec;
  grads: Recs;
  keep?: Rec;
  rows_per_image?: number;
}

function smallVit(): VisionTransformer {
  const c = fx.vit.config as {
    img_size: number;
    patch_size: number;
    embed_dim: number;
    depth: number;
    num_heads: number;
  };
  return new VisionTransformer({
    imgSize: c.img_size,
    patchSize: c.patch_size,
    embedDim: c.embed_dim,
    depth: c.depth,
    numHeads: c.num_heads,
  });
}

test('sin-cos position embedding equals MoCo-v3 exactly', () => {
  const before = liveTensors();
  for (const c of fx.sincos as { h: number; w: number; dim: number; pe: Rec }[]) {
    tidy(() => assertExact(buildSincosPosEmbed(c.h, c.w, c.dim), c.pe, `sincos ${c.h}x${c.w}x${c.dim}`));
  }
  assert.throws(() => buildSincosPosEmbed(2, 2, 6), /multiple of 4/);
  assert.equal(liveTensors(), before);
});

test('state dict names are timm VisionTransformer names and the reference loads', () => {
  const before = liveTensors();
  const m = smallVit();
  const want = Object.keys(fx.vit.state as Recs);
  const keys = tidy(() => [...m.stateDict().keys()]);
  assert.deepEqual([...keys].sort(), [...want].sort());
  // timm's order: own parameters (cls_token, pos_embed), then patch_embed, blocks, norm
  assert.deepEqual(keys, want);
  tidy(() => {
    const r = m.loadStateDict(sd(fx.vit.state as Recs));
    assert.deepEqual(r, { missingKeys: [], unexpectedKeys: [] });
  });
  // our own table equals the reference's pos_embed
  tidy(() => assertExact(m.pos_embed, fx.vit.state.pos_embed as Rec, 'pos_embed'));
  assert.equal(m.pos_embed.requiresGrad, false);
  m.dispose();
  assert.equal(liveTensors(), before);
});

function checkCase(name: string, c: Case): void {
  const before = liveTensors();
  const m = smallVit().eval();
  tidy(() => void m.loadStateDict(sd(fx.vit.state as Recs)));
  tidy(() => {
    const x = T(fx.vit.x as Rec);
    const keep = c.keep ? T(c.keep) : undefined;
    const out = m.forwardFeatures(x, { keep, rowsPerImage: c.rows_per_image });
    assertClose(out, c.out, `${name}: features`);
    out.mul(T(c.go)).sum().backward();
  });
  const params = new Map(m.namedParameters());
  for (const [pname, g] of Object.entries(c.grads)) {
    tidy(() => {
      const grad = params.get(pname)?.grad;
      assert.ok(grad, `${name}: ${pname} has a gradient`);
      assertClose(grad, g, `${name}: d/d ${pname}`);
    });
  }
  m.zeroGrad();
  m.dispose();
  assert.equal(liveTensors(), before, `${name}: no leaked tensors`);
}

test('features and gradients match the reference on full sequences', () => {
  checkCase('full', fx.vit.full as Case);
});

test('kept-token rows (a permutation cut into chunks, rows = B·n) match the reference', () => {
  const c = fx.vit.kept as Case;
  assert.equal(c.keep!.shape[0], 2 * c.rows_per_image!);
  checkCase('kept', c);
});

test('one kept row per image with 5 of 16 tokens matches the reference', () => {
  checkCase('kept5', fx.vit.kept5 as Case);
});

test('a row of all tokens in order equals the full forward; keep shape errors', () => {
  const before = liveTensors();
  const m = smallVit().eval();
  tidy(() => void m.loadStateDict(sd(fx.vit.state as Recs)));
  tidy(() => {
    const x = T(fx.vit.x as Rec);
    const full = m.forwardFeatures(x);
    const keep = torch.arange(16, undefined, 1, { dtype: 'int64' }).unsqueeze(0).expand(2, 16);
    const viaKeep = m.forwardFeatures(x, { keep });
    assert.ok(torch.allclose(full, viaKeep, 1e-5, 1e-6));
    // the head is Identity: forward gives the CLS feature
    assert.ok(torch.allclose(m.forward(x), full.select(1, 0), 1e-5, 1e-6));
    assert.throws(() => m.forwardFeatures(x, { keep: torch.zeros([3, 4], { dtype: 'int64' }) }), /rows/);
    assert.throws(() => m.forwardFeatures(x, { keep: torch.zeros([4], { dtype: 'int64' }) }), /keep must be/);
  });
  m.dispose();
  assert.equal(liveTensors(), before);
});

test('MoCo-v3 init: qkv bound per third, xavier elsewhere, zero biases, CLS std ~1e-6', () => {
  const before = liveTensors();
  manualSeed(0);
  const m = new VisionTransformer({ imgSize: 32, patchSize: 8, embedDim: 96, depth: 2, numHeads: 3 });
  const D = 96;
  const maxAbs = (t: Tensor): number => Number(tidy(() => t.abs().max().item()));
  for (let i = 0; i < 2; i++) {
    const b = m.blocks.get(i);
    const qkvBound = Math.sqrt(6 / (D + D));
    const qkv = b.attn.qkv.weight;
    assert.ok(maxAbs(qkv) <= qkvBound);
    // each third is U(±√(6/(D+D))): its spread reaches close to the bound (not xavier's on 3D×D)
    for (const part of tidy(() => qkv.chunk(3, 0).map((t) => torch.keep(t)))) {
      assert.ok(maxAbs(part) > 0.95 * qkvBound, 'each of Q, K, V uses the d×d bound');
      part.dispose();
    }
    const fc1Bound = Math.sqrt(6 / (D + 4 * D));
    assert.ok(maxAbs(b.mlp.fc1.weight) <= fc1Bound && maxAbs(b.mlp.fc1.weight) > 0.95 * fc1Bound);
    const projBound = Math.sqrt(6 / (D + D));
    assert.ok(maxAbs(b.attn.proj.weight) <= projBound && maxAbs(b.attn.proj.weight) > 0.95 * projBound);
    for (const bias of [b.attn.qkv.bias!, b.attn.proj.bias!, b.mlp.fc1.bias!, b.mlp.fc2.bias!])
      assert.equal(maxAbs(bias), 0);
    // LayerNorms keep ones/zeros
    assert.equal(maxAbs(b.norm1.bias!), 0);
  }
  const pw = m.patch_embed.proj.weight;
  const peBound = Math.sqrt(6 / (3 * 8 * 8 + D));
  assert.ok(maxAbs(pw) <= peBound && maxAbs(pw) > 0.95 * peBound);
  assert.equal(maxAbs(m.patch_embed.proj.bias!), 0);
  const cls = values(m.cls_token);
  const std = Math.sqrt(cls.reduce((s, v) => s + v * v, 0) / cls.length);
  assert.ok(std > 0.5e-6 && std < 2e-6, `cls std ${std}`);
  m.dispose();
  assert.equal(liveTensors(), before);
});

test('stopGradConv1 freezes the patch embedding: no gradient, others have one', () => {
  const before = liveTensors();
  const m = new VisionTransformer({
    imgSize: 16,
    patchSize: 4,
    embedDim: 32,
    depth: 1,
    numHeads: 2,
    stopGradConv1: true,
  });
  assert.equal(m.patch_embed.proj.weight.requiresGrad, false);
  assert.equal(m.patch_embed.proj.bias!.requiresGrad, false);
  tidy(() => {
    const x = torch.randn([2, 3, 16, 16]);
    m.forwardFeatures(x).square().mean().backward();
  });
  tidy(() => {
    assert.equal(m.patch_embed.proj.weight.grad, null);
    assert.equal(m.patch_embed.proj.bias!.grad, null);
    assert.equal(m.pos_embed.grad, null);
    assert.ok(m.cls_token.grad);
    assert.ok(m.blocks.get(0).attn.qkv.weight.grad);
  });
  m.zeroGrad();
  m.dispose();
  assert.equal(liveTensors(), before);
});

test('drop path rates increase linearly over the blocks', () => {
  const m = new VisionTransformer({ imgSize: 8, patchSize: 4, embedDim: 16, depth: 5, numHeads: 2, dropPathRate: 0.2 });
  const rates = m.blocks.map((b) => b.dropPath.p);
  rates.forEach((r, i) => assert.ok(Math.abs(r - (0.2 * i) / 4) < 1e-12));
  m.dispose();
});

test('presets: parameter counts equal timm (no head; pos_embed and patch embedding counted)', () => {
  const before = liveTensors();
  // timm vit_small_patch16_224 / vit_base_patch16_224 with num_classes=0
  const small = vitSmall({ init: 'torch' });
  assert.equal(small.numParameters(), 21_665_664);
  assert.equal(small.numHeads, 6);
  small.dispose();
  const base = vitBase({ init: 'torch' });
  assert.equal(base.numParameters(), 85_798_656);
  base.dispose();
  const tiny = vitTiny({ imgSize: 32, patchSize: 4, init: 'torch' });
  assert.equal(tiny.embedDim, 192);
  assert.equal(tiny.numPatches, 64);
  tiny.dispose();
  const moco = createModel('vit_small', { numHeads: 12, imgSize: 32, patchSize: 4, init: 'torch' });
  assert.equal(moco.numHeads, 12);
  moco.dispose();
  assert.throws(() => createModel('vit_huge'), /unknown model/);
  assert.equal(liveTensors(), before);
});

test('copy() (a momentum target) has the same state, its own storage, and keeps frozen parameters frozen', () => {
  const before = liveTensors();
  const m = new VisionTransformer({
    imgSize: 8,
    patchSize: 4,
    embedDim: 16,
    depth: 1,
    numHeads: 2,
    stopGradConv1: true,
  });
  const t = m.copy();
  assert.equal(t.pos_embed.requiresGrad, false);
  assert.equal(t.patch_embed.proj.weight.requiresGrad, false);
  assert.equal(t.cls_token.requiresGrad, true);
  tidy(() => {
    const a = m.stateDict();
    const b = t.stateDict();
    for (const [k, v] of a) assert.ok(torch.equal(v, b.get(k)!), k);
    torch.noGrad(() => t.cls_token.add_(1));
    assert.ok(!torch.equal(m.cls_token, t.cls_token));
  });
  m.dispose();
  t.dispose();
  assert.equal(liveTensors(), before);
});
