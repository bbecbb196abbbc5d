/**
 * `GET /socket/websocket`: the Phoenix Channels v2 endpoint. The route only hands the raw
 * request to the real-time server, which needs it for `Deno.upgradeWebSocket`.
 * See docs/socket.md.
 * @module
 */
import { Hono } from "hono";
import type { RealtimeServer } from "../realtime/server.ts";

/** Dependencies of {@linkcode socketRoutes}. */
export interface SocketDeps {
  /** The instance's real-time server. */
  realtime: RealtimeServer;
}

/** The socket upgrade route, mounted at the root (`/socket/websocket`). */
export function socketRoutes(deps: SocketDeps): Hono {
  const app = new Hono();
  app.get("/socket/websocket", (c) => deps.realtime.upgrade(c.req.raw));
  return app;
}
