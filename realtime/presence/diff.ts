/**
 * Presence diff batching as pure functions: merging the metas touched within the diff window into
 * one `{joins, leaves}`, splitting a big one into several frames by UTF-8 size, and splitting a
 * big `presence_state` into runs of keys. Pure so the rules clients rely on (joins before leaves,
 * a key never half sent) are tested directly, away from KV and timers.
 * @module
 */
import { utf8Bytes } from "../outbox.ts";
import {
  metaByRef,
  type PresenceDiff,
  type PresenceMap,
  type PresenceMeta,
  type PresenceState,
} from "./meta.ts";

/** A meta that joined or left within the window, as it was when it was touched. */
export interface Touched {
  /** Its presence key. */
  readonly key: string;
  /** The meta (for a leave, the one clients hold: the same `phx_ref`). */
  readonly meta: PresenceMeta;
}

/** A merged diff before it is split: metas by key, in the order the keys were first touched. */
export interface MergedDiff {
  /** Metas present now, by key. */
  readonly joins: Map<string, PresenceMeta[]>;
  /** Metas gone now, by key. */
  readonly leaves: Map<string, PresenceMeta[]>;
}

/**
 * Merges the metas touched within a window into one diff, given the state at its end. Each touched
 * meta goes out once: in `joins` when it is present now (as it is now), else in `leaves` (as it was
 * touched, so with the `phx_ref` clients hold). Clients apply joins before leaves and both are
 * idempotent per `phx_ref`, so this leaves them where the diffs one by one would have: a meta that
 * joined and left within the window is only a (harmless) leave, which a socket that got a
 * `presence_state` in between needs. List each meta once in `touched` (the view keys them by
 * `key` and `phx_ref`).
 */
export function mergeDiff(touched: Iterable<Touched>, state: PresenceState): MergedDiff {
  const joins = new Map<string, PresenceMeta[]>();
  const leaves = new Map<string, PresenceMeta[]>();
  for (const { key, meta } of touched) {
    const now = metaByRef(state.get(key), meta.phx_ref);
    const side = now ? joins : leaves;
    let metas = side.get(key);
    if (!metas) side.set(key, metas = []);
    metas.push(now ?? meta);
  }
  return { joins, leaves };
}

/**
 * The `presence_diff` payloads that send `diff`, in order, each about `maxBytes` of UTF-8 JSON at
 * most (a socket's transport keeps a buffer as big as the largest frame it was sent). Within the
 * limit: one payload, as Phoenix sends it. Above it: every join frame before any leave frame, so a
 * key whose meta was replaced never looks empty in between, and each key's metas in one frame, so
 * a key is never half joined or half left (a key bigger than the limit alone gets a frame of its
 * own). Nothing to send: no payload.
 */
export function splitDiff(diff: MergedDiff, options: { maxBytes: number }): PresenceDiff[] {
  const joined = sized(diff.joins);
  const left = sized(diff.leaves);
  if (joined.length === 0 && left.length === 0) return [];
  const total = [...joined, ...left].reduce((sum, e) => sum + e.bytes, 0);
  if (total <= options.maxBytes) {
    const one: PresenceDiff = { joins: {}, leaves: {} };
    for (const e of joined) one.joins[e.key] = { metas: e.metas };
    for (const e of left) one.leaves[e.key] = { metas: e.metas };
    return [one];
  }
  const out: PresenceDiff[] = [];
  for (const [side, entries] of [["joins", joined], ["leaves", left]] as const) {
    let part: PresenceMap = {};
    let bytes = 0;
    const send = () => {
      const frame: PresenceDiff = { joins: {}, leaves: {} };
      frame[side] = part;
      out.push(frame);
    };
    for (const e of entries) {
      if (bytes > 0 && bytes + e.bytes > options.maxBytes) {
        send();
        part = {};
        bytes = 0;
      }
      part[e.key] = { metas: e.metas };
      bytes += e.bytes;
    }
    if (bytes > 0) send();
  }
  return out;
}

/**
 * Splits the keys of a `presence_state` into runs whose sizes (`bytes` of each key's part) add up
 * to about `maxBytes` at most; the first run is the state frame, the others go out as
 * `presence_diff` joins. With no limit (Infinity), one run, without sizing anything: the phoenix
 * client's `Presence` needs the whole list in one frame for exact callbacks. Always at least one
 * run (an empty state is one empty run); a key bigger than the limit is a run of its own.
 */
export function splitState(
  keys: Iterable<string>,
  options: { maxBytes: number; bytes: (key: string) => number },
): string[][] {
  if (options.maxBytes === Infinity) return [[...keys]];
  const runs: string[][] = [[]];
  let bytes = 0;
  for (const key of keys) {
    const size = options.bytes(key);
    if (bytes + size > options.maxBytes && runs[runs.length - 1].length > 0) {
      runs.push([]);
      bytes = 0;
    }
    runs[runs.length - 1].push(key);
    bytes += size;
  }
  return runs;
}

/**
 * About the UTF-8 bytes one key's metas take in a `presence_diff` frame, its `"key":{"metas":…},`
 * included (a little over for plain keys): what {@linkcode splitDiff} adds up against its limit,
 * since the transport's buffer grows with bytes, not UTF-16 length.
 */
export function diffEntryBytes(key: string, metas: readonly PresenceMeta[]): number {
  return utf8Bytes(key) + utf8Bytes(JSON.stringify(metas)) + 16;
}

/** Each key's metas with {@linkcode diffEntryBytes}. */
function sized(byKey: Map<string, PresenceMeta[]>) {
  return [...byKey].map(([key, metas]) => ({ key, metas, bytes: diffEntryBytes(key, metas) }));
}
