import assert from "node:assert/strict";
import { Store } from "../../storage/store.ts";
import { createBackup, restoreBackup, verifyBackup } from "../../storage/backup.ts";

Deno.test("A backup round-trips every entry and its checksum catches tampering", async () => {
  const source = await Deno.openKv(":memory:");
  const target = await Deno.openKv(":memory:");
  try {
    await source.set(["kv", "a"], { v: 1, d: new Uint8Array([1, 2, 3]), e: null });
    await source.set(["n", 1n, true, 2.5], new Deno.KvU64(42n));
    await source.set(["s"], "text");
    const bytes = await createBackup(new Store(source), "test");
    const check = await verifyBackup(bytes);
    assert.equal(check.ok, true);
    assert.equal(check.header?.entries, 3);
    assert.equal(check.header?.instance, "test");
    assert.equal(await restoreBackup(new Store(target), bytes), 3);
    assert.deepEqual((await target.get(["kv", "a"])).value, {
      v: 1,
      d: new Uint8Array([1, 2, 3]),
      e: null,
    });
    assert.equal(((await target.get(["n", 1n, true, 2.5])).value as Deno.KvU64).value, 42n);
    // Tamper: change one byte of the decompressed body and recompress.
    const text = await new Response(
      new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream("gzip")),
    ).text();
    const tampered = new Uint8Array(
      await new Response(
        new Blob([text.replace("text", "test")]).stream().pipeThrough(
          new CompressionStream("gzip"),
        ),
      ).arrayBuffer(),
    );
    const bad = await verifyBackup(tampered);
    assert.equal(bad.ok, false);
    assert.match(bad.reason ?? "", /checksum/);
    await assert.rejects(() => restoreBackup(new Store(target), tampered), /checksum/);
    assert.equal((await verifyBackup(new Uint8Array([1, 2, 3]))).ok, false);
  } finally {
    source.close();
    target.close();
  }
});

Deno.test("[http] GET /api/v1/admin/backup and POST /api/v1/admin/restore round-trip", async () => {
  const { openTest, call } = await import("../_helpers.ts");
  const source = await openTest();
  const target = await openTest();
  try {
    await call(source.chorus.app, "PUT", "/api/v1/kv/a", { value: { n: 1 } });
    await call(source.chorus.app, "PUT", "/api/v1/contexts/doc", { context: { title: "x" } });
    const res = await source.chorus.app.request("/api/v1/admin/backup");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/gzip");
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal((await verifyBackup(bytes)).ok, true);
    const restore = (query = "") =>
      target.chorus.app.request(`/api/v1/admin/restore${query}`, {
        method: "POST",
        headers: { "content-type": "application/gzip" },
        body: bytes,
      });
    const first = await restore();
    assert.equal(first.status, 200);
    assert.ok((await first.json()).restored > 0);
    await target.chorus.registry.close();
    assert.deepEqual((await call(target.chorus.app, "GET", "/api/v1/kv/a")).body.value, { n: 1 });
    const again = await restore();
    assert.equal(again.status, 409, "a non-empty store needs force");
    await again.body?.cancel();
    const forced = await restore("?force=true");
    assert.equal(forced.status, 200);
    await forced.body?.cancel();
    const garbage = await target.chorus.app.request("/api/v1/admin/restore?force=true", {
      method: "POST",
      headers: { "content-type": "application/gzip" },
      body: new Uint8Array([1, 2, 3]),
    });
    assert.equal(garbage.status, 400);
    await garbage.body?.cancel();
  } finally {
    await source.chorus.close();
    await target.chorus.close();
  }
});
