// Python's pickle, read as data and never run: a stack machine over the opcodes of protocols
// 0-5 that builds plain values (None, bools, ints, floats, str, bytes, lists, tuples, dicts,
// sets) and, for the few callables torch.save's files use (tensor and parameter rebuilds,
// storage types, OrderedDict, argparse.Namespace, numpy scalars...), values of our own that
// stand for what Python would build. A GLOBAL naming anything else is refused on the spot,
// before any call, so a crafted file cannot get a function called (that is how pickle exploits
// work: GLOBAL os.system + REDUCE). The writer emits protocol 2 as torch.save does, with only
// opcodes that torch.load(weights_only=True) accepts.
import { DTYPE_BYTES, type DType } from '../dtype.js';

/** A Python tuple (lists are JS arrays). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** An instance of an allowed plain class (argparse.Namespace): its constructor arguments and state. */
export class PyObject {
  constructor(
    readonly className: string,
    readonly args: PyValue[],
    public state: PyValue = null,
  ) {}
  /** The attributes (the BUILD state's dict) as a Map, or an empty one. */
  get attrs(): PyDict {
    return this.state instanceof Map ? this.state : new Map();
  }
}

/** What a persistent id of torch.save stands for: one storage (a run of elements of one dtype). */
export interface StorageRef {
  readonly kind: 'storage';
  /** the record name (zip: `data/<key>`) or the legacy format's key */
  readonly key: string;
  readonly dtype: DType;
  /** where it was saved ('cpu', 'cuda:0'): informational, mmoco loads to the CPU */
  readonly location: string;
  /** elements in the storage */
  readonly numel: number;
  /** legacy format: the element offset of a storage view within `key` */
  readonly viewOffset?: number;
}

/** A tensor as torch._utils._rebuild_tensor_v2 would build it: a strided view of a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
    readonly requiresGrad: boolean,
  ) {}
  numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
}

export type PyDict = Map<PyValue, PyValue>;
export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyTuple
  | PyDict
  | Set<PyValue>
  | PyObject
  | TensorRef
  | StorageRef
  | PyGlobal;

/** A callable or class from the allow-list, on the stack until a REDUCE/NEWOBJ/BUILD uses it. */
export class PyGlobal {
  constructor(readonly name: string) {}
}

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32',
  DoubleStorage: 'float64',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};
export const STORAGE_TYPE_OF: Record<DType, string> = Object.fromEntries(
  Object.entries(STORAGE_DTYPES).map(([k, v]) => [v, k]),
) as Record<DType, string>;

const TORCH_DTYPES: Record<string, DType> = {
  float32: 'float32',
  float: 'float32',
  float64: 'float64',
  double: 'float64',
  float16: 'float16',
  half: 'float16',
  bfloat16: 'bfloat16',
  int64: 'int64',
  long: 'int64',
  int32: 'int32',
  int: 'int32',
  int16: 'int16',
  short: 'int16',
  int8: 'int8',
  uint8: 'uint8',
  bool: 'bool',
};

/** numpy dtype codes a numpy scalar may carry, with how to read its bytes. */
const NUMPY_SCALARS: Record<string, [number, (v: DataView, little: boolean) => number | boolean]> = {
  f8: [8, (v, l) => v.getFloat64(0, l)],
  f4: [4, (v, l) => v.getFloat32(0, l)],
  i8: [8, (v, l) => Number(v.getBigInt64(0, l))],
  i4: [4, (v, l) => v.getInt32(0, l)],
  i2: [2, (v, l) => v.getInt16(0, l)],
  i1: [1, (v) => v.getInt8(0)],
  u8: [8, (v, l) => Number(v.getBigUint64(0, l))],
  u4: [4, (v, l) => v.getUint32(0, l)],
  u2: [2, (v, l) => v.getUint16(0, l)],
  u1: [1, (v) => v.getUint8(0)],
  b1: [1, (v) => v.getUint8(0) !== 0],
};

