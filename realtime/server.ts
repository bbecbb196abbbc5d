/**
 * The real-time server of one instance: upgrades `GET /socket/websocket`, owns the sessions, the
 * topic registry, fan-out hubs and presence, closes idle sockets, and on shutdown closes every
 * socket with 1001 (or 1012) so clients come back (docs/socket.md, "Close codes").
 * @module
 */
import type { StreamCaps } from "../auth/stream_caps.ts";
import { addressOf } from "../auth/rate_limit.ts";
import { newUlid } from "../random.ts";
import type { Clock, TimerId } from "../clock.ts";
import type { Store } from "../storage/store.ts";
import type { WatchHub } from "../storage/watch.ts";
import { log, throttledWarn } from "../log.ts";
import { CLOSE_GOING_AWAY, CLOSE_POLICY_VIOLATION } from "./phoenix.ts";
import { Fanout } from "./fanout.ts";
import { PresenceTracker } from "./presence/mod.ts";
import {
  type SessionDeps,
  type SessionSink,
  type SocketCounters,
  SocketSession,
} from "./socket.ts";
import { type SocketAccess, type SocketRateLimit, TopicRegistry } from "./topics.ts";
import { ChorusError } from "../errors.ts";
import type { OutboxOptions } from "./outbox.ts";

/** Settings of the real-time server; every one has a default. */
export interface RealtimeOptions {
  /** A socket with no incoming data this long is closed. Default 60 s (Phoenix's timeout). */
  idleTimeoutMs?: number;
  /** Presence entry TTL: a dead instance's presence vanishes within it. Default 30 s. */
  presenceTtlMs?: number;
  /** Presence log retention. Default 10 min. */
  presenceLogTtlMs?: number;
  /** Window over which presence changes are merged into one `presence_diff`. Default 50 ms; 0: none. */
  presenceDiffMs?: number;
  /** About the most bytes in one `presence_diff` frame (`PresenceOptions.diffMaxBytes`). Default 4,096. */
  presenceDiffMaxBytes?: number;
  /**
   * About the most bytes in one `presence_state` frame (`PresenceOptions.stateMaxBytes`, read its
   * caveat). Default unlimited.
   */
  presenceStateMaxBytes?: number;
  /**
   * Members above which a topic sends `presence_stats` counts instead of lists
   * (`PresenceOptions.listMax`). Default 200.
   */
  presenceListMax?: number;
  /**
   * Above `presenceListMax`, the least time between two `presence_stats` broadcasts of a topic
   * (`PresenceOptions.statsMs`). Default 500 ms.
   */
  presenceStatsMs?: number;
  /**
   * Most `presence_stats` frames a second one topic sends from this instance: bigger topics send
   * their count less often than `presenceStatsMs` (`PresenceOptions.statsFramesPerSecond`).
   * Default 10,000.
   */
  presenceStatsFramesPerSecond?: number;
  /** Interval of `system_stats`. Default 5 s. */
  systemIntervalMs?: number;
  /** Largest incoming frame in bytes (bigger: close 1009). Default 1 MiB. */
  maxFrameBytes?: number;
  /** Most channels per socket. Default 100. */
  maxChannels?: number;
  /**
   * Caps the sockets (with SSE streams) one client address holds open; absent: no cap.
   * @internal Set by `Chorus.open` from `CHORUS_MAX_STREAMS_PER_CLIENT`.
   */
  streamCaps?: StreamCaps;
  /** Per-socket outbound bounds (Outbox): `maxBytes` (1 MiB), `overLimitMs` (5 s), `hardLimitBytes`. */
  outbox?: Omit<OutboxOptions, "clock" | "onSlow">;
  /** Whether joins are tracked in presence. Default true. */
  presence?: boolean;
  /**
   * Decides who a connecting socket is, from its params: the seam for token auth. Return null to
   * refuse with 401 `unauthorized` (as HTTP refuses a bad token), or throw a `ChorusError` to
   * refuse with its status and headers (401 `unauthorized`, 429 `rate_limited`). Default: everyone, as the `user_id` param (or anonymous).
   */
  authenticate?: (
    params: Record<string, string>,
    request?: Request,
  ) => Authenticated | null | Promise<Authenticated | null>;
  /** How often sockets' credentials are checked again (revocation, expiry). Default 2 s. */
  revalidateMs?: number;
}

