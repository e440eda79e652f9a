// The tensor-library example (examples/mlp.ts, an MLP written with mmoco/torch alone) trains for
// real, called as a function and run as a script the way its header says.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runMlp } from '../../examples/mlp.js';
import { readFashionMnist } from '../../src/data/idx.js';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '../../examples/mlp.js');

test('the MLP learns (Fashion-MNIST when installed, else two spirals)', () => {
  const lines: string[] = [];
  const r = runMlp({ steps: 300, log: (l) => lines.push(l) });
  const real = readFashionMnist('test') !== null;
  assert.match(lines[0]!, real ? /Fashion-MNIST/ : /two spirals/);
  assert.ok(r.lastLoss < r.firstLoss * 0.5, `loss ${r.firstLoss} -> ${r.lastLoss}`);
  // Fashion-MNIST: a linear model reaches ~84 %, this MLP ~82 % after 300 steps of 128.
  assert.ok(r.accuracy > (real ? 0.78 : 0.75), `accuracy ${r.accuracy}`);
});

test('the MLP solves the generated two spirals', () => {
  const r = runMlp({ data: 'spirals', steps: 600, log: () => {} });
  assert.ok(r.lastLoss < r.firstLoss * 0.3, `loss ${r.firstLoss} -> ${r.lastLoss}`);
  // a linear classifier gets ~60 % here
  assert.ok(r.accuracy > 0.85, `accuracy ${r.accuracy}`);
});

test('run as a script: prints the steps and the accuracy; bad options are errors naming them', () => {
  const run = (args: string[]): SpawnSyncReturns<string> =>
    spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8', timeout: 120_000 });
  const r = run(['--data', 'spirals', '--steps', '600']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^mmoco\/torch example: MLP 2-256-10 on two spirals \(generated\), 600 SGD steps of 128$/m);
  assert.match(r.stdout, /^step +600 +loss \d\.\d{4}$/m);
  const acc = /^test accuracy ([\d.]+) %/m.exec(r.stdout);
  assert.ok(acc && Number(acc[1]) > 85, r.stdout);
  const badData = run(['--data', 'cifar']);
  assert.equal(badData.status, 2);
  assert.match(badData.stderr, /--data must be 'auto' or 'spirals', got 'cifar'/);
  const badSteps = run(['--steps', '0']);
  assert.equal(badSteps.status, 2);
  assert.match(badSteps.stderr, /--steps must be a positive integer, got '0'/);
  const unknown = run(['--epochs', '3']);
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /--epochs/);
});
