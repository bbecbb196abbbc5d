/**
 * The KV key layout, in one place. Every key Chorus writes is built here, so the layout can be read
 * (and migrated) from a single file. Namespaces are short strings to keep keys small.
 * @module
 */

/** The head record of a kv key: its version, expiry and (inline or chunked) value. */
export function kvHeadKey(key: string): [string, string] {
  return ["kv", key];
}

/** The prefix under which all kv head records live (for listing). */
export const KV_HEAD_PREFIX = ["kv"] as const;

/** One chunk of a large kv value; chunks belong to one version and are immutable. */
export function kvChunkKey(key: string, version: number, index: number): [
  string,
  string,
  number,
  number,
] {
  return ["kv_chunk", key, version, index];
}

/** One entry of a kv key's change log, by version. */
export function kvLogKey(key: string, version: number): [string, string, number] {
  return ["kv_log", key, version];
}

/** The prefix of a kv key's change log. */
export function kvLogPrefix(key: string): [string, string] {
  return ["kv_log", key];
}

/** A live instance's heartbeat record. */
export function memberKey(id: string): [string, string] {
  return ["member", id];
}

/** An instance's watch-lag probe (see `WatchHub`); expires when the instance stops writing it. */
export function watchProbeKey(instanceId: string): [string, string] {
  return ["watch_probe", instanceId];
}

/** The prefix of all member heartbeat records. */
export const MEMBER_PREFIX = ["member"] as const;

/** One tracked presence on a socket topic: `(topic, presence key, phx_ref)`; expires unless refreshed. */
export function presenceKey(
  topic: string,
  key: string,
  ref: string,
): [string, string, string, string] {
  return ["presence", topic, key, ref];
}

/** The prefix of every presence entry of a socket topic (for listing its state). */
export function presencePrefix(topic: string): [string, string] {
  return ["presence", topic];
}

/** A topic's presence sequence number: the last entry of its presence change log (watched). */
export function presenceSeqKey(topic: string): [string, string] {
  return ["presence_seq", topic];
}

/** One entry of a topic's presence change log (`{joins, leaves}`), by sequence number. */
export function presenceLogKey(topic: string, seq: number): [string, string, number] {
  return ["presence_log", topic, seq];
}

/** The head record of a context: version, generation, retention bounds and the (inline) value. */
export function ctxHeadKey(id: string): [string, string] {
  return ["ctx", id];
}

/** The prefix under which all context head records live (for cleanup scans). */
export const CTX_HEAD_PREFIX = ["ctx"] as const;

/** One chunk of a large context value; chunks belong to one version and are immutable. */
export function ctxChunkKey(id: string, version: number, index: number): [
  string,
  string,
  number,
  number,
] {
  return ["ctx_chunk", id, version, index];
}

/** The chord delta that produced one version of a context (the delta log). */
export function ctxDeltaKey(id: string, version: number): [string, string, number] {
  return ["ctx_delta", id, version];
}

/** The prefix of a context's delta log. */
export function ctxDeltaPrefix(id: string): [string, string] {
  return ["ctx_delta", id];
}

/** The prefix of every context's delta log (for cleanup scans). */
export const CTX_DELTA_PREFIX = ["ctx_delta"] as const;

/** An exported context snapshot in the `kv` export provider's archive namespace. */
export function ctxArchiveKey(id: string): [string, string] {
  return ["ctx_archive", id];
}

/** One chunk of an archived snapshot. */
export function ctxArchiveChunkKey(id: string, index: number): [string, string, number] {
  return ["ctx_archive_chunk", id, index];
}

/** The context cleanup schedule (`interval_ms`, `limit`, `enabled`), shared by every instance. */
export const CLEANUP_SCHEDULE_KEY = ["admin", "cleanup_schedule"] as const;

/** When cleanup last ran and which instance ran it (claimed atomically, so one instance runs). */
export const CLEANUP_STATE_KEY = ["admin", "cleanup_state"] as const;

/** An API token's record (hash, scopes, prefix, expiry), by token id. */
export function tokenKey(id: string): [string, string] {
  return ["token", id];
}

/** The prefix of all token records (for listing). */
export const TOKEN_PREFIX = ["token"] as const;

/** Index from a token's SHA-256 hash (hex) to its id. */
export function tokenHashKey(hash: string): [string, string] {
  return ["token_hash", hash];
}

/** When a token was last used; kept apart from the record so use never conflicts with edits. */
export function tokenUsedKey(id: string): [string, string] {
  return ["token_used", id];
}

/** Marks that the first-start admin token was issued, so only one instance issues it. */
export const TOKEN_BOOTSTRAP_KEY = ["token_bootstrap"] as const;

/** A global rate-limit window counter for a principal (`CHORUS_RATE_LIMIT_SCOPE=global`). */
export function rateWindowKey(principal: string, window: number): [string, string, number] {
  return ["rate", principal, window];
}

/** The head record of a reel: seq, version, like/comment/share counters, log bounds. */
export function reelHeadKey(id: string): [string, string] {
  return ["reel", id];
}

/** One retained update of a reel, by its seq (the update log; trimmed like context deltas). */
export function reelLogKey(id: string, seq: number): [string, string, number] {
  return ["reel_log", id, seq];
}

/** The prefix of a reel's update log. */
export function reelLogPrefix(id: string): [string, string] {
  return ["reel_log", id];
}

/** One retained interaction of a reel, by the reel version it produced (cross-instance fan-out). */
export function reelEventKey(id: string, version: number): [string, string, number] {
  return ["reel_ilog", id, version];
}

/** The prefix of a reel's interaction log. */
export function reelEventPrefix(id: string): [string, string] {
  return ["reel_ilog", id];
}

/** A reel's view counter (`Deno.KvU64`, written only with coalesced `sum` mutations). */
export function reelViewsKey(id: string): [string, string] {
  return ["reel_views", id];
}

/** Marks that `user` likes reel `id` (present = liked): what makes likes idempotent per user. */
export function reelLikeKey(id: string, user: string): [string, string, string] {
  return ["reel_like", id, user];
}

/** One comment on a reel, by comment id (a ULID, so listings come back in time order). */
export function reelCommentKey(id: string, commentId: string): [string, string, string] {
  return ["reel_comment", id, commentId];
}

/** The prefix of a reel's comments. */
export function reelCommentPrefix(id: string): [string, string] {
  return ["reel_comment", id];
}

/** A user who said over REST that they watch reel `id` (expires with the presence TTL). */
export function reelViewerKey(id: string, user: string): [string, string, string] {
  return ["reel_viewer", id, user];
}

/** The prefix of a reel's REST-reported viewers. */
export function reelViewerPrefix(id: string): [string, string] {
  return ["reel_viewer", id];
}

/** The head record of a user: presence (status, current reel, activity, last seen) and log seq. */
export function userHeadKey(id: string): [string, string] {
  return ["user", id];
}

/** One retained event of a user's feed (`user_activity`, targeted `reel_update`), by seq. */
export function userLogKey(id: string, seq: number): [string, string, number] {
  return ["user_log", id, seq];
}

/** The prefix of a user's event log. */
export function userLogPrefix(id: string): [string, string] {
  return ["user_log", id];
}
