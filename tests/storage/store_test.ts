/**
 * Group commit under conflict: intents that queued together go out in one atomic commit; when one
 * of them has a stale check, the others still land and only that one is told it conflicted (at
 * the store), then retried by its actor until it lands or reports `conflict` (at the API).
 * @module
 */
import assert from "node:assert/strict";
import { Chorus } from "../../mod.ts";
import { Store } from "../../storage/store.ts";
import { tempKvPath } from "../_helpers.ts";

/** Two handles on one temp KV file (as two instances have), closed and removed by `close`. */
async function twoHandles() {
  const { path, cleanup } = await tempKvPath();
  const kvA = await Deno.openKv(path);
  const kvB = await Deno.openKv(path);
  return {
    kvA,
    kvB,
    async close() {
      kvA.close();
      kvB.close();
      await cleanup();
    },
  };
}

/** `kv` with method `name` replaced by `make(original)`; every other member as it is. */
function withMethod<K extends keyof Deno.Kv>(
  kv: Deno.Kv,
  name: K,
  make: (original: Deno.Kv[K]) => Deno.Kv[K],
): Deno.Kv {
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      const bound = typeof value === "function" ? value.bind(target) : value;
      return prop === name ? make(bound) : bound;
    },
  });
}

/** What an atomic commit answers. */
type Committed = Deno.KvCommitResult | Deno.KvCommitError;

/**
 * `kv` with every atomic commit watched: `around(sets, commit)` is called with the commit's number of
 * sets and runs the commit itself (to count, hold or time it).
 */
function watchCommits(
  kv: Deno.Kv,
  around: (sets: number, commit: () => Promise<Committed>) => Promise<Committed>,
): Deno.Kv {
  return withMethod(kv, "atomic", (atomic) => () => {
    const op = atomic();
    const commit = op.commit.bind(op);
    let sets = 0;
    const set = op.set.bind(op);
    op.set = (...args) => {
      sets++;
      return set(...args);
    };
    op.commit = () => around(sets, commit);
    return op;
  });
}

Deno.test("Store: a combined commit with one stale check lands the others and reports only that one", async () => {
  const { kvA, kvB, close } = await twoHandles();
  const store = new Store(kvA, { commitsInFlight: 1 });
  try {
    await kvA.set(["t", "c"], 0);
    const stale = (await kvA.get(["t", "c"])).versionstamp;
    // Another handle on the same file moves the key after it was read.
    await kvB.set(["t", "c"], "moved");
    const set = (name: string) => ({
      checks: [],
      mutations: [{ type: "set" as const, key: ["t", name], value: name }],
      bytes: 64,
    });
    const first = store.commit(set("first")); // in flight: the next three queue behind it
    const b = store.commit(set("b"));
    const c = store.commit({
      checks: [{ key: ["t", "c"], versionstamp: stale }],
      mutations: [{ type: "set", key: ["t", "c"], value: "c" }],
      bytes: 64,
    });
    const d = store.commit(set("d"));
    const [r0, rb, rc, rd] = await Promise.all([first, b, c, d]);
    assert.equal(r0.ok, true);
    assert.equal(rb.ok, true, "the intent queued before the conflicting one lands");
    assert.equal(rc.ok, false, "the conflicting intent is told so");
    assert.equal(rd.ok, true, "the intent queued after the conflicting one lands");
    // The first alone, the three together (refused), then b and d together: the stale one is
    // found by reading its key, not by committing each intent alone.
    assert.equal(store.stats.commits, 3, "the fresh intents went out together again");
    assert.equal(store.stats.intents, 3, "intents committed: first, b and d");
    assert.equal(store.stats.conflicts, 1, "only the stale intent counts as a conflict");
    for (const name of ["first", "b", "d"]) {
      assert.equal((await kvB.get(["t", name])).value, name);
    }
    assert.equal((await kvB.get(["t", "c"])).value, "moved", "the stale write did not land");
  } finally {
    store.close();
    await close();
  }
});

