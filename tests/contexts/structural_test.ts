/**
 * Copy-on-write merge patches: the result and its delta come out deeply frozen (each new node is
 * frozen as it is made), untouched subtrees are shared, and the delta is the one a full diff gives.
 * Applying the stored deltas forward (a head's replay) gives every later version back. A write
 * batch's merge patches change its own working copy in place and must give the same versions and
 * deltas as copying every time, without changing anything a version or a delta already holds.
 * @module
 */
import assert from "node:assert/strict";
import {
  applyShared,
  mergePatchInPlace,
  mergePatchShared,
  revertShared,
  rewindShared,
} from "../../contexts/structural.ts";
import { mulberry32 } from "../../prng.ts";
import { type ChordDelta, diffChord } from "../../deltas/chord.ts";
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

const KEYS = ["a", "b", "c", "action", "value"];

/** RFC 7386 merge patch, written here independently of contexts/structural.ts. */
function rfc7386(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = rfc7386(out[key], value);
  }
  return out;
}

/** A random merge patch over a few keys, deep at times, with `null`s that remove. */
function randomPatch(rand: () => number, depth = 0): JsonObject {
  const patch: JsonObject = {};
  for (const key of KEYS) {
    const r = rand();
    if (r < 0.55) continue;
    if (r < 0.65) patch[key] = null;
    else if (r < 0.8 || depth > 2) patch[key] = Math.floor(rand() * 4);
    else if (r < 0.85) patch[key] = [Math.floor(rand() * 3)];
    else patch[key] = randomPatch(rand, depth + 1);
  }
  return patch;
}

Deno.test("[structural] patches applied in place to a batch's working copy match copy-on-write, and change nothing shared", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rand = mulberry32(seed);
    const start = deepFreeze({ a: { b: { c: 1 } }, value: 2, c: { action: 3 } }) as JsonObject;
    const versions = [start];
    const deltas: ChordDelta[] = [];
    let working = start;
    const recorded: { delta: ChordDelta; copy: ChordDelta }[] = [];
    for (let step = 0; step < 12; step++) {
      const patch = deepFreeze(randomPatch(rand));
      const before = versions.at(-1)!;
      const expected = mergePatchShared(before, patch);
      const change = mergePatchInPlace(working, patch);
      working = change.context;
      const at = `seed ${seed}, step ${step}`;
      // Against RFC 7386 written independently here, and the delta applied both ways.
      assert.deepEqual(working, rfc7386(before, patch), at);
      assert.deepEqual(applyShared(before, change.delta), rfc7386(before, patch), at);
      assert.deepEqual(revertShared(expected.context, change.delta), before, at);
      assert.deepEqual(working, expected.context, at);
      assert.deepEqual(change.delta, expected.delta, at);
      assert.ok(isDeepFrozen(change.delta), `seed ${seed}, step ${step}: delta not frozen`);
      versions.push(expected.context);
      deltas.push(change.delta);
      recorded.push({ delta: change.delta, copy: structuredClone(change.delta) });
    }
    // Nothing a recorded delta holds (its old values above all) changed under later patches.
    for (const { delta, copy } of recorded) assert.deepEqual(delta, copy, `seed ${seed}`);
    assert.deepEqual(start, { a: { b: { c: 1 } }, value: 2, c: { action: 3 } });
    deepFreeze(working);
    assert.deepEqual(working, versions.at(-1));
    // Rewinding (which also changes its own new nodes in place) gives every earlier version.
    for (let back = 0; back <= deltas.length; back++) {
      const at = deltas.length - back;
      assert.deepEqual(rewindShared(working, deltas.slice(at)), versions[at], `seed ${seed}`);
    }
    assert.ok(isDeepFrozen(working));
  }
});

Deno.test("[structural] a rewind over many deltas equals reverting one at a time", () => {
  const rand = mulberry32(7);
  let context = deepFreeze({ people: {} }) as JsonObject;
  const deltas: ChordDelta[] = [];
  for (let i = 0; i < 60; i++) {
    const patch = deepFreeze({ people: { [`p${i % 7}`]: { cursor: i, ...randomPatch(rand) } } });
    const change = mergePatchShared(context, patch);
    context = change.context;
    deltas.push(change.delta);
  }
  let oneByOne = context;
  for (let i = deltas.length - 1; i >= 0; i--) oneByOne = revertShared(oneByOne, deltas[i]);
  assert.deepEqual(rewindShared(context, deltas), oneByOne);
  assert.deepEqual(oneByOne, { people: {} });
});

Deno.test("[structural] keys a polluted prototype adds are neither merged nor frozen", () => {
  const extra = { mutable: true };
  Object.defineProperty(Object.prototype, "polluted", {
    value: extra,
    enumerable: true,
    configurable: true,
    writable: true,
  });
  try {
    const context = deepFreeze({ a: 1, nested: { b: 2 } }) as JsonObject;
    const patch = deepFreeze({ nested: { c: 3 } }) as JsonObject;
    for (const change of [mergePatchShared(context, patch), mergePatchInPlace(context, patch)]) {
      assert.deepEqual(JSON.parse(JSON.stringify(change.context)), {
        a: 1,
        nested: { b: 2, c: 3 },
      });
      assert.ok(!Object.hasOwn(change.context, "polluted"));
      assert.deepEqual(Object.keys(change.delta), ["nested"]);
    }
    deepFreeze({ x: { y: 1 } });
    assert.ok(!Object.isFrozen(extra));
  } finally {
    delete (Object.prototype as Record<string, unknown>).polluted;
  }
});
