/**
 * Copy-on-write context changes for the hot path. A context is a deeply frozen object, so a change
 * only needs new copies of the objects on the paths it touches; everything else is shared with the
 * previous version. That makes a merge-patch update, and walking back over stored chord deltas to an
 * older version, cost the size of the change rather than the size of the context — and the delta
 * formats' diffs skip shared subtrees (`a === b`), so diffing two such versions is cheap too.
 *
 * The results share structure with their inputs: only use them with frozen contexts and deltas.
 * Every node a change creates is frozen as it is made, so a result is deeply frozen at a cost
 * proportional to the change, not to the context. Two exceptions work on copies of their own and
 * leave them unfrozen: {@linkcode mergePatchInPlace} (a write batch's working copy, frozen by the
 * batch before it is shared) and {@linkcode rewindShared} (an older version, only ever diffed).
 * @module
 */
import { ChorusError } from "../errors.ts";
import { type ChordDelta, type ChordMarker, isChordMarker } from "../deltas/chord.ts";
import { deepFreeze } from "../storage/codec.ts";
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

/** The delta of a patch that changes nothing. */
const NO_CHANGE: ChordDelta = Object.freeze({});

/**
 * Applies an RFC 7386 merge patch to a context, sharing every untouched subtree, and builds the
 * chord delta of what really changed (the same delta `diffChord(context, result)` gives, up to
 * sharing: a nested node that would hold a key `action` becomes one `modified` marker). With a
 * deeply frozen context and patch, the result and the delta are deeply frozen too.
 * @returns the new context (`context` itself when nothing changed) and its delta
 */
export function mergePatchShared(context: JsonObject, patch: JsonObject): SharedChange {
  const { value, delta } = mergeNode(context, patch, false);
  return { context: value, delta: delta ?? NO_CHANGE };
}

/**
 * Applies a merge patch to a write batch's working copy, as {@linkcode mergePatchShared} does,
 * except that the nodes the batch made itself (those not frozen yet) are changed in place rather
 * than copied again. A batch of fifty updates to one context then copies each node on their paths
 * once, not fifty times. Frozen nodes are shared with other versions and are copied as usual.
 *
 * The working copy must be the batch's alone until it is frozen whole (`deepFreeze`) before
 * anything else shares it (another kind of change, the commit); the delta is frozen, and so is
 * every node it names (an old value must not change afterwards), so a node recorded in a delta is
 * copied, not changed, by a later patch.
 * @returns the working copy (a new root when the old one was frozen) and the change's delta
 */
export function mergePatchInPlace(context: JsonObject, patch: JsonObject): SharedChange {
  const { value, delta } = mergeNode(context, patch, true);
  return { context: value, delta: delta ?? NO_CHANGE };
}

function mergeNode(
  target: JsonObject,
  patch: JsonObject,
  inPlace: boolean,
): { value: JsonObject; delta: ChordDelta | undefined } {
  let out: JsonObject | undefined = inPlace && !Object.isFrozen(target) ? target : undefined;
  let delta: JsonObject | undefined;
  for (const key in patch) {
    if (!Object.hasOwn(patch, key)) continue; // own keys only, whatever a prototype may add
    const change = patch[key];
    const current = getOwn(target, key);
    let value: Json | undefined;
    let entry: ChordMarker | ChordDelta;
    let marker = true;
    if (change === null) {
      if (current === undefined) continue;
      entry = { action: "removed", old_value: current };
    } else if (isJsonObject(change) && isJsonObject(current)) {
      // A patch with a key `action` may record this node whole as an old value: it must not be
      // changed in place then.
      if (inPlace && Object.hasOwn(change, "action")) deepFreeze(current);
      const sub = mergeNode(current, change, inPlace);
      if (!sub.delta) continue;
      value = sub.value;
      if (Object.hasOwn(sub.delta, "action")) {
        entry = { action: "modified", value: sub.value, old_value: current };
      } else {
        entry = sub.delta;
        marker = false;
      }
    } else {
      value = isJsonObject(change) ? Object.freeze(mergeNode({}, change, false).value) : change;
      if (current === undefined) entry = { action: "added", value };
      else if (deepEqual(current, value)) continue;
      else entry = { action: "modified", value, old_value: current };
    }
    // The nodes a marker names are frozen with it: a later patch of the batch copies them.
    if (inPlace && marker) {
      const named = entry as { value?: Json; old_value?: Json };
      if (typeof named.value === "object") deepFreeze(named.value);
      if (typeof named.old_value === "object") deepFreeze(named.old_value);
    }
    Object.freeze(entry);
    out ??= { ...target };
    if (value === undefined) delete out[key];
    else setOwn(out, key, value);
    delta ??= {};
    setOwn(delta, key, entry as JsonObject);
  }
  if (delta) Object.freeze(delta);
  const changes = delta as ChordDelta | undefined;
  if (!out) return { value: target, delta: changes };
  return { value: inPlace ? out : Object.freeze(out), delta: changes };
}

/**
 * Undoes one stored chord delta, sharing every untouched subtree. For deltas this module's actor
 * wrote itself (trusted); client deltas go through `revertChord`, which validates.
 * @throws {ChorusError} `conflict` when the delta does not fit (a bug, or a corrupt log)
 */
export function revertShared(context: JsonObject, delta: ChordDelta): JsonObject {
  return walkShared(context, delta, false, undefined);
}

/**
 * Applies one stored chord delta, sharing every untouched subtree: the forward twin of
 * {@linkcode revertShared}, for deltas this module's actor wrote itself (trusted). With a deeply
 * frozen context and delta the result is deeply frozen (a reverted context is only diffed, so
 * {@linkcode revertShared} leaves its new nodes unfrozen).
 * @throws {ChorusError} `conflict` when the delta does not fit (a bug, or a corrupt log)
 */
export function applyShared(context: JsonObject, delta: ChordDelta): JsonObject {
  return walkShared(context, delta, true, undefined);
}

/**
 * @param made the nodes a rewind made so far: a later step of the same rewind changes those in
 *   place instead of copying them again (undefined: copy every node a change touches)
 */
function walkShared(
  context: JsonObject,
  delta: ChordDelta,
  forward: boolean,
  made: Set<JsonObject> | undefined,
): JsonObject {
  let out: JsonObject | undefined = made?.has(context) ? context : undefined;
  const copy = () => {
    const fresh = { ...context };
    made?.add(fresh);
    return fresh;
  };
  for (const key of Object.keys(delta)) {
    const entry = delta[key];
    if (isChordMarker(entry)) {
      const marker = entry as ChordMarker;
      out ??= copy();
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
    const next = walkShared(child, entry as ChordDelta, forward, made);
    if (next !== child) {
      out ??= copy();
      setOwn(out, key, next);
    }
  }
  if (!out) return context;
  return forward ? Object.freeze(out) : out;
}

/**
 * Walks back from `current` over `deltas` (oldest first) to the context before the first. Each node
 * on the changed paths is copied once for the whole walk, not once per delta: fifty changes to one
 * large object copy it once. The result shares untouched subtrees and is not frozen.
 */
export function rewindShared(current: JsonObject, deltas: readonly ChordDelta[]): JsonObject {
  let context = current;
  const made = deltas.length > 1 ? new Set<JsonObject>() : undefined;
  for (let i = deltas.length - 1; i >= 0; i--) {
    context = walkShared(context, deltas[i], false, made);
  }
  return context;
}
