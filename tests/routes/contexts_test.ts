import assert from "node:assert/strict";
import { call, openTest } from "../_helpers.ts";
import { decodeContextDelta, decodeContextDeltaList } from "../../proto/codec.ts";

const C = "/api/v1/contexts";
const MERGE = { "content-type": "application/merge-patch+json" };
const JSON_PATCH = { "content-type": "application/json-patch+json" };

Deno.test("[http] PUT, GET and PATCH /api/v1/contexts/:id version the context", async () => {
  const { chorus } = await openTest();
  try {
    const put = await call(chorus.app, "PUT", `${C}/room`, { context: { a: 1, b: { c: 2 } } });
    assert.equal(put.status, 200);
    assert.deepEqual(put.body, { id: "room", version: 1, context: { a: 1, b: { c: 2 } } });
    const merged = await call(chorus.app, "PATCH", `${C}/room`, { b: { c: null, d: 3 } }, MERGE);
    assert.equal(merged.status, 200);
    assert.deepEqual(merged.body, { id: "room", version: 2, context: { a: 1, b: { d: 3 } } });
    const patched = await call(chorus.app, "PATCH", `${C}/room`, [
      { op: "add", path: "/list", value: [1] },
      { op: "remove", path: "/a" },
    ], JSON_PATCH);
    assert.deepEqual(patched.body, { id: "room", version: 3, context: { b: { d: 3 }, list: [1] } });
    const got = await call(chorus.app, "GET", `${C}/room`);
    assert.deepEqual(got.body, patched.body);
    const strong = await call(chorus.app, "GET", `${C}/room?consistency=strong`);
    assert.equal(strong.body.version, 3);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] an update that changes nothing keeps the version", async () => {
  const { chorus } = await openTest();
  try {
    await call(chorus.app, "PUT", `${C}/same`, { context: { a: 1 } });
    const again = await call(chorus.app, "PUT", `${C}/same`, { context: { a: 1 } });
    assert.equal(again.body.version, 1);
    const noop = await call(chorus.app, "PATCH", `${C}/same`, { a: 1, gone: null }, MERGE);
    assert.equal(noop.body.version, 1);
    const deltas = await call(chorus.app, "GET", `${C}/same/deltas`);
    assert.deepEqual(deltas.body, { id: "same", version: 1, deltas: [] });
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] GET /contexts/:id/sync gives full_context, delta and no_change", async () => {
  const { chorus } = await openTest();
  try {
    await call(chorus.app, "PUT", `${C}/s`, { context: { n: 1, keep: "x" } });
    await call(chorus.app, "PATCH", `${C}/s`, { n: 2 }, MERGE);
    await call(chorus.app, "PATCH", `${C}/s`, { n: 3, added: true }, MERGE);
    const none = await call(chorus.app, "GET", `${C}/s/sync`);
    assert.deepEqual(none.body, {
      type: "full_context",
      version: 3,
      context: { n: 3, keep: "x", added: true },
    });
    const newer = await call(chorus.app, "GET", `${C}/s/sync?version=9`);
    assert.equal(newer.body.type, "full_context");
    const older = await call(chorus.app, "GET", `${C}/s/sync?version=0`);
    assert.equal(older.body.type, "full_context", "version 0 was never a context version");
    const current = await call(chorus.app, "GET", `${C}/s/sync?version=3`);
    assert.deepEqual(current.body, { type: "no_change", version: 3 });
    const chord = await call(chorus.app, "GET", `${C}/s/sync?version=1`);
    assert.deepEqual(chord.body, {
      type: "delta",
      from_version: 1,
      version: 3,
      delta: {
        n: { action: "modified", value: 3, old_value: 1 },
        added: { action: "added", value: true },
      },
    });
    const jp = await call(chorus.app, "GET", `${C}/s/sync?version=1&format=json-patch`);
    assert.equal(jp.body.type, "delta");
    assert.deepEqual(
      new Set(jp.body.delta.map((op: { path: string }) => op.path)),
      new Set(["/n", "/added"]),
    );
    const mp = await call(chorus.app, "GET", `${C}/s/sync?version=2&format=merge-patch`);
    assert.deepEqual(mp.body, {
      type: "delta",
      from_version: 2,
      version: 3,
      delta: { n: 3, added: true },
    });
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] sync and deltas honour Accept: application/x-protobuf with the JSON's values", async () => {
  const { chorus } = await openTest();
  const PROTO = { accept: "application/x-protobuf" };
  const both = async (path: string) => {
    const json = await call(chorus.app, "GET", path);
    const res = await chorus.app.request(path, { headers: PROTO });
    assert.equal(json.status, 200, path);
    assert.equal(res.status, 200, path);
    assert.equal(res.headers.get("content-type"), "application/x-protobuf", path);
    return { json: json.body, bytes: new Uint8Array(await res.arrayBuffer()) };
  };
  try {
    await call(chorus.app, "PUT", `${C}/p`, { context: { n: 1, keep: "x" } });
    await call(chorus.app, "PATCH", `${C}/p`, { n: 2, list: [1, null] }, MERGE);
    await call(chorus.app, "PATCH", `${C}/p`, { n: null, added: true }, MERGE);
    const paths = [
      `${C}/p/sync`,
      `${C}/p/sync?version=1`,
      `${C}/p/sync?version=1&format=json-patch`,
      `${C}/p/sync?version=2&format=merge-patch`,
      `${C}/p/sync?version=3`,
    ];
    const types = [];
    for (const path of paths) {
      const { json, bytes } = await both(path);
      assert.deepEqual(decodeContextDelta(bytes), json, path);
      types.push(json.type);
    }
    assert.deepEqual(types, ["full_context", "delta", "delta", "delta", "no_change"]);
    for (const path of [`${C}/p/deltas`, `${C}/p/deltas?since=2`, `${C}/p/deltas?since=3`]) {
      const { json, bytes } = await both(path);
      assert.deepEqual(decodeContextDeltaList(bytes), json, path);
    }
    assert.equal((await both(`${C}/p/deltas`)).json.deltas.length, 2);
    const missing = await chorus.app.request(`${C}/nope/deltas`, { headers: PROTO });
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error.code, "not_found");
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] sync falls back to full_context when merge patch cannot express a null", async () => {
  const { chorus } = await openTest();
  try {
    await call(chorus.app, "PUT", `${C}/nul`, { context: { a: 1 } });
    await call(chorus.app, "PUT", `${C}/nul`, { context: { a: null } });
    const mp = await call(chorus.app, "GET", `${C}/nul/sync?version=1&format=merge-patch`);
    assert.deepEqual(mp.body, { type: "full_context", version: 2, context: { a: null } });
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] sync older than the retained deltas gives full_context", async () => {
  const { chorus } = await openTest({ config: { deltaThreshold: 3 } });
  try {
    await call(chorus.app, "PUT", `${C}/t`, { context: { n: 0 } });
    for (let n = 1; n <= 6; n++) await call(chorus.app, "PUT", `${C}/t`, { context: { n } });
    const deltas = await call(chorus.app, "GET", `${C}/t/deltas`);
    assert.deepEqual(deltas.body.deltas.map((d: { version: number }) => d.version), [5, 6, 7]);
    assert.equal(
      (await call(chorus.app, "GET", `${C}/t/sync?version=3`)).body.type,
      "full_context",
    );
    const ok = await call(chorus.app, "GET", `${C}/t/sync?version=4`);
    assert.deepEqual(ok.body.delta, { n: { action: "modified", value: 6, old_value: 3 } });
    const since = await call(chorus.app, "GET", `${C}/t/deltas?since=6`);
    assert.deepEqual(since.body.deltas, [{
      from_version: 6,
      version: 7,
      delta: { n: { action: "modified", value: 6, old_value: 5 } },
      at: since.body.deltas[0].at,
    }]);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] bad input gets clear errors and leaves the context unchanged", async () => {
  const { chorus } = await openTest();
  try {
    await call(chorus.app, "PUT", `${C}/bad`, { context: { a: [1] } });
    for (const context of [[1], "x", null, 3]) {
      const r = await call(chorus.app, "PUT", `${C}/bad`, { context });
      assert.equal(r.status, 400, JSON.stringify(context));
      assert.equal(r.body.error.code, "invalid_request");
    }
    assert.equal((await call(chorus.app, "PUT", `${C}/bad`, {})).status, 400);
    const failing = await call(chorus.app, "PATCH", `${C}/bad`, [
      { op: "replace", path: "/a/0", value: 2 },
      { op: "remove", path: "/missing" },
    ], JSON_PATCH);
    assert.equal(failing.status, 409);
    assert.equal(failing.body.error.code, "conflict");
    assert.equal(failing.body.error.details.op_index, 1);
    const malformed = await call(chorus.app, "PATCH", `${C}/bad`, [{ op: "nope" }], JSON_PATCH);
    assert.equal(malformed.status, 400);
    const notObject = await call(chorus.app, "PATCH", `${C}/bad`, [1], MERGE);
    assert.equal(notObject.status, 400);
    const text = await call(chorus.app, "PATCH", `${C}/bad`, "a=1", {
      "content-type": "text/plain",
    });
    assert.equal(text.status, 415);
    assert.equal(text.body.error.code, "unsupported_media_type");
    for (const q of ["version=-1", "version=1.5", "version=abc"]) {
      const r = await call(chorus.app, "GET", `${C}/bad/sync?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(r.body.error.code, "invalid_request");
    }
    const format = await call(chorus.app, "GET", `${C}/bad/sync?version=1&format=xml`);
    assert.equal(format.status, 400);
    assert.match(format.body.error.message, /chord, json-patch, merge-patch/);
    assert.equal((await call(chorus.app, "GET", `${C}/bad/deltas?since=-2`)).status, 400);
    const got = await call(chorus.app, "GET", `${C}/bad`);
    assert.deepEqual(got.body, { id: "bad", version: 1, context: { a: [1] } });
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] absent contexts are 404 and DELETE keeps versions rising", async () => {
  const { chorus } = await openTest();
  try {
    for (
      const [method, path] of [["GET", ""], ["GET", "/sync"], ["GET", "/deltas"], ["DELETE", ""]]
    ) {
      const r = await call(chorus.app, method, `${C}/nope${path}`);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.equal(r.body.error.code, "not_found");
    }
    const patch = await call(chorus.app, "PATCH", `${C}/nope`, { a: 1 }, MERGE);
    assert.equal(patch.status, 404);
    await call(chorus.app, "PUT", `${C}/d`, { context: { a: 1 } });
    const del = await call(chorus.app, "DELETE", `${C}/d`);
    assert.deepEqual(del.body, { deleted: true, version: 2 });
    assert.equal((await call(chorus.app, "GET", `${C}/d`)).status, 404);
    const again = await call(chorus.app, "PUT", `${C}/d`, { context: { b: 1 } });
    assert.equal(again.body.version, 3);
    assert.equal(
      (await call(chorus.app, "GET", `${C}/d/sync?version=1`)).body.type,
      "full_context",
    );
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] contexts routes are in the OpenAPI document", async () => {
  const { chorus } = await openTest();
  try {
    const doc = await call(chorus.app, "GET", "/api/v1/openapi.json");
    for (
      const path of [
        "/api/v1/contexts/{id}",
        "/api/v1/contexts/{id}/sync",
        "/api/v1/contexts/{id}/deltas",
        "/api/v1/contexts/{id}/export",
        "/api/v1/contexts/{id}/restore",
        "/api/v1/admin/cleanup",
        "/api/v1/admin/cleanup/schedule",
      ]
    ) assert.ok(doc.body.paths[path], path);
  } finally {
    await chorus.close();
  }
});
