/**
 * Runs `promtool check metrics` (Debian's `prometheus` package; `.ci/run` unpacks it when
 * missing) on an exposition. A missing promtool fails the test: it is never skipped.
 * @module
 */
import assert from "node:assert/strict";

/** Asserts that `promtool check metrics` accepts `text` with no problem reported. */
export async function assertPromtoolAccepts(text: string): Promise<void> {
  let child;
  try {
    child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        "promtool is not on PATH: install Debian's prometheus package (.ci/run unpacks it)",
      );
    }
    throw e;
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `promtool check metrics:\n${report}`);
  assert.equal(report.trim(), "", `promtool check metrics:\n${report}`);
}
