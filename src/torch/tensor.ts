// The Tensor class: a handle on one libtorch tensor, with PyTorch's method names.
// Every method is one call into the binding; no tensor math runs in JavaScript.
import { inspect } from 'node:util';
import { dtypeCode, dtypeFromCode, type AnyTypedArray, type DType, type Device } from './dtype.js';
import { checkHostSync, hostSyncForbidden } from './host-sync.js';
import { N } from './native.js';
import { release, setTensorClass, track } from './scope.js';

export type Dims = number | readonly number[];
export type Scalar = number | boolean;
export type TensorOrScalar = Tensor | Scalar;
/** A shape given either as one array or as separate numbers, like PyTorch's `*size`. */
export type ShapeArgs = readonly number[] | [readonly number[]];

export function shapeOf(args: ShapeArgs): number[] {
  const first = args[0];
  return Array.isArray(first) ? [...(first as number[])] : [...(args as number[])];
}

const wrap = (id: number | null): Tensor => new Tensor(id as number);
const wrapOpt = (id: number | null): Tensor | null => (id === null ? null : new Tensor(id));
const wrapList = (ids: number[]): Tensor[] => ids.map(wrap);
const wrapPair = (ids: number[]): [Tensor, Tensor] => [new Tensor(ids[0]!), new Tensor(ids[1]!)];
const isScalar = (v: unknown): v is Scalar => typeof v === 'number' || typeof v === 'boolean';

function ids(ts: readonly (Tensor | null | undefined)[]): (number | null)[] {
  return ts.map((t) => (t == null ? null : t.id));
}

export interface ToOptions {
  dtype?: DType;
  device?: Device | string;
  copy?: boolean;
  /**
   * Copy asynchronously where the hardware can (PyTorch's non_blocking): from pinned host
   * memory to a GPU, or back. Elsewhere the copy is synchronous as usual.
   */
  nonBlocking?: boolean;
}

export interface BackwardOptions {
  retainGraph?: boolean;
  createGraph?: boolean;
}

/** 'cuda' of 'cuda:1', 'cpu' of 'cpu'. */
const deviceType = (d: string): string => d.split(':')[0]!;

export class Tensor {
  /** @internal slot number in the native table; -1 once disposed. */
  _id: number;
  /** @internal owned by the finaliser registry */
  _registered = false;
  /** @internal exempt from scopes */
  _kept = false;
  /** @internal being returned from a scope */
  _escaping = false;
  private _shape: number[] | undefined;
  private _dtype: DType | undefined;

  /** @internal tensors are made by factory functions and ops, not by `new`. */
  constructor(id: number) {
    this._id = id;
    track(this);
  }

  /** @internal the slot number, checked */
  get id(): number {
    if (this._id < 0) throw new Error('Tensor used after dispose()');
    return this._id;
  }

