// deno-lint-ignore-file no-explicit-any
import assert from "node:assert/strict";
import { call, openTest, tempKvPath, until } from "../_helpers.ts";
import { Chorus } from "../../mod.ts";
import { connect, disconnect, join, serve, upgradeStatus } from "../realtime/_socket_helpers.ts";

const ADMIN = "sk_chorus_ticket-admin-secret-0123456789";
const admin = { authorization: `Bearer ${ADMIN}` };

type App = { request: (path: string, init?: RequestInit) => Response | Promise<Response> };

async function mint(
  app: App,
  body: Record<string, unknown>,
): Promise<{ token: string; id: string }> {
  const res = await call(app, "POST", "/api/v1/tokens", body, admin);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

async function ticketOf(app: App, token: string): Promise<{ ticket: string; expires_at: number }> {
  const res = await call(app, "POST", "/api/v1/tickets", undefined, {
    authorization: `Bearer ${token}`,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.match(res.body.ticket, /^tk_chorus_/);
  return res.body;
}

/** Opens a watch with a ticket: the status, and the first chunk of the stream when it is 200. */
async function watch(app: App, key: string, ticket: string) {
  const res = await app.request(`/api/v1/kv/${key}/watch?ticket=${encodeURIComponent(ticket)}`);
  if (res.status !== 200) return { status: res.status, body: await res.json(), first: "" };
  const reader = res.body!.getReader();
  const { value } = await reader.read();
  await reader.cancel();
  return { status: 200, body: null, first: new TextDecoder().decode(value) };
}

Deno.test("[tickets] a ticket opens one watch, carries the token's scopes and prefix, and expires", async () => {
  const { chorus, clock } = await openTest({ config: { auth: true, adminToken: ADMIN } });
  try {
    const app = chorus.app;
    assert.equal((await call(app, "POST", "/api/v1/tickets")).status, 401, "needs a token");
    const { token } = await mint(app, { scopes: ["kv:read"], prefix: "t1/" });
    const issued = await ticketOf(app, token);
    assert.ok(issued.expires_at > clock.now() && issued.expires_at <= clock.now() + 60_000);

    const first = await watch(app, "t1%2Fa", issued.ticket);
    assert.equal(first.status, 200);
    assert.match(first.first, /event: ready/);
    const again = await watch(app, "t1%2Fa", issued.ticket);
    assert.equal(again.status, 401, "single use");
    assert.equal(again.body.error.code, "unauthorized");

    // The prefix and scopes come along: outside the prefix is 403, like the token itself.
    const outside = await watch(app, "t2%2Fa", (await ticketOf(app, token)).ticket);
    assert.equal(outside.status, 403);
    assert.equal(outside.body.error.code, "forbidden");

    // Only the watch takes a ticket: elsewhere it is no credential.
    const other = await call(
      app,
      "GET",
      `/api/v1/kv/t1%2Fa?ticket=${(await ticketOf(app, token)).ticket}`,
    );
    assert.equal(other.status, 401);

    // Expired (over 30 s later): 401.
    const late = await ticketOf(app, token);
    clock.advance(31_000);
    const expired = await watch(app, "t1%2Fa", late.ticket);
    assert.equal(expired.status, 401);
    assert.equal(expired.body.error.code, "unauthorized");

    // Unknown and malformed tickets: 401.
    for (const bad of ["tk_chorus_nope", "", "x".repeat(300)]) {
      assert.equal((await watch(app, "t1%2Fa", bad)).status, 401, bad);
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[tickets] a revoked token's tickets stop working; concurrent redemptions: one wins", async () => {
  const { chorus } = await openTest({ config: { auth: true, adminToken: ADMIN } });
  try {
    const app = chorus.app;
    const { token, id } = await mint(app, { scopes: ["kv:read"] });
    const pending = await ticketOf(app, token);
    assert.equal((await call(app, "DELETE", `/api/v1/tokens/${id}`, undefined, admin)).status, 200);
    const refused = await watch(app, "k", pending.ticket);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.code, "unauthorized");

    const other = await mint(app, { scopes: ["kv:read"] });
    const { ticket } = await ticketOf(app, other.token);
    const results = await Promise.all(
      Array.from({ length: 8 }, () => chorus.tokens.tickets.redeem(ticket)),
    );
    assert.equal(results.filter((p) => p !== null).length, 1);
    assert.equal(results.find((p) => p)!.id, other.id);
  } finally {
    await chorus.close();
  }
});

Deno.test("[tickets] a ticket issued on one instance is redeemed on another, once", async () => {
  const { path, cleanup } = await tempKvPath();
  const config = { auth: true, adminToken: ADMIN };
  const a = await Chorus.open({ path, config });
  const b = await Chorus.open({ path, config });
  try {
    const { token } = await mint(a.app, { scopes: ["kv:read"], user_id: "u_1" });
    const { ticket } = await ticketOf(a.app, token);
    const onB = await watch(b.app, "k", ticket);
    assert.equal(onB.status, 200);
    assert.equal((await watch(a.app, "k", ticket)).status, 401, "used on B, refused on A");
    const again = await ticketOf(b.app, token);
    const principal = await a.tokens.tickets.redeem(again.ticket);
    assert.equal(principal?.userId, "u_1");
    assert.deepEqual([...principal!.scopes], ["kv:read"]);
  } finally {
    await a.close();
    await b.close();
    await cleanup();
  }
});

Deno.test("[tickets] the socket takes a ticket once; failures are 401 unauthorized like HTTP", async () => {
  const served = await serve({
    config: { auth: true, adminToken: ADMIN },
    realtime: { revalidateMs: 50 },
  });
  const sockets: any[] = [];
  try {
    const app = served.chorus.app;
    const missing = await upgradeStatus(served.port);
    const http = await call(app, "GET", "/api/v1/kv/a");
    assert.equal(missing.status, http.status);
    assert.equal(missing.body.error.code, http.body.error.code);
    assert.equal(missing.status, 401);
    assert.equal(
      (await upgradeStatus(served.port, { token: "sk_chorus_wrong" })).body.error.code,
      "unauthorized",
    );

    const { token, id } = await mint(app, { scopes: ["kv:read"], prefix: "t1/" });
    const { ticket } = await ticketOf(app, token);
    const socket = connect(served.url, { ticket }, { reconnectAfterMs: () => 60_000 });
    sockets.push(socket);
    const channel = socket.channel("kv:t1/a", {});
    await join(channel);
    await assert.rejects(
      join(socket.channel("kv:t2/a", {})),
      (e: any) => e.reason === "unauthorized",
    );

    const reused = await upgradeStatus(served.port, { ticket });
    assert.equal(reused.status, 401, "a used ticket");
    assert.equal(reused.body.error.code, "unauthorized");

    // Revoking the token closes the ticket socket's channels, as for a token socket.
    let closed = false;
    channel.onClose(() => closed = true);
    await served.chorus.tokens.revoke(id);
    await until(() => closed, "phx_close after revocation");
  } finally {
    for (const s of sockets) await disconnect(s);
    await served.close();
  }
});
