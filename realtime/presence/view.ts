/**
 * One topic's presence as this instance knows it. A view watches the topic's sequence key, reads
 * the change log from the last seq it applied and broadcasts the changes as `presence_diff`
 * (merged over the diff window); when the log has expired past it, it reloads the entries and
 * broadcasts the difference (a resync). It also sweeps entries whose `exp` passed (their instance
 * died), so they vanish everywhere within the TTL.
 * @module
 */
import { monotonic, type TimerId } from "../../clock.ts";
import { log } from "../../log.ts";
import { presenceLogKey, presencePrefix, presenceSeqKey } from "../../storage/keys.ts";
import type { TopicMessage } from "../topics.ts";
import type { WireFormat } from "../wire_format.ts";
import { ownId, type PresenceContext, type StoredPresence } from "./_context.ts";
import { mergeDiff, splitDiff, type Touched } from "./diff.ts";
import { countFrame, StateFrames } from "./frames.ts";
import { appendToLog } from "./log_writer.ts";
import {
  addMeta,
  type KeyMetas,
  metaByRef,
  metaList,
  type PresenceDiff,
  type PresenceMap,
  type PresenceMeta,
  removeMeta,
} from "./meta.ts";

/** Options of {@linkcode PresenceView}. */
export interface PresenceViewOptions {
  /** Broadcasts a message to the topic's sockets on this instance (its fan-out hub). */
  publish: (m: TopicMessage) => void;
}

/** One topic's presence as this instance knows it, kept current from the log. */
export class PresenceView {
  readonly #ctx: PresenceContext;
  readonly #topic: string;
  readonly #publish: (m: TopicMessage) => void;
  readonly #state = new Map<string, KeyMetas>();
  /** Bumped on every change of `#state`. */
  #version = 0;
  readonly #frames: StateFrames;
  /** Metas joined or left since the last `presence_diff`, by `key\0phx_ref`. */
  readonly #touched = new Map<string, Touched>();
  #diffTimer?: TimerId;
  #lastSeq = 0;
  #chain: Promise<void> = Promise.resolve();
  #queued: Promise<void> | null = null;
  #unwatch?: () => void;
  #sweepTimer?: TimerId;
  #stopped = false;
  #loaded = false;
  /** Above `listMax` members: counts are sent instead of lists (see `PresenceOptions.listMax`). */
  #counting = false;
  /** The count last broadcast in counting mode (-1: none yet). */
  #sentCount = -1;
  /** When the last count went out (monotonic ms), and the timer of the next one. */
  #countSentAt = -Infinity;
  #countTimer?: TimerId;

  /**
   * A view of `topic` sharing the tracker's context (made by `PresenceTracker.view`, which also
   * registers it in `ctx.views` and starts it).
   */
  constructor(ctx: PresenceContext, topic: string, options: PresenceViewOptions) {
    this.#ctx = ctx;
    this.#topic = topic;
    this.#publish = options.publish;
    this.#frames = new StateFrames(this.#state, { topic, maxBytes: ctx.stateMaxBytes });
  }

  /** The last log seq applied, so callers can tell how far the view has caught up. */
  get seq(): number {
    return this.#lastSeq;
  }

  /** Increases on every change of the state (for caches of what {@linkcode list} returns). */
  get version(): number {
    return this.#version;
  }

