import assert from "node:assert/strict";
import { Outbox, type OutboxOptions, type OutboxSink } from "../../realtime/outbox.ts";

/** A socket stand-in: `send` adds to `bufferedAmount` as a WebSocket does; `drain` empties it. */
class FakeSink implements OutboxSink {
  bufferedAmount = 0;
  sent: string[] = [];

  send(data: string | Uint8Array): void {
    const text = typeof data === "string" ? data : `bin:${data.length}`;
    this.sent.push(text);
    this.bufferedAmount += typeof data === "string"
      ? new TextEncoder().encode(data).length
      : data.length;
  }

  drain(bytes = Infinity): void {
    this.bufferedAmount = Math.max(0, this.bufferedAmount - bytes);
  }
}

class FakeClock {
  time = 0;
  now(): number {
    return this.time;
  }
}

function setup(options: OutboxOptions = {}) {
  const sink = new FakeSink();
  const clock = new FakeClock();
  let slowCalls = 0;
  const outbox = new Outbox(sink, {
    maxBytes: 10,
    overLimitMs: 5000,
    clock,
    onSlow: () => slowCalls++,
    ...options,
  });
  return { sink, clock, outbox, slowCalls: () => slowCalls };
}

Deno.test("Outbox sends at once while the sink has room", () => {
  const { sink, outbox } = setup();
  assert.equal(outbox.enqueue("aaa"), true);
  assert.equal(outbox.enqueue("bbb", "low"), true);
  assert.equal(outbox.enqueue(new Uint8Array(4), "critical"), true);
  assert.deepEqual(sink.sent, ["aaa", "bbb", "bin:4"]);
  assert.equal(sink.bufferedAmount, 10);
  assert.equal(outbox.sent, 3);
  assert.equal(outbox.dropped, 0);
  assert.equal(outbox.queuedBytes, 0);
  assert.equal(outbox.queuedFrames, 0);
});

Deno.test("Outbox keeps strict order: a frame that fits still waits behind queued ones", () => {
  const { sink, outbox } = setup();
  outbox.enqueue("12345678"); // 8 bytes, sent
  outbox.enqueue("12345"); // 8 + 5 > 10: queued
  outbox.enqueue("1"); // would fit beside the 8, but must not overtake
  outbox.enqueue("2", "high");
  assert.deepEqual(sink.sent, ["12345678"]);
  assert.equal(outbox.queuedFrames, 3);
  assert.equal(outbox.queuedBytes, 7);
  sink.drain();
  outbox.flush();
  assert.deepEqual(sink.sent, ["12345678", "12345", "1", "2"]);
  assert.equal(outbox.sent, 4);
  assert.equal(outbox.queuedBytes, 0);
});

Deno.test("Outbox flush sends only what fits, in order", () => {
  const { sink, outbox } = setup();
  outbox.enqueue("aaaaaaaaaa"); // 10, sent
  outbox.enqueue("bbbbbb"); // queued
  outbox.enqueue("cccccc"); // queued (normal frames are never dropped)
  sink.drain(6); // 4 buffered: b fits (4 + 6 = 10), then c does not
  outbox.flush();
  assert.deepEqual(sink.sent, ["aaaaaaaaaa", "bbbbbb"]);
  assert.equal(outbox.queuedFrames, 1);
  sink.drain();
  outbox.flush();
  assert.deepEqual(sink.sent, ["aaaaaaaaaa", "bbbbbb", "cccccc"]);
});

Deno.test("Outbox enqueue first moves queued frames the sink now has room for", () => {
  const { sink, outbox } = setup();
  outbox.enqueue("aaaaaaaaaa");
  outbox.enqueue("bb");
  sink.drain();
  outbox.enqueue("cc");
  assert.deepEqual(sink.sent, ["aaaaaaaaaa", "bb", "cc"]);
  assert.equal(outbox.queuedFrames, 0);
});

Deno.test("Outbox drops an incoming low frame over the bound and counts it", () => {
  const { sink, outbox } = setup();
  outbox.enqueue("aaaaaaaa"); // 8 buffered
  assert.equal(outbox.enqueue("lll", "low"), false); // 8 + 3 > 10
  assert.equal(outbox.enqueue("ll", "low"), true); // 8 + 2 fits and goes out
  assert.equal(outbox.dropped, 1);
  assert.deepEqual(sink.sent, ["aaaaaaaa", "ll"]);
});

