// deno-lint-ignore-file no-explicit-any
import assert from "node:assert/strict";
import { connect, disconnect, join, serve } from "../realtime/_socket_helpers.ts";
import { until } from "../_helpers.ts";

const ADMIN = "sk_chorus_socket-admin-secret-012345";

Deno.test("[ws] with auth on, a socket needs a token and joins only what its scopes allow", async () => {
  const served = await serve({
    config: { auth: true, adminToken: ADMIN },
    realtime: { revalidateMs: 50 },
  });
  const { chorus } = served;
  const sockets: any[] = [];
  try {
    const { token, info } = await chorus.tokens.create({ scopes: ["kv:read"], prefix: "t1/" });
    // No token: the upgrade is refused with 401 `unauthorized`, as HTTP refuses it.
    const res = await fetch(`http://127.0.0.1:${served.port}/socket/websocket?vsn=2.0.0`, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "x",
        "sec-websocket-version": "13",
      },
    });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.code, "unauthorized");

    const socket = connect(served.url, { token });
    sockets.push(socket);
    const ok = socket.channel("kv:t1/a", {});
    await join(ok);
    await assert.rejects(
      join(socket.channel("kv:t2/a", {})),
      (e: any) => e.reason === "unauthorized",
    );
    await assert.rejects(
      join(socket.channel("context:t1/doc", {})),
      (e: any) => e.reason === "unauthorized",
    );
    const put = await new Promise<any>((resolve) =>
      ok.push("put", { value: 1 }).receive("ok", () => resolve("ok")).receive("error", resolve)
    );
    assert.equal(put.reason, "unauthorized", "a read-only token cannot write through the socket");

    // The token is revoked while the socket is open: the joined channel is closed.
    let closed = false;
    ok.onClose(() => closed = true);
    await chorus.tokens.revoke(info.id);
    await until(() => closed, "phx_close after revocation");

    // The phoenix 1.8 authToken (subprotocol) works too.
    const second = await chorus.tokens.create({ scopes: ["kv:read"] });
    const viaProtocol = connect(served.url, {}, { authToken: second.token });
    sockets.push(viaProtocol);
    await join(viaProtocol.channel("kv:any", {}));
  } finally {
    for (const s of sockets) await disconnect(s);
    await served.close();
  }
});
