/**
 * The reference for the socket fan-out benchmark: a bare `Deno.serve` + `Deno.upgradeWebSocket`
 * server keeping a Set of sockets. It answers a Phoenix join with a minimal ok reply (so the load
 * client is the same for both servers) and, on `PUT /api/v1/kv/:key` with `{"value": …}`, sends
 * one Phoenix-shaped `[null,null,"kv:<key>","change",{…}]` text frame to every socket: the same
 * publish path shape as Chorus (HTTP in → broadcast out) with no actors, KV, presence or outbox.
 * `GET /__bench/gc` runs a full GC when started with `--v8-flags=--expose-gc` and reports the heap.
 *
 * With `presence` it also sends the frames Phoenix Presence makes a server send, with Chorus's
 * frame sizes but no KV or actors: each joiner gets the whole list in one `presence_state`, and
 * every 50 ms the joins and leaves since go to every socket as `presence_diff` frames of at most
 * 4 KB. It is the reference that shows what the presence traffic itself costs a Deno server.
 * Usage: deno run -A bench/load/bare_ws_server.ts <port> [presence]
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
    if (event === "phx_leave") leave(socket);
    const reply = [joinRef, ref, topic, "phx_reply", { status: "ok", response: {} }];
    socket.send(JSON.stringify(reply));
    if (event === "phx_join") presence?.join(socket, joinRef, topic);
  };
  socket.onclose = () => leave(socket);
  socket.onerror = () => {};
}

function leave(socket: WebSocket): void {
  if (sockets.delete(socket)) presence?.leave(socket);
}

/** Presence's frames for one topic, without storage: a list in memory and a 50 ms diff timer. */
class PresenceTraffic {
  static readonly MAX_FRAME = 4096;
  readonly #fragments = new Map<WebSocket, string>();
  #joins: string[] = [];
  #leaves: string[] = [];
  #topic = "";
  #timer?: ReturnType<typeof setTimeout>;

  join(socket: WebSocket, joinRef: string, topic: string): void {
    this.#topic = topic;
    const meta = { phx_ref: crypto.randomUUID().slice(0, 16), online_at: Date.now() };
    const fragment = `${JSON.stringify(crypto.randomUUID().slice(0, 26))}:${
      JSON.stringify({ metas: [meta] })
    }`;
    this.#fragments.set(socket, fragment);
    const list = [...this.#fragments.values()].join(",");
    socket.send(
      `[${JSON.stringify(joinRef)},null,${JSON.stringify(topic)},"presence_state",{${list}}]`,
    );
    this.#joins.push(fragment);
    this.#arm();
  }

  leave(socket: WebSocket): void {
    const fragment = this.#fragments.get(socket);
    if (fragment === undefined) return;
    this.#fragments.delete(socket);
    this.#leaves.push(fragment);
    this.#arm();
  }

  #diff(joins: string, leaves: string): string {
    return `[null,null,${
      JSON.stringify(this.#topic)
    },"presence_diff",{"joins":{${joins}},"leaves":{${leaves}}}]`;
  }

  #arm(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      const frames = [
        ...chunks(this.#joins).map((part) => this.#diff(part, "")),
        ...chunks(this.#leaves).map((part) => this.#diff("", part)),
      ].filter((frame) => !frame.includes('{"joins":{},"leaves":{}}'));
      this.#joins = [];
      this.#leaves = [];
      for (const frame of frames) {
        for (const socket of sockets) if (socket.readyState === WebSocket.OPEN) socket.send(frame);
      }
    }, 50);
  }
}

/** Joins JSON fragments with commas into runs of at most `MAX_FRAME` bytes (always one run). */
function chunks(fragments: string[]): string[] {
  const out = [""];
  for (const fragment of fragments) {
    const last = out[out.length - 1];
    if (last && last.length + fragment.length + 1 > PresenceTraffic.MAX_FRAME) out.push(fragment);
    else out[out.length - 1] = last ? `${last},${fragment}` : fragment;
  }
  return out;
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

const presence = Deno.args[1] === "presence" ? new PresenceTraffic() : null;

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
