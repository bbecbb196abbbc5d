import assert from "node:assert/strict";
import { ConfigError, loadConfig, parseDuration } from "../config.ts";
import { spawnServer } from "./_helpers.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/**
 * Runs `main.ts` with `env` and returns its exit code and stderr. A start that accepted the
 * configuration would keep running: after a minute the test fails and the process is killed,
 * instead of the suite waiting for it forever.
 */
async function runMain(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  const task = spawnServer(["--unstable-kv", MAIN], env);
  try {
    const { code } = await task.exited(60_000);
    const [, stderr] = await task.output;
    return { code, stderr };
  } finally {
    await task.kill();
  }
}

Deno.test("loadConfig resolves defaults", () => {
  const c = loadConfig({});
  assert.equal(c.port, 8000);
  assert.equal(c.kvPath, "./data/chorus.kv");
  assert.equal(c.readConsistency, "leader");
  assert.equal(c.maxBody, 1024 * 1024);
  assert.equal(c.compression, "gzip");
  assert.equal(c.compressionLevel, 6);
  assert.equal(c.compressionThreshold, 1024);
  assert.equal(c.deltaThreshold, 100);
  assert.equal(c.deltaTtlMs, 86_400_000);
  assert.equal(c.contextTtlMs, 6 * 3_600_000);
  assert.equal(c.contextAutoDelete, false);
  assert.equal(c.presenceListMax, 200);
  assert.equal(c.presenceStatsMs, 500);
  assert.equal(c.auth, true, "auth is on unless under deno task dev");
  assert.equal(loadConfig({}, { dev: true }).auth, false);
  assert.equal(loadConfig({}, { deploy: true }).kvPath, undefined);
  assert.equal(loadConfig({ CHORUS_KV: "https://kv.example.com/db" }).kvMaxChecks, 10);
});

Deno.test("loadConfig parses durations, sizes and lists", () => {
  const c = loadConfig({
    CHORUS_DELTA_TTL: "90m",
    CHORUS_CONTEXT_TTL: "3600",
    CHORUS_MAX_BODY: "2MiB",
    CHORUS_CORS_ORIGINS: "https://a.example.com, http://localhost:5173",
    CHORUS_RATE_LIMIT: "50",
    CHORUS_AUTH: "off",
    CHORUS_PRESENCE_STATS_INTERVAL: "2s",
  });
  assert.equal(c.presenceStatsMs, 2000);
  assert.equal(c.deltaTtlMs, 90 * 60_000);
  assert.equal(c.contextTtlMs, 3_600_000);
  assert.equal(c.maxBody, 2 * 1024 * 1024);
  assert.deepEqual(c.corsOrigins, ["https://a.example.com", "http://localhost:5173"]);
  assert.equal(c.rateLimit, 50);
  assert.equal(c.rateBurst, 50);
  assert.equal(c.auth, false);
  assert.equal(parseDuration("X", "500ms"), 500);
});

Deno.test("loadConfig names the variable of a bad value", () => {
  const bad: Record<string, string> = {
    CHORUS_PORT: "eighty",
    CHORUS_READ_CONSISTENCY: "sometimes",
    CHORUS_COMPRESSION: "zip",
    CHORUS_COMPRESSION_LEVEL: "11",
    CHORUS_MAX_BODY: "lots",
    CHORUS_DELTA_TTL: "1 day",
    CHORUS_AUTH: "maybe",
    CHORUS_CORS_ORIGINS: "https://a.example.com/path",
    CHORUS_RATE_LIMIT: "-1",
    CHORUS_EXPORT_PROVIDER: "http",
  };
  for (const [name, value] of Object.entries(bad)) {
    assert.throws(() => loadConfig({ [name]: value }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.ok(e.message.includes(name), `${name}: ${e.message}`);
      return true;
    });
  }
});

Deno.test("A bad CHORUS_* value stops the server with one line naming it", async () => {
  const out = await runMain({ CHORUS_PORT: "99999", CHORUS_KV: ":memory:" });
  assert.equal(out.code, 2);
  const lines = out.stderr.trim().split("\n");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /CHORUS_PORT="99999"/);
});

Deno.test("CHORUS_ADMIN_TOKEN must be 32+ characters from two character classes", () => {
  for (
    const weak of [
      "x",
      "sk_chorus_short-1",
      "a".repeat(64),
      "0123456789".repeat(4),
      "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGH",
    ]
  ) {
    assert.throws(() => loadConfig({ CHORUS_ADMIN_TOKEN: weak }), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /^CHORUS_ADMIN_TOKEN is too weak: use at least 32 characters/);
      if (weak.length > 8) assert.ok(!e.message.includes(weak), "the message never repeats it");
      return true;
    }, weak);
  }
  for (
    const strong of [
      "3f9a0c27e6b14d58a2c9f07e1b6d4a3c5e8f7a9b0c1d2e3f4a5b6c7d8e9f0a1b", // openssl rand -hex 32
      "sk_chorus_test-admin-secret-0123456789",
      "Q2hvcnVzIGFkbWluIHRva2VuIGZvciB0ZXN0cw==",
    ]
  ) {
    assert.equal(loadConfig({ CHORUS_ADMIN_TOKEN: strong }).adminToken, strong);
  }
  assert.equal(loadConfig({}).adminToken, undefined);
});

Deno.test("A weak CHORUS_ADMIN_TOKEN stops the server with one line naming it", async () => {
  const out = await runMain({ CHORUS_ADMIN_TOKEN: "x", CHORUS_KV: ":memory:", CHORUS_PORT: "0" });
  assert.equal(out.code, 2);
  const lines = out.stderr.trim().split("\n");
  assert.equal(lines.length, 1);
  assert.match(lines[0], /CHORUS_ADMIN_TOKEN is too weak/);
});

Deno.test("A bare number in a variable named in milliseconds is milliseconds", () => {
  assert.equal(loadConfig({ CHORUS_ACTOR_IDLE_MS: "60000" }).actorIdleMs, 60_000);
  assert.equal(loadConfig({ CHORUS_ACTOR_IDLE_MS: "90s" }).actorIdleMs, 90_000);
  assert.equal(loadConfig({ CHORUS_REQUEST_TIMEOUT: "30" }).requestTimeoutMs, 30_000);
});
