// deno-lint-ignore-file no-explicit-any
/**
 * Fault injection (security review): Chorus on a real `Deno.Kv` wrapped by {@linkcode FaultyKv},
 * which fails or delays a seeded share of commits and reads before they reach KV.
 *
 * - KV failures reach clients as 503 `unavailable` and slow commits as 504 `timeout`, never 500.
 * - Nothing acknowledged is lost: once faults stop, a strong read of every key returns exactly the
 *   last write that got 200 (a failed write never landed, so versions count acknowledged writes).
 * - Counters stay exact: N concurrent `incr` with some failing end at the number acknowledged.
 * - Actors recover: a key whose load failed loads on the next try, and is not taken for absent.
 *
 * The seed is printed in every message; `CHORUS_FUZZ_SEED=<seed>` replays a schedule (decisions
 * follow the order of KV calls, which concurrency may vary slightly).
 * @module
 */
import assert from "node:assert/strict";
import { Chorus } from "../../mod.ts";
import { ERROR_STATUS } from "../../errors.ts";
import { connect, disconnect, join, serve } from "../realtime/_socket_helpers.ts";
import { until } from "../_helpers.ts";
import { FaultyKv } from "./_faulty_kv.ts";
import { fuzzSeed } from "./_seed.ts";

const { seed: SEED } = fuzzSeed();
const TAG = `[faults seed=${SEED} (replay: CHORUS_FUZZ_SEED=${SEED})]`;

interface Answer {
  status: number;
  body: any;
  retryAfter: string | null;
}

/** Failure statuses a client may see while KV misbehaves (plus the route's own 4xx). */
const KV_FAILURE = new Set([503, 504]);

/** Tallies of answers, and the check every answer passes. */
class Answers {
  readonly byStatus = new Map<number, number>();
  withRetryAfter = 0;
  unavailable = 0;

  /** Checks one answer: never 5xx other than 503 `unavailable`/504 `timeout`, errors well formed. */
  async take(res: Response, what: string): Promise<Answer> {
    const text = await res.text();
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const status = res.status;
    this.byStatus.set(status, (this.byStatus.get(status) ?? 0) + 1);
    assert.ok(status < 500 || KV_FAILURE.has(status), `${TAG} ${what} → ${status} ${text}`);
    if (status >= 400) {
      assert.equal(typeof body?.error?.code, "string", `${TAG} ${what} → ${status} ${text}`);
      assert.equal(typeof body.error.message, "string", `${TAG} ${what} → ${text}`);
      assert.equal(
        (ERROR_STATUS as Record<string, number>)[body.error.code],
        status,
        `${TAG} ${what} → ${status} ${text}`,
      );
    }
    // A KV failure must not pass for a client error (a 400 "bad cursor", a 404 "no such key").
    if (status === 400 || status === 404) {
      assert.doesNotMatch(text, /injected KV fault|not reachable/i, `${TAG} ${what} → ${text}`);
    }
    if (status === 503) {
      assert.equal(body.error.code, "unavailable", `${TAG} ${what} → ${text}`);
      this.unavailable++;
    }
    if (status === 504) assert.equal(body.error.code, "timeout", `${TAG} ${what} → ${text}`);
    const retryAfter = res.headers.get("retry-after");
    if (retryAfter !== null) {
      this.withRetryAfter++;
      assert.match(retryAfter, /^\d+$/, `${TAG} ${what}: Retry-After ${retryAfter}`);
    }
    return { status, body, retryAfter };
  }

  summary(): string {
    return [...this.byStatus].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(" ");
  }
}

function request(
  chorus: Chorus,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??= "application/json";
  }
  return Promise.resolve(chorus.app.request(path, init));
}

/** Runs `work(i)` for i < n with `width` running at once. */
async function pool(n: number, width: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await work(next++);
  }));
}

/** A fresh in-memory KV behind a fault wrapper (faults off), and a Chorus on it. */
async function open(
  config: Record<string, unknown> = {},
): Promise<{ faulty: FaultyKv; chorus: Chorus; close: () => Promise<void> }> {
  const inner = await Deno.openKv(":memory:");
  const faulty = new FaultyKv(inner, { seed: SEED });
  const chorus = await Chorus.open({ kv: faulty.kv, scheduler: "off", config });
  return {
    faulty,
    chorus,
    close: async () => {
      faulty.disable();
      await chorus.close();
      faulty.close();
      inner.close();
    },
  };
}

