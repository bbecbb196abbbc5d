/**
 * Two instances on one KV file sharing a writers' channel, as the workers of `deno serve
 * --parallel` do (`workersChannel`): kv and context writes are handed whole to the instance opened
 * first and every other commit as its intent (actors/hand_over.ts, storage/one_writer.ts), and
 * results, errors and reads are what one instance alone would give.
 * @module
 */
import assert from "node:assert/strict";
import { Chorus } from "../../mod.ts";
import { ChorusError } from "../../errors.ts";
import { tempKvPath, until } from "../_helpers.ts";
import { openKv } from "../../storage/open.ts";

/** `a` opened first (it writes), `b` second; both on one file and one channel of their own. */
async function twoWorkers() {
  const { path, cleanup } = await tempKvPath();
  const workersChannel = `chorus:workers:${crypto.randomUUID()}`;
  const a = await Chorus.open({ path, workersChannel });
  const b = await Chorus.open({ path, workersChannel });
  await until(() => a.workers?.peers === 1 && b.workers?.peers === 1, "workers met");
  assert.equal(a.workers?.writes, true, "the instance opened first writes");
  assert.equal(b.workers?.writes, false);
  return {
    a,
    b,
    async close() {
      await b.close();
      await a.close();
      await cleanup();
    },
  };
}

Deno.test("One writer: 50 concurrent incr through each worker end at exactly 100, all run by the writer", async () => {
  const { a, b, close } = await twoWorkers();
  try {
    const results = await Promise.all([
      ...Array.from({ length: 50 }, () => a.kv.incr("counter")),
      ...Array.from({ length: 50 }, () => b.kv.incr("counter")),
    ]);
    assert.deepEqual(
      results.map((r) => r.value).sort((x, y) => x - y),
      Array.from({ length: 100 }, (_, i) => i + 1),
      "each caller got its own count",
    );
    assert.equal(b.registry.peek("kv", "counter"), undefined, "the other worker loaded no actor");
    assert.equal(b.workers?.handedOver, 50);
    assert.equal(a.workers?.takenOver, 50);
    assert.equal((await b.kv.get("counter", { consistency: "strong" }))?.value, 100);
  } finally {
    await close();
  }
});

Deno.test("One writer: a write handed over is read back at once through the worker that took it", async () => {
  const { a, b, close } = await twoWorkers();
  try {
    await a.kv.put("doc", { n: 0 });
    // b holds the key in its cache (a leader read loads and watches it).
    assert.deepEqual((await b.kv.get("doc"))?.value, { n: 0 });
    for (let n = 1; n <= 30; n++) {
      const written = await b.kv.put("doc", { n });
      const read = await b.kv.get("doc"); // leader, from b's cache
      assert.equal(read?.version, written.version, `read ${n} follows the write`);
      assert.deepEqual(read?.value, { n });
      await b.kv.delete("doc");
      assert.equal(await b.kv.get("doc"), null, `delete ${n} is seen`);
    }
  } finally {
    await close();
  }
});

Deno.test("One writer: refusals come back as the writer gave them", async () => {
  const { b, close } = await twoWorkers();
  try {
    await b.kv.put("k", "text");
    await assert.rejects(b.kv.put("k", 1, { ifMatch: 9 }), (e: unknown) => {
      assert.ok(e instanceof ChorusError);
      assert.equal(e.code, "conflict");
      assert.deepEqual(e.details, { version: 1 });
      return true;
    });
    await assert.rejects(b.kv.put("k", 1, { ifNoneMatch: true }), { code: "conflict" });
    await assert.rejects(b.kv.incr("k"), { code: "conflict" });
    await assert.rejects(b.kv.touch("absent", 10), { code: "not_found" });
    await assert.rejects(b.kv.delete("absent"), { code: "not_found" });
    await assert.rejects(b.kv.put("", 1), { code: "invalid_key" });
    await assert.rejects(b.kv.put("k", 1, { ttl: -1 }), { code: "invalid_request" });
  } finally {
    await close();
  }
});

