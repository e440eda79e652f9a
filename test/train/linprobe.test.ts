// MAE's linear probe (test/fixtures/train.json): two LARS steps of BatchNorm1d(affine=False) +
// Linear on fixed features at the scheduled learning rates (losses, weights, BN statistics);
// the frozen backbone and its feature; checkpoint state round trip; evaluate against a hand count;
// a diverging probe throws TrainingDiverged.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import type { Tensor } from '../../src/torch/index.js';
import { accuracy, evaluate, LinearProbe, TrainingDiverged } from '../../src/train/index.js';
import { assertClose, fixtureVit, memorySource, sd, T, tx, values, type Recs } from './fixture.js';

const { tidy, liveTensors } = torch;

interface ProbeStep {
  iter: number;
  lr: number;
  loss: number;
  head: Recs;
}

function fixtureProbe(): LinearProbe {
  const c = tx.linprobe.config;
  // the backbone is not used by the feature steps; only its width must match
  const backbone = fixtureVit('token', { load: false });
  const probe = new LinearProbe(backbone, {
    numClasses: 5,
    lr: c.lr,
    warmupEpochs: c.warmup_epochs,
    epochs: c.epochs,
    itersPerEpoch: c.iters_per_epoch,
    minLr: c.min_lr,
    weightDecay: c.weight_decay,
  });
  const init = sd(tx.linprobe.head as Recs);
  probe.head.loadStateDict(new Map([...init].map(([k, v]) => [k, v])));
  torch.dispose([...init.values()]);
  return probe;
}

test("LinearProbe: two LARS steps match MAE's probe (loss, lr, weights, BN running stats)", () => {
  const probe = fixtureProbe();
  const before = liveTensors();
  tidy(() => {
    const feats = T(tx.linprobe.features);
    const labels = T(tx.linprobe.labels);
    for (const s of tx.linprobe.steps as ProbeStep[]) {
      const r = probe.stepOnFeatures(feats, labels, s.iter);
      assert.ok(Math.abs(r.lr - s.lr) < 1e-12, `iter ${s.iter}: lr ${r.lr} vs ${s.lr}`);
      assert.ok(Math.abs(r.loss - s.loss) < 1e-5, `iter ${s.iter}: loss ${r.loss} vs ${s.loss}`);
      const got = probe.head.stateDict();
      for (const [k, want] of Object.entries(s.head)) {
        if (k.endsWith('num_batches_tracked')) assert.deepEqual(values(got.get(k)!), want.data, k);
        else assertClose(got.get(k)!, want, `iter ${s.iter}: ${k}`, 1e-5);
      }
    }
  });
  assert.equal(liveTensors(), before + 2, "LARS's momentum buffers (weight, bias) are the only new tensors");
  probe.backbone.dispose();
});

test('LinearProbe: a frozen eval-mode backbone, the CLS feature, only the head steps', () => {
  const backbone = fixtureVit('token');
  backbone.train();
  const probe = new LinearProbe(backbone, {
    numClasses: 5,
    batchSize: 256,
    blr: 0.1,
    itersPerEpoch: 2,
    warmupEpochs: 1,
    epochs: 3,
  });
  assert.equal(probe.optimizer.paramGroups[0]!.lr, 0.1, 'lr = blr · batch / 256');
  assert.ok(backbone.parameters().every((p) => !p.requiresGrad));
  assert.equal(backbone.training, false);
  const w0 = tidy(() => values(probe.linear.weight));
  const std = Math.sqrt(w0.reduce((a, v) => a + v * v, 0) / w0.length);
  assert.ok(std > 0.004 && std < 0.02, `head weight std ${std} (trunc-normal 0.01)`);
  assert.ok(tidy(() => values(probe.linear.bias!)).every((v) => v === 0));
  const bb0 = tidy(() => values(backbone.blocks.get(0).attn.qkv.weight));
  tidy(() => {
    const x = T(tx.vit.x);
    assertClose(probe.features(x), tx.vit.token_pre_logits, 'probe feature = normed CLS', 1e-5);
    // MAE's probe augmentation (crop, flip, normalise) on uint8; three steps, the last past warmup
    const u8 = torch.randint(0, 256, [3, 3, 24, 24], { dtype: 'uint8' });
    for (let it = 1; it <= 3; it++) {
      const r = probe.trainStep(u8, torch.tensor([0, 3, 4], { dtype: 'int64' }), it);
      assert.ok(Number.isFinite(r.loss));
    }
    assert.equal(backbone.training, false);
    assert.deepEqual(values(backbone.blocks.get(0).attn.qkv.weight), bb0, 'backbone unchanged');
    assert.notDeepEqual(values(probe.linear.weight), w0, 'head trained');
  });
  probe.optimizer.zeroGrad();
  backbone.dispose();
});

