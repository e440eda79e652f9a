// Factory functions: torch.tensor, zeros, ones, arange, rand, ... and their *Like variants.
import { dtypeCode, type AnyTypedArray, type DType, type Device } from './dtype.js';
import { checkHostSync } from './host-sync.js';
import { N } from './native.js';
import { _wrap, shapeOf, type ShapeArgs, type Tensor } from './tensor.js';

const { wrap } = _wrap;

export interface TensorOptions {
  dtype?: DType;
  device?: Device | string;
  requiresGrad?: boolean;
}

type Nested = number | boolean | bigint | readonly Nested[];

const dt = (d: DType | undefined): number | null => (d === undefined ? null : dtypeCode(d));

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

/** Splits trailing options off `*size` arguments: zeros(2, 3, {dtype}) or zeros([2, 3], {dtype}). */
function sizeAndOpts(args: (number | readonly number[] | TensorOptions)[]): [number[], TensorOptions] {
  const last = args[args.length - 1];
  const hasOpts = last !== undefined && typeof last === 'object' && !Array.isArray(last);
  const opts = (hasOpts ? last : {}) as TensorOptions;
  const dims = (hasOpts ? args.slice(0, -1) : args) as ShapeArgs;
  return [shapeOf(dims), opts];
}

const TYPED: [new (...a: never[]) => AnyTypedArray, DType][] = [
  [Float32Array, 'float32'],
  [Float64Array, 'float64'],
  [BigInt64Array, 'int64'],
  [Int32Array, 'int32'],
  [Int16Array, 'int16'],
  [Int8Array, 'int8'],
  [Uint8Array, 'uint8'],
];

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = (cur as Nested[])[0] as Nested;
    if (cur === undefined) break;
  }
  return shape;
}

function flatten(data: Nested, shape: number[], dim: number, out: (number | boolean | bigint)[]): void {
  if (dim === shape.length) {
    if (Array.isArray(data)) throw new TypeError('tensor: ragged nested array (sub-arrays of different depths)');
    out.push(data as number | boolean | bigint);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[dim]) {
    throw new TypeError(
      `tensor: ragged nested array: expected ${shape[dim]} elements at depth ${dim}, got ${Array.isArray(data) ? data.length : 'a scalar'}`,
    );
  }
  for (const v of data as Nested[]) flatten(v, shape, dim + 1, out);
}

function typedFor(values: (number | boolean | bigint)[], dtype: DType): AnyTypedArray {
  switch (dtype) {
    case 'float64':
      return Float64Array.from(values as number[], Number);
    case 'int64':
      return BigInt64Array.from(values, (v) => (typeof v === 'bigint' ? v : BigInt(Math.trunc(Number(v)))));
    case 'int32':
      return Int32Array.from(values as number[], Number);
    case 'int16':
      return Int16Array.from(values as number[], Number);
    case 'int8':
      return Int8Array.from(values as number[], Number);
    case 'uint8':
    case 'bool':
      return Uint8Array.from(values as number[], (v) => Number(v));
    default:
      return Float32Array.from(values as number[], Number);
  }
}

/**
 * A tensor from nested arrays or a typed array. Numbers default to float32 (JS cannot tell
 * 1 from 1.0), booleans to bool, bigints to int64; typed arrays keep their element type.
 * `shape` reshapes flat data.
 */
