/**
 * The pure presence diff functions, table by table as Phoenix tests `syncDiff`: merging a window's
 * touched metas into one diff, splitting a big diff by UTF-8 bytes (joins before leaves, a key in
 * one frame), and splitting a big `presence_state` into runs of keys.
 * @module
 */
import assert from "node:assert/strict";
import {
  diffEntryBytes,
  type MergedDiff,
  mergeDiff,
  splitDiff,
  splitState,
  type Touched,
} from "../../../realtime/presence/diff.ts";
import { stateFragment } from "../../../realtime/presence/frames.ts";
import type { PresenceDiff, PresenceMap, PresenceMeta } from "../../../realtime/presence/mod.ts";
import { utf8Bytes } from "../../../realtime/outbox.ts";

/** A meta whose `phx_ref` is `ref`, with optional extra fields. */
function meta(ref: string, fields: Record<string, unknown> = {}): PresenceMeta {
  return { phx_ref: ref, online_at: 0, ...fields };
}

/** A view state from `{key: [ref…]}`. */
function state(spec: Record<string, string[]>): Map<string, Map<string, PresenceMeta>> {
  return new Map(
    Object.entries(spec).map(([key, refs]) => [key, new Map(refs.map((r) => [r, meta(r)]))]),
  );
}

/** `{key: [ref…]}` of one side of a merged diff, in its key order. */
function refsOf(side: Map<string, PresenceMeta[]>): Record<string, string[]> {
  return Object.fromEntries([...side].map(([key, metas]) => [key, metas.map((m) => m.phx_ref)]));
}

/** `{key: [ref…]}` of one side of a payload, in its key order. */
function payloadRefs(side: PresenceMap): Record<string, string[]> {
  return Object.fromEntries(
    Object.entries(side).map(([key, { metas }]) => [key, metas.map((m) => m.phx_ref)]),
  );
}

/** A merged diff from `{key: [ref…]}` sides, with `extra` fields on every meta. */
function merged(
  joins: Record<string, string[]>,
  leaves: Record<string, string[]> = {},
  extra: Record<string, unknown> = {},
): MergedDiff {
  const side = (spec: Record<string, string[]>) =>
    new Map(Object.entries(spec).map(([key, refs]) => [key, refs.map((r) => meta(r, extra))]));
  return { joins: side(joins), leaves: side(leaves) };
}

/** The UTF-8 bytes of a payload's `{"joins":…,"leaves":…}` JSON. */
function payloadBytes(diff: PresenceDiff): number {
  return utf8Bytes(JSON.stringify(diff));
}

/** What a payload adds around its keys' parts (the limit is "about": it counts the parts). */
const PAYLOAD_OVERHEAD = `{"joins":{},"leaves":{}}`.length;

// ---- mergeDiff ---------------------------------------------------------------------------------

/** [case, metas touched in the window as [key, ref], state at its end, expected joins, leaves]. */
const MERGE_CASES: [
  string,
  [string, string][],
  Record<string, string[]>,
  Record<string, string[]>,
  Record<string, string[]>,
][] = [
  ["nothing touched", [], { u1: ["1"] }, {}, {}],
  ["a join into an empty state", [["u1", "1"]], { u1: ["1"] }, { u1: ["1"] }, {}],
  ["a second meta for a key: only the new one", [["u1", "2"]], { u1: ["1", "2"] }, {
    u1: ["2"],
  }, {}],
  ["a leave while the key keeps another meta", [["u1", "1"]], { u1: ["2"] }, {}, { u1: ["1"] }],
  ["the last meta of a key leaves", [["u1", "1"]], {}, {}, { u1: ["1"] }],
  ["came and went within the window: a leave only", [["u2", "9"]], { u1: ["1"] }, {}, {
    u2: ["9"],
  }],
  [
    "a page reload: the old meta leaves, the new one joins, under one key",
    [["u1", "old"], ["u1", "new"]],
    { u1: ["new"] },
    { u1: ["new"] },
    { u1: ["old"] },
  ],
  [
    "joins and leaves of several keys keep the order the keys were first touched",
    [["b", "b1"], ["a", "a1"], ["c", "c1"], ["a", "a2"], ["42", "n1"]],
    { a: ["a1"], c: ["c1"], "42": ["n1"] },
    { a: ["a1"], c: ["c1"], "42": ["n1"] },
    { b: ["b1"], a: ["a2"] },
  ],
];

