/**
 * Diff, apply and revert JSON deltas between contexts in three formats — `chord`, `json-patch`
 * (RFC 6902) and `merge-patch` (RFC 7386) — plus a registry for embedders' own formats.
 * @module
 */

export {
  applyChord,
  type ChordApplyOptions,
  type ChordDelta,
  type ChordMarker,
  diffChord,
  isChordMarker,
  revertChord,
  rewindChord,
} from "./chord.ts";
export {
  chordFormat,
  createDeltaFormats,
  DEFAULT_DELTA_FORMAT,
  type DeltaFormat,
  jsonPatchFormat,
  mergePatchFormat,
  replay,
} from "./format.ts";
export {
  deepClone,
  deepEqual,
  getOwn,
  isJsonObject,
  type Json,
  type JsonArray,
  type JsonObject,
  setOwn,
} from "./json.ts";
export {
  applyJsonPatch,
  diffJsonPatch,
  type JsonPatch,
  type JsonPatchOperation,
} from "./json_patch.ts";
export {
  applyMergePatch,
  applyMergePatchToContext,
  canExpressMergePatch,
  diffMergePatch,
} from "./merge_patch.ts";
