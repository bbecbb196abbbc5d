/**
 * The state the tracker, its log writers and its views share (private to `realtime/presence/`).
 * One plain object made by the tracker and handed to each, so a view reads settings, storage and
 * which metas this instance owns from it instead of reaching into the tracker.
 * @module
 */
import type { Clock } from "../../clock.ts";
import type { Store } from "../../storage/store.ts";
import type { WatchHub } from "../../storage/watch.ts";
import type { PresenceMeta } from "./meta.ts";

/** A presence KV entry `presenceKey(topic, key, phx_ref)`: one meta with its expiry and owner. */
export interface StoredPresence {
  /** The presence key (user id or socket id). */
  key: string;
  /** The meta clients see. */
  meta: PresenceMeta;
  /** Expiry (ms since epoch) unless refreshed. */
  exp: number;
  /** The instance that owns the socket. */
  inst: string;
}

/** A meta this instance tracks and keeps refreshing. */
export interface OwnMeta {
  /** Its topic. */
  topic: string;
  /** Its presence key. */
  key: string;
  /** The meta as tracked. */
  meta: PresenceMeta;
  /** Of its KV entry as last written; null when the entry is gone (swept) or not written yet. */
  versionstamp: string | null;
  /** When its entry was last written, on the clock's monotonic time. */
  refreshedAt: number;
  /** A write of its entry (join, refresh or re-join) is in flight. */
  busy: boolean;
}

/** What a change-log append does to its meta's entry. */
export type LogOpKind = "join" | "leave" | "sweep";

/** One change for a topic's log: a join, a leave, or the removal of a dead instance's meta. */
export interface LogOp {
  /** The topic whose log it goes to. */
  topic: string;
  /** join: write the entry; leave: delete it; sweep: delete it if it is still expired. */
  kind: LogOpKind;
  /** The presence key. */
  key: string;
  /** The meta. */
  meta: PresenceMeta;
}

/** Where a log append landed. */
export interface Committed {
  /** The log seq of the entry (the current seq when a batch of sweeps had nothing left to do). */
  seq: number;
  /** Of the commit, or null when nothing was written. */
  versionstamp: string | null;
}

/** A queued {@linkcode LogOp} with the callbacks of the promise that waits for it. */
export interface PendingOp extends LogOp {
  /** Resolves the append. */
  done: (r: Committed) => void;
  /** Rejects the append. */
  fail: (e: unknown) => void;
}

/** The serial queue of one topic's log appends on this instance (see `log_writer.ts`). */
export interface TopicLogQueue {
  /** Queues an append; it is committed in order, in a batch with those queued meanwhile. */
  push(op: PendingOp): void;
}

/** Settings, storage and shared registries of one tracker. */
export interface PresenceContext {
  /** Storage. */
  readonly store: Store;
  /** Watch fan-in (the sequence keys). */
  readonly watch: WatchHub;
  /** Time source for `online_at`, expiry and every timer. */
  readonly clock: Clock;
  /** This instance's id, stored with its entries. */
  readonly instanceId: string;
  /** How long an entry outlives its last refresh. */
  readonly ttlMs: number;
  /** How long change-log entries are kept. */
  readonly logTtlMs: number;
  /** The `presence_diff` window; 0: one diff per log entry. */
  readonly diffMs: number;
  /** About the most bytes in one `presence_diff` frame. */
  readonly diffMaxBytes: number;
  /** About the most bytes in one `presence_state` frame (Infinity: no limit). */
  readonly stateMaxBytes: number;
  /** Members above which the topic sends counts instead of lists (`PresenceOptions.listMax`). */
  readonly listMax: number;
  /** Least time between two `presence_stats` broadcasts (`PresenceOptions.statsMs`). */
  readonly statsMs: number;
  /** Most `presence_stats` frames a second per topic (`PresenceOptions.statsFramesPerSecond`). */
  readonly statsFramesPerSecond: number;
  /**
   * The metas this instance tracks, by {@linkcode ownId}. Written by the tracker only; a view's
   * sweep reads it so it never removes a meta this instance is still refreshing.
   */
  readonly own: Map<string, OwnMeta>;
  /** Per topic, the queue its log appends go through (removed when it runs empty). */
  readonly writers: Map<string, TopicLogQueue>;
  /** The open views; each removes itself when stopped, the tracker stops the rest on close. */
  readonly views: Set<{ stop(): void }>;
}

/** The id of a meta in {@linkcode PresenceContext.own}: its topic and `phx_ref`. */
export function ownId(topic: string, ref: string): string {
  return `${topic}\u0000${ref}`;
}

/** The KV record of a meta, expiring one TTL from now, so a dead owner's entry runs out. */
export function storedRecord(
  ctx: PresenceContext,
  entry: { key: string; meta: PresenceMeta },
): StoredPresence {
  return {
    key: entry.key,
    meta: entry.meta,
    exp: ctx.clock.now() + ctx.ttlMs,
    inst: ctx.instanceId,
  };
}
