import assert from "node:assert/strict";
import protobuf from "protobufjs";
import {
  CHORUS_PROTO,
  type ContextDeltaJson,
  type ContextDeltaListJson,
  decodeContextDelta,
  decodeContextDeltaList,
  decodeEnvelope,
  decodeInteraction,
  decodeKvChange,
  decodePresenceUpdate,
  decodeReelState,
  decodeReelUpdate,
  encodeContextDelta,
  encodeContextDeltaList,
  encodeEnvelope,
  encodeInteraction,
  encodeKvChange,
  encodePresenceUpdate,
  encodeReelState,
  encodeReelUpdate,
  type InteractionJson,
  type KvChangeJson,
  type PresenceUpdateJson,
  type ReelStateJson,
  type ReelUpdateJson,
} from "../../proto/codec.ts";
import { renderSchemaModule } from "../../proto/gen_schema.ts";
import { broadcast, type Frame, push, reply } from "../../realtime/phoenix.ts";

const NOW = 1_760_000_000_000;
const root = protobuf.parse(CHORUS_PROTO, { keepCase: true }).root;
const Envelope = root.lookupType("chorus.v1.Envelope");

/** Which oneof case of an Envelope holds the payload. */
function payloadCase(bytes: Uint8Array): string | undefined {
  return (Envelope.decode(bytes) as unknown as { payload?: string }).payload;
}

Deno.test("CHORUS_PROTO equals proto/chorus.proto", async () => {
  const file = await Deno.readTextFile(new URL("../../proto/chorus.proto", import.meta.url));
  assert.equal(CHORUS_PROTO, file, "run: deno run --allow-read --allow-write proto/gen_schema.ts");
  const generated = await Deno.readTextFile(new URL("../../proto/schema.ts", import.meta.url));
  assert.equal(generated, renderSchemaModule(file));
});

Deno.test("ReelUpdate round trips with string-only update_data (the proto map)", () => {
  const update: ReelUpdateJson = {
    id: "01J9Z3K8Q5V6W7X8Y9Z0A1B2C3",
    reel_id: "reel-1",
    update_data: { title: "Hello", caption: "ünïcödé 😀", empty: "" },
    target_users: ["u1", "u2"],
    target_channel: "main",
    priority: "high",
    timestamp: NOW,
    seq: 42,
  };
  const bytes = encodeReelUpdate(update);
  assert.deepEqual(decodeReelUpdate(bytes), update);
  assert.deepEqual(decodeReelUpdate(bytes.buffer), update);
  const raw = root.lookupType("chorus.v1.ReelUpdate").decode(bytes) as unknown as {
    update_data_json: Uint8Array;
  };
  assert.equal(raw.update_data_json.length, 0);
});

Deno.test("ReelUpdate round trips nested update_data as JSON bytes", () => {
  const update: ReelUpdateJson = {
    id: "u1",
    reel_id: "r1",
    update_data: {
      text: "x",
      count: 3,
      ok: true,
      none: null,
      list: [1, "two", { three: [3.5, -1] }],
      nested: { deep: { deeper: { deepest: "yes" } } },
    },
    priority: "low",
    timestamp: NOW,
    seq: 1,
  };
  assert.deepEqual(decodeReelUpdate(encodeReelUpdate(update)), update);
});

Deno.test("ReelUpdate maps every priority and keeps absent optional fields absent", () => {
  for (const priority of ["low", "normal", "high", "critical"] as const) {
    const update: ReelUpdateJson = {
      id: "",
      reel_id: "r",
      update_data: {},
      priority,
      timestamp: 0,
      seq: 0,
    };
    const decoded = decodeReelUpdate(encodeReelUpdate(update));
    assert.deepEqual(decoded, update);
    assert.equal("target_users" in decoded, false);
    assert.equal("target_channel" in decoded, false);
  }
  // An empty target_channel is present; an empty target_users list decodes as absent.
  const update: ReelUpdateJson = {
    id: "i",
    reel_id: "r",
    update_data: { a: "b" },
    target_users: [],
    target_channel: "",
    priority: "normal",
    timestamp: NOW,
    seq: 7,
  };
  const { target_users: _, ...rest } = update;
  assert.deepEqual(decodeReelUpdate(encodeReelUpdate(update)), rest);
});

