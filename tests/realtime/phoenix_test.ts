import assert from "node:assert/strict";
import { Socket } from "phoenix";
import {
  broadcast,
  CLOSE_GOING_AWAY,
  CLOSE_INTERNAL_ERROR,
  CLOSE_INVALID_PAYLOAD,
  CLOSE_MESSAGE_TOO_BIG,
  CLOSE_NORMAL,
  CLOSE_POLICY_VIOLATION,
  CLOSE_SERVICE_RESTART,
  CLOSE_TRY_AGAIN_LATER,
  decodeBinary,
  decodeText,
  encodeBinaryBroadcast,
  encodeBinaryPush,
  encodeBinaryReply,
  encodeText,
  type Frame,
  InvalidFrameError,
  push,
  reply,
} from "../../realtime/phoenix.ts";

const utf8 = new TextEncoder();

/** The bytes of a binary frame: numbers as bytes, strings as their UTF-8. */
function bytesOf(...parts: (number | string | number[])[]): ArrayBuffer {
  const out: number[] = [];
  for (const part of parts) {
    if (typeof part === "number") out.push(part);
    else if (typeof part === "string") out.push(...utf8.encode(part));
    else out.push(...part);
  }
  return new Uint8Array(out).buffer;
}

function assertPayloadBytes(frame: Frame, expected: number[]): void {
  assert.ok(frame.payload instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(frame.payload)], expected);
}

Deno.test("decodeText reads a join frame", () => {
  const frame = decodeText('["3","3","room:1","phx_join",{"token":"abc"}]');
  assert.deepEqual(frame, {
    joinRef: "3",
    ref: "3",
    topic: "room:1",
    event: "phx_join",
    payload: { token: "abc" },
  });
});

Deno.test("decodeText keeps null refs of a heartbeat", () => {
  const frame = decodeText('[null,"8","phoenix","heartbeat",{}]');
  assert.deepEqual(frame, {
    joinRef: null,
    ref: "8",
    topic: "phoenix",
    event: "heartbeat",
    payload: {},
  });
});

Deno.test("encodeText and decodeText round trip", () => {
  const frames: Frame[] = [
    reply("3", "3", "reel:1", "ok", { recovered: true }),
    push("3", "reel:1", "reel_update", { seq: 1, update_data: { a: [1, { b: null }] } }),
    broadcast("reel:1", "presence_diff", { joins: {}, leaves: {} }),
    { joinRef: null, ref: "9", topic: "phoenix", event: "heartbeat", payload: {} },
    { joinRef: "1", ref: "2", topic: "t:ü😀", event: "é", payload: JSON.parse('{"__proto__":1}') },
  ];
  for (const frame of frames) {
    assert.deepEqual(decodeText(encodeText(frame)), frame);
  }
});

Deno.test("frame helpers follow the server frame shapes", () => {
  assert.equal(
    encodeText(reply("3", "4", "room:1", "error", { reason: "unauthorized" })),
    '["3","4","room:1","phx_reply",{"status":"error","response":{"reason":"unauthorized"}}]',
  );
  assert.equal(encodeText(push("3", "room:1", "ev", { a: 1 })), '["3",null,"room:1","ev",{"a":1}]');
  assert.equal(encodeText(broadcast("room:1", "ev", {})), '[null,null,"room:1","ev",{}]');
});

Deno.test("decodeText rejects malformed frames with SyntaxError", () => {
  const bad = [
    "",
    "not json",
    '["1","1","t","e",{}',
    "{}",
    "null",
    '"frame"',
    "[]",
    '["1","1","t","e"]',
    '["1","1","t","e",{},"extra"]',
    '[1,"1","t","e",{}]',
    '["1",2,"t","e",{}]',
    '["1","1",null,"e",{}]',
    '["1","1","t",7,{}]',
    '["1","1","t","e",null]',
    '["1","1","t","e",[]]',
    '["1","1","t","e","payload"]',
    '["1","1","t","e",3]',
    '[{},"1","t","e",{}]',
  ];
  for (const text of bad) {
    assert.throws(() => decodeText(text), SyntaxError, text);
  }
});

Deno.test("decodeText tells a mistyped 5-element frame (answerable) from an unparseable one", () => {
  const caught = (text: string) => {
    try {
      decodeText(text);
    } catch (e) {
      return e;
    }
    assert.fail(text);
  };
  const bad = caught('["1","2","context:x","update",[1]]');
  assert.ok(bad instanceof InvalidFrameError);
  assert.deepEqual([bad.reason, bad.reply], ["invalid payload", {
    joinRef: "1",
    ref: "2",
    topic: "context:x",
  }]);
  const typed = caught('[{},"2","t",7,{}]');
  assert.ok(typed instanceof InvalidFrameError);
  assert.deepEqual([typed.reason, typed.reply], ["invalid frame", {
    joinRef: null,
    ref: "2",
    topic: "t",
  }]);
  const noRef = caught('["1",null,"t","e",[]]');
  assert.ok(noRef instanceof InvalidFrameError);
  assert.equal(noRef.reply, null);
  for (const text of ["not json", "{}", '["1","1","t","e"]']) {
    const e = caught(text);
    assert.ok(e instanceof SyntaxError && !(e instanceof InvalidFrameError), text);
  }
});

