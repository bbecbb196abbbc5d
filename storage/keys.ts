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
