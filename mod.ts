/**
 * Chorus for embedding programs: open an instance on a Deno KV handle and use its products in
 * process, with no HTTP in between, or serve its Hono `app`.
 *
 * @example
 * ```ts
 * import { Chorus } from "./mod.ts";
 * const chorus = await Chorus.open({ path: ":memory:" });
 * const { version } = await chorus.kv.put("counter", 1);
 * await chorus.kv.incr("counter", { by: 2 });
 * await chorus.close();
 * ```
 * @module
 */
export { Chorus, type ChorusOptions } from "./chorus.ts";
export { ChorusError, type ErrorCode } from "./errors.ts";
export { type Clock, ManualClock, systemClock } from "./clock.ts";
export { ConfigError, loadConfig, type ResolvedConfig } from "./config.ts";
export type {
  KvApi,
  KvChange,
  KvListPage,
  KvPutOptions,
  KvValue,
  KvWriteResult,
} from "./actors/kv_api.ts";
