/**
 * A `Deno.Kv` wrapper that fails or delays a share of commits and reads, decided by a seeded PRNG,
 * for fault-injection tests: `Chorus.open({ kv: faulty.kv })`.
 *
 * Every failure is injected BEFORE the call reaches the real KV, so its outcome is known: a failed
 * commit did not land, and a failed read read nothing. (A commit that throws after landing would
 * make "was it acknowledged?" ambiguous; see `failAfterCommit` for the one test that wants that.)
 * Delays happen before forwarding too, so a delayed commit lands after its delay.
 *
 * Chorus reaches KV through `storage/store.ts` (`get`, `getMany`, `list`, `atomic().commit()`)
 * and `storage/watch.ts` (`watch`, `set` of its probe key); everything else is passed through.
 * @module
 */
import { Rng } from "../../prng.ts";

/** Which calls a fault applies to. */
export type FaultOp = "commit" | "get" | "getMany" | "list";

/** What to inject; rates are shares of calls in [0, 1]. */
export interface FaultPlan {
  /** Seed of the decisions (replayable given the same call order). */
  seed: number;
  /** Share of `atomic().commit()` calls that throw before reaching KV. */
  commitFailRate?: number;
  /** Share of `get` and `getMany` calls that throw before reaching KV. */
  readFailRate?: number;
  /** Share of `list` iterations that throw on their first `next()`, before reaching KV. */
  listFailRate?: number;
  /** Share of calls (of the ops in `delayOps`) that wait `delayMs` before going on. */
  delayRate?: number;
  /** How long a delayed call waits. Default 50 ms. */
  delayMs?: number;
  /** Which ops may be delayed. Default: all. */
  delayOps?: FaultOp[];
  /** Only calls touching a key for which this returns true are affected. Default: all. */
  keyFilter?: (key: Deno.KvKey) => boolean;
  /**
   * Share of commits that reach KV, land, and then throw anyway (an ambiguous failure, as a lost
   * answer from a remote KV would be). Default 0.
   */
  failAfterCommit?: number;
}

/** Counts of calls and of injected faults. */
export interface FaultCounts {
  commits: number;
  commitFailures: number;
  commitsLandedThenFailed: number;
  reads: number;
  readFailures: number;
  lists: number;
  listFailures: number;
  delays: number;
}

/** The error an injected fault throws (what a lost connection to KV looks like to Chorus). */
export class InjectedFault extends Error {
  constructor(op: FaultOp, n: number) {
    super(`injected KV fault: ${op} #${n} failed (connection reset)`);
    this.name = "InjectedFault";
  }
}

/** Wraps a real `Deno.Kv`; `kv` is what Chorus is given. Faults are off until `enable()`. */
export class FaultyKv {
  /** The real KV underneath. */
  readonly inner: Deno.Kv;
  /** Injected so far. */
  readonly counts: FaultCounts = {
    commits: 0,
    commitFailures: 0,
    commitsLandedThenFailed: 0,
    reads: 0,
    readFailures: 0,
    lists: 0,
    listFailures: 0,
    delays: 0,
  };
  #plan: FaultPlan;
  #rng: Rng;
  #enabled = false;
  #pendingDelays = new Set<ReturnType<typeof setTimeout>>();

  constructor(inner: Deno.Kv, plan: FaultPlan) {
    this.inner = inner;
    this.#plan = plan;
    this.#rng = new Rng(plan.seed);
  }

  /** The `Deno.Kv` to hand to `Chorus.open`. */
  get kv(): Deno.Kv {
    return this as unknown as Deno.Kv;
  }

  /** Starts injecting, optionally with a new plan (its seed restarts the decisions). */
  enable(plan?: FaultPlan): void {
    if (plan) {
      this.#plan = plan;
      this.#rng = new Rng(plan.seed);
    }
    this.#enabled = true;
  }

  /** Stops injecting (calls already delayed still finish their wait). */
  disable(): void {
    this.#enabled = false;
  }

  /** Whether faults are being injected. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Calls still waiting out an injected delay (tests wait for none before checking results). */
  get delaying(): number {
    return this.#pendingDelays.size;
  }

  #applies(keys: Deno.KvKey[]): boolean {
    if (!this.#enabled) return false;
    const filter = this.#plan.keyFilter;
    return !filter || keys.some(filter);
  }

  /** Waits (maybe) and decides whether this call fails; `keys` scope it under `keyFilter`. */
  async #gate(op: FaultOp, keys: Deno.KvKey[], n: number): Promise<void> {
    if (!this.#applies(keys)) return;
    const plan = this.#plan;
    // Draw both decisions up front, so a delay does not shift later calls' draws.
    const delay = (plan.delayOps ?? ["commit", "get", "getMany", "list"]).includes(op) &&
      this.#rng.chance(plan.delayRate ?? 0);
    const rate = op === "commit"
      ? plan.commitFailRate
      : op === "list"
      ? plan.listFailRate
      : plan.readFailRate;
    const fail = this.#rng.chance(rate ?? 0);
    if (delay) {
      this.counts.delays++;
      await new Promise<void>((resolve) => {
        const id = setTimeout(() => {
          this.#pendingDelays.delete(id);
          resolve();
        }, plan.delayMs ?? 50);
        this.#pendingDelays.add(id);
      });
    }
    if (fail) {
      if (op === "commit") this.counts.commitFailures++;
      else if (op === "list") this.counts.listFailures++;
      else this.counts.readFailures++;
      throw new InjectedFault(op, n);
    }
  }

