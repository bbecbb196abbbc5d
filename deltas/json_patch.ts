/**
 * The `json-patch` delta format: RFC 6902 JSON Patch with RFC 6901 pointers.
 *
 * {@linkcode diffJsonPatch} emits only `add`, `remove` and `replace`; {@linkcode applyJsonPatch}
 * accepts all six operations. Applying is atomic and pure: it works on a copy, so a failing op
 * leaves nothing half-done and the input is never mutated.
 * @module
 */

import { ChorusError } from "../errors.ts";
import {
  deepClone,
  deepEqual,
  isJsonObject,
  type Json,
  type JsonArray,
  type JsonObject,
  setOwn,
} from "./json.ts";
import { formatPointer, parsePointer } from "./_pointer.ts";

/** One RFC 6902 operation. */
export type JsonPatchOperation =
  | { op: "add"; path: string; value: Json }
  | { op: "remove"; path: string }
  | { op: "replace"; path: string; value: Json }
  | { op: "move"; from: string; path: string }
  | { op: "copy"; from: string; path: string }
  | { op: "test"; path: string; value: Json };

/** An RFC 6902 JSON Patch document: operations applied in order. */
export type JsonPatch = JsonPatchOperation[];

/**
 * The patch taking `from` to `to`: recurses into objects present on both sides; for arrays it
 * keeps a common prefix and suffix and emits element adds/removes when only one side has extra
 * elements in the middle, per-element changes when both middles have the same length, and a
 * whole-array `replace` otherwise. Values are copies, so the patch shares nothing with the inputs.
 * @returns `[]` when the objects are equal
 */
export function diffJsonPatch(from: JsonObject, to: JsonObject): JsonPatch {
  const ops: JsonPatch = [];
  diffObject(from, to, [], ops);
  return ops;
}

/**
 * Applies an RFC 6902 patch to a context, all or nothing, without mutating `doc` or `ops`.
 * @returns the patched context (a new object)
 * @throws {ChorusError} `invalid_request` for a malformed patch or op (unknown `op`, missing
 * `path`/`from`/`value`, bad pointer syntax) or when the result is not an object; `conflict` when
 * an op does not apply (missing path, index out of range, failed `test`, move into its own child).
 * Both carry `details: {op_index, op}`.
 */
export function applyJsonPatch(doc: JsonObject, ops: readonly JsonPatchOperation[]): JsonObject {
  if (!Array.isArray(ops)) {
    throw new ChorusError(
      "invalid_request",
      "Cannot apply patch: it must be an array of operations",
    );
  }
  let root: Json = deepClone(doc);
  for (let i = 0; i < ops.length; i++) {
    const op = parseOperation(ops[i], i);
    try {
      root = applyOperation(root, op);
    } catch (error) {
      if (!(error instanceof Misfit)) throw error;
      throw new ChorusError(
        "conflict",
        `Cannot apply patch: op ${i} (${op.op} "${op.path}"): ${error.message}`,
        { details: { op_index: i, op: ops[i] } },
      );
    }
    if (!isJsonObject(root)) {
      throw new ChorusError(
        "invalid_request",
        `Cannot apply patch: op ${i} (${op.op} "${op.path}"): a context must stay a JSON object`,
        { details: { op_index: i, op: ops[i] } },
      );
    }
  }
  return root as JsonObject;
}

// ---------------------------------------------------------------------------------------------
// diff

function diffValue(a: Json, b: Json, path: string[], ops: JsonPatch): void {
  if (isJsonObject(a) && isJsonObject(b)) diffObject(a, b, path, ops);
  else if (Array.isArray(a) && Array.isArray(b)) diffArray(a, b, path, ops);
  else if (!deepEqual(a, b)) {
    ops.push({ op: "replace", path: formatPointer(path), value: deepClone(b) });
  }
}

function diffObject(a: JsonObject, b: JsonObject, path: string[], ops: JsonPatch): void {
  for (const key of Object.keys(a)) {
    if (!Object.hasOwn(b, key)) ops.push({ op: "remove", path: formatPointer([...path, key]) });
  }
  for (const key of Object.keys(b)) {
    if (Object.hasOwn(a, key)) {
      if (a[key] === b[key]) continue; // shared (or equal primitive): unchanged, skip the walk
      diffValue(a[key], b[key], [...path, key], ops);
    } else {
      ops.push({ op: "add", path: formatPointer([...path, key]), value: deepClone(b[key]) });
    }
  }
}

function diffArray(a: JsonArray, b: JsonArray, path: string[], ops: JsonPatch): void {
  const shortest = Math.min(a.length, b.length);
  let prefix = 0;
  while (prefix < shortest && deepEqual(a[prefix], b[prefix])) prefix++;
  let suffix = 0;
  while (
    suffix < shortest - prefix && deepEqual(a[a.length - 1 - suffix], b[b.length - 1 - suffix])
  ) suffix++;
  const midA = a.length - prefix - suffix;
  const midB = b.length - prefix - suffix;
  const at = (index: number) => formatPointer([...path, String(index)]);
  if (midA === midB) {
    for (let i = prefix; i < prefix + midA; i++) diffValue(a[i], b[i], [...path, String(i)], ops);
  } else if (midA === 0) {
    for (let i = prefix; i < prefix + midB; i++) {
      ops.push({ op: "add", path: at(i), value: deepClone(b[i]) });
    }
  } else if (midB === 0) {
    for (let i = prefix + midA - 1; i >= prefix; i--) ops.push({ op: "remove", path: at(i) });
  } else {
    ops.push({ op: "replace", path: formatPointer(path), value: deepClone(b) });
  }
}

// ---------------------------------------------------------------------------------------------
// apply

