/**
 * `Chorus.open()` wires one instance together: the KV store, watch fan-in, actor registry, product
 * APIs and the Hono app. Used by `main.ts` for the server and by embedding programs directly.
 * @module
 */
import { ulid } from "ulid";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { type Clock, systemClock } from "./clock.ts";
import { loadConfig, type ResolvedConfig } from "./config.ts";
import { Store } from "./storage/store.ts";
import { WatchHub } from "./storage/watch.ts";
import { Registry } from "./actors/registry.ts";
import { KvActor } from "./actors/kv_actor.ts";
import { KvApi } from "./actors/kv_api.ts";
import { createApp } from "./app.ts";

/** Options of {@linkcode Chorus.open}. */
export interface ChorusOptions {
  /** An open KV handle; the caller keeps ownership (it is not closed by `close()`). */
  kv?: Deno.Kv;
  /** Where to open KV when no handle is given: a path, `:memory:` or a KV Connect URL. */
  path?: string;
  /** Settings; anything missing takes the `CHORUS_*` default. */
  config?: Partial<ResolvedConfig>;
  /** Time source (tests pass a `ManualClock`). */
  clock?: Clock;
}

/** One Chorus instance. */
export class Chorus {
  /** The kv product. */
  readonly kv: KvApi;
  /** The Hono app serving the HTTP API (`app.fetch` is a fetch handler). */
  readonly app: OpenAPIHono;
  /** The resolved settings. */
  readonly config: ResolvedConfig;
  /** This instance's id (a ULID). */
  readonly instanceId: string;
  /** The KV store wrapper. */
  readonly store: Store;
  /** Live actors of this instance. */
  readonly registry: Registry;
  /** The clock in use. */
  readonly clock: Clock;
  readonly #watch: WatchHub;
  readonly #ownsKv: boolean;
  #closed = false;

  private constructor(kv: Deno.Kv, ownsKv: boolean, config: ResolvedConfig, clock: Clock) {
    this.config = config;
    this.clock = clock;
    this.instanceId = ulid();
    this.#ownsKv = ownsKv;
    this.store = new Store(kv, { limits: { checks: config.kvMaxChecks }, clock });
    this.#watch = new WatchHub(kv);
    this.registry = new Registry({ store: this.store, watch: this.#watch, clock, config });
    this.registry.define("kv", (id, ctx) => new KvActor(id, ctx));
    this.kv = new KvApi({ registry: this.registry, store: this.store, config, clock });
    this.app = createApp({
      config,
      store: this.store,
      kv: this.kv,
      instanceId: this.instanceId,
      startedAt: clock.now(),
      now: () => clock.now(),
    });
  }

  /**
   * Opens an instance on a KV handle or path.
   *
   * @example
   * ```ts
   * import { Chorus } from "./mod.ts";
   * const chorus = await Chorus.open({ path: ":memory:" });
   * await chorus.kv.put("greeting", { text: "hello" }, { ttl: 60 });
   * console.log(await chorus.kv.get("greeting"));
   * await chorus.close();
   * ```
   */
  static async open(options: ChorusOptions = {}): Promise<Chorus> {
    const base = loadConfig({}, { dev: true });
    const config: ResolvedConfig = { ...base, auth: false, ...options.config };
    let kv = options.kv;
    const owns = kv === undefined;
    if (!kv) {
      const path = options.path ?? config.kvPath;
      if (path && path !== ":memory:" && !/^https?:\/\//.test(path)) {
        const dir = path.replace(/[^/]*$/, "");
        if (dir) await Deno.mkdir(dir, { recursive: true });
      }
      kv = await Deno.openKv(path);
    }
    return new Chorus(kv, owns, config, options.clock ?? systemClock);
  }

  /** A fetch handler for `Deno.serve`, `deno serve` and Deno Deploy. */
  fetch = (request: Request): Response | Promise<Response> => this.app.fetch(request);

  /** Finishes queued work, stops watches and timers, and closes KV if this instance opened it. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.registry.close();
    this.store.close();
    this.#watch.close();
    if (this.#ownsKv) this.store.kv.close();
  }
}
