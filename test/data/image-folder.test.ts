// ImageFolder: classes, labels and the on-disk index on the shared data sets (when present)
// and on generated folders; decoding of every supported kind of file; clear errors.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { createLimiter, SampleError } from '../../src/data/dataset.js';
import {
  DecodeCrash,
  closeDecodePool,
  decodeFiles,
  decodeWorkerPids,
  ensureDecodeWorkers,
} from '../../src/data/decode-pool.js';
import { decodeImage } from '../../src/data/decode.js';
import { byteOrder, indexImageFolder } from '../../src/data/folder-index.js';
import { ImageFolder } from '../../src/data/image-folder.js';
import { SyntheticImages, writeImageFolder } from '../../src/data/synthetic.js';

// dist/test/data -> repo root
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SHARED = join(REPO, '..', 'shared', 'datasets');

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-folder-'));
const cacheDir = join(tmp, 'cache');
after(async () => {
  await closeDecodePool();
  rmSync(tmp, { recursive: true, force: true });
});

/**
 * Sets the folder's and its sub-folders' mtimes `back` seconds back (default 10), so the index
 * cache is written.
 */
function settle(dir: string, sub: string[], back = 10): void {
  const t = Date.now() / 1000 - back;
  for (const d of ['', ...sub]) utimesSync(join(dir, d), t, t);
}

