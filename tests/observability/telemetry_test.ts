/**
 * Every documented `node:diagnostics_channel` event fires with its documented fields: kv reads
 * and writes, group commits, actor start / failed start / eviction, sockets (connect, join,
 * leave, drop), presence, cleanup, backup and the periodic status.
 * @module
 */
import assert from "node:assert/strict";
import diagnostics from "node:diagnostics_channel";
import {
  Chorus,
  createBackup,
  restoreBackup,
  TELEMETRY_CHANNELS,
  verifyBackup,
} from "../../mod.ts";
import { ManualClock } from "../../clock.ts";
import { until } from "../_helpers.ts";

type Channel = keyof typeof TELEMETRY_CHANNELS;

/** The documented fields of each event (optional ones in brackets are checked apart). */
const FIELDS: Record<Channel, string[]> = {
  kvRead: ["consistency", "durationMs", "keys", "ok", "op"],
  kvWrite: ["bytes", "checks", "durationMs", "intents", "mutations", "ok"],
  commit: [
    "bytes",
    "commits",
    "conflicts",
    "durationMs",
    "intents",
    "mutations",
    "queued",
    "retries",
  ],
  actorStart: ["durationMs", "id", "kind"],
  actorStartFailed: ["durationMs", "error", "id", "kind"],
  actorEvict: ["id", "idleMs", "kind"],
  socketConnect: ["format", "socketId", "userId"],
  socketJoin: ["socketId", "topic"],
  socketLeave: ["socketId", "topic"],
  socketDrop: ["code", "durationMs", "reason", "socketId"],
  presence: ["action", "durationMs", "key", "topic"],
  cleanup: ["contexts", "deltas", "durationMs", "limit", "scanned"],
  backup: ["action", "bytes", "durationMs", "entries", "ok"],
  status: ["at", "figures", "instance"],
};

/** Subscribes to every channel; `events[name]` collects what each received. */
function record() {
  const events = {} as Record<Channel, Record<string, unknown>[]>;
  const subscriptions: [string, (m: unknown) => void][] = [];
  for (const [name, channel] of Object.entries(TELEMETRY_CHANNELS) as [Channel, string][]) {
    events[name] = [];
    const fn = (m: unknown) => events[name].push(m as Record<string, unknown>);
    diagnostics.subscribe(channel, fn);
    subscriptions.push([channel, fn]);
  }
  return {
    events,
    stop: () => {
      for (const [channel, fn] of subscriptions) diagnostics.unsubscribe(channel, fn);
    },
  };
}

function assertFields(name: Channel, event: Record<string, unknown> | undefined): void {
  assert.ok(event, `${TELEMETRY_CHANNELS[name]} fired`);
  assert.deepEqual(Object.keys(event).sort(), FIELDS[name], TELEMETRY_CHANNELS[name]);
  for (const key of ["durationMs", "idleMs"]) {
    if (key in event) assert.ok(typeof event[key] === "number" && event[key] >= 0, key);
  }
}

Deno.test("[telemetry] the channel names are the documented ones", () => {
  assert.deepEqual(Object.values(TELEMETRY_CHANNELS).sort(), [
    "chorus:actor.evict",
    "chorus:actor.start",
    "chorus:actor.start_failed",
    "chorus:backup",
    "chorus:cleanup",
    "chorus:commit",
    "chorus:kv.read",
    "chorus:kv.write",
    "chorus:presence",
    "chorus:socket.connect",
    "chorus:socket.drop",
    "chorus:socket.join",
    "chorus:socket.leave",
    "chorus:status",
  ]);
});

Deno.test("[telemetry] kv, commit, actor, cleanup, backup and status events carry their fields", async () => {
  const clock = new ManualClock();
  const { events, stop } = record();
  const chorus = await Chorus.open({
    path: ":memory:",
    clock,
    statusIntervalMs: 1000,
    config: { actorIdleMs: 1000 },
  });
  try {
    await chorus.kv.put("a", { n: 1 });
    assert.deepEqual((await chorus.kv.get("a", { consistency: "strong" }))?.value, { n: 1 });

    const read = events.kvRead.find((e) => (e.keys as Deno.KvKey[])[0]?.[0] === "kv");
    assertFields("kvRead", read);
    assert.equal(read!.ok, true);
    assert.equal(read!.op, "get");
    assert.equal(read!.consistency, "strong");

    const write = events.kvWrite.at(-1);
    assertFields("kvWrite", write);
    assert.equal(write!.ok, true);
    assert.ok((write!.mutations as number) >= 1 && (write!.checks as number) >= 1);

    const commit = events.commit.at(-1);
    assertFields("commit", commit);
    assert.equal(commit!.commits, 1);
    assert.equal(commit!.retries, 0);
    assert.equal(commit!.conflicts, 0);

    const start = events.actorStart.find((e) => e.kind === "kv" && e.id === "a");
    assertFields("actorStart", start);

    // Evictable once its mailbox has finished the read's batch and the idle time has passed.
    await chorus.registry.peek("kv", "a")?.drained();
    clock.advance(1500);
    chorus.registry.sweep();
    assertFields("actorEvict", events.actorEvict.find((e) => e.kind === "kv" && e.id === "a"));

    await chorus.contexts.cleanup();
    const cleanup = events.cleanup.at(-1);
    assertFields("cleanup", cleanup);
    assert.equal(cleanup!.limit, 1000);

    const bytes = await createBackup(chorus.store, "test");
    assert.equal((await verifyBackup(bytes)).ok, true);
    await restoreBackup(chorus.store, bytes);
    assert.deepEqual(events.backup.map((e) => e.action), ["create", "verify", "restore"]);
    for (const e of events.backup) {
      assertFields("backup", e);
      assert.equal(e.ok, true);
      assert.equal(e.bytes, bytes.byteLength);
    }
    const bad = await verifyBackup(new Uint8Array([1, 2, 3]));
    assert.equal(bad.ok, false);
    const failed = events.backup.at(-1)!;
    assert.equal(failed.ok, false);
    assert.equal(typeof failed.reason, "string");

    const before = events.status.length; // the advance above passed one interval
    assert.equal(before, 1);
    clock.advance(1000);
    assert.equal(events.status.length, before + 1);
    const status = events.status.at(-1);
    assertFields("status", status);
    assert.equal(status!.instance, chorus.instanceId);
    assert.ok("kv" in (status!.figures as Record<string, unknown>));
  } finally {
    stop();
    await chorus.close();
  }
  assert.equal(clock.pending, 0, "no timer left behind");
});

