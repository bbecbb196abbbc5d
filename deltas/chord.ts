/**
 * The `chord` delta format: an object shaped like the context whose changed leaves are markers
 * `{"action": "added" | "modified" | "removed", "value"?, "old_value"?}`.
 *
 * ## Representation rule
 *
 * A chord delta is a **node**: an object mapping context keys to **entries**. An entry is
 *
 * - a **marker** if and only if it is an object whose own `action` property is a *string*. A marker
 *   has exactly these keys:
 *   - `{"action": "added", "value": v}` — the key is new, with value `v`;
 *   - `{"action": "modified", "value": v, "old_value": o}` — the value changed from `o` to `v`;
 *   - `{"action": "removed", "old_value": o}` — the key was deleted; it held `o`.
 *
 *   `value` and `old_value` are opaque JSON: whatever they contain is never read as delta syntax.
 * - otherwise a nested **node** describing changes inside an object that exists on both sides.
 *
 * Because every member of a node is itself an object (a marker or a node), a node's `action`
 * member — present when the context has a key named `"action"` — is an object, never a string, so
 * no context content can make a node read as a marker. Belt and braces for readers that use the
 * looser test "has an `action` key": {@linkcode diffChord} never emits a nested (non-root) node with
 * an `action` key; when a changed key named `action` sits inside an object present on both sides,
 * that whole object becomes one `modified` marker. The root of a delta is always a node.
 *
 * Arrays and changes of type are leaves: `modified` carries the whole new and old value. Markers
 * carry old values so a delta can be undone ({@linkcode revertChord}); the context actor stores one
 * delta per version and walks back from the current context to rebuild an older one.
 * @module
 */

import { ChorusError } from "../errors.ts";
import {
  deepClone,
  deepEqual,
  getOwn,
  isJsonObject,
  type Json,
  type JsonObject,
  setOwn,
} from "./json.ts";
import { formatPointer } from "./_pointer.ts";

/** A changed leaf of a chord delta. */
export type ChordMarker =
  | { action: "added"; value: Json }
  | { action: "modified"; value: Json; old_value: Json }
  | { action: "removed"; old_value: Json };

/** A chord delta (or a nested node of one): context keys mapped to markers or nested nodes. */
export type ChordDelta = { [key: string]: ChordMarker | ChordDelta };

/** Options of {@linkcode applyChord} and {@linkcode revertChord}. */
export interface ChordApplyOptions {
  /**
   * Also check that each value being replaced or removed equals what the marker says it was
   * (`old_value` when applying, `value` when reverting), throwing `conflict` otherwise. Catches a
   * delta applied to the wrong version at the cost of comparing the touched values.
   * @default false
   */
  verify?: boolean;
}

/**
 * The chord delta taking `from` to `to`; `{}` when they are equal. Values in the delta are copies,
 * so it shares nothing with either context.
 */
export function diffChord(from: JsonObject, to: JsonObject): ChordDelta {
  return diffNode(from, to) ?? {};
}

/**
 * Applies a chord delta to a context without mutating either.
 * @returns a new context
 * @throws {ChorusError} `invalid_request` when the delta is malformed; `conflict` when it does not
 * fit the context (a `modified`/`removed` key is missing, an `added` key exists, a nested node meets
 * a non-object, or with `verify` an old value differs)
 */
export function applyChord(
  context: JsonObject,
  delta: ChordDelta,
  options: ChordApplyOptions = {},
): JsonObject {
  return walk(context, delta, "apply", options.verify ?? false);
}

/**
 * Undoes a chord delta: given the context *after* `delta`, returns the context before it, using the
 * markers' `old_value`s. Does not mutate its inputs.
 * @throws {ChorusError} `invalid_request` for a malformed delta; `conflict` when it does not fit
 */
export function revertChord(
  context: JsonObject,
  delta: ChordDelta,
  options: ChordApplyOptions = {},
): JsonObject {
  return walk(context, delta, "revert", options.verify ?? false);
}

/**
 * Walks back through a list of chord deltas: `deltas` are in the order they were applied (oldest
 * first) and `current` is the context after the last one; returns the context before the first.
 * Why: rebuilding the context at version N from the current context and the stored deltas N+1..now.
 * @throws {ChorusError} as {@linkcode revertChord}
 */
export function rewindChord(
  current: JsonObject,
  deltas: readonly ChordDelta[],
  options: ChordApplyOptions = {},
): JsonObject {
  let context = current;
  for (let i = deltas.length - 1; i >= 0; i--) context = revertChord(context, deltas[i], options);
  return context;
}

/**
 * Whether a delta entry is a marker under the representation rule: an object whose own `action`
 * is a string. (Whether it is a *valid* marker is checked when it is applied.)
 */
export function isChordMarker(entry: unknown): boolean {
  return isJsonObject(entry) && Object.hasOwn(entry, "action") &&
    typeof entry.action === "string";
}

