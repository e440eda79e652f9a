// A data set decoded once into one uint8 tensor on the training device (a GPU, typically), so
// that every later batch is an index_select there: no decoding, no host-to-device copy, nothing
// for the host to keep up with. For small sets — CIFAR-10's 50,000 training images take 154 MB,
// Imagenette's 9,469 at 64 px 116 MB — that is what keeps a GPU fed.
//
// CachedLoader serves the batches of a DataLoader from the cache in exactly the loader's order
// (its seeded per-epoch permutation and rank sharding), so a run gives the same batches with or
// without the cache. Samples that could not be decoded are reported once, when the cache is
// built, and left out of every epoch's order (the loader would put a replacement in their
// place, so batches may differ from the uncached run from the first bad sample on).
import { cat, dispose, empty, keep, tensor, tidy, type Tensor } from '../torch/index.js';
import { DataLoader, type Batch, type LoaderOptions, type SkipEvent } from './loader.js';
import type { Dataset } from './dataset.js';

export interface DeviceCacheOptions {
  /** where the images live: 'cuda', 'cuda:1', or 'cpu' */
  device: string;
  /** decode calls in flight while building (default 4) */
  workers?: number;
  /** images decoded per building step (default 1024) */
  chunk?: number;
  /** as the loader's: brings each image to one size */
  perSample?: LoaderOptions['perSample'];
  /** called once per sample that could not be decoded; default console.warn */
  onSkip?: (e: SkipEvent) => void;
}

/** Copies a host batch to `device`: through pinned memory without blocking on a GPU. */
export function toDevice(t: Tensor, device: string): Tensor {
  if (!device.startsWith('cuda') || !t.device.startsWith('cpu')) return t.to(device);
  const pinned = t.pinMemory();
  try {
    // the pinned block returns to libtorch's host cache only once the copy has finished
    return pinned.to(device, { nonBlocking: true });
  } finally {
    pinned.dispose();
  }
}

export class DeviceImageCache {
  private constructor(
    /** uint8 [rows, 3, H, W] on the device */
    readonly images: Tensor,
    /** int64 [rows] on the device */
    readonly labels: Tensor,
    /** data set index → row of `images`, -1 where the sample could not be decoded */
    readonly rowOf: Int32Array,
    readonly skipped: readonly SkipEvent[],
  ) {}

  /** Decodes all of `ds` (in data set order) onto `o.device`. */
  static async build(ds: Dataset, o: DeviceCacheOptions): Promise<DeviceImageCache> {
    const skipped: SkipEvent[] = [];
    const loader = new DataLoader(ds, {
      batchSize: Math.max(1, o.chunk ?? 1024),
      shuffle: false,
      workers: o.workers ?? 4,
      prefetch: 2,
      onCorrupt: 'drop',
      perSample: o.perSample,
      onSkip: (e) => {
        skipped.push(e);
        if (o.onSkip) o.onSkip(e);
        else console.warn(`[data] skipped ${e.path}: ${e.reason}`);
      },
    });
    const rowOf = new Int32Array(ds.length).fill(-1);
    let images: Tensor | null = null;
    let rows = 0;
    const labelParts: Tensor[] = [];
    try {
      for await (const b of loader.epoch(0)) {
        try {
          if (!images) {
            const [, c, h, w] = b.images.shape;
            images = keep(empty([ds.length, c!, h!, w!], { dtype: 'uint8', device: o.device }));
          } else if (b.images.shape.slice(1).join() !== images.shape.slice(1).join()) {
            throw new Error(
              `DeviceImageCache: images of one size are needed: ${ds.source(b.indices[0]!)} gives ` +
                `${b.images.shape.slice(1).join('×')}, earlier ones ${images.shape.slice(1).join('×')}`,
            );
          }
          const n = b.indices.length;
          const target = images;
          tidy(() => {
            target.narrow(0, rows, n).copy_(toDevice(b.images, o.device));
          });
          labelParts.push(keep(toDevice(b.labels, o.device)));
          b.indices.forEach((i, k) => (rowOf[i] = rows + k));
          rows += n;
        } finally {
          dispose([b.images, b.labels]);
        }
      }
      if (!images || rows === 0) throw new Error('DeviceImageCache: no image of the data set could be decoded');
      const all = images;
      const used = rows === ds.length ? all : keep(tidy(() => all.narrow(0, 0, rows).clone()));
      if (used !== all) all.dispose();
      const labels = keep(tidy(() => cat(labelParts, 0)));
      return new DeviceImageCache(used, labels, rowOf, skipped);
    } catch (err) {
      images?.dispose();
      throw err;
    } finally {
      dispose(labelParts);
    }
  }

  get rows(): number {
    return this.images.shape[0]!;
  }

  /** Bytes the images take on the device. */
  get bytes(): number {
    return this.images.numel();
  }

  dispose(): void {
    dispose([this.images, this.labels]);
  }
}

/** The batches of `loader` (same order, sharding and count), served from `cache`. */
export class CachedLoader {
  readonly batchSize: number;

  constructor(
    readonly loader: DataLoader,
    readonly cache: DeviceImageCache,
    private readonly dropLast = true,
  ) {
    this.batchSize = loader.batchSize;
  }

  /** This rank's order for `epoch` without the undecodable samples: data set indices and cache rows. */
  order(epoch: number): { indices: number[]; rows: Int32Array } {
    const indices = Array.from(this.loader.indices(epoch)).filter((i) => this.cache.rowOf[i]! >= 0);
    return { indices, rows: Int32Array.from(indices, (i) => this.cache.rowOf[i]!) };
  }

  /** Batches per epoch (the loader's when nothing was skipped). */
  get length(): number {
    const n = this.order(0).rows.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Samples skipped in an epoch: all were reported when the cache was built. */
  skips(_epoch: number): readonly SkipEvent[] {
    return [];
  }

  /** The batches of `epoch`, from batch `from` on (a resume inside the epoch). */
  async *epoch(epoch: number, o: { from?: number } = {}): AsyncGenerator<Batch, void, undefined> {
    const { indices: dataIndex, rows } = this.order(epoch);
    const nb = this.dropLast ? Math.floor(rows.length / this.batchSize) : Math.ceil(rows.length / this.batchSize);
    const device = this.cache.images.device;
    const from = o.from ?? 0;
    if (!Number.isInteger(from) || from < 0 || from > nb)
      throw new RangeError(`CachedLoader: from must be an integer in [0, ${nb}] (batches per epoch), got ${from}`);
    for (let b = from; b < nb; b++) {
      const start = b * this.batchSize;
      const part = rows.subarray(start, Math.min(start + this.batchSize, rows.length));
      const { images, labels } = tidy(() => {
        const idx = toDevice(
          tensor(
            BigInt64Array.from(part, (r) => BigInt(r)),
            { shape: [part.length] },
          ),
          device,
        );
        return { images: this.cache.images.indexSelect(0, idx), labels: this.cache.labels.indexSelect(0, idx) };
      });
      yield {
        images: keep(images),
        labels: keep(labels),
        indices: dataIndex.slice(start, start + part.length),
        epoch,
        batch: b,
      };
    }
  }
}
