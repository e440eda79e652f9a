// safetensors (huggingface/safetensors format): an 8-byte little-endian header length, a
// JSON header mapping names to {dtype, shape, data_offsets} plus optional "__metadata__"
// (string → string), padded with spaces so the data that follows starts 8-byte aligned,
// then the tensors' bytes, row-major, little-endian, back to back.
import { readFileSync } from 'node:fs';
import { DTYPE_BYTES, type DType } from '../dtype.js';
import { dtypeCode } from '../dtype.js';
import { N } from '../native.js';
import { _wrap, type Tensor } from '../tensor.js';
import { writeFileAtomic } from './atomic.js';

const TO_ST: Partial<Record<DType, string>> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};
const FROM_ST: Record<string, DType> = Object.fromEntries(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));
const ALIGN = 8;

export type Metadata = Record<string, string>;
export type NamedTensors = Record<string, Tensor> | Map<string, Tensor>;

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The file's bytes as chunks (header, then each tensor's data), for writing without one big copy. */
export function serialize(tensors: NamedTensors, metadata?: Metadata): Uint8Array[] {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  // Larger element types first, then by name: every tensor stays aligned to its element size.
  entries.sort(([an, a], [bn, b]) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype] || (an < bn ? -1 : an > bn ? 1 : 0));
  const header: Record<string, Entry | Metadata> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new TypeError(`safetensors: metadata value of '${k}' must be a string`);
    }
    header.__metadata__ = metadata;
  }
  const data: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new TypeError("safetensors: '__metadata__' cannot name a tensor");
    const st = TO_ST[t.dtype];
    if (!st) throw new TypeError(`safetensors: tensor '${name}' has dtype ${t.dtype}, which the format cannot store`);
    const bytes = new Uint8Array(N.toBuffer(t.id, null) as ArrayBuffer);
    header[name] = { dtype: st, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    offset += bytes.byteLength;
    data.push(bytes);
  }
  let json = JSON.stringify(header);
  const jsonLength = Buffer.byteLength(json);
  json += ' '.repeat((ALIGN - ((8 + jsonLength) % ALIGN)) % ALIGN);
  const head = Buffer.alloc(8 + Buffer.byteLength(json));
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)), 0);
  head.write(json, 8, 'utf8');
  return [head, ...data];
}

/** Writes a safetensors file atomically (temporary file, fsync, rename). */
export function save(path: string, tensors: NamedTensors, metadata?: Metadata): void {
  writeFileAtomic(path, serialize(tensors, metadata));
}

export interface Loaded {
  tensors: Map<string, Tensor>;
  metadata: Metadata;
}

function fail(source: string, what: string): never {
  throw new Error(`safetensors: ${source}: ${what}`);
}

/** Parses a whole safetensors file held in memory; `source` names it in errors. */
export function parse(buf: Uint8Array, source = '<buffer>', opts: { device?: string } = {}): Loaded {
  const view = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.length < 8) fail(source, `file is ${view.length} bytes, shorter than the 8-byte header length`);
  const n = view.readBigUInt64LE(0);
  if (n > BigInt(view.length - 8)) {
    fail(source, `header length ${n} exceeds the file (${view.length} bytes): truncated or not a safetensors file`);
  }
  const headerEnd = 8 + Number(n);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(view.toString('utf8', 8, headerEnd)) as Record<string, unknown>;
  } catch (e) {
    fail(source, `header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    fail(source, 'header is not a JSON object');
  const dataLength = view.length - headerEnd;
  const metadata = (header.__metadata__ ?? {}) as Metadata;
  const spans: [number, number, string][] = [];
  const tensors = new Map<string, Tensor>();
  try {
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const e = raw as Partial<Entry>;
      const dtype = FROM_ST[String(e?.dtype)];
      if (!dtype) {
        fail(
          source,
          `tensor '${name}': unknown dtype ${JSON.stringify(e?.dtype)} (allowed ${Object.keys(FROM_ST).join(', ')})`,
        );
      }
      const shape = e.shape;
      if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) {
        fail(source, `tensor '${name}': bad shape ${JSON.stringify(shape)}`);
      }
      const off = e.data_offsets;
      if (
        !Array.isArray(off) ||
        off.length !== 2 ||
        !off.every((o) => Number.isSafeInteger(o) && o >= 0) ||
        off[0] > off[1]
      ) {
        fail(source, `tensor '${name}': bad data_offsets ${JSON.stringify(off)}`);
      }
      const want = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
      if (off[1] - off[0] !== want) {
        fail(
          source,
          `tensor '${name}': ${dtype}[${shape.join(', ')}] needs ${want} bytes, data_offsets give ${off[1] - off[0]}`,
        );
      }
      if (off[1] > dataLength) {
        fail(
          source,
          `tensor '${name}': data ends at byte ${off[1]} but the file has ${dataLength} data bytes: truncated`,
        );
      }
      spans.push([off[0], off[1], name]);
      const bytes = new Uint8Array(view.buffer, view.byteOffset + headerEnd + off[0], want);
      // fromBuffer copies, so an unaligned offset in someone else's file is fine.
      tensors.set(name, _wrap.wrap(N.fromBuffer(bytes, dtypeCode(dtype), shape, opts.device ?? null)));
    }
    spans.sort((a, b) => a[0] - b[0]);
    let end = 0;
    for (const [s, e, name] of spans) {
      if (s !== end)
        fail(
          source,
          `tensor '${name}' starts at byte ${s}, expected ${end}: ${s < end ? 'overlapping' : 'a gap in the'} data`,
        );
      end = e;
    }
    if (end !== dataLength) fail(source, `${dataLength - end} bytes after the last tensor: corrupt file`);
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw e;
  }
  return { tensors, metadata };
}

/** Loads every tensor of a safetensors file (onto `device`, default the CPU). */
export function load(path: string, opts: { device?: string } = {}): Loaded {
  return parse(readFileSync(path), path, opts);
}
