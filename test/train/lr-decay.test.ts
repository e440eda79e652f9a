// Layer-wise lr decay against MAE's param_groups_lrd (test/fixtures/train.json): group names,
// membership and order, lr scales and weight decay, for the global-pool and the CLS-token ViT;
// frozen parameters left out; the groups drive the optimiser's lr through lrScale.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { optim } from '../../src/torch/index.js';
import { layerIdForVit, paramGroupsLrd } from '../../src/train/index.js';
import { fixtureVit, tx } from './fixture.js';

interface WantGroup {
  name: string;
  lr_scale: number;
  weight_decay: number;
  names: string[];
}

test("paramGroupsLrd matches MAE's param_groups_lrd on a tiny ViT (avg and token pooling)", () => {
  const before = torch.liveTensors();
  for (const pool of ['avg', 'token'] as const) {
    const m = fixtureVit(pool, { load: false });
    m.requiresGrad_(true); // timm's pos_embed is a learnt parameter (MAE fine-tunes it)
    const groups = paramGroupsLrd(m, { weightDecay: tx.lrd.weight_decay, layerDecay: tx.lrd.layer_decay });
    const want = tx.lrd[pool] as WantGroup[];
    assert.deepEqual(
      groups.map((g) => g.groupName),
      want.map((g) => g.name),
      `${pool}: group order`,
    );
    groups.forEach((g, i) => {
      const w = want[i]!;
      assert.deepEqual(g.names, w.names, `${pool} ${w.name}: members`);
      assert.ok(Math.abs(g.lrScale - w.lr_scale) < 1e-15, `${pool} ${w.name}: lr scale ${g.lrScale} vs ${w.lr_scale}`);
      assert.equal(g.weightDecay, w.weight_decay, `${pool} ${w.name}: weight decay`);
      assert.equal(g.params.length, g.names.length);
      const named = new Map(m.namedParameters());
      g.names.forEach((n, j) => assert.ok(named.get(n) === g.params[j], `${n} is the model's tensor`));
    });
    m.dispose();
  }
  assert.equal(torch.liveTensors(), before);
});

test('paramGroupsLrd skips frozen parameters; lrScale reaches the optimiser through the schedule', () => {
  const m = fixtureVit('avg', { load: false }); // pos_embed frozen (sin-cos), as pre-training keeps it
  m.patch_embed.requiresGrad_(false);
  const groups = paramGroupsLrd(m, { layerDecay: 0.5 });
  const names = groups.flatMap((g) => g.names);
  assert.ok(!names.includes('pos_embed') && !names.some((n) => n.startsWith('patch_embed')));
  assert.deepEqual(groups[0]!.names, ['cls_token']);
  assert.equal(groups[0]!.lrScale, 0.5 ** 3);
  assert.equal(groups[0]!.weightDecay, 0, "cls_token is in timm's no_weight_decay list (3-D, so not by ndim)");
  const decayed = groups.find((g) => g.groupName === 'layer_1_decay')!;
  assert.equal(decayed.weightDecay, 0.05);
  const opt = new optim.AdamW(
    groups.map((g) => ({ params: g.params, lrScale: g.lrScale, weightDecay: g.weightDecay })),
  );
  new optim.WarmupCosine({ lr: 1e-3, epochs: 10 }).apply(opt, 0);
  assert.deepEqual(
    opt.paramGroups.map((g) => g.lr),
    groups.map((g) => 1e-3 * g.lrScale),
  );
  m.dispose();
});

test('layerIdForVit: embeddings 0, block i → i + 1, the rest → depth + 1', () => {
  assert.equal(layerIdForVit('cls_token', 13), 0);
  assert.equal(layerIdForVit('pos_embed', 13), 0);
  assert.equal(layerIdForVit('patch_embed.proj.weight', 13), 0);
  assert.equal(layerIdForVit('blocks.0.norm1.weight', 13), 1);
  assert.equal(layerIdForVit('blocks.11.mlp.fc2.bias', 13), 12);
  for (const n of ['norm.weight', 'fc_norm.bias', 'head.weight']) assert.equal(layerIdForVit(n, 13), 13);
  assert.throws(() => layerIdForVit('blocks.x.w', 13), /block index/);
});