export function tensor(data: Nested | AnyTypedArray, opts: TensorOptions & { shape?: readonly number[] } = {}): Tensor {
  let buf: AnyTypedArray;
  let shape: number[];
  let srcType: DType;
  if (ArrayBuffer.isView(data)) {
    const match = TYPED.find(([C]) => data instanceof C);
    if (!match) throw new TypeError(`tensor: unsupported typed array ${data.constructor.name}`);
    srcType = match[1];
    buf = data;
    shape = opts.shape ? [...opts.shape] : [data.length];
  } else {
    shape = inferShape(data);
    const flat: (number | boolean | bigint)[] = [];
    flatten(data, shape, 0, flat);
    const first = flat[0];
    srcType = typeof first === 'boolean' ? 'bool' : typeof first === 'bigint' ? 'int64' : 'float32';
    const target = opts.dtype ?? srcType;
    // Build the buffer directly in the target type when JS can hold it; half types go via float32.
    srcType = target === 'float16' || target === 'bfloat16' ? 'float32' : target;
    buf = typedFor(flat, srcType);
    if (opts.shape) shape = [...opts.shape];
  }
  checkHostSync('torch.tensor() (copies host memory; make constants before the step)');
  let t = wrap(N.fromBuffer(buf, dtypeCode(srcType), shape, null));
  const target = opts.dtype ?? srcType;
  if (target !== srcType || (opts.device !== undefined && opts.device !== 'cpu')) {
    const moved = t.to({ dtype: target, device: opts.device ?? 'cpu' });
    t.dispose();
    t = moved;
  }
  return finish(t, opts);
}

type SizeArgs = (number | readonly number[] | TensorOptions)[];

export function empty(...args: SizeArgs): Tensor {
  const [s, o] = sizeAndOpts(args);
  return finish(wrap(N.empty(s, dt(o.dtype), o.device ?? null)), o);
}
export function zeros(...args: SizeArgs): Tensor {
  const [s, o] = sizeAndOpts(args);
  return finish(wrap(N.zeros(s, dt(o.dtype), o.device ?? null)), o);
}
export function ones(...args: SizeArgs): Tensor {
  const [s, o] = sizeAndOpts(args);
  return finish(wrap(N.ones(s, dt(o.dtype), o.device ?? null)), o);
}
/**
 * A tensor filled with `value`: bool for a boolean value, as torch.full infers; float32 for a
 * number (JS cannot tell 7 from 7.0, so no int64 inference) unless `dtype` says otherwise.
 */
export function full(size: readonly number[], value: number | boolean, opts: TensorOptions = {}): Tensor {
  const dtype = opts.dtype ?? (typeof value === 'boolean' ? 'bool' : undefined);
  return finish(wrap(N.full(size, value, dt(dtype), opts.device ?? null)), opts);
}
export function rand(...args: SizeArgs): Tensor {
  const [s, o] = sizeAndOpts(args);
  return finish(wrap(N.rand(s, dt(o.dtype), o.device ?? null)), o);
}
export function randn(...args: SizeArgs): Tensor {
  const [s, o] = sizeAndOpts(args);
  return finish(wrap(N.randn(s, dt(o.dtype), o.device ?? null)), o);
}
/** Integers uniform in [low, high); int64 unless `dtype` says otherwise. */
export function randint(low: number, high: number, size: readonly number[], opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.randint(low, high, size, dt(opts.dtype), opts.device ?? null)), opts);
}
export function randperm(n: number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.randperm(n, dt(opts.dtype), opts.device ?? null)), opts);
}
/** arange(end) or arange(start, end, step?); int64 when all bounds are integers, else float32, as in PyTorch. */
export function arange(startOrEnd: number, end?: number, step = 1, opts: TensorOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  return finish(wrap(N.arange(s, e, step, dt(opts.dtype), opts.device ?? null)), opts);
}
export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.linspace(start, end, steps, dt(opts.dtype), opts.device ?? null)), opts);
}
export function eye(n: number, m: number = n, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.eye(n, m, dt(opts.dtype), opts.device ?? null)), opts);
}

export function emptyLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.emptyLike(t.id, dt(opts.dtype))), opts);
}
export function zerosLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.zerosLike(t.id, dt(opts.dtype))), opts);
}
export function onesLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.onesLike(t.id, dt(opts.dtype))), opts);
}
export function fullLike(t: Tensor, value: number | boolean, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.fullLike(t.id, value, dt(opts.dtype))), opts);
}
export function randLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.randLike(t.id, dt(opts.dtype))), opts);
}
export function randnLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.randnLike(t.id, dt(opts.dtype))), opts);
}
export function randintLike(t: Tensor, low: number, high: number, opts: TensorOptions = {}): Tensor {
  return finish(wrap(N.randintLike(t.id, low, high, dt(opts.dtype))), opts);
}
