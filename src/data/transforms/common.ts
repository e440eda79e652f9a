// Shared pieces of the image transforms: batch checks, dtype handling, random parameter draws
// from the library's generator, and applying an op to some images of a batch.
//
// Every transform takes an NCHW batch, uint8 (0..255) or float32 (0..1), on any device. Random
// parameters are drawn on the CPU generator (torch.rand / torch.randn), so one seed
// (`manualSeed`) fixes them whatever device the images are on; they come back to JavaScript as a
// handful of numbers per image, and the pixels never do.
import { randn, rand, tensor, type Tensor } from '../../torch/index.js';

export type Interpolation = 'bilinear' | 'bicubic';

/** A crop box in pixels, as torchvision's (top, left, height, width). */
export interface Box {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** Checks that `x` is an NCHW image batch of a supported dtype and returns its shape. */
export function dims(x: Tensor, what: string): [number, number, number, number] {
  if (x.ndim !== 4) throw new RangeError(`${what}: expected an NCHW batch, got shape [${x.shape.join(', ')}]`);
  const d = x.dtype;
  if (d !== 'uint8' && d !== 'float32' && d !== 'float64') {
    throw new TypeError(`${what}: expected uint8 or float32 images, got ${d}`);
  }
  return x.shape as [number, number, number, number];
}

/** The largest pixel value of the batch's dtype: 255 for uint8, 1 for floats. */
export const maxValue = (x: Tensor): number => (x.dtype === 'uint8' ? 255 : 1);

/** The float dtype a transform computes in: the batch's own for floats, float32 for uint8. */
export const floatType = (x: Tensor): 'float32' | 'float64' => (x.dtype === 'float64' ? 'float64' : 'float32');

/**
 * A float result back in `dtype`. For uint8, torchvision rounds after resampling ops (resize,
 * blur, affine: `round`) and truncates after colour blends (`trunc`); floats pass through.
 */
export function castBack(y: Tensor, dtype: Tensor['dtype'], mode: 'round' | 'trunc'): Tensor {
  if (y.dtype === dtype) return y;
  if (dtype !== 'uint8') return y.to(dtype);
  return (mode === 'round' ? y.round() : y).to('uint8');
}

/** A new handle on `x` (same storage), so a scope can return an unchanged batch safely. */
export const same = (x: Tensor): Tensor => x.reshape(x.shape);

/** Python's round(): halves go to the even neighbour (torchvision's crop sizes use it). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---- random draws (CPU generator, float64, as numbers) ----

/** `n` draws uniform in [lo, hi). */
export function uniform(n: number, lo = 0, hi = 1): number[] {
  if (n === 0) return [];
  const t = rand([n], { dtype: 'float64' });
  const u = Array.from(t.toTypedArray() as Float64Array, (v) => lo + (hi - lo) * v);
  t.dispose();
  return u;
}

/** `n` normal draws. */
export function normal(n: number, mean = 0, std = 1): number[] {
  if (n === 0) return [];
  const t = randn([n], { dtype: 'float64' });
  const z = Array.from(t.toTypedArray() as Float64Array, (v) => mean + std * v);
  t.dispose();
  return z;
}

/** `n` coin flips that come up true with probability p (no draw for p 0 or 1). */
export function bernoulli(n: number, p: number): boolean[] {
  if (p <= 0) return new Array<boolean>(n).fill(false);
  if (p >= 1) return new Array<boolean>(n).fill(true);
  return uniform(n).map((u) => u < p);
}

/** `n` integers uniform in [lo, hi) (hi > lo). */
export function randInts(n: number, lo: number, hi: number): number[] {
  return uniform(n).map((u) => Math.min(hi - 1, lo + Math.floor(u * (hi - lo))));
}

/** One integer uniform in [lo, hi). */
export const randInt = (lo: number, hi: number): number => randInts(1, lo, hi)[0]!;

/** Per image, the indices 0..k-1 in a uniformly random order (as torch.randperm per image). */
export function permutations(n: number, k: number): number[][] {
  const u = uniform(n * k);
  const out: number[][] = [];
  for (let i = 0; i < n; i++) {
    const keys = u.slice(i * k, (i + 1) * k);
    out.push([...keys.keys()].sort((a, b) => keys[a]! - keys[b]!));
  }
  return out;
}

// ---- per-image values and subsets ----

// Each copy from JavaScript to a GPU tensor waits for the GPU to finish its queue, so transforms
// that run many small ops upload their per-image numbers once per call (`upload`) and slice them.

/** One value per image as an [n, 1, 1, 1] tensor on `like`'s device, in its float dtype. */
export function perImage(values: readonly number[], like: Tensor): Tensor {
  const dtype = floatType(like);
  const data = dtype === 'float64' ? Float64Array.from(values) : Float32Array.from(values);
  return tensor(data, { shape: [values.length, 1, 1, 1], device: like.device });
}

/**
 * Copies several lists of numbers to `like`'s device in one transfer (float dtype of `like`) and
 * returns each list as a 1-D view.
 */
export function upload(lists: readonly (readonly number[])[], like: Tensor): Tensor[] {
  const flat = lists.flat();
  const all = tensor(floatType(like) === 'float64' ? Float64Array.from(flat) : Float32Array.from(flat), {
    device: like.device,
  });
  let off = 0;
  return lists.map((l) => {
    const v = all.narrow(0, off, l.length);
    off += l.length;
    return v;
  });
}

/** The image indices as an int64 tensor on `device`. */
export function indexTensor(idx: readonly number[], device: string): Tensor {
  return tensor(
    BigInt64Array.from(idx, (i) => BigInt(i)),
    { device },
  );
}

/** The indices where `flags` holds. */
export const indicesOf = (flags: readonly boolean[]): number[] => flags.flatMap((f, i) => (f ? [i] : []));

/**
 * The batch with the images at `idx` replaced by `fn` of them (`fn` gets the sub-batch and the
 * indices, and keeps shape and dtype). The whole batch goes to `fn` directly when every image is
 * selected; the batch comes back unchanged (a new handle) when none is. With `inPlace` the
 * selected images are written into `x` itself (for a batch the caller owns) instead of a copy;
 * `index` is `idx` already on the device, if the caller uploaded it.
 */
export function applyTo(
  x: Tensor,
  idx: readonly number[],
  fn: (sub: Tensor, idx: readonly number[]) => Tensor,
  o: { inPlace?: boolean; index?: Tensor } = {},
): Tensor {
  const n = x.shape[0]!;
  if (idx.length === 0) return o.inPlace ? x : same(x);
  if (idx.length === n && idx.every((v, i) => v === i)) return fn(x, idx);
  const index = o.index ?? indexTensor(idx, x.device);
  const y = fn(x.indexSelect(0, index), idx);
  return (o.inPlace ? x : x.clone()).indexPut_([index], y);
}

/** Picks the entries of `values` at `idx`. */
export const pick = <T>(values: readonly T[], idx: readonly number[]): T[] => idx.map((i) => values[i]!);
