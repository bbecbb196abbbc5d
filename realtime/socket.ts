/**
 * One socket session speaking Phoenix Channels V2 (docs/socket.md): decodes frames, answers
 * heartbeats, joins and leaves channels through the topic registry, routes pushes to handlers, and
 * writes every outgoing frame through its {@linkcode Outbox}, the single writer of the socket.
 *
 * Frames of one topic are handled in arrival order (a per-topic chain), so a push sent right after
 * a join is answered after the join reply; heartbeats never wait behind a slow join.
 * @module
 */
import { decodeEnvelope, encodeEnvelope } from "../proto/codec.ts";
import { log } from "../log.ts";
import type { Clock, TimerId } from "../clock.ts";
import {
  CLOSE_INVALID_PAYLOAD,
  CLOSE_MESSAGE_TOO_BIG,
  CLOSE_TRY_AGAIN_LATER,
  decodeBinary,
  decodeText,
  encodeBinaryBroadcast,
  encodeBinaryPush,
  encodeBinaryReply,
  encodeText,
  type Frame,
  HEARTBEAT,
  InvalidFrameError,
  PHOENIX_TOPIC,
  PHX_CLOSE,
  PHX_JOIN,
  PHX_LEAVE,
  PHX_REPLY,
  push,
  reply,
} from "./phoenix.ts";
import { Outbox, type OutboxOptions, type OutboxPriority } from "./outbox.ts";
import type { Fanout, Subscriber, TopicHub, WireFormat } from "./fanout.ts";
import { joinMeta, type PresenceMeta, type PresenceTracker } from "./presence/mod.ts";
import {
  type JoinContext,
  type JoinResult,
  type SocketInfo,
  TopicError,
  type TopicMatch,
  type TopicMessage,
  type TopicRegistry,
  UNMATCHED_TOPIC,
} from "./topics.ts";

/** Message counters shared by every session of a server. */
export interface SocketCounters {
  /** Frames received. */
  messagesIn: number;
  /** Frames handed to sockets. */
  messagesOut: number;
  /** Frames dropped for slow consumers (and after a socket was declared slow). */
  messagesDropped: number;
}

/** The transport under a session: a WebSocket, or a fake in tests. */
export interface SessionSink {
  /** Sends one frame. */
  send(data: string | Uint8Array): void;
  /** Bytes accepted by `send` and not yet on the wire. */
  readonly bufferedAmount: number;
  /** Closes the transport with a code and reason. */
  close(code: number, reason: string): void;
}

/** What a session needs from its server. */
export interface SessionDeps {
  /** The topic registry. */
  topics: TopicRegistry;
  /** This instance's hubs. */
  fanout: Fanout;
  /** Presence, or null to disable it. */
  presence: PresenceTracker | null;
  /** Time source (idle tracking, outbox, flush timer). */
  clock: Clock;
  /** Shared counters. */
  counters: SocketCounters;
  /** Largest accepted incoming frame in bytes; bigger ones close the socket with 1009. */
  maxFrameBytes: number;
  /** Most channels one socket may join (Phoenix 1.8: 100). */
  maxChannels: number;
  /** Outbox bounds. */
  outbox: Omit<OutboxOptions, "clock" | "onSlow">;
  /** Called once when the session ends. */
  onEnd?: (session: SocketSession) => void;
  /**
   * Called when the transport reports that it closed ({@linkcode SocketSession.handleEvent}), with
   * its close code and reason, even when the server had already ended the session.
   */
  onTransportClose?: (session: SocketSession, code: number, reason: string) => void;
}

interface Channel {
  topic: string;
  joinRef: string | null;
  context: JoinContext;
  match: TopicMatch;
  hub?: TopicHub;
  presence?: { key: string; meta: PresenceMeta };
  left: boolean;
}

const FLUSH_MS = 20;
const MAX_REASON_BYTES = 120;

