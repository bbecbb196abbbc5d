/**
 * An actor with write batches queued sends the next batch's commit before the previous batch's
 * answers and events go out (actors/actor.ts, `#writeBatch`), so a hot actor's fan-out overlaps
 * its next commit. These check, with a store whose commits are settled by hand, that the overlap
 * happens and that nobody can observe it: every answer comes after its own event, events keep
 * version order, and a read or a refused batch releases what was held before it runs.
 */
import assert from "node:assert/strict";
import { Actor, type ActorContext } from "../../actors/actor.ts";
import type { CommitResult, Intent } from "../../storage/store.ts";

interface CounterTx {
  n: number;
}

/** A counter actor: each op adds one; each commit emits the new values. */
class Counter extends Actor<CounterTx, number> {
  n = 0;
  /** The next working copy's commit cannot be built (as when an encoder refuses a value). */
  failIntent = false;
  protected onStart(): Promise<string | null> {
    return Promise.resolve(null);
  }
  protected headKey(): Deno.KvKey {
    return ["counter"];
  }
  protected begin(): CounterTx {
    return { n: this.n };
  }
  protected intent(tx: CounterTx): Intent | null {
    if (this.failIntent) throw new Error("cannot encode");
    if (tx.n === this.n) return null;
    return { checks: [], mutations: [{ type: "set", key: ["counter"], value: tx.n }], bytes: 8 };
  }
  protected adopt(tx: CounterTx): number[] {
    const events: number[] = [];
    for (let v = this.n + 1; v <= tx.n; v++) events.push(v);
    this.n = tx.n;
    return events;
  }
  add(): Promise<number> {
    return this.write((tx) => ++tx.n);
  }
  refuse(): Promise<number> {
    return this.write(() => {
      throw new Error("refused");
    });
  }
  value(): Promise<number> {
    return this.read(() => this.n);
  }
}

/** A store whose commits wait until the test settles them, logging when each was sent. */
function manualStore(log: string[]) {
  const pending: ((r: CommitResult) => void)[] = [];
  let stamp = 0;
  const store = {
    commit(intent: Intent): Promise<CommitResult> {
      log.push(`commit ${(intent.mutations[0] as { value: number }).value}`);
      return new Promise((resolve) => pending.push(resolve));
    },
    get: () => Promise.resolve({ key: ["counter"], value: null, versionstamp: null }),
  };
  /** Settles the oldest commit in flight, then lets every continuation run. */
  const settleNext = async () => {
    const resolve = pending.shift();
    assert.ok(resolve, "a commit is in flight");
    resolve({ ok: true, versionstamp: String(++stamp).padStart(20, "0") });
    for (let i = 0; i < 20; i++) await Promise.resolve();
  };
  return { store, settleNext, inFlight: () => pending.length };
}

function counter(log: string[]) {
  const { store, settleNext, inFlight } = manualStore(log);
  const ctx = {
    store,
    watch: { watch: () => ({ stop() {}, live: true }), current: () => true },
    clock: { now: () => 0, setTimeout: () => 0, clearTimeout() {} },
    config: {},
  } as unknown as ActorContext;
  const actor = new Counter("counter", "c", ctx);
  actor.subscribe((v) => log.push(`event ${v}`));
  return { actor, settleNext, inFlight };
}

const tick = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

Deno.test("[actor] the next write batch's commit is sent before the last batch's answers and events", async () => {
  const log: string[] = [];
  const { actor, settleNext, inFlight } = counter(log);
  await actor.start();
  const first = actor.add().then((v) => log.push(`answer ${v}`));
  await tick();
  // Queued while the first commit is in flight: one batch of two.
  const second = [actor.add(), actor.add()].map((p) => p.then((v) => log.push(`answer ${v}`)));
  await settleNext();
  assert.deepEqual(log, ["commit 1", "commit 3", "event 1", "answer 1"]);
  assert.equal(inFlight(), 1);
  await settleNext();
  await Promise.all([first, ...second]);
  assert.deepEqual(log.slice(4), ["event 2", "event 3", "answer 2", "answer 3"]);
});

Deno.test("[actor] a read after held writes is answered after their events, with their result", async () => {
  const log: string[] = [];
  const { actor, settleNext } = counter(log);
  await actor.start();
  const a = actor.add();
  await tick();
  const b = actor.add();
  const read = actor.value().then((v) => log.push(`read ${v}`));
  await settleNext(); // the first batch is held while the second one's commit is on its way
  assert.deepEqual(log, ["commit 1", "commit 2", "event 1"]);
  await settleNext();
  await Promise.all([a, b, read]);
  assert.deepEqual(log.slice(3), ["event 2", "read 2"]);
});

Deno.test("[actor] a batch that commits nothing releases the held answers before it waits", async () => {
  const log: string[] = [];
  const { actor, settleNext, inFlight } = counter(log);
  await actor.start();
  const a = actor.add().then((v) => log.push(`answer ${v}`));
  await tick();
  const refused = actor.refuse().catch((e) => log.push(`refused: ${e.message}`));
  await settleNext();
  await Promise.all([a, refused]);
  assert.deepEqual(log, ["commit 1", "event 1", "answer 1", "refused: refused"]);
  assert.equal(inFlight(), 0);
});

Deno.test("[actor] with nothing queued after it, a batch answers at once", async () => {
  const log: string[] = [];
  const { actor, settleNext } = counter(log);
  await actor.start();
  const a = actor.add().then((v) => log.push(`answer ${v}`));
  await tick();
  await settleNext();
  await a;
  assert.deepEqual(log, ["commit 1", "event 1", "answer 1"]);
  await actor.drained();
});

Deno.test("[actor] a batch whose commit cannot be built fails, and the held answers still go out", async () => {
  const log: string[] = [];
  const { actor, settleNext, inFlight } = counter(log);
  await actor.start();
  const a = actor.add().then((v) => log.push(`answer ${v}`));
  await tick();
  const b = actor.add().catch((e) => log.push(`failed: ${e.message}`));
  actor.failIntent = true;
  await settleNext();
  await Promise.all([a, b]);
  assert.deepEqual(log, ["commit 1", "event 1", "answer 1", "failed: cannot encode"]);
  assert.equal(inFlight(), 0);
  actor.failIntent = false;
  assert.equal(await actor.value(), 1, "the failed batch left no trace");
});
