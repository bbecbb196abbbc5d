// deno-lint-ignore-file no-explicit-any
/**
 * Kronop's documented client, played as written against Chorus: `new Phoenix.Socket("/ws")`,
 * `reel:123` / `user:user123` channels, the presence `curl` with a numeric `current_reel`, and
 * `ReelUpdate`s encoded with Kronop's own .proto (parsed here with `protobuf.parse`).
 * @module
 */
import assert from "node:assert/strict";
import protobuf from "protobufjs";
import * as Phoenix from "phoenix";
import { connect, disconnect, join, pushed, serve } from "../realtime/_socket_helpers.ts";
import { call, openTest, until } from "../_helpers.ts";
import { decodeReelUpdateList } from "../../proto/codec.ts";

/** Kronop's schema, as its documentation gives it. */
const KRONOP_PROTO = `
syntax = "proto3";
package kronop;
enum Priority {
  LOW = 0;
  NORMAL = 1;
  HIGH = 2;
  CRITICAL = 3;
}
message ReelUpdate {
  string id = 1;
  int32 reel_id = 2;
  map<string, string> update_data = 3;
  repeated string target_users = 4;
  string target_channel = 5;
  int64 timestamp = 6;
  Priority priority = 7;
}
// Not Kronop's: only to read Chorus's ReelUpdateList with Kronop's ReelUpdate.
message Updates {
  repeated ReelUpdate updates = 4;
}
`;
const kronop = protobuf.parse(KRONOP_PROTO, { keepCase: true }).root;
const KronopReelUpdate = kronop.lookupType("kronop.ReelUpdate");
const KronopUpdates = kronop.lookupType("kronop.Updates");

function kronopBytes(fields: Record<string, unknown>): Uint8Array<ArrayBuffer> {
  return new Uint8Array(KronopReelUpdate.encode(KronopReelUpdate.create(fields)).finish());
}

/** `new Phoenix.Socket("/ws")` as a page on the server's origin would open it. */
function kronopSocket(port: number): any {
  const socket = new Phoenix.Socket(`ws://127.0.0.1:${port}/ws`, {
    reconnectAfterMs: () => 20,
    rejoinAfterMs: () => 50,
  });
  socket.connect();
  return socket;
}

Deno.test("[kronop] Phoenix.Socket('/ws'): reel_update on reel:123, user_activity on user:user123 after the presence curl", async () => {
  const srv = await serve();
  const socket = kronopSocket(srv.port);
  try {
    const reelChannel = socket.channel("reel:123");
    const updates: any[] = [];
    reelChannel.on("reel_update", (p: any) => updates.push(p));
    await join(reelChannel);
    const userChannel = socket.channel("user:user123");
    const activity: any[] = [];
    userChannel.on("user_activity", (p: any) => activity.push(p));
    await join(userChannel);
    assert.equal(socket.endPointURL().split("?")[0], `ws://127.0.0.1:${srv.port}/ws/websocket`);

    // curl -X POST http://HOST/api/v1/users/user123/presence -H "Content-Type: application/json"
    //   -d '{"status": "online", "current_reel": 123, "activity": "watching"}'
    const res = await fetch(`http://127.0.0.1:${srv.port}/api/v1/users/user123/presence`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: '{"status": "online", "current_reel": 123, "activity": "watching"}',
    });
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.current_reel, "123");
    await until(() => activity.length >= 1, "user_activity");
    assert.equal(activity[0].user_id, "user123");
    assert.equal(activity[0].status, "online");
    assert.equal(activity[0].current_reel, "123");
    assert.equal(activity[0].activity, "watching");
    // The numeric reel is the reel "123".
    const viewers = await call(srv.chorus.app, "GET", "/api/v1/reels/123/presence");
    assert.ok(viewers.body.users.some((u: any) => u.user_id === "user123" && u.activity));

    // A change of activity over the socket arrives as user_activity too.
    const r = await pushed(userChannel, "presence", {
      status: "away",
      current_reel: 123,
      activity: "paused",
    });
    assert.equal(r.status, "ok", JSON.stringify(r));
    await until(() => activity.length >= 2, "second user_activity");
    assert.equal(activity[1].activity, "paused");
    assert.equal(activity[1].current_reel, "123");

    await call(srv.chorus.app, "POST", "/api/v1/reels/123/updates", { update_data: { a: "1" } });
    await until(() => updates.length >= 1, "reel_update");
    assert.equal(updates[0].reel_id, "123");
    assert.deepEqual(updates[0].update_data, { a: "1" });
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[kronop] numeric ids read as their string forms; other types are 400", async () => {
  const { chorus } = await openTest();
  try {
    const app = chorus.app;
    const ok = await call(app, "POST", "/api/v1/users/7/presence", {
      status: "online",
      current_reel: 42,
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.current_reel, "42");
    const same = await call(app, "GET", "/api/v1/reels/42/presence");
    assert.deepEqual(same.body.users.map((u: any) => u.user_id), ["7"]);
    for (const current_reel of [true, { id: 1 }, [1]]) {
      const bad = await call(app, "POST", "/api/v1/users/7/presence", {
        status: "online",
        current_reel,
      });
      assert.equal(bad.status, 400, JSON.stringify(current_reel));
    }
    const pub = await call(app, "POST", "/api/v1/reels/42/updates", {
      update_data: { x: 1 },
      target_users: [7, "u8"],
    });
    assert.equal(pub.status, 201, JSON.stringify(pub.body));
    const list = await call(app, "GET", "/api/v1/reels/42/updates");
    assert.deepEqual(list.body.updates[0].target_users, ["7", "u8"]);
    const liked = await call(app, "POST", "/api/v1/reels/42/interactions", {
      type: "like",
      user_id: 7,
    });
    assert.equal(liked.status, 201, JSON.stringify(liked.body));
    assert.equal(liked.body.user_id, "7");
    const badTarget = await call(app, "POST", "/api/v1/reels/42/updates", {
      update_data: {},
      target_users: [true],
    });
    assert.equal(badTarget.status, 400);
  } finally {
    await chorus.close();
  }
});

