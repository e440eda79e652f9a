// Run folders: `epochs` may grow (or shrink, not below what was done) on resume with an `extend`
// record; other changed keys are refused by name; a mid-epoch checkpoint resumes at its batch;
// the checkpoint clock; stale temporary folders of killed writers are removed at start.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { Module } from '../../src/torch/nn/module.js';
import { CheckpointClock, RunDir, batchSeed, type RunStart } from '../../src/train/run-dir.js';

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-rundir-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

class Net extends Module {
  constructor() {
    super();
    this.registerParameter('w', torch.randn(4));
  }
}

const FREE = ['out', 'threads'];

function begin(
  run: RunDir,
  config: Record<string, unknown>,
  net = new Net(),
): { start: RunStart; messages: string[]; net: Net } {
  const messages: string[] = [];
  const start = run.resumeOrStart({
    config,
    freeKeys: FREE,
    state: { modules: { net } },
    lead: true,
    log: (m) => messages.push(m),
    start: { epochs: config.epochs },
  });
  return { start, messages, net };
}

test('epochs grows on resume: extend record, config.json updated; fewer than done and other keys are refused', () => {
  const run = new RunDir(join(tmp, 'extend'));
  const cfg = { command: 'pretrain', epochs: 2, blr: 1e-3, threads: 1 };
  const a = begin(run, cfg);
  assert.equal(a.start.startEpoch, 0);
  run.log({ kind: 'epoch', epoch: 0 });
  run.log({ kind: 'epoch', epoch: 1 });
  run.save({ modules: { net: a.net } }, { epoch: 1, step: 10 });
  // finished; the same command with a larger --epochs continues at epoch 2
  const b = begin(run, { ...cfg, epochs: 5, threads: 2 });
  assert.deepEqual([b.start.startEpoch, b.start.startBatch, b.start.step], [2, 0, 10]);
  assert.match(
    b.messages.join('\n'),
    /epochs 2 → 5: the learning-rate and momentum schedules follow the new length from step 10/,
  );
  assert.equal(run.readConfig()!.epochs, 5);
  assert.equal(run.readConfig()!.threads, 1, 'only epochs is rewritten');
  const ext = run.readMetrics().filter((r) => r.kind === 'extend');
  assert.equal(ext.length, 1);
  assert.deepEqual({ ...ext[0], time: 0 }, { kind: 'extend', epoch: 2, step: 10, fromEpochs: 2, toEpochs: 5, time: 0 });

  // killed before the next checkpoint: the log is cut back, so the resume logs the extension again
  const c = begin(run, { ...cfg, epochs: 5 });
  assert.equal(c.start.startEpoch, 2);
  assert.equal(run.readMetrics().filter((r) => r.kind === 'extend').length, 1);

  assert.throws(
    () => begin(run, { ...cfg, epochs: 1 }),
    /extend: epochs 1 is less than the 2 epochs this run has done; give epochs ≥ 2 to continue it/,
  );
  assert.throws(
    () => begin(run, { ...cfg, epochs: 6, blr: 2e-3 }),
    /holds a run with a different config \(blr: 0\.001 → 0\.002\)/,
  );
  // shrinking to no fewer than done is allowed (the schedule ends sooner)
  const d = begin(run, { ...cfg, epochs: 3 });
  assert.equal(d.start.startEpoch, 2);
  assert.equal(run.readConfig()!.epochs, 3);
});

test('a mid-epoch checkpoint resumes at its batch with its loss sum; a partly done epoch counts as done', () => {
  const run = new RunDir(join(tmp, 'partial'));
  const cfg = { command: 'pretrain', epochs: 3 };
  const a = begin(run, cfg);
  run.log({ kind: 'step', step: 0 });
  run.save({ modules: { net: a.net } }, { epoch: 1, step: 13 }, { epoch: 1, batch: 3, lossSum: 0.1 + 0.2 });
  run.log({ kind: 'step', step: 13 }); // after the checkpoint: cut on resume
  const progress = JSON.parse(readFileSync(join(run.checkpointDir, 'state.json'), 'utf8')).progress;
  assert.equal(progress.epoch, 0, 'progress.epoch stays the last complete epoch');
  const w = a.net.stateDict().get('w')!.toArray();
  const b = begin(run, cfg);
  assert.deepEqual([b.start.startEpoch, b.start.startBatch, b.start.step], [1, 3, 13]);
  assert.deepEqual(b.start.partial, { epoch: 1, batch: 3, lossSum: 0.1 + 0.2 });
  assert.deepEqual(b.net.stateDict().get('w')!.toArray(), w);
  assert.match(b.messages.join('\n'), /resuming .* at epoch 1, batch 3 \(step 13\)/);
  assert.deepEqual(
    run.readMetrics().map((r) => r.kind),
    ['start', 'step', 'resume'],
  );
  assert.throws(
    () => begin(run, { ...cfg, epochs: 1 }),
    /epochs 1 is less than the 2 epochs this run has done \(epoch 1 partly\)/,
  );
});

