/**
 * A large context changed by small patches keeps its stored value and writes a replay of the
 * changes in its head instead of storing the whole value again on every change
 * (contexts/layout.ts, `keepValue`). What a reader loads must always be the current context: from
 * another instance, across folds of the replay into a new stored value, racing writers, deletes.
 * @module
 */
import assert from "node:assert/strict";
import { Chorus } from "../../mod.ts";
import type { ContextRecord } from "../../contexts/layout.ts";
import { REPLAY_MAX_BYTES } from "../../contexts/layout.ts";
import { ctxChunkKey, ctxHeadKey } from "../../storage/keys.ts";
import { decodeValue } from "../../storage/codec.ts";
import { tempKvPath, until } from "../_helpers.ts";
import { mulberry32 } from "../../prng.ts";

/**
 * A context of about `items` × 130 bytes of JSON that compresses poorly (random text), so its
 * stored value is chunked and large enough to be kept.
 */
function bigContext(items: number): Record<string, unknown> {
  const random = mulberry32(items);
  const letters = "abcdefghijklmnopqrstuvwxyz0123456789 ";
  const list: Record<string, unknown> = {};
  for (let i = 0; i < items; i++) {
    let body = "";
    for (let c = 0; c < 80; c++) body += letters[Math.floor(random() * letters.length)];
    list[`item${i}`] = { title: `Item number ${i}`, body, done: false };
  }
  return { title: "a large document", items: list, cursors: {} };
}

/** What a new instance on `path`, which has never held `id`, reads for it. */
async function readAnew(path: string, id: string, consistency?: "eventual") {
  const fresh = await Chorus.open({ path, scheduler: "off" });
  try {
    return await fresh.contexts.get(id, { consistency });
  } finally {
    await fresh.close();
  }
}

async function head(kv: Deno.Kv, id: string): Promise<ContextRecord> {
  const entry = await kv.get<ContextRecord>(ctxHeadKey(id));
  assert.ok(entry.value, `no head for ${id}`);
  return entry.value;
}

/** Versions under which chunks of `id`'s value are stored. */
async function chunkVersions(kv: Deno.Kv, id: string): Promise<number[]> {
  const versions = new Set<number>();
  for await (const e of kv.list({ prefix: ctxChunkKey(id, 0, 0).slice(0, 2) })) {
    versions.add(e.key[2] as number);
  }
  return [...versions].sort((a, b) => a - b);
}

/**
 * Opens another instance on `path` and checks that its next update of `id` stores the value
 * again (no replay, chunks of that version only, marked as written with no expiry) and that the
 * update after it keeps the value and carries a replay.
 */
async function storedAgainThenKept(path: string, kv: Deno.Kv, id: string): Promise<void> {
  const b = await Chorus.open({ path, scheduler: "off" });
  try {
    const updated = await b.contexts.update(id, { cursors: { u: 4 } });
    const rec = await head(kv, id);
    assert.equal(rec.r, undefined, "not kept");
    assert.equal(rec.p, true, "chunks written with no expiry");
    assert.deepEqual(await chunkVersions(kv, id), [updated.version]);
    await b.contexts.update(id, { cursors: { u: 5 } });
    assert.ok((await head(kv, id)).r, "kept from then on");
  } finally {
    await b.close();
  }
}

Deno.test("[contexts] a large context keeps its stored value under small changes; another instance reads it exactly", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path, scheduler: "off" });
  const b = await Chorus.open({ path, scheduler: "off" });
  const kv = await Deno.openKv(path);
  try {
    const created = await a.contexts.set("doc", bigContext(400));
    for (let i = 0; i < 30; i++) {
      await a.contexts.update("doc", { cursors: { [`u${i % 4}`]: i } });
    }
    const rec = await head(kv, "doc");
    assert.equal(rec.v, created.version + 30);
    assert.ok(rec.r, "the head holds a replay");
    assert.ok(rec.k?.n, "the kept value is in chunks");
    // What a version of Chorus without replays reads as the value fails to decode (a 503 there),
    // rather than giving the kept value as if it were the current one.
    assert.throws(() => decodeValue(rec.d!, rec.enc!));
    assert.deepEqual(await chunkVersions(kv, "doc"), [created.version], "stored once");
    const mine = await a.contexts.get("doc");
    const theirs = await b.contexts.get("doc", { consistency: "strong" });
    assert.deepEqual(theirs, mine);
    assert.deepEqual(theirs!.context.cursors, { u0: 28, u1: 29, u2: 26, u3: 27 });
    // The eventual read of an instance without the actor loads it from KV too.
    assert.deepEqual(await readAnew(path, "doc", "eventual"), mine);
  } finally {
    kv.close();
    await a.close();
    await b.close();
    await cleanup();
  }
});

