import assert from "node:assert/strict";
import { openTest } from "../_helpers.ts";
import type { SessionSink } from "../../realtime/socket.ts";
import { encodeText } from "../../realtime/phoenix.ts";

class FakeSink implements SessionSink {
  sent: (string | Uint8Array)[] = [];
  closed: { code: number; reason: string } | null = null;
  bufferedAmount = 0;
  send(data: string | Uint8Array): void {
    this.sent.push(data);
  }
  close(code: number, reason: string): void {
    this.closed = { code, reason };
  }
  frames(): unknown[][] {
    return this.sent.filter((d) => typeof d === "string").map((d) => JSON.parse(d as string));
  }
}

async function session(realtime = {}) {
  const { chorus, clock } = await openTest();
  // openTest has no realtime options: rebuild with them where needed.
  const sink = new FakeSink();
  if (Object.keys(realtime).length) {
    await chorus.close();
    const { Chorus } = await import("../../mod.ts");
    const c = await Chorus.open({ path: ":memory:", clock, realtime });
    return { chorus: c, clock, sink, s: c.realtime.attach(sink, { user_id: "u" }) };
  }
  return { chorus, clock, sink, s: chorus.realtime.attach(sink, { user_id: "u" }) };
}

Deno.test("[ws] bad frames close with 1007, oversized ones with 1009", async () => {
  for (
    const [input, code] of [
      ["not json", 1007],
      ['["1","1","kv:a","phx_join"]', 1007],
      ['{"topic":"kv:a"}', 1007],
      [new Uint8Array([9, 9, 9]).buffer, 1007],
      ["x".repeat(2000), 1009],
    ] as const
  ) {
    const { chorus, sink, s } = await session({ maxFrameBytes: 1000 });
    s.receive(input as string | ArrayBuffer);
    assert.equal(sink.closed?.code, code, String(input).slice(0, 30));
    assert.equal(chorus.realtime.stats().sockets, 0);
    await chorus.close();
  }
});

