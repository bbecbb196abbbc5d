/**
 * The writers' channel (storage/one_writer.ts) on its own: two workers on a channel of their own,
 * as the workers of one `deno serve --parallel` process are.
 * @module
 */
import assert from "node:assert/strict";
import {
  NotCloneable,
  OneWriter,
  type WriterAnswer,
  type WriterServe,
} from "../../storage/one_writer.ts";
import { ChorusError } from "../../errors.ts";
import { type Clock, ManualClock, systemClock } from "../../clock.ts";
import { until } from "../_helpers.ts";

/** Ids in start order: the first is the smaller ULID, so it writes. */
const FIRST = "01JF000000000000000000000A";
const SECOND = "01JF000000000000000000000B";

async function pair(serveFirst: WriterServe, clock: Clock = systemClock, timeoutMs?: number) {
  const channel = `chorus:test:${crypto.randomUUID()}`;
  const refuse: WriterServe = () => Promise.reject(new Error("the second worker does not write"));
  const second = new OneWriter({ channel, id: SECOND, clock, timeoutMs }, refuse);
  const first = new OneWriter({ channel, id: FIRST, clock, timeoutMs }, serveFirst);
  await until(() => first.peers === 1 && second.peers === 1, "the workers know each other");
  return {
    channel,
    first,
    second,
    async close() {
      await Promise.all([first.close(), second.close()]);
    },
  };
}

const echo: WriterServe = (op, args) =>
  Promise.resolve({ result: { op, args }, versionstamps: ["00000000000000010000"] });

Deno.test("OneWriter: the worker started first writes, whichever joined the channel first", async () => {
  const { first, second, close } = await pair(echo);
  try {
    assert.equal(first.writer(), null, "the first worker writes itself");
    assert.equal(second.writer(), FIRST, "the second hands its writes to the first");
  } finally {
    await close();
  }
});

Deno.test("OneWriter: a call gets the writer's answer, clones of its arguments in, its result out", async () => {
  const { second, close } = await pair(echo);
  try {
    const value = { nested: [1, "two", { three: null }] };
    const answer: WriterAnswer = await second.call(FIRST, "put", ["k", value]);
    assert.deepEqual(answer, {
      result: { op: "put", args: ["k", value] },
      versionstamps: ["00000000000000010000"],
    });
  } finally {
    await close();
  }
});

Deno.test("OneWriter: the writer's errors come back rebuilt, a ChorusError with its code, details and headers", async () => {
  const { second, close } = await pair((op) => {
    if (op === "conflict") {
      throw new ChorusError("conflict", `Cannot put "k": version is 2, not 9`, {
        details: { version: 2 },
        headers: { "Retry-After": "1" },
      });
    }
    throw new TypeError("something broke");
  });
  try {
    await assert.rejects(second.call(FIRST, "conflict", []), (e: unknown) => {
      assert.ok(e instanceof ChorusError);
      assert.equal(e.code, "conflict");
      assert.equal(e.message, `Cannot put "k": version is 2, not 9`);
      assert.deepEqual(e.details, { version: 2 });
      assert.deepEqual(e.headers, { "Retry-After": "1" });
      return true;
    });
    await assert.rejects(second.call(FIRST, "other", []), (e: unknown) => {
      assert.ok(!(e instanceof ChorusError), "anything else is not a ChorusError");
      assert.ok(e instanceof TypeError, "a standard error keeps its class");
      assert.equal((e as Error).message, "something broke");
      return true;
    });
  } finally {
    await close();
  }
});

Deno.test("OneWriter: calls made in one turn go out as one message, and every one is answered", async () => {
  const { channel, second, close } = await pair(echo);
  const spy = new BroadcastChannel(channel);
  const seen: { t: string; list?: { t: string }[] }[] = [];
  spy.onmessage = (e) => seen.push(e.data);
  try {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => second.call(FIRST, "put", [`k${i}`])),
    );
    assert.deepEqual(answers.map((a) => (a.result as { args: string[] }).args[0]), [
      ...Array.from({ length: 20 }, (_, i) => `k${i}`),
    ]);
    await until(() => seen.length >= 2, "the calls and the answers crossed the channel");
    const calls = seen.filter((m) => m.t === "many" && m.list?.[0].t === "call");
    assert.equal(calls.length, 1, "one message carried the calls");
    assert.equal(calls[0].list!.length, 20);
  } finally {
    spy.close();
    await close();
  }
});

