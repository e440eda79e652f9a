// The data sets' JPEG decoder: files (or a pack's buffer) read and decoded by libjpeg(-turbo) in
// the native addon (native/src/image/jpeg.cc), off the JS thread, all pixels of a request in one
// buffer.
//
// Why: sharp (libvips) spends about 400 µs of CPU per CIFAR-sized JPEG, nearly all of it per-call
// pipeline set-up; the decoder itself (which PIL and libvips share) needs a few tens. The addon
// decodes only what gives the same pixels as sharp would (8-bit JPEGs in YCbCr, RGB or
// grayscale, upright, without an ICC profile): it alone decides which files those are. Every
// other file comes back undecoded, with the reason, for sharp (decode.ts) to decode or reject.
import type { RgbImage } from '../dataset.js';
import { IMG } from './binding.js';

export interface NativeDecoded {
  /** null: not decoded here (`reason` says why); the caller hands the file to sharp */
  image: RgbImage | null;
  reason?: string;
}

interface NativeResult {
  pixels: Uint8Array;
  meta: Float64Array;
  reasons: string[];
}

/** Reads and decodes the files (in order) with `threads` native threads (default 1). */
export async function decodeJpegFiles(paths: readonly string[], threads = 1): Promise<NativeDecoded[]> {
  if (paths.length === 0) return [];
  return unpack((await IMG.decodeJpegFiles(paths, threads)) as NativeResult, paths.length);
}

/**
 * Decodes JPEGs held in `data` (in order): `items` holds 4 numbers per image — offset and length
 * of a prefix (0, 0: none) and of the rest; the image's file is prefix + rest. The ranges must
 * lie inside `data` (checked natively); `data` is kept alive until the call settles.
 */
export async function decodeJpegBuffers(data: Buffer, items: Float64Array, threads = 1): Promise<NativeDecoded[]> {
  if (items.length === 0) return [];
  return unpack((await IMG.decodeJpegBuffers(data, items, threads)) as NativeResult, items.length / 4);
}

function unpack(r: NativeResult, n: number): NativeDecoded[] {
  const out: NativeDecoded[] = new Array(n);
  const px = new Uint8Array(r.pixels.buffer, r.pixels.byteOffset, r.pixels.length);
  for (let k = 0; k < n; k++) {
    const at = r.meta[3 * k]!;
    const width = r.meta[3 * k + 1]!;
    const height = r.meta[3 * k + 2]!;
    out[k] =
      width < 0
        ? { image: null, reason: r.reasons[k] }
        : { image: { data: px.subarray(at, at + width * height * 3), width, height } };
  }
  return out;
}
