/**
 * The `system` topic: a `system_stats` broadcast every few seconds (sockets, topics, messages
 * in/out/dropped, actors, memory, uptime) for dashboards. No presence, no pushes, no sub-topics
 * (`system:<x>` is an unmatched topic).
 * @module
 */
import type { Clock, TimerId } from "../clock.ts";
import type { TopicHandler } from "./topics.ts";

/** Options of {@linkcode systemTopic}. */
export interface SystemTopicOptions {
  /** The stats payload, read at each tick. */
  stats: () => Record<string, unknown>;
  /** Time source of the timer. */
  clock: Clock;
  /** Milliseconds between broadcasts. Default 5000 (docs/socket.md). */
  intervalMs?: number;
}

/** Builds the handler of the `system` topic. */
export function systemTopic(options: SystemTopicOptions): TopicHandler {
  const every = options.intervalMs ?? 5000;
  return {
    presence: false,
    // One topic, one timer: `system:<anything>` is unmatched, not a topic with a timer of its own.
    bare: true,
    open(_topic, _name, publish) {
      let timer: TimerId | undefined;
      const tick = () => {
        publish({ event: "system_stats", payload: options.stats(), priority: "low" });
        timer = options.clock.setTimeout(tick, every);
      };
      timer = options.clock.setTimeout(tick, every);
      return () => {
        if (timer !== undefined) options.clock.clearTimeout(timer);
      };
    },
    join: () => ({ response: options.stats() }),
  };
}
