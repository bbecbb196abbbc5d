/**
 * The actor that owns one user: the presence the user reported (status, current reel, activity,
 * last seen) and the user's event feed, a log of `user_activity` changes and of reel updates
 * targeted at the user, which the `user:<id>` topic delivers on every instance.
 *
 * Storage: the head `["user", id]` holds the presence and the feed's seq; feed entries live at
 * `["user_log", id, seq]`, trimmed beyond `deltaThreshold` and expiring after `deltaTtlMs`. While a
 * user reports watching a reel, `["reel_viewer", reel, user]` says so (with an expiry of one
 * presence TTL), which is how `GET /reels/:id/presence` finds REST-reported viewers.
 * @module
 */
import type { Intent, Mutation } from "../storage/store.ts";
import { reelViewerKey, userHeadKey, userLogKey } from "../storage/keys.ts";
import type { Priority, ReelUpdateJson } from "./reel_types.ts";
import type { PresenceUpdateJson } from "./user_types.ts";
import { Actor, type ActorContext } from "./actor.ts";
import { EmittedVersion } from "./emitted_version.ts";

/** A presence status. */
export type PresenceStatus = "online" | "away" | "offline";

/** The head record stored at `["user", id]`. */
export interface UserRecord {
  /** The feed's last seq. */
  seq: number;
  /** Feed entries with seq ≤ b were trimmed. */
  b: number;
  /** The status the user last reported. */
  status: PresenceStatus;
  /** The reel the user last said they are on, if any. */
  current_reel?: string;
  /** What the user last said they are doing, if anything. */
  activity?: string;
  /** When the user last reported presence (ms since epoch). */
  last_seen: number;
}

/** One entry of a user's feed. */
export interface UserFeedEntry {
  /** The entry's place in the user's feed: one more than the entry before it. */
  seq: number;
  /** `user_activity` (a presence change) or `reel_update` (an update targeted at the user). */
  event: "user_activity" | "reel_update";
  /** The presence for `user_activity`; the update for `reel_update`. */
  payload: PresenceUpdateJson | ReelUpdateJson;
  /** The update's priority for `reel_update`; always `normal` for `user_activity`. */
  priority: Priority;
  /** When the entry was appended, in milliseconds since the Unix epoch. */
  at: number;
}

/** The validated input of a presence report. */
export interface PresenceInput {
  /** The status to report. */
  status: PresenceStatus;
  /** The reel the user is on now; lists the user on that reel while the report holds. */
  current_reel?: string;
  /** What the user is doing, at most 256 characters. */
  activity?: string;
}

/** The working copy of one write batch. */
export interface UserTx {
  now: number;
  record: UserRecord | null;
  feed: UserFeedEntry[];
  /** Viewer index changes: reel → value to set (with TTL) or null to delete. */
  viewers: Map<string, { ttlMs: number; value: unknown } | null>;
  before: UserRecord | null;
  dirty: boolean;
}

const MAX_DROPS = 200;

/** The actor owning one user. */
export class UserActor extends Actor<UserTx, UserFeedEntry> {
  #record: UserRecord | null = null;
  /**
   * The feed as held: every retained entry with a seq above {@linkcode #heldFrom}, in order. A
   * load reads only the head, so a presence report (what each viewer joining a live event makes)
   * costs one read, not one plus the user's whole feed; the entries before are read when a
   * recovery or a subscriber needs them ({@linkcode #holdFrom}). `#older` holds what was read
   * back that way and `#feed` what was written since, which a write batch extends: a read-back
   * that lands while a batch is open then never races the batch's copy of the feed.
   */
  #feed: UserFeedEntry[] = [];
  #older: UserFeedEntry[] = [];
  #heldFrom = 0;
  /** Bumped by every load, so a read-back started before it is not kept. */
  #loads = 0;
  #holding?: Promise<void>;
  readonly #emitted = new EmittedVersion<UserFeedEntry>((e) => e.seq);

