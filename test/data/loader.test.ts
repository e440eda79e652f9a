// DataLoader: seeded order per epoch, sharding, dropLast, batch contents, prefetch overlap,
// bounded concurrency, skipping unreadable files, size checks, and tensor ownership.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SampleError, type Dataset, type RgbImage, type Sample } from '../../src/data/dataset.js';
import { closeDecodePool } from '../../src/data/decode-pool.js';
import { resizeCenterCrop } from '../../src/data/fit.js';
import { ImageFolder } from '../../src/data/image-folder.js';
import { DataLoader, type Batch, type SkipEvent } from '../../src/data/loader.js';
import { SyntheticImages, writeImageFolder } from '../../src/data/synthetic.js';
import { imagesToBatch } from '../../src/data/native/batch.js';
import { ResizeCenterCrop } from '../../src/data/transforms/geometry.js';
import { liveTensors, tidy } from '../../src/torch/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-loader-'));
after(async () => {
  await closeDecodePool();
  rmSync(tmp, { recursive: true, force: true });
});

const synth = new SyntheticImages({ length: 103, numClasses: 5, size: 8, seed: 1 });

function disposeAll(batches: Batch[]): void {
  for (const b of batches) {
    b.images.dispose();
    b.labels.dispose();
  }
}

/** The epoch's batches; when the loader throws, those taken so far are released first. */
async function collect(loader: DataLoader, epoch: number): Promise<Batch[]> {
  const out: Batch[] = [];
  try {
    for await (const b of loader.epoch(epoch)) out.push(b);
  } catch (err) {
    disposeAll(out);
    throw err;
  }
  return out;
}

/** A data set that records when each sample is asked for and how many are being read at once. */
class SlowDataset implements Dataset {
  readonly classes = ['a', 'b'];
  readonly log: string[] = [];
  active = 0;
  maxActive = 0;
  constructor(
    readonly length: number,
    private readonly delayMs: number,
    private readonly sizeOf: (i: number) => number = () => 4,
  ) {}
  label(i: number): number {
    return i % 2;
  }
  source(i: number): string {
    return `slow#${i}`;
  }
  async get(i: number): Promise<Sample> {
    this.log.push(`get ${i}`);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    await sleep(this.delayMs);
    this.active--;
    const s = this.sizeOf(i);
    return { label: this.label(i), image: { data: new Uint8Array(s * s * 3).fill(i), width: s, height: s } };
  }
}

test('order: same seed and epoch give the same order, another epoch or seed another', async () => {
  const a = new DataLoader(synth, { batchSize: 10, seed: 7 });
  const b = new DataLoader(synth, { batchSize: 10, seed: 7 });
  assert.deepEqual(a.indices(3), b.indices(3));
  assert.notDeepEqual(a.indices(3), a.indices(4));
  assert.notDeepEqual(a.indices(3), new DataLoader(synth, { batchSize: 10, seed: 8 }).indices(3));
  assert.deepEqual(
    [...a.indices(0)].sort((x, y) => x - y),
    Array.from({ length: 103 }, (_, i) => i),
  );
  const unshuffled = new DataLoader(synth, { batchSize: 10, shuffle: false });
  assert.deepEqual(
    [...unshuffled.indices(5)],
    Array.from({ length: 103 }, (_, i) => i),
  );

  const run1 = await collect(a, 3);
  const run2 = await collect(b, 3);
  assert.deepEqual(
    run1.flatMap((x) => x.indices),
    [...a.indices(3)],
  );
  assert.deepEqual(
    run1.map((x) => x.indices),
    run2.map((x) => x.indices),
  );
  disposeAll(run1);
  disposeAll(run2);
});

