/**
 * This instance's presence: every meta it tracks is one KV entry `presenceKey(topic, key,
 * phx_ref)` with `expireIn` and an `exp` time, rewritten by this instance every `ttlMs / 3` so that
 * a dead instance's presence vanishes within the TTL. Joins and leaves go through the change log
 * (`log_writer.ts`); each topic with sockets here gets a view (`view.ts`).
 * @module
 */
import { type Clock, monotonic, type TimerId } from "../../clock.ts";
import { log } from "../../log.ts";
import type { Store } from "../../storage/store.ts";
import type { WatchHub } from "../../storage/watch.ts";
import { presenceKey } from "../../storage/keys.ts";
import type { TopicMessage } from "../topics.ts";
import { ownId, type OwnMeta, type PresenceContext, storedRecord } from "./_context.ts";
import { appendToLog } from "./log_writer.ts";
import { type PresenceMeta, randomRef } from "./meta.ts";
import { PresenceView } from "./view.ts";

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
  /**
   * Above this many members (presence keys) a topic sends counts instead of lists: a joiner gets
   * a `presence_stats` push `{"count"}` instead of the whole `presence_state`, and changes go out
   * as one `presence_stats` per diff window instead of `presence_diff`s. Lists cost every member
   * O(members) bytes per join, so a join storm of N costs O(N²); counts cost O(N). When the topic
   * shrinks to 80% of the bound, every member gets the whole `presence_state` again and diffs
   * resume, exact for the phoenix client's `Presence`. Default 200; `Infinity`: always lists.
   */
  listMax?: number;
  /**
   * Above `listMax`, the least time between two `presence_stats` broadcasts of a topic (each goes
   * to every member: at a live event, a count 20 times a second to thousands of sockets is most of
   * the server's work while they join). A joiner still gets the current count at once. Default
   * 500 ms; 0: at the end of every diff window where the count moved.
   */
  statsMs?: number;
  /**
   * Most `presence_stats` frames a second one topic sends from this instance: a topic with more
   * members than this many per `statsMs` sends its count less often (20,000 members at the default
   * 10,000: one count every 2 s), so the counts of a very large audience stay a bounded share of
   * the instance's work. Default 10,000.
   */
  statsFramesPerSecond?: number;
}

/** Members above which a topic sends counts instead of lists (see `PresenceOptions.listMax`). */
export const DEFAULT_LIST_MAX = 200;

/** Least time between two `presence_stats` broadcasts (see `PresenceOptions.statsMs`). */
export const DEFAULT_STATS_MS = 500;

/** Most `presence_stats` frames a second per topic (see `PresenceOptions.statsFramesPerSecond`). */
export const DEFAULT_STATS_FRAMES_PER_SECOND = 10_000;

/**
 * This instance's presence: tracks its sockets' metas in KV, keeps them refreshed, and keeps one
 * view per topic, so presence is shared by every instance on the KV and outlives none of them
 * by more than the TTL.
 */
export class PresenceTracker {
  readonly #ctx: PresenceContext;
  /** Entries whose last write failed, retried first on the next tick. */
  readonly #retry = new Set<OwnMeta>();
  /** Rewrites failed since the last tick, reported (once) by the next one. */
  #failed = 0;
  #failure: unknown;
  #refreshTimer?: TimerId;
  #closed = false;

