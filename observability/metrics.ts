/**
 * Prometheus metrics for `GET /metrics`: HTTP durations by route and status, KV commit counts,
 * conflicts and latency, live actors, mailbox depth, sockets and messages. Gauges and counters
 * are read from the live objects at scrape time, so the hot paths only pay for the HTTP
 * histogram.
 * @module
 */
import { Counter, Gauge, Registry as PromRegistry } from "prom-client";
import { COMMIT_BUCKETS_MS, type Store } from "../storage/store.ts";
import type { Registry } from "../actors/registry.ts";

/** Where metric values come from. */
export interface MetricsSources {
  store: Store;
  actors: Registry;
  /** Socket figures, when the real-time server runs. */
  sockets?: () => {
    sockets: number;
    topics: number;
    messagesIn: number;
    messagesOut: number;
    messagesDropped: number;
  };
  /** Extra counters (e.g. cleanup removals), by name → value. */
  extra?: () => Record<string, number>;
}

/** A counter whose value is read from a running total at scrape time. */
function totalCounter(
  registry: PromRegistry,
  name: string,
  help: string,
  read: () => number,
): Counter {
  let last = 0;
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = read();
      if (now > last) this.inc(now - last);
      last = Math.max(last, now);
    },
  });
}

/** Upper bounds (seconds) of the HTTP duration histogram's buckets. */
export const HTTP_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
];

/** The HTTP methods that get their own `method` label; any other is counted as `other`. */
export const HTTP_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "PATCH",
  "DELETE",
  "OPTIONS",
]);

/**
 * Most HTTP series kept. Labels already come from bounded sets (7 methods + `other`, the app's
 * route patterns, status codes 100–599 + `other`); past this many series, new ones are folded into
 * the route `overflow` so that no input can grow `/metrics` without bound.
 */
export const MAX_HTTP_SERIES = 2000;

/** The `method` label: the method itself when standard, else `other` (methods are client input). */
export function methodLabel(method: string): string {
  return HTTP_METHODS.has(method) ? method : "other";
}

/** The `status` label: an HTTP status code 100–599, else `other`. */
export function statusLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? String(status) : "other";
}

interface HttpSeries {
  method: string;
  route: string;
  status: string;
  buckets: number[];
  sum: number;
  count: number;
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** The metrics of one instance. */
export class Metrics {
  /** The prom-client registry (text format via `render`). */
  readonly registry = new PromRegistry();
  /**
   * The HTTP histogram is kept here rather than in prom-client: observing is on every request's
   * path, and a map lookup plus a bucket walk costs a fraction of labelled prom-client observes.
   */
  readonly #http = new Map<string, HttpSeries>();
  readonly #store: Store;

  /** Registers every metric; gauges read `sources` when `/metrics` is scraped. */
  constructor(sources: MetricsSources) {
    const r = this.registry;
    this.#store = sources.store;
    const stats = sources.store.stats;
    totalCounter(r, "chorus_kv_commits_total", "Atomic commits sent to KV", () => stats.commits);
    totalCounter(
      r,
      "chorus_kv_intents_total",
      "Writes committed (group commit)",
      () => stats.intents,
    );
    totalCounter(
      r,
      "chorus_kv_conflicts_total",
      "Commits refused by a versionstamp check",
      () => stats.conflicts,
    );
    totalCounter(r, "chorus_kv_reads_total", "Reads sent to KV", () => stats.reads);
    totalCounter(
      r,
      "chorus_kv_commit_seconds_sum",
      "Total time spent in KV commits",
      () => stats.commitMs / 1000,
    );
    new Gauge({
      name: "chorus_kv_commit_last_seconds",
      help: "Latency of the last KV commit",
      registers: [r],
      collect() {
        this.set(stats.lastCommitMs / 1000);
      },
    });
    new Gauge({
      name: "chorus_actors_live",
      help: "Live actors on this instance by kind",
      labelNames: ["kind"],
      registers: [r],
      collect() {
        this.reset();
        for (const [kind, n] of Object.entries(sources.actors.counts())) this.set({ kind }, n);
      },
    });
    new Gauge({
      name: "chorus_mailbox_depth",
      help: "Messages queued in actor mailboxes",
      registers: [r],
      collect() {
        this.set(sources.actors.mailboxDepth());
      },
    });
    totalCounter(
      r,
      "chorus_actors_evicted_total",
      "Idle actors evicted",
      () => sources.actors.evicted,
    );
    if (sources.sockets) {
      const sockets = sources.sockets;
      new Gauge({
        name: "chorus_sockets",
        help: "Open WebSockets",
        registers: [r],
        collect() {
          this.set(sockets().sockets);
        },
      });
      new Gauge({
        name: "chorus_socket_topics",
        help: "Topics with subscribers on this instance",
        registers: [r],
        collect() {
          this.set(sockets().topics);
        },
      });
      totalCounter(
        r,
        "chorus_messages_in_total",
        "Socket frames received",
        () => sockets().messagesIn,
      );
      totalCounter(
        r,
        "chorus_messages_out_total",
        "Socket frames sent",
        () => sockets().messagesOut,
      );
      totalCounter(
        r,
        "chorus_messages_dropped_total",
        "Socket frames dropped (slow consumers)",
        () => sockets().messagesDropped,
      );
    }
    if (sources.extra) {
      const extra = sources.extra;
      for (const name of Object.keys(extra())) {
        totalCounter(r, name, `${name.replaceAll("_", " ")}`, () => extra()[name] ?? 0);
      }
    }
  }

