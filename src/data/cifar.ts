// CIFAR-10 and CIFAR-100 in their official binary format ("binary version suitable for C
// programs"): fixed-size records of label byte(s) then 3072 pixel bytes, the red, green and
// blue 32×32 planes one after another.
//   CIFAR-10:  cifar-10-batches-bin/data_batch_{1..5}.bin, test_batch.bin, batches.meta.txt;
//              record = <label> <3072 pixels>
//   CIFAR-100: cifar-100-binary/train.bin, test.bin, {coarse,fine}_label_names.txt;
//              record = <coarse label> <fine label> <3072 pixels>
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { checkIndex, planarToRgb, type Dataset, type Sample } from './dataset.js';
import { downloadFile } from './download.js';
import { extractTar } from './tar.js';

export type CifarSplit = 'train' | 'test';

const PIXELS = 3 * 32 * 32;

/** The published archives (https://www.cs.toronto.edu/~kriz/cifar.html) and their md5 sums. */
export const CIFAR_ARCHIVES = {
  cifar10: {
    url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz',
    md5: 'c32a1d4ab5d03f1284b67883e8d87530',
    folder: 'cifar-10-batches-bin',
  },
  cifar100: {
    url: 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz',
    md5: '03b5dce01913d631647c71ecec9e9cb8',
    folder: 'cifar-100-binary',
  },
} as const;

export const CIFAR10_CLASSES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