Deno.test("Outbox drops low frames over the bound and keeps the others in order", () => {
  const { sink, outbox } = setup();
  outbox.enqueue("aaaaaaaa"); // 8 buffered
  outbox.enqueue("n1"); // 8 + 2 = 10 fits: sent
  assert.equal(sink.bufferedAmount, 10);
  sink.drain(4); // 6 buffered
  outbox.enqueue("xxxxx"); // 6 + 5 > 10: queued, load 11
  sink.drain(6); // 0 buffered, but nothing flushed yet: the queue holds x
  outbox.flush(); // x goes out: 5 buffered
  outbox.enqueue("l1", "low"); // 5 + 2 fits: sent, 7 buffered
  outbox.enqueue("hhhh", "high"); // 7 + 4 > 10: queued, load 11
  assert.equal(outbox.enqueue("l2", "low"), false); // over the bound: dropped
  assert.equal(outbox.dropped, 1);
  sink.drain(); // 0 buffered
  outbox.flush(); // h goes out: 4 buffered
  // Now queue low frames behind a stalled sink, then a critical frame that needs their room.
  sink.bufferedAmount = 4;
  outbox.enqueue("cccccc"); // 4 + 6 = 10: sent
  outbox.enqueue("L3", "low"); // 10 + 2 > 10 and load 12 > 10: dropped at once
  assert.equal(outbox.dropped, 2);
  sink.drain(10); // 0 buffered
  sink.bufferedAmount = 1; // something else in flight
  outbox.enqueue("qqqqqqqqq"); // 1 + 9 = 10: sent
  outbox.enqueue("a", "low"); // load 10 + 1 > 10: dropped
  assert.equal(outbox.dropped, 3);
  assert.deepEqual(sink.sent, ["aaaaaaaa", "n1", "xxxxx", "l1", "hhhh", "cccccc", "qqqqqqqqq"]);
});

Deno.test("Outbox never queues a low frame: it goes out at once or is dropped", () => {
  const { sink, outbox } = setup({ maxBytes: 20 });
  sink.bufferedAmount = 15; // a big frame in flight
  assert.equal(outbox.enqueue("l1", "low"), true); // 15 + 2 ≤ 20: sent
  assert.equal(outbox.enqueue("nnnn"), true); // 17 + 4 > 20: queued
  assert.equal(outbox.enqueue("l2", "low"), false); // a frame waits, so the sink is full: dropped
  sink.drain(10); // 7 buffered, not flushed yet
  assert.equal(outbox.enqueue("l3", "low"), true); // enqueue moves nnnn first, then l3 fits
  assert.equal(outbox.queuedFrames, 0);
  assert.equal(outbox.dropped, 1);
  assert.deepEqual(sink.sent, ["l1", "nnnn", "l3"]);
});

Deno.test("Outbox never drops normal, high or critical frames before the socket is slow", () => {
  const { sink, outbox } = setup({ maxBytes: 10, hardLimitBytes: 1000 });
  outbox.enqueue("aaaaaaaaaa");
  for (const priority of ["normal", "high", "critical"] as const) {
    for (let i = 0; i < 5; i++) assert.equal(outbox.enqueue(`${priority[0]}${i}`, priority), true);
  }
  assert.equal(outbox.dropped, 0);
  assert.equal(outbox.queuedFrames, 15);
  sink.drain();
  outbox.flush();
  sink.drain();
  outbox.flush();
  sink.drain();
  outbox.flush();
  assert.deepEqual(sink.sent.slice(1, 4), ["n0", "n1", "n2"]);
  assert.equal(sink.sent.length, 16);
});

Deno.test("Outbox declares a socket slow after overLimitMs over the bound, once", () => {
  const { sink, clock, outbox, slowCalls } = setup();
  outbox.enqueue("aaaaaaaaaa"); // at the bound, not over
  clock.time = 1000;
  outbox.enqueue("bb"); // over from t=1000
  clock.time = 5999;
  outbox.flush();
  assert.equal(slowCalls(), 0);
  assert.equal(outbox.slow, false);
  clock.time = 6000;
  outbox.flush();
  assert.equal(slowCalls(), 1);
  assert.equal(outbox.slow, true);
  assert.equal(outbox.dropped, 1); // the queued frame
  assert.equal(outbox.queuedBytes, 0);
  clock.time = 20_000;
  assert.equal(outbox.enqueue("cc", "critical"), false);
  outbox.flush();
  sink.drain();
  outbox.flush();
  assert.equal(slowCalls(), 1);
  assert.equal(outbox.dropped, 2);
  assert.deepEqual(sink.sent, ["aaaaaaaaaa"]);
});

