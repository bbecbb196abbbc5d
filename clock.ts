/**
 * Time as a dependency: everything that reads the time or waits takes a `Clock`, so tests drive
 * TTLs, idle eviction and schedulers with {@linkcode ManualClock} instead of sleeping.
 * @module
 */

/** A handle returned by {@linkcode Clock.setTimeout}. */
export type TimerId = number;

/** The time source and timer facility every component receives. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` after `ms`; never keeps the process alive on its own when `unref` is set. */
  setTimeout(fn: () => void, ms: number): TimerId;
  /** Cancels a timer from {@linkcode setTimeout}. */
  clearTimeout(id: TimerId): void;
  /**
   * Milliseconds from an arbitrary start that never step back or jump (as the wall clock may):
   * for durations and deadlines within this process. Absent: {@linkcode monotonic} falls back to
   * `now()`.
   */
  monotonic?(): number;
}

/** `clock.monotonic()` when the clock has one, else `clock.now()`. */
export function monotonic(clock: Clock): number {
  return clock.monotonic ? clock.monotonic() : clock.now();
}

/** The real clock, backed by `Date.now`, `performance.now` and the global timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as number,
  clearTimeout: (id) => clearTimeout(id),
};

/**
 * Waits a jittered exponential backoff before retry `attempt`: `min(capMs, baseMs · 2^attempt)`
 * times a random factor in [0.5, 1.5). The one backoff of contended retries (actor commits, busy
 * SQLite, presence log appends). It waits on the real timers on purpose: it only spaces out
 * retries, and on a {@linkcode ManualClock} that nobody advances a retry would never run.
 * @param options.baseMs the delay of attempt 0; `capMs` the longest delay
 */
export function backoff(
  attempt: number,
  options: { baseMs: number; capMs: number },
): Promise<void> {
  const ms = Math.min(options.capMs, options.baseMs * 2 ** attempt) * (0.5 + Math.random());
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A clock that only moves when told to, for tests. Timers fire, in order, inside
 * {@linkcode ManualClock.advance}.
 */
export class ManualClock implements Clock {
  #now: number;
  #next = 1;
  #timers = new Map<number, { at: number; fn: () => void }>();

  /** A clock standing at `start` (ms since epoch) until advanced. */
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  /** The current manual time. */
  now(): number {
    return this.#now;
  }

  /** The same manual time: it only moves forward, with {@linkcode advance}. */
  monotonic(): number {
    return this.#now;
  }

  /** Schedules `fn` at `now() + ms`. */
  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.#next++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn });
    return id;
  }

  /** Cancels a scheduled timer. */
  clearTimeout(id: TimerId): void {
    this.#timers.delete(id);
  }

  /** Timers scheduled and neither fired nor cancelled (tests check none is left behind). */
  get pending(): number {
    return this.#timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in time order. */
  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= target && (!due || entry[1].at < due[1].at)) due = entry;
      }
      if (!due) break;
      this.#timers.delete(due[0]);
      this.#now = Math.max(this.#now, due[1].at);
      due[1].fn();
    }
    this.#now = target;
  }
}
