/**
 * Test helpers: a Chorus on `:memory:` or a temp-dir KV with a manual clock, a JSON request
 * helper over `app.request()`, and real server processes (`start.ts`) that a failing test always
 * kills, with all they started, so that the suite fails instead of hanging.
 * @module
 */
import { Chorus, type ChorusOptions } from "../mod.ts";
import { ManualClock } from "../clock.ts";
import type { ResolvedConfig } from "../config.ts";

/** A Chorus on a private in-memory KV with a manual clock. */
export async function openTest(
  options: { config?: Partial<ResolvedConfig>; path?: string; kv?: Deno.Kv } = {},
): Promise<{ chorus: Chorus; clock: ManualClock }> {
  const clock = new ManualClock();
  const open: ChorusOptions = {
    path: options.path ?? ":memory:",
    kv: options.kv,
    clock,
    config: options.config,
  };
  return { chorus: await Chorus.open(open), clock };
}

/** A fresh temp directory's KV file path, removed by the returned cleanup. */
export async function tempKvPath(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "chorus-test-" });
  return {
    path: `${dir}/chorus.kv`,
    cleanup: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}

/**
 * Runs `test` with two instances on one temp-dir KV file (as two processes or workers of one
 * deployment share it), then closes both and removes the file, whether or not `test` passed.
 */
export async function onOneFile(
  test: (a: Chorus, b: Chorus) => Promise<void>,
  options: Omit<ChorusOptions, "path" | "kv"> = {},
): Promise<void> {
  const { path, cleanup } = await tempKvPath();
  const a = await Chorus.open({ ...options, path });
  const b = await Chorus.open({ ...options, path });
  try {
    await test(a, b);
  } finally {
    await a.close();
    await b.close();
    await cleanup();
  }
}

/**
 * Resolves when `check()` is true, polling every 5 ms; rejects, naming `what`, after `ms` (for
 * what runs on its own: KV watch streams, sockets, other instances). The default of 10 s is
 * generous because test files run in parallel and may be starved of CPU for seconds; only a test
 * that fails waits it out. `until(check, what)` waits the default.
 */
