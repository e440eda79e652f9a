// A small seeded generator for the data pipeline (shuffling, subsets, procedural images).
// It is independent of libtorch's generator, so loading data never moves the model's random
// stream, and the same (seed, stream...) always gives the same numbers on every platform.
//
// xoshiro128** (Blackman & Vigna) seeded through splitmix32, all in 32-bit integer arithmetic.

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Mixes integers (seed, epoch, index, ...) into one 32-bit key. */
export function mixKey(...parts: readonly number[]): number {
  const st = { s: 0x2545f491 };
  let h = splitmix32(st);
  for (const p of parts) {
    if (!Number.isSafeInteger(p)) throw new RangeError(`rng: key parts must be safe integers, got ${p}`);
    // both 32-bit halves of the part, so seeds above 2^32 still differ
    const lo = p >>> 0;
    const hi = Math.floor(p / 0x100000000) >>> 0;
    st.s = (h ^ lo) | 0;
    h = splitmix32(st);
    st.s = (h ^ hi ^ 0x5bd1e995) | 0;
    h = splitmix32(st);
  }
  return h;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** A generator for the stream named by the integers `key` (e.g. seed, epoch). */
  constructor(...key: readonly number[]) {
    const st = { s: mixKey(...key) | 0 };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  next(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  float(): number {
    return ((this.next() >>> 5) * 67108864 + (this.next() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [0, n), unbiased (n ≤ 2^32). */
  int(n: number): number {
    if (!(n >= 1 && n <= 0x100000000) || !Number.isInteger(n)) throw new RangeError(`rng.int: bad bound ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    let x: number;
    do x = this.next();
    while (x >= limit);
    return x % n;
  }

  /** Shuffles `xs` in place (Fisher–Yates) and returns it. */
  shuffle<T extends { length: number; [i: number]: unknown }>(xs: T): T {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = xs[i];
      xs[i] = xs[j];
      xs[j] = t;
    }
    return xs;
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Uint32Array {
    const p = new Uint32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
