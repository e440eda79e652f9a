// DataLoader: batches of a Dataset as uint8 NCHW tensors (+ int64 labels), in a seeded order
// per epoch, sharded over ranks, decoded ahead of the training step.
//
// Order: epoch e's permutation comes from Rng(seed, e), so it is the same on every run and
// every rank; rank r takes elements r, r + worldSize, ... of it (torch's DistributedSampler),
// after padding it with its own first elements to a multiple of worldSize ('pad', the
// default) or cutting it down to one ('drop'), so every rank has the same number of batches.
//
// Prefetch: up to `prefetch` batches are in flight while the caller works on the current
// one, with at most `workers` decode requests at once for the whole loader (ImageFolder: JPEGs
// in native threads, other files in sharp worker processes). The main thread only sends the
// requests and applies `perSample`; the pixels are copied once, into the NCHW tensor, when the
// caller takes the batch. The tensors are made outside any
// scope and marked `keep`: the caller owns them and disposes them (or leaves them to the garbage
// collector); the loader never releases them. A caller that stops early leaves nothing behind:
// batches not yet taken hold plain buffers, no tensors.
//
// Unreadable samples (SampleError: corrupt, truncated or vanished files) are skipped: each is
// reported once per epoch through `onSkip` (default: a warning on stderr) and counted
// (`skips(epoch)`, `skippedTotal`), and by default replaced by another sample of the rank's
// part of the epoch (drawn by seed), so batches keep their size.
import { keep, tensor, type Tensor } from '../torch/index.js';
import { SampleError, createLimiter, type Dataset, type Limiter, type RgbImage, type Sample } from './dataset.js';
import { imagesToBatch } from './native/batch.js';
import { Rng } from './rng.js';

export interface SampleContext {
  /** the sample's index in the data set */
  index: number;
  epoch: number;
  /** a generator for this sample in this epoch (same numbers on every run) */
  rng: Rng;
}

export interface SkipEvent {
  epoch: number;
  index: number;
  path: string;
  reason: string;
}

export interface LoaderOptions {
  batchSize: number;
  /** shuffle every epoch (default true); false: data set order */
  shuffle?: boolean;
  /** default 0 */
  seed?: number;
  /** drop the last batch when it is short (default false) */
  dropLast?: boolean;
  rank?: number;
  worldSize?: number;
  /** how ranks get equal parts: 'pad' repeats the first samples (default), 'drop' cuts the tail */
  evenShards?: 'pad' | 'drop';
  /** decode calls in flight at once (default 2) */
  workers?: number;
  /** batches prepared ahead of the one the caller holds (default 2) */
  prefetch?: number;
  /**
   * Brings each image to the batch's fixed size (e.g. resizeCenterCrop). Without it every
   * image of a batch must have the same size. May throw SampleError to skip the sample.
   */
  perSample?: (sample: Sample, ctx: SampleContext) => RgbImage | Promise<RgbImage>;
  /** what takes an unreadable sample's place: another sample ('replace', default) or nothing ('drop') */
  onCorrupt?: 'replace' | 'drop';
  /** called once per skipped file per epoch; default: console.warn */
  onSkip?: (e: SkipEvent) => void;
}

export interface Batch {
  /** uint8 [n, 3, height, width] */
  images: Tensor;
  /** int64 [n] */
  labels: Tensor;
  /** data set indices of the samples, in batch order */
  indices: number[];
  epoch: number;
  /** position of the batch in the epoch */
  batch: number;
}

interface Prepared {
  /** HWC, width × height each */
  images: Uint8Array[];
  labels: BigInt64Array;
  indices: number[];
  width: number;
  height: number;
  batch: number;
}

const MAX_REPLACEMENT_ROUNDS = 16;

export class DataLoader {
  readonly batchSize: number;
  readonly seed: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly workers: number;
  readonly prefetch: number;
  private readonly limit: Limiter;
  private readonly skipLog = new Map<number, { paths: Set<string>; events: SkipEvent[] }>();
  private total = 0;