Deno.test("Outbox checks the over-limit time on enqueue too", () => {
  const { clock, outbox, slowCalls } = setup();
  outbox.enqueue("aaaaaaaaaa");
  outbox.enqueue("b"); // over from t=0
  clock.time = 5000;
  outbox.enqueue("c");
  assert.equal(slowCalls(), 1);
});

Deno.test("Outbox forgets the over-limit time once the socket drains under the bound", () => {
  const { sink, clock, outbox, slowCalls } = setup();
  outbox.enqueue("aaaaaaaaaa");
  outbox.enqueue("b"); // over from t=0
  clock.time = 3000;
  sink.drain();
  outbox.flush(); // b sent, 1 buffered: under
  clock.time = 4000;
  outbox.enqueue("ccccccccc"); // 1 + 9 = 10: sent, at the bound
  outbox.enqueue("d"); // over again from t=4000
  clock.time = 8999;
  outbox.flush();
  assert.equal(slowCalls(), 0);
  clock.time = 9000;
  outbox.flush();
  assert.equal(slowCalls(), 1);
});

Deno.test("Outbox sends a frame larger than the bound when the sink is empty", () => {
  const { sink, clock, outbox, slowCalls } = setup();
  assert.equal(outbox.enqueue("x".repeat(25)), true);
  assert.equal(sink.sent.length, 1);
  assert.equal(outbox.enqueue("y"), true); // queued behind
  clock.time = 1000;
  sink.drain();
  outbox.flush();
  assert.equal(sink.sent.length, 2);
  clock.time = 10_000;
  outbox.flush();
  assert.equal(slowCalls(), 0);
});

Deno.test("Outbox declares a socket slow at once past hardLimitBytes", () => {
  const { outbox, slowCalls } = setup({ maxBytes: 10, hardLimitBytes: 30 });
  outbox.enqueue("aaaaaaaaaa");
  outbox.enqueue("b".repeat(20)); // load 30: over, within the hard limit
  assert.equal(slowCalls(), 0);
  outbox.enqueue("c"); // load 31
  assert.equal(slowCalls(), 1);
  assert.equal(outbox.dropped, 2);
});

Deno.test("Outbox counts text frames in UTF-8 bytes", () => {
  const { sink, outbox } = setup();
  outbox.enqueue("ééééé"); // 10 bytes
  assert.equal(sink.bufferedAmount, 10);
  outbox.enqueue("é"); // 2 bytes, queued
  outbox.enqueue("😀"); // 4 bytes, queued
  assert.equal(outbox.queuedBytes, 6);
});

Deno.test("Outbox close discards the queue and ignores later frames", () => {
  const { sink, outbox, slowCalls } = setup();
  outbox.enqueue("aaaaaaaaaa");
  outbox.enqueue("b");
  outbox.close();
  assert.equal(outbox.queuedFrames, 0);
  assert.equal(outbox.enqueue("c"), false);
  sink.drain();
  outbox.flush();
  assert.deepEqual(sink.sent, ["aaaaaaaaaa"]);
  assert.equal(slowCalls(), 0);
});

Deno.test("Outbox handles many frames behind a stalled sink in linear time", () => {
  const { sink, outbox } = setup({ maxBytes: 1_000_000, hardLimitBytes: 10_000_000 });
  sink.bufferedAmount = 1_000_000;
  const n = 200_000;
  for (let i = 0; i < n; i++) outbox.enqueue("abcd", i % 2 === 0 ? "low" : "normal");
  // Every low frame is dropped; every normal one waits.
  assert.equal(outbox.sent, 0);
  assert.equal(outbox.dropped + outbox.queuedFrames, n);
  assert.equal(outbox.queuedFrames, n / 2);
  sink.bufferedAmount = 0;
  sink.send = function (data) {
    this.sent.push(data as string);
  };
  outbox.flush();
  assert.equal(outbox.sent, n / 2);
  assert.equal(outbox.queuedFrames, 0);
});

/** A socket stand-in like FakeSink that counts the reads of `bufferedAmount` (an op on a WebSocket). */
class CountingSink implements OutboxSink {
  reads = 0;
  sent: string[] = [];
  #buffered = 0;

  get bufferedAmount(): number {
    this.reads++;
    return this.#buffered;
  }