Deno.test("One writer: values go over as JSON stores them, and bulk writes go through the writer", async () => {
  const { a, b, close } = await twoWorkers();
  try {
    const value = { at: new Date(0), skip: undefined, list: [1, 2] };
    await b.kv.put("dated", value);
    assert.deepEqual((await a.kv.get("dated"))?.value, {
      at: "1970-01-01T00:00:00.000Z",
      list: [1, 2],
    });
    const put = await b.kv.putMany([
      { key: "m1", value: { i: 1 } },
      { key: "m2", value: { i: 2, at: new Date(0) }, ttl: 60 },
    ]);
    assert.deepEqual(put.items.map((i) => [i.key, i.version]), [["m1", 1], ["m2", 1]]);
    assert.deepEqual((await b.kv.get("m2"))?.value, { i: 2, at: "1970-01-01T00:00:00.000Z" });
    const touched = await b.kv.touchMany([{ key: "m1", ttl: 30 }, { key: "gone", ttl: 30 }]);
    assert.equal(touched.touched, 1);
    assert.deepEqual(await b.kv.deleteMany(["m1", "m2", "gone"]), {
      deleted: 2,
      keys: ["m1", "m2"],
    });
    assert.equal(await b.kv.get("m1"), null);
    assert.equal(await a.kv.get("m2"), null);
    assert.equal(b.workers?.handedOver, 4);
  } finally {
    await close();
  }
});

Deno.test("One writer: racing puts on shared keys through both workers lose nothing", async () => {
  const { a, b, close } = await twoWorkers();
  try {
    const keys = Array.from({ length: 8 }, (_, i) => `race${i}`);
    const writes = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).kv.put(keys[i % 8], { i })),
    );
    for (const key of keys) {
      const versions = writes.filter((w) => w.key === key).map((w) => w.version).sort((x, y) =>
        x - y
      );
      assert.deepEqual(versions, Array.from({ length: 25 }, (_, i) => i + 1), key);
      const last = await b.kv.get(key, { consistency: "strong" });
      assert.equal(last?.version, 25);
    }
    assert.equal(
      a.store.stats.conflicts + b.store.stats.conflicts,
      0,
      "no write met a stale cache",
    );
  } finally {
    await close();
  }
});

Deno.test("One writer: when the writer closes, the other worker writes itself", async () => {
  const { a, b, close } = await twoWorkers();
  try {
    await b.kv.put("k", 1);
    await a.close();
    await until(() => b.workers?.peers === 0, "the writer said goodbye");
    assert.equal(b.workers?.writes, true);
    const written = await b.kv.put("k", 2);
    assert.equal(written.version, 2);
    assert.equal(b.workers?.handedOver, 1, "the second write ran here");
  } finally {
    await close();
  }
});

Deno.test("One writer: watchers on both workers see every change once, in order", async () => {
  const { a, b, close } = await twoWorkers();
  const seen: [number[], number[]] = [[], []];
  const stops = [
    await a.kv.watch("watched", (c) => seen[0].push(c.version)),
    await b.kv.watch("watched", (c) => seen[1].push(c.version)),
  ];
  try {
    for (let i = 0; i < 20; i++) await (i % 2 ? a : b).kv.put("watched", { i });
    await until(() => seen.every((s) => s.length >= 20), "20 changes seen on both");
    const expected = Array.from({ length: 20 }, (_, i) => i + 1);
    assert.deepEqual(seen[0], expected, "on the writer");
    assert.deepEqual(seen[1], expected, "on the worker that hands its writes over");
  } finally {
    for (const stop of stops) stop();
    await close();
  }
});

Deno.test("One writer: contexts, reels and views written through both workers commit on the writer, nothing lost", async () => {
  const { a, b, close } = await twoWorkers();
  // Commits made while b was opening (before it met a) were its own.
  const commitsBefore = b.store.stats.commits;
  try {
    await a.contexts.set("doc", { n: 0 });
    const updates = await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) => (i % 2 ? a : b).contexts.update("doc", { [`f${i}`]: i }),
      ),
    );
    assert.deepEqual(
      updates.map((u) => u.version).sort((x, y) => x - y),
      Array.from({ length: 40 }, (_, i) => i + 2),
      "every update got its own version",
    );
    const doc = await b.contexts.get("doc");
    assert.equal(Object.keys(doc?.context as object).length, 41);
    await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => (i % 2 ? a : b).reels.interact("reel", { type: "like", user_id: `u${i}` }),
      ),
    );
    assert.equal((await b.reels.get("reel", { consistency: "strong" })).likes, 20);
    // Views stay with the worker that took them; their coalesced commit goes to the writer.
    for (let i = 0; i < 10; i++) await b.reels.interact("reel", { type: "view", user_id: "v" });
    await b.reels.flushViews(); // after any flush already under way
    assert.ok(b.store.stats.handedOver > 0, "the views' commit was handed over");
    assert.equal((await a.reels.get("reel", { consistency: "strong" })).views, 10);
    assert.equal(b.store.stats.commits, commitsBefore, "and made none itself");
    assert.equal(a.store.stats.takenOver, b.store.stats.handedOver);
  } finally {
    await close();
  }
});

