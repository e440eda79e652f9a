#!/usr/bin/env node
// The measured CIFAR-10 runs of docs/runs.md: the small recipe (configs/cifar10-vit-tiny.json) with
// n = 1 and n = 8 under the same wall-clock budget. For each n a short probe measures the
// training speed, the run is then sized (3 epochs over a seeded subset) to fill the budget with
// a complete schedule, trained, and its kNN top-1 compared with the same ViT at initialisation.
//
//   node scripts/cifar-budget.mjs <cifar10 folder> [--minutes 30] [--out runs/cifar-budget] [--set k=v ...]
//
// Prints one JSON line per run: n, precision, probe images/s, training images, epochs, wall time,
// measured images/s, kNN top-1 after training and at init.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist/src/cli/main.js');
const args = process.argv.slice(2);
const data = args.find((a) => !a.startsWith('--') && !args[args.indexOf(a) - 1]?.startsWith('--'));
if (!data) {
  console.error('usage: node scripts/cifar-budget.mjs <cifar10 folder> [--minutes 30] [--out dir] [--set k=v ...]');
  process.exit(2);
}
const opt = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const minutes = Number(opt('--minutes', '30'));
const out = opt('--out', 'runs/cifar-budget');
const sets = args.flatMap((a, i) => (a === '--set' ? ['--set', args[i + 1]] : []));
const KNN = ['--set', 'knnTrainSamples=5000', '--set', 'knnValSamples=2000'];

function mmoco(argv) {
  const r = spawnSync(process.execPath, [cli, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`mmoco ${argv.join(' ')} failed (${r.status})`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

function stepSpeeds(dir) {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l))
    .filter((r) => r.kind === 'step' && r.step >= 2)
    .map((r) => r.imagesPerSec)
    .sort((a, b) => a - b);
}

const base = ['--config', 'cifar10-vit-tiny', '--data', data, ...sets];
for (const n of [8, 1]) {
  // probe: 10 steps, no kNN
  const probeDir = join(out, `probe-n${n}`);
  mmoco(['pretrain', ...base, '--set', `numChunks=${n}`, '--set', 'epochs=1', '--set', 'warmupEpochs=0',
    '--set', 'maxStepsPerEpoch=10', '--set', 'knnEvery=0', '--out', probeDir]); // prettier-ignore
  const s = stepSpeeds(probeDir);
  const probe = s[s.length >> 1];
  // 3 epochs; about 1 min per epoch of kNN monitoring (7,000 forward passes) comes off the budget
  const epochs = 3;
  const trainS = minutes * 60 - epochs * 60;
  const perEpoch = Math.max(128, Math.floor((probe * trainS) / epochs / 128) * 128);
  const dir = join(out, `n${n}`);
  const t0 = Date.now();
  const r = mmoco(['pretrain', ...base, ...KNN, '--set', `numChunks=${n}`, '--set', `epochs=${epochs}`,
    '--set', 'warmupEpochs=0.5', '--set', `trainSamples=${perEpoch}`, '--out', dir]); // prettier-ignore
  const wallS = (Date.now() - t0) / 1000;
  const init = mmoco(['knn', '--data', data, '--model', 'vit_tiny', '--img-size', '32', '--patch-size', '4',
    '--set', 'knnTrainSamples=5000', '--set', 'knnValSamples=2000']); // prettier-ignore
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  console.log(
    JSON.stringify({
      n,
      precision: cfg.precision,
      probeImagesPerSec: Math.round(probe * 10) / 10,
      trainImagesPerEpoch: perEpoch,
      epochs,
      wallS: Math.round(wallS),
      imagesPerSec: Math.round(r.imagesPerSec * 10) / 10,
      knnTop1: r.knnTop1,
      knnTop1Init: init.top1,
    }),
  );
}
