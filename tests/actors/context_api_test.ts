import assert from "node:assert/strict";
import { call, openTest } from "../_helpers.ts";
import type { ContextEvent } from "../../mod.ts";
import type { JsonObject } from "../../deltas/json.ts";

Deno.test("contexts: set/update/get/delete through chorus.contexts", async () => {
  const { chorus } = await openTest();
  try {
    const c = chorus.contexts;
    assert.deepEqual(await c.set("a", { x: 1 }), { id: "a", version: 1, context: { x: 1 } });
    assert.deepEqual((await c.update("a", { y: { z: 1 } })).context, { x: 1, y: { z: 1 } });
    const jp = await c.update("a", [{ op: "replace", path: "/y/z", value: 2 }]);
    assert.deepEqual(jp, { id: "a", version: 3, context: { x: 1, y: { z: 2 } } });
    assert.ok(Object.isFrozen(jp.context), "the cached context is frozen");
    assert.equal((await c.get("a", { consistency: "eventual" }))?.version, 3);
    assert.deepEqual(await c.delete("a"), { deleted: true, version: 4 });
    assert.equal(await c.get("a"), null);
    await assert.rejects(c.update("a", { x: 2 }), { code: "not_found" });
    await assert.rejects(c.set("", {}), { code: "invalid_request" });
    await assert.rejects(c.sync("a", -1), { code: "invalid_request" });
  } finally {
    await chorus.close();
  }
});

Deno.test("contexts: caller objects are copied, so changing them later changes nothing", async () => {
  const { chorus } = await openTest();
  try {
    const mine = { list: [1], nested: { a: 1 } };
    await chorus.contexts.set("own", mine);
    mine.list.push(2);
    mine.nested.a = 9;
    assert.deepEqual((await chorus.contexts.get("own"))?.context, { list: [1], nested: { a: 1 } });
  } finally {
    await chorus.close();
  }
});

Deno.test("contexts: concurrent updates on one instance are group-committed, gapless", async () => {
  const { chorus } = await openTest();
  try {
    await chorus.contexts.set("g", {});
    const before = chorus.store.stats.commits;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => chorus.contexts.update("g", { [`k${i}`]: i })),
    );
    assert.deepEqual(
      results.map((r) => r.version).sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i + 2),
    );
    assert.ok(chorus.store.stats.commits - before < 10, "batched into few commits");
    const deltas = await chorus.contexts.deltas("g");
    assert.equal(deltas.deltas.length, 50);
    assert.equal(Object.keys((await chorus.contexts.get("g"))!.context).length, 50);
  } finally {
    await chorus.close();
  }
});

