// Training-state checkpoints: a folder of safetensors + JSON that round-trips modules,
// stateful objects and RNG state, replaced atomically, with errors that say what is wrong.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { findCheckpoint, loadCheckpoint, saveCheckpoint } from '../../src/torch/io/checkpoint.js';
import { Module } from '../../src/torch/nn/module.js';
import * as safetensors from '../../src/torch/io/safetensors.js';

class Tiny extends Module {
  w: torch.Tensor;
  constructor() {
    super();
    this.w = this.registerParameter('w', torch.randn(3, 2));
    this.registerBuffer('count', torch.zeros(1, { dtype: 'int64' }));
    this.registerModule('inner', new Leaf());
  }
}
class Leaf extends Module {
  constructor() {
    super();
    this.registerParameter('bias', torch.randn(2));
  }
}

/** A stand-in for an optimiser: tensors and numbers in nested Maps/arrays/objects. */
class Counter {
  state = new Map<number, { step: number; buf: torch.Tensor }>();
  extra = { best: Infinity, history: [1.5, NaN] };
  stateDict(): unknown {
    return { state: this.state, extra: this.extra };
  }
  loadStateDict(sd: { state: Map<number, { step: number; buf: torch.Tensor }>; extra: Counter['extra'] }): void {
    this.state = sd.state;
    this.extra = sd.extra;
  }
}

const tmp = (): string => mkdtempSync(join(tmpdir(), 'mmoco-ckpt-'));

test('a checkpoint round-trips modules, stateful objects, progress and the RNG', () => {
  torch.manualSeed(3);
  const dir = join(tmp(), 'ckpt');
  const a = new Tiny();
  const c = new Counter();
  c.state.set(0, { step: 4, buf: torch.keep(torch.arange(6, undefined, 1, { dtype: 'float64' }).reshape(2, 3)) });
  saveCheckpoint(dir, { modules: { model: a }, stateful: { opt: c }, progress: { epoch: 2, step: 30 } });
  const next = torch.rand(4).toArray();
  assert.deepEqual(readdirSync(dir).sort(), [
    'model.safetensors',
    'opt.json',
    'opt.safetensors',
    'rng.safetensors',
    'state.json',
  ]);
  // the module file is a plain state dict: loadable by any safetensors reader, keys as the module names them
  const { tensors } = safetensors.load(join(dir, 'model.safetensors'));
  assert.deepEqual([...tensors.keys()].sort(), ['count', 'inner.bias', 'w']);

  torch.manualSeed(99);
  const b = new Tiny();
  const d = new Counter();
  const progress = loadCheckpoint(dir, { modules: { model: b }, stateful: { opt: d } });
  assert.deepEqual(progress, { epoch: 2, step: 30 });
  assert.deepEqual(b.w.toArray(), a.w.toArray());
  assert.deepEqual(b.stateDict().get('inner.bias')!.toArray(), a.stateDict().get('inner.bias')!.toArray());
  assert.equal(d.state.get(0)!.step, 4);
  assert.equal(d.state.get(0)!.buf.dtype, 'float64');
  assert.deepEqual(d.state.get(0)!.buf.toArray(), [
    [0, 1, 2],
    [3, 4, 5],
  ]);
  assert.deepEqual(d.extra.best, Infinity);
  assert.ok(Number.isNaN(d.extra.history[1]));
  assert.deepEqual(torch.rand(4).toArray(), next, 'the generator continues where it was saved');
});

test('saving replaces the folder atomically and an interrupted save falls back to the old one', () => {
  const root = tmp();
  const dir = join(root, 'ckpt');
  const m = new Tiny();
  saveCheckpoint(dir, { modules: { model: m }, progress: { step: 1 } });
  saveCheckpoint(dir, { modules: { model: m }, progress: { step: 2 } });
  assert.deepEqual(readdirSync(root), ['ckpt'], 'no temporary or old folders remain');
  // a crash between "old aside" and "new in place" leaves only the old folder
  renameSync(dir, join(root, '.ckpt.old-12345'));
  assert.equal(findCheckpoint(dir), join(root, '.ckpt.old-12345'));
  assert.deepEqual(loadCheckpoint(dir, { modules: { model: new Tiny() } }), { step: 2 });
  // a folder without state.json (a crash before it was written) is not a checkpoint
  cpSync(join(root, '.ckpt.old-12345'), join(root, 'partial'), { recursive: true });
  writeFileSync(join(root, 'partial', 'state.json'), '');
  assert.equal(findCheckpoint(join(root, 'nothing-here')), null);
  assert.throws(() => loadCheckpoint(join(root, 'nothing-here'), { modules: {} }), /no checkpoint/);
  assert.ok(existsSync(join(root, 'partial')));
});

