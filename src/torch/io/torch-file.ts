// Files of torch.save, read without Python and without running their pickles, and written so
// that torch.load(weights_only=True) reads them.
//
// Two containers: the zip format (torch.save's default since 1.6: `<archive>/data.pkl`, one
// record `<archive>/data/<key>` of raw bytes per storage, `version`, since 2.x `byteorder`),
// read and written by libtorch's own PyTorchStreamReader/Writer (native/src/serialize.cc); and
// the legacy format (`_use_new_zipfile_serialization=False`, and the .pth.tar files of older
// code): five pickles back to back — magic number, protocol version, system info, the object
// with storages as persistent ids, the sorted list of storage keys — then each storage's bytes
// after an 8-byte little-endian element count. Reading gives the pickled object with
// `TensorRef`s in place of tensors; `loadTensors` then reads just the tensors asked for (a
// checkpoint's optimizer state is twice the model and usually not wanted).
import { existsSync, openSync, readSync, closeSync, readFileSync, statSync } from 'node:fs';
import { DTYPE_BYTES, type DType } from '../dtype.js';
import { dtypeCode } from '../dtype.js';
import { N } from '../native.js';
import { _wrap, type Tensor } from '../tensor.js';
import { writeFileAtomicWith } from './atomic.js';
import {
  pickle,
  PickleError,
  STORAGE_TYPE_OF,
  PyTuple,
  storageDtype,
  TensorRef,
  typeName,
  unpickle,
  type Picklable,
  type PickledTensor,
  type PyValue,
  type StorageRef,
} from './pickle.js';

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;

export interface TorchFile {
  /** the file, as given */
  readonly source: string;
  readonly format: 'zip' | 'legacy';
  /** the pickled object, tensors as TensorRef */
  readonly value: PyValue;
  /** reads the given tensors onto the CPU (the caller disposes them) */
  loadTensors(refs: readonly TensorRef[]): Tensor[];
}

/** Whether the file looks like torch.save's output (zip or legacy pickle), from its first bytes. */
export function isTorchFile(path: string): boolean {
  const head = readHead(path, 2);
  return (head[0] === 0x50 && head[1] === 0x4b) || (head[0] === 0x80 && head[1]! >= 2);
}

function readHead(path: string, n: number): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(n);
    const got = readSync(fd, b, 0, n, 0);
    return b.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** Reads a torch.save file's object (tensors as TensorRef, not yet loaded). */
export function readTorchFile(path: string): TorchFile {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  if (!statSync(path).isFile()) throw new Error(`${path}: not a file`);
  const head = readHead(path, 512);
  if (head[0] === 0x50 && head[1] === 0x4b) return readZip(path);
  if (head.length >= 262 && Buffer.from(head.subarray(257, 262)).toString('latin1') === 'ustar') {
    throw new Error(`${path}: a tar archive (the format of PyTorch before 0.4), which mmoco does not read`);
  }
  if (head[0] === 0x80) return readLegacy(path);
  throw new Error(`${path}: not a PyTorch file (neither torch.save's zip format nor its legacy pickle format)`);
}

function tupleItems(v: PyValue): PyValue[] | null {
  return v instanceof PyTuple ? v.items : null;
}

/** ('storage', storage type, key, location, numel[, view metadata]) → its parts, checked. */
function storagePid(
  pid: PyValue,
  source: string,
): { dtype: DType; key: string; location: string; numel: number; view: PyValue } {
  const items = tupleItems(pid);
  const bad = (what: string): never => {
    throw new PickleError(`${source}: persistent id ${what}`);
  };
  if (!items || items[0] !== 'storage') bad(`is a ${typeName(pid)}, not ('storage', ...)`);
  const [, type, key, location, numel, view] = items!;
  const dtype = storageDtype(type!);
  if (!dtype) bad(`names storage type ${typeName(type)}, which mmoco does not read`);
  if (typeof key !== 'string' || !/^[\w.-]+$/.test(key)) bad(`has a bad storage key ${String(key)}`);
  if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) bad(`has a bad element count`);
  return { dtype: dtype!, key: key as string, location: String(location), numel: numel as number, view: view ?? null };
}