  /** The sink's buffer, without counting a read. */
  get peek(): number {
    return this.#buffered;
  }

  send(data: string | Uint8Array): void {
    assert.equal(typeof data, "string");
    this.sent.push(data as string);
    this.#buffered += new TextEncoder().encode(data as string).length;
  }

  drain(bytes = Infinity): void {
    this.#buffered = Math.max(0, this.#buffered - bytes);
  }
}

function counting(options: OutboxOptions = {}) {
  const sink = new CountingSink();
  const clock = new FakeClock();
  let slowCalls = 0;
  let backlogs = 0;
  const outbox = new Outbox(sink, {
    maxBytes: 100,
    overLimitMs: 5000,
    clock,
    onSlow: () => slowCalls++,
    onBacklog: () => backlogs++,
    ...options,
  });
  return { sink, clock, outbox, slowCalls: () => slowCalls, backlogs: () => backlogs };
}

Deno.test("Outbox reads bufferedAmount only when its estimate nears the bound", () => {
  const { sink, outbox } = counting({ maxBytes: 1000 });
  for (let i = 0; i < 50; i++) assert.equal(outbox.enqueue("0123456789"), true); // 500 bytes
  assert.equal(sink.reads, 1, "only the first enqueue reads");
  // The socket writes everything out; the outbox does not know yet and keeps counting.
  sink.drain();
  for (let i = 0; i < 50; i++) assert.equal(outbox.enqueue("0123456789"), true); // estimate 1000
  assert.equal(sink.reads, 1);
  // The next frame would take the estimate past the bound: one read finds 500 and it goes out.
  assert.equal(outbox.enqueue("0123456789"), true);
  assert.equal(sink.reads, 2);
  assert.equal(sink.peek, 510);
  for (let i = 0; i < 49; i++) outbox.enqueue("0123456789"); // estimate = real = 1000
  assert.equal(sink.reads, 2, "no read right after a send");
  assert.equal(outbox.sent, 150);
  assert.equal(outbox.queuedFrames, 0);
  assert.equal(outbox.dropped, 0);
});

Deno.test("Outbox with a lazy read still detects a sink that never drains", () => {
  const { sink, clock, outbox, slowCalls, backlogs } = counting({ maxBytes: 100 });
  for (let i = 0; i < 10; i++) outbox.enqueue("0123456789"); // 100 bytes, at the bound
  assert.equal(sink.reads, 1);
  assert.equal(outbox.enqueue("low", "low"), false, "over the bound: the low frame is dropped");
  assert.equal(outbox.enqueue("n"), true); // waits: over the bound from t=0
  assert.equal(backlogs(), 1, "the socket layer is told to start flushing");
  assert.equal(outbox.enqueue("m"), true);
  assert.equal(backlogs(), 1, "only when the queue was empty");
  assert.equal(outbox.queuedFrames, 2);
  clock.time = 4999;
  outbox.flush();
  assert.equal(slowCalls(), 0);
  clock.time = 5000;
  outbox.flush();
  assert.equal(slowCalls(), 1);
  assert.equal(outbox.slow, true);
  assert.equal(outbox.dropped, 3);
  assert.equal(sink.sent.length, 10);
});

Deno.test("Outbox with a lazy read still enforces the hard limit", () => {
  const { outbox, slowCalls } = counting({ maxBytes: 100, hardLimitBytes: 150 });
  for (let i = 0; i < 10; i++) outbox.enqueue("0123456789");
  for (let i = 0; i < 5; i++) outbox.enqueue("0123456789"); // load 150: over, not past the cap
  assert.equal(slowCalls(), 0);
  outbox.enqueue("x"); // load 151
  assert.equal(slowCalls(), 1);
});

Deno.test("Outbox flush reads bufferedAmount and resumes sending straight away", () => {
  const { sink, outbox } = counting({ maxBytes: 100 });
  for (let i = 0; i < 10; i++) outbox.enqueue("0123456789");
  outbox.enqueue("a"); // queued
  const reads = sink.reads;
  sink.drain();
  outbox.flush(); // reads 0, sends a: estimate 1
  assert.equal(sink.reads, reads + 1);
  for (let i = 0; i < 9; i++) outbox.enqueue("0123456789"); // estimate 91
  assert.equal(sink.reads, reads + 1);
  assert.equal(outbox.queuedFrames, 0);
  assert.deepEqual(sink.sent.slice(10, 12), ["a", "0123456789"]);
});
