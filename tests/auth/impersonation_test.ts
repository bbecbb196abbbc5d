// deno-lint-ignore-file no-explicit-any
import assert from "node:assert/strict";
import { call, openTest } from "../_helpers.ts";
import { SCOPES } from "../../auth/tokens.ts";
import { connect, disconnect, join, pushed, serve } from "../realtime/_socket_helpers.ts";

const ADMIN = "sk_chorus_impersonation-admin-0123456789";
const REELS = ["reels:read", "reels:write"];

async function withAuth() {
  const opened = await openTest({ config: { auth: true, adminToken: ADMIN } });
  const admin = { authorization: `Bearer ${ADMIN}` };
  const mint = async (body: Record<string, unknown>) => {
    const res = await call(opened.chorus.app, "POST", "/api/v1/tokens", body, admin);
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return {
      ...res.body as { token: string; id: string; user_id?: string },
      auth: { authorization: `Bearer ${res.body.token}` },
    };
  };
  return { ...opened, admin, mint };
}

Deno.test("[auth] a token may carry a user_id (listed, validated); users:impersonate is a scope", async () => {
  const { chorus, admin, mint } = await withAuth();
  try {
    assert.ok((SCOPES as readonly string[]).includes("users:impersonate"));
    const p1 = await mint({ scopes: REELS, user_id: "p1" });
    assert.equal(p1.user_id, "p1");
    const plain = await mint({ scopes: REELS });
    assert.equal(plain.user_id, undefined);
    const list = await call(chorus.app, "GET", "/api/v1/tokens", undefined, admin);
    const listed = list.body.tokens.find((t: any) => t.id === p1.id);
    assert.equal(listed.user_id, "p1");
    for (const user_id of ["", "..", "a/b", "x".repeat(129), 7]) {
      const bad = await call(
        chorus.app,
        "POST",
        "/api/v1/tokens",
        { scopes: REELS, user_id },
        admin,
      );
      assert.equal(bad.status, 400, JSON.stringify(user_id));
    }
    await mint({ scopes: ["users:impersonate", "reels:write"] });
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] with auth on, interactions and comments act as the token's user; another user_id is 403 without users:impersonate", async () => {
  const { chorus, admin, mint } = await withAuth();
  const path = "/api/v1/reels/r1x/interactions";
  try {
    const p1 = await mint({ scopes: REELS, user_id: "p1" });
    assert.equal(
      (await call(chorus.app, "POST", path, { type: "like", user_id: "p1" }, p1.auth))
        .status,
      201,
    );
    for (const user_id of ["p2", "p3"]) {
      const res = await call(chorus.app, "POST", path, { type: "like", user_id }, p1.auth);
      assert.equal(res.status, 403, user_id);
      assert.equal(res.body.error.code, "forbidden");
    }
    const omitted = await call(chorus.app, "POST", path, { type: "like" }, p1.auth);
    assert.equal(omitted.status, 201);
    assert.equal(omitted.body.user_id, "p1", "user_id omitted: the token's user");
    assert.equal(omitted.body.counted, false, "p1 already liked");
    assert.equal(omitted.body.state.likes, 1, "one token, one like");

    const comment = await call(chorus.app, "POST", path, { type: "comment", text: "hi" }, p1.auth);
    assert.equal(comment.body.user_id, "p1");
    const forged = await call(chorus.app, "POST", path, {
      type: "comment",
      text: "not me",
      user_id: "p2",
    }, p1.auth);
    assert.equal(forged.status, 403);
    const comments = await call(
      chorus.app,
      "GET",
      "/api/v1/reels/r1x/comments",
      undefined,
      p1.auth,
    );
    assert.deepEqual(comments.body.comments.map((c: any) => c.user_id), ["p1"]);

    // A token without a user_id acts as its id.
    const plain = await mint({ scopes: REELS });
    const own = await call(chorus.app, "POST", path, { type: "share" }, plain.auth);
    assert.equal(own.body.user_id, plain.id);

    // users:impersonate (and admin, which implies it) may act for others.
    const service = await mint({ scopes: [...REELS, "users:impersonate"], user_id: "svc" });
    const forP2 = await call(
      chorus.app,
      "POST",
      path,
      { type: "like", user_id: "p2" },
      service.auth,
    );
    assert.equal(forP2.status, 201);
    assert.equal(forP2.body.user_id, "p2");
    const forP3 = await call(chorus.app, "POST", path, { type: "like", user_id: "p3" }, admin);
    assert.equal(forP3.status, 201);
    assert.equal(forP3.body.state.likes, 3);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] with auth on, POST /users/:id/presence needs :id to be the token's user unless users:impersonate", async () => {
  const { chorus, admin, mint } = await withAuth();
  try {
    const p1 = await mint({ scopes: REELS, user_id: "p1" });
    const body = { status: "online" };
    assert.equal(
      (await call(chorus.app, "POST", "/api/v1/users/p1/presence", body, p1.auth))
        .status,
      200,
    );
    const other = await call(chorus.app, "POST", "/api/v1/users/p2/presence", body, p1.auth);
    assert.equal(other.status, 403);
    assert.equal(other.body.error.code, "forbidden");
    const p2 = await call(chorus.app, "GET", "/api/v1/users/p2/presence", undefined, p1.auth);
    assert.equal(p2.body.status, "offline", "nothing was recorded for p2");
    const service = await mint({ scopes: ["reels:write", "users:impersonate"] });
    assert.equal(
      (await call(chorus.app, "POST", "/api/v1/users/p2/presence", body, service.auth))
        .status,
      200,
    );
    assert.equal(
      (await call(chorus.app, "POST", "/api/v1/users/p3/presence", body, admin))
        .status,
      200,
    );
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] OpenAPI: the interaction user_id is optional; interactions and presence document 403", async () => {
  const { chorus } = await withAuth();
  try {
    const doc = (await call(chorus.app, "GET", "/api/v1/openapi.json")).body;
    const input = doc.components.schemas.InteractionInput;
    assert.ok(input.properties.user_id);
    assert.ok(!(input.required ?? []).includes("user_id"));
    assert.ok(doc.paths["/api/v1/reels/{id}/interactions"].post.responses["403"]);
    assert.ok(doc.paths["/api/v1/users/{id}/presence"].post.responses["403"]);
    const tokenBody = doc.paths["/api/v1/tokens"].post.requestBody.content["application/json"]
      .schema;
    assert.ok(tokenBody.properties.user_id);
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] with auth on, a reel interaction push for another user_id is refused with forbidden unless the token may impersonate", async () => {
  const srv = await serve({ config: { auth: true, adminToken: ADMIN } });
  const sockets: any[] = [];
  try {
    const p1 = await srv.chorus.tokens.create({
      scopes: ["reels:read", "reels:write"],
      user_id: "p1",
    });
    const socket = connect(srv.url, { token: p1.token, user_id: "p2" });
    sockets.push(socket);
    const channel = socket.channel("reel:r2x", {});
    await join(channel);
    const forged = await pushed(channel, "interaction", { type: "like", user_id: "p2" });
    assert.equal(forged.status, "error");
    assert.equal(forged.response.reason, "forbidden");
    const own = await pushed(channel, "interaction", { type: "like" });
    assert.equal(own.status, "ok");
    assert.equal(own.response.user_id, "p1", "the token's user, not the user_id param");
    const same = await pushed(channel, "interaction", { type: "share", user_id: "p1" });
    assert.equal(same.status, "ok");
    assert.equal((await srv.chorus.reels.get("r2x")).likes, 1);

    const svc = await srv.chorus.tokens.create({
      scopes: ["reels:read", "reels:write", "users:impersonate"],
    });
    const service = connect(srv.url, { token: svc.token });
    sockets.push(service);
    const svcChannel = service.channel("reel:r2x", {});
    await join(svcChannel);
    const forP3 = await pushed(svcChannel, "interaction", { type: "like", user_id: "p3" });
    assert.equal(forP3.status, "ok", JSON.stringify(forP3));
    assert.equal(forP3.response.user_id, "p3");
  } finally {
    for (const s of sockets) await disconnect(s);
    await srv.close();
  }
});
