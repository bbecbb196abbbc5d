import assert from "node:assert/strict";
import { ChorusError } from "../../errors.ts";
import {
  applyMergePatch,
  applyMergePatchToContext,
  canExpressMergePatch,
  diffMergePatch,
  type Json,
  type JsonObject,
} from "../../deltas/mod.ts";

/** Parses JSON text so `__proto__` keys become own properties, as they do on the wire. */
function json<T = Json>(text: string): T {
  return JSON.parse(text);
}

// RFC 7386 Appendix A: [original, patch, result].
const APPENDIX_A: [string, string, string][] = [
  [`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`],
  [`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`],
  [`{"a":"b"}`, `{"a":null}`, `{}`],
  [`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`],
  [`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`],
  [`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`],
  [`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`],
  [`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`],
  [`["a","b"]`, `["c","d"]`, `["c","d"]`],
  [`{"a":"b"}`, `["c"]`, `["c"]`],
  [`{"a":"foo"}`, `null`, `null`],
  [`{"a":"foo"}`, `"bar"`, `"bar"`],
  [`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`],
  [`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`],
  [`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`],
];

for (const [original, patch, result] of APPENDIX_A) {
  Deno.test(`applyMergePatch: RFC 7386 appendix ${original} + ${patch}`, () => {
    const target = json(original);
    const patchValue = json(patch);
    assert.deepEqual(applyMergePatch(target, patchValue), json(result));
    assert.deepEqual(target, json(original), "the target is not mutated");
    assert.deepEqual(patchValue, json(patch), "the patch is not mutated");
  });
}

Deno.test("applyMergePatch: RFC 7386 section 3 example", () => {
  const target = json<JsonObject>(`{
    "title": "Goodbye!",
    "author": {"givenName": "John", "familyName": "Doe"},
    "tags": ["example", "sample"],
    "content": "This will be unchanged"
  }`);
  const patch = json<JsonObject>(`{
    "title": "Hello!",
    "phoneNumber": "+01-123-456-7890",
    "author": {"familyName": null},
    "tags": ["example"]
  }`);
  assert.deepEqual(
    applyMergePatch(target, patch),
    json(`{
      "title": "Hello!",
      "author": {"givenName": "John"},
      "tags": ["example"],
      "content": "This will be unchanged",
      "phoneNumber": "+01-123-456-7890"
    }`),
  );
});

Deno.test("applyMergePatch shares nothing with its inputs", () => {
  const target = { keep: { x: [1] } };
  const patch = { add: { y: [2] } };
  const result = applyMergePatch(target, patch);
  (result.keep as { x: number[] }).x.push(9);
  (result.add as { y: number[] }).y.push(9);
  assert.deepEqual(target, { keep: { x: [1] } });
  assert.deepEqual(patch, { add: { y: [2] } });
});

Deno.test("applyMergePatchToContext rejects a non-object patch with invalid_request", () => {
  for (const patch of [null, [1], "x", 3]) {
    assert.throws(
      () => applyMergePatchToContext({ a: 1 }, patch),
      (error: unknown) => error instanceof ChorusError && error.status === 400,
    );
  }
  assert.deepEqual(applyMergePatchToContext({ a: 1 }, { a: null, b: 2 }), { b: 2 });
});

Deno.test("__proto__ members are own keys and never pollute prototypes", () => {
  const patch = json<JsonObject>(`{"__proto__": {"polluted": true}, "o": {"__proto__": {"p": 1}}}`);
  const result = applyMergePatch({ o: {} }, patch);
  assert.ok(Object.hasOwn(result, "__proto__"));
  assert.ok(Object.hasOwn(result.o as JsonObject, "__proto__"));
  assert.equal(Object.getPrototypeOf(result), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(({} as Record<string, unknown>).p, undefined);
  assert.deepEqual(applyMergePatch(result, json(`{"__proto__": null}`)), { o: result.o });
  assert.deepEqual(diffMergePatch({}, patch), patch);
});

Deno.test("diffMergePatch: null removes, objects recurse, arrays and scalars replace", () => {
  const from = { a: 1, gone: "x", o: { keep: 1, change: [1, 2], drop: true }, t: { x: 1 } };
  const to = { a: 1, o: { keep: 1, change: [1, null] }, t: [1], n: { deep: { v: 1 } } };
  const patch = diffMergePatch(from, to);
  assert.deepEqual(patch, {
    gone: null,
    o: { change: [1, null], drop: null },
    t: [1],
    n: { deep: { v: 1 } },
  });
  assert.deepEqual(applyMergePatch(from, patch as JsonObject), to);
  assert.deepEqual(diffMergePatch(to, to), {});
});

Deno.test("diffMergePatch returns undefined when a null would have to be written", () => {
  const inexpressible: [JsonObject, JsonObject][] = [
    [{ a: 1 }, { a: null }],
    [{}, { a: null }],
    [{}, { a: { b: null } }],
    [{ a: 1 }, { a: { b: { c: null } } }],
    [{ a: { b: 1 } }, { a: { b: null } }],
  ];
  for (const [from, to] of inexpressible) {
    assert.equal(diffMergePatch(from, to), undefined, JSON.stringify([from, to]));
    assert.equal(canExpressMergePatch(from, to), false);
  }
  const expressible: [JsonObject, JsonObject][] = [
    [{ a: null }, { a: null, b: 1 }],
    [{ a: { n: null } }, { a: { n: null, m: 1 } }],
    [{}, { list: [null, { x: null }] }],
    [{ a: null }, {}],
    [{ a: null }, { a: 1 }],
  ];
  for (const [from, to] of expressible) {
    const patch = diffMergePatch(from, to);
    assert.ok(patch !== undefined, JSON.stringify([from, to]));
    assert.ok(canExpressMergePatch(from, to));
    assert.deepEqual(applyMergePatch(from, patch), to);
  }
});
