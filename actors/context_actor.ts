/**
 * The actor that owns one context: the JSON object (cached decoded and frozen), its gapless integer
 * version and the delta log that sync is served from. Every version's chord delta (with old values)
 * is kept in KV, in the delta-log pages of `contexts/layout.ts`, and in memory, so the context at
 * any retained version is the current one walked back (`rewindChord`), and one merged delta for any
 * format is `format.diff(contextAtV, current)`.
 *
 * Retention: deltas expire after `deltaTtlMs` (KV `expireIn`, and filtered by their timestamp so an
 * expired one is never used before KV removes it) and are trimmed beyond `deltaThreshold` in the
 * commit that adds new ones. With `contextAutoDelete`, a context whose last change is older than
 * `contextTtlMs` is expired: hidden (reads say "not found"), and a write starts it afresh; without
 * it contexts are kept ({@linkcode contextLifeMs}). A deleted context leaves a tombstone
 * that keeps its version, so versions keep rising when the id is used again.
 * @module
 */
import { ChorusError } from "../errors.ts";
import { log } from "../log.ts";
import type { Intent, Mutation } from "../storage/store.ts";
import { ctxDeltaKey, ctxHeadKey } from "../storage/keys.ts";
import { deepFreeze } from "../storage/codec.ts";
import { type ChordDelta, diffChord } from "../deltas/chord.ts";
import { applyShared, mergePatchInPlace, rewindShared } from "../contexts/structural.ts";
import {
  type ContextRecord,
  dropValue,
  headExpireIn,
  keepValue,
  layoutValue,
  loadContext,
  loadDeltas,
  packPages,
  type RetainedDelta,
  storedOf,
  tombstone,
} from "../contexts/layout.ts";
import type { DeltaFormat } from "../deltas/format.ts";
import { deepEqual, type JsonObject } from "../deltas/json.ts";
import { Actor, type ActorContext } from "./actor.ts";
import { EmittedVersion } from "./emitted_version.ts";

/**
 * What subscribers receive, in version order, on every instance:
 * - `delta`: the change from `from_version` to `version` as a chord delta (a creation is a delta
 *   from `{}`);
 * - `full_context`: the context at `version`, when the changes in between cannot be sent as deltas
 *   (another instance's changes whose log was trimmed or expired, or a delta too large to keep);
 * - `deleted`: the context was deleted at `version`.
 */
export type ContextEvent =
  | {
    type: "delta";
    id: string;
    from_version: number;
    version: number;
    delta: ChordDelta;
    at: number;
  }
  | { type: "full_context"; id: string; version: number; context: JsonObject; at: number }
  | { type: "deleted"; id: string; version: number; at: number };

/** A context as returned by reads and writes. */
export interface ContextValue {
  /** The context's id. */
  id: string;
  /** The context's version: +1 on every change, never reused after a delete. */
  version: number;
  /**
   * The context itself; frozen, since it is shared with other readers. In the answer of a merge
   * patch followed by other changes in its write batch, it is made when first read (an own,
   * enumerable accessor until then).
   */
  context: JsonObject;
}

/** The result of a sync: what a client at some version needs to reach the current one. */
export type SyncResult =
  | { type: "full_context"; version: number; context: JsonObject }
  | { type: "delta"; from_version: number; version: number; delta: unknown }
  | { type: "no_change"; version: number };

/**
 * The context at one version of a write batch, made only when someone asks for it: a merge patch
 * changes the batch's working copy in place, so the contexts of the versions before the batch's
 * last are the batch's first one with the deltas since applied again. An answer nobody reads (a
 * socket's `update` replies with the version only) costs nothing.
 */
interface VersionContext {
  /** The context at this version, once made (or known). */
  context?: JsonObject | undefined;
  /** The version before, and this version's delta from it, while `context` is not made yet. */
  prev?: VersionContext;
  delta?: ChordDelta;
}

