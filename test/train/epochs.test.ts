// The epoch loop shared by pretrain / linprobe / finetune (src/train/epochs.ts) on a fake loader:
// per-batch seeds, batch disposal, the epoch's mean loss, checkpoints, resume inside an epoch
// drawing what an uninterrupted run draws, and divergence (a non-finite loss, or a trainer's
// TrainingDiverged) as a `stop` record then TrainingDiverged with the epoch and last checkpoint.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { Module } from '../../src/torch/nn/module.js';
import type { Batch } from '../../src/data/index.js';
import { runEpochs, type EpochEnd, type StepAt } from '../../src/train/epochs.js';
import { RunDir, TrainingDiverged } from '../../src/train/run-dir.js';

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-epochs-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

class Net extends Module {
  constructor() {
    super();
    this.registerParameter('w', torch.zeros(2));
  }
}

/** 4 batches an epoch (one more than the runs below use), each with fresh tensors. */
const loader = {
  async *epoch(epoch: number, o: { from: number }): AsyncGenerator<Batch> {
    for (let b = o.from; b < 4; b++) {
      yield { images: torch.zeros(1, 3, 2, 2), labels: torch.zeros(1), indices: [b], epoch, batch: b };
    }
  },
};

interface Seen extends StepAt {
  draw: number;
}

/** runEpochs over a fresh or resumed run folder; the step's loss is a seeded draw unless `loss` says. */
async function run(
  dir: string,
  o: { loss?: (at: StepAt) => number; prepare?: (run: RunDir, net: Net) => void } = {},
): Promise<{ seen: Seen[]; ends: EpochEnd[]; saved: number[]; steps: number; run: RunDir; net: Net }> {
  const rd = new RunDir(join(tmp, dir));
  const net = new Net();
  const state = { modules: { net } };
  o.prepare?.(rd, net);
  const begin = rd.resumeOrStart({
    config: { command: 'test', epochs: 2 },
    freeKeys: [],
    state,
    lead: true,
    log: () => undefined,
    start: {},
  });
  const seen: Seen[] = [];
  const ends: EpochEnd[] = [];
  const saved: number[] = [];
  const steps = await runEpochs({
    run: rd,
    begin,
    epochs: 2,
    batches: 3,
    seed: 7,
    rank: 0,
    lead: true,
    group: null,
    loader,
    state,
    checkpointEveryMinutes: 0,
    log: () => undefined,
    step: (batch, at) => {
      assert.equal(batch.batch, at.batch);
      const draw = Number(torch.tidy(() => torch.rand(1).item()));
      seen.push({ ...at, draw });
      return { loss: o.loss ? o.loss(at) : draw };
    },
    progress: () => ({ extra: 'kept' }),
    endEpoch: (e) => {
      ends.push(e);
    },
    saved: (e) => saved.push(e.epoch),
  });
  return { seen, ends, saved, steps, run: rd, net };
}

test('runEpochs: seeded batches, disposed, mean loss per epoch, a checkpoint each epoch', async () => {
  const before = torch.liveTensors();
  const a = await run('fresh');
  a.net.dispose();
  assert.equal(torch.liveTensors(), before, 'every batch disposed, the unused 4th included');
  assert.equal(a.steps, 6);
  assert.deepEqual(
    a.seen.map((s) => [s.epoch, s.step, s.batch]),
    [
      [0, 0, 0],
      [0, 1, 1],
      [0, 2, 2],
      [1, 3, 0],
      [1, 4, 1],
      [1, 5, 2],
    ],
  );
  assert.equal(new Set(a.seen.map((s) => s.draw)).size, 6, 'one seed per (epoch, batch)');
  const b = await run('again');
  assert.deepEqual(
    b.seen.map((s) => s.draw),
    a.seen.map((s) => s.draw),
    'the same draws in a second run',
  );
  const mean0 = (a.seen[0]!.draw + a.seen[1]!.draw + a.seen[2]!.draw) / 3;
  assert.equal(a.ends[0]!.loss, mean0);
  assert.deepEqual(
    a.ends.map((e) => [e.epoch, e.step, e.batches, e.batchesRun]),
    [
      [0, 3, 3, 3],
      [1, 6, 3, 3],
    ],
  );
  assert.deepEqual(a.saved, [0, 1]);
  const progress = JSON.parse(readFileSync(join(a.run.checkpointDir, 'state.json'), 'utf8')).progress;
  assert.deepEqual([progress.epoch, progress.step, progress.extra], [1, 6, 'kept']);
});

