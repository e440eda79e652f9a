// safetensors: the byte layout of the format, exact round trips for every dtype, files from
// an independent writer, and clear errors for truncated or corrupt files.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as torch from '../../src/torch/index.js';
import * as safetensors from '../../src/torch/io/safetensors.js';

const tmp = (): string => mkdtempSync(join(tmpdir(), 'mmoco-st-'));
const DTYPES: torch.DType[] = [
  'float64',
  'float32',
  'float16',
  'bfloat16',
  'int64',
  'int32',
  'int16',
  'int8',
  'uint8',
  'bool',
];

function fixture(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'test/fixtures', name))) dir = dirname(dir);
  return join(dir, 'test/fixtures', name);
}

function sample(dtype: torch.DType, shape: number[]): torch.Tensor {
  return torch.tidy(() => {
    const x = torch.randn(shape).mul(1000);
    if (dtype === 'bool') return x.gt(0);
    if (torch.isFloatingPoint(dtype)) {
      const t = x.to(dtype);
      // non-finite values survive too
      return t.numel() >= 3
        ? t
            .flatten()
            .indexPut_(
              [torch.tensor([0, 1, 2], { dtype: 'int64' })],
              torch.tensor([NaN, Infinity, -Infinity]).to(dtype),
            )
            .view(shape)
        : t;
    }
    return x.round().to(dtype);
  });
}

/** A tensor's raw little-endian bytes, as the writer lays them out. */
function bytesOf(t: torch.Tensor): Uint8Array {
  const chunks = safetensors.serialize({ x: t });
  return chunks[1] ?? new Uint8Array();
}

test('a written file follows the format byte for byte', () => {
  torch.tidy(() => {
    const tensors = {
      'b.weight': sample('float16', [3]),
      'a.bias': sample('float32', [2, 2]),
      'c.idx': sample('int64', [3]),
      flag: sample('bool', [5]),
    };
    const file = join(tmp(), 'm.safetensors');
    safetensors.save(file, tensors, { format: 'pt', step: '7' });
    const buf = readFileSync(file);
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0, 'data starts 8-byte aligned');
    const header = JSON.parse(buf.toString('utf8', 8, 8 + n)) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: [number, number] }
    >;
    assert.deepEqual(header.__metadata__, { format: 'pt', step: '7' });
    // larger element types first, then by name; offsets back to back from 0 to the end of the file
    const order = Object.keys(header).filter((k) => k !== '__metadata__');
    assert.deepEqual(order, ['c.idx', 'a.bias', 'b.weight', 'flag']);
    let end = 0;
    for (const k of order) {
      const e = header[k]!;
      assert.equal(e.data_offsets[0], end);
      end = e.data_offsets[1];
      const t = tensors[k as keyof typeof tensors];
      assert.deepEqual(e.shape, t.shape);
      // the stored bytes are the tensor's little-endian elements
      const stored = buf.subarray(8 + n + e.data_offsets[0], 8 + n + e.data_offsets[1]);
      assert.deepEqual(Buffer.from(stored), Buffer.from(bytesOf(t)));
    }
    assert.deepEqual(
      order.map((k) => header[k]!.dtype),
      ['I64', 'F32', 'F16', 'BOOL'],
    );
    assert.equal(8 + n + end, buf.length, 'nothing after the last tensor');
    // decode independently of the writer: int64 and float32 little-endian, bool as 0/1 bytes
    const at = (k: string): Buffer =>
      buf.subarray(8 + n + header[k]!.data_offsets[0], 8 + n + header[k]!.data_offsets[1]);
    assert.deepEqual(
      [0, 1, 2].map((i) => Number(at('c.idx').readBigInt64LE(8 * i))),
      tensors['c.idx'].toArray(),
    );
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => at('a.bias').readFloatLE(4 * i)),
      (tensors['a.bias'].toArray() as number[][]).flat(),
    );
    assert.deepEqual(
      [...at('flag')].map((v) => v === 1),
      tensors.flag.toArray(),
    );
  });
});

test('round trips are exact for every dtype, and metadata survives', () => {
  torch.tidy(() => {
    const tensors = new Map(
      DTYPES.map((d, i) => [`layer${i}.${d}`, sample(d, [[2, 3], [7], [2, 1, 3], [], [0, 4]][i % 5]!)]),
    );
    const file = join(tmp(), 'all.safetensors');
    safetensors.save(file, tensors, { note: 'ünïcödé ✓' });
    const { tensors: back, metadata } = safetensors.load(file);
    assert.deepEqual(metadata, { note: 'ünïcödé ✓' });
    assert.deepEqual([...back.keys()].sort(), [...tensors.keys()].sort());
    for (const [k, t] of tensors) {
      const b = back.get(k)!;
      assert.equal(b.dtype, t.dtype, k);
      assert.deepEqual(b.shape, t.shape, k);
      assert.deepEqual(Buffer.from(bytesOf(b)), Buffer.from(bytesOf(t)), `${k}: bytes differ`);
    }
  });
});

