import assert from "node:assert/strict";

const root = new URL("../", import.meta.url).pathname;

/** Runs `deno run cli.ts ...args` on a KV and backup folder inside `dir`. */
async function cli(dir: string, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", `${root}cli.ts`, ...args],
    cwd: root,
    env: { CHORUS_KV: `${dir}/chorus.kv`, CHORUS_BACKUP_DIR: `${dir}/backups` },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

async function backupNames(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(`${dir}/backups`))).map((e) => e.name).sort();
}

Deno.test("backup cleanup refuses a --keep that is not a whole number and deletes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chorus-cli-" });
  try {
    await Deno.mkdir(`${dir}/backups`);
    const names = ["chorus-1.backup.gz", "chorus-2.backup.gz", "chorus-3.backup.gz"];
    for (const n of names) await Deno.writeTextFile(`${dir}/backups/${n}`, "x");
    for (
      const keep of [["--keep=-1"], ["--keep=abc"], ["--keep=1.5"], ["--keep="], ["--keep", "-1"]]
    ) {
      const out = await cli(dir, "backup", "cleanup", ...keep);
      assert.equal(out.code, 2, `${keep}: ${out.stderr}`);
      assert.match(out.stderr, /--keep/, String(keep));
      assert.match(out.stderr, /usage:/, String(keep));
      assert.doesNotMatch(out.stderr, /Uncaught/, String(keep));
      assert.deepEqual(await backupNames(dir), names, `${keep} deleted backups`);
    }
    const kept = await cli(dir, "backup", "cleanup", "--keep=1");
    assert.equal(kept.code, 0, kept.stderr);
    assert.deepEqual(JSON.parse(kept.stdout), { removed: 2, kept: 1 });
    assert.deepEqual(await backupNames(dir), ["chorus-3.backup.gz"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("backup verify and restore of a gzip bomb fail with a message, not a crash", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chorus-cli-" });
  try {
    // 64 MiB of newlines, made lazily and gzipped to about 65 KB.
    let sent = 0;
    const newlines = new Uint8Array(1 << 20).fill(10);
    const bomb = new ReadableStream<BufferSource>({
      pull: (c) => sent++ < 64 ? c.enqueue(newlines) : c.close(),
    }).pipeThrough(new CompressionStream("gzip"));
    await Deno.writeFile(`${dir}/bomb.gz`, bomb);
    const verify = await cli(dir, "backup", "verify", `${dir}/bomb.gz`);
    assert.equal(verify.code, 1, verify.stderr);
    assert.equal(JSON.parse(verify.stdout).ok, false);
    assert.match(verify.stderr, /^chorus: Cannot verify ".*bomb\.gz": line 1 is blank\n$/);
    const restore = await cli(dir, "backup", "restore", `${dir}/bomb.gz`, "--force");
    assert.equal(restore.code, 1, restore.stderr);
    assert.match(
      restore.stderr,
      /^chorus: opened KV at .*chorus\.kv\nchorus: Cannot restore the backup: line 1 is blank\n$/,
    );
    const missing = await cli(dir, "backup", "verify", `${dir}/none.gz`);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no such file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
