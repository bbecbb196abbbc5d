/**
 * Join storm: N sockets already open join one reel topic at the same moment. For each N (default
 * 1,000, 2,000 and 5,000) it runs, each in its own fresh process on 127.0.0.1:
 *
 * - **bare**: `bare_ws_server.ts`, a bare `Deno.serve` + `Deno.upgradeWebSocket` server that only
 *   answers the join (Deno's default WebSocket writes);
 * - **bare + presence**: the same server in its `presence` mode, which also sends the frames Phoenix
 *   Presence makes a server send (the whole list to each joiner, 50 ms `presence_diff`s of ≤ 4 KB
 *   to everyone), with no storage (`DENO_USE_WRITEV=1`);
 * - **Chorus**: `chorus_ws_server.ts` (one process, durable temp KV file, presence on,
 *   `DENO_USE_WRITEV=1` as `deno task start` sets it; one worker, not `deno serve --parallel`).
 *
 * Each run: a warm-up (10 sockets join and leave `reel:warmup`; `--warm=K` makes it K sockets, for
 * a server that has met a crowd before, its join path compiled by V8's optimizing tiers), a full GC
 * and the server's VmRSS (`/proc/<pid>/status`); then this process (the load client) opens N raw
 * `WebSocket`s speaking Phoenix V2 JSON (`vsn=2.0.0`), each with a distinct `user_id` of 26
 * characters (the size of the presence-traffic reference's keys), so each is its own presence key,
 * and waits until all are open (200 connecting at a time). Then it sends `phx_join` for
 * `reel:storm` on all of them in one loop and measures the time until the last ok `phx_reply`
 * arrived ("join all"). Then it waits for the server to settle (no frame to any socket for
 * `--quiet` ms, 1 s, at most `--settle-max`, 60 s), and reports, per client, the frames and bytes
 * received after its join reply (presence traffic; bytes are string lengths, the frames being
 * ASCII), and the server's RSS growth per socket (VmRSS after the settle and a full GC minus VmRSS
 * before opening, divided by N).
 *
 * Last, whether a live viewer count is visible to every viewer: each socket keeps what a Phoenix
 * client's `Presence` would keep (a `presence_state` is the list, `presence_diff` joins and leaves
 * update it, diffs before the first state are applied after it, as phoenix.js does; one socket per
 * user so one meta per key) and the last `presence_stats` `{count}` if any; it sees the count when
 * the latest of those tells N members.
 *
 * The client needs N file descriptors and each server N: when the soft `ulimit -n` (read from
 * `/proc/self/limits`) is below the largest N + 512, the script runs itself again through
 * `sh -c 'ulimit -n …'` (up to the hard limit; the servers inherit it), or stops with a message.
 * Every wait has a timeout and servers are stopped by PID (SIGTERM, then SIGKILL), so the script
 * always ends by itself. Prints Markdown tables.
 *
 * With `--returning=K`, the viewers are regulars: before each Chorus run, K earlier visits (each a
 * Chorus server on the run's KV file that the same N users join, as the same sockets, until the
 * traffic settles, then stopped) leave every user K presence reports in their feed, and the timed
 * storm meets a fresh server whose user actors are all cold, as at a live event's start. The
 * bare servers keep nothing, so they run as without it.
 *
 * Usage: deno run -A bench/load/join_storm.ts [sizes=1000,2000,5000] [--servers=bare,presence,chorus]
 *   [--quiet=1000] [--settle-max=60000] [--join-timeout=120000] [--open-timeout=60000]
 *   [--writev=chorus|both|none] [--rounds=1] [--profile] [--returning=K] [--warm=10]
 * (`--rounds=R` runs every server R times per N, in turns — bare, Chorus, bare, Chorus … — and the
 * tables give each server's median run, with every round's Chorus / bare ratio listed under them:
 * on a shared machine a bare storm of 1,000 sockets moves between 50 and 100 ms from run to run;
 * `--writev` as in socket_fanout.ts: `chorus` sets `DENO_USE_WRITEV=1` for Chorus and bare +
 * presence; `--profile` samples Chorus's CPU through its inspector from the joins until the last
 * reply and prints the top self-time functions, slowing that run.)
 *
 * References: `socket_fanout.ts` (same servers, spawn/stop and RSS reading), `bare_ws_server.ts`,
 * `chorus_ws_server.ts`, `_ws_pool.ts`; docs/socket.md "Presence"; phoenix.js `Presence`
 * (`syncState`, `syncDiff`, pending diffs).
 * @module
 */
