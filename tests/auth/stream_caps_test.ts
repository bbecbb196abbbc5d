import assert from "node:assert/strict";
import { serve } from "../realtime/_socket_helpers.ts";
import { StreamCaps } from "../../auth/stream_caps.ts";

Deno.test("StreamCaps counts per address and gives back each stream once", () => {
  const caps = new StreamCaps(2);
  const a1 = caps.acquire("a");
  caps.acquire("a");
  assert.throws(() => caps.acquire("a"), /limit/);
  caps.acquire("b"); // another address has its own count
  a1();
  a1(); // a second release gives nothing back twice
  assert.equal(caps.openFor("a"), 1);
  caps.acquire("a");
  assert.throws(() => caps.acquire("a"), /limit/);
  assert.doesNotThrow(() => new StreamCaps(0).acquire("a"), "0: no cap");
});

Deno.test("[http] one client address holds at most CHORUS_MAX_STREAMS_PER_CLIENT SSE streams and sockets", async () => {
  const served = await serve({ config: { maxStreamsPerClient: 2 } });
  const base = `http://127.0.0.1:${served.port}`;
  const streams: AbortController[] = [];
  const openStream = async () => {
    const abort = new AbortController();
    const res = await fetch(`${base}/api/v1/kv/capped/watch`, { signal: abort.signal });
    if (res.ok) streams.push(abort);
    else await res.body?.cancel();
    return res;
  };
  try {
    // A socket and a stream fill the cap of 2.
    const ws = new WebSocket(`ws://127.0.0.1:${served.port}/socket/websocket?vsn=2.0.0`);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    const closed = new Promise((resolve) => ws.onclose = resolve);
    assert.equal((await openStream()).status, 200);
    const third = await openStream();
    assert.equal(third.status, 429);
    assert.equal(third.headers.get("retry-after"), "1");
    const upgrade = await fetch(`${base}/socket/websocket?vsn=2.0.0`, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      },
    });
    assert.equal(upgrade.status, 429, "sockets count against the same cap");
    await upgrade.body?.cancel();
    // A closed socket gives its place back (the server sees the close handshake at once).
    ws.close();
    await closed;
    let reopened = 0;
    for (let i = 0; i < 200 && reopened !== 200; i++) {
      await new Promise((r) => setTimeout(r, 10));
      reopened = (await openStream()).status;
    }
    assert.equal(reopened, 200, "a closed socket gives its place back");
  } finally {
    for (const s of streams) s.abort();
    // The server learns that an SSE client left when it next writes to it: make it write.
    for (let i = 0; i < 2; i++) {
      await (await fetch(`${base}/api/v1/kv/capped`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ value: i }),
      })).body?.cancel();
      await new Promise((r) => setTimeout(r, 20));
    }
    await served.close();
  }
});
