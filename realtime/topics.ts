/**
 * The topic registry: which code answers a socket topic. A prefix (`kv`, `context`, `system`, later
 * `reel` and `user`) maps to a {@linkcode TopicHandler} that authorizes joins, builds the join
 * reply, replays history, handles client pushes and feeds the topic's live messages. New products
 * plug in with one `define` call; the socket session and fan-out never change for them.
 * @module
 */
import type { OutboxPriority } from "./outbox.ts";

/** What a topic handler knows about the socket asking. */
export interface SocketInfo {
  /** This socket's id (a ULID), unique across instances. */
  readonly id: string;
  /**
   * The user the socket acts for: the token's user once auth lands, else the `user_id` param, else
   * null. Presence falls back to the socket id when it is null.
   */
  readonly userId: string | null;
  /** The connect params from the URL query (`token`, `user_id`, …), `vsn` and `format` included. */
  readonly params: Readonly<Record<string, string>>;
  /** What the socket's credentials allow; absent = everything (auth off). */
  readonly access?: SocketAccess;
  /** The rate limit its joins and pushes count against; absent = none. */
  readonly limit?: SocketRateLimit;
}

/** The rate limit of one socket's joins and pushes (heartbeats and leaves are not counted). */
export interface SocketRateLimit {
  /** Takes one join or push: null when allowed, else the seconds until one would be. */
  take(): Promise<number | null>;
}

/** The authorization behind a socket, checked on every join and push. */
export interface SocketAccess {
  /** Null when `topic` may be read (`write` false: join) or written (pushes); else the reason. */
  check(topic: string, write: boolean): string | null;
  /** False once the credentials stop being valid (revoked, expired). */
  valid(): Promise<boolean>;
  /**
   * Null when the socket may act for `user` (its own user, or any with `users:impersonate`); else
   * the reason (`forbidden`). Absent: only for its own user.
   */
  actAs?(user: string): string | null;
}

/** One message of a topic, fanned out to every subscriber as a broadcast frame. */
export interface TopicMessage {
  /** The event name, such as `change` or `delta`. */
  readonly event: string;
  /** A JSON object, or raw bytes (sent as a binary frame). */
  readonly payload: Record<string, unknown> | ArrayBuffer;
  /**
   * The position in the topic's order (a version or seq), when it has one: lets a join with
   * `last_seq` skip live messages it already replayed. Messages without one are never skipped.
   */
  readonly seq?: number;
  /** Outbound priority for slow consumers; only `low` is ever dropped. Default `normal`. */
  readonly priority?: OutboxPriority;
}

/** The parts of a join a handler sees. */
export interface JoinContext {
  /** The full topic, such as `kv:greeting`. */
  readonly topic: string;
  /** The topic after the prefix and colon (`greeting`); empty for a bare topic such as `system`. */
  readonly name: string;
  /** The join payload (an empty object for a binary join). */
  readonly payload: Record<string, unknown>;
  /** The socket joining. */
  readonly socket: SocketInfo;
}

/** What an accepted join gives the socket. */
export interface JoinResult {
  /** The `response` of the ok reply. */
  response: Record<string, unknown>;
  /**
   * History to send this socket alone, after the reply and before any live message (a join with
   * `last_seq`). Live messages whose `seq` is at or below the last replayed one are skipped.
   */
  replay?: AsyncIterable<TopicMessage> | Iterable<TopicMessage>;
  /**
   * Live messages whose `seq` is at or below this are skipped: the reply already covers them (a
   * sync result at a version). A replay's last `seq` takes over when later.
   */
  after?: number;
  /**
   * This channel's own view of the topic's live messages (a `context:` subscriber's
   * `delta_format`): called with each message it would get, returns the message to send instead,
   * or null for none. Return the same object for the same input to every channel that shares a
   * view, so the hub encodes it once. Absent: messages as published, encoded once for all.
   */
  view?: (message: TopicMessage) => TopicMessage | null;
}

/** Publishes one message to every socket of a topic on this instance. */
export type Publish = (message: TopicMessage) => void;