import { sleep, until } from "./_ws_pool.ts";
import { CpuProfile } from "./_cpu_profile.ts";
import {
  cpuSeconds,
  gcServer,
  rssKb,
  spawnWsServer,
  stopServer,
  type WsServer,
  type WsServerKind,
} from "./_ws_servers.ts";

const flags = new Map<string, string>();
const positional: string[] = [];
for (const arg of Deno.args) {
  const m = /^--([\w-]+)(?:=(.*))?$/.exec(arg);
  if (m) flags.set(m[1], m[2] ?? "true");
  else positional.push(arg);
}
const SIZES = (positional[0] ?? "1000,2000,5000").split(",").map(Number);
const KINDS = (flags.get("servers") ?? "bare,presence,chorus").split(",");
const QUIET_MS = Number(flags.get("quiet") ?? 1000);
const SETTLE_MAX_MS = Number(flags.get("settle-max") ?? 60_000);
const JOIN_TIMEOUT_MS = Number(flags.get("join-timeout") ?? 120_000);
const OPEN_TIMEOUT_MS = Number(flags.get("open-timeout") ?? 60_000);
const OPEN_CONCURRENCY = 200;
const WRITEV = flags.get("writev") ?? "chorus";
const ROUNDS = Math.max(1, Number(flags.get("rounds") ?? 1));
/** Sample Chorus's CPU (through its inspector) from the joins until the last reply; prints it. */
const PROFILE = flags.has("profile");
/** Sockets of the warm-up storm before each run (see the module doc). */
const WARM = Math.max(1, Number(flags.get("warm") ?? 10));
/** Earlier visits of the same users before each Chorus run (`--returning`); 0: new users. */
const RETURNING = Math.max(0, Number(flags.get("returning") ?? 0));
const INSPECT = "127.0.0.1:9341";
const TOPIC = "reel:storm";
const FD_SLACK = 512;
const runStart = performance.now();

// ---------------------------------------------------------------------------------------------
// File descriptors and memory.

/** Soft and hard `RLIMIT_NOFILE` of this process (what `ulimit -n` / `ulimit -Hn` show). */
function fdLimits(): { soft: number; hard: number } {
  const m = /Max open files\s+(\S+)\s+(\S+)/.exec(Deno.readTextFileSync("/proc/self/limits"));
  const parse = (s: string | undefined) => (s === "unlimited" ? Infinity : Number(s));
  return { soft: parse(m?.[1]), hard: parse(m?.[2]) };
}