  // ---- metadata ----
  get shape(): number[] {
    return (this._shape ??= N.shape(this.id) as number[]).slice();
  }
  get dtype(): DType {
    return (this._dtype ??= dtypeFromCode(N.dtype(this.id) as number));
  }
  get device(): string {
    return N.device(this.id) as string;
  }
  get ndim(): number {
    return (this._shape ??= N.shape(this.id) as number[]).length;
  }
  size(dim?: number): number | number[] {
    const s = (this._shape ??= N.shape(this.id) as number[]);
    if (dim === undefined) return s.slice();
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`size: dim ${dim} out of range for shape [${s.join(', ')}]`);
    return s[d]!;
  }
  numel(): number {
    return N.numel(this.id) as number;
  }
  dim(): number {
    return this.ndim;
  }
  stride(): number[] {
    return N.strides(this.id) as number[];
  }
  isContiguous(): boolean {
    return N.isContiguous(this.id) as boolean;
  }
  get isDisposed(): boolean {
    return this._id < 0;
  }

  // ---- memory ----
  /** Releases the native tensor now; using the handle afterwards throws. */
  dispose(): void {
    release(this);
  }
  [Symbol.dispose](): void {
    release(this);
  }

  // ---- conversion and data out ----
  to(target: DType | Device | string | ToOptions, opts: ToOptions = {}): Tensor {
    let o: ToOptions = opts;
    if (typeof target === 'string') {
      o = isDeviceString(target) ? { ...opts, device: target } : { ...opts, dtype: target as DType };
    } else {
      o = { ...target, ...opts };
    }
    if (o.device !== undefined && hostSyncForbidden() && deviceType(o.device) !== deviceType(this.device))
      checkHostSync(`Tensor.to('${o.device}') from ${this.device} (a copy between host and device memory)`);
    return wrap(
      N.to(
        this.id,
        o.dtype === undefined ? null : dtypeCode(o.dtype),
        o.device ?? null,
        o.copy ?? false,
        o.nonBlocking ?? false,
      ),
    );
  }
  /** A copy in page-locked host memory (PyTorch's pin_memory(); needs a CUDA build). */
  pinMemory(): Tensor {
    return wrap(N.pinMemory(this.id));
  }
  isPinned(): boolean {
    return N.isPinned(this.id) as boolean;
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  half(): Tensor {
    return this.to('float16');
  }
  bfloat16(): Tensor {
    return this.to('bfloat16');
  }
  long(): Tensor {
    return this.to('int64');
  }
  int(): Tensor {
    return this.to('int32');
  }
  bool(): Tensor {
    return this.to('bool');
  }
  cpu(): Tensor {
    return this.to({ device: 'cpu' });
  }
  cuda(index = 0): Tensor {
    return this.to({ device: `cuda:${index}` });
  }
  clone(): Tensor {
    return wrap(N.clone(this.id));
  }
  contiguous(): Tensor {
    return wrap(N.contiguous(this.id));
  }

  /** A copy of the elements, row-major, on the CPU. float16/bfloat16 come out as Float32Array, bool as Uint8Array. */
  toTypedArray(): AnyTypedArray {
    checkHostSync('Tensor.toTypedArray() (reads the values back to the host)');
    const d = this.dtype;
    const asF32 = d === 'float16' || d === 'bfloat16';
    const buf = N.toBuffer(this.id, asF32 ? dtypeCode('float32') : null) as ArrayBuffer;
    switch (d) {
      case 'float64':
        return new Float64Array(buf);
      case 'int64':
        return new BigInt64Array(buf);
      case 'int32':
        return new Int32Array(buf);
      case 'int16':
        return new Int16Array(buf);
      case 'int8':
        return new Int8Array(buf);
      case 'uint8':
      case 'bool':
        return new Uint8Array(buf);
      default:
        return new Float32Array(buf);
    }
  }
  /** The single element as a JS number (boolean for bool tensors). */
  item(): number | boolean {
    checkHostSync('Tensor.item() (reads a value back to the host)');
    return N.item(this.id) as number | boolean;
  }
  /** Nested JS arrays of numbers (booleans for bool tensors), like PyTorch's `tolist()`. */
  toArray(): unknown {
    const data = this.toTypedArray();
    const isBool = this.dtype === 'bool';
    const flat: (number | boolean)[] = Array.from(data as ArrayLike<number | bigint>, (v) =>
      isBool ? v !== 0 : Number(v),
    );
    const shape = this.shape;
    if (shape.length === 0) return flat[0];
    const build = (dim: number, offset: number): unknown[] => {
      const n = shape[dim]!;
      const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      const out: unknown[] = new Array(n);
      for (let i = 0; i < n; i++)
        out[i] = dim === shape.length - 1 ? flat[offset + i] : build(dim + 1, offset + i * stride);
      return out;
    };
    return build(0, 0);
  }
  tolist(): unknown {
    return this.toArray();
  }

  // ---- views and joins ----
  reshape(...shape: ShapeArgs): Tensor {
    return wrap(N.reshape(this.id, shapeOf(shape)));
  }
  view(...shape: ShapeArgs): Tensor {
    return wrap(N.view(this.id, shapeOf(shape)));
  }
  permute(...dims: ShapeArgs): Tensor {
    return wrap(N.permute(this.id, shapeOf(dims)));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return wrap(N.transpose(this.id, dim0, dim1));
  }
  /** Transpose of a matrix; 0-D and 1-D tensors come back as they are, as in PyTorch. */
  t(): Tensor {
    // PyTorch rejects more dimensions rather than transposing the first two (use mT or transpose).
    if (this.ndim > 2) throw new RangeError(`t() expects a tensor with <= 2 dimensions, but self is ${this.ndim}D`);
    return wrap(N.transpose(this.id, 0, this.ndim < 2 ? 0 : 1));
  }
  /** Transpose of the last two dimensions (PyTorch's `.mT`). */
  get mT(): Tensor {
    return wrap(N.transpose(this.id, -2, -1));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return wrap(N.flatten(this.id, startDim, endDim));
  }
  unsqueeze(dim: number): Tensor {
    return wrap(N.unsqueeze(this.id, dim));
  }
  squeeze(dim?: number): Tensor {
    return wrap(N.squeeze(this.id, dim ?? null));
  }
  expand(...sizes: ShapeArgs): Tensor {
    return wrap(N.expand(this.id, shapeOf(sizes)));
  }
  expandAs(other: Tensor): Tensor {
    return wrap(N.expand(this.id, other.shape));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return wrap(N.narrow(this.id, dim, start, length));
  }
  /** Python's `t[..., start:end:step, ...]` on dimension `dim`. */
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
    return wrap(N.slice(this.id, dim, start ?? null, end ?? null, step));
  }
  select(dim: number, index: number): Tensor {
    return wrap(N.select(this.id, dim, index));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return wrapList(N.chunk(this.id, chunks, dim));
  }
  split(sizeOrSections: number | readonly number[], dim = 0): Tensor[] {
    return wrapList(N.split(this.id, sizeOrSections, dim));
  }
  unbind(dim = 0): Tensor[] {
    return wrapList(N.unbind(this.id, dim));
  }
  repeat(...sizes: ShapeArgs): Tensor {
    return wrap(N.repeat(this.id, shapeOf(sizes)));
  }
  flip(dims: Dims): Tensor {
    return wrap(N.flip(this.id, dims));
  }
  roll(shifts: Dims, dims: Dims): Tensor {
    return wrap(N.roll(this.id, shifts, dims));
  }
  tril(diagonal = 0): Tensor {
    return wrap(N.tril(this.id, diagonal));
  }
  triu(diagonal = 0): Tensor {
    return wrap(N.triu(this.id, diagonal));
  }

  // ---- indexing ----
  indexSelect(dim: number, index: Tensor): Tensor {
    return wrap(N.indexSelect(this.id, dim, index.id));
  }
  gather(dim: number, index: Tensor): Tensor {
    return wrap(N.gather(this.id, dim, index.id));
  }
  scatter(dim: number, index: Tensor, src: TensorOrScalar, reduce?: 'add' | 'multiply'): Tensor {
    return isScalar(src)
      ? wrap(N.scatterS(this.id, dim, index.id, src, reduce ?? null))
      : wrap(N.scatter(this.id, dim, index.id, src.id, reduce ?? null));
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return wrap(N.scatterAdd(this.id, dim, index.id, src.id));
  }
  maskedFill(mask: Tensor, value: TensorOrScalar): Tensor {
    return isScalar(value)
      ? wrap(N.maskedFillS(this.id, mask.id, value))
      : wrap(N.maskedFill(this.id, mask.id, value.id));
  }
  maskedSelect(mask: Tensor): Tensor {
    checkHostSync('Tensor.maskedSelect() (its size depends on the values)');
    return wrap(N.maskedSelect(this.id, mask.id));
  }
  nonzero(): Tensor {
    checkHostSync('Tensor.nonzero() (its size depends on the values)');
    return wrap(N.nonzero(this.id));
  }
  /**
   * Advanced indexing, Python's `t[i0, i1, ...]`: each entry is an int64 index tensor, a
   * bool mask, or null for a full slice `:`.
   */
  index(indices: readonly (Tensor | null)[]): Tensor {
    return wrap(N.index(this.id, ids(indices)));
  }
  /** Python's `t[i0, i1, ...] = values` (or `+=` with accumulate). */
  indexPut_(indices: readonly (Tensor | null)[], values: Tensor, accumulate = false): this {
    N.indexPut_(this.id, ids(indices), values.id, accumulate);
    return this;
  }

  // ---- pointwise math (broadcasting; the other operand may be a number) ----
  add(other: TensorOrScalar, alpha?: number): Tensor {
    return isScalar(other) ? wrap(N.addS(this.id, other, alpha)) : wrap(N.add(this.id, other.id, alpha));
  }
  sub(other: TensorOrScalar, alpha?: number): Tensor {
    return isScalar(other) ? wrap(N.subS(this.id, other, alpha)) : wrap(N.sub(this.id, other.id, alpha));
  }
  /** `other - this` */
  rsub(other: Scalar): Tensor {
    return wrap(N.rsubS(this.id, other));
  }
  mul(other: TensorOrScalar): Tensor {
    return isScalar(other) ? wrap(N.mulS(this.id, other)) : wrap(N.mul(this.id, other.id));
  }
  div(other: TensorOrScalar, roundingMode?: 'trunc' | 'floor'): Tensor {
    return isScalar(other)
      ? wrap(N.divS(this.id, other, roundingMode ?? null))
      : wrap(N.div(this.id, other.id, roundingMode ?? null));
  }
  pow(exponent: TensorOrScalar): Tensor {
    return isScalar(exponent) ? wrap(N.powS(this.id, exponent)) : wrap(N.pow(this.id, exponent.id));
  }
  /** `base ** this` */
  rpow(base: Scalar): Tensor {
    return wrap(N.rpowS(this.id, base));
  }
  remainder(other: TensorOrScalar): Tensor {
    return isScalar(other) ? wrap(N.remainderS(this.id, other)) : wrap(N.remainder(this.id, other.id));
  }
  eq(other: TensorOrScalar): Tensor {
    return isScalar(other) ? wrap(N.eqS(this.id, other)) : wrap(N.eq(this.id, other.id));
  }
  ne(other: TensorOrScalar): Tensor {
    return isScalar(other) ? wrap(N.neS(this.id, other)) : wrap(N.ne(this.id, other.id));
  }
  lt(other: TensorOrScalar): Tensor {
    return isScalar(other) ? wrap(N.ltS(this.id, other)) : wrap(N.lt(this.id, other.id));
  }
  le(other: TensorOrScalar): Tensor {
    return isScalar(other) ? wrap(N.leS(this.id, other)) : wrap(N.le(this.id, other.id));
  }
  gt(other: TensorOrScalar): Tensor {
    return isScalar(other) ? wrap(N.gtS(this.id, other)) : wrap(N.gt(this.id, other.id));
  }
  ge(other: TensorOrScalar): Tensor {
    return isScalar(other) ? wrap(N.geS(this.id, other)) : wrap(N.ge(this.id, other.id));
  }
  maximum(other: Tensor): Tensor {
    return wrap(N.maximum(this.id, other.id));
  }
  minimum(other: Tensor): Tensor {
    return wrap(N.minimum(this.id, other.id));
  }
  logicalAnd(other: Tensor): Tensor {
    return wrap(N.logicalAnd(this.id, other.id));
  }
  logicalOr(other: Tensor): Tensor {
    return wrap(N.logicalOr(this.id, other.id));
  }
  logicalNot(): Tensor {
    return wrap(N.logicalNot(this.id));
  }
  atan2(other: Tensor): Tensor {
    return wrap(N.atan2(this.id, other.id));
  }
  neg(): Tensor {
    return wrap(N.neg(this.id));
  }
  sqrt(): Tensor {
    return wrap(N.sqrt(this.id));
  }
  rsqrt(): Tensor {
    return wrap(N.rsqrt(this.id));
  }
  exp(): Tensor {
    return wrap(N.exp(this.id));
  }
  log(): Tensor {
    return wrap(N.log(this.id));
  }
  log1p(): Tensor {
    return wrap(N.log1p(this.id));
  }
  expm1(): Tensor {
    return wrap(N.expm1(this.id));
  }
  abs(): Tensor {
    return wrap(N.abs(this.id));
  }
  sign(): Tensor {
    return wrap(N.sign(this.id));
  }
  floor(): Tensor {
    return wrap(N.floor(this.id));
  }
  ceil(): Tensor {
    return wrap(N.ceil(this.id));
  }
  trunc(): Tensor {
    return wrap(N.trunc(this.id));
  }
  round(decimals?: number): Tensor {
    return wrap(N.round(this.id, decimals ?? null));
  }
  erf(): Tensor {
    return wrap(N.erf(this.id));
  }
  erfinv(): Tensor {
    return wrap(N.erfinv(this.id));
  }
  tanh(): Tensor {
    return wrap(N.tanh(this.id));
  }
  sigmoid(): Tensor {
    return wrap(N.sigmoid(this.id));
  }
  relu(): Tensor {
    return wrap(N.relu(this.id));
  }
  /** GELU; `approximate: 'tanh'` is the tanh approximation. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return wrap(N.gelu(this.id, approximate));
  }
  silu(): Tensor {
    return wrap(N.silu(this.id));
  }
  sin(): Tensor {
    return wrap(N.sin(this.id));
  }
  cos(): Tensor {
    return wrap(N.cos(this.id));
  }
  acos(): Tensor {
    return wrap(N.acos(this.id));
  }
  reciprocal(): Tensor {
    return wrap(N.reciprocal(this.id));
  }
  square(): Tensor {
    return wrap(N.square(this.id));
  }
  isnan(): Tensor {
    return wrap(N.isnan(this.id));
  }
  isfinite(): Tensor {
    return wrap(N.isfinite(this.id));
  }
  /** Bounds are numbers or tensors; leave one out with null/undefined. */
  clamp(min?: TensorOrScalar | null, max?: TensorOrScalar | null): Tensor {
    if ((min == null || isScalar(min)) && (max == null || isScalar(max))) {
      return wrap(N.clampS(this.id, min ?? null, max ?? null));
    }
    const lo = min == null ? null : isScalar(min) ? scalarLike(min, this) : min;
    const hi = max == null ? null : isScalar(max) ? scalarLike(max, this) : max;
    return wrap(N.clamp(this.id, lo?.id ?? null, hi?.id ?? null));
  }
  clampMin(min: number): Tensor {
    return this.clamp(min, null);
  }
  clampMax(max: number): Tensor {
    return this.clamp(null, max);
  }

  // ---- reductions (dim: null/undefined for all elements) ----
  sum(dim?: Dims | null, keepdim = false, dtype?: DType): Tensor {
    return wrap(N.sum(this.id, dim ?? null, keepdim, dtype === undefined ? null : dtypeCode(dtype)));
  }
  mean(dim?: Dims | null, keepdim = false, dtype?: DType): Tensor {
    return wrap(N.mean(this.id, dim ?? null, keepdim, dtype === undefined ? null : dtypeCode(dtype)));
  }
  prod(dim?: number | null, keepdim = false, dtype?: DType): Tensor {
    return wrap(N.prod(this.id, dim ?? null, keepdim, dtype === undefined ? null : dtypeCode(dtype)));
  }
  /** Variance with Bessel's correction by default (`correction: 0` or `unbiased: false` for the biased one). */
  var(dim?: Dims | null, opts: { correction?: number; unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return wrap(N.var(this.id, dim ?? null, correctionOf(opts), opts.keepdim ?? false));
  }
  std(dim?: Dims | null, opts: { correction?: number; unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
    return wrap(N.std(this.id, dim ?? null, correctionOf(opts), opts.keepdim ?? false));
  }
  /** `max()` is the largest element; `max(dim)` gives `[values, indices]`. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): [Tensor, Tensor];
  max(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    return dim === undefined ? wrap(N.max(this.id)) : wrapPair(N.max(this.id, dim, keepdim));
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): [Tensor, Tensor];
  min(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    return dim === undefined ? wrap(N.min(this.id)) : wrapPair(N.min(this.id, dim, keepdim));
  }
  amax(dim: Dims = [], keepdim = false): Tensor {
    return wrap(N.amax(this.id, dim, keepdim));
  }
  amin(dim: Dims = [], keepdim = false): Tensor {
    return wrap(N.amin(this.id, dim, keepdim));
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return wrap(N.argmax(this.id, dim ?? null, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return wrap(N.argmin(this.id, dim ?? null, keepdim));
  }
  /** Vector p-norm over `dim` (all elements by default). */
  norm(p = 2, dim?: Dims | null, keepdim = false): Tensor {
    return wrap(N.norm(this.id, p, dim ?? null, keepdim));
  }
  logsumexp(dim: Dims, keepdim = false): Tensor {
    return wrap(N.logsumexp(this.id, dim, keepdim));
  }
  cumsum(dim: number, dtype?: DType): Tensor {
    return wrap(N.cumsum(this.id, dim, dtype === undefined ? null : dtypeCode(dtype)));
  }
  all(dim?: number, keepdim = false): Tensor {
    return wrap(N.all(this.id, dim ?? null, keepdim));
  }
  any(dim?: number, keepdim = false): Tensor {
    return wrap(N.any(this.id, dim ?? null, keepdim));
  }

  // ---- linear algebra and sorting ----
  matmul(other: Tensor): Tensor {
    return wrap(N.matmul(this.id, other.id));
  }
  mm(other: Tensor): Tensor {
    return wrap(N.mm(this.id, other.id));
  }
  bmm(other: Tensor): Tensor {
    return wrap(N.bmm(this.id, other.id));
  }
  outer(other: Tensor): Tensor {
    return wrap(N.outer(this.id, other.id));
  }
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    return wrapPair(N.sort(this.id, dim, descending));
  }
  argsort(dim = -1, descending = false): Tensor {
    return wrap(N.argsort(this.id, dim, descending));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    return wrapPair(N.topk(this.id, k, dim, largest, sorted));
  }

  // ---- in-place updates (return this) ----
  add_(other: TensorOrScalar, alpha?: number): this {
    if (isScalar(other)) N.addS_(this.id, other, alpha);
    else N.add_(this.id, other.id, alpha);
    return this;
  }
  sub_(other: TensorOrScalar, alpha?: number): this {
    if (isScalar(other)) N.subS_(this.id, other, alpha);
    else N.sub_(this.id, other.id, alpha);
    return this;
  }
  mul_(other: TensorOrScalar): this {
    if (isScalar(other)) N.mulS_(this.id, other);
    else N.mul_(this.id, other.id);
    return this;
  }
  div_(other: TensorOrScalar): this {
    if (isScalar(other)) N.divS_(this.id, other);
    else N.div_(this.id, other.id);
    return this;
  }
  copy_(src: Tensor): this {
    if (hostSyncForbidden() && deviceType(src.device) !== deviceType(this.device))
      checkHostSync(`Tensor.copy_() from ${src.device} into ${this.device} (a copy between host and device memory)`);
    N.copy_(this.id, src.id);
    return this;
  }
  zero_(): this {
    N.zero_(this.id);
    return this;
  }
  fill_(value: Scalar): this {
    N.fill_(this.id, value);
    return this;
  }
  /** this += weight * (end - this) */
  lerp_(end: Tensor, weight: TensorOrScalar): this {
    if (isScalar(weight)) N.lerpS_(this.id, end.id, weight);
    else N.lerp_(this.id, end.id, weight.id);
    return this;
  }
  /** this += value * t1 * t2 */
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this {
    N.addcmul_(this.id, t1.id, t2.id, value);
    return this;
  }
  /** this += value * t1 / t2 */
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this {
    N.addcdiv_(this.id, t1.id, t2.id, value);
    return this;
  }
  clamp_(min?: number | null, max?: number | null): this {
    N.clampS_(this.id, min ?? null, max ?? null);
    return this;
  }
  sqrt_(): this {
    N.sqrt_(this.id);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    N.normal_(this.id, mean, std);
    return this;
  }
  uniform_(from = 0, to = 1): this {
    N.uniform_(this.id, from, to);
    return this;
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return N.requiresGrad(this.id) as boolean;
  }
  set requiresGrad(v: boolean) {
    N.requiresGrad_(this.id, v);
  }
  requiresGrad_(v = true): this {
    N.requiresGrad_(this.id, v);
    return this;
  }
  /** The accumulated gradient (a new handle on it), or null. */
  get grad(): Tensor | null {
    return wrapOpt(N.grad(this.id));
  }
  set grad(g: Tensor | null) {
    N.setGrad(this.id, g === null ? null : g.id);
  }
  get isLeaf(): boolean {
    return N.isLeaf(this.id) as boolean;
  }
  /** Name of the autograd node that made this tensor, or null for leaves. */
  get gradFn(): string | null {
    return N.gradFn(this.id) as string | null;
  }
  retainGrad(): this {
    N.retainGrad(this.id);
    return this;
  }
  detach(): Tensor {
    return wrap(N.detach(this.id));
  }
  /**
   * Replaces this tensor's data with `src`'s (shape, dtype and device may change) while it
   * stays the same autograd leaf, as PyTorch's `t.data = src`. Cached metadata is reset.
   */
  setData(src: Tensor): this {
    N.setData(this.id, src.id);
    this._shape = undefined;
    this._dtype = undefined;
    return this;
  }
  /** Whether both handles refer to the same libtorch tensor (PyTorch's `a is b` for tensors). */
  isSame(other: Tensor): boolean {
    return N.sameTensor(this.id, other.id) as boolean;
  }
  detach_(): this {
    N.detach_(this.id);
    return this;
  }
  /** Accumulates d(this)/d(leaves) into the leaves' `.grad`. */
  backward(gradient?: Tensor | null, opts: BackwardOptions = {}): void {
    N.backward([this.id], [gradient?.id ?? null], opts.retainGraph ?? null, opts.createGraph ?? false);
  }

  // ---- printing ----
  toString(): string {
    if (this._id < 0) return 'tensor(<disposed>)';
    const values = this.numel() <= 1000 ? JSON.stringify(this.toArray()) : `[... ${this.numel()} elements]`;
    const dev = this.device;
    return `tensor(${values}, shape=[${this.shape.join(', ')}], dtype=${this.dtype}${dev === 'cpu' ? '' : `, device=${dev}`})`;
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

setTensorClass(Tensor);

function correctionOf(opts: { correction?: number; unbiased?: boolean }): number {
  if (opts.correction !== undefined) return opts.correction;
  return opts.unbiased === false ? 0 : 1;
}

function isDeviceString(s: string): boolean {
  return s === 'cpu' || s === 'cuda' || /^[a-z]+:\d+$/.test(s) || s === 'mps' || s === 'meta';
}

/** A 0-dim tensor holding `value`, with `like`'s dtype and device. */
export function scalarLike(value: Scalar, like: Tensor): Tensor {
  return wrap(N.scalarTensor(value, dtypeCode(like.dtype), like.device));
}

/** @internal for the modules that build tensors from native results */
export const _wrap = { wrap, wrapOpt, wrapList, wrapPair, ids, isScalar };