export function until(check: () => boolean, what?: string): Promise<void>;
export function until(check: () => boolean, ms?: number, what?: string): Promise<void>;
export async function until(
  check: () => boolean,
  msOrWhat: number | string = 10_000,
  what = "condition",
): Promise<void> {
  const ms = typeof msOrWhat === "number" ? msOrWhat : 10_000;
  if (typeof msOrWhat === "string") what = msOrWhat;
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Response of {@linkcode call}. */
export interface Called {
  status: number;
  headers: Headers;
  // deno-lint-ignore no-explicit-any
  body: any;
}

/** Sends a JSON request to an app and parses the JSON answer. */
export async function call(
  app: { request: (path: string, init?: RequestInit) => Response | Promise<Response> },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Called> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] ??= "application/json";
  }
  const res = await app.request(path, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/**
 * A request as `Deno.serve` hands it over for a raw path such as `/a/../b`: `Deno.serve` leaves
 * the path as sent (`curl --path-as-is`), while `new Request` would resolve the dot segments.
 */
export function rawPathRequest(method: string, path: string): Request {
  const request = new Request("http://localhost/", { method });
  Object.defineProperty(request, "url", { value: `http://localhost${path}` });
  return request;
}

/** A process started by a test (see {@linkcode spawnDeno} and {@linkcode spawnServer}). */
export interface ServerProcess {
  child: Deno.ChildProcess;
  /** Its stdout and stderr, read to the end (resolves once it has exited). */
  output: Promise<[string, string]>;
  /** Its stdout and stderr so far, for waiting on a line while it runs. */
  seen(): string;
  /**
   * Resolves once its stdout or stderr matches `pattern`; rejects, with the output, when it ends
   * its output first or `ms` pass: a server that dies or stalls while starting fails the test.
   */
  waitFor(pattern: RegExp, ms?: number): Promise<RegExpMatchArray>;
  /**
   * Its exit status; rejects, with its output so far, if it is still running after `ms`: a
   * process that should stop but does not fails the test instead of holding up the suite.
   */
  exited(ms: number): Promise<Deno.CommandStatus>;
  /**
   * Kills it and every process it started (SIGKILL, by PID) if still running, and waits for its
   * exit and output. A test calls it in `finally`: `start.ts` runs `deno serve` as its own child,
   * which would outlive a killed parent and keep the output pipes open, so the test would wait
   * for that output forever instead of failing.
   */
  kill(): Promise<void>;
}

/** How long {@linkcode ServerProcess.kill} waits for the output pipes to close once all is killed. */
const OUTPUT_GRACE_MS = 10_000;

/** The environment variable each spawned process carries, inherited by all it starts. */
const SPAWN_TAG = "CHORUS_TEST_SPAWN";

/**
 * Stops (SIGSTOP) and returns every process that `root` started, at any depth, and every process
 * whose environment holds `SPAWN_TAG=tag`: that finds one whose parent already exited (it was
 * handed to init) and still holds the output pipes. Listed with `ps` (procps): Deno lets a test
 * read other processes' `/proc` entries only with `--allow-all`, which the test task does not
 * grant. Listing again until nothing new turns up catches a process started meanwhile.
 * @throws {Error} when `ps` cannot be run: processes would be left running unseen
 */
function stopStarted(root: number, tag: string): number[] {
  const needle = ` ${SPAWN_TAG}=${tag}`;
  const found = new Set<number>();
  for (let round = 0; round < 5; round++) {
    let out: Deno.CommandOutput;
    try {
      out = new Deno.Command("ps", {
        args: ["-e", "e", "-ww", "-o", "pid=,ppid=,args="],
        stdout: "piped",
        stderr: "null",
      }).outputSync();
    } catch (error) {
      throw new Error("cannot list processes with ps (install procps)", { cause: error });
    }
    const childrenOf = new Map<number, number[]>();
    const tagged: number[] = [];
    for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
      const match = line.match(/^\s*(\d+)\s+(\d+)\s(.*)$/);
      if (!match) continue;
      const [pid, ppid] = [Number(match[1]), Number(match[2])];
      childrenOf.set(ppid, [...childrenOf.get(ppid) ?? [], pid]);
      if (`${match[3]} `.includes(`${needle} `)) tagged.push(pid);
    }
    const more = [...tagged];
    const queue = [root, ...tagged];
    while (queue.length) {
      for (const pid of childrenOf.get(queue.shift()!) ?? []) {
        more.push(pid);
        queue.push(pid);
      }
    }
    const fresh = more.filter((pid) => pid !== root && !found.has(pid));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      signal(pid, "SIGSTOP");
      found.add(pid);
    }
  }
  return [...found];
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Runs `deno run -A <args>` with `env`, its output piped, for tests of the real process. The
 * caller must `await kill()` in a `finally`.
 */
export function spawnServer(args: string[], env: Record<string, string>): ServerProcess {
  return spawnDeno(["run", "-A", ...args], env);
}

/**
 * Runs `deno <args>` (any subcommand) with `env` added to this process's, stdin closed and its
 * output piped. The caller must `await kill()` in a `finally`.
 */
export function spawnDeno(args: string[], env: Record<string, string>): ServerProcess {
  const tag = crypto.randomUUID();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { ...env, [SPAWN_TAG]: tag },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let running = true;
  const status = child.status.finally(() => running = false);
  const texts = ["", ""];
  const readers = [child.stdout.getReader(), child.stderr.getReader()];
  const changed = new Set<() => void>();
  let ended = false;
  const output = Promise.all(readers.map(async (reader, i) => {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        texts[i] += decoder.decode(value, { stream: true });
        for (const notify of changed) notify();
      }
    } catch {
      // cancelled by kill(): keep what was read
    }
    texts[i] += decoder.decode();
  })).then(() => {
    ended = true;
    for (const notify of changed) notify();
    return [texts[0], texts[1]] as [string, string];
  });
  const seen = () => texts[0] + texts[1];
  return {
    child,
    output,
    seen,
    waitFor(pattern, ms = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = seen().match(pattern);
          if (!match && !ended) return;
          changed.delete(check);
          clearTimeout(timer);
          if (match) resolve(match);
          else reject(new Error(`the process ended before printing ${pattern}:\n${seen()}`));
        };
        const timer = setTimeout(() => {
          changed.delete(check);
          reject(new Error(`no ${pattern} within ${ms} ms:\n${seen()}`));
        }, ms);
        changed.add(check);
        check();
      });
    },
    async exited(ms) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), ms);
      });
      const outcome = await Promise.race([status, late]);
      clearTimeout(timer);
      if (outcome === "late") throw new Error(`still running after ${ms} ms:\n${seen()}`);
      return outcome;
    },
    async kill() {
      // It, and whatever it started that still runs, even if no longer below it (its parent
      // died first).
      if (running) signal(child.pid, "SIGSTOP");
      const started = stopStarted(child.pid, tag);
      if (running) signal(child.pid, "SIGKILL");
      for (const pid of started) signal(pid, "SIGKILL");
      await status;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<"late">((resolve) => {
        timer = setTimeout(() => resolve("late"), OUTPUT_GRACE_MS);
      });
      const outcome = await Promise.race([output, late]);
      clearTimeout(timer);
      if (outcome === "late") {
        await Promise.all(readers.map((r) => r.cancel().catch(() => {})));
        await output;
        throw new Error(
          `a process the server started still holds its output ${OUTPUT_GRACE_MS} ms after ` +
            `it was killed:\n${seen()}`,
        );
      }
    },
  };
}

