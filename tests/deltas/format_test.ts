import assert from "node:assert/strict";
import {
  createDeltaFormats,
  DEFAULT_DELTA_FORMAT,
  type DeltaFormat,
  type JsonObject,
  replay,
} from "../../deltas/mod.ts";

/** A toy format: the delta is the whole new context. */
const snapshotFormat: DeltaFormat<JsonObject> = {
  name: "snapshot",
  diff: (_from, to) => structuredClone(to),
  apply: (_context, delta) => structuredClone(delta),
};

Deno.test("createDeltaFormats has the three built-in formats, chord by default", () => {
  const formats = createDeltaFormats();
  assert.deepEqual([...formats.keys()], ["chord", "json-patch", "merge-patch"]);
  assert.ok(formats.has(DEFAULT_DELTA_FORMAT));
  assert.notEqual(createDeltaFormats(), formats, "each call returns a new map");
});

Deno.test("createDeltaFormats adds extra formats; an extra one may replace a built-in", () => {
  const formats = createDeltaFormats([snapshotFormat, { ...snapshotFormat, name: "chord" }]);
  assert.deepEqual([...formats.keys()], ["chord", "json-patch", "merge-patch", "snapshot"]);
  assert.deepEqual(formats.get("chord")?.diff({ a: 1 }, { b: 2 }), { b: 2 });
});

Deno.test("replay applies deltas in order and returns the base for none", () => {
  const formats = createDeltaFormats();
  const chord = formats.get("chord") as DeltaFormat;
  const v0 = { n: 0 };
  const v1 = { n: 1, list: [1] };
  const v2 = { n: 2, list: [1, 2] };
  const deltas = [chord.diff(v0, v1), chord.diff(v1, v2)];
  assert.deepEqual(replay(chord, v0, deltas), v2);
  assert.equal(replay(chord, v0, []), v0);
  assert.deepEqual(replay(snapshotFormat, v0, [v1, v2]), v2);
});
