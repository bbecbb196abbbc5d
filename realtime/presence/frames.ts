/**
 * Encoding of the frames that bring a joining socket to a topic's presence, cached: every socket
 * that joins between two changes of the state gets the same strings/bytes, so a join storm
 * encodes the list once per format (and join_ref) instead of once per socket.
 * @module
 */
import { encodeEnvelope } from "../../proto/codec.ts";
import { push } from "../phoenix.ts";
import { utf8Bytes } from "../outbox.ts";
import type { WireFormat } from "../wire_format.ts";
import { metaList, type PresenceMap, type PresenceMeta, type PresenceState } from "./meta.ts";
import { splitState } from "./diff.ts";

/**
 * The `presence_stats` push `[join_ref, null, topic, "presence_stats", {"count"}]` a joiner of a
 * topic too big for lists gets instead of `presence_state` (see `PresenceOptions.listMax`).
 */
export function countFrame(
  topic: string,
  joinRef: string | null,
  count: number,
  format: WireFormat,
): string | Uint8Array {
  return format === "protobuf"
    ? encodeEnvelope(push(joinRef, topic, "presence_stats", { count }))
    : `[${JSON.stringify(joinRef)},null,${
      JSON.stringify(topic)
    },"presence_stats",{"count":${count}}]`;
}

/** Encoded presence_state frames kept per view (distinct join_refs seen between two changes). */
const MAX_CACHED_FRAMES = 16;

/**
 * `"key":{"metas":[…]}`: one key's part of a `presence_state` (or diff) JSON object. Built by
 * hand so the parts of unchanged keys are reused from one state to the next.
 */
export function stateFragment(key: string, metas: PresenceMeta[]): string {
  return `${JSON.stringify(key)}:${JSON.stringify({ metas })}`;
}

/**
 * The encoded `presence_state` frames of one view's state, and its `presence_state` payload,
 * cached until the state changes. The view tells it which key changed; everything is rebuilt
 * lazily on the next read, so a burst of changes costs nothing until a socket joins.
 */
export class StateFrames {
  readonly #state: PresenceState;
  readonly #topic: string;
  readonly #maxBytes: number;
  /** Per key, its {@linkcode stateFragment}; a key's entry is dropped when its metas change. */
  readonly #fragments = new Map<string, string>();
  /** The caches below are of an older state. */
  #stale = true;
  #list?: PresenceMap;
  #groups?: string[][];
  /** Encoded `presence_state` frames of the current state, by format and join_ref. */
  readonly #frames = new Map<string, string | Uint8Array>();
  /** The `presence_diff` frames that follow a split state, by format. */
  readonly #rest = new Map<WireFormat, (string | Uint8Array)[]>();

  /**
   * Frames of `state` (the view's own map, read as it changes) on `topic`; `maxBytes` bounds a
   * `presence_state` frame (Infinity: the whole list in one).
   */
  constructor(state: PresenceState, options: { topic: string; maxBytes: number }) {
    this.#state = state;
    this.#topic = options.topic;
    this.#maxBytes = options.maxBytes;
  }

  /** Notes that the metas of `key` changed, so its part and every frame are encoded again. */
  changed(key: string): void {
    this.#fragments.delete(key);
    this.#stale = true;
  }

  /** Notes that the whole state was replaced (a resync). */
  reset(): void {
    this.#fragments.clear();
    this.#stale = true;
  }

  /**
   * The `presence_state` payload: every live meta by key. Shared by every caller until the state
   * changes: never mutate it.
   */
  list(): PresenceMap {
    this.#sync();
    return this.#list ??= this.#subset(this.#state.keys());
  }

  /**
   * The `presence_state` push `[join_ref, null, topic, "presence_state", …]` in `format`, followed,
   * when the state is bigger than `maxBytes`, by `presence_diff` broadcasts joining the keys that
   * did not fit. Shared until the state changes (never mutate them): the state frame per
   * join_ref, the diff frames for all.
   */
  frames(joinRef: string | null, format: WireFormat): (string | Uint8Array)[] {
    this.#sync();
    const groups = this.#splitKeys();
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
    let rest = this.#rest.get(format);
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
      this.#rest.set(format, rest);
    }
    return [first, ...rest];
  }

  /** The key's part, reused until its metas change. */
  #fragment(key: string): string {
    let part = this.#fragments.get(key);
    if (part === undefined) {
      part = stateFragment(key, metaList(this.#state.get(key)));
      this.#fragments.set(key, part);
    }
    return part;
  }

  /** The keys in runs whose parts fit `maxBytes` (see {@linkcode splitState}). */
  #splitKeys(): string[][] {
    return this.#groups ??= splitState(this.#state.keys(), {
      maxBytes: this.#maxBytes,
      bytes: (key) => utf8Bytes(this.#fragment(key)) + 1, // and its comma
    });
  }

  /** A null-prototype `{key: {metas}}` of some keys (so `__proto__` is an ordinary key). */
  #subset(keys: Iterable<string>): PresenceMap {
    const out = Object.create(null) as PresenceMap;
    for (const key of keys) out[key] = { metas: metaList(this.#state.get(key)) };
    return out;
  }

  /** Drops the caches of an older state. */
  #sync(): void {
    if (!this.#stale) return;
    this.#stale = false;
    this.#list = undefined;
    this.#groups = undefined;
    this.#frames.clear();
    this.#rest.clear();
  }
}
