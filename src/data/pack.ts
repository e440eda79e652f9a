// Packed image data sets: one `.mmpack` file holding the encoded images of an ImageFolder tree
// (train/ and val/ or test/ splits), written by `mmoco pack` and read as a Dataset per split.
//
// Why: one file instead of tens of thousands (network storage, small transfers), and smaller:
// JPEGs written by one encoder at one size share their header (JFIF, quantisation and Huffman
// tables, frame, scan header — 623 bytes for every CIFAR-10 image), so the pack stores each
// distinct header once and per image only the bytes after it. JPEGs with their own optimised
// Huffman tables (Imagenette's) share the part before the tables instead (JFIF, quantisation,
// frame). Lossless: header + rest is the original file byte for byte, so decoding gives
// exactly the folder's pixels.
//
// Format, version 1. Little-endian; offsets are 64-bit; every offset is from the file's start.
//   0   8 bytes  magic "MMOCOPAK"
//   8   u32      version (1)
//   12  u32      0 (reserved)
//   16  u64      offset of the JSON header
//   24  u64      length of the JSON header
//   32  u64      length of the whole file (a truncated copy is caught before anything else)
//   40  ...      blobs: the shared headers and each image's bytes (the part after its header,
//                or the whole file when it has none: PNG, WebP, a JPEG without a clean SOS)
//   then, each starting at a multiple of 8:
//       the header table: offsets u64[H], lengths u32[H]
//       per split: offsets u64[n], lengths u32[n], header ids i32[n] (-1: none), labels
//       i32[n]; and the images' paths relative to the split's folder, UTF-8, '\n'-separated
//   last: the JSON header (UTF-8):
//     { format: 'mmoco-pack', version: 1, source: { root, created, maxPerClass?, seed? },
//       headers: { count, offsets, lengths },
//       splits: { <name>: { count, classes: [...], bytes, index: { offsets, lengths, headers,
//                 labels }, names: { offset, length } } } }
//     where every `offsets`/`lengths`/... is the file offset of that array.
//
// Reading: the whole file is read into memory once (one open, one read) and validated — magic,
// version, lengths, every range inside the file, header ids, labels inside the class list — so
// that decoding can trust it; a pack is small by design (CIFAR-10 ~16 MB). Decoding hands the
// buffer and per image (header range, rest range) to the addon's libjpeg path
// (decodeJpegBuffers: joined and decoded in libuv's pool); what it leaves (PNG, CMYK, ICC,
// rotated, corrupt) goes to sharp in this process (ImageFolder's worker processes take paths,
// and such files are rare in a pack; a decoder crash on a hostile file would end this process),
// and what sharp rejects is a SampleError naming `<pack>#<split>/<index> (<relative path>)`.
import { constants as bufferConsts } from 'node:buffer';
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { join, resolve } from 'node:path';
import { AtomicFileWriter } from '../torch/io/atomic.js';
import { SampleError, checkIndex, createLimiter, type Dataset, type Limiter, type Sample } from './dataset.js';
import { decodeImage } from './decode.js';
import { indexImageFolder } from './folder-index.js';
import { decodeJpegBuffers } from './native/jpeg.js';
import { Rng } from './rng.js';

export const PACK_MAGIC = 'MMOCOPAK';
export const PACK_VERSION = 1;
const FIXED = 40;
const UV_POOL = Math.max(1, Number(process.env.UV_THREADPOOL_SIZE) || 4);

interface Range {
  offset: number;
  length: number;
}

export interface PackSplitHeader {
  count: number;
  classes: string[];
  /** bytes of the split's images as stored (rests and whole files, shared headers not counted) */
  bytes: number;
  index: { offsets: number; lengths: number; headers: number; labels: number };
  names: Range;
}

export interface PackHeader {
  format: 'mmoco-pack';
  version: number;
  source: { root: string; created: string; maxPerClass?: number; seed?: number };
  headers: { count: number; offsets: number; lengths: number };
  splits: Record<string, PackSplitHeader>;
}

/**
 * Where a JPEG's header parts end: `sos`, the end of its first SOS segment (all that images of one
 * encoder, size and Huffman tables share), and `dht`, the start of its first DHT segment (the
 * JFIF/quantisation/frame part, shared by images of one encoder and size even when each has its
 * own optimised Huffman tables); 0 for what is absent or when the markers do not parse cleanly.
 */
