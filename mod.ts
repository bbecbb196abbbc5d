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
export { Chorus, type ChorusApp, type ChorusOptions } from "./chorus.ts";
export { ChorusError, ERROR_STATUS, type ErrorCode } from "./errors.ts";
export { type Clock, ManualClock, systemClock, type TimerId } from "./clock.ts";
export {
  type Compression,
  ConfigError,
  type Consistency,
  loadConfig,
  type LoadConfigOptions,
  type ResolvedConfig,
} from "./config.ts";
export type {
  KvApi,
  KvCallOptions,
  KvChange,
  KvListedEntry,
  KvListPage,
  KvPutOptions,
  KvValue,
  KvWriteResult,
} from "./actors/kv_api.ts";
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
export { type ExportProvider, httpExportProvider } from "./contexts/export.ts";
export {
  type CleanupSchedule,
  CleanupScheduler,
  type CleanupState,
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
  ChordDelta,
  ChordMarker,
  Json,
  JsonObject,
  JsonPatch,
  JsonPatchOperation,
} from "./deltas/mod.ts";
export {
  type CommentPage,
  INTERACTION_TYPES,
  type InteractionInput,
  type InteractionResult,
  type InteractionType,
  type PublishInput,
  type PublishResult,
  type ReelComment,
  type ReelEvent,
  type ReelsApi,
  type ReelStats,
  type UpdateList,
} from "./actors/reel_api.ts";
export type {
  InteractionJson,
  Priority,
  ReelStateJson,
  ReelUpdateJson,
} from "./actors/reel_types.ts";
export type {
  PresenceInput,
  PresenceStatus,
  ReelPresence,
  ReelViewer,
  UserFeedEntry,
  UserPresence,
  UsersApi,
} from "./actors/user_api.ts";
export type { PresenceUpdateJson } from "./actors/user_types.ts";
export type { Authenticated, RealtimeOptions } from "./realtime/server.ts";
export type { SocketAccess, SocketRateLimit } from "./realtime/topics.ts";
export type { OutboxClock, OutboxOptions } from "./realtime/outbox.ts";
export {
  type ActorEvictEvent,
  type ActorStartEvent,
  type ActorStartFailedEvent,
  type BackupEvent,
  type CleanupEvent,
  type CommitEvent,
  type KvReadEvent,
  type KvWriteEvent,
  type PresenceEvent,
  type SocketConnectEvent,
  type SocketDropEvent,
  type SocketJoinEvent,
  type SocketLeaveEvent,
  type StatusEvent,
  TELEMETRY_CHANNELS,
  type TelemetryChannel,
} from "./observability/telemetry.ts";
export { SPAN_NAMES } from "./observability/tracing.ts";
export type { Store } from "./storage/store.ts";
export type { CompressionReport, CompressionStats } from "./storage/codec.ts";
export {
  type BackupCheck,
  type BackupHeader,
  type BackupReadOptions,
  type BackupSource,
  createBackup,
  restoreBackup,
  verifyBackup,
} from "./storage/backup.ts";
