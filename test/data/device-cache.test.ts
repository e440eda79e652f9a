// The device-resident cache serves a DataLoader's batches (same order, sharding, images and
// labels) from one decoded tensor; a corrupt file is reported once at build time and left out.
// Runs on the CPU here (device 'cpu'); on a CUDA machine the same path runs with 'cuda'
// (test/torch/cuda.test.ts and the GPU check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CachedLoader, DataLoader, DeviceImageCache, ImageFolder, type Batch } from '../../src/data/index.js';
import { SyntheticImages, writeImageFolder } from '../../src/data/synthetic.js';
import { liveTensors } from '../../src/torch/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-devcache-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

async function collect(it: AsyncIterable<Batch>): Promise<{ images: number[][]; labels: number[][]; idx: number[][] }> {
  const out = { images: [] as number[][], labels: [] as number[][], idx: [] as number[][] };
  for await (const b of it) {
    out.images.push(Array.from(b.images.toTypedArray() as Uint8Array));
    out.labels.push(Array.from(b.labels.toTypedArray() as BigInt64Array, Number));
    out.idx.push(b.indices);
    b.images.dispose();
    b.labels.dispose();
  }
  return out;
}

test('CachedLoader gives the DataLoader batches for every rank and epoch', async () => {
  const root = join(tmp, 'folder');
  await writeImageFolder(new SyntheticImages({ length: 45, numClasses: 3, size: 12, seed: 4 }), root, {
    format: 'jpeg',
  });
  const ds = new ImageFolder(root, { cacheDir: join(tmp, 'index') });
  const before = liveTensors();
  const cache = await DeviceImageCache.build(ds, { device: 'cpu', chunk: 16, workers: 2 });
  assert.equal(cache.rows, 45);
  assert.deepEqual(cache.images.shape, [45, 3, 12, 12]);
  assert.equal(cache.bytes, 45 * 3 * 12 * 12);
  for (const [rank, world] of [
    [0, 1],
    [1, 2],
  ] as const) {
    const loader = new DataLoader(ds, { batchSize: 7, seed: 3, dropLast: true, rank, worldSize: world });
    const cached = new CachedLoader(loader, cache);
    assert.equal(cached.length, loader.length);
    for (const epoch of [0, 1]) {
      const want = await collect(loader.epoch(epoch));
      const got = await collect(cached.epoch(epoch));
      assert.equal(got.images.length, loader.length);
      assert.deepEqual(got.idx, want.idx, `rank ${rank}/${world} epoch ${epoch}: order`);
      assert.deepEqual(got.labels, want.labels, `rank ${rank}/${world} epoch ${epoch}: labels`);
      assert.deepEqual(got.images, want.images, `rank ${rank}/${world} epoch ${epoch}: pixels`);
    }
    // a resume inside an epoch starts at the same batch on both
    const want = await collect(loader.epoch(1, { from: 2 }));
    const got = await collect(cached.epoch(1, { from: 2 }));
    assert.equal(got.idx.length, loader.length - 2);
    assert.deepEqual(got.idx, want.idx);
    assert.deepEqual(got.images, want.images);
  }
  cache.dispose();
  assert.equal(liveTensors(), before, 'the cache and its batches leave no tensor behind');
});

test('a corrupt file is reported once when the cache is built and left out of the order', async () => {
  const root = join(tmp, 'corrupt');
  await writeImageFolder(new SyntheticImages({ length: 20, numClasses: 2, size: 8, seed: 9 }), root, {
    format: 'jpeg',
  });
  writeFileSync(join(root, 'class_00', 'broken.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]));
  const ds = new ImageFolder(root, { cacheDir: join(tmp, 'index2') });
  const skips: string[] = [];
  const cache = await DeviceImageCache.build(ds, { device: 'cpu', onSkip: (e) => skips.push(e.path) });
  assert.equal(skips.length, 1);
  assert.match(skips[0]!, /broken\.jpg$/);
  assert.equal(cache.rows, 20);
  const bad = [...Array(ds.length).keys()].find((i) => ds.path(i).endsWith('broken.jpg'))!;
  assert.equal(cache.rowOf[bad], -1);
  const cached = new CachedLoader(new DataLoader(ds, { batchSize: 4, seed: 1, dropLast: true }), cache);
  assert.equal(cached.length, 5, '20 readable images make 5 batches of 4');
  const got = await collect(cached.epoch(0));
  assert.ok(got.idx.flat().every((i) => i !== bad));
  assert.equal(new Set(got.idx.flat()).size, 20);
  cache.dispose();
});

test('images of different sizes are refused with the file named', async () => {
  const root = join(tmp, 'mixed');
  await writeImageFolder(new SyntheticImages({ length: 4, numClasses: 2, size: 8, seed: 2 }), root, {
    format: 'jpeg',
  });
  await writeImageFolder(new SyntheticImages({ length: 2, numClasses: 2, size: 10, seed: 2 }), join(tmp, 'big'), {
    format: 'jpeg',
  });
  const ds = new ImageFolder(root, { cacheDir: join(tmp, 'index3') });
  const other = new ImageFolder(join(tmp, 'big'), { cacheDir: join(tmp, 'index4') });
  const both = {
    length: 5,
    classes: ds.classes,
    label: (i: number) => (i < 4 ? ds.label(i) : other.label(0)),
    source: (i: number) => (i < 4 ? ds.source(i) : other.source(0)),
    get: (i: number) => (i < 4 ? ds.get(i) : other.get(0)),
  };
  await assert.rejects(DeviceImageCache.build(both, { device: 'cpu', chunk: 4 }), /images of one size.*10×10/s);
});
