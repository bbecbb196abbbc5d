/**
 * The server entry for `deno serve` (one worker per core with `--parallel`) and Deno Deploy:
 * resolves the configuration from the environment, opens Chorus and exports its fetch handler.
 * A bad `CHORUS_*` value stops the start with one line naming it.
 * @module
 */
import { Chorus } from "./chorus.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { log, setLogLevel } from "./log.ts";

async function start(): Promise<Chorus> {
  try {
    const config = loadConfig(Deno.env.toObject());
    setLogLevel(config.logLevel);
    // Cleanup ticks with Deno.cron where it exists (Deploy, --unstable-cron), else with a timer.
    return await Chorus.open({ config, scheduler: "cron" });
  } catch (e) {
    if (e instanceof ConfigError) {
      log.notice(`chorus: ${e.message}`);
      Deno.exit(2);
    }
    throw e;
  }
}

const chorus = await start();
log.info("chorus started", { instance: chorus.instanceId, kv: chorus.config.kvPath ?? "default" });

/** The fetch handler `deno serve` and Deno Deploy call. */
export default { fetch: chorus.fetch } satisfies Deno.ServeDefaultExport;
