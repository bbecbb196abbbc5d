/**
 * The reference for the socket fan-out benchmark: a bare `Deno.serve` + `Deno.upgradeWebSocket`
 * server keeping a Set of sockets. It answers a Phoenix join with a minimal ok reply (so the load
 * client is the same for both servers) and, on `PUT /api/v1/kv/:key` with `{"value": …}`, sends
 * one Phoenix-shaped `[null,null,"kv:<key>","change",{…}]` text frame to every socket: the same
 * publish path shape as Chorus (HTTP in → broadcast out) with no actors, KV, presence or outbox.
 * `GET /__bench/gc` runs a full GC when started with `--v8-flags=--expose-gc` and reports the heap.
 * Usage: deno run -A bench/load/bare_ws_server.ts <port>
 */
import { getHeapSpaceStatistics } from "node:v8";

/** Size of each V8 heap space in bytes (new space, old space…), to see where the heap grows. */
function heapSpaces(): Record<string, number> {
  return Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
}
const sockets = new Set<WebSocket>();
let version = 0;

function onSocket(socket: WebSocket): void {
  socket.onmessage = (e) => {
    if (typeof e.data !== "string") return;
    const [joinRef, ref, topic, event] = JSON.parse(e.data);
    if (event === "phx_join") sockets.add(socket);
    if (event === "phx_leave") sockets.delete(socket);
    const reply = [joinRef, ref, topic, "phx_reply", { status: "ok", response: {} }];
    socket.send(JSON.stringify(reply));
  };
  socket.onclose = () => sockets.delete(socket);
  socket.onerror = () => {};
}

async function publish(key: string, request: Request): Promise<Response> {
  const body = await request.json();
  version++;
  const change = { key, op: "set", version, expires_at: null, at: Date.now(), value: body.value };
  const frame = JSON.stringify([null, null, `kv:${key}`, "change", change]);
  for (const socket of sockets) {
    if (socket.readyState === WebSocket.OPEN) socket.send(frame);
  }
  return Response.json({ key, version });
}

Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
Deno.serve(
  { hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen: () => {} },
  (request) => {
    const { pathname } = new URL(request.url);
    if (pathname === "/socket/websocket") {
      const { socket, response } = Deno.upgradeWebSocket(request);
      onSocket(socket);
      return response;
    }
    if (request.method === "PUT" && pathname.startsWith("/api/v1/kv/")) {
      return publish(pathname.slice("/api/v1/kv/".length), request);
    }
    if (pathname === "/__bench/gc") {
      (globalThis as { gc?: () => void }).gc?.();
      return Response.json({
        sockets: sockets.size,
        memory: Deno.memoryUsage(),
        spaces: heapSpaces(),
      });
    }
    return new Response("not found", { status: 404 });
  },
);