  /** A tracker for this instance; nothing is written until a socket is tracked. */
  constructor(options: PresenceOptions) {
    this.#ctx = {
      store: options.store,
      watch: options.watch,
      clock: options.clock,
      instanceId: options.instanceId,
      ttlMs: options.ttlMs ?? 30_000,
      logTtlMs: options.logTtlMs ?? 600_000,
      diffMs: options.diffMs ?? 50,
      diffMaxBytes: Math.max(256, options.diffMaxBytes ?? 4096),
      stateMaxBytes: Math.max(256, options.stateMaxBytes ?? Infinity),
      listMax: Math.max(1, options.listMax ?? DEFAULT_LIST_MAX),
      statsMs: Math.max(0, options.statsMs ?? DEFAULT_STATS_MS),
      statsFramesPerSecond: Math.max(
        1,
        options.statsFramesPerSecond ?? DEFAULT_STATS_FRAMES_PER_SECOND,
      ),
      own: new Map(),
      writers: new Map(),
      views: new Set(),
    };
  }

  /** The entry TTL in ms: how long a dead instance's presence stays listed at most. */
  get ttlMs(): number {
    return this.#ctx.ttlMs;
  }

  /** Metas tracked by this instance (for system stats). */
  get tracked(): number {
    return this.#ctx.own.size;
  }

  /** The storage presence is kept in (for diagnostics; tests wrap its `commit`). */
  get store(): Store {
    return this.#ctx.store;
  }

  /**
   * Tracks a meta for `key` on `topic` and logs the join, so every instance's view lists it.
   * @returns the meta (with its new `phx_ref`) and the log seq of the join
   */
  async track(
    topic: string,
    key: string,
    fields: Record<string, unknown> = {},
  ): Promise<{ meta: PresenceMeta; seq: number }> {
    const ctx = this.#ctx;
    const meta: PresenceMeta = { ...fields, phx_ref: randomRef(), online_at: ctx.clock.now() };
    const id = ownId(topic, meta.phx_ref);
    const own: OwnMeta = {
      topic,
      key,
      meta,
      versionstamp: null,
      // Its first rewrite comes at a random point of the first interval, so the rewrites of a
      // join storm are spread from the start.
      refreshedAt: monotonic(ctx.clock) - Math.random() * this.#refreshEveryMs,
      busy: true,
    };
    ctx.own.set(id, own);
    this.#armRefresh();
    try {
      const r = await appendToLog(ctx, { topic, kind: "join", key, meta });
      own.versionstamp = r.versionstamp;
      return { meta, seq: r.seq };
    } catch (e) {
      ctx.own.delete(id); // the caller holds no meta to untrack
      throw e;
    } finally {
      own.busy = false;
    }
  }

  /** Removes a meta tracked by {@linkcode track} and logs the leave, so every view drops it. */
  async untrack(topic: string, key: string, meta: PresenceMeta): Promise<void> {
    if (!this.#ctx.own.delete(ownId(topic, meta.phx_ref))) return;
    await appendToLog(this.#ctx, { topic, kind: "leave", key, meta });
  }

  /**
   * Opens the view of `topic`: loads its state, then publishes every change as `presence_diff`,
   * so the topic's sockets here follow presence from every instance.
   * @returns the view (call `stop()` when the topic's last socket here leaves)
   */
  async view(topic: string, publish: (m: TopicMessage) => void): Promise<PresenceView> {
    const view = new PresenceView(this.#ctx, topic, { publish });
    this.#ctx.views.add(view);
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
    const ctx = this.#ctx;
    if (this.#refreshTimer !== undefined) ctx.clock.clearTimeout(this.#refreshTimer);
    const own = [...ctx.own.values()];
    ctx.own.clear();
    if (options.untrack !== false) {
      const results = await Promise.allSettled(
        own.map((o) =>
          appendToLog(ctx, { topic: o.topic, kind: "leave", key: o.key, meta: o.meta })
        ),
      );
      const failed = results.filter((r) => r.status === "rejected");
      if (failed.length) {
        log.warn("presence leaves failed on close; those metas stay listed until their TTL", {
          error: failed[0].reason,
          failed: failed.length,
        });
      }
    }
    for (const view of ctx.views) view.stop();
    ctx.views.clear();
  }

  /** How often an entry is rewritten: a third of the TTL, so two refreshes may fail in a row. */
  get #refreshEveryMs(): number {
    return Math.max(10, Math.floor(this.#ctx.ttlMs / 3));
  }

  /** The refresh timer's period: a tenth of the refresh interval. */
  get #tickMs(): number {
    return Math.max(10, Math.floor(this.#refreshEveryMs / 10));
  }

  #armRefresh(): void {
    if (this.#refreshTimer !== undefined || this.#closed) return;
    // A fixed cadence: a tick does not wait for the writes of the one before.
    this.#refreshTimer = this.#ctx.clock.setTimeout(() => {
      this.#refreshTimer = undefined;
      this.#refresh();
      if (this.#ctx.own.size) this.#armRefresh();
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
    this.#reportFailures();
    const own = this.#ctx.own;
    const now = monotonic(this.#ctx.clock);
    const every = this.#refreshEveryMs;
    const due = now - every;
    const overdue = now - 2 * every;
    const limit = Math.ceil(own.size * this.#tickMs / every);
    const batch = new Set<OwnMeta>();
    for (const entry of this.#retry) {
      if (!entry.busy && own.has(ownId(entry.topic, entry.meta.phx_ref))) batch.add(entry);
    }
    this.#retry.clear();
    let paced = 0;
    for (const entry of own.values()) {
      if (entry.busy || entry.refreshedAt > due || batch.has(entry)) continue;
      if (entry.refreshedAt <= overdue) batch.add(entry);
      else if (paced < limit) {
        batch.add(entry);
        paced++;
      }
    }
    for (const entry of batch) {
      entry.refreshedAt = now;
      entry.busy = true;
      this.#rewrite(entry)
        .catch((error) => {
          // KV failed: try again next tick, which reports the failures of this one.
          this.#retry.add(entry);
          this.#failed++;
          this.#failure = error;
        })
        .finally(() => entry.busy = false);
    }
  }

  /**
   * Logs the rewrites that failed since the last tick, once per tick rather than once per entry
   * (in a KV outage every entry fails): retried now, but an entry not rewritten within the TTL
   * expires and is swept from presence everywhere until it is joined again.
   */
  #reportFailures(): void {
    if (this.#failed === 0) return;
    log.warn("presence refresh failed; retrying (entries not rewritten within the TTL expire)", {
      error: this.#failure,
      failed: this.#failed,
      ttlMs: this.#ctx.ttlMs,
    });
    this.#failed = 0;
    this.#failure = undefined;
  }

  /** Writes one entry again; one that was swept as dead (or never landed) is joined again. */
  async #rewrite(own: OwnMeta): Promise<void> {
    const ctx = this.#ctx;
    if (own.versionstamp !== null) {
      const key = presenceKey(own.topic, own.key, own.meta.phx_ref);
      const r = await ctx.store.commit({
        checks: [{ key, versionstamp: own.versionstamp }],
        mutations: [{ type: "set", key, value: storedRecord(ctx, own), expireIn: ctx.ttlMs }],
        bytes: 512,
      });
      if (r.ok) {
        own.versionstamp = r.versionstamp;
        return;
      }
      own.versionstamp = null; // swept as dead (this instance was too slow)
    }
    if (ctx.own.get(ownId(own.topic, own.meta.phx_ref)) !== own || this.#closed) return;
    // The socket is alive: join again.
    const again = await appendToLog(ctx, {
      topic: own.topic,
      kind: "join",
      key: own.key,
      meta: own.meta,
    });
    own.versionstamp = again.versionstamp;
  }
}
