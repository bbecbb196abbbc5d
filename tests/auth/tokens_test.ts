import assert from "node:assert/strict";
import { ManualClock } from "../../clock.ts";
import { Store } from "../../storage/store.ts";
import { sha256Hex, timingSafeEqual, TokenStore } from "../../auth/tokens.ts";

async function setup(adminToken?: string) {
  const kv = await Deno.openKv(":memory:");
  const clock = new ManualClock();
  const store = new Store(kv);
  return { kv, clock, store, tokens: new TokenStore(store, clock, adminToken) };
}

Deno.test("TokenStore stores only the hash and verifies the secret", async () => {
  const { kv, tokens } = await setup();
  try {
    const { token, info } = await tokens.create({ scopes: ["kv:read"], prefix: "t1/" });
    assert.match(token, /^sk_chorus_[A-Za-z0-9_-]{43}$/);
    const dump: string[] = [];
    for await (const e of kv.list({ prefix: [] })) dump.push(JSON.stringify(e.value));
    assert.ok(!dump.join().includes(token), "the secret is never stored");
    assert.ok(dump.join().includes(await sha256Hex(token)));
    const principal = await tokens.verify(token);
    assert.equal(principal?.id, info.id);
    assert.deepEqual([...principal!.scopes], ["kv:read"]);
    assert.equal(principal?.prefix, "t1/");
    assert.equal(await tokens.verify(token.slice(0, -1) + "x"), null);
    assert.equal(await tokens.verify("sk_chorus_nope"), null);
    const listed = JSON.stringify(await tokens.list());
    assert.ok(!listed.includes(token) && !listed.includes(await sha256Hex(token)));
  } finally {
    kv.close();
  }
});

Deno.test("TokenStore: expired and revoked tokens stop verifying", async () => {
  const { kv, clock, tokens } = await setup();
  try {
    const short = await tokens.create({ scopes: ["admin"], ttl: 10 });
    assert.ok(await tokens.verify(short.token));
    clock.advance(10_001);
    assert.equal(await tokens.verify(short.token), null);
    const other = await tokens.create({ scopes: ["kv:write"] });
    assert.ok(await tokens.verify(other.token));
    await tokens.revoke(other.info.id);
    assert.equal(await tokens.verify(other.token), null);
    await assert.rejects(() => tokens.revoke(other.info.id), /no such token/);
  } finally {
    kv.close();
  }
});

Deno.test("TokenStore: a revocation on one instance reaches another within the cache time", async () => {
  const { kv, clock, store, tokens } = await setup();
  try {
    const second = new TokenStore(store, clock);
    const { token, info } = await tokens.create({ scopes: ["kv:read"] });
    assert.ok(await second.verify(token));
    await tokens.revoke(info.id);
    clock.advance(2001);
    assert.equal(await second.verify(token), null);
  } finally {
    kv.close();
  }
});

Deno.test("TokenStore: the configured admin token, bad scopes, and a one-time bootstrap", async () => {
  const { kv, tokens } = await setup("sk_chorus_configured-admin-secret");
  try {
    const admin = await tokens.verify("sk_chorus_configured-admin-secret");
    assert.ok(admin?.scopes.has("admin"));
    assert.equal(await tokens.bootstrap(), null, "no bootstrap when an admin token is configured");
    await assert.rejects(() => tokens.create({ scopes: ["root" as never] }), /unknown scope/);
    await assert.rejects(() => tokens.create({ scopes: [] }), /non-empty/);
  } finally {
    kv.close();
  }
  const fresh = await setup();
  try {
    const first = await fresh.tokens.bootstrap();
    assert.ok(first?.startsWith("sk_chorus_"));
    assert.ok((await fresh.tokens.verify(first!))?.scopes.has("admin"));
    assert.equal(await new TokenStore(fresh.store, fresh.clock).bootstrap(), null);
  } finally {
    fresh.kv.close();
  }
});

Deno.test("timingSafeEqual compares whole strings", () => {
  assert.ok(timingSafeEqual("abc", "abc"));
  assert.ok(!timingSafeEqual("abc", "abd"));
  assert.ok(!timingSafeEqual("abc", "abcd"));
  assert.ok(!timingSafeEqual("", "a"));
});
