// The IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed): big-endian
// header (magic, dimension sizes) followed by uint8 elements.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

export function readIdx(file: string): IdxArray {
  let buf = readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error(`${file}: not an IDX file (bad magic)`);
  if (buf[2] !== 0x08) throw new Error(`${file}: IDX element type 0x${buf[2]!.toString(16)} is not uint8`);
  const ndim = buf[3]!;
  const shape: number[] = [];
  for (let i = 0; i < ndim; i++) shape.push(buf.readUInt32BE(4 + 4 * i));
  const offset = 4 + 4 * ndim;
  const count = shape.reduce((a, b) => a * b, 1);
  if (buf.length - offset !== count) {
    throw new Error(
      `${file}: header says ${count} elements of shape [${shape.join(', ')}], file holds ${buf.length - offset}`,
    );
  }
  return { shape, data: new Uint8Array(buf.buffer, buf.byteOffset + offset, count) };
}

/** Debian's dataset-fashion-mnist package puts the four files here. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export interface LabeledImages {
  images: IdxArray;
  labels: Uint8Array;
}

export function readFashionMnist(split: 'train' | 'test', dir = FASHION_MNIST_DIR): LabeledImages | null {
  const prefix = split === 'train' ? 'train' : 't10k';
  const img = join(dir, `${prefix}-images-idx3-ubyte.gz`);
  const lab = join(dir, `${prefix}-labels-idx1-ubyte.gz`);
  if (!existsSync(img) || !existsSync(lab)) return null;
  const images = readIdx(img);
  const labels = readIdx(lab).data;
  if (labels.length !== images.shape[0]) {
    throw new Error(`${lab}: ${labels.length} labels for ${images.shape[0]} images`);
  }
  return { images, labels };
}
