/**
 * A sampling CPU profile of another Deno process through its inspector (`--inspect=host:port`;
 * Deno 2.9 has no `--cpu-prof`), summarized as the top self-time functions and files. While a
 * session is attached Deno reports every WebSocket frame to the inspector; those samples
 * (`op_inspector_*`, `inspector_network_bridge.js`, `emitWebSocketFrame`) are left out, so the
 * shares are of the work the process does without an inspector.
 * @module
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

/** A running profile; {@linkcode CpuProfile.stop} returns the summary. */
export class CpuProfile {
  readonly #ws: WebSocket;
  readonly #waiting = new Map<number, (result: unknown) => void>();
  #id = 0;

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data as string);
      if (msg.id !== undefined) this.#waiting.get(msg.id)?.(msg.result);
    };
  }

  /** Connects to the inspector at `host:port` and starts sampling every `intervalUs`. */
  static async start(hostPort: string, intervalUs = 250): Promise<CpuProfile> {
    const list = await (await fetch(`http://${hostPort}/json/list`)).json();
    const ws = new WebSocket(list[0].webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    const profile = new CpuProfile(ws);
    await profile.#call("Profiler.enable");
    await profile.#call("Profiler.setSamplingInterval", { interval: intervalUs });
    await profile.#call("Profiler.start");
    return profile;
  }

  #call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = ++this.#id;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${method} timed out`)), 30_000);
      this.#waiting.set(id, (result) => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        resolve(result);
      });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /**
   * Stops sampling and disconnects.
   * @returns the main thread's idle share, then Markdown tables: top `top` functions and files
   *   by self time, and functions by inclusive time (% of busy samples)
   */
  async stop(top = 15): Promise<string> {
    const { profile } = await this.#call("Profiler.stop") as { profile: { nodes: ProfileNode[] } };
    this.#ws.close();
    const byFn = new Map<string, number>();
    const byFile = new Map<string, number>();
    const inclusive = new Map<string, number>();
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const node of profile.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
    const fnName = (node: ProfileNode) => {
      const { functionName, url, lineNumber } = node.callFrame;
      const file = url.replace(/^.*\/(main|node_modules|npm)\//, "").replace(/^file:\/\//, "");
      return {
        fn: `${functionName || "(anonymous)"} ${file ? `${file}:${lineNumber + 1}` : ""}`,
        file,
      };
    };
    let total = 0;
    let idle = 0;
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      if (node.callFrame.functionName === "(idle)") idle += hits;
      if (!hits || node.callFrame.functionName === "(idle)" || inspectorOnly(node)) continue;
      total += hits;
      const { fn, file } = fnName(node);
      byFn.set(fn, (byFn.get(fn) ?? 0) + hits);
      const where = file || `(${node.callFrame.functionName})`;
      byFile.set(where, (byFile.get(where) ?? 0) + hits);
      // Inclusive: every distinct function on the sample's stack.
      const seen = new Set<string>();
      for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
        const name = fnName(nodes.get(id)!).fn;
        if (seen.has(name)) continue;
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + hits);
      }
    }
    inclusive.delete("(root) ");
    const table = (title: string, map: Map<string, number>) =>
      [`| ${title} | self % |`, "| --- | ---: |"].concat(
        [...map].sort((a, b) => b[1] - a[1]).slice(0, top)
          .map(([k, v]) => `| \`${k.trim()}\` | ${(100 * v / total).toFixed(1)} |`),
      ).join("\n");
    const idleShare = `Main thread idle (waiting on I/O or other threads): ${
      (100 * idle / (idle + total)).toFixed(1)
    }% of samples.`;
    return `${idleShare}\n\n${table("function", byFn)}\n\n${table("file", byFile)}\n\n${
      table("function, with what it calls (inclusive)", inclusive).replace("self %", "total %")
    }`;
  }
}

/** Samples that exist only because an inspector is attached. */
function inspectorOnly(node: ProfileNode): boolean {
  const { functionName, url } = node.callFrame;
  return functionName.startsWith("op_inspector_") || url.includes("inspector") ||
    functionName === "emitWebSocketFrame";
}
