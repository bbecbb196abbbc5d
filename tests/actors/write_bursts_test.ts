/**
 * Thousands of concurrent writes to one actor share its batches; a batch is one commit, and KV
 * refuses a commit of more than 1,000 mutations as a whole. These check that every write of such a
 * burst lands, with a long retained log (every new entry written), where each write adds the most.
 */
import assert from "node:assert/strict";
import { openTest } from "../_helpers.ts";

const N = 2000;

function refused(results: PromiseSettledResult<unknown>[]): string[] {
  return results.flatMap((r) => r.status === "rejected" ? [String(r.reason?.message)] : []);
}

Deno.test("[bursts] 2,000 concurrent likes, comments, shares and updates on one reel all land", async () => {
  const { chorus } = await openTest({ config: { deltaThreshold: 5000 } });
  try {
    const reels = chorus.reels;
    const all = (f: (i: number) => Promise<unknown>) =>
      Promise.allSettled(Array.from({ length: N }, (_, i) => f(i)));
    assert.deepEqual(
      refused(await all((i) => reels.interact("r", { type: "like", user_id: `u${i}` }))),
      [],
    );
    assert.deepEqual(
      refused(
        await all((i) => reels.interact("r", { type: "comment", user_id: `u${i}`, text: "hi" })),
      ),
      [],
    );
    assert.deepEqual(
      refused(await all((i) => reels.interact("r", { type: "share", user_id: `u${i}` }))),
      [],
    );
    assert.deepEqual(
      refused(await all((i) => reels.publish("r", { update_data: { i } }))),
      [],
    );
    const state = await reels.get("r", { consistency: "strong" });
    assert.deepEqual([state.likes, state.comments, state.shares, state.seq], [N, N, N, N]);
  } finally {
    await chorus.close();
  }
});

Deno.test("[bursts] 2,000 concurrent presence reports of one user all land", async () => {
  const { chorus } = await openTest({ config: { deltaThreshold: 5000 } });
  try {
    const results = await Promise.allSettled(
      Array.from(
        { length: N },
        (_, i) => chorus.users.setPresence("u", { status: "online", activity: `a${i}` }),
      ),
    );
    assert.deepEqual(refused(results), []);
    assert.equal((await chorus.users.getPresence("u", { consistency: "strong" })).status, "online");
  } finally {
    await chorus.close();
  }
});
