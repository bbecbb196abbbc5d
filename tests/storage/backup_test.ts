import assert from "node:assert/strict";
import { Store } from "../../storage/store.ts";
import { createBackup, restoreBackup, storeIsEmpty, verifyBackup } from "../../storage/backup.ts";
import { ChorusError } from "../../errors.ts";

Deno.test("A backup round-trips every entry and its checksum catches tampering", async () => {
  const source = await Deno.openKv(":memory:");
  const target = await Deno.openKv(":memory:");
  try {
    await source.set(["kv", "a"], { v: 1, d: new Uint8Array([1, 2, 3]), e: null });
    await source.set(["n", 1n, true, 2.5], new Deno.KvU64(42n));
    await source.set(["s"], "text");
    const bytes = await createBackup(new Store(source), "test");
    const check = await verifyBackup(bytes);
    assert.equal(check.ok, true);
    assert.equal(check.header?.entries, 3);
    assert.equal(check.header?.instance, "test");
    assert.equal(await restoreBackup(new Store(target), bytes), 3);
    assert.deepEqual((await target.get(["kv", "a"])).value, {
      v: 1,
      d: new Uint8Array([1, 2, 3]),
      e: null,
    });
    assert.equal(((await target.get(["n", 1n, true, 2.5])).value as Deno.KvU64).value, 42n);
    // Tamper: change one byte of the decompressed body and recompress.
    const text = await new Response(
      new Blob([bytes as BlobPart]).stream().pipeThrough(new DecompressionStream("gzip")),
    ).text();
    const tampered = new Uint8Array(
      await new Response(
        new Blob([text.replace("text", "test")]).stream().pipeThrough(
          new CompressionStream("gzip"),
        ),
      ).arrayBuffer(),
    );
    const bad = await verifyBackup(tampered);
    assert.equal(bad.ok, false);
    assert.match(bad.reason ?? "", /checksum/);
    await assert.rejects(() => restoreBackup(new Store(target), tampered), /checksum/);
    assert.equal((await verifyBackup(new Uint8Array([1, 2, 3]))).ok, false);
  } finally {
    source.close();
    target.close();
  }
});

Deno.test("[http] GET /api/v1/admin/backup and POST /api/v1/admin/restore round-trip", async () => {
  const { openTest, call } = await import("../_helpers.ts");
  const source = await openTest();
  const target = await openTest();
  try {
    await call(source.chorus.app, "PUT", "/api/v1/kv/a", { value: { n: 1 } });
    await call(source.chorus.app, "PUT", "/api/v1/contexts/doc", { context: { title: "x" } });
    const res = await source.chorus.app.request("/api/v1/admin/backup");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/gzip");
    const bytes = new Uint8Array(await res.arrayBuffer());
    assert.equal((await verifyBackup(bytes)).ok, true);
    const restore = (query = "") =>
      target.chorus.app.request(`/api/v1/admin/restore${query}`, {
        method: "POST",
        headers: { "content-type": "application/gzip" },
        body: bytes,
      });
    const first = await restore();
    assert.equal(first.status, 200);
    assert.ok((await first.json()).restored > 0);
    await target.chorus.registry.close();
    assert.deepEqual((await call(target.chorus.app, "GET", "/api/v1/kv/a")).body.value, { n: 1 });
    const again = await restore();
    assert.equal(again.status, 409, "a non-empty store needs force");
    await again.body?.cancel();
    const forced = await restore("?force=true");
    assert.equal(forced.status, 200);
    await forced.body?.cancel();
    const garbage = await target.chorus.app.request("/api/v1/admin/restore?force=true", {
      method: "POST",
      headers: { "content-type": "application/gzip" },
      body: new Uint8Array([1, 2, 3]),
    });
    assert.equal(garbage.status, 400);
    await garbage.body?.cancel();
  } finally {
    await source.chorus.close();
    await target.chorus.close();
  }
});

const text = new TextEncoder();

/** `chunk` `times` over, made lazily: the test never holds more than one chunk. */
function repeated(
  chunk: BufferSource,
  times: number,
  first?: BufferSource,
): ReadableStream<BufferSource> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent === 0 && first) controller.enqueue(first);
      if (sent++ < times) controller.enqueue(chunk);
      else controller.close();
    },
  }, { highWaterMark: 0 });
}

function gzipped(stream: ReadableStream<BufferSource>): ReadableStream<Uint8Array> {
  return stream.pipeThrough(new CompressionStream("gzip"));
}

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** 64 MiB of newlines after `first`, gzipped (about 65 KB). */
function newlineBomb(first?: BufferSource): Promise<Uint8Array<ArrayBuffer>> {
  return bytesOf(gzipped(repeated(new Uint8Array(1 << 20).fill(10), 64, first)));
}

function headerLine(entries: number): string {
  return JSON.stringify({ format: "chorus-backup/1", created_at: 1, entries, instance: "t" });
}

/** A backup of the given entry lines with a correct header and checksum. */
async function backupOf(entries: string[]): Promise<Uint8Array<ArrayBuffer>> {
  const body = [headerLine(entries.length), ...entries].map((l) => l + "\n").join("");
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", text.encode(body)));
  const sha256 = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  return bytesOf(gzipped(ReadableStream.from([text.encode(body + JSON.stringify({ sha256 }))])));
}