function readZip(path: string): TorchFile {
  let names: string[];
  try {
    names = N.zipRecords(path) as string[];
  } catch (e) {
    const why = (e as Error).message.replace(/^zipRecords: /, '').replace(/ \(arguments: .*\)$/, '');
    throw new Error(`${path}: a zip file libtorch cannot read (truncated or corrupt?): ${why}`);
  }
  const records = new Set<string>(names);
  if (!records.has('data.pkl')) {
    throw new Error(
      `${path}: a zip file without data.pkl: not written by torch.save` +
        (records.has('constants.pkl') ? ' (a TorchScript archive, torch.jit.save)' : ''),
    );
  }
  if (records.has('byteorder')) {
    const order = Buffer.from(N.zipRecord(path, 'byteorder') as ArrayBuffer).toString('latin1');
    if (order !== 'little') throw new Error(`${path}: written on a ${order}-endian machine, which mmoco does not read`);
  }
  const pkl = new Uint8Array(N.zipRecord(path, 'data.pkl') as ArrayBuffer);
  const storages = new Map<string, StorageRef>();
  const { value } = unpickle(pkl, {
    source: path,
    persistentLoad: (pid) => {
      const p = storagePid(pid, path);
      const rec = `data/${p.key}`;
      if (!records.has(rec)) throw new PickleError(`${path}: storage '${p.key}' has no record ${rec}`);
      const s: StorageRef = { kind: 'storage', key: rec, dtype: p.dtype, location: p.location, numel: p.numel };
      storages.set(rec, s);
      return s;
    },
  });
  return {
    source: path,
    format: 'zip',
    value,
    loadTensors: (refs) => {
      const ids = N.zipTensors(
        path,
        refs.map((r) => [r.storage.key, dtypeCode(r.storage.dtype), r.shape, r.stride, r.offset]),
      ) as number[];
      return ids.map((id) => _wrap.wrap(id));
    },
  };
}

function readLegacy(path: string): TorchFile {
  const buf = new Uint8Array(readFileSync(path));
  let pos = 0;
  const next = (o: Parameters<typeof unpickle>[1] = {}): PyValue => {
    const r = unpickle(buf, { source: path, ...o }, pos);
    pos = r.end;
    return r.value;
  };
  const magic = next();
  if (magic !== Number(LEGACY_MAGIC) && magic !== LEGACY_MAGIC) {
    throw new Error(`${path}: a pickle, but not torch.save's (no magic number): mmoco reads only torch.save files`);
  }
  const protocol = next();
  if (protocol !== 1001) throw new Error(`${path}: legacy torch.save protocol ${String(protocol)} (expected 1001)`);
  const sys = next();
  if (sys instanceof Map && sys.get('little_endian') === false) {
    throw new Error(`${path}: written on a big-endian machine, which mmoco does not read`);
  }
  const roots = new Map<string, { dtype: DType; numel: number }>();
  const value = next({
    persistentLoad: (pid) => {
      const p = storagePid(pid, path);
      let viewOffset = 0;
      const view = tupleItems(p.view);
      if (view) {
        // (view key, element offset in the root storage, view size)
        if (typeof view[1] !== 'number') throw new PickleError(`${path}: storage view without an offset`);
        viewOffset = view[1];
      }
      const known = roots.get(p.key);
      if (known && known.dtype !== p.dtype) throw new PickleError(`${path}: storage '${p.key}' read with two dtypes`);
      roots.set(p.key, { dtype: p.dtype, numel: p.numel });
      const s: StorageRef = {
        kind: 'storage',
        key: p.key,
        dtype: p.dtype,
        location: p.location,
        numel: p.numel,
        viewOffset,
      };
      return s;
    },
  });
  const keys = next();
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string')) {
    throw new Error(`${path}: the legacy storage key list is missing or not a list of strings`);
  }
  // the storages follow in the order of the key list, each after its element count
  const spans = new Map<string, [number, number]>();
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  for (const key of keys as string[]) {
    const root = roots.get(key);
    if (!root) throw new Error(`${path}: storage '${key}' is listed but no tensor uses it`);
    if (pos + 8 > buf.length) throw new Error(`${path}: truncated before storage '${key}'`);
    const count = Number(view.getBigInt64(pos, true));
    pos += 8;
    const bytes = count * DTYPE_BYTES[root.dtype];
    if (count !== root.numel) {
      throw new Error(`${path}: storage '${key}' holds ${count} elements, its tensors say ${root.numel}`);
    }
    if (pos + bytes > buf.length) throw new Error(`${path}: truncated in storage '${key}'`);
    spans.set(key, [pos, bytes]);
    pos += bytes;
  }
  for (const key of roots.keys()) if (!spans.has(key)) throw new Error(`${path}: storage '${key}' is not in the file`);
  return {
    source: path,
    format: 'legacy',
    value,
    loadTensors: (refs) => {
      const out: Tensor[] = [];
      try {
        for (const r of refs) {
          const [start, n] = spans.get(r.storage.key)!;
          out.push(
            _wrap.wrap(
              N.stridedFromBuffer(
                buf.subarray(start, start + n),
                dtypeCode(r.storage.dtype),
                r.shape,
                r.stride,
                r.offset,
              ),
            ),
          );
        }
      } catch (e) {
        for (const t of out) t.dispose();
        throw new Error(`${path}: ${(e as Error).message}`);
      }
      return out;
    },
  };
}