/** The code behind one topic prefix. */
export interface TopicHandler {
  /**
   * Whether joins are tracked in presence. Default true: every topic but `system`
   * (docs/socket.md).
   */
  readonly presence?: boolean;
  /**
   * True when the handler serves only the bare topic (`system`): `prefix:<name>` is then an
   * unmatched topic. Default false: only `prefix:<name>` with a non-empty name is served.
   */
  readonly bare?: boolean;
  /**
   * Starts this instance's feed of a topic: called when its first socket here joins, before that
   * join's {@linkcode TopicHandler.join}, so history read by `join` and live messages leave no gap.
   * @returns the function that stops the feed, called when the last socket here leaves
   */
  open?(topic: string, name: string, publish: Publish): Promise<() => void> | (() => void);
  /**
   * Authorizes a join and builds its reply. The actor-backed topics (`reel`, `kv`, `context`) read
   * the reply's state from this instance's loaded actor as it stands, without a KV confirmation:
   * the topic's feed follows that same actor from before the read (the hub holds its messages
   * from here on), so a change the actor learns of later reaches the socket as a live message
   * after the reply's version or seq, and the socket misses nothing. A `leader` read would add a
   * KV confirmation whenever the instance's watch trails its bound, which is when a crowd joins
   * at once: in a join storm it held joins for 100 ms and more.
   * @throws {TopicError} to refuse it; the client gets `{status: "error", response: {reason}}`
   */
  join(context: JoinContext): Promise<JoinResult> | JoinResult;
  /**
   * Handles a client push on a joined topic and returns the ok reply's response.
   * @throws {TopicError} for an error reply with `{reason, ...details}`
   */
  handleIn?(
    event: string,
    payload: Record<string, unknown> | ArrayBuffer,
    context: JoinContext,
  ): Promise<Record<string, unknown> | ArrayBuffer> | Record<string, unknown> | ArrayBuffer;
}

/**
 * A refused join or push: becomes an error reply `{reason, ...details}`, never a crash. Reasons
 * follow Phoenix's style (`"unauthorized"`, `"unmatched topic"`, `"unknown event"`).
 */
export class TopicError extends Error {
  /** The `reason` of the error reply. */
  readonly reason: string;
  /** More fields of the error response. */
  readonly details: Record<string, unknown>;

  /** A refusal with the `reason` sent in the error reply, plus optional extra fields. */
  constructor(reason: string, details: Record<string, unknown> = {}) {
    super(reason);
    this.name = "TopicError";
    this.reason = reason;
    this.details = details;
  }
}

/** The reason Phoenix gives for a join or push to a topic nothing serves. */
export const UNMATCHED_TOPIC = "unmatched topic";

/**
 * Longest topic name (the part after `prefix:`) in UTF-8 bytes: the longest kv key or context id.
 * A longer topic is unmatched before any handler, feed or timer is set up for it.
 */
export const MAX_TOPIC_NAME_BYTES = 1024;

const encoder = new TextEncoder();

/** Whether `name` is at most {@linkcode MAX_TOPIC_NAME_BYTES} bytes of UTF-8. */
function nameFits(name: string): boolean {
  if (name.length > MAX_TOPIC_NAME_BYTES) return false;
  return name.length * 3 <= MAX_TOPIC_NAME_BYTES ||
    encoder.encode(name).byteLength <= MAX_TOPIC_NAME_BYTES;
}

/** A topic resolved against the registry. */
export interface TopicMatch {
  /** The handler. */
  handler: TopicHandler;
  /** The prefix that matched. */
  prefix: string;
  /** The part after `prefix:` (empty for a bare topic). */
  name: string;
}

/**
 * Maps topic prefixes to handlers: `kv:<key>` → the `kv` handler, `system` → `system`. Only
 * topics a handler serves match: a bare handler's bare topic, or `prefix:<name>` of another with a
 * name of 1 to {@linkcode MAX_TOPIC_NAME_BYTES} bytes.
 */
export class TopicRegistry {
  readonly #handlers = new Map<string, TopicHandler>();

  /**
   * Registers the handler of `prefix`. `define("kv", h)` serves `kv:<anything non-empty>`;
   * `define("system", h)` with `h.bare` serves the bare topic `system` only.
   */
  define(prefix: string, handler: TopicHandler): void {
    if (!prefix || prefix.includes(":")) {
      throw new TypeError(`Cannot define topic prefix "${prefix}": use a non-empty name, no ":"`);
    }
    this.#handlers.set(prefix, handler);
  }

  /** The prefixes served. */
  prefixes(): string[] {
    return [...this.#handlers.keys()];
  }

  /** The handler of `topic`, or null when nothing serves it. */
  match(topic: string): TopicMatch | null {
    const colon = topic.indexOf(":");
    const prefix = colon < 0 ? topic : topic.slice(0, colon);
    const name = colon < 0 ? "" : topic.slice(colon + 1);
    const handler = this.#handlers.get(prefix);
    if (!handler) return null;
    if (handler.bare ? colon >= 0 : colon < 0 || name === "" || !nameFits(name)) return null;
    return { handler, prefix, name };
  }
}
