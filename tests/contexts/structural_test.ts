/**
 * Copy-on-write merge patches: the result and its delta come out deeply frozen (each new node is
 * frozen as it is made), untouched subtrees are shared, and the delta is the one a full diff gives.
 * @module
 */
import assert from "node:assert/strict";
import { mergePatchShared } from "../../contexts/structural.ts";
import { diffChord } from "../../deltas/chord.ts";
import { deepFreeze } from "../../storage/codec.ts";
import type { JsonObject } from "../../deltas/json.ts";

const isDeepFrozen = (v: unknown): boolean =>
  v === null || typeof v !== "object" ||
  (Object.isFrozen(v) && Object.values(v as object).every(isDeepFrozen));

Deno.test("[structural] a merge patch gives a deeply frozen context and delta, sharing the rest", () => {
  const before = deepFreeze({
    title: "room",
    people: { a: { cursor: 1 }, b: { cursor: 2 } },
    tags: ["x"],
  }) as JsonObject;
  const patches: JsonObject[] = [
    { people: { a: { cursor: 5 } } },
    { people: { c: { name: "new", seen: { at: 1 } } } },
    { title: { nested: {} } },
    { tags: null, extra: [1, { two: 2 }] },
    { people: { b: null } },
  ];
  for (const patch of patches) {
    const { context, delta } = mergePatchShared(before, deepFreeze(structuredClone(patch)));
    assert.ok(isDeepFrozen(context), JSON.stringify(patch));
    assert.ok(isDeepFrozen(delta), JSON.stringify(patch));
    assert.deepEqual(delta, diffChord(before, context));
    if (!("tags" in patch)) assert.equal((context as JsonObject).tags, before.tags);
  }
  const { context: same, delta } = mergePatchShared(before, deepFreeze({ title: "room" }));
  assert.equal(same, before);
  assert.deepEqual(delta, {});
});
