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
export { ChorusError, ERROR_STATUS, type ErrorCode } from "./errors.ts";
export { type Clock, ManualClock, systemClock, type TimerId } from "./clock.ts";
export {
  type Compression,
  ConfigError,
  loadConfig,
  type LoadConfigOptions,
  type ResolvedConfig,
} from "./config.ts";
export type { Members } from "./storage/members.ts";
export type { Store } from "./storage/store.ts";
export type { Registry } from "./actors/registry.ts";
export type { TokenStore } from "./auth/tokens.ts";
export type { Metrics } from "./observability/metrics.ts";
export type {
  MetricAggregate,
  MetricFamily,
  MetricSample,
} from "./observability/metric_families.ts";
export type { OutboxOptions, OutboxPriority } from "./realtime/outbox.ts";
export type { SessionSink, SocketCounters, SocketSession } from "./realtime/socket.ts";
export type { PresenceTracker } from "./realtime/presence/mod.ts";
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
export {
  type Authenticated,
  type RealtimeOptions,
  RealtimeServer,
  type RealtimeStats,
} from "./realtime/server.ts";
export {
  type JoinContext,
  type JoinResult,
  type Publish,
  type SocketAccess,
  type SocketInfo,
  TopicError,
  type TopicHandler,
  type TopicMatch,
  type TopicMessage,
  TopicRegistry,
} from "./realtime/topics.ts";
export type { PresenceDiff, PresenceMap, PresenceMeta } from "./realtime/presence/mod.ts";
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
export { channelTopic, ID_PATTERN, idText, validateId } from "./actors/reel_api.ts";
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
  ReelUpdateListJson,
} from "./proto/codec.ts";
export type { Consistency } from "./config.ts";
export type {
  ChordDelta,
  ChordMarker,
  Json,
  JsonObject,
  JsonPatch,
  JsonPatchOperation,
} from "./deltas/mod.ts";
export { INTERACTION_TYPES } from "./actors/reel_api.ts";
export type { CleanupState } from "./contexts/scheduler.ts";
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
