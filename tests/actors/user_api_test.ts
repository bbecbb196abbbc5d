import assert from "node:assert/strict";
import { Chorus } from "../../mod.ts";
import { SOCKET_REPORTS_AT_ONCE } from "../../actors/user_api.ts";
import { onOneFile, tempKvPath, until } from "../_helpers.ts";
import type { UserActor } from "../../actors/user_actor.ts";

Deno.test("[users] presence reports from socket joins are all written, in order, a bounded number at once", async () => {
  const chorus = await Chorus.open({ path: ":memory:" });
  try {
    const users = chorus.users;
    const setPresence = users.setPresence.bind(users);
    let running = 0;
    let most = 0;
    let written = 0;
    users.setPresence = async (...args: Parameters<typeof setPresence>) => {
      running++;
      most = Math.max(most, running);
      try {
        const result = await setPresence(...args);
        written++;
        return result;
      } finally {
        running--;
      }
    };
    const failures: unknown[] = [];
    for (let i = 0; i < 200; i++) {
      users.reportFromSocket(`viewer-${i}`, { status: "online", current_reel: "show" }, (e) => {
        failures.push(e);
      });
    }
    // One user's two reports land in the order they were made.
    users.reportFromSocket("viewer-0", { status: "away", current_reel: "other" }, (e) => {
      failures.push(e);
    });
    await until(() => written + failures.length === 201, 10_000, "every report written");
    assert.deepEqual(failures, []);
    assert.ok(most <= SOCKET_REPORTS_AT_ONCE, `${most} reports ran at once`);
    assert.ok(most > 1, "reports run concurrently");
    for (const i of [1, 57, 142]) {
      assert.equal((await users.getPresence(`viewer-${i}`)).current_reel, "show");
    }
    const first = await users.getPresence("viewer-0");
    assert.equal(first.current_reel, "other");
    assert.equal(first.status, "away");
  } finally {
    await chorus.close();
  }
});

/** The seqs of a user's feed entries as stored in KV. */
async function storedSeqs(chorus: Chorus, id: string): Promise<number[]> {
  const seqs: number[] = [];
  for await (const e of chorus.store.list({ prefix: ["user_log", id] })) {
    seqs.push(e.key.at(-1) as number);
  }
  return seqs;
}

Deno.test("[users] a cold instance's presence report reads the user's head only; a recovery reads the retained feed", async () => {
  const { path, cleanup } = await tempKvPath();
  const config = { deltaThreshold: 5 };
  try {
    const a = await Chorus.open({ path, config });
    for (let i = 1; i <= 8; i++) {
      await a.users.setPresence("regular", { status: "online", activity: `visit ${i}` });
    }
    await a.close();
    const b = await Chorus.open({ path, config });
    try {
      assert.deepEqual(await storedSeqs(b, "regular"), [4, 5, 6, 7, 8]);
      const reads = b.store.stats.reads;
      await b.users.setPresence("regular", { status: "online", current_reel: "show" }, {
        fromSocket: true,
      });
      assert.equal(b.store.stats.reads - reads, 1, "the head alone, not the feed");
      // Still trimmed to the last five, in KV and as read back.
      assert.deepEqual(await storedSeqs(b, "regular"), [5, 6, 7, 8, 9]);
      const all = await b.users.feedSince("regular", 0);
      assert.equal(all.complete, false, "1–4 were trimmed");
      assert.deepEqual(all.entries.map((e) => e.seq), [5, 6, 7, 8, 9]);
      assert.equal(
        (all.entries[0].payload as { activity?: string }).activity,
        "visit 5",
        "entries read back are the stored ones",
      );
      const recent = await b.users.feedSince("regular", 6);
      assert.equal(recent.complete, true);
      assert.deepEqual(recent.entries.map((e) => e.seq), [7, 8, 9]);
    } finally {
      await b.close();
    }
  } finally {
    await cleanup();
  }
});

Deno.test("[users] a subscriber on one instance gets the feed entries another instance appends", () =>
  onOneFile(async (a, b) => {
    await a.users.setPresence("fan", { status: "online", activity: "first" });
    const seen: number[] = [];
    const stop = await b.users.subscribe("fan", (entry) => seen.push(entry.seq));
    for (let i = 2; i <= 4; i++) {
      await a.users.setPresence("fan", { status: "online", activity: `visit ${i}` });
    }
    await until(() => seen.length >= 3, "b's subscriber to get a's three entries");
    assert.deepEqual(seen, [2, 3, 4]);
    await b.users.setPresence("fan", { status: "away" });
    await until(() => seen.length >= 4, "b's own entry");
    assert.deepEqual(seen, [2, 3, 4, 5]);
    const feed = await b.users.feedSince("fan", 0);
    assert.equal(feed.complete, true);
    assert.deepEqual(feed.entries.map((e) => e.seq), [1, 2, 3, 4, 5]);
    stop();
  }));

Deno.test("[users] recoveries read back at once get the feed once each, in order", () =>
  onOneFile(async (a, b) => {
    for (let i = 1; i <= 4; i++) {
      await a.users.setPresence("many", { status: "online", activity: `visit ${i}` });
    }
    await b.users.seq("many");
    const actor = b.registry.get<UserActor>("user", "many");
    // Answered at once from the loaded head, outside the mailbox: the read-backs may overlap.
    await until(() => actor.servesNow(), "b's actor to serve reads from memory");
    const both = await Promise.all([
      b.users.feedSince("many", 0),
      b.users.feedSince("many", 0),
      b.users.feedSince("many", 1),
    ]);
    assert.deepEqual(both.map((f) => f.entries.map((e) => e.seq)), [[1, 2, 3, 4], [1, 2, 3, 4], [
      2,
      3,
      4,
    ]]);
    const later = await b.users.feedSince("many", 2);
    assert.deepEqual(later.entries.map((e) => e.seq), [3, 4]);
    assert.equal(later.complete, true);
  }));
