import assert from "node:assert/strict";
import { Hono } from "hono";
import { clientAddress } from "../../routes/_common.ts";

/** What `clientAddress` answers for a request served with `env` as its handler info. */
async function addressWith(env?: unknown): Promise<string> {
  const app = new Hono();
  app.get("/", (c) => c.text(clientAddress(c)));
  const res = await app.fetch(new Request("http://chorus.test/"), env as never);
  return await res.text();
}

Deno.test("[http] clientAddress reads Deno.serve's remote address and answers unknown, never throws, without one", async () => {
  assert.equal(
    await addressWith({ remoteAddr: { transport: "tcp", hostname: "10.1.2.3", port: 5000 } }),
    "10.1.2.3",
  );
  assert.equal(
    await addressWith({ remoteAddr: { transport: "tcp", hostname: "::1", port: 5000 } }),
    "::1",
  );
  // A request made in process, a Unix socket, or an app mounted with some other env.
  assert.equal(await addressWith(), "unknown");
  assert.equal(await addressWith({}), "unknown");
  assert.equal(await addressWith({ remoteAddr: { transport: "unix", path: "/tmp/s" } }), "unknown");
  assert.equal(await addressWith({ remoteAddr: "10.1.2.3" }), "unknown");
  assert.equal(await addressWith({ remoteAddr: null }), "unknown");
});

Deno.test("[http] a request served by Deno.serve has its real client address", async () => {
  const seen: string[] = [];
  const app = new Hono();
  app.get("/", (c) => {
    seen.push(clientAddress(c));
    return c.text("ok");
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  try {
    const res = await fetch(`http://127.0.0.1:${server.addr.port}/`);
    await res.body?.cancel();
    assert.deepEqual(seen, ["127.0.0.1"]);
  } finally {
    await server.shutdown();
  }
});