interface ParsedOperation {
  op: JsonPatchOperation["op"];
  path: string;
  tokens: string[];
  from?: string;
  fromTokens?: string[];
  value?: Json;
}

const OPS = new Set(["add", "remove", "replace", "move", "copy", "test"]);

function parseOperation(raw: unknown, index: number): ParsedOperation {
  const bad = (reason: string) =>
    new ChorusError("invalid_request", `Cannot apply patch: op ${index}: ${reason}`, {
      details: { op_index: index, op: raw },
    });
  if (!isJsonObject(raw)) throw bad("an operation must be an object");
  const op = raw.op;
  if (typeof op !== "string" || !OPS.has(op)) {
    throw bad(`"op" must be one of add, remove, replace, move, copy, test`);
  }
  const path = raw.path;
  if (typeof path !== "string") throw bad(`"path" must be a string`);
  const tokens = parsePointer(path);
  if (tokens === undefined) throw bad(`"path" is not a JSON Pointer: "${path}"`);
  const parsed: ParsedOperation = { op: op as ParsedOperation["op"], path, tokens };
  if (op === "move" || op === "copy") {
    const from = raw.from;
    if (typeof from !== "string") throw bad(`"from" must be a string`);
    const fromTokens = parsePointer(from);
    if (fromTokens === undefined) throw bad(`"from" is not a JSON Pointer: "${from}"`);
    parsed.from = from;
    parsed.fromTokens = fromTokens;
  }
  if (op === "add" || op === "replace" || op === "test") {
    if (!Object.hasOwn(raw, "value") || raw.value === undefined) throw bad(`"value" is required`);
    parsed.value = raw.value;
  }
  return parsed;
}

/** Thrown inside one op; applyJsonPatch turns it into a `conflict` with the op's index. */
class Misfit extends Error {}

function applyOperation(root: Json, op: ParsedOperation): Json {
  switch (op.op) {
    case "add":
      return add(root, op.tokens, deepClone(op.value as Json));
    case "remove":
      remove(root, op.tokens);
      return root;
    case "replace":
      return replace(root, op.tokens, deepClone(op.value as Json));
    case "move": {
      const fromTokens = op.fromTokens as string[];
      if (op.from === op.path) {
        get(root, fromTokens);
        return root;
      }
      if (isProperPrefix(fromTokens, op.tokens)) {
        throw new Misfit(`cannot move "${op.from}" into its own child`);
      }
      return add(root, op.tokens, remove(root, fromTokens));
    }
    case "copy":
      return add(root, op.tokens, deepClone(get(root, op.fromTokens as string[])));
    case "test": {
      if (!deepEqual(get(root, op.tokens), op.value as Json)) {
        throw new Misfit(`test failed: the value at "${op.path}" differs`);
      }
      return root;
    }
  }
}

function isProperPrefix(prefix: string[], tokens: string[]): boolean {
  if (prefix.length >= tokens.length) return false;
  return prefix.every((token, i) => token === tokens[i]);
}

const INDEX = /^(0|[1-9][0-9]*)$/;

function arrayIndex(array: JsonArray, token: string, allowEnd: boolean): number {
  if (!INDEX.test(token)) throw new Misfit(`"${token}" is not an array index`);
  const index = Number(token);
  if (index > array.length || (index === array.length && !allowEnd)) {
    throw new Misfit(`index ${token} is out of range (length ${array.length})`);
  }
  return index;
}

function get(root: Json, tokens: readonly string[]): Json {
  let node = root;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i];
    if (Array.isArray(node)) {
      if (token === "-") {
        throw new Misfit(`no such path "${formatPointer(tokens.slice(0, i + 1))}"`);
      }
      node = node[arrayIndex(node, token, false)];
    } else if (isJsonObject(node) && Object.hasOwn(node, token)) {
      node = node[token];
    } else {
      throw new Misfit(`no such path "${formatPointer(tokens.slice(0, i + 1))}"`);
    }
  }
  return node;
}

function parentOf(root: Json, tokens: readonly string[]): JsonObject | JsonArray {
  const parent = get(root, tokens.slice(0, -1));
  if (typeof parent !== "object" || parent === null) {
    throw new Misfit(`"${formatPointer(tokens.slice(0, -1))}" is not an object or array`);
  }
  return parent;
}

function add(root: Json, tokens: readonly string[], value: Json): Json {
  if (tokens.length === 0) return value;
  const parent = parentOf(root, tokens);
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    if (last === "-") parent.push(value);
    else parent.splice(arrayIndex(parent, last, true), 0, value);
  } else {
    setOwn(parent, last, value);
  }
  return root;
}

function remove(root: Json, tokens: readonly string[]): Json {
  if (tokens.length === 0) throw new Misfit("cannot remove the root");
  const parent = parentOf(root, tokens);
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    if (last === "-") throw new Misfit(`no such path "${formatPointer(tokens)}"`);
    return parent.splice(arrayIndex(parent, last, false), 1)[0];
  }
  if (!Object.hasOwn(parent, last)) throw new Misfit(`no such path "${formatPointer(tokens)}"`);
  const removed = parent[last];
  delete parent[last];
  return removed;
}

function replace(root: Json, tokens: readonly string[], value: Json): Json {
  if (tokens.length === 0) return value;
  const parent = parentOf(root, tokens);
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    if (last === "-") throw new Misfit(`no such path "${formatPointer(tokens)}"`);
    parent[arrayIndex(parent, last, false)] = value;
  } else {
    if (!Object.hasOwn(parent, last)) throw new Misfit(`no such path "${formatPointer(tokens)}"`);
    setOwn(parent, last, value);
  }
  return root;
}