test('LinearProbe: stateDict / loadStateDict resume the head, BN statistics and LARS momentum', () => {
  const a = fixtureProbe();
  const b = fixtureProbe();
  tidy(() => {
    const feats = T(tx.linprobe.features);
    const labels = T(tx.linprobe.labels);
    a.stepOnFeatures(feats, labels, 1);
    const s = a.stateDict();
    assert.ok('head.0.running_mean' in s.head && 'head.1.weight' in s.head, "MAE's head.* names");
    b.loadStateDict(s);
    a.stepOnFeatures(feats, labels, 3);
    b.stepOnFeatures(feats, labels, 3);
    for (const [k, t] of a.head.stateDict()) assert.deepEqual(values(b.head.stateDict().get(k)!), values(t), k);
  });
  a.backbone.dispose();
  b.backbone.dispose();
});

test('LinearProbe: a huge lr makes the loss non-finite: TrainingDiverged names the step, the head is not stepped', () => {
  const c = tx.linprobe.config;
  const probe = new LinearProbe(fixtureVit('token', { load: false }), {
    numClasses: 5,
    lr: 1e38,
    warmupEpochs: 0,
    epochs: c.epochs,
    itersPerEpoch: c.iters_per_epoch,
  });
  const before = liveTensors();
  let thrown: unknown = null;
  let finite = 0;
  tidy(() => {
    const feats = T(tx.linprobe.features);
    const labels = T(tx.linprobe.labels);
    for (let it = 0; it < 10 && thrown === null; it++) {
      const w = values(probe.linear.weight);
      try {
        assert.ok(Number.isFinite(probe.stepOnFeatures(feats, labels, it).loss));
        finite++;
      } catch (e) {
        thrown = e;
        assert.deepEqual(values(probe.linear.weight), w, 'no step with a non-finite loss');
      }
    }
  });
  assert.ok(thrown instanceof TrainingDiverged, `a TrainingDiverged, not ${String(thrown)}`);
  assert.ok(finite >= 1, 'the first step is finite');
  assert.equal(thrown.step, finite);
  assert.ok(!Number.isFinite(thrown.value));
  assert.equal(thrown.epoch, null);
  assert.match(thrown.message, new RegExp(`^LinearProbe: the loss became (NaN|Infinity|-Infinity) at step ${finite}$`));
  assert.equal(liveTensors(), before + 2, "LARS's momentum buffers are the only new tensors");
  probe.optimizer.zeroGrad();
  probe.backbone.dispose();
});

test('evaluate: top-1 / top-5 / loss over a loader equal a direct computation; modes restored', async () => {
  const probe = fixtureProbe();
  probe.train();
  const x = torch.keep(T(tx.vit.x).repeat(3, 1, 1, 1)); // 9 images
  const labels = torch.keep(torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3], { dtype: 'int64' }));
  const r = await evaluate(probe, memorySource(x, labels, 4), { transform: { forward: (t: Tensor) => t } });
  assert.equal(probe.training, true, 'mode restored');
  assert.equal(r.count, 9);
  tidy(() => {
    probe.eval();
    const logits = probe.forward(x);
    const [a1, a5] = accuracy(logits, labels) as [number, number];
    assert.ok(Math.abs(r.top1 - a1) < 1e-9 && Math.abs(r.top5 - a5) < 1e-9);
    const ce = Number(torch.F.crossEntropy(logits, labels).item());
    assert.ok(Math.abs(r.loss - ce) < 1e-5, `loss ${r.loss} vs ${ce}`);
    // hand count from the logits
    const v = values(logits);
    const y = values(labels);
    let c1 = 0;
    let c5 = 0;
    for (let i = 0; i < 9; i++) {
      const row = v.slice(i * 5, i * 5 + 5);
      const rank = row.filter((z) => z > row[y[i]!]!).length;
      if (rank < 1) c1++;
      if (rank < 5) c5++;
    }
    assert.ok(Math.abs(r.top1 - (100 * c1) / 9) < 1e-9);
    assert.equal(r.top5, (100 * c5) / 9);
    assert.equal(r.top5, 100, 'five classes: every label is in the top 5');
  });
  x.dispose();
  labels.dispose();
  probe.backbone.dispose();
});