/** Only Chorus's product keys (not membership heartbeats or watch probes) get faults. */
function productKey(key: Deno.KvKey): boolean {
  return key.some((part) => typeof part === "string" && part.startsWith("fz-"));
}

Deno.test("[faults] failing commits and reads: 503 unavailable, never 500, nothing acknowledged lost", async () => {
  const { faulty, chorus, close } = await open();
  const answers = new Answers();
  try {
    faulty.enable({
      seed: SEED,
      commitFailRate: 0.3,
      readFailRate: 0.4, // reads that queue together go out as one getMany: fewer KV reads to fail
      listFailRate: 0.2,
      keyFilter: productKey,
    });
    // kv: 8 writers, each the only writer of its 3 keys, so "last acknowledged" is well defined.
    const lastAck = new Map<string, { version: number; value: unknown }>();
    const ctxAck = new Map<string, { version: number; context: unknown }>();
    const reelAck = new Map<string, string[]>();
    await Promise.all(Array.from({ length: 8 }, async (_, w) => {
      for (let n = 0; n < 30; n++) {
        const key = `fz-w${w}-${n % 3}`;
        const value = { w, n, pad: "x".repeat(n * 10) };
        const put = await answers.take(
          await request(chorus, "PUT", `/api/v1/kv/${key}`, { value }),
          `PUT ${key} #${n}`,
        );
        if (put.status === 200) lastAck.set(key, { version: put.body.version, value });
        else assert.ok(KV_FAILURE.has(put.status), `${TAG} PUT ${key} → ${put.status}`);
        await answers.take(await request(chorus, "GET", `/api/v1/kv/${key}`), `GET ${key}`);
        if (n % 5 === 0) {
          // contexts: one writer per id too
          const id = `fz-ctx-${w}`;
          const context = { w, n };
          const r = await answers.take(
            await request(chorus, "PUT", `/api/v1/contexts/${id}`, { context }),
            `PUT context ${id}`,
          );
          if (r.status === 200) ctxAck.set(id, { version: r.body.version, context });
          const reel = `fz-reel-${w % 2}`;
          const u = await answers.take(
            await request(chorus, "POST", `/api/v1/reels/${reel}/updates`, {
              update_data: { w, n },
            }),
            `POST update ${reel}`,
          );
          if (u.status === 201) reelAck.set(reel, [...reelAck.get(reel) ?? [], u.body.id]);
          await answers.take(
            await request(chorus, "POST", "/api/v1/kv/bulk/get", { keys: [key, `fz-w${w}-0`] }),
            "bulk get",
          );
        }
      }
    }));
    faulty.disable();
    // How many reads reach KV depends on timing (a loaded machine serves more from the cache:
    // 29 reads, 6 failed, in one run of the whole suite), so a few failed reads are enough.
    assert.ok(
      faulty.counts.commitFailures > 20 && faulty.counts.readFailures > 2,
      `${TAG} too few faults injected: ${JSON.stringify(faulty.counts)}`,
    );
    assert.ok(answers.unavailable > 20, `${TAG} ${answers.summary()}`);

    // Every acknowledged write is there, exactly: failed writes never landed.
    for (let w = 0; w < 8; w++) {
      for (let k = 0; k < 3; k++) {
        const key = `fz-w${w}-${k}`;
        const got = await answers.take(
          await request(chorus, "GET", `/api/v1/kv/${key}?consistency=strong`),
          `final GET ${key}`,
        );
        const ack = lastAck.get(key);
        if (!ack) {
          assert.equal(got.status, 404, `${TAG} ${key}: nothing acknowledged, yet ${got.status}`);
          continue;
        }
        assert.equal(got.status, 200, `${TAG} final GET ${key}`);
        assert.equal(got.body.version, ack.version, `${TAG} ${key}: version`);
        assert.deepEqual(got.body.value, ack.value, `${TAG} ${key}: value`);
      }
    }
    for (const [id, ack] of ctxAck) {
      const got = await answers.take(
        await request(chorus, "GET", `/api/v1/contexts/${id}?consistency=strong`),
        `final GET context ${id}`,
      );
      assert.equal(got.status, 200, `${TAG} context ${id}`);
      assert.equal(got.body.version, ack.version, `${TAG} context ${id}: version`);
      assert.deepEqual(got.body.context, ack.context, `${TAG} context ${id}`);
    }
    for (const [reel, ids] of reelAck) {
      const got = await answers.take(
        await request(chorus, "GET", `/api/v1/reels/${reel}/updates?limit=500`),
        `final updates ${reel}`,
      );
      assert.equal(got.status, 200, `${TAG} updates of ${reel}`);
      const listed = got.body.updates.map((u: any) => u.id);
      assert.deepEqual(listed, ids, `${TAG} ${reel}: the acknowledged updates, in order`);
    }
    console.log(
      `  faults seed=${SEED}: ${answers.summary()}; injected ${JSON.stringify(faulty.counts)}; ` +
        `Retry-After on ${answers.withRetryAfter} of ${answers.unavailable} 503s`,
    );
  } finally {
    await close();
  }
});

