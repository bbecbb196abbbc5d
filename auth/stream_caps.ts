/**
 * A cap on the long-lived connections one client address holds open at once (SSE watch streams
 * and sockets together), so one client cannot tie up an instance's memory and descriptors with
 * thousands of idle streams. Per instance; behind a proxy that hides client addresses every
 * client shares one address, so raise the cap there (`CHORUS_MAX_STREAMS_PER_CLIENT`).
 * @module
 */
import { ChorusError } from "../errors.ts";

/** Counts open streams per client address against one cap. */
export class StreamCaps {
  readonly #max: number;
  readonly #open = new Map<string, number>();

  /** @param max streams one address may hold open; 0 or Infinity: no cap */
  constructor(max: number) {
    this.#max = max > 0 ? max : Infinity;
  }

  /** Streams open now for `address` (0 when there is no cap: nothing is counted then). */
  openFor(address: string): number {
    return this.#open.get(address) ?? 0;
  }

  /**
   * Takes one stream for `address`; returns the function that gives it back (call it once, when
   * the stream ends). Without a cap nothing is counted and the function is a shared no-op, so an
   * uncapped stream holds nothing for it.
   * @throws {ChorusError} `rate_limited` (429) when the address already holds the cap
   */
  acquire(address: string): () => void {
    if (this.#max === Infinity) return nothing;
    const open = this.#open.get(address) ?? 0;
    if (open >= this.#max) {
      throw new ChorusError(
        "rate_limited",
        `Cannot open another stream: this client already holds ${open} (the limit)`,
        { headers: { "Retry-After": "1" }, details: { limit: this.#max } },
      );
    }
    this.#open.set(address, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(address) ?? 1) - 1;
      if (left > 0) this.#open.set(address, left);
      else this.#open.delete(address);
    };
  }
}

/** What giving back an uncounted stream does. */
function nothing(): void {}
