/**
 * A bounded outbound buffer for one socket, and the only code that writes to it.
 *
 * A slow consumer must never hold up anyone else (docs/socket.md): fan-out calls
 * {@linkcode Outbox.enqueue}, which never blocks. Frames go straight to the socket while it has
 * room; past the bound, `low` frames are dropped and the rest wait in order. A socket that
 * stays over the bound for `overLimitMs` is declared slow once (the socket layer closes it with 1013).
 * @module
 */

/** How much a frame matters when the socket is backed up; only `low` frames are ever dropped. */
export type OutboxPriority = "low" | "normal" | "high" | "critical";

/** What an {@linkcode Outbox} writes to: a WebSocket, or a fake in tests. */
export interface OutboxSink {
  /** Hands one frame to the transport. */
  send(data: string | Uint8Array): void;
  /** Bytes handed to the transport and not yet sent, as `WebSocket.bufferedAmount`. */
  readonly bufferedAmount: number;
}

/** A source of milliseconds; injected so tests control time. */
export interface OutboxClock {
  /** The current time in milliseconds. */
  now(): number;
}

/** Options of {@linkcode Outbox}. */
export interface OutboxOptions {
  /** Bound on the bytes queued here plus the sink's `bufferedAmount`. Default 1 MiB. */
  maxBytes?: number;
  /** How long the socket may stay over `maxBytes` before it is declared slow. Default 5000 ms. */
  overLimitMs?: number;
  /**
   * Memory cap: once queued plus buffered bytes pass it, the socket is slow at once instead of
   * after `overLimitMs`. Default 4 × `maxBytes`.
   */
  hardLimitBytes?: number;
  /** The clock. Default `Date`. */
  clock?: OutboxClock;
  /** Called once when the socket is declared slow; the socket layer closes it with 1013. */
  onSlow?: () => void;
  /**
   * Called when a frame starts waiting in an empty queue (never while frames already wait); the
   * socket layer starts its flush timer then, so it pays nothing per frame in the common case.
   */
  onBacklog?: () => void;
}

interface Entry {
  readonly data: string | Uint8Array;
  readonly size: number;
}

/**
 * Per-socket outbound buffer with a byte bound, priority dropping and slow-consumer detection.
 *
 * The load is the bytes queued here plus the sink's `bufferedAmount`. A frame goes to the sink at
 * once when nothing is queued and the sink has room for it (or is empty, so a frame larger than
 * the bound still goes out alone). Otherwise a `low` frame is dropped when it would take the load
 * past the bound, and any other frame waits in order until {@linkcode Outbox.flush} (called by the
 * socket layer on a timer or when the sink drains) or the next enqueue finds room. Because a
 * waiting frame means the sink is full, `low` frames never wait: they are the ones dropped first.
 * Frames that are not dropped leave in the order they were enqueued. O(1) amortized per frame.
 *
 * `bufferedAmount` is read lazily. The outbox is the sink's only writer and a sink's buffer only
 * grows by what is sent to it, so the last value read plus the bytes sent since is an upper bound
 * of the real one. While that estimate leaves room for a frame and nothing waits, the frame goes
 * straight to the sink without asking it anything; the real value is read only when the estimate
 * reaches the bound (then decisions are made on it, exactly as if it were read every time) and on
 * every {@linkcode Outbox.flush}. The first enqueue always reads it.
 */
export class Outbox {
  #sink: OutboxSink;
  #maxBytes: number;
  #overLimitMs: number;
  #hardLimitBytes: number;
  #clock: OutboxClock;
  #onSlow: () => void;
  #onBacklog: (() => void) | undefined;
  /** Frames waiting; the shared empty queue until a frame has to wait (most sockets never do). */
  #queue: Fifo<Entry> = NOTHING_WAITS as Fifo<Entry>;
  #queuedBytes = 0;
  /** Upper bound of the sink's `bufferedAmount`: the last value read plus the bytes sent since. */
  #estimate = Infinity;
  #sent = 0;
  #dropped = 0;
  #overSince: number | null = null;
  #slow = false;
  #closed = false;

  /**
   * @param sink The socket this outbox is the single writer of.
   * @param options Bounds, clock and the slow callback.
   */
  constructor(sink: OutboxSink, options: OutboxOptions = {}) {
    this.#sink = sink;
    this.#maxBytes = options.maxBytes ?? 1024 * 1024;
    this.#overLimitMs = options.overLimitMs ?? 5000;
    this.#hardLimitBytes = options.hardLimitBytes ?? 4 * this.#maxBytes;
    this.#clock = options.clock ?? Date;
    this.#onSlow = options.onSlow ?? (() => {});
    this.#onBacklog = options.onBacklog;
  }

  /** Frames handed to the sink. */
  get sent(): number {
    return this.#sent;
  }

  /** Frames dropped: `low` frames over the bound, and every frame once the socket is slow. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Bytes waiting here (not counting the sink's own buffer). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /** Frames waiting here. */
  get queuedFrames(): number {
    return this.#queue.size;
  }

  /** Whether the socket has been declared slow; nothing more is sent once it is. */
  get slow(): boolean {
    return this.#slow;
  }

