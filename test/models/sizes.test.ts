// The one table of ViT sizes and the head sizes, and everything that reads them: the registry,
// the configs' backbone (archOf), the schema's `model` key and defaults, the PyTorch checkpoint
// reader's preset name, and the method's defaults.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CLASS_ATTENTION_DEPTH,
  MODEL_NAMES,
  PREDICTOR_SIZE,
  PROJECTOR_SIZE,
  VIT_SIZES,
  createModel,
  presetOfSize,
  vitSize,
} from '../../src/models/index.js';
import { archOf } from '../../src/train/backbone.js';
import { FLOPS_SCHEMA, PRETRAIN_SCHEMA } from '../../src/train/config.js';
import { defaults } from '../../src/train/schema.js';
import {
  DEFAULT_BASE_MOMENTUM,
  DEFAULT_NUM_CHUNKS,
  DEFAULT_TARGET_CHUNKS,
  DEFAULT_TEMPERATURE,
} from '../../src/ssl/index.js';
import { liveTensors } from '../../src/torch/index.js';

test('the table: tiny 192-d/3 heads, small 384-d/6, base 768-d/12, all depth 12', () => {
  assert.deepEqual(MODEL_NAMES, ['vit_tiny', 'vit_small', 'vit_base']);
  assert.deepEqual(VIT_SIZES.vit_tiny, { embedDim: 192, numHeads: 3, depth: 12 });
  assert.deepEqual(VIT_SIZES.vit_small, { embedDim: 384, numHeads: 6, depth: 12 });
  assert.deepEqual(VIT_SIZES.vit_base, { embedDim: 768, numHeads: 12, depth: 12 });
  assert.deepEqual(PROJECTOR_SIZE, { numLayers: 3, hiddenDim: 4096, outDim: 256 });
  assert.deepEqual(PREDICTOR_SIZE, { numLayers: 2, hiddenDim: 4096 });
  assert.equal(CLASS_ATTENTION_DEPTH, 2);
});

test('vitSize: the preset, overridden key by key; null keeps the preset; unknown names are errors', () => {
  assert.deepEqual(vitSize('vit_small'), { embedDim: 384, numHeads: 6, depth: 12 });
  assert.deepEqual(vitSize('vit_small', { depth: 6, embedDim: 256 }), { embedDim: 256, numHeads: 6, depth: 6 });
  assert.deepEqual(vitSize('vit_base', { numHeads: null, depth: null, embedDim: null }), VIT_SIZES.vit_base);
  assert.throws(() => vitSize('vit_huge'), /unknown model 'vit_huge' \(known: vit_tiny, vit_small, vit_base\)/);
  assert.deepEqual(archOf({ model: 'vit_tiny', imgSize: 32, patchSize: 4, numHeads: 2 }), {
    embedDim: 192,
    numHeads: 2,
    depth: 12,
  });
});

test('presetOfSize names a preset only for its exact sizes', () => {
  for (const m of MODEL_NAMES) assert.equal(presetOfSize(VIT_SIZES[m]), m);
  assert.equal(presetOfSize({ embedDim: 384, numHeads: 12, depth: 12 }), null); // MoCo v3's ViT-S
  assert.equal(presetOfSize({ embedDim: 384, numHeads: 6, depth: 6 }), null);
});

test('the registry builds each preset with the sizes of the table', () => {
  const before = liveTensors();
  for (const m of MODEL_NAMES) {
    const v = createModel(m, { imgSize: 16, patchSize: 16, init: 'torch' });
    assert.deepEqual({ embedDim: v.embedDim, numHeads: v.numHeads, depth: v.depth }, VIT_SIZES[m], m);
    v.dispose();
  }
  assert.throws(() => createModel('vit_huge'), /createModel: unknown model 'vit_huge'/);
  assert.equal(liveTensors(), before);
});

test("the schema's model key and defaults are the table's and the method's constants", () => {
  assert.deepEqual(PRETRAIN_SCHEMA.model.values, MODEL_NAMES);
  assert.equal(PRETRAIN_SCHEMA.model.doc, 'ViT preset: tiny 192-d/3 heads, small 384-d/6, base 768-d/12, depth 12');
  assert.equal(FLOPS_SCHEMA.model, PRETRAIN_SCHEMA.model);
  const d = defaults(PRETRAIN_SCHEMA);
  assert.deepEqual(
    [d.numChunks, d.targetChunks, d.temperature, d.projHiddenDim, d.projOutDim, d.predHiddenDim],
    [DEFAULT_NUM_CHUNKS, DEFAULT_TARGET_CHUNKS, DEFAULT_TEMPERATURE, 4096, 256, 4096],
  );
  assert.deepEqual([DEFAULT_NUM_CHUNKS, DEFAULT_TARGET_CHUNKS, DEFAULT_TEMPERATURE], [8, 1, 0.2]);
  assert.deepEqual(DEFAULT_BASE_MOMENTUM, { mmoco: 0.99, mbyol: 0.996 });
  assert.match(PRETRAIN_SCHEMA.momentum.doc, /\(default: 0\.99 mmoco, 0\.996 mbyol\)/);
  // the help text says the class-attention depth in words
  assert.equal(CLASS_ATTENTION_DEPTH, 2);
  assert.match(PRETRAIN_SCHEMA.classAttention.doc, /^two class-attention blocks/);
});
