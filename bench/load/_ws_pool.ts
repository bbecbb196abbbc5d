/**
 * Load-side helpers of the socket fan-out benchmark: a pool of raw `WebSocket` subscribers
 * speaking Phoenix V2 JSON (cheaper than the `phoenix` client), and an HTTP publisher.
 *
 * Every subscriber counts `change` broadcasts; an evenly spread sample of at most
 * {@linkcode LATENCY_SAMPLE} sockets also records publish-to-receive latency from the `t` the
 * publisher (this same process, so one clock) put in the value.
 * @module
 */

/** At most this many sockets of a pool record latencies (all of them count frames). */
export const LATENCY_SAMPLE = 200;
const MAX_LATENCIES = 4_000_000;

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every 20 ms until it is true or `ms` have passed; returns whether it held. */
export async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/** `p` (0–1) percentile of `values` (sorted in place). */
export function percentile(values: Float64Array, p: number): number {
  if (values.length === 0) return NaN;
  values.sort();
  return values[Math.min(values.length - 1, Math.floor(p * values.length))];
}

/** Subscribers of one topic on one server. */
export class SubscriberPool {
  /** `change` frames received by all sockets. */
  changes = 0;
  /** Other frames after the join reply (presence_state, presence_diff). */
  others = 0;
  /** When the last `change` frame arrived (performance.now()). */
  lastAt = 0;
  /** When the last non-change frame arrived. */
  lastOtherAt = 0;
  /** Sockets closed by the server or the network, by close code. */
  readonly closedBy = new Map<number, number>();
  readonly #sockets: WebSocket[] = [];
  readonly #url: string;
  readonly #topic: string;
  #latencies = new Float64Array(1024);
  #n = 0;
  #recording = false;
  #closing = false;

  /**
   * @param url `ws://127.0.0.1:<port>/socket/websocket?vsn=2.0.0`
   * @param topic the topic every socket joins, such as `kv:bench`
   */
  constructor(url: string, topic: string) {
    this.#url = url;
    this.#topic = topic;
  }

  /** Open sockets. */
  get size(): number {
    return this.#sockets.length;
  }

  /**
   * Opens `count` sockets, `concurrency` at a time, each joining the topic (or only connecting
   * when `join` is false); resolves when every join got its ok reply.
   * @throws when a socket fails to open or join within `timeoutMs` (default 60 s for all)
   */
  async open(
    count: number,
    options: { concurrency?: number; join?: boolean; timeoutMs?: number } = {},
  ): Promise<void> {
    const concurrency = options.concurrency ?? 100;
    const timeoutMs = options.timeoutMs ?? 60_000;
    const stride = Math.max(1, Math.ceil(count / LATENCY_SAMPLE));
    const deadline = performance.now() + timeoutMs;
    for (let i = 0; i < count; i += concurrency) {
      const batch: Promise<void>[] = [];
      for (let j = i; j < Math.min(count, i + concurrency); j++) {
        batch.push(this.#openOne(j % stride === 0, options.join ?? true, deadline));
      }
      const failed = (await Promise.allSettled(batch)).find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    }
  }

  #openOne(sampled: boolean, join: boolean, deadline: number): Promise<void> {
    const joinFrame = JSON.stringify(["1", "1", this.#topic, "phx_join", {}]);
    const replyPrefix = `["1","1","${this.#topic}","phx_reply",{"status":"ok"`;
    const changePrefix = `[null,null,"${this.#topic}","change",`;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.#url);
      this.#sockets.push(ws);
      let joined = false;
      const timer = setTimeout(
        () => reject(new Error("socket open/join timed out")),
        Math.max(1, deadline - performance.now()),
      );
      const done = () => {
        joined = true;
        clearTimeout(timer);
        resolve();
      };
      ws.onopen = () => join ? ws.send(joinFrame) : done();
      ws.onerror = () => {};
      ws.onclose = (e) => {
        clearTimeout(timer);
        if (!joined) reject(new Error(`socket closed before its join: ${e.code}`));
        if (!this.#closing) this.closedBy.set(e.code, (this.closedBy.get(e.code) ?? 0) + 1);
      };
      ws.onmessage = (e) => {
        const data = e.data as string;
        if (data.startsWith(changePrefix)) {
          const now = performance.now();
          this.changes++;
          this.lastAt = now;
          if (sampled && this.#recording) this.#record(now - timeOf(data));
        } else if (!joined && data.startsWith(replyPrefix)) done();
        else {
          this.others++;
          this.lastOtherAt = performance.now();
        }
      };
    });
  }

  #record(ms: number): void {
    if (this.#n === this.#latencies.length) {
      if (this.#n >= MAX_LATENCIES) return;
      const bigger = new Float64Array(this.#n * 2);
      bigger.set(this.#latencies);
      this.#latencies = bigger;
    }
    this.#latencies[this.#n++] = ms;
  }

  /** Resets the counters and starts recording latencies. */
  startPhase(): void {
    this.changes = 0;
    this.#n = 0;
    this.#recording = true;
  }

  /** Stops recording; returns the latencies (ms) recorded since {@linkcode startPhase}. */
  endPhase(): Float64Array {
    this.#recording = false;
    return this.#latencies.slice(0, this.#n);
  }

  /** Closes every socket and waits (at most `ms`) for their close events. */
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

/** The publisher's `t` in a change frame: the value `{"t": …}` is the frame's last object. */
function timeOf(data: string): number {
  return parseFloat(data.slice(data.lastIndexOf('"t":') + 4));
}

/** Publishes through `PUT /api/v1/kv/<key>` with `{"value": {"t": performance.now()}}`. */
export class Publisher {
  /** Accepted publishes (2xx). */
  ok = 0;
  /** Refused or failed publishes. */
  failed = 0;
  readonly #url: string;

  constructor(base: string, key: string) {
    this.#url = `${base}/api/v1/kv/${key}`;
  }

  /** One publish; resolves when the server answered. */
  async put(): Promise<void> {
    try {
      const r = await fetch(this.#url, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: `{"value":{"t":${performance.now()}}}`,
      });
      await r.body?.cancel();
      if (r.ok) this.ok++;
      else this.failed++;
    } catch {
      this.failed++;
    }
  }

  /** Open loop: `rate` publishes/s for `seconds`, at most `maxInFlight` unanswered. */
  async paced(rate: number, seconds: number, maxInFlight = 64): Promise<void> {
    const total = Math.round(rate * seconds);
    const start = performance.now();
    const pending = new Set<Promise<void>>();
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      if (pending.size >= maxInFlight) await Promise.race(pending);
      const p = this.put().finally(() => pending.delete(p));
      pending.add(p);
    }
    await Promise.all(pending);
  }

  /** Closed loop: `concurrency` publishers back to back for `seconds`. */
  async flat(seconds: number, concurrency: number): Promise<void> {
    const end = performance.now() + seconds * 1000;
    const worker = async () => {
      while (performance.now() < end) await this.put();
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }
}
