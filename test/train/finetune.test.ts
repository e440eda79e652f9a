// MAE's fine-tuning step (test/fixtures/train.json): two AdamW steps over the layer-decay groups
// of the global-pool ViT with fixed images and soft targets (losses, lrs, parameters, the size of
// every parameter's change); the soft-target cross-entropy by hand; the full step (RandAugment,
// erasing, mixup/cutmix) on uint8 images; checkpoint state round trip.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { VisionTransformer } from '../../src/models/index.js';
import { Finetuner, softTargetCrossEntropy } from '../../src/train/index.js';
import { assertClose, fixtureVit, memorySource, sd, T, tx, values, type Recs } from './fixture.js';

const { tidy, liveTensors, manualSeed } = torch;

function fixtureFinetuner(): Finetuner {
  const c = tx.finetune.config;
  return new Finetuner(fixtureVit('avg'), {
    lr: c.lr,
    minLr: c.min_lr,
    warmupEpochs: c.warmup_epochs,
    epochs: c.epochs,
    itersPerEpoch: c.iters_per_epoch,
    weightDecay: c.weight_decay,
    layerDecay: c.layer_decay,
    betas: c.betas,
    headInitStd: null, // keep the fixture's head
    augmentation: null,
    mixup: null,
  });
}

test("Finetuner: two AdamW steps with layer decay match MAE's fine-tuning step", () => {
  const ft = fixtureFinetuner();
  const init = sd(tx.vit.state as Recs);
  const before = liveTensors();
  tidy(() => {
    const x = T(tx.finetune.x);
    const target = T(tx.finetune.target);
    for (const s of tx.finetune.steps as { iter: number; lr: number; loss: number }[]) {
      const r = ft.stepOn(x, target, s.iter);
      assert.ok(Math.abs(r.lr - s.lr) < 1e-15, `iter ${s.iter}: lr ${r.lr} vs ${s.lr}`);
      assert.ok(Math.abs(r.loss - s.loss) < 1e-5, `iter ${s.iter}: loss ${r.loss} vs ${s.loss}`);
    }
    const params = new Map(ft.model.namedParameters());
    // the changes, not the values, so that the tolerance is relative to the update's size
    for (const [name, want] of Object.entries(tx.finetune.after as Recs)) {
      const p0 = values(init.get(name)!);
      const got = values(params.get(name)!).map((v, i) => v - p0[i]!);
      const exp = want.data.map((v, i) => Math.fround(v) - p0[i]!);
      const scale = Math.max(...exp.map(Math.abs));
      const worst = Math.max(...got.map((g, i) => Math.abs(g - exp[i]!)));
      assert.ok(scale > 1e-5, `${name} moved`);
      assert.ok(worst <= 5e-4 * scale + 1e-8, `${name}: change off by ${worst} (largest change ${scale})`);
    }
    for (const [name, want] of Object.entries(tx.finetune.delta_norm as Record<string, number>)) {
      const d = Number(params.get(name)!.sub(init.get(name)!).norm().item());
      assert.ok(Math.abs(d - want) <= 2e-3 * want, `${name}: |change| ${d} vs ${want}`);
    }
  });
  // AdamW's exp_avg and exp_avg_sq for every parameter
  assert.equal(liveTensors(), before + 2 * ft.model.parameters().length);
  torch.dispose([...init.values()]);
  ft.model.dispose();
});

test('Finetuner: groups, lr scaling rule, head init, every parameter trainable', () => {
  const m = fixtureVit('avg');
  const ft = new Finetuner(m, { batchSize: 1024, itersPerEpoch: 10 });
  assert.ok(Math.abs(ft.schedule.lrMax - 2e-3) < 1e-15, 'lr = 5e-4 · 1024 / 256');
  assert.equal(ft.schedule.minLr, 1e-6);
  assert.equal(ft.schedule.warmupEpochs, 5);
  assert.ok(m.pos_embed.requiresGrad, "MAE fine-tunes timm's learnt position embedding");
  const names = ft.groups.flatMap((g) => g.names);
  assert.equal(names.length, m.parameters().length);
  assert.deepEqual(
    ft.optimizer.paramGroups.map((g) => g.lrScale),
    ft.groups.map((g) => 0.65 ** (3 - g.layerId)),
  );
  assert.deepEqual(ft.optimizer.defaults.betas, [0.9, 0.999]);
  tidy(() => {
    const w = values((m.head as torch.nn.Linear).weight);
    assert.ok(Math.max(...w.map(Math.abs)) < 1.5e-4, 'head weight trunc-normal std 2e-5');
    assert.ok(values((m.head as torch.nn.Linear).bias!).every((v) => v === 0));
  });
  const noHead = fixtureVit('avg', { load: false });
  const headless = new VisionTransformer({ embedDim: 8, depth: 1, numHeads: 2, imgSize: 8, patchSize: 4 });
  assert.throws(() => new Finetuner(headless, { itersPerEpoch: 1, batchSize: 8 }), /classification head/);
  headless.dispose();
  assert.throws(() => new Finetuner(noHead, { itersPerEpoch: 1 }), /batchSize/);
  m.dispose();
  noHead.dispose();
});

