import assert from "node:assert/strict";
import { Chorus, type ContextSnapshot } from "../../mod.ts";
import { call, openTest, rawPathRequest } from "../_helpers.ts";
import { httpExportProvider } from "../../contexts/export.ts";

async function roundTrip(chorus: Chorus, provider: string) {
  await chorus.contexts.set("doc", { title: "v1", tags: ["a"] });
  await chorus.contexts.update("doc", { title: "v2" });
  const exported = await call(chorus.app, "POST", "/api/v1/contexts/doc/export");
  assert.equal(exported.status, 200, JSON.stringify(exported.body));
  assert.deepEqual(exported.body, {
    id: "doc",
    version: 2,
    exported_at: exported.body.exported_at,
    provider,
  });
  await chorus.contexts.update("doc", { title: "v3", extra: 1 });
  const restored = await call(chorus.app, "POST", "/api/v1/contexts/doc/restore");
  assert.equal(restored.status, 200);
  assert.deepEqual(restored.body, {
    id: "doc",
    version: 4,
    context: { title: "v2", tags: ["a"] },
    restored_version: 2,
  });
  const sync = await chorus.contexts.sync("doc", 3);
  assert.deepEqual(sync, {
    type: "delta",
    from_version: 3,
    version: 4,
    delta: {
      title: { action: "modified", value: "v2", old_value: "v3" },
      extra: { action: "removed", old_value: 1 },
    },
  });
  const missing = await call(chorus.app, "POST", "/api/v1/contexts/never/restore");
  assert.equal(missing.status, 404);
  const absent = await call(chorus.app, "POST", "/api/v1/contexts/never/export");
  assert.equal(absent.status, 404);
}

Deno.test("[http] export/restore round trip with the kv provider (default)", async () => {
  const { chorus } = await openTest({ config: { compression: "off" } });
  try {
    await roundTrip(chorus, "kv");
    // A large snapshot is chunked, and a smaller one later replaces it cleanly.
    await chorus.contexts.set("big", { text: "y".repeat(150_000) });
    await chorus.contexts.export("big");
    await chorus.contexts.set("big", { text: "small" });
    assert.equal((await chorus.contexts.restore("big")).context.text, "y".repeat(150_000));
    await chorus.contexts.export("big");
    await chorus.contexts.set("big", { other: 1 });
    assert.deepEqual((await chorus.contexts.restore("big")).context, { text: "y".repeat(150_000) });
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] export/restore round trip with the http provider against a local server", async () => {
  const stored = new Map<string, string>();
  const requests: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    requests.push(`${req.method} ${path}`);
    if (req.method === "POST") {
      stored.set(path, await req.text());
      return new Response(null, { status: 204 });
    }
    const body = stored.get(path);
    return body === undefined ? new Response("no", { status: 404 }) : new Response(body);
  });
  const { chorus } = await openTest({
    config: { exportProvider: "http", exportUrl: `http://127.0.0.1:${server.addr.port}/archive/` },
  });
  try {
    await roundTrip(chorus, "http");
    assert.deepEqual(requests, [
      "POST /archive/doc",
      "GET /archive/doc",
      "GET /archive/never",
    ]);
    const saved = JSON.parse(stored.get("/archive/doc")!) as ContextSnapshot;
    assert.equal(saved.version, 2);
  } finally {
    await chorus.close();
    await server.shutdown();
  }
});

Deno.test("export/restore with functions an embedding program passes to Chorus.open", async () => {
  const saved = new Map<string, ContextSnapshot>();
  const chorus = await Chorus.open({
    path: ":memory:",
    exportProvider: {
      save: (id, snapshot) => Promise.resolve(void saved.set(id, snapshot)),
      load: (id) => Promise.resolve(saved.get(id) ?? null),
    },
  });
  try {
    await roundTrip(chorus, "custom");
    assert.equal(saved.get("doc")?.context.title, "v2");
  } finally {
    await chorus.close();
  }
});

Deno.test("export with no provider configured, or an unreachable one, is a clear 503", async () => {
  const { chorus } = await openTest({ config: { exportProvider: "http", exportUrl: undefined } });
  try {
    await chorus.contexts.set("doc", { a: 1 });
    const r = await call(chorus.app, "POST", "/api/v1/contexts/doc/export");
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, "unavailable");
    assert.match(r.body.error.message, /no export provider is configured/);
    assert.equal((await call(chorus.app, "POST", "/api/v1/contexts/doc/restore")).status, 503);
  } finally {
    await chorus.close();
  }
  const down = await openTest({
    config: { exportProvider: "http", exportUrl: "http://127.0.0.1:9/x" },
  });
  try {
    await down.chorus.contexts.set("doc", { a: 1 });
    await assert.rejects(down.chorus.contexts.export("doc"), { code: "unavailable" });
    assert.equal((await down.chorus.contexts.get("doc"))?.version, 1);
  } finally {
    await down.chorus.close();
  }
});

Deno.test("[http] context ids . and .. are refused with 400 and never reach the export server", async () => {
  const requests: string[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    requests.push(`${req.method} ${new URL(req.url).pathname}`);
    return new Response(null, { status: 204 });
  });
  const { chorus } = await openTest({
    config: { exportProvider: "http", exportUrl: `http://127.0.0.1:${server.addr.port}/archive/` },
  });
  try {
    for (const id of [".", ".."]) {
      await chorus.contexts.set(id, { a: 1 }).catch(() => {}); // where the actors still allow it
      for (
        const [method, path] of [
          ["POST", `/api/v1/contexts/${id}/export`],
          ["POST", `/api/v1/contexts/${id}/restore`],
          ["GET", `/api/v1/contexts/${id}`],
        ]
      ) {
        const res = await chorus.app.fetch(rawPathRequest(method, path));
        const body = await res.json();
        assert.equal(res.status, 400, `${method} ${path}: ${JSON.stringify(body)}`);
        assert.equal(body.error.code, "invalid_request");
      }
    }
    assert.deepEqual(requests, []);
  } finally {
    await chorus.close();
    await server.shutdown();
  }
});

Deno.test("the http export provider refuses the ids . and .. instead of calling a parent URL", async () => {
  const called: string[] = [];
  const provider = httpExportProvider("http://archive.example/base/", {
    fetch: (input) => {
      called.push(String(input));
      return Promise.resolve(new Response(null, { status: 204 }));
    },
  });
  const snapshot = { id: "..", version: 1, context: {}, exported_at: 0 };
  for (const id of [".", ".."]) {
    await assert.rejects(provider.save(id, { ...snapshot, id }), { code: "invalid_request" });
    await assert.rejects(provider.load(id), { code: "invalid_request" });
  }
  assert.deepEqual(called, []);
  await provider.save("a.b", { ...snapshot, id: "a.b" });
  await provider.save("../x", { ...snapshot, id: "../x" });
  assert.deepEqual(called, [
    "http://archive.example/base/a.b",
    "http://archive.example/base/..%2Fx",
  ]);
});
