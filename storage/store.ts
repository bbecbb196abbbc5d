/**
 * The only code that talks to Deno KV. It maps read consistency onto KV's options and turns
 * actors' write intents into atomic commits: **group commit** sends every intent that queued while
 * earlier commits were in flight in one atomic operation, within KV's per-commit limits, and still
 * gives each intent its own outcome. Two commits may be in flight at once, so the work of
 * preparing the next one overlaps KV's work on the last (closed loops of writers then keep KV busy
 * instead of taking turns with it). A commit takes only its share of the work waiting or in
 * flight: otherwise writers that await their own commit settle into one large commit and one of
 * a single intent, and the caller's thread and KV's take turns again.
 * @module
 */
import { ChorusError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import { backoff, systemClock } from "../clock.ts";
import {
  type CommitEvent,
  type KvReadEvent,
  type KvWriteEvent,
  telemetry,
} from "../observability/telemetry.ts";
import { failSpan, inSpan, SPAN_NAMES, tracer } from "../observability/tracing.ts";
import { GET_MANY_MAX, ReadBatcher } from "./read_batcher.ts";
import { NotCloneable, type OneWriter, type WriterAnswer } from "./one_writer.ts";

/** A precondition: `key` still has `versionstamp` (null = absent). */
export interface Check {
  key: Deno.KvKey;
  versionstamp: string | null;
}

/** One change inside an atomic commit. */
export type Mutation =
  | { type: "set"; key: Deno.KvKey; value: unknown; expireIn?: number }
  | { type: "delete"; key: Deno.KvKey }
  | { type: "sum"; key: Deno.KvKey; value: bigint };

/** What an actor wants committed: all or nothing, if the checks hold. */
export interface Intent {
  checks: Check[];
  mutations: Mutation[];
  /** Estimated bytes of keys and values, to keep a combined commit under KV's size limit. */
  bytes: number;
}

/** Outcome of one intent. */
export type CommitResult = { ok: true; versionstamp: string } | { ok: false };

/** KV's limits for one atomic commit. */
export interface CommitLimits {
  /** Most checks (100 on Deploy and local KV, 10 on a self-hosted KV Connect server). */
  checks: number;
  /** Most mutations (1,000). */
  mutations: number;
  /** Most bytes of keys and values (800 KiB; we keep a margin). */
  bytes: number;
}

/** Counters the metrics and status routes read. */
export interface StoreStats {
  /** Atomic commits sent to KV. */
  commits: number;
  /** Intents committed (≥ commits: the difference is what group commit saved). */
  intents: number;
  /** Intents whose checks failed. */
  conflicts: number;
  /** Reads sent to KV. */
  reads: number;
  /** Sum of commit latencies in ms (with {@linkcode commits}, the mean). */
  commitMs: number;
  /** Latency of the last commit in ms. */
  lastCommitMs: number;
  /** Commits per latency bucket: counts at or under each of {@linkcode COMMIT_BUCKETS_MS}. */
  commitBuckets: number[];
  /** Intents handed to another worker to commit (see storage/one_writer.ts). */
  handedOver: number;
  /** Intents another worker handed here to commit. */
  takenOver: number;
}

/** Upper bounds (ms) of the commit latency histogram. */
export const COMMIT_BUCKETS_MS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000];

interface Pending {
  intent: Intent;
  /** The intent's checks and mutations: what KV does for it, as far as a share is counted. */
  work: number;
  resolve: (r: CommitResult) => void;
  reject: (e: unknown) => void;
}

/** Options of {@linkcode Store}. */
export interface StoreOptions {
  /** Per-commit limits; checks default to 100. */
  limits?: Partial<CommitLimits>;
  /** Time source for latency figures. */
  clock?: Clock;
  /** Commits sent to KV before the next waits for one of them; default 2. */
  commitsInFlight?: number;
}

/**
 * Wraps one `Deno.Kv` handle: reads, lists, and group-committed atomic writes.
 */
export class Store {
  /** The KV handle; only storage/ modules may use it. */
  readonly kv: Deno.Kv;
  /**
   * Live counters.
   * @internal Not part of the embedding API; read by metrics and tests.
   */
  readonly stats: StoreStats = {
    commits: 0,
    intents: 0,
    conflicts: 0,
    reads: 0,
    commitMs: 0,
    lastCommitMs: 0,
    commitBuckets: COMMIT_BUCKETS_MS.map(() => 0),
    handedOver: 0,
    takenOver: 0,
  };
  readonly #limits: CommitLimits;
  readonly #clock: Clock;
  #queue: Pending[] = [];
  /** Commit loops running, each with at most one commit in flight. */
  #inFlight = 0;
  /** Work ({@linkcode Pending.work}) queued, and in the commits in flight. */
  #queuedWork = 0;
  #workInFlight = 0;
  readonly #maxInFlight: number;
  /** Single-key reads, grouped into `getMany` while one is in flight (see read_batcher.ts). */
  readonly #strongReads: ReadBatcher;
  readonly #eventualReads: ReadBatcher;
  #writer?: OneWriter;
  #closed = false;