test('a checkpoint that does not fit says which file and which keys', () => {
  const dir = join(tmp(), 'ckpt');
  saveCheckpoint(dir, { modules: { model: new Tiny() } });
  assert.throws(
    () => loadCheckpoint(dir, { modules: { backbone: new Tiny() } }),
    /holds modules \[model\], given \[backbone\]/,
  );
  class Other extends Module {
    constructor() {
      super();
      this.registerParameter('w', torch.zeros(2, 2));
    }
  }
  assert.throws(
    () => loadCheckpoint(dir, { modules: { model: new Other() } }),
    (e: Error) =>
      e.message.includes('model.safetensors') &&
      /different shape: w/.test(e.message) &&
      /unexpected: count, inner\.bias/.test(e.message),
  );
  writeFileSync(join(dir, 'model.safetensors'), Buffer.from([1, 2, 3]));
  assert.throws(
    () => loadCheckpoint(dir, { modules: { model: new Tiny() } }),
    /model\.safetensors.*shorter than the 8-byte header/,
  );
});

test('a failed write names the folder and the intact previous checkpoint, and leaves no temporary folder', () => {
  const root = tmp();
  const dir = join(root, 'ckpt');
  const a = new Tiny();
  saveCheckpoint(dir, { modules: { model: a }, progress: { epoch: 2, step: 30 } });
  const before = readFileSync(join(dir, 'model.safetensors'));
  // a full disk while the next one is written (after its first file)
  process.env.MMOCO_FAIL_CHECKPOINT = '1';
  try {
    torch.noGrad(() => a.w.add_(1));
    assert.throws(
      () => saveCheckpoint(dir, { modules: { model: a }, progress: { epoch: 3, step: 40 } }),
      (e: Error & { code?: string }) =>
        e.message ===
          `could not write checkpoint ${dir} (ENOSPC: no space left on device, write); ` +
            'the previous checkpoint (end of epoch 2, step 30) is intact' && e.code === 'ENOSPC',
    );
  } finally {
    delete process.env.MMOCO_FAIL_CHECKPOINT;
  }
  assert.deepEqual(readdirSync(root), ['ckpt'], 'no temporary folder remains');
  assert.deepEqual(readFileSync(join(dir, 'model.safetensors')), before);
  assert.deepEqual(loadCheckpoint(dir, { modules: { model: new Tiny() } }), { epoch: 2, step: 30 });
  // once there is space again the same save works
  saveCheckpoint(dir, { modules: { model: a }, progress: { epoch: 3, step: 40 } });
  assert.deepEqual(loadCheckpoint(dir, { modules: { model: new Tiny() } }), { epoch: 3, step: 40 });

  // a mid-epoch checkpoint is described by how far its epoch got; no permission, no previous one
  const other = join(root, 'second');
  saveCheckpoint(other, {
    modules: { model: a },
    progress: { epoch: 0, step: 17, partial: { epoch: 1, batch: 7, lossSum: 1 } },
  });
  process.env.MMOCO_FAIL_CHECKPOINT = '1:EACCES';
  try {
    assert.throws(
      () => saveCheckpoint(other, { modules: { model: a } }),
      /^Error: could not write checkpoint .*second \(EACCES: permission denied, write\); the previous checkpoint \(inside epoch 1, 7 batches done, step 17\) is intact$/,
    );
    process.env.MMOCO_FAIL_CHECKPOINT = '1:EACCES '; // a new value: counts from the next save again
    assert.throws(
      () => saveCheckpoint(join(root, 'fresh'), { modules: { model: a } }),
      /could not write checkpoint .*fresh \(EACCES: .*\); there is no previous checkpoint$/,
    );
  } finally {
    delete process.env.MMOCO_FAIL_CHECKPOINT;
  }
  assert.deepEqual(readdirSync(root).sort(), ['ckpt', 'second']);
  // a real failure, not injected: the parent is a file
  writeFileSync(join(root, 'file'), 'x');
  assert.throws(
    () => saveCheckpoint(join(root, 'file', 'ckpt'), { modules: { model: a } }),
    /could not write checkpoint .*file\/ckpt \((ENOTDIR|EEXIST)[^)]*\); there is no previous checkpoint/,
  );
});
