// `mmoco linprobe`, `finetune`, `knn` and `report` as a user runs them (child processes of the
// built CLI) on tiny models: from a pre-training run's weights and from random init; the run
// folder (eval records, checkpoint, best model); resume after `kill -9`; a diverging fine-tune
// or linear probe stops with status 3; the report of each run.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const tmp = mkdtempSync(join(tmpdir(), 'mmoco-cls-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const ARCH = ['--model', 'vit_tiny', '--depth', '2', '--embed-dim', '32', '--num-heads', '2', '--img-size', '16', '--patch-size', '4']; // prettier-ignore
const COMMON = ['--data', 'synthetic', '--threads', '1', '--workers', '1', '--batch-size', '16', '--max-steps-per-epoch', '5']; // prettier-ignore
const PRE = join(tmp, 'pre');

function mmoco(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const last = (s: string): Record<string, unknown> =>
  JSON.parse(s.trim().split('\n').at(-1)!) as Record<string, unknown>;

function records(dir: string): Record<string, unknown>[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

before(() => {
  const r = mmoco(['pretrain', ...COMMON, ...ARCH, '--num-chunks', '2', '--proj-hidden-dim', '32', '--pred-hidden-dim', '32',
    '--proj-out-dim', '16', '--epochs', '2', '--warmup-epochs', '1', '--knn-every', '0', '--out', PRE]); // prettier-ignore
  assert.equal(r.status, 0, r.stderr);
});

test('knn: pre-trained weights (architecture read from the run) and random init', () => {
  const a = mmoco([
    'knn',
    '--data',
    'synthetic',
    '--checkpoint',
    PRE,
    '--knn-train-samples',
    '300',
    '--knn-val-samples',
    '100',
  ]);
  assert.equal(a.status, 0, a.stderr);
  const ja = last(a.stdout);
  assert.match(String(ja.weights), /model\.safetensors/);
  assert.ok(Number(ja.top1) >= 0 && Number(ja.top1) <= 100 && Number(ja.top5) >= Number(ja.top1));
  const b = mmoco(['knn', '--data', 'synthetic', ...ARCH, '--knn-train-samples', '300', '--knn-val-samples', '100']);
  assert.equal(b.status, 0, b.stderr);
  assert.match(String(last(b.stdout).weights), /random init/);
});

test('linprobe: eval records each epoch, a checkpoint of the head, the report', () => {
  const out = join(tmp, 'lp');
  const r = mmoco(['linprobe', ...COMMON, '--checkpoint', PRE, '--epochs', '2', '--warmup-epochs', '1', '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  const j = last(r.stdout);
  assert.ok(Number(j.top1) >= 0 && Number(j.top5) >= Number(j.top1));
  const evals = records(out).filter((x) => x.kind === 'eval');
  assert.equal(evals.length, 2);
  assert.ok(existsSync(join(out, 'checkpoint', 'head.safetensors')));
  const rep = mmoco(['report', out]);
  assert.equal(rep.status, 0, rep.stderr);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  assert.match(html, /<svg/);
  assert.ok(existsSync(join(out, 'report', 'loss.png')));
});

test('finetune: kill -9 after the first epoch, the same command resumes with the uninterrupted numbers', async () => {
  const args = [...COMMON, '--checkpoint', PRE, '--epochs', '3', '--warmup-epochs', '1'];
  const ref = join(tmp, 'ft-ref');
  const r = mmoco(['finetune', ...args, '--out', ref]);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(existsSync(join(ref, 'best.safetensors')));

  const out = join(tmp, 'ft-killed');
  const child = spawn(process.execPath, [CLI, 'finetune', ...args, '--out', out], { stdio: 'ignore' });
  const exited = new Promise((res) => child.on('exit', res));
  const deadline = Date.now() + 240_000;
  for (;;) {
    const st = existsSync(join(out, 'metrics.jsonl')) ? records(out).filter((x) => x.kind === 'step') : [];
    if (existsSync(join(out, 'checkpoint', 'state.json')) && st.some((s) => s.step === 6)) break;
    if (Date.now() > deadline) throw new Error('the fine-tune did not reach epoch 1 in time');
    await new Promise((res) => setTimeout(res, 50));
  }
  child.kill('SIGKILL');
  await exited;
  const again = mmoco(['finetune', ...args, '--out', out]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /resuming .* at epoch 1 \(step 5\)/);
  const pick = (dir: string): unknown[] =>
    records(dir)
      .filter((x) => x.kind === 'step' || x.kind === 'eval')
      .map((x) => [x.kind, x.step ?? x.epoch, x.loss, x.lr, x.top1]);
  assert.deepEqual(pick(out), pick(ref));
});

for (const command of ['finetune', 'linprobe'] as const) {
  test(`${command}: a diverging loss stops the run with status 3, reported as pre-training's`, () => {
    const out = join(tmp, `${command}-nan`);
    // an absurd learning rate: the weights are thrown far out and the loss overflows
    const r = mmoco([
      command,
      ...COMMON,
      ...ARCH,
      '--epochs',
      '2',
      '--warmup-epochs',
      '0',
      '--blr',
      '1e38',
      '--out',
      out,
    ]);
    assert.equal(r.status, 3, r.stderr);
    const said = new RegExp(
      `mmoco ${command}: the loss became (NaN|Infinity|-Infinity) at step \\d+ \\(epoch 0\\); the run stopped; no checkpoint was written yet`,
    );
    assert.match(r.stderr, said);
    const stop = records(out).find((x) => x.kind === 'stop');
    assert.ok(stop, 'a stop record');
    assert.match(String(stop.reason), /^loss (NaN|Infinity|-Infinity)$/);
    assert.equal(stop.epoch, 0);
    assert.ok(!existsSync(join(out, 'checkpoint')), 'no checkpoint of a diverged step');
  });
}

test('bad data for the evaluation commands names the problem', () => {
  const r = mmoco(['linprobe', '--data', join(tmp, 'nowhere'), '--out', join(tmp, 'x')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /data folder not found: .*nowhere/);
  const w = mmoco(['finetune', '--data', 'synthetic', '--checkpoint', join(tmp, 'no-run'), '--out', join(tmp, 'y')]);
  assert.equal(w.status, 1);
  assert.match(w.stderr, /weights not found: .*no-run/);
  const rep = mmoco(['report', join(tmp, 'no-run')]);
  assert.equal(rep.status, 1);
  assert.match(rep.stderr, /no-run/);
});

test('finetune: kill -9 after a mid-epoch checkpoint resumes bit-identical; a larger --epochs then continues it', async () => {
  const args = [...COMMON, '--checkpoint', PRE, '--epochs', '2', '--warmup-epochs', '1'];
  const ref = join(tmp, 'ft-mid-ref');
  const r = mmoco(['finetune', ...args, '--checkpoint-every-minutes', '0', '--out', ref]);
  assert.equal(r.status, 0, r.stderr);

  const out = join(tmp, 'ft-mid');
  const run = ['finetune', ...args, '--checkpoint-every-minutes', '0.0003', '--out', out];
  const child = spawn(process.execPath, [CLI, ...run], { stdio: 'ignore' });
  let finished = false;
  const exited = new Promise<number | null>((res) =>
    child.on('exit', (code) => {
      finished = true;
      res(code);
    }),
  );
  type P = { epoch: number; step: number; partial?: { epoch: number; batch: number } };
  const progress = (): P | null => {
    try {
      return (JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8')) as { progress: P }).progress;
    } catch {
      return null; // not there yet, or between a save's renames
    }
  };
  const deadline = Date.now() + 240_000;
  for (;;) {
    const p = progress();
    // inside epoch 1 with 3 of its 5 steps left
    if (p?.partial && p.partial.epoch === 1 && p.partial.batch <= 2) break;
    if (finished || Date.now() > deadline)
      throw new Error('no mid-epoch checkpoint inside epoch 1 before the run ended');
    await new Promise((res) => setTimeout(res, 5));
  }
  child.kill('SIGKILL');
  assert.equal(await exited, null, 'killed, not finished');
  const at = progress()!;
  assert.ok(at.partial, JSON.stringify(at));
  const again = mmoco(run);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, new RegExp(`resuming .* at epoch 1, batch ${at.partial.batch} \\(step ${at.step}\\)`));
  const pick = (dir: string): unknown[] =>
    records(dir)
      .filter((x) => x.kind === 'step' || x.kind === 'eval')
      .map((x) => [x.kind, x.step ?? x.epoch, x.loss, x.lr, x.top1, x.trainLoss]);
  assert.deepEqual(pick(out), pick(ref));
  for (const f of ['checkpoint/model.safetensors', 'checkpoint/optimizer.safetensors', 'best.safetensors'])
    assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(ref, f))), `${f} differs`);

  // the finished fine-tune, one epoch longer
  const more = mmoco(['finetune', ...args.slice(0, -4), '--epochs', '3', '--warmup-epochs', '1', '--out', out]);
  assert.equal(more.status, 0, more.stderr);
  const rs = records(out);
  assert.deepEqual(
    rs.filter((x) => x.kind === 'eval').map((x) => x.epoch),
    [0, 1, 2],
  );
  assert.deepEqual(
    rs.filter((x) => x.kind === 'extend').map((x) => [x.step, x.fromEpochs, x.toEpochs]),
    [[10, 2, 3]],
  );
  assert.equal(rs.filter((x) => x.kind === 'step').length, 15);
});
