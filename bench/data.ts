// `npm run bench -- data`: images/s of loading + decoding + batching, mmoco's DataLoader
// against torchvision's ImageFolder + DataLoader, measured in the same run.
//
// Cases:
//   cifar10-train-32         CIFAR-10 train, 32 px JPEGs batched as they are
//   imagenette-train-crop64  Imagenette train, 72 px JPEGs center-cropped to 64
//   cifar10-train-32-cached  as the first, but mmoco's ImageFolder keeps decoded images in
//                            memory (decodedCache) and is timed on a later epoch; PyTorch
//                            decodes every epoch (it has no such cache): not a like-for-like
//                            decode comparison, it shows what the cache buys
//   generated-256-crop224    4,096 generated 256 px JPEGs center-cropped to 224 (ImageNet-sized
//                            decoding, where the cost per image is not dominated by overheads)
//   generated-mixed-resize224
//                            2,048 generated JPEGs of mixed sizes (width and height each drawn
//                            in 200..500 px), every image resized (shorter side 224, bilinear,
//                            antialiased) and centre-cropped to 224 before batching, as training
//                            with loadSize 224 does: mmoco's perSample resizeCenterCrop (native,
//                            in libuv's pool) against torchvision's Resize(224) + CenterCrop(224)
//                            in the DataLoader's workers
//   cifar10-train-32-pack    decode only, mmoco both sides: the same images from a pack
//                            (`mmoco pack` of the same folder, built first and timed) against
//                            the folder; "ours" is the pack, "folder" the ImageFolder
//   {cifar10,imagenette}-{strong,medium,light}-{32,64}
//                            the paper's pre-training strategies (§4.1): two normalised float
//                            views per image, 32 px on CIFAR-10, 64 px from Imagenette's 72 px.
//                            mmoco: the loader's uint8 batches through the strategy's batched
//                            libtorch ops (src/data/transforms/pretrain.ts) on the main thread;
//                            PyTorch: MoCo v3's per-image PIL/torchvision pipeline (and the
//                            medium/light variants, bench/data_torch.py) in the DataLoader's
//                            workers, which is how its users run it
// The CIFAR-10 and Imagenette cases read ../shared/datasets when present, else generated folders of the same
// image sizes. Both sides: shuffled, batch 256, drop_last, the same number of workers (mmoco:
// decode worker processes; PyTorch: DataLoader worker processes), uint8 NCHW batches with int64
// labels, no augmentation; mmoco prefetches 4 batches, as PyTorch's 2 workers × prefetch 2.
// Timing starts at the first batch (start-up excluded on both sides) and covers the next
// --images images. The page cache is warmed first; each round measures mmoco then PyTorch
// (order alternating), after waiting for the machine to be quiet; results are medians.
// otherLoadPct: CPU used by other processes while mmoco was timed, % of one core (median).
//
// Options: --images N (default 10240), --rounds R (3), --workers W (2), --batch B (256),
//          --case NAME (only that case), --generated N (images of the generated stand-ins;
//          default each case's own count).
// Output: one JSON line per case:
// {"bench":"data","case":...,"ours":...,"torch":...,"unit":"images/s","better":"higher",
//  "stat":"median","batchSize","workers","images","rounds","source":"shared"|"generated",
//  "oursRounds":[...],"torchRounds":[...],"otherLoadPct":...}
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  benchSourceDir,
  findTorchPython,
  foreignCpuPct,
  machineBusyMs,
  median,
  now,
  ownCpuMs,
  runJsonLines,
  sig,
  waitForQuiet,
} from './common.js';
import { closeDecodePool, decodeWorkerPids } from '../src/data/decode-pool.js';
import type { Dataset, Sample } from '../src/data/dataset.js';
import { resizeCenterCrop } from '../src/data/fit.js';
import { ImageFolder } from '../src/data/image-folder.js';
import { openPack, packImageFolder } from '../src/data/pack.js';
import { DataLoader } from '../src/data/loader.js';
import { Rng } from '../src/data/rng.js';
import { SyntheticImages, writeImageFolder } from '../src/data/synthetic.js';
import { ResizeCenterCrop, pretrainAugmentation, type PretrainStrategy } from '../src/data/transforms/index.js';

