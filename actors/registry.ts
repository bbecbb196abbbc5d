/**
 * The registry holds this instance's live actors, one per `(kind, id)`, creates them on first use
 * and evicts the idle ones, so memory follows the working set rather than the data set.
 * @module
 */
import type { Actor, ActorContext } from "./actor.ts";

/** Builds an actor of one kind. */
// deno-lint-ignore no-explicit-any
export type ActorFactory = (id: string, ctx: ActorContext) => Actor<any, any>;

/** Keeps one actor per address and evicts idle ones. */
export class Registry {
  readonly #ctx: ActorContext;
  readonly #factories = new Map<string, ActorFactory>();
  // deno-lint-ignore no-explicit-any
  readonly #actors = new Map<string, Actor<any, any>>();
  #sweeper?: number;
  #closed = false;
  /** Actors evicted so far. */
  evicted = 0;

  /** A registry whose actors share `ctx` (store, watch fan-in, clock, configuration). */
  constructor(ctx: ActorContext) {
    this.#ctx = ctx;
  }

  /** Registers the factory of a kind (`kv`, `context`, …). */
  define(kind: string, factory: ActorFactory): void {
    this.#factories.set(kind, factory);
  }

  /** Live actors on this instance. */
  get size(): number {
    return this.#actors.size;
  }

  /** Live actors per kind. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const a of this.#actors.values()) out[a.kind] = (out[a.kind] ?? 0) + 1;
    return out;
  }

  /** Messages queued across all live actors. */
  mailboxDepth(): number {
    let n = 0;
    for (const a of this.#actors.values()) n += a.depth;
    return n;
  }

  /** The actor for `(kind, id)`, created if needed. */
  // deno-lint-ignore no-explicit-any
  get<A extends Actor<any, any>>(kind: string, id: string): A {
    const address = `${kind}/${id}`;
    let actor = this.#actors.get(address);
    if (!actor) {
      const factory = this.#factories.get(kind);
      if (!factory) throw new Error(`No actor kind "${kind}"`);
      actor = factory(id, this.#ctx);
      this.#actors.set(address, actor);
      this.#arm();
    }
    return actor as unknown as A;
  }

  /** The actor for `(kind, id)` if it is live; never creates one. */
  // deno-lint-ignore no-explicit-any
  peek<A extends Actor<any, any>>(kind: string, id: string): A | undefined {
    return this.#actors.get(`${kind}/${id}`) as unknown as A | undefined;
  }

  /** Evicts every actor idle for longer than the configured time; returns how many. */
  sweep(): number {
    const now = this.#ctx.clock.now();
    let n = 0;
    for (const [address, actor] of this.#actors) {
      if (actor.evictable(now, this.#ctx.config.actorIdleMs)) {
        actor.close();
        this.#actors.delete(address);
        n++;
      }
    }
    this.evicted += n;
    return n;
  }

  /** Waits for every mailbox to drain, then closes all actors. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweeper !== undefined) this.#ctx.clock.clearTimeout(this.#sweeper);
    await Promise.all([...this.#actors.values()].map((a) => a.drained()));
    for (const a of this.#actors.values()) a.close();
    this.#actors.clear();
  }

  #arm(): void {
    if (this.#sweeper !== undefined || this.#closed) return;
    const every = Math.max(1000, Math.min(this.#ctx.config.actorIdleMs / 2, 30_000));
    this.#sweeper = this.#ctx.clock.setTimeout(() => {
      this.#sweeper = undefined;
      this.sweep();
      if (this.#actors.size) this.#arm();
    }, every);
  }
}
