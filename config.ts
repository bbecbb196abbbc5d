/**
 * Configuration: every `CHORUS_*` variable is parsed and validated once, at start, into a fully
 * defaulted {@linkcode ResolvedConfig} that is passed down. This is the only reader of `Deno.env`
 * (through {@linkcode loadConfig}'s argument), so a bad value stops the start with one clear line.
 * @module
 */

/** Read consistency modes (docs/consistency.md). */
export type Consistency = "strong" | "leader" | "eventual";
/** Value compression algorithms. */
export type Compression = "off" | "gzip" | "deflate";

/** The resolved, fully defaulted configuration. */
export interface ResolvedConfig {
  /** HTTP port (`CHORUS_PORT`, default 8000). */
  port: number;
  /** Address `deno task start` listens on (`CHORUS_HOST`, default 0.0.0.0). */
  host: string;
  /** Where the CLI keeps backup files (`CHORUS_BACKUP_DIR`, default ./data/backups). */
  backupDir: string;
  /** True on Deno Deploy (`DENO_DEPLOYMENT_ID` is set): no local KV file. */
  deploy: boolean;
  /** KV path, `:memory:` or a KV Connect URL (`CHORUS_KV`); undefined = the platform default. */
  kvPath: string | undefined;
  /** Default read consistency (`CHORUS_READ_CONSISTENCY`, default `leader`). */
  readConsistency: Consistency;
  /** Largest accepted request body in bytes (`CHORUS_MAX_BODY`, default 1 MiB). */
  maxBody: number;
  /** A write answered later than this gets 504 (`CHORUS_REQUEST_TIMEOUT`, default 30 s). */
  requestTimeoutMs: number;
  /** Value compression (`CHORUS_COMPRESSION`, default gzip). */
  compression: Compression;
  /** Compression level 0–9 (`CHORUS_COMPRESSION_LEVEL`, default 6). */
  compressionLevel: number;
  /** Values at least this many bytes are compressed (`CHORUS_COMPRESSION_THRESHOLD`, 1024). */
  compressionThreshold: number;
  /** An actor idle this long is evicted (`CHORUS_ACTOR_IDLE_MS`, default 60 s). */
  actorIdleMs: number;
  /**
   * How far a `leader` read may trail another instance's write (`CHORUS_LEADER_MAX_LAG`, default
   * 100ms): the bound on watch lag within which a watched cache is served without a KV read.
   */
  leaderMaxLagMs: number;
  /**
   * Whether the workers of one `deno serve --parallel` process on a local KV file write through
   * one of them (`CHORUS_ONE_WRITER`, default on; `main.ts` reads it). Off: every worker writes
   * itself, waiting on the others' SQLite locks and finding their writes in its cache.
   */
  oneWriter: boolean;
  /**
   * How long a stop (SIGTERM, SIGINT) may take to finish in-flight work, flush pending view windows
   * and presence, and close sockets before the process exits anyway (`CHORUS_SHUTDOWN_TIMEOUT`,
   * default 10s).
   */
  shutdownTimeoutMs: number;
  /**
   * Members above which a socket topic sends `presence_stats` counts instead of presence lists
   * (`CHORUS_PRESENCE_LIST_MAX`, default 200; see docs/socket.md).
   */
  presenceListMax: number;
  /**
   * Above that, the least time between two `presence_stats` broadcasts of a topic
   * (`CHORUS_PRESENCE_STATS_INTERVAL`, default 500 ms; 0: every diff window where the count moved).
   */
  presenceStatsMs: number;
  /**
   * SSE watch streams and sockets one client address may hold open at once on an instance
   * (`CHORUS_MAX_STREAMS_PER_CLIENT`, default 256; 0: no cap). Over it: 429.
   */
  maxStreamsPerClient: number;
  /** Most checks one atomic commit may carry (`CHORUS_KV_MAX_CHECKS`; 100, or 10 for KV Connect). */
  kvMaxChecks: number;
  /** How long a kv change-log entry is kept for watchers catching up (`CHORUS_KV_LOG_TTL`, 10 min). */
  kvLogTtlMs: number;
  /** Deltas kept per context (`CHORUS_DELTA_THRESHOLD`, default 100). */
  deltaThreshold: number;
  /** How long a delta is kept (`CHORUS_DELTA_TTL`, default 24 h). */
  deltaTtlMs: number;
  /** A context untouched this long is expired (`CHORUS_CONTEXT_TTL`, default 6 h). */
  contextTtlMs: number;
  /** Whether expired contexts are deleted by cleanup (`CHORUS_CONTEXT_AUTO_DELETE`, false). */
  contextAutoDelete: boolean;
  /** Export provider (`CHORUS_EXPORT_PROVIDER`: kv, http; default kv). */
  exportProvider: "kv" | "http";
  /** Base URL of the http export provider (`CHORUS_EXPORT_URL`). */
  exportUrl: string | undefined;
  /** Whether requests need a token (`CHORUS_AUTH`; off under `deno task dev`, on elsewhere). */
  auth: boolean;
  /** Bootstrap admin token (`CHORUS_ADMIN_TOKEN`; see {@linkcode checkAdminToken}). */
  adminToken: string | undefined;
  /** Token required by `GET /metrics` when set (`CHORUS_METRICS_TOKEN`). */
  metricsToken: string | undefined;
  /** Allowed browser origins (`CHORUS_CORS_ORIGINS`, comma separated, exact). */
  corsOrigins: string[];
  /** Requests per second per token/IP (`CHORUS_RATE_LIMIT`; undefined = no limit). */
  rateLimit: number | undefined;
  /** Burst size of the rate limiter (`CHORUS_RATE_BURST`, default = the rate). */
  rateBurst: number | undefined;
  /** `local` (per instance) or `global` (shared KV counter) (`CHORUS_RATE_LIMIT_SCOPE`). */
  rateLimitScope: "local" | "global";
  /** Region reported in status and member heartbeats (`CHORUS_REGION` or `DENO_REGION`). */
  region: string;
  /** Lowest log level written (`CHORUS_LOG_LEVEL`, default info). */
  logLevel: "debug" | "info" | "warn" | "error";
}

