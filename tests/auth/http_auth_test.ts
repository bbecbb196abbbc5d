import assert from "node:assert/strict";
import { call, openTest } from "../_helpers.ts";

const ADMIN = "sk_chorus_test-admin-secret-0123456789";

async function withAuth(config: Record<string, unknown> = {}) {
  const opened = await openTest({ config: { auth: true, adminToken: ADMIN, ...config } });
  const admin = { authorization: `Bearer ${ADMIN}` };
  const mint = async (body: Record<string, unknown>) => {
    const res = await call(opened.chorus.app, "POST", "/api/v1/tokens", body, admin);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body as { token: string; id: string };
  };
  return { ...opened, admin, mint };
}

Deno.test("[auth] no token, malformed header, wrong token: 401; open routes stay open", async () => {
  const { chorus } = await withAuth();
  try {
    const none = await call(chorus.app, "GET", "/api/v1/kv/a");
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, "unauthorized");
    assert.match(none.headers.get("www-authenticate") ?? "", /Bearer/);
    for (const header of ["Basic abc", "Bearer", "Bearer a b", "sk_chorus_x"]) {
      const res = await call(chorus.app, "GET", "/api/v1/kv/a", undefined, {
        authorization: header,
      });
      assert.equal(res.status, 401, header);
    }
    const wrong = await call(chorus.app, "GET", "/api/v1/kv/a", undefined, {
      authorization: "Bearer sk_chorus_not-a-real-token",
    });
    assert.equal(wrong.status, 401);
    for (const open of ["/health", "/ready", "/metrics", "/api/v1/openapi.json"]) {
      assert.equal((await chorus.app.request(open)).status, 200, open);
    }
    assert.equal((await call(chorus.app, "PUT", "/api/v1/kv/a", { value: 1 })).status, 401);
  } finally {
    await chorus.close();
  }
});

Deno.test("[auth] scopes: read-only tokens cannot write; admin routes need admin", async () => {
  const { chorus, admin, mint } = await withAuth();
  try {
    await call(chorus.app, "PUT", "/api/v1/kv/k", { value: 1 }, admin);
    const { token } = await mint({ scopes: ["kv:read"] });
    const auth = { authorization: `Bearer ${token}` };
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/k", undefined, auth)).status, 200);
    const put = await call(chorus.app, "PUT", "/api/v1/kv/k", { value: 2 }, auth);
    assert.equal(put.status, 403);
    assert.equal(put.body.error.code, "forbidden");
    const bulkGet = await call(chorus.app, "POST", "/api/v1/kv/bulk/get", { keys: ["k"] }, auth);
    assert.equal(bulkGet.status, 200, "bulk get is a read");
    assert.equal(
      (await call(chorus.app, "POST", "/api/v1/kv/bulk", {
        items: [{ key: "k", value: 3 }],
      }, auth)).status,
      403,
    );
    assert.equal(
      (await call(chorus.app, "GET", "/api/v1/contexts/c", undefined, auth)).status,
      403,
    );
    assert.equal((await call(chorus.app, "GET", "/api/v1/tokens", undefined, auth)).status, 403);
    assert.equal(
      (await call(chorus.app, "GET", "/api/v1/admin/cleanup/schedule", undefined, auth)).status,
      403,
    );
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/k", undefined, admin)).body.value, 1);
  } finally {
    await chorus.close();
  }
});