interface Case {
  id: string;
  /** shared data set to read, if any */
  set?: 'cifar10' | 'imagenette';
  /** generated stand-in: image side and count */
  size: number;
  generated: number;
  crop: number;
  /** generated stand-in of mixed sizes: width and height each drawn in [min, max] per image */
  sides?: readonly [number, number];
  /** every image resized (shorter side to this) and centre-cropped to `crop` before batching */
  resize?: number;
  /** mmoco timed on a later epoch, served from ImageFolder's decoded cache */
  cached?: boolean;
  /** mmoco from a pack of the folder against mmoco from the folder (no PyTorch side) */
  pack?: boolean;
  /** two views per image by this pre-training strategy, of side viewSize */
  strategy?: PretrainStrategy;
  viewSize?: number;
}

const STRATEGIES: PretrainStrategy[] = ['strong', 'medium', 'light'];

const CASES: Case[] = [
  { id: 'cifar10-train-32', set: 'cifar10', size: 32, generated: 6000, crop: 0 },
  { id: 'imagenette-train-crop64', set: 'imagenette', size: 72, generated: 3000, crop: 64 },
  { id: 'cifar10-train-32-cached', set: 'cifar10', size: 32, generated: 6000, crop: 0, cached: true },
  { id: 'generated-256-crop224', size: 256, generated: 4096, crop: 224 },
  { id: 'generated-mixed-resize224', size: 0, sides: [200, 500], generated: 2048, crop: 224, resize: 224 },
  { id: 'cifar10-train-32-pack', set: 'cifar10', size: 32, generated: 6000, crop: 0, pack: true },
  // the strategies: 32 px views on CIFAR-10, 64 px from Imagenette's 72 px
  ...(['cifar10', 'imagenette'] as const).flatMap((set) =>
    STRATEGIES.map((strategy): Case => ({
      id: `${set}-${strategy}-${set === 'cifar10' ? 32 : 64}`,
      set,
      size: set === 'cifar10' ? 32 : 72,
      generated: set === 'cifar10' ? 6000 : 3000,
      crop: 0,
      strategy,
      viewSize: set === 'cifar10' ? 32 : 64,
    })),
  ),
];

/** Synthetic images whose width and height are each drawn in [min, max] from (seed, index). */
class MixedSizeImages implements Dataset {
  private readonly base: SyntheticImages;
  readonly length: number;
  readonly classes: readonly string[];

  constructor(
    length: number,
    private readonly sides: readonly [number, number],
    private readonly seed: number,
  ) {
    this.base = new SyntheticImages({ length, seed });
    this.length = length;
    this.classes = this.base.classes;
  }

  label(i: number): number {
    return this.base.label(i);
  }

  source(i: number): string {
    return `mixed#${i}`;
  }

  get(i: number): Promise<Sample> {
    const rng = new Rng(this.seed, i, 0x5e);
    const [lo, hi] = this.sides;
    const size = [lo + rng.int(hi - lo + 1), lo + rng.int(hi - lo + 1)] as const;
    return new SyntheticImages({ length: this.length, size, seed: this.seed }).get(i);
  }
}

/** CPU time (user + system) of the given processes so far, ms (Linux /proc; 0 elsewhere). */
function processesCpuMs(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // fields after the command name: state is field 3; utime, stime are fields 14, 15
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10; // USER_HZ = 100
}

/** <repo>/../shared/datasets (dist/bench/data.js -> repo root). */
function sharedDir(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'shared', 'datasets');
}

function flag(args: string[], name: string, def: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`bench data: --${name} needs a positive integer`);
  return v;
}

