// The evaluation recipes' defaults are stated once (src/train/defaults.ts): the knn, linprobe
// and finetune configs default to them, and so do knnClassifier, LinearProbe and Finetuner when
// called without those options.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { Finetuner, knnClassifier, LinearProbe } from '../../src/train/index.js';
import { FINETUNE_SCHEMA, KNN_SCHEMA, LINPROBE_SCHEMA, PRETRAIN_SCHEMA } from '../../src/train/config.js';
import { FINETUNE_DEFAULTS, KNN_DEFAULTS, LINPROBE_DEFAULTS } from '../../src/train/defaults.js';
import { defaults } from '../../src/train/schema.js';
import { fixtureVit } from './fixture.js';

test('the values: kNN k 20, T 0.07; MAE probe 90/10 epochs, blr 0.1, wd 0; MAE fine-tuning for ViT-B', () => {
  assert.deepEqual(KNN_DEFAULTS, { k: 20, temperature: 0.07 });
  assert.deepEqual(LINPROBE_DEFAULTS, { epochs: 90, warmupEpochs: 10, blr: 0.1, weightDecay: 0 });
  assert.deepEqual(FINETUNE_DEFAULTS, {
    epochs: 100,
    warmupEpochs: 5,
    blr: 5e-4,
    weightDecay: 0.05,
    layerDecay: 0.65,
    betas: [0.9, 0.999],
    labelSmoothing: 0.1,
  });
});

test('the configs default to them', () => {
  for (const s of [KNN_SCHEMA, PRETRAIN_SCHEMA]) {
    const d = defaults(s);
    assert.deepEqual([d.knnK, d.knnT], [KNN_DEFAULTS.k, KNN_DEFAULTS.temperature]);
  }
  const p = defaults(LINPROBE_SCHEMA);
  assert.deepEqual(
    { epochs: p.epochs, warmupEpochs: p.warmupEpochs, blr: p.blr, weightDecay: p.weightDecay },
    LINPROBE_DEFAULTS,
  );
  const f = defaults(FINETUNE_SCHEMA);
  assert.deepEqual(
    {
      epochs: f.epochs,
      warmupEpochs: f.warmupEpochs,
      blr: f.blr,
      weightDecay: f.weightDecay,
      layerDecay: f.layerDecay,
      betas: f.betas,
      labelSmoothing: f.smoothing,
    },
    FINETUNE_DEFAULTS,
  );
});

test('the classes default to them', () => {
  const before = torch.liveTensors();
  const probe = new LinearProbe(fixtureVit('token', { load: false }), {
    numClasses: 5,
    batchSize: 512,
    itersPerEpoch: 4,
  });
  assert.deepEqual(
    [probe.schedule.epochs, probe.schedule.warmupEpochs, probe.schedule.lrMax],
    [90, 10, 0.1 * (512 / 256)],
  );
  assert.equal(probe.optimizer.defaults.weightDecay, 0);
  probe.backbone.dispose();
  probe.head.dispose();

  const ft = new Finetuner(fixtureVit('avg', { load: false }), { batchSize: 512, itersPerEpoch: 4 });
  assert.deepEqual([ft.schedule.epochs, ft.schedule.warmupEpochs, ft.labelSmoothing], [100, 5, 0.1]);
  assert.ok(Math.abs(ft.schedule.lrMax - 5e-4 * 2) < 1e-15);
  assert.deepEqual(ft.optimizer.defaults.betas, [0.9, 0.999]);
  ft.model.dispose();
  for (const s of ft.optimizer.state.values())
    for (const v of Object.values(s)) if (v instanceof torch.Tensor) v.dispose();

  // k defaults to 20: with 10 training rows the vote is refused, naming k = 20
  torch.tidy(() => {
    const train = torch.randn([10, 4]);
    const labels = torch.zeros([10], { dtype: 'int64' });
    assert.throws(() => knnClassifier(train, labels, train, labels), /k must be in 1\.\.10 \(train rows\), got 20/);
    assert.equal(knnClassifier(train, labels, train, labels, { k: 10 }).top1, 100);
  });
  assert.equal(torch.liveTensors(), before);
});