Deno.test("contexts: each answer of a batch holds the context at its own version, however it is read", async () => {
  const { chorus } = await openTest();
  try {
    const start = { title: "room", people: { a: { cursor: 0 }, b: { cursor: 0 } } };
    await chorus.contexts.set("batch", start);
    const patches: unknown[] = [
      { people: { a: { cursor: 1 } } },
      { people: { b: { cursor: 1 }, c: { cursor: 0 } } },
      [{ op: "replace", path: "/title", value: "renamed" }],
      { people: { a: null } },
      { people: { a: { cursor: 2 } } },
      { title: "renamed" },
      { people: { c: { action: "kept as data" } } },
    ];
    const answers = await Promise.all(patches.map((p) => chorus.contexts.update("batch", p)));
    // The expected versions, made one patch at a time by the JSON Patch and merge patch rules.
    const expected: { version: number; context: unknown }[] = [];
    let context: Record<string, unknown> = structuredClone(start);
    let version = 1;
    const merge = (target: unknown, patch: unknown): unknown => {
      if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
      const out = { ...(target as Record<string, unknown>) };
      for (const [k, v] of Object.entries(patch)) {
        if (v === null) delete out[k];
        else out[k] = merge(typeof out[k] === "object" ? out[k] : {}, v);
      }
      return out;
    };
    for (const patch of patches) {
      const next = Array.isArray(patch)
        ? { ...context, title: "renamed" }
        : merge(context, patch) as Record<string, unknown>;
      if (JSON.stringify(next) !== JSON.stringify(context)) version++;
      context = next;
      expected.push({ version, context: structuredClone(context) });
    }
    // Read from the last to the first: each is made from the versions before it.
    for (let i = answers.length - 1; i >= 0; i--) {
      assert.equal(answers[i].version, expected[i].version, `answer ${i}`);
      assert.deepEqual(answers[i].context, expected[i].context, `answer ${i}`);
      assert.deepEqual(Object.keys(answers[i]), ["id", "version", "context"]);
    }
    // Each of a new batch's answers is first read another way: JSON, a spread, a structured clone.
    const fresh = await Promise.all(
      [10, 11, 12, 13].map((n) =>
        chorus.contexts.update("batch", { people: { a: { cursor: n } } })
      ),
    );
    const cursor = (context: unknown) =>
      ((context as JsonObject).people as JsonObject).a as JsonObject;
    assert.deepEqual(cursor(JSON.parse(JSON.stringify(fresh[0])).context), { cursor: 10 });
    assert.deepEqual(cursor({ ...fresh[1] }.context), { cursor: 11 });
    assert.deepEqual(cursor(structuredClone(fresh[2]).context), { cursor: 12 });
    // The batch's last answer holds the committed context as a plain member; earlier ones hold it
    // once read.
    assert.ok("value" in Object.getOwnPropertyDescriptor(fresh[3], "context")!);
    assert.equal(fresh[3].context, (await chorus.contexts.get("batch"))!.context);
    assert.ok("value" in Object.getOwnPropertyDescriptor(fresh[0], "context")!);
    assert.deepEqual(fresh[3].context.people, {
      a: { cursor: 13 },
      b: { cursor: 1 },
      c: { cursor: 0, action: "kept as data" },
    });
    const lone = await chorus.contexts.update("batch", { title: "alone" });
    assert.ok("value" in Object.getOwnPropertyDescriptor(lone, "context")!);
    // An answer frozen before it is read still gives its context; an unfrozen one can be changed.
    const more = await Promise.all(
      [0, 1, 2].map((i) => chorus.contexts.update("batch", { people: { b: { cursor: 20 + i } } })),
    );
    Object.freeze(more[0]);
    assert.deepEqual((more[0].context.people as JsonObject).b, { cursor: 20 });
    assert.equal(more[0].context, more[0].context);
    assert.throws(() => {
      (more[0] as { context: unknown }).context = {};
    }, TypeError);
    more[1].context = { replaced: true };
    assert.deepEqual(more[1], {
      id: "batch",
      version: more[1].version,
      context: { replaced: true },
    });
    const now = await chorus.contexts.get("batch");
    assert.deepEqual(now!.context, more[2].context);
    assert.ok(Object.isFrozen(now!.context) && Object.isFrozen(now!.context.people));
    assert.ok(Object.isFrozen(fresh[0].context.people));
    // The deltas of the batch take each version to the next.
    const log = await chorus.contexts.deltas("batch", { since: 1 });
    assert.deepEqual(
      log.deltas.map((d) => d.version),
      Array.from({ length: 14 }, (_, i) => i + 2),
    );
  } finally {
    await chorus.close();
  }
});

Deno.test("contexts: a failing op in a batch fails alone and leaves no trace", async () => {
  const { chorus } = await openTest();
  try {
    await chorus.contexts.set("f", { a: 1 });
    const outcomes = await Promise.allSettled([
      chorus.contexts.update("f", { b: 1 }),
      chorus.contexts.update("f", [{ op: "test", path: "/a", value: 2 }]),
      chorus.contexts.update("f", { c: 1 }),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status), ["fulfilled", "rejected", "fulfilled"]);
    const now = await chorus.contexts.get("f");
    assert.deepEqual(now, { id: "f", version: 3, context: { a: 1, b: 1, c: 1 } });
  } finally {
    await chorus.close();
  }
});

