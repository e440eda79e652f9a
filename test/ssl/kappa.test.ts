// κ monitor (§3.4): Banerjee et al.'s vMF concentration against closed-form cases.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { vmfKappa } from '../../src/ssl/index.js';

test('two orthogonal unit vectors in p dims: R̄ = 1/√2, κ = (1/√2)(p − 1/2)/(1/2)', () => {
  const before = torch.liveTensors();
  const p = 8;
  // image 0: e0, 3·e1 (normalised inside); image 1: e2, −e5
  const z = torch.zeros(4, p);
  const idx: [number, number, number][] = [
    [0, 0, 1],
    [1, 1, 3],
    [2, 2, 1],
    [3, 5, -1],
  ];
  const rows = z.toArray() as number[][];
  for (const [r, c, v] of idx) rows[r]![c] = v;
  const x = torch.tensor(rows);
  const r = vmfKappa(x, 2, { perImage: true });
  const want = (Math.SQRT1_2 * (p - 0.5)) / 0.5;
  assert.ok(Math.abs(r.meanResultantLength - Math.SQRT1_2) < 1e-12);
  assert.ok(Math.abs(r.kappa - want) < 1e-9, `${r.kappa} vs ${want}`);
  assert.deepEqual(r.perImage!.shape, [2]);
  assert.equal(r.perImage!.dtype, 'float64');
  torch.dispose([z, x, r.perImage]);
  assert.equal(torch.liveTensors(), before);
});

test('mixed batch: κ is the mean of the per-image estimates', () => {
  // image 0: three vectors at 120° in a plane → R̄ = 0 → κ = 0; image 1: orthogonal pair (p = 3)
  const s = Math.sqrt(3) / 2;
  const x = torch.tensor([
    [1, 0, 0],
    [-0.5, s, 0],
    [-0.5, -s, 0],
    [0, 0, 1],
    [0, 1, 0],
    [0, 1, 0],
  ]);
  const r = vmfKappa(x, 3, { perImage: true });
  const per = r.perImage!.toArray() as number[];
  assert.ok(Math.abs(per[0]!) < 1e-6);
  // image 1: mean (0, 2/3, 1/3) → R̄² = 5/9
  const R = Math.sqrt(5) / 3;
  const k1 = (R * (3 - 5 / 9)) / (1 - 5 / 9);
  assert.ok(Math.abs(per[1]! - k1) < 1e-6);
  assert.ok(Math.abs(r.kappa - (per[0]! + per[1]!) / 2) < 1e-12);
  torch.dispose([x, r.perImage]);
});

test('identical samples (R̄ = 1) give κ = Infinity; n = 1 throws', () => {
  const before = torch.liveTensors();
  const x = torch.tensor([
    [0.3, 0.4, 1.2],
    [0.6, 0.8, 2.4],
    [1, 0, 0],
    [0, 1, 0],
  ]);
  const r = vmfKappa(x, 2, { perImage: true });
  const per = r.perImage!.toArray() as number[];
  assert.equal(per[0], Number.POSITIVE_INFINITY);
  assert.ok(Number.isFinite(per[1]!));
  assert.equal(r.kappa, Number.POSITIVE_INFINITY);
  assert.throws(() => vmfKappa(x, 1), /at least 2 samples/);
  assert.throws(() => vmfKappa(x, 3), RangeError);
  torch.dispose([x, r.perImage]);
  assert.equal(torch.liveTensors(), before);
});

test('no gradient is recorded and the input may require grad', () => {
  const x = torch.randn([6, 4], { requiresGrad: true });
  const r = vmfKappa(x, 3);
  assert.ok(Number.isFinite(r.kappa) && r.kappa >= 0);
  assert.equal(r.perImage, undefined);
  x.dispose();
});
