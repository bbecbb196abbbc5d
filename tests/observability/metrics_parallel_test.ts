/**
 * `/metrics` of a real `deno serve --parallel` server (started as `deno task start` does, two
 * workers): every scrape reports the whole server, whichever worker answers it, so its counters
 * add up to the requests made and never go backwards.
 * @module
 */
import assert from "node:assert/strict";
import {
  fresh,
  type StartedServer,
  startTwoWorkers,
  sumSamples as sum,
  tempKvPath,
} from "../_helpers.ts";
import { assertPromtoolAccepts } from "./_promtool.ts";

Deno.test("[metrics] deno serve --parallel: each scrape sums both workers and counters never go back", async () => {
  const { path, cleanup } = await tempKvPath();
  let task: StartedServer | undefined;
  try {
    task = await startTwoWorkers(path);
    const { base, child, output } = task;

    const route = 'route="/api/v1/kv/:key"';
    const count = "chorus_http_request_duration_seconds_count";
    let made = 0;
    let last = { requests: 0, commits: 0, all: 0 };
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 12; i++) {
        const res = i % 3 === 0
          ? await fresh(`${base}/api/v1/kv/k${i}`, {
            method: "PUT",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ value: { round, i } }),
          })
          : await fresh(`${base}/api/v1/kv/k${i}`);
        assert.ok(res.status === 200 || res.status === 404, String(res.status));
        made++;
      }
      const scrape = await fresh(`${base}/metrics`);
      assert.equal(scrape.status, 200);
      const text = await scrape.text();
      assert.equal(sum(text, "chorus_workers", 'state="fresh"'), 2, text);
      const now = {
        requests: sum(text, count, route),
        commits: sum(text, "chorus_kv_commits_total"),
        all: sum(text, count),
      };
      assert.equal(now.requests, made, "kv requests counted over both workers");
      assert.ok(now.commits >= last.commits, `commits went back: ${last.commits} → ${now.commits}`);
      assert.ok(now.all > last.all, `requests went back: ${last.all} → ${now.all}`);
      last = now;
      if (round === 5) await assertPromtoolAccepts(text);
    }
    child.kill("SIGTERM");
    assert.equal((await task.exited(30_000)).code, 0, (await output).join("\n"));
  } finally {
    await task?.kill();
    await cleanup();
  }
});