Deno.test("contexts: subscribers get every change in version order, and a backlog with since", async () => {
  const { chorus } = await openTest();
  try {
    const seen: ContextEvent[] = [];
    const stop = await chorus.contexts.subscribe("sub", (e) => seen.push(e));
    await chorus.contexts.set("sub", { a: 1 });
    await Promise.all([
      chorus.contexts.update("sub", { b: 2 }),
      chorus.contexts.update("sub", { a: null }),
    ]);
    await chorus.contexts.delete("sub");
    assert.deepEqual(seen.map((e) => [e.type, e.version]), [
      ["delta", 1],
      ["delta", 2],
      ["delta", 3],
      ["deleted", 4],
    ]);
    assert.deepEqual(seen[0], {
      type: "delta",
      id: "sub",
      from_version: 0,
      version: 1,
      delta: { a: { action: "added", value: 1 } },
      at: seen[0].at,
    });
    stop();
    await chorus.contexts.set("sub", { z: 0 });
    assert.equal(seen.length, 4, "no events after unsubscribe");
    await chorus.contexts.update("sub", { z: 1 });
    await chorus.contexts.update("sub", { z: 2 });
    const late: ContextEvent[] = [];
    const stop2 = await chorus.contexts.subscribe("sub", (e) => late.push(e), { since: 5 });
    await chorus.contexts.update("sub", { z: 3 });
    assert.deepEqual(late.map((e) => e.version), [6, 7, 8]);
    stop2();
  } finally {
    await chorus.close();
  }
});

Deno.test("contexts: expiry (with auto-delete) follows the injected clock; expired data is never returned", async () => {
  const { chorus, clock } = await openTest({
    config: { contextTtlMs: 10_000, deltaTtlMs: 4_000, contextAutoDelete: true },
  });
  try {
    const c = chorus.contexts;
    await c.set("e", { n: 0 });
    await c.update("e", { n: 1 });
    clock.advance(2_000);
    await c.update("e", { n: 2 });
    assert.equal((await c.sync("e", 1)).type, "delta");
    clock.advance(2_500); // the delta of version 2 is now older than deltaTtl
    assert.equal((await c.sync("e", 1)).type, "full_context");
    assert.equal((await c.sync("e", 2)).type, "delta");
    assert.deepEqual((await c.deltas("e")).deltas.map((d) => d.version), [3]);
    clock.advance(10_000); // untouched for longer than contextTtl
    assert.equal(await c.get("e"), null);
    assert.equal(await c.get("e", { consistency: "eventual" }), null);
    assert.equal(await c.get("e", { consistency: "strong" }), null);
    await assert.rejects(c.sync("e", 3), { code: "not_found" });
    // Cleanup removes the expired context and its deltas.
    const cleaned = await c.cleanup();
    assert.deepEqual([cleaned.contexts, cleaned.deltas], [1, 2]);
    // A write after expiry starts afresh (new generation), versions keep rising.
    const again = await c.set("e", { fresh: true });
    assert.equal(again.version, 5, "the tombstone took version 4");
    assert.equal((await c.sync("e", 3)).type, "full_context");
  } finally {
    await chorus.close();
  }
});

Deno.test("contexts: cleanup with auto-delete removes expired contexts and their deltas", async () => {
  const { chorus, clock } = await openTest({
    config: { contextTtlMs: 10_000, contextAutoDelete: true },
  });
  try {
    const c = chorus.contexts;
    for (const id of ["x1", "x2", "x3"]) {
      await c.set(id, { n: 0 });
      await c.update(id, { n: 1 });
    }
    clock.advance(5_000);
    await c.update("x3", { n: 2 }); // x3 stays fresh
    clock.advance(6_000);
    const first = await c.cleanup({ limit: 2 });
    assert.deepEqual([first.contexts, first.deltas], [1, 1], "the limit bounds one run");
    // The limit counts items exactly: a limit of 1 removes one context and none of its deltas
    // (they are left for a later run, hidden by the tombstone).
    const one = await c.cleanup({ limit: 1 });
    assert.deepEqual([one.contexts, one.deltas], [1, 0]);
    const rest = await c.cleanup();
    assert.deepEqual([rest.contexts, rest.deltas], [0, 1]);
    assert.deepEqual([(await c.cleanup()).contexts], [0]);
    assert.equal(await c.get("x1"), null);
    assert.equal((await c.get("x3"))?.version, 3);
    const recreated = await c.set("x1", { back: 1 });
    assert.equal(recreated.version, 4, "a tombstone keeps the version");
  } finally {
    await chorus.close();
  }
});

