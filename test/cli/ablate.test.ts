// `mmoco ablate` end to end at toy size (synthetic images, a 1-block 32-d ViT, a few steps per
// cell): a 2 × 2 grid killed (SIGKILL) after its first cell finished and run again — finished
// cells are not redone, the table completes and equals the cells' own eval.json and
// metrics.jsonl, every cell saw the same images; seeds shared out by `mmoco launch --nproc 2`;
// a minutes budget timed once and kept; bad usage exits 2 naming the problem.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
const tmp = mkdtempSync(join(tmpdir(), 'mmoco-ablate-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const TOY = {
  description: 'toy grid',
  data: 'synthetic',
  model: 'vit_tiny',
  depth: 1,
  embedDim: 32,
  numHeads: 2,
  imgSize: 16,
  patchSize: 4,
  projHiddenDim: 32,
  predHiddenDim: 32,
  projOutDim: 16,
  batchSize: 32,
  warmupEpochs: 0,
  maxStepsPerEpoch: 4,
  trainSamples: 400,
  knnTrainSamples: 200,
  knnValSamples: 100,
  knnEvery: 0,
  precision: 'fp32',
  workers: 1,
  threads: 1,
  probe: { epochs: 10, batchSize: 50 },
};

function gridFile(name: string, extra: Record<string, unknown>): string {
  const path = join(tmp, `${name}.json`);
  writeFileSync(path, JSON.stringify({ ...TOY, ...extra }));
  return path;
}

type Rec = Record<string, unknown>;
const json = (path: string): Rec => JSON.parse(readFileSync(path, 'utf8')) as Rec;
const records = (dir: string): Rec[] =>
  readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Rec);