const limits = fdLimits();
const neededFds = Math.max(...SIZES, WARM) + FD_SLACK;
if (limits.soft < neededFds) {
  if (limits.hard < neededFds || Deno.env.get("JOIN_STORM_ULIMIT")) {
    console.error(
      `join_storm: ulimit -n is ${limits.soft} (hard ${limits.hard}); ${neededFds} needed. ` +
        `Raise the hard limit (e.g. /etc/security/limits.conf or \`ulimit -Hn\` as root).`,
    );
    Deno.exit(1);
  }
  const raised = Number.isFinite(limits.hard) ? limits.hard : neededFds;
  console.error(
    `join_storm: ulimit -n ${limits.soft} < ${neededFds}; running again with ${raised}`,
  );
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n ${raised} && exec "$@"`,
      "sh",
      Deno.execPath(),
      "run",
      "-A",
      new URL(import.meta.url).pathname,
      ...Deno.args,
    ],
    env: { JOIN_STORM_ULIMIT: "1" },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  Deno.exit((await child.status).code);
}
const memoryAtStart = Deno.systemMemoryInfo();

// ---------------------------------------------------------------------------------------------
// Servers (as socket_fanout.ts starts and stops them).

type Kind = "bare" | "bare + presence" | "Chorus";
const KIND_OF: Record<string, Kind> = {
  bare: "bare",
  presence: "bare + presence",
  chorus: "Chorus",
};
const kinds = KINDS.map((k) => {
  const kind = KIND_OF[k];
  if (!kind) throw new Error(`unknown server ${k} (bare, presence, chorus)`);
  return kind;
});

interface Server extends WsServer {
  kind: Kind;
}

async function spawn(kind: Kind, port: number, kvPath: string): Promise<Server> {
  const what: WsServerKind = kind === "Chorus"
    ? { kind: "chorus", kvPath, presence: true }
    : { kind: "bare", presence: kind !== "bare" };
  const writev = WRITEV === "both" || (WRITEV === "chorus" && kind !== "bare");
  const inspect = kind === "Chorus" && PROFILE ? [`--inspect=${INSPECT}`] : [];
  return { kind, ...await spawnWsServer(what, port, { writev, inspect, tries: 300 }) };
}

const stop = stopServer;
const gc = gcServer;

// ---------------------------------------------------------------------------------------------
// The load client.

const NONE = 0;
const LIST = 1;
const STATS = 2;

interface PresencePayload {
  [key: string]: unknown;
}
interface DiffPayload {
  joins?: PresencePayload;
  leaves?: PresencePayload;
}

/**
 * N raw Phoenix V2 JSON sockets, each its own user, joining one topic together. Per socket: when
 * its join reply came, the frames and bytes after it, and the member list a Phoenix `Presence`
 * would hold (keys interned across sockets, one byte per key per socket) or the last
 * `presence_stats` count.
 */
class Storm {
  readonly n: number;
  /** Join replies with status ok, and joins refused or cut off. */
  replies = 0;
  failures = 0;
  firstFailure = "";
  /** When the join frames went out, the last ok reply came and the last frame of any kind came. */
  joinSentAt = 0;
  lastReplyAt = 0;
  lastFrameAt = 0;
  /** Sockets closed by the server or the network (not by {@linkcode close}), by close code. */
  readonly closedBy = new Map<number, number>();
  /** The first close reason seen for each close code. */
  readonly closeReasons = new Map<number, string>();
  readonly #topic: string;
  readonly #userPrefix: string;
  readonly #sockets: WebSocket[] = [];
  readonly #replyAt: Float64Array;
  readonly #failed: Uint8Array;
  readonly #framesAfter: Float64Array;
  readonly #bytesAfter: Float64Array;
  readonly #framesBefore: Float64Array;
  readonly #members: (Uint8Array | null)[];
  readonly #count: Int32Array;
  readonly #hasList: Uint8Array;
  readonly #stats: Int32Array;
  readonly #source: Uint8Array;
  readonly #pending: (DiffPayload[] | null)[];
  readonly #keys = new Map<string, number>();
  readonly #joinFrame: string;
  readonly #replyHead: string;
  readonly #okHead: string;
  readonly #topicMark: string;
  #joining = false;
  #closing = false;

  constructor(n: number, topic: string, userPrefix: string) {
    this.n = n;
    this.#topic = topic;
    this.#userPrefix = userPrefix;
    this.#replyAt = new Float64Array(n);
    this.#failed = new Uint8Array(n);
    this.#framesAfter = new Float64Array(n);
    this.#bytesAfter = new Float64Array(n);
    this.#framesBefore = new Float64Array(n);
    this.#members = new Array(n).fill(null);
    this.#count = new Int32Array(n);
    this.#hasList = new Uint8Array(n);
    this.#stats = new Int32Array(n).fill(-1);
    this.#source = new Uint8Array(n);
    this.#pending = new Array(n).fill(null);
    this.#joinFrame = JSON.stringify(["1", "1", topic, "phx_join", {}]);
    this.#replyHead = `["1","1",${JSON.stringify(topic)},"phx_reply",`;
    this.#okHead = `${this.#replyHead}{"status":"ok"`;
    this.#topicMark = `,${JSON.stringify(topic)},"`;
  }

  /** The `user_id` of socket `i`: 26 characters. */
  userId(i: number): string {
    return `${this.#userPrefix}${String(i).padStart(26 - this.#userPrefix.length, "0")}`;
  }

  /**
   * Opens the N sockets, {@linkcode OPEN_CONCURRENCY} connecting at a time; resolves when all are
   * open. @throws when one fails or `timeoutMs` passed
   */
  async open(url: string, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (let i = 0; i < this.n; i += OPEN_CONCURRENCY) {
      const batch: Promise<void>[] = [];
      for (let j = i; j < Math.min(this.n, i + OPEN_CONCURRENCY); j++) {
        batch.push(this.#openOne(`${url}&user_id=${this.userId(j)}`, j, deadline));
      }
      const failed = (await Promise.allSettled(batch)).find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
  }

  #openOne(url: string, i: number, deadline: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      this.#sockets.push(ws);
      let open = false;
      const timer = setTimeout(
        () => reject(new Error(`socket ${i} did not open in time`)),
        Math.max(1, deadline - performance.now()),
      );
      ws.onopen = () => {
        open = true;
        clearTimeout(timer);
        resolve();
      };
      ws.onerror = () => {};
      ws.onclose = (e) => {
        clearTimeout(timer);
        if (!open) reject(new Error(`socket ${i} closed before it opened: ${e.code}`));
        if (this.#closing) return;
        this.closedBy.set(e.code, (this.closedBy.get(e.code) ?? 0) + 1);
        if (!this.closeReasons.has(e.code)) this.closeReasons.set(e.code, e.reason);
        if (this.#joining && this.#replyAt[i] === 0 && !this.#failed[i]) {
          this.#fail(i, `closed before its join reply: ${e.code}`);
        }
      };
      ws.onmessage = (e) => this.#onFrame(i, e.data);
    });
  }

  #fail(i: number, why: string): void {
    this.#failed[i] = 1;
    this.failures++;
    this.firstFailure ||= why;
  }

  #onFrame(i: number, data: unknown): void {
    const now = performance.now();
    this.lastFrameAt = now;
    if (typeof data !== "string") {
      if (this.#replyAt[i] > 0) {
        this.#framesAfter[i]++;
        this.#bytesAfter[i] += (data as ArrayBuffer).byteLength ?? 0;
      } else this.#framesBefore[i]++;
      return;
    }
    if (this.#replyAt[i] === 0) {
      if (!this.#failed[i] && data.startsWith(this.#replyHead)) {
        if (data.startsWith(this.#okHead)) {
          this.#replyAt[i] = now;
          this.replies++;
          this.lastReplyAt = now;
        } else this.#fail(i, `join refused: ${data.slice(0, 200)}`);
        return;
      }
      this.#framesBefore[i]++;
    } else {
      this.#framesAfter[i]++;
      this.#bytesAfter[i] += data.length;
    }
    const at = data.indexOf(this.#topicMark);
    if (at < 0 || at > 64) return;
    const start = at + this.#topicMark.length;
    if (!data.startsWith("presence_", start)) return;
    const event = data.slice(start, data.indexOf('"', start));
    const payload = JSON.parse(data)[4];
    if (event === "presence_state") this.#state(i, payload as PresencePayload);
    else if (event === "presence_diff") {
      if (this.#hasList[i]) this.#diff(i, payload as DiffPayload);
      else (this.#pending[i] ??= []).push(payload as DiffPayload);
    } else if (event === "presence_stats" && typeof payload?.count === "number") {
      this.#stats[i] = payload.count;
      this.#source[i] = STATS;
    }
  }

  #state(i: number, payload: PresencePayload): void {
    const members = this.#members[i];
    if (members) members.fill(0);
    this.#count[i] = 0;
    for (const key in payload) this.#set(i, key, 1);
    this.#hasList[i] = 1;
    this.#source[i] = LIST;
    const pending = this.#pending[i];
    this.#pending[i] = null;
    if (pending) { for (const diff of pending) this.#diff(i, diff); }
  }

  /** Joins then leaves, as phoenix.js `syncDiff` (one meta per key here: one socket per user). */
  #diff(i: number, diff: DiffPayload): void {
    for (const key in diff.joins ?? {}) this.#set(i, key, 1);
    for (const key in diff.leaves ?? {}) this.#set(i, key, 0);
    this.#source[i] = LIST;
  }

  #set(i: number, key: string, bit: 0 | 1): void {
    let id = this.#keys.get(key);
    if (id === undefined) {
      id = this.#keys.size;
      this.#keys.set(key, id);
    }
    let members = this.#members[i];
    if (!members || id >= members.length) {
      const bigger = new Uint8Array(Math.max(this.n + 64, (id + 1) * 2, members?.length ?? 0));
      if (members) bigger.set(members);
      members = this.#members[i] = bigger;
    }
    if (members[id] !== bit) {
      members[id] = bit;
      this.#count[i] += bit ? 1 : -1;
    }
  }

  /** Sends every join in one loop; resolves when all were answered, or after `timeoutMs`. */
  async joinAll(timeoutMs: number): Promise<boolean> {
    this.#joining = true;
    this.joinSentAt = performance.now();
    for (const ws of this.#sockets) {
      if (ws.readyState === WebSocket.OPEN) ws.send(this.#joinFrame);
    }
    return await until(() => this.replies + this.failures >= this.n, timeoutMs);
  }

  /** Waits until no frame came for `quietMs`, at most `maxMs`; returns whether it did. */
  async settle(quietMs: number, maxMs: number): Promise<boolean> {
    const since = performance.now();
    return await until(
      () => performance.now() - Math.max(this.lastFrameAt, since) > quietMs,
      maxMs,
    );
  }

  /** Per-client figures after the settle. */
  summary(): StormSummary {
    let frames = 0, bytes = 0, before = 0, list = 0, stats = 0, wrong = 0, none = 0;
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < this.n; i++) {
      frames += this.#framesAfter[i];
      bytes += this.#bytesAfter[i];
      before += this.#framesBefore[i];
      const source = this.#source[i];
      const count = source === STATS ? this.#stats[i] : source === LIST ? this.#count[i] : -1;
      if (this.#failed[i] || source === NONE) none++;
      else if (count !== this.n) {
        wrong++;
        lo = Math.min(lo, count);
        hi = Math.max(hi, count);
      } else if (source === STATS) stats++;
      else list++;
    }
    return {
      framesPerClient: frames / this.n,
      bytesPerClient: bytes / this.n,
      framesBeforeReply: before / this.n,
      seeList: list,
      seeStats: stats,
      wrong,
      wrongRange: wrong ? `${lo}–${hi}` : "",
      none,
    };
  }

  /** Closes every socket (a stopped server has closed them) and waits at most `ms`. */
  async close(ms = 10_000): Promise<void> {
    this.#closing = true;
    const closed = this.#sockets.map((ws) =>
      ws.readyState === WebSocket.CLOSED ? Promise.resolve() : new Promise<void>((resolve) => {
        ws.addEventListener("close", () => resolve());
        if (ws.readyState !== WebSocket.CLOSING) ws.close(1000, "bench done");
      })
    );
    await Promise.race([Promise.all(closed), sleep(ms)]);
    this.#sockets.length = 0;
  }
}

interface StormSummary {
  framesPerClient: number;
  bytesPerClient: number;
  framesBeforeReply: number;
  /** Viewers whose last presence information tells N members, from the list or from stats. */
  seeList: number;
  seeStats: number;
  /** Viewers told another number, and its range. */
  wrong: number;
  wrongRange: string;
  /** Viewers told nothing (or whose join failed). */
  none: number;
}

// ---------------------------------------------------------------------------------------------
// One run: a fresh server, N sockets, one storm.

interface Result extends StormSummary {
  kind: Kind;
  n: number;
  joined: number;
  failures: string;
  complete: boolean;
  joinMs: number;
  settled: boolean;
  lastFrameMs: number;
  beforeKb: number;
  openKb: number;
  afterKb: number;
  perSocketKb: number;
  serverCpu: number;
  clientCpu: number;
  closed: string;
}

/** The same N users join on a server of the run's KV file, until it settles; then it stops. */
async function earlierVisit(kind: Kind, n: number, port: number, kvPath: string): Promise<void> {
  const server = await spawn(kind, port, kvPath);
  const pool = new Storm(n, TOPIC, "storm_");
  try {
    await pool.open(server.url, OPEN_TIMEOUT_MS);
    if (!await pool.joinAll(JOIN_TIMEOUT_MS) || pool.failures) {
      throw new Error(`an earlier visit of ${n} users did not join: ${pool.firstFailure}`);
    }
    await pool.settle(QUIET_MS, SETTLE_MAX_MS);
  } finally {
    await pool.close();
    await stop(server);
  }
}

async function storm(kind: Kind, n: number, port: number, dir: string): Promise<Result> {
  const kvPath = `${dir}/chorus-${n}-${port}.kv`; // a fresh file per run
  if (kind === "Chorus") {
    for (let visit = 0; visit < RETURNING; visit++) await earlierVisit(kind, n, port, kvPath);
  }
  const server = await spawn(kind, port, kvPath);
  const warm = new Storm(WARM, "reel:warmup", "warm_");
  const pool = new Storm(n, TOPIC, "storm_");
  try {
    await warm.open(server.url, OPEN_TIMEOUT_MS);
    await warm.joinAll(10_000);
    await warm.settle(300, 5_000);
    await warm.close();
    // A large warm-up's leaves (presence untracks) are done before anything is measured.
    await sleep(WARM > 100 ? 2_000 : 500);
    await gc(server);
    await sleep(300);
    const beforeKb = rssKb(server.pid);
    await pool.open(server.url, OPEN_TIMEOUT_MS);
    await sleep(200);
    const openKb = rssKb(server.pid);
    const cpu0 = [cpuSeconds(server.pid), cpuSeconds("self")];
    const profile = kind === "Chorus" && PROFILE ? await CpuProfile.start(INSPECT) : undefined;
    const complete = await pool.joinAll(JOIN_TIMEOUT_MS);
    const joinMs = pool.replies ? pool.lastReplyAt - pool.joinSentAt : NaN;
    if (profile) {
      console.log(
        `\n#### Chorus CPU, ${fmt(n)} joins until the last reply\n\n${await profile.stop(25)}\n`,
      );
    }
    const settled = await pool.settle(QUIET_MS, SETTLE_MAX_MS);
    const cpu1 = [cpuSeconds(server.pid), cpuSeconds("self")];
    await gc(server);
    await sleep(300);
    const afterKb = rssKb(server.pid);
    const failures = pool.failures
      ? `${pool.failures} (${pool.firstFailure})`
      : complete
      ? "0"
      : `${n - pool.replies} unanswered`;
    return {
      kind,
      n,
      joined: pool.replies,
      failures,
      complete: complete && pool.failures === 0,
      joinMs,
      settled,
      lastFrameMs: pool.lastFrameAt - pool.joinSentAt,
      beforeKb,
      openKb,
      afterKb,
      perSocketKb: (afterKb - beforeKb) / n,
      serverCpu: cpu1[0] - cpu0[0],
      clientCpu: cpu1[1] - cpu0[1],
      closed: [...pool.closedBy].map(([code, count]) => {
        const reason = pool.closeReasons.get(code);
        return `${count}×${code}${reason ? ` (${reason})` : ""}`;
      }).join(", ") || "none",
      ...pool.summary(),
    };
  } finally {
    // Server first: its side of each connection closes first, so TIME_WAIT stays on its port.
    await stop(server);
    await pool.close();
    await warm.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Main.

const fmt = (x: number, digits = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "–";
const ms = (x: number) => (Number.isFinite(x) ? `${fmt(x, x < 10 ? 2 : x < 100 ? 1 : 0)} ms` : "–");
const mib = (bytes: number) => `${fmt(bytes / 2 ** 20)} MiB`;

const dir = await Deno.makeTempDir({ prefix: "chorus-storm-" });
const results: Result[] = [];
let port = 18411;
try {
  for (const n of SIZES) {
    for (let round = 0; round < ROUNDS; round++) {
      for (const kind of kinds) {
        const r = await storm(kind, n, port++, dir);
        results.push(r);
        console.error(
          `join_storm: ${fmt(n)} ${kind}: join all ${ms(r.joinMs)}` +
            `${r.complete ? "" : " (INCOMPLETE)"}, RSS ${fmt(r.perSocketKb, 1)} KB/socket`,
        );
      }
    }
  }
} finally {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** Every run of `kind` at `n`, in the order they ran. */
const runsOf = (n: number, kind: Kind) => results.filter((r) => r.n === n && r.kind === kind);
/** The median run (by join time) of `kind` at `n`: the one the tables show. */
const get = (n: number, kind: Kind) => {
  const runs = runsOf(n, kind).sort((a, b) => a.joinMs - b.joinMs);
  return runs[Math.floor((runs.length - 1) / 2)];
};
const cell = (n: number, f: (r: Result) => string) =>
  kinds.map((k) => {
    const r = get(n, k);
    return r ? f(r) : "–";
  }).join(" / ");
const joinCell = (r: Result | undefined) =>
  r ? `${ms(r.joinMs)}${r.complete ? "" : ` (${fmt(r.joined)} joined)`}` : "–";
const ratio = (a: Result | undefined, b: Result | undefined) =>
  a && b ? `${fmt(a.joinMs / b.joinMs, 2)}×` : "–";

const total = (performance.now() - runStart) / 1000;
console.log(
  `\n${Deno.build.target}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}; ` +
    `servers on 127.0.0.1 in their own processes (fresh per N), load client in this one; ` +
    `topic ${TOPIC}; warm-up: ${
      fmt(WARM)
    } sockets; DENO_USE_WRITEV=1 for ${WRITEV}; ulimit -n ${limits.soft} ` +
    `(hard ${limits.hard}, ${fmt(neededFds)} needed); memory ${mib(memoryAtStart.total)}, ` +
    `${mib(memoryAtStart.available)} available at start; settle: ${fmt(QUIET_MS)} ms quiet, ` +
    `at most ${fmt(SETTLE_MAX_MS / 1000)} s; run took ${fmt(total)} s\n`,
);
const order = kinds.join(" / ");
console.log(`### Join storm (${order})\n`);
console.log(
  "| N | bare join all | bare + presence join all | Chorus join all | Chorus / bare | " +
    "Chorus / bare + presence | frames per client after join | KB per client after join | " +
    "RSS KB per socket | viewers that see the count |",
);
console.log(`|${" ---: |".repeat(10)}`);
for (const n of SIZES) {
  const bare = get(n, "bare");
  const traffic = get(n, "bare + presence");
  const chorus = get(n, "Chorus");
  console.log(
    `| ${fmt(n)} | ${joinCell(bare)} | ${joinCell(traffic)} | ${joinCell(chorus)} | ` +
      `${ratio(chorus, bare)} | ${ratio(chorus, traffic)} | ` +
      `${cell(n, (r) => fmt(r.framesPerClient, 1))} | ` +
      `${cell(n, (r) => fmt(r.bytesPerClient / 1024, 1))} | ` +
      `${cell(n, (r) => fmt(r.perSocketKb, 1))} | ` +
      `${cell(n, (r) => fmt(r.seeList + r.seeStats))} |`,
  );
}
if (ROUNDS > 1) {
  console.log(
    `\nMedian of ${ROUNDS} runs per server, run in turns. Chorus / bare, round by round:`,
  );
  for (const n of SIZES) {
    const bare = runsOf(n, "bare"), chorus = runsOf(n, "Chorus");
    const each = chorus.map((c, i) => bare[i] ? ratio(c, bare[i]) : "–").join(", ");
    console.log(`- ${fmt(n)}: ${each}`);
  }
}
console.log(
  RETURNING
    ? `\nViewers: returning users, each with ${RETURNING} earlier visit(s) in KV; Chorus's actors cold.`
    : "\nViewers: new users.",
);
console.log(
  `\nFrames, KB, RSS and viewers are given as ${order}. A viewer sees the count when the last ` +
    `presence frames it got (the list from presence_state + presence_diffs, or presence_stats) ` +
    `tell N members.\n`,
);
console.log("### Details\n");
console.log(
  "| N | server | joined | failed | last frame after join start | settled | frames before reply " +
    "per client | sees N via list / stats | told another count | told nothing | RSS before / " +
    "opened / after settle | server / client CPU s | closed by server |",
);
console.log("| ---: | --- |" + " ---: |".repeat(11));
for (const r of results) {
  console.log(
    `| ${fmt(r.n)} | ${r.kind} | ${fmt(r.joined)} | ${r.failures} | ${ms(r.lastFrameMs)} | ` +
      `${r.settled ? "yes" : "no"} | ${fmt(r.framesBeforeReply, 2)} | ` +
      `${fmt(r.seeList)} / ${fmt(r.seeStats)} | ` +
      `${r.wrong ? `${fmt(r.wrong)} (${r.wrongRange})` : "0"} | ${fmt(r.none)} | ` +
      `${fmt(r.beforeKb)} / ${fmt(r.openKb)} / ${fmt(r.afterKb)} KB | ` +
      `${fmt(r.serverCpu, 2)} / ${fmt(r.clientCpu, 2)} | ${r.closed} |`,
  );
}
