/**
 * The real start as an operator runs it (`deno run start.ts`, what `deno task start` runs): a
 * start that cannot listen fails with one line and prints no token; SIGTERM stops it within the
 * shutdown timeout, closing sockets with 1001 and losing no acknowledged view.
 * @module
 */
import assert from "node:assert/strict";
import { Chorus } from "../mod.ts";
import { spawnServer, type StartedServer, startServer, tempKvPath } from "./_helpers.ts";

const START = new URL("../start.ts", import.meta.url).pathname;

Deno.test("[start] a port in use ends the start with one line, non-zero, and no admin token", async () => {
  const { path, cleanup } = await tempKvPath();
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (busy.addr as Deno.NetAddr).port;
    const task = spawnServer([START], {
      CHORUS_HOST: "127.0.0.1",
      CHORUS_LOG_LEVEL: "info",
      CHORUS_PORT: String(port),
      CHORUS_KV: path,
    });
    try {
      const { code } = await task.exited(30_000);
      const [stdout, stderr] = await task.output;
      const text = stderr + stdout;
      assert.notEqual(code, 0);
      assert.match(text, /cannot listen on 127\.0\.0\.1:\d+: the address is already in use/);
      assert.doesNotMatch(text, /sk_chorus_| {4}at /, "no token, no stack trace");
      assert.equal(text.trim().split("\n").length, 1, text);
    } finally {
      await task.kill();
    }
  } finally {
    busy.close();
    await cleanup();
  }
});

Deno.test("[start] SIGTERM stops the server in time: sockets get 1001, no acknowledged view is lost", async () => {
  const { path, cleanup } = await tempKvPath();
  let task: StartedServer | undefined;
  try {
    task = await startServer({
      CHORUS_LOG_LEVEL: "info",
      CHORUS_KV: path,
      CHORUS_AUTH: "off",
      CHORUS_SHUTDOWN_TIMEOUT: "8s",
    });
    const { port, child, output } = task;
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0`);
    const closed = new Promise<number>((resolve) => ws.onclose = (e) => resolve(e.code));
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    const joined = new Promise((resolve, reject) => {
      ws.onmessage = resolve;
      ws.addEventListener(
        "close",
        () => reject(new Error("the socket closed before the join reply")),
      );
    });
    ws.send(JSON.stringify(["1", "1", "reel:shutdown", "phx_join", {}]));
    await joined;
    let acknowledged = 0;
    for (let i = 0; i < 25; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/reels/shutdown/interactions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ type: "view", user_id: `viewer${i}` }),
      });
      await res.body?.cancel();
      if (res.status === 201) acknowledged++;
    }
    assert.equal(acknowledged, 25);
    const started = performance.now();
    child.kill("SIGTERM");
    const status = await task.exited(30_000);
    const took = performance.now() - started;
    assert.equal(status.code, 0, (await output).join("\n"));
    assert.ok(took < 8_000, `exit took ${Math.round(took)} ms`);
    assert.equal(await closed, 1001);
    assert.match((await output).join("\n"), /chorus stopped/);
    const reopened = await Chorus.open({ path });
    try {
      const state = await reopened.reels.get("shutdown", { consistency: "strong" });
      assert.equal(state.views, acknowledged);
    } finally {
      await reopened.close();
    }
  } finally {
    await task?.kill();
    await cleanup();
  }
});
