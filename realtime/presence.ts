/**
 * Presence across instances, in Phoenix Presence's shapes (shared/PHOENIX.md §4).
 *
 * Storage: every tracked meta is one KV entry `presenceKey(topic, key, phx_ref)` with `expireIn`
 * and an `exp` time, refreshed by the instance that owns the socket every `ttlMs / 3`. Every join
 * and leave also appends `{joins, leaves}` to the topic's change log under the next sequence number;
 * the number lives at `presenceSeqKey(topic)` and each append checks its versionstamp, so the log
 * has one order with no gaps for every instance. Each instance with sockets on a topic keeps a
 * {@linkcode PresenceView}: it watches the sequence key, reads the log from the last seq it applied
 * and broadcasts each entry as a `presence_diff`; when the log has expired past it, it reloads the
 * entries and broadcasts the difference. A view also sweeps entries whose `exp` passed (their
 * instance died): it deletes them with a versionstamp check and logs the leave, so they vanish
 * everywhere within the TTL.
 * @module
 */
import { type Clock, monotonic, type TimerId } from "../clock.ts";
import type { Check, Mutation, Store } from "../storage/store.ts";
import type { WatchHub } from "../storage/watch.ts";
import { presenceKey, presenceLogKey, presencePrefix, presenceSeqKey } from "../storage/keys.ts";
import { encodeEnvelope } from "../proto/codec.ts";
import { push } from "./phoenix.ts";
import { utf8Bytes } from "./outbox.ts";
import type { WireFormat } from "./fanout.ts";
import type { TopicMessage } from "./topics.ts";

/** One tracked presence meta: `phx_ref`, `online_at` and what the join supplied. */
export interface PresenceMeta {
  /** url-safe base64 of 12 random bytes, unique per tracked meta. */
  phx_ref: string;
  /** When the socket joined (ms since epoch). */
  online_at: number;
  /** Further fields from the join (`status`, `activity`). */
  [field: string]: unknown;
}

/** `{key: {metas: [...]}}`: the `presence_state` payload and each half of a diff. */
export type PresenceMap = Record<string, { metas: PresenceMeta[] }>;

/** The `presence_diff` payload. */
export interface PresenceDiff {
  /** Metas that arrived, by key. */
  joins: PresenceMap;
  /** Metas that left, by key, with the exact phx_refs clients hold. */
  leaves: PresenceMap;
}

interface StoredPresence {
  key: string;
  meta: PresenceMeta;
  /** Expiry (ms since epoch) unless refreshed. */
  exp: number;
  /** The instance that owns the socket. */
  inst: string;
}

/** Options of {@linkcode PresenceTracker}. */
export interface PresenceOptions {
  /** Storage. */
  store: Store;
  /** Watch fan-in (the sequence keys). */
  watch: WatchHub;
  /** Time source for `online_at`, expiry and the refresh/sweep timers. */
  clock: Clock;
  /** This instance's id, stored with its entries. */
  instanceId: string;
  /** How long an entry outlives its last refresh (a dead instance's presence vanishes within it). Default 30 s. */
  ttlMs?: number;
  /** How long presence log entries are kept for views catching up. Default 10 min. */
  logTtlMs?: number;
  /**
   * How long a view gathers presence changes into one `presence_diff` broadcast (Phoenix's
   * tracker also broadcasts in batches). 0: one diff per log entry, at once. Default 50 ms.
   */
  diffMs?: number;
  /**
   * About the most bytes (UTF-8 JSON) in one `presence_diff` frame: a bigger batch goes out as
   * several diffs, every join before any leave, each key's metas in one frame (a key whose metas
   * alone exceed it still goes in one frame). Deno's WebSocket keeps a write buffer per socket as
   * large as the biggest frame it has sent, for as long as the socket is open, so diffs of a
   * join storm should stay small. Default 4,096.
   */
  diffMaxBytes?: number;
  /**
   * About the most bytes in one `presence_state` frame; default unlimited: the whole list in one
   * frame, which is what the phoenix client's `Presence` needs for exact callbacks. With a
   * limit, a bigger list goes out as a `presence_state` with its first keys followed by
   * `presence_diff` joins with the rest. The client ends at the same list, but on a rejoin it
   * first reports the members outside the first frame as left (and then joined again), and its
   * first `onSync` sees a partial list. Set it to bound the memory every member of a very big
   * topic keeps for the largest state it was sent.
   */
  stateMaxBytes?: number;
}

