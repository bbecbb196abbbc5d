// deno-lint-ignore-file no-explicit-any
/**
 * Socket test helpers: a Chorus served on port 0 for the real `phoenix` client, and small
 * promise wrappers around its callback API.
 * @module
 */
import { Chorus, type ChorusOptions } from "../../mod.ts";
// The client ships no types (shared/PHOENIX.md §7): it is used untyped.
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

/** Resolves when `check()` is true, polling every 5 ms; rejects after `ms`. */
export async function until(check: () => boolean, ms = 3000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Disconnects a client and waits for its close. */
export function disconnect(socket: any): Promise<void> {
  return new Promise((resolve) => socket.disconnect(() => resolve(), 1000, "bye"));
}