Deno.test("[telemetry] a failed actor start is published with its error", async () => {
  const kv = await Deno.openKv(":memory:");
  const chorus = await Chorus.open({ kv, clock: new ManualClock(), scheduler: "off" });
  const { events, stop } = record();
  try {
    kv.close();
    await assert.rejects(chorus.kv.get("gone", { consistency: "strong" }));
    const failed = events.actorStartFailed.find((e) => e.id === "gone");
    assertFields("actorStartFailed", failed);
    assert.equal(failed!.kind, "kv");
    assert.ok(events.kvRead.some((e) => e.ok === false && "error" in e));
  } finally {
    stop();
    await chorus.close().catch(() => {});
  }
});

Deno.test("[telemetry] socket connect, join, presence, leave and drop carry their fields", async () => {
  const { events, stop } = record();
  const chorus = await Chorus.open({ path: ":memory:", realtime: { presenceDiffMs: 0 } });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, chorus.fetch);
  try {
    const ws = new WebSocket(
      `ws://127.0.0.1:${server.addr.port}/socket/websocket?vsn=2.0.0&user_id=ann`,
    );
    const frames: unknown[][] = [];
    ws.onmessage = (e) => frames.push(JSON.parse(e.data));
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    await until(() => events.socketConnect.length > 0, "connect");
    const connect = events.socketConnect[0];
    assertFields("socketConnect", connect);
    assert.equal(connect.userId, "ann");
    assert.equal(connect.format, "json");
    const socketId = connect.socketId;

    ws.send(JSON.stringify(["1", "1", "kv:room", "phx_join", {}]));
    await until(() => events.socketJoin.length > 0, "join");
    assertFields("socketJoin", events.socketJoin[0]);
    assert.deepEqual(events.socketJoin[0], { socketId, topic: "kv:room" });
    await until(() => events.presence.some((e) => e.action === "join"), "presence join");
    const joined = events.presence.find((e) => e.action === "join");
    assertFields("presence", joined);
    assert.equal(joined!.key, "ann");
    assert.equal(joined!.topic, "kv:room");

    ws.send(JSON.stringify(["1", "2", "kv:room", "phx_leave", {}]));
    await until(() => events.socketLeave.length > 0, "leave");
    assert.deepEqual(events.socketLeave[0], { socketId, topic: "kv:room" });
    await until(
      () => events.presence.some((e) => e.action === "leave"),
      "presence leave",
    );
    assertFields("presence", events.presence.find((e) => e.action === "leave"));

    const closed = new Promise((resolve) => ws.onclose = resolve);
    ws.close(1000, "bye");
    await closed;
    await until(() => events.socketDrop.length > 0, "drop");
    const drop = events.socketDrop[0];
    assertFields("socketDrop", drop);
    assert.equal(drop.socketId, socketId);
    assert.equal(drop.code, 1000);
  } finally {
    stop();
    await chorus.close();
    await server.shutdown();
  }
});

Deno.test("[telemetry] a socket the server closes is published as a drop too, once, with its code", async () => {
  const { events, stop } = record();
  const chorus = await Chorus.open({ path: ":memory:" });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, chorus.fetch);
  try {
    const ws = new WebSocket(
      `ws://127.0.0.1:${server.addr.port}/socket/websocket?vsn=2.0.0&user_id=bob`,
    );
    const closed = new Promise<CloseEvent>((resolve) => ws.onclose = resolve);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    await until(() => chorus.realtime.sessions().length === 1, "the session");
    const [session] = chorus.realtime.sessions();
    session.close(1013, "slow consumer");
    assert.equal((await closed).code, 1013);
    await until(() => events.socketDrop.length > 0, "drop");
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(events.socketDrop.length, 1);
    assert.equal(events.socketDrop[0].socketId, session.info.id);
    assert.equal(events.socketDrop[0].code, 1013);
    assert.equal(chorus.realtime.stats().sockets, 0, "the session ended with the close");
  } finally {
    stop();
    await chorus.close();
    await server.shutdown();
  }
});
