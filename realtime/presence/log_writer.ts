/**
 * The presence change log's writer: every join and leave appends `{joins, leaves}` to its topic's
 * log under the next sequence number. The number lives at `presenceSeqKey(topic)` and each append
 * checks its versionstamp, so the log has one order with no gaps for every instance; this
 * instance's appends to a topic go through one queue and are committed in batches, with a short
 * random backoff when another instance appended first.
 * @module
 */
import { backoff } from "../../clock.ts";
import type { Check, Mutation } from "../../storage/store.ts";
import { presenceKey, presenceLogKey, presenceSeqKey } from "../../storage/keys.ts";
import {
  type Committed,
  type LogOp,
  type PendingOp,
  type PresenceContext,
  type StoredPresence,
  storedRecord,
} from "./_context.ts";
import type { PresenceDiff } from "./meta.ts";

/** Appends committed together at most. */
const BATCH = 50;
const SEQ_TTL_MS = 7 * 86_400_000;
/** Commits tried before an append gives up on a contended log. */
const MAX_ATTEMPTS = 100;

/**
 * Appends `op` to its topic's log through this instance's queue for the topic (made on first use),
 * so appends from here never race each other and those queued together share one commit.
 * @returns where it landed; rejects when KV fails or the log stays contended
 */
export function appendToLog(ctx: PresenceContext, op: LogOp): Promise<Committed> {
  const topic = op.topic;
  let writer = ctx.writers.get(topic);
  if (!writer) {
    writer = new LogWriter(ctx, topic);
    ctx.writers.set(topic, writer);
  }
  const queue = writer;
  return new Promise((done, fail) => queue.push({ ...op, done, fail }));
}

/** Serializes one topic's log appends on this instance and batches what queues meanwhile. */
export class LogWriter {
  readonly #ctx: PresenceContext;
  readonly #topic: string;
  #queue: PendingOp[] = [];
  #running = false;

  /** A writer for `topic`; it removes itself from `ctx.writers` whenever its queue runs empty. */
  constructor(ctx: PresenceContext, topic: string) {
    this.#ctx = ctx;
    this.#topic = topic;
  }

  /** Queues an append; it is committed after those queued before, with those queued meanwhile. */
  push(op: PendingOp): void {
    this.#queue.push(op);
    if (!this.#running) this.#run();
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length) {
        const batch = this.#queue.splice(0, BATCH);
        try {
          const r = await this.#commit(batch);
          for (const op of batch) op.done(r);
        } catch (e) {
          for (const op of batch) op.fail(e);
        }
      }
    } finally {
      this.#running = false;
      if (this.#ctx.writers.get(this.#topic) === this) this.#ctx.writers.delete(this.#topic);
    }
  }

  async #commit(batch: PendingOp[]): Promise<Committed> {
    const { store, clock } = this.#ctx;
    const seqKey = presenceSeqKey(this.#topic);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const seqEntry = await store.get<number>(seqKey);
      const checks: Check[] = [{ key: seqKey, versionstamp: seqEntry.versionstamp }];
      let ops = batch;
      const sweeps = batch.filter((op) => op.kind === "sweep");
      if (sweeps.length) {
        const keys = sweeps.map((op) => presenceKey(this.#topic, op.key, op.meta.phx_ref));
        const found = await store.getAll(keys);
        const now = clock.now();
        const gone = new Set<PendingOp>();
        sweeps.forEach((op, i) => {
          const entry = found[i];
          const value = entry.value as StoredPresence | null;
          if (!value || value.exp > now) gone.add(op); // removed already, or refreshed
          else checks.push({ key: keys[i], versionstamp: entry.versionstamp });
        });
        ops = batch.filter((op) => !gone.has(op));
      }
      const current = seqEntry.value ?? 0;
      if (ops.length === 0) return { seq: current, versionstamp: null };
      const seq = current + 1;
      const diff: PresenceDiff = { joins: {}, leaves: {} };
      const mutations: Mutation[] = [];
      let bytes = 256;
      for (const op of ops) {
        const key = presenceKey(this.#topic, op.key, op.meta.phx_ref);
        const side = op.kind === "join" ? diff.joins : diff.leaves;
        (side[op.key] ??= { metas: [] }).metas.push(op.meta);
        const size = JSON.stringify(op.meta).length + op.key.length + 64;
        bytes += size * 2;
        if (op.kind === "join") {
          mutations.push({
            type: "set",
            key,
            value: storedRecord(this.#ctx, op),
            expireIn: this.#ctx.ttlMs,
          });
        } else mutations.push({ type: "delete", key });
      }
      mutations.push({ type: "set", key: seqKey, value: seq, expireIn: SEQ_TTL_MS });
      mutations.push({
        type: "set",
        key: presenceLogKey(this.#topic, seq),
        value: diff,
        expireIn: this.#ctx.logTtlMs,
      });
      const r = await store.commit({ checks, mutations, bytes });
      if (r.ok) return { seq, versionstamp: r.versionstamp };
      // Another instance appended first: back off a little and retry on the new seq.
      await backoff(attempt, { baseMs: 0.5, capMs: 25 });
    }
    throw new Error(`Cannot update presence of "${this.#topic}": the log stayed contended`);
  }
}