Deno.test("ReelUpdate reads an unset priority as low (Kronop's LOW = 0)", () => {
  const bytes = root.lookupType("chorus.v1.ReelUpdate").encode({ id: "x", seq: 3 }).finish();
  assert.deepEqual(decodeReelUpdate(bytes), {
    id: "x",
    reel_id: "",
    update_data: {},
    priority: "low",
    timestamp: 0,
    seq: 3,
  });
});

Deno.test("ReelUpdate writes Kronop's int32 reel_id when the id is a number, and reads it back", () => {
  const type = root.lookupType("chorus.v1.ReelUpdate");
  const base = { id: "i", update_data: {}, priority: "high", timestamp: 1, seq: 1 } as const;
  // deno-lint-ignore no-explicit-any
  const numeric = type.decode(encodeReelUpdate({ ...base, reel_id: "123" })) as any;
  assert.equal(numeric.reel_id_int32, 123);
  assert.equal(numeric.reel_id, "123");
  for (const reel_id of ["r1", "0123", "99999999999", "0"]) {
    // deno-lint-ignore no-explicit-any
    const other = type.decode(encodeReelUpdate({ ...base, reel_id })) as any;
    assert.equal(other.reel_id_int32, 0, reel_id);
    assert.equal(decodeReelUpdate(encodeReelUpdate({ ...base, reel_id })).reel_id, reel_id);
  }
  // Only Kronop's field: the id in decimal.
  const kronop = type.encode({ reel_id_int32: -7 }).finish();
  assert.equal(decodeReelUpdate(kronop).reel_id, "-7");
});

Deno.test("ReelUpdate keeps a __proto__ key of update_data as data", () => {
  const update = {
    id: "i",
    reel_id: "r",
    update_data: JSON.parse('{"__proto__":"x","a":"b"}'),
    priority: "normal",
    timestamp: NOW,
    seq: 1,
  } satisfies ReelUpdateJson;
  const decoded = decodeReelUpdate(encodeReelUpdate(update));
  assert.deepEqual(Object.keys(decoded.update_data), ["__proto__", "a"]);
  assert.equal(Object.getPrototypeOf(decoded.update_data), Object.prototype);
});

Deno.test("64-bit integers come back as numbers up to MAX_SAFE_INTEGER", () => {
  const state: ReelStateJson = {
    reel_id: "r",
    views: Number.MAX_SAFE_INTEGER,
    likes: 2 ** 32 + 1,
    comments: 0,
    shares: 1,
    updated_at: NOW,
    seq: 2 ** 40,
  };
  const decoded = decodeReelState(encodeReelState(state));
  assert.deepEqual(decoded, state);
  assert.equal(typeof decoded.views, "number");
  const interaction: InteractionJson = {
    id: "i",
    reel_id: "r",
    type: "like",
    user_id: "u",
    timestamp: -1,
  };
  assert.deepEqual(decodeInteraction(encodeInteraction(interaction)), interaction);
});

Deno.test("Integers past MAX_SAFE_INTEGER are a SyntaxError", () => {
  const bytes = root.lookupType("chorus.v1.ReelState").encode({
    reel_id: "r",
    views: "9007199254740993",
  })
    .finish();
  assert.throws(() => decodeReelState(bytes), SyntaxError);
});

Deno.test("Interaction round trips with and without text", () => {
  const like: InteractionJson = {
    id: "01J",
    reel_id: "r1",
    type: "like",
    user_id: "u1",
    timestamp: NOW,
  };
  const comment: InteractionJson = { ...like, type: "comment", text: "nice 👍" };
  const empty: InteractionJson = { ...like, type: "comment", text: "" };
  for (const value of [like, comment, empty]) {
    assert.deepEqual(decodeInteraction(encodeInteraction(value)), value);
  }
});

