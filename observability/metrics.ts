/**
 * Prometheus metrics for `GET /metrics`: HTTP durations by route and status, KV commit counts,
 * conflicts and latency, live actors, mailbox depth, sockets and messages, members, memory and
 * value compression. Gauges and counters are read from the live objects at scrape time, so the
 * hot paths only pay for the HTTP histogram. Under `deno serve --parallel` one scrape sums the
 * figures of every worker (see {@linkcode MetricsSiblings} and docs/deployment.md).
 * @module
 */
import { Counter, Gauge, Registry as PromRegistry } from "prom-client";
import { COMMIT_BUCKETS_MS, type Store } from "../storage/store.ts";
import type { Registry } from "../actors/registry.ts";
import type { CompressionStats } from "../storage/codec.ts";
import {
  mergeFamilies,
  type MetricAggregate,
  type MetricFamily,
  renderFamilies,
} from "./metric_families.ts";
import { MetricsSiblings } from "./metrics_siblings.ts";

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
  /** Live members of the cluster (every instance on this KV), read at scrape time. */
  members?: () => Promise<number>;
  /** The instance's value compression totals. */
  compression?: CompressionStats;
  /**
   * Sum the figures of every worker of this process into each scrape: the `BroadcastChannel`
   * name the workers share, and this worker's id. Absent: this instance's figures only.
   */
  siblings?: { channel: string; id: string; timeoutMs?: number };
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

/** Each method's place in a series' slot number; any other method is {@linkcode METHOD_OTHER}. */
const METHOD_INDEX = new Map([...HTTP_METHODS].map((m, i) => [m, i]));
const METHOD_OTHER = HTTP_METHODS.size;
const METHOD_SLOTS = HTTP_METHODS.size + 1;

/** A status's part of a series' slot number: the code when it has its own label, else 0. */
function statusSlot(status: number): number {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? status : 0;
}

interface HttpSeries {
  method: string;
  route: string;
  status: string;
  /** Requests whose duration fell in each bucket (not cumulative; rendering adds them up). */
  buckets: number[];
  sum: number;
  count: number;
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
  /** The same series by route, then by status and method ({@linkcode Metrics.observe}). */
  readonly #byRoute = new Map<string, Map<number, HttpSeries>>();
  readonly #store: Store;
  readonly #siblings?: MetricsSiblings;

