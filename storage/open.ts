/**
 * Opening Deno KV: a file path gets its folder created first; `:memory:`, a KV Connect URL and the
 * platform default (undefined, on Deno Deploy) are passed through as they are.
 * @module
 */
import { isKvConnect } from "../config.ts";

/** Creates the folder of a KV file path if it does not exist (no-op for other locations). */
export async function ensureKvDir(path: string | undefined): Promise<void> {
  if (!path || path === ":memory:" || isKvConnect(path)) return;
  const dir = path.replace(/[^/]*$/, "");
  if (dir) await Deno.mkdir(dir, { recursive: true });
}

/** Opens KV at `path`, creating a file's folder first. */
export async function openKv(path: string | undefined): Promise<Deno.Kv> {
  await ensureKvDir(path);
  return await Deno.openKv(path);
}
