/**
 * The cleanup scheduler. Its settings (`interval_ms`, `limit`, `enabled`) live in KV, so they are
 * changed at run time from any instance and survive restarts. Every instance ticks — with
 * `Deno.cron` (a fixed one-minute cron: cron schedules are fixed when registered, so the tick reads
 * the stored schedule) or with a timer on the injected clock — and a run is claimed with an atomic
 * check on the shared "last run" record, so one instance runs each due cleanup. An interval under a
 * minute, which a one-minute cron cannot honour, is kept with the timer in `cron` mode too: while
 * the stored interval is under a minute, each tick arms the timer for the next due run.
 * @module
 */
import type { Clock, TimerId } from "../clock.ts";
import { ChorusError } from "../errors.ts";
import { log } from "../log.ts";
import type { Store } from "../storage/store.ts";
import { CLEANUP_SCHEDULE_KEY, CLEANUP_STATE_KEY } from "../storage/keys.ts";
import { type CleanupResult, DEFAULT_CLEANUP_LIMIT, MAX_CLEANUP_LIMIT } from "./cleanup.ts";

/** The stored schedule, as `GET|PUT /api/v1/admin/cleanup/schedule` shows it. */
export interface CleanupSchedule {
  /** Milliseconds between runs (≥ 1000; under a minute, a timer ticks between cron ticks). */
  interval_ms: number;
  /** Most entries one run removes. */
  limit: number;
  /** Whether scheduled runs happen at all (`POST /admin/cleanup` works either way). */
  enabled: boolean;
}

/** The shared record of the last run. */
export interface CleanupState {
  /** When the last run started (ms since epoch). */
  last_run: number;
  /** The instance that ran it. */
  instance: string;
  /** What it removed, once finished. */
  result?: CleanupResult;
}

/**
 * How the scheduler ticks: `cron` (Deno.cron, one-minute tick; falls back to `timer` when
 * Deno.cron is missing or the name is taken in this isolate), `timer` (the injected clock; what
 * tests use with a ManualClock) or `off` (no scheduled runs on this instance).
 */
export type SchedulerMode = "cron" | "timer" | "off";

/** The schedule used until one is stored. */
export const DEFAULT_SCHEDULE: Readonly<CleanupSchedule> = Object.freeze({
  interval_ms: 3_600_000,
  limit: DEFAULT_CLEANUP_LIMIT,
  enabled: true,
});
/** Longest wait between two ticks in `timer` mode, so changes made elsewhere are seen. */
export const MAX_TICK_MS = 60_000;
const MIN_INTERVAL_MS = 1000;
const MAX_INTERVAL_MS = 30 * 86_400_000;
/** The Deno.cron name used by the first scheduler of an isolate. */
export const CRON_NAME = "chorus-contexts-cleanup";
const cronNames = new Set<string>();

/** Options of {@linkcode CleanupScheduler}. */
export interface SchedulerOptions {
  /** The KV store holding the shared schedule and the last-run record. */
  store: Store;
  /** The time source for `timer` mode and for the run times it records. */
  clock: Clock;
  /** This instance's id, recorded with the runs it claims. */
  instanceId: string;
  /** Runs one cleanup. */
  run: (limit: number) => Promise<CleanupResult>;
}

/** Checks a partial schedule. @throws {ChorusError} `invalid_request` */
export function validateSchedule(change: Partial<CleanupSchedule>): Partial<CleanupSchedule> {
  const { interval_ms, limit, enabled } = change;
  if (
    interval_ms !== undefined &&
    (!Number.isSafeInteger(interval_ms) || interval_ms < MIN_INTERVAL_MS ||
      interval_ms > MAX_INTERVAL_MS)
  ) {
    throw new ChorusError(
      "invalid_request",
      `Cannot set interval_ms ${interval_ms}: use an integer from ${MIN_INTERVAL_MS} to ${MAX_INTERVAL_MS}`,
    );
  }
  if (
    limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_CLEANUP_LIMIT)
  ) {
    throw new ChorusError(
      "invalid_request",
      `Cannot set limit ${limit}: use an integer from 1 to ${MAX_CLEANUP_LIMIT}`,
    );
  }
  if (enabled !== undefined && typeof enabled !== "boolean") {
    throw new ChorusError("invalid_request", `Cannot set enabled ${enabled}: use true or false`);
  }
  return change;
}

/** Ticks, reads the stored schedule, and runs cleanup when it is due. */
export class CleanupScheduler {
  readonly #options: SchedulerOptions;
  #mode: SchedulerMode = "off";
  #timer?: TimerId;
  #abort?: AbortController;
  #cronName?: string;
  #ticking?: Promise<void>;
  #closed = false;
  /** Runs this instance has made. */
  runs = 0;
  /** The outcome of this instance's last run. */
  lastResult?: CleanupResult;

  /** Creates a stopped scheduler; call {@linkcode CleanupScheduler.start} to begin ticking. */
  constructor(options: SchedulerOptions) {
    this.#options = options;
  }

  /** The mode in force (after any fallback). */
  get mode(): SchedulerMode {
    return this.#mode;
  }