Deno.test("[faults] concurrent incr with failing commits: the counter equals the acknowledged incrs", async () => {
  const { faulty, chorus, close } = await open();
  const answers = new Answers();
  try {
    faulty.enable({
      seed: SEED + 1,
      commitFailRate: 0.35,
      readFailRate: 0.1,
      keyFilter: productKey,
    });
    const values: number[] = [];
    let failed = 0;
    await pool(300, 24, async (i) => {
      const r = await answers.take(
        await request(chorus, "POST", "/api/v1/kv/fz-counter/incr", { by: 1 }),
        `incr #${i}`,
      );
      if (r.status === 200) values.push(r.body.value);
      else failed++;
    });
    faulty.disable();
    assert.ok(failed > 10, `${TAG} too few incrs failed (${failed}): ${answers.summary()}`);
    const got = await answers.take(
      await request(chorus, "GET", "/api/v1/kv/fz-counter?consistency=strong"),
      "final GET counter",
    );
    assert.equal(got.body.value, values.length, `${TAG} counter vs acknowledged incrs`);
    // Each acknowledged incr saw its own value: 1..N, no gaps, no repeats.
    assert.deepEqual(
      [...values].sort((a, b) => a - b),
      Array.from({ length: values.length }, (_, i) => i + 1),
      `${TAG} values answered to incr`,
    );
    // The same through the embedding API (no HTTP in between).
    let acked = 0;
    faulty.enable({ seed: SEED + 2, commitFailRate: 0.35, keyFilter: productKey });
    await pool(200, 16, async () => {
      try {
        await chorus.kv.incr("fz-counter-2", { by: 2 });
        acked++;
      } catch (e: any) {
        assert.equal(e?.code, "unavailable", `${TAG} incr threw ${e}`);
      }
    });
    faulty.disable();
    const entry = await chorus.kv.get("fz-counter-2", { consistency: "strong" });
    assert.equal(entry?.value, acked * 2, `${TAG} embedded counter`);
    console.log(`  incr seed=${SEED}: ${values.length}/300 and ${acked}/200 acknowledged`);
  } finally {
    await close();
  }
});

Deno.test("[faults] read failures on get, getMany and list are 503, not 500, 400 or 404", async () => {
  const { faulty, chorus, close } = await open();
  const answers = new Answers();
  try {
    for (let i = 0; i < 20; i++) await chorus.kv.put(`fz-r${i}`, { i });
    faulty.enable({ seed: SEED + 3, readFailRate: 0.3, listFailRate: 0.3 });
    const kinds = new Map<string, Set<number>>();
    const note = (kind: string, status: number) => {
      if (!kinds.has(kind)) kinds.set(kind, new Set());
      kinds.get(kind)!.add(status);
    };
    await pool(240, 12, async (i) => {
      const key = `fz-r${i % 20}`;
      const which = i % 4;
      const [kind, res] = which === 0
        ? ["get strong", await request(chorus, "GET", `/api/v1/kv/${key}?consistency=strong`)]
        : which === 1
        ? ["bulk get", await request(chorus, "POST", "/api/v1/kv/bulk/get", { keys: [key] })]
        : which === 2
        ? [
          "list",
          await request(chorus, "GET", `/api/v1/kv?prefix=fz-r&limit=5&values=${i % 3 === 0}`),
        ]
        : ["get eventual", await request(chorus, "GET", `/api/v1/kv/${key}?consistency=eventual`)];
      const { status } = await answers.take(res, `${kind} ${key}`);
      // Valid requests on keys that exist: success, or KV's failure.
      assert.ok(status === 200 || status === 503, `${TAG} ${kind} ${key} → ${status}`);
      note(kind, status);
    });
    faulty.disable();
    for (const [kind, statuses] of kinds) {
      assert.ok(statuses.has(200), `${TAG} ${kind} never succeeded: ${[...statuses]}`);
    }
    assert.ok(kinds.get("list")?.has(503), `${TAG} list never failed: ${answers.summary()}`);
    const r = await answers.take(await request(chorus, "GET", "/api/v1/kv?prefix=fz-r"), "list");
    assert.equal(r.body.items.length, 20, `${TAG} list after faults`);
    console.log(`  reads seed=${SEED}: ${answers.summary()}`);
  } finally {
    await close();
  }
});

