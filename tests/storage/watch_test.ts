/**
 * Watch fan-in: keys sharing one `kv.watch` stream wake only their own listeners, and a new
 * listener of a key already watched still gets the current versionstamp.
 * @module
 */
import assert from "node:assert/strict";
import { WatchHub } from "../../storage/watch.ts";
import { until } from "../_helpers.ts";

Deno.test("[watch] a write to one key of a shared stream wakes only that key's listeners", async () => {
  const kv = await Deno.openKv(":memory:");
  const hub = new WatchHub(kv);
  try {
    const calls = { a: [] as (string | null)[], b: [] as (string | null)[] };
    const stopA = hub.subscribe(["a"], (vs) => calls.a.push(vs));
    const stopB = hub.subscribe(["b"], (vs) => calls.b.push(vs));
    assert.equal(hub.streams, 1, "both keys share one stream");
    await until(() => calls.a.length >= 1 && calls.b.length >= 1);
    const b0 = calls.b.length;

    const written: string[] = [];
    for (let i = 0; i < 5; i++) written.push((await kv.set(["a"], i)).versionstamp);
    await until(() => calls.a.at(-1) === written.at(-1));
    const { versionstamp: bStamp } = await kv.set(["b"], "x");
    await until(() => calls.b.at(-1) === bStamp);
    assert.equal(calls.b.length, b0 + 1, "b's listener woke once, for b's own write");
    assert.ok(calls.a.every((vs, i) => i === 0 || vs !== calls.a[i - 1]), "a: no repeats");

    // A second listener of a watched key gets its current versionstamp without a new write.
    const late: (string | null)[] = [];
    const stopLate = hub.subscribe(["a"], (vs) => late.push(vs));
    await until(() => late.length > 0);
    assert.equal(late[0], written.at(-1));
    stopA();
    stopB();
    stopLate();
  } finally {
    hub.close();
    kv.close();
  }
});
