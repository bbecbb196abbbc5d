/**
 * The contexts product as a typed API over context actors: what `chorus.contexts` exposes to
 * embedding programs and what the HTTP routes and the socket's `context:<id>` topic call. It
 * validates input, copies what callers pass in (so they cannot change cached state), picks the
 * read path per consistency mode, and owns export/restore, cleanup and its scheduler.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { frozenJsonCopy } from "../storage/codec.ts";
import type { Clock } from "../clock.ts";
import type { Consistency, ResolvedConfig } from "../config.ts";
import type { Store } from "../storage/store.ts";
import type { Registry } from "./registry.ts";
import type { HandOver } from "./hand_over.ts";
import type { WriterAnswer } from "../storage/one_writer.ts";
import { createDeltaFormats, DEFAULT_DELTA_FORMAT, type DeltaFormat } from "../deltas/format.ts";
import { isJsonObject, type JsonObject } from "../deltas/json.ts";
import { applyJsonPatch, type JsonPatchOperation } from "../deltas/json_patch.ts";
import type { ChordDelta } from "../deltas/chord.ts";
import {
  type ContextActor,
  type ContextEvent,
  contextLifeMs,
  type ContextTx,
  type ContextValue,
  isLiveContext,
  type SyncResult,
} from "./context_actor.ts";
import { loadContext } from "../contexts/layout.ts";
import { type ContextSnapshot, type ExportProvider } from "../contexts/export.ts";
import {
  cleanupContexts,
  type CleanupResult,
  DEFAULT_CLEANUP_LIMIT,
  MAX_CLEANUP_LIMIT,
} from "../contexts/cleanup.ts";
import { CleanupScheduler } from "../contexts/scheduler.ts";

export type { CleanupResult, ContextEvent, ContextSnapshot, ContextValue, SyncResult };

/** How a partial update is written. */
export type PatchType = "merge-patch" | "json-patch";

/** One retained delta as `GET /contexts/:id/deltas` lists it. */
export interface DeltaEntry {
  /** The version the delta applies to. */
  from_version: number;
  /** The version the delta produces. */
  version: number;
  /** The chord delta from `from_version` to `version`. */
  delta: ChordDelta;
  /** When the change was made (ms since epoch). */
  at: number;
}

/** The answer of {@linkcode ContextsApi.deltas}. */
export interface DeltaList {
  /** The context's id. */
  id: string;
  /** The current version. */
  version: number;
  /** The retained deltas after `since`, oldest first and contiguous up to `version`. */
  deltas: DeltaEntry[];
}

/** The answer of {@linkcode ContextsApi.export}. */
export interface ExportResult {
  /** The context's id. */
  id: string;
  /** The version that was saved. */
  version: number;
  /** When the snapshot was taken, in milliseconds since the Unix epoch. */
  exported_at: number;
  /** The provider's name: `kv`, `http` or `custom`. */
  provider: string;
}

/** The answer of {@linkcode ContextsApi.restore}: the context as written, and the snapshot's version. */
export interface RestoreResult extends ContextValue {
  /**
   * The version the snapshot had when it was exported. The restore is a new write, so `version`
   * is the context's new version, not this one.
   */
  restored_version: number;
}

/** Dependencies of {@linkcode ContextsApi}. */
export interface ContextsApiDeps {
  /** Where context actors are found or started. */
  registry: Registry;
  /** The KV store, for loading contexts, cleanup and the scheduler's shared state. */
  store: Store;
  /** The resolved configuration: the default read consistency and the context TTL. */
  config: ResolvedConfig;
  /** The time source for expiry checks, export times and the cleanup scheduler. */
  clock: Clock;
  /** This instance's id (recorded with the cleanup runs it claims). */
  instanceId: string;
  /** Delta formats by name; default: chord, json-patch, merge-patch. */
  formats?: Map<string, DeltaFormat>;
  /** Where exports go; undefined = export and restore fail with `unavailable`. */
  exportProvider?: ExportProvider;
  /**
   * Where writes go when the workers of one process on one KV file write through one of them
   * (see storage/one_writer.ts); the instance routes the writes handed to this one to
   * {@linkcode ContextsApi.serveHandedOver}.
   */
  handOver?: HandOver;
}

/** The context writes that go through the writer. */
type HandedWrite = "set" | "update" | "delete";

const MAX_ID_BYTES = 1024;
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const encoder = new TextEncoder();

/**
 * Checks a context id: 1–1024 bytes of UTF-8, no control characters.
 * @throws {ChorusError} `invalid_request`
 */
