import assert from "node:assert/strict";
import {
  mergeFamilies,
  type MetricFamily,
  renderFamilies,
} from "../../observability/metric_families.ts";

function counter(value: number): MetricFamily {
  return {
    name: "c_total",
    help: "a counter",
    type: "counter",
    aggregate: "sum",
    samples: [{ name: "c_total", labels: { kind: "kv" }, value }],
  };
}

function rss(value: number): MetricFamily {
  return {
    name: "rss_bytes",
    help: "rss",
    type: "gauge",
    aggregate: "max",
    samples: [{ name: "rss_bytes", labels: {}, value }],
  };
}

Deno.test("metric families: counters and histogram parts are summed, max families keep the largest", () => {
  const hist = (count: number, extra?: string): MetricFamily => ({
    name: "h_seconds",
    help: "h",
    type: "histogram",
    aggregate: "sum",
    samples: [
      { name: "h_seconds_bucket", labels: { le: "0.1", route: "/a" }, value: count },
      { name: "h_seconds_bucket", labels: { le: "+Inf", route: "/a" }, value: count },
      { name: "h_seconds_sum", labels: { route: "/a" }, value: count / 100 },
      { name: "h_seconds_count", labels: { route: "/a" }, value: count },
      ...(extra ? [{ name: "h_seconds_count", labels: { route: extra }, value: 1 }] : []),
    ],
  });
  const merged = mergeFamilies([[counter(3), rss(100), hist(2)], [
    rss(300),
    counter(4),
    hist(5, "/b"),
  ]]);
  assert.deepEqual(merged.map((f) => f.name), ["c_total", "rss_bytes", "h_seconds"]);
  assert.equal(merged[0].samples[0].value, 7);
  assert.equal(merged[1].samples[0].value, 300);
  const h = merged[2].samples;
  assert.deepEqual(h.map((s) => s.value), [7, 7, 0.07, 7, 1]);
  // Inputs are not changed.
  assert.equal(counter(3).samples[0].value, 3);
});

Deno.test("metric families: rendered in the text format with escaped labels and +Inf", () => {
  const text = renderFamilies([{
    name: "x_total",
    help: "line\none \\ two",
    type: "counter",
    aggregate: "sum",
    samples: [
      { name: "x_total", labels: { route: 'a"b\\c' }, value: 2 },
      { name: "x_total", labels: {}, value: Infinity },
    ],
  }]);
  assert.equal(
    text,
    '# HELP x_total line\\none \\\\ two\n# TYPE x_total counter\nx_total{route="a\\"b\\\\c"} 2\nx_total +Inf\n',
  );
});
