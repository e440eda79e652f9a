// The native libjpeg path: the same pixels as sharp for every JPEG it takes, and everything it
// must not take (other formats, CMYK, EXIF-rotated, ICC-tagged, corrupt, truncated, missing)
// handed back with the reason; ImageFolder's samples are sharp's pixels whichever decodes them; the
// shared data sets' JPEGs (or, without ../shared/datasets, generated ones of the same kind).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp, { type Sharp } from 'sharp';
import { createLimiter, SampleError, type Sample } from '../../src/data/dataset.js';
import { closeDecodePool, decodeFiles } from '../../src/data/decode-pool.js';
import { decodeImage } from '../../src/data/decode.js';
import { ImageFolder } from '../../src/data/image-folder.js';
import { decodeJpegFiles } from '../../src/data/native/jpeg.js';
import { SyntheticImages, writeImageFolder } from '../../src/data/synthetic.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SHARED = join(REPO, '..', 'shared', 'datasets');

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-jpeg-'));
after(async () => {
  await closeDecodePool();
  rmSync(tmp, { recursive: true, force: true });
});

/** A textured RGB image (synthetic data set sample), w × h. */
async function picture(w: number, h: number, seed: number): Promise<Sharp> {
  const img = await new SyntheticImages({ length: 1, size: Math.max(w, h), seed }).get(0);
  return sharp(img.image.data, { raw: { width: img.image.width, height: img.image.height, channels: 3 } }).resize(
    w,
    h,
    { fit: 'fill' },
  );
}

/** The JPEG with an EXIF block (APP1 after SOI) whose IFD0 holds only the orientation tag. */
function withOrientation(jpeg: Buffer, orientation: number, littleEndian: boolean): Buffer {
  const tiff = Buffer.alloc(8 + 2 + 12 + 4);
  const u16 = (v: number, at: number): number => (littleEndian ? tiff.writeUInt16LE(v, at) : tiff.writeUInt16BE(v, at));
  const u32 = (v: number, at: number): number => (littleEndian ? tiff.writeUInt32LE(v, at) : tiff.writeUInt32BE(v, at));
  tiff.write(littleEndian ? 'II' : 'MM', 0, 'latin1');
  u16(42, 2);
  u32(8, 4); // IFD0 right after the header
  u16(1, 8); // one entry
  u16(0x0112, 10); // orientation
  u16(3, 12); // SHORT
  u32(1, 14);
  u16(orientation, 18);
  const body = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const seg = Buffer.alloc(4);
  seg.writeUInt16BE(0xffe1, 0);
  seg.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), seg, body, jpeg.subarray(2)]);
}

function write(name: string, bytes: Buffer): string {
  const p = join(tmp, name);
  writeFileSync(p, bytes);
  return p;
}

test('native decoding gives sharp’s pixels: baseline, progressive, 4:4:4/4:2:0, grayscale, odd sizes', async () => {
  const files: string[] = [];
  const sizes: [number, number][] = [
    [32, 32],
    [17, 9],
    [72, 72],
    [250, 131],
  ];
  for (const [i, [w, h]] of sizes.entries()) {
    const p = await picture(w, h, i + 1);
    files.push(write(`base${i}.jpg`, await p.clone().jpeg({ quality: 90 }).toBuffer()));
    files.push(write(`prog${i}.jpg`, await p.clone().jpeg({ quality: 75, progressive: true }).toBuffer()));
    files.push(write(`444-${i}.jpg`, await p.clone().jpeg({ quality: 95, chromaSubsampling: '4:4:4' }).toBuffer()));
    files.push(write(`gray${i}.jpg`, await p.clone().toColourspace('b-w').jpeg().toBuffer()));
  }
  const got = await decodeJpegFiles(files, 2);
  assert.equal(got.length, files.length);
  for (const [k, f] of files.entries()) {
    const mine = got[k]!.image;
    assert.ok(mine, `${f} decoded natively (${got[k]!.reason})`);
    const ref = await decodeImage(readFileSync(f));
    assert.deepEqual([mine.width, mine.height], [ref.width, ref.height], f);
    assert.ok(Buffer.from(mine.data).equals(Buffer.from(ref.data)), `${f}: pixels differ from sharp's`);
  }
  // one thread and several give the same result
  const one = await decodeJpegFiles(files, 1);
  for (const [k, g] of one.entries()) assert.ok(Buffer.from(g.image!.data).equals(Buffer.from(got[k]!.image!.data)));
});

