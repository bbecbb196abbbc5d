/**
 * Fan-out inside one instance: one {@linkcode TopicHub} per topic with sockets here, fed once by
 * the topic's handler (and presence), writing each message to every subscriber. A message is
 * encoded at most once per wire format and the same string/bytes go to every socket, so the cost
 * per extra subscriber is one `Outbox.enqueue` (docs/architecture.md, "Why it is fast").
 *
 * Order: a hub delivers in publish order; handlers publish in the actor's order (kv versions,
 * presence log seqs), the same on every instance. A joining socket is "pending" while its history
 * replays: live messages are buffered for it and released after the replay, minus those the
 * replay already covered, so it sees no gap and no duplicate.
 * @module
 */
import { encodeEnvelope } from "../proto/codec.ts";
import { broadcast, encodeBinaryBroadcast, encodeText } from "./phoenix.ts";
import type { OutboxPriority } from "./outbox.ts";
import type { JoinResult, TopicMatch, TopicMessage } from "./topics.ts";
import type { PresenceView } from "./presence/mod.ts";
import type { WireFormat } from "./wire_format.ts";
import { telemetry } from "../observability/telemetry.ts";
import { log } from "../log.ts";

/** Re-exported from `wire_format.ts` (its home, shared with presence), so importers of hubs keep one import. */
export type { WireFormat } from "./wire_format.ts";

/** A socket as seen by a hub. */
export interface Subscriber {
  /** Which encoding this socket wants. */
  readonly format: WireFormat;
  /** Writes one encoded frame (shared with other sockets; never mutate it). */
  deliver(data: string | Uint8Array, priority: OutboxPriority): void;
  /** The socket's identity, for the `chorus:socket.join|leave` telemetry events. */
  readonly info?: { readonly id: string };
}

/** A topic message with its broadcast frame encoded lazily, once per format. */
export class EncodedMessage {
  /** The message. */
  readonly message: TopicMessage;
  readonly #topic: string;
  #json?: string | Uint8Array;
  #protobuf?: Uint8Array;

  constructor(topic: string, message: TopicMessage) {
    this.#topic = topic;
    this.message = message;
  }

