/**
 * The actor base, in the manner of Durable Objects: a subclass says how to load its state, how a
 * working copy becomes a KV commit and what events a commit produces; the base owns the mailbox,
 * start-once status, group-committed writes with versionstamp checks and reload-and-retry,
 * subscribers, watch-driven refresh and alarms.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { log, throttledWarn } from "../log.ts";
import { backoff, type Clock, type TimerId } from "../clock.ts";
import type { ResolvedConfig } from "../config.ts";
import type { Check, CommitResult, Intent, Store } from "../storage/store.ts";
import type { WatchHandle, WatchHub } from "../storage/watch.ts";
import { Mailbox } from "./mailbox.ts";
import type { Span } from "@opentelemetry/api";
import { telemetry } from "../observability/telemetry.ts";
import { SPAN_NAMES, tracer } from "../observability/tracing.ts";

/** What every actor is given. */
export interface ActorContext {
  /** The KV store. */
  store: Store;
  /** Watch fan-in, to learn of other instances' writes. */
  watch: WatchHub;
  /** Time source. */
  clock: Clock;
  /** Resolved configuration. */
  config: ResolvedConfig;
}

/** Lifecycle of an actor's state: loaded once, retried after a failed load. */
export type ActorStatus = "idle" | "starting" | "started";

/**
 * A `leader` read serves the cache without asking KV when the actor's key is watched, no refresh
 * is pending and the watch hub has shown that watch trails KV by less than its bound
 * (`CHORUS_LEADER_MAX_LAG`, see `WatchHub.current`). When that cannot be shown (the probe is late,
 * the stream has not reported yet, or watch cannot see every writer), the cache is served only if
 * it was confirmed (loaded, committed or checked) within this many ms; otherwise the read confirms
 * it first with one strong KV read.
 */
export const LEADER_FRESH_MS = 5;

/** How many times a write batch is re-applied after a versionstamp conflict. */
export const MAX_WRITE_ATTEMPTS = 12;
/** Most weight of writes one batch (one commit) takes: see {@linkcode Actor.write}. */
export const BATCH_WEIGHT = 512 * 1024;
/**
 * The weight a write adds for each KV mutation of its own (a like's mark, a log entry), so a full
 * batch makes at most about 700: KV takes 1,000 per commit, and the batch also writes its head and
 * may delete up to a few hundred entries it trimmed. A batch over KV's limit is refused as a whole.
 */
export const MUTATION_WEIGHT = Math.ceil(BATCH_WEIGHT / 700);

type Message<Tx> =
  | {
    type: "read";
    run: () => unknown;
    /** A `strong` read: the cache is confirmed with KV after it was posted. */
    strong?: boolean;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
    /** The `chorus.mailbox` span of its wait, when traced. */
    span?: Span;
  }
  | {
    type: "write";
    op: (tx: Tx) => unknown;
    weight: number;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
    /** The `chorus.mailbox` span of its wait, when traced. */
    span?: Span;
  }
  | { type: "refresh" }
  | { type: "alarm" }
  | { type: "lock"; acquired: (release: () => void) => void; failed: (e: unknown) => void };

/**
 * What a write across actors (`writeTogether` in `write_together.ts`) needs of each actor: the
 * base's own steps of a write batch, opened to that coordinator so it can apply, commit and retry
 * several actors' batches as one.
 * @internal
 */
export interface JointHooks<Tx> {
  /** Holds the mailbox until the returned function is called. */
  lock(): Promise<() => void>;
  /** A working copy of the state, as a write batch starts with. */
  begin(): Tx;
  /** The commit that persists a working copy, or null when nothing changed. */
  intent(tx: Tx): Intent | null;
  /** A commit that only checks the head, confirming answers that changed nothing. */
  headCheck(): Intent;
  /** Makes a committed working copy the state and sends its events to subscribers. */
  adopt(tx: Tx, versionstamp: string): void;
  /** Reloads after a failed check and sends subscribers what they missed. */
  refresh(): Promise<void>;
}

