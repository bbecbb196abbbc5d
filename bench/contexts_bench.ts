/**
 * Chord's four context scenarios, embedded, on a durable temp-dir KV file: one context with 50
 * participants and 100 contexts with 50 participants each, "stateless" (after each round of
 * updates every participant calls `sync` with its last version) and "stateful" (every participant
 * holds a subscriber receiving deltas as they happen). One iteration = every participant makes one
 * update (a merge patch of its own cursor) and catches up; participants act concurrently. Each group
 * has a baseline doing the same JSON work — apply the patches (a round's in place on one working
 * copy, frozen once, as a write batch does), diff, keep the delta log, compute each participant's
 * merged delta (or hand each subscriber each delta) — with no actor and no KV.
 *
 * Also: one writer updating a large context (120 KB and 480 KB of JSON), each update awaited (and,
 * in one row, awaited until a subscriber on a second instance of the same file has it), against
 * one durable commit (a raw `kv.set`) on the same file: the floor of any durable update.
 *
 * Run: `deno bench -A bench/contexts_bench.ts` (iterations/s = 1 / avg; p99 is in the table).
 * @module
 */
import { Chorus } from "../mod.ts";
import type { ContextEvent } from "../mod.ts";
import { type ChordDelta, diffChord } from "../deltas/chord.ts";
import { mergePatchInPlace, rewindShared } from "../contexts/structural.ts";
import type { JsonObject } from "../deltas/json.ts";
import { deepFreeze } from "../storage/codec.ts";

const PARTICIPANTS = 50;
const dir = await Deno.makeTempDir({ prefix: "chorus-bench-contexts-" });
const chorus = await Chorus.open({
  path: `${dir}/bench.kv`,
  scheduler: "off",
  config: { deltaThreshold: 100 },
});
// A second handle on the same file, for the floor of an iteration: one durable commit.
const raw = await Deno.openKv(`${dir}/bench.kv`);
let commits = 0;
globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch {
    // best effort
  }
});

function initial(): JsonObject {
  const participants: JsonObject = {};
  for (let p = 0; p < PARTICIPANTS; p++) participants[`p${p}`] = { name: `user ${p}`, cursor: 0 };
  return { title: "benchmark room", participants };
}

const patchOf = (p: number, n: number): JsonObject => ({
  participants: { [`p${p}`]: { cursor: n } },
});

// ---- Chorus: stateless (sync with the last version) ----

async function statelessSetup(ids: string[]) {
  const last = new Map<string, number[]>();
  for (const id of ids) {
    const { version } = await chorus.contexts.set(id, initial());
    last.set(id, new Array(PARTICIPANTS).fill(version));
  }
  let n = 0;
  return async () => {
    n++;
    await Promise.all(ids.map(async (id) => {
      const versions = last.get(id)!;
      await Promise.all(versions.map(async (_, p) => {
        await chorus.contexts.update(id, patchOf(p, n));
      }));
      await Promise.all(versions.map(async (v, p) => {
        const sync = await chorus.contexts.sync(id, v);
        if (sync.type === "no_change") throw new Error("expected a change");
        versions[p] = sync.version;
      }));
    }));
  };
}

// ---- Chorus: stateful (subscribers) ----

async function statefulSetup(ids: string[]) {
  const inbox = new Map<string, { last: number; received: number }[]>();
  for (const id of ids) {
    await chorus.contexts.set(id, initial());
    const participants = Array.from({ length: PARTICIPANTS }, () => ({ last: 0, received: 0 }));
    for (const participant of participants) {
      await chorus.contexts.subscribe(id, (e: ContextEvent) => {
        participant.last = e.version;
        participant.received++;
      });
    }
    inbox.set(id, participants);
  }
  let n = 0;
  return async () => {
    n++;
    await Promise.all(ids.map(async (id) => {
      const results = await Promise.all(
        inbox.get(id)!.map((_, p) => chorus.contexts.update(id, patchOf(p, n))),
      );
      const top = Math.max(...results.map((r) => r.version));
      for (const participant of inbox.get(id)!) {
        if (participant.last !== top) throw new Error("a subscriber is behind");
      }
    }));
  };
}

// ---- Baseline: the same JSON work, no actor, no KV ----

function baselineSetup(count: number, stateful: boolean) {
  const rooms = Array.from({ length: count }, () => ({
    context: deepFreeze(initial()),
    version: 1,
    log: [] as ChordDelta[],
    last: new Array(PARTICIPANTS).fill(1) as number[],
  }));
  let n = 0;
  return () => {
    n++;
    for (const room of rooms) {
      // One batch of updates per room, as Chorus commits them: applied to the batch's working copy,
      // which is frozen once at the end.
      for (let p = 0; p < PARTICIPANTS; p++) {
        const { context: next, delta } = mergePatchInPlace(room.context, deepFreeze(patchOf(p, n)));
        room.context = next;
        room.version++;
        room.log.push(delta);
        if (room.log.length > 100) room.log.shift();
        if (stateful) { for (let s = 0; s < PARTICIPANTS; s++) room.last[s] = room.version; }
      }
      deepFreeze(room.context);
      if (!stateful) {
        // Every participant is at the same version: one merged delta, as Chorus's cache gives.
        const behind = room.version - room.last[0];
        const old = rewindShared(room.context, room.log.slice(-behind));
        const merged = diffChord(old, room.context);
        if (!merged) throw new Error("unreachable");
        room.last.fill(room.version);
      }
    }
  };
}

// ---- Optional: over HTTP through app.fetch (no sockets) ----

