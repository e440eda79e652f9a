// Pre-training through the graphed step (`cudaGraph`): on the CPU 'on' runs GraphedTrainStep's
// body eagerly, which must give the run trainStep gives — the same losses within float32
// rounding, κ on the logged steps — and resume from its checkpoints like any run. On a GPU
// 'auto' captures the step as one CUDA graph (the graph itself: test/ssl/graphed-step).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { writeImageFolder, SyntheticImages } from '../../src/data/synthetic.js';
import { resolveConfig } from '../../src/train/config.js';
import { ConfigError } from '../../src/train/schema.js';
import { pretrain, type StepInfo } from '../../src/train/pretrain.js';
import { TOY_PRETRAIN } from './fixture.js';

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-graph-run-'));
const data = join(tmp, 'data');
after(() => rmSync(tmp, { recursive: true, force: true }));
before(async () => {
  await writeImageFolder(new SyntheticImages({ length: 64, numClasses: 4, size: 16, seed: 6 }), join(data, 'train'), {
    format: 'jpeg',
  });
});

const config = (out: string, flags: Record<string, unknown>) =>
  resolveConfig('pretrain', {
    sets: [],
    flags: {
      data,
      out: join(tmp, out),
      ...TOY_PRETRAIN,
      headNorm: 'ln',
      logEvery: 2,
      // float32 so that the comparisons below hold to rounding (auto picks bf16 on some CPUs)
      precision: 'fp32',
      ...flags,
    },
  });

async function run(
  out: string,
  flags: Record<string, unknown>,
  stopAfterEpoch?: number,
): Promise<{ steps: StepInfo[]; logs: string[] }> {
  const steps: StepInfo[] = [];
  const logs: string[] = [];
  const onEpoch = (e: { epoch: number }) => {
    // a run killed once this epoch's checkpoint is written
    if (e.epoch === stopAfterEpoch) throw new Error('stopped');
  };
  const go = pretrain(config(out, flags), { log: (m) => logs.push(m), onStep: (s) => steps.push(s), onEpoch });
  if (stopAfterEpoch === undefined) await go;
  else await assert.rejects(go, /stopped/);
  return { steps, logs };
}

const stepRecords = (out: string): Record<string, number | null>[] =>
  readFileSync(join(tmp, out, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"kind":"step"'))
    .map((l) => JSON.parse(l));

test("cudaGraph 'on' (run eagerly on the CPU) follows the plain step: losses, κ on the logged steps", async () => {
  const off = await run('off', { cudaGraph: 'off' });
  const on = await run('on', { cudaGraph: 'on' });
  assert.equal(off.steps.length, 8, '2 epochs of 4 steps');
  assert.equal(on.steps.length, 8);
  on.steps.forEach((s, i) => {
    const ref = off.steps[i]!;
    assert.equal(s.lr, ref.lr);
    assert.equal(s.momentum, ref.momentum);
    assert.ok(Math.abs(s.loss - ref.loss) <= 1e-4 * Math.abs(ref.loss), `step ${i}: ${s.loss} vs ${ref.loss}`);
  });
  assert.ok(
    on.logs.some((m) => /graphed step run eagerly/.test(m)),
    on.logs.join('\n'),
  );
  assert.ok(!off.logs.some((m) => /graphed step|CUDA graph/.test(m)));
  // the logged steps (every 2nd) carry κ, and it is the plain step's κ
  const a = stepRecords('off');
  const b = stepRecords('on');
  assert.deepEqual(
    b.map((r) => r.step),
    [0, 2, 4, 6],
  );
  b.forEach((r, i) => {
    for (const k of ['kappaRep', 'kappaProj', 'kappaPred']) {
      const x = r[k]!;
      const y = a[i]![k]!;
      assert.ok(typeof x === 'number' && x > 0, `step ${r.step} ${k} = ${x}`);
      assert.ok(Math.abs(x - y) <= 1e-3 * y, `step ${r.step} ${k}: ${x} vs ${y}`);
    }
  });
  // steps that are not logged compute no κ (each costs host syncs), with or without the graph
  assert.ok(Number.isNaN(on.steps[1]!.kappaRep) && Number.isNaN(off.steps[1]!.kappaRep));
});

test("cudaGraph 'on' resumes from its checkpoint where an uninterrupted run would be", async () => {
  const whole = await run('whole', { cudaGraph: 'on' });
  // the same run killed after its first epoch, then run again
  const first = await run('cut', { cudaGraph: 'on' }, 0);
  const rest = await run('cut', { cudaGraph: 'on' });
  assert.equal(first.steps.length, 4);
  assert.equal(rest.steps.length, 4);
  assert.ok(
    rest.logs.some((m) => /resum/i.test(m)),
    rest.logs.join('\n'),
  );
  [...first.steps, ...rest.steps].forEach((s, i) => {
    const ref = whole.steps[i]!;
    assert.ok(Math.abs(s.loss - ref.loss) <= 1e-5 * Math.abs(ref.loss), `step ${i}: ${s.loss} vs ${ref.loss}`);
  });
});

test("cudaGraph 'on' takes the loader's batch: a training set smaller than batchSize is one batch", async () => {
  const small = await run('small', { cudaGraph: 'on', batchSize: 100, epochs: 1 });
  assert.equal(small.steps.length, 1);
  assert.ok(Number.isFinite(small.steps[0]!.loss));
});

test("cudaGraph 'on' refuses what a graph cannot hold; 'auto' stays eager on the CPU", async () => {
  await assert.rejects(
    pretrain(config('clip', { cudaGraph: 'on', clipGrad: 1 }), { log: () => undefined }),
    (e: Error) => e instanceof ConfigError && /cudaGraph 'on' does not support clipGrad/.test(e.message),
  );
  const auto = await run('auto', { cudaGraph: 'auto', epochs: 1 });
  assert.ok(!auto.logs.some((m) => /graphed step|CUDA graph/.test(m)), auto.logs.join('\n'));
  assert.ok(Number.isFinite(auto.steps[0]!.kappaRep) && Number.isNaN(auto.steps[1]!.kappaRep), 'κ on logged steps');
});
