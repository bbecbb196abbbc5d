/**
 * Metric families as plain data: what one instance's figures look like when they travel between
 * the workers of `deno serve --parallel`, how several instances' families merge into one set for
 * the whole server, and how a set is written in the Prometheus text format. Pure: no timers, no
 * channels, no registry.
 * @module
 */

/** How the samples of one family combine across instances. */
export type MetricAggregate = "sum" | "max";

/** One sample line: `name{labels} value`. */
export interface MetricSample {
  /** The sample's name: the family name, or `<family>_bucket|_sum|_count` for a histogram. */
  name: string;
  /** Label names and values, in the order they are written. */
  labels: Record<string, string>;
  /** The value (`Infinity` is written `+Inf`). */
  value: number;
}

/** One metric family: `# HELP`, `# TYPE` and its samples. */
export interface MetricFamily {
  /** The family name (`chorus_kv_commits_total`). */
  name: string;
  /** The help text. */
  help: string;
  /** The Prometheus type. */
  type: "counter" | "gauge" | "histogram";
  /**
   * How instances combine: `sum` for counters, histograms and per-instance gauges; `max` for a
   * figure every instance of a process reports alike (the process's RSS, the live members).
   */
  aggregate: MetricAggregate;
  /** The samples. */
  samples: MetricSample[];
}

function sampleKey(sample: MetricSample): string {
  const names = Object.keys(sample.labels).sort();
  let key = sample.name;
  for (const n of names) key += `\u0000${n}\u0001${sample.labels[n]}`;
  return key;
}

/**
 * Merges the families of several instances into one set: samples with the same name and labels
 * are summed (or the largest kept, for a `max` family); a sample only some instances have is
 * kept as it is. Families keep the order in which they were first seen, samples too.
 */
export function mergeFamilies(sets: MetricFamily[][]): MetricFamily[] {
  const families = new Map<string, { family: MetricFamily; index: Map<string, MetricSample> }>();
  for (const set of sets) {
    for (const f of set) {
      let slot = families.get(f.name);
      if (!slot) {
        slot = { family: { ...f, samples: [] }, index: new Map() };
        families.set(f.name, slot);
      }
      const max = slot.family.aggregate === "max";
      for (const s of f.samples) {
        const key = sampleKey(s);
        const seen = slot.index.get(key);
        if (!seen) {
          const copy = { name: s.name, labels: s.labels, value: s.value };
          slot.index.set(key, copy);
          slot.family.samples.push(copy);
        } else seen.value = max ? Math.max(seen.value, s.value) : seen.value + s.value;
      }
    }
  }
  return [...families.values()].map((s) => s.family);
}

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function formatValue(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return Number.isNaN(value) ? "NaN" : String(value);
}

/** Writes families in the Prometheus text format (version 0.0.4). */
export function renderFamilies(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
      const braces = labels.length ? `{${labels.join(",")}}` : "";
      lines.push(`${s.name}${braces} ${formatValue(s.value)}`);
    }
  }
  return lines.length ? `${lines.join("\n")}\n` : "";
}