Deno.test("decodeText enforces maxBytes in UTF-8 bytes with RangeError", () => {
  const frame = '["1","1","t","e",{"s":"ééé"}]'; // 29 characters, 32 bytes
  assert.equal(utf8.encode(frame).length, 32);
  assert.deepEqual(decodeText(frame, 32).payload, { s: "ééé" });
  assert.throws(() => decodeText(frame, 31), RangeError);
  assert.throws(() => decodeText(frame, 10), RangeError);
  assert.ok(decodeText(frame, 1000));
  const astral = '["1","1","t","e",{"s":"😀"}]'; // a surrogate pair is 4 bytes
  assert.equal(utf8.encode(astral).length, 30);
  assert.ok(decodeText(astral, 30));
  assert.throws(() => decodeText(astral, 29), RangeError);
});

Deno.test("decodeBinary reads the PHOENIX.md push example", () => {
  const frame = decodeBinary(bytesOf(0, 1, 2, 6, 3, "3", "10", "room:1", "bin", [1, 2, 3]));
  assert.equal(frame.joinRef, "3");
  assert.equal(frame.ref, "10");
  assert.equal(frame.topic, "room:1");
  assert.equal(frame.event, "bin");
  assertPayloadBytes(frame, [1, 2, 3]);
});

Deno.test("decodeBinary reads empty refs as null, an empty payload and UTF-8 fields", () => {
  const frame = decodeBinary(bytesOf(0, 0, 0, 7, 2, "reel:ü", "ev"));
  assert.equal(frame.joinRef, null);
  assert.equal(frame.ref, null);
  assert.equal(frame.topic, "reel:ü");
  assert.equal(frame.event, "ev");
  assertPayloadBytes(frame, []);
});

Deno.test("decodeBinary copies the payload out of the frame", () => {
  const buf = bytesOf(0, 1, 1, 1, 1, "a", "b", "c", "d", [9, 9]);
  const frame = decodeBinary(buf);
  new Uint8Array(buf).fill(0);
  assertPayloadBytes(frame, [9, 9]);
});

Deno.test("decodeBinary rejects malformed frames with SyntaxError", () => {
  const bad: [string, ArrayBuffer][] = [
    ["empty", bytesOf()],
    ["kind only", bytesOf(0)],
    ["truncated header", bytesOf(0, 1, 1, 1)],
    ["kind reply", bytesOf(1, 1, 1, 1, 1, "a", "b", "c", "d")],
    ["kind broadcast", bytesOf(2, 1, 1, "c", "d")],
    ["kind 7", bytesOf(7, 1, 1, 1, 1, "a", "b", "c", "d")],
    ["lengths past the end", bytesOf(0, 1, 2, 6, 3, "3", "10", "room:1", "bi")],
    ["first length past the end", bytesOf(0, 255, 0, 0, 0, "abc")],
    ["invalid UTF-8", bytesOf(0, 1, 1, 1, 1, [0xff], "b", "c", "d")],
  ];
  for (const [name, buf] of bad) {
    assert.throws(() => decodeBinary(buf), SyntaxError, name);
  }
  assert.throws(() => decodeBinary("text" as unknown as ArrayBuffer), SyntaxError);
});

Deno.test("decodeBinary enforces maxBytes with RangeError", () => {
  const buf = bytesOf(0, 1, 1, 1, 1, "a", "b", "c", "d", [1, 2, 3]);
  assert.ok(decodeBinary(buf, buf.byteLength));
  assert.throws(() => decodeBinary(buf, buf.byteLength - 1), RangeError);
});

Deno.test("encodeBinaryPush writes kind 0 with three lengths and no ref", () => {
  const out = encodeBinaryPush("3", "room:1", "bin", new Uint8Array([1, 2, 3]));
  assert.deepEqual([...out], [
    ...new Uint8Array(bytesOf(0, 1, 6, 3, "3", "room:1", "bin", [1, 2, 3])),
  ]);
  const noJoin = encodeBinaryPush(null, "t", "e", new Uint8Array([4]).buffer);
  assert.deepEqual([...noJoin], [0, 0, 1, 1, 116, 101, 4]);
});

Deno.test("encodeBinaryReply writes kind 1 with join_ref, ref, topic and status", () => {
  const out = encodeBinaryReply("3", "10", "room:1", "ok", new Uint8Array([7]));
  assert.deepEqual(
    [...out],
    [...new Uint8Array(bytesOf(1, 1, 2, 6, 2, "3", "10", "room:1", "ok", [7]))],
  );
});

