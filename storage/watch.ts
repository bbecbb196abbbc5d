/**
 * Watch fan-in: one `kv.watch` stream per group of up to 10 keys (KV's limit per call), shared by
 * every listener of those keys in this instance. This is how an instance learns of other
 * instances' writes. A notification only means "this key changed": watch coalesces, so listeners
 * compare versionstamps and read change logs to catch up.
 *
 * The hub also **measures how far watch trails KV**, so `leader` reads can trust a watched cache
 * without a KV read per get: on demand it writes a probe key of its own and waits for watch to
 * report it. A probe started at `t` and delivered proves the watch pipeline had passed on every
 * commit made before `t`; {@linkcode WatchHub.current} says whether such a proof is younger than
 * the bound (`maxLagMs`). A probe costs one small commit, at most one per half bound and only
 * while something asks, so an idle instance writes nothing. See `docs/consistency.md`.
 * @module
 */
import { type Clock, systemClock } from "../clock.ts";
import { throttledWarn } from "../log.ts";

/**
 * Called with a key's latest versionstamp (null when absent) and the value watch read with it
 * (listeners that only need "it changed" ignore the value).
 */
export type WatchListener = (versionstamp: string | null, value: unknown) => void;

const GROUP_SIZE = 10;

interface Group {
  keys: Map<string, Deno.KvKey>;
  reader?: ReadableStreamDefaultReader<Deno.KvEntryMaybe<unknown>[]>;
  /** Bumped on every restart (the key set changed). */
  generation: number;
  /** The newest generation whose stream has delivered its first report. */
  reported: number;
}

/** A listener's hold on a watched key. */
export interface WatchHandle {
  /** Stops listening. */
  stop(): void;
  /**
   * True once the key's stream has reported the key's state since the listener joined it: from
   * then on every later change reaches the listener (after the watch delay).
   */
  readonly live: boolean;
}

/** Options of {@linkcode WatchHub}. */
export interface WatchHubOptions {
  /** Time source for the probe (default: the system's). */
  clock?: Clock;
  /** Key of this instance's probe (default: no probe; {@linkcode WatchHub.current} is false). */
  probeKey?: Deno.KvKey;
  /** The bound on watch lag within which {@linkcode WatchHub.current} holds (default 100 ms). */
  maxLagMs?: number;
}

/** How long a probe entry outlives its last write (an instance that stops leaves none behind). */
const PROBE_EXPIRE_MS = 60_000;

/** Shares `kv.watch` streams among the listeners of one instance. */
export class WatchHub {
  readonly #kv: Deno.Kv;
  readonly #clock: Clock;
  readonly #probeWarn: ReturnType<typeof throttledWarn>;
  readonly #probeKey?: Deno.KvKey;
  readonly #maxLagMs: number;
  /** Start time of the newest delivered probe: watch had passed on every commit before it. */
  #currentThrough = -Infinity;
  #probeSeq = 0;
  #probeSentAt = -Infinity;
  #probeInFlight = false;
  #probeReader?: ReadableStreamDefaultReader<Deno.KvEntryMaybe<unknown>[]>;
  #trusted = true;
  readonly #listeners = new Map<string, Set<WatchListener>>();
  readonly #groupOf = new Map<string, Group>();
  readonly #groups = new Set<Group>();
  /** Groups with fewer than {@linkcode GROUP_SIZE} keys. */
  readonly #roomy = new Set<Group>();
  readonly #dirty = new Set<Group>();
  #scheduled = false;
  #restartTimer?: ReturnType<typeof setTimeout>;
  #closed = false;

  /** A hub over `kv`; `options` enable the lag probe. */
  constructor(kv: Deno.Kv, options: WatchHubOptions = {}) {
    this.#kv = kv;
    this.#clock = options.clock ?? systemClock;
    this.#probeWarn = throttledWarn(60_000, () => this.#clock.now());
    this.#probeKey = options.probeKey;
    this.#maxLagMs = options.maxLagMs ?? 100;
  }

  /** The bound on watch lag that {@linkcode current} checks. */
  get maxLagMs(): number {
    return this.#maxLagMs;
  }