  /** Loads the state and starts following the log, so the view is current before it is used. */
  async start(): Promise<void> {
    await this.catchUp();
    if (this.#stopped) return;
    this.#unwatch = this.#ctx.watch.subscribe(
      presenceSeqKey(this.#topic),
      () =>
        void this.catchUp().catch((error) => {
          log.warn("presence catch-up failed; this topic's diffs wait for its next change", {
            error,
            topic: this.#topic,
            seq: this.#lastSeq,
          });
        }),
    );
    this.#armSweep();
  }

  /**
   * The `presence_state` payload: every live meta by key. The object is shared by every caller
   * until the state changes: never mutate it.
   */
  list(): PresenceMap {
    return this.#frames.list();
  }

  /**
   * The frames that bring a socket that just joined to the current state: the `presence_state`
   * push `[join_ref, null, topic, "presence_state", …]` with the whole list, or, when the state is
   * bigger than `stateMaxBytes`, with its first keys and then `presence_diff` broadcasts joining
   * the rest (see `PresenceOptions.stateMaxBytes`). Sockets joining between two changes of the
   * state share the encodings (never mutate them): the state frame per join_ref, the diff frames
   * for all.
   */
  stateFrames(joinRef: string | null, format: WireFormat): (string | Uint8Array)[] {
    this.#updateMode();
    if (this.#counting) return [countFrame(this.#topic, joinRef, this.#state.size, format)];
    return this.#frames.frames(joinRef, format);
  }

  /** Members (presence keys) of the topic as this view knows them. */
  get count(): number {
    return this.#state.size;
  }

  /** Whether the topic is big enough that counts are sent instead of lists. */
  get counting(): boolean {
    return this.#counting;
  }

  /**
   * Applies the log up to its current end. Calls coalesce: at most one runs and one waits, and a
   * caller returns once a pass that started after its call is done (so it saw every commit before).
   */
  catchUp(): Promise<void> {
    if (this.#queued) return this.#queued;
    const next = this.#chain.then(() => {
      this.#queued = null;
      return this.#pass();
    });
    this.#queued = next;
    // The callers of this pass get its error; the chain only has to go on after it.
    this.#chain = next.catch(() => {});
    return next;
  }

  /** Stops following the topic (its last socket here left), dropping changes not yet sent. */
  stop(): void {
    this.#stopped = true;
    this.#unwatch?.();
    const clock = this.#ctx.clock;
    if (this.#sweepTimer !== undefined) clock.clearTimeout(this.#sweepTimer);
    if (this.#diffTimer !== undefined) clock.clearTimeout(this.#diffTimer);
    this.#diffTimer = undefined;
    if (this.#countTimer !== undefined) clock.clearTimeout(this.#countTimer);
    this.#countTimer = undefined;
    this.#touched.clear();
    this.#ctx.views.delete(this);
  }

  /**
   * Sends what changed since the last `presence_diff` now, instead of at the end of the window
   * (a no-op when nothing did): merged and split as {@linkcode mergeDiff} and
   * {@linkcode splitDiff} describe.
   */
  flushDiff(): void {
    if (this.#diffTimer !== undefined) this.#ctx.clock.clearTimeout(this.#diffTimer);
    this.#diffTimer = undefined;
    if (this.#stopped || this.#touched.size === 0) return;
    if (this.#updateMode() || this.#counting) {
      // Counting (or just switched): the changes are in the count or the new presence_state.
      this.#touched.clear();
      this.#scheduleCount();
      return;
    }
    const merged = mergeDiff(this.#touched.values(), this.#state);
    this.#touched.clear();
    for (const diff of splitDiff(merged, { maxBytes: this.#ctx.diffMaxBytes })) {
      this.#publish({ event: "presence_diff", payload: { ...diff } });
    }
  }

  /**
   * Switches between lists and counts as the topic crosses `listMax` (up) or 80% of it (down);
   * returns true when it switched. Back to lists, every member gets the whole `presence_state`,
   * which the phoenix client's `Presence` takes as the new truth.
   */
  #updateMode(): boolean {
    const members = this.#state.size;
    const max = this.#ctx.listMax;
    if (!this.#counting && members > max) {
      this.#counting = true;
      this.#sentCount = -1;
      return true;
    }
    if (this.#counting && members <= Math.floor(max * 0.8)) {
      this.#counting = false;
      this.#publish({ event: "presence_state", payload: { ...this.list() } });
      return true;
    }
    return false;
  }

  /**
   * Broadcasts the count now, or once the interval has passed since the last one: `statsMs`, or
   * longer for a topic so big that a count to every member each `statsMs` would go over
   * `statsFramesPerSecond`.
   */
  #scheduleCount(): void {
    if (this.#countTimer !== undefined || this.#stopped) return;
    const clock = this.#ctx.clock;
    const { statsMs, statsFramesPerSecond } = this.#ctx;
    const interval = Math.max(statsMs, (this.#state.size * 1000) / statsFramesPerSecond);
    const wait = this.#countSentAt + interval - monotonic(clock);
    if (wait <= 0) return this.#publishCount();
    this.#countTimer = clock.setTimeout(() => {
      this.#countTimer = undefined;
      this.#publishCount();
    }, wait);
  }

  /** Broadcasts `presence_stats` when counting and the count moved since the last one. */
  #publishCount(): void {
    if (this.#stopped || !this.#counting || this.#state.size === this.#sentCount) return;
    this.#sentCount = this.#state.size;
    this.#countSentAt = monotonic(this.#ctx.clock);
    this.#publish({ event: "presence_stats", payload: { count: this.#sentCount } });
  }

  /** Notes a change for the next `presence_diff`, sent after the diff window. */
  #touch(key: string, meta: PresenceMeta): void {
    this.#touched.set(`${key}\u0000${meta.phx_ref}`, { key, meta });
    this.#frames.changed(key);
    this.#version++;
  }

  /** Arms the diff window after changes (or sends at once when there is no window). */
  #scheduleDiff(): void {
    if (this.#touched.size === 0 || this.#diffTimer !== undefined || this.#stopped) return;
    const ms = this.#ctx.diffMs;
    if (ms <= 0) return this.flushDiff();
    this.#diffTimer = this.#ctx.clock.setTimeout(() => {
      this.#diffTimer = undefined;
      this.flushDiff();
    }, ms);
  }

  async #pass(): Promise<void> {
    if (this.#stopped) return;
    const { store } = this.#ctx;
    const end = (await store.get<number>(presenceSeqKey(this.#topic))).value ?? 0;
    if (end === this.#lastSeq && this.#loaded) return;
    if (end < this.#lastSeq || !this.#loaded) return this.#resync(end);
    let expect = this.#lastSeq + 1;
    const iter = store.list<PresenceDiff>({
      start: presenceLogKey(this.#topic, expect),
      end: presenceLogKey(this.#topic, end + 1),
    });
    try {
      for await (const entry of iter) {
        if (this.#stopped) return;
        if (entry.key[2] !== expect) return await this.#resync(end); // expired part of the log
        this.#apply(entry.value);
        this.#lastSeq = expect++;
        // Without a window, one diff per log entry, as it is applied.
        if (this.#ctx.diffMs <= 0) this.flushDiff();
      }
      if (expect !== end + 1) return await this.#resync(end);
    } finally {
      this.#scheduleDiff();
    }
  }

  #apply(diff: PresenceDiff): void {
    for (const [key, { metas }] of Object.entries(diff.joins)) {
      for (const meta of metas) {
        // This instance's own metas are held once: the tracker's object, not the log's copy.
        const held = this.#ctx.own.get(ownId(this.#topic, meta.phx_ref))?.meta ?? meta;
        addMeta(this.#state, key, held);
        this.#touch(key, held);
      }
    }
    for (const [key, { metas }] of Object.entries(diff.leaves)) {
      for (const meta of metas) {
        const held = removeMeta(this.#state, key, meta.phx_ref);
        if (held) this.#touch(key, held);
      }
    }
  }

  /** Reloads the entries and broadcasts the difference from what this view held. */
  async #resync(end: number): Promise<void> {
    const { store, clock } = this.#ctx;
    const now = clock.now();
    const fresh = new Map<string, KeyMetas>();
    for await (const entry of store.list<StoredPresence>({ prefix: presencePrefix(this.#topic) })) {
      const { key, meta, exp } = entry.value;
      if (exp <= now) continue;
      addMeta(fresh, key, this.#ctx.own.get(ownId(this.#topic, meta.phx_ref))?.meta ?? meta);
    }
    if (this.#stopped) return;
    const initial = !this.#loaded;
    const changed: [string, PresenceMeta][] = [];
    for (const [key, metas] of fresh) {
      for (const meta of metaList(metas)) {
        if (!metaByRef(this.#state.get(key), meta.phx_ref)) changed.push([key, meta]);
      }
    }
    for (const [key, metas] of this.#state) {
      for (const meta of metaList(metas)) {
        if (!metaByRef(fresh.get(key), meta.phx_ref)) changed.push([key, meta]);
      }
    }
    this.#state.clear();
    for (const [key, metas] of fresh) this.#state.set(key, metas);
    this.#frames.reset();
    this.#version++;
    this.#lastSeq = end;
    this.#loaded = true;
    if (initial) return; // the first load is sent as presence_state, not as a diff
    for (const [key, meta] of changed) this.#touch(key, meta);
    this.#scheduleDiff();
  }

  #armSweep(): void {
    if (this.#stopped) return;
    const every = Math.max(10, Math.floor(this.#ctx.ttlMs / 2));
    this.#sweepTimer = this.#ctx.clock.setTimeout(() => {
      this.#sweepTimer = undefined;
      this.#sweep()
        .catch((error) => {
          log.warn("presence sweep failed; dead metas stay listed until the next sweep", {
            error,
            topic: this.#topic,
          });
        })
        .finally(() => this.#armSweep());
    }, every);
  }

  /** Removes entries past their expiry (their instance stopped refreshing them). */
  async #sweep(): Promise<void> {
    const { store, clock } = this.#ctx;
    const now = clock.now();
    const dead: Promise<unknown>[] = [];
    for await (const entry of store.list<StoredPresence>({ prefix: presencePrefix(this.#topic) })) {
      if (this.#stopped) return;
      const { key, meta, exp } = entry.value;
      if (exp <= now && !this.#ctx.own.has(ownId(this.#topic, meta.phx_ref))) {
        dead.push(appendToLog(this.#ctx, { topic: this.#topic, kind: "sweep", key, meta }));
      }
    }
    const failed = (await Promise.allSettled(dead)).filter((r) => r.status === "rejected");
    if (failed.length) {
      log.warn(
        "presence sweep could not remove dead metas; they stay listed until the next sweep",
        {
          error: failed[0].reason,
          failed: failed.length,
          topic: this.#topic,
        },
      );
    }
  }
}
