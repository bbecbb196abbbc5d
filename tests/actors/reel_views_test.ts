/**
 * Reel views across instances: views are coalesced `sum`s on their own KV key, so each instance
 * must read that key (strongly for `strong`, through watch for `leader`/`eventual`) to report the
 * global count rather than only its own views.
 * @module
 */
import assert from "node:assert/strict";
import { Chorus } from "../../mod.ts";
import { ManualClock } from "../../clock.ts";
import { tempKvPath } from "../_helpers.ts";

async function views(c: Chorus, n: number, id: string): Promise<void> {
  for (let i = 0; i < n; i++) await c.reels.interact(id, { type: "view", user_id: `v${i}` });
}

Deno.test("Reel views counted on two instances are exact on both with a strong read", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path, scheduler: "off" });
  const b = await Chorus.open({ path, scheduler: "off" });
  try {
    // Both actors loaded first, so neither learns the other's views from its first load.
    await a.reels.get("seen");
    await b.reels.get("seen");
    await views(a, 5, "seen");
    await views(b, 5, "seen");
    await b.reels.flushViews(); // what b's view window does within 100 ms
    assert.equal((await a.reels.get("seen", { consistency: "strong" })).views, 10);
    assert.equal((await b.reels.get("seen", { consistency: "strong" })).views, 10);
    await views(a, 3, "seen");
    assert.equal((await a.reels.get("seen", { consistency: "strong" })).views, 13);
    assert.equal((await b.reels.get("seen", { consistency: "strong" })).views, 13);
  } finally {
    await a.close();
    await b.close();
    await cleanup();
  }
});

Deno.test("Reel views from another instance reach leader and eventual reads after one view window (injected clock)", async () => {
  const { path, cleanup } = await tempKvPath();
  const clock = new ManualClock();
  const a = await Chorus.open({ path, clock, scheduler: "off" });
  const b = await Chorus.open({ path, clock, scheduler: "off" });
  try {
    await a.reels.get("warm");
    await b.reels.get("warm");
    await views(a, 4, "warm");
    await views(b, 4, "warm");
    const read = async () => ({
      a: (await a.reels.get("warm", { consistency: "leader" })).views,
      b: (await b.reels.get("warm", { consistency: "leader" })).views,
      ae: (await a.reels.get("warm", { consistency: "eventual" })).views,
      be: (await b.reels.get("warm", { consistency: "eventual" })).views,
    });
    const all = { a: 8, b: 8, ae: 8, be: 8 };
    clock.advance(100); // the view window ends on both: each writes its views
    // Watch delivers the other instance's commit: wait for it by reads, not by a time limit.
    let seen = await read();
    for (let tries = 0; tries < 500 && JSON.stringify(seen) !== JSON.stringify(all); tries++) {
      await new Promise((r) => setTimeout(r, 10));
      seen = await read();
    }
    assert.deepEqual(seen, all);
  } finally {
    await a.close();
    await b.close();
    await cleanup();
  }
});
