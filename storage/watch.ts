/**
 * Watch fan-in: one `kv.watch` stream per group of up to 10 keys (KV's limit per call), shared by
 * every listener of those keys in this instance. This is how an instance learns of other
 * instances' writes. A notification only means "this key changed": watch coalesces, so listeners
 * compare versionstamps and read change logs to catch up.
 * @module
 */

/**
 * Called with a key's latest versionstamp (null when absent) and the value watch read with it
 * (listeners that only need "it changed" ignore the value).
 */
export type WatchListener = (versionstamp: string | null, value: unknown) => void;

const GROUP_SIZE = 10;

interface Group {
  keys: Map<string, Deno.KvKey>;
  reader?: ReadableStreamDefaultReader<Deno.KvEntryMaybe<unknown>[]>;
  generation: number;
}

/** Shares `kv.watch` streams among the listeners of one instance. */
export class WatchHub {
  readonly #kv: Deno.Kv;
  readonly #listeners = new Map<string, Set<WatchListener>>();
  readonly #groupOf = new Map<string, Group>();
  readonly #groups = new Set<Group>();
  readonly #dirty = new Set<Group>();
  #scheduled = false;
  #closed = false;

  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** Keys currently watched. */
  get size(): number {
    return this.#listeners.size;
  }

  /** Open watch streams. */
  get streams(): number {
    return this.#groups.size;
  }

  /**
   * Calls `listener` whenever `key` changes (and once soon after subscribing, with the current
   * versionstamp). Returns the function that stops it.
   */
  subscribe(key: Deno.KvKey, listener: WatchListener): () => void {
    const id = JSON.stringify(key);
    let set = this.#listeners.get(id);
    if (!set) {
      set = new Set();
      this.#listeners.set(id, set);
      this.#place(id, key);
    } else {
      // Its stream is restarted, so the new listener too gets the current versionstamp soon.
      const group = this.#groupOf.get(id);
      if (group) this.#markDirty(group);
    }
    set.add(listener);
    return () => {
      const current = this.#listeners.get(id);
      if (!current?.delete(listener) || current.size) return;
      this.#listeners.delete(id);
      const group = this.#groupOf.get(id);
      this.#groupOf.delete(id);
      if (group) {
        group.keys.delete(id);
        this.#markDirty(group);
      }
    };
  }

  /** Cancels every stream. */
  close(): void {
    this.#closed = true;
    for (const g of this.#groups) this.#stop(g);
    this.#groups.clear();
  }

  #place(id: string, key: Deno.KvKey): void {
    let group: Group | undefined;
    for (const g of this.#groups) {
      if (g.keys.size < GROUP_SIZE) {
        group = g;
        break;
      }
    }
    if (!group) {
      group = { keys: new Map(), generation: 0 };
      this.#groups.add(group);
    }
    group.keys.set(id, key);
    this.#groupOf.set(id, group);
    this.#markDirty(group);
  }

  #markDirty(group: Group): void {
    this.#dirty.add(group);
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Restart changed groups once per tick, so a burst of new keys costs one restart per group.
    queueMicrotask(() => {
      this.#scheduled = false;
      for (const g of this.#dirty) this.#restart(g);
      this.#dirty.clear();
    });
  }

  #stop(group: Group): void {
    group.generation++;
    group.reader?.cancel().catch(() => {});
    group.reader = undefined;
  }

  #restart(group: Group): void {
    this.#stop(group);
    if (this.#closed) return;
    if (!group.keys.size) {
      this.#groups.delete(group);
      return;
    }
    const keys = [...group.keys.values()];
    const ids = [...group.keys.keys()];
    const generation = group.generation;
    let reader: ReadableStreamDefaultReader<Deno.KvEntryMaybe<unknown>[]>;
    try {
      reader = this.#kv.watch(keys).getReader();
    } catch {
      return; // KV closed
    }
    group.reader = reader;
    (async () => {
      // A notification carries every key of the stream; after the first, only the keys whose
      // versionstamp moved are passed on (a write to one key must not wake the others).
      let seen: (string | null)[] | undefined;
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done || group.generation !== generation) return;
          value.forEach((entry, i) => {
            if (seen?.[i] === entry.versionstamp) return;
            for (const l of this.#listeners.get(ids[i]) ?? []) l(entry.versionstamp, entry.value);
          });
          seen = value.map((entry) => entry.versionstamp);
        }
      } catch {
        // The stream ends when KV closes or the group restarts.
      }
    })();
  }
}