/** The context of `at`, made from the nearest earlier version that has it. */
function contextAt(at: VersionContext): JsonObject | undefined {
  const chain: VersionContext[] = [];
  let known = at;
  while (known.prev) {
    chain.push(known);
    known = known.prev;
  }
  let context = known.context;
  for (let i = chain.length - 1; i >= 0; i--) {
    const node = chain[i];
    context = node.context = applyShared(context!, node.delta!);
    node.prev = node.delta = undefined;
  }
  return context;
}

/** The working copy of one write batch. */
export interface ContextTx {
  now: number;
  record: ContextRecord | null;
  /**
   * The context as the batch has made it so far. Merge patches change the nodes the batch made
   * itself in place; it is frozen whole before anything else shares it ({@linkcode settle}).
   */
  context: JsonObject | undefined;
  /** The context at the batch's current version, for the answers ({@linkcode VersionContext}). */
  head: VersionContext;
  /**
   * The answers made at `head` whose context is not made yet: when the batch's working copy is
   * frozen ({@linkcode settle}) it is their context, so they get it as a plain member then.
   */
  headAnswers: ContextValue[];
  deltas: RetainedDelta[];
  events: ContextEvent[];
  /** The record and deltas as they were when the batch began (what the commit replaces). */
  before: { record: ContextRecord | null; deltas: RetainedDelta[] };
  contextChanged: boolean;
  dirty: boolean;
}

/**
 * How long an untouched context lives: `contextTtlMs` when `contextAutoDelete` is on, else
 * forever. With auto-delete off a context is kept, so it never expires (Chord's
 * `CHORUS_CONTEXT_TTL` applies only together with `CHORUS_CONTEXT_AUTO_DELETE=true`).
 */
export function contextLifeMs(
  config: { contextTtlMs: number; contextAutoDelete: boolean },
): number {
  return config.contextAutoDelete ? config.contextTtlMs : Infinity;
}

/** Whether a record holds a live (not deleted, not expired) context at `now`. */
export function isLiveContext(
  record: ContextRecord | null,
  now: number,
  ttlMs: number,
): record is ContextRecord {
  return record !== null && !record.x && record.u + ttlMs > now;
}

/** Most deletions of old deltas and chunks one commit carries; the rest expire or are cleaned. */
const MAX_DROPS = 400;
/** Sync results cached per actor until the next change. */
const SYNC_CACHE = 256;
/** Bytes one commit of this actor may carry (KV allows 800 KiB; the rest is margin). */
const COMMIT_BUDGET = 700 * 1024;

/** The actor owning one context. */
export class ContextActor extends Actor<ContextTx, ContextEvent> {
  #record: ContextRecord | null = null;
  #context: JsonObject | undefined;
  #deltas: RetainedDelta[] = [];
  readonly #emitted = new EmittedVersion<ContextEvent>((e) => e.version);
  /** Sync results by format name, then by the client's version; emptied on every change. */
  #syncCache = new Map<string, Map<number, { result: SyncResult; until: number }>>();
  #syncCached = 0;

  constructor(id: string, ctx: ActorContext) {
    super("context", id, ctx);
  }

