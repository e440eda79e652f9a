#!/usr/bin/env node
// The first runs that learn (issue: "On the GPU"): CIFAR-10, ViT-Tiny/4 at 32 px, the GPU recipe
// (configs/cifar10-vit-tiny-gpu.json) with n = 1 (MoCo v3) and n = 8 (M-MoCo), the same epochs
// and seed, kNN top-1 on the whole test set against the same ViT at initialisation, the κ
// curves in the runs' metrics and reports.
//
//   node scripts/first-runs.mjs <data: folder or .mmpack> --out DIR [--minutes M] [--device cuda]
//        [--toy] [--set key=value ...]
//
// Both configurations are probed first (20 steps, no kNN) and the epochs are chosen so that the
// slower one fits in M minutes (default 3) with its kNN evaluations; both then run those epochs.
// --toy: a 2-block ViT at 16 px on a few hundred images, for a check that the path runs (CI).
// Writes DIR/first-runs.jsonl (one line per run, the bench format with extra fields) and the
// reports of both runs (DIR/n1, DIR/n8: metrics.jsonl, report.html, report/*.png). Prints the lines.
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist/src/cli/main.js');
const args = process.argv.slice(2);
const opt = (name, def) => (args.includes(name) ? args[args.indexOf(name) + 1] : def);
const valued = new Set(['--out', '--minutes', '--device', '--set']);
const data = args.find((a, i) => !a.startsWith('--') && !valued.has(args[i - 1]));
const out = opt('--out');
if (!data || !out) {
  console.error(
    'usage: node scripts/first-runs.mjs <data folder | .mmpack> --out DIR [--minutes 3] [--device cuda] [--toy] [--set k=v ...]',
  );
  process.exit(2);
}
const minutes = Number(opt('--minutes', '3'));
const device = opt('--device', 'cpu');
const toy = args.includes('--toy');
const sets = args.flatMap((a, i) => (a === '--set' ? ['--set', args[i + 1]] : []));
const TOY = ['--depth', '2', '--embed-dim', '32', '--num-heads', '2', '--img-size', '16', '--patch-size', '4',
  '--batch-size', '32', '--proj-hidden-dim', '64', '--pred-hidden-dim', '64', '--proj-out-dim', '32',
  '--warmup-epochs', '0', '--knn-every', '1']; // prettier-ignore
const arch = toy ? [...TOY, ...(device === 'cpu' ? ['--precision', 'fp32'] : [])] : [];
const base = ['--config', 'cifar10-vit-tiny-gpu', '--data', data, '--device', device, ...arch, ...sets];

function mmoco(argv) {
  const r = spawnSync(process.execPath, [cli, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`mmoco ${argv.join(' ')} failed (${r.status ?? r.signal})`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

function records(dir) {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : NaN;
};

mkdirSync(out, { recursive: true });
const results = join(out, 'first-runs.jsonl');
rmSync(results, { force: true });
const ns = [1, 8];

// probe: 20 steps of each (the first steps include start-up), no kNN
const probe = {};
for (const n of ns) {
  const dir = join(out, `probe-n${n}`);
  rmSync(dir, { recursive: true, force: true });
  const t0 = Date.now();
  mmoco(['pretrain', ...base, '--num-chunks', String(n), '--epochs', '1', '--warmup-epochs', '0',
    '--max-steps-per-epoch', '20', '--knn-every', '0', '--log-every', '1', '--out', dir]); // prettier-ignore
  const wallS = (Date.now() - t0) / 1000;
  const steps = records(dir).filter((r) => r.kind === 'step' && r.step >= 3);
  const start = records(dir).find((r) => r.kind === 'start');
  const { batchSize } = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const imagesPerSec = median(steps.map((r) => r.imagesPerSec));
  // what a run costs besides its steps: start-up, the device cache, building the model
  probe[n] = { imagesPerSec, startupS: Math.max(0, wallS - (20 * batchSize) / imagesPerSec), start };
  rmSync(dir, { recursive: true, force: true });
}

// the training set's size and the kNN cost from the config the probe resolved
const trainImages = Math.min(...ns.map((n) => probe[n].start?.trainImages ?? NaN));
const slowest = Math.min(...ns.map((n) => probe[n].imagesPerSec));
// each run: start-up (the probe's wall time less its steps) + epochs of training + a kNN pass
// (all training and test images through the backbone, about a third of a training epoch's work)
// every `knnEvery` epochs
const startupS = Math.max(...ns.map((n) => probe[n].startupS));
const epochS = trainImages / slowest;
const knnEvery = toy ? 1 : 2;
const perRunS = (minutes * 60) / ns.length;
const epochs = Math.max(1, Math.min(400, Math.floor((perRunS - startupS) / (epochS * (1 + 0.35 / knnEvery)))));
const warm = toy ? 0 : Math.min(2, Math.max(0, Math.floor(epochs / 10)));

for (const n of ns) {
  const dir = join(out, `n${n}`);
  rmSync(dir, { recursive: true, force: true });
  const t0 = Date.now();
  const r = mmoco(['pretrain', ...base, '--num-chunks', String(n), '--epochs', String(epochs),
    '--warmup-epochs', String(warm), '--knn-every', String(knnEvery), '--out', dir]); // prettier-ignore
  const wallS = (Date.now() - t0) / 1000;
  const init = mmoco(['knn', '--data', data, '--device', device, '--model', 'vit_tiny', '--img-size', toy ? '16' : '32',
    '--patch-size', '4', ...(toy ? ['--depth', '2', '--embed-dim', '32', '--num-heads', '2'] : [])]); // prettier-ignore
  const report = mmoco(['report', dir]);
  const recs = records(dir);
  const epochRecs = recs.filter((x) => x.kind === 'epoch');
  const stepRecs = recs.filter((x) => x.kind === 'step');
  const last = (k) => [...stepRecs].reverse().find((x) => Number.isFinite(x[k]))?.[k] ?? null;
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const row = {
    bench: 'first-runs',
    case: `${device} ${toy ? 'toy ViT (2 blocks, 32-d)/4 16px' : 'ViT-Tiny/4 32px'} on ${basename(data)} n=${n} ${epochs} epochs`,
    ours: r.knnTop1,
    torch: null,
    unit: 'kNN top-1 %',
    better: 'higher',
    n,
    epochs,
    precision: cfg.precision,
    trainImages,
    knnTop1: r.knnTop1,
    knnTop1Init: init.top1,
    wallS: Math.round(wallS),
    imagesPerSec: Math.round(r.imagesPerSec),
    probeImagesPerSec: Math.round(probe[n].imagesPerSec),
    perEpoch: epochRecs.map((e) => ({ epoch: e.epoch, loss: e.loss, knnTop1: e.knnTop1 ?? null, wallS: e.wallS })),
    kappaRep: last('kappaRep'),
    kappaProj: last('kappaProj'),
    kappaPred: last('kappaPred'),
    pngs: report.pngs,
  };
  appendFileSync(results, JSON.stringify(row) + '\n');
  console.log(JSON.stringify(row));
}