Deno.test("OneWriter: an argument that cannot be cloned fails only its own call, as NotCloneable", async () => {
  const { second, close } = await pair(echo);
  try {
    const [bad, good] = await Promise.allSettled([
      second.call(FIRST, "put", ["k", () => 1]),
      second.call(FIRST, "put", ["other"]),
    ]);
    assert.equal(bad.status, "rejected");
    assert.ok((bad as PromiseRejectedResult).reason instanceof NotCloneable);
    assert.equal(good.status, "fulfilled", "the call sent in the same turn still goes through");
  } finally {
    await close();
  }
});

Deno.test("OneWriter: a writer that leaves still answers what it took; then it closes, and is never elected again", async () => {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const { channel, first, second, close } = await pair(async (op) => {
    if (op === "slow") await released;
    if (op === "hang") await new Promise(() => {});
    return { result: op, versionstamps: [] };
  });
  try {
    const slow = second.call(FIRST, "slow", []);
    const lost = second.call(FIRST, "slow", []);
    await new Promise((r) => setTimeout(r, 20));
    first.leave();
    assert.equal(first.writer(), null, "a leaving worker writes its own writes");
    await until(() => second.writer() === null, "the second worker writes now");
    assert.equal(second.peers, 0);
    release();
    assert.equal((await slow).result, "slow", "a call taken before the bye is still answered");
    assert.equal((await lost).result, "slow");
    // A worker starting now does not count the one that left, though it still answers pings.
    const third = new OneWriter(
      { channel, id: "01JF000000000000000000000C", clock: systemClock },
      echo,
    );
    try {
      await until(() => third.peers === 1, "the third worker met the second");
      assert.equal(third.writer(), SECOND, "the worker that left is not elected");
      assert.equal(second.writer(), null);
    } finally {
      await third.close();
    }
    // A call the writer never finishes: closing waits a moment for it, then says it is closed.
    const waiting = second.call(FIRST, "hang", []);
    await new Promise((r) => setTimeout(r, 20));
    await first.close();
    await assert.rejects(waiting, (e: unknown) => {
      assert.ok(e instanceof ChorusError);
      assert.equal(e.code, "unavailable");
      assert.match(e.message, /may or may not have happened/);
      return true;
    });
  } finally {
    await close();
  }
});

Deno.test("OneWriter: a writer silent for the timeout is taken as gone", async () => {
  const clock = new ManualClock();
  const channel = `chorus:test:${crypto.randomUUID()}`;
  // A writer that says hello and then nothing at all (its event loop is stuck, say).
  const silent = new BroadcastChannel(channel);
  const second = new OneWriter({ channel, id: SECOND, clock, timeoutMs: 1_000 }, echo);
  try {
    silent.postMessage({ t: "hello", from: FIRST });
    await until(() => second.writer() === FIRST, "the silent writer was elected");
    const waiting = second.call(FIRST, "put", ["k"]);
    const state: { failed?: unknown } = {};
    waiting.catch((e) => state.failed = e);
    clock.advance(900);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(state.failed, undefined, "still waiting within the timeout");
    clock.advance(400);
    await assert.rejects(
      waiting,
      (e: unknown) => e instanceof ChorusError && e.code === "unavailable",
    );
    assert.equal(second.writer(), null, "writes stay on this worker");
    assert.equal(clock.pending, 0, "no sweep is left armed once nothing waits");
  } finally {
    silent.close();
    await second.close();
  }
});

Deno.test("OneWriter: a writer busy for longer than the timeout but answering pings is waited for", async () => {
  const clock = new ManualClock();
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  const { second, close } = await pair(
    async () => {
      await released;
      return { result: "done", versionstamps: [] };
    },
    clock,
    1_000,
  );
  try {
    const waiting = second.call(FIRST, "slow", []);
    for (let i = 0; i < 20; i++) {
      clock.advance(250); // five timeouts in all
      await new Promise((r) => setTimeout(r, 15)); // the ping and its answer cross
    }
    assert.equal(second.writer(), FIRST, "the writer was not taken as gone");
    release();
    assert.equal((await waiting).result, "done");
  } finally {
    await close();
  }
});

Deno.test("OneWriter: closing fails the calls still waiting", async () => {
  const { second, close } = await pair(() => new Promise<WriterAnswer>(() => {}));
  try {
    const waiting = second.call(FIRST, "put", ["k"]);
    await second.close();
    await assert.rejects(
      waiting,
      (e: unknown) => e instanceof ChorusError && e.code === "unavailable",
    );
  } finally {
    await close();
  }
});

Deno.test("OneWriter: a call already on its way when the writer closes is answered before it closes", async () => {
  const { first, second, close } = await pair(echo);
  try {
    const waiting = second.call(FIRST, "put", ["k"]); // goes out after the bye below
    await first.close();
    assert.equal((await waiting).versionstamps.length, 1);
    assert.equal(second.writer(), null);
  } finally {
    await close();
  }
});