const BATCH = 50;
const SEQ_TTL_MS = 7 * 86_400_000;
const MAX_ATTEMPTS = 100;
const MAX_META_STRING = 256;
/** Encoded presence_state frames kept per view (distinct join_refs seen between two changes). */
const MAX_CACHED_FRAMES = 16;

/** Generates a `phx_ref`: url-safe base64 of 12 random bytes, as Phoenix's tracker does. */
export function randomRef(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}

/**
 * The meta fields a join may supply: `status` and `activity`, strings of at most 256 characters
 * (anything else is left out, so a client cannot grow other clients' state at will).
 */
export function joinMeta(payload: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const field of ["status", "activity"]) {
    const v = payload[field];
    if (typeof v === "string") out[field] = v.slice(0, MAX_META_STRING);
  }
  return out;
}

type Op =
  | { kind: "join"; key: string; meta: PresenceMeta; done: (r: Committed) => void; fail: Fail }
  | { kind: "leave"; key: string; meta: PresenceMeta; done: (r: Committed) => void; fail: Fail }
  | { kind: "sweep"; key: string; meta: PresenceMeta; done: (r: Committed) => void; fail: Fail };
type Fail = (e: unknown) => void;
interface Committed {
  seq: number;
  versionstamp: string | null;
}

interface Own {
  topic: string;
  key: string;
  meta: PresenceMeta;
  versionstamp: string | null;
  /** When its entry was last written, on the clock's monotonic time. */
  refreshedAt: number;
  /** A write of its entry (join, refresh or re-join) is in flight. */
  busy: boolean;
}

/** This instance's presence: tracks its sockets' metas in KV and keeps one view per topic. */
export class PresenceTracker {
  readonly #store: Store;
  readonly #watch: WatchHub;
  readonly #clock: Clock;
  readonly #instanceId: string;
  readonly #ttlMs: number;
  readonly #logTtlMs: number;
  readonly #diffMs: number;
  readonly #diffMaxBytes: number;
  readonly #stateMaxBytes: number;
  readonly #writers = new Map<string, TopicWriter>();
  readonly #own = new Map<string, Own>();
  /** Entries whose last write failed, retried first on the next tick. */
  readonly #retry = new Set<Own>();
  readonly #views = new Set<PresenceView>();
  #refreshTimer?: TimerId;
  #closed = false;

  /** A tracker for this instance; nothing is written until a socket is tracked. */
  constructor(options: PresenceOptions) {
    this.#store = options.store;
    this.#watch = options.watch;
    this.#clock = options.clock;
    this.#instanceId = options.instanceId;
    this.#ttlMs = options.ttlMs ?? 30_000;
    this.#logTtlMs = options.logTtlMs ?? 600_000;
    this.#diffMs = options.diffMs ?? 50;
    this.#diffMaxBytes = Math.max(256, options.diffMaxBytes ?? 4096);
    this.#stateMaxBytes = Math.max(256, options.stateMaxBytes ?? Infinity);
  }

  /** The entry TTL in ms. */
  get ttlMs(): number {
    return this.#ttlMs;
  }

  /** Metas tracked by this instance. */
  get tracked(): number {
    return this.#own.size;
  }

