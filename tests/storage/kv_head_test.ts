import assert from "node:assert/strict";
import {
  decodeKvHead,
  encodeKvHead,
  KV_HEAD_FORMAT,
  type KvRecord,
} from "../../storage/kv_head.ts";
import { call, openTest } from "../_helpers.ts";

const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7) & 255);

Deno.test("kv head: every shape of record round-trips through its bytes", () => {
  const records: KvRecord[] = [
    { v: 1, e: null },
    { v: 2, e: null, enc: "json", d: bytes(0), sz: 0 },
    { v: 3, e: 1_800_000_000_123, enc: "gzip", d: bytes(300), sz: 4096 },
    { v: 4, e: null, enc: "deflate", n: 7, cv: 4, sz: 400_000 },
    { v: 5, e: null, x: true },
    { v: 6, e: 1_800_000_000_000, x: true, w: 1_800_000_060_000 },
    { v: 2 ** 53 - 1, e: null, enc: "json", d: bytes(60_000), sz: 60_000, w: 1.5 },
  ];
  for (const record of records) {
    const stored = encodeKvHead(record);
    assert.ok(stored instanceof Uint8Array);
    assert.equal(stored[0], KV_HEAD_FORMAT);
    assert.deepEqual(decodeKvHead(stored), record);
  }
});

Deno.test("kv head: the inline bytes are read in place, from any offset", () => {
  const stored = encodeKvHead({ v: 9, e: null, enc: "json", d: bytes(10), sz: 10 });
  const shifted = new Uint8Array(stored.byteLength + 5);
  shifted.set(stored, 5);
  const decoded = decodeKvHead(shifted.subarray(5));
  assert.deepEqual(decoded.d, bytes(10));
  assert.equal(decoded.d!.buffer, shifted.buffer);
});

Deno.test("kv head: an object head from an earlier build is read as it is; others are refused", () => {
  const legacy = { v: 3, e: null, enc: "json", d: bytes(4), sz: 4 };
  assert.equal(decodeKvHead(legacy), legacy);
  assert.throws(() => decodeKvHead(new Uint8Array([9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), TypeError);
  assert.throws(() => decodeKvHead(new Uint8Array([KV_HEAD_FORMAT, 0, 0])), TypeError);
  assert.throws(() => decodeKvHead("text"), TypeError);
  assert.throws(() => decodeKvHead({ e: null }), TypeError);
});

Deno.test("kv head: keys stored by an earlier build are read, listed and overwritten", async () => {
  const { chorus } = await openTest();
  try {
    const text = new TextEncoder().encode(JSON.stringify({ hello: "world" }));
    await chorus.store.kv.set(["kv", "old"], { v: 4, e: null, enc: "json", d: text, sz: 17 });
    const read = await call(chorus.app, "GET", "/api/v1/kv/old");
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, { key: "old", value: { hello: "world" }, version: 4 });
    const list = await call(chorus.app, "GET", "/api/v1/kv?prefix=ol&values=true");
    assert.deepEqual(list.body.items, [{
      key: "old",
      version: 4,
      ttl: null,
      value: { hello: "world" },
    }]);
    const put = await call(chorus.app, "PUT", "/api/v1/kv/old", { value: 5 });
    assert.equal(put.body.version, 5);
    assert.ok((await chorus.store.kv.get(["kv", "old"])).value instanceof Uint8Array);
    await chorus.registry.close(); // the next read loads from KV
    assert.deepEqual((await call(chorus.app, "GET", "/api/v1/kv/old")).body.value, 5);
  } finally {
    await chorus.close();
  }
});