test('runEpochs: resumed inside an epoch, it draws and averages what an uninterrupted run does', async () => {
  const a = await run('whole');
  const lossSum = a.seen[0]!.draw + a.seen[1]!.draw;
  // a checkpoint after batch 2 of epoch 0, as a run killed there leaves it
  const r = await run('resumed', {
    prepare: (rd, net) => {
      rd.resumeOrStart({
        config: { command: 'test', epochs: 2 },
        freeKeys: [],
        state: { modules: { net } },
        lead: true,
        log: () => undefined,
        start: {},
      });
      rd.save({ modules: { net } }, { epoch: 0, step: 2 }, { epoch: 0, batch: 2, lossSum });
    },
  });
  assert.deepEqual(
    r.seen.map((s) => [s.epoch, s.step, s.batch, s.draw]),
    a.seen.slice(2).map((s) => [s.epoch, s.step, s.batch, s.draw]),
  );
  assert.equal(r.ends[0]!.loss, a.ends[0]!.loss);
  assert.deepEqual([r.ends[0]!.batches, r.ends[0]!.batchesRun], [3, 1]);
  assert.equal(r.ends[1]!.loss, a.ends[1]!.loss);
});

test('runEpochs: a non-finite loss stops the run with a stop record and TrainingDiverged naming the checkpoint', async () => {
  let rd: RunDir | null = null;
  await assert.rejects(
    run('nan', {
      loss: (at) => (at.step === 4 ? NaN : 1),
      prepare: (r) => {
        rd = r;
      },
    }),
    (e: unknown) => {
      assert.ok(e instanceof TrainingDiverged);
      assert.deepEqual([e.step, e.epoch, e.value], [4, 1, NaN]);
      assert.equal(e.checkpoint, rd!.checkpoint());
      assert.ok(e.checkpoint);
      assert.match(
        e.message,
        /^the loss became NaN at step 4 \(epoch 1\); the run stopped; the last good checkpoint is .*checkpoint/,
      );
      return true;
    },
  );
  const stop = rd!.readMetrics().find((x) => x.kind === 'stop');
  assert.deepEqual({ ...stop, time: 0 }, { kind: 'stop', reason: 'loss NaN', epoch: 1, step: 4, time: 0 });
});

test("runEpochs: a trainer's TrainingDiverged is thrown again with the run's epoch", async () => {
  let rd: RunDir | null = null;
  await assert.rejects(
    run('thrown', {
      loss: (at) => {
        throw new TrainingDiverged({ step: at.step, value: Infinity, source: 'Trainer' });
      },
      prepare: (r) => {
        rd = r;
      },
    }),
    (e: unknown) => {
      assert.ok(e instanceof TrainingDiverged);
      assert.deepEqual([e.step, e.epoch, e.value, e.checkpoint], [0, 0, Infinity, null]);
      assert.equal(
        e.message,
        'the loss became Infinity at step 0 (epoch 0); the run stopped; no checkpoint was written yet',
      );
      return true;
    },
  );
  assert.ok(rd!.readMetrics().some((x) => x.kind === 'stop' && x.reason === 'loss Infinity'));
});

test('TrainingDiverged from a trainer names the trainer and the step', () => {
  const e = new TrainingDiverged({ step: 12, value: -Infinity, source: 'LinearProbe' });
  assert.equal(e.message, 'LinearProbe: the loss became -Infinity at step 12');
  assert.equal(e.name, 'TrainingDiverged');
  assert.deepEqual([e.epoch, e.checkpoint], [null, undefined]);
});
