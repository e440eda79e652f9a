// The checkpoint API as a package user reaches it: `io` from the built package entries (`mmoco`
// and `mmoco/torch`, by name, as package.json's "exports" map them), round-tripping a training
// checkpoint, a safetensors file and a torch.save file.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

// by package name (a self-reference through "exports"), not by a path into the sources
const entry = 'mmoco';
const pkg = (await import(entry)) as typeof import('../../src/index.js');
const torchEntry = 'mmoco/torch';
const torchPkg = (await import(torchEntry)) as typeof import('../../src/torch/index.js');
const { io, torch } = pkg;

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-io-entry-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('both entries export the same io: safetensors, checkpoints, torch.save files', () => {
  assert.equal(torchPkg.io, io);
  assert.equal(torch.io, io);
  for (const f of ['saveCheckpoint', 'loadCheckpoint', 'findCheckpoint', 'readTorchFile', 'saveTorchFile'] as const)
    assert.equal(typeof io[f], 'function', f);
  assert.equal(typeof io.safetensors.load, 'function');
  assert.equal(typeof io.safetensors.save, 'function');
});

/** A linear model and its AdamW after one step on fixed data. */
function trained(seed: number): {
  model: InstanceType<typeof torch.nn.Linear>;
  opt: InstanceType<typeof torch.optim.AdamW>;
} {
  torch.manualSeed(seed);
  const model = new torch.nn.Linear(4, 3);
  const opt = new torch.optim.AdamW(model.parameters(), { lr: 0.1 });
  return { model, opt };
}

function step(model: InstanceType<typeof torch.nn.Linear>, opt: InstanceType<typeof torch.optim.AdamW>): void {
  torch.tidy(() => {
    const x = torch.arange(0, 8, 1).reshape(2, 4).float();
    opt.zeroGrad();
    model.forward(x).pow(2).mean().backward();
    opt.step();
    opt.zeroGrad();
  });
}

test('a training checkpoint saved and loaded through the entry restores weights, optimiser and progress', () => {
  const dir = join(tmp, 'ckpt');
  const a = trained(1);
  step(a.model, a.opt);
  io.saveCheckpoint(dir, {
    modules: { model: a.model },
    stateful: { optimizer: a.opt },
    progress: { epoch: 1, step: 1 },
  });
  assert.equal(io.findCheckpoint(dir), dir);

  const b = trained(2); // other initial weights, no optimiser state
  assert.notDeepEqual(b.model.weight.toArray(), a.model.weight.toArray());
  const progress = io.loadCheckpoint(dir, { modules: { model: b.model }, stateful: { optimizer: b.opt } });
  assert.deepEqual(progress, { epoch: 1, step: 1 });
  assert.equal(io.describeProgress(progress), 'end of epoch 1, step 1');
  assert.deepEqual(b.model.weight.toArray(), a.model.weight.toArray());
  assert.deepEqual(b.model.bias!.toArray(), a.model.bias!.toArray());
  // AdamW's moments came back too: the next step is the same on both
  step(a.model, a.opt);
  step(b.model, b.opt);
  assert.deepEqual(b.model.weight.toArray(), a.model.weight.toArray());
  assert.throws(() => io.loadCheckpoint(join(tmp, 'none'), { modules: { model: b.model } }), /no checkpoint/);
});

test('safetensors and torch.save files round-trip through the entry', () => {
  const w = torch.tensor([1.5, -2, 3, 0.25], { shape: [2, 2] });
  const st = join(tmp, 'w.safetensors');
  io.safetensors.save(st, { w }, { note: 'entry' });
  const l = io.safetensors.load(st);
  assert.deepEqual(l.metadata, { note: 'entry' });
  assert.deepEqual(l.tensors.get('w')!.toArray(), [
    [1.5, -2],
    [3, 0.25],
  ]);

  const pt = join(tmp, 'w.pth');
  io.saveTorchFile(pt, { epoch: 3, state_dict: { w } });
  assert.ok(io.isTorchFile(pt));
  assert.ok(!io.isTorchFile(st));
  const f = io.readTorchFile(pt);
  const refs = io.tensorRefs(f.value);
  assert.deepEqual([...refs.keys()], ['state_dict.w']);
  const top = f.value as Map<string, unknown>;
  assert.equal(top.get('epoch'), 3);
  const [back] = f.loadTensors([...refs.values()]);
  assert.deepEqual(back!.toArray(), w.toArray());
  for (const t of [w, back!, ...l.tensors.values()]) t.dispose();
});
