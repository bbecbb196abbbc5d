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