Deno.test("Store: a write landing between the narrowing read and the next commit is caught, and the others still land together", async () => {
  const { kvA, kvB, close } = await twoHandles();
  let moveAfterRead: (() => Promise<unknown>) | undefined;
  // kvA, except that the first getMany (the narrowing read) is followed by another handle's write.
  const racing = withMethod(
    kvA,
    "getMany",
    (getMany) =>
      (async (...args: Parameters<Deno.Kv["getMany"]>) => {
        const found = await getMany(...args);
        const move = moveAfterRead;
        moveAfterRead = undefined;
        await move?.();
        return found;
      }) as Deno.Kv["getMany"],
  );
  const store = new Store(racing, { commitsInFlight: 1 });
  try {
    await kvA.set(["t", "c"], 0);
    await kvA.set(["t", "d"], 0);
    const staleC = (await kvA.get(["t", "c"])).versionstamp;
    const freshD = (await kvA.get(["t", "d"])).versionstamp;
    await kvB.set(["t", "c"], "moved");
    moveAfterRead = () => kvB.set(["t", "d"], "moved later");
    const checked = (name: string, versionstamp: string | null) => ({
      checks: [{ key: ["t", name], versionstamp }],
      mutations: [{ type: "set" as const, key: ["t", name], value: name }],
      bytes: 64,
    });
    const first = store.commit({
      checks: [],
      mutations: [{ type: "set", key: ["t", "a"], value: "a" }],
      bytes: 64,
    });
    const b = store.commit(checked("b", null));
    const c = store.commit(checked("c", staleC));
    const d = store.commit(checked("d", freshD));
    const e = store.commit(checked("e", null));
    const [r0, rb, rc, rd, re] = await Promise.all([first, b, c, d, e]);
    assert.equal(r0.ok, true);
    assert.equal(rc.ok, false, "stale before the first try");
    assert.equal(rd.ok, false, "moved after the narrowing read: its second try is refused too");
    assert.equal(rb.ok, true);
    assert.equal(re.ok, true);
    // a; b c d e (refused); b d e (refused: d moved); b e.
    assert.equal(store.stats.commits, 4);
    assert.equal(store.stats.conflicts, 2, "c and d");
    assert.equal((await kvB.get(["t", "b"])).value, "b");
    assert.equal((await kvB.get(["t", "e"])).value, "e");
    assert.equal((await kvB.get(["t", "c"])).value, "moved");
    assert.equal((await kvB.get(["t", "d"])).value, "moved later", "the stale write did not land");
  } finally {
    store.close();
    await close();
  }
});

Deno.test("Store: two commits go out at once; what queues meanwhile is shared between them", async () => {
  const { path, cleanup } = await tempKvPath();
  const kv = await Deno.openKv(path);
  let inFlight = 0, most = 0;
  const sizes: number[] = [];
  // The same handle, with each atomic commit watched: its sets, and how many are in flight at once.
  const watched = watchCommits(kv, async (sets, commit) => {
    sizes.push(sets);
    most = Math.max(most, ++inFlight);
    try {
      return await commit();
    } finally {
      inFlight--;
    }
  });
  const store = new Store(watched);
  try {
    const set = (i: number) =>
      store.commit({
        checks: [],
        mutations: [{ type: "set", key: ["t", i], value: i }],
        bytes: 64,
      });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => set(i)));
    assert.ok(results.every((r) => r.ok));
    assert.equal(most, 2, "two commits were in flight together, never more");
    // The first two alone; of the eight that queued behind them, the first slot free takes its
    // share of all that waits or is in flight (ceil((8 + 1) / 2) = 5), the other the rest.
    assert.deepEqual(sizes, [1, 1, 5, 3]);
    assert.equal(store.stats.intents, 10);
    for (let i = 0; i < 10; i++) assert.equal((await kv.get(["t", i])).value, i);
  } finally {
    store.close();
    kv.close();
    await cleanup();
  }
});

Deno.test("Store: writers that each await their own commit keep two commits of about the same size", async () => {
  const { path, cleanup } = await tempKvPath();
  const kv = await Deno.openKv(path);
  const sizes: number[] = [];
  const watched = watchCommits(kv, (sets, commit) => {
    sizes.push(sets);
    return commit();
  });
  const store = new Store(watched);
  try {
    // 16 closed loops: each awaits its own write before the next, as callers awaiting a put do.
    await Promise.all(Array.from({ length: 16 }, async (_, w) => {
      for (let i = 0; i < 30; i++) {
        const r = await store.commit({
          checks: [],
          mutations: [{ type: "set", key: ["loop", w], value: i }],
          bytes: 64,
        });
        assert.ok(r.ok);
      }
    }));
    // Taking everything that waits settles into one commit of 15 and one of 1, in turn, so KV and
    // the writers take turns; a share each keeps both commits at about 8. Judged away from the
    // start and the end (where writers finish at different times), and by the median and the
    // share of tiny commits, so that a commit running briefly ahead of the other as completions
    // interleave (12 then 4) does not count against it on a loaded machine.
    const middle = sizes.slice(4, -8);
    const sorted = [...middle].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    const tiny = middle.filter((n) => n <= 2).length;
    const seen = `commit sizes ${middle.join(",")}`;
    assert.ok(median >= 6 && median <= 10, `median ${median}; ${seen}`);
    assert.ok(tiny <= middle.length / 5, `${tiny} commits of 1 or 2; ${seen}`);
    assert.equal(store.stats.intents, 16 * 30);
    for (let w = 0; w < 16; w++) assert.equal((await kv.get(["loop", w])).value, 29);
  } finally {
    store.close();
    kv.close();
    await cleanup();
  }
});

