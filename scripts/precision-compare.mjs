#!/usr/bin/env node
// bf16 against fp32 on the small CIFAR recipe: the same run (configs/cifar10-vit-tiny.json, same
// seed: same data order, augmentations and masks) for 200 steps (4 epochs of 50 steps, a full
// schedule) once with --precision bf16 and once with fp32; prints both runs' speed and the mean
// loss of their last 20 steps, and the relative difference.
//
//   node scripts/precision-compare.mjs <cifar10 folder> [--steps 200] [--out runs/precision] [--set k=v ...]
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist/src/cli/main.js');
const args = process.argv.slice(2);
const data = args[0];
if (!data || data.startsWith('--')) {
  console.error('usage: node scripts/precision-compare.mjs <cifar10 folder> [--steps 200] [--out dir] [--set k=v ...]');
  process.exit(2);
}
const opt = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const steps = Number(opt('--steps', '200'));
const out = opt('--out', 'runs/precision');
const sets = args.flatMap((a, i) => (a === '--set' ? ['--set', args[i + 1]] : []));
const epochs = 4;
const perEpoch = Math.ceil(steps / epochs);

const result = {};
for (const precision of ['bf16', 'fp32']) {
  const dir = join(out, precision);
  const t0 = Date.now();
  const r = spawnSync(
    process.execPath,
    [cli, 'pretrain', '--config', 'cifar10-vit-tiny', '--data', data, ...sets,
      '--set', `precision=${precision}`, '--set', `epochs=${epochs}`, '--set', 'warmupEpochs=0.5',
      '--set', `maxStepsPerEpoch=${perEpoch}`, '--set', 'knnEvery=0', '--out', dir], // prettier-ignore
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  if (r.status !== 0) throw new Error(`${precision} run failed (${r.status})`);
  const rec = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l))
    .filter((x) => x.kind === 'step');
  const last = rec.slice(-20).map((x) => x.loss);
  const speeds = rec
    .slice(2)
    .map((x) => x.imagesPerSec)
    .sort((a, b) => a - b);
  result[precision] = {
    steps: rec.length,
    lastLossMean: last.reduce((s, x) => s + x, 0) / last.length,
    firstLoss: rec[0].loss,
    medianImagesPerSec: speeds[speeds.length >> 1],
    wallS: Math.round((Date.now() - t0) / 1000),
  };
}
const diff = Math.abs(result.bf16.lastLossMean - result.fp32.lastLossMean) / result.fp32.lastLossMean;
console.log(JSON.stringify({ ...result, relativeLossDifference: diff, within2pct: diff <= 0.02 }));
