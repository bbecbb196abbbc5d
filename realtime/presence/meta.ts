/**
 * What a presence meta is and the shapes presence travels in (Phoenix Presence's, see
 * docs/socket.md), plus how a meta is made. Kept apart so every other presence module, and the
 * socket, can share the vocabulary without pulling in KV or timers.
 * @module
 */
import { randomByte } from "../../random.ts";

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

/**
 * One key's metas in a {@linkcode PresenceState}: the meta itself while it is the key's only one
 * (the usual case, one socket per user: no map per member of a live audience), else its metas by
 * `phx_ref` in arrival order. Read it with {@linkcode metaByRef} and {@linkcode metaList}.
 */
export type KeyMetas = PresenceMeta | ReadonlyMap<string, PresenceMeta>;

/**
 * A topic's presence as a view holds it: each key's metas, keys in arrival order. A Map rather
 * than a {@linkcode PresenceMap} so a key such as `__proto__` or `42` keeps its place and meaning.
 */
export type PresenceState = ReadonlyMap<string, KeyMetas>;

/** The meta of a key with this `phx_ref`, if the key holds it. */
export function metaByRef(metas: KeyMetas | undefined, ref: string): PresenceMeta | undefined {
  if (metas === undefined) return undefined;
  if (metas instanceof Map) return metas.get(ref);
  const one = metas as PresenceMeta;
  return one.phx_ref === ref ? one : undefined;
}

/** A key's metas as a new array, in arrival order (none for an absent key). */
export function metaList(metas: KeyMetas | undefined): PresenceMeta[] {
  if (metas === undefined) return [];
  return metas instanceof Map ? [...metas.values()] : [metas as PresenceMeta];
}

/** Adds (or replaces, by `phx_ref`) one meta of `key` in a view's state. */
export function addMeta(state: Map<string, KeyMetas>, key: string, meta: PresenceMeta): void {
  const current = state.get(key);
  if (current instanceof Map) {
    (current as Map<string, PresenceMeta>).set(meta.phx_ref, meta);
    return;
  }
  const one = current as PresenceMeta | undefined;
  if (one === undefined || one.phx_ref === meta.phx_ref) state.set(key, meta);
  else state.set(key, new Map([[one.phx_ref, one], [meta.phx_ref, meta]]));
}

/**
 * Removes the meta of `key` with this `phx_ref` from a view's state (the key goes with its last
 * meta); returns the meta it held, if any.
 */
export function removeMeta(
  state: Map<string, KeyMetas>,
  key: string,
  ref: string,
): PresenceMeta | undefined {
  const current = state.get(key);
  const held = metaByRef(current, ref);
  if (held === undefined) return undefined;
  if (current instanceof Map) {
    const metas = current as Map<string, PresenceMeta>;
    metas.delete(ref);
    // Back to the meta itself once it is the only one (the key keeps its place).
    if (metas.size === 1) state.set(key, metas.values().next().value!);
    else if (metas.size === 0) state.delete(key);
  } else {
    state.delete(key);
  }
  return held;
}

const MAX_META_STRING = 256;

const REF_BYTES = 12;
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * Generates a `phx_ref`: url-safe base64 of 12 random bytes, as Phoenix's tracker does, so clients
 * can tell two metas of one key apart. The bytes come from `crypto.getRandomValues` through
 * `random.ts`, drawn a block at a time (a join storm makes thousands of refs at once).
 */
export function randomRef(): string {
  let ref = "";
  for (let i = 0; i < REF_BYTES; i += 3) {
    const n = (randomByte() << 16) | (randomByte() << 8) | randomByte();
    ref += BASE64URL[n >> 18] + BASE64URL[(n >> 12) & 63] + BASE64URL[(n >> 6) & 63] +
      BASE64URL[n & 63];
  }
  return ref;
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
