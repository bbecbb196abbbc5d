import assert from "node:assert/strict";
import { call, openTest } from "../_helpers.ts";

Deno.test("[http] GET /api/v1/health answers like /health, open without a token", async () => {
  const { chorus } = await openTest({
    config: { auth: true, adminToken: "sk_chorus_test-admin-secret-0123456789" },
  });
  try {
    const root = await call(chorus.app, "GET", "/health");
    const api = await call(chorus.app, "GET", "/api/v1/health");
    assert.equal(api.status, 200, JSON.stringify(api.body));
    assert.deepEqual(Object.keys(api.body).sort(), Object.keys(root.body).sort());
    assert.equal(api.body.status, "ok");
    assert.equal(api.body.instance, chorus.instanceId);
    assert.equal(typeof api.body.uptime_ms, "number");
    // Its neighbours still need a token.
    assert.equal((await call(chorus.app, "GET", "/api/v1/system/stats")).status, 401);
    const doc = await call(chorus.app, "GET", "/api/v1/openapi.json");
    assert.ok(doc.body.paths["/api/v1/health"], "documented in the OpenAPI document");
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] compression figures: chorus.kv.compressionStats(), /api/v1/system/stats and /metrics agree", async () => {
  const { chorus } = await openTest({ config: { compressionThreshold: 1024 } });
  try {
    const big = { text: "compress me ".repeat(400) };
    const rawBig = JSON.stringify(big).length;
    await chorus.kv.put("big", big);
    await chorus.kv.put("small", { n: 1 });
    const report = chorus.kv.compressionStats();
    assert.equal(report.values, 2);
    assert.equal(report.compressed, 1);
    assert.equal(report.bytesBefore, rawBig + JSON.stringify({ n: 1 }).length);
    assert.ok(report.bytesAfter < report.bytesBefore / 4, JSON.stringify(report));
    assert.equal(report.savedBytes, report.bytesBefore - report.bytesAfter);
    assert.equal(report.ratio, Math.round(report.bytesAfter / report.bytesBefore * 1000) / 1000);

    const stats = await call(chorus.app, "GET", "/api/v1/system/stats");
    assert.deepEqual(stats.body.compression, {
      values: 2,
      compressed: 1,
      bytes_before: report.bytesBefore,
      bytes_after: report.bytesAfter,
      ratio: report.ratio,
      saved_bytes: report.savedBytes,
    });
    const text = await (await chorus.app.request("/metrics")).text();
    assert.match(text, /\nchorus_values_encoded_total 2\n/);
    assert.match(text, /\nchorus_values_compressed_total 1\n/);
    assert.ok(text.includes(`\nchorus_value_bytes_before_total ${report.bytesBefore}\n`));
    assert.ok(text.includes(`\nchorus_value_bytes_after_total ${report.bytesAfter}\n`));

    // Another instance keeps its own figures.
    const other = await openTest();
    try {
      assert.equal(other.chorus.kv.compressionStats().values, 0);
    } finally {
      await other.chorus.close();
    }
  } finally {
    await chorus.close();
  }
});
