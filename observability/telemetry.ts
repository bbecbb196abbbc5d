/**
 * Telemetry events for embedding programs, on `node:diagnostics_channel`: subscribe to a channel
 * by name and receive one message per event, with measurements (durations in ms, sizes, counts)
 * and metadata (kind, id, topic, …). A channel without subscribers costs a property read: every
 * publisher checks `hasSubscribers` before it builds a message.
 *
 * Messages are published synchronously on the code path of the event: a subscriber must be quick
 * and must not throw (a throw is reported as an uncaught error by `diagnostics_channel`).
 * @module
 */
import diagnostics from "node:diagnostics_channel";

/**
 * The channel names, by event. Subscribe with `diagnostics_channel.subscribe(name, fn)` (or
 * `channel(name).subscribe(fn)`); each message is the event type named beside the channel.
 *
 * @example
 * ```ts
 * import diagnostics from "node:diagnostics_channel";
 * import { Chorus, type CommitEvent, TELEMETRY_CHANNELS } from "../mod.ts";
 * const onCommit = (message: unknown) => {
 *   const { intents, durationMs } = message as CommitEvent;
 *   console.log(`${intents} writes committed in ${durationMs.toFixed(1)} ms`);
 * };
 * diagnostics.subscribe(TELEMETRY_CHANNELS.commit, onCommit);
 * const chorus = await Chorus.open({ path: ":memory:" });
 * await chorus.kv.put("greeting", "hello");
 * await chorus.close();
 * diagnostics.unsubscribe(TELEMETRY_CHANNELS.commit, onCommit);
 * ```
 */
export const TELEMETRY_CHANNELS = {
  /** One KV read (`get` or `getMany`): {@linkcode KvReadEvent}. */
  kvRead: "chorus:kv.read",
  /** One atomic KV commit sent: {@linkcode KvWriteEvent}. */
  kvWrite: "chorus:kv.write",
  /** One group commit (the intents that queued together): {@linkcode CommitEvent}. */
  commit: "chorus:commit",
  /** An actor loaded its state: {@linkcode ActorStartEvent}. */
  actorStart: "chorus:actor.start",
  /** An actor's load failed (the next message retries it): {@linkcode ActorStartFailedEvent}. */
  actorStartFailed: "chorus:actor.start_failed",
  /** An idle actor left memory: {@linkcode ActorEvictEvent}. */
  actorEvict: "chorus:actor.evict",
  /** A WebSocket was accepted: {@linkcode SocketConnectEvent}. */
  socketConnect: "chorus:socket.connect",
  /** A socket joined a topic: {@linkcode SocketJoinEvent}. */
  socketJoin: "chorus:socket.join",
  /** A socket left a topic it had joined (or closed while joined): {@linkcode SocketLeaveEvent}. */
  socketLeave: "chorus:socket.leave",
  /** A WebSocket closed, by either side: {@linkcode SocketDropEvent}. */
  socketDrop: "chorus:socket.drop",
  /** This instance tracked or untracked a socket's presence: {@linkcode PresenceEvent}. */
  presence: "chorus:presence",
  /** A context cleanup pass ran on this instance: {@linkcode CleanupEvent}. */
  cleanup: "chorus:cleanup",
  /** A backup was created, verified or restored: {@linkcode BackupEvent}. */
  backup: "chorus:backup",
  /** The instance's figures, every few seconds while subscribed: {@linkcode StatusEvent}. */
  status: "chorus:status",
} as const;

/** A channel name of {@linkcode TELEMETRY_CHANNELS}. */
export type TelemetryChannel = typeof TELEMETRY_CHANNELS[keyof typeof TELEMETRY_CHANNELS];

/** `chorus:kv.read`: one read sent to KV. */
export interface KvReadEvent {
  /** `get` (one key) or `getMany` (up to 10 at one point in time). */
  op: "get" | "getMany";
  /** The keys read. */
  keys: Deno.KvKey[];
  /** The consistency asked of KV. */
  consistency: "strong" | "eventual";
  /** How long KV took, in ms (busy retries included). */
  durationMs: number;
  /** False when the read failed (then `error` says why). */
  ok: boolean;
  /** The failure, when `ok` is false. */
  error?: unknown;
}

/** `chorus:kv.write`: one atomic commit sent to KV. */
export interface KvWriteEvent {
  /** Intents combined in it (1 when sent alone). */
  intents: number;
  /** Versionstamp checks. */
  checks: number;
  /** Mutations (sets, deletes, sums). */
  mutations: number;
  /** Estimated bytes of keys and values. */
  bytes: number;
  /** How long KV took, in ms (busy retries included). */
  durationMs: number;
  /** True when KV wrote it; false when a check failed or the commit threw (see `error`). */
  ok: boolean;
  /** The failure, when the commit threw. */
  error?: unknown;
}

/** `chorus:commit`: one group commit — the intents that queued while the previous one ran. */
export interface CommitEvent {
  /** Intents in the group. */
  intents: number;
  /** Atomic KV commits it took: 1, or more after a failed combined commit was split. */
  commits: number;
  /** Retries: commits beyond the first. */
  retries: number;
  /** Intents whose checks failed (their actors reload and try again). */
  conflicts: number;
  /** Mutations in the group. */
  mutations: number;
  /** Estimated bytes of keys and values in the group. */
  bytes: number;
  /** From the first commit sent to the last answer, in ms. */
  durationMs: number;
  /** Intents still queued behind this group. */
  queued: number;
}

