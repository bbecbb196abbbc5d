/**
 * JSON value types and the few helpers every delta format needs: structural equality, cloning,
 * and prototype-safe property writes.
 *
 * Contexts arrive from `JSON.parse`, which creates an *own* `"__proto__"` property when the text has
 * that key. A plain `obj[key] = value` with such a key would change the object's prototype instead
 * (prototype pollution), so every write in `deltas/` goes through {@linkcode setOwn}.
 * @module
 */

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | JsonObject;

/** A JSON object; a context is always one. */
export type JsonObject = { [key: string]: Json };

/** A JSON array. */
export type JsonArray = Json[];

/**
 * Whether a value is a JSON object (not an array, not null).
 * @returns true for `{...}`, false for arrays, primitives and `null`
 */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Structural equality of two JSON values: key order is ignored, array order is not.
 * Only own properties count, so `"__proto__"` keys compare like any other key.
 */
export function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      if (!deepEqual(a[i], b[i])) return false;
    }
    return true;
  }
  if (Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    if (!Object.hasOwn(b, key) || !deepEqual(a[key], b[key])) return false;
  }
  return true;
}

/**
 * A deep copy of a JSON value, so results never share mutable parts with inputs.
 * Own `"__proto__"` keys survive as plain properties.
 */
export function deepClone<T extends Json>(value: T): T {
  return structuredClone(value);
}

/**
 * Sets `obj[key] = value` as an own, enumerable data property, even for `"__proto__"`.
 * Why: plain assignment with that key would replace the prototype rather than add a key.
 */
export function setOwn(obj: JsonObject, key: string, value: Json): void {
  if (key === "__proto__") {
    Object.defineProperty(obj, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else {
    obj[key] = value;
  }
}

/**
 * The value of an own property, or undefined when the key is absent; never reads the prototype
 * chain (so `getOwn({}, "__proto__")` and `getOwn({}, "toString")` are undefined).
 */
export function getOwn(obj: JsonObject, key: string): Json | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}