/** The globals a checkpoint may name. Anything else is refused. */
function isAllowedGlobal(name: string): boolean {
  if (ALLOWED_GLOBALS.has(name)) return true;
  const [mod, attr] = splitName(name);
  if (mod === 'torch' && (attr in STORAGE_DTYPES || attr in TORCH_DTYPES)) return true;
  return false;
}
const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'builtins.set',
  'builtins.frozenset',
  'builtins.slice',
  'builtins.bytearray',
  '__builtin__.set',
  '__builtin__.frozenset',
  '_codecs.encode',
  'argparse.Namespace',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor_v3',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  'torch._tensor._rebuild_from_type_v2',
  'torch.nn.parameter.Parameter',
  'torch.Tensor',
  'torch.Size',
  'torch.device',
  'torch.storage.UntypedStorage',
  'torch.UntypedStorage',
  'numpy.core.multiarray.scalar',
  'numpy._core.multiarray.scalar',
  'numpy.dtype',
]);

function splitName(name: string): [string, string] {
  const i = name.lastIndexOf('.');
  return [name.slice(0, i), name.slice(i + 1)];
}

export class PickleError extends Error {}

export interface UnpickleOptions {
  /** names the file in errors */
  source?: string;
  /** turns a persistent id (torch.save: a tuple ('storage', ...)) into a value */
  persistentLoad?: (pid: PyValue) => PyValue;
}

