import assert from "node:assert/strict";
import { Chorus } from "../../mod.ts";
import { tempKvPath, until } from "../_helpers.ts";
import { ManualClock } from "../../clock.ts";
import { HEARTBEAT_MS } from "../../storage/members.ts";
import { LEADER_FRESH_MS } from "../../actors/actor.ts";

async function twoInstances() {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path });
  const b = await Chorus.open({ path });
  return {
    a,
    b,
    async close() {
      await a.close();
      await b.close();
      await cleanup();
    },
  };
}

/**
 * Watches `key` on both instances; `inOrder(n)` waits for `n` changes on each, checks that each saw
 * exactly versions 1…n in order, and stops watching.
 */
async function watchOnBoth(a: Chorus, b: Chorus, key: string) {
  const seen: [number[], number[]] = [[], []];
  const stops = [
    await a.kv.watch(key, (c) => seen[0].push(c.version)),
    await b.kv.watch(key, (c) => seen[1].push(c.version)),
  ];
  return {
    async inOrder(n: number): Promise<void> {
      await until(() => seen.every((s) => s.length >= n), `${n} changes seen on both`);
      for (const stop of stops) stop();
      const expected = Array.from({ length: n }, (_, i) => i + 1);
      assert.deepEqual(seen[0], expected, "instance a");
      assert.deepEqual(seen[1], expected, "instance b");
    },
  };
}

Deno.test("Two instances on one KV file: 50 concurrent incr from each end at exactly 100", async () => {
  const { a, b, close } = await twoInstances();
  try {
    const results = await Promise.all([
      ...Array.from({ length: 50 }, () => a.kv.incr("counter")),
      ...Array.from({ length: 50 }, () => b.kv.incr("counter")),
    ]);
    const values = results.map((r) => r.value).sort((x, y) => x - y);
    assert.deepEqual(
      values,
      Array.from({ length: 100 }, (_, i) => i + 1),
      "each caller got its own count",
    );
    assert.equal((await a.kv.get("counter", { consistency: "strong" }))?.value, 100);
    assert.equal((await b.kv.get("counter", { consistency: "strong" }))?.value, 100);
    assert.ok(a.store.stats.commits + b.store.stats.commits < 100, "writes were group-committed");
  } finally {
    await close();
  }
});

Deno.test("Two instances on one KV file: closed loops of incr on shared keys count every acknowledged one", async () => {
  const { a, b, close } = await twoInstances();
  try {
    // 16 loops per instance, each awaiting its own incr before the next, over 8 keys both write:
    // commits alternate in flight while the other instance's writes make some checks stale.
    const keys = Array.from({ length: 8 }, (_, i) => `loop${i}`);
    const counted = new Map<string, number>(keys.map((k) => [k, 0]));
    const seen = new Map<string, number[]>(keys.map((k) => [k, []]));
    await Promise.all([a, b].flatMap((instance) =>
      Array.from({ length: 16 }, async (_, l) => {
        for (let i = 0; i < 10; i++) {
          const key = keys[(l * 3 + i) % keys.length];
          const { value } = await instance.kv.incr(key);
          counted.set(key, counted.get(key)! + 1);
          seen.get(key)!.push(value);
        }
      })
    ));
    for (const key of keys) {
      const n = counted.get(key)!;
      assert.equal((await a.kv.get(key, { consistency: "strong" }))?.value, n, key);
      assert.deepEqual(
        seen.get(key)!.sort((x, y) => x - y),
        Array.from({ length: n }, (_, i) => i + 1),
        `${key}: each caller got its own count`,
      );
    }
    assert.equal([...counted.values()].reduce((x, y) => x + y), 2 * 16 * 10);
  } finally {
    await close();
  }
});

Deno.test("Two instances: concurrent If-Match writers never both win the same version", async () => {
  const { a, b, close } = await twoInstances();
  try {
    await a.kv.put("cas", 0);
    for (let round = 0; round < 20; round++) {
      const current = (await a.kv.get("cas", { consistency: "strong" }))!;
      const attempts = [a, b, a, b].map((inst, i) =>
        inst.kv.put("cas", `${round}-${i}`, { ifMatch: current.version }).then(
          (r) => ({ ok: true as const, version: r.version, value: `${round}-${i}` }),
          (e) => ({ ok: false as const, code: e.code as string }),
        )
      );
      const outcomes = await Promise.all(attempts);
      const winners = outcomes.filter((o) => o.ok);
      assert.equal(winners.length, 1, `round ${round}: exactly one writer wins`);
      for (const o of outcomes) if (!o.ok) assert.equal(o.code, "conflict");
      const after = (await b.kv.get("cas", { consistency: "strong" }))!;
      assert.equal(after.version, current.version + 1);
      assert.equal(after.value, (winners[0] as { value: string }).value);
    }
  } finally {
    await close();
  }
});

