import assert from "node:assert/strict";
import { Mailbox } from "../../actors/mailbox.ts";

Deno.test("Mailbox runs one message at a time, in order", async () => {
  const log: string[] = [];
  let active = 0;
  let maxActive = 0;
  const box = new Mailbox<string>(async (batch) => {
    active++;
    maxActive = Math.max(maxActive, active);
    await new Promise((r) => setTimeout(r, 1));
    log.push(...batch);
    active--;
  });
  for (const m of ["a", "b", "c", "d"]) box.post(m);
  await box.drained();
  assert.deepEqual(log, ["a", "b", "c", "d"]);
  assert.equal(maxActive, 1);
});

Deno.test("Mailbox batches consecutive batchable messages queued while busy", async () => {
  const batches: string[][] = [];
  const box = new Mailbox<string>(async (batch) => {
    batches.push(batch);
    await new Promise((r) => setTimeout(r, 1));
  }, { batchable: (m) => m.startsWith("w") });
  box.post("w1"); // runs alone: nothing was queued
  box.post("w2");
  box.post("w3");
  box.post("r1"); // a read breaks the run
  box.post("w4");
  await box.drained();
  assert.deepEqual(batches, [["w1"], ["w2", "w3"], ["r1"], ["w4"]]);
});

Deno.test("Mailbox respects the batch weight limit", async () => {
  const batches: number[][] = [];
  const box = new Mailbox<number>(async (batch) => {
    batches.push(batch);
    await Promise.resolve();
  }, { batchable: () => true, weight: (m) => m, maxWeight: 10 });
  box.post(1);
  for (const m of [4, 4, 4, 9, 1]) box.post(m);
  await box.drained();
  assert.deepEqual(batches, [[1], [4, 4], [4], [9, 1]]);
});

Deno.test("Mailbox keeps going after a handler throws", async () => {
  const seen: number[] = [];
  const box = new Mailbox<number>((batch) => {
    seen.push(...batch);
    if (batch[0] === 1) throw new Error("boom");
  });
  box.post(1);
  box.post(2);
  await box.drained();
  assert.deepEqual(seen, [1, 2]);
  assert.equal(box.idle, true);
});

Deno.test("Mailbox batches only messages of one group together", async () => {
  const batches: string[][] = [];
  const box = new Mailbox<string>(async (batch) => {
    batches.push(batch);
    await new Promise((r) => setTimeout(r, 1));
  }, { batchable: (m) => m[0] !== "x", group: (m) => m[0] });
  box.post("w1");
  for (const m of ["r1", "r2", "w2", "w3", "x1", "r3", "r4"]) box.post(m);
  await box.drained();
  assert.deepEqual(batches, [["w1"], ["r1", "r2"], ["w2", "w3"], ["x1"], ["r3", "r4"]]);
});
