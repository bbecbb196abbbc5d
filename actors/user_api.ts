/**
 * The users product: presence over user actors. What `chorus.users` exposes, and what the
 * `/users/:id/presence` and `/reels/:id/presence` routes and the `user:<id>` topic call.
 *
 * A user's presence combines two sources. What the user reported (REST, or a socket joining a
 * reel) is stored by the user actor and holds for one presence TTL after `last_seen`. The user's
 * live sockets are the socket-presence entries the realtime layer keeps in KV (refreshed while the
 * socket lives, removed when it drops, expiring within the TTL when its instance dies) on
 * `user:<id>` and on `reel:<current_reel>`. A user with neither is `offline`, so a user whose
 * last socket dropped becomes offline at once, or within the TTL when its instance died.
 * @module
 */
import { ChorusError } from "../errors.ts";
import type { Clock } from "../clock.ts";
import type { Consistency, ResolvedConfig } from "../config.ts";
import type { Store } from "../storage/store.ts";
import { presencePrefix, reelViewerPrefix } from "../storage/keys.ts";
import type { PresenceUpdateJson } from "./user_types.ts";
import type { Registry } from "./registry.ts";
import type { HandOver } from "./hand_over.ts";
import type { WriterAnswer } from "../storage/one_writer.ts";
import { MUTATION_WEIGHT } from "./actor.ts";
import { idText, validateId } from "./reel_api.ts";
import type {
  PresenceInput,
  PresenceStatus,
  UserActor,
  UserFeedEntry,
  UserRecord,
} from "./user_actor.ts";

export type { PresenceInput, PresenceStatus, UserFeedEntry };

/** Presence statuses. */
export const PRESENCE_STATUSES = ["online", "away", "offline"] as const;
/** Longest `activity` text. */
export const MAX_ACTIVITY_CHARS = 256;

/** A user's presence as `GET /users/:id/presence` answers it. */
export interface UserPresence extends PresenceUpdateJson {
  /** Live sockets of the user seen in socket presence (on `user:<id>` and the current reel). */
  sockets: number;
}

/** One user on a reel. */
export interface ReelViewer {
  /** The user on the reel. */
  user_id: string;
  /** online, away or offline, as the user's socket or last report says. */
  status: string;
  /** What the user said they are doing, if anything. */
  activity?: string;
  /** Live sockets of the user on the reel's topic (0: reported over REST only). */
  sockets: number;
  /** Most recent sign of life (ms since epoch). */
  last_seen: number;
}

/** Who is on a reel now. */
export interface ReelPresence {
  /** The reel asked about. */
  reel_id: string;
  /** How many users are on the reel (the length of `users`). */
  count: number;
  /** The users on the reel, one entry each, sorted by user id. */
  users: ReelViewer[];
}

/** Dependencies of {@linkcode UsersApi}. */
export interface UsersApiDeps {
  /** Where user actors are found or started. */
  registry: Registry;
  /** The KV store, for listing socket presence and reel viewers. */
  store: Store;
  /** The resolved configuration; its `readConsistency` is the default for reads. */
  config: ResolvedConfig;
  /** The time source that decides whether a presence is still fresh. */
  clock: Clock;
  /** How long a reported presence holds without another report. Default 30 s. */
  presenceTtlMs?: number;
  /**
   * Where writes go when the workers of one process on one KV file write through one of them
   * (see storage/one_writer.ts); the instance routes the writes handed to this one to
   * {@linkcode UsersApi.serveHandedOver}.
   */
  handOver?: HandOver;
}

interface SocketEntry {
  key: string;
  meta: { online_at: number; status?: unknown; activity?: unknown };
  exp: number;
}

/**
 * Most presence reports from socket joins written at once (see
 * {@linkcode UsersApi.reportFromSocket}).
 */
export const SOCKET_REPORTS_AT_ONCE = 32;

/** The users product: presence and per-user feeds. */
export class UsersApi {
  readonly #deps: UsersApiDeps;
  /** Socket presence reports waiting, and how many are being written. */
  #reports: (() => Promise<unknown>)[] = [];
  #reportsRunning = 0;
  /** How long a reported presence holds. */
  readonly ttlMs: number;

  /** Creates the users product over a registry of actors; nothing is read until the first call. */
  constructor(deps: UsersApiDeps) {
    this.#deps = deps;
    this.ttlMs = deps.presenceTtlMs ?? 30_000;
  }