Deno.test("[auth] a token with a prefix cannot escape it", async () => {
  const { chorus, admin, mint } = await withAuth();
  try {
    await call(chorus.app, "PUT", `/api/v1/kv/${encodeURIComponent("tenant2/secret")}`, {
      value: "s",
    }, admin);
    await call(
      chorus.app,
      "PUT",
      `/api/v1/kv/${encodeURIComponent("tenant1/a")}`,
      { value: "a" },
      admin,
    );
    const { token } = await mint({ scopes: ["kv:read", "kv:write"], prefix: "tenant1/" });
    const auth = { authorization: `Bearer ${token}` };
    const ok = await call(
      chorus.app,
      "GET",
      `/api/v1/kv/${encodeURIComponent("tenant1/a")}`,
      undefined,
      auth,
    );
    assert.equal(ok.status, 200);
    const escapes = [
      `/api/v1/kv/${encodeURIComponent("tenant2/secret")}`,
      "/api/v1/kv/tenant2%2Fsecret",
      "/api/v1/kv/tenant1%2F..%2Ftenant2%2Fsecret", // a key literally named so: allowed, but distinct
      "/api/v1/kv/tenant1/../tenant2/secret",
      "/api/v1/kv/..%2Ftenant2%2Fsecret",
    ];
    for (const path of escapes) {
      const res = await call(chorus.app, "GET", path, undefined, auth);
      if (path.includes("tenant1%2F..")) {
        assert.equal(res.status, 404, "the literal key does not resolve to tenant2's");
      } else {
        assert.ok([403, 404].includes(res.status), `${path}: ${res.status}`);
        assert.notEqual(res.body?.value, "s");
      }
    }
    const mixed = await call(chorus.app, "POST", "/api/v1/kv/bulk", {
      items: [{ key: "tenant1/b", value: 1 }, { key: "tenant2/b", value: 2 }],
    }, auth);
    assert.equal(mixed.status, 403);
    assert.equal(
      (await call(
        chorus.app,
        "GET",
        `/api/v1/kv/${encodeURIComponent("tenant1/b")}`,
        undefined,
        admin,
      )).status,
      404,
      "nothing written",
    );
    const bulkGet = await call(chorus.app, "POST", "/api/v1/kv/bulk/get", {
      keys: ["tenant1/a", "tenant2/secret"],
    }, auth);
    assert.equal(bulkGet.status, 403);
    assert.equal(
      (await call(chorus.app, "POST", "/api/v1/kv/bulk/delete", { keys: ["tenant2/secret"] }, auth))
        .status,
      403,
    );
    const listAll = await call(chorus.app, "GET", "/api/v1/kv", undefined, auth);
    assert.equal(listAll.status, 200);
    assert.deepEqual(
      listAll.body.items.map((i: { key: string }) => i.key),
      ["tenant1/a"],
      "narrowed to the prefix",
    );
    const listOther = await call(chorus.app, "GET", "/api/v1/kv?prefix=tenant2/", undefined, auth);
    assert.equal(listOther.status, 403);
    const contexts = await mint({ scopes: ["contexts:write", "contexts:read"], prefix: "t1-" });
    const cauth = { authorization: `Bearer ${contexts.token}` };
    assert.equal(
      (await call(chorus.app, "PUT", "/api/v1/contexts/t1-doc", { context: { a: 1 } }, cauth))
        .status,
      200,
    );
    assert.equal(
      (await call(chorus.app, "PUT", "/api/v1/contexts/t2-doc", { context: { a: 1 } }, cauth))
        .status,
      403,
    );
  } finally {
    await chorus.close();
  }
});

Deno.test("[auth] expired and revoked tokens stop working; secrets never leak", async () => {
  const { chorus, clock, admin, mint } = await withAuth();
  try {
    const short = await mint({ scopes: ["kv:read"], ttl: 5 });
    const auth = { authorization: `Bearer ${short.token}` };
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/x", undefined, auth)).status, 404);
    clock.advance(5001);
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/x", undefined, auth)).status, 401);
    const dated = await mint({ scopes: ["kv:read"], expires_at: clock.now() + 3000 });
    const dauth = { authorization: `Bearer ${dated.token}` };
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/x", undefined, dauth)).status, 404);
    clock.advance(3001);
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/x", undefined, dauth)).status, 401);
    const past = await call(chorus.app, "POST", "/api/v1/tokens", {
      scopes: ["kv:read"],
      expires_at: clock.now() - 1,
    }, admin);
    assert.equal(past.status, 400);
    const long = await mint({ scopes: ["kv:read"], name: "reader" });
    const lauth = { authorization: `Bearer ${long.token}` };
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/x", undefined, lauth)).status, 404);
    const list = await call(chorus.app, "GET", "/api/v1/tokens", undefined, admin);
    assert.equal(list.status, 200);
    const text = JSON.stringify(list.body);
    assert.ok(text.includes(long.id) && !text.includes(long.token) && !text.includes("hash"));
    const revoked = await call(chorus.app, "DELETE", `/api/v1/tokens/${long.id}`, undefined, admin);
    assert.deepEqual(revoked.body, { deleted: true, id: long.id });
    clock.advance(2001); // the verification cache
    const after = await call(chorus.app, "GET", "/api/v1/kv/x", undefined, lauth);
    assert.equal(after.status, 401);
    assert.ok(!JSON.stringify(after.body).includes(long.token));
    assert.equal(
      (await call(chorus.app, "DELETE", `/api/v1/tokens/${long.id}`, undefined, admin)).status,
      404,
    );
    const bad = await call(chorus.app, "POST", "/api/v1/tokens", { scopes: ["root"] }, admin);
    assert.equal(bad.status, 400);
  } finally {
    await chorus.close();
  }
});