Deno.test("[faults] commits slower than the request timeout are 504 timeout, and land", async () => {
  const { faulty, chorus, close } = await open({ requestTimeoutMs: 100 });
  const answers = new Answers();
  try {
    faulty.enable({
      seed: SEED + 4,
      delayRate: 0.4,
      delayMs: 400,
      delayOps: ["commit"],
      keyFilter: productKey,
    });
    let ok = 0, timedOut = 0;
    const lastAck = new Map<string, number>();
    await pool(60, 12, async (i) => {
      const r = await answers.take(
        await request(chorus, "POST", "/api/v1/kv/fz-slow-counter/incr", {}),
        `incr #${i}`,
      );
      if (r.status === 200) ok++;
      else if (r.status === 504) timedOut++;
      const key = `fz-slow-${i % 6}`;
      const p = await answers.take(
        await request(chorus, "PUT", `/api/v1/kv/${key}`, { value: i }),
        `PUT ${key}`,
      );
      if (p.status === 200) lastAck.set(key, Math.max(lastAck.get(key) ?? 0, p.body.version));
    });
    assert.ok(timedOut > 0, `${TAG} no commit timed out: ${answers.summary()}`);
    faulty.disable();
    // Every delayed commit still lands (a 504 says "no answer in time", not "not written"): the
    // last ones once their delay is over and the commits queued behind them have run.
    await until(() => faulty.delaying === 0, "the delayed commits");
    const expected = ok + timedOut;
    const deadline = performance.now() + 10_000;
    let counter = await chorus.kv.get("fz-slow-counter", { consistency: "strong" });
    while (counter?.value !== expected && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      counter = await chorus.kv.get("fz-slow-counter", { consistency: "strong" });
    }
    assert.equal(counter?.value, expected, `${TAG} ${ok} ok + ${timedOut} timed out`);
    for (const [key, version] of lastAck) {
      const got = await chorus.kv.get(key, { consistency: "strong" });
      assert.ok(got && got.version >= version, `${TAG} ${key}: ${got?.version} < ${version}`);
    }
    console.log(`  timeouts seed=${SEED}: ${answers.summary()}`);
  } finally {
    await close();
  }
});

