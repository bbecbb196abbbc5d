/**
 * `Chorus.open()` wires one instance together: the KV store, watch fan-in, actor registry, product
 * APIs and the Hono app. Used by `main.ts` for the server and by embedding programs directly.
 * @module
 */
import { newUlid } from "./random.ts";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { type Clock, systemClock, type TimerId } from "./clock.ts";
import { isKvConnect, loadConfig, type ResolvedConfig } from "./config.ts";
import { openKv } from "./storage/open.ts";
import { type Intent, Store } from "./storage/store.ts";
import { OneWriter } from "./storage/one_writer.ts";
import { ChorusError } from "./errors.ts";
import { HandOver } from "./actors/hand_over.ts";
import { WatchHub } from "./storage/watch.ts";
import { watchProbeKey } from "./storage/keys.ts";
import { Registry } from "./actors/registry.ts";
import { KvActor } from "./actors/kv_actor.ts";
import { KvApi } from "./actors/kv_api.ts";
import { ContextActor } from "./actors/context_actor.ts";
import { ContextsApi } from "./actors/context_api.ts";
import { type ExportProvider, resolveExportProvider } from "./contexts/export.ts";
import type { SchedulerMode } from "./contexts/scheduler.ts";
import { createDeltaFormats, type DeltaFormat } from "./deltas/format.ts";
import { createApp } from "./app.ts";
import { TokenStore } from "./auth/tokens.ts";
import { socketAuthenticator } from "./auth/socket.ts";
import { createLimits } from "./auth/rate_limit.ts";
import { StreamCaps } from "./auth/stream_caps.ts";
import { Metrics } from "./observability/metrics.ts";
import { systemFigures } from "./observability/system_stats.ts";
import { compressionStatsOf } from "./storage/codec.ts";
import { log } from "./log.ts";
import type { RealtimeOptions, RealtimeServer } from "./realtime/server.ts";
import { ObservedRealtimeServer } from "./observability/realtime_telemetry.ts";
import { STATUS_INTERVAL_MS, telemetry } from "./observability/telemetry.ts";
import { kvTopic } from "./realtime/kv_topic.ts";
import { systemTopic } from "./realtime/system_topic.ts";
import { contextTopic } from "./realtime/context_topic.ts";
import { ReelActor } from "./actors/reel_actor.ts";
import { ReelsApi } from "./actors/reel_api.ts";
import { UserActor } from "./actors/user_actor.ts";
import { UsersApi } from "./actors/user_api.ts";
import { reelTopic } from "./realtime/reel_topic.ts";
import { userTopic } from "./realtime/user_topic.ts";
import { Members } from "./storage/members.ts";

/** The Hono app that serves Chorus's HTTP API ({@linkcode Chorus.app}); mount it or call `fetch`. */
export type ChorusApp = OpenAPIHono;

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
  /** Real-time socket settings (idle timeout, presence TTL, outbox bounds, auth seam). */
  realtime?: RealtimeOptions;
  /**
   * Where context exports go, instead of the configured `kv`/`http` provider: `save(id, snapshot)`
   * and `load(id)` (null when there is none).
   */
  exportProvider?: ExportProvider | Omit<ExportProvider, "name">;
  /** Extra context delta formats served by `sync` (`?format=<name>`), beside the built-in three. */
  deltaFormats?: DeltaFormat[];
  /**
   * How the context cleanup scheduler ticks on this instance: `timer` (default; the injected
   * clock), `cron` (`Deno.cron`, what `main.ts` uses when it exists) or `off`.
   */
  scheduler?: SchedulerMode;
  /**
   * A `BroadcastChannel` name shared by the workers of one `deno serve --parallel` process: each
   * `/metrics` scrape then sums the figures of every instance on it (`main.ts` sets it). Absent:
   * `/metrics` reports this instance only.
   */
  metricsChannel?: string;
  /**
   * A `BroadcastChannel` name shared by the workers of one process that serve the same local KV
   * file (`deno serve --parallel`; `main.ts` sets it): their writes then go through one of them,
   * since SQLite writes one connection at a time and workers writing at once wait on each other's
   * locks and caches (see storage/one_writer.ts). Absent: every instance writes itself.
   */
  workersChannel?: string;
  /** How often `chorus:status` telemetry is published while it has subscribers. Default 10 s. */
  statusIntervalMs?: number;
}