  /** The live context, or undefined when absent, deleted or expired. */
  current(): ContextValue | undefined {
    if (!this.#live(this.#record)) return undefined;
    return { id: this.id, version: this.#record.v, context: this.#context! };
  }

  /**
   * The retained deltas after `since`, oldest first, contiguous up to the current version; the
   * expired ones and everything up to the last gap are left out.
   */
  retained(since = 0, now = this.ctx.clock.now()): RetainedDelta[] {
    const ttl = this.ctx.config.deltaTtlMs;
    let start = 0;
    for (let i = 0; i < this.#deltas.length; i++) {
      const d = this.#deltas[i];
      if (d.at + ttl <= now || d.delta === null) start = i + 1;
    }
    return this.#deltas.slice(start).filter((d) => d.version > since);
  }

  /**
   * What a client at `clientVersion` needs: `no_change`, one merged `delta` in `format`, or
   * `full_context` (no version, unknown or newer version, older than the retained deltas, or a
   * change the format cannot express). Results are cached until the next change.
   * @throws {ChorusError} `not_found` when the context is absent or expired
   */
  sync(clientVersion: number | undefined, format: DeltaFormat): SyncResult {
    const now = this.ctx.clock.now();
    const record = this.#record;
    if (!isLiveContext(record, now, contextLifeMs(this.ctx.config))) {
      throw notFound("sync", this.id);
    }
    const version = record.v;
    const context = this.#context!;
    if (clientVersion === undefined || clientVersion > version) {
      return { type: "full_context", version, context };
    }
    if (clientVersion === version) return { type: "no_change", version };
    let cache = this.#syncCache.get(format.name);
    const cached = cache?.get(clientVersion);
    if (cached && now < cached.until) return cached.result;
    const deltas = this.retained(clientVersion, now);
    let result: SyncResult;
    if (deltas.length !== version - clientVersion) {
      result = { type: "full_context", version, context };
    } else {
      const chords = deltas.map((d) => d.delta!);
      const delta = format.name === "chord" && chords.length === 1
        ? chords[0]
        : format.diff(rewindShared(context, chords), context);
      result = delta === undefined ? { type: "full_context", version, context } : deepFreeze({
        type: "delta",
        from_version: clientVersion,
        version,
        delta,
      });
    }
    if (this.#syncCached >= SYNC_CACHE) {
      this.#clearSyncCache();
      cache = undefined;
    }
    if (!cache) this.#syncCache.set(format.name, cache = new Map());
    // Valid until the oldest delta it used expires (a full answer: until the next change).
    const until = deltas.length ? deltas[0].at + this.ctx.config.deltaTtlMs : Infinity;
    if (!cache.has(clientVersion)) this.#syncCached++;
    cache.set(clientVersion, { result, until });
    return result;
  }

  /**
   * The events a subscriber joining at `since` has missed: one `delta` per retained version, or a
   * single `full_context` (or `deleted`) when the log no longer reaches back that far.
   */
  eventsSince(since: number): ContextEvent[] {
    const rec = this.#record;
    const version = rec?.v ?? 0;
    if (since >= version || !rec) return [];
    if (rec.x) return [{ type: "deleted", id: this.id, version, at: rec.u }];
    const live = this.current();
    if (!live) return [];
    const deltas = this.retained(since);
    if (deltas.length !== version - since) {
      return [{ type: "full_context", id: this.id, version, context: live.context, at: rec.u }];
    }
    return deltas.map((d) => deltaEvent(this.id, d));
  }

  #clearSyncCache(): void {
    this.#syncCache.clear();
    this.#syncCached = 0;
  }

  #live(record: ContextRecord | null): record is ContextRecord {
    return isLiveContext(record, this.ctx.clock.now(), contextLifeMs(this.ctx.config));
  }

  protected headKey(): Deno.KvKey {
    return ctxHeadKey(this.id);
  }

  protected async onStart(consistency: "strong" | "eventual"): Promise<string | null> {
    let deltas: RetainedDelta[] = [];
    const loaded = await loadContext(this.ctx.store, this.id, consistency, async (rec) => {
      deltas = await this.#deltasOf(rec, consistency);
      return this.#caughtUp(rec, deltas);
    });
    const rec = loaded.record;
    this.#record = rec;
    this.#context = loaded.context;
    this.#deltas = deltas;
    this.#clearSyncCache();
    this.#emitted.loaded(rec?.v ?? 0);
    return loaded.versionstamp;
  }

