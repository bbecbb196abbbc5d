/**
 * The actor that owns one reel: its ordered update log (a gapless `seq` per reel), its like,
 * comment and share counters, the per-user like marks that make likes idempotent, and a log of
 * interactions that carries them to subscribers on other instances.
 *
 * Storage: the head `["reel", id]` holds `{v, seq, likes, comments, shares, u, b, ib}` and is
 * checked by every write. Updates live at `["reel_log", id, seq]`, interactions at
 * `["reel_ilog", id, v]` (`v` is the reel's version, +1 per update or counted interaction, so both
 * logs merge into one order); both are trimmed beyond `deltaThreshold` entries in the commit that
 * adds new ones and expire after `deltaTtlMs`, as context deltas do. A like is the entry
 * `["reel_like", id, user]`; it is written only together with the head, so "does user U like this
 * reel" is exact as of the head versionstamp the actor holds. Views are not written here: they
 * are `sum`s on `["reel_views", id]` coalesced by `ReelsApi` (a hot reel would otherwise cost one
 * commit per view), by every instance, without touching the head. The actor caches the counter as
 * a base read from KV at some versionstamp plus this instance's own commits after it; the base is
 * re-read on every load, by `strong` reads ({@linkcode ReelActor.readViews}), and from watch
 * while the reel is read ({@linkcode ReelActor.followViews}), so other instances' views show up.
 * @module
 */
import { monotonicUlid } from "../random.ts";
import { ChorusError } from "../errors.ts";
import type { Intent, Mutation } from "../storage/store.ts";
import {
  reelCommentKey,
  reelEventKey,
  reelHeadKey,
  reelLikeKey,
  reelLogKey,
  reelViewsKey,
} from "../storage/keys.ts";
import type { InteractionJson, Priority, ReelStateJson, ReelUpdateJson } from "./reel_types.ts";
import { Actor, type ActorContext } from "./actor.ts";
import { EmittedVersion } from "./emitted_version.ts";

/** The head record stored at `["reel", id]`. */
export interface ReelRecord {
  /** Version: +1 per update and per counted interaction (the order of both logs). */
  v: number;
  /** The last update's seq. */
  seq: number;
  /** Users who like the reel now. */
  likes: number;
  /** Comments stored. */
  comments: number;
  /** Shares counted. */
  shares: number;
  /** When the reel last changed (ms since epoch). */
  u: number;
  /** Updates with seq ≤ b were trimmed from the log. */
  b: number;
  /** Interactions with version ≤ ib were trimmed from the log. */
  ib: number;
}

/** An update as kept in the log: the wire shape plus the reel version it produced. */
export interface StoredUpdate extends ReelUpdateJson {
  /** The reel version this update produced. */
  v: number;
}

/** A counted interaction as kept in the log. */
export interface StoredInteraction extends InteractionJson {
  /** The reel version this interaction produced. */
  v: number;
}

/** A comment as stored and listed. */
export interface ReelComment {
  /** The comment's ULID; comments sort and page by it, so it is also the page cursor. */
  id: string;
  /** The reel commented on. */
  reel_id: string;
  /** The user who wrote it. */
  user_id: string;
  /** The comment itself, 1 to 2000 characters. */
  text: string;
  /** When it was stored, in milliseconds since the Unix epoch. */
  timestamp: number;
}

/**
 * What subscribers receive, in the reel's order on every instance: each update, and each counted
 * like/unlike/comment/share. Views are announced only on the instance that took them, without a
 * version (`v` undefined), because they are coalesced rather than logged.
 */
export type ReelEvent =
  | { type: "update"; v: number; update: ReelUpdateJson }
  | { type: "interaction"; v?: number; interaction: InteractionJson };

/** The validated input of a publish. */
export interface UpdateInput {
  update_data: Record<string, unknown>;
  target_users?: string[];
  target_channel?: string;
  priority: Priority;
}

/** Interaction kinds that go through the actor (views are coalesced elsewhere). */
export type CountedType = "like" | "unlike" | "comment" | "share";