  constructor(id: string, ctx: ActorContext) {
    super("user", id, ctx);
  }

  /** The stored presence record, or null for a user never seen. */
  record(): UserRecord | null {
    return this.#record;
  }

  /** The feed's last seq. */
  get seq(): number {
    return this.#record?.seq ?? 0;
  }

  /**
   * Retained feed entries after `since`, and whether they reach back to `since + 1`; reads the
   * entries not held yet first.
   */
  async feedSince(since: number): Promise<{ entries: UserFeedEntry[]; complete: boolean }> {
    await this.#holdFrom(since);
    const cutoff = this.ctx.clock.now() - this.ctx.config.deltaTtlMs;
    const live = [...this.#older, ...this.#feed].filter((e) => e.seq > since && e.at > cutoff);
    const first = live[0]?.seq ?? this.seq + 1;
    return { entries: live, complete: since >= this.seq || first === since + 1 };
  }

  /** Reads back the retained entries after `since` that are not held yet (one KV list). */
  async #holdFrom(since: number): Promise<void> {
    for (;;) {
      // Wait out a read-back in flight (whatever its outcome) and check again with no await
      // between the check and starting one: two read-backs at once would both prepend.
      while (this.#holding) await this.#holding.catch(() => {});
      const rec = this.#record;
      const from = Math.max(since, rec?.b ?? 0);
      if (!rec || this.#heldFrom <= from) return;
      const loads = this.#loads;
      const upTo = this.#heldFrom;
      const read = (async () => {
        const got: UserFeedEntry[] = [];
        const iter = this.ctx.store.list<UserFeedEntry>({
          start: userLogKey(this.id, from + 1),
          end: userLogKey(this.id, upTo + 1),
        });
        for await (const e of iter) got.push(e.value);
        if (loads !== this.#loads) return; // reloaded meanwhile: read against the new head
        const b = this.#record?.b ?? 0;
        this.#older = [...got.filter((e) => e.seq > b), ...this.#older];
        this.#heldFrom = from;
      })();
      this.#holding = read;
      try {
        await read;
      } finally {
        if (this.#holding === read) this.#holding = undefined;
      }
    }
  }

  protected headKey(): Deno.KvKey {
    return userHeadKey(this.id);
  }

  protected async onStart(consistency: "strong" | "eventual"): Promise<string | null> {
    const head = await this.ctx.store.get<UserRecord>(userHeadKey(this.id), consistency);
    const rec = head.value;
    // A reload follows another writer's append, so nothing held still reaches the head's seq:
    // hold nothing, and read back what is asked for.
    this.#loads++;
    this.#record = rec;
    this.#older = [];
    this.#feed = [];
    this.#heldFrom = rec?.seq ?? 0;
    this.#emitted.loaded(rec?.seq ?? 0);
    return head.versionstamp;
  }

  protected begin(): UserTx {
    return {
      now: this.ctx.clock.now(),
      record: this.#record,
      feed: this.#feed,
      viewers: new Map(),
      before: this.#record,
      dirty: false,
    };
  }

  protected intent(tx: UserTx): Intent | null {
    if (!tx.dirty || !tx.record) return null;
    const { config } = this.ctx;
    const id = this.id;
    const rec = { ...tx.record };
    const oldSeq = tx.before?.seq ?? 0;
    const mutations: Mutation[] = [];
    let bytes = 256;
    // Retained: seq b+1 … seq, whether or not they are held here.
    if (rec.seq - rec.b > config.deltaThreshold) {
      rec.b = rec.seq - config.deltaThreshold;
      tx.feed = tx.feed.filter((e) => e.seq > rec.b);
    }
    const drops: Mutation[] = [];
    for (let s = (tx.before?.b ?? 0) + 1; s <= rec.b && s <= oldSeq; s++) {
      drops.push({ type: "delete", key: userLogKey(id, s) });
    }
    mutations.push(...drops.slice(0, MAX_DROPS));
    for (const e of tx.feed) {
      if (e.seq <= oldSeq) continue;
      mutations.push({
        type: "set",
        key: userLogKey(id, e.seq),
        value: e,
        expireIn: config.deltaTtlMs,
      });
      bytes += 128 + JSON.stringify(e.payload).length;
    }
    for (const [reel, v] of tx.viewers) {
      mutations.push(
        v
          ? { type: "set", key: reelViewerKey(reel, id), value: v.value, expireIn: v.ttlMs }
          : { type: "delete", key: reelViewerKey(reel, id) },
      );
      bytes += 128;
    }
    mutations.push({ type: "set", key: userHeadKey(id), value: rec });
    tx.record = rec;
    return { checks: [this.headCheck()], mutations, bytes };
  }

  protected adopt(tx: UserTx, _versionstamp: string): UserFeedEntry[] {
    this.#record = tx.record;
    this.#feed = tx.feed;
    const b = tx.record?.b ?? 0;
    if (this.#older.length && this.#older[0].seq <= b) {
      this.#older = this.#older.filter((e) => e.seq > b);
    }
    return this.#emitted.fresh(tx.feed);
  }

  protected override async onRemoteChange(): Promise<UserFeedEntry[]> {
    const seen = this.versionstamp;
    const before = await this.#emitted.reloading(() => this.reload());
    if (this.subscriberCount === 0) {
      // Nobody to tell: skip reading the entries and move the mark on.
      this.#emitted.passed(this.seq);
      return [];
    }
    try {
      await this.#holdFrom(before);
    } catch (error) {
      // Not caught up: keep the head's old versionstamp, so the next write fails its check and
      // the next change is news, and either catches up again before anything is emitted.
      this.versionstamp = seen;
      throw error;
    }
    return this.#emitted.fresh([...this.#older, ...this.#feed]);
  }

  #append(tx: UserTx, entry: Omit<UserFeedEntry, "seq">): number {
    const prev = tx.record ?? { seq: 0, b: 0, status: "offline" as const, last_seen: 0 };
    const seq = prev.seq + 1;
    tx.record = { ...prev, ...tx.record, seq };
    tx.feed = [...tx.feed, { ...entry, seq }];
    tx.dirty = true;
    return seq;
  }

  // ---- ops ----

  /**
   * Records a presence report and appends a `user_activity` entry. Moving to another reel (or
   * going offline) removes the user from the previous reel's viewers.
   * @param ttlMs how long the viewer mark lives without another report; null: set no mark (a
   * socket's join, whose presence the socket itself tracks)
   */
  setPresenceOp(tx: UserTx, input: PresenceInput, ttlMs: number | null): PresenceUpdateJson {
    const prev = tx.record;
    const presence: PresenceUpdateJson = {
      user_id: this.id,
      status: input.status,
      last_seen: tx.now,
    };
    if (input.current_reel !== undefined) presence.current_reel = input.current_reel;
    if (input.activity !== undefined) presence.activity = input.activity;
    if (
      prev?.current_reel && (prev.current_reel !== input.current_reel || input.status === "offline")
    ) {
      tx.viewers.set(prev.current_reel, null);
    }
    if (ttlMs !== null && input.current_reel !== undefined && input.status !== "offline") {
      tx.viewers.set(input.current_reel, { ttlMs, value: presence });
    }
    this.#append(tx, { event: "user_activity", payload: presence, priority: "normal", at: tx.now });
    const rec: UserRecord = {
      seq: tx.record!.seq,
      b: tx.record!.b,
      status: input.status,
      last_seen: tx.now,
    };
    if (input.current_reel !== undefined) rec.current_reel = input.current_reel;
    if (input.activity !== undefined) rec.activity = input.activity;
    tx.record = rec;
    return presence;
  }

  /** Appends a reel update targeted at this user to the feed. */
  deliverOp(tx: UserTx, update: ReelUpdateJson): number {
    return this.#append(tx, {
      event: "reel_update",
      payload: update,
      priority: update.priority,
      at: tx.now,
    });
  }
}
