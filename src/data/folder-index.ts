// The file list of an image folder (torchvision's ImageFolder layout: one sub-folder per
// class, searched recursively), cached on disk so that a large folder is not walked again
// on every run.
//
// Cache: one JSON file per folder in <cache dir>/image-folder/, named by a hash of the
// folder's real path and the extensions. It records every directory walked with its mtime
// (nanoseconds); a later run stats those directories only (a few thousand stats for a
// million images) and walks the folder again when any of them changed, vanished or is no
// longer a directory. Adding, removing or renaming an entry anywhere below the root changes
// the mtime of the directory that holds it, so those are all seen. A folder changed within a
// second of the walk is not cached (timestamps can be coarser than the time between the walk
// and the change), and a cache that cannot be written (read-only home) is silently skipped.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp'];

export interface FolderIndex {
  /** the folder's real path */
  root: string;
  /** class folder names in byte order; index = label */
  classes: string[];
  /** image paths relative to root ('/'-separated), grouped by class */
  files: string[];
  labels: Int32Array;
  /** true when the list came from the cache */
  fromCache: boolean;
}

export interface IndexOptions {
  extensions?: readonly string[];
  /** cache folder; false: neither read nor write a cache. Default: defaultCacheDir() */
  cacheDir?: string | false;
}

/** $MMOCO_CACHE_DIR, else $XDG_CACHE_HOME/mmoco, else ~/.cache/mmoco. */
export function defaultCacheDir(): string {
  const env = process.env.MMOCO_CACHE_DIR;
  if (env) return env;
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg && xdg.length > 0 ? xdg : join(homedir(), '.cache'), 'mmoco');
}

/** Compares strings in UTF-8 byte order (= code point order; JS's `<` compares UTF-16 units). */
export function byteOrder(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // surrogates (code points ≥ 0x10000) sort after U+E000..U+FFFF
    if (x >= 0xd800) x = x <= 0xdfff ? x + 0x2000 : x - 0x800;
    if (y >= 0xd800) y = y <= 0xdfff ? y + 0x2000 : y - 0x800;
    return x - y;
  }
  return a.length - b.length;
}

const CACHE_FORMAT = 'mmoco-image-folder-index';
const CACHE_VERSION = 1;
/** a directory modified less than this before the walk started makes the walk uncacheable */
const RACY_NS = 1_000_000_000n;

interface CacheFile {
  format: string;
  version: number;
  root: string;
  extensions: string[];
  /** [path relative to root ('' = root), mtime in ns as a decimal string] */
  dirs: [string, string][];
  classes: { name: string; files: string[] }[];
}