export function jpegHeaderParts(b: Uint8Array): { sos: number; dht: number } {
  const none = { sos: 0, dht: 0 };
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return none;
  let p = 2;
  let dht = 0;
  while (p + 4 <= b.length) {
    if (b[p] !== 0xff) return none;
    const m = b[p + 1]!;
    if (m === 0xff) {
      p++; // fill byte
      continue;
    }
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd8) || m === 0xd9) return none; // no SOS before these
    const end = p + 2 + ((b[p + 2]! << 8) | b[p + 3]!);
    if (end > b.length || end < p + 4) return none;
    if (m === 0xc4 && dht === 0) dht = p;
    if (m === 0xda) return { sos: end, dht };
    p = end;
  }
  return none;
}

/** The header of a JPEG up to and including its first SOS segment, or 0 (see jpegHeaderParts). */
export function jpegHeaderLength(b: Uint8Array): number {
  return jpegHeaderParts(b).sos;
}

export interface PackOptions {
  /** split sub-folders to pack (default: train and whichever of val/test exist) */
  splits?: readonly string[];
  /** at most this many images per class and split, chosen with `seed` */
  maxPerClass?: number;
  seed?: number;
}

export interface PackStats {
  file: string;
  splits: Record<string, number>;
  images: number;
  /** distinct shared headers */
  headers: number;
  /** bytes of the source files */
  sourceBytes: number;
  /** bytes of the pack */
  bytes: number;
  /** bytes / sourceBytes */
  ratio: number;
  seconds: number;
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

/** The split folders of `root`: name → folder. Errors name the root and what is there. */
function splitFolders(root: string, wanted: readonly string[] | undefined): [string, string][] {
  if (!isDir(root)) throw new Error(`pack: ${root} is not a folder`);
  if (!isDir(join(root, 'train'))) {
    if (wanted && (wanted.length !== 1 || wanted[0] !== 'train'))
      throw new Error(`pack: ${root} has no train/ sub-folder, so it is packed as one split 'train' (no --splits)`);
    return [['train', root]];
  }
  const names = wanted ?? ['train', ...['val', 'test'].filter((v) => isDir(join(root, v)))];
  for (const n of names) {
    if (!/^[A-Za-z0-9_.-]+$/.test(n)) throw new Error(`pack: bad split name '${n}' (letters, digits, _ . - only)`);
    if (!isDir(join(root, n))) throw new Error(`pack: split '${n}' not found: ${join(root, n)} is not a folder`);
  }
  if (new Set(names).size !== names.length) throw new Error(`pack: a split is named twice in ${names.join(',')}`);
  return names.map((n) => [n, join(root, n)]);
}

/** Indices 0..n-1 keeping at most `max` per label (seeded choice, original order kept). */
function perClass(labels: Int32Array, max: number, rng: Rng): number[] {
  const by = new Map<number, number[]>();
  labels.forEach((l, i) => (by.get(l) ?? by.set(l, []).get(l)!).push(i));
  const keep: number[] = [];
  for (const list of by.values()) keep.push(...rng.shuffle(list).slice(0, max));
  return keep.sort((a, b) => a - b);
}

const align8 = (n: number): number => Math.ceil(n / 8) * 8;

/** The start of a file into `buf` (64 KiB holds any JPEG header but one with huge APP segments). */
function readHead(path: string, buf: Buffer): Buffer {
  const fd = openSync(path, 'r');
  try {
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * Packs the ImageFolder tree at `root` into `out` (written atomically: temporary file, fsync,
 * rename). Every image file is read once and streamed to the pack.
 */
export function packImageFolder(root: string, out: string, opts: PackOptions = {}): PackStats {
  const t0 = performance.now();
  if (opts.maxPerClass !== undefined && !(Number.isInteger(opts.maxPerClass) && opts.maxPerClass >= 1))
    throw new RangeError(`pack: maxPerClass must be a positive integer, got ${opts.maxPerClass}`);
  const seed = opts.seed ?? 0;
  const folders = splitFolders(root, opts.splits);
  const w = new AtomicFileWriter(out);
  try {
    w.write(new Uint8Array(FIXED)); // patched at the end
    const headerIds = new Map<string, number>();
    const headerAt: number[] = [];
    const headerLen: number[] = [];
    let sourceBytes = 0;
    const splits: [
      string,
      {
        classes: string[];
        names: string[];
        offsets: number[];
        lengths: number[];
        hids: number[];
        labels: number[];
        bytes: number;
      },
    ][] = [];
    const chosen = folders.map(([name, dir], s) => {
      const idx = indexImageFolder(dir, { cacheDir: false });
      if (idx.files.length === 0) throw new Error(`pack: split '${name}' (${dir}) holds no images`);
      const keep =
        opts.maxPerClass !== undefined
          ? perClass(idx.labels, opts.maxPerClass, new Rng(seed, s))
          : idx.files.map((_, i) => i);
      return { name, idx, keep };
    });
    // First pass: how many images share each full header. An image whose full header is its
    // own (optimised Huffman tables) shares only the part before its tables.
    const fullCount = new Map<string, number>();
    const buf = Buffer.allocUnsafe(65536);
    for (const { idx, keep } of chosen) {
      for (const i of keep) {
        const head = readHead(join(idx.root, idx.files[i]!), buf);
        const h = jpegHeaderLength(head);
        if (h > 0) {
          const key = head.toString('latin1', 0, h);
          fullCount.set(key, (fullCount.get(key) ?? 0) + 1);
        }
      }
    }
    for (const { name, idx, keep } of chosen) {
      const sp = {
        classes: idx.classes,
        names: [] as string[],
        offsets: [] as number[],
        lengths: [] as number[],
        hids: [] as number[],
        labels: [] as number[],
        bytes: 0,
      };
      for (const i of keep) {
        const rel = idx.files[i]!;
        const bytes = readFileSync(join(idx.root, rel));
        sourceBytes += bytes.length;
        const parts = jpegHeaderParts(bytes);
        let h = parts.sos;
        if (h > 0 && parts.dht > 0 && (fullCount.get(bytes.toString('latin1', 0, h)) ?? 0) < 2) h = parts.dht;
        let hid = -1;
        if (h > 0 && h < bytes.length) {
          const key = bytes.toString('latin1', 0, h);
          let id = headerIds.get(key);
          if (id === undefined) {
            id = headerAt.length;
            headerIds.set(key, id);
            headerAt.push(w.position);
            headerLen.push(h);
            w.write(bytes.subarray(0, h));
          }
          hid = id;
        }
        const rest = hid >= 0 ? bytes.subarray(h) : bytes;
        sp.offsets.push(w.position);
        sp.lengths.push(rest.length);
        sp.hids.push(hid);
        sp.labels.push(idx.labels[i]!);
        sp.names.push(rel);
        sp.bytes += rest.length;
        w.write(rest);
      }
      splits.push([name, sp]);
    }
    const pad = (): void => {
      const p = align8(w.position) - w.position;
      if (p > 0) w.write(new Uint8Array(p));
    };
    const u64 = (xs: readonly number[]): number => {
      pad();
      const at = w.position;
      w.write(new Uint8Array(BigUint64Array.from(xs, (x) => BigInt(x)).buffer));
      return at;
    };
    const u32 = (xs: readonly number[]): number => {
      const at = w.position;
      w.write(new Uint8Array(Uint32Array.from(xs).buffer));
      return at;
    };
    const i32 = (xs: readonly number[]): number => {
      const at = w.position;
      w.write(new Uint8Array(Int32Array.from(xs).buffer));
      return at;
    };
    const header: PackHeader = {
      format: 'mmoco-pack',
      version: PACK_VERSION,
      source: {
        root: resolve(root),
        created: new Date().toISOString(),
        ...(opts.maxPerClass !== undefined ? { maxPerClass: opts.maxPerClass, seed } : {}),
      },
      headers: { count: headerAt.length, offsets: u64(headerAt), lengths: u32(headerLen) },
      splits: {},
    };
    for (const [name, sp] of splits) {
      const index = {
        offsets: u64(sp.offsets),
        lengths: u32(sp.lengths),
        headers: i32(sp.hids),
        labels: i32(sp.labels),
      };
      const text = Buffer.from(sp.names.join('\n'), 'utf8');
      const names = { offset: w.position, length: text.length };
      w.write(text);
      header.splits[name] = { count: sp.offsets.length, classes: sp.classes, bytes: sp.bytes, index, names };
    }
    pad();
    const json = Buffer.from(JSON.stringify(header), 'utf8');
    const jsonAt = w.position;
    w.write(json);
    const fixed = Buffer.alloc(FIXED);
    fixed.write(PACK_MAGIC, 0, 'latin1');
    fixed.writeUInt32LE(PACK_VERSION, 8);
    fixed.writeBigUInt64LE(BigInt(jsonAt), 16);
    fixed.writeBigUInt64LE(BigInt(json.length), 24);
    fixed.writeBigUInt64LE(BigInt(w.position), 32);
    w.writeAt(fixed, 0);
    const bytes = w.position;
    w.commit();
    const counts = Object.fromEntries(splits.map(([n, sp]) => [n, sp.offsets.length]));
    const images = splits.reduce((a, [, sp]) => a + sp.offsets.length, 0);
    return {
      file: out,
      splits: counts,
      images,
      headers: headerAt.length,
      sourceBytes,
      bytes,
      ratio: bytes / Math.max(1, sourceBytes),
      seconds: (performance.now() - t0) / 1000,
    };
  } catch (e) {
    w.abort();
    throw e;
  }
}

/** A pack with a bad or unreadable structure. */
export class PackError extends Error {
  constructor(file: string, what: string) {
    super(`${file}: ${what}`);
    this.name = 'PackError';
  }
}

interface SplitIndex {
  /** per image: header offset, header length, rest offset, rest length (decodeJpegBuffers' items) */
  items: Float64Array;
  labels: Int32Array;
  names: string[];
}

/** Checks that `v` is a non-negative safe integer; names it otherwise. */
function int(file: string, what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new PackError(file, `${what} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return v;
}

/** An opened, validated pack: its header and the file's bytes. */
export class Pack {
  readonly file: string;
  readonly header: PackHeader;
  readonly data: Buffer;
  private readonly splitIndex = new Map<string, SplitIndex>();

  constructor(file: string) {
    this.file = file;
    if (endianness() !== 'LE') throw new PackError(file, 'packs are read on little-endian machines only');
    const fd = (() => {
      try {
        return openSync(file, 'r');
      } catch (e) {
        throw new PackError(file, `cannot open (${(e as Error).message})`);
      }
    })();
    try {
      const size = fstatSync(fd).size;
      if (size > bufferConsts.MAX_LENGTH)
        throw new PackError(file, `${size} bytes is more than one buffer holds (${bufferConsts.MAX_LENGTH})`);
      if (size < FIXED) throw new PackError(file, `truncated: ${size} bytes, shorter than the ${FIXED}-byte header`);
      this.data = Buffer.allocUnsafe(size);
      let got = 0;
      while (got < size) {
        const n = readSync(fd, this.data, got, size - got, got);
        if (n === 0) throw new PackError(file, `truncated while reading: ${got} of ${size} bytes`);
        got += n;
      }
    } finally {
      closeSync(fd);
    }
    this.header = this.validateHeader();
    for (const name of Object.keys(this.header.splits)) this.splitIndex.set(name, this.validateSplit(name));
  }

  private validateHeader(): PackHeader {
    const f = this.file;
    const d = this.data;
    const magic = d.toString('latin1', 0, 8);
    if (magic !== PACK_MAGIC)
      throw new PackError(f, `not an mmoco pack (magic ${JSON.stringify(magic)}, expected "${PACK_MAGIC}")`);
    const version = d.readUInt32LE(8);
    if (version !== PACK_VERSION) throw new PackError(f, `pack version ${version}, this reader knows ${PACK_VERSION}`);
    const jsonAt = Number(d.readBigUInt64LE(16));
    const jsonLen = Number(d.readBigUInt64LE(24));
    const total = Number(d.readBigUInt64LE(32));
    if (total !== d.length)
      throw new PackError(
        f,
        `${total > d.length ? 'truncated' : 'has trailing bytes'}: the header says ${total} bytes, the file has ${d.length}`,
      );
    if (jsonAt < FIXED || jsonAt + jsonLen !== d.length)
      throw new PackError(f, `JSON header at ${jsonAt}+${jsonLen} is not at the file's end (${d.length} bytes)`);
    let h: PackHeader;
    try {
      h = JSON.parse(d.toString('utf8', jsonAt, jsonAt + jsonLen)) as PackHeader;
    } catch (e) {
      throw new PackError(f, `JSON header is corrupt (${(e as Error).message})`);
    }
    if (typeof h !== 'object' || h === null || h.format !== 'mmoco-pack')
      throw new PackError(f, `JSON header: format must be 'mmoco-pack'`);
    if (h.version !== version)
      throw new PackError(f, `JSON header: version ${h.version} differs from the file's ${version}`);
    if (typeof h.headers !== 'object' || h.headers === null) throw new PackError(f, 'JSON header: headers missing');
    if (typeof h.splits !== 'object' || h.splits === null || Object.keys(h.splits).length === 0)
      throw new PackError(f, 'JSON header: no splits');
    return h;
  }

  /** A typed array copied out of the file (copies are aligned; the arrays are small). */
  private array<T>(
    what: string,
    at: unknown,
    n: number,
    width: number,
    make: (b: ArrayBufferLike) => T,
    end: number,
  ): T {
    const off = int(this.file, `${what} offset`, at);
    if (off < FIXED || off + n * width > end)
      throw new PackError(
        this.file,
        `${what}: ${n} entries at ${off} run outside the file's index area (${FIXED}..${end})`,
      );
    return make(this.data.buffer.slice(this.data.byteOffset + off, this.data.byteOffset + off + n * width));
  }

  private headerTable(): { at: Float64Array; len: Uint32Array } {
    const f = this.file;
    const h = this.header.headers;
    const end = Number(this.data.readBigUInt64LE(16));
    const count = int(f, 'headers.count', h.count);
    const at = this.array('headers.offsets', h.offsets, count, 8, (b) => new BigUint64Array(b), end);
    const len = this.array('headers.lengths', h.lengths, count, 4, (b) => new Uint32Array(b), end);
    const out = new Float64Array(count);
    for (let k = 0; k < count; k++) {
      const o = Number(at[k]!);
      if (o < FIXED || o + len[k]! > end)
        throw new PackError(f, `shared header ${k}: ${o}+${len[k]} is outside the data`);
      out[k] = o;
    }
    return { at: out, len };
  }

  private headersCache: { at: Float64Array; len: Uint32Array } | undefined;

  private validateSplit(name: string): SplitIndex {
    const f = this.file;
    const s = this.header.splits[name]!;
    const what = `split '${name}'`;
    if (typeof s !== 'object' || s === null) throw new PackError(f, `${what}: not an object`);
    const n = int(f, `${what}.count`, s.count);
    if (!Array.isArray(s.classes) || s.classes.length === 0 || !s.classes.every((c) => typeof c === 'string'))
      throw new PackError(f, `${what}.classes must be a non-empty list of names`);
    if (typeof s.index !== 'object' || s.index === null) throw new PackError(f, `${what}.index missing`);
    const end = Number(this.data.readBigUInt64LE(16));
    const off = this.array(`${what}.index.offsets`, s.index.offsets, n, 8, (b) => new BigUint64Array(b), end);
    const len = this.array(`${what}.index.lengths`, s.index.lengths, n, 4, (b) => new Uint32Array(b), end);
    const hid = this.array(`${what}.index.headers`, s.index.headers, n, 4, (b) => new Int32Array(b), end);
    const labels = this.array(`${what}.index.labels`, s.index.labels, n, 4, (b) => new Int32Array(b), end);
    this.headersCache ??= this.headerTable();
    const hd = this.headersCache;
    const items = new Float64Array(4 * n);
    for (let i = 0; i < n; i++) {
      const o = Number(off[i]!);
      if (o < FIXED || o + len[i]! > end)
        throw new PackError(f, `${what} image ${i}: bytes ${o}+${len[i]} are outside the data`);
      const h = hid[i]!;
      if (h < -1 || h >= hd.len.length)
        throw new PackError(f, `${what} image ${i}: header id ${h} not in -1..${hd.len.length - 1}`);
      const l = labels[i]!;
      if (l < 0 || l >= s.classes.length)
        throw new PackError(f, `${what} image ${i}: label ${l} outside 0..${s.classes.length - 1}`);
      if (h >= 0) {
        items[4 * i] = hd.at[h]!;
        items[4 * i + 1] = hd.len[h]!;
      }
      items[4 * i + 2] = o;
      items[4 * i + 3] = len[i]!;
    }
    if (typeof s.names !== 'object' || s.names === null) throw new PackError(f, `${what}.names missing`);
    const no = int(f, `${what}.names.offset`, s.names.offset);
    const nl = int(f, `${what}.names.length`, s.names.length);
    if (no < FIXED || no + nl > end) throw new PackError(f, `${what}.names: ${no}+${nl} is outside the index area`);
    const names = n === 0 ? [] : this.data.toString('utf8', no, no + nl).split('\n');
    if (names.length !== n) throw new PackError(f, `${what}.names: ${names.length} paths for ${n} images`);
    return { items, labels, names };
  }

  get splits(): string[] {
    return Object.keys(this.header.splits);
  }

  has(split: string): boolean {
    return this.splitIndex.has(split);
  }

  /** The data set of one split; an unknown name is an error listing the pack's splits. */
  split(name: string): PackedImages {
    const idx = this.splitIndex.get(name);
    if (!idx) throw new PackError(this.file, `no split '${name}' (it has ${this.splits.join(', ')})`);
    return new PackedImages(this, name, this.header.splits[name]!.classes, idx);
  }

  /** The original bytes of image `i` of `split` (shared header + rest). */
  bytes(split: string, i: number): Buffer {
    const idx = this.splitIndex.get(split);
    if (!idx) throw new PackError(this.file, `no split '${split}'`);
    const it = idx.items;
    return Buffer.concat([
      this.data.subarray(it[4 * i]!, it[4 * i]! + it[4 * i + 1]!),
      this.data.subarray(it[4 * i + 2]!, it[4 * i + 2]! + it[4 * i + 3]!),
    ]);
  }

  /** A summary for `mmoco info`. */
  summary(): Record<string, unknown> {
    const h = this.header;
    return {
      file: this.file,
      format: h.format,
      version: h.version,
      bytes: this.data.length,
      source: h.source,
      sharedHeaders: h.headers.count,
      splits: Object.fromEntries(
        Object.entries(h.splits).map(([n, s]) => [n, { count: s.count, classes: s.classes, bytes: s.bytes }]),
      ),
    };
  }
}

/** Opens and validates a pack (errors name the file and the problem). */
export function openPack(file: string): Pack {
  return new Pack(file);
}

/** One split of a pack as a Dataset. */
export class PackedImages implements Dataset {
  readonly length: number;
  /** images handed to sharp so far (the addon declined them: not JPEG, CMYK, ICC, rotated, corrupt) */
  sharpDecodes = 0;

  constructor(
    readonly pack: Pack,
    readonly split: string,
    readonly classes: readonly string[],
    private readonly idx: SplitIndex,
  ) {
    this.length = idx.labels.length;
  }

  label(i: number): number {
    checkIndex(this, i, 'PackedImages.label');
    return this.idx.labels[i]!;
  }

  /** Path of image `i` relative to its split folder when packed. */
  relativePath(i: number): string {
    checkIndex(this, i, 'PackedImages.relativePath');
    return this.idx.names[i]!;
  }

  source(i: number): string {
    return `${this.pack.file}#${this.split}/${i} (${this.relativePath(i)})`;
  }

  async get(i: number): Promise<Sample> {
    const [s] = await this.getMany([i], createLimiter(1));
    if (s instanceof SampleError) throw s;
    return s!;
  }

  /** Like ImageFolder.getMany: native requests of at least 8 images, sharp for what they leave. */
  async getMany(indices: readonly number[], limit: Limiter): Promise<(Sample | SampleError)[]> {
    for (const i of indices) checkIndex(this, i, 'PackedImages.getMany');
    const out = new Array<Sample | SampleError>(indices.length);
    const per = Math.max(8, Math.ceil(indices.length / limit.slots));
    const jobs: Promise<void>[] = [];
    for (let s = 0; s < indices.length; s += per)
      jobs.push(this.decodePart(indices, s, Math.min(indices.length, s + per), limit, out));
    await Promise.all(jobs);
    return out;
  }

  private async decodePart(
    indices: readonly number[],
    from: number,
    to: number,
    limit: Limiter,
    out: (Sample | SampleError)[],
  ): Promise<void> {
    const items = new Float64Array(4 * (to - from));
    for (let k = from; k < to; k++)
      items.set(this.idx.items.subarray(4 * indices[k]!, 4 * indices[k]! + 4), 4 * (k - from));
    const native = await limit(() => decodeJpegBuffers(this.pack.data, items, Math.ceil(limit.slots / UV_POOL)));
    const rest: Promise<void>[] = [];
    native.forEach((r, j) => {
      const k = from + j;
      const i = indices[k]!;
      if (r.image) {
        out[k] = { image: r.image, label: this.idx.labels[i]! };
        return;
      }
      this.sharpDecodes++;
      rest.push(
        limit(() => decodeImage(this.pack.bytes(this.split, i))).then(
          (image) => void (out[k] = { image, label: this.idx.labels[i]! }),
          (e: unknown) =>
            void (out[k] = new SampleError(this.source(i), i, e instanceof Error ? e.message : String(e))),
        ),
      );
    });
    await Promise.all(rest);
  }
}
