/**
 * Reels across instances: two `Chorus.open` on one KV file liking the same reel at once. Likes
 * stay idempotent per user, and counters are exact on both.
 * @module
 */
import assert from "node:assert/strict";
import { Chorus } from "../../mod.ts";
import { tempKvPath } from "../_helpers.ts";

Deno.test("Reel likes are idempotent per user under concurrent likes from two instances", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path, scheduler: "off" });
  const b = await Chorus.open({ path, scheduler: "off" });
  try {
    const users = Array.from({ length: 12 }, (_, i) => `u${i}`);
    // Every user likes twice on each instance, all at once.
    const results = await Promise.all(
      users.flatMap((u) =>
        [a, b, a, b].map((c) => c.reels.interact("hot", { type: "like", user_id: u }))
      ),
    );
    assert.equal(results.filter((r) => r.counted).length, users.length, "one counted like each");
    const sa = await a.reels.get("hot", { consistency: "strong" });
    const sb = await b.reels.get("hot", { consistency: "strong" });
    assert.equal(sa.likes, users.length);
    assert.equal(sb.likes, users.length);
    // Unlikes race too: each user's like is removed once.
    const un = await Promise.all(
      users.slice(0, 6).flatMap((u) =>
        [a, b].map((c) => c.reels.interact("hot", { type: "unlike", user_id: u }))
      ),
    );
    assert.equal(un.filter((r) => r.counted).length, 6);
    assert.equal((await b.reels.get("hot", { consistency: "strong" })).likes, 6);
    // A like after a remote unlike counts again (the mark is read afresh).
    const again = await a.reels.interact("hot", { type: "like", user_id: "u0" });
    assert.equal(again.counted, true);
    assert.equal((await b.reels.get("hot", { consistency: "strong" })).likes, 7);
  } finally {
    await a.close();
    await b.close();
    await cleanup();
  }
});

Deno.test("Reel events reach subscribers on another instance in order", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path, scheduler: "off" });
  const b = await Chorus.open({ path, scheduler: "off" });
  try {
    const seen: string[] = [];
    const stop = await b.reels.subscribe("r", (e) => {
      seen.push(e.type === "update" ? `u${e.update.seq}` : e.interaction.type);
    });
    await a.reels.publish("r", { update_data: { n: 1 } });
    await a.reels.interact("r", { type: "like", user_id: "x" });
    await a.reels.publish("r", { update_data: { n: 2 } });
    // Events from the other instance arrive on their own: wait for them as long as `until` would.
    const deadline = performance.now() + 10_000;
    while (seen.length < 3 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    stop();
    assert.deepEqual(seen, ["u1", "like", "u2"]);
  } finally {
    await a.close();
    await b.close();
    await cleanup();
  }
});