async function oursImagesPerSec(
  ds: Dataset,
  c: Case,
  o: { batch: number; workers: number; images: number; seed: number; epoch: number },
): Promise<{ rate: number; foreign: number }> {
  const loader = new DataLoader(ds, {
    batchSize: o.batch,
    workers: o.workers,
    prefetch: 4,
    dropLast: true,
    seed: o.seed,
    // the mixed-size case: each image resized and cropped before batching
    perSample: c.resize ? resizeCenterCrop(c.resize, c.crop) : undefined,
  });
  // the crop cases: each batch centre-cropped by the pipeline's one ResizeCenterCrop
  const crop = c.crop && !c.resize ? new ResizeCenterCrop(null, c.crop) : undefined;
  let n = 0;
  let t0 = 0;
  let b0 = 0;
  let c0 = 0;
  let first = true;
  let w0 = 0;
  const aug = c.strategy ? pretrainAugmentation(c.strategy, { size: c.viewSize }) : undefined;
  for await (const b of loader.epoch(o.epoch)) {
    const images = crop ? crop.forward(b.images) : b.images;
    if (aug) {
      const { view1, view2 } = aug.forward(images);
      view1.dispose();
      view2.dispose();
    }
    if (first) {
      first = false;
      t0 = now();
      b0 = machineBusyMs();
      c0 = ownCpuMs();
      w0 = processesCpuMs(decodeWorkerPids());
    } else n += b.indices.length;
    if (images !== b.images) images.dispose();
    b.images.dispose();
    b.labels.dispose();
    if (n >= o.images) break;
  }
  const wall = now() - t0;
  if (n < o.images) throw new Error(`bench data: ${c.id}: an epoch has only ${n} images after the first batch`);
  const own = ownCpuMs() - c0 + processesCpuMs(decodeWorkerPids()) - w0;
  return { rate: (n / wall) * 1000, foreign: foreignCpuPct(wall, machineBusyMs() - b0, own) };
}

function torchImagesPerSec(root: string, c: Case, o: { batch: number; workers: number; images: number }): number {
  const args = [
    '-B',
    join(benchSourceDir(), 'data_torch.py'),
    '--root',
    root,
    '--batch',
    String(o.batch),
    '--workers',
    String(o.workers),
    '--images',
    String(o.images),
  ];
  if (c.crop) args.push('--crop', String(c.crop));
  if (c.resize) args.push('--resize', String(c.resize));
  if (c.strategy) args.push('--strategy', c.strategy, '--size', String(c.viewSize));
  const [row] = runJsonLines(findTorchPython(), args, process.env, 600_000);
  if (!row || typeof row.imagesPerSec !== 'number')
    throw new Error(`bench data: ${c.id}: no result from data_torch.py`);
  return row.imagesPerSec;
}

/** The pack case: `mmoco pack` of the folder (timed), then pack and folder read alternately. */
async function packCase(
  c: Case,
  folder: ImageFolder,
  root: string,
  source: 'shared' | 'generated',
  tmp: string,
  o: { batch: number; workers: number; images: number; rounds: number },
): Promise<void> {
  const file = join(tmp, `${c.id}.mmpack`);
  const stats = packImageFolder(root, file);
  const pack = openPack(file).split('train');
  const ours: number[] = [];
  const folderRates: number[] = [];
  const foreign: number[] = [];
  for (let r = 0; r < o.rounds; r++) {
    const sides = r % 2 === 0 ? ['pack', 'folder'] : ['folder', 'pack'];
    for (const side of sides) {
      waitForQuiet(30, 30_000, 500);
      const m = await oursImagesPerSec(side === 'pack' ? pack : folder, c, { ...o, seed: r, epoch: 0 });
      if (side === 'pack') {
        ours.push(m.rate);
        foreign.push(m.foreign);
      } else folderRates.push(m.rate);
    }
    console.error(
      `[bench data] ${c.id} round ${r + 1}/${o.rounds}: pack ${sig(ours.at(-1)!)} folder ${sig(folderRates.at(-1)!)} images/s`,
    );
  }
  console.log(
    JSON.stringify({
      bench: 'data',
      case: c.id,
      ours: sig(median(ours)),
      folder: sig(median(folderRates)),
      unit: 'images/s',
      better: 'higher',
      stat: 'median',
      batchSize: o.batch,
      workers: o.workers,
      images: o.images,
      rounds: o.rounds,
      source,
      note: 'ours from the pack, folder: the same images from the ImageFolder (both mmoco)',
      packBytes: stats.bytes,
      fileBytes: stats.sourceBytes,
      packSeconds: sig(stats.seconds),
      oursRounds: ours.map((x) => sig(x)),
      folderRounds: folderRates.map((x) => sig(x)),
      otherLoadPct: Math.round(median(foreign)),
    }),
  );
}

