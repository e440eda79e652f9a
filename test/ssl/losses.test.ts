// Losses (Eqs. 1–4) against explicit formulas and against PyTorch 1.13 (test/fixtures/ssl.json,
// written by test/fixtures/make_ssl_fixtures.py, MoCo v3's contrastive_loss).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import {
  byolLoss,
  infoNCE,
  sphericalMean,
  symmetricByolLoss,
  symmetricInfoNCE,
  DEFAULT_TEMPERATURE,
} from '../../src/ssl/index.js';

interface Case {
  B: number;
  n: number;
  m: number;
  D: number;
  temperature: number;
  q1: number[];
  q2: number[];
  keys1: number[];
  keys2: number[];
  k1: number[];
  k2: number[];
  infoNCE12: number;
  moco: number;
  mocoGradQ1: number[];
  mocoGradQ2: number[];
  byol12: number;
  byol: number;
  byolGradQ1: number[];
  byolGradQ2: number[];
}

function findFixture(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'test/fixtures/ssl.json');
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('test/fixtures/ssl.json not found');
    dir = parent;
  }
}
const fx = JSON.parse(readFileSync(findFixture(), 'utf8')) as { cases: Case[] };

const t2 = (a: number[], r: number, c: number, requiresGrad = false): torch.Tensor =>
  torch.tensor(a, { dtype: 'float64', shape: [r, c], requiresGrad });

function close(got: number[], want: number[], tol: number, what: string): void {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < got.length; i++) {
    assert.ok(Math.abs(got[i]! - want[i]!) <= tol * (1 + Math.abs(want[i]!)), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

const unit = (v: number[]): number[] => {
  const s = Math.hypot(...v);
  return v.map((x) => x / s);
};
const dot = (a: number[], b: number[]): number => a.reduce((s, x, i) => s + x * b[i]!, 0);

test('infoNCE equals the explicit formula, n = 1 and n = 2', () => {
  const before = torch.liveTensors();
  const tau = DEFAULT_TEMPERATURE;
  assert.equal(tau, 0.2);
  const Q = [
    [1, 0, 0],
    [0.5, 0.5, 0],
    [0, 1, 1],
    [0.2, -1, 0.3],
  ];
  const K = [
    [1, 1, 0],
    [0, 0.5, 2],
  ];
  for (const n of [1, 2]) {
    const rowsQ = n === 1 ? Q.slice(0, 2) : Q;
    // -(1/rows) Σ_r log softmax(q̂_r·k̂ᵀ/τ)[⌊r/n⌋] · 2τ
    let s = 0;
    for (let r = 0; r < rowsQ.length; r++) {
      const logits = K.map((k) => dot(unit(rowsQ[r]!), unit(k)) / tau);
      const lse = Math.log(logits.reduce((a, l) => a + Math.exp(l), 0));
      s += lse - logits[Math.floor(r / n)]!;
    }
    const want = (s / rowsQ.length) * 2 * tau;
    const q = torch.tensor(rowsQ, { dtype: 'float64' });
    const k = torch.tensor(K, { dtype: 'float64' });
    const got = torch.tidy(() => infoNCE(q, k).item() as number);
    assert.ok(Math.abs(got - want) < 1e-12, `n=${n}: ${got} vs ${want}`);
    torch.dispose([q, k]);
  }
  assert.equal(torch.liveTensors(), before);
});

test('byolLoss equals mean of 2 − 2 cos over query rows', () => {
  const q = torch.tensor(
    [
      [1, 0],
      [0, 1],
      [1, 1],
      [-1, 0],
    ],
    { dtype: 'float64' },
  );
  const k = torch.tensor(
    [
      [1, 0],
      [0, 3],
    ],
    { dtype: 'float64' },
  );
  // n = 2: rows 0,1 ↔ key (1,0): cos 1, 0; rows 2,3 ↔ key (0,1): cos 1/√2, 0
  const want = (0 + 2 + (2 - Math.SQRT2) + 2) / 4;
  const got = torch.tidy(() => byolLoss(q, k).item() as number);
  assert.ok(Math.abs(got - want) < 1e-12);
  const sym = torch.tidy(() => symmetricByolLoss(q, q, k, k).item() as number);
  assert.ok(Math.abs(sym - 2 * want) < 1e-12);
  torch.dispose([q, k]);
});

for (const c of fx.cases) {
  test(`M-MoCo and M-BYOL match PyTorch: B=${c.B} n=${c.n} m=${c.m} τ=${c.temperature}`, () => {
    const before = torch.liveTensors();
    torch.tidy(() => {
      const keys1 = t2(c.keys1, c.B * c.m, c.D);
      const keys2 = t2(c.keys2, c.B * c.m, c.D);
      const k1 = sphericalMean(keys1, c.m);
      const k2 = sphericalMean(keys2, c.m);
      close(k1.flatten().toArray() as number[], c.k1, 1e-12, 'k1');
      close(k2.flatten().toArray() as number[], c.k2, 1e-12, 'k2');

      const rows = c.B * c.n;
      const q1 = t2(c.q1, rows, c.D, true);
      const q2 = t2(c.q2, rows, c.D, true);
      close([infoNCE(q1, k2, c.temperature).item() as number], [c.infoNCE12], 1e-12, 'infoNCE(q1,k2)');
      // keys need grad here to check that none flows into them
      const k1g = k1.detach().requiresGrad_(true);
      const k2g = k2.detach().requiresGrad_(true);
      const moco = symmetricInfoNCE(q1, q2, k1g, k2g, c.temperature);
      close([moco.item() as number], [c.moco], 1e-12, 'moco');
      moco.backward();
      close(q1.grad!.flatten().toArray() as number[], c.mocoGradQ1, 1e-10, 'dmoco/dq1');
      close(q2.grad!.flatten().toArray() as number[], c.mocoGradQ2, 1e-10, 'dmoco/dq2');
      assert.equal(k1g.grad, null);
      assert.equal(k2g.grad, null);

      const p1 = t2(c.q1, rows, c.D, true);
      const p2 = t2(c.q2, rows, c.D, true);
      close([byolLoss(p1, k2).item() as number], [c.byol12], 1e-12, 'byol(q1,k2)');
      const byol = symmetricByolLoss(p1, p2, k1, k2);
      close([byol.item() as number], [c.byol], 1e-12, 'byol');
      byol.backward();
      close(p1.grad!.flatten().toArray() as number[], c.byolGradQ1, 1e-10, 'dbyol/dq1');
      close(p2.grad!.flatten().toArray() as number[], c.byolGradQ2, 1e-10, 'dbyol/dq2');
      torch.dispose([q1.grad, q2.grad, p1.grad, p2.grad]);
    });
    assert.equal(torch.liveTensors(), before);
  });
}

test('shape mismatches are rejected', () => {
  const q = torch.zeros(5, 3);
  const k = torch.zeros(2, 3);
  assert.throws(() => infoNCE(q, k), RangeError);
  assert.throws(() => byolLoss(q, torch.zeros(5, 4)), RangeError);
  torch.dispose([q, k]);
});
