import assert from "node:assert/strict";
import { call, openTest, tempKvPath } from "../_helpers.ts";
import { ManualClock } from "../../clock.ts";
import { rawSocket, serve, upgradeStatus } from "../realtime/_socket_helpers.ts";

const ADMIN = "sk_chorus_rate-admin-secret-0123456789";
/** Failed authentications an address may make before it is refused (auth/rate_limit.ts). */
const AUTH_FAILURE_BURST = 10;

/** An instance with auth on served on 127.0.0.1, on a manual clock. */
async function served(config: Record<string, unknown> = {}) {
  const clock = new ManualClock();
  const s = await serve({ clock, config: { auth: true, adminToken: ADMIN, ...config } });
  const http = (path: string, token?: string) =>
    fetch(`http://127.0.0.1:${s.port}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    }).then(async (res) => {
      await res.body?.cancel();
      return res;
    });
  return { ...s, clock, http };
}

Deno.test("[ws] socket joins and pushes take from the token's HTTP budget; over it a push gets rate_limited", async () => {
  const s = await served({ rateLimit: 5, rateBurst: 5 });
  const { token } = await s.chorus.tokens.create({ scopes: ["kv:read", "kv:write"] });
  const socket = await rawSocket(s.url, { token });
  try {
    // Two HTTP requests and the join: 3 of the 5.
    assert.equal((await s.http("/api/v1/kv/x", token)).status, 404);
    assert.equal((await s.http("/api/v1/kv/x", token)).status, 404);
    assert.equal((await socket.push("kv:a", "phx_join", {}, "1")).status, "ok");
    const replies = [];
    for (let i = 0; i < 200; i++) {
      replies.push(await socket.push("kv:a", "put", { value: i }, "1"));
    }
    assert.equal(replies.filter((r) => r.status === "ok").length, 2, "the rest of the burst");
    const refused = replies.filter((r) => r.status === "error");
    assert.equal(refused.length, 198);
    assert.deepEqual(refused[0].response, { reason: "rate_limited", retry_after: 1 });
    // The socket spent the budget: HTTP with the same token is limited too.
    const http = await s.http("/api/v1/kv/x", token);
    assert.equal(http.status, 429);
    assert.equal(http.headers.get("retry-after"), "1");
    // Heartbeats and leaves are not counted (and still answered).
    assert.equal((await socket.push("phoenix", "heartbeat")).status, "ok");
    assert.equal((await socket.push("kv:b", "phx_leave")).status, "ok");
    // A join is counted.
    assert.deepEqual(await socket.push("kv:b", "phx_join", {}, "2"), {
      status: "error",
      response: { reason: "rate_limited", retry_after: 1 },
    });
    // The bucket refills with the (manual) clock.
    s.clock.advance(1000);
    assert.equal((await socket.push("kv:a", "put", { value: "later" }, "1")).status, "ok");
    assert.equal((await s.http("/api/v1/kv/a", token)).status, 200);
  } finally {
    await socket.close();
    await s.close();
  }
});

Deno.test("[ws] with auth off, socket pushes are limited per client address like HTTP", async () => {
  const clock = new ManualClock();
  const s = await serve({ clock, config: { auth: false, rateLimit: 3, rateBurst: 3 } });
  const socket = await rawSocket(s.url, { user_id: "u1" });
  try {
    assert.equal((await socket.push("kv:a", "phx_join", {}, "1")).status, "ok");
    const replies = [];
    for (let i = 0; i < 5; i++) replies.push(await socket.push("kv:a", "put", { value: i }, "1"));
    assert.deepEqual(replies.map((r) => r.status), ["ok", "ok", "error", "error", "error"]);
    assert.equal(replies[2].response.reason, "rate_limited");
    // HTTP from the same address shares the budget.
    const res = await fetch(`http://127.0.0.1:${s.port}/api/v1/kv/a`);
    await res.body?.cancel();
    assert.equal(res.status, 429);
  } finally {
    await socket.close();
    await s.close();
  }
});