function ablate(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'ablate', ...args], { encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** What a finished cell's files are: their bytes and modification times. */
function snapshot(dir: string): Record<string, { text: string; mtime: number }> {
  const out: Record<string, { text: string; mtime: number }> = {};
  for (const f of [
    'eval.json',
    'metrics.jsonl',
    'config.json',
    'checkpoint/state.json',
    'checkpoint/model.safetensors',
  ])
    out[f] = { text: readFileSync(join(dir, f), 'latin1'), mtime: statSync(join(dir, f)).mtimeMs };
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
};

test('ablate: a 2 × 2 grid killed after its first cell resumes without redoing it; the table equals the cells', async () => {
  const grid = gridFile('two-by-two', {
    axes: { numChunks: [1, 4], method: ['mmoco', 'mbyol'] },
    budget: { images: 384 },
  });
  const out = join(tmp, 'two-by-two');
  const names = ['1_method-mmoco', '1_method-mbyol', '4_method-mmoco', '4_method-mbyol'].map(
    (s) => `numChunks-${s}_seed-0`,
  );
  const cell = (i: number): string => join(out, 'cells', names[i]!);

  const p = spawn(process.execPath, [CLI, 'ablate', '--grid', grid, '--out', out], { stdio: 'ignore' });
  const exited = new Promise<void>((res) => p.on('exit', () => res()));
  const deadline = Date.now() + 180_000;
  // killed once the first cell is done and the second has a checkpoint but no evaluation yet
  const midway = (): boolean =>
    existsSync(join(cell(0), 'eval.json')) &&
    existsSync(join(cell(1), 'checkpoint', 'state.json')) &&
    !existsSync(join(cell(1), 'eval.json'));
  while (!midway()) {
    if (Date.now() > deadline) throw new Error('the grid did not reach its second cell in time');
    await new Promise((res) => setTimeout(res, 5));
  }
  p.kill('SIGKILL');
  await exited;
  const ckptStep = (json(join(cell(1), 'checkpoint', 'state.json')).progress as Rec).step as number;
  const stepsAtKill = records(cell(1))
    .filter((x) => x.kind === 'step')
    .slice(0, ckptStep);
  assert.ok(!existsSync(join(out, 'table.json')), 'killed before the table');
  const unfinished = names.filter((_, i) => !existsSync(join(cell(i), 'eval.json')));
  assert.ok(unfinished.length >= 1, 'some cells were left to do');
  const before = snapshot(cell(0));

  const r = ablate(['--grid', grid, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`cell ${names[0]}: done \\(eval\\.json matches\\), skipped`));
  const summary = JSON.parse(r.stdout.trim().split('\n').pop()!) as Rec;
  assert.equal(summary.cells, 4);
  assert.equal(summary.trained, unfinished.length);
  assert.equal(summary.skipped, 4 - unfinished.length);
  assert.deepEqual(snapshot(cell(0)), before, 'the finished cell was not touched');
  // the second cell resumed from its checkpoint: the steps before it are kept, one resume record
  assert.match(r.stderr, new RegExp(`resuming ${cell(1)} at epoch`));
  const m1 = records(cell(1));
  assert.equal(m1.filter((x) => x.kind === 'resume').length, 1);
  assert.deepEqual(
    m1.filter((x) => x.kind === 'step').slice(0, ckptStep),
    stepsAtKill,
    'the steps before the checkpoint were not redone',
  );
  assert.ok(ckptStep >= 4 && ckptStep < 12, `checkpoint at step ${ckptStep}`);

  // budget: 384 images → 3 epochs of 4 steps × 32 images, the same for every cell
  const grid0 = json(join(out, 'grid.json'));
  assert.deepEqual((grid0.budget as Rec).epochs, 3);
  assert.deepEqual((grid0.budget as Rec).imagesPerEpoch, 128);
  const table = json(join(out, 'table.json'));
  const cells = table.cells as Rec[];
  assert.equal(cells.length, 4);
  const md = readFileSync(join(out, 'table.md'), 'utf8');
  for (const [i, c] of cells.entries()) {
    const dir = cell(i);
    assert.deepEqual(c.runs, [names[i]]);
    const e = json(join(dir, 'eval.json'));
    const m = records(dir);
    const epochs = m.filter((x) => x.kind === 'epoch');
    const steps = m.filter((x) => x.kind === 'step');
    // the table's numbers are the cell's own
    assert.equal((c.knnTop1 as Rec).mean, e.knnTop1);
    assert.equal((c.linearTop1 as Rec).mean, e.linearTop1);
    assert.equal((c.knnTop1 as Rec).std, null);
    assert.equal(c.finetuneTop1, null);
    assert.equal(c.epochs, epochs.length);
    assert.equal(c.imagesSeen, steps.length * 32);
    assert.equal(c.imagesSeen, e.imagesSeen);
    assert.equal(c.imagesPerSec, median(epochs.map((x) => x.imagesPerSec as number)));
    assert.ok(Math.abs((c.wallS as number) - epochs.reduce((s, x) => s + (x.wallS as number), 0)) < 1e-9);
    assert.equal(c.flopsPerImage, e.flopsPerImage);
    // every cell the same budget
    assert.equal(c.epochs, 3);
    assert.equal(c.imagesSeen, 384);
    assert.ok((e.knnTop1 as number) >= 0 && (e.knnTop1 as number) <= 100);
    assert.ok(
      md.includes(`| ${(e.knnTop1 as number).toFixed(2)} |`) || md.includes(` ${(e.knnTop1 as number).toFixed(2)} |`),
    );
  }
  // the paper-style table: n down, the methods across
  assert.match(md, /\| n \| M-MoCo Linear \| M-MoCo kNN \| M-BYOL Linear \| M-BYOL kNN \|/);
  assert.ok(existsSync(join(out, 'grid.html')));

  // once more: everything is done, nothing is trained
  const again = ablate(['--grid', grid, '--out', out]);
  assert.equal(again.status, 0, again.stderr);
  assert.equal((JSON.parse(again.stdout.trim().split('\n').pop()!) as Rec).trained, 0);
});

test('ablate under launch --nproc 2 with --seeds 2: the ranks share the cells, the table gives mean ± std', () => {
  const grid = gridFile('seeds', { axes: { numChunks: [1, 4] }, budget: { epochs: 2 } });
  const out = join(tmp, 'seeds');
  const r = spawnSync(
    process.execPath,
    [CLI, 'launch', '--nproc', '2', 'mmoco', 'ablate', '--grid', grid, '--out', out, '--seeds', '2'],
    { encoding: 'utf8', timeout: 240_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  // cells alternate between the ranks: rank 1 trains the second and fourth
  assert.match(r.stderr, /\[rank 1\] cell numChunks-1_seed-1: pre-training 2 epochs/);
  assert.match(r.stderr, /\[rank 0\] cell numChunks-4_seed-0: pre-training 2 epochs/);
  const table = json(join(out, 'table.json'));
  for (const c of table.cells as Rec[]) {
    const evals = (c.runs as string[]).map((n) => json(join(out, 'cells', n, 'eval.json')));
    assert.deepEqual(c.seeds, [0, 1]);
    assert.deepEqual(
      evals.map((e) => e.seed),
      [0, 1],
    );
    const v = evals.map((e) => e.knnTop1 as number);
    const mean = (v[0]! + v[1]!) / 2;
    const k = c.knnTop1 as Rec;
    assert.deepEqual(k.values, v);
    assert.ok(Math.abs((k.mean as number) - mean) < 1e-12);
    assert.ok(Math.abs((k.std as number) - Math.abs(v[0]! - v[1]!) / Math.SQRT2) < 1e-9);
    assert.equal(c.epochs, 2);
    assert.equal(c.imagesSeen, 2 * 4 * 32);
  }
  assert.match(readFileSync(join(out, 'table.md'), 'utf8'), /Seeds: 2 \(mean ± sample std\)/);
});

test('a minutes budget is timed once and kept by the rerun; --finetune later adds fine-tuning to done cells', () => {
  // the probe's default batch (256) is larger than the 200-image bank: it trains on all of it
  const grid = gridFile('minutes', {
    axes: { numChunks: [2] },
    budget: { minutes: 0.01 },
    probe: { epochs: 10 },
    finetune: {
      epochs: 1,
      warmupEpochs: 0,
      batchSize: 32,
      maxStepsPerEpoch: 2,
      randAugment: null,
      mixup: 0,
      cutmix: 0,
    },
  });
  const out = join(tmp, 'minutes');
  const r = ablate(['--grid', grid, '--out', out]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /timing 4 steps of numChunks-2/);
  const b = json(join(out, 'grid.json')).budget as Rec;
  const perEpoch = (b.secondsPerEpoch as Record<string, number>)['numChunks-2']!;
  assert.ok(perEpoch > 0);
  assert.equal(b.epochs, Math.max(1, Math.floor(0.6 / perEpoch)));
  const e = json(join(out, 'cells', 'numChunks-2_seed-0', 'eval.json'));
  assert.equal(e.epochs, b.epochs);
  assert.ok(!existsSync(join(out, 'calibration')), 'the timing runs are removed');
  const again = ablate(['--grid', grid, '--out', out]);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /timing/);
  assert.deepEqual(json(join(out, 'grid.json')).budget, b);

  // --finetune on the finished grid: the cell is fine-tuned, not pre-trained or probed again
  const dir = join(out, 'cells', 'numChunks-2_seed-0');
  const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8');
  const ft = ablate(['--grid', grid, '--out', out, '--finetune']);
  assert.equal(ft.status, 0, ft.stderr);
  assert.doesNotMatch(ft.stderr, /pre-training|kNN and linear probe/);
  assert.match(ft.stderr, /cell numChunks-2_seed-0: fine-tuning 1 epochs/);
  assert.equal(readFileSync(join(dir, 'metrics.jsonl'), 'utf8'), metrics);
  const e2 = json(join(dir, 'eval.json'));
  assert.equal(e2.knnTop1, e.knnTop1);
  assert.equal(e2.linearTop1, e.linearTop1);
  const ftEval = records(join(dir, 'finetune')).filter((x) => x.kind === 'eval');
  assert.equal(ftEval.length, 1);
  assert.equal((e2.finetune as Rec).top1, ftEval[0]!.top1);
  const row = (json(join(out, 'table.json')).cells as Rec[])[0]!;
  assert.equal((row.finetuneTop1 as Rec).mean, ftEval[0]!.top1);
  assert.match(readFileSync(join(out, 'table.md'), 'utf8'), /\| n \| Fine-tune \| Linear \| kNN \|/);

  // other fine-tuning settings later: the old fine-tuning is named, not overwritten
  const g = JSON.parse(readFileSync(grid, 'utf8')) as Rec;
  writeFileSync(grid, JSON.stringify({ ...g, finetune: { ...(g.finetune as Rec), blr: 1e-3 } }));
  const other = ablate(['--grid', grid, '--out', out, '--finetune']);
  assert.equal(other.status, 2);
  assert.ok(
    other.stderr.includes(`${join(dir, 'finetune')}: holds a fine-tuning with other settings (blr)`),
    other.stderr,
  );
});

test('ablate: bad usage and bad grids exit 2 with a message naming the problem', () => {
  const none = ablate([]);
  assert.equal(none.status, 2);
  assert.match(none.stderr, /--grid is required/);
  const empty = gridFile('empty', { axes: { numChunks: [] }, budget: { epochs: 1 } });
  const r = ablate(['--grid', empty, '--out', join(tmp, 'x')]);
  assert.equal(r.status, 2);
  assert.ok(r.stderr.includes(empty), r.stderr);
  assert.match(r.stderr, /axes\.numChunks is empty/);
  const unknown = gridFile('unknown', { axes: { numChunks: [1] }, budget: { epochs: 1 }, lr: 1 });
  const u = ablate(['--grid', unknown]);
  assert.equal(u.status, 2);
  assert.match(u.stderr, /unknown key 'lr'/);
  assert.equal(ablate(['--grid', empty, '--bogus']).status, 2);
  assert.equal(ablate(['--grid', empty, '--seeds', '0']).status, 2);
  const help = ablate(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /table1-small/);
});
