import assert from "node:assert/strict";
import { deepFreeze, jsonText } from "../../storage/codec.ts";

Deno.test("jsonText: the text of a frozen value is JSON.stringify's, made once", () => {
  const value = deepFreeze({ a: [1, 2, { b: "é" }], c: null });
  assert.equal(jsonText(value), JSON.stringify(value));
  assert.equal(jsonText(value), jsonText(value));
});

Deno.test("jsonText: a value that can still change is stringified every time", () => {
  const value: Record<string, unknown> = { n: 1 };
  assert.equal(jsonText(value), '{"n":1}');
  value.n = 2;
  assert.equal(jsonText(value), '{"n":2}');
  for (const primitive of ["text", 0, -2.5, true, null]) {
    assert.equal(jsonText(primitive), JSON.stringify(primitive));
  }
});
