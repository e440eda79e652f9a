// The common interface of the data sets: a length, class names, cheap labels, and samples as
// RGB uint8 images (height × width × 3, row-major, as sharp and PIL hand them out).

/** An RGB image: `data` holds height·width·3 bytes, HWC order. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export interface Sample {
  image: RgbImage;
  /** class index into the data set's `classes` */
  label: number;
}

/**
 * One sample that could not be read or decoded (a corrupt, truncated or vanished file). The
 * loader skips it and reports it; any other error stops the run.
 */
export class SampleError extends Error {
  constructor(
    /** file path, or a description such as `cifar10/train#17` */
    readonly path: string,
    readonly index: number,
    readonly reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'SampleError';
  }
}

/** Runs `fn` when one of its `slots` is free (the loader's decode concurrency). */
export interface Limiter {
  <T>(fn: () => Promise<T>): Promise<T>;
  readonly slots: number;
}

export interface Dataset {
  readonly length: number;
  readonly classes: readonly string[];
  /** The label of sample `i` without decoding it. */
  label(i: number): number;
  /** Where sample `i` comes from (a file path or `name#i`), for reports. */
  source(i: number): string;
  /** Sample `i`; rejects with SampleError when it cannot be read or decoded. */
  get(i: number): Promise<Sample>;
  /**
   * Optional batch path, used by the loader when present: the samples `indices` in order, a
   * SampleError in place of each that failed. `limit` bounds concurrent decode work.
   */
  getMany?(indices: readonly number[], limit: Limiter): Promise<(Sample | SampleError)[]>;
}

export function checkIndex(ds: { length: number }, i: number, what: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= ds.length) {
    throw new RangeError(`${what}: index ${i} out of range [0, ${ds.length})`);
  }
}

/** A limiter with `n` slots (FIFO). */
export function createLimiter(n: number): Limiter {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`limiter: need at least one slot, got ${n}`);
  let active = 0;
  const waiting: (() => void)[] = [];
  const release = (): void => {
    active--;
    const next = waiting.shift();
    if (next) {
      active++;
      next();
    }
  };
  const limit = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = (): Promise<T> => {
      let p: Promise<T>;
      try {
        p = fn();
      } catch (err) {
        p = Promise.reject(err as Error);
      }
      return p.finally(release);
    };
    if (active < n) {
      active++;
      return run();
    }
    return new Promise<void>((resolve) => waiting.push(resolve)).then(run);
  };
  return Object.assign(limit, { slots: n });
}

/** Expands a grayscale (1 byte per pixel) image to RGB. */
export function grayToRgb(gray: Uint8Array, width: number, height: number): RgbImage {
  const n = width * height;
  const data = new Uint8Array(n * 3);
  for (let p = 0, q = 0; p < n; p++, q += 3) {
    const v = gray[p]!;
    data[q] = v;
    data[q + 1] = v;
    data[q + 2] = v;
  }
  return { data, width, height };
}

/** Converts planar RGB (3 × height × width, as in the CIFAR files) to HWC. */
export function planarToRgb(planar: Uint8Array, width: number, height: number): RgbImage {
  const n = width * height;
  const data = new Uint8Array(n * 3);
  for (let p = 0, q = 0; p < n; p++, q += 3) {
    data[q] = planar[p]!;
    data[q + 1] = planar[n + p]!;
    data[q + 2] = planar[2 * n + p]!;
  }
  return { data, width, height };
}