/** One connected socket. */
export class SocketSession implements Subscriber {
  /** The socket's identity and connect params, as handlers see them. */
  readonly info: SocketInfo;
  /** `json` (Phoenix V2) or `protobuf` (Envelope frames). */
  readonly format: WireFormat;
  /** When the session started (clock ms), for how long a socket stayed. */
  readonly openedAt: number;
  /** When the last frame arrived (clock ms); the server closes sockets idle too long. */
  lastIncoming: number;
  readonly #deps: SessionDeps;
  readonly #counters: SocketCounters;
  readonly #sink: SessionSink;
  readonly #outbox: Outbox;
  readonly #channels = new Map<string, Channel>();
  // Made on first use: an idle socket has no frame in progress and nothing to wait for, and a
  // live event holds thousands of idle sockets.
  #chains: Map<string, Promise<void>> | undefined;
  #pending: Set<Promise<unknown>> | undefined;
  readonly #release: (() => void) | undefined;
  #flushTimer?: TimerId;
  #ended = false;
  #revoked = false;

  /**
   * A session on an open transport; the server's `attach` makes one per socket.
   * @param sink the transport this session is the single writer of
   * @param info identity and params
   * @param format the wire format chosen at connect
   * @param deps what the server shares with all its sessions
   * @param release called once when the session ends (e.g. to give back a per-address slot)
   */
  constructor(
    sink: SessionSink,
    info: SocketInfo,
    format: WireFormat,
    deps: SessionDeps,
    release?: () => void,
  ) {
    this.#sink = sink;
    this.info = info;
    this.format = format;
    this.#deps = deps;
    this.#counters = deps.counters;
    this.#release = release;
    this.openedAt = this.lastIncoming = deps.clock.now();
    this.#outbox = new Outbox(sink, {
      ...deps.outbox,
      clock: deps.clock,
      onSlow: () => this.close(CLOSE_TRY_AGAIN_LATER, "slow consumer"),
      onBacklog: () => this.#startFlush(),
    });
  }

  /** Topics joined (or joining). */
  get channels(): number {
    return this.#channels.size;
  }

  /** True once the socket's credentials were found revoked or expired. */
  get revoked(): boolean {
    return this.#revoked;
  }

  /**
   * The credentials behind this socket stopped being valid: every joined channel is told it
   * closed (`phx_close`, so clients do not rejoin) and later joins and pushes are refused.
   */
  revoke(): void {
    this.#revoked = true;
    for (const channel of [...this.#channels.values()]) {
      this.#teardown(channel);
      this.send(push(channel.joinRef, channel.topic, PHX_CLOSE, { reason: "unauthorized" }));
    }
  }

  /** Why this socket may not read or write `topic`, or null when it may. */
  #denied(topic: string, write: boolean): string | null {
    if (this.#revoked) return "unauthorized";
    return this.info.access?.check(topic, write) ?? null;
  }

  /** Whether the session has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /** The outbox (for stats and tests). */
  get outbox(): Outbox {
    return this.#outbox;
  }

  /**
   * The transport's events, for a session registered as its listener
   * (`socket.addEventListener("message", session)`, and `"close"`): one listener object per
   * socket instead of a handler closure per event. A message is {@linkcode receive}d; a close
   * ends the session and is reported to the server.
   */
  handleEvent(event: Event): void {
    if (event.type === "message") return this.receive((event as MessageEvent).data);
    if (event.type !== "close") return;
    void this.end();
    const { code, reason } = event as CloseEvent;
    this.#deps.onTransportClose?.(this, code, reason);
  }

  /**
   * Handles one incoming WebSocket message. Never throws. A frame that cannot be parsed at all
   * (not JSON, not a 5-element array, a bad binary layout or Envelope) closes the socket with 1007,
   * one over the size limit with 1009. A parsed frame with a field of the wrong type (a payload
   * that is not an object…) only gets an error `phx_reply` on its ref and topic, in the topic's
   * order, or is dropped when it has no ref to answer: the socket and its channels stay.
   */
  receive(data: string | ArrayBuffer | Uint8Array): void {
    if (this.#ended) return;
    this.lastIncoming = this.#deps.clock.now();
    this.#deps.counters.messagesIn++;
    let frame: Frame;
    try {
      frame = this.#decode(data);
    } catch (e) {
      if (e instanceof InvalidFrameError) return this.#rejectFrame(e);
      const code = e instanceof RangeError ? CLOSE_MESSAGE_TOO_BIG : CLOSE_INVALID_PAYLOAD;
      this.close(code, e instanceof Error ? e.message : "bad frame");
      return;
    }
    if (frame.topic === PHOENIX_TOPIC) {
      if (frame.event === HEARTBEAT) this.#reply(frame, "ok", {});
      else this.#reply(frame, "error", { reason: UNMATCHED_TOPIC });
      return;
    }
    this.#enqueue(frame.topic, frame.event, () => this.#handle(frame));
  }

  /** Answers a frame that parsed but is invalid with an error reply, after the topic's earlier frames. */
  #rejectFrame(e: InvalidFrameError): void {
    const target = e.reply;
    if (target === null) {
      log.debug("socket frame dropped", { reason: e.message, socket: this.info.id });
      return;
    }
    const answer = () => {
      if (this.#ended) return;
      this.send(reply(target.joinRef, target.ref, target.topic, "error", { reason: e.reason }));
    };
    if (target.topic === PHOENIX_TOPIC) return answer();
    this.#enqueue(target.topic, "invalid", answer);
  }

  /** Runs `work` after every earlier frame of `topic` (the per-topic chain). */
  #enqueue(topic: string, event: string, work: () => void | Promise<void>): void {
    const chains = this.#chains ??= new Map<string, Promise<void>>();
    const previous = chains.get(topic) ?? Promise.resolve();
    const next = previous.then(work).catch((error) => {
      log.error("socket frame failed", { error, topic, event });
    });
    chains.set(topic, next);
    next.then(() => {
      if (chains.get(topic) !== next) return;
      chains.delete(topic);
      if (chains.size === 0 && this.#chains === chains) this.#chains = undefined;
    });
  }

  /** Writes one pre-encoded frame (fan-out). */
  deliver(data: string | Uint8Array, priority: OutboxPriority): void {
    this.#write(data, priority);
  }

  /** Sends one frame to this socket, encoded in its format. */
  send(frame: Frame, priority: OutboxPriority = "normal"): void {
    if (this.#ended) return;
    this.#write(this.#encode(frame), priority);
  }

  /**
   * Closes the socket from the server side (1001/1012 "come back", 1007, 1009, 1013…) and ends the
   * session. Queued frames are discarded.
   */
  close(code: number, reason: string): void {
    if (this.#ended) return;
    try {
      this.#sink.close(code, truncate(reason));
    } catch {
      // already closed
    }
    this.end();
  }

  /**
   * Ends the session: leaves every channel and removes its presence (on every instance, through
   * the presence log). Call it when the transport closes. Resolves when presence is removed.
   */
  end(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      this.#outbox.close();
      if (this.#flushTimer !== undefined) this.#deps.clock.clearTimeout(this.#flushTimer);
      for (const channel of [...this.#channels.values()]) this.#teardown(channel);
      this.#release?.();
      this.#deps.onEnd?.(this);
    }
    return this.settled();
  }

  /** Resolves when the session's background work (joins, presence writes) has finished. */
  async settled(): Promise<void> {
    while (this.#pending?.size || this.#chains?.size) {
      await Promise.allSettled([...this.#pending ?? [], ...this.#chains?.values() ?? []]);
    }
  }

  #decode(data: string | ArrayBuffer | Uint8Array): Frame {
    const max = this.#deps.maxFrameBytes;
    if (typeof data === "string") return decodeText(data, max);
    const buf = data instanceof Uint8Array
      ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer
      : data;
    if (this.format === "protobuf") {
      if (buf.byteLength > max) {
        throw new RangeError(`Cannot decode Envelope: it is larger than ${max} bytes`);
      }
      return decodeEnvelope(buf);
    }
    return decodeBinary(buf, max);
  }

  #encode(frame: Frame): string | Uint8Array {
    if (this.format === "protobuf") return encodeEnvelope(frame);
    const payload = frame.payload;
    if (payload instanceof ArrayBuffer) {
      return frame.joinRef === null && frame.ref === null
        ? encodeBinaryBroadcast(frame.topic, frame.event, payload)
        : encodeBinaryPush(frame.joinRef, frame.topic, frame.event, payload);
    }
    if (frame.event === PHX_REPLY && payload.response instanceof ArrayBuffer) {
      return encodeBinaryReply(
        frame.joinRef,
        frame.ref,
        frame.topic,
        String(payload.status),
        payload.response,
      );
    }
    return encodeText(frame);
  }

  /**
   * Writes one frame through the outbox. Nothing here is per-frame bookkeeping beyond the counter:
   * the outbox starts the flush timer itself ({@linkcode SocketSession.#startFlush}) when a frame
   * has to wait.
   */
  #write(data: string | Uint8Array, priority: OutboxPriority): void {
    if (this.#ended) return;
    try {
      if (this.#outbox.enqueue(data, priority)) this.#counters.messagesOut++;
      else this.#counters.messagesDropped++;
    } catch {
      // The transport refused the frame (closing): the close event ends the session.
    }
  }

  /** Called by the outbox when frames start waiting: flush them on a timer until none are left. */
  #startFlush(): void {
    if (this.#flushTimer === undefined && !this.#ended) {
      this.#flushTimer = this.#deps.clock.setTimeout(() => this.#flush(), FLUSH_MS);
    }
  }

  #flush(): void {
    this.#flushTimer = undefined;
    if (this.#ended) return;
    this.#outbox.flush();
    if (this.#outbox.queuedFrames > 0 && !this.#ended) {
      this.#flushTimer = this.#deps.clock.setTimeout(() => this.#flush(), FLUSH_MS);
    }
  }

  #reply(frame: Frame, status: string, response: Record<string, unknown> | ArrayBuffer): void {
    if (frame.ref === null) return; // nothing to answer
    this.send(
      reply(frame.joinRef, frame.ref, frame.topic, status, response as Record<string, unknown>),
    );
  }

  async #handle(frame: Frame): Promise<void> {
    if (this.#ended) return;
    // Joins and pushes count against the socket's rate limit (leaves and heartbeats do not).
    if (frame.event !== PHX_LEAVE && this.info.limit) {
      const retryAfter = await this.info.limit.take();
      if (this.#ended) return;
      if (retryAfter !== null) {
        return this.#reply(frame, "error", { reason: "rate_limited", retry_after: retryAfter });
      }
    }
    if (frame.event === PHX_JOIN) return await this.#join(frame);
    const channel = this.#channels.get(frame.topic);
    if (frame.event === PHX_LEAVE) {
      // Phoenix answers ok even for a topic that is not joined.
      this.#reply(frame, "ok", {});
      if (channel && (frame.joinRef === null || frame.joinRef === channel.joinRef)) {
        this.#teardown(channel);
        this.send({
          joinRef: channel.joinRef,
          ref: channel.joinRef,
          topic: frame.topic,
          event: PHX_CLOSE,
          payload: {},
        });
      }
      return;
    }
    if (!channel) return this.#reply(frame, "error", { reason: UNMATCHED_TOPIC });
    if (frame.joinRef !== null && frame.joinRef !== channel.joinRef) return; // a stale join
    if (frame.event === "ping") return this.#reply(frame, "ok", frame.payload);
    const denied = this.#denied(frame.topic, frame.event !== "get");
    if (denied) return this.#reply(frame, "error", { reason: denied });
    const handler = channel.match.handler;
    if (!handler.handleIn) return this.#reply(frame, "error", { reason: "unknown event" });
    try {
      const response = await handler.handleIn(frame.event, frame.payload, channel.context);
      this.#reply(frame, "ok", response);
    } catch (e) {
      this.#reply(frame, "error", errorResponse(e, frame));
    }
  }

  async #join(frame: Frame): Promise<void> {
    const { topic } = frame;
    const deps = this.#deps;
    const match = deps.topics.match(topic);
    if (!match) {
      // Phoenix's unmatched-topic reply has a null join_ref (socket.ex encode_ignore).
      this.send(reply(null, frame.ref, topic, "error", { reason: UNMATCHED_TOPIC }));
      return;
    }
    const denied = this.#denied(topic, false);
    if (denied) return this.#reply(frame, "error", { reason: denied });
    const existing = this.#channels.get(topic);
    if (existing) {
      // A duplicate join replaces the old channel, which is told it closed.
      this.#teardown(existing);
      this.send(push(existing.joinRef, topic, PHX_CLOSE, {}));
    }
    if (this.#channels.size >= deps.maxChannels) {
      return this.#reply(frame, "error", { reason: "too many channels joined" });
    }
    const payload = frame.payload instanceof ArrayBuffer ? {} : frame.payload;
    // Every field in the literal: adding one later gives each channel a second property store.
    const channel: Channel = {
      topic,
      joinRef: frame.joinRef ?? frame.ref,
      context: { topic, name: match.name, payload, socket: this.info },
      match,
      hub: undefined,
      presence: undefined,
      left: false,
    };
    this.#channels.set(topic, channel);
    let last = -Infinity;
    let view: JoinResult["view"];
    try {
      channel.hub = await deps.fanout.acquire(topic, match);
      if (channel.left) return;
      channel.hub.addPending(this);
      const result = await match.handler.join(channel.context);
      if (channel.left) return;
      this.#reply(frame, "ok", result.response);
      if (result.after !== undefined) last = result.after;
      view = result.view;
      if (result.replay) {
        for await (const message of result.replay) {
          if (channel.left) return;
          this.#sendMessage(topic, message);
          if (message.seq !== undefined) last = message.seq;
        }
      }
    } catch (e) {
      if (!channel.left) {
        this.#teardown(channel);
        this.#reply(frame, "error", errorResponse(e, frame));
      }
      return;
    }
    channel.hub.activate(this, last, view);
    if (deps.presence && match.handler.presence !== false) await this.#track(channel);
  }

  /** Tracks the join in presence, then pushes the topic's fresh `presence_state`. */
  async #track(channel: Channel): Promise<void> {
    const presence = this.#deps.presence!;
    const key = this.info.userId ?? this.info.id;
    try {
      const { meta } = await presence.track(channel.topic, key, joinMeta(channel.context.payload));
      if (channel.left) {
        await presence.untrack(channel.topic, key, meta);
        return;
      }
      channel.presence = { key, meta };
      const view = channel.hub?.presence;
      if (!view) return;
      await view.catchUp();
      if (channel.left) return;
      // One encoding per state change (and join_ref), shared by every socket joining meanwhile.
      for (const frame of view.stateFrames(channel.joinRef, this.format)) {
        this.#write(frame, "normal");
      }
      channel.hub?.presenceSent(this);
    } catch (error) {
      log.warn("presence track failed", { error, topic: channel.topic });
    }
  }

  #sendMessage(topic: string, message: TopicMessage): void {
    this.send(
      { joinRef: null, ref: null, topic, event: message.event, payload: message.payload },
      message.priority,
    );
  }

  #teardown(channel: Channel): void {
    if (channel.left) return;
    channel.left = true;
    if (this.#channels.get(channel.topic) === channel) this.#channels.delete(channel.topic);
    this.#deps.fanout.release(channel.topic, this);
    const presence = this.#deps.presence;
    if (presence && channel.presence) {
      const { key, meta } = channel.presence;
      const p = presence.untrack(channel.topic, key, meta).catch((error) => {
        log.warn("presence untrack failed", { error, topic: channel.topic });
      });
      const pending = this.#pending ??= new Set<Promise<unknown>>();
      pending.add(p);
      p.finally(() => pending.delete(p));
    }
  }
}

function errorResponse(e: unknown, frame: Frame): Record<string, unknown> {
  if (e instanceof TopicError) return { ...e.details, reason: e.reason };
  log.error("socket handler failed", { error: e, topic: frame.topic, event: frame.event });
  return { reason: frame.event === PHX_JOIN ? "join crashed" : "internal error" };
}

function truncate(reason: string): string {
  const bytes = new TextEncoder().encode(reason);
  if (bytes.length <= MAX_REASON_BYTES) return reason;
  return new TextDecoder().decode(bytes.slice(0, MAX_REASON_BYTES)).replace(/\uFFFD$/, "");
}