test('batches: uint8 NCHW pixels and int64 labels of the right samples; dropLast', async () => {
  const loader = new DataLoader(synth, { batchSize: 10, seed: 1 });
  assert.equal(loader.length, 11);
  const batches = await collect(loader, 0);
  assert.equal(batches.length, 11);
  assert.deepEqual(
    batches.map((b) => b.indices.length),
    [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3],
  );
  const b = batches[2]!;
  assert.deepEqual(b.images.shape, [10, 3, 8, 8]);
  assert.equal(b.images.dtype, 'uint8');
  assert.equal(b.labels.dtype, 'int64');
  assert.equal(b.batch, 2);
  assert.equal(b.epoch, 0);
  const labels = [...(b.labels.toTypedArray() as BigInt64Array)].map(Number);
  assert.deepEqual(
    labels,
    b.indices.map((i) => synth.label(i)),
  );
  const px = b.images.toTypedArray() as Uint8Array;
  const k = 4;
  const img = synth.image(b.indices[k]!);
  for (const [c, y, x] of [
    [0, 0, 0],
    [1, 3, 5],
    [2, 7, 7],
  ] as const) {
    assert.equal(px[k * 192 + c * 64 + y * 8 + x], img.data[3 * (y * 8 + x) + c]);
  }
  disposeAll(batches);

  const dropping = new DataLoader(synth, { batchSize: 10, dropLast: true });
  assert.equal(dropping.length, 10);
  const d = await collect(dropping, 0);
  assert.equal(d.length, 10);
  assert.ok(d.every((x) => x.indices.length === 10));
  disposeAll(d);
});

test('sharding: equal lengths, covering, disjoint (as DistributedSampler)', () => {
  for (const [n, ws] of [
    [103, 4],
    [100, 4],
    [7, 3],
  ] as const) {
    const ds = new SyntheticImages({ length: n, numClasses: 2, size: 4 });
    const full = new DataLoader(ds, { batchSize: 5, seed: 3 }).indices(2);
    for (const mode of ['pad', 'drop'] as const) {
      const parts = Array.from({ length: ws }, (_, rank) =>
        new DataLoader(ds, { batchSize: 5, seed: 3, rank, worldSize: ws, evenShards: mode }).indices(2),
      );
      const len = mode === 'pad' ? Math.ceil(n / ws) : Math.floor(n / ws);
      assert.ok(
        parts.every((p) => p.length === len),
        `${mode} ${n}/${ws}: equal lengths`,
      );
      // rank r takes elements r, r + ws, ... of the (padded) epoch permutation
      parts.forEach((p, rank) => p.forEach((idx, j) => assert.equal(idx, full[(rank + j * ws) % n])));
      const all = parts.flatMap((p) => [...p]);
      const distinct = new Set(all);
      if (mode === 'pad') {
        assert.equal(distinct.size, n, 'covering');
        assert.equal(all.length - n, len * ws - n, 'only the padding repeats');
      } else {
        assert.equal(distinct.size, all.length, 'disjoint');
        assert.equal(all.length, Math.floor(n / ws) * ws);
      }
    }
  }
  assert.throws(() => new DataLoader(synth, { batchSize: 1, rank: 4, worldSize: 4 }), /rank 4 ≥ worldSize 4/);
});

test('prefetch: later batches are decoded while the caller works on one', async () => {
  const ds = new SlowDataset(24, 5);
  const loader = new DataLoader(ds, { batchSize: 4, shuffle: false, prefetch: 2, workers: 4 });
  for await (const b of loader.epoch(0)) {
    ds.log.push(`step ${b.batch} start`);
    await sleep(30); // the training step
    ds.log.push(`step ${b.batch} end`);
    b.images.dispose();
    b.labels.dispose();
  }
  const at = (e: string): number => ds.log.indexOf(e);
  // batch 0 is samples 0..3, batch 1 is 4..7, batch 2 is 8..11
  assert.ok(at('get 4') < at('step 0 end'), 'batch 1 read during step 0');
  assert.ok(at('get 8') < at('step 0 end'), 'batch 2 read during step 0');
  assert.ok(at('get 12') > at('step 0 start'), 'no more than 2 batches ahead');
  assert.ok(ds.maxActive <= 4, `at most 4 reads at once, saw ${ds.maxActive}`);

  const serial = new SlowDataset(12, 5);
  for await (const b of new DataLoader(serial, { batchSize: 4, shuffle: false, prefetch: 0, workers: 2 }).epoch(0)) {
    serial.log.push(`step ${b.batch} end`);
    b.images.dispose();
    b.labels.dispose();
  }
  assert.ok(serial.log.indexOf('get 4') > serial.log.indexOf('step 0 end'), 'prefetch 0: nothing ahead');
  assert.ok(serial.maxActive <= 2, 'workers bounds concurrent reads');
});