test('CheckpointClock: due every N minutes after the last checkpoint; 0 never; negative refused', () => {
  let now = 0;
  const c = new CheckpointClock(0.5, () => now);
  now = 29_999;
  assert.equal(c.due(), false);
  now = 30_000;
  assert.equal(c.due(), true);
  c.reset();
  now = 59_000;
  assert.equal(c.due(), false);
  now = 60_000;
  assert.equal(c.due(), true);
  const never = new CheckpointClock(0, () => now);
  now = 1e12;
  assert.equal(never.due(), false);
  assert.throws(() => new CheckpointClock(-1), /checkpointEveryMinutes must be ≥ 0, got -1/);
});

test('batchSeed: one seed per (seed, epoch, rank, batch)', () => {
  const seeds = new Set<number>();
  for (const s of [0, 1])
    for (const e of [0, 1]) for (const r of [0, 1]) for (const b of [0, 1, 2]) seeds.add(batchSeed(s, e, r, b));
  assert.equal(seeds.size, 24);
  assert.equal(batchSeed(7, 3, 1, 5), batchSeed(7, 3, 1, 5));
  assert.ok(seeds.values().next().value! < 2 ** 53);
});

test('stale temporary folders and files of dead writers are removed at start; a live writer keeps its own', async () => {
  const dir = join(tmp, 'stale');
  const run = new RunDir(dir);
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  try {
    for (const f of [`.checkpoint.tmp-${dead}`, `.checkpoint.tmp-${process.pid}`, `.checkpoint.tmp-${live.pid}`]) {
      mkdirSync(join(dir, f));
      writeFileSync(join(dir, f, 'model.safetensors'), 'partial');
    }
    writeFileSync(join(dir, `.config.json.tmp-${dead}-k3x9`), '{');
    // the previous checkpoint of a save killed between its renames: still the one to resume from
    mkdirSync(join(dir, `.checkpoint.old-${dead}`));
    writeFileSync(join(dir, `.checkpoint.old-${dead}`, 'state.json'), '{}');
    writeFileSync(join(dir, 'notes.tmp-1'), 'not ours');
    const removed = run.removeStaleTemps().sort();
    assert.deepEqual(
      removed,
      [`.checkpoint.tmp-${dead}`, `.checkpoint.tmp-${process.pid}`, `.config.json.tmp-${dead}-k3x9`].sort(),
    );
    assert.ok(existsSync(join(dir, `.checkpoint.tmp-${live.pid}`)));
    assert.ok(existsSync(join(dir, `.checkpoint.old-${dead}`)), 'kept while checkpoint/ is incomplete');
    // once checkpoint/ is complete the old one goes too
    mkdirSync(run.checkpointDir);
    writeFileSync(join(run.checkpointDir, 'state.json'), '{}');
    assert.deepEqual(run.removeStaleTemps(), [`.checkpoint.old-${dead}`]);
    assert.deepEqual(readdirSync(dir).sort(), [`.checkpoint.tmp-${live.pid}`, 'checkpoint', 'notes.tmp-1'].sort());
  } finally {
    live.kill();
  }
});

test('a failed write of the log or the config names the file', () => {
  const run = new RunDir(join(tmp, 'unwritable'));
  mkdirSync(run.metricsPath); // appending to a folder fails as a full disk would: with an errno, no path
  assert.throws(
    () => run.log({ kind: 'step', step: 0 }),
    (e: Error & { code?: string }) =>
      e.message.startsWith(`could not write ${run.metricsPath} (EISDIR`) && e.code === 'EISDIR',
  );
  mkdirSync(run.configPath);
  assert.throws(() => run.writeConfig({ epochs: 1 }), new RegExp(`could not write .*config\\.json \\(`));
});