Deno.test("[contexts] a replay past its bound is folded into a new stored value, and the old chunks go", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path, scheduler: "off" });
  const kv = await Deno.openKv(path);
  try {
    await a.contexts.set("doc", bigContext(400));
    const firstChunks = await chunkVersions(kv, "doc");
    let folded = false;
    let longest = 0;
    for (let i = 0; i < 400 && !folded; i++) {
      await a.contexts.update("doc", { cursors: { [`user-${i}`]: { at: i, note: "moved" } } });
      const rec = await head(kv, "doc");
      longest = Math.max(longest, rec.r?.byteLength ?? 0);
      folded = rec.r === undefined;
      if (folded) {
        assert.deepEqual(await chunkVersions(kv, "doc"), [rec.v], "only the new value's chunks");
        assert.notDeepEqual(firstChunks, [rec.v]);
      }
    }
    assert.ok(folded, "the replay was folded");
    assert.ok(longest <= REPLAY_MAX_BYTES, `replay of ${longest} bytes`);
    assert.deepEqual(await readAnew(path, "doc"), await a.contexts.get("doc"));
  } finally {
    kv.close();
    await a.close();
    await cleanup();
  }
});

Deno.test("[contexts] small contexts, and chunks that expire, are stored whole on every change", async () => {
  const { path, cleanup } = await tempKvPath();
  const kv = await Deno.openKv(path);
  try {
    const a = await Chorus.open({
      path,
      scheduler: "off",
      config: { contextAutoDelete: true },
    });
    try {
      await a.contexts.set("small", { n: 0 });
      // Over one entry even compressed: chunked, and with auto-delete its chunks expire.
      await a.contexts.set("big", bigContext(1200));
      for (let i = 1; i <= 3; i++) {
        await a.contexts.update("small", { n: i });
        await a.contexts.update("big", { cursors: { u: i } });
      }
      assert.equal((await head(kv, "small")).r, undefined);
      const big = await head(kv, "big");
      assert.ok(big.n, "chunked");
      assert.equal(big.r, undefined, "chunks with an expiry are written with their head");
      assert.equal(big.p, undefined, "its chunks may expire");
    } finally {
      await a.close();
    }
    // Chunks written with an expiry must not be kept by a head without one.
    await storedAgainThenKept(path, kv, "big");
  } finally {
    kv.close();
    await cleanup();
  }
});

Deno.test("[contexts] racing writers on two instances over a kept value: every change is in what a third reads", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path, scheduler: "off" });
  const b = await Chorus.open({ path, scheduler: "off" });
  const random = mulberry32(7);
  try {
    await a.contexts.set("doc", bigContext(300));
    const expected: Record<string, number> = {};
    for (let round = 0; round < 6; round++) {
      // Each round writes 20 distinct keys of 30, half through each instance, all at once.
      const keys = Array.from({ length: 30 }, (_, i) => `c${i}`)
        .map((key) => ({ key, order: random() }))
        .sort((x, y) => x.order - y.order)
        .slice(0, 20)
        .map((x) => x.key);
      await Promise.all(keys.map((key, i) => {
        expected[key] = round * 100 + i;
        return (i % 2 ? a : b).contexts.update("doc", { cursors: { [key]: round * 100 + i } });
      }));
      // A removal rides on the replay too.
      const drop = `item${round}`;
      await b.contexts.update("doc", { items: { [drop]: null } });
      const read = await readAnew(path, "doc");
      assert.deepEqual(read, await a.contexts.get("doc", { consistency: "strong" }));
      assert.deepEqual(read!.context.cursors, expected);
      assert.equal(Object.hasOwn(read!.context.items as object, drop), false);
    }
    assert.ok((await b.contexts.get("doc", { consistency: "strong" }))!.version > 120);
  } finally {
    await a.close();
    await b.close();
    await cleanup();
  }
});