/** A bad configuration value; the message names the variable. */
export class ConfigError extends Error {
  /** An error whose message names the variable and the value that was refused. */
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE = /^(\d+)(b|kib|kb|mib|mb)?$/i;
const UNIT_BYTES: Record<string, number> = {
  b: 1,
  kib: 1024,
  kb: 1000,
  mib: 1024 * 1024,
  mb: 1_000_000,
};

/**
 * Parses a duration such as `90s`, `6h`, `500ms`; a bare number means seconds, or milliseconds for a
 * variable whose name ends in `_MS`.
 * @throws {ConfigError} when the text is not a duration
 */
export function parseDuration(name: string, text: string): number {
  const m = DURATION.exec(text.trim());
  if (!m) throw new ConfigError(`${name}="${text}" is not a duration (e.g. 90s, 6h, 500ms)`);
  // A variable whose name says milliseconds (CHORUS_ACTOR_IDLE_MS) reads a bare number as ms.
  const bare = name.endsWith("_MS") ? "ms" : "s";
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? bare]);
}

function parseSize(name: string, text: string): number {
  const m = SIZE.exec(text.trim());
  if (!m) throw new ConfigError(`${name}="${text}" is not a size in bytes (e.g. 1048576, 1MiB)`);
  const bytes = Number(m[1]) * UNIT_BYTES[(m[2] ?? "b").toLowerCase()];
  if (bytes < 1) throw new ConfigError(`${name}="${text}" must be at least 1 byte`);
  return bytes;
}

function parseInteger(name: string, text: string, min: number, max: number): number {
  const n = Number(text.trim());
  if (!/^-?\d+$/.test(text.trim()) || n < min || n > max) {
    throw new ConfigError(`${name}="${text}" must be an integer from ${min} to ${max}`);
  }
  return n;
}

function parsePositive(name: string, text: string): number {
  const n = Number(text.trim());
  if (text.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new ConfigError(`${name}="${text}" must be a positive number`);
  }
  return n;
}

