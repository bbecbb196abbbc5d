import assert from "node:assert/strict";
import { ChorusError } from "../../errors.ts";
import {
  applyChord,
  type ChordDelta,
  diffChord,
  isChordMarker,
  type JsonObject,
  revertChord,
  rewindChord,
} from "../../deltas/mod.ts";

function assertChorusError(fn: () => unknown, code: string, status: number): ChorusError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ChorusError, `expected a ChorusError, got ${caught}`);
  assert.equal(caught.code, code);
  assert.equal(caught.status, status);
  return caught;
}

function roundTrip(from: JsonObject, to: JsonObject): ChordDelta {
  const before = JSON.stringify(from);
  const delta = diffChord(from, to);
  assert.deepEqual(applyChord(from, delta), to);
  assert.deepEqual(revertChord(to, delta), from);
  assert.equal(JSON.stringify(from), before, "inputs are not mutated");
  return delta;
}

Deno.test("diffChord of equal contexts is {}", () => {
  assert.deepEqual(diffChord({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 }), {});
});

Deno.test("diffChord marks nested added, modified and removed leaves", () => {
  const from = { user: { name: "ann", age: 30, tags: ["a"] }, gone: true, same: 1 };
  const to = { user: { name: "ann", age: 31, email: "a@x" }, same: 1, fresh: { x: 1 } };
  assert.deepEqual(roundTrip(from, to), {
    gone: { action: "removed", old_value: true },
    fresh: { action: "added", value: { x: 1 } },
    user: {
      age: { action: "modified", value: 31, old_value: 30 },
      tags: { action: "removed", old_value: ["a"] },
      email: { action: "added", value: "a@x" },
    },
  });
});

Deno.test("diffChord treats arrays as leaves and carries both whole arrays", () => {
  assert.deepEqual(roundTrip({ list: [1, { a: 2 }] }, { list: [1, { a: 3 }] }), {
    list: { action: "modified", value: [1, { a: 3 }], old_value: [1, { a: 2 }] },
  });
});

Deno.test("diffChord treats a change of type as a modified leaf", () => {
  assert.deepEqual(
    roundTrip({ a: { b: 1 }, c: "s", d: [1] }, { a: "x", c: { s: 1 }, d: { 0: 1 } }),
    {
      a: { action: "modified", value: "x", old_value: { b: 1 } },
      c: { action: "modified", value: { s: 1 }, old_value: "s" },
      d: { action: "modified", value: { 0: 1 }, old_value: [1] },
    },
  );
  assert.deepEqual(roundTrip({ a: null }, { a: {} }), {
    a: { action: "modified", value: {}, old_value: null },
  });
});

Deno.test("chord values are opaque: marker-shaped context values round-trip", () => {
  const from = { a: { action: "added", value: 1 } };
  const to = { a: { action: "added", value: 2 }, b: { action: "removed", old_value: 3 } };
  const delta = roundTrip(from, to);
  assert.deepEqual(delta, {
    a: { value: { action: "modified", value: 2, old_value: 1 } },
    b: { action: "added", value: { action: "removed", old_value: 3 } },
  });
  assert.equal(isChordMarker(delta.a), false);
  assert.equal(isChordMarker(delta.b), true);
});

Deno.test("diffChord never nests a node with an action key: the parent becomes a modified leaf", () => {
  const from = { outer: { action: "added", value: 1, other: 5 } };
  const to = { outer: { action: "removed", value: 1, other: 5 } };
  assert.deepEqual(roundTrip(from, to), {
    outer: { action: "modified", value: to.outer, old_value: from.outer },
  });
  // Same for an `action` member that is itself an object.
  const from2 = { o: { action: { x: 1 } } };
  const to2 = { o: { action: { x: 2 } } };
  assert.deepEqual(roundTrip(from2, to2), {
    o: { action: "modified", value: to2.o, old_value: from2.o },
  });
});

Deno.test("a top-level action key is a member of the root node", () => {
  assert.deepEqual(roundTrip({ action: "x" }, { action: "y" }), {
    action: { action: "modified", value: "y", old_value: "x" },
  });
  assert.deepEqual(roundTrip({ action: "x" }, {}), {
    action: { action: "removed", old_value: "x" },
  });
});

Deno.test("keys with / and ~ and the empty key are plain keys", () => {
  roundTrip({ "a/b": 1, "~": { "": 1 } }, { "a/b": 2, "~": { "": 2, "/": 3 } });
});

