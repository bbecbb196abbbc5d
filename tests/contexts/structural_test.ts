/**
 * Copy-on-write merge patches: the result and its delta come out deeply frozen (each new node is
 * frozen as it is made), untouched subtrees are shared, and the delta is the one a full diff gives.
 * Applying the stored deltas forward (a head's replay) gives every later version back.
 * @module
 */
import assert from "node:assert/strict";
import { applyShared, mergePatchShared, rewindShared } from "../../contexts/structural.ts";
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

Deno.test("[structural] stored deltas applied forward give each later version, sharing the rest", () => {
  const start = deepFreeze({
    title: "doc",
    items: { a: { done: false, tags: ["x"] }, b: { done: true } },
    cursors: {},
  }) as JsonObject;
  const patches: JsonObject[] = [
    { cursors: { u1: 3 } },
    { items: { a: { done: true } } },
    { items: { c: { done: false, nested: { deep: [1, 2] } } } },
    { items: { b: null }, title: "renamed" },
    { cursors: { u1: null, u2: { at: 9 } } },
    { items: { c: { nested: { action: "a user key named action" } } } },
    { title: { now: "an object" } },
  ];
  const versions = [start];
  const deltas = [];
  for (const patch of patches) {
    const { context, delta } = mergePatchShared(versions.at(-1)!, deepFreeze(patch));
    versions.push(context);
    deltas.push(delta);
  }
  for (let from = 0; from < versions.length; from++) {
    let context = versions[from];
    for (let i = from; i < deltas.length; i++) {
      context = applyShared(context, deltas[i]);
      assert.deepEqual(context, versions[i + 1], `from ${from}, after delta ${i}`);
      assert.ok(isDeepFrozen(context));
    }
  }
  // Forward and back are inverses; untouched subtrees stay shared.
  const end = versions.at(-1)!;
  assert.deepEqual(rewindShared(end, deltas), start);
  const once = applyShared(start, deltas[0]);
  assert.equal(once.items, start.items);
  assert.throws(
    () => applyShared(start, { title: { x: { action: "added", value: 1 } } }),
    /no object there/,
  );
});