  constructor(
    readonly dataset: Dataset,
    private readonly opts: LoaderOptions,
  ) {
    const int = (v: number, name: string, min: number): number => {
      if (!Number.isInteger(v) || v < min)
        throw new RangeError(`DataLoader: ${name} must be an integer ≥ ${min}, got ${v}`);
      return v;
    };
    this.batchSize = int(opts.batchSize, 'batchSize', 1);
    this.seed = int(opts.seed ?? 0, 'seed', 0);
    this.worldSize = int(opts.worldSize ?? 1, 'worldSize', 1);
    this.rank = int(opts.rank ?? 0, 'rank', 0);
    if (this.rank >= this.worldSize)
      throw new RangeError(`DataLoader: rank ${this.rank} ≥ worldSize ${this.worldSize}`);
    this.workers = int(opts.workers ?? 2, 'workers', 1);
    this.prefetch = int(opts.prefetch ?? 2, 'prefetch', 0);
    this.limit = createLimiter(this.workers);
    if (dataset.length === 0) throw new Error('DataLoader: the data set is empty');
  }

  /** Samples per epoch on this rank. */
  get samplesPerEpoch(): number {
    const n = this.dataset.length;
    const w = this.worldSize;
    return (this.opts.evenShards ?? 'pad') === 'pad' ? Math.ceil(n / w) : Math.floor(n / w);
  }