async function httpSetup(id: string) {
  await chorus.contexts.set(id, initial());
  const last = new Array(PARTICIPANTS).fill(1) as number[];
  let n = 0;
  const req = async (method: string, path: string, body?: unknown) => {
    const res = await chorus.app.request(path, {
      method,
      headers: body ? { "content-type": "application/merge-patch+json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    return await res.json();
  };
  return async () => {
    n++;
    await Promise.all(last.map((_, p) => req("PATCH", `/api/v1/contexts/${id}`, patchOf(p, n))));
    await Promise.all(last.map(async (v, p) => {
      last[p] = (await req("GET", `/api/v1/contexts/${id}/sync?version=${v}`)).version;
    }));
  };
}

const single = ["single"];
const hundred = Array.from({ length: 100 }, (_, i) => `room${i}`);
const singleStateful = ["single-sub"];
const hundredStateful = Array.from({ length: 100 }, (_, i) => `sub${i}`);

const runs = {
  singleStateless: await statelessSetup(single),
  singleStateful: await statefulSetup(singleStateful),
  hundredStateless: await statelessSetup(hundred),
  hundredStateful: await statefulSetup(hundredStateful),
  http: await httpSetup("http"),
};

Deno.bench("baseline: JSON work only, 1 context × 50, stateless", {
  group: "1x50 stateless",
  baseline: true,
  n: 2000,
  warmup: 100,
}, baselineSetup(1, false));
Deno.bench("chorus embedded, 1 context × 50, stateless", {
  group: "1x50 stateless",
  n: 1000,
  warmup: 50,
}, runs.singleStateless);
Deno.bench("chorus over HTTP (app.fetch), 1 context × 50, stateless", {
  group: "1x50 stateless",
  n: 200,
  warmup: 20,
}, runs.http);

Deno.bench("baseline: JSON work only, 1 context × 50, stateful", {
  group: "1x50 stateful",
  baseline: true,
  n: 2000,
  warmup: 100,
}, baselineSetup(1, true));
Deno.bench("chorus embedded, 1 context × 50, stateful", {
  group: "1x50 stateful",
  n: 1000,
  warmup: 50,
}, runs.singleStateful);

Deno.bench("baseline: JSON work only, 100 contexts × 50, stateless", {
  group: "100x50 stateless",
  baseline: true,
  n: 40,
  warmup: 5,
}, baselineSetup(100, false));
Deno.bench("chorus embedded, 100 contexts × 50, stateless", {
  group: "100x50 stateless",
  n: 40,
  warmup: 5,
}, runs.hundredStateless);

Deno.bench("baseline: JSON work only, 100 contexts × 50, stateful", {
  group: "100x50 stateful",
  baseline: true,
  n: 40,
  warmup: 5,
}, baselineSetup(100, true));
Deno.bench("chorus embedded, 100 contexts × 50, stateful", {
  group: "100x50 stateful",
  n: 40,
  warmup: 5,
}, runs.hundredStateful);

// ---- A large context changed by one writer, each update awaited (a shared document) ----

/** A context of about `items` × 250 bytes of JSON, half of it random text (compresses ~2:1). */
function largeContext(items: number): JsonObject {
  let seed = items;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const list: JsonObject = {};
  for (let i = 0; i < items; i++) {
    let body = "";
    for (let c = 0; c < 100; c++) body += String.fromCharCode(97 + Math.floor(random() * 26));
    list[`item${i}`] = { title: `Item number ${i}`, body, notes: "lorem ipsum ".repeat(8) };
  }
  return { title: "a shared document", items: list, cursors: {} };
}

async function largeSetup(id: string, items: number) {
  await chorus.contexts.set(id, largeContext(items));
  let n = 0;
  return async () => {
    n++;
    await chorus.contexts.update(id, { cursors: { [`u${n % 8}`]: n } });
  };
}
/**
 * The same on two instances of one KV file: an update made through this instance, awaited until a
 * subscriber on the other one has it (the other instance's actor catches up on each change).
 */
async function largeAcrossSetup(id: string, items: number) {
  await chorus.contexts.set(id, largeContext(items));
  let seen = 0;
  let wake = () => {};
  await other.contexts.subscribe(id, (e: ContextEvent) => {
    seen = e.version;
    wake();
  });
  let n = 0;
  return async () => {
    n++;
    const { version } = await chorus.contexts.update(id, { cursors: { [`u${n % 8}`]: n } });
    while (seen < version) await new Promise<void>((resolve) => wake = resolve);
  };
}
const other = await Chorus.open({ path: `${dir}/bench.kv`, scheduler: "off" });
const large = {
  k120: await largeSetup("large-120k", 500),
  k480: await largeSetup("large-480k", 2000),
  across: await largeAcrossSetup("large-across-480k", 2000),
};

Deno.bench("one durable commit: raw kv.set on the same KV file (large-context floor)", {
  group: "large context, one writer",
  baseline: true,
  n: 1000,
  warmup: 50,
}, async () => {
  await raw.set(["bench", "commit"], commits++);
});
Deno.bench("chorus embedded, one update to a 120 KB context", {
  group: "large context, one writer",
  n: 1000,
  warmup: 50,
}, large.k120);
Deno.bench("chorus embedded, one update to a 480 KB context", {
  group: "large context, one writer",
  n: 500,
  warmup: 20,
}, large.k480);
Deno.bench(
  "chorus embedded, one update to a 480 KB context, seen by another instance's subscriber",
  {
    group: "large context, one writer",
    n: 500,
    warmup: 20,
  },
  large.across,
);

Deno.bench("one durable commit: raw kv.set on the same KV file", {
  group: "commit",
  baseline: true,
  n: 2000,
  warmup: 100,
}, async () => {
  await raw.set(["bench", "commit"], commits++);
});
