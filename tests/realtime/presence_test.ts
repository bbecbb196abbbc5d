// deno-lint-ignore-file no-explicit-any
/**
 * Presence views: `presence_diff` batching over the diff window (injected clock), the shared
 * `presence_state` encodings, and the real `phoenix` client's Presence through many joins and
 * leaves.
 * @module
 */
import assert from "node:assert/strict";
import { Presence } from "phoenix";
import { Chorus } from "../../mod.ts";
import { ManualClock } from "../../clock.ts";
import { encodeText, push } from "../../realtime/phoenix.ts";
import { decodeEnvelope } from "../../proto/codec.ts";
import { presenceLogKey, presencePrefix } from "../../storage/keys.ts";
import type { PresenceDiff, PresenceMap } from "../../realtime/presence/mod.ts";
import type { TopicMessage } from "../../realtime/topics.ts";
import { connect, disconnect, join, serve } from "./_socket_helpers.ts";
import { tempKvPath, until } from "../_helpers.ts";
import { FaultyKv } from "../reliability/_faulty_kv.ts";

async function open(realtime: Record<string, unknown> = {}) {
  const clock = new ManualClock();
  const chorus = await Chorus.open({ path: ":memory:", clock, realtime });
  const tracker = chorus.realtime.presence!;
  const published: TopicMessage[] = [];
  const view = await tracker.view("kv:room", (m) => published.push(m));
  const diffs = () => published.map((m) => m.payload as unknown as PresenceDiff);
  return { chorus, clock, tracker, view, published, diffs };
}

/** `{key: [phx_ref…]}` of one side of a diff, refs sorted. */
function refs(side: PresenceMap): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [key, { metas }] of Object.entries(side)) {
    out[key] = metas.map((m) => m.phx_ref).sort();
  }
  return out;
}

/** Applies a diff as the phoenix client does (joins first, then leaves), on `{key: Set<ref>}`. */
function applyDiff(state: Map<string, Set<string>>, diff: PresenceDiff): void {
  for (const [key, { metas }] of Object.entries(diff.joins)) {
    const refs = state.get(key) ?? new Set();
    for (const m of metas) refs.add(m.phx_ref);
    state.set(key, refs);
  }
  for (const [key, { metas }] of Object.entries(diff.leaves)) {
    const refs = state.get(key);
    if (!refs) continue;
    for (const m of metas) refs.delete(m.phx_ref);
    if (refs.size === 0) state.delete(key);
  }
}

Deno.test("[presence] changes within the diff window go out as one presence_diff when it ends", async () => {
  const { chorus, clock, tracker, view, published, diffs } = await open();
  try {
    const a = await tracker.track("kv:room", "alice", { status: "on" });
    const b = await tracker.track("kv:room", "bob");
    await view.catchUp();
    assert.equal(published.length, 0, "nothing before the window ends");
    assert.equal(Object.keys(view.list()).length, 2, "the state is current at once");
    clock.advance(49);
    assert.equal(published.length, 0);
    clock.advance(1);
    assert.equal(published.length, 1);
    assert.equal(published[0].event, "presence_diff");
    assert.deepEqual(refs(diffs()[0].joins), {
      alice: [a.meta.phx_ref],
      bob: [b.meta.phx_ref],
    });
    assert.deepEqual(diffs()[0].leaves, {});
    assert.equal(diffs()[0].joins.alice.metas[0].status, "on");

    // A leave, and a meta that joins and leaves inside one window: both are leaves (a socket
    // that got a presence_state in between holds the short-lived one), nothing is a join.
    await tracker.untrack("kv:room", "alice", a.meta);
    const c = await tracker.track("kv:room", "carol");
    await view.catchUp();
    await tracker.untrack("kv:room", "carol", c.meta);
    const b2 = await tracker.track("kv:room", "bob");
    await view.catchUp();
    clock.advance(50);
    assert.equal(published.length, 2);
    assert.deepEqual(refs(diffs()[1].joins), { bob: [b2.meta.phx_ref] });
    assert.deepEqual(refs(diffs()[1].leaves), {
      alice: [a.meta.phx_ref],
      carol: [c.meta.phx_ref],
    });
    assert.deepEqual(Object.keys(view.list()), ["bob"]);
    assert.equal(view.list().bob.metas.length, 2);
    clock.advance(500);
    assert.equal(published.length, 2, "no diff without changes");
  } finally {
    await chorus.close();
  }
});