test('prefetch overlaps in time: total ≈ max(decode, step), not their sum', async () => {
  const run = async (prefetch: number): Promise<number> => {
    const ds = new SlowDataset(40, 20);
    const t0 = performance.now();
    for await (const b of new DataLoader(ds, { batchSize: 4, workers: 4, prefetch }).epoch(0)) {
      await sleep(20);
      b.images.dispose();
      b.labels.dispose();
    }
    return performance.now() - t0;
  };
  const serial = await run(0); // 10 × (20 read + 20 step)
  const overlapped = await run(2);
  assert.ok(
    overlapped < serial * 0.8,
    `prefetch 2 took ${overlapped.toFixed(0)} ms, prefetch 0 ${serial.toFixed(0)} ms`,
  );
});

test('prefetch with real decoding: images decode off the main thread while it is busy', async (t) => {
  const root = join(tmp, 'overlap');
  // 128 px, so that decoding a batch takes well longer than the main thread's part of it
  await writeImageFolder(new SyntheticImages({ length: 640, numClasses: 4, size: 128, seed: 6 }), root);
  const ds = new ImageFolder(root, { cacheDir: false });
  const waits = async (prefetch: number, stepMs: number): Promise<number[]> => {
    const out: number[] = [];
    let t = performance.now();
    for await (const b of new DataLoader(ds, { batchSize: 128, prefetch, workers: 2 }).epoch(1)) {
      out.push(performance.now() - t);
      b.images.dispose();
      b.labels.dispose();
      const until = performance.now() + stepMs;
      while (performance.now() < until); // a training step that keeps the main thread busy
      t = performance.now();
    }
    return out.slice(1); // the first includes starting the workers
  };
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const decodeMs = median(await waits(0, 0)); // nothing ahead: each wait is a whole batch's decoding
  const afterStep = median(await waits(2, Math.max(100, 3 * decodeMs)));
  t.diagnostic(`batch of 128: decoding ${decodeMs.toFixed(1)} ms; wait after a busy step ${afterStep.toFixed(1)} ms`);
  assert.ok(
    afterStep < decodeMs / 2,
    `after a busy step the next batch is ready: waited ${afterStep.toFixed(1)} ms, decoding takes ${decodeMs.toFixed(1)} ms`,
  );
});

test('unreadable files are skipped, reported once per epoch with their path, and the run goes on', async () => {
  const root = join(tmp, 'corrupt');
  await writeImageFolder(new SyntheticImages({ length: 30, numClasses: 3, size: 8, seed: 2 }), root);
  const probe = new ImageFolder(root, { cacheDir: false });
  const good = readFileSync(probe.path(0));
  writeFileSync(probe.path(4), good.subarray(0, good.length >> 1)); // truncated
  writeFileSync(probe.path(17), Buffer.from('garbage, not an image'));
  const ds = new ImageFolder(root, { cacheDir: false });
  const events: SkipEvent[] = [];
  const loader = new DataLoader(ds, { batchSize: 8, seed: 5, onSkip: (e) => events.push(e) });
  for (const epoch of [0, 1]) {
    const batches = await collect(loader, epoch);
    assert.deepEqual(
      batches.map((b) => b.indices.length),
      [8, 8, 8, 6],
      'replacements keep the batch sizes',
    );
    const seen = batches.flatMap((b) => b.indices);
    assert.ok(!seen.includes(4) && !seen.includes(17), 'bad samples never reach a batch');
    disposeAll(batches);
    const skips = loader.skips(epoch);
    assert.deepEqual(skips.map((e) => e.path).sort(), [ds.path(4), ds.path(17)].sort());
    assert.ok(skips.every((e) => e.epoch === epoch && e.reason.length > 0));
  }
  assert.equal(loader.skippedTotal, 4, 'two files, two epochs');
  assert.equal(events.length, 4);

  const dropping = new DataLoader(ds, { batchSize: 8, seed: 5, onCorrupt: 'drop', onSkip: () => undefined });
  const d = await collect(dropping, 0);
  assert.equal(
    d.reduce((s, b) => s + b.indices.length, 0),
    28,
  );
  disposeAll(d);
});

