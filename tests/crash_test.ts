import assert from "node:assert/strict";
import { Chorus } from "../mod.ts";
import { type ServerProcess, spawnServer, tempKvPath, until } from "./_helpers.ts";

const SERVER = new URL("./fixtures/server.ts", import.meta.url).pathname;

Deno.test("A server killed with SIGKILL mid-stream keeps every acknowledged write", async () => {
  const { path, cleanup } = await tempKvPath();
  let server: ServerProcess | undefined;
  try {
    server = spawnServer(["--unstable-kv", SERVER, path], {});
    const port = Number((await server.waitFor(/listening (\d+)/))[1]);
    const { child } = server;
    const acked = new Map<string, { value: number; version: number }>();
    let stop = false;
    let running = 0;
    const writer = async (w: number) => {
      running++;
      try {
        for (let n = 0; !stop; n++) {
          const key = `w${w}-${n % 20}`;
          try {
            const res = await fetch(`http://127.0.0.1:${port}/api/v1/kv/${key}`, {
              method: "PUT",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ value: n }),
            });
            const body = await res.json();
            if (res.status === 200) acked.set(key, { value: n, version: body.version });
          } catch {
            return; // the server is gone
          }
        }
      } finally {
        running--;
      }
    };
    const writers = Array.from({ length: 32 }, (_, w) => writer(w));
    try {
      // Let group-committed writes flow, then kill the process without warning. A server that
      // stops answering or never acknowledges fails the test instead of keeping it waiting.
      await until(() => acked.size >= 300 || running === 0, 60_000, "300 acknowledged writes");
      assert.ok(acked.size >= 300, `the writers stopped after ${acked.size} acknowledged writes`);
      child.kill("SIGKILL");
      await child.status;
    } finally {
      stop = true;
      await server.kill();
      await Promise.all(writers);
    }

    const restarted = await Chorus.open({ path });
    try {
      for (const [key, { value, version }] of acked) {
        const found = await restarted.kv.get(key, { consistency: "strong" });
        assert.ok(found, `${key} was acknowledged but is missing`);
        // A later write may have landed without its ack reaching us; never an older one.
        assert.ok(found.version >= version, `${key}: version ${found.version} < acked ${version}`);
        if (found.version === version) assert.equal(found.value, value);
      }
      // The restarted instance accepts writes on the same keys with rising versions.
      const [someKey, last] = [...acked][0];
      const again = await restarted.kv.put(someKey, "after");
      assert.ok(again.version > last.version);
    } finally {
      await restarted.close();
    }
  } finally {
    await server?.kill();
    await cleanup();
  }
});
