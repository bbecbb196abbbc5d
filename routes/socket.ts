/**
 * `GET /socket/websocket`: the Phoenix Channels v2 endpoint, also served at `GET /ws/websocket`
 * so Kronop's clients (`new Phoenix.Socket("/ws")`) connect unchanged. The route only hands the
 * raw request to the real-time server, which needs it for `Deno.upgradeWebSocket`.
 * See docs/socket.md.
 * @module
 */
import { Hono } from "hono";
import { clientAddress } from "./_common.ts";
import { noteAddress } from "../auth/rate_limit.ts";
import type { RealtimeServer } from "../realtime/server.ts";

/** Dependencies of {@linkcode socketRoutes}. */
export interface SocketDeps {
  /** The instance's real-time server. */
  realtime: RealtimeServer;
}

/** The socket upgrade routes, mounted at the root (`/socket/websocket`, `/ws/websocket`). */
export function socketRoutes(deps: SocketDeps): Hono {
  const app = new Hono();
  app.get("/socket/websocket", (c) => deps.realtime.upgrade(c.req.raw));
  // Kronop's path. The app notes client addresses for `/socket/*` only: note this one here.
  app.get("/ws/websocket", (c) => {
    noteAddress(c.req.raw, clientAddress(c));
    return deps.realtime.upgrade(c.req.raw);
  });
  return app;
}
