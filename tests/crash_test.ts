import assert from "node:assert/strict";
import { Chorus } from "../mod.ts";
import { tempKvPath } from "./_helpers.ts";

async function startServer(path: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-kv",
      new URL("./fixtures/server.ts", import.meta.url).pathname,
      path,
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/listening (\d+)/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited before listening: ${text}`);
    text += value;
  }
  const port = Number(/listening (\d+)/.exec(text)![1]);
  // Keep draining stdout so the child never blocks on a full pipe.
  (async () => {
    try {
      while (!(await reader.read()).done);
    } catch { /* closed */ }
  })();
  return { child, port };
}

Deno.test("A server killed with SIGKILL mid-stream keeps every acknowledged write", async () => {
  const { path, cleanup } = await tempKvPath();
  const { child, port } = await startServer(path);
  const acked = new Map<string, { value: number; version: number }>();
  let stop = false;
  const writer = async (w: number) => {
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
  };
  const writers = Array.from({ length: 32 }, (_, w) => writer(w));
  // Let group-committed writes flow, then kill the process without warning.
  while (acked.size < 300) await new Promise((r) => setTimeout(r, 10));
  child.kill("SIGKILL");
  await child.status;
  stop = true;
  await Promise.all(writers);
  assert.ok(acked.size >= 300);

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
    await cleanup();
  }
});
