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

/** The prefix of a context's chunks. */
export function ctxChunkPrefix(id: string): [string, string] {
  return ["ctx_chunk", id];
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
