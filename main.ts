/**
 * The server entry for `deno serve` (one worker per core with `--parallel`) and Deno Deploy:
 * resolves the configuration from the environment, opens Chorus and exports its fetch handler.
 * A bad `CHORUS_*` value stops the start with one line naming it. SIGTERM and SIGINT stop it
 * gracefully (see {@linkcode stopOnSignals}).
 * @module
 */
import { Chorus } from "./chorus.ts";
import { ConfigError, isKvConnect, loadConfig } from "./config.ts";
import { resolve } from "node:path";
import { log, setLogLevel } from "./log.ts";

async function start(): Promise<Chorus> {
  try {
    const config = loadConfig(Deno.env.toObject());
    setLogLevel(config.logLevel);
    // Cleanup ticks with Deno.cron where it exists (Deploy, --unstable-cron), else with a timer.
    // Workers of one `deno serve --parallel` process share a BroadcastChannel: each /metrics
    // scrape sums them all. On Deploy the channel would span isolates that come and go: not there.
    const deploy = Deno.env.get("DENO_DEPLOYMENT_ID") !== undefined;
    const metricsChannel = deploy ? undefined : "chorus:metrics";
    // Workers on one local KV file write through one of them (see storage/one_writer.ts); the
    // channel is named after the file, so servers on other files in the process stay apart.
    const local = !deploy && config.kvPath !== undefined && config.kvPath !== ":memory:" &&
      !isKvConnect(config.kvPath);
    const workersChannel = local && config.oneWriter
      ? `chorus:workers:${resolve(config.kvPath!)}`
      : undefined;
    return await Chorus.open({ config, scheduler: "cron", metricsChannel, workersChannel });
  } catch (e) {
    if (e instanceof ConfigError) {
      log.notice(`chorus: ${e.message}`);
      Deno.exit(2);
    }
    // One readable line, not a stack trace (e.g. a KV path that cannot be opened).
    log.notice(`chorus: cannot start: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}

/**
 * On SIGTERM (what systemd, Docker and Kubernetes send) or SIGINT: `deno serve` stops accepting
 * and lets in-flight requests finish; this closes Chorus — pending view windows and presence
 * leaves are written, sockets are closed with 1001 so clients reconnect elsewhere — logs one line,
 * and exits, at the latest after `CHORUS_SHUTDOWN_TIMEOUT`. Without it the process would stay up,
 * held by Chorus's timers and watches. Where signals cannot be listened to (Deno Deploy), the
 * platform stops the isolate itself.
 */
function stopOnSignals(chorus: Chorus): void {
  let stopping = false;
  const stop = async (signal: Deno.Signal) => {
    if (stopping) return;
    stopping = true;
    const started = performance.now();
    const ms = chorus.config.shutdownTimeoutMs;
    const deadline = setTimeout(() => {
      log.warn("chorus stopped before its work was finished: CHORUS_SHUTDOWN_TIMEOUT ran out", {
        signal,
        timeout_ms: ms,
      });
      Deno.exit(1);
    }, ms);
    Deno.unrefTimer(deadline); // the deadline alone must not keep the process up
    let failed = false;
    try {
      await chorus.close({ socketCode: 1001 });
    } catch (error) {
      failed = true;
      log.error("chorus could not finish its work while stopping", { error, signal });
    }
    clearTimeout(deadline);
    log.info("chorus stopped", {
      signal,
      instance: chorus.instanceId,
      ms: Math.round(performance.now() - started),
    });
    // No Deno.exit on success: under --parallel that would end the whole process while a sibling
    // worker is still writing its pending views. With Chorus closed nothing holds the event loop,
    // so the process ends by itself once every worker is done.
    if (failed) Deno.exit(1);
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    try {
      Deno.addSignalListener(signal, () => void stop(signal));
    } catch {
      // No signals here (Deno Deploy): the platform ends the isolate.
    }
  }
}

const chorus = await start();
stopOnSignals(chorus);
log.info("chorus started", {
  instance: chorus.instanceId,
  kv: chorus.config.kvPath ?? "default",
  auth: chorus.config.auth ? "on" : "off",
});

/** The fetch handler `deno serve` and Deno Deploy call. */
export default { fetch: chorus.fetch } satisfies Deno.ServeDefaultExport;