Deno.test("[contexts] deleting a context with a kept value leaves no chunks; creating it again starts over", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path, scheduler: "off" });
  const kv = await Deno.openKv(path);
  try {
    await a.contexts.set("doc", bigContext(400));
    await a.contexts.update("doc", { cursors: { u: 1 } });
    assert.ok((await head(kv, "doc")).r);
    await a.contexts.delete("doc");
    assert.deepEqual(await chunkVersions(kv, "doc"), []);
    const again = await a.contexts.set("doc", bigContext(350));
    const rec = await head(kv, "doc");
    assert.equal(rec.r, undefined);
    assert.deepEqual(await chunkVersions(kv, "doc"), [again.version]);
    assert.deepEqual(await readAnew(path, "doc"), again);
  } finally {
    kv.close();
    await a.close();
    await cleanup();
  }
});

Deno.test("[contexts] an instance holding a context catches up on another's changes from the deltas, without reading the value", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path, scheduler: "off" });
  const b = await Chorus.open({ path, scheduler: "off" });
  const kv = await Deno.openKv(path);
  const seen: number[] = [];
  let stop = () => {};
  try {
    const created = await a.contexts.set("doc", bigContext(400));
    stop = await b.contexts.subscribe("doc", (e) => seen.push(e.version));
    assert.deepEqual(await b.contexts.get("doc"), created);
    // From here on the stored value cannot be read: only a reader that catches up from the
    // deltas (and the writer, which holds the context) can still tell the context.
    for (const v of await chunkVersions(kv, "doc")) {
      for await (const e of kv.list({ prefix: ctxChunkKey("doc", v, 0).slice(0, 3) })) {
        await kv.delete(e.key);
      }
    }
    for (let i = 0; i < 5; i++) await a.contexts.update("doc", { cursors: { [`u${i}`]: i } });
    const last = created.version + 5;
    await until(() => seen.at(-1) === last, "b saw the last change");
    assert.deepEqual(seen, [2, 3, 4, 5, 6].map((n) => created.version - 1 + n));
    assert.deepEqual(await b.contexts.get("doc"), await a.contexts.get("doc"));
  } finally {
    stop();
    kv.close();
    await a.close();
    await b.close();
    await cleanup();
  }
});

Deno.test("[contexts] a head that does not say its chunks never expire (an older build's) has its value stored again", async () => {
  const { path, cleanup } = await tempKvPath();
  const kv = await Deno.openKv(path);
  try {
    const a = await Chorus.open({ path, scheduler: "off" });
    try {
      await a.contexts.set("doc", bigContext(400));
    } finally {
      await a.close();
    }
    // As a build from before the mark wrote it (with auto-delete on, its chunks would expire).
    const { p: _, ...older } = await head(kv, "doc");
    await kv.set(ctxHeadKey("doc"), older);
    await storedAgainThenKept(path, kv, "doc");
  } finally {
    kv.close();
    await cleanup();
  }
});

Deno.test("[contexts] every instance holds a version's keys in the same order, whatever the change", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path, scheduler: "off" });
  const b = await Chorus.open({ path, scheduler: "off" });
  let stop = () => {};
  try {
    await a.contexts.set("doc", { a: 1, ...bigContext(300) });
    let seen = 0;
    stop = await b.contexts.subscribe("doc", (e) => seen = e.version);
    await b.contexts.get("doc");
    const changes = [
      () =>
        a.contexts.update("doc", [{ op: "remove", path: "/a" }, {
          op: "add",
          path: "/a",
          value: 2,
        }]),
      () => a.contexts.update("doc", [{ op: "move", from: "/title", path: "/z" }]),
      () => a.contexts.set("doc", { z: 0, ...bigContext(300), a: 5 }),
      () => a.contexts.update("doc", { a: null, b: { nested: true } }),
    ];
    for (const change of changes) {
      const { version } = await change();
      await until(() => seen === version, `b has version ${version}`);
      const text = JSON.stringify(await a.contexts.get("doc"));
      assert.equal(JSON.stringify(await b.contexts.get("doc")), text, "caught up");
      assert.equal(JSON.stringify(await readAnew(path, "doc")), text, "read anew");
    }
  } finally {
    stop();
    await a.close();
    await b.close();
    await cleanup();
  }
});
