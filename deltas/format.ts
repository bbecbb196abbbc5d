/**
 * The delta-format interface and registry, so the context actor and the sync route can serve any
 * format by name and embedders can add their own.
 *
 * "All changes since version N merged into one delta" is `format.diff(contextAtN, current)`; the
 * context at N is rebuilt by walking back from the current context with the stored chord deltas
 * (`rewindChord`), and {@linkcode replay} goes the other way.
 * @module
 */

import { applyChord, type ChordDelta, diffChord } from "./chord.ts";
import { applyJsonPatch, diffJsonPatch, type JsonPatch } from "./json_patch.ts";
import type { JsonObject } from "./json.ts";
import { applyMergePatchToContext, diffMergePatch } from "./merge_patch.ts";

/**
 * A way of writing the change between two contexts. `diff` may return `undefined` when the format
 * cannot express a change (merge patch cannot set `null`); callers then fall back to the full
 * context. `apply` must validate `delta`, since deltas come from clients: it throws `ChorusError`
 * `invalid_request` for a malformed delta and `conflict` for one that does not fit the context.
 */
export interface DeltaFormat<D = unknown> {
  /** The name used in `?format=`, e.g. `"chord"`. */
  name: string;
  /** The delta taking `from` to `to`, or undefined when this format cannot express it. */
  diff(from: JsonObject, to: JsonObject): D | undefined;
  /** The context after `delta`; never mutates its arguments. */
  apply(context: JsonObject, delta: D): JsonObject;
}

/** The `chord` format (the default): see `chord.ts`. */
export const chordFormat: DeltaFormat<ChordDelta> = {
  name: "chord",
  diff: diffChord,
  apply: (context, delta) => applyChord(context, delta),
};

/** The `json-patch` format (RFC 6902): see `json_patch.ts`. */
export const jsonPatchFormat: DeltaFormat<JsonPatch> = {
  name: "json-patch",
  diff: diffJsonPatch,
  apply: applyJsonPatch,
};

/** The `merge-patch` format (RFC 7386): see `merge_patch.ts`; its diff may be `undefined`. */
export const mergePatchFormat: DeltaFormat<JsonObject> = {
  name: "merge-patch",
  diff: diffMergePatch,
  apply: applyMergePatchToContext,
};

/** The name of the format used when a request names none. */
export const DEFAULT_DELTA_FORMAT = "chord";

/**
 * A registry of delta formats by name: `chord`, `json-patch` and `merge-patch`, then `extra` in
 * order (an extra format with a built-in's name replaces it).
 * @returns a new map the caller owns
 */
export function createDeltaFormats(extra: readonly DeltaFormat[] = []): Map<string, DeltaFormat> {
  const formats = new Map<string, DeltaFormat>();
  for (const format of [chordFormat, jsonPatchFormat, mergePatchFormat, ...extra]) {
    formats.set(format.name, format as DeltaFormat);
  }
  return formats;
}

/**
 * Applies deltas in order, starting from `base`.
 * @returns the context after the last delta (`base` itself when `deltas` is empty)
 * @throws {ChorusError} whatever `format.apply` throws for the first delta that does not fit
 */
export function replay<D>(
  format: DeltaFormat<D>,
  base: JsonObject,
  deltas: readonly D[],
): JsonObject {
  let context = base;
  for (const delta of deltas) context = format.apply(context, delta);
  return context;
}