function parseBool(name: string, text: string): boolean {
  const t = text.trim().toLowerCase();
  if (["1", "true", "on", "yes"].includes(t)) return true;
  if (["0", "false", "off", "no"].includes(t)) return false;
  throw new ConfigError(`${name}="${text}" must be on or off`);
}

function parseChoice<T extends string>(name: string, text: string, choices: readonly T[]): T {
  const t = text.trim().toLowerCase() as T;
  if (!choices.includes(t)) {
    throw new ConfigError(`${name}="${text}" must be one of ${choices.join(", ")}`);
  }
  return t;
}

/** Fewest characters of `CHORUS_ADMIN_TOKEN`. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;

/**
 * Checks the strength of an admin token: at least {@linkcode MIN_ADMIN_TOKEN_LENGTH} characters,
 * from at least two of the classes lowercase letters, uppercase letters, digits and other
 * characters (`openssl rand -hex 32`, `openssl rand -base64 32` and the tokens Chorus prints all
 * qualify). The message never repeats the token.
 * @throws {ConfigError} naming `name` when the token is too weak
 */
export function checkAdminToken(name: string, token: string): string {
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^a-zA-Z0-9]/].filter((c) => c.test(token)).length;
  if (token.length < MIN_ADMIN_TOKEN_LENGTH || classes < 2) {
    throw new ConfigError(
      `${name} is too weak: use at least ${MIN_ADMIN_TOKEN_LENGTH} characters mixing at least two ` +
        `of lowercase letters, uppercase letters, digits and symbols (e.g. openssl rand -hex 32)`,
    );
  }
  return token;
}

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** True under `deno task dev` (also `CHORUS_DEV=1`): auth defaults to off. */
  dev?: boolean;
  /** True on Deno Deploy (also detected from `DENO_DEPLOYMENT_ID`): no default KV path. */
  deploy?: boolean;
}

/** Whether a KV location is a KV Connect URL rather than a file or `:memory:`. */
export function isKvConnect(path: string | undefined): boolean {
  return path !== undefined && /^https?:\/\//.test(path);
}

/**
 * Resolves the configuration from environment variables.
 * @param env the variables (usually `Deno.env.toObject()`)
 * @throws {ConfigError} naming the first bad variable
 */
