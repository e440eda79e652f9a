// IDX reader: header parsing, gzip, and errors that name the file and the problem.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { readFashionMnist, readIdx } from '../../src/data/idx.js';

function idx(shape: number[], data: number[]): Buffer {
  const head = Buffer.alloc(4 + 4 * shape.length);
  head.writeUInt8(0x08, 2);
  head.writeUInt8(shape.length, 3);
  shape.forEach((s, i) => head.writeUInt32BE(s, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

test('reads plain and gzip IDX files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mmoco-idx-'));
  writeFileSync(join(dir, 'a.idx'), idx([2, 3], [1, 2, 3, 4, 5, 6]));
  writeFileSync(join(dir, 'a.idx.gz'), gzipSync(idx([2, 3], [1, 2, 3, 4, 5, 6])));
  for (const f of ['a.idx', 'a.idx.gz']) {
    const r = readIdx(join(dir, f));
    assert.deepEqual(r.shape, [2, 3]);
    assert.deepEqual([...r.data], [1, 2, 3, 4, 5, 6]);
  }
  writeFileSync(join(dir, 'short.idx'), idx([2, 3], [1, 2, 3]));
  assert.throws(
    () => readIdx(join(dir, 'short.idx')),
    /short\.idx: header says 6 elements of shape \[2, 3\], file holds 3/,
  );
  writeFileSync(join(dir, 'bad.idx'), Buffer.from([1, 2, 3, 4]));
  assert.throws(() => readIdx(join(dir, 'bad.idx')), /bad\.idx: not an IDX file/);
  assert.equal(readFashionMnist('train', dir), null);
});

test('Fashion-MNIST from the Debian package, when installed', (t) => {
  const train = readFashionMnist('train');
  if (!train) {
    t.diagnostic('dataset-fashion-mnist not installed; reader covered by the synthetic files above');
    return;
  }
  assert.deepEqual(train.images.shape, [60000, 28, 28]);
  assert.equal(train.labels.length, 60000);
  // 6,000 images per class
  const counts = new Array<number>(10).fill(0);
  for (const l of train.labels) counts[l]!++;
  assert.deepEqual(counts, new Array<number>(10).fill(6000));
});