test('native decoding hands back what it must not decode, with the reason', async () => {
  const p = await picture(20, 12, 9);
  const good = await p.clone().jpeg().toBuffer();
  const cases: [string, Buffer, RegExp][] = [
    ['a.png', await p.clone().png().toBuffer(), /not a JPEG/],
    ['a.webp', await p.clone().webp().toBuffer(), /not a JPEG/],
    ['rot-le.jpg', withOrientation(good, 6, true), /EXIF orientation/],
    ['rot-be.jpg', withOrientation(good, 8, false), /EXIF orientation/],
    ['rot-sharp.jpg', await p.clone().jpeg().withMetadata({ orientation: 6 }).toBuffer(), /EXIF orientation|ICC/],
    ['icc.jpg', await p.clone().withIccProfile('p3').jpeg().toBuffer(), /ICC profile/],
    ['cmyk.jpg', await p.clone().toColourspace('cmyk').jpeg().toBuffer(), /colour space/],
    ['trunc.jpg', good.subarray(0, Math.floor(good.length * 0.6)), /premature end|corrupt/i],
    ['garbage.jpg', Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 5]), /./],
    ['empty.jpg', Buffer.alloc(0), /empty file/],
  ];
  const paths = cases.map(([name, bytes]) => write(name, bytes));
  paths.push(join(tmp, 'missing.jpg'));
  // an upright EXIF block (orientation 1) is decoded natively
  const upright = withOrientation(good, 1, false);
  paths.push(write('upright.jpg', upright));
  const got = await decodeJpegFiles(paths, 1);
  cases.forEach(([name, , why], k) => {
    assert.equal(got[k]!.image, null, `${name} not decoded natively`);
    assert.match(got[k]!.reason!, why, `${name}: ${got[k]!.reason}`);
  });
  assert.match(got[cases.length]!.reason!, /cannot open/);
  const mine = got[cases.length + 1]!.image;
  assert.ok(mine, `upright EXIF: ${got[cases.length + 1]!.reason}`);
  assert.ok(Buffer.from(mine.data).equals(Buffer.from((await decodeImage(upright)).data)));
});

test('ImageFolder: libjpeg takes the plain JPEGs, sharp the rest; the samples are sharp’s pixels; bad files skipped', async () => {
  const root = join(tmp, 'folder');
  for (const c of ['a', 'b']) mkdirSync(join(root, c), { recursive: true });
  const p = await picture(24, 24, 4);
  const put = async (rel: string, s: Promise<Buffer>): Promise<void> => writeFileSync(join(root, rel), await s);
  await put('a/1.jpg', p.clone().jpeg().toBuffer());
  await put('a/2.png', p.clone().png().toBuffer());
  await put('a/3.jpg', p.clone().jpeg().withMetadata({ orientation: 3 }).toBuffer());
  await put('b/4.jpg', p.clone().toColourspace('cmyk').jpeg().toBuffer());
  await put('b/5.jpg', p.clone().jpeg({ progressive: true }).toBuffer());
  const good = await p.clone().jpeg().toBuffer();
  writeFileSync(join(root, 'b/6.jpg'), good.subarray(0, good.length >> 1));
  const ds = new ImageFolder(root, { cacheDir: false });
  const all = [0, 1, 2, 3, 4, 5];
  const paths = all.map((i) => ds.path(i));
  // the one decision: which files the native decoder takes (the rest go to sharp)
  const native = await decodeJpegFiles(paths, 1);
  assert.deepEqual(
    native.map((f) => f.image !== null),
    [true, false, false, false, true, false],
    native.map((f) => f.reason ?? 'decoded').join('; '),
  );
  const got = await ds.getMany(all, createLimiter(2));
  // sharp's own pixels for every file, in the decode pool's processes
  const ref = await decodeFiles(paths);
  for (const k of all) {
    if (k === 5) {
      assert.ok(got[k] instanceof SampleError && ref[k]!.image === null, 'truncated file skipped');
      continue;
    }
    const a = got[k] as Sample;
    const b = ref[k]!.image!;
    assert.equal(a.label, ds.label(k));
    assert.deepEqual([a.image.width, a.image.height], [b.width, b.height]);
    assert.ok(Buffer.from(a.image.data).equals(Buffer.from(b.data)), `sample ${k}`);
  }
});

for (const [set, size] of [
  ['cifar10', 32],
  ['imagenette', 72],
] as const) {
  test(`native decoding of the shared ${set} (else generated ${size} px JPEGs): sharp’s pixels`, async (t) => {
    let dir = join(SHARED, set, 'val');
    if (!existsSync(dir)) {
      // the same kind of files: baseline 4:2:0 RGB JPEGs of the set's size, 5 per class
      dir = join(tmp, `gen-${set}`);
      t.diagnostic(`${join(SHARED, set)} absent: comparing generated ${size} px JPEGs in ${dir}`);
      await writeImageFolder(new SyntheticImages({ length: 20, size, seed: size, numClasses: 4 }), dir, {
        quality: 90,
      });
    }
    const classes = readdirSync(dir).sort();
    const files = classes.flatMap((c) =>
      readdirSync(join(dir, c))
        .sort()
        .slice(0, 5)
        .map((f) => join(dir, c, f)),
    );
    assert.ok(files.length >= 20, `${dir}: only ${files.length} files`);
    const got = await decodeJpegFiles(files, 2);
    for (const [k, f] of files.entries()) {
      const ref = await decodeImage(readFileSync(f));
      assert.equal(ref.width, size, `${f}: width`);
      assert.ok(got[k]!.image, `${f}: ${got[k]!.reason}`);
      assert.ok(Buffer.from(got[k]!.image!.data).equals(Buffer.from(ref.data)), f);
    }
  });
}