  /**
   * The retained deltas of the head `rec`, contiguous up to its version: those already cached for
   * this generation are kept, only newer ones are read.
   */
  async #deltasOf(
    rec: ContextRecord | null,
    consistency: "strong" | "eventual",
  ): Promise<RetainedDelta[]> {
    if (!rec || rec.x) return [];
    const cached = this.#record?.g === rec.g
      ? this.#deltas.filter((d) => d.version > rec.b && d.version <= rec.v)
      : [];
    if (rec.v <= rec.b) return cached;
    const from = Math.max(rec.b, cached.at(-1)?.version ?? 0) + 1;
    const more = await loadDeltas(
      this.ctx.store,
      this.id,
      rec,
      from,
      cached.length === 0,
      consistency,
    );
    return contiguousSuffix([...cached, ...more], rec.v);
  }

  /**
   * The context at the head `rec`'s version made from the cached one and `deltas` (the head's,
   * contiguous up to its version), when they reach back to the cached version of the same
   * generation with no gap: a refresh after another instance's change then costs the change, not
   * a read and decode of the whole context. Undefined when the context must be read.
   */
  #caughtUp(rec: ContextRecord | null, deltas: RetainedDelta[]): JsonObject | undefined {
    const mine = this.#record;
    const context = this.#context;
    if (!rec || rec.x || !mine || mine.x || !context || mine.g !== rec.g || mine.v > rec.v) {
      return undefined;
    }
    const missing = rec.v - mine.v;
    if (deltas.length < missing) return undefined;
    let caught = context;
    try {
      for (const d of deltas.slice(deltas.length - missing)) {
        if (d.delta === null) return undefined;
        caught = applyShared(caught, d.delta);
      }
    } catch (error) {
      // A delta that does not fit (a corrupt log): the value, read whole, is the authority.
      log.warn("a context could not catch up from its deltas; reading it whole", {
        error,
        id: this.id,
      });
      return undefined;
    }
    return caught;
  }

  protected begin(): ContextTx {
    return {
      now: this.ctx.clock.now(),
      record: this.#record,
      context: this.#context,
      head: { context: this.#context },
      headAnswers: [],
      deltas: this.#deltas,
      events: [],
      before: { record: this.#record, deltas: this.#deltas },
      contextChanged: false,
      dirty: false,
    };
  }

  protected intent(tx: ContextTx): Intent | null {
    settle(tx);
    if (!tx.dirty || !tx.record) return null;
    const { config } = this.ctx;
    const id = this.id;
    const old = tx.before.record;
    const rec: ContextRecord = { ...tx.record };
    const mutations: Mutation[] = [];
    let bytes = 512;
    const expireIn = headExpireIn(rec, config);
    // Trimmed beyond the threshold (in memory once per batch; pages wholly below the base go).
    let cut = 0;
    while (cut < tx.deltas.length && tx.deltas[cut].version <= rec.b) cut++;
    if (cut) tx.deltas = tx.deltas.slice(cut);
    const sameGeneration = old !== null && old.g === rec.g && !rec.x;
    const fresh = tx.deltas.filter((d) => d.version > (old && sameGeneration ? old.v : rec.b));
    const drops: Mutation[] = [];
    // A changed context is stored again, unless its stored value is kept with a replay of the
    // changes on top (a large context with small changes: see keepValue).
    if (rec.x || (tx.contextChanged && !keepValue(old, rec, fresh, expireIn))) {
      delete rec.enc, delete rec.d, delete rec.n, delete rec.cv, delete rec.p, delete rec.sz;
      delete rec.r, delete rec.k;
      drops.push(...dropValue(id, old));
      if (!rec.x) {
        const laid = layoutValue(rec, { id, context: tx.context, config, expireIn });
        mutations.push(...laid.mutations);
        bytes += laid.bytes;
      }
    } else bytes += (storedOf(rec).d?.byteLength ?? 0) + (rec.r?.byteLength ?? 0);
    const keptPages = new Set(sameGeneration ? tx.deltas.map((d) => d.page) : []);
    const oldPages = new Set(tx.before.deltas.map((d) => d.page));
    for (const page of oldPages) {
      if (!keptPages.has(page)) drops.push({ type: "delete", key: ctxDeltaKey(id, page) });
    }
    mutations.push(...drops.slice(0, MAX_DROPS));
    for (const page of packPages(rec.g, fresh, config, COMMIT_BUDGET - bytes)) {
      mutations.push({
        type: "set",
        key: ctxDeltaKey(id, page.v),
        value: page,
        expireIn: config.deltaTtlMs,
      });
      bytes += page.d.byteLength + 128;
    }
    mutations.push({ type: "set", key: ctxHeadKey(id), value: rec, expireIn });
    tx.record = rec;
    return { checks: [this.headCheck()], mutations, bytes };
  }

  protected adopt(tx: ContextTx, _versionstamp: string): ContextEvent[] {
    this.#record = tx.record;
    this.#context = tx.context;
    this.#deltas = tx.deltas;
    this.#clearSyncCache();
    return this.#emitted.fresh(tx.events);
  }

  protected override async onRemoteChange(): Promise<ContextEvent[]> {
    const before = await this.#emitted.reloading(() => this.reload());
    return this.#emitted.fresh(this.eventsSince(before));
  }

  // ---- ops: validate, then change the working copy ----

  /** Replaces the context (creating it when absent); no change, no new version. */
  setOp(tx: ContextTx, context: JsonObject): ContextValue {
    settle(tx);
    const live = isLiveContext(tx.record, tx.now, contextLifeMs(this.ctx.config));
    if (live && deepEqual(tx.context, context)) {
      return { id: this.id, version: tx.record!.v, context: tx.context! };
    }
    return this.#change(tx, live ? tx.context! : undefined, context);
  }

  /**
   * Applies `change` to the live context (a JSON Patch applier that returns a new context and
   * throws on a bad patch); records only what really changed, and keeps the version when nothing
   * did.
   * @throws {ChorusError} `not_found` when absent or expired; whatever `change` throws
   */
  updateOp(tx: ContextTx, change: (context: JsonObject) => JsonObject): ContextValue {
    if (!isLiveContext(tx.record, tx.now, contextLifeMs(this.ctx.config))) {
      throw notFound("update", this.id);
    }
    settle(tx);
    return this.#change(tx, tx.context!, change(tx.context!));
  }

  /**
   * Applies an RFC 7386 merge patch (deeply frozen) to the live context, in place on the batch's
   * working copy (see {@linkcode mergePatchInPlace}); records only what really changed, and keeps
   * the version when nothing did. The answer's context is made when it is read.
   * @throws {ChorusError} `not_found` when absent or expired
   */
  mergeOp(tx: ContextTx, patch: JsonObject): ContextValue {
    if (!isLiveContext(tx.record, tx.now, contextLifeMs(this.ctx.config))) {
      throw notFound("update", this.id);
    }
    const { context, delta } = mergePatchInPlace(tx.context!, patch);
    if (Object.keys(delta).length > 0) {
      this.#newVersion(tx, delta, false);
      tx.context = context;
      tx.head = { prev: tx.head, delta };
      tx.headAnswers.length = 0;
    }
    const answer = answerOf(this.id, tx.record!.v, tx.head);
    if (tx.head.prev) tx.headAnswers.push(answer);
    return answer;
  }

  /** Deletes the context, leaving a tombstone that remembers the version. @throws `not_found` */
  deleteOp(tx: ContextTx): { deleted: true; version: number } {
    if (!isLiveContext(tx.record, tx.now, contextLifeMs(this.ctx.config))) {
      throw notFound("delete", this.id);
    }
    settle(tx);
    tx.record = tombstone(tx.record!, tx.now);
    const version = tx.record.v;
    tx.context = undefined;
    tx.head = { context: undefined };
    tx.headAnswers.length = 0;
    tx.deltas = [];
    tx.dirty = true;
    tx.events.push({ type: "deleted", id: this.id, version, at: tx.now });
    return { deleted: true, version };
  }

  /** Records a replacement or a JSON Patch's result (`tx.context` settled: see settle). */
  #change(tx: ContextTx, from: JsonObject | undefined, to: JsonObject): ContextValue {
    const delta = diffChord(from ?? {}, to);
    const prev = tx.record;
    if (from !== undefined && Object.keys(delta).length === 0) {
      return { id: this.id, version: prev!.v, context: tx.context! };
    }
    deepFreeze(delta);
    // What every other holder gets, down to the order of keys: the previous context with the delta
    // applied (a reader of a replay, an instance catching up, a client following the deltas); a
    // replacement or a JSON Patch may order keys otherwise. (A merge patch's result already is
    // that: see mergeOp.)
    const context = from === undefined ? deepFreeze(to) : applyShared(from, delta);
    const version = this.#newVersion(tx, delta, from === undefined);
    tx.context = context;
    tx.head = { context };
    tx.headAnswers.length = 0;
    return { id: this.id, version, context };
  }

  /**
   * Records a new version in the working copy: its record, its delta in the log (unless `created`:
   * a creation starts a new generation whose log starts here) and its event.
   */
  #newVersion(tx: ContextTx, delta: ChordDelta, created: boolean): number {
    const prev = tx.record;
    const version = (prev?.v ?? 0) + 1;
    if (tx.deltas === tx.before.deltas) tx.deltas = tx.deltas.slice();
    const at = Math.max(tx.now, prev?.u ?? 0);
    if (created) {
      tx.record = { v: version, g: newGeneration(), b: version, u: at };
      tx.deltas = [];
    } else {
      tx.deltas.push({ version, at, delta, page: version });
      const base = Math.max(prev!.b, version - this.ctx.config.deltaThreshold);
      tx.record = { v: version, g: prev!.g, b: base, u: at };
    }
    tx.contextChanged = true;
    tx.dirty = true;
    tx.events.push({
      type: "delta",
      id: this.id,
      from_version: version - 1,
      version,
      delta,
      at,
    });
    return version;
  }
}