for (const [name, touchedSpec, stateSpec, joins, leaves] of MERGE_CASES) {
  Deno.test(`[presence diff] mergeDiff: ${name}`, () => {
    const touched: Touched[] = touchedSpec.map(([key, ref]) => ({ key, meta: meta(ref) }));
    const out = mergeDiff(touched, state(stateSpec));
    assert.deepEqual(refsOf(out.joins), joins);
    assert.deepEqual(refsOf(out.leaves), leaves);
    // Keys go out in the order they were first touched (`Object.keys` would put "42" first).
    const order = (side: Record<string, string[]>) =>
      [...new Set(touchedSpec.map(([key]) => key))].filter((key) => Object.hasOwn(side, key));
    assert.deepEqual([...out.joins.keys()], order(joins), "joins in first-touched order");
    assert.deepEqual([...out.leaves.keys()], order(leaves), "leaves in first-touched order");
  });
}

Deno.test("[presence diff] mergeDiff: a join carries the meta as it is now, a leave as it was touched", () => {
  const now = new Map([["u1", new Map([["1", meta("1", { status: "now" })]])]]);
  const out = mergeDiff([
    { key: "u1", meta: meta("1", { status: "then" }) },
    { key: "u2", meta: meta("2", { status: "held" }) },
  ], now);
  assert.equal(out.joins.get("u1")?.[0].status, "now");
  assert.equal(out.leaves.get("u2")?.[0].status, "held");
});

Deno.test("[presence diff] mergeDiff: a client applying the merged diff ends where the diffs one by one take it", () => {
  // A seeded walk: windows of random joins and leaves over 6 keys; a Phoenix-like client that
  // holds the state before each window applies the merged diff (joins, then leaves).
  let seed = 11;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  const server = new Map<string, Map<string, PresenceMeta>>();
  const client = new Map<string, Set<string>>();
  let next = 0;
  for (let window = 0; window < 200; window++) {
    const touched = new Map<string, Touched>();
    const steps = 1 + Math.floor(random() * 6);
    for (let i = 0; i < steps; i++) {
      const live = [...server].flatMap(([key, metas]) =>
        [...metas.values()].map((m) => ({ key, m }))
      );
      if (live.length && random() < 0.45) {
        const { key, m } = live[Math.floor(random() * live.length)];
        server.get(key)!.delete(m.phx_ref);
        if (server.get(key)!.size === 0) server.delete(key);
        touched.set(`${key}\0${m.phx_ref}`, { key, meta: m });
      } else {
        const key = `k${Math.floor(random() * 6)}`;
        const m = meta(String(next++));
        if (!server.has(key)) server.set(key, new Map());
        server.get(key)!.set(m.phx_ref, m);
        touched.set(`${key}\0${m.phx_ref}`, { key, meta: m });
      }
    }
    const out = mergeDiff(touched.values(), server);
    for (const [key, metas] of out.joins) {
      const refs = client.get(key) ?? new Set();
      for (const m of metas) refs.add(m.phx_ref);
      client.set(key, refs);
    }
    for (const [key, metas] of out.leaves) {
      const refs = client.get(key);
      for (const m of metas) refs?.delete(m.phx_ref);
      if (refs?.size === 0) client.delete(key);
    }
    const expected = new Map([...server].map(([key, metas]) => [key, new Set(metas.keys())]));
    assert.deepEqual(client, expected, `after window ${window}`);
  }
});

// ---- splitDiff ---------------------------------------------------------------------------------

Deno.test("[presence diff] splitDiff: nothing to send is no payload", () => {
  assert.deepEqual(splitDiff(merged({}), { maxBytes: 100 }), []);
});

