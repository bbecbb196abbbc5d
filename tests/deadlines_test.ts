/**
 * Shared deadlines on an injected clock: operations that finish in time keep their result, those
 * that do not fail with the expired error once their deadline passes, each on its own deadline,
 * and no timer is left once nothing waits.
 * @module
 */
import assert from "node:assert/strict";
import { Deadlines } from "../deadlines.ts";
import { ManualClock } from "../clock.ts";

/** A promise with its resolve function, to finish an operation when the test says so. */
function later<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => resolve = r);
  return { promise, resolve };
}
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("[deadlines] results and errors pass through; a slow operation fails at its deadline", async () => {
  const clock = new ManualClock();
  const deadlines = new Deadlines(40, () => new Error("expired"), { clock, granularity: 5 });
  const slow = later<string>();
  let slowOutcome: unknown;
  const slowRun = deadlines.run(() => slow.promise).then(
    (v) => slowOutcome = v,
    (e) => slowOutcome = e.message,
  );
  assert.equal(await deadlines.run(() => Promise.resolve("fast")), "fast");
  await assert.rejects(deadlines.run(() => Promise.reject(new Error("own failure"))), {
    message: "own failure",
  });
  assert.equal(deadlines.pending, 1);
  clock.advance(39);
  await tick();
  assert.equal(slowOutcome, undefined, "not before the deadline");
  clock.advance(6); // past 40, at the end of its 5 ms bucket
  await slowRun;
  assert.equal(slowOutcome, "expired");
  assert.equal(deadlines.pending, 0);
  assert.equal(clock.pending, 0, "no timer left");
  slow.resolve("too late"); // the operation itself ends later; nobody waits for it
  await tick();
  assert.equal(slowOutcome, "expired");
});

Deno.test("[deadlines] operations started at different times expire on their own deadlines", async () => {
  const clock = new ManualClock();
  const deadlines = new Deadlines(30, () => new Error("expired"), { clock, granularity: 1 });
  const expiredAt: number[] = [];
  const never = later<void>();
  const start = (at: number) => {
    deadlines.run(() => never.promise).catch(() => expiredAt.push(clock.now() - at));
  };
  const t0 = clock.now();
  start(t0);
  clock.advance(10);
  start(t0 + 10);
  clock.advance(10);
  start(t0 + 20);
  const fast = later<number>();
  const done = deadlines.run(() => fast.promise);
  fast.resolve(7);
  assert.equal(await done, 7);
  for (let i = 0; i < 40; i++) {
    clock.advance(1);
    await tick();
  }
  assert.deepEqual(expiredAt, [30, 30, 30]);
  assert.equal(deadlines.pending, 0);
  assert.equal(clock.pending, 0);
});

Deno.test("[deadlines] a wall clock that steps does not move deadlines", async () => {
  const manual = new ManualClock();
  let step = 0;
  // Wall time steps; monotonic time and timers follow only the manual clock.
  const clock = {
    now: () => manual.now() + step,
    monotonic: () => manual.monotonic(),
    setTimeout: (fn: () => void, ms: number) => manual.setTimeout(fn, ms),
    clearTimeout: (id: number) => manual.clearTimeout(id),
  };
  const deadlines = new Deadlines(1000, () => new Error("expired"), { clock, granularity: 1 });
  let outcome = "pending";
  const run = deadlines.run(() => later<void>().promise).catch((e) => outcome = e.message);
  step = 5000; // the wall clock jumps forward
  manual.advance(500);
  await tick();
  assert.equal(outcome, "pending", "not early");
  step = -3000; // and back
  manual.advance(501);
  await run;
  assert.equal(outcome, "expired", "on time");
  assert.equal(manual.pending, 0);
});
