/**
 * `chorus.kv.put` ownership of values: by default the caller's object is copied, so changing it
 * afterwards changes nothing stored; with `handOver` it is frozen in place instead of copied.
 * @module
 */
import assert from "node:assert/strict";
import { openTest, tempKvPath } from "../_helpers.ts";
import { Chorus } from "../../mod.ts";

Deno.test("[kv] put copies the caller's value; with handOver it freezes it instead", async () => {
  const { chorus } = await openTest();
  try {
    const mine = { list: [1, 2], nested: { a: 1 } };
    await chorus.kv.put("copied", mine);
    mine.list.push(3);
    mine.nested.a = 99;
    assert.ok(!Object.isFrozen(mine), "the caller's object is left alone");
    assert.deepEqual((await chorus.kv.get("copied"))?.value, { list: [1, 2], nested: { a: 1 } });

    const given = { list: [1, 2], nested: { a: 1 } };
    await chorus.kv.put("given", given, { handOver: true });
    assert.ok(
      Object.isFrozen(given) && Object.isFrozen(given.list) && Object.isFrozen(given.nested),
    );
    assert.throws(() => given.list.push(3), TypeError);
    assert.deepEqual((await chorus.kv.get("given"))?.value, { list: [1, 2], nested: { a: 1 } });
    assert.deepEqual((await chorus.kv.get("given", { consistency: "strong" }))?.value, given);
  } finally {
    await chorus.close();
  }
});

Deno.test("[kv] an eventual read of a key not in memory loads it, so the next ones cost no KV read", async () => {
  const { path, cleanup } = await tempKvPath();
  const writer = await Chorus.open({ path });
  const reader = await Chorus.open({ path });
  try {
    await writer.kv.put("cold", { n: 1 });
    assert.deepEqual((await reader.kv.get("cold", { consistency: "eventual" }))?.value, { n: 1 });
    await reader.kv.get("cold"); // the load started by the eventual read has finished by now
    const before = reader.store.stats.reads;
    for (let i = 0; i < 100; i++) {
      assert.deepEqual((await reader.kv.get("cold", { consistency: "eventual" }))?.value, { n: 1 });
    }
    assert.equal(reader.store.stats.reads, before);
  } finally {
    await writer.close();
    await reader.close();
    await cleanup();
  }
});

Deno.test("[kv] strong reads that queue together share one KV read, each still sees every write before it", async () => {
  const { path, cleanup } = await tempKvPath();
  const writer = await Chorus.open({ path });
  const reader = await Chorus.open({ path });
  try {
    await writer.kv.put("shared", 1);
    assert.equal((await reader.kv.get("shared", { consistency: "strong" }))?.value, 1);
    await writer.kv.put("shared", 2); // another instance's write: only a KV read can tell
    const before = reader.store.stats.reads;
    const reads = Array.from(
      { length: 50 },
      () => reader.kv.get("shared", { consistency: "strong" }),
    );
    const values = (await Promise.all(reads)).map((r) => r?.value);
    assert.deepEqual(values, new Array(50).fill(2));
    // The first read runs alone; the 49 queued behind it go out with one confirmation (and the
    // refresh it triggers reads the moved head once more).
    const used = reader.store.stats.reads - before;
    assert.ok(used <= 4, `50 strong reads made ${used} KV reads`);
  } finally {
    await writer.close();
    await reader.close();
    await cleanup();
  }
});

Deno.test("[kv] the value a put keeps is what JSON stores: the cache and a reload agree", async () => {
  const { path, cleanup } = await tempKvPath();
  const writer = await Chorus.open({ path });
  const reader = await Chorus.open({ path });
  try {
    const value = { when: new Date(0), gone: undefined, list: [undefined, 1] };
    await writer.kv.put("dated", value);
    const expected = { when: "1970-01-01T00:00:00.000Z", list: [null, 1] };
    assert.deepEqual((await writer.kv.get("dated"))?.value, expected);
    assert.deepEqual((await reader.kv.get("dated", { consistency: "strong" }))?.value, expected);
    await assert.rejects(
      () => writer.kv.put("fn", { f: () => 1 }),
      (e: Error & { code?: string }) => e.code === "invalid_request" && /function/.test(e.message),
    );
    await assert.rejects(
      () => writer.kv.putMany([{ key: "ok", value: 1 }, { key: "nan", value: NaN }]),
      (e: Error & { code?: string }) => e.code === "invalid_request" && /item 1/.test(e.message),
    );
    assert.equal(await writer.kv.get("ok"), null, "a bulk write with a bad item writes nothing");
  } finally {
    await writer.close();
    await reader.close();
    await cleanup();
  }
});
