// `mmoco flops` as a user runs it (a child process of the built CLI): the paper's ViT-S/16
// count, the preset sizes from the one table in src/models/sizes.ts, and --depth / --embed-dim /
// --num-heads overriding them. The command and the config schema load no native code.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatMacs, trainStepMacs, vitForwardMacs } from '../../src/ssl/flops.js';
import { VIT_SIZES } from '../../src/models/sizes.js';

const DIST = join(dirname(fileURLToPath(import.meta.url)), '../../src');
const CLI = join(DIST, 'cli/main.js');

function mmoco(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const BASE = ['flops', '--img-size', '224', '--patch-size', '16', '--num-chunks', '8'];

/** The MACs of the "n = 1" forward line. */
function forwardLine(stdout: string): string {
  const line = stdout.split('\n').find((l) => l.startsWith('backbone forward per image, n = 1:'));
  assert.ok(line, stdout);
  return line;
}

test('flops: the issue example prints the ViT-S/16 count and the Figure 3(a) table', () => {
  const r = mmoco([...BASE, '--model', 'vit_small', '--target-chunks', '1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /backbone forward per image, n = 1: +4\.60 GMACs \(9\.20 GFLOPs\)/);
  assert.match(r.stdout, /n = 8 +\(25-26 tokens\/chunk\)/); // 196 = 4·25 + 4·24 patches, + CLS
  assert.match(r.stdout, /^10 +20\.6 /m);
  // the step: MoCo v3's 3-layer projector and 2-layer predictor, 4096 hidden, 256 out
  const vit = { imgSize: 224, patchSize: 16, dim: 384, depth: 12, heads: 6, classAttnBlocks: 0 };
  const step = trainStepMacs({
    vit,
    numChunks: 8,
    targetChunks: 1,
    projector: { layers: 3, hidden: 4096, out: 256 },
    predictor: { layers: 2, hidden: 4096, out: 256 },
  });
  assert.match(r.stdout, new RegExp(`^  total ${formatMacs(step.total).replace(/[().]/g, '\\$&')} `, 'm'));
});

test('flops: --depth 6 --embed-dim 256 changes the count (heads from the preset)', () => {
  const plain = mmoco([...BASE, '--model', 'vit_small']);
  const r = mmoco([...BASE, '--model', 'vit_small', '--depth', '6', '--embed-dim', '256']);
  assert.equal(r.status, 0, r.stderr);
  const want = vitForwardMacs({ imgSize: 224, patchSize: 16, dim: 256, depth: 6, heads: 6 }, 1);
  assert.ok(forwardLine(r.stdout).endsWith(formatMacs(want.total)), forwardLine(r.stdout));
  assert.notEqual(forwardLine(r.stdout), forwardLine(plain.stdout));
  assert.match(r.stdout, /dim 256, depth 6/);
  // each override alone changes it too
  const d = mmoco([...BASE, '--model', 'vit_small', '--depth', '6']);
  assert.match(d.stdout, /dim 384, depth 6/);
  const w = mmoco([...BASE, '--model', 'vit_small', '--embed-dim', '256']);
  assert.match(w.stdout, /dim 256, depth 12/);
  assert.notEqual(forwardLine(d.stdout), forwardLine(w.stdout));
});

test('flops: --num-heads with --depth and --embed-dim: the count of that width and depth', () => {
  const r = mmoco([...BASE, '--model', 'vit_small', '--depth', '6', '--embed-dim', '256', '--num-heads', '4']);
  assert.equal(r.status, 0, r.stderr);
  const want = vitForwardMacs({ imgSize: 224, patchSize: 16, dim: 256, depth: 6, heads: 4 }, 1);
  assert.ok(forwardLine(r.stdout).endsWith(formatMacs(want.total)));
  assert.ok(!forwardLine(r.stdout).includes('4.60 GMACs'), 'not the ViT-S/16 count');
});

test('flops: every preset takes its width and depth from the table', () => {
  for (const [model, s] of Object.entries(VIT_SIZES)) {
    const r = mmoco([...BASE, '--model', model]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`dim ${s.embedDim}, depth ${s.depth}`), model);
    const want = vitForwardMacs({ imgSize: 224, patchSize: 16, dim: s.embedDim, depth: s.depth, heads: s.numHeads });
    assert.ok(forwardLine(r.stdout).endsWith(formatMacs(want.total)), model);
  }
  const bad = mmoco([...BASE, '--model', 'vit_huge']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /'model'.*'vit_tiny', 'vit_small', 'vit_base'/);
});

test('the config schema and the flops command load no native code', () => {
  // process.dlopen loads every .node addon (libtorch's binding, sharp)
  const urls = [join(DIST, 'train/config.js'), join(DIST, 'cli/commands/flops.js')].map((p) => pathToFileURL(p).href);
  const script = `
    let n = 0; const open = process.dlopen;
    process.dlopen = (...a) => { n++; return open.apply(process, a); };
    for (const u of ${JSON.stringify(urls)}) await import(u);
    console.log('dlopen ' + n);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'dlopen 0');
});