/** Reads one pickle from `buf` at `start`; returns the value and where the pickle ended. */
export function unpickle(buf: Uint8Array, o: UnpickleOptions = {}, start = 0): { value: PyValue; end: number } {
  const source = o.source ?? '<pickle>';
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = start;
  const stack: PyValue[] = []; // MARKs are kept apart, as positions in `marks`
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  const fail = (what: string): never => {
    throw new PickleError(`${source}: ${what} (pickle byte ${pos})`);
  };
  const need = (n: number): void => {
    if (pos + n > buf.length) fail(`truncated: ${n} more byte(s) needed`);
  };
  const u8 = (): number => {
    need(1);
    return buf[pos++]!;
  };
  const bytes = (n: number): Uint8Array => {
    if (!Number.isSafeInteger(n) || n < 0) fail(`bad length ${n}`);
    need(n);
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} too large`);
    return Number(v);
  };
  const line = (): string => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) fail('truncated: a line without its newline');
    const s = Buffer.from(buf.buffer, buf.byteOffset + pos, end - pos).toString('latin1');
    pos = end + 1;
    return s;
  };
  const utf8 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
  const pop = (): PyValue => {
    if (stack.length === 0 || (marks.length && stack.length <= marks.at(-1)!)) fail('stack underflow');
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0 || (marks.length && stack.length <= marks.at(-1)!)) fail('stack underflow');
    return stack[stack.length - 1]!;
  };
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) fail('no MARK on the stack');
    return stack.splice(m!);
  };
  const global = (mod: string, name: string): PyGlobal => {
    const full = `${mod}.${name}`;
    if (!isAllowedGlobal(full)) {
      fail(
        `refusing to load: the pickle calls ${full} (only tensors, containers and plain values are read; ` +
          'mmoco never runs pickled code)',
      );
    }
    return new PyGlobal(full);
  };
  const decodeLong = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const setItems = (d: PyValue, items: PyValue[]): void => {
    if (!(d instanceof Map)) fail(`SETITEM(S) on a ${typeName(d)}, not a dict`);
    for (let i = 0; i + 1 < items.length; i += 2) (d as PyDict).set(items[i]!, items[i + 1]!);
  };
  const call = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) fail(`REDUCE/NEWOBJ on a ${typeName(fn)}, not an allowed callable`);
    if (!(args instanceof PyTuple)) fail(`REDUCE of ${(fn as PyGlobal).name} with ${typeName(args)} arguments`);
    return callAllowed((fn as PyGlobal).name, (args as PyTuple).items, fail);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail('pickle protocol above 5');
        break;
      case 0x95: // FRAME (a length hint; the frame's bytes follow inline)
        u64();
        break;
      case 0x2e: {
        // STOP
        const v = pop();
        return { value: v, end: pos };
      }
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        if (marks.length && stack.length === marks.at(-1)) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4);
        stack.push(view.getInt32(pos, true));
        pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        need(2);
        stack.push(view.getUint16(pos, true));
        pos += 2;
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(bytes(u8())));
        break;
      case 0x8b: {
        // LONG4
        need(4);
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) fail('negative LONG4 length');
        stack.push(decodeLong(bytes(n)));
        break;
      }
      case 0x49: {
        // INT (protocol 0): decimal, or 00/01 for False/True
        const s = line();
        if (s === '00') stack.push(false);
        else if (s === '01') stack.push(true);
        else stack.push(parseIntText(s, fail));
        break;
      }
      case 0x4c: // LONG (protocol 0)
        stack.push(parseIntText(line().replace(/L$/, ''), fail));
        break;
      case 0x46: // FLOAT (protocol 0)
        stack.push(Number(line()));
        break;
      case 0x47: // BINFLOAT: big-endian double
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(bytes(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(bytes(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(bytes(u64())));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str: read as text, as torch.load's encoding does)
        stack.push(Buffer.from(bytes(u8())).toString('latin1'));
        break;
      case 0x54: // BINSTRING
        stack.push(Buffer.from(bytes(u32())).toString('latin1'));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(Uint8Array.from(bytes(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(Uint8Array.from(bytes(u32())));
        break;
      case 0x8e: // BINBYTES8
      case 0x96: // BYTEARRAY8
        stack.push(Uint8Array.from(bytes(u64())));
        break;
      case 0x56: // UNICODE (protocol 0, raw-unicode-escape)
        stack.push(line().replace(/\\u([0-9a-fA-F]{4})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))));
        break;
      case 0x53: // STRING (protocol 0, a quoted repr)
        stack.push(line().slice(1, -1));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new PyTuple([]));
        break;
      case 0x85: // TUPLE1
        stack.push(new PyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x74: // TUPLE
        stack.push(new PyTuple(popMark()));
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) fail(`APPEND to a ${typeName(l)}, not a list`);
        (l as PyValue[]).push(v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) fail(`APPENDS to a ${typeName(l)}, not a list`);
        for (const v of items) (l as PyValue[]).push(v);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: {
        // DICT
        const d: PyDict = new Map();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) fail(`ADDITEMS to a ${typeName(s)}, not a set`);
        for (const v of items) (s as Set<PyValue>).add(v);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x70: // PUT
        memo.set(parseIntText(line(), fail) as number, top());
        break;
      case 0x68: // BINGET
      case 0x6a: // LONG_BINGET
      case 0x67: {
        // GET
        const i = op === 0x68 ? u8() : op === 0x6a ? u32() : (parseIntText(line(), fail) as number);
        if (!memo.has(i)) fail(`memo key ${i} was never stored`);
        stack.push(memo.get(i)!);
        break;
      }
      case 0x63: {
        // GLOBAL module\nname\n
        const mod = line();
        stack.push(global(mod, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const mod = pop();
        if (typeof mod !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL of non-strings');
        stack.push(global(mod as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x81: {
        // NEWOBJ
        const args = pop();
        stack.push(call(pop(), args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX (cls, args, kwargs): keyword arguments are not used by anything allowed
        const kwargs = pop();
        const args = pop();
        if (!(kwargs instanceof Map) || kwargs.size) fail('NEWOBJ_EX with keyword arguments');
        stack.push(call(pop(), args));
        break;
      }
      case 0x69: {
        // INST module\nname\n: class called with the items since MARK
        const mod = line();
        const fn = global(mod, line());
        stack.push(call(fn, new PyTuple(popMark())));
        break;
      }
      case 0x6f: {
        // OBJ: MARK cls args... OBJ
        const items = popMark();
        if (!items.length) fail('OBJ without a class');
        stack.push(call(items[0]!, new PyTuple(items.slice(1))));
        break;
      }
      case 0x62: {
        // BUILD: obj.__setstate__(state)
        const state = pop();
        build(top(), state, fail);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!o.persistentLoad) fail('a persistent id, but the file format defines none');
        stack.push(o.persistentLoad!(pid));
        break;
      }
      case 0x50: // PERSID (protocol 0: a string id, which torch.save never writes)
        fail(`refusing to load: a text persistent id '${line()}' (torch.save writes storage tuples)`);
        break;
      case 0x82:
      case 0x83:
      case 0x84: // EXT1/2/4: the copyreg extension registry names callables indirectly
        fail('refusing to load: the pickle names an object through the extension registry (EXT opcode)');
        break;
      case 0x97:
      case 0x98: // NEXT_BUFFER / READONLY_BUFFER: out-of-band data, not in a file
        fail('out-of-band buffers (pickle protocol 5) are not supported');
        break;
      default:
        fail(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}

function parseIntText(s: string, fail: (w: string) => never): number | bigint {
  if (!/^[+-]?\d+$/.test(s)) fail(`bad integer text '${s}'`);
  const v = BigInt(s);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

export function typeName(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'list';
  if (v instanceof Map) return 'dict';
  if (v instanceof Set) return 'set';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof Uint8Array) return 'bytes';
  if (v instanceof TensorRef) return 'tensor';
  if (v instanceof PyObject) return v.className;
  if (v instanceof PyGlobal) return v.name;
  if (typeof v === 'object' && (v as StorageRef).kind === 'storage') return 'storage';
  return typeof v === 'string' ? 'str' : typeof v === 'boolean' ? 'bool' : typeof v === 'bigint' ? 'int' : typeof v;
}

const int = (v: PyValue, what: string, fail: (w: string) => never): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(`${what}: expected an int, got ${typeName(v)}`);
  return v as number;
};
const ints = (v: PyValue, what: string, fail: (w: string) => never): number[] => {
  const items = v instanceof PyTuple ? v.items : Array.isArray(v) ? v : fail(`${what}: expected a tuple`);
  return items.map((x, i) => int(x, `${what}[${i}]`, fail));
};

function isStorage(v: PyValue): v is StorageRef {
  return typeof v === 'object' && v !== null && (v as StorageRef).kind === 'storage';
}

/** What calling an allowed global builds (never more than data). */
function callAllowed(name: string, args: PyValue[], fail: (w: string) => never): PyValue {
  switch (name) {
    case 'collections.OrderedDict': {
      const d: PyDict = new Map();
      if (args.length && args[0] !== null) {
        const items = args[0] instanceof PyTuple ? args[0].items : args[0];
        if (!Array.isArray(items)) fail('OrderedDict of something not a list of pairs');
        for (const p of items as PyValue[]) {
          const kv = p instanceof PyTuple ? p.items : p;
          if (!Array.isArray(kv) || kv.length !== 2) fail('OrderedDict item is not a pair');
          d.set((kv as PyValue[])[0]!, (kv as PyValue[])[1]!);
        }
      }
      return d;
    }
    case 'builtins.set':
    case 'builtins.frozenset':
    case '__builtin__.set':
    case '__builtin__.frozenset': {
      const items = args[0] instanceof PyTuple ? args[0].items : args[0];
      return new Set(Array.isArray(items) ? items : args[0] instanceof Set ? [...args[0]] : []);
    }
    case 'builtins.slice':
      return new PyTuple(args);
    case 'builtins.bytearray':
      return args[0] instanceof Uint8Array ? args[0] : new Uint8Array(0);
    case '_codecs.encode': {
      // protocol 2's spelling of a bytes object: encode(str, 'latin1')
      if (typeof args[0] !== 'string' || (args[1] !== 'latin1' && args[1] !== 'latin-1')) {
        fail('_codecs.encode other than (str, latin1)');
      }
      return Uint8Array.from(Buffer.from(args[0] as string, 'latin1'));
    }
    case 'argparse.Namespace':
      return new PyObject(name, args);
    case 'torch.Size':
      return new PyTuple(ints(args[0] ?? new PyTuple([]), 'torch.Size', fail));
    case 'torch.device':
      return args.map(String).join(':');
    case 'torch._utils._rebuild_tensor':
    case 'torch._utils._rebuild_tensor_v2': {
      // (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]])
      const [storage, offset, size, stride, requiresGrad] = args;
      if (!storage || !isStorage(storage)) fail(`${name}: argument 0 is a ${typeName(storage)}, not a storage`);
      const st = storage as StorageRef;
      const shape = ints(size!, `${name} size`, fail);
      const strides = ints(stride!, `${name} stride`, fail);
      if (shape.length !== strides.length) fail(`${name}: size and stride differ in length`);
      const off = int(offset!, `${name} offset`, fail) + (st.viewOffset ?? 0);
      return new TensorRef(st, off, shape, strides, requiresGrad === true);
    }
    case 'torch._utils._rebuild_tensor_v3': {
      // PyTorch 2.x, for an untyped storage: (storage, offset, size, stride, requires_grad,
      // backward_hooks, dtype[, metadata]); offset and strides count elements of dtype
      const [storage, , , , , , dt] = args;
      const dtype = dt instanceof PyGlobal ? TORCH_DTYPES[splitName(dt.name)[1]] : undefined;
      if (!dtype || !storage || !isStorage(storage)) fail(`${name}: expected an untyped storage and a torch dtype`);
      const st = storage as StorageRef;
      const size = DTYPE_BYTES[dtype!];
      const bytes = st.numel * DTYPE_BYTES[st.dtype];
      if (bytes % size !== 0) fail(`${name}: ${bytes} storage bytes are not whole ${dtype} elements`);
      const typed: StorageRef = { ...st, dtype: dtype!, numel: bytes / size };
      return callAllowed('torch._utils._rebuild_tensor_v2', [typed, ...args.slice(1, 6)], fail);
    }
    case 'torch._utils._rebuild_parameter':
    case 'torch._utils._rebuild_parameter_with_state':
    case 'torch.nn.parameter.Parameter': {
      // (data, requires_grad, backward_hooks[, state]) / Parameter(data, requires_grad)
      const t = args[0];
      if (!(t instanceof TensorRef)) fail(`${name}: argument 0 is a ${typeName(t)}, not a tensor`);
      const r = t as TensorRef;
      return new TensorRef(r.storage, r.offset, r.shape, r.stride, args[1] !== false);
    }
    case 'torch._tensor._rebuild_from_type_v2': {
      // (func, new_type, args, state): a tensor rebuilt by func, then given the type
      const [fn, type, fnArgs] = args;
      if (!(fn instanceof PyGlobal) || !(type instanceof PyGlobal)) fail(`${name}: bad arguments`);
      const t = (type as PyGlobal).name;
      if (t !== 'torch.Tensor' && t !== 'torch.nn.parameter.Parameter') fail(`${name}: tensor subclass ${t}`);
      if (!(fnArgs instanceof PyTuple)) fail(`${name}: arguments are not a tuple`);
      return callAllowed((fn as PyGlobal).name, (fnArgs as PyTuple).items, fail);
    }
    case 'numpy.core.multiarray.scalar':
    case 'numpy._core.multiarray.scalar': {
      const [dt, data] = args;
      if (!(dt instanceof PyObject) || dt.className !== 'numpy.dtype' || !(data instanceof Uint8Array)) {
        fail(`${name}: expected (numpy.dtype, bytes)`);
      }
      const code = String((dt as PyObject).args[0]);
      const reader = NUMPY_SCALARS[code];
      const st = (dt as PyObject).state;
      const order = st instanceof PyTuple ? st.items[1] : '<';
      if (!reader || (data as Uint8Array).length !== reader[0]) fail(`${name}: numpy dtype '${code}' not supported`);
      const b = data as Uint8Array;
      return reader![1](new DataView(b.buffer, b.byteOffset, b.byteLength), order !== '>');
    }
    case 'numpy.dtype':
      return new PyObject(name, args);
    default: {
      const [mod, attr] = splitName(name);
      if (mod === 'torch' && attr in TORCH_DTYPES) return TORCH_DTYPES[attr]!;
      // a class used as a value (storage types in persistent ids, torch.Tensor, Parameter)
      return fail(`refusing to load: the pickle calls ${name}, which builds no plain value`);
    }
  }
}

function build(obj: PyValue, state: PyValue, fail: (w: string) => never): void {
  if (obj instanceof PyObject) {
    obj.state = state;
    return;
  }
  // OrderedDict's attributes (a state_dict's _metadata), a Parameter's or tensor's extra state:
  // nothing a state dict's values depend on.
  if (obj instanceof Map || obj instanceof TensorRef) return;
  fail(`BUILD on a ${typeName(obj)}`);
}

/** The dtype a storage-type global stands for (torch.FloatStorage → float32), or null. */
export function storageDtype(v: PyValue): DType | null {
  if (!(v instanceof PyGlobal)) return null;
  const [mod, attr] = splitName(v.name);
  if (mod === 'torch' && attr in STORAGE_DTYPES) return STORAGE_DTYPES[attr]!;
  if (v.name === 'torch.storage.UntypedStorage' || v.name === 'torch.UntypedStorage') return 'uint8';
  return null;
}

// ---- writing (protocol 2, the opcodes torch.load(weights_only=True) of 1.13 reads) ----

/** A tensor to pickle as torch.save does: _rebuild_tensor_v2 over the storage with persistent id `key`. */
export interface PickledTensor {
  readonly pickledTensor: true;
  key: string;
  dtype: DType;
  numel: number;
  shape: readonly number[];
  stride: readonly number[];
}

export type Picklable =
  | null
  | boolean
  | number
  | string
  | PyTuple
  | Picklable[]
  | Map<string, Picklable>
  | PickledTensor
  | { readonly [k: string]: Picklable };

class Writer {
  private chunks: number[] = [];
  byte(...b: number[]): void {
    for (const x of b) this.chunks.push(x);
  }
  u32(v: number): void {
    this.byte(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  }
  text(s: string): void {
    for (const b of Buffer.from(s, 'utf8')) this.chunks.push(b);
  }
  result(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

function writeInt(w: Writer, v: number): void {
  if (v >= 0 && v < 256) w.byte(0x4b, v);
  else if (v >= 0 && v < 65536) w.byte(0x4d, v & 0xff, v >> 8);
  else if (v >= -0x80000000 && v <= 0x7fffffff) {
    w.byte(0x4a);
    w.u32(v >>> 0);
  } else {
    // LONG1: little-endian two's complement, as few bytes as hold the sign
    let x = BigInt(v);
    const out: number[] = [];
    for (;;) {
      out.push(Number(x & 0xffn));
      x >>= 8n;
      const sign = out.at(-1)! & 0x80;
      if ((x === 0n && !sign) || (x === -1n && sign)) break;
    }
    w.byte(0x8a, out.length, ...out);
  }
}

function writeStr(w: Writer, s: string): void {
  w.byte(0x58);
  w.u32(Buffer.byteLength(s, 'utf8'));
  w.text(s);
}

function writeGlobal(w: Writer, mod: string, name: string): void {
  w.byte(0x63);
  w.text(`${mod}\n${name}\n`);
}

function writeValue(w: Writer, v: Picklable): void {
  if (v === null) w.byte(0x4e);
  else if (v === true) w.byte(0x88);
  else if (v === false) w.byte(0x89);
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) writeInt(w, v);
    else {
      const b = Buffer.alloc(8);
      b.writeDoubleBE(v);
      w.byte(0x47, ...b);
    }
  } else if (typeof v === 'string') writeStr(w, v);
  else if (v instanceof PyTuple) {
    w.byte(0x28);
    for (const x of v.items) writeValue(w, x as Picklable);
    w.byte(0x74);
  } else if (Array.isArray(v)) {
    w.byte(0x5d);
    if (v.length) {
      w.byte(0x28);
      for (const x of v) writeValue(w, x);
      w.byte(0x65);
    }
  } else if ((v as PickledTensor).pickledTensor) {
    const t = v as PickledTensor;
    // torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())
    writeGlobal(w, 'torch._utils', '_rebuild_tensor_v2');
    w.byte(0x28, 0x28);
    writeStr(w, 'storage');
    writeGlobal(w, 'torch', STORAGE_TYPE_OF[t.dtype]);
    writeStr(w, t.key);
    writeStr(w, 'cpu');
    writeInt(w, t.numel);
    w.byte(0x74, 0x51); // TUPLE, BINPERSID
    writeInt(w, 0);
    writeValue(w, new PyTuple([...t.shape]));
    writeValue(w, new PyTuple([...t.stride]));
    w.byte(0x89);
    writeGlobal(w, 'collections', 'OrderedDict');
    w.byte(0x29, 0x52); // EMPTY_TUPLE, REDUCE
    w.byte(0x74, 0x52); // TUPLE, REDUCE
  } else {
    const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
    w.byte(0x7d);
    if (entries.length) {
      w.byte(0x28);
      for (const [k, x] of entries) {
        writeStr(w, k);
        writeValue(w, x);
      }
      w.byte(0x75);
    }
  }
}

/** `value` as a protocol-2 pickle (PROTO 2 ... STOP). */
export function pickle(value: Picklable): Uint8Array {
  const w = new Writer();
  w.byte(0x80, 0x02);
  writeValue(w, value);
  w.byte(0x2e);
  return w.result();
}