/**
 * Freezes the batch's working copy whole, so it can be shared: before an op that does not change
 * it in place, and before the batch is committed. The batch's current version then has it as is,
 * and so do the answers made at that version.
 */
function settle(tx: ContextTx): void {
  if (tx.context === undefined || Object.isFrozen(tx.context)) return;
  deepFreeze(tx.context);
  tx.head.context = tx.context;
  tx.head.prev = tx.head.delta = undefined;
  // The answers at this version (a lone update's above all) hold it as a plain member.
  for (const answer of tx.headAnswers) holdContext(answer, tx.context);
  tx.headAnswers.length = 0;
}

/**
 * A merge's answer, whose context is made from `head` when it is first read: an own, enumerable
 * accessor, so JSON, spreads and structured clones see the context like any other member, that
 * turns into a plain data member on that first read (or when it is assigned). An answer frozen or
 * sealed before it is read keeps the accessor, which gives the same context every time.
 */
function answerOf(id: string, version: number, head: VersionContext): ContextValue {
  if (!head.prev) return { id, version, context: head.context! };
  const answer: ContextValue = {
    id,
    version,
    get context(): JsonObject {
      const context = contextAt(head)!;
      if (this === answer && Object.isExtensible(answer)) holdContext(answer, context);
      return context;
    },
    set context(context: JsonObject) {
      if (!Object.isExtensible(this)) {
        throw new TypeError("Cannot assign to read only property 'context' of a frozen answer");
      }
      holdContext(this, context);
    },
  };
  return answer;
}

/** Makes `context` a plain data member of `answer`, in place of its accessor. */
function holdContext(answer: object, context: JsonObject): void {
  Object.defineProperty(answer, "context", {
    value: context,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function deltaEvent(id: string, d: RetainedDelta): ContextEvent {
  return {
    type: "delta",
    id,
    from_version: d.version - 1,
    version: d.version,
    delta: d.delta!,
    at: d.at,
  };
}

function notFound(action: string, id: string): ChorusError {
  return new ChorusError("not_found", `Cannot ${action} context "${id}": no such context`);
}

function newGeneration(): string {
  return crypto.randomUUID().slice(0, 13);
}

/** The longest run of consecutive versions ending at `head`, from deltas sorted by version. */
function contiguousSuffix(deltas: RetainedDelta[], head: number): RetainedDelta[] {
  let i = deltas.length;
  let expect = head;
  while (i > 0 && deltas[i - 1].version === expect) {
    i--;
    expect--;
  }
  return deltas.slice(i);
}