function classesTsv(set: string): string[] {
  return readFileSync(join(SHARED, set, 'classes.tsv'), 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t')[1]!);
}

const sets = [
  {
    set: 'cifar10',
    counts: { train: 50_000, val: 10_000 },
    known: [
      ['train', 'airplane/0000.jpg', 0],
      ['train', 'cat/1234.jpg', 3],
      ['train', 'truck/4999.jpg', 9],
      ['val', 'ship/0999.jpg', 8],
    ] as const,
    size: 32,
  },
  {
    set: 'imagenette',
    counts: { train: 9_469, val: 3_925 },
    known: [
      ['val', 'n01440764/ILSVRC2012_val_00009111.jpg', 0],
      ['val', 'n03888257/ILSVRC2012_val_00001440.jpg', 9],
      ['train', 'n02102040/ILSVRC2012_val_00000665.jpg', 1],
    ] as const,
    size: 72,
  },
];

for (const s of sets) {
  test(`ImageFolder on the shared ${s.set}`, async (t) => {
    if (!existsSync(join(SHARED, s.set))) {
      t.skip(`../shared/datasets/${s.set} not present; generated folders cover ImageFolder`);
      return;
    }
    const order = classesTsv(s.set);
    for (const split of ['train', 'val'] as const) {
      const ds = new ImageFolder(join(SHARED, s.set, split), { cacheDir });
      assert.equal(ds.length, s.counts[split]);
      assert.deepEqual(ds.classes, order);
      // a second open reads the index cache (the shared folders are old and read-only)
      const again = new ImageFolder(join(SHARED, s.set, split), { cacheDir });
      assert.equal(again.fromCache, true);
      assert.equal(again.length, ds.length);
    }
    for (const [split, rel, label] of s.known) {
      const ds = new ImageFolder(join(SHARED, s.set, split), { cacheDir });
      const i = Array.from({ length: ds.length }, (_, k) => k).find((k) => ds.relativePath(k) === rel);
      assert.notEqual(i, undefined, `${rel} listed`);
      assert.equal(ds.label(i!), label, rel);
      const sample = await ds.get(i!);
      assert.equal(sample.label, label);
      assert.equal(sample.image.width, s.size);
      assert.equal(sample.image.height, s.size);
      assert.equal(sample.image.data.length, s.size * s.size * 3);
    }
  });
}

test('generated folder: classes in byte order, nested images, extensions, labels', async () => {
  const root = join(tmp, 'gen');
  const names = ['b', 'B', 'a_cls', 'Zed', 'é'];
  const img = await sharp({ create: { width: 5, height: 4, channels: 3, background: '#336699' } })
    .jpeg()
    .toBuffer();
  for (const n of names) mkdirSync(join(root, n, 'deep', 'er'), { recursive: true });
  writeFileSync(join(root, 'b', 'x.jpg'), img);
  writeFileSync(join(root, 'b', 'deep', 'er', 'y.JPEG'), img);
  writeFileSync(join(root, 'b', 'notes.txt'), 'not an image');
  writeFileSync(join(root, 'B', 'deep', 'z.jpeg'), img);
  writeFileSync(join(root, 'a_cls', 'p.png'), await sharp(img).png().toBuffer());
  writeFileSync(join(root, 'Zed', 'w.webp'), await sharp(img).webp().toBuffer());
  writeFileSync(join(root, 'é', 'e.jpg'), img);
  writeFileSync(join(root, 'stray.jpg'), img); // files at the top are not in any class
  const ds = new ImageFolder(root, { cacheDir: false });
  const sorted = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  assert.deepEqual(ds.classes, sorted);
  assert.deepEqual(ds.classes, ['B', 'Zed', 'a_cls', 'b', 'é']);
  const listed = Array.from({ length: ds.length }, (_, i) => [ds.relativePath(i), ds.label(i)]);
  assert.deepEqual(listed, [
    ['B/deep/z.jpeg', 0],
    ['Zed/w.webp', 1],
    ['a_cls/p.png', 2],
    ['b/x.jpg', 3],
    ['b/deep/er/y.JPEG', 3],
    ['é/e.jpg', 4],
  ]);
  const all = await ds.getMany([0, 1, 2, 3, 4, 5], createLimiter(2));
  for (const s of all) {
    assert.ok(!(s instanceof SampleError));
    assert.equal(s.image.width, 5);
    assert.equal(s.image.height, 4);
  }
  assert.ok(byteOrder('\u{1F600}', '\uFFFD') > 0, 'astral code points sort after the BMP, as in UTF-8');
});

test('decoding: grayscale to RGB, alpha dropped, EXIF orientation applied, 16-bit to 8-bit', async () => {
  const w = 6;
  const h = 3;
  const gray = Buffer.from(Array.from({ length: w * h }, (_, i) => i * 10));
  const grayPng = await sharp(gray, { raw: { width: w, height: h, channels: 1 } })
    .png()
    .toBuffer();
  const g = await decodeImage(grayPng);
  assert.equal(g.data.length, w * h * 3);
  for (let p = 0; p < w * h; p++) {
    assert.deepEqual([g.data[3 * p], g.data[3 * p + 1], g.data[3 * p + 2]], [p * 10, p * 10, p * 10]);
  }
  const grayJpeg = await sharp(gray, { raw: { width: w, height: h, channels: 1 } })
    .toColourspace('b-w')
    .jpeg()
    .toBuffer();
  const gj = await decodeImage(grayJpeg);
  assert.equal(gj.data.length, w * h * 3);
  for (let p = 0; p < w * h; p++)
    assert.ok(gj.data[3 * p] === gj.data[3 * p + 1] && gj.data[3 * p] === gj.data[3 * p + 2]);

  const rgba = Buffer.alloc(w * h * 4, 0);
  for (let p = 0; p < w * h; p++) rgba.set([200, 100, 50, p === 0 ? 0 : 255], 4 * p);
  const a = await decodeImage(
    await sharp(rgba, { raw: { width: w, height: h, channels: 4 } })
      .png()
      .toBuffer(),
  );
  assert.equal(a.data.length, w * h * 3);
  assert.deepEqual([...a.data.subarray(3, 6)], [200, 100, 50]);

  // orientation 6: stored landscape, shown rotated 90° clockwise (portrait)
  const rgb = Buffer.alloc(w * h * 3, 0);
  rgb.set([255, 0, 0], 0); // top-left pixel red
  const rotated = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const r = await decodeImage(rotated);
  assert.equal(r.width, h);
  assert.equal(r.height, w);
  // after a clockwise turn the stored top-left pixel is at the top right
  assert.ok(r.data[3 * (h - 1)]! > 200 && r.data[3 * (h - 1) + 1]! < 50);
  const jpegRot = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
    .jpeg()
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const jr = await decodeImage(jpegRot);
  assert.deepEqual([jr.width, jr.height], [h, w]);

  const deep = Buffer.alloc(w * h * 3 * 2, 0xff);
  const png16 = await sharp(deep, { raw: { width: w, height: h, channels: 3 } })
    .toColourspace('rgb16')
    .png()
    .toBuffer();
  const d = await decodeImage(png16);
  assert.equal(d.data.length, w * h * 3);
});

test('the decode pool gives each file its own pixels, whatever its neighbours in the request', async () => {
  const root = join(tmp, 'pooled');
  const paths = await writeImageFolder(new SyntheticImages({ length: 40, numClasses: 4, size: 24, seed: 3 }), root, {
    format: 'jpeg',
  });
  // a different size and a PNG in between
  const odd = join(root, 'class_00', 'odd.jpg');
  writeFileSync(
    odd,
    await sharp({ create: { width: 9, height: 7, channels: 3, background: '#808000' } })
      .jpeg()
      .toBuffer(),
  );
  const list = [...paths.slice(0, 20), odd, ...paths.slice(20)];
  const all = await decodeFiles(list);
  assert.equal(all.length, list.length);
  for (let k = 0; k < list.length; k++) {
    const a = all[k]!.image!;
    const c = await decodeImage(readFileSync(list[k]!));
    assert.deepEqual([a.width, a.height], [c.width, c.height]);
    assert.ok(Buffer.from(a.data).equals(Buffer.from(c.data)), list[k]);
  }
});

test('corrupt and truncated files fail alone, with their path (libjpeg declines them, sharp rejects them)', async () => {
  const root = join(tmp, 'bad');
  await writeImageFolder(new SyntheticImages({ length: 12, numClasses: 2, size: 16 }), root);
  const ds = new ImageFolder(root, { cacheDir: false });
  const good = readFileSync(ds.path(0));
  writeFileSync(ds.path(3), good.subarray(0, Math.floor(good.length / 2))); // truncated
  writeFileSync(ds.path(5), Buffer.from('this is not a JPEG at all')); // garbage
  const garbled = Buffer.from(good);
  for (let i = 200; i < garbled.length - 2; i += 7) garbled[i] = 0xff; // corrupt scan data
  writeFileSync(ds.path(7), garbled);
  rmSync(ds.path(9)); // vanished after indexing
  const out = await ds.getMany(
    Array.from({ length: ds.length }, (_, i) => i),
    createLimiter(2),
  );
  const failed = out.flatMap((s, i) => (s instanceof SampleError ? [i] : []));
  assert.deepEqual(failed, [3, 5, 7, 9]);
  for (const i of [0, 1, 2, 4, 6, 8, 10, 11]) assert.ok(!(out[i] instanceof SampleError), `sample ${i} decoded`);
  const e = out[3] as SampleError;
  assert.equal(e.path, ds.path(3));
  assert.equal(e.index, 3);
  await assert.rejects(ds.get(5), (err: unknown) => err instanceof SampleError && err.path === ds.path(5));
});

test('a decode worker that dies costs nothing: its files are decoded again, one by one', async () => {
  const root = join(tmp, 'crash');
  await writeImageFolder(new SyntheticImages({ length: 300, numClasses: 3, size: 16, seed: 8 }), root, {
    format: 'png',
  });
  // PNGs: they go to sharp in the worker processes (JPEGs are decoded by libjpeg in this process)
  const ds = new ImageFolder(root, { cacheDir: false });
  ensureDecodeWorkers(1);
  const [pid] = decodeWorkerPids();
  // stopped first, so the worker cannot finish the request before it dies (no race under load)
  process.kill(pid!, 'SIGSTOP');
  const direct = decodeFiles([ds.path(0), ds.path(1)]);
  process.kill(pid!, 'SIGKILL');
  await assert.rejects(direct, DecodeCrash);
  assert.ok(!decodeWorkerPids().includes(pid!), 'the dead worker left the pool');

  const all = Array.from({ length: ds.length }, (_, i) => i);
  const pending = ds.getMany(all, createLimiter(1));
  await new Promise((r) => setTimeout(r, 5));
  for (const p of decodeWorkerPids()) process.kill(p, 'SIGKILL');
  const out = await pending;
  assert.ok(
    out.every((s) => !(s instanceof SampleError)),
    'every image decoded after the crash',
  );
  assert.deepEqual(
    out.map((s) => (s as { label: number }).label),
    all.map((i) => ds.label(i)),
  );
});

test('decoded cache: later reads come from memory, within the byte budget', async () => {
  const root = join(tmp, 'mem');
  await writeImageFolder(new SyntheticImages({ length: 20, numClasses: 2, size: 8, seed: 4 }), root);
  const ds = new ImageFolder(root, { cacheDir: false, decodedCache: 12 * 8 * 8 * 3 }); // room for 12
  const all = Array.from({ length: 20 }, (_, i) => i);
  const first = await ds.getMany(all, createLimiter(2));
  assert.deepEqual(ds.decodedCacheUsage, { bytes: 12 * 192, images: 12 });
  for (let i = 0; i < 20; i++) rmSync(ds.path(i)); // only memory can serve them now
  const second = await ds.getMany(all, createLimiter(2));
  const served = second.flatMap((s, i) => (s instanceof SampleError ? [] : [i]));
  assert.equal(served.length, 12);
  for (const i of served) {
    const a = first[i] as { image: { data: Uint8Array } };
    const b = second[i] as { image: { data: Uint8Array } };
    assert.deepEqual(b.image.data, a.image.data);
    b.image.data.fill(0); // callers get a copy
  }
  const third = (await ds.get(served[0]!)).image.data;
  assert.deepEqual(third, (first[served[0]!] as { image: { data: Uint8Array } }).image.data);
});

test('index cache: used when nothing changed, rebuilt when the folder changes', async () => {
  const root = join(tmp, 'cached');
  await writeImageFolder(new SyntheticImages({ length: 6, numClasses: 2, size: 8 }), root, { format: 'png' });
  mkdirSync(join(root, 'class_01', 'sub'));
  writeFileSync(join(root, 'class_01', 'sub', 'n.png'), readFileSync(join(root, 'class_01', '1.png')));
  const dirs = ['class_00', 'class_01', 'class_01/sub'];
  settle(root, dirs);
  const cache = join(tmp, 'cache-inval');
  const first = indexImageFolder(root, { cacheDir: cache });
  assert.equal(first.fromCache, false);
  assert.equal(first.files.length, 7);
  const second = indexImageFolder(root, { cacheDir: cache });
  assert.equal(second.fromCache, true);
  assert.deepEqual(second.files, first.files);
  assert.deepEqual([...second.labels], [...first.labels]);

  // a new file deep down: its folder's mtime changes
  writeFileSync(join(root, 'class_01', 'sub', 'm.png'), readFileSync(join(root, 'class_01', '1.png')));
  const third = indexImageFolder(root, { cacheDir: cache });
  assert.equal(third.fromCache, false);
  assert.equal(third.files.length, 8);
  // further back than the first time: a fast machine could otherwise restore the very mtimes the
  // cache recorded, and the cache (without the new file) would look valid
  settle(root, dirs, 20);
  assert.equal(indexImageFolder(root, { cacheDir: cache }).fromCache, false, 'cache rewritten after settling');
  assert.equal(indexImageFolder(root, { cacheDir: cache }).fromCache, true);
  // a removed file and a new class
  rmSync(join(root, 'class_00', '0.png'));
  const fourth = indexImageFolder(root, { cacheDir: cache });
  assert.equal(fourth.fromCache, false);
  assert.equal(fourth.files.length, 7);
  mkdirSync(join(root, 'class_02'));
  writeFileSync(join(root, 'class_02', 'q.png'), readFileSync(join(root, 'class_01', '1.png')));
  const fifth = indexImageFolder(root, { cacheDir: cache });
  assert.deepEqual(fifth.classes, ['class_00', 'class_01', 'class_02']);
  // a folder just changed is not cached (timestamps may be coarse), so the next open walks again
  assert.equal(indexImageFolder(root, { cacheDir: cache }).fromCache, false);
  // a cache that cannot be written is no error
  writeFileSync(join(tmp, 'not-a-dir'), '');
  assert.equal(indexImageFolder(root, { cacheDir: join(tmp, 'not-a-dir') }).files.length, 8);
});

test('clear errors: missing folder, empty class, fewer than two classes', () => {
  const missing = join(tmp, 'nope');
  assert.throws(() => new ImageFolder(missing, { cacheDir: false }), new RegExp(`folder ${missing} does not exist`));
  const file = join(tmp, 'file.txt');
  writeFileSync(file, 'x');
  assert.throws(() => new ImageFolder(file, { cacheDir: false }), /is not a folder/);

  const one = join(tmp, 'one');
  mkdirSync(join(one, 'only'), { recursive: true });
  writeFileSync(join(one, 'only', 'a.jpg'), 'x');
  assert.throws(
    () => new ImageFolder(one, { cacheDir: false }),
    new RegExp(`${one} has 1 class folder; need at least two`),
  );
  const none = join(tmp, 'none');
  mkdirSync(none);
  assert.throws(() => new ImageFolder(none, { cacheDir: false }), /has 0 class folders/);

  const empty = join(tmp, 'empty');
  mkdirSync(join(empty, 'a'), { recursive: true });
  mkdirSync(join(empty, 'b', 'sub'), { recursive: true });
  writeFileSync(join(empty, 'a', 'x.png'), 'x');
  writeFileSync(join(empty, 'b', 'sub', 'readme.txt'), 'no images here');
  assert.throws(
    () => new ImageFolder(empty, { cacheDir: false }),
    new RegExp(`class folder ${join(empty, 'b')} holds no images`),
  );
});
