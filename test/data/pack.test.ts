// Packed data sets (.mmpack): a generated ImageFolder (JPEGs of several sizes and kinds, a PNG,
// a corrupt JPEG) packed and read back gives ImageFolder's classes, labels and pixels for every
// image, the original bytes, and a SampleError naming the corrupt one; damaged packs are clear
// errors; --max-per-class is a seeded choice; with ../shared/datasets present, 200 CIFAR-10
// images per class give the folder's pixels.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp, { type Sharp } from 'sharp';
import { createLimiter, SampleError, type Sample } from '../../src/data/dataset.js';
import { closeDecodePool } from '../../src/data/decode-pool.js';
import { resizeCenterCrop } from '../../src/data/fit.js';
import { ImageFolder } from '../../src/data/image-folder.js';
import { DataLoader } from '../../src/data/loader.js';
import { decodeJpegBuffers } from '../../src/data/native/jpeg.js';
import { jpegHeaderLength, openPack, packImageFolder, type PackHeader } from '../../src/data/pack.js';
import { SyntheticImages } from '../../src/data/synthetic.js';
import { openData } from '../../src/train/data.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SHARED = join(REPO, '..', 'shared', 'datasets');

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-pack-'));
after(async () => {
  await closeDecodePool();
  rmSync(tmp, { recursive: true, force: true });
});

async function picture(w: number, h: number, seed: number): Promise<Sharp> {
  const img = await new SyntheticImages({ length: 1, size: Math.max(w, h), seed }).get(0);
  const { width, height } = img.image;
  return sharp(img.image.data, { raw: { width, height, channels: 3 } }).resize(w, h, { fit: 'fill' });
}

const ROOT = join(tmp, 'set');
/** relative path (split/class/file) of the corrupt JPEG */
const CORRUPT = 'train/cat/07-trunc.jpg';

/** train/ and val/ with classes cat, dog, eel: same-size JPEGs (one shared header), other kinds. */
async function makeFolder(): Promise<void> {
  const put = async (rel: string, bytes: Buffer | Promise<Buffer>): Promise<void> => {
    mkdirSync(dirname(join(ROOT, rel)), { recursive: true });
    writeFileSync(join(ROOT, rel), await bytes);
  };
  let seed = 1;
  for (const split of ['train', 'val']) {
    for (const c of ['cat', 'dog', 'eel']) {
      for (let k = 0; k < (split === 'train' ? 5 : 2); k++) {
        await put(
          `${split}/${c}/0${k}.jpg`,
          (await picture(32, 32, seed++)).jpeg({ quality: 90, optimiseCoding: false }).toBuffer(),
        );
      }
    }
  }
  await put('train/cat/05-wide.jpg', (await picture(40, 24, seed++)).jpeg({ quality: 80 }).toBuffer());
  await put('train/dog/06-prog.jpg', (await picture(32, 32, seed++)).jpeg({ progressive: true }).toBuffer());
  await put('train/dog/08-gray.jpg', (await picture(20, 20, seed++)).toColourspace('b-w').jpeg().toBuffer());
  await put('train/eel/09.png', (await picture(18, 30, seed++)).png().toBuffer());
  const good = await (await picture(32, 32, seed++)).jpeg({ quality: 90, optimiseCoding: false }).toBuffer();
  await put(CORRUPT, good.subarray(0, Math.floor(good.length * 0.7)));
}

let made: Promise<void> | undefined;
const folder = (): Promise<void> => (made ??= makeFolder());

test('jpegHeaderLength: up to and including SOS; 0 when the markers do not parse', async () => {
  const jpg = await (await picture(16, 16, 3)).jpeg().toBuffer();
  const h = jpegHeaderLength(jpg);
  assert.ok(h > 100 && h < jpg.length, `header ${h} of ${jpg.length}`);
  // the SOS segment ends there: its marker is the last one before h
  const sos = jpg.lastIndexOf(Buffer.from([0xff, 0xda]), h);
  assert.equal(h, sos + 2 + jpg.readUInt16BE(sos + 2));
  assert.equal(jpegHeaderLength(jpg.subarray(0, h - 1)), 0, 'cut inside the SOS segment');
  assert.equal(jpegHeaderLength(Buffer.from('\x89PNG\r\n\x1a\n', 'latin1')), 0);
  const broken = Buffer.from(jpg);
  broken[2] = 0x00; // not a marker after SOI
  assert.equal(jpegHeaderLength(broken), 0);
});