export function loadConfig(
  env: Record<string, string | undefined>,
  options: LoadConfigOptions = {},
): ResolvedConfig {
  const get = (name: string) => {
    const v = env[name];
    return v === undefined || v.trim() === "" ? undefined : v;
  };
  const opt = <T>(name: string, parse: (name: string, text: string) => T, fallback: T): T => {
    const v = get(name);
    return v === undefined ? fallback : parse(name, v);
  };
  const deploy = options.deploy ?? get("DENO_DEPLOYMENT_ID") !== undefined;
  const dev = options.dev ?? get("CHORUS_DEV") === "1";
  const kvPath = get("CHORUS_KV") ?? (deploy ? undefined : "./data/chorus.kv");
  const isConnect = isKvConnect(kvPath);
  const rateLimit = opt("CHORUS_RATE_LIMIT", parsePositive, undefined as number | undefined);
  const exportProvider = opt(
    "CHORUS_EXPORT_PROVIDER",
    (n, t) => parseChoice(n, t, ["kv", "http"] as const),
    get("CHORUS_EXPORT_URL") ? "http" as const : "kv" as const,
  );
  const exportUrl = get("CHORUS_EXPORT_URL");
  if (exportUrl !== undefined && !URL.canParse(exportUrl)) {
    throw new ConfigError(`CHORUS_EXPORT_URL="${exportUrl}" is not a URL`);
  }
  if (exportProvider === "http" && exportUrl === undefined) {
    throw new ConfigError("CHORUS_EXPORT_PROVIDER=http needs CHORUS_EXPORT_URL");
  }
  const corsOrigins = (get("CHORUS_CORS_ORIGINS") ?? "").split(",").map((s) => s.trim())
    .filter(Boolean);
  for (const origin of corsOrigins) {
    if (!URL.canParse(origin) || new URL(origin).origin !== origin) {
      throw new ConfigError(
        `CHORUS_CORS_ORIGINS has "${origin}", which is not an exact origin such as https://app.example.com`,
      );
    }
  }
  return {
    port: opt("CHORUS_PORT", (n, t) => parseInteger(n, t, 0, 65535), 8000),
    host: get("CHORUS_HOST") ?? "0.0.0.0",
    backupDir: get("CHORUS_BACKUP_DIR") ?? "./data/backups",
    deploy,
    kvPath,
    readConsistency: opt(
      "CHORUS_READ_CONSISTENCY",
      (n, t) => parseChoice(n, t, ["strong", "leader", "eventual"] as const),
      "leader",
    ),
    maxBody: opt("CHORUS_MAX_BODY", parseSize, 1024 * 1024),
    requestTimeoutMs: opt("CHORUS_REQUEST_TIMEOUT", parseDuration, 30_000),
    compression: opt(
      "CHORUS_COMPRESSION",
      (n, t) => parseChoice(n, t, ["off", "gzip", "deflate"] as const),
      "gzip",
    ),
    compressionLevel: opt("CHORUS_COMPRESSION_LEVEL", (n, t) => parseInteger(n, t, 0, 9), 6),
    compressionThreshold: opt(
      "CHORUS_COMPRESSION_THRESHOLD",
      (n, t) => parseInteger(n, t, 0, 1 << 30),
      1024,
    ),
    actorIdleMs: opt("CHORUS_ACTOR_IDLE_MS", parseDuration, 60_000),
    leaderMaxLagMs: opt("CHORUS_LEADER_MAX_LAG", parseDuration, 100),
    oneWriter: opt("CHORUS_ONE_WRITER", parseBool, true),
    shutdownTimeoutMs: opt("CHORUS_SHUTDOWN_TIMEOUT", parseDuration, 10_000),
    maxStreamsPerClient: opt(
      "CHORUS_MAX_STREAMS_PER_CLIENT",
      (n, t) => parseInteger(n, t, 0, 10_000_000),
      256,
    ),
    presenceListMax: opt(
      "CHORUS_PRESENCE_LIST_MAX",
      (n, t) => parseInteger(n, t, 1, 1_000_000),
      200,
    ),
    presenceStatsMs: opt("CHORUS_PRESENCE_STATS_INTERVAL", parseDuration, 500),
    kvMaxChecks: opt(
      "CHORUS_KV_MAX_CHECKS",
      (n, t) => parseInteger(n, t, 1, 100),
      isConnect ? 10 : 100,
    ),
    kvLogTtlMs: opt("CHORUS_KV_LOG_TTL", parseDuration, 600_000),
    deltaThreshold: opt("CHORUS_DELTA_THRESHOLD", (n, t) => parseInteger(n, t, 1, 100_000), 100),
    deltaTtlMs: opt("CHORUS_DELTA_TTL", parseDuration, 86_400_000),
    contextTtlMs: opt("CHORUS_CONTEXT_TTL", parseDuration, 6 * 3_600_000),
    contextAutoDelete: opt("CHORUS_CONTEXT_AUTO_DELETE", parseBool, false),
    exportProvider,
    exportUrl,
    auth: opt("CHORUS_AUTH", parseBool, !dev),
    adminToken: opt("CHORUS_ADMIN_TOKEN", checkAdminToken, undefined as string | undefined),
    metricsToken: get("CHORUS_METRICS_TOKEN"),
    corsOrigins,
    rateLimit,
    rateBurst: opt("CHORUS_RATE_BURST", parsePositive, rateLimit),
    rateLimitScope: opt(
      "CHORUS_RATE_LIMIT_SCOPE",
      (n, t) => parseChoice(n, t, ["local", "global"] as const),
      "local",
    ),
    region: get("CHORUS_REGION") ?? get("DENO_REGION") ?? "local",
    logLevel: opt(
      "CHORUS_LOG_LEVEL",
      (n, t) => parseChoice(n, t, ["debug", "info", "warn", "error"] as const),
      "info",
    ),
  };
}