Deno.test("Two instances: a write on one is seen by the other's leader cache via watch", async () => {
  const { a, b, close } = await twoInstances();
  try {
    await a.kv.put("shared", "v1");
    assert.equal((await b.kv.get("shared"))?.value, "v1"); // loads b's actor
    await a.kv.put("shared", "v2");
    let seen: unknown;
    for (let i = 0; i < 200 && seen !== "v2"; i++) {
      seen = (await b.kv.get("shared"))?.value;
      if (seen !== "v2") await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(seen, "v2");
    // A strong read never trails.
    await a.kv.put("shared", "v3");
    assert.equal((await b.kv.get("shared", { consistency: "strong" }))?.value, "v3");
  } finally {
    await close();
  }
});

Deno.test("Two instances: watchers on both see every change in the same order", async () => {
  const { a, b, close } = await twoInstances();
  try {
    const watching = await watchOnBoth(a, b, "w");
    const writes = [];
    for (let i = 0; i < 30; i++) writes.push((i % 2 ? a : b).kv.put("w", i));
    await Promise.all(writes);
    await watching.inOrder(30);
  } finally {
    await close();
  }
});

Deno.test("Two instances: bulk writes racing single writes lose nothing", async () => {
  const { a, b, close } = await twoInstances();
  try {
    const keys = Array.from({ length: 150 }, (_, i) => `k${i}`);
    await Promise.all([
      a.kv.putMany(keys.map((key) => ({ key, value: "bulk" }))),
      ...keys.slice(0, 40).map((key) => b.kv.incr(`${key}:n`)),
      ...keys.slice(0, 40).map((key) => b.kv.put(key, "single")),
    ]);
    const all = await a.kv.getMany(keys, { consistency: "strong" });
    for (const item of all.items) {
      assert.ok(item.found);
      const i = Number(item.key.slice(1));
      assert.ok(i < 40 ? ["bulk", "single"].includes(item.value as string) : item.value === "bulk");
      assert.equal(item.version, i < 40 ? 2 : 1, `${item.key} has one version per write`);
    }
  } finally {
    await close();
  }
});

Deno.test("Two instances: refusals and no-op writes rest on the current state, not a stale cache", async () => {
  const { a, b, close } = await twoInstances();
  try {
    for (let i = 0; i < 30; i++) {
      const key = `stale-${i}`;
      assert.equal(await a.kv.get(key), null); // a caches "absent"
      await b.kv.put(key, "v1");
      // Without confirming its cache, a would answer 404 here.
      assert.deepEqual(await a.kv.delete(key), { deleted: true });
      const put = await b.kv.put(key, "v3");
      // a may still hold version 2 (the delete): the If-Match must be judged on version 3.
      const cas = await a.kv.put(key, "v4", { ifMatch: put.version });
      assert.equal(cas.version, put.version + 1);
    }
    // Bulk deletes of keys another instance just created delete them.
    const keys = Array.from({ length: 20 }, (_, i) => `bulk-stale-${i}`);
    await a.kv.getMany(keys);
    await b.kv.putMany(keys.map((key) => ({ key, value: 1 })));
    assert.equal((await a.kv.deleteMany(keys)).deleted, 20);
    assert.equal((await a.kv.deleteMany(["never-there"])).deleted, 0);
  } finally {
    await close();
  }
});

Deno.test("Change logs are written only for watched keys, and a new watcher elsewhere misses nothing", async () => {
  const { a, b, close } = await twoInstances();
  // Changes logged (an entry holds one change, or a page of them).
  const logCount = async (key: string) => {
    let n = 0;
    for await (const e of a.store.kv.list({ prefix: ["kv_log", key] })) {
      n += Array.isArray(e.value) ? e.value.length : 1;
    }
    return n;
  };
  try {
    for (let i = 0; i < 5; i++) await a.kv.put("quiet", i);
    assert.equal(await logCount("quiet"), 0, "nobody watches: no log entries");
    // a's actor holds an unwatched head; b starts watching; a's next writes must be logged.
    const seen: number[] = [];
    const stop = await b.kv.watch("quiet", (c) => seen.push(c.version));
    await Promise.all(Array.from({ length: 10 }, (_, i) => a.kv.put("quiet", 100 + i)));
    for (let i = 0; i < 400 && seen.length < 10; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => 6 + i));
    assert.equal(await logCount("quiet"), 10);
    stop();
    // Replaying from before the watch began says it cannot, with the current state.
    const replayed: { version: number; resync?: boolean }[] = [];
    const stop2 = await a.kv.watch("quiet", (c) => replayed.push(c), { since: 2 });
    assert.deepEqual(replayed.map((c) => [c.version, c.resync ?? false]), [[15, true]]);
    stop2();
  } finally {
    await close();
  }
});

Deno.test("Two instances: a leader read sees every write acknowledged elsewhere more than the lag bound ago", async () => {
  const { path, cleanup } = await tempKvPath();
  const clock = new ManualClock();
  const a = await Chorus.open({ path, clock });
  const b = await Chorus.open({ path, clock });
  const bound = b.config.leaderMaxLagMs;
  try {
    for (let i = 0; i < 30; i++) {
      await b.kv.get("fresh"); // b caches and watches the key
      await a.kv.put("fresh", i);
      clock.advance(bound);
      assert.equal((await b.kv.get("fresh"))?.value, i, `round ${i}`);
      // Reads right after, while b's watch reports and probes arrive, never go back in time.
      for (let j = 0; j < 3; j++) {
        await new Promise((r) => setTimeout(r, 1));
        assert.equal((await b.kv.get("fresh"))?.value, i, `round ${i}, read ${j}`);
      }
    }
  } finally {
    await a.close();
    await b.close();
    await cleanup();
  }
});