Deno.test("One writer: an intent holding a KvU64 is committed where it is", async () => {
  const { b, close } = await twoWorkers();
  try {
    const before = { handed: b.store.stats.handedOver, commits: b.store.stats.commits };
    const result = await b.store.commit({
      checks: [],
      mutations: [{ type: "set", key: ["u64_test"], value: new Deno.KvU64(7n) }],
      bytes: 64,
    });
    assert.equal(result.ok, true);
    assert.equal(b.store.stats.handedOver, before.handed);
    assert.equal(b.store.stats.commits, before.commits + 1);
    const read = await b.store.get<Deno.KvU64>(["u64_test"]);
    assert.equal(read.value?.value, 7n);
  } finally {
    await close();
  }
});

Deno.test("One writer: context writes are handed over whole and read back on the worker that took them", async () => {
  const { a, b, close } = await twoWorkers();
  try {
    const handed = b.workers!.handedOver;
    await b.contexts.set("ctx", { n: 0 });
    assert.equal(b.registry.peek("context", "ctx"), undefined, "b ran no actor for the write");
    assert.deepEqual((await b.contexts.get("ctx"))?.context, { n: 0 });
    for (let n = 1; n <= 15; n++) {
      const updated = await b.contexts.update("ctx", { n });
      const read = await b.contexts.get("ctx"); // leader, from b's cache
      assert.equal(read?.version, updated.version, `read ${n} follows the update`);
      assert.deepEqual(read?.context, { n });
    }
    await assert.rejects(b.contexts.update("absent", { n: 1 }), { code: "not_found" });
    await assert.rejects(
      b.contexts.update("ctx", [{ op: "test", path: "/n", value: 0 }]),
      (e: unknown) => e instanceof ChorusError && e.code === "conflict",
    );
    const deleted = await b.contexts.delete("ctx");
    assert.equal(await b.contexts.get("ctx"), null, "the delete is seen at once");
    assert.equal(deleted.deleted, true);
    assert.equal(b.workers!.handedOver - handed, 19, "set, 15 + 2 updates, delete");
    assert.equal(await a.contexts.get("ctx", { consistency: "strong" }), null);
  } finally {
    await close();
  }
});

Deno.test("One writer: reel updates and counted interactions are handed over whole; views stay", async () => {
  const { a, b, close } = await twoWorkers();
  try {
    const handed = b.workers!.handedOver;
    // b holds the reel (a leader read loads it).
    assert.equal((await b.reels.get("show")).likes, 0);
    const likes = await Promise.all(
      Array.from(
        { length: 30 },
        (_, i) => (i % 2 ? a : b).reels.interact("show", { type: "like", user_id: `u${i % 10}` }),
      ),
    );
    assert.equal(likes.filter((l) => l.counted).length, 10, "a like counts once per user");
    const liked = await b.reels.get("show"); // leader, from b's cache
    assert.equal(liked.likes, 10);
    const comment = await b.reels.interact("show", { type: "comment", user_id: "u1", text: "hi" });
    assert.equal(comment.state.comments, 1);
    const view = await b.reels.interact("show", { type: "view", user_id: "u2" });
    assert.equal(view.batched, true, "a view is counted by the worker that took it");
    const published = await b.reels.publish("show", {
      update_data: { scene: 2 },
      target_users: ["u3"],
    });
    const published2 = await b.reels.publish("show", { update_data: { scene: 3 } });
    assert.equal(published2.seq, published.seq + 1);
    assert.equal((await b.reels.get("show")).seq, published2.seq, "b reads its own update");
    await assert.rejects(b.reels.interact("show", { type: "dance" as "like", user_id: "u1" }), {
      code: "invalid_request",
    });
    assert.equal(b.workers!.handedOver - handed, 15 + 1 + 2, "likes, the comment, the updates");
    const strong = await a.reels.get("show", { consistency: "strong" });
    assert.equal(strong.likes, 10);
    assert.equal(strong.comments, 1);
  } finally {
    await close();
  }
});