Deno.test("contexts: an embedder's delta format is served by sync", async () => {
  const { Chorus } = await import("../../mod.ts");
  const chorus = await Chorus.open({
    path: ":memory:",
    deltaFormats: [{
      name: "keys",
      diff: (from, to) => Object.keys(to).filter((k) => from[k] !== to[k]),
      apply: (context) => context,
    }],
  });
  try {
    await chorus.contexts.set("k", { a: 1, b: 1 });
    await chorus.contexts.update("k", { b: 2 });
    assert.deepEqual(await chorus.contexts.sync("k", 1, { format: "keys" }), {
      type: "delta",
      from_version: 1,
      version: 2,
      delta: ["b"],
    });
  } finally {
    await chorus.close();
  }
});

Deno.test("contexts: large contexts are chunked and read back", async () => {
  const { chorus, clock } = await openTest({ config: { compression: "off" } });
  try {
    const big = { text: "x".repeat(200_000), n: 1 };
    await chorus.contexts.set("big", big);
    await chorus.contexts.update("big", { n: 2 });
    chorus.registry.sweep();
    const { Chorus } = await import("../../mod.ts");
    const other = await Chorus.open({ kv: chorus.store.kv, scheduler: "off", clock });
    try {
      const got = await other.contexts.get("big");
      assert.equal(got?.version, 2);
      assert.equal((got!.context.text as string).length, 200_000);
      assert.equal((await other.contexts.sync("big", 1)).type, "delta");
    } finally {
      await other.close();
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("contexts: with auto-delete off, CHORUS_CONTEXT_TTL does not expire contexts", async () => {
  const { chorus, clock } = await openTest({
    config: { contextTtlMs: 10_000, contextAutoDelete: false },
  });
  try {
    const c = chorus.contexts;
    await c.set("kept", { n: 0 });
    await c.update("kept", { n: 1 });
    clock.advance(60_000); // six TTLs untouched
    assert.equal((await c.get("kept"))?.version, 2);
    assert.equal((await c.get("kept", { consistency: "eventual" }))?.version, 2);
    assert.equal((await c.get("kept", { consistency: "strong" }))?.version, 2);
    assert.equal((await c.sync("kept", 2)).type, "no_change");
    assert.equal((await c.update("kept", { n: 2 })).version, 3, "a patch applies");
    clock.advance(60_000);
    assert.equal((await c.cleanup()).contexts, 0);
    const http = await call(chorus.app, "GET", "/api/v1/contexts/kept");
    assert.equal(http.status, 200);
    assert.deepEqual(http.body.context, { n: 2 });
  } finally {
    await chorus.close();
  }
});

Deno.test("contexts: refused input comes back as a rejected promise, never a throw", async () => {
  const { chorus } = await openTest();
  try {
    let update: Promise<unknown> | undefined, sync: Promise<unknown> | undefined;
    assert.doesNotThrow(() => {
      update = chorus.contexts.update("", { a: 1 });
      sync = chorus.contexts.sync("x", -1);
    });
    await assert.rejects(update!, /context id/);
    await assert.rejects(sync!, /non-negative integer/);
    await assert.rejects(chorus.contexts.update("x", 5), /must be a JSON object/);
    await assert.rejects(chorus.contexts.sync("x", 1, { format: "nope" }), /Cannot use format/);
  } finally {
    await chorus.close();
  }
});
