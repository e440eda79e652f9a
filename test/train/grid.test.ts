// Grid files of `mmoco ablate`: every preset in configs/grids parses, the paper-scale ones hold
// the values the paper states (each with its place), the small ones the demo's ViT; bad files
// are ConfigErrors naming the file and the key; the cells are the product of the axes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { flopsPerImage } from '../../src/train/ablate.js';
import { trainStepMacs } from '../../src/ssl/flops.js';
import {
  cellConfig,
  cellFinetuneConfig,
  gridCells,
  listGridPresets,
  loadGrid,
  type GridSpec,
} from '../../src/train/grid.js';
import { ConfigError } from '../../src/train/schema.js';

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-grid-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const axis = (g: GridSpec, key: string): unknown[] | undefined => g.axes.find((a) => a.key === key)?.values;
const pick = (o: Record<string, unknown>, keys: string[]): Record<string, unknown> =>
  Object.fromEntries(keys.map((k) => [k, o[k]]));

/** §3.1 "Baseline setup" (ImageNet-100): optimisation, ViT-S, MoCo v3's heads with BN. */
const SEC31 = {
  blr: 1.5e-4,
  betas: [0.9, 0.95],
  weightDecay: 0.1,
  batchSize: 1024,
  model: 'vit_small',
  imgSize: 224,
  patchSize: 16,
  headNorm: 'bn',
  projHiddenDim: 4096,
  projOutDim: 256,
  predHiddenDim: 4096,
  stopGradConv1: false,
};
/** §3.1 Linear probing: LARS blr 1.0, batch 4096, 100 epochs. */
const SEC31_PROBE = { epochs: 100, batchSize: 4096, blr: 1.0 };
/** §3.1 Fine-tuning: blr 5e-4, wd 0.05, layer decay 0.65, 100 epochs. */
const SEC31_FT = { blr: 5e-4, weightDecay: 0.05, layerDecay: 0.65, epochs: 100 };

function ft(g: GridSpec): Record<string, unknown> {
  const c = cellConfig(g, gridCells(g, 1)[0]!, 200, join(tmp, 'cell'));
  return cellFinetuneConfig(g, c, join(tmp, 'cell'));
}

test('every grid preset parses, and its cells resolve to valid pretrain configs', () => {
  const names = listGridPresets().map((p) => p.name);
  for (const n of ['table1', 'table1-small', 'table3', 'table3-small', 'fig4', 'fig4-small', 'table4', 'table4-small'])
    assert.ok(names.includes(n), `configs/grids/${n}.json`);
  for (const n of names) {
    const g = loadGrid(n);
    assert.ok(g.description.length > 40, `${n}: a description`);
    for (const c of gridCells(g, 1)) cellConfig(g, c, 1000, join(tmp, c.name));
  }
});

test('table1 (paper): Table 1 — n = 1, 2, 4, 6, 8, 10 × M-MoCo / M-BYOL, 200 epochs, the §3.1 setup', () => {
  const g = loadGrid('table1');
  assert.deepEqual(axis(g, 'numChunks'), [1, 2, 4, 6, 8, 10]);
  assert.deepEqual(axis(g, 'method'), ['mmoco', 'mbyol']);
  assert.deepEqual(g.budget, { kind: 'epochs', value: 200 });
  assert.deepEqual(pick(g.base, Object.keys(SEC31)), SEC31);
  assert.equal(g.base.targetChunks, 1);
  assert.equal(g.base.momentum, null, "each method's own EMA momentum");
  assert.deepEqual(g.probe, SEC31_PROBE);
  assert.deepEqual(pick(ft(g), Object.keys(SEC31_FT)), SEC31_FT);
  assert.equal(gridCells(g, 1).length, 12);
});

test('fig4 (paper): Figure 4 / Table 2 — n = 1, 4, 8 × m = 1, 2, 4, 8 × both methods, 200 epochs', () => {
  const g = loadGrid('fig4');
  assert.deepEqual(axis(g, 'numChunks'), [1, 4, 8]);
  assert.deepEqual(axis(g, 'targetChunks'), [1, 2, 4, 8]);
  assert.deepEqual(axis(g, 'method'), ['mmoco', 'mbyol']);
  assert.deepEqual(g.budget, { kind: 'epochs', value: 200 });
  assert.deepEqual(pick(g.base, Object.keys(SEC31)), SEC31);
  assert.deepEqual(g.probe, SEC31_PROBE);
});