  /** Batches per epoch on this rank. */
  get length(): number {
    const n = this.samplesPerEpoch;
    return this.opts.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** This rank's sample order for `epoch` (data set indices). */
  indices(epoch: number): Uint32Array {
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new RangeError(`DataLoader: bad epoch ${epoch}`);
    const n = this.dataset.length;
    let perm: Uint32Array;
    if (this.opts.shuffle ?? true) perm = new Rng(this.seed, epoch).permutation(n);
    else {
      perm = new Uint32Array(n);
      for (let i = 0; i < n; i++) perm[i] = i;
    }
    const per = this.samplesPerEpoch;
    const out = new Uint32Array(per);
    for (let j = 0; j < per; j++) out[j] = perm[(this.rank + j * this.worldSize) % n]!;
    return out;
  }

  /** Files skipped in `epoch` (each once). */
  skips(epoch: number): readonly SkipEvent[] {
    return this.skipLog.get(epoch)?.events ?? [];
  }

  /** Files skipped so far, all epochs (a file skipped in two epochs counts twice). */
  get skippedTotal(): number {
    return this.total;
  }

  /**
   * The batches of `epoch`: `for await (const b of loader.epoch(e))`. `from` starts at that
   * batch (resuming inside an epoch): the batches before it are not read, and every later batch
   * is the one a whole epoch would give (each depends only on the seed, epoch and position).
   */
  epoch(epoch: number, o: { from?: number } = {}): AsyncGenerator<Batch, void, undefined> {
    const order = this.indices(epoch);
    const from = o.from ?? 0;
    if (!Number.isInteger(from) || from < 0 || from > this.length) {
      throw new RangeError(
        `DataLoader: from must be an integer in [0, ${this.length}] (batches per epoch), got ${from}`,
      );
    }
    this.skipLog.set(epoch, { paths: new Set(), events: [] });
    return this.run(epoch, order, from);
  }

  private async *run(epoch: number, order: Uint32Array, from: number): AsyncGenerator<Batch, void, undefined> {
    const nb = this.length;
    const queue: Promise<Prepared | null>[] = [];
    let next = from;
    const fill = (): void => {
      while (next < nb && queue.length < this.prefetch + 1) {
        const p = this.prepare(epoch, next++, order);
        p.catch(() => undefined); // awaited below; this keeps an abandoned one from being unhandled
        queue.push(p);
      }
    };
    for (let b = from; b < nb; b++) {
      fill();
      // batches b+1 .. b+prefetch stay in flight while the caller holds batch b
      const prepared = await queue.shift()!;
      if (prepared) yield this.toBatch(prepared, epoch);
    }
  }

  private toBatch(p: Prepared, epoch: number): Batch {
    const n = p.indices.length;
    const images = keep(imagesToBatch(p.images, p.width, p.height));
    const labels = keep(tensor(p.labels, { shape: [n] }));
    return { images, labels, indices: p.indices, epoch, batch: p.batch };
  }

  private report(epoch: number, err: SampleError): void {
    let log = this.skipLog.get(epoch);
    if (!log) this.skipLog.set(epoch, (log = { paths: new Set(), events: [] }));
    if (log.paths.has(err.path)) return;
    log.paths.add(err.path);
    const e: SkipEvent = { epoch, index: err.index, path: err.path, reason: err.reason };
    log.events.push(e);
    this.total++;
    if (this.opts.onSkip) this.opts.onSkip(e);
    else console.warn(`[data] epoch ${epoch}: skipped ${e.path}: ${e.reason}`);
  }

  private async load(indices: readonly number[]): Promise<(Sample | SampleError)[]> {
    const ds = this.dataset;
    if (ds.getMany) return ds.getMany(indices, this.limit);
    return Promise.all(
      indices.map((i) =>
        this.limit(() => ds.get(i)).catch((err: unknown) => {
          if (err instanceof SampleError) return err;
          throw err;
        }),
      ),
    );
  }

  private async fit(s: Sample, index: number, epoch: number): Promise<RgbImage | SampleError> {
    const fn = this.opts.perSample;
    if (!fn) return s.image;
    try {
      return await fn(s, { index, epoch, rng: new Rng(this.seed, epoch, index, 0x7e) });
    } catch (err) {
      if (err instanceof SampleError) return err;
      throw err;
    }
  }

  private async prepare(epoch: number, batch: number, order: Uint32Array): Promise<Prepared | null> {
    const start = batch * this.batchSize;
    const want = Array.from(order.subarray(start, Math.min(start + this.batchSize, order.length)));
    const slots: ({ index: number; image: RgbImage; label: number } | null)[] = new Array(want.length).fill(null);
    let pending = want.map((index, slot) => ({ index, slot }));
    const bad = new Set<number>();
    const rng = new Rng(this.seed, epoch, batch, 0x3c);
    for (let round = 0; pending.length > 0; round++) {
      const got = await this.load(pending.map((p) => p.index));
      const fitted = await Promise.all(
        got.map((s, k) => (s instanceof SampleError ? s : this.fit(s, pending[k]!.index, epoch))),
      );
      const retry: { index: number; slot: number }[] = [];
      fitted.forEach((r, k) => {
        const { index, slot } = pending[k]!;
        if (r instanceof SampleError) {
          this.report(epoch, r);
          bad.add(index);
          if ((this.opts.onCorrupt ?? 'replace') === 'replace' && round < MAX_REPLACEMENT_ROUNDS) {
            let j = order[rng.int(order.length)]!;
            for (let t = 0; t < 8 && bad.has(j); t++) j = order[rng.int(order.length)]!;
            retry.push({ index: j, slot });
          }
        } else slots[slot] = { index, image: r, label: (got[k] as Sample).label };
      });
      pending = retry;
    }
    const ok = slots.filter((s): s is NonNullable<typeof s> => s !== null);
    if (ok.length === 0) return null;
    const labels = BigInt64Array.from(ok, (s) => BigInt(s.label));
    const images = ok.map((s) => s.image.data);
    const { width, height } = ok[0]!.image;
    ok.forEach((s) => {
      const img = s.image;
      if (img.width !== width || img.height !== height || img.data.length !== width * height * 3) {
        throw new Error(
          `DataLoader: images of one batch must have one size: ${this.dataset.source(ok[0]!.index)} is ` +
            `${width}×${height}, ${this.dataset.source(s.index)} is ${img.width}×${img.height} ` +
            '(give a perSample function that crops or resizes, e.g. resizeCenterCrop)',
        );
      }
    });
    return { images, labels, indices: ok.map((s) => s.index), width, height, batch };
  }
}
