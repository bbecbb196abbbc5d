/**
 * Browser test helpers: a Chorus served on 127.0.0.1 (port 0) for Chromium, and Chromium itself
 * (Debian's `/usr/bin/chromium`, driven by playwright-core). A missing Chromium fails the tests.
 * @module
 */
import { Chorus } from "../../mod.ts";
import type { ResolvedConfig } from "../../config.ts";

/** The admin token of auth-on servers. */
export const ADMIN = "sk_chorus_web-admin-secret-0123456789";

/** A served Chorus. */
export interface Served {
  chorus: Chorus;
  origin: string;
  close(): Promise<void>;
}

/** Serves a Chorus on `:memory:` at 127.0.0.1 on a free port. */
export async function serveChorus(config: Partial<ResolvedConfig> = {}): Promise<Served> {
  const chorus = await Chorus.open({ path: ":memory:", config });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, chorus.fetch);
  return {
    chorus,
    origin: `http://127.0.0.1:${server.addr.port}`,
    async close() {
      await chorus.close();
      await server.shutdown();
    },
  };
}

if (import.meta.main) {
  const auth = Deno.args.includes("--auth");
  const served = await serveChorus(auth ? { auth: true, adminToken: ADMIN } : {});
  console.log(served.origin);
}