Deno.test("[presence diff] splitDiff: within the limit, one payload with both sides, as Phoenix sends it", () => {
  const out = splitDiff(merged({ a: ["1"], b: ["2", "3"] }, { c: ["4"] }), { maxBytes: 4096 });
  assert.equal(out.length, 1);
  assert.deepEqual(payloadRefs(out[0].joins), { a: ["1"], b: ["2", "3"] });
  assert.deepEqual(payloadRefs(out[0].leaves), { c: ["4"] });
});

/** Three joined keys of one meta each; `size` is what one of them counts. */
const three = merged({ a: ["1"], b: ["2"], c: ["3"] });
const size = diffEntryBytes("a", [meta("1")]);

/** [case, maxBytes, expected frames as the joined keys of each]. */
const BOUNDARY_CASES: [string, number, string[][]][] = [
  ["exactly the total fits: one frame", 3 * size, [["a", "b", "c"]]],
  ["a byte less: two keys, then one", 3 * size - 1, [["a", "b"], ["c"]]],
  ["exactly two keys fit a frame", 2 * size, [["a", "b"], ["c"]]],
  ["a byte less than two: a key per frame", 2 * size - 1, [["a"], ["b"], ["c"]]],
  ["a limit below one key: still a key per frame", 1, [["a"], ["b"], ["c"]]],
];

for (const [name, maxBytes, frames] of BOUNDARY_CASES) {
  Deno.test(`[presence diff] splitDiff boundaries: ${name}`, () => {
    const out = splitDiff(three, { maxBytes });
    assert.deepEqual(out.map((d) => Object.keys(d.joins)), frames);
    for (const d of out) assert.deepEqual(d.leaves, {});
  });
}

Deno.test("[presence diff] splitDiff: every join frame before any leave frame, each key in one frame", () => {
  const joins: Record<string, string[]> = {};
  const leaves: Record<string, string[]> = {};
  for (let i = 0; i < 20; i++) joins[`j${i}`] = [`j${i}a`, `j${i}b`];
  for (let i = 0; i < 20; i++) leaves[`l${i}`] = [`l${i}a`];
  leaves.j3 = ["j3-old"]; // a reload: the key joins a new meta and leaves its old one
  const out = splitDiff(merged(joins, leaves, { status: "x" }), { maxBytes: 300 });
  assert.ok(out.length > 4, `split (${out.length} frames)`);
  const kinds = out.map((d) => {
    const j = Object.keys(d.joins).length > 0;
    const l = Object.keys(d.leaves).length > 0;
    assert.ok(j !== l, "a split frame carries one side only");
    return j ? "J" : "L";
  }).join("");
  assert.match(kinds, /^J+L+$/, `joins first: ${kinds}`);
  for (const side of ["joins", "leaves"] as const) {
    const keys = out.flatMap((d) => Object.keys(d[side]));
    assert.deepEqual(keys, Object.keys(side === "joins" ? joins : leaves), `${side} in order`);
    for (const d of out) {
      for (const [key, { metas }] of Object.entries(d[side])) {
        const all = side === "joins" ? joins[key] : leaves[key];
        assert.deepEqual(metas.map((m) => m.phx_ref), all, `${key}: all its metas in one frame`);
      }
    }
  }
  for (const d of out) {
    assert.ok(payloadBytes(d) <= 300 + PAYLOAD_OVERHEAD, `a frame of ${payloadBytes(d)} bytes`);
  }
});

Deno.test("[presence diff] splitDiff: a key bigger than the limit goes alone, whole, in one frame", () => {
  const bigMetas = Array.from({ length: 30 }, (_, i) => `big${i}`);
  const out = splitDiff(merged({ a: ["1"], big: bigMetas, b: ["2"] }), { maxBytes: 256 });
  assert.deepEqual(out.map((d) => Object.keys(d.joins)), [["a"], ["big"], ["b"]]);
  assert.equal(out[1].joins.big.metas.length, 30);
  assert.ok(payloadBytes(out[1]) > 256);
});

