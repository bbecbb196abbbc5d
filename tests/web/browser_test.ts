/**
 * Runs the Chromium end-to-end tests (`_browser_e2e.ts`) in their own `deno test -A`:
 * playwright-core reads `/proc` paths that only `--allow-all` grants, which the suite's
 * `deno task test` does not. Fails, never skips, when Chromium is missing.
 * @module
 */
import assert from "node:assert/strict";
import { spawnDeno } from "../_helpers.ts";

Deno.test("[web] Chromium end-to-end: console, docs, tickets, CORS (tests/web/_browser_e2e.ts)", async () => {
  const chromium = Deno.env.get("CHORUS_CHROMIUM") ?? "/usr/bin/chromium";
  const found = await Deno.stat(chromium).then(() => true, () => false);
  assert.ok(
    found,
    `Chromium is missing at ${chromium}: install it (apt-get install -y chromium) or set ` +
      "CHORUS_CHROMIUM; the browser tests never skip",
  );
  const file = new URL("./_browser_e2e.ts", import.meta.url).pathname;
  const run = spawnDeno(["test", "-A", "--no-check", file], { NO_COLOR: "1" });
  try {
    // Every browser step has its own timeout; a run that still stalls fails here, and `kill()`
    // ends it and the Chromium it started, instead of holding up the suite.
    const { code } = await run.exited(180_000);
    const text = (await run.output).join("");
    if (code !== 0) console.error(text);
    assert.equal(code, 0, "the Chromium tests failed (their output is above)");
    assert.match(text, /ok \| 3 passed \| 0 failed/);
  } finally {
    await run.kill();
  }
});