Deno.test("encodeBinaryBroadcast writes kind 2 with topic and event", () => {
  const out = encodeBinaryBroadcast("room:1", "bin", new Uint8Array([1, 2]));
  assert.deepEqual([...out], [...new Uint8Array(bytesOf(2, 6, 3, "room:1", "bin", [1, 2]))]);
  assert.equal(out.byteOffset, 0);
  assert.equal(out.buffer.byteLength, out.length);
});

Deno.test("binary encoders limit each field to 255 UTF-8 bytes with RangeError", () => {
  const max = "a".repeat(255);
  assert.equal(encodeBinaryBroadcast(max, "e", new Uint8Array()).length, 3 + 255 + 1);
  assert.throws(() => encodeBinaryBroadcast("a".repeat(256), "e", new Uint8Array()), RangeError);
  assert.throws(() => encodeBinaryPush(null, "t", "é".repeat(128), new Uint8Array()), RangeError);
  assert.throws(
    () => encodeBinaryReply("1", "x".repeat(300), "t", "ok", new Uint8Array()),
    RangeError,
  );
  assert.throws(
    () => encodeBinaryReply("1", "1", "t", "s".repeat(256), new Uint8Array()),
    RangeError,
  );
});

Deno.test("encodeText refuses a binary payload", () => {
  assert.throws(() => encodeText(push("1", "t", "e", new ArrayBuffer(1))), TypeError);
});

Deno.test("close codes match DESIGN.md point 8", () => {
  assert.deepEqual(
    [
      CLOSE_NORMAL,
      CLOSE_GOING_AWAY,
      CLOSE_INVALID_PAYLOAD,
      CLOSE_POLICY_VIOLATION,
      CLOSE_MESSAGE_TOO_BIG,
      CLOSE_INTERNAL_ERROR,
      CLOSE_SERVICE_RESTART,
      CLOSE_TRY_AGAIN_LATER,
    ],
    [1000, 1001, 1007, 1008, 1009, 1011, 1012, 1013],
  );
});

/** A transport for the real client that records what it sends instead of opening a socket. */
class FakeTransport {
  static last: FakeTransport | null = null;
  readyState = 0;
  binaryType = "blob";
  bufferedAmount = 0;
  sent: (string | ArrayBuffer)[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string | ArrayBuffer }) => void) | null = null;
  onclose: ((event: { code: number; reason: string; wasClean: boolean }) => void) | null = null;
  onerror: ((error: unknown) => void) | null = null;

  constructor(readonly url: string) {
    FakeTransport.last = this;
  }

  open(): void {
    this.readyState = 1;
    this.onopen?.();
  }

  send(data: string | ArrayBuffer): void {
    this.sent.push(data);
  }

  receive(data: string): void {
    this.onmessage?.({ data });
  }

  close(code = 1000, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: true });
  }
}

Deno.test("frames from the real phoenix client decode", () => {
  const socket = new Socket("ws://127.0.0.1:1/socket", {
    transport: FakeTransport,
    heartbeatIntervalMs: 60_000,
  });
  socket.connect();
  const transport = FakeTransport.last!;
  assert.match(transport.url, /\/socket\/websocket\?vsn=2\.0\.0$/);
  transport.open();

  const channel = socket.channel("room:1", { token: "abc" });
  channel.join();
  const join = decodeText(transport.sent.at(-1) as string);
  assert.equal(join.event, "phx_join");
  assert.equal(join.topic, "room:1");
  assert.equal(join.joinRef, join.ref);
  assert.deepEqual(join.payload, { token: "abc" });
  transport.receive(encodeText(reply(join.joinRef, join.ref, "room:1", "ok", {})));

  channel.push("bin", new Uint8Array([1, 2, 3]).buffer);
  const sent = transport.sent.at(-1);
  assert.ok(sent instanceof ArrayBuffer);
  const frame = decodeBinary(sent);
  assert.equal(frame.joinRef, join.joinRef);
  assert.equal(typeof frame.ref, "string");
  assert.notEqual(frame.ref, join.ref);
  assert.equal(frame.topic, "room:1");
  assert.equal(frame.event, "bin");
  assertPayloadBytes(frame, [1, 2, 3]);

  channel.push("text", { n: 1 });
  const text = decodeText(transport.sent.at(-1) as string);
  assert.deepEqual([text.joinRef, text.event, text.payload], [join.joinRef, "text", { n: 1 }]);

  // The pushes above await replies; answer them so that no push timer outlives the test.
  for (const ref of [frame.ref, text.ref]) {
    transport.receive(encodeText(reply(join.joinRef, ref, "room:1", "ok", {})));
  }
  channel.leave();
  socket.disconnect();
});
