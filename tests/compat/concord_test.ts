/**
 * Concord's embedded habits on `chorus.kv`: `getAll(prefix)` and paged `entries(prefix)` with
 * values and TTLs, a per-call `timeout`, and Concord's error names in `details.concord`.
 * @module
 */
import assert from "node:assert/strict";
import { ChorusError } from "../../errors.ts";
import { openTest } from "../_helpers.ts";

Deno.test("[concord] getAll(prefix) returns every live entry with values and TTLs", async () => {
  const { chorus, clock } = await openTest();
  try {
    const kv = chorus.kv;
    await kv.put("user:1", { name: "Ada" }, { ttl: 60 });
    await kv.put("user:2", { name: "Lin" });
    await kv.put("user:3", { name: "gone" }, { ttl: 1 });
    await kv.put("other", 1);
    clock.advance(1500); // user:3 expires
    assert.deepEqual(await kv.getAll("user:"), [
      { key: "user:1", value: { name: "Ada" }, version: 1, ttl: 59 },
      { key: "user:2", value: { name: "Lin" }, version: 1, ttl: null },
    ]);
    assert.equal((await kv.getAll()).length, 3);
    assert.deepEqual(await kv.getAll("nothing:"), []);
  } finally {
    await chorus.close();
  }
});

Deno.test("[concord] entries(prefix) iterates pages; getAll crosses pages", async () => {
  const { chorus } = await openTest();
  try {
    const kv = chorus.kv;
    const items = Array.from({ length: 250 }, (_, i) => ({
      key: `log:${String(i).padStart(3, "0")}`,
      value: i,
    }));
    await kv.putMany(items.slice(0, 125));
    await kv.putMany(items.slice(125));
    const sizes: number[] = [];
    const seen: string[] = [];
    for await (const page of kv.entries("log:", { pageSize: 100 })) {
      sizes.push(page.length);
      seen.push(...page.map((e) => e.key));
    }
    assert.deepEqual(sizes, [100, 100, 50]);
    assert.deepEqual(seen, items.map((i) => i.key));
    const all = await kv.getAll("log:", { pageSize: 7 });
    assert.equal(all.length, 250);
    assert.deepEqual(all[249], { key: "log:249", value: 249, version: 1, ttl: null });
    await assert.rejects(kv.getAll("log:", { pageSize: 0 }), { code: "invalid_request" });
  } finally {
    await chorus.close();
  }
});

Deno.test("[concord] a per-call timeout rejects with ChorusError timeout", async () => {
  const { chorus, clock } = await openTest();
  try {
    const kv = chorus.kv;
    // The timer runs on the injected clock: advancing it before KV answers fires the timeout.
    const write = kv.put("slow", { a: 1 }, { timeout: 50 });
    clock.advance(50);
    const err = await write.then(() => null, (e) => e);
    assert.ok(err instanceof ChorusError);
    assert.equal(err.code, "timeout");
    assert.equal(err.status, 504);
    assert.equal(err.details?.concord, "TIMEOUT");
    const read = kv.get("slow", { timeout: 10, consistency: "strong" });
    clock.advance(10);
    await assert.rejects(read, { code: "timeout" });
    const bulk = kv.putMany([{ key: "b1", value: 1 }], { timeout: 5 });
    clock.advance(5);
    await assert.rejects(bulk, { code: "timeout" });
    const all = kv.getAll("", { timeout: 5 });
    clock.advance(5);
    await assert.rejects(all, { code: "timeout" });
    // In time: answered as usual, and no timer is left behind.
    assert.equal((await kv.put("fast", 1, { timeout: 10_000 })).version, 1);
    assert.equal((await kv.get("fast", { timeout: 10_000 }))?.value, 1);
    assert.equal((await kv.incr("n", { timeout: 10_000 })).value, 1);
    assert.equal((await kv.touch("fast", 5, { timeout: 10_000 })).version, 1);
    assert.equal((await kv.deleteMany(["fast"], { timeout: 10_000 })).deleted, 1);
    clock.advance(20_000);
    for (const timeout of [0, -1, Number.NaN]) {
      await assert.rejects(kv.put("x", 1, { timeout }), { code: "invalid_request" });
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[concord] bulk errors carry Concord's names in details.concord", async () => {
  const { chorus } = await openTest();
  try {
    const many = Array.from({ length: 501 }, (_, i) => ({ key: `k${i}`, value: i }));
    await assert.rejects(chorus.kv.putMany(many), (e: ChorusError) => {
      assert.equal(e.code, "invalid_request");
      assert.equal(e.details?.concord, "BATCH_TOO_LARGE");
      return true;
    });
    await assert.rejects(chorus.kv.deleteMany([]), (e: ChorusError) => {
      assert.equal(e.details?.concord, "INVALID_REQUEST");
      return true;
    });
    // CAS failures are Concord's :condition_failed: conflict (409).
    await chorus.kv.put("c", 1);
    await assert.rejects(chorus.kv.put("c", 2, { ifMatch: 7 }), { code: "conflict" });
    await assert.rejects(chorus.kv.get(""), { code: "invalid_key" });
  } finally {
    await chorus.close();
  }
});
