/**
 * kv writes of a real `deno serve --parallel` server (two workers, started as `deno task start`
 * does): requests land on both workers, kv writes go through one of them (storage/one_writer.ts),
 * and concurrent increments over many connections still count exactly.
 * @module
 */
import assert from "node:assert/strict";
import { fresh, type StartedServer, startTwoWorkers, sumSamples, tempKvPath } from "../_helpers.ts";

Deno.test("[workers] deno serve --parallel: 120 concurrent incr over new connections count exactly, written by one worker", async () => {
  const { path, cleanup } = await tempKvPath();
  let task: StartedServer | undefined;
  try {
    task = await startTwoWorkers(path);
    const { base } = task;

    const incr = () =>
      fresh(`${base}/api/v1/kv/visits/incr`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{}",
      });
    const answers = await Promise.all(Array.from({ length: 120 }, incr));
    const values: number[] = [];
    for (const res of answers) {
      assert.equal(res.status, 200);
      values.push((await res.json()).value);
    }
    assert.deepEqual(
      values.sort((x, y) => x - y),
      Array.from({ length: 120 }, (_, i) => i + 1),
      "each request got its own count",
    );
    const read = await fresh(`${base}/api/v1/kv/visits?consistency=strong`);
    assert.equal((await read.json()).value, 120);

    const metrics = await (await fresh(`${base}/metrics`)).text();
    const handed = sumSamples(metrics, "chorus_writes_handed_over_total");
    const taken = sumSamples(metrics, "chorus_writes_taken_over_total");
    assert.ok(handed > 0, `the worker that does not write handed its increments over:\n${metrics}`);
    assert.equal(taken, handed, "every write handed over was taken over");
    task.child.kill("SIGTERM");
    assert.equal((await task.exited(30_000)).code, 0, (await task.output).join("\n"));
  } finally {
    await task?.kill();
    await cleanup();
  }
});
