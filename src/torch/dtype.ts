// Element types. The codes are indices into the native table (native/src/handle.cc).

export type DType =
  'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'bool' | 'int8' | 'int16';

const ORDER: readonly DType[] = [
  'float32',
  'float64',
  'float16',
  'bfloat16',
  'int64',
  'int32',
  'uint8',
  'bool',
  'int8',
  'int16',
];

/** PyTorch's other names for the same types. */
const ALIASES: Record<string, DType> = {
  float: 'float32',
  double: 'float64',
  half: 'float16',
  long: 'int64',
  int: 'int32',
  short: 'int16',
};

export function dtypeCode(d: DType | string): number {
  const code = ORDER.indexOf((ALIASES[d] ?? d) as DType);
  if (code < 0) throw new TypeError(`unknown dtype '${d}': allowed ${ORDER.join(', ')}`);
  return code;
}

export function dtypeFromCode(code: number): DType {
  const d = ORDER[code];
  if (d === undefined) throw new TypeError(`unknown dtype code ${code}`);
  return d;
}

/** Bytes of one element of each dtype (the checkpoint readers and writers size storages by it). */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export function isFloatingPoint(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

/** Typed array that holds a dtype's elements in `toTypedArray()` (half types come out as float32). */
export type TypedArrayFor<D extends DType> = D extends 'float64'
  ? Float64Array
  : D extends 'int64'
    ? BigInt64Array
    : D extends 'int32'
      ? Int32Array
      : D extends 'uint8' | 'bool'
        ? Uint8Array
        : D extends 'int8'
          ? Int8Array
          : D extends 'int16'
            ? Int16Array
            : Float32Array;

export type AnyTypedArray =
  Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array | Int8Array | Int16Array;
