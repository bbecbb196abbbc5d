// deno-lint-ignore-file no-explicit-any
/**
 * Socket tests of the `reel:<id>` and `user:<id>` topics with the real `phoenix` client:
 * reel_update and interaction events, targeted delivery, presence on join and drop, recovery with
 * `last_seq`, and protobuf Envelopes.
 * @module
 */
import assert from "node:assert/strict";
import { Presence } from "phoenix";
import { connect, disconnect, join, pushed, serve } from "./_socket_helpers.ts";
import { call, until } from "../_helpers.ts";
import { decodeEnvelope, encodeEnvelope, type ReelUpdateJson } from "../../proto/codec.ts";

Deno.test("[ws] reel:<id> gets reel_update and interaction events in order", async () => {
  const srv = await serve();
  const socket = connect(srv.url, { user_id: "viewer" });
  try {
    const channel = socket.channel("reel:r1", {});
    const events: any[] = [];
    channel.on("reel_update", (p: any) => events.push(["reel_update", p]));
    channel.on("interaction", (p: any) => events.push(["interaction", p]));
    const reply = await join(channel);
    assert.equal(reply.reel_id, "r1");
    assert.equal(reply.seq, 0);
    const app = srv.chorus.app;
    await call(app, "POST", "/api/v1/reels/r1/updates", {
      update_data: { a: 1 },
      priority: "high",
    });
    await call(app, "POST", "/api/v1/reels/r1/interactions", { type: "like", user_id: "u1" });
    await call(app, "POST", "/api/v1/reels/r1/interactions", { type: "like", user_id: "u1" });
    await call(app, "POST", "/api/v1/reels/r1/interactions", {
      type: "comment",
      user_id: "u2",
      text: "nice",
    });
    await call(app, "POST", "/api/v1/reels/r1/updates", { update_data: { a: 2 } });
    await until(() => events.length >= 4, "four events");
    assert.deepEqual(events.map(([e, p]) => `${e}:${p.seq ?? p.type}`), [
      "reel_update:1",
      "interaction:like",
      "interaction:comment",
      "reel_update:2",
    ]);
    assert.deepEqual(events[0][1].update_data, { a: 1 });
    assert.equal(events[0][1].priority, "high");
    assert.equal(events[2][1].text, "nice");
    // A push from the socket: the interaction's user defaults to the socket's user.
    const r = await pushed(channel, "interaction", { type: "share" });
    assert.equal(r.status, "ok");
    assert.equal(r.response.user_id, "viewer");
    assert.equal(r.response.state.shares, 1);
    const bad = await pushed(channel, "interaction", { type: "poke" });
    assert.equal(bad.status, "error");
    assert.equal(bad.response.reason, "invalid_request");
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[ws] targeted updates reach only the targets' user:<id> topics", async () => {
  const srv = await serve();
  const sockets = ["u1", "u2", "u3"].map((u) => connect(srv.url, { user_id: u }));
  try {
    const got: Record<string, any[]> = { u1: [], u2: [], u3: [], reel: [] };
    for (const [i, u] of ["u1", "u2", "u3"].entries()) {
      const ch = sockets[i].channel(`user:${u}`, {});
      ch.on("reel_update", (p: any) => got[u].push(p));
      await join(ch);
    }
    const reel = sockets[2].channel("reel:r2", {});
    reel.on("reel_update", (p: any) => got.reel.push(p));
    await join(reel);
    // Another user's topic is refused.
    const other = await join(sockets[0].channel("user:u2", {})).catch((e) => e);
    assert.equal(other.reason, "unauthorized");

    const r = await call(srv.chorus.app, "POST", "/api/v1/reels/r2/updates", {
      update_data: { secret: true },
      target_users: ["u1", "u2"],
      priority: "critical",
    });
    assert.equal(r.status, 201);
    await call(srv.chorus.app, "POST", "/api/v1/reels/r2/updates", { update_data: { open: 1 } });
    await until(() => got.u1.length === 1 && got.u2.length === 1, "targets got it");
    await until(() => got.reel.length === 1, "the public one on the reel");
    assert.deepEqual(got.u1[0].update_data, { secret: true });
    assert.deepEqual(got.u1[0].target_users, ["u1", "u2"]);
    assert.equal(got.u3.length, 0);
    assert.deepEqual(got.reel[0].update_data, { open: 1 });
  } finally {
    for (const s of sockets) await disconnect(s);
    await srv.close();
  }
});

Deno.test("[ws] presence on reel:<id> appears on join and disappears when the socket drops", async () => {
  const srv = await serve();
  const a = connect(srv.url, { user_id: "alice" });
  const b = connect(srv.url, { user_id: "bob" });
  try {
    const ca = a.channel("reel:r3", { status: "online", activity: "watching" });
    const pa = new Presence(ca);
    await join(ca);
    await until(() => pa.list().length === 1, "alice sees herself");
    const cb = b.channel("reel:r3", { activity: "commenting" });
    await join(cb);
    await until(() => pa.list().length === 2, "alice sees bob");
    const onReel = await call(srv.chorus.app, "GET", "/api/v1/reels/r3/presence");
    assert.deepEqual(onReel.body.users.map((u: any) => u.user_id), ["alice", "bob"]);
    assert.equal(onReel.body.users[0].activity, "watching");
    // The join records bob's presence in the background: wait for it.
    for (let i = 0; i < 300; i++) {
      if ((await srv.chorus.users.getPresence("bob")).current_reel === "r3") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const bob = await call(srv.chorus.app, "GET", "/api/v1/users/bob/presence");
    assert.equal(bob.body.status, "online");
    assert.equal(bob.body.current_reel, "r3");
    assert.equal(bob.body.sockets, 1);

    await disconnect(b);
    await until(() => pa.list().length === 1, "bob's leave diff");
    assert.deepEqual(pa.list((k: string) => k), ["alice"]);
    const after = await call(srv.chorus.app, "GET", "/api/v1/reels/r3/presence");
    assert.deepEqual(after.body.users.map((u: any) => u.user_id), ["alice"]);
    const gone = await call(srv.chorus.app, "GET", "/api/v1/users/bob/presence");
    assert.equal(gone.body.sockets, 0);
  } finally {
    await disconnect(a);
    await srv.close();
  }
});

Deno.test("[ws] joining reel:<id> with last_seq replays the retained updates, or recovered:false", async () => {
  const srv = await serve({ config: { deltaThreshold: 3 } });
  const socket = connect(srv.url, { user_id: "r" });
  try {
    for (let i = 1; i <= 5; i++) {
      await srv.chorus.reels.publish("r4", { update_data: { i } });
    }
    const seen: number[] = [];
    const ch = socket.channel("reel:r4", { last_seq: 3 });
    ch.on("reel_update", (p: any) => seen.push(p.seq));
    const reply = await join(ch);
    assert.equal(reply.recovered, true);
    await srv.chorus.reels.publish("r4", { update_data: { i: 6 } });
    await until(() => seen.length === 3, "replay then live");
    assert.deepEqual(seen, [4, 5, 6]);
    // A client whose last_seq is older than the retained log is told so.
    const s2 = connect(srv.url, { user_id: "r2" });
    try {
      const gone = await join(s2.channel("reel:r4", { last_seq: 0 }));
      assert.equal(gone.recovered, false);
    } finally {
      await disconnect(s2);
    }
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[ws] format=protobuf: reel_update arrives as a typed Envelope that round-trips", async () => {
  const srv = await serve();
  const ws = new WebSocket(`${srv.url}/websocket?vsn=2.0.0&format=protobuf&user_id=pb`);
  ws.binaryType = "arraybuffer";
  const frames: any[] = [];
  ws.onmessage = (e) => frames.push(decodeEnvelope(e.data));
  try {
    await new Promise((r) => (ws.onopen = r));
    ws.send(
      encodeEnvelope({ joinRef: "1", ref: "1", topic: "reel:r5", event: "phx_join", payload: {} }),
    );
    await until(() => frames.some((f) => f.ref === "1"), "join reply");
    const r = await call(srv.chorus.app, "POST", "/api/v1/reels/r5/updates", {
      update_data: { caption: "pb", n: [1, 2] },
      priority: "low",
    });
    await until(() => frames.some((f) => f.event === "reel_update"), "update");
    const update = frames.find((f) => f.event === "reel_update").payload as ReelUpdateJson;
    assert.equal(update.id, r.body.id);
    assert.equal(update.seq, 1);
    assert.deepEqual(update.update_data, { caption: "pb", n: [1, 2] });
    const listed = (await call(srv.chorus.app, "GET", "/api/v1/reels/r5/updates")).body.updates[0];
    assert.deepEqual(update, listed);
    // A typed interaction pushed from the socket.
    ws.send(
      encodeEnvelope({
        joinRef: "1",
        ref: "2",
        topic: "reel:r5",
        event: "interaction",
        payload: { id: "", reel_id: "", type: "like", user_id: "", timestamp: 0 },
      }),
    );
    await until(() => frames.some((f) => f.ref === "2"), "push reply");
    const reply = frames.find((f) => f.ref === "2").payload;
    assert.equal(reply.status, "ok");
    assert.equal(reply.response.user_id, "pb");
  } finally {
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    await closed;
    await srv.close();
  }
});