export function validateContextId(id: unknown): string {
  if (
    typeof id !== "string" || id.length === 0 || id === "." || id === ".." || CONTROL.test(id) ||
    !id.isWellFormed() ||
    (id.length * 3 > MAX_ID_BYTES && encoder.encode(id).byteLength > MAX_ID_BYTES)
  ) {
    throw new ChorusError(
      "invalid_request",
      `Cannot use context id ${
        JSON.stringify(String(id).slice(0, 64))
      }: use 1 to 1024 bytes of UTF-8 without control characters`,
    );
  }
  return id;
}

/**
 * Checks a client's version: a non-negative integer.
 * @throws {ChorusError} `invalid_request`
 */
export function validateVersion(version: unknown, what = "version"): number {
  if (typeof version !== "number" || !Number.isSafeInteger(version) || version < 0) {
    throw new ChorusError(
      "invalid_request",
      `Cannot use ${what} ${JSON.stringify(version)}: it must be a non-negative integer`,
    );
  }
  return version;
}

interface PendingWrite {
  op: (tx: ContextTx) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

interface PendingGroup {
  writes: PendingWrite[];
  weight: number;
}

/** Most weight of writes coalesced into one mailbox message. */
const GROUP_WEIGHT = 256 * 1024;

/** The contexts product: versioned JSON objects with full/delta/no-change sync. */
export class ContextsApi {
  readonly #deps: ContextsApiDeps;
  readonly #pending = new Map<ContextActor, PendingGroup>();
  /** The delta formats this instance serves, by name (embedders may add their own). */
  readonly formats: Map<string, DeltaFormat>;
  /** The cleanup scheduler (started by `Chorus.open`). */
  readonly scheduler: CleanupScheduler;

  /**
   * Creates the contexts product and its cleanup scheduler. The scheduler is created stopped;
   * nothing is read until the first call.
   */
  constructor(deps: ContextsApiDeps) {
    this.#deps = deps;
    this.formats = deps.formats ?? createDeltaFormats();
    this.scheduler = new CleanupScheduler({
      store: deps.store,
      clock: deps.clock,
      instanceId: deps.instanceId,
      run: (limit) => this.cleanup({ limit }),
    });
  }

  /**
   * Queues a write. Writes to one context made in the same tick go to its mailbox as one message,
   * so a burst of concurrent updates is one group commit rather than "the first alone, then the
   * rest"; each op still succeeds or fails on its own (an op throws before it changes anything).
   */
  #write<R>(actor: ContextActor, op: (tx: ContextTx) => R, weight: number): Promise<R> {
    return new Promise((resolve, reject) => {
      let group = this.#pending.get(actor);
      if (group && group.weight + weight > GROUP_WEIGHT) {
        this.#flush(actor);
        group = undefined;
      }
      if (!group) {
        const created: PendingGroup = { writes: [], weight: 0 };
        group = created;
        this.#pending.set(actor, created);
        queueMicrotask(() => {
          if (this.#pending.get(actor) === created) this.#flush(actor);
        });
      }
      group.writes.push({ op, resolve: resolve as (value: unknown) => void, reject });
      group.weight += weight;
    });
  }

  /** Posts the writes queued for `actor` (before a read, so reads follow this instance's writes). */
  #flush(actor: ContextActor): void {
    const group = this.#pending.get(actor);
    if (!group) return;
    this.#pending.delete(actor);
    const { writes } = group;
    if (writes.length === 1) {
      actor.write(writes[0].op, group.weight).then(writes[0].resolve, writes[0].reject);
      return;
    }
    actor.write((tx) =>
      writes.map((w) => {
        try {
          return { ok: true as const, value: w.op(tx) };
        } catch (error) {
          return { ok: false as const, error };
        }
      }), group.weight).then(
        (outcomes) =>
          outcomes.forEach((o, i) => o.ok ? writes[i].resolve(o.value) : writes[i].reject(o.error)),
        (error) => writes.forEach((w) => w.reject(error)),
      );
  }