test('pack of a generated folder: classes, labels, paths, bytes and pixels of ImageFolder', async () => {
  await folder();
  const out = join(tmp, 'set.mmpack');
  const stats = packImageFolder(ROOT, out);
  assert.deepEqual(stats.splits, { train: 20, val: 6 });
  assert.equal(stats.images, 26);
  // all 32×32 quality-90 baseline JPEGs with the standard Huffman tables share one header (the
  // corrupt one too: it is cut after it); the wide, progressive and gray JPEGs bring theirs, the
  // PNG none
  assert.equal(stats.headers, 4);
  assert.ok(stats.bytes < stats.sourceBytes, `pack ${stats.bytes} B, files ${stats.sourceBytes} B`);
  assert.equal(readdirSync(tmp).filter((f) => f.includes('.tmp-')).length, 0, 'no temporary file left');

  const pack = openPack(out);
  assert.deepEqual(pack.splits, ['train', 'val']);
  for (const split of ['train', 'val']) {
    const ds = pack.split(split);
    const ref = new ImageFolder(join(ROOT, split), { cacheDir: false });
    assert.deepEqual(ds.classes, ref.classes);
    assert.equal(ds.length, ref.length);
    const all = [...Array(ds.length).keys()];
    const mine = await ds.getMany(all, createLimiter(2));
    // the addon decodes every JPEG from the pack's buffer; only the PNG and the corrupt JPEG
    // go to sharp
    assert.equal(ds.sharpDecodes, split === 'train' ? 2 : 0);
    const theirs = await ref.getMany(all, createLimiter(2));
    for (const i of all) {
      assert.equal(ds.relativePath(i), ref.relativePath(i));
      assert.equal(ds.label(i), ref.label(i));
      assert.ok(pack.bytes(split, i).equals(readFileSync(ref.path(i))), `${split}/${i}: bytes are the file's`);
      const a = mine[i]!;
      const b = theirs[i]!;
      if (`${split}/${ref.relativePath(i)}` === CORRUPT) {
        assert.ok(b instanceof SampleError, 'ImageFolder rejects the corrupt file too');
        assert.ok(a instanceof SampleError, 'corrupt JPEG is a SampleError');
        assert.equal(a.index, i);
        assert.equal(a.path, `${out}#train/${i} (cat/07-trunc.jpg)`);
        assert.equal(ds.source(i), a.path);
        continue;
      }
      assert.ok(!(a instanceof SampleError), `${split}/${i}: ${String(a)}`);
      assert.equal((a as Sample).label, (b as Sample).label);
      assert.deepEqual(
        [(a as Sample).image.width, (a as Sample).image.height],
        [(b as Sample).image.width, (b as Sample).image.height],
      );
      assert.ok(
        Buffer.from((a as Sample).image.data).equals(Buffer.from((b as Sample).image.data)),
        `${split}/${i} pixels`,
      );
    }
  }
  // get() of the corrupt image rejects with the name; the loader skips and counts it
  const train = pack.split('train');
  const bad = [...Array(train.length).keys()].find((i) => train.relativePath(i) === 'cat/07-trunc.jpg')!;
  await assert.rejects(train.get(bad), (e: unknown) => e instanceof SampleError && /07-trunc\.jpg/.test(e.message));
  const skipped: string[] = [];
  const loader = new DataLoader(train, {
    batchSize: 20,
    shuffle: false,
    workers: 2,
    perSample: resizeCenterCrop(null, 32),
    onSkip: (e) => skipped.push(e.path),
  });
  let seen = 0;
  for await (const b of loader.epoch(0)) {
    seen += b.images.shape[0]!;
    b.images.dispose();
    b.labels.dispose();
  }
  assert.equal(seen, 20, 'the skipped image is replaced');
  assert.deepEqual(skipped, [train.source(bad)]);
  // openData reads the pack's train and val splits
  const d = openData(out);
  assert.equal(d.train.length, 20);
  assert.equal(d.val!.length, 6);
  assert.throws(() => pack.split('test'), /set\.mmpack: no split 'test' \(it has train, val\)/);
});

test('pack options: --splits, a single class tree, --max-per-class is a seeded choice', async () => {
  await folder();
  const one = packImageFolder(ROOT, join(tmp, 'val.mmpack'), { splits: ['val'] });
  assert.deepEqual(one.splits, { val: 6 });
  const tree = packImageFolder(join(ROOT, 'train'), join(tmp, 'tree.mmpack'));
  assert.deepEqual(tree.splits, { train: 20 });
  const pick = (seed: number): string[] => {
    packImageFolder(ROOT, join(tmp, `few${seed}.mmpack`), { maxPerClass: 2, seed });
    const ds = openPack(join(tmp, `few${seed}.mmpack`)).split('train');
    const counts = [0, 0, 0];
    for (let i = 0; i < ds.length; i++) counts[ds.label(i)]!++;
    assert.deepEqual(counts, [2, 2, 2]);
    return [...Array(ds.length).keys()].map((i) => ds.relativePath(i));
  };
  assert.deepEqual(pick(5), pick(5));
  const seeds = [1, 2, 3, 4].map((s) => pick(s).join());
  assert.ok(new Set(seeds).size > 1, 'different seeds choose differently');
  // --val-data takes a pack's val split; a pack without one is an error naming it
  const d = openData(join(tmp, 'tree.mmpack'), join(tmp, 'val.mmpack'));
  assert.deepEqual([d.train.length, d.val!.length], [20, 6]);
  assert.throws(() => openData(ROOT, join(tmp, 'tree.mmpack')), /tree\.mmpack: the pack has no val or test split/);
  assert.throws(() => openData(join(tmp, 'val.mmpack')), /val\.mmpack: the pack has no 'train' split \(it has val\)/);
  assert.throws(() => packImageFolder(ROOT, join(tmp, 'x.mmpack'), { splits: ['test'] }), /split 'test' not found/);
  assert.throws(() => packImageFolder(join(tmp, 'nope'), join(tmp, 'x.mmpack')), /nope is not a folder/);
  assert.throws(() => packImageFolder(ROOT, join(tmp, 'x.mmpack'), { maxPerClass: 0 }), /maxPerClass/);
  assert.ok(!existsSync(join(tmp, 'x.mmpack')));
  assert.equal(readdirSync(tmp).filter((f) => f.includes('.tmp-')).length, 0, 'no temporary file left');
});

