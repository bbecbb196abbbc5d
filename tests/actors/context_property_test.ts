import assert from "node:assert/strict";
import jsonpatch from "fast-json-patch";
import { openTest } from "../_helpers.ts";
import { applyChord, type ChordDelta } from "../../deltas/chord.ts";
import type { JsonObject } from "../../deltas/json.ts";
import { mulberry32 } from "../../prng.ts";

const KEYS = ["a", "b", "c", "d", "action", "value", "x y", "~1"];

function randomValue(rand: () => number, depth: number): unknown {
  const r = rand();
  if (depth > 2 || r < 0.35) {
    const s = rand();
    if (s < 0.2) return null;
    if (s < 0.4) return rand() < 0.5;
    if (s < 0.7) return Math.floor(rand() * 100);
    return ["x", "y", "", "ünï"][Math.floor(rand() * 4)];
  }
  if (r < 0.55) {
    return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(rand, depth + 1));
  }
  return randomObject(rand, depth + 1);
}

function randomObject(rand: () => number, depth = 0): JsonObject {
  const out: JsonObject = {};
  for (const key of KEYS) if (rand() < 0.4) out[key] = randomValue(rand, depth) as never;
  return out;
}

/** A random change of `base`: keys set, removed or replaced, sometimes deep. */
function mutate(rand: () => number, base: JsonObject, depth = 0): JsonObject {
  const out: JsonObject = structuredClone(base);
  for (const key of KEYS) {
    const r = rand();
    if (r < 0.15) delete out[key];
    else if (r < 0.3) out[key] = randomValue(rand, depth) as never;
    else if (r < 0.45 && out[key] && typeof out[key] === "object" && !Array.isArray(out[key])) {
      out[key] = mutate(rand, out[key] as JsonObject, depth + 1);
    }
  }
  return out;
}

/** RFC 7386, written here independently of deltas/merge_patch.ts. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === "object" &&
      !Array.isArray(target)
    ? { ...(target as Record<string, unknown>) }
    : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

Deno.test("property: for every retained version and format, sync's delta takes that version to the current one", async () => {
  const { chorus } = await openTest({ config: { deltaThreshold: 12 } });
  try {
    const c = chorus.contexts;
    for (let seed = 1; seed <= 12; seed++) {
      const rand = mulberry32(seed); // seeded, so a failure can be replayed
      const id = `p${seed}`;
      const history = new Map<number, JsonObject>();
      let current = (await c.set(id, randomObject(rand))).context;
      history.set(1, structuredClone(current));
      for (let step = 0; step < 30; step++) {
        const target = mutate(rand, current as JsonObject);
        const kind = rand();
        let result;
        if (kind < 0.3) result = await c.set(id, target);
        else if (kind < 0.65) {
          result = await c.update(id, jsonpatch.compare(current, target), { type: "json-patch" });
        } else {
          const patch = randomObject(rand, 1);
          result = await c.update(id, patch, { type: "merge-patch" });
          assert.deepEqual(result.context, mergePatch(current, patch), `seed ${seed} merge`);
        }
        if (kind < 0.65) assert.deepEqual(result.context, target, `seed ${seed} step ${step}`);
        current = result.context;
        history.set(result.version, structuredClone(current));
        const version = result.version;
        const retained = (await c.deltas(id)).deltas.map((d) => d.from_version);
        for (const v of retained) {
          const old = history.get(v)!;
          for (const format of ["chord", "json-patch", "merge-patch"]) {
            const sync = await c.sync(id, v, { format });
            const why = `seed ${seed} step ${step} v${v}→${version} ${format}`;
            if (sync.type === "full_context") {
              assert.equal(format, "merge-patch", `${why}: only merge patch may fall back`);
              assert.deepEqual(sync.context, current, why);
              continue;
            }
            assert.equal(sync.type, "delta", why);
            assert.equal(sync.type === "delta" && sync.version, version);
            const delta = (sync as { delta: unknown }).delta;
            const applied = format === "chord"
              ? applyChord(old, delta as ChordDelta, { verify: true })
              : format === "json-patch"
              ? jsonpatch.applyPatch(structuredClone(old), delta as never, true, false)
                .newDocument
              : mergePatch(old, delta);
            assert.deepEqual(applied, current, why);
          }
        }
        const tooOld = Math.min(...retained, version) - 1;
        if (tooOld >= 1) assert.equal((await c.sync(id, tooOld)).type, "full_context");
        assert.deepEqual(await c.sync(id, version), { type: "no_change", version });
      }
    }
  } finally {
    await chorus.close();
  }
});
