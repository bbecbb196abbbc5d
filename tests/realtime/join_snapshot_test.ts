// deno-lint-ignore-file no-explicit-any
/**
 * A join's reply on the actor-backed topics (`reel`, `kv`, `context`) is read from the loaded actor
 * without a KV confirmation (`TopicHandler.join`). These tests check what makes that sound: with a
 * second instance on the same KV file writing while sockets join on the first, whatever version or
 * seq a reply carries, the socket then gets exactly the changes after it, once each and in order.
 * @module
 */
import assert from "node:assert/strict";
import type { Chorus } from "../../mod.ts";
import { onOneFile, until } from "../_helpers.ts";

const WRITES = 30;
const SOCKETS = 30;

/** A socket transport that keeps the join reply and the live messages of one event. */
class TopicSink {
  bufferedAmount = 0;
  readonly frames: any[][] = [];
  constructor(readonly event: string, readonly positionOf: (payload: any) => number) {}
  send(data: string | Uint8Array): void {
    if (typeof data === "string") this.frames.push(JSON.parse(data));
  }
  close(): void {}
  /** The reply's version or seq, once the join is answered. */
  replied(): number | undefined {
    const reply = this.frames.find((f) => f[3] === "phx_reply" && f[1] === "1");
    if (reply && reply[4].status !== "ok") throw new Error(JSON.stringify(reply[4]));
    return reply ? this.positionOf(reply[4].response) : undefined;
  }
  /** The versions or seqs of the live messages, in arrival order. */
  live(): number[] {
    return this.frames.filter((f) => f[3] === this.event).map((f) => this.positionOf(f[4]));
  }
  last(): number | undefined {
    return this.live().at(-1) ?? this.replied();
  }
}

/**
 * Loads the topic's actor on `a` (`load`), then joins `SOCKETS` sockets to `topic` on `a`, with
 * one change made on the other instance (`write`) after each; checks every socket's messages after
 * its reply.
 */
async function joinWhileOtherWrites(
  a: Chorus,
  topic: string,
  event: string,
  load: () => Promise<unknown>,
  write: (i: number) => Promise<unknown>,
  final: number,
): Promise<void> {
  await load();
  const sinks: TopicSink[] = [];
  for (let n = 0; n < SOCKETS; n++) {
    const sink = new TopicSink(event, (p) => p.seq ?? p.version);
    a.realtime.attach(sink, { user_id: `viewer-${n}` })
      .receive(JSON.stringify(["1", "1", topic, "phx_join", {}]));
    sinks.push(sink);
    // A write on the other instance between joins: `a` learns of it through watch, so a join may
    // come before `a`'s actor has it (its reply then trails KV) or after.
    if (n < WRITES) await write(n + 1);
  }
  await until(() => sinks.every((s) => s.last() === final), `every socket at ${final}`);
  for (const sink of sinks) {
    const from = sink.replied()!;
    const expected = Array.from({ length: final - from }, (_, i) => from + 1 + i);
    assert.deepEqual(sink.live(), expected, `a socket whose reply was at ${from}`);
  }
}

Deno.test("[ws] reel joins on one instance while another publishes: the reply's seq, then every later update once", async () => {
  await onOneFile((a, b) =>
    joinWhileOtherWrites(
      a,
      "reel:live",
      "reel_update",
      () => a.reels.get("live"),
      (i) => b.reels.publish("live", { update_data: { i } }),
      WRITES,
    )
  );
});

Deno.test("[ws] kv joins on one instance while another writes: the reply's version, then every later change once", async () => {
  await onOneFile((a, b) =>
    joinWhileOtherWrites(
      a,
      "kv:live",
      "change",
      () => a.kv.get("live"),
      (i) => b.kv.put("live", { i }),
      WRITES,
    )
  );
});

Deno.test("[ws] context joins on one instance while another updates: the reply's version, then every later delta once", async () => {
  await onOneFile(async (a, b) => {
    await b.contexts.set("live", { n: 0 }); // version 1
    await joinWhileOtherWrites(
      a,
      "context:live",
      "delta",
      () => a.contexts.get("live"),
      (i) => b.contexts.update("live", { n: i }),
      WRITES + 1,
    );
  });
});