test('damaged packs: errors name the file and what is wrong', async () => {
  await folder();
  const good = join(tmp, 'good.mmpack');
  packImageFolder(ROOT, good);
  const bytes = readFileSync(good);
  const jsonAt = Number(bytes.readBigUInt64LE(16));
  const header = JSON.parse(bytes.toString('utf8', jsonAt)) as PackHeader;
  const variant = (name: string, change: (b: Buffer) => Buffer): string => {
    const p = join(tmp, name);
    writeFileSync(p, change(Buffer.from(bytes)));
    return p;
  };
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    [
      'trunc.mmpack',
      (b) => b.subarray(0, b.length - 100),
      /trunc\.mmpack: truncated: the header says \d+ bytes, the file has \d+/,
    ],
    ['tiny.mmpack', (b) => b.subarray(0, 20), /tiny\.mmpack: truncated: 20 bytes/],
    ['tail.mmpack', (b) => Buffer.concat([b, Buffer.alloc(3)]), /tail\.mmpack: has trailing bytes/],
    [
      'magic.mmpack',
      (b) => (b.write('GARBAGE!', 0, 'latin1'), b),
      /magic\.mmpack: not an mmoco pack \(magic "GARBAGE!"/,
    ],
    ['ver.mmpack', (b) => (b.writeUInt32LE(7, 8), b), /ver\.mmpack: pack version 7, this reader knows 1/],
    ['json.mmpack', (b) => (b.write('}', jsonAt + 1, 'latin1'), b), /json\.mmpack: JSON header is corrupt/],
    [
      'label.mmpack',
      (b) => (b.writeInt32LE(3, header.splits.val!.index.labels + 4), b),
      /label\.mmpack: split 'val' image 1: label 3 outside 0\.\.2/,
    ],
    [
      'offset.mmpack',
      (b) => (b.writeBigUInt64LE(BigInt(b.length), header.splits.train!.index.offsets + 8 * 2), b),
      /offset\.mmpack: split 'train' image 2: bytes \d+\+\d+ are outside the data/,
    ],
    [
      'hid.mmpack',
      (b) => (b.writeInt32LE(9, header.splits.train!.index.headers), b),
      /hid\.mmpack: split 'train' image 0: header id 9 not in -1\.\.3/,
    ],
  ];
  for (const [name, change, why] of cases) assert.throws(() => openPack(variant(name, change)), why, name);
  assert.throws(() => openPack(join(tmp, 'absent.mmpack')), /absent\.mmpack: cannot open/);
  // the native op checks its ranges itself
  await assert.rejects(
    decodeJpegBuffers(Buffer.alloc(10), new Float64Array([0, 0, 5, 6]), 1),
    /outside the buffer of 10 bytes/,
  );
  await assert.rejects(decodeJpegBuffers(Buffer.alloc(10), new Float64Array([0, 0, 5]), 1), /4 numbers per item/);
});

test('CIFAR-10 from ../shared/datasets: 200 images per class packed, ImageFolder’s pixels', async (t) => {
  const root = join(SHARED, 'cifar10');
  if (!existsSync(join(root, 'train'))) {
    t.skip(`${root} absent: the generated folder above covers the format`);
    return;
  }
  const out = join(tmp, 'cifar.mmpack');
  const stats = packImageFolder(root, out, { maxPerClass: 200, seed: 3 });
  assert.deepEqual(stats.splits, { train: 2000, val: 2000 });
  assert.equal(stats.headers, 1, 'every CIFAR-10 JPEG has the same header');
  assert.ok(stats.ratio < 0.45, `ratio ${stats.ratio}`);
  const pack = openPack(out);
  for (const split of ['train', 'val']) {
    const ds = pack.split(split);
    const ref = new ImageFolder(join(root, split));
    const where = new Map<string, number>();
    for (let j = 0; j < ref.length; j++) where.set(ref.relativePath(j), j);
    const all = [...Array(ds.length).keys()];
    const js = all.map((i) => where.get(ds.relativePath(i))!);
    const mine = await ds.getMany(all, createLimiter(2));
    const theirs = await ref.getMany(js, createLimiter(2));
    assert.deepEqual(ds.classes, ref.classes);
    for (const i of all) {
      const a = mine[i] as Sample;
      const b = theirs[i] as Sample;
      assert.equal(a.label, b.label, `${split}/${ds.relativePath(i)}`);
      assert.ok(Buffer.from(a.image.data).equals(Buffer.from(b.image.data)), `${split}/${ds.relativePath(i)} pixels`);
    }
  }
});