/**
 * Base class of every actor. `Tx` is the subclass's working copy of its state during a write batch.
 */
export abstract class Actor<Tx, Event = unknown> {
  /** The actor kind: `kv`, `context`, `reel`, `user`. */
  readonly kind: string;
  /** The id within its kind. */
  readonly id: string;
  /** Shared services. */
  protected readonly ctx: ActorContext;
  /** Versionstamp of the head entry this actor last saw (null = absent). */
  protected versionstamp: string | null = null;
  /** When the actor was last used, for idle eviction. */
  lastUsed: number;
  #status: ActorStatus = "idle";
  #starting?: Promise<void>;
  readonly #mailbox: Mailbox<Message<Tx>>;
  readonly #subscribers = new Set<(event: Event) => void>();
  #watch?: WatchHandle;
  #seenRemote: string | null = null;
  #refreshQueued = false;
  #alarm?: TimerId;
  #closed = false;
  #confirmedAt = -Infinity;
  #subscriberWarn?: ReturnType<typeof throttledWarn>;
  /**
   * The answers and events of the last write batch, held while the next write batch builds its
   * commit (see {@linkcode #writeBatch}); released by {@linkcode #release}.
   */
  #held: (() => void) | undefined;

  constructor(kind: string, id: string, ctx: ActorContext) {
    this.kind = kind;
    this.id = id;
    this.ctx = ctx;
    this.lastUsed = ctx.clock.now();
    this.#mailbox = new Mailbox((batch) => this.#handle(batch), {
      batchable: (m) => m.type === "write" || m.type === "read",
      group: (m) => m.type,
      weight: (m) => (m.type === "write" ? m.weight : 1),
      maxWeight: BATCH_WEIGHT,
    });
  }

  /** Loads state from KV and returns the head's versionstamp. Called on first use and on reload. */
  protected abstract onStart(consistency: "strong" | "eventual"): Promise<string | null>;
  /** The KV key whose versionstamp stands for the whole state (checked on every write). */
  protected abstract headKey(): Deno.KvKey;
  /** A working copy of the state for one write batch. */
  protected abstract begin(): Tx;
  /** The commit that persists a working copy, or null when nothing changed. */
  protected abstract intent(tx: Tx): Intent | null;
  /** Makes a committed working copy the state; returns the events to send subscribers. */
  protected abstract adopt(tx: Tx, versionstamp: string): Event[];
  /**
   * Another instance changed the state: reload it and return the events subscribers missed.
   * The default reloads and returns none.
   */
  protected async onRemoteChange(): Promise<Event[]> {
    await this.reload();
    return [];
  }

  /** Reloads the state from KV with a strong read (for {@linkcode onRemoteChange}). */
  protected reload(): Promise<void> {
    return this.#load("strong");
  }
  /**
   * Runs in the mailbox when an alarm set with {@linkcode setAlarm} fires. It must not await
   * {@linkcode write} (the write queues behind the alarm): start it and return.
   */
  protected onAlarm(): Promise<void> | void {}

  /** Current lifecycle status. */
  get status(): ActorStatus {
    return this.#status;
  }

  /** Messages waiting in the mailbox. */
  get depth(): number {
    return this.#mailbox.depth;
  }

  /** Number of subscribers. */
  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  /** True when the actor can be dropped from memory without losing anything. */
  evictable(now: number, idleMs: number): boolean {
    return this.#subscribers.size === 0 && this.#mailbox.idle && now - this.lastUsed >= idleMs;
  }

  /**
   * Whether a `leader` read may be answered from the cached state right now, with nothing queued
   * before it: what {@linkcode read} checks first. A caller that gets true reads the state itself
   * and saves the callback and promise `read` would make; it counts as a use.
   */
  servesNow(): boolean {
    const now = this.ctx.clock.now();
    this.lastUsed = now;
    return this.#status === "started" && this.#mailbox.idle && this.#current(now);
  }

  /**
   * Runs `fn` against the cached state after every message queued before it (`leader`).
   * Served synchronously when the mailbox is idle, which keeps cached reads cheap.
   */
  read<R>(fn: () => R): Promise<R> {
    if (this.servesNow()) {
      try {
        return Promise.resolve(fn());
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => {
      this.#mailbox.post({
        type: "read",
        run: fn,
        resolve: resolve as (v: unknown) => void,
        reject,
        span: this.#waitSpan("read"),
      });
    });
  }

  /** The `chorus.mailbox` span of a message about to wait, or undefined when not traced. */
  #waitSpan(message: "read" | "write"): Span | undefined {
    const span = tracer.startSpan(SPAN_NAMES.mailbox);
    if (!span.isRecording()) return undefined;
    span.setAttributes({
      "chorus.actor.kind": this.kind,
      "chorus.actor.id": this.id,
      "chorus.mailbox.message": message,
      "chorus.mailbox.depth": this.#mailbox.depth,
    });
    return span;
  }

  /**
   * Whether the cache may be served as `leader` without asking KV: watched, with every change
   * watch reported applied (a pending refresh keeps the mailbox busy), and watch shown to trail
   * KV by less than its bound; or else confirmed within {@linkcode LEADER_FRESH_MS}.
   */
  #current(now: number): boolean {
    const watch = this.#watch;
    if (!watch) return false;
    return now - this.#confirmedAt < LEADER_FRESH_MS ||
      (!this.#refreshQueued && watch.live && this.ctx.watch.current(now));
  }

  /** Like {@linkcode read}, after a strong KV read confirms the cached versionstamp (`strong`). */
  readStrong<R>(fn: () => R): Promise<R> {
    this.lastUsed = this.ctx.clock.now();
    return new Promise((resolve, reject) => {
      this.#mailbox.post({
        type: "read",
        run: fn,
        strong: true,
        resolve: resolve as (v: unknown) => void,
        reject,
        span: this.#waitSpan("read"),
      });
    });
  }

  /** Runs `fn` on the cached state if loaded, without waiting for the mailbox (`eventual`). */
  peek<R>(fn: () => R): R | undefined {
    if (this.#status !== "started") return undefined;
    this.lastUsed = this.ctx.clock.now();
    return fn();
  }

  /**
   * Applies `op` to a working copy in the next write batch and commits it with the batch.
   * `op` must throw before it changes the working copy, so a failed op leaves no trace.
   * @param weight the op's share of a batch: bytes written, roughly, plus
   *   {@linkcode MUTATION_WEIGHT} for each mutation the op adds beyond the batch's own head
   * @throws {ChorusError} `conflict` when contention outlasts {@linkcode MAX_WRITE_ATTEMPTS}
   */
  write<R>(op: (tx: Tx) => R, weight = 256): Promise<R> {
    this.lastUsed = this.ctx.clock.now();
    return new Promise((resolve, reject) => {
      this.#mailbox.post({
        type: "write",
        op: op as (tx: Tx) => unknown,
        weight,
        resolve: resolve as (v: unknown) => void,
        reject,
        span: this.#waitSpan("write"),
      });
    });
  }

  /** Adds a subscriber for this actor's events; returns the function that removes it. */
  subscribe(listener: (event: Event) => void): () => void {
    this.#subscribers.add(listener);
    // Subscribers need other instances' changes: watch (its first notification catches up).
    this.start().then(() => {
      if (!this.#closed && this.#subscribers.size) {
        this.#watch ??= this.ctx.watch.watch(this.headKey(), (vs) => this.#onWatch(vs));
      }
    }, () => {});
    this.onSubscribersChanged();
    return () => {
      if (this.#subscribers.delete(listener)) this.onSubscribersChanged();
    };
  }

  /** Hook: the subscriber count changed (e.g. to arm an expiry alarm). */
  protected onSubscribersChanged(): void {}

  /** Sends events to every subscriber; a throwing subscriber does not affect the others. */
  protected emit(events: Event[]): void {
    for (const event of events) {
      for (const s of this.#subscribers) {
        try {
          s(event);
        } catch (error) {
          // A subscriber's failure is its own: the others still get the event.
          this.#subscriberWarn ??= throttledWarn(60_000, () => this.ctx.clock.now());
          this.#subscriberWarn("actor subscriber failed; it missed this event", {
            error,
            kind: this.kind,
            id: this.id,
          });
        }
      }
    }
  }

  /** Schedules {@linkcode onAlarm} at `at` (ms since epoch), replacing any earlier alarm. */
  protected setAlarm(at: number | null): void {
    if (this.#alarm !== undefined) this.ctx.clock.clearTimeout(this.#alarm);
    this.#alarm = undefined;
    if (at === null || this.#closed) return;
    this.#alarm = this.ctx.clock.setTimeout(() => {
      this.#alarm = undefined;
      this.#mailbox.post({ type: "alarm" });
    }, Math.max(0, at - this.ctx.clock.now()));
  }

  /** Loads the state now if it is not loaded (the first message does this too). */
  start(): Promise<void> {
    if (this.#status === "started") return Promise.resolve();
    if (this.#starting) return this.#starting;
    this.#status = "starting";
    const started = performance.now();
    this.#starting = this.#load("strong").then(() => {
      this.#status = "started";
      this.#starting = undefined;
      if (telemetry.actorStart.hasSubscribers) {
        const durationMs = performance.now() - started;
        telemetry.actorStart.publish({ kind: this.kind, id: this.id, durationMs });
      }
    }, (error) => {
      this.#status = "idle";
      this.#starting = undefined;
      if (telemetry.actorStartFailed.hasSubscribers) {
        const durationMs = performance.now() - started;
        telemetry.actorStartFailed.publish({ kind: this.kind, id: this.id, durationMs, error });
      }
      throw error;
    });
    return this.#starting;
  }

  /** Stops watching and timers; called when the actor is evicted or the instance closes. */
  close(): void {
    this.#closed = true;
    this.#watch?.stop();
    this.#watch = undefined;
    this.setAlarm(null);
  }

  /** Waits until every queued message has been handled. */
  drained(): Promise<void> {
    return this.#mailbox.drained();
  }

  /**
   * The check every commit of this actor carries: its head entry is still at the versionstamp
   * the actor last saw, so a commit never lands on state another instance changed meanwhile.
   */
  protected headCheck(): Check {
    return { key: this.headKey(), versionstamp: this.versionstamp };
  }

  /**
   * The steps of a write batch for a write across actors (`writeTogether`), which applies and
   * commits several actors' ops as one; nothing else should call them.
   * @internal
   */
  joint(): JointHooks<Tx> {
    return {
      lock: () => {
        this.lastUsed = this.ctx.clock.now();
        return new Promise((acquired, failed) =>
          this.#mailbox.post({ type: "lock", acquired, failed })
        );
      },
      begin: () => this.begin(),
      intent: (tx) => this.intent(tx),
      headCheck: () => ({ checks: [this.headCheck()], mutations: [], bytes: 64 }),
      adopt: (tx, versionstamp) => {
        const events = this.adopt(tx, versionstamp);
        this.versionstamp = versionstamp;
        this.emit(events);
      },
      refresh: () => this.#refreshNow(),
    };
  }

  async #load(consistency: "strong" | "eventual"): Promise<void> {
    const at = this.ctx.clock.now();
    this.versionstamp = await this.onStart(consistency);
    if (consistency === "strong") this.#confirmedAt = at;
  }

  /**
   * Starts watching the head key so the cache follows other instances' writes. An actor that is
   * only written needs no watch (every write checks the versionstamp), so watching begins with
   * the first read or subscriber; a cache older than this message is confirmed first.
   */
  async #watchFrom(loadedNow: boolean): Promise<void> {
    if (this.#closed) return;
    if (!loadedNow) await this.#confirm();
    this.#watch ??= this.ctx.watch.watch(this.headKey(), (vs) => this.#onWatch(vs));
  }

  /** Confirms the cache with a strong read of the head, refreshing it when it moved on. */
  async #confirm(): Promise<void> {
    const at = this.ctx.clock.now();
    const entry = await this.ctx.store.get(this.headKey(), "strong");
    if (entry.versionstamp !== this.versionstamp) await this.#refreshNow();
    this.#confirmedAt = at;
  }

  /** The versionstamp of the head entry as this actor last saw it (null: absent or not loaded). */
  get headVersionstamp(): string | null {
    return this.versionstamp;
  }

  /**
   * A write to this actor's id committed elsewhere at `versionstamp` (one this worker handed to
   * the writer, see actors/hand_over.ts): when the cache is, or may end up, older (an actor still
   * loading may have read KV before that commit), reads from now on wait for the refresh that
   * takes it in, as after a watch report. Nothing to do when nothing is loaded or loading.
   */
  writtenElsewhere(versionstamp: string): void {
    if (this.#status !== "idle") this.#onWatch(versionstamp);
  }

  #onWatch(versionstamp: string | null): void {
    if (versionstamp === null || this.#closed) return;
    if (this.#seenRemote === null || versionstamp > this.#seenRemote) {
      this.#seenRemote = versionstamp;
    }
    if (this.#refreshQueued || !this.#isNewer(versionstamp)) return;
    this.#refreshQueued = true;
    this.#mailbox.post({ type: "refresh" });
  }

  #isNewer(versionstamp: string): boolean {
    return this.versionstamp === null || versionstamp > this.versionstamp;
  }

  async #refreshNow(): Promise<void> {
    const events = await this.onRemoteChange();
    this.emit(events);
  }

  /** Answers and emits what the last write batch held back, if anything. */
  #release(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    held();
  }

  async #handle(batch: Message<Tx>[]): Promise<void> {
    // Only a write batch may start before the last one's answers go out (its commit first).
    if (batch[0].type !== "write") this.#release();
    for (const m of batch) if ((m.type === "read" || m.type === "write") && m.span) m.span.end();
    const loadedNow = this.#status !== "started";
    try {
      await this.start();
    } catch (e) {
      for (const m of batch) {
        if (m.type === "read" || m.type === "write") m.reject(e);
        if (m.type === "lock") m.failed(e);
      }
      return;
    }
    const first = batch[0];
    if (first.type === "read") {
      // Reads that queued together share one confirmation (a join storm's thousand reads of one
      // reel cost one KV read, not a thousand in a row). A strong read needs one made after it
      // was posted: a load or confirmation in this batch is.
      const reads = batch as Extract<Message<Tx>, { type: "read" }>[];
      try {
        let confirmed = loadedNow;
        if (!this.#watch) {
          await this.#watchFrom(loadedNow);
          confirmed = true;
        }
        if (!confirmed && (reads.some((r) => r.strong) || !this.#current(this.ctx.clock.now()))) {
          await this.#confirm();
        }
      } catch (e) {
        for (const r of reads) r.reject(e);
        return;
      }
      for (const r of reads) {
        try {
          r.resolve(await r.run());
        } catch (e) {
          r.reject(e);
        }
      }
    } else if (first.type === "refresh") {
      this.#refreshQueued = false;
      if (this.#seenRemote !== null && this.#isNewer(this.#seenRemote)) {
        try {
          await this.#refreshNow();
        } catch (error) {
          // The next watch notification or write retries the refresh.
          log.warn("actor refresh failed; subscribers miss changes until the next one or a write", {
            error,
            kind: this.kind,
            id: this.id,
          });
        }
      }
    } else if (first.type === "lock") {
      await new Promise<void>((release) => first.acquired(release));
    } else if (first.type === "alarm") {
      try {
        await this.onAlarm();
      } catch (error) {
        // An alarm that fails (e.g. KV unreachable) is re-armed by the next write or read.
        log.warn("actor alarm failed; it waits for the next write or read", {
          error,
          kind: this.kind,
          id: this.id,
        });
      }
    } else {
      await this.#writeBatch(batch as Extract<Message<Tx>, { type: "write" }>[]);
    }
  }

  async #writeBatch(batch: Extract<Message<Tx>, { type: "write" }>[]): Promise<void> {
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      let tx: Tx, intent: Intent | null;
      let outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[];
      try {
        tx = this.begin();
        outcomes = batch.map((m) => {
          try {
            return { ok: true as const, value: m.op(tx) };
          } catch (error) {
            return { ok: false as const, error };
          }
        });
        intent = this.intent(tx);
      } catch (error) {
        // A working copy that cannot be made or written (a bug, or a value its encoder refuses):
        // the batch fails, and what the last batch held still goes out.
        this.#release();
        for (const m of batch) m.reject(error);
        return;
      }
      const settle = () => {
        outcomes.forEach((o, i) => o.ok ? batch[i].resolve(o.value) : batch[i].reject(o.error));
      };
      if (!intent) {
        // Nothing to commit (every op was refused or changed nothing), so no versionstamp check
        // will confirm the state those answers rest on: confirm it with a strong read instead.
        this.#release();
        let head;
        try {
          head = await this.ctx.store.get(this.headKey(), "strong");
        } catch (error) {
          for (const m of batch) m.reject(error);
          return;
        }
        if (head.versionstamp === this.versionstamp) {
          this.#confirmedAt = this.ctx.clock.now();
          return settle();
        }
        try {
          await this.#refreshNow();
        } catch (error) {
          for (const m of batch) m.reject(error);
          return;
        }
        continue;
      }
      let result;
      const sentAt = this.ctx.clock.now();
      let committing: Promise<CommitResult>;
      try {
        committing = this.ctx.store.commit(intent);
      } catch (error) {
        committing = Promise.reject(error);
      }
      // This commit is on its way: the previous batch's answers and events go out while it is.
      this.#release();
      try {
        result = await committing;
      } catch (error) {
        outcomes.forEach((o, i) => batch[i].reject(o.ok ? error : o.error));
        return;
      }
      if (result.ok) {
        const events = this.adopt(tx, result.versionstamp);
        this.versionstamp = result.versionstamp;
        this.#confirmedAt = sentAt;
        const finish = () => {
          settle();
          this.emit(events);
        };
        // With another write batch next, its commit is sent before this batch's answers and
        // events go out, so a hot actor's commit overlaps its fan-out instead of following it.
        // The next batch's ops run on their own working copy, and every read or other message
        // releases what is held before it runs; only an `eventual` peek may see this batch's
        // (committed) state a few microtasks before its callers are answered.
        if (this.#mailbox.next?.type === "write") this.#held = finish;
        else finish();
        return;
      }
      try {
        await this.#refreshNow();
      } catch (error) {
        for (const m of batch) m.reject(error);
        return;
      }
      if (attempt >= 2) await backoff(attempt, COMMIT_BACKOFF);
    }
    const error = new ChorusError(
      "conflict",
      `Cannot write ${this.kind} "${this.id}": too many concurrent writers, retry`,
    );
    for (const m of batch) m.reject(error);
  }
}

/**
 * Backoff between commit attempts from the third on: 1 ms, 2 ms, 4 ms… up to 50 ms. Shared by an
 * actor's own write batches and by writes across actors, which retry alike.
 */
export const COMMIT_BACKOFF = { baseMs: 0.25, capMs: 50 };