  /**
   * Whether watch is known to have passed on every commit made before `now - maxLagMs`: then a
   * watched cache with no refresh pending trails KV by at most that bound. False while no probe
   * has come back recently enough (it starts one), when the probe is off, and when
   * {@linkcode setTrusted} said watch cannot see every writer.
   */
  current(now: number): boolean {
    const age = now - this.#currentThrough;
    if (age * 2 >= this.#maxLagMs) this.#probe(now);
    return age < this.#maxLagMs && this.#trusted;
  }

  /**
   * Says whether watch reaches every writer of this KV. It does not across processes on one local
   * SQLite file: there `leader` reads must confirm with KV, as when the probe is late.
   */
  setTrusted(trusted: boolean): void {
    this.#trusted = trusted;
  }

  #probe(now: number): void {
    const key = this.#probeKey;
    if (!key || this.#closed || !this.#trusted) return;
    // One probe at a time; one that never came back is replaced after twice the bound.
    if (this.#probeInFlight && now - this.#probeSentAt < 2 * this.#maxLagMs) return;
    this.#probeReader ??= this.#startProbeStream(key);
    const seq = ++this.#probeSeq;
    this.#probeInFlight = true;
    this.#probeSentAt = now;
    this.#kv.set(key, seq, { expireIn: PROBE_EXPIRE_MS }).catch((error) => {
      if (this.#probeSeq === seq) this.#probeInFlight = false;
      this.#probeWarn("watch lag probe not written; leader reads confirm with KV until one is", {
        error,
      });
    });
  }

  #startProbeStream(key: Deno.KvKey): ReadableStreamDefaultReader<Deno.KvEntryMaybe<unknown>[]> {
    const reader = this.#kv.watch([key]).getReader();
    (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          if (value[0].value === this.#probeSeq && this.#probeInFlight) {
            this.#probeInFlight = false;
            this.#currentThrough = this.#probeSentAt;
          }
        }
      } catch {
        // KV closed; the next probe after a failure starts a new stream.
      }
      if (this.#probeReader === reader) this.#probeReader = undefined;
    })();
    return reader;
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
    const handle = this.watch(key, listener);
    return () => handle.stop();
  }

  /**
   * Like {@linkcode subscribe}, returning a handle that also tells whether the key's stream is
   * live (has reported since the listener joined), which `leader` reads rely on.
   */
  watch(key: Deno.KvKey, listener: WatchListener): WatchHandle {
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
    // The stream that will report this key restarts after this call; its first report makes
    // the handle live.
    const group = this.#groupOf.get(id)!; // a key stays in its group while watched
    const since = group.generation + 1;
    const release = () => {
      const current = this.#listeners.get(id);
      if (!current?.delete(listener) || current.size) return;
      this.#listeners.delete(id);
      const group = this.#groupOf.get(id);
      this.#groupOf.delete(id);
      if (group) {
        group.keys.delete(id);
        if (this.#groups.has(group)) this.#roomy.add(group);
        this.#markDirty(group);
      }
    };
    let stopped = false;
    return {
      stop() {
        stopped = true;
        release();
      },
      get live() {
        return !stopped && group.reported >= since;
      },
    };
  }

  /** Cancels every stream. */
  close(): void {
    this.#closed = true;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    for (const g of this.#groups) {
      this.#stop(g);
      g.reported = -1; // no handle is live once the streams are gone
    }
    this.#groups.clear();
    this.#probeReader?.cancel().catch(() => {});
    this.#probeReader = undefined;
  }

  #place(id: string, key: Deno.KvKey): void {
    // Groups with room, so placing a key costs the same with 10 or 100,000 keys watched.
    let group: Group | undefined = this.#roomy.values().next().value;
    if (!group) {
      group = { keys: new Map(), generation: 0, reported: -1 };
      this.#groups.add(group);
      this.#roomy.add(group);
    }
    if (group.keys.size + 1 >= GROUP_SIZE) this.#roomy.delete(group);
    group.keys.set(id, key);
    this.#groupOf.set(id, group);
    this.#markDirty(group);
  }

  #markDirty(group: Group): void {
    this.#dirty.add(group);
    if (this.#scheduled) return;
    this.#scheduled = true;
    // Restart changed groups once per turn of the event loop, so a burst of new keys (a client
    // reading keys one after another) costs one restart per group, not one per key: each restart
    // makes KV read every key of the group again.
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      this.#scheduled = false;
      for (const g of this.#dirty) this.#restart(g);
      this.#dirty.clear();
    }, 0);
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
      this.#roomy.delete(group);
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
          // Listeners have been told of any change up to this report: the stream is live.
          group.reported = generation;
        }
      } catch {
        // The stream ends when KV closes or the group restarts.
      }
    })();
  }
}