interface Walk {
  classes: { name: string; files: string[] }[];
  dirs: [string, string][];
  racy: boolean;
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function walk(root: string, exts: readonly string[], startNs: bigint): Walk {
  const dirs: [string, string][] = [];
  let racy = false;
  const note = (rel: string): void => {
    const m = statSync(rel ? join(root, rel) : root, { bigint: true }).mtimeNs;
    if (m > startNs - RACY_NS) racy = true;
    dirs.push([rel, m.toString()]);
  };
  note('');
  const top = readdirSync(root, { withFileTypes: true });
  const classNames = top
    .filter((e) => e.isDirectory() || (e.isSymbolicLink() && isDir(join(root, e.name))))
    .map((e) => e.name)
    .sort(byteOrder);
  const classes = classNames.map((name) => {
    // as os.walk(followlinks=True) sorted by directory, files sorted within each
    const perDir: [string, string[]][] = [];
    const seen = new Set<string>();
    const visit = (rel: string): void => {
      const abs = join(root, rel);
      const real = realpathSync(abs);
      if (seen.has(real)) return; // symlink loop
      seen.add(real);
      note(rel);
      const files: string[] = [];
      const subdirs: string[] = [];
      for (const e of readdirSync(abs, { withFileTypes: true })) {
        let file = e.isFile();
        let dir = e.isDirectory();
        if (e.isSymbolicLink()) {
          try {
            const st = statSync(join(abs, e.name));
            file = st.isFile();
            dir = st.isDirectory();
          } catch {
            continue; // dangling link
          }
        }
        if (dir) subdirs.push(e.name);
        else if (file) {
          const dot = e.name.lastIndexOf('.');
          if (dot >= 0 && exts.includes(e.name.slice(dot).toLowerCase())) files.push(e.name);
        }
      }
      files.sort(byteOrder);
      perDir.push([rel, files]);
      for (const d of subdirs) visit(`${rel}/${d}`);
    };
    visit(name);
    perDir.sort((a, b) => byteOrder(a[0], b[0]));
    const files: string[] = [];
    for (const [rel, names] of perDir) {
      const sub = rel.slice(name.length + 1);
      for (const f of names) files.push(sub ? `${sub}/${f}` : f);
    }
    return { name, files };
  });
  return { classes, dirs, racy };
}

function cachePath(cacheDir: string, root: string, exts: readonly string[]): string {
  const key = createHash('sha256')
    .update(`${root}\0${exts.join(',')}`)
    .digest('hex')
    .slice(0, 40);
  return join(cacheDir, 'image-folder', `${key}.json`);
}

function loadCache(file: string, root: string, exts: readonly string[]): CacheFile | null {
  let c: CacheFile;
  try {
    c = JSON.parse(readFileSync(file, 'utf8')) as CacheFile;
  } catch {
    return null;
  }
  if (
    c.format !== CACHE_FORMAT ||
    c.version !== CACHE_VERSION ||
    c.root !== root ||
    c.extensions.join(',') !== exts.join(',') ||
    !Array.isArray(c.dirs) ||
    !Array.isArray(c.classes)
  ) {
    return null;
  }
  for (const [rel, mtime] of c.dirs) {
    try {
      const st = statSync(rel ? join(root, rel) : root, { bigint: true });
      if (!st.isDirectory() || st.mtimeNs.toString() !== mtime) return null;
    } catch {
      return null;
    }
  }
  return c;
}

function saveCache(file: string, c: CacheFile): void {
  try {
    mkdirSync(join(file, '..'), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(c));
    renameSync(tmp, file);
  } catch {
    // no cache this time
  }
}

/**
 * Lists an image folder: sub-folders are the classes (byte order), images are found
 * recursively. Errors name the path: a missing folder, a class folder without images, or
 * fewer than two classes.
 */
export function indexImageFolder(root: string, opts: IndexOptions = {}): FolderIndex {
  const exts = (opts.extensions ?? IMAGE_EXTENSIONS).map((e) => (e.startsWith('.') ? e : `.${e}`).toLowerCase());
  let real: string;
  try {
    real = realpathSync(root);
  } catch {
    throw new Error(`ImageFolder: folder ${root} does not exist`);
  }
  if (!isDir(real)) throw new Error(`ImageFolder: ${root} is not a folder`);
  const cacheDir = opts.cacheDir === undefined ? defaultCacheDir() : opts.cacheDir;
  const file = cacheDir === false ? null : cachePath(cacheDir, real, exts);

  let classes: { name: string; files: string[] }[] | null = null;
  let fromCache = false;
  if (file) {
    const c = loadCache(file, real, exts);
    if (c) {
      classes = c.classes;
      fromCache = true;
    }
  }
  if (!classes) {
    const startNs = BigInt(Date.now()) * 1_000_000n; // wall clock, as file timestamps
    const w = walk(real, exts, startNs);
    classes = w.classes;
    if (classes.length < 2) {
      throw new Error(
        `ImageFolder: ${root} has ${classes.length} class folder${classes.length === 1 ? '' : 's'}; ` +
          'need at least two (one sub-folder per class)',
      );
    }
    for (const c of classes) {
      if (c.files.length === 0) {
        throw new Error(
          `ImageFolder: class folder ${join(root, c.name)} holds no images (${exts.join(', ')}, searched recursively)`,
        );
      }
    }
    if (file && !w.racy) {
      saveCache(file, {
        format: CACHE_FORMAT,
        version: CACHE_VERSION,
        root: real,
        extensions: exts,
        dirs: w.dirs,
        classes,
      });
    }
  }
  let total = 0;
  for (const c of classes) total += c.files.length;
  const files = new Array<string>(total);
  const labels = new Int32Array(total);
  let k = 0;
  classes.forEach((c, label) => {
    for (const f of c.files) {
      files[k] = `${c.name}/${f}`;
      labels[k++] = label;
    }
  });
  return { root: real, classes: classes.map((c) => c.name), files, labels, fromCache };
}
