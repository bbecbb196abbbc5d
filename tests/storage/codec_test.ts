/**
 * `frozenJsonCopy`: the copy a write keeps is what JSON stores (so the cached value and one
 * reloaded from KV agree), deeply frozen, and bad input is refused with a clear error.
 * @module
 */
import assert from "node:assert/strict";
import { frozenJsonCopy, MAX_JSON_DEPTH } from "../../storage/codec.ts";
import { ChorusError } from "../../errors.ts";

const isDeepFrozen = (v: unknown): boolean =>
  v === null || typeof v !== "object" ||
  (Object.isFrozen(v) && Object.values(v as object).every(isDeepFrozen));

Deno.test("[codec] frozenJsonCopy copies with JSON's rules and freezes every node", () => {
  const input = {
    a: [1, "x", true, null, { b: { c: [] } }],
    skipped: undefined,
    holes: [undefined, 2],
    when: new Date(0),
    custom: { toJSON: (key: string) => `key:${key}` },
    text: "é",
  };
  const copy = frozenJsonCopy(input);
  const viaJson = JSON.parse(JSON.stringify(input));
  assert.deepEqual(copy, viaJson);
  assert.ok(isDeepFrozen(copy));
  assert.ok(!Object.isFrozen(input) && !Object.isFrozen(input.a), "the input is left alone");
  assert.notEqual(copy.a, input.a);
  assert.equal(frozenJsonCopy(5), 5);
  assert.equal(frozenJsonCopy("s"), "s");
  assert.equal(frozenJsonCopy(null), null);
});

Deno.test("[codec] frozenJsonCopy keeps an own __proto__ key as data, never as a prototype", () => {
  const input = JSON.parse('{"__proto__":{"polluted":true},"x":1}');
  const copy = frozenJsonCopy(input) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(copy), Object.prototype);
  assert.deepEqual(Object.keys(copy), ["__proto__", "x"]);
  assert.equal(JSON.stringify(copy), '{"__proto__":{"polluted":true},"x":1}');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("[codec] frozenJsonCopy refuses what JSON cannot store, with invalid_request", () => {
  const refused = (value: unknown, pattern: RegExp) =>
    assert.throws(() => frozenJsonCopy(value, "the value"), (e: unknown) => {
      assert.ok(e instanceof ChorusError);
      assert.equal(e.code, "invalid_request");
      assert.match(e.message, pattern);
      return true;
    });
  refused({ n: NaN }, /number JSON cannot represent \(NaN\)/);
  refused([Infinity], /Infinity/);
  refused({ f: () => 1 }, /function/);
  refused({ s: Symbol("x") }, /symbol/);
  refused({ big: 1n }, /bigint/);
  refused(undefined, /not a JSON value/);
  let deep: unknown = 1;
  for (let i = 0; i <= MAX_JSON_DEPTH; i++) deep = [deep];
  refused(deep, /nests deeper than 256/);
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  refused(cycle, /nests deeper/);
});