function diffNode(from: JsonObject, to: JsonObject): ChordDelta | undefined {
  let node: ChordDelta | undefined;
  const put = (key: string, entry: ChordMarker | ChordDelta) => {
    node ??= {};
    setOwn(node, key, entry);
  };
  for (const key of Object.keys(from)) {
    if (!Object.hasOwn(to, key)) put(key, { action: "removed", old_value: deepClone(from[key]) });
  }
  for (const key of Object.keys(to)) {
    const b = to[key];
    if (!Object.hasOwn(from, key)) {
      put(key, { action: "added", value: deepClone(b) });
      continue;
    }
    const a = from[key];
    if (a === b) continue; // shared (or equal primitive): unchanged, skip the walk
    if (isJsonObject(a) && isJsonObject(b)) {
      const sub = diffNode(a, b);
      if (sub === undefined) continue;
      put(
        key,
        Object.hasOwn(sub, "action")
          ? { action: "modified", value: deepClone(b), old_value: deepClone(a) }
          : sub,
      );
    } else if (!deepEqual(a, b)) {
      put(key, { action: "modified", value: deepClone(b), old_value: deepClone(a) });
    }
  }
  return node;
}

type Direction = "apply" | "revert";

function walk(context: JsonObject, delta: unknown, direction: Direction, verify: boolean) {
  if (!isJsonObject(delta)) {
    throw new ChorusError(
      "invalid_request",
      `Cannot ${direction} chord delta: it must be an object`,
    );
  }
  const result = deepClone(context);
  walkNode(result, delta, [], direction, verify);
  return result;
}

function walkNode(
  target: JsonObject,
  node: JsonObject,
  path: string[],
  direction: Direction,
  verify: boolean,
): void {
  for (const key of Object.keys(node)) {
    const entry = node[key];
    path.push(key);
    if (!isJsonObject(entry)) {
      throw malformed(direction, path, "an entry must be a marker or a nested object");
    }
    if (isChordMarker(entry)) {
      const marker = parseMarker(entry, direction, path);
      if (direction === "apply") applyMarker(target, key, marker, path, verify);
      else revertMarker(target, key, marker, path, verify);
    } else {
      const child = getOwn(target, key);
      if (!isJsonObject(child)) throw misfit(direction, path, "no object at this path");
      walkNode(child, entry, path, direction, verify);
    }
    path.pop();
  }
}

function applyMarker(
  target: JsonObject,
  key: string,
  marker: ChordMarker,
  path: string[],
  verify: boolean,
  direction: "apply" | "revert" = "apply",
): void {
  const exists = Object.hasOwn(target, key);
  if (marker.action === "added") {
    if (exists) throw misfit(direction, path, "the key already exists");
    setOwn(target, key, deepClone(marker.value));
    return;
  }
  if (!exists) throw misfit(direction, path, "no such key");
  if (verify && !deepEqual(target[key], marker.old_value)) {
    throw misfit(direction, path, "the current value differs from the expected one");
  }
  if (marker.action === "modified") setOwn(target, key, deepClone(marker.value));
  else delete target[key];
}

/** Undoes a marker: applies its inverse (added ↔ removed, value ↔ old_value). */
function revertMarker(
  target: JsonObject,
  key: string,
  marker: ChordMarker,
  path: string[],
  verify: boolean,
): void {
  applyMarker(target, key, invertMarker(marker), path, verify, "revert");
}

function invertMarker(marker: ChordMarker): ChordMarker {
  if (marker.action === "added") return { action: "removed", old_value: marker.value };
  if (marker.action === "removed") return { action: "added", value: marker.old_value };
  return { action: "modified", value: marker.old_value, old_value: marker.value };
}

const MARKER_KEYS: Readonly<Record<ChordMarker["action"], readonly string[]>> = {
  added: ["action", "value"],
  modified: ["action", "value", "old_value"],
  removed: ["action", "old_value"],
};

function parseMarker(entry: JsonObject, direction: Direction, path: string[]): ChordMarker {
  const action = entry.action;
  if (action !== "added" && action !== "modified" && action !== "removed") {
    throw malformed(direction, path, `unknown action "${String(action)}"`);
  }
  const expected = MARKER_KEYS[action];
  const keys = Object.keys(entry);
  if (keys.length !== expected.length || !expected.every((k) => Object.hasOwn(entry, k))) {
    throw malformed(direction, path, `an "${action}" marker has exactly the keys ${expected}`);
  }
  return entry as ChordMarker;
}

function malformed(direction: Direction, path: string[], reason: string): ChorusError {
  const pointer = formatPointer(path);
  return new ChorusError(
    "invalid_request",
    `Cannot ${direction} chord delta "${pointer}": ${reason}`,
    { details: { path: pointer } },
  );
}

function misfit(direction: Direction, path: string[], reason: string): ChorusError {
  const pointer = formatPointer(path);
  return new ChorusError("conflict", `Cannot ${direction} chord delta "${pointer}": ${reason}`, {
    details: { path: pointer },
  });
}
