// Subsets for low-shot evaluation: a fraction of each class or a fixed number per class,
// chosen by seed. Within a class the images are drawn in one seeded order, so with the same
// seed a smaller subset is contained in a larger one (1-shot ⊂ 5-shot, 1 % ⊂ 10 %).
import { SampleError, checkIndex, type Dataset, type Limiter, type Sample } from './dataset.js';
import { Rng } from './rng.js';

export class Subset implements Dataset {
  readonly length: number;
  readonly classes: readonly string[];

  /** The samples `indices` of `base`, in that order. */
  constructor(
    readonly base: Dataset,
    readonly indices: readonly number[],
  ) {
    for (const i of indices) checkIndex(base, i, 'Subset');
    this.length = indices.length;
    this.classes = base.classes;
  }

  private at(i: number): number {
    checkIndex(this, i, 'Subset');
    return this.indices[i]!;
  }

  label(i: number): number {
    return this.base.label(this.at(i));
  }

  source(i: number): string {
    return this.base.source(this.at(i));
  }

  get(i: number): Promise<Sample> {
    try {
      return this.base.get(this.at(i));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  async getMany(indices: readonly number[], limit: Limiter): Promise<(Sample | SampleError)[]> {
    const mapped = indices.map((i) => this.at(i));
    if (this.base.getMany) {
      const out = await this.base.getMany(mapped, limit);
      // report positions in this subset
      return out.map((s, k) => (s instanceof SampleError ? new SampleError(s.path, indices[k]!, s.reason) : s));
    }
    return Promise.all(
      mapped.map((j, k) =>
        limit(() => this.base.get(j)).catch((err: unknown) => {
          if (err instanceof SampleError) return new SampleError(err.path, indices[k]!, err.reason);
          throw err;
        }),
      ),
    );
  }
}

/** Indices of each class, ascending. */
export function indicesByClass(ds: Dataset): number[][] {
  const by: number[][] = ds.classes.map(() => []);
  for (let i = 0; i < ds.length; i++) {
    const l = ds.label(i);
    const list = by[l];
    if (!list)
      throw new RangeError(`sample ${i} (${ds.source(i)}) has label ${l}, outside the ${ds.classes.length} classes`);
    list.push(i);
  }
  return by;
}

function pick(ds: Dataset, seed: number, count: (classSize: number, cls: number) => number): Subset {
  const chosen: number[] = [];
  indicesByClass(ds).forEach((idx, cls) => {
    const k = count(idx.length, cls);
    new Rng(seed, cls, 0x5b).shuffle(idx);
    for (let j = 0; j < k; j++) chosen.push(idx[j]!);
  });
  chosen.sort((a, b) => a - b);
  return new Subset(ds, chosen);
}

/**
 * `fraction` of every class (rounded, at least one image per non-empty class when
 * fraction > 0), drawn by `seed`.
 */
export function subsetFraction(ds: Dataset, fraction: number, seed = 0): Subset {
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`subsetFraction: fraction ${fraction} not in [0, 1]`);
  return pick(ds, seed, (n) => (n === 0 || fraction === 0 ? 0 : Math.max(1, Math.round(fraction * n))));
}

/** `perClass` images of every class, drawn by `seed`; an error when a class has fewer. */
export function subsetPerClass(ds: Dataset, perClass: number, seed = 0): Subset {
  if (!Number.isInteger(perClass) || perClass < 0) throw new RangeError(`subsetPerClass: bad count ${perClass}`);
  return pick(ds, seed, (n, cls) => {
    if (n < perClass) {
      throw new RangeError(`subsetPerClass: class ${ds.classes[cls]} has ${n} images, fewer than ${perClass}`);
    }
    return perClass;
  });
}
