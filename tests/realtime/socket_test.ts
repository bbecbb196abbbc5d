// deno-lint-ignore-file no-explicit-any
import assert from "node:assert/strict";
import { Presence } from "phoenix";
import { Chorus } from "../../mod.ts";
import { tempKvPath, until } from "../_helpers.ts";
import { kvLogKey } from "../../storage/keys.ts";
import { connect, disconnect, join, pushed, serve } from "./_socket_helpers.ts";

Deno.test("[ws] join ok, push with reply, change broadcast, leave", async () => {
  const srv = await serve();
  const socket = connect(srv.url, { user_id: "u1" });
  try {
    const channel = socket.channel("kv:greeting", {});
    const changes: any[] = [];
    channel.on("change", (c: any) => changes.push(c));
    const joined = await join(channel);
    assert.deepEqual(joined, { key: "greeting", version: 0 });
    const put = await pushed(channel, "put", { value: { text: "hi" } });
    assert.equal(put.status, "ok");
    assert.equal(put.response.version, 1);
    await srv.chorus.kv.put("greeting", "from the API");
    await until(() => changes.length === 2, "two changes");
    assert.deepEqual(changes.map((c) => [c.op, c.version, c.value]), [
      ["set", 1, { text: "hi" }],
      ["set", 2, "from the API"],
    ]);
    const unknown = await pushed(channel, "nope", {});
    assert.deepEqual(unknown, { status: "error", response: { reason: "unknown event" } });
    const left = new Promise((r) => channel.leave().receive("ok", r));
    await left;
    await until(() => srv.chorus.realtime.stats().topics === 0, "hub closed");
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[ws] join of an unknown topic is refused with unmatched topic", async () => {
  const srv = await serve();
  const socket = connect(srv.url);
  try {
    const channel = socket.channel("nowhere:1", {});
    await assert.rejects(join(channel), (e: any) => e.reason === "unmatched topic");
    assert.equal(channel.state, "errored");
    channel.leave();
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[ws] heartbeats get replies and the socket stays open", async () => {
  const srv = await serve();
  const socket = connect(srv.url, {}, { heartbeatIntervalMs: 30 });
  const replies: string[] = [];
  socket.onMessage((m: any) => {
    if (m.topic === "phoenix" && m.event === "phx_reply") replies.push(m.payload.status);
  });
  try {
    await until(() => replies.length >= 3, "three heartbeat replies");
    assert.ok(replies.every((s) => s === "ok"));
    assert.equal(socket.isConnected(), true);
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[ws] binary push gets a binary reply", async () => {
  const srv = await serve();
  const socket = connect(srv.url);
  try {
    const channel = socket.channel("kv:bin", {});
    await join(channel);
    const r = await pushed(channel, "ping", new Uint8Array([1, 2, 3]).buffer);
    assert.equal(r.status, "ok");
    assert.ok(r.response instanceof ArrayBuffer);
    assert.deepEqual([...new Uint8Array(r.response)], [1, 2, 3]);
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[ws] presence_state on join and presence_diff on join and leave, two clients", async () => {
  const srv = await serve();
  const a = connect(srv.url, { user_id: "alice" });
  const b = connect(srv.url, { user_id: "bob" });
  try {
    const ca = a.channel("kv:room", { status: "online" });
    const pa = new Presence(ca);
    const left: string[] = [];
    pa.onLeave((key: string, current: any) => {
      if (!current.metas.length) left.push(key);
    });
    await join(ca);
    await until(() => pa.list().length === 1, "alice sees herself");
    const meta = pa.list((_k: string, p: any) => p.metas[0])[0];
    assert.equal(meta.status, "online");
    assert.match(meta.phx_ref, /^[A-Za-z0-9_-]{16}$/);
    assert.equal(typeof meta.online_at, "number");

    const cb = b.channel("kv:room", { activity: "typing" });
    const pb = new Presence(cb);
    await join(cb);
    await until(() => pb.list().length === 2, "bob's state has both");
    await until(() => pa.list().length === 2, "alice got bob's join diff");
    const keys = pa.list((k: string) => k).sort();
    assert.deepEqual(keys, ["alice", "bob"]);

    await new Promise((r) => cb.leave().receive("ok", r));
    await until(() => left.includes("bob"), "bob's leave diff");
    assert.deepEqual(pa.list((k: string) => k), ["alice"]);
  } finally {
    await disconnect(a);
    await disconnect(b);
    await srv.close();
  }
});

Deno.test("[ws] the client reconnects after a 1001 restart and gets a fresh presence_state", async () => {
  const { path, cleanup } = await tempKvPath();
  let srv = await serve({ path });
  const port = srv.port;
  const socket = connect(srv.url, { user_id: "carol" });
  const closes: number[] = [];
  socket.onClose((e: any) => closes.push(e.code));
  try {
    const channel = socket.channel("kv:restart", {});
    const presence = new Presence(channel);
    let syncs = 0;
    presence.onSync(() => syncs++);
    await join(channel);
    await until(() => syncs >= 1 && presence.list().length === 1, "first sync");
    const firstJoinRef = channel.joinRef();
    await srv.close();
    srv = await serve({ path }, port);
    await until(() => closes.length >= 1, "close seen");
    assert.equal(closes[0], 1001);
    await until(
      () => channel.joinRef() !== firstJoinRef && channel.state === "joined",
      "rejoined",
    );
    const before = syncs;
    await until(() => syncs > before || presence.list().length === 1, "fresh presence_state");
    await until(() => presence.list().length === 1, "carol listed once");
    const metas = presence.list((_k: string, p: any) => p.metas)[0];
    assert.equal(metas.length, 1, "the old meta was removed on shutdown");
  } finally {
    await disconnect(socket);
    await srv.close();
    await cleanup();
  }
});

Deno.test("[ws] join with last_seq replays retained changes, then live ones; recovered false when gone", async () => {
  const srv = await serve();
  const socket = connect(srv.url);
  try {
    // A key's changes are logged while it is watched (here by an in-process watcher, as by a
    // client that was joined and dropped); writes to a key nobody watches are not replayable.
    const stop = await srv.chorus.kv.watch("hist", () => {});
    for (let i = 1; i <= 3; i++) await srv.chorus.kv.put("hist", i);
    stop();
    const channel = socket.channel("kv:hist", { last_seq: 1 });
    const seen: number[] = [];
    channel.on("change", (c: any) => seen.push(c.version));
    const reply = await join(channel);
    assert.equal(reply.recovered, true);
    await srv.chorus.kv.put("hist", 4);
    await until(() => seen.length === 3, "replay + live");
    assert.deepEqual(seen, [2, 3, 4]);

    // Simulate retention: the log no longer reaches back to version 2.
    await srv.chorus.store.kv.delete(kvLogKey("hist", 2));
    const other = socket.channel("kv:hist", { last_seq: 1 });
    const gone = await join(other);
    assert.equal(gone.recovered, false);
    assert.equal(gone.version, 4);

    for (let i = 1; i <= 2; i++) await srv.chorus.kv.put("unwatched", i);
    const never = await join(socket.channel("kv:unwatched", { last_seq: 0 }));
    assert.equal(never.recovered, false, "changes nobody watched were not kept");
    assert.equal(never.version, 2);
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[ws] two instances on one KV: same order of kv changes and each other's presence", async () => {
  const { path, cleanup } = await tempKvPath();
  const one = await serve({ path });
  const two = await serve({ path });
  const a = connect(one.url, { user_id: "a" });
  const b = connect(two.url, { user_id: "b" });
  try {
    const ca = a.channel("kv:shared", {});
    const cb = b.channel("kv:shared", {});
    const pa = new Presence(ca);
    const pb = new Presence(cb);
    const seenA: number[] = [];
    const seenB: number[] = [];
    ca.on("change", (c: any) => seenA.push(c.version));
    cb.on("change", (c: any) => seenB.push(c.version));
    await join(ca);
    await join(cb);
    await Promise.all([
      ...Array.from({ length: 5 }, (_, i) => pushed(ca, "put", { value: `a${i}` })),
      ...Array.from({ length: 5 }, (_, i) => pushed(cb, "put", { value: `b${i}` })),
    ]);
    await until(() => seenA.length === 10 && seenB.length === 10, "ten changes on each");
    assert.deepEqual(seenA, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.deepEqual(seenB, seenA);
    await until(() => pa.list().length === 2 && pb.list().length === 2, "both present");
  } finally {
    await disconnect(a);
    await disconnect(b);
    await one.close();
    await two.close();
    await cleanup();
  }
});

Deno.test("[ws] presence of a dead instance vanishes within its TTL", async () => {
  const { path, cleanup } = await tempKvPath();
  const one = await serve({ path, realtime: { presenceTtlMs: 300 } });
  const ghost = await Chorus.open({ path, realtime: { presenceTtlMs: 300 } });
  const a = connect(one.url, { user_id: "a" });
  try {
    const ca = a.channel("kv:ghosts", {});
    const pa = new Presence(ca);
    await join(ca);
    await ghost.realtime.presence!.track("kv:ghosts", "ghost", {});
    await until(() => pa.list().length === 2, "ghost appears");
    await ghost.realtime.close({ untrack: false }); // a crash: nobody removes or refreshes it
    // How soon (the TTL and one sweep) is asserted on the injected clock in presence_test.ts.
    await until(() => pa.list().length === 1, "ghost vanishes");
    assert.deepEqual(pa.list((k: string) => k), ["a"]);
  } finally {
    await disconnect(a);
    await ghost.close();
    await one.close();
    await cleanup();
  }
});

Deno.test("[ws] subprotocol phoenix is echoed and format=protobuf speaks Envelopes", async () => {
  const { encodeEnvelope, decodeEnvelope } = await import("../../proto/codec.ts");
  const srv = await serve();
  const ws = new WebSocket(`${srv.url}/websocket?vsn=2.0.0&format=protobuf`, ["phoenix"]);
  ws.binaryType = "arraybuffer";
  const frames: any[] = [];
  ws.onmessage = (e) => frames.push(decodeEnvelope(e.data));
  try {
    await new Promise((r) => (ws.onopen = r));
    assert.equal(ws.protocol, "phoenix");
    ws.send(
      encodeEnvelope({ joinRef: "1", ref: "1", topic: "kv:p", event: "phx_join", payload: {} }),
    );
    ws.send(
      encodeEnvelope({
        joinRef: null,
        ref: "2",
        topic: "phoenix",
        event: "heartbeat",
        payload: {},
      }),
    );
    // Presence frames may arrive in between: wait for both replies by ref.
    await until(
      () => frames.some((f) => f.ref === "1") && frames.some((f) => f.ref === "2"),
      "two replies",
    );
    const join = frames.find((f) => f.ref === "1");
    assert.deepEqual(join.payload, { status: "ok", response: { key: "p", version: 0 } });
    const hb = frames.find((f) => f.ref === "2");
    assert.deepEqual(hb.payload, { status: "ok", response: {} });
  } finally {
    const closed = new Promise((r) => (ws.onclose = r));
    ws.close();
    await closed;
    await srv.close();
  }
});

Deno.test("[ws] a plain GET is 400 and vsn 1.0.0 is 403", async () => {
  const srv = await serve();
  try {
    const base = `http://127.0.0.1:${srv.port}/socket/websocket`;
    const plain = await fetch(base);
    assert.equal(plain.status, 400);
    await plain.body?.cancel();
    const v1 = await srv.chorus.app.request("/socket/websocket?vsn=1.0.0", {
      headers: { upgrade: "websocket" },
    });
    assert.equal(v1.status, 403);
    await v1.body?.cancel();
  } finally {
    await srv.close();
  }
});

Deno.test("[ws] context topic: join with version gets the sync result, then delta events; update replies version", async () => {
  const srv = await serve();
  const socket = connect(srv.url);
  try {
    const channel = socket.channel("context:doc", {});
    const deltas: any[] = [];
    channel.on("delta", (d: any) => deltas.push(d));
    const first = await join(channel);
    assert.deepEqual(first, { type: "full_context", version: 0, context: null });
    const created = await pushed(channel, "update", { title: "a" });
    assert.equal(created.status, "ok");
    const updated = await pushed(channel, "update", { title: "b" });
    assert.equal(updated.response.version, created.response.version + 1);
    await until(() => deltas.length >= 2, "delta events");
    assert.equal(deltas.at(-1).version, updated.response.version);
    const again = socket.channel("context:doc", { version: updated.response.version });
    const synced = await join(again);
    assert.equal(synced.type, "no_change");
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[ws] a push with a non-object payload gets an error reply; the socket and its channels stay", async () => {
  const srv = await serve();
  const socket = connect(srv.url);
  let opens = 0;
  socket.onOpen(() => opens++);
  try {
    const doc = socket.channel("context:bad", {});
    const other = socket.channel("kv:other", {});
    await join(doc);
    await join(other);
    const bad = await pushed(doc, "update", [1]);
    assert.deepEqual(bad, { status: "error", response: { reason: "invalid payload" } });
    const scalar = await pushed(doc, "update", 42);
    assert.deepEqual(scalar, { status: "error", response: { reason: "invalid payload" } });
    const good = await pushed(doc, "update", { title: "ok" });
    assert.equal(good.status, "ok");
    const put = await pushed(other, "put", { value: 1 });
    assert.equal(put.status, "ok");
    assert.equal(socket.isConnected(), true);
    assert.equal(opens, 1, "no reconnect");
    assert.equal(doc.state, "joined");
    assert.equal(other.state, "joined");
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});

Deno.test("[ws] a join during a burst of writes gets only changes after its reply's version", async () => {
  const srv = await serve();
  const socket = connect(srv.url);
  try {
    const watcher = await srv.chorus.kv.watch("burst", () => {}); // the topic feed is live
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing && i < 2000; i++) {
        await Promise.all(
          Array.from({ length: 8 }, (_, j) => srv.chorus.kv.put("burst", i * 8 + j)),
        );
      }
    })();
    await new Promise((r) => setTimeout(r, 20));
    const channel = socket.channel("kv:burst", {});
    const seen: number[] = [];
    channel.on("change", (c: any) => seen.push(c.version));
    const reply = await join(channel);
    await until(() => seen.length >= 20, "live changes");
    writing = false;
    await writer;
    watcher();
    assert.equal(seen[0], reply.version + 1, `first change after the reply's v${reply.version}`);
    seen.forEach((v, i) => assert.equal(v, seen[0] + i, "no gaps, no repeats"));
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});