Deno.test("PresenceUpdate round trips", () => {
  const full: PresenceUpdateJson = {
    user_id: "u1",
    status: "online",
    current_reel: "r1",
    activity: "watching",
    last_seen: NOW,
  };
  const bare: PresenceUpdateJson = { user_id: "u2", status: "offline", last_seen: 0 };
  for (const value of [full, bare]) {
    assert.deepEqual(decodePresenceUpdate(encodePresenceUpdate(value)), value);
  }
});

Deno.test("ContextDelta round trips every sync result type", () => {
  const values: ContextDeltaJson[] = [
    { id: "c1", type: "full_context", version: 3, context: { a: { b: [1, 2] }, s: "x" } },
    {
      id: "c1",
      type: "delta",
      from_version: 0,
      version: 4,
      delta: { a: { b: { action: "modified", value: [1, 2, 3], old_value: [1, 2] } } },
    },
    {
      type: "delta",
      from_version: 4,
      version: 5,
      delta: [{ op: "replace", path: "/a", value: null }],
    },
    { type: "no_change", version: 5 },
    { type: "delta", from_version: 1, version: 2, delta: null },
  ];
  for (const value of values) {
    assert.deepEqual(decodeContextDelta(encodeContextDelta(value)), value);
  }
});

Deno.test("ContextDeltaList round trips the retained deltas, empty lists included", () => {
  const values: ContextDeltaListJson[] = [
    {
      id: "c1",
      version: 3,
      deltas: [
        { from_version: 1, version: 2, delta: { n: { action: "added", value: 1 } }, at: 1700 },
        { from_version: 2, version: 3, delta: { n: { action: "removed", old_value: 1 } }, at: 0 },
      ],
    },
    { id: "empty", version: 0, deltas: [] },
  ];
  for (const value of values) {
    assert.deepEqual(decodeContextDeltaList(encodeContextDeltaList(value)), value);
  }
  const bad = { id: "c", version: 1, deltas: [{ from_version: 0, version: 1, delta: {} }] };
  assert.throws(() => encodeContextDeltaList(bad as unknown as ContextDeltaListJson), TypeError);
  assert.throws(() => decodeContextDeltaList(new Uint8Array([0xff, 0xff])), SyntaxError);
});

Deno.test("KvChange round trips values of every JSON type and deletes", () => {
  const values: KvChangeJson[] = [
    { key: "a/b", op: "set", version: 1, value: { nested: [1, { x: true }] }, at: NOW },
    { key: "n", op: "set", version: 2, value: null, at: NOW },
    { key: "s", op: "set", version: 3, value: "text", at: NOW },
    { key: "z", op: "set", version: 4, value: 0, at: NOW },
    { key: "d", op: "delete", version: 5, at: NOW },
  ];
  for (const value of values) {
    assert.deepEqual(decodeKvChange(encodeKvChange(value)), value);
  }
});

Deno.test("Encoders reject values that do not fit the schema with TypeError", () => {
  const update: ReelUpdateJson = {
    id: "i",
    reel_id: "r",
    update_data: {},
    priority: "normal",
    timestamp: NOW,
    seq: 1,
  };
  const bad: unknown[] = [
    { ...update, id: 1 },
    { ...update, update_data: [] },
    { ...update, update_data: null },
    { ...update, priority: "urgent" },
    { ...update, seq: -1 },
    { ...update, seq: 1.5 },
    { ...update, timestamp: 2 ** 60 },
    { ...update, target_users: ["a", 1] },
    { ...update, target_channel: 5 },
    null,
    "update",
  ];
  for (const value of bad) {
    assert.throws(
      () => encodeReelUpdate(value as ReelUpdateJson),
      TypeError,
      JSON.stringify(value),
    );
  }
  assert.throws(
    () => encodeKvChange({ key: "k", op: "set", version: -2, at: 0 }),
    TypeError,
  );
});

