import assert from "node:assert/strict";
import { Chorus, ManualClock } from "../../mod.ts";
import { call, openTest, tempKvPath } from "../_helpers.ts";

const SCHEDULE = "/api/v1/admin/cleanup/schedule";

async function expiredContexts(chorus: Chorus, clock: ManualClock, n: number) {
  for (let i = 0; i < n; i++) await chorus.contexts.set(`old${i}`, { i });
  clock.advance(chorus.config.contextTtlMs + 1);
}

Deno.test("[http] POST /api/v1/admin/cleanup removes expired contexts and reports counts", async () => {
  const { chorus, clock } = await openTest({
    config: { contextTtlMs: 1000, contextAutoDelete: true },
  });
  try {
    await expiredContexts(chorus, clock, 3);
    const r = await call(chorus.app, "POST", "/api/v1/admin/cleanup", { limit: 2 });
    assert.deepEqual(r.body, { contexts: 2, deltas: 0, scanned: 2 });
    const rest = await call(chorus.app, "POST", "/api/v1/admin/cleanup");
    assert.equal(rest.body.contexts, 1);
    assert.equal(
      (await call(chorus.app, "POST", "/api/v1/admin/cleanup", { limit: 0 })).status,
      400,
    );
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] the cleanup schedule is read and changed at run time and drives the timer", async () => {
  const { chorus, clock } = await openTest({
    config: { contextTtlMs: 1000, contextAutoDelete: true },
  });
  try {
    const scheduler = chorus.contexts.scheduler;
    assert.equal(scheduler.mode, "timer");
    const initial = await call(chorus.app, "GET", SCHEDULE);
    assert.deepEqual(initial.body, { interval_ms: 3_600_000, limit: 1000, enabled: true });
    const put = await call(chorus.app, "PUT", SCHEDULE, { interval_ms: 5000, limit: 10 });
    assert.deepEqual(put.body, { interval_ms: 5000, limit: 10, enabled: true });
    for (const bad of [{ interval_ms: 5 }, { limit: -1 }, { enabled: "yes" }, { other: 1 }]) {
      assert.equal((await call(chorus.app, "PUT", SCHEDULE, bad)).status, 400, JSON.stringify(bad));
    }
    await expiredContexts(chorus, clock, 2); // advances 1001 ms
    clock.advance(4000);
    await scheduler.settled();
    assert.equal(scheduler.runs, 1);
    assert.equal(scheduler.lastResult?.contexts, 2);
    assert.equal((await scheduler.state())?.result?.contexts, 2);
    clock.advance(4000);
    await scheduler.settled();
    assert.equal(scheduler.runs, 1, "not due yet");
    clock.advance(1000);
    await scheduler.settled();
    assert.equal(scheduler.runs, 2);
    await call(chorus.app, "PUT", SCHEDULE, { enabled: false });
    clock.advance(20_000);
    await scheduler.settled();
    assert.equal(scheduler.runs, 2, "disabled: no runs");
    await call(chorus.app, "PUT", SCHEDULE, { enabled: true, interval_ms: 60_000 });
    clock.advance(30_000);
    await scheduler.settled();
    assert.equal(scheduler.runs, 2);
    clock.advance(30_000);
    await scheduler.settled();
    assert.equal(scheduler.runs, 3);
  } finally {
    await chorus.close();
  }
});

Deno.test("the cleanup schedule survives a restart; two instances run each due cleanup once", async () => {
  const { path, cleanup } = await tempKvPath();
  const clock = new ManualClock();
  try {
    const first = await Chorus.open({ path, clock });
    await first.contexts.scheduler.setSchedule({ interval_ms: 2000, limit: 7, enabled: true });
    await first.close();
    const a = await Chorus.open({ path, clock });
    const b = await Chorus.open({ path, clock });
    try {
      assert.deepEqual(await b.contexts.scheduler.schedule(), {
        interval_ms: 2000,
        limit: 7,
        enabled: true,
      });
      for (let round = 1; round <= 3; round++) {
        clock.advance(2000);
        await Promise.all([a.contexts.scheduler.settled(), b.contexts.scheduler.settled()]);
        assert.equal(a.contexts.scheduler.runs + b.contexts.scheduler.runs, round);
      }
    } finally {
      await a.close();
      await b.close();
    }
  } finally {
    await cleanup();
  }
});

Deno.test("scheduler mode off never ticks; several cron-mode instances in one isolate coexist", async () => {
  const off = await Chorus.open({ path: ":memory:", scheduler: "off" });
  const a = await Chorus.open({ path: ":memory:", scheduler: "cron" });
  const b = await Chorus.open({ path: ":memory:", scheduler: "cron" });
  try {
    assert.equal(off.contexts.scheduler.mode, "off");
    assert.equal(a.contexts.scheduler.mode, "cron");
    assert.equal(b.contexts.scheduler.mode, "cron");
  } finally {
    await off.close();
    await a.close();
    await b.close();
  }
});

Deno.test("in cron mode an interval under a minute is kept with a timer between cron ticks", async () => {
  const { CleanupScheduler } = await import("../../contexts/scheduler.ts");
  const { chorus, clock } = await openTest();
  const runs: number[] = [];
  const scheduler = new CleanupScheduler({
    store: chorus.store,
    clock,
    instanceId: "cron-test",
    run: (limit) => {
      runs.push(clock.now());
      assert.equal(limit, 3);
      return Promise.resolve({ contexts: 0, deltas: 0, scanned: 0 });
    },
  });
  try {
    await scheduler.setSchedule({ interval_ms: 5000, limit: 3, enabled: true });
    await scheduler.start("cron");
    assert.equal(scheduler.mode, "cron");
    for (let i = 0; i < 6; i++) {
      clock.advance(5000);
      await scheduler.settled();
    }
    // Six 5-second intervals in 30 s: a one-minute cron alone would have run at most once.
    assert.ok(runs.length >= 5, `runs: ${runs.length}`);
    for (let i = 1; i < runs.length; i++) assert.ok(runs[i] - runs[i - 1] >= 5000);
    // Back to an interval of a minute or more: the cron alone ticks, the timer stops.
    await scheduler.setSchedule({ interval_ms: 120_000 });
    clock.advance(5000);
    await scheduler.settled();
    const before = runs.length;
    clock.advance(60_000);
    await scheduler.settled();
    assert.equal(runs.length, before, "no timer runs with a long interval in cron mode");
  } finally {
    await scheduler.close();
    await chorus.close();
  }
});