test('a file from an independent writer loads with the values PyTorch saw', () => {
  torch.tidy(() => {
    const expect = JSON.parse(readFileSync(fixture('reference.safetensors.json'), 'utf8')) as {
      metadata: Record<string, string>;
      tensors: Record<string, { dtype: string; shape: number[]; values: (number | boolean)[] }>;
    };
    const { tensors, metadata } = safetensors.load(fixture('reference.safetensors'));
    assert.deepEqual(metadata, expect.metadata);
    assert.equal(tensors.size, Object.keys(expect.tensors).length);
    for (const [name, e] of Object.entries(expect.tensors)) {
      const t = tensors.get(name)!;
      assert.deepEqual(t.shape, e.shape, name);
      const values = e.dtype === 'BOOL' ? t.toArray() : t.float().flatten().toArray();
      assert.deepEqual(
        t.dtype === 'bool' ? (values as boolean[] | boolean) : values,
        e.dtype === 'BOOL' && e.shape.length === 0 ? e.values[0] : e.values,
        name,
      );
    }
  });
});

test('truncated and corrupt files give errors that name the file and the problem', () => {
  torch.tidy(() => {
    const dir = tmp();
    const file = join(dir, 'ok.safetensors');
    safetensors.save(file, { w: torch.ones(4, 4), b: torch.zeros(4) });
    const good = readFileSync(file);
    const n = Number(good.readBigUInt64LE(0));
    const live = torch.liveTensors();
    const bad = (name: string, bytes: Uint8Array, re: RegExp): void => {
      const p = join(dir, name);
      writeFileSync(p, bytes);
      assert.throws(
        () => safetensors.load(p),
        (e: Error) => e.message.includes(p) && re.test(e.message),
        name,
      );
      assert.equal(torch.liveTensors(), live, `${name}: tensors of a failed load are released`);
    };
    bad('tiny.safetensors', good.subarray(0, 5), /shorter than the 8-byte header length/);
    bad('cut-header.safetensors', good.subarray(0, 8 + n - 3), /header length \d+ exceeds the file.*truncated/);
    bad('cut-data.safetensors', good.subarray(0, good.length - 10), /tensor 'w'.*truncated/);
    const extra = Buffer.concat([good, Buffer.from([1, 2, 3])]);
    bad('extra.safetensors', extra, /3 bytes after the last tensor/);
    const json = Buffer.from(good);
    json.write('{', 8 + 1);
    bad('json.safetensors', json, /header is not valid JSON/);
    const dtype = Buffer.from(good.toString('latin1').replace('"F32"', '"Q32"'), 'latin1');
    bad('dtype.safetensors', dtype, /tensor '\w': unknown dtype "Q32" \(allowed F64, F32/);
    const shape = Buffer.from(good.toString('latin1').replace('[4,4]', '[4,5]'), 'latin1');
    bad('shape.safetensors', shape, /tensor 'w': float32\[4, 5\] needs 80 bytes, data_offsets give 64/);
    assert.throws(() => safetensors.load(join(dir, 'missing.safetensors')), /ENOENT.*missing\.safetensors/);
  });
});

test('writes are atomic: no temporary files remain, a failed write leaves the old file', () => {
  torch.tidy(() => {
    const dir = tmp();
    const file = join(dir, 'ckpt.safetensors');
    safetensors.save(file, { a: torch.ones(2) });
    safetensors.save(file, { a: torch.full([2], 3) });
    assert.deepEqual(readdirSync(dir), ['ckpt.safetensors']);
    assert.deepEqual(safetensors.load(file).tensors.get('a')!.toArray(), [3, 3]);
    const before = readFileSync(file);
    assert.throws(() => safetensors.save(file, { __metadata__: torch.ones(1) }), /'__metadata__' cannot name a tensor/);
    assert.throws(() => safetensors.save(join(dir, 'no/such/dir/x.safetensors'), { a: torch.ones(1) }), /ENOENT/);
    assert.deepEqual(readFileSync(file), before);
    assert.deepEqual(readdirSync(dir), ['ckpt.safetensors']);
  });
});