  /** The broadcast frame `[null, null, topic, event, payload]` in `format`. */
  encoded(format: WireFormat): string | Uint8Array {
    const { event, payload } = this.message;
    if (format === "protobuf") {
      return this.#protobuf ??= encodeEnvelope(broadcast(this.#topic, event, payload));
    }
    return this.#json ??= payload instanceof ArrayBuffer
      ? encodeBinaryBroadcast(this.#topic, event, payload)
      : encodeText(broadcast(this.#topic, event, payload));
  }
}

interface Member {
  /** The socket. */
  readonly sub: Subscriber;
  /** Messages held back while this socket's history replays; null once live. */
  buffer: EncodedMessage[] | null;
  /** Live messages with a `seq` at or below this are skipped (already replayed). */
  after: number;
  /** This socket's view of the messages ({@linkcode JoinResult.view}); absent: as published. */
  view?: JoinResult["view"];
  /** Whether it was sent the topic's presence (see {@linkcode TopicHub.presenceSent}). */
  presenceSent: boolean;
}

/** One topic's subscribers on this instance. */
export class TopicHub {
  /** The topic. */
  readonly topic: string;
  readonly #members = new Map<Subscriber, Member>();
  /** Messages published through this hub. */
  published = 0;
  /** The topic's presence view on this instance, when the topic tracks presence. */
  presence: PresenceView | undefined;

  constructor(topic: string) {
    this.topic = topic;
  }

  /** Subscribers, pending ones included. */
  get size(): number {
    return this.#members.size;
  }

  /**
   * Sends `message` to every subscriber: encoded once per format, the same bytes to each. The loop
   * allocates nothing per subscriber (no entry pairs, no per-call destructuring).
   * @param presence a presence broadcast: it goes only to subscribers already sent the topic's
   *   presence ({@linkcode presenceSent}); the others get a state that includes it when they are
   */
  publish(message: TopicMessage, presence = false): void {
    this.published++;
    const encoded = new EncodedMessage(this.topic, message);
    const priority = message.priority ?? "normal";
    const seq = message.seq;
    let json: string | Uint8Array | undefined;
    let protobuf: string | Uint8Array | undefined;
    let views: Map<TopicMessage, EncodedMessage> | undefined;
    for (const member of this.#members.values()) {
      if (presence && !member.presenceSent) continue;
      if (member.buffer !== null) {
        member.buffer.push(encoded);
        continue;
      }
      if (seq !== undefined && seq <= member.after) continue;
      const sub = member.sub;
      if (member.view !== undefined) {
        // A socket with its own view: one encoding per distinct message the views return.
        const seen = member.view(message);
        if (seen === null) continue;
        if (seen !== message) {
          views ??= new Map();
          let viewed = views.get(seen);
          if (viewed === undefined) views.set(seen, viewed = new EncodedMessage(this.topic, seen));
          sub.deliver(viewed.encoded(sub.format), seen.priority ?? priority);
          continue;
        }
      }
      if (sub.format === "json") sub.deliver(json ??= encoded.encoded("json"), priority);
      else sub.deliver(protobuf ??= encoded.encoded("protobuf"), priority);
    }
  }

  /** Adds a subscriber in the pending state: live messages are held until {@linkcode activate}. */
  addPending(sub: Subscriber): void {
    this.#members.set(sub, { sub, buffer: [], after: -Infinity, presenceSent: false });
  }

  /**
   * Notes that `sub` was just sent the topic's presence (its `presence_state`, or the count): from
   * now on it gets presence broadcasts. Until then they would be redundant, the state it is sent
   * being built after them; at a live event, where thousands join within one diff window, they
   * were most of the bytes sent.
   */
  presenceSent(sub: Subscriber): void {
    const member = this.#members.get(sub);
    if (member) member.presenceSent = true;
  }

  /**
   * Makes a pending subscriber live: releases what was held, skipping messages whose `seq` is at
   * or below `after` (the last one its replay sent).
   */
  activate(
    sub: Subscriber,
    after = -Infinity,
    view?: JoinResult["view"],
  ): void {
    const member = this.#members.get(sub);
    if (!member || !member.buffer) return;
    const held = member.buffer;
    member.buffer = null;
    member.after = after;
    if (telemetry.socketJoin.hasSubscribers && sub.info) {
      telemetry.socketJoin.publish({ socketId: sub.info.id, topic: this.topic });
    }
    if (view !== undefined) member.view = view;
    for (const encoded of held) {
      const { seq, priority } = encoded.message;
      if (seq !== undefined && seq <= after) continue;
      const seen = view === undefined ? encoded.message : view(encoded.message);
      if (seen === null) continue;
      const out = seen === encoded.message ? encoded : new EncodedMessage(this.topic, seen);
      sub.deliver(out.encoded(sub.format), seen.priority ?? priority ?? "normal");
    }
  }

  /** Removes a subscriber; returns whether it was there. */
  remove(sub: Subscriber): boolean {
    const member = this.#members.get(sub);
    if (!member) return false;
    this.#members.delete(sub);
    // Only a live member had joined (a pending one's join failed or was cut short).
    if (member.buffer === null && telemetry.socketLeave.hasSubscribers && sub.info) {
      telemetry.socketLeave.publish({ socketId: sub.info.id, topic: this.topic });
    }
    return true;
  }
}

/** Starts per-topic extras (presence) when a hub opens; returns their stop function. */
export type HubAttach = (hub: TopicHub, match: TopicMatch) => Promise<() => void>;

interface HubSlot {
  hub: TopicHub;
  refs: number;
  ready: Promise<void>;
  stops: (() => void)[];
}

/** Opens a hub per topic on first use and closes it when its last socket leaves. */
export class Fanout {
  readonly #slots = new Map<string, HubSlot>();
  readonly #attach?: HubAttach;

  /** @param attach per-topic extras to start with each hub (presence) */
  constructor(attach?: HubAttach) {
    this.#attach = attach;
  }

  /** Topics with at least one socket (or a join in progress) on this instance. */
  get topics(): number {
    return this.#slots.size;
  }

  /** The hub of `topic`, if open. */
  hub(topic: string): TopicHub | undefined {
    return this.#slots.get(topic)?.hub;
  }

  /**
   * Takes a reference on the hub of `topic`, opening it (handler feed, then extras) on first use.
   * Pair every call with {@linkcode release}, also when this throws.
   */
  async acquire(topic: string, match: TopicMatch): Promise<TopicHub> {
    let slot = this.#slots.get(topic);
    if (!slot) {
      const hub = new TopicHub(topic);
      const created: HubSlot = { hub, refs: 0, stops: [], ready: Promise.resolve() };
      created.ready = (async () => {
        if (match.handler.open) {
          created.stops.push(
            await match.handler.open(topic, match.name, (m) => hub.publish(m)),
          );
        }
        if (this.#attach) created.stops.push(await this.#attach(hub, match));
      })();
      slot = created;
      this.#slots.set(topic, slot);
    }
    slot.refs++;
    await slot.ready;
    return slot.hub;
  }

  /** Drops a reference taken by {@linkcode acquire}; the last one stops the topic's feed. */
  release(topic: string, sub?: Subscriber): void {
    const slot = this.#slots.get(topic);
    if (!slot) return;
    if (sub) slot.hub.remove(sub);
    if (--slot.refs > 0) return;
    this.#slots.delete(topic);
    slot.ready.then(() => stopAll(slot.stops, topic), () => stopAll(slot.stops, topic));
  }

  /** Stops every feed. */
  close(): void {
    for (const [topic, slot] of this.#slots) {
      slot.ready.then(() => stopAll(slot.stops, topic), () => stopAll(slot.stops, topic));
    }
    this.#slots.clear();
  }
}

function stopAll(stops: (() => void)[], topic: string): void {
  for (const stop of stops.splice(0)) {
    try {
      stop();
    } catch (error) {
      // A feed that fails to stop must not keep the others running.
      log.warn("topic feed failed to stop; it may go on feeding a topic nobody holds", {
        error,
        topic,
      });
    }
  }
}
