/**
 * Group reads, as group commit does for writes: while a read is in flight, the single-key reads
 * that arrive queue up, and when it is done they go out together as `getMany` calls of up to
 * {@linkcode GET_MANY_MAX} keys each. A thousand actors starting at once (a join storm, a cold hot
 * set) then cost about a hundred KV operations instead of a thousand; a lone read goes out at once.
 *
 * Every queued read is sent after it was asked for, so a strong read still sees every commit
 * made before the caller asked.
 * @module
 */

/** KV's most keys in one `getMany`. */
export const GET_MANY_MAX = 10;

interface Waiting {
  key: Deno.KvKey;
  resolve: (entry: Deno.KvEntryMaybe<unknown>) => void;
  reject: (error: unknown) => void;
}

/** The two reads a batcher sends: one key, or up to {@linkcode GET_MANY_MAX} at one point in time. */
export interface KeyReads {
  get(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<unknown>>;
  getMany(keys: Deno.KvKey[]): Promise<Deno.KvEntryMaybe<unknown>[]>;
}

/** Batches single-key reads of one consistency (see the module doc). */
export class ReadBatcher {
  readonly #reads: KeyReads;
  #waiting: Waiting[] = [];
  #inFlight = 0;

  /** Sends its batches through `reads`. */
  constructor(reads: KeyReads) {
    this.#reads = reads;
  }

  /** Reads waiting for the ones in flight. */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Reads `key`: at once when nothing is in flight, else with the next batch. */
  get(key: Deno.KvKey): Promise<Deno.KvEntryMaybe<unknown>> {
    if (this.#inFlight === 0) {
      this.#inFlight++;
      return this.#reads.get(key).finally(() => this.#done());
    }
    return new Promise((resolve, reject) => this.#waiting.push({ key, resolve, reject }));
  }

  #done(): void {
    this.#inFlight--;
    if (this.#inFlight > 0 || this.#waiting.length === 0) return;
    const waiting = this.#waiting;
    this.#waiting = [];
    for (let i = 0; i < waiting.length; i += GET_MANY_MAX) {
      const part = waiting.slice(i, i + GET_MANY_MAX);
      this.#inFlight++;
      this.#send(part).finally(() => this.#done());
    }
  }

  async #send(part: Waiting[]): Promise<void> {
    if (part.length === 1) {
      const [one] = part;
      await this.#reads.get(one.key).then(one.resolve, one.reject);
      return;
    }
    let entries: Deno.KvEntryMaybe<unknown>[];
    try {
      entries = await this.#reads.getMany(part.map((w) => w.key));
    } catch (error) {
      if (!(error instanceof TypeError)) {
        for (const w of part) w.reject(error);
        return;
      }
      // KV refused a key (too large, say): read each alone, so only that caller fails.
      await Promise.all(part.map((w) => this.#reads.get(w.key).then(w.resolve, w.reject)));
      return;
    }
    part.forEach((w, i) => w.resolve(entries[i]));
  }
}
