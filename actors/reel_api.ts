/**
 * The reels product as a typed API over reel actors: what `chorus.reels` exposes to embedding
 * programs and what the HTTP routes and the `reel:<id>` topic call. It validates input, publishes
 * updates (atomically with the target users' feeds when `target_users` is set), applies
 * interactions (likes idempotent per user), and coalesces views: each view adds to an in-memory
 * count per reel, and one commit of KV `sum` mutations per window (default 100 ms) writes every
 * reel's views at once, so a hot reel costs one commit per window, not one per view.
 * @module
 */
import { monotonicUlid } from "../random.ts";
import { ChorusError } from "../errors.ts";
import { log, throttledWarn } from "../log.ts";
import { assertStorableJson } from "../storage/codec.ts";
import type { Clock, TimerId } from "../clock.ts";
import type { Consistency, ResolvedConfig } from "../config.ts";
import type { Mutation, Store } from "../storage/store.ts";
import {
  reelCommentKey,
  reelCommentPrefix,
  reelHeadKey,
  reelLikeKey,
  reelViewsKey,
} from "../storage/keys.ts";
import type { InteractionJson, Priority, ReelStateJson, ReelUpdateJson } from "./reel_types.ts";
import { type JointOp, writeTogether } from "./write_together.ts";
import type { Registry } from "./registry.ts";
import { HandOver, type Written } from "./hand_over.ts";
import type { WriterAnswer } from "../storage/one_writer.ts";
import { MUTATION_WEIGHT } from "./actor.ts";
import {
  type CountedType,
  LikeUnknown,
  publicUpdate,
  type ReelActor,
  type ReelComment,
  type ReelEvent,
  type ReelTx,
  type UpdateInput,
} from "./reel_actor.ts";
import type { UserActor, UserTx } from "./user_actor.ts";

export type { ReelComment, ReelEvent };

/**
 * A valid reel or user id: 1–128 characters of `A–Z a–z 0–9 _ . : -`. Ids appear in topics
 * (`reel:<id>`), URLs and KV keys; the narrow alphabet keeps them safe in all three unescaped.
 */
export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/** Most users one update may target (each is one more actor in the atomic commit). */
export const MAX_TARGET_USERS = 50;
/** Longest comment, in characters. */
export const MAX_COMMENT_CHARS = 2000;
/** Largest `update_data`, in bytes of JSON (one KV entry holds 64 KiB). */
export const MAX_UPDATE_BYTES = 60 * 1024;
/** Interaction types. */
export const INTERACTION_TYPES = ["like", "unlike", "comment", "share", "view"] as const;
/** One interaction type. */
export type InteractionType = typeof INTERACTION_TYPES[number];
/** Priorities. */
export const PRIORITIES = ["low", "normal", "high", "critical"] as const;

/**
 * Checks a reel or user id against {@linkcode ID_PATTERN}.
 * @throws {ChorusError} `invalid_request`
 */
export function validateId(id: unknown, what: "reel" | "user"): string {
  if (typeof id !== "string" || !ID_PATTERN.test(id) || id === "." || id === "..") {
    throw new ChorusError(
      "invalid_request",
      `Cannot use ${what} id ${
        JSON.stringify(String(id).slice(0, 64))
      }: use 1 to 128 characters of A-Z, a-z, 0-9, "_", ".", ":" or "-" (not "." or "..")`,
    );
  }
  return id;
}

/**
 * An id as Chorus reads it: a number (Kronop sends `"current_reel": 123`) is the same id as its
 * decimal string form (`"123"`); anything else is returned as it is, for validation to judge.
 */
export function idText(value: unknown): unknown {
  return typeof value === "number" && Number.isFinite(value) ? String(value) : value;
}

/**
 * The topic a `target_channel` names — `reel:<id>` or `user:<id>` with a valid id — or null when
 * it is a plain label (stored and returned, delivered nowhere else).
 */
export function channelTopic(
  channel: string | undefined,
): { kind: "reel" | "user"; id: string } | null {
  if (channel === undefined) return null;
  const m = /^(reel|user):(.+)$/.exec(channel);
  if (m === null || !ID_PATTERN.test(m[2]) || m[2] === "." || m[2] === "..") return null;
  return { kind: m[1] as "reel" | "user", id: m[2] };
}