/** Resolves once `GET /health` on 127.0.0.1:`port` answers 200; throws after ~30 s. */
export async function waitHealthy(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the server never answered /health");
}

const START = new URL("../start.ts", import.meta.url).pathname;

/** A port no one listens on now, picked by the OS. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A real server started by {@linkcode startServer}, answering on `port`. */
export interface StartedServer extends ServerProcess {
  port: number;
  /** `http://127.0.0.1:<port>` */
  base: string;
}

/**
 * Starts the server as an operator does (`deno run start.ts`, `deno task start`) on 127.0.0.1 and
 * a free port, and resolves once `/health` answers. `start.ts` needs a port number, and the port
 * picked may be taken by another test's connection or server before `deno serve` binds it: then
 * the start fails with "already in use" and is retried on another port. `/health` is polled only
 * after this server's `deno serve` has said it listens on the port, so a test never talks to
 * another test's server. The caller must `await kill()` in a `finally`.
 */
export async function startServer(env: Record<string, string>): Promise<StartedServer> {
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    const task = spawnServer([START], {
      CHORUS_HOST: "127.0.0.1",
      ...env,
      CHORUS_PORT: String(port),
    });
    try {
      const listening = new RegExp(`Listening on http://127\\.0\\.0\\.1:${port}/`);
      await task.waitFor(listening, 60_000);
      await waitHealthy(port);
      return { ...task, port, base: `http://127.0.0.1:${port}` };
    } catch (e) {
      await task.kill();
      if (attempt < 5 && /already in use|AddrInUse/.test(task.seen())) continue;
      throw e;
    }
  }
}

/** One request on its own connection, so successive requests to a server spread over its workers. */
export async function fresh(url: string, init: RequestInit = {}): Promise<Response> {
  const client = Deno.createHttpClient({});
  try {
    const res = await fetch(url, { ...init, client });
    const body = await res.arrayBuffer();
    return new Response(body, { status: res.status, headers: res.headers });
  } finally {
    client.close();
  }
}

/**
 * Starts the server as `deno task start` does with two workers (`deno serve --parallel`,
 * `DENO_JOBS=2`) on the KV file `kvPath`, auth off, and resolves once both workers answer:
 * `/health` answers as soon as one listens, so it is asked over new connections until two
 * instances have answered (within 30 s). The caller must `await kill()` in a `finally`.
 */
export async function startTwoWorkers(
  kvPath: string,
  env: Record<string, string> = {},
): Promise<StartedServer> {
  const task = await startServer({
    CHORUS_KV: kvPath,
    CHORUS_AUTH: "off",
    CHORUS_LOG_LEVEL: "warn",
    DENO_JOBS: "2",
    ...env,
  });
  const instances = new Set<string>();
  const deadline = performance.now() + 30_000;
  while (instances.size < 2 && performance.now() < deadline) {
    instances.add((await (await fresh(`${task.base}/health`)).json()).instance);
    if (instances.size < 2) await new Promise((r) => setTimeout(r, 20));
  }
  if (instances.size < 2) {
    await task.kill();
    throw new Error("the second worker did not answer within 30 s");
  }
  return task;
}

/** Sums the Prometheus samples named `sample` (in `/metrics` text) whose labels contain `match`. */
export function sumSamples(text: string, sample: string, match = ""): number {
  let n = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${sample}{`) && !line.startsWith(`${sample} `)) continue;
    if (match && !line.includes(match)) continue;
    n += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return n;
}
