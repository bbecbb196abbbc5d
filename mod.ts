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
export { type RealtimeOptions, RealtimeServer, type RealtimeStats } from "./realtime/server.ts";
export {
  type JoinContext,
  type JoinResult,
  type Publish,
  type SocketInfo,
  TopicError,
  type TopicHandler,
  type TopicMessage,
  TopicRegistry,
} from "./realtime/topics.ts";
export type { PresenceDiff, PresenceMap, PresenceMeta } from "./realtime/presence.ts";
export type {
  CleanupResult,
  ContextEvent,
  ContextsApi,
  ContextSnapshot,
  ContextValue,
  DeltaEntry,
  DeltaList,
  ExportResult,
  PatchType,
  RestoreResult,
  SyncResult,
} from "./actors/context_api.ts";
export { type ExportProvider, httpExportProvider, kvExportProvider } from "./contexts/export.ts";
export {
  type CleanupSchedule,
  CleanupScheduler,
  type SchedulerMode,
} from "./contexts/scheduler.ts";
export {
  chordFormat,
  createDeltaFormats,
  type DeltaFormat,
  jsonPatchFormat,
  mergePatchFormat,
} from "./deltas/format.ts";
export type {
  CommentPage,
  InteractionInput,
  InteractionResult,
  InteractionType,
  PublishInput,
  PublishResult,
  ReelComment,
  ReelEvent,
  ReelsApi,
  ReelStats,
  UpdateList,
} from "./actors/reel_api.ts";
export { ID_PATTERN, validateId } from "./actors/reel_api.ts";
export type {
  PresenceInput,
  PresenceStatus,
  ReelPresence,
  ReelViewer,
  UserFeedEntry,
  UserPresence,
  UsersApi,
} from "./actors/user_api.ts";
export type {
  InteractionJson,
  PresenceUpdateJson,
  Priority,
  ReelStateJson,
  ReelUpdateJson,
} from "./proto/codec.ts";