Deno.test("__proto__ keys are own properties and never pollute prototypes", () => {
  const from: JsonObject = JSON.parse('{"x": {"__proto__": {"polluted": 1}}}');
  const to: JsonObject = JSON.parse(
    '{"x": {"__proto__": {"polluted": 2}}, "__proto__": {"polluted": true}}',
  );
  const delta = roundTrip(from, to);
  assert.ok(Object.hasOwn(delta, "__proto__"));
  const result = applyChord(from, delta);
  assert.ok(Object.hasOwn(result, "__proto__"));
  assert.equal(Object.getPrototypeOf(result), Object.prototype);
  assert.equal(Object.getPrototypeOf(result.x), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  // A delta that adds __proto__ to a context without one.
  const added = applyChord({}, JSON.parse('{"__proto__": {"action": "added", "value": {"p": 1}}}'));
  assert.deepEqual(Object.keys(added), ["__proto__"]);
  assert.equal(({} as Record<string, unknown>).p, undefined);
  // "__proto__" is never read through the prototype chain.
  assertChorusError(
    () => applyChord({}, JSON.parse('{"__proto__": {"a": {"action": "added", "value": 1}}}')),
    "conflict",
    409,
  );
});

Deno.test("applyChord and revertChord do not mutate their inputs nor share values", () => {
  const from = { a: { b: [1] } };
  const delta = diffChord(from, { a: { b: [1, 2] } });
  const deltaText = JSON.stringify(delta);
  const result = applyChord(from, delta);
  (result.a as { b: number[] }).b.push(3);
  assert.equal(JSON.stringify(delta), deltaText);
  assert.deepEqual(from, { a: { b: [1] } });
});

Deno.test("malformed chord deltas are invalid_request (400)", () => {
  const ctx = { a: 1 };
  const bad: unknown[] = [
    [],
    "x",
    { a: 5 },
    { a: null },
    { a: [] },
    { a: { action: "bogus", value: 1 } },
    { a: { action: "added" } },
    { a: { action: "added", value: 1, old_value: 0 } },
    { a: { action: "modified", value: 1 } },
    { a: { action: "removed", old_value: 1, extra: true } },
  ];
  for (const delta of bad) {
    assertChorusError(() => applyChord(ctx, delta as ChordDelta), "invalid_request", 400);
  }
});

Deno.test("chord deltas that do not fit the context are conflict (409)", () => {
  const ctx = { a: 1, o: { x: 1 } };
  const misfits: ChordDelta[] = [
    { a: { action: "added", value: 2 } },
    { b: { action: "modified", value: 2, old_value: 1 } },
    { b: { action: "removed", old_value: 1 } },
    { a: { x: { action: "added", value: 1 } } },
    { missing: { x: { action: "added", value: 1 } } },
  ];
  for (const delta of misfits) {
    const error = assertChorusError(() => applyChord(ctx, delta), "conflict", 409);
    assert.equal(typeof error.details?.path, "string");
  }
  const error = assertChorusError(
    () => applyChord(ctx, { o: { "x/y": { action: "removed", old_value: 1 } } }),
    "conflict",
    409,
  );
  assert.equal(error.details?.path, "/o/x~1y");
  assertChorusError(
    () => revertChord(ctx, { a: { action: "removed", old_value: 1 } }),
    "conflict",
    409,
  );
});

Deno.test("verify checks the values being replaced", () => {
  const delta: ChordDelta = { a: { action: "modified", value: 2, old_value: 1 } };
  assert.deepEqual(applyChord({ a: 1 }, delta, { verify: true }), { a: 2 });
  assert.deepEqual(applyChord({ a: 5 }, delta), { a: 2 });
  assertChorusError(() => applyChord({ a: 5 }, delta, { verify: true }), "conflict", 409);
  assert.deepEqual(revertChord({ a: 2 }, delta, { verify: true }), { a: 1 });
  assertChorusError(() => revertChord({ a: 3 }, delta, { verify: true }), "conflict", 409);
});

Deno.test("rewindChord walks back through stored deltas to an older version", () => {
  const versions: JsonObject[] = [
    { n: 0 },
    { n: 1, list: [1] },
    { n: 2, list: [1, 2], o: { k: "v" } },
    { n: 3, o: { k: "w" } },
  ];
  const deltas = versions.slice(1).map((v, i) => diffChord(versions[i], v));
  for (let i = 0; i < versions.length; i++) {
    assert.deepEqual(rewindChord(versions[3], deltas.slice(i)), versions[i]);
  }
});
