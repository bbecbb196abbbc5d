/**
 * The structured logger: one JSON line per event. The only module that writes to the console, so
 * output stays machine-readable and secrets are kept out in one place.
 * @module
 */

/** Log levels in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

let threshold: LogLevel = "info";

/** Sets the lowest level that is written (from `CHORUS_LOG_LEVEL`). */
export function setLogLevel(level: LogLevel): void {
  threshold = level;
}

function write(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
  if (RANK[level] < RANK[threshold]) return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields }, (
    _k,
    v,
  ) => v instanceof Error ? { name: v.name, message: v.message, stack: v.stack } : v);
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
}

/**
 * Returns a `warn` that writes at most one line per `everyMs` (default 60 s), for background
 * failures that could repeat per request or per event. A line written after skipped ones carries
 * `suppressed`: how many were skipped since the last line.
 * @param everyMs the shortest gap between two lines
 * @param now the time in ms (pass the injected clock's `now`)
 */
export function throttledWarn(
  everyMs = 60_000,
  now: () => number = Date.now,
): (message: string, fields?: Record<string, unknown>) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (message, fields) => {
    const t = now();
    if (t - last < everyMs) {
      suppressed++;
      return;
    }
    last = t;
    write("warn", message, suppressed ? { ...fields, suppressed } : fields);
    suppressed = 0;
  };
}

/** Writes structured log lines; fields are merged into the JSON object. */
export const log = {
  debug: (message: string, fields?: Record<string, unknown>) => write("debug", message, fields),
  info: (message: string, fields?: Record<string, unknown>) => write("info", message, fields),
  warn: (message: string, fields?: Record<string, unknown>) => write("warn", message, fields),
  error: (message: string, fields?: Record<string, unknown>) => write("error", message, fields),
  /** Prints a plain line to stderr (start-up messages meant for a person, such as a new token). */
  notice: (text: string) => console.error(text),
};
