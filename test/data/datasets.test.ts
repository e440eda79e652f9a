// The in-memory data sets: MNIST-style IDX files and the procedural set; the seeded generator.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { FASHION_MNIST_DIR } from '../../src/data/idx.js';
import { IdxImageDataset, mnist } from '../../src/data/mnist.js';
import { Rng } from '../../src/data/rng.js';
import { SyntheticImages } from '../../src/data/synthetic.js';
import { existsSync } from 'node:fs';

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-datasets-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function idx(shape: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * shape.length);
  head.writeUInt8(0x08, 2);
  head.writeUInt8(shape.length, 3);
  shape.forEach((s, i) => head.writeUInt32BE(s, 4 + 4 * i));
  return Buffer.concat([head, data]);
}

test('MNIST-style IDX files (gzip or raw): grayscale expanded to RGB, labels, errors', async () => {
  const n = 6;
  const px = new Uint8Array(n * 3 * 2).map((_, i) => i * 3);
  writeFileSync(join(tmp, 'train-images-idx3-ubyte.gz'), gzipSync(idx([n, 3, 2], px)));
  writeFileSync(join(tmp, 'train-labels-idx1-ubyte'), idx([n], Uint8Array.from([0, 1, 2, 3, 4, 9])));
  const ds = mnist('train', { kind: 'mnist', dir: tmp });
  assert.equal(ds.length, n);
  assert.deepEqual([ds.width, ds.height], [2, 3]);
  assert.equal(ds.label(5), 9);
  const s = await ds.get(1);
  assert.deepEqual([s.image.width, s.image.height], [2, 3]);
  assert.deepEqual([...s.image.data.subarray(0, 6)], [18, 18, 18, 21, 21, 21]);
  assert.throws(() => mnist('test', { kind: 'mnist', dir: tmp }), /t10k-images-idx3-ubyte\(\.gz\) not found/);
  writeFileSync(join(tmp, 'bad-labels'), idx([n], Uint8Array.from([0, 1, 2, 3, 4, 10])));
  assert.throws(
    () => new IdxImageDataset(join(tmp, 'train-images-idx3-ubyte.gz'), join(tmp, 'bad-labels'), ['a', 'b']),
    /label 2 but only 2 classes/,
  );
});

test('Fashion-MNIST from the Debian package, when installed', async (t) => {
  if (!existsSync(join(FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz'))) {
    t.skip('dataset-fashion-mnist not installed');
    return;
  }
  const ds = mnist('test');
  assert.equal(ds.length, 10_000);
  assert.equal(ds.classes[9], 'Ankle boot');
  const s = await ds.get(0);
  assert.equal(s.image.data.length, 28 * 28 * 3);
  assert.equal(s.label, 9); // the first test image is an ankle boot
});

test('procedural images: deterministic, balanced, learnable', async () => {
  const a = new SyntheticImages({ length: 200, numClasses: 4, size: 12, seed: 5 });
  const b = new SyntheticImages({ length: 200, numClasses: 4, size: 12, seed: 5 });
  assert.deepEqual(a.image(17).data, b.image(17).data);
  assert.notDeepEqual(
    a.image(17).data,
    new SyntheticImages({ length: 200, numClasses: 4, size: 12, seed: 6 }).image(17).data,
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((c) => Array.from({ length: 200 }, (_, i) => a.label(i)).filter((l) => l === c).length),
    [50, 50, 50, 50],
  );
  // nearest mean colour, fitted on the first half, classifies the second half
  const mean = (i: number): number[] => {
    const d = a.image(i).data;
    const m = [0, 0, 0];
    for (let p = 0; p < d.length; p++) m[p % 3]! += d[p]!;
    return m.map((v) => v / (d.length / 3));
  };
  const centers = [0, 1, 2, 3].map(() => [0, 0, 0]);
  for (let i = 0; i < 100; i++) mean(i).forEach((v, c) => (centers[a.label(i)]![c]! += v / 25));
  let right = 0;
  for (let i = 100; i < 200; i++) {
    const m = mean(i);
    const dist = centers.map((c) => c.reduce((s, v, k) => s + (v - m[k]!) ** 2, 0));
    if (dist.indexOf(Math.min(...dist)) === a.label(i)) right++;
  }
  assert.ok(right >= 90, `nearest mean colour: ${right}/100`);
});

test('Rng: reproducible streams, unbiased bounds, permutations', () => {
  const x = new Rng(1, 2);
  const y = new Rng(1, 2);
  const xs = Array.from({ length: 5 }, () => x.next());
  assert.deepEqual(
    xs,
    Array.from({ length: 5 }, () => y.next()),
  );
  assert.notDeepEqual(
    xs,
    Array.from(
      { length: 5 },
      (() => {
        const z = new Rng(2, 1);
        return () => z.next();
      })(),
    ),
  );
  assert.notEqual(new Rng(2 ** 32).next(), new Rng(0).next(), 'high bits of a seed count');
  const counts = new Array<number>(6).fill(0);
  for (let i = 0; i < 6000; i++) counts[x.int(6)]!++;
  assert.ok(
    counts.every((c) => c > 850 && c < 1150),
    `${counts}`,
  );
  const p = new Rng(9).permutation(1000);
  assert.deepEqual(
    [...p].sort((a, b) => a - b),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  const f = x.float();
  assert.ok(f >= 0 && f < 1);
});
