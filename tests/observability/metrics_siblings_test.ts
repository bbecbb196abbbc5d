import assert from "node:assert/strict";
import type { MetricFamily } from "../../observability/metric_families.ts";
import { MetricsSiblings } from "../../observability/metrics_siblings.ts";
import { until } from "../_helpers.ts";

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

/**
 * A scrape's wait for answers, far longer than any answer takes here (even on a busy machine), so
 * a sibling that is running always answers in time and a scrape that took this long waited in
 * vain.
 */
const PATIENT_MS = 30_000;

Deno.test("metrics siblings: a scrape sums every worker; a stopped worker's last figures still count", async () => {
  const channel = `test-${crypto.randomUUID()}`;
  const counts = [10, 20, 30];
  const workers = counts.map((_, i) =>
    new MetricsSiblings({
      channel,
      id: `w${i}`,
      timeoutMs: PATIENT_MS,
      families: counterOf(() => counts[i]),
    })
  );
  try {
    await until(() => workers.every((w) => w.siblings === 2), "the workers to meet");
    const first = await workers[0].gather();
    assert.equal(first.fresh, 2);
    assert.equal(total(first.sets), 60);
    counts[2] = 35;
    const second = await workers[1].gather();
    assert.equal(total(second.sets), 65);
    workers[2].close();
    await until(() => workers[0].siblings === 1, "w2's goodbye");
    // w2 is gone: the scrape does not wait for it and counts its last figures (35).
    const started = performance.now();
    const third = await workers[0].gather();
    assert.ok(performance.now() - started < PATIENT_MS, "no wait for a stopped worker");
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
  let answer!: () => void;
  const answering = new Promise<void>((resolve) => answer = resolve);
  const fast = new MetricsSiblings({ channel, id: "fast", families: counterOf(() => 1) });
  const busy = new MetricsSiblings({
    channel,
    id: "busy",
    timeoutMs: 50,
    families: async () => {
      if (slow) await answering;
      return counterOf(() => 5)();
    },
  });
  // Long enough for a running sibling to answer even on a busy machine; busy holds its answer
  // until the test lets it go, so it is late whatever the timeout.
  const asker = new MetricsSiblings({
    channel,
    id: "asker",
    timeoutMs: 2_000,
    families: counterOf(() => 100),
  });
  try {
    await until(() => asker.siblings === 2, "the workers to meet");
    assert.equal(total((await asker.gather()).sets), 106);
    slow = true;
    const late = await asker.gather();
    assert.equal(late.fresh, 1);
    assert.equal(late.cached, 1);
    assert.equal(total(late.sets), 106, "never less than the scrape before");
    // Once busy answers again, it is fresh in the next scrape.
    answer();
    const back = await asker.gather();
    assert.equal(back.fresh, 2);
    assert.equal(total(back.sets), 106);
  } finally {
    answer();
    fast.close();
    busy.close();
    asker.close();
  }
});
