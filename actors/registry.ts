/**
 * The registry holds this instance's live actors, one per `(kind, id)`, creates them on first use
 * and evicts the idle ones, so memory follows the working set rather than the data set.
 * @module
 */
import type { Actor, ActorContext } from "./actor.ts";
import { telemetry } from "../observability/telemetry.ts";

/** Builds an actor of one kind. */
// deno-lint-ignore no-explicit-any
export type ActorFactory = (id: string, ctx: ActorContext) => Actor<any, any>;

/** Keeps one actor per address and evicts idle ones. */
export class Registry {
  readonly #ctx: ActorContext;
  readonly #factories = new Map<string, ActorFactory>();
  /** Live actors by kind, then id (no address string is built on the hot path). */
  // deno-lint-ignore no-explicit-any
  readonly #byKind = new Map<string, Map<string, Actor<any, any>>>();
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
    if (!this.#byKind.has(kind)) this.#byKind.set(kind, new Map());
  }

  /** Live actors on this instance. */
  get size(): number {
    let n = 0;
    for (const actors of this.#byKind.values()) n += actors.size;
    return n;
  }

  /** Live actors per kind. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [kind, actors] of this.#byKind) if (actors.size) out[kind] = actors.size;
    return out;
  }

  /** Messages queued across all live actors. */
  mailboxDepth(): number {
    let n = 0;
    for (const a of this.#all()) n += a.depth;
    return n;
  }

  /** The actor for `(kind, id)`, created if needed. */
  // deno-lint-ignore no-explicit-any
  get<A extends Actor<any, any>>(kind: string, id: string): A {
    const actors = this.#byKind.get(kind);
    if (!actors) throw new Error(`No actor kind "${kind}"`);
    let actor = actors.get(id);
    if (!actor) {
      actor = this.#factories.get(kind)!(id, this.#ctx);
      actors.set(id, actor);
      this.#arm();
    }
    return actor as unknown as A;
  }

  /** The actor for `(kind, id)` if it is live; never creates one. */
  // deno-lint-ignore no-explicit-any
  peek<A extends Actor<any, any>>(kind: string, id: string): A | undefined {
    return this.#byKind.get(kind)?.get(id) as unknown as A | undefined;
  }

  // deno-lint-ignore no-explicit-any
  *#all(): Iterable<Actor<any, any>> {
    for (const actors of this.#byKind.values()) yield* actors.values();
  }

  /** Evicts every actor idle for longer than the configured time; returns how many. */
  sweep(): number {
    const now = this.#ctx.clock.now();
    let n = 0;
    for (const actors of this.#byKind.values()) {
      for (const [id, actor] of actors) {
        if (actor.evictable(now, this.#ctx.config.actorIdleMs)) {
          actor.close();
          actors.delete(id);
          n++;
          if (telemetry.actorEvict.hasSubscribers) {
            telemetry.actorEvict.publish({ kind: actor.kind, id, idleMs: now - actor.lastUsed });
          }
        }
      }
    }
    this.evicted += n;
    return n;
  }

  /** Waits for every mailbox to drain, then closes all actors. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sweeper !== undefined) this.#ctx.clock.clearTimeout(this.#sweeper);
    await Promise.all([...this.#all()].map((a) => a.drained()));
    for (const a of this.#all()) a.close();
    for (const actors of this.#byKind.values()) actors.clear();
  }

  #arm(): void {
    if (this.#sweeper !== undefined || this.#closed) return;
    const every = Math.max(1000, Math.min(this.#ctx.config.actorIdleMs / 2, 30_000));
    this.#sweeper = this.#ctx.clock.setTimeout(() => {
      this.#sweeper = undefined;
      this.sweep();
      if (this.size) this.#arm();
    }, every);
  }
}
