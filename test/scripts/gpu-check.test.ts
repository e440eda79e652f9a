// scripts/gpu-check.sh, the one-call GPU check, at toy sizes on the CPU: every part runs (build,
// the CUDA tests — skipped here —, the step and data benchmarks against PyTorch, the two first
// runs with their reports) and leaves its figures in the results folder, so the script cannot rot
// between the sessions that have a GPU.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const tmp = mkdtempSync(join(tmpdir(), 'mmoco-gpu-check-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const jsonl = (f: string): Record<string, unknown>[] =>
  readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('gpu-check.sh --device cpu --toy runs every part and writes the results', () => {
  const out = join(tmp, 'results');
  const archive = join(tmp, 'results.tar.gz');
  const r = spawnSync(
    'bash',
    [
      'scripts/gpu-check.sh',
      '--out',
      out,
      '--device',
      'cpu',
      '--toy',
      '--minutes',
      '0.3',
      '--deadline',
      '30',
      '--archive',
      archive,
    ],
    { cwd: root, encoding: 'utf8', timeout: 15 * 60_000 },
  );
  assert.equal(r.status, 0, `gpu-check failed:\n${r.stdout}\n${r.stderr.slice(-4000)}`);

  const timings = JSON.parse(readFileSync(join(out, 'timings.json'), 'utf8')) as Record<string, { status: string }>;
  assert.deepEqual(Object.keys(timings), ['build', 'tests', 'step', 'data', 'runs']);
  for (const [part, t] of Object.entries(timings)) assert.equal(t.status, 'ok', `${part}: ${t.status}`);

  const env = JSON.parse(readFileSync(join(out, 'env.json'), 'utf8')) as { device: string; torch: { version: string } };
  assert.equal(env.device, 'cpu');
  assert.match(env.torch.version, /^\d+\.\d+/);
  const tests = JSON.parse(readFileSync(join(out, 'tests.json'), 'utf8')) as Record<string, number>;
  assert.equal(tests.failed, 0);
  assert.ok(tests.passed! > 0);

  const step = jsonl(join(out, 'bench-step.jsonl'));
  assert.match(String(step[0]!.case), /^peak: bf16 matmul/);
  const cases = step.slice(1);
  assert.equal(cases.length, 2);
  for (const c of cases) {
    assert.equal(c.bench, 'step');
    assert.ok((c.ours as number) > 0 && (c.torch as number) > 0, JSON.stringify(c));
    assert.ok((c.oursTflops as number) > 0 && (c.peakTflops as number) > 0);
  }
  const data = jsonl(join(out, 'bench-data.jsonl'));
  assert.equal(data.length, 1);
  assert.ok((data[0]!.ours as number) > 0 && (data[0]!.torch as number) > 0);

  const runs = jsonl(join(out, 'first-runs.jsonl'));
  assert.deepEqual(
    runs.map((x) => x.n),
    [1, 8],
  );
  assert.equal(runs[0]!.epochs, runs[1]!.epochs, 'both runs train the same epochs');
  for (const x of runs) {
    assert.ok(typeof x.knnTop1 === 'number' && typeof x.knnTop1Init === 'number', JSON.stringify(x));
    for (const png of x.pngs as string[]) assert.ok(existsSync(png), png);
  }
  assert.ok(existsSync(join(out, 'n8', 'report', 'kappa.png')), 'the κ chart of the n = 8 run');
  const summary = readFileSync(join(out, 'summary.txt'), 'utf8');
  assert.match(summary, /runs\s+ok/);
  assert.equal(r.stdout.trim(), summary.trim(), 'the table is printed last');
  // --deadline leaves --minutes as it is when there is time for it
  assert.match(r.stderr, /runs: 0\.30 minutes of training left before the 30-minute deadline/);

  // the archive holds the figures and reports, not the checkpoints or the toy data
  const listed = spawnSync('tar', ['-tzf', archive], { encoding: 'utf8' }).stdout.split('\n');
  for (const f of ['./summary.txt', './bench-step.jsonl', './first-runs.jsonl', './n8/report/kappa.png'])
    assert.ok(listed.includes(f), `${f} in the archive: ${listed.join(' ')}`);
  assert.ok(!listed.some((f) => f.includes('/checkpoint') || f.includes('toy-data')), listed.join(' '));
  assert.ok(existsSync(join(out, 'n8', 'checkpoint')), 'the runs keep their checkpoints in the folder');
});