  /**
   * Registers every metric; gauges read `sources` when `/metrics` is scraped. With
   * `sources.siblings` it joins the workers' channel (leave it with {@linkcode close}).
   */
  constructor(sources: MetricsSources) {
    const r = this.registry;
    this.#store = sources.store;
    if (sources.siblings) {
      this.#siblings = new MetricsSiblings({
        ...sources.siblings,
        families: () => this.families(),
      });
    }
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
    new Gauge({
      name: "chorus_kv_commit_last_seconds",
      help: "Latency of the last KV commit (the slowest worker's)",
      registers: [r],
      aggregator: "max",
      collect() {
        this.set(stats.lastCommitMs / 1000);
      },
    });
    new Gauge({
      name: "chorus_actors_live",
      help: "Live actors by kind",
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
        help: "Topics with subscribers (a topic open on two workers counts twice)",
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
    if (sources.members) {
      const members = sources.members;
      new Gauge({
        name: "chorus_members",
        help: "Live instances on this KV (member heartbeats), every process and worker",
        registers: [r],
        aggregator: "max",
        async collect() {
          this.set(await members());
        },
      });
    }
    new Gauge({
      name: "chorus_memory_rss_bytes",
      help: "Resident set size of the process",
      registers: [r],
      aggregator: "max",
      collect() {
        this.set(Deno.memoryUsage().rss);
      },
    });
    new Gauge({
      name: "chorus_memory_heap_used_bytes",
      help: "V8 heap in use (summed over workers)",
      registers: [r],
      collect() {
        this.set(Deno.memoryUsage().heapUsed);
      },
    });
    if (sources.compression) {
      const c = sources.compression;
      totalCounter(r, "chorus_values_encoded_total", "Values encoded for storage", () => c.values);
      totalCounter(
        r,
        "chorus_values_compressed_total",
        "Values stored compressed",
        () => c.compressed,
      );
      totalCounter(
        r,
        "chorus_value_bytes_before_total",
        "Bytes of encoded values before compression (JSON text)",
        () => c.bytesBefore,
      );
      totalCounter(
        r,
        "chorus_value_bytes_after_total",
        "Bytes of encoded values as stored",
        () => c.bytesAfter,
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
   * (see {@linkcode routeLabel}), never a raw path. A request builds no strings: series are found
   * by route, then by a number made of the status and the method's place in {@linkcode HTTP_METHODS},
   * and only the bucket the duration falls in is counted (rendering makes the buckets cumulative).
   */
  observe(method: string, route: string, status: number, seconds: number): void {
    const slot = statusSlot(status) * METHOD_SLOTS + (METHOD_INDEX.get(method) ?? METHOD_OTHER);
    const series = this.#byRoute.get(route)?.get(slot) ??
      this.#newSeries(method, route, status, slot);
    let i = 0;
    while (i < HTTP_BUCKETS.length && seconds > HTTP_BUCKETS[i]) i++;
    if (i < HTTP_BUCKETS.length) series.buckets[i]++;
    series.sum += seconds;
    series.count++;
  }

  /**
   * The series of a label set seen for the first time. Once {@linkcode MAX_HTTP_SERIES} are kept,
   * a new label set counts in its `overflow` series and is not remembered by route (so the index
   * stays bounded too; such requests take this slower path each time).
   */
  #newSeries(method: string, route: string, status: number, slot: number): HttpSeries {
    const m = methodLabel(method);
    const st = statusLabel(status);
    const key = `${m} ${st} ${route}`;
    if (this.#http.size >= MAX_HTTP_SERIES && !this.#http.has(key)) {
      return this.#seriesOf(`${m} ${st} overflow`, m, "overflow", st);
    }
    const series = this.#seriesOf(key, m, route, st);
    let slots = this.#byRoute.get(route);
    if (!slots) this.#byRoute.set(route, slots = new Map());
    slots.set(slot, series);
    return series;
  }

  #seriesOf(key: string, method: string, route: string, status: string): HttpSeries {
    let series = this.#http.get(key);
    if (!series) {
      series = { method, route, status, buckets: HTTP_BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.#http.set(key, series);
    }
    return series;
  }

  /** This instance's figures as metric families (what a sibling sends, what `render` writes). */
  async families(): Promise<MetricFamily[]> {
    const name = "chorus_http_request_duration_seconds";
    const http: MetricFamily = {
      name,
      help: "HTTP request duration by route and status",
      type: "histogram",
      aggregate: "sum",
      samples: [],
    };
    for (const s of this.#http.values()) {
      const labels = { method: s.method, route: s.route, status: s.status };
      let below = 0;
      HTTP_BUCKETS.forEach((le, i) =>
        http.samples.push({
          name: `${name}_bucket`,
          labels: { le: String(le), ...labels },
          value: below += s.buckets[i],
        })
      );
      http.samples.push(
        { name: `${name}_bucket`, labels: { le: "+Inf", ...labels }, value: s.count },
        { name: `${name}_sum`, labels, value: s.sum },
        { name: `${name}_count`, labels, value: s.count },
      );
    }
    const stats = this.#store.stats;
    const kv = "chorus_kv_commit_duration_seconds";
    const commits: MetricFamily = {
      name: kv,
      help: "Latency of atomic KV commits",
      type: "histogram",
      aggregate: "sum",
      samples: COMMIT_BUCKETS_MS.map((ms, i) => ({
        name: `${kv}_bucket`,
        labels: { le: String(ms / 1000) },
        value: stats.commitBuckets[i],
      })),
    };
    commits.samples.push(
      { name: `${kv}_bucket`, labels: { le: "+Inf" }, value: stats.commits },
      { name: `${kv}_sum`, labels: {}, value: stats.commitMs / 1000 },
      { name: `${kv}_count`, labels: {}, value: stats.commits },
    );
    const out = [http, commits];
    for (const m of await this.registry.getMetricsAsJSON()) {
      const type = String(m.type);
      out.push({
        name: m.name,
        help: m.help,
        type: type === "counter" ? "counter" : type === "histogram" ? "histogram" : "gauge",
        aggregate: (m.aggregator === "max" ? "max" : "sum") as MetricAggregate,
        samples: m.values.map((v) => ({
          name: (v as { metricName?: string }).metricName ?? m.name,
          labels: Object.fromEntries(
            Object.entries(v.labels).map(([k, l]) => [k, String(l)]),
          ),
          value: v.value,
        })),
      });
    }
    return out;
  }

  /**
   * The Prometheus text exposition: this instance's figures, or with siblings the whole process's
   * (counters and histograms summed over the workers, gauges summed or the largest taken), plus
   * `chorus_workers`, how many workers are in the figures.
   */
  async render(): Promise<string> {
    if (!this.#siblings) return renderFamilies(await this.families());
    const gathered = await this.#siblings.gather();
    const merged = mergeFamilies(gathered.sets);
    merged.push({
      name: "chorus_workers",
      help: "Workers in these figures: answered this scrape (fresh) or from their last answer",
      type: "gauge",
      aggregate: "sum",
      samples: [
        { name: "chorus_workers", labels: { state: "fresh" }, value: 1 + gathered.fresh },
        { name: "chorus_workers", labels: { state: "cached" }, value: gathered.cached },
      ],
    });
    return renderFamilies(merged);
  }

  /** Leaves the workers' channel, if joined. */
  close(): void {
    this.#siblings?.close();
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