  #actor(id: string): UserActor {
    return this.#deps.registry.get<UserActor>("user", validateId(id, "user"));
  }

  /**
   * Records a user's presence and broadcasts it as `user_activity` on `user:<id>`. With
   * `current_reel`, the user is listed on that reel for one TTL (or until the next report).
   * @param options.fromSocket true when a socket's join reports it (the socket is tracked itself)
   * @throws {ChorusError} `invalid_request`
   */
  setPresence(
    id: string,
    input: PresenceInput,
    options: { fromSocket?: boolean } = {},
  ): Promise<PresenceUpdateJson> {
    return this.#setPresence(id, input, options.fromSocket === true, false);
  }

  async #setPresence(
    id: string,
    input: PresenceInput,
    fromSocket: boolean,
    here: boolean,
  ): Promise<PresenceUpdateJson> {
    validateId(id, "user");
    const owned = validatePresence(id, input);
    const writer = here ? null : this.#deps.handOver?.elsewhere();
    if (writer) {
      return this.#deps.handOver!.call(
        writer,
        "users.setPresence",
        [{ kind: "user", id }],
        [id, owned, fromSocket],
        () => this.#setPresence(id, input, fromSocket, true),
      );
    }
    const actor = this.#actor(id);
    const ttl = fromSocket ? null : this.ttlMs;
    // Its entry in the user's feed is one mutation of its own.
    return await actor.write(
      (tx) => actor.setPresenceOp(tx, owned, ttl),
      256 + (owned.activity?.length ?? 0) * 3 + MUTATION_WEIGHT,
    );
  }

  /**
   * Runs a user write another worker handed over, here, and answers with the user's head
   * versionstamp after it.
   * @internal Not part of the embedding API; the instance's writers' channel calls it.
   */
  async serveHandedOver(op: string, args: unknown[]): Promise<WriterAnswer> {
    if (op !== "users.setPresence") {
      throw new ChorusError("internal", `Cannot run "${op}" for another worker: not a write`);
    }
    const id = args[0] as string;
    const result = await this.#setPresence(id, args[1] as PresenceInput, args[2] === true, true);
    return this.#deps.handOver!.answer([{ kind: "user", id }], result);
  }

  /**
   * Records the presence a socket reports by joining a reel, in the background: reports queue and
   * at most {@linkcode SOCKET_REPORTS_AT_ONCE} run at a time, in arrival order, so the thousands
   * of joins of a live event get their replies without waiting behind as many user-actor loads
   * and commits, and fewer of them are in memory at once. A report that fails is logged.
   */
  reportFromSocket(id: string, input: PresenceInput, onError: (error: unknown) => void): void {
    this.#reports.push(() => this.setPresence(id, input, { fromSocket: true }).catch(onError));
    this.#runReports();
  }

  #runReports(): void {
    while (this.#reportsRunning < SOCKET_REPORTS_AT_ONCE && this.#reports.length) {
      const report = this.#reports.shift()!;
      this.#reportsRunning++;
      report().finally(() => {
        this.#reportsRunning--;
        this.#runReports();
      });
    }
  }

  /** A user's presence now: reported status within the TTL, live sockets, else offline. */
  async getPresence(
    id: string,
    options: { consistency?: Consistency } = {},
  ): Promise<UserPresence> {
    const actor = this.#actor(id);
    const mode = options.consistency ?? this.#deps.config.readConsistency;
    const rec = mode === "strong"
      ? await actor.readStrong(() => actor.record())
      : await actor.read(() => actor.record());
    const now = this.#deps.clock.now();
    const live = await this.#sockets(id, rec?.current_reel, now);
    return effective(id, rec, live, now, this.ttlMs);
  }

  async #sockets(id: string, reel: string | undefined, now: number): Promise<SocketEntry[]> {
    const out: SocketEntry[] = [];
    const prefixes = [[...presencePrefix(`user:${id}`), id]];
    if (reel) prefixes.push([...presencePrefix(`reel:${reel}`), id]);
    for (const prefix of prefixes) {
      for await (const e of this.#deps.store.list<SocketEntry>({ prefix })) {
        if (e.value.exp > now) out.push(e.value);
      }
    }
    return out;
  }

  /** Who is on reel `id`: users with live sockets on `reel:<id>` and users who reported it. */
  async reelPresence(id: string): Promise<ReelPresence> {
    validateId(id, "reel");
    const now = this.#deps.clock.now();
    const byUser = new Map<string, ReelViewer>();
    for await (
      const e of this.#deps.store.list<SocketEntry>({ prefix: presencePrefix(`reel:${id}`) })
    ) {
      const s = e.value;
      if (s.exp <= now) continue;
      const seen = byUser.get(s.key);
      if (seen) {
        seen.sockets++;
        seen.last_seen = Math.max(seen.last_seen, s.meta.online_at);
        continue;
      }
      const viewer: ReelViewer = {
        user_id: s.key,
        status: typeof s.meta.status === "string" ? s.meta.status : "online",
        sockets: 1,
        last_seen: s.meta.online_at,
      };
      if (typeof s.meta.activity === "string") viewer.activity = s.meta.activity;
      byUser.set(s.key, viewer);
    }
    for await (
      const e of this.#deps.store.list<PresenceUpdateJson>({ prefix: reelViewerPrefix(id) })
    ) {
      const p = e.value;
      if (p.last_seen + this.ttlMs <= now || p.status === "offline" || byUser.has(p.user_id)) {
        continue;
      }
      const viewer: ReelViewer = {
        user_id: p.user_id,
        status: p.status,
        sockets: 0,
        last_seen: p.last_seen,
      };
      if (p.activity !== undefined) viewer.activity = p.activity;
      byUser.set(p.user_id, viewer);
    }
    const users = [...byUser.values()].sort((a, b) => a.user_id < b.user_id ? -1 : 1);
    return { reel_id: id, count: users.length, users };
  }

  /** The user's retained feed after `since` and whether it reaches back to `since + 1`. */
  async feedSince(
    id: string,
    since: number,
  ): Promise<{ entries: UserFeedEntry[]; complete: boolean }> {
    const actor = this.#actor(id);
    return await actor.read(() => actor.feedSince(since));
  }

  /** The feed's last seq. */
  async seq(id: string): Promise<number> {
    const actor = this.#actor(id);
    return await actor.read(() => actor.seq);
  }

  /**
   * Calls `listener` with each new feed entry of user `id` (`user_activity`, targeted
   * `reel_update`), in seq order, once each, whichever instance wrote it.
   * @returns a function that stops the listener
   */
  async subscribe(id: string, listener: (entry: UserFeedEntry) => void): Promise<() => void> {
    const actor = this.#actor(id);
    await actor.start();
    return await actor.read(() => {
      let last = actor.seq;
      return actor.subscribe((entry) => {
        if (entry.seq <= last) return;
        last = entry.seq;
        listener(entry);
      });
    });
  }
}