Deno.test("Leader reads of 1,000 watched keys are served from the cache, with no KV read per get", async () => {
  const { path, cleanup } = await tempKvPath();
  const clock = new ManualClock();
  const chorus = await Chorus.open({ path, clock });
  try {
    const keys = Array.from({ length: 1000 }, (_, i) => `hot${i}`);
    for (const k of keys) await chorus.kv.put(k, k);
    for (const k of keys) await chorus.kv.get(k); // load and watch
    let served = false;
    for (let attempt = 0; attempt < 200 && !served; attempt++) {
      // Time moves past the 5 ms confirmation window each pass: only a current watch saves reads.
      clock.advance(LEADER_FRESH_MS * 2);
      await new Promise((r) => setTimeout(r, 5));
      const before = chorus.store.stats.reads;
      for (const k of keys) assert.equal((await chorus.kv.get(k))?.value, k);
      served = chorus.store.stats.reads === before;
    }
    assert.ok(served, "a pass over the hot set still read KV");
  } finally {
    await chorus.close();
    await cleanup();
  }
});

Deno.test("Another process on the same KV file: leader reads stop trusting watch and confirm with KV", async () => {
  const { path, cleanup } = await tempKvPath();
  const clock = new ManualClock();
  const chorus = await Chorus.open({ path, clock });
  try {
    const keys = Array.from({ length: 50 }, (_, i) => `k${i}`);
    for (const k of keys) await chorus.kv.put(k, k);
    const pass = async () => {
      clock.advance(LEADER_FRESH_MS * 2);
      await new Promise((r) => setTimeout(r, 5));
      const before = chorus.store.stats.reads;
      for (const k of keys) await chorus.kv.get(k);
      return chorus.store.stats.reads - before;
    };
    let reads = Infinity;
    for (let i = 0; i < 200 && reads > 0; i++) reads = await pass();
    assert.equal(reads, 0, "watched keys are served from the cache");
    // A process with another pid heartbeats into the same file (its watch does not reach us).
    const other = await Deno.openKv(path);
    await other.set(["member", "other-process"], {
      id: "other-process",
      region: "local",
      pid: Deno.pid + 1,
      started_at: clock.now(),
      seen_at: clock.now(),
    }, { expireIn: 30_000 });
    other.close();
    clock.advance(HEARTBEAT_MS);
    for (let i = 0; i < 100 && (await pass()) === 0; i++) {
      await new Promise((r) => setTimeout(r, 5)); // the heartbeat's member list is read async
    }
    assert.equal(await pass(), keys.length, "every read confirms with KV");
  } finally {
    await chorus.close();
    await cleanup();
  }
});

Deno.test("Two instances: bursts of 1,000 incr from each on one watched key all land, and both watchers see all 2,000 in order", async () => {
  const { a, b, close } = await twoInstances();
  try {
    const watching = await watchOnBoth(a, b, "burst");
    const results = await Promise.allSettled([
      ...Array.from({ length: 1000 }, () => a.kv.incr("burst")),
      ...Array.from({ length: 1000 }, () => b.kv.incr("burst")),
    ]);
    assert.deepEqual(results.filter((r) => r.status === "rejected"), []);
    const values = results.map((r) => (r as PromiseFulfilledResult<{ value: number }>).value.value);
    assert.deepEqual(values.sort((x, y) => x - y), Array.from({ length: 2000 }, (_, i) => i + 1));
    await watching.inOrder(2000);
  } finally {
    await close();
  }
});

Deno.test("Two instances: a key's actor catching up with nobody watching reads no change log, and a watcher added later sees every change after it once", async () => {
  const { a, b, close } = await twoInstances();
  try {
    await a.kv.put("quiet", 1);
    await b.kv.put("quiet", 2);
    let lists = 0;
    const list = a.store.list.bind(a.store);
    a.store.list = ((...args: Parameters<typeof list>) => {
      lists++;
      return list(...args);
    }) as typeof list;
    // a's actor holds version 1: its write conflicts, catches up with b's version 2, and lands.
    assert.equal((await a.kv.put("quiet", 3)).version, 3);
    assert.equal(lists, 0, "no change log read for a key nobody here watches");
    a.store.list = list;
    const seen: number[] = [];
    const stop = await a.kv.watch("quiet", (c) => seen.push(c.version));
    await b.kv.put("quiet", 4);
    await a.kv.put("quiet", 5);
    await until(() => seen.length >= 2, "two changes seen");
    stop();
    assert.deepEqual(seen, [4, 5]);
    assert.equal((await b.kv.get("quiet", { consistency: "strong" }))?.value, 5);
  } finally {
    await close();
  }
});