  /**
   * Tracks a meta for `key` on `topic` and logs the join.
   * @returns the meta (with its new `phx_ref`) and the log seq of the join
   */
  async track(
    topic: string,
    key: string,
    fields: Record<string, unknown> = {},
  ): Promise<{ meta: PresenceMeta; seq: number }> {
    const meta: PresenceMeta = { ...fields, phx_ref: randomRef(), online_at: this.#clock.now() };
    const id = ownId(topic, meta.phx_ref);
    const own: Own = {
      topic,
      key,
      meta,
      versionstamp: null,
      // Its first rewrite comes at a random point of the first interval, so the rewrites of a
      // join storm are spread from the start.
      refreshedAt: monotonic(this.#clock) - Math.random() * this.#refreshEveryMs,
      busy: true,
    };
    this.#own.set(id, own);
    this.#armRefresh();
    try {
      const r = await this.#enqueue(topic, "join", key, meta);
      own.versionstamp = r.versionstamp;
      return { meta, seq: r.seq };
    } catch (e) {
      this.#own.delete(id); // the caller holds no meta to untrack
      throw e;
    } finally {
      own.busy = false;
    }
  }

  /** Removes a meta tracked by {@linkcode track} and logs the leave. */
  async untrack(topic: string, key: string, meta: PresenceMeta): Promise<void> {
    if (!this.#own.delete(ownId(topic, meta.phx_ref))) return;
    await this.#enqueue(topic, "leave", key, meta);
  }

  /**
   * Opens the view of `topic`: loads its state, then publishes every change as `presence_diff`.
   * @returns the view (call `stop()` when the topic's last socket here leaves)
   */
  async view(topic: string, publish: (m: TopicMessage) => void): Promise<PresenceView> {
    const view = new PresenceView(this, topic, publish);
    this.#views.add(view);
    await view.start();
    return view;
  }

  /**
   * Stops timers and views. With `untrack` (default true) this instance's metas are removed and
   * their leaves logged first; false leaves them to expire, as after a crash.
   */
  async close(options: { untrack?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#refreshTimer !== undefined) this.#clock.clearTimeout(this.#refreshTimer);
    const own = [...this.#own.values()];
    this.#own.clear();
    if (options.untrack !== false) {
      await Promise.allSettled(own.map((o) => this.#enqueue(o.topic, "leave", o.key, o.meta)));
    }
    for (const view of this.#views) view.stop();
    this.#views.clear();
  }

  // ---- internals shared with PresenceView -------------------------------------------------

  /** @internal */
  get store(): Store {
    return this.#store;
  }
  /** @internal */
  get watchHub(): WatchHub {
    return this.#watch;
  }
  /** @internal */
  get clock(): Clock {
    return this.#clock;
  }
  /** @internal Whether `ref` on `topic` is a meta this instance tracks (and refreshes). */
  owns(topic: string, ref: string): boolean {
    return this.#own.has(ownId(topic, ref));
  }
  /** @internal */
  dropView(view: PresenceView): void {
    this.#views.delete(view);
  }
  /** @internal Removes an entry whose owner stopped refreshing it (if it is still expired). */
  sweep(topic: string, key: string, meta: PresenceMeta): Promise<Committed> {
    return this.#enqueue(topic, "sweep", key, meta);
  }

  #enqueue(topic: string, kind: Op["kind"], key: string, meta: PresenceMeta): Promise<Committed> {
    let writer = this.#writers.get(topic);
    if (!writer) {
      writer = new TopicWriter(topic, this, () => this.#writers.delete(topic));
      this.#writers.set(topic, writer);
    }
    return new Promise((done, fail) => writer.push({ kind, key, meta, done, fail } as Op));
  }

  /** @internal The stored record of a meta. */
  record(key: string, meta: PresenceMeta): StoredPresence {
    return { key, meta, exp: this.#clock.now() + this.#ttlMs, inst: this.#instanceId };
  }
  /** @internal */
  get logTtlMs(): number {
    return this.#logTtlMs;
  }
  /** @internal */
  get diffMs(): number {
    return this.#diffMs;
  }
  /** @internal */
  get diffMaxBytes(): number {
    return this.#diffMaxBytes;
  }
  /** @internal */
  get stateMaxBytes(): number {
    return this.#stateMaxBytes;
  }

  /** How often an entry is rewritten: a third of the TTL, so two refreshes may fail in a row. */
  get #refreshEveryMs(): number {
    return Math.max(10, Math.floor(this.#ttlMs / 3));
  }

  /** The refresh timer's period: a tenth of the refresh interval. */
  get #tickMs(): number {
    return Math.max(10, Math.floor(this.#refreshEveryMs / 10));
  }

  #armRefresh(): void {
    if (this.#refreshTimer !== undefined || this.#closed) return;
    // A fixed cadence: a tick does not wait for the writes of the one before.
    this.#refreshTimer = this.#clock.setTimeout(() => {
      this.#refreshTimer = undefined;
      this.#refresh();
      if (this.#own.size) this.#armRefresh();
    }, this.#tickMs);
  }

  /**
   * Rewrites the entries that are due with a new expiry. At most a tenth of them per tick, so the
   * sockets of a join storm do not all refresh in the same moment every interval: the KV
   * commits, and the pause they would cause in fan-out, are spread over the interval. Entries
   * overdue by a whole interval more are always taken, as are those whose last write failed, so
   * every entry is rewritten within about 2 intervals (the TTL is 3) however slow KV is. An
   * entry whose write is in flight is skipped. A tick looks at every entry (a few µs per
   * thousand), so no order has to be kept.
   */
  #refresh(): void {
    const now = monotonic(this.#clock);
    const every = this.#refreshEveryMs;
    const due = now - every;
    const overdue = now - 2 * every;
    const limit = Math.ceil(this.#own.size * this.#tickMs / every);
    const batch = new Set<Own>();
    for (const own of this.#retry) {
      if (!own.busy && this.#own.has(ownId(own.topic, own.meta.phx_ref))) batch.add(own);
    }
    this.#retry.clear();
    let paced = 0;
    for (const own of this.#own.values()) {
      if (own.busy || own.refreshedAt > due || batch.has(own)) continue;
      if (own.refreshedAt <= overdue) batch.add(own);
      else if (paced < limit) {
        batch.add(own);
        paced++;
      }
    }
    for (const own of batch) {
      own.refreshedAt = now;
      own.busy = true;
      this.#rewrite(own)
        .catch(() => this.#retry.add(own)) // KV failed: try again next tick
        .finally(() => own.busy = false);
    }
  }

  /** Writes one entry again; one that was swept as dead (or never landed) is joined again. */
  async #rewrite(own: Own): Promise<void> {
    if (own.versionstamp !== null) {
      const key = presenceKey(own.topic, own.key, own.meta.phx_ref);
      const r = await this.#store.commit({
        checks: [{ key, versionstamp: own.versionstamp }],
        mutations: [{
          type: "set",
          key,
          value: this.record(own.key, own.meta),
          expireIn: this.#ttlMs,
        }],
        bytes: 512,
      });
      if (r.ok) {
        own.versionstamp = r.versionstamp;
        return;
      }
      own.versionstamp = null; // swept as dead (this instance was too slow)
    }
    if (this.#own.get(ownId(own.topic, own.meta.phx_ref)) !== own || this.#closed) return;
    // The socket is alive: join again.
    const again = await this.#enqueue(own.topic, "join", own.key, own.meta);
    own.versionstamp = again.versionstamp;
  }
}

/** Serializes one topic's log appends on this instance and batches what queues meanwhile. */
class TopicWriter {
  readonly #topic: string;
  readonly #tracker: PresenceTracker;
  readonly #onIdle: () => void;
  #queue: Op[] = [];
  #running = false;

  constructor(topic: string, tracker: PresenceTracker, onIdle: () => void) {
    this.#topic = topic;
    this.#tracker = tracker;
    this.#onIdle = onIdle;
  }

  push(op: Op): void {
    this.#queue.push(op);
    if (!this.#running) this.#run();
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length) {
        const batch = this.#queue.splice(0, BATCH);
        try {
          const r = await this.#commit(batch);
          for (const op of batch) op.done(r);
        } catch (e) {
          for (const op of batch) op.fail(e);
        }
      }
    } finally {
      this.#running = false;
      this.#onIdle();
    }
  }

  async #commit(batch: Op[]): Promise<Committed> {
    const { store, clock } = this.#tracker;
    const seqKey = presenceSeqKey(this.#topic);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const seqEntry = await store.get<number>(seqKey);
      const checks: Check[] = [{ key: seqKey, versionstamp: seqEntry.versionstamp }];
      let ops = batch;
      const sweeps = batch.filter((op) => op.kind === "sweep");
      if (sweeps.length) {
        const keys = sweeps.map((op) => presenceKey(this.#topic, op.key, op.meta.phx_ref));
        const found = await getAll(store, keys);
        const now = clock.now();
        const gone = new Set<Op>();
        sweeps.forEach((op, i) => {
          const entry = found[i];
          const value = entry.value as StoredPresence | null;
          if (!value || value.exp > now) gone.add(op); // removed already, or refreshed
          else checks.push({ key: keys[i], versionstamp: entry.versionstamp });
        });
        ops = batch.filter((op) => !gone.has(op));
      }
      const current = seqEntry.value ?? 0;
      if (ops.length === 0) return { seq: current, versionstamp: null };
      const seq = current + 1;
      const diff: PresenceDiff = { joins: {}, leaves: {} };
      const mutations: Mutation[] = [];
      let bytes = 256;
      for (const op of ops) {
        const key = presenceKey(this.#topic, op.key, op.meta.phx_ref);
        const side = op.kind === "join" ? diff.joins : diff.leaves;
        (side[op.key] ??= { metas: [] }).metas.push(op.meta);
        const size = JSON.stringify(op.meta).length + op.key.length + 64;
        bytes += size * 2;
        if (op.kind === "join") {
          mutations.push({
            type: "set",
            key,
            value: this.#tracker.record(op.key, op.meta),
            expireIn: this.#tracker.ttlMs,
          });
        } else mutations.push({ type: "delete", key });
      }
      mutations.push({ type: "set", key: seqKey, value: seq, expireIn: SEQ_TTL_MS });
      mutations.push({
        type: "set",
        key: presenceLogKey(this.#topic, seq),
        value: diff,
        expireIn: this.#tracker.logTtlMs,
      });
      const r = await store.commit({ checks, mutations, bytes });
      if (r.ok) return { seq, versionstamp: r.versionstamp };
      // Another instance appended first: back off a little and retry on the new seq.
      await new Promise((resolve) =>
        setTimeout(resolve, Math.random() * Math.min(50, 2 ** attempt))
      );
    }
    throw new Error(`Cannot update presence of "${this.#topic}": the log stayed contended`);
  }
}

/** One topic's presence as this instance knows it, kept current from the log. */
export class PresenceView {
  readonly #tracker: PresenceTracker;
  readonly #topic: string;
  readonly #publish: (m: TopicMessage) => void;
  readonly #state = new Map<string, Map<string, PresenceMeta>>();
  /** Bumped on every change of `#state`; the caches below belong to one version. */
  #version = 0;
  /** Per key, its `"key":{"metas":[…]}` JSON; a key's entry is dropped when its metas change. */
  readonly #fragments = new Map<string, string>();
  #cacheVersion = -1;
  #listCache?: PresenceMap;
  #groupCache?: string[][];
  /** Encoded `presence_state` frames of the current version, by format and join_ref. */
  readonly #frames = new Map<string, string | Uint8Array>();
  /** The `presence_diff` frames that follow a split state, by format. */
  readonly #restFrames = new Map<WireFormat, (string | Uint8Array)[]>();
  /** Metas joined or left since the last `presence_diff`, by `key\0phx_ref`. */
  readonly #touched = new Map<string, { key: string; meta: PresenceMeta }>();
  #diffTimer?: TimerId;
  #lastSeq = 0;
  #chain: Promise<void> = Promise.resolve();
  #queued: Promise<void> | null = null;
  #unwatch?: () => void;
  #sweepTimer?: TimerId;
  #stopped = false;
  #loaded = false;

  constructor(tracker: PresenceTracker, topic: string, publish: (m: TopicMessage) => void) {
    this.#tracker = tracker;
    this.#topic = topic;
    this.#publish = publish;
  }

  /** The last log seq applied. */
  get seq(): number {
    return this.#lastSeq;
  }

  /** Increases on every change of the state (for caches of what {@linkcode list} returns). */
  get version(): number {
    return this.#version;
  }

  /** Loads the state and starts following the log. */
  async start(): Promise<void> {
    await this.catchUp();
    if (this.#stopped) return;
    this.#unwatch = this.#tracker.watchHub.subscribe(
      presenceSeqKey(this.#topic),
      () => void this.catchUp().catch(() => {}),
    );
    this.#armSweep();
  }

  /**
   * The `presence_state` payload: every live meta by key. The object is shared by every caller
   * until the state changes: never mutate it.
   */
  list(): PresenceMap {
    this.#sync();
    return this.#listCache ??= this.#subset(this.#state.keys());
  }

  /**
   * The frames that bring a socket that just joined to the current state: the `presence_state`
   * push `[join_ref, null, topic, "presence_state", …]` with the whole list, or, when the state is
   * bigger than `stateMaxBytes`, with its first keys and then `presence_diff` broadcasts joining
   * the rest (see {@linkcode PresenceOptions.stateMaxBytes}). Sockets joining between two changes
   * of the state share the encodings (never mutate them): the state frame per join_ref, the diff
   * frames for all.
   */
  stateFrames(joinRef: string | null, format: WireFormat): (string | Uint8Array)[] {
    this.#sync();
    const groups = this.#groups();
    const id = joinRef === null ? format : `${format}:${joinRef}`;
    let first = this.#frames.get(id);
    if (first === undefined) {
      first = format === "protobuf"
        ? encodeEnvelope(push(joinRef, this.#topic, "presence_state", this.#subset(groups[0])))
        : `[${JSON.stringify(joinRef)},null,${JSON.stringify(this.#topic)},"presence_state",{${
          groups[0].map((key) => this.#fragment(key)).join(",")
        }}]`;
      if (this.#frames.size >= MAX_CACHED_FRAMES) this.#frames.clear();
      this.#frames.set(id, first);
    }
    if (groups.length === 1) return [first];
    let rest = this.#restFrames.get(format);
    if (rest === undefined) {
      rest = groups.slice(1).map((keys) =>
        format === "protobuf"
          ? encodeEnvelope(
            push(null, this.#topic, "presence_diff", { joins: this.#subset(keys), leaves: {} }),
          )
          : `[null,null,${JSON.stringify(this.#topic)},"presence_diff",{"joins":{${
            keys.map((key) => this.#fragment(key)).join(",")
          }},"leaves":{}}]`
      );
      this.#restFrames.set(format, rest);
    }
    return [first, ...rest];
  }

  /** `"key":{"metas":[…]}`, reused until the key's metas change. */
  #fragment(key: string): string {
    let part = this.#fragments.get(key);
    if (part === undefined) {
      const metas = [...(this.#state.get(key)?.values() ?? [])];
      part = `${JSON.stringify(key)}:${JSON.stringify({ metas })}`;
      this.#fragments.set(key, part);
    }
    return part;
  }

  /** The keys in runs whose fragments fit `stateMaxBytes` (always at least one run). */
  #groups(): string[][] {
    if (this.#groupCache) return this.#groupCache;
    const max = this.#tracker.stateMaxBytes;
    if (max === Infinity) return this.#groupCache = [[...this.#state.keys()]];
    const groups: string[][] = [[]];
    let bytes = 0;
    for (const key of this.#state.keys()) {
      const size = utf8Bytes(this.#fragment(key)) + 1;
      if (bytes + size > max && groups[groups.length - 1].length > 0) {
        groups.push([]);
        bytes = 0;
      }
      groups[groups.length - 1].push(key);
      bytes += size;
    }
    return this.#groupCache = groups;
  }

  /** A null-prototype `{key: {metas}}` of some keys (so `__proto__` is an ordinary key). */
  #subset(keys: Iterable<string>): PresenceMap {
    const out = Object.create(null) as PresenceMap;
    for (const key of keys) out[key] = { metas: [...(this.#state.get(key)?.values() ?? [])] };
    return out;
  }

  /** Drops the caches of an older version. */
  #sync(): void {
    if (this.#cacheVersion === this.#version) return;
    this.#cacheVersion = this.#version;
    this.#listCache = undefined;
    this.#groupCache = undefined;
    this.#frames.clear();
    this.#restFrames.clear();
  }

  /**
   * Applies the log up to its current end. Calls coalesce: at most one runs and one waits, and a
   * caller returns once a pass that started after its call is done (so it saw every commit before).
   */
  catchUp(): Promise<void> {
    if (this.#queued) return this.#queued;
    const next = this.#chain.then(() => {
      this.#queued = null;
      return this.#pass();
    });
    this.#queued = next;
    this.#chain = next.catch(() => {});
    return next;
  }

  /** Stops following the topic. */
  stop(): void {
    this.#stopped = true;
    this.#unwatch?.();
    const clock = this.#tracker.clock;
    if (this.#sweepTimer !== undefined) clock.clearTimeout(this.#sweepTimer);
    if (this.#diffTimer !== undefined) clock.clearTimeout(this.#diffTimer);
    this.#diffTimer = undefined;
    this.#touched.clear();
    this.#tracker.dropView(this);
  }

  /**
   * Sends what changed since the last `presence_diff` now, instead of at the end of the window
   * (a no-op when nothing did).
   */
  flushDiff(): void {
    if (this.#diffTimer !== undefined) this.#tracker.clock.clearTimeout(this.#diffTimer);
    this.#diffTimer = undefined;
    if (this.#stopped || this.#touched.size === 0) return;
    // Each touched meta goes out once: in `joins` when it is present now, else in `leaves`
    // (with the meta the clients hold, so the same phx_ref). Clients apply joins before leaves
    // and both are idempotent per phx_ref, so this merged diff leaves them where the diffs one
    // by one would have: a meta that joined and left meanwhile is only a (harmless) leave, which
    // a socket that got a presence_state in between needs. Split by bytes (a socket's transport
    // keeps a buffer as big as the largest frame it was sent): every join frame before any leave
    // frame, so a key whose meta was replaced never looks empty in between, and each key's metas
    // in one frame, so a key is never half joined or half left.
    const joins = new Map<string, PresenceMeta[]>();
    const leaves = new Map<string, PresenceMeta[]>();
    for (const { key, meta } of this.#touched.values()) {
      const now = this.#state.get(key)?.get(meta.phx_ref);
      const side = now ? joins : leaves;
      let metas = side.get(key);
      if (!metas) side.set(key, metas = []);
      metas.push(now ?? meta);
    }
    this.#touched.clear();
    const max = this.#tracker.diffMaxBytes;
    const sized = (byKey: Map<string, PresenceMeta[]>) =>
      [...byKey].map(([key, metas]) => ({
        key,
        metas,
        bytes: utf8Bytes(key) + utf8Bytes(JSON.stringify(metas)) + 16,
      }));
    const joined = sized(joins);
    const left = sized(leaves);
    const total = [...joined, ...left].reduce((sum, e) => sum + e.bytes, 0);
    if (total <= max) {
      // The usual case: one diff, as Phoenix sends it.
      const diff: PresenceDiff = { joins: {}, leaves: {} };
      for (const e of joined) diff.joins[e.key] = { metas: e.metas };
      for (const e of left) diff.leaves[e.key] = { metas: e.metas };
      this.#publish({ event: "presence_diff", payload: { ...diff } });
      return;
    }
    for (const [side, entries] of [["joins", joined], ["leaves", left]] as const) {
      let part: PresenceMap = {};
      let bytes = 0;
      const send = () => {
        const diff: PresenceDiff = { joins: {}, leaves: {} };
        diff[side] = part;
        this.#publish({ event: "presence_diff", payload: { ...diff } });
      };
      for (const e of entries) {
        if (bytes > 0 && bytes + e.bytes > max) {
          send();
          part = {};
          bytes = 0;
        }
        part[e.key] = { metas: e.metas };
        bytes += e.bytes;
      }
      if (bytes > 0) send();
    }
  }

  /** Notes a change for the next `presence_diff`, sent after the diff window. */
  #touch(key: string, meta: PresenceMeta): void {
    this.#touched.set(`${key}\u0000${meta.phx_ref}`, { key, meta });
    this.#fragments.delete(key);
    this.#version++;
  }

  /** Arms the diff window after changes (or sends at once when there is no window). */
  #scheduleDiff(): void {
    if (this.#touched.size === 0 || this.#diffTimer !== undefined || this.#stopped) return;
    const ms = this.#tracker.diffMs;
    if (ms <= 0) return this.flushDiff();
    this.#diffTimer = this.#tracker.clock.setTimeout(() => {
      this.#diffTimer = undefined;
      this.flushDiff();
    }, ms);
  }

  async #pass(): Promise<void> {
    if (this.#stopped) return;
    const { store } = this.#tracker;
    const end = (await store.get<number>(presenceSeqKey(this.#topic))).value ?? 0;
    if (end === this.#lastSeq && this.#loaded) return;
    if (end < this.#lastSeq || !this.#loaded) return this.#resync(end);
    let expect = this.#lastSeq + 1;
    const iter = store.list<PresenceDiff>({
      start: presenceLogKey(this.#topic, expect),
      end: presenceLogKey(this.#topic, end + 1),
    });
    try {
      for await (const entry of iter) {
        if (this.#stopped) return;
        if (entry.key[2] !== expect) return await this.#resync(end); // expired part of the log
        this.#apply(entry.value);
        this.#lastSeq = expect++;
        // Without a window, one diff per log entry, as it is applied.
        if (this.#tracker.diffMs <= 0) this.flushDiff();
      }
      if (expect !== end + 1) return await this.#resync(end);
    } finally {
      this.#scheduleDiff();
    }
  }

  #apply(diff: PresenceDiff): void {
    for (const [key, { metas }] of Object.entries(diff.joins)) {
      let current = this.#state.get(key);
      if (!current) this.#state.set(key, current = new Map());
      for (const meta of metas) {
        current.set(meta.phx_ref, meta);
        this.#touch(key, meta);
      }
    }
    for (const [key, { metas }] of Object.entries(diff.leaves)) {
      const current = this.#state.get(key);
      if (!current) continue;
      for (const meta of metas) {
        const held = current.get(meta.phx_ref);
        if (!held) continue;
        current.delete(meta.phx_ref);
        this.#touch(key, held);
      }
      if (current.size === 0) this.#state.delete(key);
    }
  }

  /** Reloads the entries and broadcasts the difference from what this view held. */
  async #resync(end: number): Promise<void> {
    const { store, clock } = this.#tracker;
    const now = clock.now();
    const fresh = new Map<string, Map<string, PresenceMeta>>();
    for await (const entry of store.list<StoredPresence>({ prefix: presencePrefix(this.#topic) })) {
      const { key, meta, exp } = entry.value;
      if (exp <= now) continue;
      let metas = fresh.get(key);
      if (!metas) fresh.set(key, metas = new Map());
      metas.set(meta.phx_ref, meta);
    }
    if (this.#stopped) return;
    const initial = !this.#loaded;
    const changed: [string, PresenceMeta][] = [];
    for (const [key, metas] of fresh) {
      for (const [ref, meta] of metas) {
        if (!this.#state.get(key)?.has(ref)) changed.push([key, meta]);
      }
    }
    for (const [key, metas] of this.#state) {
      for (const [ref, meta] of metas) {
        if (!fresh.get(key)?.has(ref)) changed.push([key, meta]);
      }
    }
    this.#state.clear();
    for (const [key, metas] of fresh) this.#state.set(key, metas);
    this.#fragments.clear();
    this.#version++;
    this.#lastSeq = end;
    this.#loaded = true;
    if (initial) return; // the first load is sent as presence_state, not as a diff
    for (const [key, meta] of changed) this.#touch(key, meta);
    this.#scheduleDiff();
  }

  #armSweep(): void {
    if (this.#stopped) return;
    const every = Math.max(10, Math.floor(this.#tracker.ttlMs / 2));
    this.#sweepTimer = this.#tracker.clock.setTimeout(() => {
      this.#sweepTimer = undefined;
      this.#sweep().catch(() => {}).finally(() => this.#armSweep());
    }, every);
  }

  /** Removes entries past their expiry (their instance stopped refreshing them). */
  async #sweep(): Promise<void> {
    const { store, clock } = this.#tracker;
    const now = clock.now();
    const dead: Promise<unknown>[] = [];
    for await (const entry of store.list<StoredPresence>({ prefix: presencePrefix(this.#topic) })) {
      if (this.#stopped) return;
      if (entry.value.exp <= now && !this.#tracker.owns(this.#topic, entry.value.meta.phx_ref)) {
        dead.push(this.#tracker.sweep(this.#topic, entry.value.key, entry.value.meta));
      }
    }
    await Promise.allSettled(dead);
  }
}

function ownId(topic: string, ref: string): string {
  return `${topic}\u0000${ref}`;
}

async function getAll(store: Store, keys: Deno.KvKey[]): Promise<Deno.KvEntryMaybe<unknown>[]> {
  const out: Deno.KvEntryMaybe<unknown>[] = [];
  for (let i = 0; i < keys.length; i += 10) out.push(...await store.getMany(keys.slice(i, i + 10)));
  return out;
}