function effective(
  id: string,
  rec: UserRecord | null,
  live: SocketEntry[],
  now: number,
  ttlMs: number,
): UserPresence {
  const fresh = rec !== null && rec.last_seen + ttlMs > now;
  let status: PresenceStatus;
  if (live.length) status = fresh ? rec!.status : "online";
  else status = fresh ? rec!.status : "offline";
  const out: UserPresence = {
    user_id: id,
    status,
    last_seen: live.length ? now : rec?.last_seen ?? 0,
    sockets: live.length,
  };
  if (rec?.current_reel !== undefined) out.current_reel = rec.current_reel;
  if (rec?.activity !== undefined) out.activity = rec.activity;
  return out;
}

function validatePresence(id: string, input: PresenceInput): PresenceInput {
  const bad = (why: string) =>
    new ChorusError("invalid_request", `Cannot set the presence of "${id}": ${why}`);
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw bad("the body must be a JSON object");
  }
  if (!(PRESENCE_STATUSES as readonly unknown[]).includes(input.status)) {
    throw bad("status must be online, away or offline");
  }
  const out: PresenceInput = { status: input.status };
  if (input.current_reel !== undefined && input.current_reel !== null) {
    // Kronop sends reel ids as numbers: 123 is the reel "123".
    out.current_reel = validateId(idText(input.current_reel), "reel");
  }
  if (input.activity !== undefined && input.activity !== null) {
    if (typeof input.activity !== "string" || input.activity.length > MAX_ACTIVITY_CHARS) {
      throw bad(`activity must be a string of at most ${MAX_ACTIVITY_CHARS} characters`);
    }
    out.activity = input.activity;
  }
  return out;
}