test('images of one batch must have one size, unless perSample fixes it', async () => {
  const ds = new SlowDataset(8, 0, (i) => (i === 5 ? 6 : 4));
  await assert.rejects(
    collect(new DataLoader(ds, { batchSize: 4, shuffle: false }), 0),
    /images of one batch must have one size: slow#4 is 4×4, slow#5 is 6×6/,
  );
  const fixed = await collect(
    new DataLoader(ds, { batchSize: 4, shuffle: false, perSample: resizeCenterCrop(null, 3) }),
    0,
  );
  assert.deepEqual(fixed[1]!.images.shape, [4, 3, 3, 3]);
  disposeAll(fixed);

  // perSample gets a generator that depends only on (seed, epoch, index)
  const draws = async (): Promise<string> => {
    const seen = new Map<number, number>();
    const l = new DataLoader(synth, {
      batchSize: 16,
      seed: 9,
      perSample: (s, ctx): RgbImage => {
        seen.set(ctx.index, ctx.rng.next());
        return s.image;
      },
    });
    disposeAll(await collect(l, 2));
    return JSON.stringify([...seen].sort((x, y) => x[0] - y[0]));
  };
  assert.equal(await draws(), await draws());

  // a perSample that throws SampleError skips the sample
  const skipping = new DataLoader(synth, {
    batchSize: 50,
    shuffle: false,
    onCorrupt: 'drop',
    onSkip: () => undefined,
    perSample: (s, ctx) => {
      if (ctx.index === 3) throw new SampleError('synthetic#3', 3, 'rejected');
      return s.image;
    },
  });
  const sk = await collect(skipping, 0);
  assert.equal(sk[0]!.indices.length, 49);
  disposeAll(sk);
});

test('tensors belong to the caller: none leak, none are released by the loader', async () => {
  const before = liveTensors();
  const loader = new DataLoader(synth, { batchSize: 16 });
  for await (const b of loader.epoch(0)) {
    b.images.dispose();
    b.labels.dispose();
  }
  assert.equal(liveTensors(), before, 'a full epoch');
  for await (const b of loader.epoch(1)) {
    b.images.dispose();
    b.labels.dispose();
    break; // prefetched batches hold no tensors
  }
  await sleep(20);
  assert.equal(liveTensors(), before, 'an epoch left early');

  const kept = await collect(loader, 2);
  tidy(() => {
    for (const b of kept) b.images.float().mean(); // a scope using them does not take them
  });
  assert.ok(kept.every((b) => !b.images.isDisposed && !b.labels.isDisposed));
  assert.equal(kept[0]!.images.toTypedArray().length, 16 * 3 * 8 * 8);
  assert.equal(liveTensors(), before + 2 * kept.length);
  disposeAll(kept);
  assert.equal(liveTensors(), before);
});

test('resizeCenterCrop(null, crop) follows torchvision: half-to-even offsets, zero padding when smaller', async () => {
  const img = (w: number, h: number): Sample => ({
    label: 0,
    image: { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, (_, i) => Math.floor(i / 3) % 251) },
  });
  // 5 wide → 2: offset round(1.5) = 2; 7 → 2: round(2.5) = 2 (half to even); [height, width]
  const a = await resizeCenterCrop(null, [1, 2])(img(5, 1));
  assert.deepEqual([a.data[0], a.data[3]], [2, 3]);
  const b = await resizeCenterCrop(null, [1, 2])(img(7, 1));
  assert.deepEqual([b.data[0], b.data[3]], [2, 3]);
  // 2 × 2 into 5 × 4: one row above, one column left ((5-2)//2 = 1, (4-2)//2 = 1)
  const c = await resizeCenterCrop(null, [4, 5])(img(2, 2));
  assert.deepEqual([c.width, c.height], [5, 4]);
  const at = (x: number, y: number): number => c.data[3 * (y * 5 + x)]!;
  assert.deepEqual([at(0, 0), at(1, 1), at(2, 1), at(1, 2), at(2, 2), at(3, 1), at(1, 3)], [0, 0, 1, 2, 3, 0, 0]);
  // an image of the crop's size comes back with the same pixels
  const d = img(3, 2);
  assert.deepEqual((await resizeCenterCrop(null, [2, 3])(d)).data, d.image.data);
  assert.throws(() => resizeCenterCrop(null, 0), /cropTo must be positive integers, got 0/);
  assert.throws(() => resizeCenterCrop(2.5, 4), /resizeTo must be a positive integer or null, got 2.5/);
});

