import assert from "node:assert/strict";
import type { KvChange } from "../../mod.ts";
import { openTest } from "../_helpers.ts";

/** The change-log entries of `key` as stored: how many, and the changes they hold. */
async function logged(kv: Deno.Kv, key: string) {
  let entries = 0;
  const versions: number[] = [];
  for await (const e of kv.list<KvChange | KvChange[]>({ prefix: ["kv_log", key] })) {
    entries++;
    const changes = Array.isArray(e.value) ? e.value : [e.value];
    // An entry is keyed by the last version it holds.
    assert.equal(e.key[2], changes.at(-1)!.version);
    versions.push(...changes.map((c) => c.version));
  }
  return { entries, versions };
}

/** Every change a watcher replays from `since` (it returns once the replay is in). */
async function replay(chorus: Instance, key: string, since: number) {
  const seen: KvChange[] = [];
  const stop = await chorus.kv.watch(key, (c) => seen.push(c), { since });
  stop();
  return seen;
}

type Instance = Awaited<ReturnType<typeof openTest>>["chorus"];

/** Runs `fn` on a fresh instance in which `keys` are watched, so their changes are logged. */
async function withWatched(keys: string[], fn: (chorus: Instance) => Promise<void>) {
  const { chorus } = await openTest();
  try {
    const stops = await Promise.all(keys.map((key) => chorus.kv.watch(key, () => {})));
    await fn(chorus);
    for (const stop of stops) stop();
  } finally {
    await chorus.close();
  }
}

Deno.test("[kv] a burst of writes to a watched key is logged in pages, and replays give each change once, in order", async () => {
  await withWatched(["burst"], async (chorus) => {
    await Promise.all(Array.from({ length: 40 }, (_, i) => chorus.kv.put("burst", { i })));
    const { entries, versions } = await logged(chorus.store.kv, "burst");
    assert.deepEqual(versions, Array.from({ length: 40 }, (_, i) => i + 1));
    assert.ok(entries < 40, `${entries} entries for 40 changes`);
    const all = await replay(chorus, "burst", 0);
    assert.deepEqual(all.map((c) => c.version), versions);
    assert.ok(all.every((c) => !c.resync && c.op === "set"));
    assert.deepEqual(all.map((c) => (c.value as { i: number }).i).sort((x, y) => x - y), [
      ...Array(40).keys(),
    ]);
    // From the middle of a page: only what came after.
    const tail = await replay(chorus, "burst", 17);
    assert.deepEqual(tail.map((c) => c.version), versions.slice(17));
  });
});

Deno.test("[kv] log pages of the largest logged values stay within KV's value limit", async () => {
  await withWatched(["big"], async (chorus) => {
    // Just under the 8 KiB a change carries, in the shape V8 serializes largest (small decimals).
    const value = Array.from({ length: 2040 }, () => 0.5);
    assert.ok(JSON.stringify(value).length <= 8 * 1024);
    const results = await Promise.all(
      Array.from({ length: 30 }, () => chorus.kv.put("big", value)),
    );
    assert.equal(Math.max(...results.map((r) => r.version)), 30);
    const { entries, versions } = await logged(chorus.store.kv, "big");
    assert.equal(versions.length, 30);
    assert.ok(entries < 30, `${entries} entries for 30 changes`);
    const all = await replay(chorus, "big", 0);
    assert.equal(all.length, 30);
    assert.ok(all.every((c) => Array.isArray(c.value) && (c.value as number[]).length === 2040));
  });
});

Deno.test("[kv] a burst of large, well-compressed writes to a watched key all land, and are all logged", async () => {
  await withWatched(["large"], async (chorus) => {
    // Each value compresses to a few dozen bytes but is logged whole: the log, not the value,
    // decides how many writes one commit can carry.
    const value = "x".repeat(8000);
    const results = await Promise.allSettled(
      Array.from({ length: 300 }, () => chorus.kv.put("large", value)),
    );
    assert.deepEqual(results.filter((r) => r.status === "rejected"), []);
    const all = await replay(chorus, "large", 0);
    assert.deepEqual(all.map((c) => c.version), Array.from({ length: 300 }, (_, i) => i + 1));
    assert.ok(all.every((c) => c.value === value));
  });
});

Deno.test("[kv] thousands of concurrent writes to a watched key all land, even with the longest key", async () => {
  // One batch of writes once took one log entry per change, over KV's 1,000 mutations per commit.
  const keys = ["n", "k".repeat(1000)];
  await withWatched(keys, async (chorus) => {
    for (const key of keys) {
      const incr = await Promise.allSettled(
        Array.from({ length: 2000 }, () => chorus.kv.incr(key)),
      );
      assert.deepEqual(incr.filter((r) => r.status === "rejected"), [], `incr ${key.length}`);
      assert.equal((await chorus.kv.get(key))?.value, 2000);
      const puts = await Promise.allSettled(
        Array.from({ length: 2000 }, (_, i) => chorus.kv.put(key, i)),
      );
      assert.deepEqual(puts.filter((r) => r.status === "rejected"), [], `put ${key.length}`);
      const all = await replay(chorus, key, 0);
      assert.deepEqual(all.map((c) => c.version), Array.from({ length: 4000 }, (_, i) => i + 1));
    }
  });
});
