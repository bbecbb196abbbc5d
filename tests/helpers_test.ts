/**
 * The test helpers' process handling: `kill()` must leave nothing running, even a process whose
 * parent exited first (handed to init, it is no longer below the process the test started) and
 * which still holds the output pipes.
 * @module
 */
import assert from "node:assert/strict";
import { spawnServer } from "./_helpers.ts";

/** Whether `pid` runs (a zombie waiting to be reaped has ended), as `ps` tells. */
function running(pid: number): boolean {
  const out = new Deno.Command("ps", { args: ["-o", "stat=", "-p", String(pid)], stdout: "piped" })
    .outputSync();
  const state = new TextDecoder().decode(out.stdout).trim();
  return state !== "" && !state.startsWith("Z");
}

Deno.test("[helpers] kill() stops a process whose parent already exited, and its output ends", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chorus-helpers-" });
  const script = `${dir}/orphaning.ts`;
  // Starts a child that holds this process's output and runs until killed, then exits.
  await Deno.writeTextFile(
    script,
    `const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "console.log('child ' + Deno.pid); setInterval(() => {}, 1000)"],
    }).spawn();
    child.unref();
    await new Promise((r) => setTimeout(r, 500));
    console.log("parent exits");`,
  );
  const run = spawnServer([script], {});
  try {
    const [, pid] = await run.waitFor(/child (\d+)/);
    assert.ok(running(Number(pid)), "the child runs");
    await run.waitFor(/parent exits/);
    await run.exited(10_000);
    // Before the fix, kill() waited 10 s for the output and threw, leaving the child running.
    await run.kill();
    await run.output;
    assert.ok(!running(Number(pid)), `process ${pid} is still running`);
  } finally {
    await run.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
