/**
 * Chorus in one process on a durable temp KV file, for the socket fan-out benchmark. Real-time
 * settings are the defaults except the idle timeout (10 min, so silent benchmark subscribers are
 * not closed mid-run) and the per-address cap on open streams (off: every socket is local);
 * presence is on unless the third argument is `nopresence`.
 * `GET /__bench/gc` runs a full GC when started with `--v8-flags=--expose-gc` and reports the heap.
 * Usage: deno run -A bench/load/chorus_ws_server.ts <port> <kv-path> [presence|nopresence]
 */
import { Chorus } from "../../mod.ts";
import { getHeapSpaceStatistics } from "node:v8";

/** Size of each V8 heap space in bytes (new space, old space…), to see where the heap grows. */
function heapSpaces(): Record<string, number> {
  return Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
}

const presence = Deno.args[2] !== "nopresence";
const chorus = await Chorus.open({
  path: Deno.args[1],
  // Every benchmark socket comes from 127.0.0.1: no per-address cap on open streams.
  config: { maxStreamsPerClient: 0 },
  realtime: { idleTimeoutMs: 600_000, presence },
});
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
Deno.serve(
  { hostname: "127.0.0.1", port: Number(Deno.args[0]), onListen: () => {} },
  (request) => {
    if (new URL(request.url).pathname === "/__bench/gc") {
      (globalThis as { gc?: () => void }).gc?.();
      return Response.json({
        ...chorus.realtime.stats(),
        memory: Deno.memoryUsage(),
        spaces: heapSpaces(),
      });
    }
    return chorus.fetch(request);
  },
);
