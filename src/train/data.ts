// From the `data` / `valData` config strings to data sets and loaders: an ImageFolder tree
// (train/ + val/ or test/ sub-folders, or classes directly), a packed file (`.mmpack`, its
// train and val/test splits), a CIFAR-10 binary folder,
// Debian's Fashion-MNIST ('fashion-mnist') or the procedural set ('synthetic').
import { existsSync, readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  Cifar10,
  DataLoader,
  ImageFolder,
  SyntheticImages,
  mnist,
  openPack,
  resizeCenterCrop,
  type Pack,
  subsetFraction,
  type Dataset,
} from '../data/index.js';
import { ConfigError } from './schema.js';

export interface DataSplits {
  /** what `data` named, for logs */
  name: string;
  train: Dataset;
  /** null when the source has no validation split and none was given */
  val: Dataset | null;
}

const isDir = (p: string): boolean => existsSync(p) && statSync(p).isDirectory();

function isCifarBinary(dir: string): boolean {
  const has = (d: string): boolean => existsSync(join(d, 'data_batch_1.bin'));
  return has(dir) || has(join(dir, 'cifar-10-batches-bin'));
}

/** One folder as a data set: CIFAR binary or ImageFolder. */
function folderDataset(dir: string, split: 'train' | 'test'): Dataset {
  if (isCifarBinary(dir)) return new Cifar10(dir, split);
  return new ImageFolder(dir);
}

/** The pack `file`, opened (ConfigError when absent). */
function openPackFile(file: string): Pack {
  if (!existsSync(file)) throw new ConfigError(`data pack not found: ${file}`);
  return openPack(file);
}

/** A pack's 'val' split, else its 'test' split, else null. */
function packVal(pack: Pack): Dataset | null {
  const v = ['val', 'test'].find((s) => pack.has(s));
  return v ? pack.split(v) : null;
}

/** Synthetic: 2,000 training and 500 validation images of 10 classes, 32 px. */
const SYNTHETIC = { train: 2000, val: 500, size: 32 };

/**
 * Opens `data` (and `valData`): see the `data` key of the configs. Errors name the path and
 * what was expected.
 */
export function openData(data: string | null, valData: string | null = null): DataSplits {
  if (!data) throw new ConfigError("no data: set 'data' (--data <folder>, or 'fashion-mnist' / 'synthetic')");
  let train: Dataset;
  let val: Dataset | null = null;
  if (data === 'fashion-mnist') {
    try {
      train = mnist('train');
      val = mnist('test');
    } catch (e) {
      throw new ConfigError(
        `data 'fashion-mnist': the Debian package dataset-fashion-mnist is not installed or unreadable (${(e as Error).message})`,
      );
    }
  } else if (data === 'synthetic') {
    train = new SyntheticImages({ length: SYNTHETIC.train, size: SYNTHETIC.size, seed: 1 });
    val = new SyntheticImages({ length: SYNTHETIC.val, size: SYNTHETIC.size, seed: 2 });
  } else if (data.endsWith('.mmpack')) {
    const pack = openPackFile(data);
    if (!pack.has('train'))
      throw new ConfigError(`${data}: the pack has no 'train' split (it has ${pack.splits.join(', ')})`);
    train = pack.split('train');
    val = packVal(pack);
  } else {
    if (!existsSync(data)) throw new ConfigError(`data folder not found: ${data}`);
    if (!isDir(data)) throw new ConfigError(`data must be a folder: ${data}`);
    if (isCifarBinary(data)) {
      train = new Cifar10(data, 'train');
      val = new Cifar10(data, 'test');
    } else if (isDir(join(data, 'train'))) {
      train = folderDataset(join(data, 'train'), 'train');
      for (const v of ['val', 'test']) {
        if (isDir(join(data, v))) {
          val = folderDataset(join(data, v), 'test');
          break;
        }
      }
    } else {
      train = new ImageFolder(data);
    }
  }
  if (valData?.endsWith('.mmpack')) {
    val = packVal(openPackFile(valData));
    if (!val) throw new ConfigError(`valData ${valData}: the pack has no val or test split`);
  } else if (valData) {
    if (!isDir(valData)) throw new ConfigError(`valData folder not found: ${valData}`);
    val = folderDataset(valData, 'test');
  }
  if (val && val.classes.join('\n') !== train.classes.join('\n')) {
    throw new ConfigError(
      `${valData ?? data}: the validation classes (${val.classes.length}) differ from the training classes (${train.classes.length})`,
    );
  }
  return { name: data, train, val };
}

/** A seeded subset of about `n` images (the same fraction of every class), or `ds` itself. */
export function sampled(ds: Dataset, n: number | null, seed: number): Dataset {
  if (n === null || n >= ds.length) return ds;
  return subsetFraction(ds, n / ds.length, seed);
}

/** Lists the sub-folders of `dir` (for messages). */
export function subfolders(dir: string): string[] {
  return readdirSync(dir).filter((f) => isDir(join(dir, f)));
}

export interface LoaderConfig {
  batchSize: number;
  seed: number;
  /** decode requests in flight; null: one per core */
  workers: number | null;
  loadSize: number | null;
}

/**
 * A loader over `ds`: uint8 NCHW batches, every image `loadSize` square when set (shorter side
 * resized, centre crop), else as stored (all images of a batch must then have one size).
 */
export function makeLoader(
  ds: Dataset,
  c: LoaderConfig,
  o: { shuffle: boolean; dropLast: boolean; batchSize?: number; rank?: number; worldSize?: number },
): DataLoader {
  return new DataLoader(ds, {
    rank: o.rank ?? 0,
    worldSize: o.worldSize ?? 1,
    batchSize: Math.min(o.batchSize ?? c.batchSize, o.dropLast ? ds.length : Infinity),
    shuffle: o.shuffle,
    seed: c.seed,
    dropLast: o.dropLast,
    workers: c.workers ?? availableParallelism(),
    perSample: c.loadSize ? resizeCenterCrop(c.loadSize, c.loadSize) : undefined,
  });
}

/** The training loader of one rank: its share of the global batch, shuffled, full batches only. */
export function trainLoader(ds: Dataset, c: LoaderConfig, ranks: { rank: number; world: number }): DataLoader {
  return makeLoader(ds, c, {
    shuffle: true,
    dropLast: true,
    batchSize: c.batchSize / ranks.world,
    rank: ranks.rank,
    worldSize: ranks.world,
  });
}