Deno.test("[faults] an actor whose load failed loads on the next try, and is not taken for absent", async () => {
  const inner = await Deno.openKv(":memory:");
  const faulty = new FaultyKv(inner, { seed: SEED });
  const first = await Chorus.open({ kv: faulty.kv, scheduler: "off" });
  await first.kv.put("fz-load", { kept: true });
  await first.kv.put("fz-load", { kept: "twice" });
  await first.contexts.set("fz-load-ctx", { title: "kept" });
  await first.close();
  // A second instance on the same KV: its actors have to load.
  const chorus = await Chorus.open({ kv: faulty.kv, scheduler: "off" });
  const answers = new Answers();
  try {
    faulty.enable({ seed: SEED, readFailRate: 1, listFailRate: 1, keyFilter: productKey });
    for (const path of ["/api/v1/kv/fz-load", "/api/v1/contexts/fz-load-ctx"]) {
      const r = await answers.take(await request(chorus, "GET", path), `GET ${path}`);
      assert.equal(r.status, 503, `${TAG} GET ${path} while KV fails`);
    }
    const w = await answers.take(
      await request(chorus, "PUT", "/api/v1/kv/fz-load", { value: "lost?" }),
      "PUT while the load fails",
    );
    assert.equal(w.status, 503, `${TAG} PUT while the load fails`);
    const i = await answers.take(
      await request(chorus, "POST", "/api/v1/kv/fz-load-n/incr", {}),
      "incr while the load fails",
    );
    assert.equal(i.status, 503, `${TAG} incr while the load fails`);
    faulty.disable();

    const got = await answers.take(await request(chorus, "GET", "/api/v1/kv/fz-load"), "GET");
    assert.equal(got.status, 200, `${TAG} GET after faults`);
    assert.deepEqual(got.body.value, { kept: "twice" }, `${TAG} the value before the faults`);
    assert.equal(got.body.version, 2, `${TAG} the version before the faults`);
    const put = await answers.take(
      await request(chorus, "PUT", "/api/v1/kv/fz-load", { value: "after" }),
      "PUT after faults",
    );
    assert.equal(put.body.version, 3, `${TAG} a write after the failed load continues at 3`);
    const ctx = await answers.take(
      await request(chorus, "GET", "/api/v1/contexts/fz-load-ctx"),
      "GET context after faults",
    );
    assert.equal(ctx.status, 200, `${TAG} context after faults`);
    assert.deepEqual(ctx.body.context, { title: "kept" }, `${TAG} context after faults`);
    assert.equal(ctx.body.version, 1, `${TAG} context version`);
  } finally {
    faulty.disable();
    await chorus.close();
    faulty.close();
    inner.close();
  }
});

Deno.test("[faults] an actor whose start failed is idle, and its next message starts it", async () => {
  const inner = await Deno.openKv(":memory:");
  const faulty = new FaultyKv(inner, { seed: SEED });
  const first = await Chorus.open({ kv: faulty.kv, scheduler: "off" });
  await first.kv.put("fz-start", "kept");
  await first.close();
  const chorus = await Chorus.open({ kv: faulty.kv, scheduler: "off" });
  try {
    faulty.enable({ seed: SEED, readFailRate: 1, keyFilter: productKey });
    const failed = await chorus.kv.get("fz-start", { consistency: "strong" }).catch((e) => e);
    assert.equal(failed?.code, "unavailable", `${TAG} the read while the start fails`);
    const actor = chorus.registry.peek("kv", "fz-start");
    assert.equal(actor?.status, "idle", `${TAG} a failed start leaves the actor idle`);
    faulty.disable();
    const got = await chorus.kv.get("fz-start", { consistency: "strong" });
    assert.equal(got?.value, "kept", `${TAG} the next message starts it`);
    assert.equal(chorus.registry.peek("kv", "fz-start"), actor, `${TAG} the same actor`);
    assert.equal(actor?.status, "started");
  } finally {
    faulty.disable();
    await chorus.close();
    faulty.close();
    inner.close();
  }
});

