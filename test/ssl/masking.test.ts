// Masking (§3.2, Figure 2) and the spherical mean of Eq. 4.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { chunkMask, sphericalMean, type RemainderInfo } from '../../src/ssl/index.js';

function rows(t: torch.Tensor): number[][] {
  return t.toArray() as number[][];
}

test('chunks of an image are disjoint and cover all N positions when n divides N', () => {
  const before = torch.liveTensors();
  torch.manualSeed(1);
  const B = 3;
  const N = 16;
  const n = 4;
  const m = chunkMask(B, N, n);
  assert.equal(m.keep.dtype, 'int64');
  assert.deepEqual(m.keep.shape, [B * n, N / n]);
  assert.equal(m.rowsPerImage, n);
  assert.equal(m.chunkLen, 4);
  assert.equal(m.dropped, 0);
  const r = rows(m.keep);
  for (let b = 0; b < B; b++) {
    // rows b·n … b·n+n−1 belong to image b: together a permutation of 0…N−1
    const seen = r.slice(b * n, (b + 1) * n).flat();
    assert.deepEqual(
      [...seen].sort((x, y) => x - y),
      [...Array(N).keys()],
    );
  }
  // the images are shuffled independently (with overwhelming probability)
  assert.notDeepEqual(r.slice(0, n), r.slice(n, 2 * n));
  m.keep.dispose();
  assert.equal(torch.liveTensors(), before);
});

test('a remainder is dropped, each position used at most once, and reported', () => {
  const before = torch.liveTensors();
  const reports: RemainderInfo[] = [];
  const m = chunkMask(2, 14, 4, { onRemainder: (i) => reports.push(i) });
  assert.deepEqual(m.keep.shape, [8, 3]);
  assert.equal(m.dropped, 2);
  assert.deepEqual(reports, [{ numPatches: 14, numChunks: 4, chunkLen: 3, dropped: 2 }]);
  const r = rows(m.keep);
  for (let b = 0; b < 2; b++) {
    const used = r.slice(b * 4, b * 4 + 4).flat();
    assert.equal(new Set(used).size, used.length);
    assert.ok(used.every((p) => p >= 0 && p < 14));
  }
  m.keep.dispose();
  assert.equal(torch.liveTensors(), before);
});

test('without a callback the remainder warns once per (N, n)', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error): void => {
    if (w.name === 'MaskingWarning') warnings.push(w.message);
  };
  process.on('warning', onWarning);
  for (let i = 0; i < 3; i++) chunkMask(1, 10, 3).keep.dispose();
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', onWarning);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /1 random position/);
});

test('n = 1 keeps every position, in identity order unless asked to shuffle', () => {
  const m = chunkMask(2, 9, 1);
  assert.deepEqual(rows(m.keep), [
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  ]);
  const s = chunkMask(2, 9, 1, { shuffleWhenSingle: true });
  for (const row of rows(s.keep))
    assert.deepEqual(
      [...row].sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
  torch.dispose([m.keep, s.keep]);
});

test('rows are image-major and the draw is rand(B, N).argsort(1), reproducible by seed', () => {
  torch.manualSeed(7);
  const a = chunkMask(2, 12, 3);
  torch.manualSeed(7);
  const perm = torch.rand([2, 12]).argsort(1);
  torch.manualSeed(7);
  const b = chunkMask(2, 12, 3);
  assert.ok(torch.equal(a.keep, b.keep));
  // row b·n + j = perm[b, j·L:(j+1)·L]
  const p = perm.toArray() as number[][];
  const r = rows(a.keep);
  for (let img = 0; img < 2; img++)
    for (let j = 0; j < 3; j++) assert.deepEqual(r[img * 3 + j], p[img]!.slice(j * 4, j * 4 + 4));
  torch.dispose([a.keep, b.keep, perm]);
});

test('bad arguments are rejected', () => {
  assert.throws(() => chunkMask(2, 4, 5), RangeError);
  assert.throws(() => chunkMask(2, 4, 0), RangeError);
  assert.throws(() => chunkMask(0, 4, 2), RangeError);
});

test('sphericalMean matches a hand computation', () => {
  const before = torch.liveTensors();
  // image 0: (3,4)/5 and (1,0) → sum (1.6, 0.8) → (2, 1)/√5; image 1: (0,2), (2,0) → (1,1)/√2
  const keys = torch.tensor([
    [3, 4],
    [1, 0],
    [0, 2],
    [2, 0],
  ]);
  const k = sphericalMean(keys, 2);
  const got = k.toArray() as number[][];
  const want = [
    [2 / Math.sqrt(5), 1 / Math.sqrt(5)],
    [Math.SQRT1_2, Math.SQRT1_2],
  ];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 2; j++) assert.ok(Math.abs(got[i]![j]! - want[i]![j]!) < 1e-6);
  // raw sum when asked: (4,4) → (1,1)/√2
  const raw = sphericalMean(keys, 2, { normalizeFirst: false });
  const g2 = raw.toArray() as number[][];
  assert.ok(Math.abs(g2[0]![0]! - Math.SQRT1_2) < 1e-6);
  // m = 1 is normalize
  const one = sphericalMean(keys, 1);
  assert.ok(Math.abs((one.toArray() as number[][])[0]![1]! - 0.8) < 1e-6);
  assert.throws(() => sphericalMean(keys, 3), RangeError);
  torch.dispose([keys, k, raw, one]);
  assert.equal(torch.liveTensors(), before);
});