Deno.test("[ws] a frame with a non-object payload or a mistyped field gets an error reply; the socket stays", async () => {
  const { chorus, sink, s } = await session();
  try {
    s.receive(
      encodeText({ joinRef: "1", ref: "1", topic: "context:x", event: "phx_join", payload: {} }),
    );
    await s.settled();
    sink.sent = [];
    s.receive('["1","2","context:x","update",[1]]');
    s.receive('["1","3","context:x","update","text"]');
    s.receive('[1,"4","context:x","update",{}]');
    s.receive('["1","5","context:x",7,{}]');
    s.receive('[null,"6","phoenix","heartbeat",null]');
    s.receive('["1",null,"context:x","update",[1]]'); // no ref to answer: dropped
    s.receive('["1","7","context:x","update",{"title":"still here"}]');
    await s.settled();
    const error = (reason: string) => ({ status: "error", response: { reason } });
    const frames = sink.frames().filter((f) => f[3] === "phx_reply");
    assert.deepEqual(frames.slice(0, 1), [[
      null,
      "6",
      "phoenix",
      "phx_reply",
      error("invalid payload"),
    ]]);
    assert.deepEqual(frames.slice(1, 5), [
      ["1", "2", "context:x", "phx_reply", error("invalid payload")],
      ["1", "3", "context:x", "phx_reply", error("invalid payload")],
      [null, "4", "context:x", "phx_reply", error("invalid frame")],
      ["1", "5", "context:x", "phx_reply", error("invalid frame")],
    ]);
    const last = frames[5];
    assert.deepEqual([last[1], (last[4] as { status: string }).status], ["7", "ok"]);
    assert.equal(frames.length, 6);
    assert.equal(sink.closed, null);
    assert.equal(s.ended, false);
    assert.equal(s.channels, 1);
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] push to an unjoined topic and unknown phoenix events get error replies", async () => {
  const { chorus, sink, s } = await session();
  try {
    s.receive(encodeText({ joinRef: null, ref: "5", topic: "kv:x", event: "put", payload: {} }));
    s.receive(
      encodeText({ joinRef: null, ref: "6", topic: "phoenix", event: "what", payload: {} }),
    );
    s.receive(
      encodeText({ joinRef: "7", ref: "7", topic: "kv:x", event: "phx_leave", payload: {} }),
    );
    await s.settled();
    assert.deepEqual(sink.frames(), [
      [null, "6", "phoenix", "phx_reply", {
        status: "error",
        response: { reason: "unmatched topic" },
      }],
      [null, "5", "kv:x", "phx_reply", {
        status: "error",
        response: { reason: "unmatched topic" },
      }],
      ["7", "7", "kv:x", "phx_reply", { status: "ok", response: {} }],
    ]);
    assert.equal(sink.closed, null);
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] a duplicate join closes the old channel and joins again", async () => {
  const { chorus, sink, s } = await session();
  try {
    s.receive(
      encodeText({ joinRef: "1", ref: "1", topic: "kv:d", event: "phx_join", payload: {} }),
    );
    s.receive(
      encodeText({ joinRef: "3", ref: "3", topic: "kv:d", event: "phx_join", payload: {} }),
    );
    await s.settled();
    const events = sink.frames().map((f) => [f[0], f[3]]);
    assert.deepEqual(events.filter(([, e]) => e !== "presence_state" && e !== "presence_diff"), [
      ["1", "phx_reply"],
      ["1", "phx_close"],
      ["3", "phx_reply"],
    ]);
    assert.equal(s.channels, 1);
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] an idle socket is closed with 1001 after the idle timeout", async () => {
  const { chorus, clock, sink } = await session({ idleTimeoutMs: 60_000 });
  try {
    clock.advance(59_000);
    assert.equal(sink.closed, null);
    clock.advance(16_000);
    assert.equal((sink.closed as { code: number } | null)?.code, 1001);
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] a slow consumer drops low frames first and is closed with 1013", async () => {
  const { chorus, clock, sink, s } = await session({
    outbox: { maxBytes: 100, overLimitMs: 1000, hardLimitBytes: 100_000 },
  });
  try {
    sink.bufferedAmount = 1000; // the transport is backed up
    s.deliver("x".repeat(50), "low");
    assert.equal(s.outbox.dropped, 1, "low frame dropped");
    s.deliver("y".repeat(50), "normal");
    assert.equal(s.outbox.queuedFrames, 1, "normal frame waits");
    assert.equal(sink.closed, null);
    clock.advance(1000);
    s.deliver("z", "normal");
    assert.equal((sink.closed as { code: number } | null)?.code, 1013);
    assert.ok(chorus.realtime.stats().messagesDropped >= 1);
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] frames that wait behind a backed-up socket go out on the flush timer", async () => {
  const { chorus, clock, sink, s } = await session({
    outbox: { maxBytes: 100, overLimitMs: 1000, hardLimitBytes: 100_000 },
  });
  try {
    sink.bufferedAmount = 1000; // the transport is backed up
    s.deliver("a", "normal");
    s.deliver("b", "high");
    assert.equal(s.outbox.queuedFrames, 2);
    assert.deepEqual(sink.sent, []);
    sink.bufferedAmount = 0; // it drained; no frame comes to trigger a write
    clock.advance(50);
    assert.deepEqual(sink.sent, ["a", "b"]);
    assert.equal(s.outbox.queuedFrames, 0);
    s.deliver("c", "low"); // straight out again
    assert.deepEqual(sink.sent, ["a", "b", "c"]);
    assert.equal(sink.closed, null);
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] only the bare system topic is served; system:<x> and over-long topics are unmatched", async () => {
  const { chorus, clock, sink, s } = await session();
  try {
    const joinFrame = (ref: string, topic: string) =>
      encodeText({ joinRef: ref, ref, topic, event: "phx_join", payload: {} });
    s.receive(joinFrame("1", "system"));
    s.receive(joinFrame("k", `kv:${"k".repeat(1024)}`)); // the longest kv key still joins
    await s.settled();
    const timers = clock.pending;
    const refused = [
      ...Array.from({ length: 50 }, (_, i) => `system:${i}`),
      `system:${"x".repeat(5000)}`,
      "kv",
      `kv:${"k".repeat(1025)}`,
      `context:${"é".repeat(600)}`, // 1200 bytes of UTF-8
    ];
    refused.forEach((topic, i) => s.receive(joinFrame(`r${i}`, topic)));
    await s.settled();
    const replies = sink.frames().filter((f) => f[3] === "phx_reply");
    assert.deepEqual(replies[0].slice(0, 3), ["1", "1", "system"]);
    assert.equal((replies[0][4] as { status: string }).status, "ok");
    assert.deepEqual(replies[1].slice(0, 2), ["k", "k"]);
    assert.equal((replies[1][4] as { status: string }).status, "ok");
    refused.forEach((topic, i) => {
      assert.deepEqual(replies[i + 2], [null, `r${i}`, topic, "phx_reply", {
        status: "error",
        response: { reason: "unmatched topic" },
      }], topic.slice(0, 20));
    });
    assert.equal(replies.length, refused.length + 2);
    assert.equal(s.channels, 2);
    assert.equal(chorus.realtime.stats().topics, 2);
    assert.equal(clock.pending, timers, "no system timer per refused topic");
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] context, reel and user topics refuse the ids . and ..", async () => {
  const { chorus, sink, s } = await session();
  try {
    const topics = ["context:.", "context:..", "reel:.", "reel:..", "user:.", "user:.."];
    topics.forEach((topic, i) =>
      s.receive(encodeText({ joinRef: `${i}`, ref: `${i}`, topic, event: "phx_join", payload: {} }))
    );
    await s.settled();
    const replies = sink.frames().filter((f) => f[3] === "phx_reply");
    assert.deepEqual(
      replies.map((
        f,
      ) => [
        f[2],
        (f[4] as { status: string; response: { reason: string } }).status,
        (f[4] as { response: { reason: string } }).response.reason,
      ]),
      topics.map((topic) => [topic, "error", "invalid_request"]),
    );
    assert.equal(s.channels, 0);
    assert.equal(chorus.realtime.stats().topics, 0);
  } finally {
    await chorus.close();
  }
});
