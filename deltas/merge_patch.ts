/**
 * The `merge-patch` delta format: RFC 7386 JSON Merge Patch.
 *
 * A merge patch mirrors the target: members are merged recursively, `null` removes a member, and
 * anything that is not an object (arrays included) replaces the target value whole.
 *
 * ## Limitation
 *
 * Because `null` means "remove", a merge patch cannot *set* a member to `null`, nor write an object
 * that has a `null` member anywhere in its object nesting (`{"a": {"b": null}}` would drop `b`).
 * `null`s inside arrays are fine, since arrays are written whole. {@linkcode diffMergePatch} returns
 * `undefined` for such changes; the caller then falls back to another format or to the full
 * context.
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

/**
 * The merge patch taking `from` to `to`, or `undefined` when merge patch cannot express the change
 * (see the module's limitation: a `null` that would have to be written). `{}` when they are equal.
 */
export function diffMergePatch(from: JsonObject, to: JsonObject): JsonObject | undefined {
  const patch = diffMembers(from, to);
  return patch === INEXPRESSIBLE ? undefined : patch ?? {};
}

/**
 * Whether the change from `from` to `to` can be written as a merge patch; false when `to` holds a
 * `null` member (at any object depth, outside arrays) where the value changes.
 */
export function canExpressMergePatch(from: JsonObject, to: JsonObject): boolean {
  return diffMergePatch(from, to) !== undefined;
}

/**
 * Applies an object merge patch to an object (a context) with the RFC 7386 algorithm, without
 * mutating `target` or `patch`; the result shares nothing with either.
 * @returns the merged object
 */
export function applyMergePatch(target: JsonObject, patch: JsonObject): JsonObject;
/**
 * Applies any merge patch to any JSON value (or to nothing, `undefined`) with the RFC 7386
 * algorithm, without mutating its inputs. A non-object patch replaces the target whole.
 * @returns the merged value
 */
export function applyMergePatch(target: Json | undefined, patch: Json): Json;
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isJsonObject(patch)) return deepClone(patch);
  const result: JsonObject = isJsonObject(target) ? deepClone(target) : {};
  mergeInto(result, patch);
  return result;
}

/**
 * Applies a merge patch to a context, checking that the patch is an object (a context must stay
 * an object, so a scalar or array patch is rejected rather than replacing it).
 * @throws {ChorusError} `invalid_request` when `patch` is not a JSON object
 */
export function applyMergePatchToContext(context: JsonObject, patch: unknown): JsonObject {
  if (!isJsonObject(patch)) {
    throw new ChorusError(
      "invalid_request",
      "Cannot apply merge patch: a context patch must be a JSON object",
    );
  }
  return applyMergePatch(context, patch);
}

function mergeInto(target: JsonObject, patch: JsonObject): void {
  for (const key of Object.keys(patch)) {
    const value = patch[key];
    if (value === null) {
      delete target[key];
    } else if (isJsonObject(value)) {
      const current = getOwn(target, key);
      const child: JsonObject = isJsonObject(current) ? current : {};
      mergeInto(child, value);
      setOwn(target, key, child);
    } else {
      setOwn(target, key, deepClone(value));
    }
  }
}

/** Marks a change merge patch cannot write; `undefined` from diffMembers means "no change". */
const INEXPRESSIBLE = Symbol("inexpressible");

function diffMembers(
  from: JsonObject,
  to: JsonObject,
): JsonObject | undefined | typeof INEXPRESSIBLE {
  let patch: JsonObject | undefined;
  const put = (key: string, value: Json) => {
    patch ??= {};
    setOwn(patch, key, value);
  };
  for (const key of Object.keys(from)) {
    if (!Object.hasOwn(to, key)) put(key, null);
  }
  for (const key of Object.keys(to)) {
    const b = to[key];
    const a = getOwn(from, key);
    if (a === b) continue; // shared (or equal primitive): unchanged, skip the walk
    if (isJsonObject(a) && isJsonObject(b)) {
      const sub = diffMembers(a, b);
      if (sub === INEXPRESSIBLE) return INEXPRESSIBLE;
      if (sub !== undefined) put(key, sub);
    } else if (a === undefined || !deepEqual(a, b)) {
      if (!writable(b)) return INEXPRESSIBLE;
      put(key, deepClone(b));
    }
  }
  return patch;
}

/** Whether a value survives being written by a merge patch: no `null` outside arrays. */
function writable(value: Json): boolean {
  if (value === null) return false;
  if (!isJsonObject(value)) return true;
  for (const key of Object.keys(value)) {
    if (!writable(value[key])) return false;
  }
  return true;
}
