// CIFAR-10/100 binary readers on generated files, and the download path: checksum
// verification (good and bad) over a local HTTP server and file://, then extraction.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { CIFAR_ARCHIVES, Cifar10, Cifar100, downloadCifar } from '../../src/data/cifar.js';
import { downloadFile, verifyFile } from '../../src/data/download.js';
import { extractTar } from '../../src/data/tar.js';

const tmp = mkdtempSync(join(tmpdir(), 'mmoco-cifar-'));
const PIX = 3072;

/** A record's pixels: planar R, G, B planes with values that identify (record, channel, position). */
function pixels(seed: number): Buffer {
  const b = Buffer.alloc(PIX);
  for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) b[c * 1024 + p] = (seed * 7 + c * 50 + p) & 0xff;
  return b;
}

function cifar10Batch(n: number, first: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) parts.push(Buffer.from([(first + i) % 10]), pixels(first + i));
  return Buffer.concat(parts);
}

function cifar100File(n: number, first: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) parts.push(Buffer.from([(first + i) % 20, (first + i * 3) % 100]), pixels(first + i));
  return Buffer.concat(parts);
}

/** A ustar archive of the given files (POSIX header, 512-byte blocks). */
function tar(files: Record<string, Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, data] of Object.entries(files)) {
    const h = Buffer.alloc(512);
    h.write(name, 0, 100, 'utf8');
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

function cifar10Archive(): Buffer {
  const dir = CIFAR_ARCHIVES.cifar10.folder;
  const files: Record<string, Buffer> = {};
  for (let k = 1; k <= 5; k++) files[`${dir}/data_batch_${k}.bin`] = cifar10Batch(4, (k - 1) * 4);
  files[`${dir}/test_batch.bin`] = cifar10Batch(3, 100);
  files[`${dir}/batches.meta.txt`] = Buffer.from(
    'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n',
  );
  return gzipSync(tar(files));
}

let server: Server;
let base = '';
const served = new Map<string, Buffer>();
before(async () => {
  server = createServer((req, res) => {
    const body = served.get(req.url ?? '');
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.close();
  rmSync(tmp, { recursive: true, force: true });
});

test('CIFAR-10 binary: records, labels, planar to HWC, class names', async () => {
  const dir = join(tmp, 'c10', CIFAR_ARCHIVES.cifar10.folder);
  mkdirSync(dir, { recursive: true });
  for (let k = 1; k <= 5; k++) writeFileSync(join(dir, `data_batch_${k}.bin`), cifar10Batch(3, (k - 1) * 3));
  writeFileSync(join(dir, 'test_batch.bin'), cifar10Batch(2, 50));
  const train = new Cifar10(join(tmp, 'c10'), 'train'); // finds the sub-folder
  assert.equal(train.length, 15);
  assert.deepEqual(train.classes.slice(0, 3), ['airplane', 'automobile', 'bird']);
  assert.deepEqual(
    Array.from({ length: 15 }, (_, i) => train.label(i)),
    Array.from({ length: 15 }, (_, i) => i % 10),
  );
  const s = await train.get(4);
  assert.equal(s.label, 4);
  assert.deepEqual([s.image.width, s.image.height, s.image.data.length], [32, 32, PIX]);
  const ref = pixels(4);
  for (const p of [0, 33, 1023]) {
    assert.deepEqual([...s.image.data.subarray(3 * p, 3 * p + 3)], [ref[p], ref[1024 + p], ref[2048 + p]]);
  }
  const test10 = new Cifar10(dir, 'test');
  assert.equal(test10.length, 2);
  assert.equal(test10.label(1), 51 % 10);
  assert.equal(test10.source(1), 'cifar10/test#1');
  assert.throws(() => test10.label(2), /out of range/);

  writeFileSync(join(dir, 'test_batch.bin'), cifar10Batch(2, 0).subarray(0, 5000));
  assert.throws(
    () => new Cifar10(dir, 'test'),
    /test_batch\.bin: 5000 bytes is not a whole number of 3073-byte records/,
  );
  assert.throws(() => new Cifar10(join(tmp, 'nowhere'), 'train'), /data_batch_1\.bin.*not found in/);
});

test('CIFAR-100 binary: coarse and fine labels', async () => {
  const dir = join(tmp, 'c100');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'train.bin'), cifar100File(30, 0));
  writeFileSync(join(dir, 'test.bin'), cifar100File(5, 7));
  writeFileSync(join(dir, 'coarse_label_names.txt'), Array.from({ length: 20 }, (_, i) => `super${i}`).join('\n'));
  const fine = new Cifar100(dir, 'train');
  assert.equal(fine.length, 30);
  assert.equal(fine.classes.length, 100);
  assert.equal(fine.fineLabel(5), 15);
  assert.equal(fine.coarseLabel(5), 5);
  assert.equal(fine.label(5), 15);
  assert.equal(fine.coarseClasses[3], 'super3');
  const coarse = new Cifar100(dir, 'test', 'coarse');
  assert.equal(coarse.classes.length, 20);
  assert.equal(coarse.label(2), 9);
  assert.equal((await coarse.get(2)).label, 9);
  writeFileSync(join(dir, 'test.bin'), Buffer.concat([Buffer.from([25, 0]), pixels(0)]));
  assert.throws(() => new Cifar100(dir, 'test'), /labels 25\/0/);
});

test('download: good checksum over HTTP, then extraction into a readable data set', async () => {
  const archive = cifar10Archive();
  served.set('/cifar-10-binary.tar.gz', archive);
  const md5 = createHash('md5').update(archive).digest('hex');
  const root = join(tmp, 'dl-good');
  const dir = await downloadCifar('cifar10', root, { url: `${base}/cifar-10-binary.tar.gz`, md5 });
  assert.equal(dir, join(root, CIFAR_ARCHIVES.cifar10.folder));
  const ds = new Cifar10(root, 'train');
  assert.equal(ds.length, 20);
  assert.equal(ds.classes[9], 'truck');
  assert.equal(new Cifar10(root, 'test').length, 3);
  assert.ok(await verifyFile(join(root, 'cifar-10-binary.tar.gz'), { md5 }));
  // already there: no request is made (the server no longer has it)
  served.delete('/cifar-10-binary.tar.gz');
  assert.equal(await downloadCifar('cifar10', root, { url: `${base}/cifar-10-binary.tar.gz`, md5 }), dir);
});

test('download: a bad checksum rejects and leaves no file; HTTP errors are named', async () => {
  const archive = cifar10Archive();
  served.set('/bad.tar.gz', archive);
  const root = join(tmp, 'dl-bad');
  await assert.rejects(
    downloadCifar('cifar10', root, { url: `${base}/bad.tar.gz` }), // the published md5 cannot match
    new RegExp(
      `md5 mismatch: expected ${CIFAR_ARCHIVES.cifar10.md5}, got ${createHash('md5').update(archive).digest('hex')}`,
    ),
  );
  assert.equal(existsSync(join(root, 'cifar-10-binary.tar.gz')), false);
  assert.equal(existsSync(join(root, 'cifar-10-binary.tar.gz.part')), false);
  assert.equal(existsSync(join(root, CIFAR_ARCHIVES.cifar10.folder)), false);

  const sha = createHash('sha256').update(archive).digest('hex');
  await assert.rejects(
    downloadFile(`${base}/missing`, join(root, 'x'), { sha256: sha }),
    /download http:\/\/127\.0\.0\.1:\d+\/missing: HTTP 404/,
  );
  await assert.rejects(
    downloadFile(`${base}/bad.tar.gz`, join(root, 'y'), { sha256: '0'.repeat(64) }),
    /sha256 mismatch/,
  );
  await assert.rejects(downloadFile(`${base}/bad.tar.gz`, join(root, 'z'), {}), /a checksum .* is required/);
});

test('download: file:// URLs, sha256, and a tar that tries to escape', async () => {
  const src = join(tmp, 'src.bin');
  writeFileSync(src, Buffer.from('hello data'));
  const sha256 = createHash('sha256').update('hello data').digest('hex');
  const dest = join(tmp, 'file-dl', 'copy.bin');
  await downloadFile(pathToFileURL(src).href, dest, { sha256 });
  assert.equal(readFileSync(dest, 'utf8'), 'hello data');

  const evil = join(tmp, 'evil.tar');
  writeFileSync(evil, tar({ '../outside.txt': Buffer.from('x') }));
  await assert.rejects(extractTar(evil, join(tmp, 'evil-out')), /would be written outside/);
  assert.equal(existsSync(join(tmp, 'outside.txt')), false);
  const truncated = join(tmp, 'trunc.tar.gz');
  writeFileSync(truncated, gzipSync(tar({ 'a.bin': Buffer.alloc(2000, 1) }).subarray(0, 1024)));
  await assert.rejects(extractTar(truncated, join(tmp, 'trunc-out')), /truncated tar archive/);
});