Deno.test("[http] failed authentication is limited per client address: after the burst of 401s, 429 before the token is checked", async () => {
  // No CHORUS_RATE_LIMIT: the brute-force guard needs no opt-in.
  const { chorus, clock } = await openTest({ config: { auth: true, adminToken: ADMIN } });
  const admin = { authorization: `Bearer ${ADMIN}` };
  const bad = { authorization: "Bearer sk_chorus_guess" };
  try {
    for (let i = 0; i < AUTH_FAILURE_BURST; i++) {
      const res = await call(chorus.app, "GET", "/api/v1/kv/x", undefined, i % 2 ? bad : {});
      assert.equal(res.status, 401, `attempt ${i + 1}`);
    }
    // Even the right token is refused now: the address is limited before any token is checked.
    const limited = await call(chorus.app, "GET", "/api/v1/kv/x", undefined, admin);
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error.code, "rate_limited");
    assert.equal(limited.headers.get("retry-after"), "1");
    assert.equal(limited.body.error.details.retry_after, 1);
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/x", undefined, bad)).status, 429);
    // Open routes stay open.
    assert.equal((await chorus.app.request("/api/v1/openapi.json")).status, 200);
    // One attempt per second comes back.
    clock.advance(1000);
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/x", undefined, bad)).status, 401);
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/x", undefined, admin)).status, 429);
    clock.advance(1000);
    assert.equal((await call(chorus.app, "GET", "/api/v1/kv/x", undefined, admin)).status, 404);
    // Successful requests do not use up failures.
    for (let i = 0; i < 20; i++) {
      assert.equal((await call(chorus.app, "GET", "/api/v1/kv/x", undefined, admin)).status, 404);
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] with auth off there is no failed-authentication limit", async () => {
  const { chorus } = await openTest({ config: { auth: false } });
  try {
    for (let i = 0; i < 30; i++) {
      const res = await call(chorus.app, "GET", "/api/v1/kv/x", undefined, {
        authorization: "Bearer sk_chorus_guess",
      });
      assert.equal(res.status, 404);
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] refused socket connects count as failed authentication of the address: then 429 with Retry-After", async () => {
  const s = await served();
  const { token } = await s.chorus.tokens.create({ scopes: ["kv:read"] });
  let socket;
  try {
    for (let i = 0; i < AUTH_FAILURE_BURST; i++) {
      const refused = await upgradeStatus(s.port, i % 2 ? { token: "sk_chorus_guess" } : {});
      assert.equal(refused.status, 401, `attempt ${i + 1}`);
      assert.equal(refused.body.error.code, "unauthorized");
    }
    const limited = await upgradeStatus(s.port, { token });
    assert.equal(limited.status, 429, "the right token is not even checked");
    assert.equal(limited.body.error.code, "rate_limited");
    assert.equal(limited.headers.get("retry-after"), "1");
    // HTTP from the same address is limited by the same guard.
    assert.equal((await s.http("/api/v1/kv/x", token)).status, 429);
    s.clock.advance(1000);
    socket = await rawSocket(s.url, { token });
    assert.equal((await socket.push("kv:a", "phx_join", {}, "1")).status, "ok");
  } finally {
    await socket?.close();
    await s.close();
  }
});

Deno.test("[http] with CHORUS_RATE_LIMIT_SCOPE=global, two instances on one KV share one budget per window", async () => {
  const { path, cleanup } = await tempKvPath();
  const config = { rateLimit: 3, rateBurst: 3, rateLimitScope: "global" as const };
  const a = await openTest({ path, config });
  const b = await openTest({ path, config });
  try {
    // Both clocks stand in the same one-second window: 3 requests in all, wherever they land.
    const statuses = [];
    for (const app of [a.chorus.app, b.chorus.app, a.chorus.app, b.chorus.app]) {
      statuses.push((await call(app, "GET", "/api/v1/kv/shared")).status);
    }
    assert.deepEqual(statuses, [404, 404, 404, 429], "the fourth request, on either, is over");
    const refused = await call(a.chorus.app, "GET", "/api/v1/kv/shared");
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);
    // The next window has a fresh budget on both.
    a.clock.advance(1000);
    b.clock.advance(1000);
    assert.equal((await call(b.chorus.app, "GET", "/api/v1/kv/shared")).status, 404);
    assert.equal((await call(a.chorus.app, "GET", "/api/v1/kv/shared")).status, 404);
  } finally {
    await a.chorus.close();
    await b.chorus.close();
    await cleanup();
  }
});

Deno.test("[http] with the local rate-limit scope, each instance has its own budget", async () => {
  const { path, cleanup } = await tempKvPath();
  const config = { rateLimit: 2, rateBurst: 2 };
  const a = await openTest({ path, config });
  const b = await openTest({ path, config });
  try {
    const statuses = [];
    for (const app of [a.chorus.app, a.chorus.app, b.chorus.app, b.chorus.app, a.chorus.app]) {
      statuses.push((await call(app, "GET", "/api/v1/kv/own")).status);
    }
    assert.deepEqual(statuses, [404, 404, 404, 404, 429]);
  } finally {
    await a.chorus.close();
    await b.chorus.close();
    await cleanup();
  }
});
