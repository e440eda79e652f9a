// Downloads with checksum verification: http(s) through fetch, or file:// (mirrors, tests).
// The file is written to `<dest>.part`, hashed as it streams, and renamed into place only when
// the checksum matches; on a mismatch the partial file is removed and the error names both sums.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

export interface Checksum {
  md5?: string;
  sha256?: string;
}

function algorithm(sum: Checksum): ['md5' | 'sha256', string] {
  if (sum.sha256) return ['sha256', sum.sha256.toLowerCase()];
  if (sum.md5) return ['md5', sum.md5.toLowerCase()];
  throw new Error('download: a checksum (md5 or sha256) is required');
}

/** Hex digest of a file. */
export async function fileDigest(path: string, algo: 'md5' | 'sha256'): Promise<string> {
  const h = createHash(algo);
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Whether the file exists and has the checksum. */
export async function verifyFile(path: string, sum: Checksum): Promise<boolean> {
  if (!existsSync(path)) return false;
  const [algo, want] = algorithm(sum);
  return (await fileDigest(path, algo)) === want;
}

/**
 * Downloads `url` to `dest` and verifies its checksum; a `dest` that already has the checksum
 * is kept. Rejects (leaving nothing at `dest`) on a network error or a checksum mismatch.
 */
export async function downloadFile(url: string, dest: string, sum: Checksum): Promise<string> {
  const [algo, want] = algorithm(sum);
  if (await verifyFile(dest, sum)) return dest;
  mkdirSync(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  const hash = createHash(algo);
  try {
    let body: Readable;
    if (url.startsWith('file:')) body = createReadStream(fileURLToPath(url));
    else {
      const res = await fetch(url);
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
      body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    }
    await pipeline(
      body,
      async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) {
          hash.update(chunk);
          yield chunk;
        }
      },
      createWriteStream(part),
    );
  } catch (err) {
    rmSync(part, { force: true });
    throw new Error(`download ${url}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const got = hash.digest('hex');
  if (got !== want) {
    rmSync(part, { force: true });
    throw new Error(`download ${url}: ${algo} mismatch: expected ${want}, got ${got} (file removed)`);
  }
  renameSync(part, dest);
  return dest;
}
