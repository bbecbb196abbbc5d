/**
 * Copy-on-write context changes for the hot path. A context is a deeply frozen object, so a change
 * only needs new copies of the objects on the paths it touches; everything else is shared with the
 * previous version. That makes a merge-patch update, and walking back over stored chord deltas to an
 * older version, cost the size of the change rather than the size of the context — and the delta
 * formats' diffs skip shared subtrees (`a === b`), so diffing two such versions is cheap too.
 *
 * The results share structure with their inputs: only use them with frozen contexts and deltas.
 * Every node a change creates is frozen as it is made, so a result is deeply frozen at a cost
 * proportional to the change, not to the context.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { type ChordDelta, type ChordMarker, isChordMarker } from "../deltas/chord.ts";
import {
  deepEqual,
  getOwn,
  isJsonObject,
  type Json,
  type JsonObject,
  setOwn,
} from "../deltas/json.ts";

/** A context after a change, with the chord delta of that change (`{}` when nothing changed). */
export interface SharedChange {
  context: JsonObject;
  delta: ChordDelta;
}

/**
 * Applies an RFC 7386 merge patch to a context, sharing every untouched subtree, and builds the
 * chord delta of what really changed (the same delta `diffChord(context, result)` gives, up to
 * sharing: a nested node that would hold a key `action` becomes one `modified` marker). With a
 * deeply frozen context and patch, the result and the delta are deeply frozen too.
 * @returns the new context (`context` itself when nothing changed) and its delta
 */
export function mergePatchShared(context: JsonObject, patch: JsonObject): SharedChange {
  const { value, delta } = mergeNode(context, patch);
  return { context: value, delta: delta ?? {} };
}

function mergeNode(
  target: JsonObject,
  patch: JsonObject,
): { value: JsonObject; delta: ChordDelta | undefined } {
  let out: JsonObject | undefined;
  let delta: ChordDelta | undefined;
  const write = (key: string, value: Json | undefined, entry: ChordMarker | ChordDelta) => {
    out ??= { ...target };
    if (value === undefined) delete out[key];
    else setOwn(out, key, value);
    delta ??= {};
    setOwn(delta as JsonObject, key, Object.freeze(entry) as JsonObject);
  };
  for (const key of Object.keys(patch)) {
    const change = patch[key];
    const current = getOwn(target, key);
    if (change === null) {
      if (current !== undefined) write(key, undefined, { action: "removed", old_value: current });
    } else if (isJsonObject(change) && isJsonObject(current)) {
      const sub = mergeNode(current, change);
      if (!sub.delta) continue;
      const entry = Object.hasOwn(sub.delta, "action")
        ? { action: "modified" as const, value: sub.value, old_value: current }
        : sub.delta;
      write(key, sub.value, entry);
    } else {
      const value = isJsonObject(change) ? Object.freeze(mergeNode({}, change).value) : change;
      if (current === undefined) write(key, value, { action: "added", value });
      else if (!deepEqual(current, value)) {
        write(key, value, { action: "modified", value, old_value: current });
      }
    }
  }
  if (delta) Object.freeze(delta);
  return { value: out ? Object.freeze(out) : target, delta };
}

/**
 * Undoes one stored chord delta, sharing every untouched subtree. For deltas this module's actor
 * wrote itself (trusted); client deltas go through `revertChord`, which validates.
 * @throws {ChorusError} `conflict` when the delta does not fit (a bug, or a corrupt log)
 */
export function revertShared(context: JsonObject, delta: ChordDelta): JsonObject {
  return walkShared(context, delta, false);
}

/**
 * Applies one stored chord delta, sharing every untouched subtree: the forward twin of
 * {@linkcode revertShared}, for deltas this module's actor wrote itself (trusted). With a deeply
 * frozen context and delta the result is deeply frozen (a reverted context is only diffed, so
 * {@linkcode revertShared} leaves its new nodes unfrozen).
 * @throws {ChorusError} `conflict` when the delta does not fit (a bug, or a corrupt log)
 */
export function applyShared(context: JsonObject, delta: ChordDelta): JsonObject {
  return walkShared(context, delta, true);
}

function walkShared(context: JsonObject, delta: ChordDelta, forward: boolean): JsonObject {
  let out: JsonObject | undefined;
  for (const key of Object.keys(delta)) {
    const entry = delta[key];
    if (isChordMarker(entry)) {
      const marker = entry as ChordMarker;
      out ??= { ...context };
      if (marker.action === (forward ? "removed" : "added")) delete out[key];
      else {
        setOwn(
          out,
          key,
          forward ? (marker as { value: Json }).value : (marker as { old_value: Json }).old_value,
        );
      }
      continue;
    }
    const child = getOwn(context, key);
    if (!isJsonObject(child)) {
      const action = forward ? "apply" : "revert";
      throw new ChorusError("conflict", `Cannot ${action} delta at "${key}": no object there`);
    }
    const next = walkShared(child, entry as ChordDelta, forward);
    if (next !== child) {
      out ??= { ...context };
      setOwn(out, key, next);
    }
  }
  if (!out) return context;
  return forward ? Object.freeze(out) : out;
}

/** Walks back from `current` over `deltas` (oldest first) to the context before the first. */
export function rewindShared(current: JsonObject, deltas: readonly ChordDelta[]): JsonObject {
  let context = current;
  for (let i = deltas.length - 1; i >= 0; i--) context = revertShared(context, deltas[i]);
  return context;
}