/** Every TensorRef in a value, with its path ('state_dict.blocks.0.attn.qkv.weight'). */
export function tensorRefs(v: PyValue, prefix = ''): Map<string, TensorRef> {
  const out = new Map<string, TensorRef>();
  const walk = (x: PyValue, p: string, depth: number): void => {
    if (depth > 64) return;
    if (x instanceof TensorRef) out.set(p, x);
    else if (x instanceof Map) for (const [k, y] of x) walk(y, p ? `${p}.${String(k)}` : String(k), depth + 1);
    else if (Array.isArray(x) || x instanceof PyTuple) {
      (Array.isArray(x) ? x : x.items).forEach((y, i) => walk(y, p ? `${p}.${i}` : String(i), depth + 1));
    }
  };
  walk(v, prefix, 0);
  return out;
}

/** A value to save: plain values, tuples, lists, dicts (Map or object) and tensors. */
export type Savable =
  | null
  | boolean
  | number
  | string
  | PyTuple
  | Savable[]
  | Map<string, Savable>
  | Tensor
  | { readonly [k: string]: Savable };

const isTensor = (v: unknown): v is Tensor =>
  typeof v === 'object' && v !== null && typeof (v as Tensor).dispose === 'function' && 'dtype' in v && 'shape' in v;

/**
 * Writes `value` as torch.save does (zip format, protocol-2 pickle, one storage per tensor, stored
 * contiguous on the CPU), atomically. torch.load(path, weights_only=True) reads it.
 */
export function saveTorchFile(path: string, value: Savable): void {
  const names: string[] = ['data.pkl', 'byteorder'];
  const bufs: Uint8Array[] = [new Uint8Array(0), Buffer.from('little')];
  const convert = (v: Savable): Picklable => {
    if (isTensor(v)) {
      if (!STORAGE_TYPE_OF[v.dtype])
        throw new TypeError(`saveTorchFile: ${path}: no storage type for dtype ${v.dtype}`);
      const key = String(names.length - 2);
      const bytes = new Uint8Array(N.toBuffer(v.id, null) as ArrayBuffer);
      names.push(`data/${key}`);
      bufs.push(bytes);
      const shape = [...v.shape];
      const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
      const t: PickledTensor = { pickledTensor: true, key, dtype: v.dtype, numel: v.numel(), shape, stride };
      return t;
    }
    if (v === null || typeof v !== 'object') return v;
    if (v instanceof PyTuple) return new PyTuple(v.items.map((x) => convert(x as Savable)) as unknown as PyValue[]);
    if (Array.isArray(v)) return v.map(convert);
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
    return new Map(entries.map(([k, x]) => [k, convert(x)]));
  };
  bufs[0] = pickle(convert(value));
  writeFileAtomicWith(path, (tmp) => N.zipWrite(tmp, names, bufs));
}
