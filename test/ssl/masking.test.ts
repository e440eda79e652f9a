// Masking (§3.2, Figure 2: every patch in exactly one chunk) and the spherical mean of Eq. 4.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as torch from '../../src/torch/index.js';
import { chunkLengths, chunkMask, chunksOfPermutation, disposeChunkMask, sphericalMean } from '../../src/ssl/index.js';

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
  assert.equal(m.groups.length, 1);
  const g = m.groups[0]!;
  assert.equal(g.keep.dtype, 'int64');
  assert.deepEqual(g.keep.shape, [B * n, N / n]);
  assert.deepEqual([g.first, g.count, g.length], [0, 4, 4]);
  assert.equal(m.rowsPerImage, n);
  assert.deepEqual(m.lengths, [4, 4, 4, 4]);
  const r = rows(g.keep);
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
  disposeChunkMask(m);
  assert.equal(torch.liveTensors(), before);
});

test('chunkLengths: r = N mod n chunks of ⌈N/n⌉ first, then ⌊N/n⌋; sizes differ by at most one', () => {
  assert.deepEqual(chunkLengths(14, 4), [4, 4, 3, 3]);
  assert.deepEqual(chunkLengths(16, 3), [6, 5, 5]);
  assert.deepEqual(chunkLengths(196, 8), [25, 25, 25, 25, 24, 24, 24, 24]);
  for (const [N, n] of [
    [196, 7],
    [196, 9],
    [10, 10],
    [17, 5],
  ] as const) {
    const l = chunkLengths(N, n);
    assert.equal(l.length, n);
    assert.equal(
      l.reduce((s, x) => s + x, 0),
      N,
    );
    assert.ok(Math.max(...l) - Math.min(...l) <= 1);
  }
  assert.throws(() => chunkLengths(4, 5), /numChunks \(5\) must not exceed numPatches \(4\)/);
});

test('n ∤ N: every position is used exactly once, in two row groups (long chunks first), no warning', async () => {
  const before = torch.liveTensors();
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(w.message);
  process.on('warning', onWarning);
  torch.manualSeed(4);
  const m = chunkMask(2, 14, 4);
  await new Promise((resolve) => setImmediate(resolve));
  process.off('warning', onWarning);
  assert.deepEqual(warnings, []);
  assert.deepEqual(m.lengths, [4, 4, 3, 3]);
  assert.deepEqual(
    m.groups.map((g) => [g.first, g.count, g.length, ...g.keep.shape]),
    [
      [0, 2, 4, 4, 4],
      [2, 2, 3, 4, 3],
    ],
  );
  const [long, short] = m.groups.map((g) => rows(g.keep)) as [number[][], number[][]];
  for (let b = 0; b < 2; b++) {
    const used = [...long.slice(b * 2, b * 2 + 2).flat(), ...short.slice(b * 2, b * 2 + 2).flat()];
    assert.deepEqual(
      [...used].sort((x, y) => x - y),
      [...Array(14).keys()],
    );
  }
  disposeChunkMask(m);
  assert.equal(torch.liveTensors(), before);
});

test('chunksOfPermutation cuts consecutive pieces: chunk j of image b is perm[b, start_j : start_j + len_j]', () => {
  const before = torch.liveTensors();
  // two hand-written permutations of 0…9, n = 3 → lengths 4, 3, 3 (starts 0, 4, 7)
  const perm = torch.tensor(
    [
      [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
      [0, 2, 4, 6, 8, 1, 3, 5, 7, 9],
    ],
    { dtype: 'int64' },
  );
  const m = chunksOfPermutation(perm, 3);
  assert.deepEqual(m.lengths, [4, 3, 3]);
  assert.deepEqual(rows(m.groups[0]!.keep), [
    [9, 8, 7, 6],
    [0, 2, 4, 6],
  ]);
  assert.deepEqual(rows(m.groups[1]!.keep), [
    [5, 4, 3],
    [2, 1, 0],
    [8, 1, 3],
    [5, 7, 9],
  ]);
  torch.tidy(() => assert.throws(() => chunksOfPermutation(perm.reshape(20), 2), /perm must be \[B, N\], got \[20\]/));
  disposeChunkMask(m);
  perm.dispose();
  assert.equal(torch.liveTensors(), before);
});

test('n = 1 keeps every position, in identity order unless asked to shuffle', () => {
  const m = chunkMask(2, 9, 1);
  assert.deepEqual(rows(m.groups[0]!.keep), [
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  ]);
  const s = chunkMask(2, 9, 1, { shuffleWhenSingle: true });
  for (const row of rows(s.groups[0]!.keep))
    assert.deepEqual(
      [...row].sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
  disposeChunkMask(m);
  disposeChunkMask(s);
});

test('rows are image-major and the draw is rand(B, N).argsort(1), reproducible by seed', () => {
  for (const [N, n] of [
    [12, 3],
    [13, 3],
  ] as const) {
    torch.manualSeed(7);
    const a = chunkMask(2, N, n);
    torch.manualSeed(7);
    const perm = torch.rand([2, N]).argsort(1);
    torch.manualSeed(7);
    const b = chunkMask(2, N, n);
    a.groups.forEach((g, i) => assert.ok(torch.equal(g.keep, b.groups[i]!.keep)));
    // chunk j of image img = perm[img, start_j : start_j + len_j]
    const p = perm.toArray() as number[][];
    const starts = a.lengths.map((_, j) => a.lengths.slice(0, j).reduce((s, x) => s + x, 0));
    for (const g of a.groups) {
      const r = rows(g.keep);
      for (let img = 0; img < 2; img++)
        for (let i = 0; i < g.count; i++) {
          const j = g.first + i;
          assert.deepEqual(r[img * g.count + i], p[img]!.slice(starts[j], starts[j]! + a.lengths[j]!));
        }
    }
    disposeChunkMask(a);
    disposeChunkMask(b);
    perm.dispose();
  }
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
