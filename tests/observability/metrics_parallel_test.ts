/**
 * `/metrics` of a real `deno serve --parallel` server (started as `deno task start` does, two
 * workers): every scrape reports the whole server, whichever worker answers it, so its counters
 * add up to the requests made and never go backwards.
 * @module
 */
import assert from "node:assert/strict";
import { type StartedServer, startServer, tempKvPath } from "../_helpers.ts";
import { assertPromtoolAccepts } from "./_promtool.ts";

/** One request on its own connection, so successive requests spread over the workers. */
async function fresh(url: string, init: RequestInit = {}): Promise<Response> {
  const client = Deno.createHttpClient({});
  try {
    const res = await fetch(url, { ...init, client });
    const body = await res.arrayBuffer();
    return new Response(body, { status: res.status, headers: res.headers });
  } finally {
    client.close();
  }
}

/** Sums the samples named `sample` whose labels contain `match`. */
function sum(text: string, sample: string, match = ""): number {
  let n = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${sample}{`) && !line.startsWith(`${sample} `)) continue;
    if (match && !line.includes(match)) continue;
    n += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return n;
}

Deno.test("[metrics] deno serve --parallel: each scrape sums both workers and counters never go back", async () => {
  const { path, cleanup } = await tempKvPath();
  let task: StartedServer | undefined;
  try {
    task = await startServer({
      CHORUS_KV: path,
      CHORUS_AUTH: "off",
      CHORUS_LOG_LEVEL: "warn",
      DENO_JOBS: "2",
    });
    const { base, child, output } = task;
    // Both workers serve: connections land on each (the instance ids differ). /health answers as
    // soon as one worker listens; the other may still be starting, so ask until it answers too.
    const instances = new Set<string>();
    const deadline = performance.now() + 30_000;
    while (instances.size < 2 && performance.now() < deadline) {
      instances.add((await (await fresh(`${base}/health`)).json()).instance);
      if (instances.size < 2) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(instances.size, 2, "two workers answer within 30 s");

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
