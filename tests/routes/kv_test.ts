import assert from "node:assert/strict";
import { call, openTest } from "../_helpers.ts";
import { decodeKvHead } from "../../storage/kv_head.ts";

const KV = "/api/v1/kv";

Deno.test("[http] PUT then GET /api/v1/kv/:key round-trips with ETag", async () => {
  const { chorus } = await openTest();
  try {
    const put = await call(chorus.app, "PUT", `${KV}/a`, { value: { n: 1, s: "x" } });
    assert.equal(put.status, 200);
    assert.deepEqual(put.body, { key: "a", version: 1 });
    assert.equal(put.headers.get("etag"), '"1"');
    const got = await call(chorus.app, "GET", `${KV}/a`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, { key: "a", value: { n: 1, s: "x" }, version: 1 });
    assert.equal(got.headers.get("etag"), '"1"');
    const again = await call(chorus.app, "PUT", `${KV}/a`, { value: [1, 2] });
    assert.equal(again.body.version, 2);
    const cond = await chorus.app.request(`${KV}/a`, { headers: { "if-none-match": '"2"' } });
    assert.equal(cond.status, 304);
    await cond.body?.cancel();
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] a read's answer carries its type, ETag and security header once, and the request id", async () => {
  const { chorus } = await openTest();
  try {
    await call(chorus.app, "PUT", `${KV}/h`, { value: 1 });
    const res = await chorus.app.request(`${KV}/h`, { headers: { "x-request-id": "read-1" } });
    assert.equal(res.status, 200);
    const names = [...res.headers.keys()].sort();
    assert.deepEqual(names, [
      "content-type",
      "etag",
      "x-content-type-options",
      "x-request-id",
    ]);
    assert.equal(res.headers.get("content-type"), "application/json");
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("x-request-id"), "read-1");
    assert.deepEqual(await res.json(), { key: "h", value: 1, version: 1 });
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] every JSON value type is stored as given", async () => {
  const { chorus } = await openTest();
  try {
    for (
      const [i, value] of [null, false, 0, -1.5, "", "ünïcödé ✓", [], {}, [{ a: [null] }]].entries()
    ) {
      assert.equal((await call(chorus.app, "PUT", `${KV}/v${i}`, { value })).status, 200);
      assert.deepEqual((await call(chorus.app, "GET", `${KV}/v${i}`)).body.value, value);
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] GET of an absent key is 404 in the SPEC error shape", async () => {
  const { chorus } = await openTest();
  try {
    const res = await call(chorus.app, "GET", `${KV}/missing`);
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, "not_found");
    assert.equal(typeof res.body.error.message, "string");
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] PUT with a stale If-Match returns 409 and changes nothing", async () => {
  const { chorus } = await openTest();
  try {
    await call(chorus.app, "PUT", `${KV}/k`, { value: "v1" });
    await call(chorus.app, "PUT", `${KV}/k`, { value: "v2" });
    const stale = await call(chorus.app, "PUT", `${KV}/k`, { value: "bad" }, { "if-match": '"1"' });
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error.code, "conflict");
    const fresh = await call(chorus.app, "PUT", `${KV}/k`, { value: "v3" }, { "if-match": '"2"' });
    assert.equal(fresh.status, 200);
    assert.equal(fresh.body.version, 3);
    assert.equal((await call(chorus.app, "GET", `${KV}/k`)).body.value, "v3");
    const absent = await call(chorus.app, "PUT", `${KV}/nope`, { value: 1 }, { "if-match": '"1"' });
    assert.equal(absent.status, 409);
    assert.equal((await call(chorus.app, "GET", `${KV}/nope`)).status, 404);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] If-None-Match: * with ttl is a lease whose version is a fencing token", async () => {
  const { chorus, clock } = await openTest();
  try {
    const lock = { "if-none-match": "*" };
    const first = await call(chorus.app, "PUT", `${KV}/lock`, { value: "A", ttl: 10 }, lock);
    assert.equal(first.status, 200);
    const second = await call(chorus.app, "PUT", `${KV}/lock`, { value: "B", ttl: 10 }, lock);
    assert.equal(second.status, 409);
    // The holder renews: the token stays the same.
    const renew = await call(chorus.app, "POST", `${KV}/lock/touch`, { ttl: 10 });
    assert.equal(renew.status, 200);
    assert.equal(renew.body.version, first.body.version);
    clock.advance(10_001);
    const third = await call(chorus.app, "PUT", `${KV}/lock`, { value: "C", ttl: 10 }, lock);
    assert.equal(third.status, 200);
    assert.ok(third.body.version > first.body.version, "fencing tokens keep rising");
    // The old holder's conditional write is refused.
    const old = await call(chorus.app, "PUT", `${KV}/lock`, { value: "A2" }, {
      "if-match": `"${first.body.version}"`,
    });
    assert.equal(old.status, 409);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] DELETE honours If-Match and answers 404 when absent", async () => {
  const { chorus } = await openTest();
  try {
    await call(chorus.app, "PUT", `${KV}/d`, { value: 1 });
    assert.equal(
      (await call(chorus.app, "DELETE", `${KV}/d`, undefined, { "if-match": '"9"' })).status,
      409,
    );
    const del = await call(chorus.app, "DELETE", `${KV}/d`, undefined, { "if-match": '"1"' });
    assert.equal(del.status, 200);
    assert.deepEqual(del.body, { deleted: true });
    assert.equal((await call(chorus.app, "GET", `${KV}/d`)).status, 404);
    assert.equal((await call(chorus.app, "DELETE", `${KV}/d`)).status, 404);
    // Versions continue after a delete.
    assert.equal((await call(chorus.app, "PUT", `${KV}/d`, { value: 2 })).body.version, 3);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] TTL: expired keys are never returned, before KV's own expiry", async () => {
  const { chorus, clock } = await openTest();
  try {
    const put = await call(chorus.app, "PUT", `${KV}/t`, { value: "x", ttl: 5 });
    assert.equal(put.body.expires_at, clock.now() + 5000);
    assert.deepEqual((await call(chorus.app, "GET", `${KV}/t/ttl`)).body, { ttl: 5 });
    const withTtl = await call(chorus.app, "GET", `${KV}/t?with_ttl=true`);
    assert.equal(withTtl.body.ttl, 5);
    clock.advance(3000);
    assert.deepEqual((await call(chorus.app, "GET", `${KV}/t/ttl`)).body, { ttl: 2 });
    await call(chorus.app, "POST", `${KV}/t/touch`, { ttl: 10 });
    clock.advance(9000);
    assert.equal((await call(chorus.app, "GET", `${KV}/t`)).status, 200);
    clock.advance(1001);
    for (const consistency of ["strong", "leader", "eventual"]) {
      const res = await call(chorus.app, "GET", `${KV}/t?consistency=${consistency}`);
      assert.equal(res.status, 404, consistency);
    }
    assert.equal((await call(chorus.app, "GET", `${KV}/t/ttl`)).status, 404);
    assert.equal((await call(chorus.app, "POST", `${KV}/t/touch`, { ttl: 1 })).status, 404);
    const list = await call(chorus.app, "GET", `${KV}?prefix=t`);
    assert.deepEqual(list.body.items, []);
    await call(chorus.app, "PUT", `${KV}/p`, { value: 1 });
    assert.deepEqual((await call(chorus.app, "GET", `${KV}/p/ttl`)).body, { ttl: null });
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] incr counts atomically, sets ttl on create, refuses non-integers", async () => {
  const { chorus, clock } = await openTest();
  try {
    assert.equal((await call(chorus.app, "POST", `${KV}/c/incr`, {})).body.value, 1);
    assert.equal((await call(chorus.app, "POST", `${KV}/c/incr`, { by: 5 })).body.value, 6);
    assert.equal((await call(chorus.app, "POST", `${KV}/c/incr`, { by: -2 })).body.value, 4);
    const noBody = await chorus.app.request(`${KV}/c/incr`, { method: "POST" });
    assert.equal((await noBody.json()).value, 5);
    const rl = await call(chorus.app, "POST", `${KV}/rl/incr`, { ttl: 1 });
    assert.equal(rl.body.value, 1);
    assert.equal((await call(chorus.app, "POST", `${KV}/rl/incr`, { ttl: 1 })).body.value, 2);
    clock.advance(1001);
    assert.equal((await call(chorus.app, "POST", `${KV}/rl/incr`, { ttl: 1 })).body.value, 1);
    await call(chorus.app, "PUT", `${KV}/s`, { value: "text" });
    const bad = await call(chorus.app, "POST", `${KV}/s/incr`, {});
    assert.equal(bad.status, 409);
    assert.equal((await call(chorus.app, "GET", `${KV}/s`)).body.value, "text");
    assert.equal((await call(chorus.app, "POST", `${KV}/c/incr`, { by: 1.5 })).status, 400);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] bulk put/get/touch/delete", async () => {
  const { chorus, clock } = await openTest();
  try {
    const items = Array.from({ length: 250 }, (_, i) => ({ key: `b${i}`, value: { i } }));
    const put = await call(chorus.app, "POST", `${KV}/bulk`, { items });
    assert.equal(put.status, 200);
    assert.equal(put.body.items.length, 250);
    assert.deepEqual(put.body.items[7], { key: "b7", version: 1 });
    const got = await call(chorus.app, "POST", `${KV}/bulk/get`, { keys: ["b1", "zz", "b249"] });
    assert.deepEqual(got.body.items.map((i: { found: boolean }) => i.found), [true, false, true]);
    assert.deepEqual(got.body.items[2].value, { i: 249 });
    const touch = await call(chorus.app, "POST", `${KV}/bulk/touch`, {
      items: [{ key: "b1", ttl: 1 }, { key: "zz", ttl: 1 }],
    });
    assert.equal(touch.body.touched, 1);
    clock.advance(1001);
    assert.equal((await call(chorus.app, "GET", `${KV}/b1`)).status, 404);
    const del = await call(chorus.app, "POST", `${KV}/bulk/delete`, { keys: ["b2", "b3", "zz"] });
    assert.deepEqual(del.body, { deleted: 2, keys: ["b2", "b3"] });
    assert.equal((await call(chorus.app, "GET", `${KV}/b2`)).status, 404);
    assert.equal((await call(chorus.app, "GET", `${KV}/b4`)).status, 200);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] bulk writes are all-or-nothing on bad input", async () => {
  const { chorus } = await openTest();
  try {
    const tooMany = Array.from({ length: 501 }, (_, i) => ({ key: `x${i}`, value: i }));
    const r1 = await call(chorus.app, "POST", `${KV}/bulk`, { items: tooMany });
    assert.equal(r1.status, 400);
    assert.equal(r1.body.error.code, "invalid_request");
    const badKey = [{ key: "ok1", value: 1 }, { key: "bad\u0001", value: 2 }];
    const r2 = await call(chorus.app, "POST", `${KV}/bulk`, { items: badKey });
    assert.equal(r2.status, 400);
    assert.equal(r2.body.error.code, "invalid_key");
    const badTtl = [{ key: "ok2", value: 1 }, { key: "ok3", value: 2, ttl: -5 }];
    assert.equal((await call(chorus.app, "POST", `${KV}/bulk`, { items: badTtl })).status, 400);
    const big = [{ key: "ok4", value: 1 }, {
      key: "big",
      value: "x".repeat(600 * 1024),
      compress: false,
    }];
    const r3 = await call(chorus.app, "POST", `${KV}/bulk`, { items: big }, {});
    assert.ok([413].includes(r3.status), `got ${r3.status}`);
    const list = await call(chorus.app, "GET", `${KV}?prefix=ok`);
    assert.deepEqual(list.body.items, []);
    const r4 = await call(chorus.app, "POST", `${KV}/bulk/delete`, { keys: [] });
    assert.equal(r4.status, 400);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] list with prefix, limit, cursor and values", async () => {
  const { chorus } = await openTest();
  try {
    for (let i = 0; i < 25; i++) {
      await call(
        chorus.app,
        "PUT",
        `${KV}/${encodeURIComponent(`user/${String(i).padStart(2, "0")}`)}`,
        {
          value: i,
        },
      );
    }
    await call(chorus.app, "PUT", `${KV}/other`, { value: "o" });
    await call(chorus.app, "DELETE", `${KV}/${encodeURIComponent("user/03")}`);
    const keys: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `${KV}?prefix=user/&limit=10${
        cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""
      }`;
      const page = await call(chorus.app, "GET", q);
      assert.equal(page.status, 200);
      assert.ok(page.body.items.length <= 10);
      keys.push(...page.body.items.map((i: { key: string }) => i.key));
      cursor = page.body.cursor;
      pages++;
    } while (cursor && pages < 10);
    assert.equal(keys.length, 24);
    // Page sizes whose cursors carry base64 padding and '+'/'/' page through too.
    for (const limit of [1, 2, 3, 7]) {
      const seen: string[] = [];
      let c: string | null = null;
      do {
        const url: string = `${KV}?prefix=user/&limit=${limit}${
          c ? `&cursor=${encodeURIComponent(c)}` : ""
        }`;
        const page = await call(chorus.app, "GET", url);
        assert.equal(page.status, 200, JSON.stringify(page.body));
        seen.push(...page.body.items.map((i: { key: string }) => i.key));
        c = page.body.cursor;
      } while (c);
      assert.deepEqual(seen, keys, `limit ${limit}`);
    }
    assert.ok(!keys.includes("user/03"));
    assert.deepEqual(keys, [...keys].sort());
    const withValues = await call(chorus.app, "GET", `${KV}?prefix=user/1&values=true`);
    assert.deepEqual(withValues.body.items[0], {
      key: "user/10",
      version: 1,
      ttl: null,
      value: 10,
    });
    const all = await call(chorus.app, "GET", `${KV}?limit=1000`);
    assert.equal(all.body.items.length, 25);
    assert.equal(all.body.cursor, null);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] bad input gets the SPEC error and leaves the store unchanged", async () => {
  const { chorus } = await openTest({ config: { maxBody: 16 * 1024 } });
  try {
    await call(chorus.app, "PUT", `${KV}/keep`, { value: "original" });
    const cases: [string, string, unknown, Record<string, string>, number, string][] = [
      ["PUT", `${KV}/keep`, "{not json", {}, 400, "invalid_request"],
      ["PUT", `${KV}/keep`, { value: "x".repeat(20_000) }, {}, 413, "payload_too_large"],
      ["PUT", `${KV}/keep`, { ttl: 5 }, {}, 400, "invalid_request"],
      ["PUT", `${KV}/keep`, { value: 1, ttl: -1 }, {}, 400, "invalid_request"],
      ["PUT", `${KV}/keep`, { value: 1, ttl: "10" }, {}, 400, "invalid_request"],
      [
        "PUT",
        `${KV}/keep`,
        "value=1",
        { "content-type": "text/plain" },
        415,
        "unsupported_media_type",
      ],
      ["PUT", `${KV}/keep`, { value: 1 }, { "if-match": "garbage" }, 400, "invalid_request"],
      ["PUT", `${KV}/${encodeURIComponent("a\u0007b")}`, { value: 1 }, {}, 400, "invalid_key"],
      ["PUT", `${KV}/${"k".repeat(1025)}`, { value: 1 }, {}, 400, "invalid_key"],
      ["GET", `${KV}/keep?consistency=sometimes`, undefined, {}, 400, "invalid_request"],
      ["GET", `${KV}?cursor=%%%`, undefined, {}, 400, "invalid_request"],
      ["GET", `${KV}?limit=5000`, undefined, {}, 400, "invalid_request"],
      ["POST", `${KV}/keep/touch`, { ttl: "soon" }, {}, 400, "invalid_request"],
      ["GET", "/api/v1/nowhere", undefined, {}, 404, "not_found"],
      [
        "PUT",
        `${KV}/keep`,
        `{"value":${"[".repeat(3000)}${"]".repeat(3000)}}`,
        {},
        400,
        "invalid_request",
      ],
      ["PUT", `${KV}/keep`, '{"value":{"n":1e400}}', {}, 400, "invalid_request"],
      [
        "PUT",
        "/api/v1/contexts/deep",
        `{"context":{"a":${"[".repeat(3000)}${"]".repeat(3000)}}}`,
        {},
        400,
        "invalid_request",
      ],
    ];
    for (const [method, path, body, headers, status, code] of cases) {
      const res = await call(chorus.app, method, path, body, headers);
      assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)?.slice(0, 40)}`);
      assert.equal(res.body?.error?.code, code, `${method} ${path}`);
      assert.equal(typeof res.body.error.message, "string");
      assert.ok(!/at .*\.ts:\d+/.test(JSON.stringify(res.body)), "no stack traces");
    }
    const still = await call(chorus.app, "GET", `${KV}/keep`);
    assert.deepEqual(still.body, { key: "keep", value: "original", version: 1 });
    const maxKey = "k".repeat(1024);
    assert.equal((await call(chorus.app, "PUT", `${KV}/${maxKey}`, { value: 1 })).status, 200);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] compression round trip per config and per request", async () => {
  const { chorus } = await openTest();
  try {
    const big = {
      text: "hello world ".repeat(2000),
      list: Array.from({ length: 100 }, (_, i) => i),
    };
    assert.equal((await call(chorus.app, "PUT", `${KV}/z1`, { value: big })).status, 200);
    assert.equal(
      (await call(chorus.app, "PUT", `${KV}/z2`, { value: big, compress: false })).status,
      200,
    );
    assert.equal(
      (await call(chorus.app, "PUT", `${KV}/z3`, { value: "tiny", compress: true })).status,
      200,
    );
    const head = async (k: string) => decodeKvHead((await chorus.store.get(["kv", k])).value).enc;
    assert.equal(await head("z1"), "gzip");
    assert.equal(await head("z2"), "json");
    assert.equal(await head("z3"), "gzip");
    for (const k of ["z1", "z2", "z3"]) {
      await chorus.registry.close(); // force a reload from KV
      const res = await call(chorus.app, "GET", `${KV}/${k}?consistency=eventual`);
      assert.deepEqual(res.body.value, k === "z3" ? "tiny" : big);
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] compression can be turned off or switched to deflate", async () => {
  for (const compression of ["off", "deflate"] as const) {
    const { chorus } = await openTest({ config: { compression } });
    try {
      await call(chorus.app, "PUT", `${KV}/z`, { value: "abc".repeat(1000) });
      const enc = decodeKvHead((await chorus.store.get(["kv", "z"])).value).enc;
      assert.equal(enc, compression === "off" ? "json" : "deflate");
      assert.equal((await call(chorus.app, "GET", `${KV}/z`)).body.value, "abc".repeat(1000));
    } finally {
      await chorus.close();
    }
  }
});

Deno.test("[http] a 300 KiB value round-trips through chunks; 600 KiB is 413", async () => {
  const { chorus } = await openTest({ config: { maxBody: 2 * 1024 * 1024, compression: "off" } });
  try {
    const value = Array.from({ length: 300 }, (_, i) => `${i}:${"x".repeat(1014)}`);
    const put = await call(chorus.app, "PUT", `${KV}/large`, { value });
    assert.equal(put.status, 200);
    const rec = decodeKvHead((await chorus.store.get(["kv", "large"])).value);
    assert.ok(rec.n! >= 5, "stored in chunks");
    await chorus.registry.close();
    assert.deepEqual((await call(chorus.app, "GET", `${KV}/large`)).body.value, value);
    // Overwrite with a small value: old chunks are removed in the same commit.
    await call(chorus.app, "PUT", `${KV}/large`, { value: "small" });
    let chunks = 0;
    for await (const _ of chorus.store.kv.list({ prefix: ["kv_chunk", "large"] })) chunks++;
    assert.equal(chunks, 0);
    const tooBig = await call(chorus.app, "PUT", `${KV}/huge`, { value: "y".repeat(600 * 1024) });
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.body.error.code, "payload_too_large");
    assert.equal((await call(chorus.app, "GET", `${KV}/huge`)).status, 404);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] watch streams one change event per write, delete and expiry", async () => {
  const { chorus, clock } = await openTest();
  try {
    const res = await chorus.app.request(`${KV}/w/watch`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    const events: { event: string; data: { op: string; version: number; value?: unknown } }[] = [];
    let buffer = "";
    const next = async () => {
      while (!buffer.includes("\n\n")) buffer += (await reader.read()).value ?? "";
      const block = buffer.slice(0, buffer.indexOf("\n\n"));
      buffer = buffer.slice(buffer.indexOf("\n\n") + 2);
      const event = /event: (.*)/.exec(block)?.[1] ?? "";
      const data = JSON.parse(/data: (.*)/.exec(block)?.[1] ?? "null");
      return { event, data };
    };
    assert.equal((await next()).event, "ready");
    await call(chorus.app, "PUT", `${KV}/w`, { value: "one", ttl: 5 });
    await call(chorus.app, "POST", `${KV}/w/incr`, {}).catch(() => {});
    await call(chorus.app, "PUT", `${KV}/w`, { value: 2, ttl: 5 });
    await call(chorus.app, "DELETE", `${KV}/w`);
    await call(chorus.app, "PUT", `${KV}/w`, { value: 3, ttl: 5 });
    for (let i = 0; i < 4; i++) events.push(await next());
    clock.advance(5001);
    events.push(await next());
    assert.deepEqual(
      events.map((e) => [e.event, e.data.op, e.data.version]),
      [
        ["change", "set", 1],
        ["change", "set", 2],
        ["change", "delete", 3],
        ["change", "set", 4],
        ["change", "expire", 5],
      ],
    );
    assert.equal(events[0].data.value, "one");
    await reader.cancel();
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] OpenAPI 3.1 document and Swagger UI", async () => {
  const { chorus } = await openTest();
  try {
    const doc = await call(chorus.app, "GET", "/api/v1/openapi.json");
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, "3.1.0");
    for (
      const path of ["/api/v1/kv/{key}", "/api/v1/kv/bulk", "/api/v1/kv", "/api/v1/kv/{key}/watch"]
    ) {
      assert.ok(doc.body.paths[path], path);
    }
    const get = doc.body.paths["/api/v1/kv/{key}"].get;
    assert.deepEqual(
      get.parameters.map((p: { name: string }) => p.name).sort(),
      ["consistency", "key", "with_ttl"],
    );
    const ui = await chorus.app.request("/api/docs");
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /swagger/i);
    assert.equal((await call(chorus.app, "GET", "/health")).status, 200);
    assert.equal((await call(chorus.app, "GET", "/ready")).status, 200);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] a write that KV does not answer in time gets 504 timeout", async () => {
  const { chorus, clock } = await openTest({ config: { requestTimeoutMs: 50 } });
  const store = chorus.store as unknown as { commit: (...a: unknown[]) => Promise<unknown> };
  const commit = store.commit.bind(chorus.store);
  // KV stalls until released, then reports a conflict; the retry goes through.
  let release = () => {};
  let stalled = () => {};
  const reached = new Promise<void>((resolve) => stalled = resolve);
  store.commit = () => {
    store.commit = commit;
    stalled();
    return new Promise((resolve) => release = () => resolve({ ok: false }));
  };
  try {
    const pending = call(chorus.app, "PUT", `${KV}/slow`, { value: 1 });
    await reached;
    clock.advance(49);
    await new Promise((resolve) => setTimeout(resolve, 0));
    clock.advance(10); // past the 50 ms deadline (and its bucket)
    const res = await pending;
    assert.equal(res.status, 504);
    assert.equal(res.body.error.code, "timeout");
    release();
    const after = await call(chorus.app, "GET", `${KV}/slow`);
    assert.equal(after.status, 200, "the write itself still landed");
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] a JSON body with invalid UTF-8 is 400 invalid_request, not stored as U+FFFD", async () => {
  const { chorus } = await openTest();
  try {
    const json = (text: string, bad: number[]) => {
      const [before, after] = text.split("@");
      const enc = new TextEncoder();
      return new Uint8Array([...enc.encode(before), ...bad, ...enc.encode(after)]);
    };
    for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80]]) {
      const requests: [string, string, Uint8Array, string][] = [
        ["PUT", `${KV}/u`, json('{"value":"a@b"}', bad), "application/json"],
        [
          "POST",
          `${KV}/bulk`,
          json('{"items":[{"key":"u","value":"@"}]}', bad),
          "application/json",
        ],
        ["PUT", "/api/v1/contexts/u", json('{"context":{"t":"@"}}', bad), "application/json"],
        ["PATCH", "/api/v1/contexts/u", json('{"t":"@"}', bad), "application/merge-patch+json"],
        [
          "POST",
          "/api/v1/reels/u/interactions",
          json('{"type":"comment","user_id":"u1","text":"@"}', bad),
          "application/json",
        ],
        [
          "POST",
          "/api/v1/users/u1/presence",
          json('{"status":"online","activity":"@"}', bad),
          "application/json",
        ],
      ];
      for (const [method, path, body, type] of requests) {
        const res = await chorus.app.request(path, {
          method,
          body: body as BodyInit,
          headers: { "content-type": type },
        });
        const answer = await res.json();
        assert.equal(res.status, 400, `${method} ${path} ${bad}: ${JSON.stringify(answer)}`);
        assert.deepEqual(answer.error, {
          code: "invalid_request",
          message: "Cannot parse the request body: invalid UTF-8",
        });
      }
    }
    assert.equal((await call(chorus.app, "GET", `${KV}/u`)).status, 404);
    assert.equal((await call(chorus.app, "GET", "/api/v1/contexts/u")).status, 404);
    // Valid UTF-8 (with a BOM, as before) is still accepted.
    const put = await chorus.app.request(`${KV}/u`, {
      method: "PUT",
      body: new Uint8Array([
        0xef,
        0xbb,
        0xbf,
        ...new TextEncoder().encode('{"value":"é😀"}'),
      ]) as BodyInit,
      headers: { "content-type": "application/json" },
    });
    assert.equal(put.status, 200, await put.text());
    assert.equal((await call(chorus.app, "GET", `${KV}/u`)).body.value, "é😀");
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] a read's body is the JSON of key, value and version, for every kind of value and after each write", async () => {
  const { chorus, clock } = await openTest();
  try {
    const values: unknown[] = [
      { user: "u-42", cart: [1, 2, 3], total: 99.5 },
      { nested: { deep: [{ a: null }, "é😀", 'quote " and \\ backslash'] }, "key with space": 1 },
      ["a", 1, true, null, { b: [] }],
      "plain \u2028 text",
      0,
      -1.5e-7,
      false,
      null,
    ];
    for (const [i, value] of values.entries()) {
      const key = `body-${i} é`;
      for (let version = 1; version <= 2; version++) {
        const written = version === 1 ? value : { replaced: value };
        const put = await call(chorus.app, "PUT", `${KV}/${encodeURIComponent(key)}`, {
          value: written,
          ttl: 60,
        });
        assert.equal(put.body.version, version);
        for (const query of ["", "?with_ttl=true", "?consistency=eventual"]) {
          const res = await chorus.app.request(`${KV}/${encodeURIComponent(key)}${query}`);
          const expected: Record<string, unknown> = { key, value: written, version };
          if (query === "?with_ttl=true") expected.ttl = 60;
          assert.equal(await res.text(), JSON.stringify(expected), `${key} ${query}`);
        }
      }
    }
    clock.advance(30_000);
    const res = await chorus.app.request(`${KV}/${encodeURIComponent("body-0 é")}?with_ttl=true`);
    assert.equal((await res.json()).ttl, 30);
  } finally {
    await chorus.close();
  }
});
