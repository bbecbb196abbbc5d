// deno-lint-ignore-file no-explicit-any
/**
 * Socket test helpers: a Chorus served on port 0 for the real `phoenix` client, and small
 * promise wrappers around its callback API.
 * @module
 */
import { Chorus, type ChorusOptions } from "../../mod.ts";
// The client ships no types (docs/socket.md, "Clients"): it is used untyped.
import { Socket } from "phoenix";

/** A served instance. */
export interface Served {
  chorus: Chorus;
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Opens a Chorus and serves it on 127.0.0.1 (port 0 unless given). */
export async function serve(options: ChorusOptions = {}, port = 0): Promise<Served> {
  const chorus = await Chorus.open({ path: ":memory:", ...options });
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, chorus.fetch);
  return {
    chorus,
    port: server.addr.port,
    url: `ws://127.0.0.1:${server.addr.port}/socket`,
    async close() {
      await chorus.close();
      await server.shutdown();
    },
  };
}

/** A phoenix client with fast reconnects, connected. */
export function connect(url: string, params: Record<string, string> = {}, opts = {}): any {
  const socket = new Socket(url, {
    params,
    reconnectAfterMs: () => 20,
    rejoinAfterMs: () => 50,
    ...opts,
  });
  socket.connect();
  return socket;
}

/** Joins a channel; resolves with the ok response, rejects with the error response. */
export function join(channel: { join(): any }): Promise<any> {
  return new Promise((resolve, reject) => {
    channel.join().receive("ok", resolve).receive("error", reject).receive(
      "timeout",
      () => reject(new Error("join timeout")),
    );
  });
}

/** Pushes and resolves with `{status, response}`. */
export function pushed(channel: any, event: string, payload: unknown): Promise<any> {
  return new Promise((resolve) => {
    channel.push(event, payload)
      .receive("ok", (response: unknown) => resolve({ status: "ok", response }))
      .receive("error", (response: unknown) => resolve({ status: "error", response }))
      .receive("timeout", () => resolve({ status: "timeout" }));
  });
}

/** Disconnects a client and waits for its close. */
export function disconnect(socket: any): Promise<void> {
  return new Promise((resolve) => socket.disconnect(() => resolve(), 1000, "bye"));
}

/** A reply to a {@linkcode RawSocket} frame. */
export interface RawReply {
  status: string;
  response: any;
}

/** A bare WebSocket speaking Phoenix V2 JSON frames, with replies matched by ref. */
export interface RawSocket {
  /** Sends `[joinRef, ref, topic, event, payload]` with a fresh ref; resolves with its reply. */
  push(topic: string, event: string, payload?: unknown, joinRef?: string | null): Promise<RawReply>;
  /** Closes the socket and waits for the close. */
  close(): Promise<void>;
}

/**
 * Opens `<url>/websocket?vsn=2.0.0&<params>` without the phoenix client (no heartbeats or
 * rejoins of its own: every frame is the test's).
 */
export async function rawSocket(
  url: string,
  params: Record<string, string> = {},
): Promise<RawSocket> {
  const query = new URLSearchParams({ vsn: "2.0.0", ...params });
  const ws = new WebSocket(`${url}/websocket?${query}`);
  const waiting = new Map<string, (reply: RawReply) => void>();
  const closed = new Promise<void>((resolve) => ws.addEventListener("close", () => resolve()));
  ws.onmessage = (e) => {
    const [, ref, , event, payload] = JSON.parse(e.data as string);
    if (event !== "phx_reply" || ref === null) return;
    waiting.get(ref)?.(payload);
    waiting.delete(ref);
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("raw socket refused"));
  });
  let next = 0;
  return {
    push(topic, event, payload = {}, joinRef = null) {
      const ref = String(++next);
      return new Promise((resolve) => {
        waiting.set(ref, resolve);
        ws.send(JSON.stringify([joinRef, ref, topic, event, payload]));
      });
    },
    async close() {
      if (ws.readyState !== WebSocket.CLOSED) ws.close(1000, "bye");
      await closed;
    },
  };
}

/** A WebSocket upgrade request by `fetch` (refused ones answer with a status and a body). */
export async function upgradeStatus(
  port: number,
  params: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; body: any }> {
  const query = new URLSearchParams({ vsn: "2.0.0", ...params });
  const res = await fetch(`http://127.0.0.1:${port}/socket/websocket?${query}`, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
    },
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body };
}