/**
 * Whether the subscribers of the update's own `reel:<id>` topic get it: not when it names
 * `target_users` or a `target_channel` topic other than its reel's (it goes there instead).
 */
export function forReelSubscribers(update: ReelUpdateJson): boolean {
  if (update.target_users?.length) return false;
  const topic = channelTopic(update.target_channel);
  return topic === null || (topic.kind === "reel" && topic.id === update.reel_id);
}

/** What a client sends to publish (`POST /reels/:id/updates`, docs/http-api.md). */
export interface PublishInput {
  /** The payload: any JSON object of at most {@linkcode MAX_UPDATE_BYTES} bytes as JSON. */
  update_data: Record<string, unknown>;
  /**
   * Users to deliver the update to, on their `user:<id>` topics and in their feeds, instead of to
   * the reel's subscribers. At most {@linkcode MAX_TARGET_USERS}; repeats are dropped.
   */
  target_users?: string[];
  /**
   * At most 256 characters, stored and returned with the update. When it names a topic
   * (`reel:<id>`, `user:<id>`), the update is delivered on that topic instead of to the reel's
   * subscribers: appended to that reel's log (with that reel's next seq) or that user's feed, in
   * the same atomic commit. Anything else is a plain label.
   */
  target_channel?: string;
  /** How urgent the update is; `normal` when absent. */
  priority?: Priority;
}

/** The answer of a publish. */
export interface PublishResult {
  /** The new update's ULID. */
  id: string;
  /** The reel published to. */
  reel_id: string;
  /** The update's place in the reel's log; pass it as `since` to read what follows. */
  seq: number;
  /** When the update was stored, in milliseconds since the Unix epoch. */
  timestamp: number;
}

/** What a client sends as an interaction. */
export interface InteractionInput {
  /** What the user did. */
  type: InteractionType;
  /** Who did it; a valid id (see {@linkcode ID_PATTERN}). */
  user_id: string;
  /** The comment's text, 1 to {@linkcode MAX_COMMENT_CHARS} characters; required for `comment`. */
  text?: string;
}

/** The answer of an interaction: the interaction, whether it counted, and the reel's counters. */
export interface InteractionResult extends InteractionJson {
  /** False for a repeated like or an unlike without a like: nothing changed. */
  counted: boolean;
  /** Views are counted at once but written in the next window. */
  batched?: true;
  /** The reel's counters just after the interaction. */
  state: ReelStateJson;
}

/** A page of retained updates. */
export interface UpdateList {
  /** The reel the updates belong to. */
  reel_id: string;
  /** The reel's last seq. */
  seq: number;
  /** False when updates after `since` were already trimmed or expired (some are missing). */
  complete: boolean;
  /** The updates, oldest first. */
  updates: ReelUpdateJson[];
}

/** A page of comments, oldest first. */
export interface CommentPage {
  /** The reel the comments belong to. */
  reel_id: string;
  /** The comments on this page, oldest first. */
  comments: ReelComment[];
  /** Pass back as `cursor` for the next page; null at the end. */
  cursor: string | null;
}

/** Counters of the reels product on this instance. */
export interface ReelStats {
  /** Interactions accepted (views included). */
  interactions: number;
  /** Views accepted. */
  views: number;
  /** Commits that wrote coalesced views. */
  viewCommits: number;
  /** Updates published. */
  updates: number;
  /** Views waiting for the next window. */
  pendingViews: number;
}

/** Dependencies of {@linkcode ReelsApi}. */
export interface ReelsApiDeps {
  /** Where reel and user actors are found or started. */
  registry: Registry;
  /** The KV store, for joint commits, comment listing and the coalesced view writes. */
  store: Store;
  /** The resolved configuration; its `readConsistency` is the default for reads. */
  config: ResolvedConfig;
  /** The time source for timestamps and the view window. */
  clock: Clock;
  /** How long views are coalesced before one commit writes them. Default 100 ms (≤ 1 s). */
  viewWindowMs?: number;
  /**
   * Where writes go when the workers of one process on one KV file write through one of them
   * (see storage/one_writer.ts): updates and counted interactions are handed over whole (views
   * stay with the worker that took them); the instance routes the calls handed to this one to
   * {@linkcode ReelsApi.serveHandedOver}.
   */
  handOver?: HandOver;
}

const MAX_LIKE_ATTEMPTS = 12;
const ulid = monotonicUlid();
const MAX_SUMS_PER_COMMIT = 900;