  /** Wraps `kv`; `options` set the per-commit limits (fewer checks on KV Connect) and the clock. */
  constructor(kv: Deno.Kv, options: StoreOptions = {}) {
    this.kv = kv;
    this.#limits = {
      checks: options.limits?.checks ?? 100,
      mutations: options.limits?.mutations ?? 1000,
      bytes: options.limits?.bytes ?? 780 * 1024,
    };
    this.#clock = options.clock ?? systemClock;
    this.#maxInFlight = Math.max(1, options.commitsInFlight ?? 2);
    const reads = (consistency: "strong" | "eventual") =>
      new ReadBatcher({
        get: (key) => kv.get(key, { consistency }),
        getMany: (keys) => kv.getMany(keys, { consistency }),
      });
    this.#strongReads = reads("strong");
    this.#eventualReads = reads("eventual");
  }

  /**
   * The per-commit limits in force.
   * @internal Not part of the embedding API; used by actors and tests.
   */
  get limits(): CommitLimits {
    return this.#limits;
  }

  /**
   * From now on, commits go to the worker `writer` elects when it is another one (see
   * storage/one_writer.ts); the instance routes the intents handed here to
   * {@linkcode serveHandedOver}.
   * @internal Not part of the embedding API; set by the instance.
   */
  handOverTo(writer: OneWriter): void {
    this.#writer = writer;
  }

  /**
   * Commits an intent another worker handed over, here (never handed on), with the others queued.
   * @internal Not part of the embedding API; the instance's writers' channel calls it.
   */
  async serveHandedOver(intent: Intent): Promise<WriterAnswer> {
    this.stats.takenOver++;
    return { result: await this.#commitHere(intent), versionstamps: [] };
  }

  /** Intents waiting for a commit. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Reads one entry. */
  get<T = unknown>(
    key: Deno.KvKey,
    consistency: "strong" | "eventual" = "strong",
  ): Promise<Deno.KvEntryMaybe<T>> {
    const batcher = consistency === "strong" ? this.#strongReads : this.#eventualReads;
    return this.#read(
      "get",
      key,
      consistency,
      () => batcher.get(key) as Promise<Deno.KvEntryMaybe<T>>,
    );
  }

  /** Reads up to 10 entries at one point in time. */
  getMany(
    keys: Deno.KvKey[],
    consistency: "strong" | "eventual" = "strong",
  ): Promise<Deno.KvEntryMaybe<unknown>[]> {
    return this.#read("getMany", keys, consistency, () => this.kv.getMany(keys, { consistency }));
  }

  /**
   * Reads any number of entries, {@linkcode GET_MANY_MAX} per `getMany`, all sent at once; the
   * entries come back in the order of `keys`. Each part is read at its own point in time.
   */
  async getAll(
    keys: Deno.KvKey[],
    consistency: "strong" | "eventual" = "strong",
  ): Promise<Deno.KvEntryMaybe<unknown>[]> {
    const reads: Promise<Deno.KvEntryMaybe<unknown>[]>[] = [];
    for (let i = 0; i < keys.length; i += GET_MANY_MAX) {
      reads.push(this.getMany(keys.slice(i, i + GET_MANY_MAX), consistency));
    }
    return (await Promise.all(reads)).flat();
  }

  /** One KV read: counted, traced (`chorus.kv.read`) and published on `chorus:kv.read`. */
  async #read<R>(
    op: "get" | "getMany",
    keys: Deno.KvKey | Deno.KvKey[],
    consistency: "strong" | "eventual",
    read: () => Promise<R>,
  ): Promise<R> {
    this.stats.reads++;
    const span = tracer.startSpan(SPAN_NAMES.kvRead);
    const observed = telemetry.kvRead.hasSubscribers;
    if (!observed && !span.isRecording()) {
      try {
        return await retryBusy(read);
      } catch (e) {
        throw unavailable("read", e);
      }
    }
    const list = op === "get" ? [keys as Deno.KvKey] : keys as Deno.KvKey[];
    span.setAttributes({
      "chorus.kv.op": op,
      "chorus.kv.keys": list.length,
      "chorus.kv.consistency": consistency,
      "chorus.kv.key": String(list[0]?.join("/")),
    });
    const started = performance.now();
    const publish = (ok: boolean, error?: unknown) => {
      if (!observed) return;
      const event: KvReadEvent = {
        op,
        keys: list,
        consistency,
        durationMs: performance.now() - started,
        ok,
      };
      if (!ok) event.error = error;
      telemetry.kvRead.publish(event);
    };
    try {
      const result = await retryBusy(read);
      publish(true);
      return result;
    } catch (e) {
      publish(false, e);
      failSpan(span, e);
      throw unavailable("read", e);
    } finally {
      span.end();
    }
  }

  /** Lists entries; a malformed cursor is a 400. */
  list<T = unknown>(
    selector: Deno.KvListSelector,
    options: Deno.KvListOptions = {},
  ): Deno.KvListIterator<T> {
    this.stats.reads++;
    let iter: Deno.KvListIterator<T>;
    try {
      iter = this.kv.list<T>(selector, options);
    } catch (e) {
      throw new ChorusError("invalid_request", `Cannot list: ${(e as Error).message}`);
    }
    return unavailableOnFailure(iter);
  }

  /**
   * Commits an intent, together with the others queued meanwhile. Intents never share keys (every
   * key belongs to one actor, and an actor has at most one intent in flight), so commits in flight
   * together never touch the same key and their order does not matter. Resolves `{ok: false}` when
   * this intent's checks failed (someone else wrote): the caller reloads and retries.
   * @internal Not part of the embedding API; actors and storage/ commit through it.
   */
  commit(intent: Intent): Promise<CommitResult> {
    const writer = this.#writer?.writer();
    if (writer && !this.#closed && clones(intent)) {
      this.stats.handedOver++;
      return this.#writer!.call(writer, "commit", [intent]).then(
        (answer) => answer.result as CommitResult,
        (e) => e instanceof NotCloneable ? this.#commitHere(intent) : Promise.reject(e),
      );
    }
    return this.#commitHere(intent);
  }

  #commitHere(intent: Intent): Promise<CommitResult> {
    if (this.#closed) {
      return Promise.reject(new ChorusError("unavailable", "Cannot commit: the store is closed"));
    }
    return new Promise((resolve, reject) => {
      const work = Math.max(1, intent.checks.length + intent.mutations.length);
      this.#queue.push({ intent, work, resolve, reject });
      this.#queuedWork += work;
      if (this.#inFlight < this.#maxInFlight) this.#drain();
    });
  }

  /** Stops accepting commits; queued ones still go out. */
  close(): void {
    this.#closed = true;
  }

  /** One commit loop: sends what is queued, then what queued meanwhile, until nothing is left. */
  async #drain(): Promise<void> {
    this.#inFlight++;
    try {
      while (this.#queue.length) {
        const { batch, work } = this.#takeBatch();
        this.#workInFlight += work;
        try {
          await this.#commitBatch(batch);
        } finally {
          this.#workInFlight -= work;
        }
      }
    } finally {
      this.#inFlight--;
    }
  }

  /**
   * Takes the longest prefix of the queue that fits one commit and its share of the load: the work
   * (checks and mutations) queued and in flight, over the commits that may be in flight, and at
   * least one intent. With 64 writers each awaiting its own put, two commits of 32 alternate, each
   * prepared and answered while KV works on the other; taking all that waits gave one commit of 63
   * and one of 1 in turn, and KV waited while the 63 were answered (0.5–0.6× the throughput of
   * 64-set commits back to back, against 0.7–0.8× now). Work rather than intents: behind a slow
   * commit of one large intent (a bulk write), counting intents would halve what waits again on
   * every commit while that one is still out.
   */
  #takeBatch(): { batch: Pending[]; work: number } {
    const batch: Pending[] = [];
    let checks = 0, mutations = 0, bytes = 0, work = 0;
    const share = Math.ceil((this.#queuedWork + this.#workInFlight) / this.#maxInFlight);
    while (this.#queue.length) {
      const p = this.#queue[0];
      const i = p.intent;
      if (
        batch.length && (
          work + p.work > share ||
          checks + i.checks.length > this.#limits.checks ||
          mutations + i.mutations.length > this.#limits.mutations ||
          bytes + i.bytes > this.#limits.bytes
        )
      ) break;
      checks += i.checks.length;
      mutations += i.mutations.length;
      bytes += i.bytes;
      work += p.work;
      batch.push(this.#queue.shift()!);
      this.#queuedWork -= p.work;
    }
    return { batch, work };
  }

  async #commitBatch(batch: Pending[]): Promise<void> {
    const observed = telemetry.commit.hasSubscribers;
    const attributes = { "chorus.commit.intents": batch.length };
    await inSpan(SPAN_NAMES.commit, attributes, async (span) => {
      if (!observed && !span.isRecording()) return await this.#commitGroup(batch);
      const before = { commits: this.stats.commits, conflicts: this.stats.conflicts };
      const started = performance.now();
      await this.#commitGroup(batch);
      const commits = this.stats.commits - before.commits;
      const conflicts = this.stats.conflicts - before.conflicts;
      span.setAttributes({
        "chorus.commit.commits": commits,
        "chorus.commit.conflicts": conflicts,
      });
      if (!observed) return;
      let mutations = 0, bytes = 0;
      for (const p of batch) {
        mutations += p.intent.mutations.length;
        bytes += p.intent.bytes;
      }
      telemetry.commit.publish(
        {
          intents: batch.length,
          commits,
          retries: Math.max(0, commits - 1),
          conflicts,
          mutations,
          bytes,
          durationMs: performance.now() - started,
          queued: this.#queue.length,
        } satisfies CommitEvent,
      );
    });
  }

  async #commitGroup(batch: Pending[]): Promise<void> {
    if (batch.length === 1) {
      const p = batch[0];
      try {
        p.resolve(await this.#commitOne([p.intent], 1));
      } catch (e) {
        p.reject(e);
      }
      return;
    }
    let combined: CommitResult | undefined;
    try {
      combined = await this.#commitOne(batch.map((p) => p.intent), batch.length);
    } catch (error) {
      // Refused before it ran (a size estimate was off): fall back to one commit each. Any other
      // failure may have come after KV applied it, and committing the parts again would apply
      // them twice (an incr counted twice): its callers learn that the outcome is unknown.
      if (!(error instanceof ChorusError && error.code === "payload_too_large")) {
        for (const p of batch) p.reject(error);
        return;
      }
    }
    if (combined?.ok) {
      for (const p of batch) p.resolve(combined);
      return;
    }
    let rest = batch;
    if (combined) {
      // Some check failed. Read the checked keys to tell which intents are stale: they are told
      // so at once, and the others go out together again (still checked, so a write landing
      // meanwhile is caught). Committing each alone instead would cost a commit per intent, which
      // under instances writing the same keys is most commits.
      try {
        rest = await this.#landFresh(batch);
      } catch (error) {
        for (const p of batch) p.reject(error);
        return;
      }
    }
    // Still refused (or the combined commit was too large): find out which, one by one.
    for (const p of rest) {
      try {
        p.resolve(await this.#commitOne([p.intent], 1));
      } catch (e) {
        p.reject(e);
      }
    }
  }

  /**
   * After a combined commit of `batch` was refused for a check: up to {@linkcode NARROWING_ROUNDS}
   * times, reads every checked key (one `getMany` per 10, at once), answers `{ok: false}` to the
   * intents whose checks no longer hold and commits the others together.
   * @returns the intents still unanswered (their commit was refused again every round)
   */
  async #landFresh(batch: Pending[]): Promise<Pending[]> {
    let rest = batch;
    for (let round = 0; round < NARROWING_ROUNDS && rest.length > 1; round++) {
      const keys: Deno.KvKey[] = [];
      for (const p of rest) for (const c of p.intent.checks) keys.push(c.key);
      const found = await this.getAll(keys);
      const fresh: Pending[] = [];
      let at = 0;
      for (const p of rest) {
        let holds = true;
        for (const c of p.intent.checks) {
          if (found[at++].versionstamp !== c.versionstamp) holds = false;
        }
        if (holds) fresh.push(p);
        else {
          this.stats.conflicts++;
          p.resolve({ ok: false });
        }
      }
      if (fresh.length === 0) return fresh;
      const r = await this.#commitOne(fresh.map((p) => p.intent), fresh.length);
      if (r.ok) {
        for (const p of fresh) p.resolve(r);
        return [];
      }
      rest = fresh;
    }
    return rest;
  }

  /** One atomic commit: traced (`chorus.kv.commit`) and published on `chorus:kv.write`. */
  async #commitOne(intents: Intent[], count: number): Promise<CommitResult> {
    const span = tracer.startSpan(SPAN_NAMES.kvCommit);
    const observed = telemetry.kvWrite.hasSubscribers;
    if (!observed && !span.isRecording()) return await this.#sendCommit(intents, count);
    let checks = 0, mutations = 0, bytes = 0;
    for (const i of intents) {
      checks += i.checks.length;
      mutations += i.mutations.length;
      bytes += i.bytes;
    }
    span.setAttributes({
      "chorus.kv.intents": count,
      "chorus.kv.checks": checks,
      "chorus.kv.mutations": mutations,
      "chorus.kv.bytes": bytes,
    });
    const started = performance.now();
    const publish = (ok: boolean, error?: unknown) => {
      if (!observed) return;
      const event: KvWriteEvent = {
        intents: count,
        checks,
        mutations,
        bytes,
        durationMs: performance.now() - started,
        ok,
      };
      if (error !== undefined) event.error = error;
      telemetry.kvWrite.publish(event);
    };
    try {
      const result = await this.#sendCommit(intents, count);
      span.setAttribute("chorus.kv.ok", result.ok);
      publish(result.ok);
      return result;
    } catch (e) {
      failSpan(span, e);
      publish(false, e);
      throw e;
    } finally {
      span.end();
    }
  }

  async #sendCommit(intents: Intent[], count: number): Promise<CommitResult> {
    const op = this.kv.atomic();
    for (const intent of intents) {
      for (const c of intent.checks) op.check(c);
      for (const m of intent.mutations) {
        if (m.type === "set") {
          op.set(m.key, m.value, m.expireIn === undefined ? undefined : { expireIn: m.expireIn });
        } else if (m.type === "delete") op.delete(m.key);
        else op.sum(m.key, m.value);
      }
    }
    const started = this.#clock.now();
    let result: Deno.KvCommitResult | Deno.KvCommitError;
    try {
      result = await retryBusy(() => op.commit());
    } catch (e) {
      if (e instanceof TypeError && /too (many|large)|exceeds|limit/i.test(e.message)) {
        throw new ChorusError("payload_too_large", `Cannot commit: ${e.message}`, { cause: e });
      }
      throw unavailable("commit", e);
    }
    const ms = this.#clock.now() - started;
    this.stats.commits++;
    this.stats.commitMs += ms;
    this.stats.lastCommitMs = ms;
    for (let i = 0; i < COMMIT_BUCKETS_MS.length; i++) {
      if (ms <= COMMIT_BUCKETS_MS[i]) this.stats.commitBuckets[i]++;
    }
    if (result.ok) {
      this.stats.intents += count;
      return { ok: true, versionstamp: result.versionstamp };
    }
    if (count === 1) this.stats.conflicts++;
    return { ok: false };
  }
}