test('softTargetCrossEntropy equals the hand computation and cross-entropy for one-hot targets', () => {
  tidy(() => {
    const logits = torch.tensor([
      [1, 2, 0.5],
      [-1, 0, 3],
    ]);
    const target = torch.tensor([
      [0.2, 0.7, 0.1],
      [0.5, 0, 0.5],
    ]);
    const l = values(logits);
    const t = values(target);
    let want = 0;
    for (let i = 0; i < 2; i++) {
      const row = l.slice(3 * i, 3 * i + 3);
      const lse = Math.log(row.reduce((a, v) => a + Math.exp(v), 0));
      for (let c = 0; c < 3; c++) want -= t[3 * i + c]! * (row[c]! - lse);
    }
    want /= 2;
    assert.ok(Math.abs(Number(softTargetCrossEntropy(logits, target).item()) - want) < 1e-6);
    const hard = torch.tensor([1, 2], { dtype: 'int64' });
    const oneHot = torch.F.oneHot(hard, 3).to({ dtype: 'float32' });
    assert.ok(
      Math.abs(
        Number(softTargetCrossEntropy(logits, oneHot).item()) - Number(torch.F.crossEntropy(logits, hard).item()),
      ) < 1e-6,
    );
  });
});

test('Finetuner.trainStep: RandAugment + erasing + mixup/cutmix on uint8 images, then evaluate; no leaks', async () => {
  manualSeed(7);
  const m = fixtureVit('avg');
  const ft = new Finetuner(m, { lr: 1e-3, itersPerEpoch: 2, warmupEpochs: 1, epochs: 3 });
  const images = torch.keep(torch.randint(0, 256, [4, 3, 20, 20], { dtype: 'uint8' }));
  const labels = torch.keep(torch.tensor([0, 1, 4, 2], { dtype: 'int64' }));
  ft.trainStep(images, labels, 0); // creates AdamW's state
  const before = liveTensors();
  const losses: number[] = [];
  for (let it = 1; it <= 4; it++) {
    const r = ft.trainStep(images, labels, it);
    assert.ok(Number.isFinite(r.loss) && r.loss > 0);
    assert.ok(Math.abs(r.lr - ft.schedule.lrAt(it)) < 1e-15);
    losses.push(r.loss);
  }
  assert.equal(liveTensors(), before, 'flat memory over steps');
  const ev = await ft.evaluate(memorySource(images, labels, 3));
  assert.equal(ev.count, 4);
  assert.ok(ev.top1 >= 0 && ev.top1 <= 100 && ev.top5 === 100 && Number.isFinite(ev.loss));
  assert.equal(m.training, true, 'evaluate restores the mode');
  // an odd batch cannot be mixed with its mirror (MAE drops the last batch)
  tidy(() => assert.throws(() => ft.trainStep(images.slice(0, 0, 3), labels.slice(0, 0, 3), 5), /even/));
  images.dispose();
  labels.dispose();
  m.dispose();
});

test('Finetuner: stateDict / loadStateDict resume bit-exactly (model and AdamW moments)', () => {
  const a = fixtureFinetuner();
  const b = fixtureFinetuner();
  tidy(() => {
    const x = T(tx.finetune.x);
    const target = T(tx.finetune.target);
    a.stepOn(x, target, 1);
    b.loadStateDict(a.stateDict());
    a.stepOn(x, target, 3);
    b.stepOn(x, target, 3);
    const sb = b.model.stateDict();
    for (const [k, t] of a.model.stateDict()) assert.deepEqual(values(sb.get(k)!), values(t), k);
  });
  assertClose(a.model.cls_token, { dtype: 'float32', shape: [1, 1, 16], data: values(b.model.cls_token) }, 'cls');
  a.model.dispose();
  b.model.dispose();
});
