import assert from "node:assert/strict";
import { deepFreeze, jsonText } from "../../storage/codec.ts";

/** Runs `fn` with `JSON.stringify` counting its calls; returns the count. */
function stringifications(fn: () => void): number {
  const original = JSON.stringify;
  let calls = 0;
  JSON.stringify = ((...args: Parameters<typeof original>) => {
    calls++;
    return original(...args);
  }) as typeof original;
  try {
    fn();
  } finally {
    JSON.stringify = original;
  }
  return calls;
}

Deno.test("jsonText: the text of a frozen value is JSON.stringify's, made once", () => {
  const value = deepFreeze({ a: [1, 2, { b: "é" }], c: null });
  const expected = JSON.stringify(value);
  const calls = stringifications(() => {
    for (let i = 0; i < 5; i++) assert.equal(jsonText(value), expected);
  });
  assert.equal(calls, 1);
  // Another frozen value with the same content has its own text.
  const twin = deepFreeze({ a: [1, 2, { b: "é" }], c: null });
  assert.equal(stringifications(() => assert.equal(jsonText(twin), expected)), 1);
});

Deno.test("jsonText: a value that can still change is stringified every time", () => {
  const value: Record<string, unknown> = { n: 1 };
  assert.equal(jsonText(value), '{"n":1}');
  value.n = 2;
  assert.equal(jsonText(value), '{"n":2}');
  assert.equal(stringifications(() => jsonText(value)), 1);
  assert.equal(stringifications(() => jsonText(value)), 1);
  for (const primitive of ["text", 0, -2.5, true, null]) {
    assert.equal(jsonText(primitive), JSON.stringify(primitive));
  }
});
