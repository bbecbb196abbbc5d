import assert from "node:assert/strict";
import type { MetricFamily } from "../../observability/metric_families.ts";
import { MetricsSiblings } from "../../observability/metrics_siblings.ts";

function counterOf(read: () => number): () => Promise<MetricFamily[]> {
  return () =>
    Promise.resolve([{
      name: "n_total",
      help: "n",
      type: "counter",
      aggregate: "sum",
      samples: [{ name: "n_total", labels: {}, value: read() }],
    }]);
}

function total(sets: MetricFamily[][]): number {
  return sets.flat().reduce((n, f) => n + f.samples[0].value, 0);
}

const tick = () => new Promise((r) => setTimeout(r, 20));

Deno.test("metrics siblings: a scrape sums every worker; a stopped worker's last figures still count", async () => {
  const channel = `test-${crypto.randomUUID()}`;
  const counts = [10, 20, 30];
  const workers = counts.map((_, i) =>
    new MetricsSiblings({ channel, id: `w${i}`, families: counterOf(() => counts[i]) })
  );
  try {
    await tick();
    const first = await workers[0].gather();
    assert.equal(first.fresh, 2);
    assert.equal(total(first.sets), 60);
    counts[2] = 35;
    const second = await workers[1].gather();
    assert.equal(total(second.sets), 65);
    workers[2].close();
    await tick();
    // w2 is gone: the scrape does not wait for it and counts its last figures (35).
    const started = performance.now();
    const third = await workers[0].gather();
    assert.ok(performance.now() - started < 200, "no wait for a stopped worker");
    assert.equal(third.fresh, 1);
    assert.equal(third.cached, 1);
    assert.equal(total(third.sets), 65);
  } finally {
    for (const w of workers) w.close();
  }
});

Deno.test("metrics siblings: a worker that does not answer in time is counted from its last figures", async () => {
  const channel = `test-${crypto.randomUUID()}`;
  let slow = false;
  const fast = new MetricsSiblings({ channel, id: "fast", families: counterOf(() => 1) });
  const busy = new MetricsSiblings({
    channel,
    id: "busy",
    timeoutMs: 50,
    families: async () => {
      if (slow) await new Promise((r) => setTimeout(r, 300));
      return counterOf(() => 5)();
    },
  });
  const asker = new MetricsSiblings({
    channel,
    id: "asker",
    timeoutMs: 80,
    families: counterOf(() => 100),
  });
  try {
    await tick();
    assert.equal(total((await asker.gather()).sets), 106);
    slow = true;
    const late = await asker.gather();
    assert.equal(late.fresh, 1);
    assert.equal(late.cached, 1);
    assert.equal(total(late.sets), 106, "never less than the scrape before");
    await new Promise((r) => setTimeout(r, 350)); // let the late answer arrive
  } finally {
    fast.close();
    busy.close();
    asker.close();
  }
});