Deno.test("[presence] a dead instance's metas vanish within its TTL and one sweep (injected clock)", async () => {
  const { path, cleanup } = await tempKvPath();
  const clock = new ManualClock();
  // A TTL far above the test's real duration: only the manual clock can expire the entry.
  const ttl = 60_000;
  const realtime = { presenceTtlMs: ttl };
  const one = await Chorus.open({ path, clock, realtime, scheduler: "off" });
  const ghost = await Chorus.open({ path, clock, realtime, scheduler: "off" });
  try {
    const view = await one.realtime.presence!.view("kv:ghosts", () => {});
    await ghost.realtime.presence!.track("kv:ghosts", "ghost", {});
    await view.catchUp();
    assert.deepEqual(Object.keys(view.list()), ["ghost"]);
    await ghost.realtime.close({ untrack: false }); // a crash: nobody removes or refreshes it
    const died = clock.now();
    clock.advance(ttl - 1);
    await view.catchUp();
    assert.deepEqual(Object.keys(view.list()), ["ghost"], "listed while its TTL runs");
    // The TTL ends; the next sweep (every TTL / 2) removes it.
    for (let waited = 0; waited < ttl / 2 + 1 && Object.keys(view.list()).length; waited += 1000) {
      clock.advance(1000);
      await new Promise((r) => setTimeout(r, 20)); // let a sweep that fired run on KV
      await view.catchUp();
    }
    assert.deepEqual(Object.keys(view.list()), [], "gone after the TTL and one sweep");
    assert.ok(clock.now() - died <= ttl + ttl / 2 + 1000, "within the TTL and a sweep");
  } finally {
    await ghost.close();
    await one.close();
    await cleanup();
  }
});

Deno.test("[presence] a view whose log expired past it resyncs: one diff turns the old state into the new", async () => {
  const { path, cleanup } = await tempKvPath();
  const clock = new ManualClock();
  const raw = await Deno.openKv(path);
  // One's reads of the presence log wait 300 ms: the log is deleted (expired) meanwhile.
  const inner = await Deno.openKv(path);
  const faulty = new FaultyKv(inner, { seed: 1 });
  const one = await Chorus.open({ kv: faulty.kv, clock, scheduler: "off" });
  const two = await Chorus.open({ path, clock, scheduler: "off" });
  try {
    const published: TopicMessage[] = [];
    const view = await one.realtime.presence!.view("kv:lapse", (m) => published.push(m));
    const alice = await two.realtime.presence!.track("kv:lapse", "alice", {});
    await view.catchUp();
    clock.advance(50);
    const state = new Map<string, Set<string>>();
    for (const m of published) applyDiff(state, m.payload as unknown as PresenceDiff);
    assert.deepEqual([...state.keys()], ["alice"]);
    published.length = 0;

    faulty.enable({
      seed: 1,
      delayRate: 1,
      delayMs: 300,
      delayOps: ["list"],
      keyFilter: (key) => key[0] === "presence_log",
    });
    await two.realtime.presence!.track("kv:lapse", "bob", {});
    await two.realtime.presence!.untrack("kv:lapse", "alice", alice.meta);
    await until(() => faulty.counts.delays > 0, "one's view reading the log");
    let deleted = 0;
    for await (const entry of raw.list({ prefix: presenceLogKey("kv:lapse", 0).slice(0, 2) })) {
      await raw.delete(entry.key);
      deleted++;
    }
    assert.ok(deleted >= 2, "the log had the changes the view had not read");
    await until(() => Object.keys(view.list()).join() === "bob", "the resync");
    faulty.disable();
    await view.catchUp();
    clock.advance(50);
    assert.ok(published.length >= 1, "the resync went out as presence_diff");
    for (const m of published) {
      assert.equal(m.event, "presence_diff");
      applyDiff(state, m.payload as unknown as PresenceDiff);
    }
    assert.deepEqual([...state.keys()], ["bob"], "a client following the diffs ends at bob");
  } finally {
    faulty.disable();
    await two.close();
    await one.close();
    faulty.close();
    inner.close();
    raw.close();
    await cleanup();
  }
});