/** What a counted interaction did. */
export interface InteractionOutcome {
  /** The interaction as stored and announced. */
  interaction: InteractionJson;
  /** False for a like of an already-liked reel, or an unlike of one not liked: nothing changed. */
  counted: boolean;
}

/** The working copy of one write batch. */
export interface ReelTx {
  now: number;
  record: ReelRecord;
  updates: StoredUpdate[];
  interactions: StoredInteraction[];
  /** Like marks changed in this batch (true = set, false = removed). */
  likes: Map<string, boolean>;
  comments: ReelComment[];
  events: ReelEvent[];
  before: ReelRecord;
  dirty: boolean;
}

/**
 * Thrown by a like/unlike op when the actor does not know, as of its current head, whether the
 * user likes the reel: the caller reads the mark ({@linkcode ReelActor.learnLike}) and retries.
 */
export class LikeUnknown extends Error {
  constructor(user: string) {
    super(`like state of "${user}" is not loaded`);
    this.name = "LikeUnknown";
  }
}

/** ULIDs that sort in creation order even within one millisecond (comments page by id). */
const ulid = monotonicUlid();

/** This instance's view commits kept apart from the counter read from KV; older ones are folded. */
const MAX_LOCAL_VIEW_COMMITS = 64;

/** Most deletions of trimmed log entries one commit carries; the rest expire. */
const MAX_DROPS = 200;

function emptyRecord(): ReelRecord {
  return { v: 0, seq: 0, likes: 0, comments: 0, shares: 0, u: 0, b: 0, ib: 0 };
}

/** The actor owning one reel. */
export class ReelActor extends Actor<ReelTx, ReelEvent> {
  #record: ReelRecord = emptyRecord();
  #updates: StoredUpdate[] = [];
  #interactions: StoredInteraction[] = [];
  /** Like marks known as of {@linkcode versionstamp}; cleared on every reload. */
  #likes = new Map<string, boolean>();
  /**
   * Head versionstamps since the last load: the loaded one and each of this actor's own commits.
   * Between them only this actor wrote, so a like mark read at any of them is still exact unless
   * this actor changed it since (and then {@linkcode #likes} already holds the newer mark).
   */
  #chain = new Set<string | null>();
  /** The views counter as read from KV at {@linkcode #viewsVs} (null: read while absent). */
  #viewsBase = 0;
  #viewsVs: string | null = null;
  /** This instance's view commits newer than {@linkcode #viewsVs}, oldest first. */
  #viewsLocal: { vs: string; n: number }[] = [];
  #unwatchViews?: () => void;
  #closedViews = false;
  /** Views carry no version: they always go out. */
  readonly #emitted = new EmittedVersion<ReelEvent>((e) => e.v);

  constructor(id: string, ctx: ActorContext) {
    super("reel", id, ctx);
  }

  /** The reel's counters; `extraViews` adds views taken here and not yet flushed. */
  state(extraViews = 0): ReelStateJson {
    const r = this.#record;
    return {
      reel_id: this.id,
      views: this.#views() + extraViews,
      likes: r.likes,
      comments: r.comments,
      shares: r.shares,
      updated_at: r.u,
      seq: r.seq,
    };
  }

  /** The last update seq. */
  get seq(): number {
    return this.#record.seq;
  }