/** The reels product: updates, interactions, counters and their live events. */
export class ReelsApi {
  readonly #deps: ReelsApiDeps;
  readonly #windowMs: number;
  #pending = new Map<string, number>();
  readonly #flushWarn: ReturnType<typeof throttledWarn>;
  #flushing: Promise<void> = Promise.resolve();
  #timer?: TimerId;
  #closed = false;
  readonly #stats = { interactions: 0, views: 0, viewCommits: 0, updates: 0 };

  /**
   * Creates the reels product over a registry of actors. Nothing is read or started until the
   * first call; the view window starts with the first view.
   */
  constructor(deps: ReelsApiDeps) {
    this.#deps = deps;
    this.#windowMs = deps.viewWindowMs ?? 100;
    this.#flushWarn = throttledWarn(60_000, () => deps.clock.now());
  }

  #actor(id: string): ReelActor {
    return this.#deps.registry.get<ReelActor>("reel", validateId(id, "reel"));
  }

  /** This instance's counters. */
  stats(): ReelStats {
    let pendingViews = 0;
    for (const n of this.#pending.values()) pendingViews += n;
    return { ...this.#stats, pendingViews };
  }

  /**
   * Publishes an update: the next seq of the reel's log. With `target_users`, the update is also
   * appended to each user's feed in the same atomic commit and is delivered only on their
   * `user:<id>` topics, not to the reel's subscribers.
   * @throws {ChorusError} `invalid_request` for a bad id or input; `payload_too_large`
   */
  async publish(id: string, input: PublishInput): Promise<PublishResult> {
    const result = await this.#publish(id, input, false);
    this.#stats.updates++;
    return result;
  }

  async #publish(id: string, input: PublishInput, here: boolean): Promise<PublishResult> {
    validateId(id, "reel");
    const owned = validatePublish(id, input);
    const targets = [...owned.target_users ?? []];
    const channel = channelTopic(owned.target_channel);
    if (channel?.kind === "user" && !targets.includes(channel.id)) targets.push(channel.id);
    const otherReel = channel?.kind === "reel" && channel.id !== id ? channel.id : null;
    const writer = here ? null : this.#elsewhere();
    if (writer) {
      const written: Written[] = [
        { kind: "reel", id },
        ...(otherReel === null ? [] : [{ kind: "reel", id: otherReel }]),
        ...HandOver.of("user", targets),
      ];
      const { weight: _weight, ...plain } = owned;
      const args = [id, plain, written];
      return this.#deps.handOver!.call(
        writer,
        "reels.publish",
        written,
        args,
        () => this.#publish(id, input, true),
      );
    }
    const actor = this.#actor(id);
    let stored: ReelUpdateJson | undefined;
    if (targets.length === 0 && otherReel === null) {
      stored = await actor.write(
        (tx) => actor.publishOp(tx, owned),
        256 + owned.weight + MUTATION_WEIGHT,
      );
    } else {
      const users = targets.map((u) => this.#deps.registry.get<UserActor>("user", u));
      // One atomic commit: the reel's log, the channel reel's log and every target's feed. Reel
      // ops are applied before user ops (actors are ordered by kind), so `stored` is set by then.
      const ops = [
        { actor, op: (tx: ReelTx) => (stored = publicUpdate(actor.publishOp(tx, owned))) },
        ...users.map((user) => ({ actor: user, op: (tx: UserTx) => user.deliverOp(tx, stored!) })),
      ] as unknown as JointOp<unknown>[];
      if (otherReel !== null) {
        const other = this.#actor(otherReel);
        const { target_users: _t, ...copy } = owned;
        ops.push({ actor: other, op: (tx: ReelTx) => other.publishOp(tx, copy) } as never);
      }
      await writeTogether(this.#deps.store, ops);
    }
    return { id: stored!.id, reel_id: id, seq: stored!.seq, timestamp: stored!.timestamp };
  }

  /** The worker that writes, when it is another one (see storage/one_writer.ts). */
  #elsewhere(): string | null {
    return this.#deps.handOver?.elsewhere() ?? null;
  }

  /**
   * Runs a reel write another worker handed over, here, and answers with the head versionstamps
   * of the actors it changed.
   * @internal Not part of the embedding API; the instance's writers' channel calls it.
   */
  async serveHandedOver(op: string, args: unknown[]): Promise<WriterAnswer> {
    const id = args[0] as string;
    let result: unknown;
    switch (op) {
      case "reels.publish":
        result = await this.#publish(id, args[1] as PublishInput, true);
        return this.#deps.handOver!.answer(args[2] as Written[], result);
      case "reels.interact":
        result = await this.#interact(id, args[1] as InteractionInput, true);
        return this.#deps.handOver!.answer([{ kind: "reel", id }], result);
      default:
        throw new ChorusError("internal", `Cannot run "${op}" for another worker: not a write`);
    }
  }

  /**
   * The retained updates after `since` (default 0), oldest first, at most `limit` (default 100,
   * at most 1000).
   * @throws {ChorusError} `invalid_request`
   */
  async updates(
    id: string,
    options: { since?: number; limit?: number; consistency?: Consistency } = {},
  ): Promise<UpdateList> {
    const since = nonNegative(options.since ?? 0, "since");
    const limit = options.limit ?? 100;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
      throw new ChorusError("invalid_request", `Cannot use limit ${limit}: use 1 to 1000`);
    }
    return await this.#read(id, options.consistency, (actor) => {
      const { updates, complete } = actor.updatesSince(since);
      return {
        reel_id: id,
        seq: actor.seq,
        complete,
        updates: updates.slice(0, limit).map(publicUpdate),
      };
    });
  }

  /**
   * The reel's counters. A reel nothing happened to has zeros. Views taken on this instance and
   * not yet flushed are included. `strong` flushes them first and reads the views counter from
   * KV with a strong read, so it counts every view any instance has written; `leader` and
   * `eventual` serve the cached counter, which follows other instances' views through watch from
   * the first read on.
   */
  async get(id: string, options: { consistency?: Consistency } = {}): Promise<ReelStateJson> {
    const actor = this.#actor(id);
    actor.followViews();
    const mode = options.consistency ?? this.#deps.config.readConsistency;
    if (mode !== "strong") {
      return await this.#read(id, mode, (actor) => actor.state(this.#pending.get(id) ?? 0));
    }
    await this.flushViews();
    return await actor.readStrong(async () => {
      await actor.readViews("strong");
      return actor.state(this.#pending.get(id) ?? 0);
    });
  }

  #read<R>(id: string, mode: Consistency | undefined, fn: (actor: ReelActor) => R): Promise<R> {
    const actor = this.#actor(id);
    const m = mode ?? this.#deps.config.readConsistency;
    if (m === "eventual" && actor.status === "started") {
      return Promise.resolve(actor.peek(() => fn(actor))!);
    }
    return m === "strong" ? actor.readStrong(() => fn(actor)) : actor.read(() => fn(actor));
  }

  /**
   * Applies an interaction. `like` is idempotent per user (a repeated like changes nothing),
   * `unlike` removes the user's like, `comment` stores the text (1–2000 characters), `share`
   * counts, `view` is counted at once and written with the next window's views.
   * @throws {ChorusError} `invalid_request` for an unknown type, a bad user id or comment
   */
  async interact(id: string, input: InteractionInput): Promise<InteractionResult> {
    this.#stats.interactions++;
    return await this.#interact(id, input, false);
  }

  async #interact(id: string, input: InteractionInput, here: boolean): Promise<InteractionResult> {
    validateId(id, "reel");
    const { type, user_id: user, text } = validateInteraction(id, input);
    const writer = type === "view" || here ? null : this.#elsewhere();
    if (writer) {
      const args = [id, { type, user_id: user, ...(text === undefined ? {} : { text }) }];
      const result = await this.#deps.handOver!.call<InteractionResult>(
        writer,
        "reels.interact",
        [{ kind: "reel", id }],
        args,
        () => this.#interact(id, input, true),
      );
      // The writer's counters leave out views still pending anywhere; add this worker's, as a
      // read here would.
      return {
        ...result,
        state: { ...result.state, views: result.state.views + (this.#pending.get(id) ?? 0) },
      };
    }
    const actor = this.#actor(id);
    if (type === "view") {
      this.#stats.views++;
      this.#addView(id);
      const interaction: InteractionJson = {
        id: ulid(this.#deps.clock.now()),
        reel_id: id,
        type,
        user_id: user,
        timestamp: this.#deps.clock.now(),
      };
      await actor.start();
      actor.announce(interaction);
      const state = actor.state(this.#pending.get(id) ?? 0);
      return { ...interaction, counted: true, batched: true, state };
    }
    for (let attempt = 0; attempt < MAX_LIKE_ATTEMPTS; attempt++) {
      if ((type === "like" || type === "unlike") && !actor.knowsLike(user)) {
        await this.#learnLike(actor, user);
      }
      try {
        const outcome = await actor.write(
          (tx) => actor.interactOp(tx, type as CountedType, user, text),
          // Its log entry, and a like's mark or a comment's entry.
          256 + (text?.length ?? 0) * 3 + MUTATION_WEIGHT * (type === "share" ? 1 : 2),
        );
        // Handed over: the worker that took it adds its own pending views, not the writer's.
        const pending = here ? 0 : this.#pending.get(id) ?? 0;
        const state = await actor.read(() => actor.state(pending));
        return { ...outcome.interaction, counted: outcome.counted, state };
      } catch (e) {
        if (!(e instanceof LikeUnknown)) throw e;
      }
    }
    throw new ChorusError(
      "conflict",
      `Cannot ${type} reel "${id}": too many concurrent writers, retry`,
    );
  }

  /** Reads the head and the like mark at one point in time and hands them to the actor. */
  async #learnLike(actor: ReelActor, user: string): Promise<void> {
    await actor.start();
    const [head, like] = await this.#deps.store.getMany(
      [reelHeadKey(actor.id), reelLikeKey(actor.id, user)],
      "strong",
    );
    await actor.read(() => actor.learnLike(user, like.versionstamp !== null, head.versionstamp));
  }

  /**
   * Stored comments, oldest first: at most `limit` (default 50, at most 500) after `cursor`.
   * @throws {ChorusError} `invalid_request` for a bad cursor or limit
   */
  async comments(
    id: string,
    options: { cursor?: string; limit?: number } = {},
  ): Promise<CommentPage> {
    validateId(id, "reel");
    const limit = options.limit ?? 50;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 500) {
      throw new ChorusError("invalid_request", `Cannot use limit ${limit}: use 1 to 500`);
    }
    const iter = this.#deps.store.list<ReelComment>(
      options.cursor
        ? { prefix: reelCommentPrefix(id), start: reelCommentKey(id, options.cursor + "\u0000") }
        : { prefix: reelCommentPrefix(id) },
      { limit: limit + 1 },
    );
    const comments: ReelComment[] = [];
    for await (const e of iter) comments.push(e.value);
    const more = comments.length > limit;
    if (more) comments.length = limit;
    return { reel_id: id, comments, cursor: more ? comments[comments.length - 1].id : null };
  }

  /**
   * Calls `listener` with the reel's events in order, once each, on every instance: updates
   * (those with `target_users` included: filter them out for the reel's own subscribers) and
   * counted interactions; views only on the instance that took them.
   * @returns a function that stops the listener
   */
  async subscribe(id: string, listener: (event: ReelEvent) => void): Promise<() => void> {
    const actor = this.#actor(id);
    actor.followViews();
    await actor.start();
    return await actor.read(() => {
      let last = -1;
      return actor.subscribe((event) => {
        if (event.v !== undefined) {
          if (event.v <= last) return;
          last = event.v;
        }
        listener(event);
      });
    });
  }

  // ---- view coalescing ----

  #addView(id: string): void {
    this.#pending.set(id, (this.#pending.get(id) ?? 0) + 1);
    this.#arm();
  }

  #arm(): void {
    if (this.#timer === undefined && !this.#closed) {
      this.#timer = this.#deps.clock.setTimeout(() => {
        this.#timer = undefined;
        this.flushViews().catch((error) => {
          this.#flushWarn("reel views not written; they stay pending for the next window", {
            error,
            reels: this.#pending.size,
          });
        });
      }, this.#windowMs);
    }
  }

  /**
   * Writes every pending view now: one commit of `sum` mutations for all reels (split past KV's
   * mutation limit). On failure the counts go back to pending for the next window.
   */
  flushViews(): Promise<void> {
    const run = this.#flushing.then(() => this.#flushOnce());
    this.#flushing = run.catch(() => {});
    return run;
  }

  async #flushOnce(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = [...this.#pending];
    this.#pending = new Map();
    if (this.#timer !== undefined) {
      this.#deps.clock.clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    for (let i = 0; i < batch.length; i += MAX_SUMS_PER_COMMIT) {
      const part = batch.slice(i, i + MAX_SUMS_PER_COMMIT);
      const mutations: Mutation[] = part.map(([id, n]) => ({
        type: "sum",
        key: reelViewsKey(id),
        value: BigInt(n),
      }));
      let result;
      try {
        result = await this.#deps.store.commit({ checks: [], mutations, bytes: 64 * part.length });
      } catch (e) {
        for (const [id, n] of batch.slice(i)) {
          this.#pending.set(id, (this.#pending.get(id) ?? 0) + n);
        }
        this.#arm();
        throw e;
      }
      this.#stats.viewCommits++;
      if (!result.ok) continue; // no checks: cannot happen
      for (const [id, n] of part) {
        this.#deps.registry.peek<ReelActor>("reel", id)?.addViews(n, result.versionstamp);
      }
    }
  }

  /** Writes pending views and stops the window timer. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.#deps.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flushViews().catch((error) => {
      log.warn("views of the last window were not written while closing", { error });
    });
  }
}

function nonNegative(n: unknown, what: string): number {
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw new ChorusError(
      "invalid_request",
      `Cannot use ${what} ${JSON.stringify(n)}: it must be a non-negative integer`,
    );
  }
  return n;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);
}

/** Validates and copies a publish; `weight` is its JSON size. */
function validatePublish(id: string, input: PublishInput): UpdateInput & { weight: number } {
  const bad = (why: string) =>
    new ChorusError("invalid_request", `Cannot publish to reel "${id}": ${why}`);
  if (!isPlainObject(input)) throw bad("the body must be a JSON object");
  if (!isPlainObject(input.update_data)) throw bad("update_data must be a JSON object");
  assertStorableJson(input.update_data, "update_data");
  const text = JSON.stringify(input.update_data);
  const weight = new TextEncoder().encode(text).byteLength;
  if (weight > MAX_UPDATE_BYTES) {
    throw new ChorusError(
      "payload_too_large",
      `Cannot publish to reel "${id}": update_data is over ${MAX_UPDATE_BYTES} bytes of JSON`,
    );
  }
  const out: UpdateInput & { weight: number } = {
    update_data: JSON.parse(text),
    priority: input.priority ?? "normal",
    weight,
  };
  if (!(PRIORITIES as readonly string[]).includes(out.priority)) {
    throw bad("priority must be low, normal, high or critical");
  }
  if (input.target_users !== undefined) {
    const t = input.target_users;
    if (!Array.isArray(t)) throw bad("target_users must be a list of user ids");
    if (t.length > MAX_TARGET_USERS) throw bad(`target_users holds at most ${MAX_TARGET_USERS}`);
    const ids = t.map((u) => validateId(idText(u), "user"));
    if (ids.length) out.target_users = [...new Set(ids)];
  }
  if (input.target_channel !== undefined) {
    if (typeof input.target_channel !== "string" || input.target_channel.length > 256) {
      throw bad("target_channel must be a string of at most 256 characters");
    }
    out.target_channel = input.target_channel;
  }
  return out;
}

function validateInteraction(id: string, input: InteractionInput): InteractionInput {
  const bad = (why: string) =>
    new ChorusError("invalid_request", `Cannot apply an interaction to reel "${id}": ${why}`);
  if (!isPlainObject(input)) throw bad("the body must be a JSON object");
  if (!(INTERACTION_TYPES as readonly unknown[]).includes(input.type)) {
    throw bad(`type must be one of ${INTERACTION_TYPES.join(", ")}`);
  }
  if (input.user_id === undefined) throw bad("user_id is required");
  const out: InteractionInput = {
    type: input.type,
    user_id: validateId(idText(input.user_id), "user"),
  };
  if (input.type === "comment") {
    if (typeof input.text !== "string" || input.text.trim().length === 0) {
      throw bad("a comment needs a non-empty text");
    }
    if (input.text.length > MAX_COMMENT_CHARS) {
      throw bad(`a comment holds at most ${MAX_COMMENT_CHARS} characters`);
    }
    out.text = input.text;
  } else if (input.text !== undefined && typeof input.text !== "string") {
    throw bad("text must be a string");
  }
  return out;
}