/**
 * Whether an intent crosses a `BroadcastChannel` unchanged: a `Deno.KvU64` value (set by a backup
 * restore) would arrive as a plain object, so such an intent is committed where it is.
 */
function clones(intent: Intent): boolean {
  for (const m of intent.mutations) {
    if (m.type === "set" && m.value instanceof Deno.KvU64) return false;
  }
  return true;
}

/**
 * Times a refused combined commit is narrowed to its intents whose checks still hold and tried
 * again, before the rest are committed one by one.
 */
const NARROWING_ROUNDS = 3;

/** How long a "database is locked" answer from local SQLite is retried before giving up. */
const BUSY_RETRY_MS = 5000;

/**
 * Local KV is SQLite: several handles on one file (processes, `deno serve --parallel` workers)
 * can briefly see "database is locked". That is contention, not failure: retry with backoff.
 */
async function retryBusy<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + BUSY_RETRY_MS;
  for (let attempt = 0;; attempt++) {
    try {
      return await fn();
    } catch (e) {
      const busy = e instanceof Error && /database is (locked|busy)|SQLITE_BUSY/i.test(e.message);
      if (!busy || performance.now() > deadline) throw e;
      await backoff(attempt, { baseMs: 0.5, capMs: 20 });
    }
  }
}

function unavailable(action: string, cause: unknown): ChorusError {
  return new ChorusError("unavailable", `Cannot ${action}: KV is not reachable`, {
    cause,
    headers: { "Retry-After": "1" },
  });
}

/**
 * A list iterator whose failures while reading (KV unreachable) are `unavailable` (503) like every
 * other read, instead of surfacing as raw errors (500). KV's refusal of a malformed cursor, a
 * `TypeError`, passes through so the caller can answer 400.
 */
function unavailableOnFailure<T>(iter: Deno.KvListIterator<T>): Deno.KvListIterator<T> {
  const next = iter.next.bind(iter);
  iter.next = async () => {
    try {
      return await next();
    } catch (e) {
      if (e instanceof TypeError || e instanceof ChorusError) throw e;
      throw unavailable("list", e);
    }
  };
  return iter;
}