Deno.test("[presence] a client following state + batched diffs always ends at the view's state", async () => {
  const { chorus, clock, tracker, view, diffs } = await open({ presenceDiffMs: 20 });
  try {
    const live: { key: string; meta: any }[] = [];
    // Clients that joined at different moments: each starts from the state it was sent and
    // then applies every diff published after that (and some published before: the buffered
    // ones a pending client applies after its state).
    const clients: { state: Map<string, Set<string>>; from: number }[] = [];
    const snapshot = (from: number) => {
      const state = new Map<string, Set<string>>();
      for (const [key, { metas }] of Object.entries(view.list())) {
        state.set(key, new Set(metas.map((m) => m.phx_ref)));
      }
      clients.push({ state, from });
    };
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    for (let step = 0; step < 120; step++) {
      if (live.length && random() < 0.4) {
        const [gone] = live.splice(Math.floor(random() * live.length), 1);
        await tracker.untrack("kv:room", gone.key, gone.meta);
      } else {
        const key = `u${Math.floor(random() * 8)}`;
        live.push({ key, meta: (await tracker.track("kv:room", key)).meta });
      }
      await view.catchUp();
      if (random() < 0.2) snapshot(Math.max(0, diffs().length - Math.floor(random() * 2)));
      if (random() < 0.3) clock.advance(20);
    }
    clock.advance(20);
    const expected = new Map<string, Set<string>>();
    for (const { key, meta } of live) {
      expected.set(key, (expected.get(key) ?? new Set()).add(meta.phx_ref));
    }
    assert.ok(clients.length > 5);
    for (const client of clients) {
      for (const diff of diffs().slice(client.from)) applyDiff(client.state, diff);
      assert.deepEqual(client.state, expected);
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[presence] presenceDiffMs 0 sends one diff per log entry at once; big batches are split", async () => {
  const { chorus, tracker, view, published, diffs } = await open({
    presenceDiffMs: 0,
    presenceListMax: Infinity,
  });
  try {
    const a = await tracker.track("kv:room", "alice");
    await view.catchUp();
    assert.equal(published.length, 1);
    assert.deepEqual(refs(diffs()[0].joins), { alice: [a.meta.phx_ref] });
    await Promise.all(Array.from({ length: 250 }, (_, i) => tracker.track("kv:room", `k${i}`)));
    await view.catchUp();
    const joined = diffs().slice(1).flatMap((d) => Object.keys(d.joins));
    assert.equal(joined.length, 250);
    assert.ok(published.length > 2, "split into several frames");
    for (const m of published) {
      const frame = encodeText(push(null, "kv:room", m.event, m.payload));
      assert.ok(frame.length <= 4096 + 100, `a diff frame of ${frame.length} bytes`);
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[presence] presence_state frames: one encoding per state and join_ref, equal to encodeText", async () => {
  const { chorus, tracker, view } = await open();
  try {
    await tracker.track("kv:room", "alice", { status: "on" });
    await tracker.track("kv:room", "__proto__");
    await tracker.track("kv:room", "42");
    await view.catchUp();
    const frames = view.stateFrames("3", "json");
    assert.equal(frames.length, 1, "a small state is one frame");
    const frame = frames[0] as string;
    assert.equal(view.stateFrames("3", "json")[0], frame, "cached");
    const parsed = JSON.parse(frame);
    assert.deepEqual(
      parsed,
      JSON.parse(encodeText(push("3", "kv:room", "presence_state", { ...view.list() }))),
    );
    assert.ok(Object.hasOwn(parsed[4], "__proto__"), "__proto__ is an ordinary key");
    assert.deepEqual(Object.keys(parsed[4]).sort(), ["42", "__proto__", "alice"]);
    assert.deepEqual(JSON.parse(view.stateFrames(null, "json")[0] as string).slice(0, 4), [
      null,
      null,
      "kv:room",
      "presence_state",
    ]);
    const [bytes] = view.stateFrames("3", "protobuf");
    const proto = decodeEnvelope((bytes as Uint8Array).slice().buffer);
    assert.equal(proto.joinRef, "3");
    assert.equal(proto.event, "presence_state");
    assert.deepEqual(proto.payload, parsed[4]);

    const before = view.version;
    await tracker.track("kv:room", "bob");
    await view.catchUp();
    assert.ok(view.version > before);
    const next = JSON.parse(view.stateFrames("3", "json")[0] as string);
    assert.deepEqual(Object.keys(next[4]).sort(), ["42", "__proto__", "alice", "bob"]);
  } finally {
    await chorus.close();
  }
});

Deno.test("[presence] with stateMaxBytes, a big state goes out as presence_state then presence_diff joins", async () => {
  const { chorus, tracker, view } = await open({ presenceStateMaxBytes: 512 });
  try {
    const tracked = await Promise.all(
      Array.from({ length: 40 }, (_, i) => tracker.track("kv:room", `user-${i}`, { status: "on" })),
    );
    await tracker.track("kv:room", "user-0"); // a key with two metas
    await view.catchUp();
    for (const format of ["json", "protobuf"] as const) {
      const frames = view.stateFrames("7", format);
      assert.ok(frames.length > 3, `${format}: split (${frames.length} frames)`);
      const decoded = frames.map((f) =>
        format === "json"
          ? (([joinRef, ref, topic, event, payload]) => ({ joinRef, ref, topic, event, payload }))(
            JSON.parse(f as string),
          )
          : decodeEnvelope((f as Uint8Array).slice().buffer)
      );
      assert.equal(decoded[0].event, "presence_state");
      assert.equal(decoded[0].joinRef, "7");
      // What the phoenix client does: the state, then each diff merged per phx_ref.
      const state = new Map<string, Set<string>>();
      for (const [key, { metas }] of Object.entries(decoded[0].payload as PresenceMap)) {
        state.set(key, new Set(metas.map((m) => m.phx_ref)));
      }
      for (const d of decoded.slice(1)) {
        assert.equal(d.event, "presence_diff");
        assert.equal(d.joinRef, null, "the diffs are broadcasts");
        assert.deepEqual((d.payload as unknown as PresenceDiff).leaves, {});
        applyDiff(state, d.payload as unknown as PresenceDiff);
      }
      const expected = new Map<string, Set<string>>();
      for (const [key, { metas }] of Object.entries(view.list())) {
        expected.set(key, new Set(metas.map((m) => m.phx_ref)));
      }
      assert.deepEqual(state, expected);
      assert.equal(state.size, 40);
      assert.equal(state.get("user-0")?.size, 2);
      assert.ok(state.get("user-39")?.has(tracked[39].meta.phx_ref));
    }
    for (const f of view.stateFrames("7", "json")) {
      assert.ok(
        (f as string).length <= 512 + 100,
        `a state frame of ${(f as string).length} bytes`,
      );
    }
    const other = view.stateFrames("8", "json");
    assert.notEqual(other[0], view.stateFrames("7", "json")[0], "the state frame is per join_ref");
    assert.equal(other[1], view.stateFrames("7", "json")[1], "the diff frames are shared");
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] the phoenix client's Presence stays correct through many joins, leaves and rejoins", async () => {
  // Small diff frames, so diffs arrive split as they do in big topics.
  const srv = await serve({ realtime: { presenceDiffMs: 30, presenceDiffMaxBytes: 300 } });
  const sockets: any[] = [];
  try {
    const members: { socket: any; channel: any; presence: any; key: string }[] = [];
    const add = async (key: string) => {
      const socket = connect(srv.url, { user_id: key });
      sockets.push(socket);
      const channel = socket.channel("kv:crowd", {});
      const presence = new Presence(channel);
      const member = { socket, channel, presence, key };
      members.push(member);
      await join(channel);
      return member;
    };
    // 24 sockets over 8 users (several metas per key), joining concurrently.
    await Promise.all(Array.from({ length: 24 }, (_, i) => add(`u${i % 8}`)));
    // Half leave (the channel, or the whole socket) while others join and one rejoins.
    const leaving = members.splice(0, 12);
    await Promise.all([
      ...leaving.map((m, i) =>
        i % 2 ? new Promise((r) => m.channel.leave().receive("ok", r)) : disconnect(m.socket)
      ),
      ...Array.from({ length: 6 }, (_, i) => add(`v${i % 3}`)),
      (async () => {
        const m = members[0];
        await new Promise((r) => m.channel.leave().receive("ok", r));
        const again = m.socket.channel("kv:crowd", {});
        m.channel = again;
        m.presence = new Presence(again);
        await join(again);
      })(),
    ]);
    const expected = () => {
      const count = new Map<string, number>();
      for (const m of members) count.set(m.key, (count.get(m.key) ?? 0) + 1);
      return [...count].sort();
    };
    const seen = (m: (typeof members)[number]) =>
      m.presence.list((key: string, p: any) => [key, p.metas.length]).sort();
    await until(
      () => members.every((m) => JSON.stringify(seen(m)) === JSON.stringify(expected())),
      "every client lists every member with the right number of metas",
    );
    for (const m of members) {
      const refs = m.presence.list((_k: string, p: any) => p.metas.map((x: any) => x.phx_ref))
        .flat();
      assert.equal(new Set(refs).size, members.length, "one meta per joined socket");
    }
  } finally {
    await Promise.all(sockets.filter((s) => s.isConnected()).map(disconnect));
    await srv.close();
  }
});

/**
 * A tracker on a ManualClock whose presence-entry rewrites (one checked `set` of one entry) are
 * counted as they are issued, and answered after `latencyMs` of the manual clock.
 */
async function refreshRig(latencyMs: number) {
  const clock = new ManualClock();
  const chorus = await Chorus.open({ path: ":memory:", clock, realtime: { presenceTtlMs: 3000 } });
  const tracker = chorus.realtime.presence!;
  const { store } = tracker;
  const commit = store.commit.bind(store);
  const issued: number[] = [0];
  store.commit = (intent) => {
    const rewrite = intent.checks.length === 1 && intent.mutations.length === 1 &&
      intent.mutations[0].key[0] === "presence";
    if (!rewrite) return commit(intent);
    issued[issued.length - 1]++;
    return new Promise((resolve) => clock.setTimeout(() => resolve(commit(intent)), latencyMs));
  };
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
  };
  /** Advances one 100 ms tick; returns the rewrites issued in it. */
  const tick = async () => {
    issued.push(0);
    clock.advance(100);
    await settle();
    return issued[issued.length - 1];
  };
  /** Every entry of the topic in KV is unexpired, and there are `n`. */
  const allLive = async (n: number) => {
    let live = 0;
    for await (const e of store.list<{ exp: number }>({ prefix: presencePrefix("kv:room") })) {
      assert.ok(e.value.exp > clock.now(), `an entry expired at ${clock.now()}`);
      live++;
    }
    assert.equal(live, n);
  };
  return { chorus, clock, tracker, tick, allLive };
}

Deno.test("[presence] entries are refreshed spread over the interval, and none expires while tracked", async () => {
  const { chorus, tracker, tick, allLive } = await refreshRig(0);
  try {
    // A join storm: 50 metas tracked at the same moment.
    await Promise.all(Array.from({ length: 50 }, (_, i) => tracker.track("kv:room", `u${i}`)));
    // Refresh every 1,000 ms (a third of the TTL), ticks every 100 ms, for 10 TTLs.
    const perTick: number[] = [];
    for (let i = 0; i < 300; i++) perTick.push(await tick());
    assert.ok(Math.max(...perTick) <= 5, `at most a tenth per tick: ${perTick.join(",")}`);
    const total = perTick.reduce((a, b) => a + b, 0);
    assert.ok(total >= 50 * 27, `every entry keeps being refreshed (${total} writes)`);
    await allLive(50);
  } finally {
    await chorus.close();
  }
});

Deno.test("[presence] refresh keeps up when KV answers slowly", async () => {
  // Each rewrite takes 700 ms (seven ticks) to be acknowledged; the TTL is 3,000 ms.
  const { chorus, tracker, tick, allLive } = await refreshRig(700);
  try {
    await Promise.all(Array.from({ length: 100 }, (_, i) => tracker.track("kv:room", `u${i}`)));
    for (let i = 0; i < 100; i++) {
      await tick();
      if (i % 10 === 9) await allLive(100);
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[presence] by default the whole list is one presence_state frame, however big", async () => {
  const { chorus, tracker, view } = await open();
  try {
    await Promise.all(
      Array.from(
        { length: 120 },
        (_, i) => tracker.track("kv:room", `user-${i}`, { status: "on" }),
      ),
    );
    await view.catchUp();
    const frames = view.stateFrames("1", "json");
    assert.equal(frames.length, 1);
    assert.ok((frames[0] as string).length > 8192, "bigger than any diff frame");
    assert.equal(Object.keys(JSON.parse(frames[0] as string)[4]).length, 120);
  } finally {
    await chorus.close();
  }
});

Deno.test("[presence] a split diff sends every join before any leave, each key in one frame", async () => {
  const { chorus, clock, tracker, view, published, diffs } = await open({
    presenceDiffMaxBytes: 300,
  });
  try {
    const old = await tracker.track("kv:room", "reloader");
    await view.catchUp();
    clock.advance(50);
    published.length = 0;
    // In one window: the page reloads (its old meta leaves, a new one joins), others come and go.
    await tracker.untrack("kv:room", "reloader", old.meta);
    const fresh = await tracker.track("kv:room", "reloader");
    const others = await Promise.all(
      Array.from({ length: 12 }, (_, i) => tracker.track("kv:room", `k${i}`, { status: "x" })),
    );
    await Promise.all(
      others.slice(0, 6).map((o, i) => tracker.untrack("kv:room", `k${i}`, o.meta)),
    );
    await view.catchUp();
    clock.advance(50);
    const all = diffs();
    assert.ok(all.length > 2, `split (${all.length} frames)`);
    const kinds = all.map((d) => Object.keys(d.joins).length > 0 ? "J" : "L").join("");
    assert.match(kinds, /^J+L+$/, `joins first: ${kinds}`);
    for (const side of ["joins", "leaves"] as const) {
      const keys = all.flatMap((d) => Object.keys(d[side]));
      assert.equal(new Set(keys).size, keys.length, `${side}: each key in one frame`);
    }
    // Applied in order, as the phoenix client does, the reloader never disappears.
    const state = new Map<string, Set<string>>([["reloader", new Set([old.meta.phx_ref])]]);
    for (const d of all) {
      applyDiff(state, d);
      assert.ok(state.get("reloader")?.size, "the reloading key is never empty");
    }
    assert.deepEqual([...state.get("reloader")!], [fresh.meta.phx_ref]);
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] a big topic: after a reconnect the phoenix client reports no member as having left", async () => {
  const srv = await serve();
  const sockets: any[] = [];
  try {
    // 60 members: a presence list of ~6 KB, bigger than a diff frame.
    for (let i = 0; i < 60; i++) {
      const socket = connect(srv.url, { user_id: `member-${i}` });
      sockets.push(socket);
      await join(socket.channel("kv:big", { status: "here for a while" }));
    }
    const watcher = connect(srv.url, { user_id: "watcher" });
    sockets.push(watcher);
    const channel = watcher.channel("kv:big", {});
    const presence = new Presence(channel);
    const left: string[] = [];
    let syncs = 0;
    presence.onLeave((key: string, current: any) => {
      if (!current || current.metas.length === 0) left.push(key);
    });
    presence.onSync(() => syncs++);
    await join(channel);
    await until(() => presence.list().length === 61, "all 61 listed");
    assert.equal(left.length, 0);
    // The connection drops; the client reconnects and rejoins with its old list in hand.
    const before = syncs;
    watcher.conn.close(4000, "dropped"); // not 1000, so the client reconnects
    await until(() => syncs > before && presence.list().length === 61, "resynced");
    assert.deepEqual(left, [], "nobody reported as left");
  } finally {
    await Promise.all(sockets.filter((s) => s.isConnected()).map(disconnect));
    await srv.close();
  }
});

Deno.test("[presence] above listMax a topic sends counts: joiners get presence_stats, changes at most one count per statsMs; back under 80% everyone gets the list", async () => {
  const { chorus, clock, tracker, view, published } = await open({ presenceListMax: 5 });
  try {
    const metas = [];
    for (let i = 0; i < 5; i++) metas.push((await tracker.track("kv:room", `u${i}`)).meta);
    await view.catchUp();
    clock.advance(50);
    assert.deepEqual(published.map((m) => m.event), ["presence_diff"], "lists at the bound");
    assert.match(String(view.stateFrames("1", "json")[0]), /"presence_state"/);

    published.length = 0;
    for (let i = 5; i < 8; i++) metas.push((await tracker.track("kv:room", `u${i}`)).meta);
    await view.catchUp();
    clock.advance(50);
    assert.deepEqual(published.map((m) => [m.event, m.payload]), [
      ["presence_stats", { count: 8 }],
    ]);
    const frame = String(view.stateFrames("7", "json")[0]);
    assert.deepEqual(JSON.parse(frame), ["7", null, "kv:room", "presence_stats", { count: 8 }]);
    const binary = decodeEnvelope(view.stateFrames("7", "protobuf")[0] as Uint8Array);
    assert.deepEqual([binary.event, binary.payload], ["presence_stats", { count: 8 }]);

    // One leave: nothing per change, and no count before 500 ms (statsMs) after the last one;
    // then one count, whatever moved in between (a leave and a join: 8 → 7 → 8 → 7).
    published.length = 0;
    await tracker.untrack("kv:room", "u7", metas[7]);
    await view.catchUp();
    assert.equal(published.length, 0);
    clock.advance(50);
    assert.equal(published.length, 0, "the last count went out 50 ms ago");
    const back = (await tracker.track("kv:room", "u7")).meta;
    await view.catchUp();
    clock.advance(50);
    await tracker.untrack("kv:room", "u7", back);
    await view.catchUp();
    clock.advance(50);
    assert.equal(published.length, 0);
    assert.match(String(view.stateFrames("8", "json")[0]), /"count":7/, "a joiner gets it at once");
    clock.advance(350);
    assert.deepEqual(published.map((m) => [m.event, m.payload]), [
      ["presence_stats", { count: 7 }],
    ]);
    // A change long after the last count goes out at the end of its window.
    published.length = 0;
    clock.advance(1000);
    await tracker.untrack("kv:room", "u6", metas[6]);
    await view.catchUp();
    clock.advance(50);
    assert.deepEqual(published.map((m) => [m.event, m.payload]), [
      ["presence_stats", { count: 6 }],
    ]);

    // Down to 4 (80% of 5): the whole list goes to everyone, then diffs resume.
    published.length = 0;
    for (let i = 4; i < 6; i++) await tracker.untrack("kv:room", `u${i}`, metas[i]);
    await view.catchUp();
    clock.advance(50);
    assert.deepEqual(published.map((m) => m.event), ["presence_state"]);
    assert.deepEqual(Object.keys(published[0].payload).sort(), ["u0", "u1", "u2", "u3"]);
    published.length = 0;
    await tracker.untrack("kv:room", "u3", metas[3]);
    await view.catchUp();
    clock.advance(50);
    assert.deepEqual(published.map((m) => m.event), ["presence_diff"]);
  } finally {
    await chorus.close();
  }
});

Deno.test("[ws] the phoenix client on a topic over listMax: exact Presence below it, presence_stats counts above", async () => {
  const served = await serve({ realtime: { presenceListMax: 2 } });
  const sockets: any[] = [];
  try {
    const counts: number[][] = [[], [], []];
    const presences: any[] = [];
    for (let i = 0; i < 3; i++) {
      const socket = connect(served.url, { user_id: `viewer${i}` });
      sockets.push(socket);
      const channel = socket.channel("reel:big", {});
      presences.push(new Presence(channel));
      channel.on("presence_stats", (p: { count: number }) => counts[i].push(p.count));
      await join(channel);
      if (i === 1) {
        await until(() => presences[0].list().length === 2 && presences[1].list().length === 2);
      }
    }
    // The third joiner takes the topic over the bound: it gets a count, the others a count too.
    await until(() => counts.every((c) => c.at(-1) === 3), "counts of 3 everywhere");
    assert.equal(presences[2].list().length, 0, "no list was sent to the third joiner");
    await disconnect(sockets.pop());
    // Back to 2 (≤ 80% of 2 is 1, so still counting): a count of 2.
    await until(() => counts[0].at(-1) === 2 && counts[1].at(-1) === 2, "counts of 2");
  } finally {
    for (const s of sockets) await disconnect(s);
    await served.close();
  }
});

Deno.test("[presence] a topic too big for one count per statsMs within the frame budget sends its count less often", async () => {
  // 10 count frames a second at most: 8 members get one count every 800 ms, not every 500 ms.
  const { chorus, clock, tracker, view, published } = await open({
    presenceListMax: 5,
    presenceStatsFramesPerSecond: 10,
  });
  try {
    const metas = [];
    for (let i = 0; i < 8; i++) metas.push((await tracker.track("kv:room", `u${i}`)).meta);
    await view.catchUp();
    clock.advance(50);
    assert.deepEqual(published.map((m) => [m.event, m.payload]), [
      ["presence_stats", { count: 8 }],
    ]);
    published.length = 0;
    await tracker.untrack("kv:room", "u7", metas[7]);
    await view.catchUp();
    clock.advance(50); // the diff window ends
    clock.advance(450); // 550 ms after the last count: past statsMs (500 ms)
    assert.equal(published.length, 0, "not yet: 7 members × 1,000 / 10 = 700 ms");
    clock.advance(200); // 750: 700 ms after the last count
    assert.deepEqual(published.map((m) => [m.event, m.payload]), [
      ["presence_stats", { count: 7 }],
    ]);
    assert.match(String(view.stateFrames("9", "json")[0]), /"count":7/, "a joiner gets it at once");
  } finally {
    await chorus.close();
  }
});