test('table3 (paper): Table 3 — BN / LN heads × class attention, n = 8, m = 1', () => {
  const g = loadGrid('table3');
  assert.deepEqual(axis(g, 'headNorm'), ['bn', 'ln']);
  assert.deepEqual(axis(g, 'classAttention'), [false, true]);
  assert.equal(g.base.numChunks, 8);
  assert.equal(g.base.targetChunks, 1);
  assert.equal(g.base.method, 'mmoco');
  const { headNorm: _h, ...rest } = SEC31;
  void _h;
  assert.deepEqual(pick(g.base, Object.keys(rest)), rest);
  // not stated for Table 3: its LN + CA row equals §3.5's 800-epoch M-MoCo (91.9)
  assert.deepEqual(g.budget, { kind: 'epochs', value: 800 });
  assert.deepEqual(pick(ft(g), Object.keys(SEC31_FT)), SEC31_FT);
});

test('table4 (paper): Table 4 — strong / medium / light, ViT-S, pre-train and fine-tune 100 epochs, §4.2 batch 4096', () => {
  const g = loadGrid('table4');
  assert.deepEqual(axis(g, 'augmentation'), ['strong', 'medium', 'light']);
  assert.deepEqual(g.budget, { kind: 'epochs', value: 100 });
  assert.deepEqual(pick(g.base, ['model', 'imgSize', 'patchSize', 'method', 'numChunks', 'targetChunks']), {
    model: 'vit_small',
    imgSize: 224,
    patchSize: 16,
    method: 'mmoco',
    numChunks: 8,
    targetChunks: 1,
  });
  // §4.2 / Table 8: batch 4096, AdamW 0.9/0.95, blr 1.5e-4, wd 0.1
  assert.deepEqual(pick(g.base, ['batchSize', 'betas', 'blr', 'weightDecay']), {
    batchSize: 4096,
    betas: [0.9, 0.95],
    blr: 1.5e-4,
    weightDecay: 0.1,
  });
  assert.equal(ft(g).epochs, 100);
});

test("the small presets: the demo's 4-block 128-d ViT on Fashion-MNIST, one image budget for all", () => {
  const demo = {
    data: 'fashion-mnist',
    depth: 4,
    embedDim: 128,
    numHeads: 4,
    imgSize: 28,
    patchSize: 4,
    batchSize: 128,
  };
  const cells: Record<string, number> = { 'table1-small': 8, 'table3-small': 4, 'fig4-small': 12, 'table4-small': 3 };
  for (const [n, count] of Object.entries(cells)) {
    const g = loadGrid(n);
    assert.deepEqual(pick(g.base, Object.keys(demo)), demo, n);
    assert.deepEqual(g.budget, { kind: 'images', value: 40000 }, n);
    assert.equal(g.base.trainSamples, 6000, n);
    assert.equal(gridCells(g, 1).length, count, n);
  }
  const t1 = loadGrid('table1-small');
  assert.deepEqual(axis(t1, 'numChunks'), [1, 2, 4, 8]);
  assert.deepEqual(axis(t1, 'method'), ['mmoco', 'mbyol']);
});

function grid(o: Record<string, unknown>, name = 'g.json'): string {
  const path = join(tmp, name);
  writeFileSync(path, JSON.stringify(o));
  return path;
}
const OK = { preset: 'demo', axes: { numChunks: [1, 2] }, budget: { epochs: 2 } };