Deno.test("Decoders turn garbage into SyntaxError", () => {
  const garbage = [
    new Uint8Array([0xff, 0xff, 0xff]),
    new Uint8Array([0x0a, 0x05, 0x61]), // a string longer than the buffer
    new Uint8Array([0x0f]), // wire type 7
    new Uint8Array([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
    new TextEncoder().encode("this is not protobuf at all"),
  ];
  const decoders = [
    decodeReelUpdate,
    decodeInteraction,
    decodeReelState,
    decodePresenceUpdate,
    decodeContextDelta,
    decodeKvChange,
    decodeEnvelope,
  ];
  for (const decode of decoders) {
    for (const bytes of garbage) {
      assert.throws(() => decode(bytes), SyntaxError, `${decode.name} ${bytes}`);
    }
    assert.throws(() => decode("bytes" as unknown as Uint8Array), SyntaxError);
  }
});

Deno.test("Decoders reject invalid JSON bytes with SyntaxError", () => {
  const KvChange = root.lookupType("chorus.v1.KvChange");
  const notJson = KvChange.encode({ key: "k", value_json: new TextEncoder().encode("{nope") })
    .finish();
  assert.throws(() => decodeKvChange(notJson), SyntaxError);
  const notUtf8 = KvChange.encode({ key: "k", value_json: new Uint8Array([0x22, 0xff, 0x22]) })
    .finish();
  assert.throws(() => decodeKvChange(notUtf8), SyntaxError);
  const ReelUpdate = root.lookupType("chorus.v1.ReelUpdate");
  const array = ReelUpdate.encode({ update_data_json: new TextEncoder().encode("[1]") }).finish();
  assert.throws(() => decodeReelUpdate(array), SyntaxError);
  const priority = ReelUpdate.encode({ priority: 9 }).finish();
  assert.throws(() => decodeReelUpdate(priority), SyntaxError);
});

Deno.test("Envelope round trips frames with typed payloads", () => {
  const frames: [Frame, string][] = [
    [
      push("3", "reel:1", "reel_update", {
        id: "01J",
        reel_id: "1",
        update_data: { a: { b: [1, 2] } },
        target_users: ["u1"],
        priority: "critical",
        timestamp: NOW,
        seq: 9,
      }),
      "reel_update",
    ],
    [
      broadcast("reel:1", "interaction", {
        id: "i",
        reel_id: "1",
        type: "comment",
        user_id: "u",
        text: "hi",
        timestamp: NOW,
      }),
      "interaction",
    ],
    [
      push("5", "context:c", "delta", {
        type: "delta",
        from_version: 1,
        version: 2,
        delta: { a: 1 },
      }),
      "context_delta",
    ],
    [
      push("6", "kv:k", "change", { key: "k", op: "set", version: 3, value: [1], at: NOW }),
      "kv_change",
    ],
    [reply("3", "3", "reel:1", "ok", { recovered: false }), "reply"],
    [reply(null, "4", "reel:2", "error", { reason: "unmatched topic" }), "reply"],
  ];
  for (const [frame, expectedCase] of frames) {
    const bytes = encodeEnvelope(frame);
    assert.equal(payloadCase(bytes), expectedCase, frame.event);
    assert.deepEqual(decodeEnvelope(bytes), frame);
  }
});

Deno.test("Envelope sends other payloads, and typed events that do not fit, as JSON bytes", () => {
  const frames: Frame[] = [
    { joinRef: null, ref: "7", topic: "phoenix", event: "heartbeat", payload: {} },
    { joinRef: "1", ref: "1", topic: "reel:1", event: "phx_join", payload: { last_seq: 4 } },
    broadcast("reel:1", "presence_diff", {
      joins: { u1: { metas: [{ phx_ref: "F1", online_at: NOW }] } },
      leaves: {},
    }),
    broadcast("system", "system_stats", { cpu: 0.5, sockets: 3 }),
    // Typed events whose payloads do not fit their messages exactly:
    push("1", "reel:1", "reel_update", { id: "x", extra: true }),
    push("1", "reel:1", "reel_update", {
      id: "i",
      reel_id: "r",
      update_data: {},
      priority: "normal",
      timestamp: NOW,
      seq: 1,
      target_users: [],
    }),
    push("1", "kv:k", "change", { key: "k", op: "set", version: 1.5, at: NOW }),
    push("1", "context:c", "delta", { type: "delta", version: 2, delta: {}, from: 1 }),
    { joinRef: "1", ref: "2", topic: "t", event: "phx_reply", payload: { status: "ok" } },
    {
      joinRef: "1",
      ref: "2",
      topic: "t",
      event: "phx_reply",
      payload: { status: 1, response: {} },
    },
  ];
  for (const frame of frames) {
    const bytes = encodeEnvelope(frame);
    assert.equal(payloadCase(bytes), "json", JSON.stringify(frame));
    assert.deepEqual(decodeEnvelope(bytes), frame);
  }
});

Deno.test("Envelope keeps null and empty refs apart", () => {
  for (const [joinRef, ref] of [[null, null], ["", ""], [null, "1"], ["2", null]]) {
    const frame: Frame = { joinRef, ref, topic: "", event: "e", payload: {} };
    assert.deepEqual(decodeEnvelope(encodeEnvelope(frame)), frame);
  }
});

Deno.test("Envelope carries binary payloads and binary replies as ArrayBuffers", () => {
  const bin = push("3", "room:1", "bin", new Uint8Array([1, 2, 3]).buffer);
  const bytes = encodeEnvelope(bin);
  assert.equal(payloadCase(bytes), "binary");
  const decoded = decodeEnvelope(bytes);
  assert.ok(decoded.payload instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(decoded.payload)], [1, 2, 3]);
  assert.deepEqual({ ...decoded, payload: null }, { ...bin, payload: null });

  const binReply: Frame = {
    joinRef: "3",
    ref: "9",
    topic: "room:1",
    event: "phx_reply",
    payload: { status: "ok", response: new Uint8Array([4, 5]).buffer },
  };
  const replyFrame = decodeEnvelope(encodeEnvelope(binReply));
  const payload = replyFrame.payload as { status: string; response: ArrayBuffer };
  assert.equal(payload.status, "ok");
  assert.ok(payload.response instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(payload.response)], [4, 5]);
});