Deno.test("[presence diff] splitDiff: sizes are UTF-8 bytes, not UTF-16 length", () => {
  // Each key's meta holds 40 characters: 40 bytes in ASCII, 80 as "é", 160 as "😀" (2 units).
  const of = (status: string) => merged({ a: ["1"], b: ["2"] }, {}, { status });
  const ascii = of("e".repeat(40));
  const accented = of("é".repeat(40));
  const emoji = of("😀".repeat(40));
  const limit = 2 * diffEntryBytes("a", [meta("1", { status: "e".repeat(40) })]);
  assert.equal(
    diffEntryBytes("a", accented.joins.get("a")!) - diffEntryBytes("a", ascii.joins.get("a")!),
    40,
  );
  assert.equal(
    diffEntryBytes("a", emoji.joins.get("a")!) - diffEntryBytes("a", ascii.joins.get("a")!),
    120,
  );
  assert.equal(splitDiff(ascii, { maxBytes: limit }).length, 1, "ASCII fits");
  // Same UTF-16 length as ASCII for "é"; it would fit if characters were counted.
  assert.equal(JSON.stringify([...accented.joins]).length, JSON.stringify([...ascii.joins]).length);
  assert.equal(splitDiff(accented, { maxBytes: limit }).length, 2, "é: two bytes each");
  assert.equal(splitDiff(emoji, { maxBytes: limit }).length, 2, "😀: four bytes each");
  assert.equal(diffEntryBytes("é😀", []) - diffEntryBytes("ab", []), 4, "keys are UTF-8 too");
  for (const d of splitDiff(accented, { maxBytes: limit })) {
    assert.ok(payloadBytes(d) <= limit + PAYLOAD_OVERHEAD, `a frame of ${payloadBytes(d)} bytes`);
  }
});

// ---- splitState --------------------------------------------------------------------------------

/** [case, key sizes, maxBytes, expected runs]. */
const STATE_CASES: [string, Record<string, number>, number, string[][]][] = [
  ["no limit: one run however big", { a: 1e6, b: 1e6 }, Infinity, [["a", "b"]]],
  ["an empty state is one empty run", {}, 100, [[]]],
  ["everything fits: one run", { a: 100, b: 100, c: 100 }, 300, [["a", "b", "c"]]],
  ["a byte less: two runs", { a: 100, b: 100, c: 100 }, 299, [["a", "b"], ["c"]]],
  ["a key per run", { a: 100, b: 100, c: 100 }, 199, [["a"], ["b"], ["c"]]],
  ["a key bigger than the limit is a run of its own", { a: 50, big: 500, b: 50 }, 200, [
    ["a"],
    ["big"],
    ["b"],
  ]],
  ["a big first key", { big: 500, a: 50, b: 50 }, 200, [["big"], ["a", "b"]]],
];

for (const [name, sizes, maxBytes, runs] of STATE_CASES) {
  Deno.test(`[presence diff] splitState: ${name}`, () => {
    const out = splitState(Object.keys(sizes), { maxBytes, bytes: (key) => sizes[key] });
    assert.deepEqual(out, runs);
  });
}

Deno.test("[presence diff] splitState: without a limit no key is sized", () => {
  const out = splitState(["a", "b"], {
    maxBytes: Infinity,
    bytes: () => assert.fail("sized"),
  });
  assert.deepEqual(out, [["a", "b"]]);
});

Deno.test("[presence diff] splitState: state parts sized in UTF-8 split where ASCII would not", () => {
  const metas = (status: string) => [meta("1", { status })];
  const sizeOf = (status: string) => (key: string) =>
    utf8Bytes(stateFragment(key, metas(status))) + 1;
  const limit = 2 * sizeOf("e".repeat(30))("a");
  const ascii = splitState(["a", "b"], { maxBytes: limit, bytes: sizeOf("e".repeat(30)) });
  const accented = splitState(["a", "b"], { maxBytes: limit, bytes: sizeOf("é".repeat(30)) });
  assert.deepEqual(ascii, [["a", "b"]]);
  assert.deepEqual(accented, [["a"], ["b"]]);
  assert.equal(utf8Bytes(stateFragment("é", [])) - utf8Bytes(stateFragment("e", [])), 1);
});