/** Who a socket is, as decided by {@linkcode RealtimeOptions.authenticate}. */
export interface Authenticated {
  /** The user presence is keyed by (null: the socket id). */
  userId: string | null;
  /** What the socket may join and push; absent = everything. */
  access?: SocketAccess;
  /** The rate limit its joins and pushes count against; absent = none. */
  limit?: SocketRateLimit;
}

/** What the server needs from its instance. */
export interface RealtimeDeps {
  /** Storage (presence). */
  store: Store;
  /** Watch fan-in (presence logs). */
  watch: WatchHub;
  /** Time source. */
  clock: Clock;
  /** This instance's id. */
  instanceId: string;
}

/** Counters and gauges of the real-time server. */
export interface RealtimeStats extends SocketCounters {
  /** Open sockets. */
  sockets: number;
  /** Topics with sockets on this instance. */
  topics: number;
}

/** One instance's WebSocket endpoint. */
export class RealtimeServer {
  /** Topic prefixes → handlers; products add theirs with `topics.define`. */
  readonly topics = new TopicRegistry();
  /** Presence of this instance's sockets (null when disabled). */
  readonly presence: PresenceTracker | null;
  readonly #fanout: Fanout;
  readonly #deps: RealtimeDeps;
  readonly #sessionDeps: SessionDeps;
  readonly #sessions = new Set<SocketSession>();
  readonly #counters: SocketCounters = { messagesIn: 0, messagesOut: 0, messagesDropped: 0 };
  readonly #idleMs: number;
  readonly #maxFrameBytes: number;
  readonly #maxChannels: number;
  readonly #streams?: StreamCaps;
  readonly #outbox: Omit<OutboxOptions, "clock" | "onSlow">;
  readonly #authenticate: NonNullable<RealtimeOptions["authenticate"]>;
  #idleTimer?: TimerId;
  #revalidateTimer?: TimerId;
  readonly #revalidateMs: number;
  #closed = false;
  readonly #revalidateWarn: ReturnType<typeof throttledWarn>;

