/**
 * The socket telemetry that the session's server sees from outside: `chorus:socket.connect` when
 * a session starts, `chorus:socket.drop` when its transport closes, and `chorus:presence` for every
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
    // Without subscribers the call goes straight through (no extra async frame per join).
    presence.track = (topic, key, fields) => {
      if (!telemetry.presence.hasSubscribers) return track(topic, key, fields);
      const started = performance.now();
      return track(topic, key, fields).then((tracked) => {
        const durationMs = performance.now() - started;
        telemetry.presence.publish({ action: "join", topic, key, durationMs });
        return tracked;
      });
    };
    presence.untrack = (topic, key, meta) => {
      if (!telemetry.presence.hasSubscribers) return untrack(topic, key, meta);
      const started = performance.now();
      return untrack(topic, key, meta).then(() => {
        const durationMs = performance.now() - started;
        telemetry.presence.publish({ action: "leave", topic, key, durationMs });
      });
    };
  }

  /** Starts a session as {@linkcode RealtimeServer.attach} does, publishing connect. */
  override attach(
    sink: SessionSink,
    params?: Record<string, string>,
    options?: Parameters<RealtimeServer["attach"]>[2],
  ): SocketSession {
    const session = super.attach(sink, params, options);
    if (telemetry.socketConnect.hasSubscribers) {
      telemetry.socketConnect.publish({
        socketId: session.info.id,
        userId: session.info.userId,
        format: session.format,
      });
    }
    return session;
  }

  /** Publishes the drop when a socket's transport closes (nothing is held per socket for it). */
  protected override transportClosed(
    session: SocketSession,
    code: number,
    reason: string,
    durationMs: number,
  ): void {
    if (!telemetry.socketDrop.hasSubscribers) return;
    telemetry.socketDrop.publish({ socketId: session.info.id, code, reason, durationMs });
  }
}