  get<T = unknown>(
    key: Deno.KvKey,
    options?: { consistency?: Deno.KvConsistencyLevel },
  ): Promise<Deno.KvEntryMaybe<T>> {
    const n = ++this.counts.reads;
    return this.#gate("get", [key], n).then(() => this.inner.get<T>(key, options));
  }

  getMany<T extends readonly unknown[]>(
    keys: readonly [...{ [K in keyof T]: Deno.KvKey }],
    options?: { consistency?: Deno.KvConsistencyLevel },
  ): Promise<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }> {
    const n = ++this.counts.reads;
    return this.#gate("getMany", keys as Deno.KvKey[], n).then(() =>
      this.inner.getMany<T>(keys, options)
    );
  }

  list<T = unknown>(
    selector: Deno.KvListSelector,
    options?: Deno.KvListOptions,
  ): Deno.KvListIterator<T> {
    const n = ++this.counts.lists;
    const real = this.inner.list<T>(selector, options); // validates synchronously, as KV does
    const keys = "prefix" in selector ? [selector.prefix] : [];
    if ("start" in selector) keys.push(selector.start);
    if ("end" in selector) keys.push(selector.end);
    let first = true;
    const gate = () => {
      if (!first) return Promise.resolve();
      first = false;
      return this.#gate("list", keys, n);
    };
    const iterator = {
      get cursor() {
        return real.cursor;
      },
      async next() {
        await gate();
        return await real.next();
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator as unknown as Deno.KvListIterator<T>;
  }

  atomic(): Deno.AtomicOperation {
    return new FaultyAtomic(this, this.inner.atomic()) as unknown as Deno.AtomicOperation;
  }

  /** Commits `op` unless a fault is injected first (called by {@linkcode FaultyAtomic}). */
  async commitThrough(
    op: Deno.AtomicOperation,
    keys: Deno.KvKey[],
  ): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    const n = ++this.counts.commits;
    await this.#gate("commit", keys, n);
    const result = await op.commit();
    if (
      this.#applies(keys) && result.ok && this.#rng.chance(this.#plan.failAfterCommit ?? 0)
    ) {
      this.counts.commitsLandedThenFailed++;
      throw new InjectedFault("commit", n);
    }
    return result;
  }

  watch<T extends readonly unknown[]>(
    keys: readonly [...{ [K in keyof T]: Deno.KvKey }],
    options?: { raw?: boolean },
  ): ReadableStream<{ [K in keyof T]: Deno.KvEntryMaybe<T[K]> }> {
    return this.inner.watch<T>(keys, options);
  }

  set(key: Deno.KvKey, value: unknown, options?: { expireIn?: number }) {
    return this.inner.set(key, value, options);
  }

  delete(key: Deno.KvKey): Promise<void> {
    return this.inner.delete(key);
  }

  enqueue(value: unknown, options?: Parameters<Deno.Kv["enqueue"]>[1]) {
    return this.inner.enqueue(value, options);
  }

  listenQueue(handler: (value: unknown) => Promise<void> | void): Promise<void> {
    return this.inner.listenQueue(handler);
  }

  /** Clears pending delays; the inner KV is closed by whoever opened it. */
  close(): void {
    for (const id of this.#pendingDelays) clearTimeout(id);
    this.#pendingDelays.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** An atomic operation whose commit goes through the fault gate. */
class FaultyAtomic {
  readonly #owner: FaultyKv;
  readonly #op: Deno.AtomicOperation;
  readonly #keys: Deno.KvKey[] = [];

  constructor(owner: FaultyKv, op: Deno.AtomicOperation) {
    this.#owner = owner;
    this.#op = op;
  }

  check(...checks: Deno.AtomicCheck[]): this {
    this.#op.check(...checks);
    for (const c of checks) this.#keys.push(c.key);
    return this;
  }

  mutate(...mutations: Deno.KvMutation[]): this {
    this.#op.mutate(...mutations);
    for (const m of mutations) this.#keys.push(m.key);
    return this;
  }

  set(key: Deno.KvKey, value: unknown, options?: { expireIn?: number }): this {
    this.#op.set(key, value, options);
    this.#keys.push(key);
    return this;
  }

  delete(key: Deno.KvKey): this {
    this.#op.delete(key);
    this.#keys.push(key);
    return this;
  }

  sum(key: Deno.KvKey, n: bigint): this {
    this.#op.sum(key, n);
    this.#keys.push(key);
    return this;
  }

  min(key: Deno.KvKey, n: bigint): this {
    this.#op.min(key, n);
    this.#keys.push(key);
    return this;
  }

  max(key: Deno.KvKey, n: bigint): this {
    this.#op.max(key, n);
    this.#keys.push(key);
    return this;
  }

  enqueue(value: unknown, options?: Parameters<Deno.AtomicOperation["enqueue"]>[1]): this {
    this.#op.enqueue(value, options);
    return this;
  }

  commit(): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    return this.#owner.commitThrough(this.#op, this.#keys);
  }
}
