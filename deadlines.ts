/**
 * One deadline shared by many concurrent operations (every write request gets the same
 * `CHORUS_REQUEST_TIMEOUT`), kept with one timer instead of one per operation.
 *
 * A `setTimeout`/`clearTimeout` pair plus a `Promise.race` per request cost a kv PUT through the
 * app about a fifth of its CPU (84 → 67 µs). Here an operation joins the bucket of its deadline,
 * rounded up to `granularity` ms on the clock's monotonic time (a wall clock stepping would fail
 * writes early or late), and the one timer waits for the earliest bucket. An operation
 * that settles leaves its bucket; when none are left, the timer is cleared, so an idle process
 * holds no timer. An operation fails at most `granularity` ms after its deadline.
 * @module
 */
import { type Clock, monotonic, systemClock, type TimerId } from "./clock.ts";

/** Runs operations with a shared timeout. */
export class Deadlines {
  readonly #ms: number;
  readonly #granularity: number;
  readonly #expired: () => unknown;
  readonly #clock: Clock;
  /** Pending operations' reject functions by bucket (its deadline), oldest first. */
  readonly #buckets = new Map<number, Set<(reason: unknown) => void>>();
  #timer: TimerId | undefined;
  #timerAt = Infinity;

  /**
   * @param ms the timeout of every operation
   * @param expired makes the error an operation that ran out of time rejects with
   * @param options.clock time and timers (default: the system's)
   * @param options.granularity how late past its deadline an operation may fail; default
   *   `ms / 20`, between 1 and 100 ms
   */
  constructor(
    ms: number,
    expired: () => unknown,
    options: { clock?: Clock; granularity?: number } = {},
  ) {
    this.#ms = ms;
    this.#expired = expired;
    this.#clock = options.clock ?? systemClock;
    this.#granularity = Math.max(1, options.granularity ?? Math.min(100, ms / 20));
  }

  /** Operations waiting: neither settled nor past their deadline. */
  get pending(): number {
    let n = 0;
    for (const bucket of this.#buckets.values()) n += bucket.size;
    return n;
  }

  /**
   * Resolves or rejects as `work` does, or rejects with the `expired` error once the timeout has
   * passed (`work` keeps running; only its caller stops waiting).
   */
  run<T>(work: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const g = this.#granularity;
      const key = Math.ceil((monotonic(this.#clock) + this.#ms) / g) * g;
      let bucket = this.#buckets.get(key);
      if (!bucket) {
        bucket = new Set();
        this.#buckets.set(key, bucket);
        if (key < this.#timerAt) this.#arm(key);
      }
      bucket.add(reject);
      const own = bucket;
      const leave = () => {
        if (!own.delete(reject) || own.size > 0) return;
        this.#buckets.delete(key);
        if (this.#buckets.size === 0) this.#arm(Infinity);
      };
      work().then(
        (value) => {
          leave();
          resolve(value);
        },
        (error) => {
          leave();
          reject(error);
        },
      );
    });
  }

  /** Points the timer at `at` (Infinity: none). */
  #arm(at: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), at - monotonic(this.#clock));
  }

  /**
   * Fails the operations whose deadline passed, then waits for the earliest bucket left (all
   * buckets are looked at, so a clock without `monotonic` that steps back does no harm).
   */
  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = monotonic(this.#clock);
    let next = Infinity;
    for (const [key, bucket] of this.#buckets) {
      if (key > now) {
        next = Math.min(next, key);
        continue;
      }
      this.#buckets.delete(key);
      for (const reject of bucket) reject(this.#expired());
      bucket.clear();
    }
    this.#arm(next);
  }
}
