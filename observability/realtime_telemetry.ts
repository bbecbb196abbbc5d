/**
 * The socket telemetry that the session's server sees from outside: `chorus:socket.connect` when
 * a WebSocket is accepted, `chorus:socket.drop` when it closes, and `chorus:presence` for every
 * presence this instance tracks or untracks. Joins and leaves are published by the topic hubs
 * (`realtime/fanout.ts`), where a channel goes live and ends.
 * @module
 */
import type { SessionSink, SocketSession } from "../realtime/socket.ts";
import { RealtimeServer } from "../realtime/server.ts";
import { telemetry } from "./telemetry.ts";

/** A {@linkcode RealtimeServer} that publishes connect, drop and presence telemetry events. */
export class ObservedRealtimeServer extends RealtimeServer {
  /** Same as {@linkcode RealtimeServer}; also observes presence when it is on. */
  constructor(...args: ConstructorParameters<typeof RealtimeServer>) {
    super(...args);
    const presence = this.presence;
    if (!presence) return;
    const track = presence.track.bind(presence);
    const untrack = presence.untrack.bind(presence);
    presence.track = async (topic, key, fields) => {
      if (!telemetry.presence.hasSubscribers) return await track(topic, key, fields);
      const started = performance.now();
      const tracked = await track(topic, key, fields);
      const durationMs = performance.now() - started;
      telemetry.presence.publish({ action: "join", topic, key, durationMs });
      return tracked;
    };
    presence.untrack = async (topic, key, meta) => {
      if (!telemetry.presence.hasSubscribers) return await untrack(topic, key, meta);
      const started = performance.now();
      await untrack(topic, key, meta);
      const durationMs = performance.now() - started;
      telemetry.presence.publish({ action: "leave", topic, key, durationMs });
    };
  }

  /** Starts a session as {@linkcode RealtimeServer.attach} does, publishing connect and drop. */
  override attach(
    sink: SessionSink,
    params?: Record<string, string>,
    options?: Parameters<RealtimeServer["attach"]>[2],
  ): SocketSession {
    const session = super.attach(sink, params, options);
    const socketId = session.info.id;
    if (telemetry.socketConnect.hasSubscribers) {
      telemetry.socketConnect.publish({
        socketId,
        userId: session.info.userId,
        format: session.format,
      });
    }
    if (sink instanceof WebSocket) {
      const opened = performance.now();
      sink.addEventListener("close", (e) => {
        if (!telemetry.socketDrop.hasSubscribers) return;
        const durationMs = performance.now() - opened;
        telemetry.socketDrop.publish({ socketId, code: e.code, reason: e.reason, durationMs });
      }, { once: true });
    }
    return session;
  }
}