test('imagesToBatch: HWC images to one NCHW uint8 tensor; a wrong size names the image', () => {
  const a = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => i);
  const b = Uint8Array.from({ length: 2 * 3 * 3 }, (_, i) => 100 + i);
  const t = imagesToBatch([a, b], 3, 2);
  assert.deepEqual(t.shape, [2, 3, 2, 3]);
  // channel c of pixel p is byte 3p + c
  const got = Array.from(t.toTypedArray() as Uint8Array);
  const want = [a, b].flatMap((img) => [0, 1, 2].flatMap((c) => [0, 1, 2, 3, 4, 5].map((p) => img[3 * p + c]!)));
  assert.deepEqual(got, want);
  t.dispose();
  assert.throws(() => imagesToBatch([a, b.subarray(1)], 3, 2), /image 1 holds 17 bytes, 3x2x3 needs 18/);
});

test('perSample resizeCenterCrop: images of any size to one batch, each as the batch transform gives it', async () => {
  // larger, odd offsets (half to even), smaller (zero padding), not square
  const dims: [number, number][] = [
    [9, 9],
    [10, 7],
    [11, 12],
    [7, 8],
    [6, 4],
    [8, 5],
  ];
  const image = (i: number): RgbImage => {
    const [width, height] = dims[i % 6]!;
    return { data: Uint8Array.from({ length: width * height * 3 }, (_, j) => (j * 7 + i) % 251), width, height };
  };
  const ds: Dataset = {
    length: 12,
    classes: ['a', 'b'],
    label: (i) => i % 2,
    source: (i) => `pattern#${i}`,
    get: (i) => Promise.resolve({ label: i % 2, image: image(i) }),
  };
  for (const [resizeTo, crop] of [
    [null, 8],
    [null, [5, 7]],
    [8, 8],
    [6, [5, 7]],
  ] as const) {
    const batches = await collect(
      new DataLoader(ds, { batchSize: 5, shuffle: false, perSample: resizeCenterCrop(resizeTo, crop) }),
      0,
    );
    const op = new ResizeCenterCrop(resizeTo, crop);
    batches.forEach((b, k) =>
      b.indices.forEach((i, j) => {
        const img = image(i);
        const want = tidy(() => op.forward(imagesToBatch([img.data], img.width, img.height)).toTypedArray());
        const got = tidy(() => b.images.narrow(0, j, 1).toTypedArray());
        assert.deepEqual(got, want, `batch ${k} image ${i} (${resizeTo}, ${JSON.stringify(crop)})`);
      }),
    );
    disposeAll(batches);
  }
});

test('from: an epoch started at batch k gives the tail of the whole epoch and reads none of the batches before it', async () => {
  const ds = new SlowDataset(37, 0);
  const loader = new DataLoader(ds, { batchSize: 5, seed: 3, workers: 2, prefetch: 2 });
  const whole = await collect(loader, 2);
  assert.equal(whole.length, 8);
  ds.log.length = 0;
  const tail: Batch[] = [];
  for await (const b of loader.epoch(2, { from: 5 })) tail.push(b);
  assert.deepEqual(
    tail.map((b) => b.batch),
    [5, 6, 7],
  );
  for (const [j, b] of tail.entries()) {
    const w = whole[5 + j]!;
    assert.deepEqual(b.indices, w.indices);
    assert.deepEqual(b.images.toTypedArray(), w.images.toTypedArray());
    assert.deepEqual(b.labels.toTypedArray(), w.labels.toTypedArray());
  }
  // only the samples of batches 5.. were read
  const read = ds.log.map((l) => Number(l.split(' ')[1])).sort((a, b) => a - b);
  assert.deepEqual(
    read,
    whole
      .slice(5)
      .flatMap((b) => b.indices)
      .sort((a, b) => a - b),
  );
  // from = length: nothing left of the epoch
  const none: Batch[] = [];
  for await (const b of loader.epoch(2, { from: 8 })) none.push(b);
  assert.equal(none.length, 0);
  for (const bad of [-1, 9, 1.5])
    assert.throws(
      () => loader.epoch(2, { from: bad }),
      /from must be an integer in \[0, 8\] \(batches per epoch\), got/,
    );
  disposeAll(whole);
  disposeAll(tail);
});