Deno.test("[faults] socket: joins while KV fails are refused, and the next joins work", async () => {
  const inner = await Deno.openKv(":memory:");
  const faulty = new FaultyKv(inner, { seed: SEED });
  const srv = await serve({ kv: faulty.kv, scheduler: "off" });
  const socket = connect(srv.url, { user_id: "fz-user" });
  // The context and user topics log their refused joins as "socket handler failed" (see the
  // report): keep those lines out of the test output, and check the kv topic logs none.
  const logged: string[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => void logged.push(args.map(String).join(" "));
  try {
    await srv.chorus.contexts.set("fz-sock-ctx", { a: 1 });
    // The failing joins use ids never touched, so their actors have to load from KV.
    faulty.enable({ seed: SEED, readFailRate: 1, listFailRate: 1, keyFilter: productKey });
    for (const topic of ["kv:fz-sock-cold", "context:fz-sock-cold", "user:fz-user"]) {
      const failing = socket.channel(topic, {});
      let reason = "";
      await assert.rejects(join(failing), (e: any) => {
        reason = e?.reason;
        return true;
      });
      failing.leave();
      // kv maps KV's failure to its code; other topics answer "join crashed" (see the report).
      if (topic.startsWith("kv:")) assert.equal(reason, "unavailable", `${TAG} ${topic} join`);
    }
    faulty.disable();
    const kv = await join(socket.channel("kv:fz-sock-cold", {}));
    assert.deepEqual(kv, { key: "fz-sock-cold", version: 0 }, `${TAG} kv join after faults`);
    const ctx = await join(socket.channel("context:fz-sock-ctx", {}));
    assert.equal(ctx.type, "full_context", `${TAG} context join after faults`);
    assert.deepEqual(ctx.context, { a: 1 }, `${TAG} context join after faults`);
    const user = await join(socket.channel("user:fz-user", {}));
    assert.equal(typeof user.seq, "number", `${TAG} user join after faults`);
    const kvErrors = logged.filter((l) => /"level":"error"/.test(l) && l.includes("kv:"));
    assert.deepEqual(kvErrors, [], `${TAG} the kv topic logged errors`);
  } finally {
    console.error = consoleError;
    await disconnect(socket);
    await srv.close();
    faulty.close();
    inner.close();
  }
});

// ---------------------------------------------------------------------------------------------
// Store failures: a list that fails while reading, and a combined commit whose answer is lost.

Deno.test({
  name: "[faults] a list that fails while reading is 503 on every route, with Retry-After",
  fn: async () => {
    const inner = await Deno.openKv(":memory:");
    const faulty = new FaultyKv(inner, { seed: SEED });
    const first = await Chorus.open({ kv: faulty.kv, scheduler: "off" });
    await first.contexts.set("fz-c", { a: 1 });
    await first.reels.publish("fz-r", { update_data: { x: 1 } });
    await first.kv.put("fz-k", 1);
    await first.close();
    const chorus = await Chorus.open({ kv: faulty.kv, scheduler: "off" });
    const answers = new Answers();
    try {
      // Store.list returns KV's iterator as it is, so an error while iterating (KV unreachable)
      // is not a ChorusError and every caller but kv list answers 500 `internal`.
      faulty.enable({ seed: SEED, listFailRate: 1 });
      let unavailable = 0;
      for (
        const path of [
          "/api/v1/reels/fz-r",
          "/api/v1/reels/fz-r/comments",
          "/api/v1/reels/fz-r/presence",
          "/api/v1/contexts/fz-c/deltas?since=0",
          "/api/v1/users/fz-u/presence",
          "/api/v1/tokens",
          "/api/v1/status",
          "/api/v1/admin/backup",
        ]
      ) {
        const res = await request(chorus, "GET", path);
        const retryAfter = res.headers.get("retry-after");
        const r = await answers.take(res, `GET ${path}`);
        // Served without a list (from memory or point reads) is fine; a failure is a 503.
        assert.ok(r.status < 500 || r.status === 503, `${TAG} GET ${path}: ${r.status}`);
        if (r.status === 503) {
          unavailable++;
          assert.equal(retryAfter, "1", `${TAG} GET ${path}: no Retry-After`);
        }
      }
      assert.ok(unavailable >= 4, `${TAG} only ${unavailable} routes met the failing list`);
    } finally {
      faulty.disable();
      await chorus.close();
      faulty.close();
      inner.close();
    }
  },
});

Deno.test({
  name: "[faults] a combined commit that lands and then throws is not applied twice",
  fn: async () => {
    const { faulty, chorus, close } = await open();
    try {
      // A combined commit that threw may have landed (a lost answer from a remote KV): its parts
      // must not be committed again one by one, or their ops would be applied twice.
      faulty.enable({ seed: SEED, failAfterCommit: 0.3, keyFilter: productKey });
      let attempts = 0;
      await Promise.all(Array.from({ length: 40 }, async (_, i) => {
        for (let j = 0; j < 5; j++) {
          attempts++;
          await chorus.kv.incr(`fz-n${i % 8}`).catch(() => {});
        }
      }));
      faulty.disable();
      let total = 0;
      for (let i = 0; i < 8; i++) {
        total += (await chorus.kv.get(`fz-n${i}`, { consistency: "strong" }))!.value as number;
      }
      assert.ok(total <= attempts, `${TAG} ${total} increments landed for ${attempts} incr calls`);
    } finally {
      await close();
    }
  },
});