Deno.test("[auth] the metrics token guards /metrics when set", async () => {
  const { chorus } = await withAuth({ metricsToken: "m-secret" });
  try {
    assert.equal((await chorus.app.request("/metrics")).status, 401);
    const res = await chorus.app.request("/metrics", {
      headers: { authorization: "Bearer m-secret" },
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.match(text, /chorus_http_request_duration_seconds/);
    assert.match(text, /chorus_kv_commits_total/);
    for (
      const name of [
        "chorus_actors_live",
        "chorus_mailbox_depth",
        "chorus_sockets",
        "chorus_messages_dropped_total",
        "chorus_kv_conflicts_total",
        "chorus_kv_commit_duration_seconds_bucket",
        "chorus_cleanup_contexts_removed_total",
      ]
    ) assert.match(text, new RegExp(name), name);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] CORS preflight: allowed origin answered, refused origin gets no grant", async () => {
  const { chorus } = await openTest({ config: { corsOrigins: ["https://app.example.com"] } });
  try {
    const allowed = await chorus.app.request("/api/v1/kv/a", {
      method: "OPTIONS",
      headers: {
        origin: "https://app.example.com",
        "access-control-request-method": "PUT",
        "access-control-request-headers": "content-type,authorization",
      },
    });
    assert.equal(allowed.status, 204);
    assert.equal(allowed.headers.get("access-control-allow-origin"), "https://app.example.com");
    assert.match(allowed.headers.get("access-control-allow-methods") ?? "", /PUT/);
    assert.equal(allowed.headers.get("access-control-allow-credentials"), null);
    const refused = await chorus.app.request("/api/v1/kv/a", {
      method: "OPTIONS",
      headers: { origin: "https://evil.example.com", "access-control-request-method": "PUT" },
    });
    assert.equal(refused.headers.get("access-control-allow-origin"), null);
    const missing = await chorus.app.request("/api/v1/kv/a", {
      headers: { origin: "https://app.example.com" },
    });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get("access-control-allow-origin"), "https://app.example.com");
    assert.equal(missing.headers.get("x-content-type-options"), "nosniff");
    await missing.body?.cancel();
    // The kv read and write answers are made whole by their routes: the grant is still added.
    const put = await chorus.app.request("/api/v1/kv/a", {
      method: "PUT",
      headers: { origin: "https://app.example.com", "content-type": "application/json" },
      body: JSON.stringify({ value: 1 }),
    });
    assert.equal(put.headers.get("access-control-allow-origin"), "https://app.example.com");
    assert.equal(put.headers.get("etag"), '"1"');
    await put.body?.cancel();
    const get = await chorus.app.request("/api/v1/kv/a", {
      headers: { origin: "https://app.example.com" },
    });
    assert.equal(get.status, 200);
    assert.equal(get.headers.get("access-control-allow-origin"), "https://app.example.com");
    assert.match(get.headers.get("access-control-expose-headers") ?? "", /ETag/);
    assert.equal(get.headers.get("x-content-type-options"), "nosniff");
    const docs = await chorus.app.request("/api/docs");
    assert.equal(docs.headers.get("x-frame-options"), "DENY");
    assert.equal(docs.headers.get("x-content-type-options"), "nosniff");
    await docs.body?.cancel();
    await get.body?.cancel();
    const echoed = await chorus.app.request("/health", { headers: { "x-request-id": "req-123" } });
    assert.equal(echoed.headers.get("x-request-id"), "req-123");
    await echoed.body?.cancel();
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] rate limit: a burst over the limit gets 429 with Retry-After", async () => {
  const { chorus, clock, mint } = await withAuth({ rateLimit: 5, rateBurst: 5 });
  try {
    const { token } = await mint({ scopes: ["kv:read"] });
    const auth = { authorization: `Bearer ${token}` };
    const statuses: number[] = [];
    let last;
    for (let i = 0; i < 8; i++) {
      last = await call(chorus.app, "GET", "/api/v1/kv/x", undefined, auth);
      statuses.push(last.status);
    }
    assert.equal(statuses.filter((s) => s === 404).length, 5, `got ${statuses}`);
    assert.equal(last!.status, 429);
    assert.equal(last!.body.error.code, "rate_limited");
    assert.ok(Number(last!.headers.get("retry-after")) >= 1);
    assert.equal(last!.headers.get("ratelimit-remaining"), "0");
    clock.advance(1000);
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/x", undefined, auth)).status, 404);
  } finally {
    await chorus.close();
  }
});

Deno.test("[auth] every route with a key or id checks a prefixed token's prefix (POST /kv/bulk/incr too)", async () => {
  const { chorus, mint } = await withAuth();
  try {
    const { token } = await mint({
      scopes: [
        "kv:read",
        "kv:write",
        "contexts:read",
        "contexts:write",
        "reels:read",
        "reels:write",
      ],
      prefix: "tenant1/",
    });
    const auth = { authorization: `Bearer ${token}` };
    const incr = await call(chorus.app, "POST", "/api/v1/kv/bulk/incr", { by: 1000 }, auth);
    assert.equal(incr.status, 403, "the key `bulk` lies outside tenant1/");
    const doc = (await call(chorus.app, "GET", "/api/v1/openapi.json")).body;
    let checked = 0;
    for (const [path, item] of Object.entries(doc.paths as Record<string, object>)) {
      if (!/\{(key|id)\}/.test(path) || path.startsWith("/api/v1/tokens")) continue;
      for (const method of Object.keys(item).map((m) => m.toUpperCase())) {
        const body = method === "GET" || method === "HEAD" ? undefined : {};
        const outside = path.replace(/\{(key|id)\}/, "tenant2%2Fx");
        const res = await call(chorus.app, method, outside, body, auth);
        assert.equal(res.status, 403, `${method} ${outside}: ${res.status}`);
        checked++;
        if (path.endsWith("/watch")) continue; // an SSE stream: allowed inside, it never ends
        const inside = path.replace(/\{(key|id)\}/, "tenant1%2Fx");
        const ok = await call(chorus.app, method, inside, body, auth);
        assert.notEqual(ok.status, 403, `${method} ${inside}`);
      }
    }
    assert.ok(checked >= 20, `only ${checked} operations checked`);
  } finally {
    await chorus.close();
  }
});
