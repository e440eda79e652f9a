// Exact resume: 30 training steps in one process give the same parameters, to the last bit,
// as 15 steps, a checkpoint, and 15 more steps in a new process. The run uses everything a
// resume must restore: parameters, AdamW moments and step counts, the lr schedule position,
// parameter groups with their own lr scale and weight decay, and the RNG (dropout, batches).
// This file is also the child process (MMOCO_RESUME_CHILD names the phase).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/torch/io/checkpoint.js';
import * as safetensors from '../../src/torch/io/safetensors.js';

const { nn, optim, F } = torch;
const TOTAL = 30;

function build(): { model: torch.nn.Sequential; opt: torch.optim.AdamW; sched: torch.optim.WarmupCosine } {
  torch.manualSeed(0);
  const model = new nn.Sequential(new nn.Linear(8, 32), new nn.GELU(), new nn.Dropout(0.2), new nn.Linear(32, 4));
  const named = model.namedParameters();
  const decay = named.filter(([n]) => n.endsWith('weight')).map(([, p]) => p);
  const noDecay = named.filter(([n]) => n.endsWith('bias')).map(([, p]) => p);
  const opt = new optim.AdamW(
    [
      { params: decay, weightDecay: 0.05, lrScale: 0.5 },
      { params: noDecay, weightDecay: 0 },
    ],
    { lr: 1e-2, betas: [0.9, 0.95] },
  );
  const sched = new optim.WarmupCosine({ lr: 1e-2, minLr: 1e-4, warmupEpochs: 2, epochs: 6, itersPerEpoch: 5 });
  return { model, opt, sched };
}

function train(s: ReturnType<typeof build>, from: number, to: number): void {
  const w = torch.keep(torch.linspace(-1, 1, 32).reshape(8, 4).sin()); // the task: fixed, not drawn
  for (let it = from; it < to; it++) {
    s.sched.applyAt(s.opt, it);
    torch.tidy(() => {
      const x = torch.randn(16, 8);
      const y = x.matmul(w).argmax(1);
      F.crossEntropy(s.model.forward(x), y).backward();
      s.opt.step();
      s.opt.zeroGrad();
    });
  }
  w.dispose();
}

function child(phase: string, dir: string): void {
  const s = build();
  let from = 0;
  let to = TOTAL;
  if (phase === 'first') to = TOTAL / 2;
  if (phase === 'second') {
    torch.manualSeed(12345); // whatever the new process draws, the checkpoint's RNG state wins
    from = loadCheckpoint(join(dir, 'ckpt'), { modules: { model: s.model }, stateful: { optimizer: s.opt } })
      .iter as number;
  }
  train(s, from, to);
  if (phase === 'first') {
    saveCheckpoint(join(dir, 'ckpt'), {
      modules: { model: s.model },
      stateful: { optimizer: s.opt },
      progress: { iter: to },
    });
  } else {
    safetensors.save(join(dir, `${phase}.safetensors`), s.model.stateDict());
  }
}

if (process.env.MMOCO_RESUME_CHILD) {
  child(process.env.MMOCO_RESUME_CHILD, process.env.MMOCO_RESUME_DIR!);
} else {
  test('15 steps + checkpoint + 15 steps in a new process = 30 steps, bit for bit', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mmoco-resume-'));
    const run = (phase: string): void => {
      execFileSync(process.execPath, [fileURLToPath(import.meta.url)], {
        env: { ...process.env, MMOCO_RESUME_CHILD: phase, MMOCO_RESUME_DIR: dir },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
    };
    run('full');
    run('first');
    run('second');
    const full = safetensors.load(join(dir, 'full.safetensors')).tensors;
    const resumed = safetensors.load(join(dir, 'second.safetensors')).tensors;
    assert.deepEqual([...resumed.keys()].sort(), [...full.keys()].sort());
    for (const [k, t] of full) {
      assert.equal(torch.equal(t, resumed.get(k)!), true, `${k} differs after resume`);
    }
    // and training really moved the parameters
    const first = build().model.stateDict();
    assert.equal(torch.equal(first.get('0.weight')!, full.get('0.weight')!), false);
    assert.ok(readFileSync(join(dir, 'full.safetensors')).equals(readFileSync(join(dir, 'second.safetensors'))));
  });
}