Deno.test("decodeEnvelope reads reel_state and presence payloads", () => {
  const state: ReelStateJson = {
    reel_id: "r",
    views: 1,
    likes: 2,
    comments: 3,
    shares: 4,
    updated_at: NOW,
    seq: 5,
  };
  const presence: PresenceUpdateJson = { user_id: "u", status: "away", last_seen: NOW };
  const ReelState = root.lookupType("chorus.v1.ReelState");
  const PresenceUpdate = root.lookupType("chorus.v1.PresenceUpdate");
  const a = Envelope.encode({
    topic: "reel:r",
    event: "reel_state",
    reel_state: ReelState.decode(encodeReelState(state)),
  })
    .finish();
  assert.deepEqual(decodeEnvelope(a).payload, state);
  const b = Envelope.encode({
    topic: "user:u",
    event: "user_activity",
    presence: PresenceUpdate.decode(encodePresenceUpdate(presence)),
  }).finish();
  assert.deepEqual(decodeEnvelope(b), {
    joinRef: null,
    ref: null,
    topic: "user:u",
    event: "user_activity",
    payload: presence,
  });
});

Deno.test("decodeEnvelope rejects a missing payload and non-object JSON with SyntaxError", () => {
  const cases = [
    Envelope.encode({ topic: "t", event: "e" }).finish(),
    Envelope.encode({ topic: "t", event: "e", json: new TextEncoder().encode("[1,2]") }).finish(),
    Envelope.encode({ topic: "t", event: "e", json: new TextEncoder().encode("null") }).finish(),
    Envelope.encode({ topic: "t", event: "e", json: new TextEncoder().encode("{") }).finish(),
    Envelope.encode({ topic: "t", event: "e", json: new Uint8Array() }).finish(),
  ];
  for (const bytes of cases) {
    assert.throws(() => decodeEnvelope(bytes), SyntaxError);
  }
});

Deno.test("Encoded messages own their buffer", () => {
  const bytes = encodeEnvelope(broadcast("t", "e", { a: 1 }));
  assert.equal(bytes.byteOffset, 0);
  assert.equal(bytes.buffer.byteLength, bytes.length);
  assert.equal(Object.getPrototypeOf(bytes), Uint8Array.prototype);
});
