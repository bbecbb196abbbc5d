import assert from "node:assert/strict";
import { openTest, until } from "../_helpers.ts";

const ADMIN = "sk_chorus_test-admin-secret-0123456789";
const CHUNK = new Uint8Array(64 * 1024);

/** A Chorus with auth on, served on a real port (bodies are streamed, as from curl). */
async function serve(config: Record<string, unknown> = {}) {
  const opened = await openTest({ config: { auth: true, adminToken: ADMIN, ...config } });
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    opened.chorus.app.fetch,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  return {
    ...opened,
    base,
    async close() {
      await server.shutdown();
      await opened.chorus.close();
    },
  };
}

/** A chunked body of up to `total` bytes that counts what the server made it produce. */
function countedBody(total: number, first?: Uint8Array) {
  const state = { sent: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      if (first) {
        controller.enqueue(first);
        state.sent += first.byteLength;
      }
    },
    pull(controller) {
      if (state.sent >= total) return controller.close();
      controller.enqueue(CHUNK);
      state.sent += CHUNK.byteLength;
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

Deno.test("[http] an unauthenticated 300 MB chunked upload is refused before its body is read", async () => {
  const s = await serve();
  try {
    for (const path of ["/api/v1/admin/restore", "/api/v1/kv/a"]) {
      const { stream, state } = countedBody(300_000_000);
      const upload = new AbortController();
      const res = await fetch(`${s.base}${path}`, {
        signal: upload.signal,
        method: path.endsWith("restore") ? "POST" : "PUT",
        headers: {
          "content-type": path.endsWith("restore") ? "application/gzip" : "application/json",
        },
        body: stream,
      });
      assert.equal(res.status, 401, path);
      assert.equal((await res.json()).error.code, "unauthorized");
      // Only what the sockets' buffers take before the answer: nowhere near the 300 MB.
      assert.ok(state.sent < 32 * 1024 * 1024, `${path}: ${state.sent} bytes pulled`);
      upload.abort();
    }
  } finally {
    await s.close();
  }
});

Deno.test("[http] a chunked body over the limit is 413 payload_too_large, not a parse error", async () => {
  const s = await serve({ maxBody: 100_000 });
  try {
    const { stream } = countedBody(10_000_000, new TextEncoder().encode('{"value":"'));
    const res = await fetch(`${s.base}/api/v1/kv/a`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
      body: stream,
    });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, "payload_too_large");
    const declared = await fetch(`${s.base}/api/v1/kv/a`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ value: "x".repeat(200_000) }),
    });
    assert.equal(declared.status, 413);
    assert.equal((await declared.json()).error.code, "payload_too_large");
  } finally {
    await s.close();
  }
});

Deno.test("[http] a body that stops arriving is cut off at the write deadline with 504", async () => {
  const s = await serve({ requestTimeoutMs: 2_000 });
  try {
    const port = Number(new URL(s.base).port);
    const heads = [
      'Content-Length: 100\r\n\r\n{"value":',
      'Transfer-Encoding: chunked\r\n\r\n9\r\n{"value":\r\n',
    ];
    for (const rest of heads) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        const idle = s.clock.pending;
        await conn.write(new TextEncoder().encode(
          `PUT /api/v1/kv/a HTTP/1.1\r\nHost: chorus\r\nAuthorization: Bearer ${ADMIN}\r\n` +
            `Content-Type: application/json\r\n${rest}`,
        ));
        // Once the route waits on the body its deadline is a timer on the clock: then pass it.
        await until(() => s.clock.pending > idle, "the write deadline to be set");
        s.clock.advance(2_200);
        const buf = new Uint8Array(4096);
        const n = await conn.read(buf);
        const answer = new TextDecoder().decode(buf.subarray(0, n ?? 0));
        assert.match(answer, /^HTTP\/1\.1 504/, rest);
        assert.match(answer, /"code":"timeout"/);
      } finally {
        conn.close();
      }
    }
  } finally {
    await s.close();
  }
});

Deno.test("[http] a client that goes away while sending its body is not a server error", async () => {
  const s = await serve();
  try {
    const port = Number(new URL(s.base).port);
    for (let i = 0; i < 3; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode(
        `PUT /api/v1/kv/a HTTP/1.1\r\nHost: chorus\r\nAuthorization: Bearer ${ADMIN}\r\n` +
          `Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"value":`,
      ));
      await new Promise((r) => setTimeout(r, 20));
      conn.close();
    }
    await new Promise((r) => setTimeout(r, 100));
    const metrics = await (await fetch(`${s.base}/metrics`)).text();
    assert.doesNotMatch(metrics, /chorus_http_request[^\n]*status="500"/);
  } finally {
    await s.close();
  }
});

Deno.test("[http] an empty restore that names a JSON type is read as a backup (400), never as JSON first (500)", async () => {
  const { chorus } = await openTest();
  try {
    for (const type of ["application/json", "application/vnd.example+json"]) {
      const res = await chorus.app.request("/api/v1/admin/restore?force=true", {
        method: "POST",
        headers: { "content-type": type, "content-length": "0" },
        body: "",
      });
      assert.equal(res.status, 400, type);
      assert.equal((await res.json()).error.code, "invalid_request");
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[http] a body longer than its declared length (a request built in process) is still held to the limit", async () => {
  const { chorus } = await openTest({ config: { maxBody: 100 } });
  try {
    const res = await chorus.app.request("/api/v1/kv/a", {
      method: "PUT",
      headers: { "content-type": "application/json", "content-length": "20" },
      body: JSON.stringify({ value: "x".repeat(500) }),
    });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, "payload_too_large");
    assert.equal(await chorus.kv.get("a"), null);
  } finally {
    await chorus.close();
  }
});