  /**
   * Sends `data` now, queues it behind earlier frames, or drops it when it is `low` and would take
   * the socket over the bound. Never blocks.
   *
   * @param data A text frame or an encoded binary frame; the same object may go to many outboxes.
   * @param priority Only `low` frames are dropped. Default `normal`.
   * @returns Whether the frame was sent or queued (false: dropped, slow, or closed).
   */
  enqueue(data: string | Uint8Array, priority: OutboxPriority = "normal"): boolean {
    if (this.#closed) return false;
    if (this.#slow) {
      this.#dropped++;
      return false;
    }
    const size = typeof data === "string" ? byteSize(data) : data.byteLength;
    const max = this.#maxBytes;
    const estimate = this.#estimate + size;
    if (estimate <= max && this.#queue.size === 0) {
      // The common case: nothing waits and the sink has room even if it sent nothing since the
      // last read, so the load stays within the bound.
      this.#sink.send(data);
      this.#sent++;
      this.#estimate = estimate;
      this.#overSince = null;
      return true;
    }
    // Near the bound, or frames wait: decide on what the sink really holds.
    const buffered = this.#drain(this.#read());
    if (this.#queue.size === 0 && (buffered === 0 || buffered + size <= max)) {
      this.#sink.send(data);
      this.#sent++;
      this.#estimate = buffered + size;
      this.#check(buffered + size);
      return true;
    }
    if (priority === "low" && buffered + this.#queuedBytes + size > max) {
      this.#dropped++;
      this.#check(buffered);
      return false;
    }
    const backlog = this.#queue.size === 0;
    if (this.#queue === NOTHING_WAITS) this.#queue = new Fifo();
    this.#queue.push({ data, size });
    this.#queuedBytes += size;
    this.#check(buffered);
    if (backlog && !this.#slow && this.#onBacklog) this.#onBacklog();
    return true;
  }

  /**
   * Moves queued frames to the sink while it has room, then checks how long the socket has been
   * over the bound. Call it on a timer and whenever the sink drains.
   */
  flush(): void {
    if (this.#closed || this.#slow) return;
    this.#check(this.#drain(this.#read()));
  }

  /** Discards the queue; later frames are ignored. Call it when the socket closes. */
  close(): void {
    this.#closed = true;
    this.#clear();
  }

  /** Reads the sink's `bufferedAmount`, which becomes the estimate. */
  #read(): number {
    return this.#estimate = this.#sink.bufferedAmount;
  }

  /**
   * Sends queued frames in order while the sink has room, starting from `buffered` (just read);
   * returns the sink's `bufferedAmount` after, counted rather than read again (a send adds the
   * frame's bytes to it, and it only drains between tasks).
   */
  #drain(buffered: number): number {
    const queue = this.#queue;
    if (queue.size === 0) return buffered;
    const max = this.#maxBytes;
    const sink = this.#sink;
    while (queue.size > 0) {
      const entry = queue.peek()!;
      if (buffered > 0 && buffered + entry.size > max) break;
      queue.shift();
      this.#queuedBytes -= entry.size;
      sink.send(entry.data);
      this.#sent++;
      this.#estimate = buffered += entry.size;
    }
    if (queue.size === 0) this.#queue = NOTHING_WAITS as Fifo<Entry>;
    return buffered;
  }

  /** Tracks time over the bound; declares the socket slow past `overLimitMs` or the hard limit. */
  #check(buffered: number): void {
    const load = buffered + this.#queuedBytes;
    if (load <= this.#maxBytes) {
      this.#overSince = null;
      return;
    }
    const now = this.#clock.now();
    this.#overSince ??= now;
    if (load > this.#hardLimitBytes || now - this.#overSince >= this.#overLimitMs) {
      this.#slow = true;
      this.#dropped += this.#queue.size;
      this.#clear();
      this.#onSlow();
    }
  }

  #clear(): void {
    this.#queue = NOTHING_WAITS as Fifo<Entry>;
    this.#queuedBytes = 0;
  }
}

/** A FIFO with O(1) amortized push and shift (an array with a moving head, compacted lazily). */
class Fifo<T> {
  #items: T[] = [];
  #head = 0;
  /** Items in the queue (a field, not a getter: it is read for every frame). */
  size = 0;

  push(item: T): void {
    this.#items.push(item);
    this.size++;
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined as T;
    this.size--;
    if (this.size === 0) {
      this.#items.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

/** The empty queue every outbox starts with and returns to when cleared; never pushed to. */
const NOTHING_WAITS = new Fifo<never>();

let lastText = "";
let lastTextBytes = 0;

/**
 * The frame's size in bytes as the transport counts it (UTF-8 for text). Fan-out hands the same
 * string to every socket in a row, so the last string's size is remembered.
 */
function byteSize(data: string | Uint8Array): number {
  if (typeof data !== "string") return data.byteLength;
  if (data === lastText) return lastTextBytes;
  lastTextBytes = utf8Bytes(data);
  lastText = data;
  return lastTextBytes;
}

/** The UTF-8 length of `data`, counted without encoding it. */
export function utf8Bytes(data: string): number {
  let bytes = data.length;
  for (let i = 0; i < data.length; i++) {
    const c = data.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && (data.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a surrogate pair: two units, four bytes
      i++;
    } else bytes += 2;
  }
  return bytes;
}