/** `chorus:actor.start`: an actor loaded its state from KV. */
export interface ActorStartEvent {
  /** The actor kind: `kv`, `context`, `reel`, `user`. */
  kind: string;
  /** Its id within the kind. */
  id: string;
  /** How long the load took, in ms. */
  durationMs: number;
}

/** `chorus:actor.start_failed`: an actor's load failed; the next message retries it. */
export interface ActorStartFailedEvent extends ActorStartEvent {
  /** Why. */
  error: unknown;
}

/** `chorus:actor.evict`: an idle actor left memory. */
export interface ActorEvictEvent {
  /** The actor kind. */
  kind: string;
  /** Its id within the kind. */
  id: string;
  /** How long it had been unused, in ms. */
  idleMs: number;
}

/** `chorus:socket.connect`: a WebSocket was accepted. */
export interface SocketConnectEvent {
  /** The socket's id (a ULID). */
  socketId: string;
  /** The user it acts for, when known. */
  userId: string | null;
  /** Its wire format. */
  format: "json" | "protobuf";
}

/** `chorus:socket.join`: a socket joined a topic (accepted, replied and caught up: it is live). */
export interface SocketJoinEvent {
  /** The socket's id. */
  socketId: string;
  /** The topic (`kv:cart:42`). */
  topic: string;
}

/** `chorus:socket.leave`: a socket left a topic it had joined, or closed while joined. */
export interface SocketLeaveEvent {
  /** The socket's id. */
  socketId: string;
  /** The topic. */
  topic: string;
}

/** `chorus:socket.drop`: a WebSocket closed, whichever side closed it. */
export interface SocketDropEvent {
  /** The socket's id. */
  socketId: string;
  /** The close code (1000 normal, 1001 going away, 1006 abnormal, 1013 slow consumer, …). */
  code: number;
  /** The close reason, when one was given. */
  reason: string;
  /** How long the socket was open, in ms. */
  durationMs: number;
}

/** `chorus:presence`: this instance tracked (join) or untracked (leave) a socket's presence. */
export interface PresenceEvent {
  /** `join` (tracked) or `leave` (untracked). */
  action: "join" | "leave";
  /** The topic. */
  topic: string;
  /** The presence key (the user, else the socket id). */
  key: string;
  /** How long the presence log write took, in ms. */
  durationMs: number;
}

/** `chorus:cleanup`: one context cleanup pass on this instance. */
export interface CleanupEvent {
  /** Expired contexts removed. */
  contexts: number;
  /** Delta-log entries removed. */
  deltas: number;
  /** KV entries examined. */
  scanned: number;
  /** The most entries the pass could remove. */
  limit: number;
  /** How long it took, in ms. */
  durationMs: number;
}

/** `chorus:backup`: a backup was created, verified or restored. */
export interface BackupEvent {
  /** What was done. */
  action: "create" | "verify" | "restore";
  /** Entries written into the backup, found in it, or restored from it. */
  entries: number;
  /** Bytes of the backup (gzip), when known (created or restored from bytes). */
  bytes: number | null;
  /** How long it took, in ms. */
  durationMs: number;
  /** False when a verify found the backup bad or a restore failed. */
  ok: boolean;
  /** Why not, when `ok` is false. */
  reason?: string;
}

/** `chorus:status`: the instance's figures (as `GET /api/v1/system/stats`), sent periodically. */
export interface StatusEvent {
  /** The instance's id. */
  instance: string;
  /** When the figures were read (ms since the epoch). */
  at: number;
  /** The figures: sockets, topics, messages, rates, actors, KV, memory, compression, … */
  figures: Record<string, unknown>;
}

/** The channels, made once (a `diagnostics_channel` channel is looked up by name). */
export const telemetry = {
  kvRead: diagnostics.channel(TELEMETRY_CHANNELS.kvRead),
  kvWrite: diagnostics.channel(TELEMETRY_CHANNELS.kvWrite),
  commit: diagnostics.channel(TELEMETRY_CHANNELS.commit),
  actorStart: diagnostics.channel(TELEMETRY_CHANNELS.actorStart),
  actorStartFailed: diagnostics.channel(TELEMETRY_CHANNELS.actorStartFailed),
  actorEvict: diagnostics.channel(TELEMETRY_CHANNELS.actorEvict),
  socketConnect: diagnostics.channel(TELEMETRY_CHANNELS.socketConnect),
  socketJoin: diagnostics.channel(TELEMETRY_CHANNELS.socketJoin),
  socketLeave: diagnostics.channel(TELEMETRY_CHANNELS.socketLeave),
  socketDrop: diagnostics.channel(TELEMETRY_CHANNELS.socketDrop),
  presence: diagnostics.channel(TELEMETRY_CHANNELS.presence),
  cleanup: diagnostics.channel(TELEMETRY_CHANNELS.cleanup),
  backup: diagnostics.channel(TELEMETRY_CHANNELS.backup),
  status: diagnostics.channel(TELEMETRY_CHANNELS.status),
};

/** Default interval of `chorus:status` (ms). */
export const STATUS_INTERVAL_MS = 10_000;
