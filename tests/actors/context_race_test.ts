import assert from "node:assert/strict";
import { Chorus, type ContextEvent } from "../../mod.ts";
import { tempKvPath, until } from "../_helpers.ts";

Deno.test("Two instances racing updates on one context: none lost, versions gapless, every subscriber sees all", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path, scheduler: "off" });
  const b = await Chorus.open({ path, scheduler: "off" });
  const seenA: ContextEvent[] = [];
  const seenB: ContextEvent[] = [];
  const stops: (() => void)[] = [];
  try {
    await a.contexts.set("race", { start: true });
    stops.push(await a.contexts.subscribe("race", (e) => seenA.push(e)));
    stops.push(await b.contexts.subscribe("race", (e) => seenB.push(e)));
    const results = await Promise.all([
      ...Array.from({ length: 40 }, (_, i) => a.contexts.update("race", { [`a${i}`]: i })),
      ...Array.from(
        { length: 40 },
        (_, i) => b.contexts.update("race", [{ op: "add", path: `/b${i}`, value: i }]),
      ),
    ]);
    const versions = results.map((r) => r.version).sort((x, y) => x - y);
    assert.deepEqual(versions, Array.from({ length: 80 }, (_, i) => i + 2), "gapless, unique");
    const finalA = await a.contexts.get("race", { consistency: "strong" });
    const finalB = await b.contexts.get("race", { consistency: "strong" });
    assert.equal(finalA?.version, 81);
    assert.deepEqual(finalA, finalB);
    assert.equal(Object.keys(finalA!.context).length, 81, "no update lost");
    const deltas = await b.contexts.deltas("race", { consistency: "strong" });
    assert.deepEqual(deltas.deltas.map((d) => d.version), versions);
    for (const [name, seen] of [["a", seenA], ["b", seenB]] as const) {
      await until(() => seen.at(-1)?.version === 81, `${name} saw the last version`);
      assert.deepEqual(seen.map((e) => e.version), versions, `${name}: every version, in order`);
      assert.ok(seen.every((e) => e.type === "delta"), `${name}: all as deltas`);
    }
    // Replaying every delta a subscriber got rebuilds the context.
    const { applyChord } = await import("../../deltas/chord.ts");
    let rebuilt = { start: true } as Record<string, unknown>;
    for (const e of seenB) {
      if (e.type === "delta") rebuilt = applyChord(rebuilt as never, e.delta) as never;
    }
    assert.deepEqual(rebuilt, finalA!.context);
    // The other instance's sync reaches back across both instances' writes.
    const sync = await a.contexts.sync("race", 1, { consistency: "strong" });
    assert.equal(sync.type, "delta");
  } finally {
    for (const stop of stops) stop();
    await a.close();
    await b.close();
    await cleanup();
  }
});

Deno.test("Two instances: a patch that looks like a no-op on a stale cache is judged on the current context", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path });
  const b = await Chorus.open({ path });
  try {
    for (let i = 0; i < 20; i++) {
      const id = `noop-${i}`;
      await a.contexts.set(id, { a: 1 });
      await b.contexts.update(id, { a: null });
      // On a's stale cache {a: 1} this patch changes nothing; on the real context it does.
      const result = await a.contexts.update(id, { a: 1 });
      assert.deepEqual(result.context, { a: 1 });
      assert.equal(result.version, 3);
      const strong = await b.contexts.get(id, { consistency: "strong" });
      assert.deepEqual(strong?.context, { a: 1 });
    }
  } finally {
    await a.close();
    await b.close();
    await cleanup();
  }
});