  /** Starts ticking in `mode`. */
  async start(mode: SchedulerMode): Promise<void> {
    if (mode === "cron" && !this.#startCron()) mode = "timer";
    this.#mode = mode;
    if (mode !== "off") {
      const schedule = await this.schedule();
      if (this.#timed(schedule.interval_ms)) this.#arm(Math.min(schedule.interval_ms, MAX_TICK_MS));
    }
  }

  #startCron(): boolean {
    const cron = (Deno as { cron?: typeof Deno.cron }).cron;
    if (typeof cron !== "function") return false;
    let name = CRON_NAME;
    for (let i = 2; cronNames.has(name); i++) name = `${CRON_NAME}-${i}`;
    this.#abort = new AbortController();
    try {
      cron(name, "* * * * *", { signal: this.#abort.signal }, () => this.tick());
    } catch (e) {
      log.warn("cleanup cron not registered; using a timer", { error: e });
      return false;
    }
    cronNames.add(name);
    this.#cronName = name;
    return true;
  }

  /** The stored schedule, or the default. */
  async schedule(): Promise<CleanupSchedule> {
    const entry = await this.#options.store.get<CleanupSchedule>(CLEANUP_SCHEDULE_KEY);
    return { ...DEFAULT_SCHEDULE, ...entry.value };
  }

  /** The shared record of the last run, if any. */
  async state(): Promise<CleanupState | null> {
    return (await this.#options.store.get<CleanupState>(CLEANUP_STATE_KEY)).value;
  }

  /**
   * Changes the stored schedule (any subset of fields) for every instance; this instance re-arms
   * at once, others see it on their next tick.
   * @throws {ChorusError} `invalid_request` for a bad value
   */
  async setSchedule(change: Partial<CleanupSchedule>): Promise<CleanupSchedule> {
    validateSchedule(change);
    for (let attempt = 0; attempt < 10; attempt++) {
      const entry = await this.#options.store.get<CleanupSchedule>(CLEANUP_SCHEDULE_KEY);
      const next: CleanupSchedule = { ...DEFAULT_SCHEDULE, ...entry.value };
      if (change.interval_ms !== undefined) next.interval_ms = change.interval_ms;
      if (change.limit !== undefined) next.limit = change.limit;
      if (change.enabled !== undefined) next.enabled = change.enabled;
      const done = await this.#options.store.commit({
        checks: [{ key: CLEANUP_SCHEDULE_KEY, versionstamp: entry.versionstamp }],
        mutations: [{ type: "set", key: CLEANUP_SCHEDULE_KEY, value: next }],
        bytes: 256,
      });
      if (done.ok) {
        if (this.#timed(next.interval_ms)) this.#arm(Math.min(next.interval_ms, MAX_TICK_MS));
        return next;
      }
    }
    throw new ChorusError("conflict", "Cannot set the cleanup schedule: too many writers, retry");
  }

  /**
   * One tick: reads the schedule and, when enabled and due, claims and runs a cleanup.
   * Ticks do not overlap; a tick during another returns the one under way.
   */
  tick(): Promise<void> {
    this.#ticking ??= this.#tick().catch((e) => {
      log.warn("cleanup tick failed", { error: e });
    }).finally(() => this.#ticking = undefined);
    return this.#ticking;
  }

  /** Resolves when the tick under way (if any) has finished. */
  async settled(): Promise<void> {
    while (this.#ticking) await this.#ticking;
  }

  async #tick(): Promise<void> {
    if (this.#closed) return;
    const { store, clock } = this.#options;
    const schedule = await this.schedule();
    const now = clock.now();
    let wait = schedule.interval_ms;
    if (schedule.enabled) {
      const state = await store.get<CleanupState>(CLEANUP_STATE_KEY);
      const last = state.value?.last_run;
      const due = last === undefined ? now : last + schedule.interval_ms;
      if (due <= now && !this.#closed) {
        const claim: CleanupState = { last_run: now, instance: this.#options.instanceId };
        const claimed = await store.commit({
          checks: [{ key: CLEANUP_STATE_KEY, versionstamp: state.versionstamp }],
          mutations: [{ type: "set", key: CLEANUP_STATE_KEY, value: claim }],
          bytes: 256,
        });
        if (claimed.ok) {
          const result = await this.#options.run(schedule.limit);
          this.runs++;
          this.lastResult = result;
          await store.commit({
            checks: [{ key: CLEANUP_STATE_KEY, versionstamp: claimed.versionstamp }],
            mutations: [{ type: "set", key: CLEANUP_STATE_KEY, value: { ...claim, result } }],
            bytes: 256,
          });
        }
      } else wait = due - now;
    }
    if (this.#timed(schedule.interval_ms)) this.#arm(Math.min(wait, MAX_TICK_MS));
  }

  /**
   * Whether the timer drives the next tick: always in `timer` mode; in `cron` mode when the
   * interval is under the cron's minute.
   */
  #timed(intervalMs: number): boolean {
    if (this.#closed) return false;
    return this.#mode === "timer" || (this.#mode === "cron" && intervalMs < MAX_TICK_MS);
  }

  #arm(ms: number): void {
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = this.#options.clock.setTimeout(() => {
      this.#timer = undefined;
      this.tick();
    }, Math.max(1, ms));
  }

  /** Stops ticking (the cron is aborted, the timer cleared) and waits for a tick under way. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort?.abort();
    if (this.#cronName) cronNames.delete(this.#cronName);
    await this.settled();
  }
}
