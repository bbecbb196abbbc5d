/**
 * Instance membership: each instance heartbeats `{id, region, pid, started_at}` into KV with an
 * expiry, so `status` can list the live ones and a dead instance drops out by itself.
 * @module
 */
import type { Clock, TimerId } from "../clock.ts";
import type { Store } from "./store.ts";
import { log } from "../log.ts";
import { MEMBER_PREFIX, memberKey } from "./keys.ts";

/** One live instance. */
export interface Member {
  id: string;
  region: string;
  pid: number;
  started_at: number;
  /** When it last heartbeat (ms since epoch). */
  seen_at: number;
}

/** How often an instance heartbeats, and how long its record outlives a missed beat. */
export const HEARTBEAT_MS = 10_000;
/** A member record expires this long after its last heartbeat. */
export const MEMBER_TTL_MS = 30_000;

/** Heartbeats this instance and lists live members. */
export class Members {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #self: Omit<Member, "seen_at">;
  readonly #onList?: (members: Member[]) => void;
  #timer?: TimerId;
  #stopped = false;

  /**
   * Membership of `self` (this instance) in the KV shared with the other instances.
   * @param options.onList called with the live members after every heartbeat (how an instance
   *   learns that another process shares its KV file)
   */
  constructor(
    store: Store,
    clock: Clock,
    self: Omit<Member, "seen_at">,
    options: { onList?: (members: Member[]) => void } = {},
  ) {
    this.#store = store;
    this.#clock = clock;
    this.#self = self;
    this.#onList = options.onList;
  }

  /** Starts heartbeating (the first beat is written before this resolves). */
  async start(): Promise<void> {
    await this.#beatAndList();
    this.#schedule();
  }

  async #beatAndList(): Promise<void> {
    await this.beat();
    if (this.#onList) this.#onList(await this.list());
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#beatAndList().catch((error) => {
        log.warn("member heartbeat failed; retrying at the next beat", { error });
      }).finally(() => this.#schedule());
    }, HEARTBEAT_MS);
  }

  /** Writes one heartbeat. */
  async beat(): Promise<void> {
    const now = this.#clock.now();
    await this.#store.commit({
      checks: [],
      mutations: [{
        type: "set",
        key: memberKey(this.#self.id),
        value: { ...this.#self, seen_at: now },
        expireIn: MEMBER_TTL_MS,
      }],
      bytes: 256,
    });
  }

  /** Live members: heartbeat within {@linkcode MEMBER_TTL_MS} (KV expiry may lag). */
  async list(): Promise<Member[]> {
    const now = this.#clock.now();
    const out: Member[] = [];
    for await (const entry of this.#store.list<Member>({ prefix: [...MEMBER_PREFIX] })) {
      if (now - entry.value.seen_at < MEMBER_TTL_MS) out.push(entry.value);
    }
    return out;
  }

  /** Stops heartbeating and removes this instance's record. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    await this.#store.commit({
      checks: [],
      mutations: [{ type: "delete", key: memberKey(this.#self.id) }],
      bytes: 64,
    }).catch((error) => {
      log.warn("member record not removed while stopping; it stays listed until it expires", {
        error,
        id: this.#self.id,
      });
    });
  }
}
