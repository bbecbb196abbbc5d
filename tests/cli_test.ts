/**
 * The command line as an operator runs it (`deno run cli.ts`): which store it opened, `--kv`,
 * usage instead of stack traces, backup list figures, cleanup by count and age, status figures.
 * @module
 */
import assert from "node:assert/strict";
import { ulid } from "ulid";

const root = new URL("../", import.meta.url).pathname;

/** Runs `deno run cli.ts ...args` with `env` (a KV and backup folder inside `dir` by default). */
async function cli(dir: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", `${root}cli.ts`, ...args],
    cwd: root,
    env: { CHORUS_KV: `${dir}/chorus.kv`, CHORUS_BACKUP_DIR: `${dir}/backups`, ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "chorus-cli-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("[cli] status says which KV it opened (--kv beside CHORUS_KV) and shows storage figures", async () => {
  await withDir(async (dir) => {
    const token = await cli(dir, ["token", "create", "--scopes", "kv:read"]);
    assert.equal(token.code, 0, token.stderr);
    assert.match(token.stderr, new RegExp(`^chorus: opened KV at ${dir}/chorus\\.kv\\n`));

    const status = await cli(dir, ["status"]);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(status.stderr, `chorus: opened KV at ${dir}/chorus.kv\n`);
    const body = JSON.parse(status.stdout);
    assert.equal(body.kv, `${dir}/chorus.kv`);
    assert.ok(body.storage.entries >= 1, status.stdout);
    assert.ok(body.storage.bytes > 0);
    assert.ok(body.storage.file_bytes > 0);
    assert.equal(body.storage.namespaces.token.entries, 1, status.stdout);

    const other = `${dir}/other.kv`;
    const flag = await cli(dir, ["--kv", other, "status"]);
    assert.equal(flag.code, 0, flag.stderr);
    assert.equal(flag.stderr, `chorus: opened KV at ${other}\n`);
    assert.equal(JSON.parse(flag.stdout).storage.entries, 0);
  });
});

Deno.test("[cli] unknown flags and bad settings give usage, not a stack trace", async () => {
  await withDir(async (dir) => {
    for (
      const [args, env] of [
        [["status", "--bogus"], {}],
        [["--kv"], {}],
        [["backup", "cleanup", "--keep-days", "soon"], {}],
        [["status"], { CHORUS_KV_MAX_CHECKS: "lots" }],
      ] as [string[], Record<string, string>][]
    ) {
      const out = await cli(dir, args, env);
      assert.equal(out.code, 2, `${args}: ${out.stderr}`);
      assert.match(out.stderr, /^chorus: /, String(args));
      assert.match(out.stderr, /usage: deno task cli/, String(args));
      assert.doesNotMatch(out.stderr, /Uncaught| {4}at /, String(args));
    }
  });
});

Deno.test("[cli] backup list shows created-at, entries, bytes and checksum", async () => {
  await withDir(async (dir) => {
    await cli(dir, ["token", "create", "--scopes", "kv:read"]);
    const made = await cli(dir, ["backup", "create"]);
    assert.equal(made.code, 0, made.stderr);
    const created = JSON.parse(made.stdout);
    const list = await cli(dir, ["backup", "list"]);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stderr, "", "listing opens no store");
    const [entry] = JSON.parse(list.stdout);
    assert.equal(entry.file, created.file);
    assert.equal(entry.entries, created.entries);
    assert.equal(entry.bytes, created.bytes);
    assert.match(entry.sha256, /^[0-9a-f]{64}$/);
    assert.equal(entry.sha256, created.sha256);
    assert.equal(Date.parse(entry.created_at), created.created_at);
  });
});

Deno.test("[cli] backup cleanup --keep N --keep-days D keeps the N newest and the recent ones", async () => {
  await withDir(async (dir) => {
    await Deno.mkdir(`${dir}/backups`);
    const day = 86_400_000;
    const now = Date.now();
    const ages = [20 * day, 10 * day, 5 * day, 1 * day, 0];
    const names = ages.map((age) => `chorus-${ulid(now - age)}.backup.gz`);
    for (const n of names) await Deno.writeTextFile(`${dir}/backups/${n}`, "x");
    const out = await cli(dir, ["backup", "cleanup", "--keep", "1", "--keep-days", "7"]);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout), { removed: 2, kept: 3 });
    const left = (await Array.fromAsync(Deno.readDir(`${dir}/backups`))).map((e) => e.name).sort();
    assert.deepEqual(left, names.slice(2));
    // --keep protects the newest whatever their age.
    const all = await cli(dir, ["backup", "cleanup", "--keep", "3", "--keep-days", "0"]);
    assert.deepEqual(JSON.parse(all.stdout), { removed: 0, kept: 3 });
  });
});