function rejects(o: Record<string, unknown>, pattern: RegExp): void {
  const path = grid(o);
  assert.throws(
    () => loadGrid(path),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.ok(e.message.includes(path), `names the file: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

test('bad grid files: ConfigErrors naming the file and the key', () => {
  rejects({ ...OK, numChunk: 2 }, /unknown key 'numChunk' \(did you mean 'numChunks'\?\)/);
  rejects({ ...OK, axes: { numChunkz: [1, 2] } }, /axes: unknown key 'numChunkz'/);
  rejects({ ...OK, axes: { numChunks: [] } }, /axes\.numChunks is empty/);
  rejects({ ...OK, axes: {} }, /'axes' is empty/);
  rejects({ ...OK, axes: { numChunks: 4 } }, /axes\.numChunks must be a list/);
  rejects(
    { ...OK, axes: { numChunks: [1, 0] } },
    /axes\.numChunks\[1\]: invalid value 0 for 'numChunks': expected an integer ≥ 1/,
  );
  rejects(
    { ...OK, axes: { method: ['mmoco', 'moco'] } },
    /axes\.method\[1\]: invalid value "moco" for 'method': expected 'mmoco', 'mbyol'/,
  );
  rejects({ ...OK, axes: { numChunks: [2, 2] } }, /axes\.numChunks: the value 2 appears twice/);
  rejects({ ...OK, axes: { epochs: [1, 2] } }, /axes\.epochs: 'epochs' cannot be an axis: the budget/);
  rejects({ ...OK, seed: 3 }, /key 'seed' cannot be set in a grid: .*--seeds/);
  rejects({ ...OK, epochs: 3 }, /key 'epochs' cannot be set in a grid/);
  rejects({ ...OK, headNorm: 'gn' }, /invalid value "gn" for 'headNorm'/);
  rejects({ preset: 'demo', axes: { numChunks: [1] } }, /'budget' is missing/);
  rejects({ ...OK, budget: { epochs: 2, images: 100 } }, /'budget' must have exactly one key/);
  rejects({ ...OK, budget: { steps: 2 } }, /budget\.steps: unknown budget key; allowed: epochs, images, minutes/);
  rejects({ ...OK, budget: { epochs: 1.5 } }, /budget\.epochs: invalid value 1\.5/);
  rejects({ ...OK, probe: { epochs: 0 } }, /probe\.epochs: invalid value 0/);
  rejects({ ...OK, probe: { lr: 1 } }, /probe\.lr: unknown key/);
  rejects({ ...OK, finetune: { layerDecay: 2 } }, /finetune: invalid value 2 for 'layerDecay'/);
  rejects({ ...OK, finetune: { numChunks: 2 } }, /finetune: unknown key 'numChunks'/);
  assert.throws(() => loadGrid('no-such-grid'), /unknown grid preset 'no-such-grid'; presets: .*table1-small/);
});

test('--set overrides the base, not an axis nor a key the grid owns', () => {
  const path = grid(OK);
  assert.equal(loadGrid(path, { sets: ['batchSize=64'] }).base.batchSize, 64);
  assert.throws(() => loadGrid(path, { sets: ['numChunks=4'] }), /--set numChunks: 'numChunks' is an axis of/);
  assert.throws(() => loadGrid(path, { sets: ['seed=1'] }), /--set seed: the cells run seeds/);
  assert.throws(() => loadGrid(path, { sets: ['numChunk=4'] }), ConfigError);
  assert.equal(loadGrid(path, { data: 'synthetic' }).base.data, 'synthetic');
});

test('cells: the product of the axes (first axis slowest) times the seeds, named by their values', () => {
  const g = loadGrid(grid({ ...OK, axes: { numChunks: [1, 8], method: ['mmoco', 'mbyol'], classAttention: [true] } }));
  const cells = gridCells(g, 2);
  assert.deepEqual(
    cells.map((c) => c.name),
    [1, 8].flatMap((n) =>
      ['mmoco', 'mbyol'].flatMap((m) => [0, 1].map((s) => `numChunks-${n}_method-${m}_classAttention-true_seed-${s}`)),
    ),
  );
  const c = cellConfig(g, cells[7]!, 5, join(tmp, 'x'));
  assert.deepEqual(pick(c, ['numChunks', 'method', 'classAttention', 'seed', 'epochs', 'out', 'depth']), {
    numChunks: 8,
    method: 'mbyol',
    classAttention: true,
    seed: 1,
    epochs: 5,
    out: join(tmp, 'x'),
    depth: 4, // the demo preset's
  });
  assert.throws(() => gridCells(g, 0), /--seeds must be an integer ≥ 1/);
  // the demo warms up 0.5 epochs: a budget of 0 … 0.5 epochs cannot hold it
  const many = loadGrid(grid({ ...OK, axes: { numChunks: [50] } }));
  assert.throws(() => cellConfig(many, gridCells(many, 1)[0]!, 2, tmp), /numChunks 50 is more than the 49 patches/);
  const warm = loadGrid(grid({ ...OK, warmupEpochs: 3 }));
  assert.throws(
    () => cellConfig(warm, gridCells(warm, 1)[0]!, 2, tmp),
    /budget: 2 epochs per cell is not more than warmupEpochs \(3\)/,
  );
});

test('FLOPs per image: 2 × the training-step MACs of the cell (src/ssl/flops.ts)', () => {
  const g = loadGrid('table1-small');
  const cfg = cellConfig(g, gridCells(g, 1)[6]!, 3, tmp); // n = 8, M-MoCo
  const macs = trainStepMacs({
    vit: { imgSize: 28, patchSize: 4, dim: 128, depth: 4, heads: 4 },
    numChunks: 8,
    targetChunks: 1,
    projector: { layers: 3, hidden: 512, out: 128 },
    predictor: { layers: 2, hidden: 512, out: 128 },
  });
  assert.equal(flopsPerImage(cfg), 2 * macs.total);
  const ca = { ...cfg, classAttention: true };
  assert.ok(flopsPerImage(ca) > flopsPerImage(cfg), 'class attention adds its blocks');
});