/** One Chorus instance. */
export class Chorus {
  /** The kv product. */
  readonly kv: KvApi;
  /** The contexts product: versioned JSON objects with full/delta/no-change sync. */
  readonly contexts: ContextsApi;
  /** The reels product: ordered updates, interactions (idempotent likes, coalesced views). */
  readonly reels: ReelsApi;
  /** The users product: presence (reported and socket-derived) and per-user feeds. */
  readonly users: UsersApi;
  /**
   * This instance's membership heartbeat (started by `open`, stopped by `close`).
   * @internal Not part of the embedding API; for Chorus's own tools and tests.
   */
  readonly members: Members;
  /** The Hono app serving the HTTP API (`app.fetch` is a fetch handler). */
  readonly app: ChorusApp;
  /** The resolved settings. */
  readonly config: ResolvedConfig;
  /** This instance's id (a ULID). */
  readonly instanceId: string;
  /** The KV store wrapper: the handle {@linkcode createBackup} and {@linkcode restoreBackup} take. */
  readonly store: Store;
  /**
   * Live actors of this instance.
   * @internal Not part of the embedding API; for Chorus's own tools and tests.
   */
  readonly registry: Registry;
  /** The clock in use. */
  readonly clock: Clock;
  /**
   * The WebSocket endpoint: sessions, topic registry (`realtime.topics.define`), presence.
   * @internal Not part of the embedding API; for Chorus's own tools and tests.
   */
  readonly realtime: RealtimeServer;
  /**
   * API tokens (hashed, scoped, prefixed); checked on every request when auth is on.
   * @internal Not part of the embedding API; for Chorus's own tools and tests.
   */
  readonly tokens: TokenStore;
  /**
   * Prometheus metrics served at `GET /metrics`.
   * @internal Not part of the embedding API; for Chorus's own tools and tests.
   */
  readonly metrics: Metrics;
  readonly #watch: WatchHub;
  readonly #ownsKv: boolean;
  /** The writers' channel, when this instance is one worker of several on one KV file. */
  readonly #writer: OneWriter | undefined;
  readonly #handOver: HandOver | undefined;
  #closed = false;
  #statusTimer?: TimerId;

