// Atomic file replacement: a reader sees the old file or the new one, never a torn write,
// even if the process is killed or the machine loses power mid-write.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Writes `chunks` to a temporary file beside `path`, fsyncs it, renames it over `path`, fsyncs the folder. */
export function writeFileAtomic(path: string, chunks: Uint8Array | readonly Uint8Array[]): void {
  writeFileAtomicWith(path, (tmp) => {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      for (const chunk of chunks instanceof Uint8Array ? [chunks] : chunks) {
        let off = 0;
        while (off < chunk.byteLength) off += writeSync(fd, chunk, off, chunk.byteLength - off);
      }
    } finally {
      closeSync(fd);
    }
  });
}

/**
 * The same for a file some other writer makes (`write(tmp)` creates the temporary file, e.g.
 * libtorch's zip writer): then fsync, rename over `path`, fsync the folder. A failed write
 * leaves `path` as it was and no temporary file.
 */
export function writeFileAtomicWith(path: string, write: (tmp: string) => void): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    write(tmp);
    const fd = openSync(tmp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  // The rename itself is durable only once the folder's entry is on disk.
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}

/**
 * writeFileAtomic for a file too large to assemble in memory: write() appends, writeAt()
 * patches bytes already written (a header whose fields are known last), commit() fsyncs,
 * renames the temporary file over `path` and fsyncs the folder; abort() removes it.
 */
export class AtomicFileWriter {
  readonly path: string;
  private readonly tmp: string;
  private fd: number | null;
  /** bytes appended so far */
  position = 0;

  constructor(path: string) {
    this.path = path;
    this.tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
    this.fd = openSync(this.tmp, 'w', 0o644);
  }

  private open(): number {
    if (this.fd === null) throw new Error(`${this.path}: writer already committed or aborted`);
    return this.fd;
  }

  write(chunk: Uint8Array): void {
    const fd = this.open();
    let off = 0;
    while (off < chunk.byteLength) off += writeSync(fd, chunk, off, chunk.byteLength - off, this.position + off);
    this.position += chunk.byteLength;
  }

  writeAt(chunk: Uint8Array, at: number): void {
    if (at + chunk.byteLength > this.position) throw new RangeError(`${this.path}: writeAt past the written end`);
    const fd = this.open();
    let off = 0;
    while (off < chunk.byteLength) off += writeSync(fd, chunk, off, chunk.byteLength - off, at + off);
  }

  commit(): void {
    const fd = this.open();
    try {
      fsyncSync(fd);
    } catch (e) {
      this.abort();
      throw e;
    }
    closeSync(fd);
    this.fd = null;
    try {
      renameSync(this.tmp, this.path);
    } catch (e) {
      rmSync(this.tmp, { force: true });
      throw e;
    }
    const dfd = openSync(dirname(this.path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  }

  abort(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    rmSync(this.tmp, { force: true });
  }
}
