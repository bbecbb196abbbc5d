/**
 * HTTP tests of the reels, users and system routes: publish/list updates, counters, interactions
 * (likes idempotent, views coalesced), presence, protobuf both ways, bad input.
 * @module
 */
import assert from "node:assert/strict";
import { call, openTest, rawPathRequest } from "../_helpers.ts";
import {
  decodeInteraction,
  decodePresenceUpdate,
  decodeReelState,
  decodeReelUpdate,
  encodeInteraction,
  encodePresenceUpdate,
  encodeReelUpdate,
} from "../../proto/codec.ts";

const PB = "application/x-protobuf";

async function raw(
  app: { request: (p: string, i?: RequestInit) => Response | Promise<Response> },
  method: string,
  path: string,
  body: Uint8Array | undefined,
  headers: Record<string, string>,
): Promise<Response> {
  return await app.request(path, { method, body: body as BodyInit | undefined, headers });
}

Deno.test("[http] POST /api/v1/reels/:id/updates returns 201 with a ULID id and rising seq", async () => {
  const { chorus } = await openTest();
  try {
    const a = await call(chorus.app, "POST", "/api/v1/reels/r1/updates", {
      update_data: { caption: "hi", n: 1 },
    });
    assert.equal(a.status, 201);
    assert.match(a.body.id, /^[0-9A-HJKMNP-TV-Z]{26}$/);
    assert.equal(a.body.reel_id, "r1");
    assert.equal(a.body.seq, 1);
    assert.equal(typeof a.body.timestamp, "number");
    const b = await call(chorus.app, "POST", "/api/v1/reels/r1/updates", {
      update_data: { n: 2 },
      priority: "high",
    });
    assert.equal(b.body.seq, 2);
    const list = await call(chorus.app, "GET", "/api/v1/reels/r1/updates?since=0");
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.updates.map((u: { seq: number }) => u.seq), [1, 2]);
    assert.deepEqual(list.body.updates[0].update_data, { caption: "hi", n: 1 });
    assert.equal(list.body.updates[1].priority, "high");
    const since = await call(chorus.app, "GET", "/api/v1/reels/r1/updates?since=1&limit=5");
    assert.deepEqual(since.body.updates.map((u: { seq: number }) => u.seq), [2]);
    const state = await call(chorus.app, "GET", "/api/v1/reels/r1");
    assert.equal(state.body.seq, 2);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] bad reel input is a 400 and writes nothing", async () => {
  const { chorus } = await openTest();
  try {
    const cases: [string, unknown][] = [
      ["/api/v1/reels/r1/interactions", { type: "poke", user_id: "u1" }],
      ["/api/v1/reels/r1/interactions", { type: "like" }],
      ["/api/v1/reels/r1/interactions", { type: "comment", user_id: "u1", text: "x".repeat(2001) }],
      ["/api/v1/reels/r1/interactions", { type: "comment", user_id: "u1" }],
      ["/api/v1/reels/r1/interactions", { type: "like", user_id: "bad user" }],
      ["/api/v1/reels/bad%20id/updates", { update_data: {} }],
      [`/api/v1/reels/${"x".repeat(129)}/updates`, { update_data: {} }],
      ["/api/v1/reels/r1/updates", { update_data: [1] }],
      ["/api/v1/reels/r1/updates", { update_data: {}, priority: "urgent" }],
      ["/api/v1/users/u1/presence", { status: "busy" }],
    ];
    for (const [path, body] of cases) {
      const r = await call(chorus.app, "POST", path, body);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body).slice(0, 60)}`);
      assert.equal(r.body.error.code, "invalid_request");
    }
    const bad = await raw(
      chorus.app,
      "POST",
      "/api/v1/reels/r1/updates",
      new Uint8Array([255, 255, 255]),
      {
        "content-type": PB,
      },
    );
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error.code, "invalid_request");
    const text = await chorus.app.request("/api/v1/reels/r1/interactions", {
      method: "POST",
      body: "like",
      headers: { "content-type": "text/plain" },
    });
    assert.equal(text.status, 415);
    assert.equal((await text.json()).error.code, "unsupported_media_type");
    const state = await call(chorus.app, "GET", "/api/v1/reels/r1?consistency=strong");
    assert.deepEqual(
      [state.body.seq, state.body.likes, state.body.comments, state.body.views],
      [0, 0, 0, 0],
    );
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] likes are idempotent per user; unlike removes; comments are paged", async () => {
  const { chorus } = await openTest();
  try {
    const like = (u: string, type = "like") =>
      call(chorus.app, "POST", "/api/v1/reels/r2/interactions", { type, user_id: u });
    const first = await like("u1");
    assert.equal(first.status, 201);
    assert.equal(first.body.counted, true);
    assert.equal(first.body.state.likes, 1);
    const again = await like("u1");
    assert.equal(again.body.counted, false);
    assert.equal(again.body.state.likes, 1);
    await Promise.all([like("u2"), like("u2"), like("u3")]);
    assert.equal((await call(chorus.app, "GET", "/api/v1/reels/r2")).body.likes, 3);
    await like("u2", "unlike");
    await like("u9", "unlike");
    assert.equal((await call(chorus.app, "GET", "/api/v1/reels/r2")).body.likes, 2);
    for (let i = 0; i < 3; i++) {
      const c = await call(chorus.app, "POST", "/api/v1/reels/r2/interactions", {
        type: "comment",
        user_id: "u1",
        text: `c${i}`,
      });
      assert.equal(c.body.text, `c${i}`);
    }
    await call(chorus.app, "POST", "/api/v1/reels/r2/interactions", {
      type: "share",
      user_id: "u1",
    });
    const state = (await call(chorus.app, "GET", "/api/v1/reels/r2?consistency=strong")).body;
    assert.equal(state.comments, 3);
    assert.equal(state.shares, 1);
    const page = await call(chorus.app, "GET", "/api/v1/reels/r2/comments?limit=2");
    assert.deepEqual(page.body.comments.map((c: { text: string }) => c.text), ["c0", "c1"]);
    const next = await call(
      chorus.app,
      "GET",
      `/api/v1/reels/r2/comments?limit=2&cursor=${page.body.cursor}`,
    );
    assert.deepEqual(next.body.comments.map((c: { text: string }) => c.text), ["c2"]);
    assert.equal(next.body.cursor, null);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] views are coalesced into one sum commit per window and visible to strong reads", async () => {
  const { chorus, clock } = await openTest();
  try {
    await call(chorus.app, "GET", "/api/v1/reels/r3"); // load the actor
    const before = chorus.store.stats.commits;
    for (let i = 0; i < 50; i++) {
      const r = await call(chorus.app, "POST", "/api/v1/reels/r3/interactions", {
        type: "view",
        user_id: `u${i}`,
      });
      assert.equal(r.status, 201);
    }
    assert.equal(chorus.store.stats.commits, before, "no commit per view");
    assert.equal((await call(chorus.app, "GET", "/api/v1/reels/r3")).body.views, 50);
    clock.advance(150);
    await chorus.reels.flushViews();
    assert.equal(chorus.store.stats.commits, before + 1);
    assert.equal(chorus.reels.stats().viewCommits, 1);
    await call(chorus.app, "POST", "/api/v1/reels/r3/interactions", { type: "view", user_id: "x" });
    const strong = await call(chorus.app, "GET", "/api/v1/reels/r3?consistency=strong");
    assert.equal(strong.body.views, 51);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] protobuf round trips: ReelUpdate in and out, ReelState, Interaction, PresenceUpdate", async () => {
  const { chorus } = await openTest();
  try {
    const body = encodeReelUpdate({
      id: "",
      reel_id: "",
      update_data: { caption: "pb", nested: { a: [1, 2] } },
      target_channel: "main",
      priority: "critical",
      timestamp: 0,
      seq: 0,
    });
    const res = await raw(chorus.app, "POST", "/api/v1/reels/r4/updates", body, {
      "content-type": PB,
      accept: PB,
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("content-type"), PB);
    const out = decodeReelUpdate(new Uint8Array(await res.arrayBuffer()));
    assert.equal(out.seq, 1);
    assert.equal(out.reel_id, "r4");
    assert.deepEqual(out.update_data, { caption: "pb", nested: { a: [1, 2] } });
    const json = await call(chorus.app, "GET", "/api/v1/reels/r4/updates");
    const listed = json.body.updates[0];
    assert.deepEqual(listed, { ...out, target_channel: "main", priority: "critical" });

    const ibody = encodeInteraction({
      id: "",
      reel_id: "",
      type: "like",
      user_id: "u1",
      timestamp: 0,
    });
    const ires = await raw(chorus.app, "POST", "/api/v1/reels/r4/interactions", ibody, {
      "content-type": PB,
      accept: PB,
    });
    assert.equal(ires.status, 201);
    const interaction = decodeInteraction(new Uint8Array(await ires.arrayBuffer()));
    assert.equal(interaction.type, "like");
    assert.equal(interaction.user_id, "u1");

    const sres = await raw(chorus.app, "GET", "/api/v1/reels/r4", undefined, { accept: PB });
    const state = decodeReelState(new Uint8Array(await sres.arrayBuffer()));
    const sjson = (await call(chorus.app, "GET", "/api/v1/reels/r4")).body;
    assert.deepEqual(state, sjson);
    assert.equal(state.likes, 1);

    const pbody = encodePresenceUpdate({
      user_id: "",
      status: "away",
      current_reel: "r4",
      activity: "watching",
      last_seen: 0,
    });
    const pres = await raw(chorus.app, "POST", "/api/v1/users/u1/presence", pbody, {
      "content-type": PB,
      accept: PB,
    });
    assert.equal(pres.status, 200);
    const presence = decodePresenceUpdate(new Uint8Array(await pres.arrayBuffer()));
    assert.equal(presence.status, "away");
    assert.equal(presence.current_reel, "r4");
    const gres = await raw(chorus.app, "GET", "/api/v1/users/u1/presence", undefined, {
      accept: PB,
    });
    const got = decodePresenceUpdate(new Uint8Array(await gres.arrayBuffer()));
    const { sockets: _s, ...gjson } = (await call(chorus.app, "GET", "/api/v1/users/u1/presence"))
      .body;
    assert.deepEqual(got, gjson);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] user presence expires after the TTL; REST viewers show on the reel", async () => {
  const { chorus, clock } = await openTest();
  try {
    const set = await call(chorus.app, "POST", "/api/v1/users/u1/presence", {
      status: "online",
      current_reel: "r5",
      activity: "watching",
    });
    assert.equal(set.status, 200);
    assert.equal(set.body.status, "online");
    const got = await call(chorus.app, "GET", "/api/v1/users/u1/presence");
    assert.equal(got.body.status, "online");
    assert.equal(got.body.current_reel, "r5");
    const on = await call(chorus.app, "GET", "/api/v1/reels/r5/presence");
    assert.equal(on.body.count, 1);
    assert.equal(on.body.users[0].user_id, "u1");
    assert.equal(on.body.users[0].activity, "watching");
    clock.advance(31_000);
    assert.equal(
      (await call(chorus.app, "GET", "/api/v1/users/u1/presence")).body.status,
      "offline",
    );
    assert.equal((await call(chorus.app, "GET", "/api/v1/reels/r5/presence")).body.count, 0);
    const unknown = await call(chorus.app, "GET", "/api/v1/users/nobody/presence");
    assert.equal(unknown.body.status, "offline");
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] GET /proto/chorus.proto and the system routes report real figures", async () => {
  const { chorus } = await openTest();
  try {
    const proto = await chorus.app.request("/proto/chorus.proto");
    assert.equal(proto.status, 200);
    assert.match(await proto.text(), /message ReelUpdate/);
    await call(chorus.app, "POST", "/api/v1/reels/r6/updates", { update_data: { a: 1 } });
    const stats = await call(chorus.app, "GET", "/api/v1/system/stats");
    assert.equal(stats.status, 200);
    assert.equal(stats.body.instance, chorus.instanceId);
    assert.ok(stats.body.kv.commits >= 1);
    assert.ok(stats.body.actors.by_kind.reel >= 1);
    assert.equal(typeof stats.body.memory.rss, "number");
    assert.equal(typeof stats.body.rates.messages_in_per_s, "number");
    const health = await call(chorus.app, "GET", "/api/v1/system/health");
    assert.equal(health.status, 200);
    assert.equal(health.body.status, "ok");
    const perf = await call(chorus.app, "GET", "/api/v1/system/performance");
    assert.equal(typeof perf.body.kv.commit_ms_avg, "number");
    const conns = await call(chorus.app, "GET", "/api/v1/connections/stats");
    assert.equal(conns.body.sockets, 0);
    const status = await call(chorus.app, "GET", "/api/v1/status");
    assert.equal(status.status, 200);
    assert.equal(status.body.kv_backend, "memory");
    assert.deepEqual(status.body.members.map((m: { id: string }) => m.id), [chorus.instanceId]);
    const doc = await call(chorus.app, "GET", "/api/v1/openapi.json");
    for (
      const p of [
        "/api/v1/reels/{id}/updates",
        "/api/v1/reels/{id}",
        "/api/v1/reels/{id}/interactions",
        "/api/v1/reels/{id}/presence",
        "/api/v1/users/{id}/presence",
        "/api/v1/system/stats",
        "/api/v1/status",
      ]
    ) assert.ok(doc.body.paths[p], p);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] a malformed comments cursor is 400 invalid_request", async () => {
  const { chorus } = await openTest();
  try {
    await call(chorus.app, "POST", "/api/v1/reels/rc/interactions", {
      type: "comment",
      user_id: "u1",
      text: "hi",
    });
    for (
      const cursor of ["%%%", "abc", "01ARZ3NDEKTSV4RRFFQ69G5FAV0", "01arz3ndektsv4rrffq69g5fav"]
    ) {
      const r = await call(chorus.app, "GET", `/api/v1/reels/rc/comments?cursor=${cursor}`);
      assert.equal(r.status, 400, `${cursor}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, "invalid_request");
      assert.match(r.body.error.message, /cursor/);
    }
    const ok = await call(
      chorus.app,
      "GET",
      "/api/v1/reels/rc/comments?cursor=01ARZ3NDEKTSV4RRFFQ69G5FAV",
    );
    assert.equal(ok.status, 200);
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] reel and user ids . and .. are refused with 400 invalid_request", async () => {
  const { chorus } = await openTest();
  try {
    for (const id of [".", ".."]) {
      for (
        const path of [
          `/api/v1/reels/${id}`,
          `/api/v1/reels/${id}/comments`,
          `/api/v1/users/${id}/presence`,
        ]
      ) {
        const res = await chorus.app.fetch(rawPathRequest("GET", path));
        const body = await res.json();
        assert.equal(res.status, 400, `${path}: ${JSON.stringify(body)}`);
        assert.equal(body.error.code, "invalid_request");
      }
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] with auth off, an interaction still needs user_id and may name any user", async () => {
  const { chorus } = await openTest({ config: { auth: false } });
  try {
    const path = "/api/v1/reels/r3/interactions";
    const missing = await call(chorus.app, "POST", path, { type: "like" });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.code, "invalid_request");
    assert.match(missing.body.error.message, /user_id/);
    for (const user_id of ["p1", "p2", "p3"]) {
      assert.equal((await call(chorus.app, "POST", path, { type: "like", user_id })).status, 201);
    }
    assert.equal((await call(chorus.app, "GET", "/api/v1/reels/r3")).body.likes, 3);
    const presence = await call(chorus.app, "POST", "/api/v1/users/p2/presence", {
      status: "online",
    });
    assert.equal(presence.status, 200);
  } finally {
    await chorus.close();
  }
});