export async function runData(args: string[]): Promise<void> {
  const o = {
    images: flag(args, 'images', 10240),
    rounds: flag(args, 'rounds', 3),
    workers: flag(args, 'workers', 2),
    batch: flag(args, 'batch', 256),
    generated: flag(args, 'generated', 0),
  };
  const only = args.includes('--case') ? args[args.indexOf('--case') + 1] : undefined;
  const cases = CASES.filter((c) => only === undefined || c.id === only);
  if (cases.length === 0)
    throw new Error(`bench data: unknown case ${only}; known: ${CASES.map((c) => c.id).join(', ')}`);
  if (cases.some((c) => !c.pack)) findTorchPython(); // fail early when the reference is missing
  const tmp = mkdtempSync(join(tmpdir(), 'mmoco-bench-data-'));
  try {
    for (const c of cases) {
      const shared = c.set ? join(sharedDir(), c.set, 'train') : undefined;
      let root = shared ?? '';
      let source: 'shared' | 'generated' = 'shared';
      if (!shared || !existsSync(shared)) {
        source = 'generated';
        root = join(tmp, c.sides ? `gen-${c.id}` : `gen-${c.size}`);
        if (!existsSync(root)) {
          const count = o.generated || c.generated;
          const what = c.sides ? `${c.sides[0]}..${c.sides[1]}px` : `${c.size}px`;
          console.error(`[bench data] ${shared ?? c.id}: generating ${count} ${what} JPEGs`);
          const gen = c.sides
            ? new MixedSizeImages(count, c.sides, 1)
            : new SyntheticImages({ length: count, size: c.size, seed: 1 });
          await writeImageFolder(gen, root, { quality: 90 });
        }
      }
      const ds = new ImageFolder(root, { cacheDir: join(tmp, 'index'), decodedCache: c.cached ? 2 ** 31 : 0 });
      const images = Math.min(o.images, Math.floor(ds.length / o.batch - 1) * o.batch);
      // warm the page cache so both sides read from memory
      for (let i = 0; i < ds.length; i++) readFileSync(ds.path(i));
      if (c.cached) {
        // epoch 0, untimed, fills the cache
        const fill = new DataLoader(ds, { batchSize: o.batch, workers: o.workers, prefetch: 4 });
        for await (const b of fill.epoch(0)) {
          b.images.dispose();
          b.labels.dispose();
        }
        console.error(`[bench data] ${c.id}: ${ds.decodedCacheUsage.images} images decoded into memory`);
      }
      if (c.pack) {
        await packCase(c, ds, root, source, tmp, { ...o, images });
        continue;
      }
      const ours: number[] = [];
      const torch: number[] = [];
      const foreign: number[] = [];
      for (let r = 0; r < o.rounds; r++) {
        const sides = r % 2 === 0 ? ['ours', 'torch'] : ['torch', 'ours'];
        for (const side of sides) {
          waitForQuiet(30, 30_000, 500);
          if (side === 'ours') {
            const m = await oursImagesPerSec(ds, c, { ...o, images, seed: r, epoch: c.cached ? r + 1 : 0 });
            ours.push(m.rate);
            foreign.push(m.foreign);
          } else torch.push(torchImagesPerSec(root, c, { ...o, images }));
        }
        console.error(
          `[bench data] ${c.id} round ${r + 1}/${o.rounds}: ours ${sig(ours.at(-1)!)} torch ${sig(torch.at(-1)!)} images/s`,
        );
      }
      console.log(
        JSON.stringify({
          bench: 'data',
          case: c.id,
          ours: sig(median(ours)),
          torch: sig(median(torch)),
          unit: 'images/s',
          better: 'higher',
          stat: 'median',
          batchSize: o.batch,
          workers: o.workers,
          images,
          rounds: o.rounds,
          source,
          ...(c.strategy ? { strategy: c.strategy, viewSize: c.viewSize } : {}),
          ...(c.cached ? { note: 'ours from the decoded cache (a later epoch); torch decodes every epoch' } : {}),
          oursRounds: ours.map((x) => sig(x)),
          torchRounds: torch.map((x) => sig(x)),
          otherLoadPct: Math.round(median(foreign)),
        }),
      );
    }
  } finally {
    await closeDecodePool();
    rmSync(tmp, { recursive: true, force: true });
  }
}