export function cifarFiles(which: 'cifar10' | 'cifar100', split: CifarSplit): string[] {
  if (which === 'cifar100') return [split === 'train' ? 'train.bin' : 'test.bin'];
  return split === 'train' ? [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`) : ['test_batch.bin'];
}

/** `root` itself when it holds the split's files, else its sub-folder of the official name. */
function findFolder(root: string, which: 'cifar10' | 'cifar100', split: CifarSplit): string {
  const files = cifarFiles(which, split);
  for (const dir of [root, join(root, CIFAR_ARCHIVES[which].folder)]) {
    if (files.every((f) => existsSync(join(dir, f)))) return dir;
  }
  throw new Error(
    `${which}: ${files.join(', ')} not found in ${root} or ${join(root, CIFAR_ARCHIVES[which].folder)} ` +
      `(download with downloadCifar('${which}', root))`,
  );
}

function readRecords(dir: string, files: readonly string[], recordSize: number): Buffer {
  const parts = files.map((f) => {
    const path = join(dir, f);
    const size = statSync(path).size;
    if (size === 0 || size % recordSize !== 0) {
      throw new Error(`${path}: ${size} bytes is not a whole number of ${recordSize}-byte records`);
    }
    return readFileSync(path);
  });
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

function namesFile(path: string, count: number, fallback: (i: number) => string): string[] {
  if (existsSync(path)) {
    const names = readFileSync(path, 'utf8')
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    if (names.length !== count) throw new Error(`${path}: ${names.length} names, expected ${count}`);
    return names;
  }
  return Array.from({ length: count }, (_, i) => fallback(i));
}

abstract class CifarBinary implements Dataset {
  readonly length: number;
  abstract readonly classes: readonly string[];
  protected readonly records: Buffer;

  protected constructor(
    readonly dir: string,
    readonly split: CifarSplit,
    private readonly name: string,
    private readonly labelBytes: number,
  ) {
    this.records = readRecords(dir, cifarFiles(labelBytes === 1 ? 'cifar10' : 'cifar100', split), labelBytes + PIXELS);
    this.length = this.records.length / (labelBytes + PIXELS);
  }

  abstract label(i: number): number;

  source(i: number): string {
    return `${this.name}/${this.split}#${i}`;
  }

  /** The image as stored: planar RGB, 3 × 32 × 32. */
  planar(i: number): Uint8Array {
    checkIndex(this, i, this.name);
    const at = i * (this.labelBytes + PIXELS) + this.labelBytes;
    return this.records.subarray(at, at + PIXELS);
  }

  get(i: number): Promise<Sample> {
    try {
      return Promise.resolve({ image: planarToRgb(this.planar(i), 32, 32), label: this.label(i) });
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }
}

export class Cifar10 extends CifarBinary {
  readonly classes: readonly string[];

  /** `root`: the extracted cifar-10-batches-bin folder or the folder that holds it. */
  constructor(root: string, split: CifarSplit = 'train') {
    const dir = findFolder(root, 'cifar10', split);
    super(dir, split, 'cifar10', 1);
    this.classes = namesFile(join(dir, 'batches.meta.txt'), 10, (i) => CIFAR10_CLASSES[i]!);
    for (let i = 0; i < this.length; i++) {
      const l = this.records[i * (1 + PIXELS)]!;
      if (l >= 10) throw new Error(`${dir}: ${split} record ${i} has label ${l} (CIFAR-10 has 10 classes)`);
    }
  }

  label(i: number): number {
    checkIndex(this, i, 'cifar10');
    return this.records[i * (1 + PIXELS)]!;
  }
}

export class Cifar100 extends CifarBinary {
  /** names of the labels this data set reports (fine or coarse) */
  readonly classes: readonly string[];
  readonly fineClasses: readonly string[];
  readonly coarseClasses: readonly string[];

  /**
   * `root`: the extracted cifar-100-binary folder or the folder that holds it. `labels`
   * chooses which label `label(i)` and `get(i)` report (default the 100 fine classes).
   */
  constructor(
    root: string,
    split: CifarSplit = 'train',
    readonly labels: 'fine' | 'coarse' = 'fine',
  ) {
    const dir = findFolder(root, 'cifar100', split);
    super(dir, split, 'cifar100', 2);
    this.fineClasses = namesFile(join(dir, 'fine_label_names.txt'), 100, (i) => `fine_${i}`);
    this.coarseClasses = namesFile(join(dir, 'coarse_label_names.txt'), 20, (i) => `coarse_${i}`);
    this.classes = labels === 'fine' ? this.fineClasses : this.coarseClasses;
    for (let i = 0; i < this.length; i++) {
      const c = this.records[i * (2 + PIXELS)]!;
      const f = this.records[i * (2 + PIXELS) + 1]!;
      if (c >= 20 || f >= 100)
        throw new Error(`${dir}: ${split} record ${i} has labels ${c}/${f} (20 coarse, 100 fine)`);
    }
  }

  coarseLabel(i: number): number {
    checkIndex(this, i, 'cifar100');
    return this.records[i * (2 + PIXELS)]!;
  }

  fineLabel(i: number): number {
    checkIndex(this, i, 'cifar100');
    return this.records[i * (2 + PIXELS) + 1]!;
  }

  label(i: number): number {
    return this.labels === 'fine' ? this.fineLabel(i) : this.coarseLabel(i);
  }
}

/**
 * Downloads the official binary archive into `root`, verifies its published md5 (or the
 * given checksum, with `url` for a mirror) and extracts it; returns the folder that holds the
 * files. Nothing is fetched when that folder already has them.
 */
export async function downloadCifar(
  which: 'cifar10' | 'cifar100',
  root: string,
  opts: { url?: string; md5?: string; sha256?: string } = {},
): Promise<string> {
  const a = CIFAR_ARCHIVES[which];
  const dir = join(root, a.folder);
  const files = [...cifarFiles(which, 'train'), ...cifarFiles(which, 'test')];
  if (files.every((f) => existsSync(join(dir, f)))) return dir;
  const archive = join(root, a.url.slice(a.url.lastIndexOf('/') + 1));
  const sum = opts.sha256 ? { sha256: opts.sha256 } : { md5: opts.md5 ?? a.md5 };
  await downloadFile(opts.url ?? a.url, archive, sum);
  await extractTar(archive, root);
  const missing = files.filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0)
    throw new Error(`${archive}: archive lacks ${missing.map((f) => `${a.folder}/${f}`).join(', ')}`);
  return dir;
}