Deno.test("One writer: a value that cannot cross the channel is written where it was taken; the rest of the turn is handed over", async () => {
  const { a, b, close } = await twoWorkers();
  try {
    const handed = b.workers!.handedOver;
    const odd = { f: () => 1, n: 1 };
    const [bad, good, ctx] = await Promise.all([
      b.kv.put("odd", odd, { handOver: true }),
      b.kv.put("plain", { n: 2 }),
      b.contexts.set("c", { n: 3 }),
    ]);
    assert.equal(bad.version, 1);
    assert.equal(good.version, 1);
    assert.equal(ctx.version, 1);
    assert.equal(b.workers!.handedOver - handed, 2, "only the plain writes were handed over");
    assert.deepEqual((await a.kv.get("odd", { consistency: "strong" }))?.value, { n: 1 });
  } finally {
    await close();
  }
});

Deno.test("One writer: a write handed over while this worker's actor is still loading is read back", async () => {
  const { path, cleanup } = await tempKvPath();
  const workersChannel = `chorus:workers:${crypto.randomUUID()}`;
  const a = await Chorus.open({ path, workersChannel });
  // b's reads can be held back, so its actor's load reads KV before a's commit and ends after it.
  const kvB = await openKv(path);
  let gate: Promise<void> | null = null;
  const held = new Proxy(kvB, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop !== "get" && prop !== "getMany") return value.bind(target);
      return async (...args: unknown[]) => {
        const wait = gate;
        const result = await value.apply(target, args);
        if (wait) await wait;
        return result;
      };
    },
  });
  const b = await Chorus.open({ kv: held, workersChannel });
  try {
    await until(() => a.workers?.peers === 1 && b.workers?.peers === 1, "workers met");
    for (let i = 0; i < 10; i++) {
      const key = `loading${i}`;
      await a.kv.put(key, { n: 0 });
      let open!: () => void;
      gate = new Promise((r) => open = r);
      const first = b.kv.get(key); // b's actor starts loading: its read is made now, held
      await new Promise((r) => setTimeout(r, 1));
      gate = null;
      const written = await b.kv.put(key, { n: 1 }); // handed to a and answered
      open();
      await first;
      const read = await b.kv.get(key); // leader, on b, after b's own write returned
      assert.equal(read?.version, written.version, `read ${i} follows the write`);
    }
  } finally {
    await b.close();
    kvB.close();
    await a.close();
    await cleanup();
  }
});

Deno.test("One writer: closing the writer answers what it took, and the other worker writes on", async () => {
  const { a, b, close } = await twoWorkers();
  try {
    const incrs = Array.from({ length: 100 }, () => b.kv.incr("n"));
    await new Promise((r) => setTimeout(r, 1));
    await a.close();
    const settled = await Promise.allSettled(incrs);
    const counted = settled.filter((r) => r.status === "fulfilled").length;
    for (const r of settled) {
      if (r.status === "rejected") assert.equal((r.reason as ChorusError).code, "unavailable");
    }
    assert.equal(b.workers?.writes, true, "b writes now");
    assert.equal(b.workers?.peers, 0, "the closed writer is not counted again");
    const next = await b.kv.incr("n");
    const stored = next.value - 1;
    assert.ok(stored >= counted, `${counted} increments answered, ${stored} stored`);
    assert.equal(counted, 100, "every increment taken before the writer closed was answered");
  } finally {
    await close();
  }
});

Deno.test("One writer: presence reported through both workers is written by the writer and read back", async () => {
  const { a, b, close } = await twoWorkers();
  try {
    const handed = b.workers!.handedOver;
    assert.equal((await b.users.getPresence("ann")).status, "offline"); // b loads the user
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).users.setPresence("ann", {
          status: i % 3 ? "online" : "away",
          activity: `a${i}`,
        })),
    );
    const last = await b.users.setPresence("ann", { status: "away", current_reel: "42" });
    const read = await b.users.getPresence("ann"); // leader, from b's cache
    assert.equal(read.status, "away");
    assert.equal(read.current_reel, "42");
    assert.equal(last.status, "away");
    assert.equal(b.workers!.handedOver - handed, 11, "b's ten reports and the last one");
    await assert.rejects(b.users.setPresence("ann", { status: "dancing" as "away" }), {
      code: "invalid_request",
    });
    assert.equal(a.store.stats.conflicts + b.store.stats.conflicts, 0);
  } finally {
    await close();
  }
});