Deno.test("[kronop] a ReelUpdate encoded with Kronop's schema is the same update; GET answers protobuf", async () => {
  const srv = await serve();
  const socket = kronopSocket(srv.port);
  try {
    const userChannel = socket.channel("user:user123");
    const targeted: any[] = [];
    userChannel.on("reel_update", (p: any) => targeted.push(p));
    await join(userChannel);
    const bytes = kronopBytes({
      id: "k-1",
      reel_id: 123,
      update_data: { title: "hello", views: "10" },
      target_users: ["user123"],
      target_channel: "user:user123",
      timestamp: 1733106000000,
      priority: 2, // HIGH
    });
    const res = await fetch(`http://127.0.0.1:${srv.port}/api/v1/reels/123/updates`, {
      method: "POST",
      headers: { "Content-Type": "application/x-protobuf" },
      body: bytes,
    });
    assert.equal(res.status, 201, await res.clone().text());
    await res.body?.cancel();
    const list = await call(srv.chorus.app, "GET", "/api/v1/reels/123/updates");
    const u = list.body.updates[0];
    assert.equal(u.reel_id, "123");
    assert.deepEqual(u.update_data, { title: "hello", views: "10" });
    assert.deepEqual(u.target_users, ["user123"]);
    assert.equal(u.target_channel, "user:user123");
    assert.equal(u.priority, "high");
    // The same update as its JSON form.
    await call(srv.chorus.app, "POST", "/api/v1/reels/124/updates", {
      update_data: { title: "hello", views: "10" },
      target_users: ["user123"],
      target_channel: "user:user123",
      priority: "high",
    });
    const json = (await call(srv.chorus.app, "GET", "/api/v1/reels/124/updates")).body.updates[0];
    const strip = ({ id: _i, reel_id: _r, timestamp: _t, ...rest }: any) => rest;
    assert.deepEqual(strip(u), strip(json));
    // Delivered once on user:user123 (target_users and target_channel name the same user).
    await until(() => targeted.length >= 2, "targeted updates");
    assert.deepEqual(targeted.map((t) => t.reel_id), ["123", "124"]);
    // Unset priority is Kronop's LOW (0).
    await fetch(`http://127.0.0.1:${srv.port}/api/v1/reels/123/updates`, {
      method: "POST",
      headers: { "Content-Type": "application/x-protobuf" },
      body: kronopBytes({ reel_id: 123, update_data: { a: "b" } }),
    }).then((r) => r.body?.cancel());

    const pb = await fetch(`http://127.0.0.1:${srv.port}/api/v1/reels/123/updates`, {
      headers: { Accept: "application/x-protobuf" },
    });
    assert.equal(pb.headers.get("content-type"), "application/x-protobuf");
    const raw = new Uint8Array(await pb.arrayBuffer());
    const decoded = decodeReelUpdateList(raw);
    assert.equal(decoded.reel_id, "123");
    assert.equal(decoded.complete, true);
    assert.deepEqual(decoded.updates, list.body.updates.concat(decoded.updates.slice(1)));
    assert.equal(decoded.updates[1].priority, "low");
    // Kronop's own ReelUpdate reads the entries of the list: int32 reel_id, channel, priority.
    const asKronop = KronopUpdates.toObject(KronopUpdates.decode(raw), { longs: Number }) as any;
    assert.equal(asKronop.updates[0].reel_id, 123);
    assert.equal(asKronop.updates[0].priority, 2);
    assert.equal(asKronop.updates[0].target_channel, "user:user123");
    assert.deepEqual(asKronop.updates[0].update_data, { title: "hello", views: "10" });
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[kronop] target_channel delivers on that channel, not to the reel's own subscribers", async () => {
  const srv = await serve();
  const socket = kronopSocket(srv.port);
  try {
    const own = socket.channel("reel:123");
    const other = socket.channel("reel:456");
    const onOwn: any[] = [];
    const onOther: any[] = [];
    own.on("reel_update", (p: any) => onOwn.push(p));
    other.on("reel_update", (p: any) => onOther.push(p));
    await join(own);
    await join(other);
    await fetch(`http://127.0.0.1:${srv.port}/api/v1/reels/123/updates`, {
      method: "POST",
      headers: { "Content-Type": "application/x-protobuf" },
      body: kronopBytes({
        reel_id: 123,
        update_data: { m: "to 456" },
        target_channel: "reel:456",
        priority: 1,
      }),
    }).then((r) => r.body?.cancel());
    // A label that is not a topic, and the reel's own topic, reach the reel's subscribers.
    await call(srv.chorus.app, "POST", "/api/v1/reels/123/updates", {
      update_data: { m: "label" },
      target_channel: "main",
    });
    await call(srv.chorus.app, "POST", "/api/v1/reels/123/updates", {
      update_data: { m: "self" },
      target_channel: "reel:123",
    });
    await until(() => onOwn.length >= 2 && onOther.length >= 1, "deliveries");
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(onOwn.map((u) => u.update_data.m), ["label", "self"]);
    assert.deepEqual(onOther.map((u) => u.update_data.m), ["to 456"]);
    assert.equal(onOther[0].reel_id, "456");
    assert.equal(onOther[0].target_channel, "reel:456");
    // Both logs hold it: the source reel's (seq 1) and the channel reel's (its own seq 1).
    const src = await call(srv.chorus.app, "GET", "/api/v1/reels/123/updates");
    assert.equal(src.body.updates[0].target_channel, "reel:456");
    const dst = await call(srv.chorus.app, "GET", "/api/v1/reels/456/updates");
    assert.equal(dst.body.updates[0].seq, 1);
    // A recovering joiner of reel:123 is not replayed the update sent elsewhere.
    const late = socket.channel("reel:123", { last_seq: 0 });
    const replayed: any[] = [];
    late.on("reel_update", (p: any) => replayed.push(p));
    await join(late);
    await until(() => replayed.length >= 2, "replay");
    assert.deepEqual(replayed.map((u) => u.update_data.m), ["label", "self"]);
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[kronop] with auth on, target_channel must be inside the token's prefix", async () => {
  const ADMIN = "sk_chorus_kronop-channel-admin-0123456789";
  const { chorus } = await openTest({ config: { auth: true, adminToken: ADMIN } });
  try {
    const app = chorus.app;
    const minted = await call(
      app,
      "POST",
      "/api/v1/tokens",
      { scopes: ["reels:read", "reels:write"], prefix: "t1-" },
      { authorization: `Bearer ${ADMIN}` },
    );
    assert.equal(minted.status, 201);
    const auth = { authorization: `Bearer ${minted.body.token}` };
    const inside = await call(app, "POST", "/api/v1/reels/t1-a/updates", {
      update_data: {},
      target_channel: "reel:t1-b",
    }, auth);
    assert.equal(inside.status, 201, JSON.stringify(inside.body));
    for (const target_channel of ["reel:other", "user:other"]) {
      const outside = await call(app, "POST", "/api/v1/reels/t1-a/updates", {
        update_data: {},
        target_channel,
      }, auth);
      assert.equal(outside.status, 403, target_channel);
    }
    const bytes = kronopBytes({ reel_id: 1, update_data: {}, target_channel: "reel:other" });
    const pb = await app.request("/api/v1/reels/t1-a/updates", {
      method: "POST",
      headers: { ...auth, "content-type": "application/x-protobuf" },
      body: bytes,
    });
    assert.equal(pb.status, 403);
    await pb.body?.cancel();
    const nothing = await call(app, "GET", "/api/v1/reels/other/updates", undefined, {
      authorization: `Bearer ${ADMIN}`,
    });
    assert.deepEqual(nothing.body.updates, []);
  } finally {
    await chorus.close();
  }
});

Deno.test("[kronop] the socket's update push checks target_channel against the token", async () => {
  const ADMIN = "sk_chorus_kronop-socket-admin-0123456789";
  const srv = await serve({ config: { auth: true, adminToken: ADMIN } });
  const { token } = await srv.chorus.tokens.create({
    scopes: ["reels:read", "reels:write"],
    prefix: "t1-",
  });
  const socket = connect(srv.url, { token });
  try {
    const channel = socket.channel("reel:t1-a");
    await join(channel);
    const inside = await pushed(channel, "update", {
      update_data: { a: "1" },
      target_channel: "reel:t1-b",
    });
    assert.equal(inside.status, "ok", JSON.stringify(inside));
    const outside = await pushed(channel, "update", {
      update_data: { a: "2" },
      target_channel: "user:someone",
    });
    assert.equal(outside.status, "error");
    assert.equal(outside.response.reason, "unauthorized");
    const listed = await srv.chorus.reels.updates("t1-b");
    assert.equal(listed.updates.length, 1);
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});
