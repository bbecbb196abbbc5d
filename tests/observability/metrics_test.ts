import assert from "node:assert/strict";
import { openTest } from "../_helpers.ts";
import { MAX_HTTP_SERIES, methodLabel, Metrics, statusLabel } from "../../observability/metrics.ts";
import { assertPromtoolAccepts } from "./_promtool.ts";

/** The `chorus_http_request_duration_seconds` series of a `/metrics` text, one per `_count` line. */
function httpSeries(text: string): string[] {
  return text.split("\n").filter((l) =>
    l.startsWith("chorus_http_request_duration_seconds_count{")
  );
}

Deno.test("[http] bogus HTTP methods do not grow /metrics: every label is from a bounded set", async () => {
  const { chorus } = await openTest();
  try {
    for (let i = 0; i < 200; i++) {
      const res = await chorus.app.request("/api/v1/kv/x", { method: `M${i}` });
      await res.body?.cancel();
    }
    const res = await chorus.app.request("/metrics");
    const series = httpSeries(await res.text());
    const bogus = series.filter((l) =>
      !/method="(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)"/.test(l)
    );
    assert.equal(bogus.length, 1, bogus.join("\n"));
    assert.match(bogus[0], /method="other",route="[^"]+",status="404"/);
    assert.match(bogus[0], /} 200$/);
    assert.ok(series.length <= 3, series.join("\n"));
  } finally {
    await chorus.close();
  }
});

Deno.test("metrics labels: standard methods kept, others collapse; statuses outside 100–599 too", async () => {
  assert.equal(methodLabel("PATCH"), "PATCH");
  assert.equal(methodLabel("patch"), "other");
  assert.equal(methodLabel("M1"), "other");
  assert.equal(statusLabel(404), "404");
  assert.equal(statusLabel(99), "other");
  assert.equal(statusLabel(600), "other");
  const { chorus } = await openTest();
  try {
    const metrics = new Metrics({ store: chorus.store, actors: chorus.registry });
    for (let status = 600; status < 1100; status++) metrics.observe("GET", "/x", status, 0.001);
    metrics.observe("BREW", "/x", 200, 0.001);
    assert.deepEqual(httpSeries(await metrics.render()), [
      'chorus_http_request_duration_seconds_count{method="GET",route="/x",status="other"} 500',
      'chorus_http_request_duration_seconds_count{method="other",route="/x",status="200"} 1',
    ]);
  } finally {
    await chorus.close();
  }
});

Deno.test("metrics: HTTP histogram buckets are cumulative, with +Inf equal to the count", async () => {
  const { chorus } = await openTest();
  try {
    const metrics = new Metrics({ store: chorus.store, actors: chorus.registry });
    for (const seconds of [0.0001, 0.0005, 0.003, 0.003, 0.2, 7]) {
      metrics.observe("GET", "/h", 200, seconds);
    }
    metrics.observe("PUT", "/h", 200, 0.003);
    const text = await metrics.render();
    const bucket = (le: string, method = "GET") =>
      text.split("\n").find((l) =>
        l.startsWith("chorus_http_request_duration_seconds_bucket{") &&
        l.includes(`le="${le}",method="${method}",route="/h",status="200"`)
      )?.split(" ").at(-1);
    assert.equal(bucket("0.0005"), "2"); // a duration equal to a bound counts in it
    assert.equal(bucket("0.001"), "2");
    assert.equal(bucket("0.005"), "4");
    assert.equal(bucket("0.25"), "5");
    assert.equal(bucket("2.5"), "5");
    assert.equal(bucket("+Inf"), "6");
    assert.equal(bucket("0.0025", "PUT"), "0");
    assert.equal(bucket("0.005", "PUT"), "1");
    assert.match(
      text,
      /chorus_http_request_duration_seconds_sum\{method="GET",route="\/h",status="200"\} 7\.2066/,
    );
  } finally {
    await chorus.close();
  }
});

Deno.test("metrics: past MAX_HTTP_SERIES, new series fold into the route overflow", async () => {
  const { chorus } = await openTest();
  try {
    const metrics = new Metrics({ store: chorus.store, actors: chorus.registry });
    for (let i = 0; i < MAX_HTTP_SERIES + 50; i++) metrics.observe("GET", `/r${i}`, 200, 0.001);
    const series = httpSeries(await metrics.render());
    assert.equal(series.length, MAX_HTTP_SERIES + 1);
    assert.equal(
      series.at(-1),
      'chorus_http_request_duration_seconds_count{method="GET",route="overflow",status="200"} 50',
    );
  } finally {
    await chorus.close();
  }
});

Deno.test("[metrics] promtool check metrics accepts the exposition", async () => {
  const { chorus } = await openTest();
  try {
    await chorus.kv.put("small", { a: 1 });
    await chorus.kv.put("big", { text: "chorus ".repeat(1000) });
    await chorus.app.request("/api/v1/kv/big");
    await chorus.app.request("/api/v1/kv/missing");
    const res = await chorus.app.request("/metrics");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (
      const name of [
        "chorus_members 1",
        "chorus_memory_rss_bytes ",
        "chorus_memory_heap_used_bytes ",
        'chorus_actors_live{kind="kv"} 3',
        "chorus_values_compressed_total 1",
        "chorus_value_bytes_before_total ",
        "chorus_value_bytes_after_total ",
      ]
    ) assert.ok(text.includes(`\n${name}`), name);
    assert.doesNotMatch(text, /chorus_kv_commit_seconds_sum/);
    await assertPromtoolAccepts(text);
  } finally {
    await chorus.close();
  }
});

Deno.test("metrics: workers' HTTP histograms add up in a scrape, still cumulative", async () => {
  const { chorus } = await openTest();
  const channel = `test-${crypto.randomUUID()}`;
  const workers = ["w0", "w1"].map((id) =>
    new Metrics({
      store: chorus.store,
      actors: chorus.registry,
      siblings: { channel, id, timeoutMs: 30_000 },
    })
  );
  try {
    workers[0].observe("GET", "/s", 200, 0.0001);
    workers[0].observe("GET", "/s", 200, 0.003);
    workers[1].observe("GET", "/s", 200, 0.003);
    workers[1].observe("GET", "/s", 200, 9);
    // Until the workers have met on the channel, a scrape holds one worker's figures.
    let text = "";
    for (let i = 0; i < 400 && !text.includes('route="/s",status="200"} 4'); i++) {
      if (i) await new Promise((r) => setTimeout(r, 25));
      text = await workers[0].render();
    }
    const value = (le: string) =>
      text.split("\n").find((l) =>
        l.startsWith(
          `chorus_http_request_duration_seconds_bucket{le="${le}",method="GET",route="/s"`,
        )
      )?.split(" ").at(-1);
    assert.equal(value("0.0005"), "1");
    assert.equal(value("0.005"), "3");
    assert.equal(value("2.5"), "3");
    assert.equal(value("+Inf"), "4");
    assert.match(
      text,
      /chorus_http_request_duration_seconds_count\{method="GET",route="\/s",status="200"\} 4/,
    );
  } finally {
    for (const w of workers) w.close();
    await chorus.close();
  }
});