Deno.test("Store: behind a slow commit of one large intent, what queued goes out together, not halved again and again", async () => {
  const { path, cleanup } = await tempKvPath();
  const kv = await Deno.openKv(path);
  const sizes: number[] = [];
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => openGate = resolve);
  // The large intent's commit waits at the gate, so it stays in flight while the others land.
  const watched = watchCommits(kv, async (sets, commit) => {
    sizes.push(sets);
    if (sets >= 200) await gate;
    return await commit();
  });
  const store = new Store(watched);
  try {
    const large = store.commit({
      checks: [],
      mutations: Array.from({ length: 200 }, (_, i) => ({
        type: "set" as const,
        key: ["large", i],
        value: i,
      })),
      bytes: 200 * 64,
    });
    const small = Array.from({ length: 100 }, (_, i) =>
      store.commit({
        checks: [],
        mutations: [{ type: "set", key: ["small", i], value: i }],
        bytes: 64,
      }));
    assert.ok((await Promise.all(small)).every((r) => r.ok));
    openGate();
    assert.ok((await large).ok);
    // The large one, the first small one alone, then the 99 that queued behind them in one commit
    // (counting intents instead of work sent them as 50, 25, 13, 6, 3, 2).
    assert.deepEqual(sizes, [200, 1, 99]);
    for (let i = 0; i < 100; i++) assert.equal((await kv.get(["small", i])).value, i);
  } finally {
    store.close();
    kv.close();
    await cleanup();
  }
});

Deno.test("Store: two instances on one KV file: a write whose head moved retries and lands, a stale If-Match reports conflict, the writes queued with them land", async () => {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ path, scheduler: "off" });
  const b = await Chorus.open({ path, scheduler: "off" });
  try {
    await a.kv.put("gc-hot", "a1");
    await a.kv.put("gc-cas", "a1");
    // b moves both heads: a's cached versionstamps are now stale.
    await b.kv.put("gc-hot", "b2");
    await b.kv.put("gc-cas", "b2");
    const results = await Promise.allSettled([
      a.kv.put("gc-x", "x"),
      a.kv.put("gc-hot", "a3"),
      a.kv.put("gc-cas", "a3", { ifMatch: 1 }),
      a.kv.put("gc-y", "y"),
    ]);
    const [x, hot, cas, y] = results;
    assert.equal(x.status, "fulfilled");
    assert.equal(y.status, "fulfilled");
    assert.equal(hot.status, "fulfilled", "the plain write retried on the fresh head");
    assert.equal(hot.value.version, 3, "after b's version 2");
    assert.equal(cas.status, "rejected");
    assert.equal((cas.reason as { code?: string }).code, "conflict");
    const read = (key: string) => b.kv.get(key, { consistency: "strong" });
    assert.equal((await read("gc-hot"))?.value, "a3");
    assert.equal((await read("gc-cas"))?.value, "b2", "the refused CAS wrote nothing");
    assert.equal((await read("gc-x"))?.value, "x");
    assert.equal((await read("gc-y"))?.value, "y");
  } finally {
    await a.close();
    await b.close();
    await cleanup();
  }
});

Deno.test("Store: getAll reads more keys than one getMany takes, in the order asked, absent ones included", async () => {
  const kv = await Deno.openKv(":memory:");
  let getManys = 0;
  const store = new Store(withMethod(kv, "getMany", (original) =>
    ((keys, options) => {
      getManys++;
      assert.ok(keys.length <= 10, `one getMany of ${keys.length} keys`);
      return original(keys, options);
    }) as Deno.Kv["getMany"]));
  try {
    for (let i = 0; i < 25; i += 2) await kv.set(["k", i], `v${i}`);
    const keys = Array.from({ length: 25 }, (_, i) => ["k", 24 - i]);
    const found = await store.getAll(keys);
    assert.deepEqual(
      found.map((e) => e.value),
      keys.map(([, i]) => (i as number) % 2 ? null : `v${i}`),
    );
    assert.equal(getManys, 3);
  } finally {
    kv.close();
  }
});
