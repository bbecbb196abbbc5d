/**
 * Topic hubs: which subscribers a message reaches, pending ones included.
 * @module
 */
import assert from "node:assert/strict";
import { type Subscriber, TopicHub } from "../../realtime/fanout.ts";

function subscriber(): Subscriber & { got: string[] } {
  const got: string[] = [];
  return {
    format: "json",
    got,
    deliver(data) {
      got.push(JSON.parse(data as string)[3]);
    },
  };
}

Deno.test("TopicHub: presence broadcasts reach only subscribers already sent the topic's presence; other messages reach everyone, pending ones after their replay", () => {
  const hub = new TopicHub("reel:r1");
  const live = subscriber(); // joined, presence sent
  const joined = subscriber(); // joined, presence not sent yet
  const pending = subscriber(); // history still replaying
  hub.addPending(live);
  hub.activate(live);
  hub.presenceSent(live);
  hub.addPending(joined);
  hub.activate(joined);
  hub.addPending(pending);

  hub.publish({ event: "presence_diff", payload: { joins: {}, leaves: {} } }, true);
  hub.publish({ event: "reel_update", payload: { seq: 1 } });
  assert.deepEqual(live.got, ["presence_diff", "reel_update"]);
  assert.deepEqual(joined.got, ["reel_update"], "its presence_state, built later, covers the diff");
  hub.activate(pending);
  assert.deepEqual(pending.got, ["reel_update"], "nothing of the presence broadcast was held");

  hub.presenceSent(joined);
  hub.publish({ event: "presence_stats", payload: { count: 3 } }, true);
  assert.deepEqual(joined.got, ["reel_update", "presence_stats"]);
  assert.deepEqual(pending.got, ["reel_update"]);
  assert.deepEqual(live.got, ["presence_diff", "reel_update", "presence_stats"]);
});