  /**
   * Retained updates with seq after `since`, oldest first (expired ones left out).
   * @returns the updates and whether they reach back to `since + 1` (false: some were trimmed)
   */
  updatesSince(since: number): { updates: StoredUpdate[]; complete: boolean } {
    const cutoff = this.ctx.clock.now() - this.ctx.config.deltaTtlMs;
    const live = this.#updates.filter((u) => u.seq > since && u.timestamp > cutoff);
    const first = live[0]?.seq ?? this.#record.seq + 1;
    return { updates: live, complete: since >= this.#record.seq || first === since + 1 };
  }

  /**
   * Records that this instance committed `n` views at `versionstamp` (skipped if a read of the
   * counter already included them).
   */
  addViews(n: number, versionstamp: string): void {
    if (this.#viewsVs !== null && versionstamp <= this.#viewsVs) return;
    if (this.#viewsLocal.some((l) => l.vs === versionstamp)) return;
    this.#viewsLocal.push({ vs: versionstamp, n });
    this.#viewsLocal.sort((x, y) => (x.vs < y.vs ? -1 : x.vs > y.vs ? 1 : 0));
    while (this.#viewsLocal.length > MAX_LOCAL_VIEW_COMMITS) {
      // Nobody reads the counter: fold the oldest into the base (the next read corrects it).
      const { vs, n } = this.#viewsLocal.shift()!;
      this.#viewsBase += n;
      this.#viewsVs = vs;
    }
  }

  /**
   * Reads the views counter from KV and adopts it (with `strong`: the exact global count as of
   * now, views still pending on any instance aside).
   */
  async readViews(consistency: "strong" | "eventual"): Promise<void> {
    const entry = await this.ctx.store.get(reelViewsKey(this.id), consistency);
    this.#setViews(entry.value, entry.versionstamp);
  }

  /**
   * Follows the views counter through watch until the actor closes, so `leader` and `eventual`
   * reads see other instances' views within the watch delay. Idempotent.
   */
  followViews(): void {
    if (this.#unwatchViews || this.#closedViews) return;
    this.#unwatchViews = this.ctx.watch.subscribe(
      reelViewsKey(this.id),
      (vs, value) => this.#setViews(value, vs),
    );
  }

  /** Stops following the views counter, then closes the actor. */
  override close(): void {
    this.#closedViews = true;
    this.#unwatchViews?.();
    this.#unwatchViews = undefined;
    super.close();
  }

  /** The counter read at `versionstamp`; ignored when older than the one already held. */
  #setViews(value: unknown, versionstamp: string | null): void {
    if (this.#viewsVs !== null && (versionstamp === null || versionstamp < this.#viewsVs)) return;
    this.#viewsBase = value instanceof Deno.KvU64 ? Number(value.value) : 0;
    this.#viewsVs = versionstamp;
    if (versionstamp !== null) {
      this.#viewsLocal = this.#viewsLocal.filter((l) => l.vs > versionstamp);
    }
  }

  #views(): number {
    let n = this.#viewsBase;
    for (const l of this.#viewsLocal) n += l.n;
    return n;
  }

  /** Sends a coalesced view to this instance's subscribers (views are not logged). */
  announce(interaction: InteractionJson): void {
    this.emit([{ type: "interaction", interaction }]);
  }

  /**
   * Records a like mark read together with the head (`headVs`) at one point in time. Kept only
   * when that head is one this actor has held since its last load (so no other instance wrote in
   * between); otherwise the next write conflicts, reloads, and the caller asks again.
   * @returns whether the mark is known now
   */
  learnLike(user: string, liked: boolean, headVs: string | null): boolean {
    if (this.#likes.has(user)) return true; // this actor's own newer mark
    if (!this.#chain.has(headVs)) return false;
    this.#likes.set(user, liked);
    return true;
  }

  /** Whether the actor knows `user`'s like mark as of its head. */
  knowsLike(user: string): boolean {
    return this.#likes.has(user);
  }

  protected headKey(): Deno.KvKey {
    return reelHeadKey(this.id);
  }

  protected async onStart(consistency: "strong" | "eventual"): Promise<string | null> {
    const { store } = this.ctx;
    const [head, views] = await store.getMany(
      [reelHeadKey(this.id), reelViewsKey(this.id)],
      consistency,
    );
    const rec = (head.value as ReelRecord | null) ?? emptyRecord();
    const cachedU = this.#updates.filter((u) => u.seq > rec.b && u.seq <= rec.seq);
    const fromSeq = Math.max(rec.b, cachedU.at(-1)?.seq ?? 0) + 1;
    const moreU: StoredUpdate[] = [];
    if (fromSeq <= rec.seq) {
      const iter = store.list<StoredUpdate>({
        start: reelLogKey(this.id, fromSeq),
        end: reelLogKey(this.id, rec.seq + 1),
      }, { consistency });
      for await (const e of iter) moreU.push(e.value);
    }
    const cachedI = this.#interactions.filter((i) => i.v > rec.ib && i.v <= rec.v);
    const fromV = Math.max(rec.ib, cachedI.at(-1)?.v ?? 0) + 1;
    const moreI: StoredInteraction[] = [];
    if (fromV <= rec.v) {
      const iter = store.list<StoredInteraction>({
        start: reelEventKey(this.id, fromV),
        end: reelEventKey(this.id, rec.v + 1),
      }, { consistency });
      for await (const e of iter) moreI.push(e.value);
    }
    this.#record = rec;
    this.#updates = [...cachedU, ...moreU];
    this.#interactions = [...cachedI, ...moreI];
    this.#likes = new Map();
    this.#chain = new Set([head.versionstamp]);
    this.#setViews(views.value, views.versionstamp);
    this.#emitted.loaded(rec.v);
    return head.versionstamp;
  }

  protected begin(): ReelTx {
    return {
      now: Math.max(this.ctx.clock.now(), this.#record.u),
      record: this.#record,
      updates: this.#updates,
      interactions: this.#interactions,
      likes: new Map(),
      comments: [],
      events: [],
      before: this.#record,
      dirty: false,
    };
  }

  protected intent(tx: ReelTx): Intent | null {
    if (!tx.dirty) return null;
    const { config } = this.ctx;
    const id = this.id;
    const old = tx.before;
    const keep = config.deltaThreshold;
    const mutations: Mutation[] = [];
    let bytes = 256;
    // Trim: keep the newest `keep` updates and interactions.
    const rec: ReelRecord = { ...tx.record };
    const drops: Mutation[] = [];
    if (tx.updates.length > keep) {
      const cut = tx.updates.length - keep;
      rec.b = Math.max(rec.b, tx.updates[cut - 1].seq);
      tx.updates = tx.updates.slice(cut);
    }
    for (let s = old.b + 1; s <= rec.b && s <= old.seq; s++) {
      drops.push({ type: "delete", key: reelLogKey(id, s) });
    }
    if (tx.interactions.length > keep) {
      const cut = tx.interactions.length - keep;
      const dropped = tx.interactions.slice(0, cut);
      rec.ib = Math.max(rec.ib, dropped[dropped.length - 1].v);
      tx.interactions = tx.interactions.slice(cut);
      for (const d of dropped) {
        if (d.v <= old.v) drops.push({ type: "delete", key: reelEventKey(id, d.v) });
      }
    }
    mutations.push(...drops.slice(0, MAX_DROPS));
    for (const u of tx.updates) {
      if (u.seq <= old.seq) continue;
      mutations.push({
        type: "set",
        key: reelLogKey(id, u.seq),
        value: u,
        expireIn: config.deltaTtlMs,
      });
      bytes += 128 + JSON.stringify(u.update_data).length;
    }
    for (const i of tx.interactions) {
      if (i.v <= old.v) continue;
      mutations.push({
        type: "set",
        key: reelEventKey(id, i.v),
        value: i,
        expireIn: config.deltaTtlMs,
      });
      bytes += 128 + (i.text?.length ?? 0) * 3;
    }
    for (const [user, liked] of tx.likes) {
      mutations.push(
        liked
          ? { type: "set", key: reelLikeKey(id, user), value: { at: tx.now } }
          : { type: "delete", key: reelLikeKey(id, user) },
      );
      bytes += 96 + user.length;
    }
    for (const c of tx.comments) {
      mutations.push({ type: "set", key: reelCommentKey(id, c.id), value: c });
      bytes += 128 + c.text.length * 3;
    }
    mutations.push({ type: "set", key: reelHeadKey(id), value: rec });
    tx.record = rec;
    return { checks: [this.headCheck()], mutations, bytes };
  }

  protected adopt(tx: ReelTx, versionstamp: string): ReelEvent[] {
    if (this.#chain.size >= 4096) this.#chain.clear(); // older reads then simply ask again
    this.#chain.add(versionstamp);
    this.#record = tx.record;
    this.#updates = tx.updates;
    this.#interactions = tx.interactions;
    for (const [user, liked] of tx.likes) this.#likes.set(user, liked);
    return this.#emitted.fresh(tx.events);
  }

  protected override async onRemoteChange(): Promise<ReelEvent[]> {
    const before = await this.#emitted.reloading(() => this.reload());
    const events: ReelEvent[] = [
      ...this.#updates.filter((u) => u.v > before).map((u) => updateEvent(u)),
      ...this.#interactions.filter((i) => i.v > before).map((i) => interactionEvent(i)),
    ].sort((a, b) => a.v! - b.v!);
    return this.#emitted.fresh(events);
  }

  // ---- ops: validate, then change the working copy ----

  /** Appends an update to the log with the next seq. */
  publishOp(tx: ReelTx, input: UpdateInput): StoredUpdate {
    const seq = tx.record.seq + 1;
    const v = tx.record.v + 1;
    const update: StoredUpdate = {
      id: ulid(tx.now),
      reel_id: this.id,
      update_data: input.update_data,
      priority: input.priority,
      timestamp: tx.now,
      seq,
      v,
    };
    if (input.target_users?.length) update.target_users = input.target_users;
    if (input.target_channel !== undefined) update.target_channel = input.target_channel;
    tx.record = { ...tx.record, v, seq, u: tx.now };
    tx.updates = [...tx.updates, update];
    tx.events.push(updateEvent(update));
    tx.dirty = true;
    return update;
  }

  /**
   * Applies a like, unlike, comment or share. Likes are idempotent per user: a second like (or an
   * unlike of a reel not liked) changes nothing and is not broadcast.
   * @throws {LikeUnknown} when the user's like mark is not loaded (read it and retry)
   */
  interactOp(
    tx: ReelTx,
    type: CountedType,
    user: string,
    text?: string,
  ): InteractionOutcome {
    const interaction: InteractionJson = {
      id: ulid(tx.now),
      reel_id: this.id,
      type,
      user_id: user,
      timestamp: tx.now,
    };
    const r = { ...tx.record };
    if (type === "like" || type === "unlike") {
      const liked = tx.likes.get(user) ?? this.#likes.get(user);
      if (liked === undefined) throw new LikeUnknown(user);
      if (liked === (type === "like")) return { interaction, counted: false };
      tx.likes.set(user, type === "like");
      r.likes += type === "like" ? 1 : -1;
    } else if (type === "comment") {
      if (text === undefined) {
        throw new ChorusError(
          "invalid_request",
          `Cannot comment on "${this.id}": text is required`,
        );
      }
      interaction.text = text;
      r.comments++;
      tx.comments.push({
        id: interaction.id,
        reel_id: this.id,
        user_id: user,
        text,
        timestamp: tx.now,
      });
    } else {
      r.shares++;
    }
    r.v++;
    r.u = tx.now;
    tx.record = r;
    tx.interactions = [...tx.interactions, { ...interaction, v: r.v }];
    tx.events.push({ type: "interaction", v: r.v, interaction });
    tx.dirty = true;
    return { interaction, counted: true };
  }
}

/** The wire shape of a stored update: without the internal reel version. */
export function publicUpdate(u: StoredUpdate): ReelUpdateJson {
  const { v: _v, ...rest } = u;
  return rest;
}

function updateEvent(u: StoredUpdate): ReelEvent {
  return { type: "update", v: u.v, update: publicUpdate(u) };
}

function interactionEvent(i: StoredInteraction): ReelEvent {
  const { v, ...interaction } = i;
  return { type: "interaction", v, interaction };
}
