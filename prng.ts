/**
 * A seeded pseudo-random generator (mulberry32) and the choices drawn from it. Whatever must be
 * replayable draws from here: fuzz runs and fault schedules in the tests, property tests, the
 * load mix of the soak benchmark. A run is then named by its seed, and the same seed draws the
 * same sequence everywhere. Not for anything that must be unpredictable (ids, tokens).
 * @module
 */

/**
 * mulberry32: a 32-bit state PRNG, uniform in [0, 1); small and fast, and good enough to spread
 * test inputs and load, which is all it is for.
 * @param seed taken as a 32-bit unsigned integer
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Seeded random choices over {@linkcode mulberry32}, so code that draws reads as what it picks. */
export class Rng {
  /** The seed this generator started from. */
  readonly seed: number;
  readonly #next: () => number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.#next = mulberry32(this.seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.#next();
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.#next() * n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.#next() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** An index chosen by `weights` (need not sum to 1). */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((a, b) => a + b, 0);
    let x = this.#next() * total;
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i];
      if (x < 0) return i;
    }
    return weights.length - 1;
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A string of `n` characters drawn from `alphabet`. */
  string(n: number, alphabet: string): string {
    const chars = [...alphabet];
    let s = "";
    for (let i = 0; i < n; i++) s += chars[this.int(chars.length)];
    return s;
  }

  /** A child generator with its own stream (so one part's draws do not shift another's). */
  fork(): Rng {
    return new Rng(this.int(0x1_0000_0000));
  }
}
