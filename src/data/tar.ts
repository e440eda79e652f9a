// Extracts a .tar or .tar.gz archive (ustar, with pax and GNU long names), streaming: regular
// files and folders only; links and devices are skipped, and a path that would leave the
// destination (absolute, or with '..') is an error.
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { createGunzip } from 'node:zlib';

function field(h: Buffer, at: number, len: number): string {
  const end = h.indexOf(0, at);
  return h.toString('utf8', at, end >= 0 && end < at + len ? end : at + len);
}

function octal(h: Buffer, at: number, len: number): number {
  if (h[at]! & 0x80) {
    // GNU base-256
    let v = 0;
    for (let i = at + 1; i < at + len; i++) v = v * 256 + h[i]!;
    return v;
  }
  const s = field(h, at, len).trim();
  return s ? parseInt(s, 8) : 0;
}

function safePath(dest: string, name: string, archive: string): string {
  const rel = normalize(name).replace(/^(\.\/)+/, '');
  if (rel.startsWith('/') || rel === '..' || rel.startsWith(`..${sep}`) || rel.includes(`${sep}..${sep}`)) {
    throw new Error(`${archive}: entry '${name}' would be written outside ${dest}`);
  }
  return join(dest, rel);
}

function paxPath(data: Buffer): string | undefined {
  let p = 0;
  let path: string | undefined;
  while (p < data.length) {
    const sp = data.indexOf(0x20, p);
    if (sp < 0) break;
    const len = parseInt(data.toString('utf8', p, sp), 10);
    if (!(len > 0)) break;
    const rec = data.toString('utf8', sp + 1, p + len - 1);
    const eq = rec.indexOf('=');
    if (rec.slice(0, eq) === 'path') path = rec.slice(eq + 1);
    p += len;
  }
  return path;
}

/** Extracts `archive` (gzip-compressed when it starts with the gzip magic) into `dest`; returns the files written. */
export async function extractTar(archive: string, dest: string): Promise<string[]> {
  mkdirSync(dest, { recursive: true });
  const head = Buffer.alloc(2);
  const fh = await open(archive, 'r');
  try {
    await fh.read(head, 0, 2, 0);
  } finally {
    await fh.close();
  }
  const raw = createReadStream(archive);
  const stream = head[0] === 0x1f && head[1] === 0x8b ? raw.pipe(createGunzip()) : raw;

  const written: string[] = [];
  let buf: Buffer = Buffer.alloc(0);
  let longName: string | undefined;
  let paxName: string | undefined;
  let ended = false;
  // current entry
  let need = 512; // bytes wanted for the next step
  let state = 'header' as 'header' | 'data';
  let entry: { type: string; name: string; size: number } | undefined;

  const take = (): void => {
    while (!ended && buf.length >= need) {
      if (state === 'header') {
        const h = buf.subarray(0, 512);
        buf = buf.subarray(512);
        if (h.every((b) => b === 0)) {
          ended = true;
          return;
        }
        let sum = 0;
        for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
        if (sum !== octal(h, 148, 8)) throw new Error(`${archive}: bad tar header checksum (not a tar file?)`);
        const prefix = field(h, 345, 155);
        const base = field(h, 0, 100);
        const name = paxName ?? longName ?? (prefix ? `${prefix}/${base}` : base);
        entry = { type: String.fromCharCode(h[156]!), name, size: octal(h, 124, 12) };
        state = 'data';
        need = Math.ceil(entry.size / 512) * 512;
      } else {
        const e = entry!;
        const data = buf.subarray(0, e.size);
        buf = buf.subarray(need);
        state = 'header';
        need = 512;
        if (e.type === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
        else if (e.type === 'x') paxName = paxPath(data);
        else if (e.type !== 'g') {
          if (e.type === '0' || e.type === '\0' || e.type === '7') {
            const out = safePath(dest, e.name, archive);
            mkdirSync(dirname(out), { recursive: true });
            writeFileSync(out, data);
            written.push(out);
          } else if (e.type === '5') mkdirSync(safePath(dest, e.name, archive), { recursive: true });
          longName = undefined;
          paxName = undefined;
        }
      }
    }
  };
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    take();
    if (ended) break;
  }
  if (!ended && (state === 'data' || buf.length > 0)) throw new Error(`${archive}: truncated tar archive`);
  return written;
}