  /**
   * Records one HTTP request. Labels are bounded whatever the client sends: a non-standard method
   * counts as `other`, a status outside 100–599 as `other`, and `route` should be a route pattern
   * (see {@linkcode routeLabel}), never a raw path.
   */
  observe(method: string, route: string, status: number, seconds: number): void {
    const m = methodLabel(method);
    const st = statusLabel(status);
    let key = `${m} ${st} ${route}`;
    let series = this.#http.get(key);
    if (!series) {
      if (this.#http.size >= MAX_HTTP_SERIES) {
        route = "overflow";
        key = `${m} ${st} ${route}`;
        series = this.#http.get(key);
      }
      if (!series) {
        series = {
          method: m,
          route,
          status: st,
          buckets: HTTP_BUCKETS.map(() => 0),
          sum: 0,
          count: 0,
        };
        this.#http.set(key, series);
      }
    }
    for (let i = 0; i < HTTP_BUCKETS.length; i++) {
      if (seconds <= HTTP_BUCKETS[i]) series.buckets[i]++;
    }
    series.sum += seconds;
    series.count++;
  }

  /** The Prometheus text exposition. */
  async render(): Promise<string> {
    const name = "chorus_http_request_duration_seconds";
    const lines = [
      `# HELP ${name} HTTP request duration by route and status`,
      `# TYPE ${name} histogram`,
    ];
    for (const s of this.#http.values()) {
      const labels = `method="${s.method}",route="${escapeLabel(s.route)}",status="${s.status}"`;
      HTTP_BUCKETS.forEach((le, i) =>
        lines.push(`${name}_bucket{le="${le}",${labels}} ${s.buckets[i]}`)
      );
      lines.push(`${name}_bucket{le="+Inf",${labels}} ${s.count}`);
      lines.push(`${name}_sum{${labels}} ${s.sum}`);
      lines.push(`${name}_count{${labels}} ${s.count}`);
    }
    const stats = this.#store.stats;
    const kv = "chorus_kv_commit_duration_seconds";
    lines.push(`# HELP ${kv} Latency of atomic KV commits`, `# TYPE ${kv} histogram`);
    COMMIT_BUCKETS_MS.forEach((ms, i) =>
      lines.push(`${kv}_bucket{le="${ms / 1000}"} ${stats.commitBuckets[i]}`)
    );
    lines.push(`${kv}_bucket{le="+Inf"} ${stats.commits}`);
    lines.push(`${kv}_sum ${stats.commitMs / 1000}`, `${kv}_count ${stats.commits}`);
    return `${lines.join("\n")}\n\n${await this.registry.metrics()}`;
  }

  /** Content type of {@linkcode render}'s output. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * The route label of a request: the matched pattern, not the raw path. A request no route matched
 * gets the pattern of the last middleware it went through (`/api/v1/*`, `/api/*`), or `unmatched`
 * when that is the catch-all `/*`: either way one of the app's finitely many patterns.
 */
export function routeLabel(routePath: string | undefined): string {
  return routePath && routePath !== "/*" ? routePath : "unmatched";
}