  /** A server over an instance's store, watch fan-in and clock; options have defaults. */
  constructor(deps: RealtimeDeps, options: RealtimeOptions = {}) {
    this.#deps = deps;
    this.#revalidateWarn = throttledWarn(60_000, () => deps.clock.now());
    this.#idleMs = options.idleTimeoutMs ?? 60_000;
    this.#maxFrameBytes = options.maxFrameBytes ?? 1024 * 1024;
    this.#maxChannels = options.maxChannels ?? 100;
    this.#streams = options.streamCaps;
    this.#outbox = options.outbox ?? {};
    this.#revalidateMs = options.revalidateMs ?? 2000;
    this.#authenticate = options.authenticate ??
      ((params) => ({ userId: params.user_id || null }));
    this.presence = options.presence === false ? null : new PresenceTracker({
      store: deps.store,
      watch: deps.watch,
      clock: deps.clock,
      instanceId: deps.instanceId,
      ttlMs: options.presenceTtlMs,
      logTtlMs: options.presenceLogTtlMs,
      diffMs: options.presenceDiffMs,
      diffMaxBytes: options.presenceDiffMaxBytes,
      stateMaxBytes: options.presenceStateMaxBytes,
      listMax: options.presenceListMax,
      statsMs: options.presenceStatsMs,
      statsFramesPerSecond: options.presenceStatsFramesPerSecond,
    });
    const presence = this.presence;
    this.#fanout = new Fanout(async (hub, match) => {
      if (!presence || match.handler.presence === false) return () => {};
      const view = await presence.view(hub.topic, (m) => hub.publish(m, true));
      hub.presence = view;
      return () => view.stop();
    });
    // One object shared by every session (a live event holds thousands).
    this.#sessionDeps = {
      topics: this.topics,
      fanout: this.#fanout,
      presence,
      clock: deps.clock,
      counters: this.#counters,
      maxFrameBytes: this.#maxFrameBytes,
      maxChannels: this.#maxChannels,
      outbox: this.#outbox,
      onEnd: (s) => this.#sessions.delete(s),
      onTransportClose: (s, code, reason) =>
        this.transportClosed(s, code, reason, deps.clock.now() - s.openedAt),
    };
  }

  /**
   * Called when a session's transport reports that it closed (with its close code and reason, and
   * how long it was open), whoever closed it; a subclass observes drops here. Nothing by default.
   */
  protected transportClosed(
    _session: SocketSession,
    _code: number,
    _reason: string,
    _durationMs: number,
  ): void {}

  /** Live counters: sockets, topics, messages in/out/dropped. */
  stats(): RealtimeStats {
    return { ...this.#counters, sockets: this.#sessions.size, topics: this.#fanout.topics };
  }

  /** The open sessions (for tests and stats). */
  sessions(): SocketSession[] {
    return [...this.#sessions];
  }

  /**
   * Answers `GET /socket/websocket`: checks the params, upgrades, and starts a session. Echoes the
   * `phoenix` subprotocol when offered. 400 without an upgrade, 403 for a bad `vsn`, 401 when
   * authentication fails.
   */
  async upgrade(request: Request): Promise<Response> {
    if (this.#closed) return problem(503, "unavailable", "Cannot open a socket: shutting down");
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return problem(400, "invalid_request", "Cannot open a socket: expected a WebSocket upgrade");
    }
    const params = Object.fromEntries(new URL(request.url).searchParams);
    const vsn = params.vsn ?? "2.0.0";
    if (!/^2\./.test(vsn)) {
      return problem(
        403,
        "forbidden",
        `Cannot open a socket with vsn "${vsn}": this server speaks 2.0.0`,
      );
    }
    const format = params.format === "protobuf" ? "protobuf" : "json";
    let who: Authenticated | null;
    try {
      who = await this.#authenticate(params, request);
    } catch (e) {
      if (!(e instanceof ChorusError)) throw e;
      return problem(e.status, e.code, e.message, e.headers, e.details);
    }
    if (!who) return problem(401, "unauthorized", "Cannot open a socket: not authorized");
    let release: (() => void) | undefined;
    try {
      release = this.#streams?.acquire(addressOf(request));
    } catch (e) {
      if (!(e instanceof ChorusError)) throw e;
      return problem(e.status, e.code, e.message, e.headers, e.details);
    }
    const offered = (request.headers.get("sec-websocket-protocol") ?? "").split(",").map((s) =>
      s.trim()
    );
    // The idle sweep is the liveness check: Deno's own ping (`idleTimeout`) would re-arm a timer
    // on every incoming frame of every socket. Kept only when the sweep is off.
    const upgradeOptions: Deno.UpgradeWebSocketOptions = Number.isFinite(this.#idleMs)
      ? { idleTimeout: 0 }
      : {};
    if (offered.includes("phoenix")) upgradeOptions.protocol = "phoenix";
    const { socket, response } = Deno.upgradeWebSocket(request, upgradeOptions);
    socket.binaryType = "arraybuffer";
    const session = this.attach(socket, params, {
      format,
      userId: who.userId,
      access: who.access,
      limit: who.limit,
      release,
    });
    // The session is the socket's listener: no handler closure per event and socket. No error
    // listener: a failed socket also closes, and the close ends the session.
    socket.addEventListener("message", session);
    socket.addEventListener("close", session);
    return response;
  }

  /**
   * Starts a session on any transport (a WebSocket, or a fake sink in tests).
   * @param options.format `json` (default) or `protobuf`
   * @param options.userId the authenticated user, else the `user_id` param
   * @param options.access what the socket may join and push (absent: everything)
   * @param options.limit the rate limit of its joins and pushes (absent: none)
   * @param options.release called once when the session ends
   */
  attach(
    sink: SessionSink,
    params: Record<string, string> = {},
    options: {
      format?: "json" | "protobuf";
      userId?: string | null;
      access?: SocketAccess;
      limit?: SocketRateLimit;
      release?: () => void;
    } = {},
  ): SocketSession {
    const session = new SocketSession(
      sink,
      {
        id: flatId(),
        userId: options.userId !== undefined ? options.userId : params.user_id || null,
        params: Object.freeze({ ...params }),
        access: options.access,
        limit: options.limit,
      },
      options.format ?? "json",
      this.#sessionDeps,
      options.release,
    );
    this.#sessions.add(session);
    this.#armIdle();
    if (options.access) this.#armRevalidate();
    return session;
  }

  /**
   * Checks every authenticated socket's credentials again; a socket whose token was revoked or
   * expired has its channels closed (`phx_close`) and may join nothing more. Returns how many.
   */
  async revalidate(): Promise<number> {
    let n = 0;
    for (const session of [...this.#sessions]) {
      const access = session.info.access;
      if (!access || session.revoked) continue;
      const valid = await access.valid().catch((error) => {
        this.#revalidateWarn(
          "socket credentials not rechecked; the socket keeps them until next time",
          {
            error,
            socket: session.info.id,
          },
        );
        return true;
      });
      if (!valid) {
        session.revoke();
        n++;
      }
    }
    return n;
  }

  #armRevalidate(): void {
    if (this.#revalidateTimer !== undefined || this.#closed) return;
    this.#revalidateTimer = this.#deps.clock.setTimeout(() => {
      this.revalidate().finally(() => {
        this.#revalidateTimer = undefined;
        if ([...this.#sessions].some((s) => s.info.access && !s.revoked)) this.#armRevalidate();
      });
    }, this.#revalidateMs);
  }

  /** Closes sockets with no incoming data for the idle timeout; returns how many. */
  sweepIdle(): number {
    const now = this.#deps.clock.now();
    let n = 0;
    for (const session of this.#sessions) {
      if (now - session.lastIncoming >= this.#idleMs) {
        session.close(CLOSE_GOING_AWAY, "idle timeout");
        n++;
      }
    }
    return n;
  }

  #armIdle(): void {
    if (this.#idleTimer !== undefined || this.#closed) return;
    this.#idleTimer = this.#deps.clock.setTimeout(() => {
      this.#idleTimer = undefined;
      this.sweepIdle();
      if (this.#sessions.size) this.#armIdle();
    }, Math.max(10, Math.floor(this.#idleMs / 4)));
  }

  /**
   * Closes every socket with `code` (1001 going away by default, 1012 when draining for a
   * restart: both make clients reconnect; never 1000), removes their presence everywhere, and
   * stops the feeds. With `untrack: false` presence is left to expire (as after a crash).
   */
  async close(options: { code?: number; reason?: string; untrack?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idleTimer !== undefined) this.#deps.clock.clearTimeout(this.#idleTimer);
    if (this.#revalidateTimer !== undefined) this.#deps.clock.clearTimeout(this.#revalidateTimer);
    const code = options.code ?? CLOSE_GOING_AWAY;
    if (code === 1000) log.warn("closing sockets with 1000: phoenix ≤ 1.8.15 will not reconnect");
    const sessions = [...this.#sessions];
    for (const s of sessions) s.close(code, options.reason ?? "server shutting down");
    if (options.untrack !== false) await Promise.allSettled(sessions.map((s) => s.settled()));
    await this.presence?.close({ untrack: options.untrack });
    this.#fanout.close();
  }
}

/** The policy close code, re-exported for callers that refuse a socket after the upgrade. */
export const CLOSE_POLICY = CLOSE_POLICY_VIOLATION;

function problem(
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
  details?: Record<string, unknown>,
): Response {
  return Response.json({ error: details ? { code, message, details } : { code, message } }, {
    status,
    headers,
  });
}

/**
 * A new socket id: a ULID as one flat string. A ULID is built by concatenation, which
 * V8 keeps as a tree of pieces (about 200 bytes); every session holds its id for its lifetime.
 */
function flatId(): string {
  return newUlid().split("").join("");
}
