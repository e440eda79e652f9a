// A decode process of decode-pool.ts. For each request (a list of image files) it reads the
// files with blocking calls, parses their headers, decodes them with sharp (whose work runs
// in libuv's thread pool) and sends back the RGB pixels of all of them in one buffer. Plain
// JPEGs of one size (up to 160 × 160 pixels) go joinSize to a sharp call (decodeJoined); a call
// that fails is retried image by image, so one corrupt file costs only itself. Requests are
// handled one at a time.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { decodeImage, decodeJoined } from './decode.js';
import { isPlainJpeg, readImageHeader, type ImageHeader } from './image-header.js';

export interface DecodeRequest {
  id: number;
  /** paths joined by '\0' (which no path contains) */
  paths: string;
  joinSize: number;
}

export interface DecodeReply {
  id: number;
  /** the decoded images, HWC RGB, one after another */
  pixels: Uint8Array;
  /** per file: byte offset in pixels, width, height (width -1: failed, see errors) */
  meta: Int32Array;
  errors: [number, string][];
}

function readFile(path: string): Uint8Array {
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    let buf = new Uint8Array(st.size + 1);
    let length = 0;
    for (;;) {
      if (length === buf.length) {
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf);
        buf = bigger;
      }
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length === 0) throw new Error('empty file');
    return buf.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/**
 * Joining pays off for small images only: per CIFAR-sized JPEG it saves about a third of the
 * CPU time, at 128 px about a sixth, and at 256 px it costs more than decoding alone.
 */
const JOIN_MAX_PIXELS = 160 * 160;

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function decodeAll(paths: readonly string[], joinSize: number): Promise<Omit<DecodeReply, 'id'>> {
  const n = paths.length;
  const images: ({ data: Uint8Array; width: number; height: number } | null)[] = new Array(n).fill(null);
  const errors: [number, string][] = [];
  const files: (Uint8Array | null)[] = [];
  const headers: (ImageHeader | null)[] = [];
  paths.forEach((p, k) => {
    try {
      const f = readFile(p);
      files.push(f);
      headers.push(readImageHeader(f));
    } catch (err) {
      files.push(null);
      headers.push(null);
      errors.push([k, message(err)]);
    }
  });
  const one = async (k: number): Promise<void> => {
    try {
      images[k] = await decodeImage(files[k]!);
    } catch (err) {
      errors.push([k, message(err)]);
    }
  };
  const groups = new Map<string, number[]>();
  const singles: number[] = [];
  for (let k = 0; k < n; k++) {
    const h = headers[k];
    if (!h) continue;
    if (joinSize > 1 && isPlainJpeg(h) && h.width * h.height <= JOIN_MAX_PIXELS) {
      const key = `${h.width}x${h.height}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = []));
      g.push(k);
    } else singles.push(k);
  }
  for (const ks of groups.values()) {
    const { width, height } = headers[ks[0]!]!;
    const size = width * height * 3;
    for (let s = 0; s < ks.length; s += joinSize) {
      const chunk = ks.slice(s, s + joinSize);
      if (chunk.length === 1) {
        await one(chunk[0]!);
        continue;
      }
      try {
        const data = await decodeJoined(
          chunk.map((k) => files[k]!),
          width,
          height,
        );
        chunk.forEach((k, j) => (images[k] = { data: data.subarray(j * size, (j + 1) * size), width, height }));
      } catch {
        for (const k of chunk) await one(k);
      }
    }
  }
  for (const k of singles) await one(k);

  let total = 0;
  for (const im of images) if (im) total += im.data.length;
  const pixels = new Uint8Array(total);
  const meta = new Int32Array(n * 3);
  let at = 0;
  images.forEach((im, k) => {
    meta[3 * k] = at;
    if (!im) {
      meta[3 * k + 1] = -1;
      return;
    }
    pixels.set(im.data, at);
    meta[3 * k + 1] = im.width;
    meta[3 * k + 2] = im.height;
    at += im.data.length;
  });
  return { pixels, meta, errors };
}

// one request at a time: the pool's processes are the parallelism
let queue = Promise.resolve();
process.on('message', (req: DecodeRequest) => {
  queue = queue
    .then(() => decodeAll(req.paths.split('\0'), req.joinSize))
    .then(
      (r) => void process.send!({ id: req.id, ...r } satisfies DecodeReply),
      (err: unknown) => void process.send!({ id: req.id, fatal: message(err) }),
    );
});
// the pool closed the channel (or its process ended): nothing more to do
process.on('disconnect', () => process.exit(0));
