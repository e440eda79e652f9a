// `mmoco launch` (torchrun's part): 2 data-parallel ranks of `mmoco pretrain` over Gloo on
// loopback; killing one rank makes launch stop the other and exit non-zero naming the rank, and
// the same command again resumes from the last checkpoint and ends with the losses of an
// uninterrupted 2-rank run. Plus the option errors.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const tmp = mkdtempSync(join(tmpdir(), 'mmoco-launch-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let port = 29900 + (process.pid % 80);

const PRETRAIN = [
  'pretrain', '--data', 'synthetic', '--model', 'vit_tiny', '--depth', '2', '--embed-dim', '32', '--num-heads', '2',
  '--img-size', '16', '--patch-size', '4', '--num-chunks', '4', '--batch-size', '32', '--epochs', '3',
  '--warmup-epochs', '1', '--proj-hidden-dim', '32', '--pred-hidden-dim', '32', '--proj-out-dim', '16',
  '--max-steps-per-epoch', '6', '--knn-train-samples', '200', '--knn-val-samples', '100', '--precision', 'fp32',
  '--workers', '1',
]; // prettier-ignore

const steps = (dir: string): { step: number; loss: number }[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { kind: string; step: number; loss: number })
    .filter((r) => r.kind === 'step');

function launch(out: string): { status: number | null; stderr: string } {
  const r = spawnSync(
    process.execPath,
    [CLI, 'launch', '--nproc', '2', '--master-port', String(port++), ...PRETRAIN, '--out', out],
    {
      encoding: 'utf8',
      timeout: 300_000,
    },
  );
  return { status: r.status, stderr: r.stderr };
}

test('launch: a killed rank stops the run (non-zero, naming the rank); the same command resumes it exactly', async () => {
  const ref = join(tmp, 'ref');
  const r = launch(ref);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /batch 32 = 2 processes x 16/);
  assert.equal(steps(ref).length, 18);

  const out = join(tmp, 'killed');
  const p = port++;
  const t = spawn(
    process.execPath,
    [CLI, 'launch', '--nproc', '2', '--master-port', String(p), '--grace-s', '5', ...PRETRAIN, '--out', out],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  t.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((res) => t.on('exit', (code) => res(code)));
  const deadline = Date.now() + 240_000;
  while (!(existsSync(join(out, 'checkpoint', 'state.json')) && steps(out).some((s) => s.step >= 7))) {
    if (Date.now() > deadline) throw new Error('the run did not reach epoch 1 in time');
    await new Promise((res) => setTimeout(res, 50));
  }
  // rank 1 is the launcher's second child
  const kids = execFileSync('pgrep', ['-P', String(t.pid)], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map(Number);
  assert.equal(kids.length, 2);
  const t0 = Date.now();
  process.kill(kids[1]!, 'SIGKILL');
  const code = await exited;
  assert.notEqual(code, 0);
  assert.match(stderr, /mmoco launch: rank 1 was killed by SIGKILL; the other ranks were stopped/);
  assert.ok(Date.now() - t0 < 60_000, `launch took ${Date.now() - t0} ms to stop`);

  const again = launch(out);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, /resuming .* at epoch 1 \(step 6\)/);
  const a = steps(ref);
  const b = steps(out);
  assert.deepEqual(
    b.map((s) => s.step),
    a.map((s) => s.step),
  );
  for (let i = 0; i < a.length; i++) assert.equal(b[i]!.loss, a[i]!.loss, `loss of step ${i}`);
});

test('launch: option errors name the option', () => {
  const cases: [string[], RegExp][] = [
    [['launch', '--nproc', 'two', 'pretrain'], /--nproc must be an integer ≥ 0, got 'two'/],
    [['launch', '--nproc', '2'], /launch: no command given/],
    [['launch', '--nnodes', '2', '--node-rank', '2', 'pretrain'], /--node-rank 2 must be < --nnodes 2/],
    [['launch', '--bogus', '1', 'pretrain'], /unknown option --bogus/],
  ];
  for (const [args, re] of cases) {
    const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, re);
  }
  const h = spawnSync(process.execPath, [CLI, 'launch', '--help'], { encoding: 'utf8' });
  assert.match(h.stdout, /--master-addr A +address of node 0/);
});

test('launch: linprobe and finetune run data-parallel too (rank 0 writes the run)', () => {
  const pre = join(tmp, 'ref');
  for (const cmd of ['linprobe', 'finetune']) {
    const out = join(tmp, cmd);
    const r = spawnSync(
      process.execPath,
      [CLI, 'launch', '--nproc', '2', '--master-port', String(port++), cmd, '--data', 'synthetic', '--checkpoint', pre,
        '--batch-size', '32', '--epochs', '2', '--warmup-epochs', '1', '--max-steps-per-epoch', '3', '--precision', 'fp32',
        '--workers', '1', '--out', out], // prettier-ignore
      { encoding: 'utf8', timeout: 300_000 },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /"top1":/);
    const evals = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"kind":"eval"'));
    assert.equal(evals.length, 2, cmd);
    assert.match(r.stderr, /batch 32|steps\/epoch/);
  }
});