async function assertInvalid(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof ChorusError, `not a ChorusError: ${e}`);
    assert.equal(e.code, "invalid_request");
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("A gzip bomb of newlines fails verify and restore as invalid, without a crash", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    const bomb = await newlineBomb();
    assert.ok(bomb.byteLength < 200_000);
    const check = await verifyBackup(bomb);
    assert.equal(check.ok, false);
    assert.match(check.reason ?? "", /line 1 is blank/);
    await assertInvalid(restoreBackup(new Store(kv), bomb), /line 1 is blank/);
    // After a valid header, blank lines are not skipped (nor gathered) either.
    const afterHeader = await newlineBomb(text.encode(headerLine(0) + "\n"));
    assert.match((await verifyBackup(afterHeader)).reason ?? "", /line 2 is blank/);
  } finally {
    kv.close();
  }
});

Deno.test("Reading a backup stops at the decompressed-size limit, streaming", async () => {
  // 64 MiB of well-formed entries under a header that promises a billion: only the limit stops it.
  const entry = text.encode('{"key":["k"],"value":0}\n'.repeat(40_000));
  const stream = gzipped(repeated(entry, 70, text.encode(headerLine(1e9) + "\n")));
  const check = await verifyBackup(stream, { maxBytes: 1 << 20 });
  assert.equal(check.ok, false);
  assert.match(check.reason ?? "", /more than 1048576 bytes/);
  assert.ok(check.entries > 1000 && check.entries < 50_000, `${check.entries} entries read`);
});

Deno.test("A line longer than the limit fails verify and restore as invalid", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    // 64 MiB without a newline, against the default limit.
    const long = await bytesOf(gzipped(repeated(new Uint8Array(1 << 20).fill(97), 64)));
    const check = await verifyBackup(long);
    assert.equal(check.ok, false);
    assert.match(check.reason ?? "", /line 1 is longer than 2097152 bytes/);
    await assertInvalid(restoreBackup(new Store(kv), long), /line 1 is longer/);
    // A long entry against a lowered limit names its line.
    const bytes = await backupOf([`{"key":["a"],"value":"${"x".repeat(2000)}"}`]);
    assert.equal((await verifyBackup(bytes)).ok, true);
    assert.match(
      (await verifyBackup(bytes, { maxLineBytes: 1000 })).reason ?? "",
      /line 2 is longer than 1000 bytes/,
    );
  } finally {
    kv.close();
  }
});

Deno.test("A backup with a valid checksum and one bad entry restores nothing", async () => {
  const good = Array.from({ length: 600 }, (_, i) => JSON.stringify({ key: ["kv", i], value: i }));
  const bad: Record<string, [string, RegExp]> = {
    "object key part": ['{"key":["kv",{"a":1}],"value":1}', /line 602: key part 1 is Object/],
    "null key part": ['{"key":[null],"value":1}', /line 602: key part 0 is null/],
    "empty key": ['{"key":[],"value":1}', /line 602: the key is not a non-empty array/],
    "u64 key part": ['{"key":[{"$u64":"1"}],"value":1}', /line 602: key part 0 is KvU64/],
    "key too large": [`{"key":["${"k".repeat(3000)}"],"value":1}`, /line 602: the key takes/],
    "bad base64": ['{"key":["b"],"value":{"$bytes":"!!"}}', /line 602: cannot decode/],
    "bad bigint": ['{"key":["b"],"value":{"$bigint":"x"}}', /line 602: cannot decode/],
    "bad u64": ['{"key":["b"],"value":{"$u64":"-1"}}', /line 602: cannot decode/],
    "value too large": [`{"key":["b"],"value":"${"v".repeat(70_000)}"}`, /line 602: the value/],
    "no value": ['{"key":["b"]}', /line 602 is not an entry/],
    "not JSON": ["{nope", /line 602 is not JSON/],
  };
  const kv = await Deno.openKv(":memory:");
  try {
    for (const [name, [line, pattern]] of Object.entries(bad)) {
      const bytes = await backupOf([...good, line, ...good.slice(0, 5)]);
      const check = await verifyBackup(bytes);
      assert.equal(check.ok, false, name);
      assert.match(check.reason ?? "", pattern, name);
      await assertInvalid(restoreBackup(new Store(kv), bytes), pattern);
      assert.equal((await Array.fromAsync(kv.list({ prefix: [] }))).length, 0, `${name}: written`);
    }
  } finally {
    kv.close();
  }
});

Deno.test("A restore keeps each commit within KV's limit on key bytes", async () => {
  // 300 keys of 1 KB: 500 of them in one commit would pass KV's 80 KiB of keys.
  const entries = Array.from(
    { length: 300 },
    (_, i) => JSON.stringify({ key: ["kv", `${i}`.padStart(1000, "0")], value: i }),
  );
  const kv = await Deno.openKv(":memory:");
  try {
    assert.equal(await restoreBackup(new Store(kv), await backupOf(entries)), 300);
  } finally {
    kv.close();
  }
});

Deno.test("[http] POST /api/v1/admin/restore answers 400 for a bomb or a bad entry", async () => {
  const { openTest } = await import("../_helpers.ts");
  const { chorus } = await openTest();
  try {
    const post = (body: Uint8Array<ArrayBuffer>) =>
      chorus.app.request("/api/v1/admin/restore?force=true", {
        method: "POST",
        headers: { "content-type": "application/gzip" },
        body,
      });
    const bomb = await post(await newlineBomb());
    assert.equal(bomb.status, 400);
    const body = await bomb.json();
    assert.equal(body.error.code, "invalid_request");
    assert.match(body.error.message, /line 1 is blank/);
    const good = Array.from({ length: 600 }, (_, i) => JSON.stringify({ key: ["x", i], value: i }));
    const bad = await post(await backupOf([...good, '{"key":[null],"value":1}']));
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error.message, /line 602/);
    assert.equal(await storeIsEmpty(chorus.store), true);
  } finally {
    await chorus.close();
  }
});
