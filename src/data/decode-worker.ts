// A decode process of decode-pool.ts. For each request (a list of image files) it reads the
// files with blocking calls, decodes them one by one with sharp (whose work runs in libuv's
// thread pool), so a corrupt file costs only itself, and sends back the RGB pixels of all of
// them in one buffer. Requests are handled one at a time.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { decodeImage } from './decode.js';

export interface DecodeRequest {
  id: number;
  /** paths joined by '\0' (which no path contains) */
  paths: string;
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

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

async function decodeAll(paths: readonly string[]): Promise<Omit<DecodeReply, 'id'>> {
  const n = paths.length;
  const images: ({ data: Uint8Array; width: number; height: number } | null)[] = new Array(n).fill(null);
  const errors: [number, string][] = [];
  for (let k = 0; k < n; k++) {
    try {
      images[k] = await decodeImage(readFile(paths[k]!));
    } catch (err) {
      errors.push([k, message(err)]);
    }
  }
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
    .then(() => decodeAll(req.paths.split('\0')))
    .then(
      (r) => void process.send!({ id: req.id, ...r } satisfies DecodeReply),
      (err: unknown) => void process.send!({ id: req.id, fatal: message(err) }),
    );
});
// the pool closed the channel (or its process ended): nothing more to do
process.on('disconnect', () => process.exit(0));