  #actor(id: string): ContextActor {
    return this.#deps.registry.get<ContextActor>("context", validateContextId(id));
  }

  /** The actor of an id already checked with {@linkcode validateContextId}. */
  #actorOf(id: string): ContextActor {
    return this.#deps.registry.get<ContextActor>("context", id);
  }

  /**
   * The delta format called `name` (default `chord`).
   * @throws {ChorusError} `invalid_request` for an unknown name
   */
  format(name: string = DEFAULT_DELTA_FORMAT): DeltaFormat {
    const format = this.formats.get(name);
    if (!format) {
      throw new ChorusError(
        "invalid_request",
        `Cannot use format "${name}": use one of ${[...this.formats.keys()].join(", ")}`,
      );
    }
    return format;
  }

  /**
   * Replaces a context, creating it when absent. Setting what is already there keeps the version.
   * @throws {ChorusError} `invalid_request` when `context` is not a JSON object,
   * `payload_too_large` over 512 KiB stored
   */
  set(id: string, context: unknown): Promise<ContextValue> {
    return this.#set(id, context, false);
  }

  async #set(id: string, context: unknown, here: boolean): Promise<ContextValue> {
    validateContextId(id);
    const owned = ownObject(context, "set", id);
    const writer = here ? null : this.#elsewhere();
    if (writer) {
      return this.#handOver(writer, "set", id, [id, owned], () => this.#set(id, owned, true));
    }
    const actor = this.#actorOf(id);
    return await this.#write(actor, (tx) => actor.setOp(tx, owned), weightOf(owned));
  }

  /** The worker that writes, when it is another one (see storage/one_writer.ts). */
  #elsewhere(): string | null {
    return this.#deps.handOver?.elsewhere() ?? null;
  }

  /** Hands a write of context `id` to `writer`, or runs it `here` (see actors/hand_over.ts). */
  #handOver<T>(
    writer: string,
    op: HandedWrite,
    id: string,
    args: unknown[],
    here: () => Promise<T>,
  ): Promise<T> {
    const written = [{ kind: "context", id }];
    return this.#deps.handOver!.call<T>(writer, `contexts.${op}`, written, args, here);
  }

  /**
   * Runs a context write another worker handed over, here, and answers with the context's head
   * versionstamp after it.
   * @internal Not part of the embedding API; the instance's writers' channel calls it.
   */
  async serveHandedOver(op: string, args: unknown[]): Promise<WriterAnswer> {
    const id = args[0] as string;
    let result: unknown;
    switch (op.slice("contexts.".length) as HandedWrite) {
      case "set":
        result = await this.#set(id, args[1], true);
        break;
      case "update":
        result = await this.#update(id, args[1], args[2] as { type?: PatchType }, true);
        break;
      case "delete":
        result = await this.#delete(id, true);
        break;
      default:
        throw new ChorusError("internal", `Cannot run "${op}" for another worker: not a write`);
    }
    return this.#deps.handOver!.answer([{ kind: "context", id }], result);
  }

  /**
   * Applies a partial change: an RFC 7386 merge patch (an object; `null` removes) or an RFC 6902
   * JSON Patch (an array). Only what really changes is recorded; no change keeps the version.
   * @param options.type the patch kind; default: `json-patch` for an array, else `merge-patch`
   * @throws {ChorusError} `not_found`; `invalid_request` for a malformed patch; `conflict` (with
   * `details.op_index`) when a JSON Patch op does not apply — the context is then unchanged
   */
  update(id: string, patch: unknown, options: { type?: PatchType } = {}): Promise<ContextValue> {
    // Not `async`: the actor's promise is the answer; input it refuses comes back as a rejection.
    try {
      return this.#update(id, patch, options, false);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #update(
    id: string,
    patch: unknown,
    options: { type?: PatchType },
    here: boolean,
  ): Promise<ContextValue> {
    validateContextId(id);
    const type = options.type ?? (Array.isArray(patch) ? "json-patch" : "merge-patch");
    if (type === "merge-patch" && !isJsonObject(patch)) {
      throw new ChorusError(
        "invalid_request",
        `Cannot update context "${id}": a merge patch must be a JSON object`,
      );
    }
    if (type === "json-patch" && !Array.isArray(patch)) {
      throw new ChorusError(
        "invalid_request",
        `Cannot update context "${id}": a JSON Patch must be an array of operations`,
      );
    }
    const owned = frozenJsonCopy(patch, "the patch");
    const writer = here ? null : this.#elsewhere();
    if (writer) {
      const args = [id, owned, { type }];
      return this.#handOver(
        writer,
        "update",
        id,
        args,
        () => this.#update(id, owned, { type }, true),
      );
    }
    const actor = this.#actorOf(id);
    // A merge patch is applied to the batch's working copy with its delta built alongside (cost ∝
    // the patch); a JSON Patch is applied to a copy and diffed.
    if (type === "merge-patch") {
      return this.#write(actor, (tx) => actor.mergeOp(tx, owned as JsonObject), weightOf(owned));
    }
    const change = (context: JsonObject) => applyJsonPatch(context, owned as JsonPatchOperation[]);
    return this.#write(actor, (tx) => actor.updateOp(tx, change), weightOf(owned));
  }

  /**
   * Reads a context; null when absent, deleted or expired.
   * @param options.consistency `strong`, `leader` (default from config) or `eventual`
   */
  async get(
    id: string,
    options: { consistency?: Consistency } = {},
  ): Promise<ContextValue | null> {
    validateContextId(id);
    const mode = options.consistency ?? this.#deps.config.readConsistency;
    if (mode === "eventual") {
      const peeked = this.#deps.registry.peek<ContextActor>("context", id);
      if (peeked?.status === "started") {
        return peeked.peek(() => peeked.current()) ?? null;
      }
      return await this.#getEventual(id);
    }
    return await this.#read(id, mode, (actor) => actor.current() ?? null);
  }

  async #getEventual(id: string): Promise<ContextValue | null> {
    const loaded = await loadContext(this.#deps.store, id, "eventual");
    const { clock, config } = this.#deps;
    if (!isLiveContext(loaded.record, clock.now(), contextLifeMs(config))) return null;
    return { id, version: loaded.record.v, context: loaded.context! };
  }

  #read<R>(id: string, mode: Consistency, fn: (actor: ContextActor) => R): Promise<R> {
    const actor = this.#actor(id);
    this.#flush(actor);
    if (mode === "eventual" && actor.status === "started") {
      return Promise.resolve(actor.peek(() => fn(actor))!);
    }
    return mode === "strong" ? actor.readStrong(() => fn(actor)) : actor.read(() => fn(actor));
  }

  /**
   * Deletes a context. Its version is remembered, so a context created again under the same id
   * continues from there.
   * @throws {ChorusError} `not_found`
   */
  delete(id: string): Promise<{ deleted: true; version: number }> {
    return this.#delete(id, false);
  }

  async #delete(id: string, here: boolean): Promise<{ deleted: true; version: number }> {
    validateContextId(id);
    const writer = here ? null : this.#elsewhere();
    if (writer) return this.#handOver(writer, "delete", id, [id], () => this.#delete(id, true));
    const actor = this.#actorOf(id);
    return await this.#write(actor, (tx) => actor.deleteOp(tx), 256);
  }

  /**
   * What a client holding `version` needs to be current: `{type: "no_change"}`, one merged
   * `{type: "delta"}` in `format` (default `chord`), or `{type: "full_context"}` when the client
   * has no version, an unknown one, one older than the retained deltas, or the format cannot
   * express the change. Results are shared: do not mutate them.
   * @throws {ChorusError} `not_found`; `invalid_request` for a bad version or unknown format
   */
  sync(
    id: string,
    version?: number,
    options: { format?: string; consistency?: Consistency } = {},
  ): Promise<SyncResult> {
    // Not `async`, as update.
    try {
      if (version !== undefined) validateVersion(version);
      const format = this.format(options.format);
      const mode = options.consistency ?? this.#deps.config.readConsistency;
      return this.#read(id, mode, (actor) => actor.sync(version, format));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The retained deltas after `since` (default 0: all), as chord deltas, oldest first.
   * @throws {ChorusError} `not_found`; `invalid_request` for a bad `since`
   */
  async deltas(
    id: string,
    options: { since?: number; consistency?: Consistency } = {},
  ): Promise<DeltaList> {
    const since = validateVersion(options.since ?? 0, "since");
    const mode = options.consistency ?? this.#deps.config.readConsistency;
    return await this.#read(id, mode, (actor) => {
      const live = actor.current();
      if (!live) {
        throw new ChorusError("not_found", `Cannot list deltas of "${id}": no such context`);
      }
      const deltas = actor.retained(since).map((d) => ({
        from_version: d.version - 1,
        version: d.version,
        delta: d.delta!,
        at: d.at,
      }));
      return { id, version: live.version, deltas };
    });
  }

  #provider(action: string, id: string): ExportProvider {
    const provider = this.#deps.exportProvider;
    if (!provider) {
      throw new ChorusError(
        "unavailable",
        `Cannot ${action} "${id}": no export provider is configured (set CHORUS_EXPORT_URL or pass exportProvider)`,
      );
    }
    return provider;
  }

  /**
   * Saves the current context with the configured provider (`kv`, `http` or the embedder's).
   * @throws {ChorusError} `not_found`; `unavailable` when no provider is configured or it fails
   */
  async export(id: string): Promise<ExportResult> {
    validateContextId(id);
    const provider = this.#provider("export", id);
    const current = await this.get(id, { consistency: "strong" });
    if (!current) throw new ChorusError("not_found", `Cannot export "${id}": no such context`);
    const snapshot: ContextSnapshot = {
      id,
      version: current.version,
      context: current.context,
      exported_at: this.#deps.clock.now(),
    };
    try {
      await provider.save(id, snapshot);
    } catch (e) {
      throw providerError("export", id, e);
    }
    return {
      id,
      version: current.version,
      exported_at: snapshot.exported_at,
      provider: provider.name,
    };
  }

  /**
   * Writes the last exported snapshot back as the context (a new version; a `set`).
   * @throws {ChorusError} `not_found` when there is no snapshot; `unavailable` as for export
   */
  async restore(id: string): Promise<RestoreResult> {
    validateContextId(id);
    const provider = this.#provider("restore", id);
    let snapshot: ContextSnapshot | null;
    try {
      snapshot = await provider.load(id);
    } catch (e) {
      throw providerError("restore", id, e);
    }
    if (!snapshot) {
      throw new ChorusError("not_found", `Cannot restore "${id}": no exported snapshot`);
    }
    const written = await this.set(id, snapshot.context);
    return { ...written, restored_version: snapshot.version };
  }

  /**
   * Removes expired contexts (with `CHORUS_CONTEXT_AUTO_DELETE`) and dead deltas now.
   * @param options.limit most entries removed, 1–100000 (default 1000)
   */
  async cleanup(options: { limit?: number } = {}): Promise<CleanupResult> {
    const limit = options.limit ?? DEFAULT_CLEANUP_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_CLEANUP_LIMIT) {
      throw new ChorusError(
        "invalid_request",
        `Cannot clean up with limit ${limit}: use an integer from 1 to ${MAX_CLEANUP_LIMIT}`,
      );
    }
    const result = await cleanupContexts(this.#deps, { limit });
    this.cleanupTotals.runs++;
    this.cleanupTotals.contexts += result.contexts;
    this.cleanupTotals.deltas += result.deltas;
    return result;
  }

  /** What cleanup removed on this instance since start (for metrics). */
  readonly cleanupTotals = { runs: 0, contexts: 0, deltas: 0 };

  /**
   * Calls `listener` with every change of context `id`, in version order, exactly once each,
   * whichever instance on the same KV made it (other instances' changes arrive via `kv.watch`):
   * `{type: "delta", id, from_version, version, delta (chord), at}` per version, `{type:
   * "full_context", id, version, context, at}` when the changes in between cannot be sent as
   * deltas, and `{type: "deleted", id, version, at}`. With `since`, first replays what came after
   * that version (as deltas, or one `full_context` when the log no longer reaches back). The
   * socket's `context:<id>` topic is built on this. Listeners run synchronously in the actor's
   * turn: keep them quick and do not throw.
   * @returns a function that stops the listener
   */
  async subscribe(
    id: string,
    listener: (event: ContextEvent) => void,
    options: { since?: number } = {},
  ): Promise<() => void> {
    if (options.since !== undefined) validateVersion(options.since, "since");
    const actor = this.#actor(id);
    await actor.start();
    this.#flush(actor);
    let last = -1;
    const deliver = (event: ContextEvent) => {
      if (event.version <= last) return;
      last = event.version;
      listener(event);
    };
    // Subscribing and reading the backlog in one turn of the mailbox: nothing missed or repeated.
    return await actor.read(() => {
      const backlog = options.since === undefined ? [] : actor.eventsSince(options.since);
      const version = actor.current()?.version ?? -1;
      last = options.since === undefined ? version : Math.min(options.since, version);
      const unsubscribe = actor.subscribe(deliver);
      for (const event of backlog) deliver(event);
      return unsubscribe;
    });
  }
}

function ownObject(value: unknown, action: string, id: string): JsonObject {
  if (!isJsonObject(value)) {
    throw new ChorusError(
      "invalid_request",
      `Cannot ${action} context "${id}": the context must be a JSON object`,
    );
  }
  return frozenJsonCopy(value, "the context");
}

/** A write's share of a batch: its JSON size twice over (a delta carries old and new values). */
function weightOf(value: unknown): number {
  return 256 + 2 * (JSON.stringify(value)?.length ?? 0);
}

function providerError(action: string, id: string, e: unknown): ChorusError {
  if (e instanceof ChorusError) return e;
  return new ChorusError("unavailable", `Cannot ${action} "${id}": the export provider failed`, {
    cause: e,
  });
}
