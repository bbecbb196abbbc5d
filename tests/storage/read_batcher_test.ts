import assert from "node:assert/strict";
import { GET_MANY_MAX, type KeyReads, ReadBatcher } from "../../storage/read_batcher.ts";

/** Reads from a map, answering only when `release()` is called, and recording each call. */
function heldReads(data: Map<string, unknown>) {
  const calls: string[][] = [];
  let held: (() => void)[] = [];
  const entry = (key: Deno.KvKey): Deno.KvEntryMaybe<unknown> => {
    const k = String(key[0]);
    return data.has(k)
      ? { key, value: data.get(k), versionstamp: "01" }
      : { key, value: null, versionstamp: null };
  };
  const wait = () => new Promise<void>((resolve) => held.push(resolve));
  const reads: KeyReads = {
    async get(key) {
      calls.push([String(key[0])]);
      await wait();
      if (String(key[0]).startsWith("bad")) throw new TypeError("key too large");
      return entry(key);
    },
    async getMany(keys) {
      calls.push(keys.map((k) => String(k[0])));
      await wait();
      if (keys.some((k) => String(k[0]).startsWith("bad"))) throw new TypeError("key too large");
      if (keys.some((k) => String(k[0]).startsWith("down"))) throw new Error("unreachable");
      return keys.map(entry);
    },
  };
  const release = async () => {
    while (held.length) {
      const now = held;
      held = [];
      for (const r of now) r();
      await new Promise((r) => setTimeout(r, 0));
    }
  };
  return { reads, calls, release };
}

Deno.test("ReadBatcher: a lone read goes out at once; reads that arrive meanwhile go out as getMany of up to 10", async () => {
  const data = new Map(Array.from({ length: 30 }, (_, i) => [`k${i}`, i]));
  const { reads, calls, release } = heldReads(data);
  const batcher = new ReadBatcher(reads);
  const first = batcher.get(["k0"]);
  assert.deepEqual(calls, [["k0"]]);
  const rest = Array.from({ length: 24 }, (_, i) => batcher.get([`k${i + 1}`]));
  assert.equal(batcher.waiting, 24);
  assert.equal(calls.length, 1, "nothing more is sent while a read is in flight");
  await release();
  const values = (await Promise.all([first, ...rest])).map((e) => e.value);
  assert.deepEqual(values, Array.from({ length: 25 }, (_, i) => i));
  assert.deepEqual(calls.map((c) => c.length), [1, GET_MANY_MAX, GET_MANY_MAX, 4]);
});

Deno.test("ReadBatcher: a key KV refuses fails only its own read; an outage fails the batch", async () => {
  const data = new Map([["a", 1], ["b", 2]]);
  const { reads, release } = heldReads(data);
  const batcher = new ReadBatcher(reads);
  const first = batcher.get(["a"]);
  const ok = batcher.get(["b"]);
  const outcome = (p: Promise<unknown>) => p.then(() => "read", (e: Error) => e);
  const refused = outcome(batcher.get(["bad-key"]));
  const absent = batcher.get(["nothing"]);
  await release();
  assert.equal((await first).value, 1);
  assert.equal((await ok).value, 2);
  assert.ok(await refused instanceof TypeError);
  assert.equal((await absent).versionstamp, null);

  const lead = batcher.get(["a"]);
  const down = [outcome(batcher.get(["down-1"])), outcome(batcher.get(["b"]))];
  await release();
  assert.equal((await lead).value, 1);
  for (const p of down) assert.match(String(await p), /unreachable/);
  assert.equal(batcher.waiting, 0);
});
