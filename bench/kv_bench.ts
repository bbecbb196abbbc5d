/**
 * Embedded kv benchmarks, each group with its reference measured in the same run:
 * - get: `chorus.kv.get` per consistency mode vs a raw `Deno.Kv.get` and a plain `Map.get`;
 * - put (concurrency 1 and 64): `chorus.kv.put` vs raw single-key `kv.set` on the same KV file;
 * - value copy: the copy every write keeps (`frozenJsonCopy`: JSON's rules, frozen as made) vs
 *   `structuredClone` plus a deep freeze, which writes did before, for a small value, ~200 KB of
 *   small objects and one 300 KB string.
 * Run: deno task bench (or deno bench -A bench/kv_bench.ts)
 */
import { Chorus } from "../mod.ts";
import { deepFreeze, frozenJsonCopy } from "../storage/codec.ts";

const dir = await Deno.makeTempDir({ prefix: "chorus-bench-" });
const chorus = await Chorus.open({ path: `${dir}/chorus.kv` });
const raw = await Deno.openKv(`${dir}/raw.kv`);
const map = new Map<string, unknown>();

const value = { user: "u-42", cart: [1, 2, 3], total: 99.5 };
await chorus.kv.put("hot", value);
await raw.set(["hot"], value);
map.set("hot", value);
await chorus.kv.get("hot"); // load the actor

Deno.bench("Map.get (reference)", { group: "get", baseline: true }, () => {
  map.get("hot");
});
Deno.bench("raw Deno.Kv.get (strong)", { group: "get" }, async () => {
  await raw.get(["hot"]);
});
Deno.bench("raw Deno.Kv.get (eventual)", { group: "get" }, async () => {
  await raw.get(["hot"], { consistency: "eventual" });
});
Deno.bench("chorus.kv.get leader", { group: "get" }, async () => {
  await chorus.kv.get("hot", { consistency: "leader" });
});
Deno.bench("chorus.kv.get eventual", { group: "get" }, async () => {
  await chorus.kv.get("hot", { consistency: "eventual" });
});
Deno.bench("chorus.kv.get strong", { group: "get" }, async () => {
  await chorus.kv.get("hot", { consistency: "strong" });
});

let n = 0;
Deno.bench("raw kv.set, concurrency 1", { group: "put c=1", baseline: true }, async () => {
  await raw.set(["p", n++ % 1000], value);
});
Deno.bench("chorus.kv.put, concurrency 1", { group: "put c=1" }, async () => {
  await chorus.kv.put(`p${n++ % 1000}`, value);
});

const keys64 = Array.from({ length: 64 }, (_, i) => i);
Deno.bench("raw kv.set ×64 concurrent", { group: "put c=64", baseline: true }, async () => {
  await Promise.all(keys64.map((i) => raw.set(["q", i], value)));
});
Deno.bench("chorus.kv.put ×64 concurrent", { group: "put c=64" }, async () => {
  await Promise.all(keys64.map((i) => chorus.kv.put(`q${i}`, value)));
});
Deno.bench("chorus.kv.incr ×64 concurrent, one key", { group: "put c=64" }, async () => {
  await Promise.all(keys64.map(() => chorus.kv.incr("counter")));
});

globalThis.addEventListener("unload", () => {
  raw.close();
  chorus.close().finally(() => Deno.removeSync(dir, { recursive: true }));
});

const copies = {
  "small value": value,
  "3,000 small objects (~200 KB)": {
    items: Array.from({ length: 3000 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ["a"] })),
  },
  "one 300 KB string": { text: "x".repeat(300_000) },
};
for (const [what, v] of Object.entries(copies)) {
  Deno.bench(`structuredClone + deepFreeze: ${what}`, {
    group: `copy ${what}`,
    baseline: true,
  }, () => {
    deepFreeze(structuredClone(v));
  });
  Deno.bench(`frozenJsonCopy: ${what}`, { group: `copy ${what}` }, () => {
    frozenJsonCopy(v);
  });
}