  /**
   * The writers' channel as this instance sees it (undefined when it is not on one): the other
   * workers known, whether this one writes, and the product writes and commit intents it handed
   * over and took over.
   * @internal Not part of the embedding API; for Chorus's own tools and tests.
   */
  get workers():
    | {
      peers: number;
      writes: boolean;
      handedOver: number;
      takenOver: number;
      intentsHandedOver: number;
      intentsTakenOver: number;
    }
    | undefined {
    const writer = this.#writer;
    if (!writer || !this.#handOver) return undefined;
    return {
      peers: writer.peers,
      writes: writer.writer() === null,
      ...this.#handOver.counts,
      intentsHandedOver: this.store.stats.handedOver,
      intentsTakenOver: this.store.stats.takenOver,
    };
  }

  private constructor(
    kv: Deno.Kv,
    ownsKv: boolean,
    config: ResolvedConfig,
    clock: Clock,
    realtime: RealtimeOptions = {},
    options: ChorusOptions = {},
  ) {
    this.config = config;
    this.clock = clock;
    this.instanceId = newUlid();
    this.#ownsKv = ownsKv;
    this.store = new Store(kv, { limits: { checks: config.kvMaxChecks }, clock });
    if (options.workersChannel) {
      // Product writes are handed over whole, every other commit as its intent.
      this.#writer = new OneWriter(
        { channel: options.workersChannel, id: this.instanceId, clock },
        (op, args) => {
          if (op === "commit") return this.store.serveHandedOver(args[0] as Intent);
          if (op.startsWith("kv.")) return this.kv.serveHandedOver(op, args);
          if (op.startsWith("reels.")) return this.reels.serveHandedOver(op, args);
          if (op.startsWith("users.")) return this.users.serveHandedOver(op, args);
          if (op.startsWith("contexts.")) return this.contexts.serveHandedOver(op, args);
          throw new ChorusError("internal", `Cannot run "${op}" for another worker: unknown`);
        },
      );
      this.store.handOverTo(this.#writer);
    }
    this.#watch = new WatchHub(kv, {
      clock,
      probeKey: watchProbeKey(this.instanceId),
      maxLagMs: config.leaderMaxLagMs,
    });
    this.registry = new Registry({ store: this.store, watch: this.#watch, clock, config });
    this.#handOver = this.#writer && new HandOver(this.#writer, this.registry);
    this.registry.define("kv", (id, ctx) => new KvActor(id, ctx));
    this.kv = new KvApi({
      registry: this.registry,
      store: this.store,
      config,
      clock,
      handOver: this.#handOver,
    });
    this.registry.define("context", (id, ctx) => new ContextActor(id, ctx));
    this.contexts = new ContextsApi({
      registry: this.registry,
      store: this.store,
      config,
      clock,
      instanceId: this.instanceId,
      formats: createDeltaFormats(options.deltaFormats),
      exportProvider: resolveExportProvider(this.store, config, options.exportProvider),
      handOver: this.#handOver,
    });
    const startedAt = clock.now();
    this.registry.define("reel", (id, ctx) => new ReelActor(id, ctx));
    this.registry.define("user", (id, ctx) => new UserActor(id, ctx));
    this.reels = new ReelsApi({
      registry: this.registry,
      store: this.store,
      config,
      clock,
      handOver: this.#handOver,
    });
    this.users = new UsersApi({
      registry: this.registry,
      store: this.store,
      config,
      clock,
      presenceTtlMs: realtime.presenceTtlMs,
      handOver: this.#handOver,
    });
    const backend = kvBackendOf(options, config);
    this.members = new Members(this.store, clock, {
      id: this.instanceId,
      region: config.region,
      pid: Deno.pid,
      started_at: startedAt,
    }, {
      // Watch does not cross processes on a local SQLite file: while another process shares
      // it, leader reads confirm with KV instead of trusting watch (see docs/consistency.md).
      onList: backend === "sqlite" || backend === "handle"
        ? (members) => this.#watch.setTrusted(members.every((m) => m.pid === Deno.pid))
        : undefined,
    });
    this.tokens = new TokenStore(this.store, clock, config.adminToken);
    // One set of limiters for HTTP and the socket: a token's budget covers both.
    const limits = createLimits(config, clock, this.store);
    // One count of open streams per client address for SSE watches and sockets.
    const streams = new StreamCaps(config.maxStreamsPerClient);
    realtime = {
      ...realtime,
      authenticate: realtime.authenticate ?? socketAuthenticator(this.tokens, config.auth, limits),
      presenceListMax: realtime.presenceListMax ?? config.presenceListMax,
      presenceStatsMs: realtime.presenceStatsMs ?? config.presenceStatsMs,
      streamCaps: realtime.streamCaps ?? streams,
    };
    this.realtime = new ObservedRealtimeServer(
      { store: this.store, watch: this.#watch, clock, instanceId: this.instanceId },
      realtime,
    );
    this.realtime.topics.define(
      "kv",
      kvTopic({ kv: this.kv }),
    );
    this.realtime.topics.define("context", contextTopic(this.contexts));
    this.realtime.topics.define("reel", reelTopic({ reels: this.reels, users: this.users }));
    this.realtime.topics.define("user", userTopic(this.users));
    const figures = systemFigures({
      store: this.store,
      config,
      instanceId: this.instanceId,
      startedAt,
      now: () => clock.now(),
      realtime: this.realtime,
      registry: this.registry,
      reels: this.reels,
    });
    this.realtime.topics.define(
      "system",
      systemTopic({
        clock,
        intervalMs: realtime.systemIntervalMs,
        // The same figures as GET /api/v1/system/stats.
        stats: figures.stats,
      }),
    );
    this.metrics = new Metrics({
      store: this.store,
      actors: this.registry,
      members: async () => (await this.members.list()).length,
      compression: compressionStatsOf(config),
      siblings: options.metricsChannel
        ? { channel: options.metricsChannel, id: this.instanceId }
        : undefined,
      sockets: () => this.realtime.stats(),
      extra: () => ({
        chorus_cleanup_runs_total: this.contexts.cleanupTotals.runs,
        chorus_cleanup_contexts_removed_total: this.contexts.cleanupTotals.contexts,
        chorus_cleanup_deltas_removed_total: this.contexts.cleanupTotals.deltas,
        // Workers of one process on one KV file write through one of them (one_writer.ts).
        chorus_writes_handed_over_total: this.#handOver?.counts.handedOver ?? 0,
        chorus_writes_taken_over_total: this.#handOver?.counts.takenOver ?? 0,
        chorus_commit_intents_handed_over_total: this.store.stats.handedOver,
        chorus_commit_intents_taken_over_total: this.store.stats.takenOver,
      }),
    });
    this.#publishStatus(options.statusIntervalMs ?? STATUS_INTERVAL_MS, figures.stats);
    this.app = createApp({
      clock,
      tokens: this.tokens,
      metrics: this.metrics,
      config,
      store: this.store,
      kv: this.kv,
      reels: this.reels,
      users: this.users,
      registry: this.registry,
      members: this.members,
      kvBackend: backend,
      contexts: this.contexts,
      realtime: this.realtime,
      instanceId: this.instanceId,
      startedAt,
      figures,
      limits,
      streams,
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
      kv = await openKv(options.path ?? config.kvPath);
    }
    const chorus = new Chorus(
      kv,
      owns,
      config,
      options.clock ?? systemClock,
      options.realtime,
      options,
    );
    try {
      await chorus.contexts.scheduler.start(options.scheduler ?? "timer");
      await chorus.members.start();
      if (config.auth) {
        const first = await chorus.tokens.bootstrap();
        if (first) {
          log.notice(
            `chorus: auth is on and no CHORUS_ADMIN_TOKEN is set; this admin token is shown once:\n${first}`,
          );
        } else if (!config.adminToken) {
          // Made by an earlier start (one made a moment ago was printed by a sibling worker).
          const at = await chorus.tokens.bootstrappedAt();
          if (at !== null && clockOf(options).now() - at > 60_000) {
            log.notice(
              "chorus: auth is on; the first admin token was shown when this store was created. " +
                "To make another: deno task cli token create --scopes admin (with the same CHORUS_KV), " +
                "or set CHORUS_ADMIN_TOKEN",
            );
          }
        }
      }
    } catch (e) {
      await chorus.close();
      throw e;
    }
    return chorus;
  }

  /** Publishes `chorus:status` every `everyMs` while it has subscribers, until `close`. */
  #publishStatus(everyMs: number, figures: () => Record<string, unknown>): void {
    this.#statusTimer = this.clock.setTimeout(() => {
      if (this.#closed) return;
      if (telemetry.status.hasSubscribers) {
        try {
          telemetry.status.publish({
            instance: this.instanceId,
            at: this.clock.now(),
            figures: figures(),
          });
        } catch (error) {
          log.warn("chorus:status telemetry failed; trying again at the next interval", { error });
        }
      }
      this.#publishStatus(everyMs, figures);
    }, everyMs);
  }

  /** A fetch handler for `Deno.serve`, `deno serve` and Deno Deploy. */
  fetch = (request: Request, info?: Deno.ServeHandlerInfo): Response | Promise<Response> =>
    this.app.fetch(request, info);

  /**
   * Finishes queued work, stops watches and timers, and closes KV if this instance opened it.
   * Sockets are closed first with `socketCode` (1001 going away, or 1012 when draining for a
   * restart; never 1000, after which phoenix ≤ 1.8.15 clients stay away) and their presence removed.
   */
  async close(options: { socketCode?: 1001 | 1012 } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#statusTimer !== undefined) this.clock.clearTimeout(this.#statusTimer);
    this.#writer?.leave(); // another worker writes from now on, if this one did
    await this.realtime.close({ code: options.socketCode ?? 1001 });
    await this.contexts.scheduler.close();
    await this.reels.close();
    await this.members.stop();
    await this.registry.close();
    await this.#writer?.close();
    this.metrics.close();
    this.store.close();
    this.#watch.close();
    if (this.#ownsKv) this.store.kv.close();
  }
}

function clockOf(options: ChorusOptions): Clock {
  return options.clock ?? systemClock;
}

/** Which KV the instance runs on, for `GET /api/v1/status`. */
function kvBackendOf(options: ChorusOptions, config: ResolvedConfig): string {
  if (options.kv) return "handle";
  const path = options.path ?? config.kvPath;
  if (path === undefined) return "deno-deploy";
  if (path === ":memory:") return "memory";
  return isKvConnect(path) ? "kv-connect" : "sqlite";
}
