/**
 * The `user:<id>` topic handler alone, over a real UsersApi on `:memory:`: who may join, what the
 * join reply holds, `last_seq` replay and its refusals, the `presence` push and the live feed.
 * @module
 */
import assert from "node:assert/strict";
import { userTopic } from "../../realtime/user_topic.ts";
import { type JoinContext, TopicError, type TopicMessage } from "../../realtime/topics.ts";
import { openTest } from "../_helpers.ts";

function context(name: string, userId: string | null, payload = {}): JoinContext {
  return {
    topic: `user:${name}`,
    name,
    payload,
    socket: { id: "01SOCKET", userId, params: {} },
  };
}

async function refusal(work: () => unknown): Promise<string> {
  try {
    await work();
  } catch (e) {
    assert.ok(e instanceof TopicError, `a TopicError, not ${e}`);
    return e.reason;
  }
  assert.fail("expected a refusal");
}

Deno.test("[topic] user:<id> joins: the user itself and an anonymous socket may, another user and a bad id may not", async () => {
  const { chorus } = await openTest();
  try {
    const topic = userTopic(chorus.users);
    const own = await topic.join(context("u1", "u1"));
    assert.equal(own.response.seq, 0);
    assert.equal(own.after, 0);
    assert.equal(typeof own.response.status, "string", "the reply carries the presence");
    const anonymous = await topic.join(context("u1", null));
    assert.equal(anonymous.response.seq, 0);
    assert.equal(await refusal(() => topic.join(context("u1", "u2"))), "unauthorized");
    assert.equal(await refusal(() => topic.join(context("..", null))), "invalid_request");
    assert.equal(await refusal(() => topic.join(context("a b", null))), "invalid_request");
  } finally {
    await chorus.close();
  }
});

Deno.test("[topic] user:<id> last_seq: replays the feed after it, refuses a bad one", async () => {
  const { chorus } = await openTest();
  try {
    const topic = userTopic(chorus.users);
    await chorus.users.setPresence("u1", { status: "online" });
    await chorus.users.setPresence("u1", { status: "away" });
    const all = await topic.join(context("u1", "u1", { last_seq: 0 }));
    assert.equal(all.response.recovered, true);
    assert.equal(all.response.seq, 2);
    const replayed = [...(all.replay as Iterable<TopicMessage>)];
    assert.deepEqual(replayed.map((m) => [m.event, m.seq]), [
      ["user_activity", 1],
      ["user_activity", 2],
    ]);
    assert.equal(all.after, 2);
    const none = await topic.join(context("u1", "u1", { last_seq: 2 }));
    assert.equal(none.response.recovered, true);
    assert.deepEqual([...(none.replay as Iterable<TopicMessage>)], []);
    assert.equal(none.after, 2);
    for (const bad of [-1, 1.5, "1"]) {
      const reason = await refusal(() => topic.join(context("u1", "u1", { last_seq: bad })));
      assert.equal(reason, "invalid last_seq", `last_seq ${JSON.stringify(bad)}`);
    }
  } finally {
    await chorus.close();
  }
});

Deno.test("[topic] user:<id> push presence: answered with the presence and published as user_activity", async () => {
  const { chorus } = await openTest();
  try {
    const topic = userTopic(chorus.users);
    const published: TopicMessage[] = [];
    const stop = await topic.open!("user:u1", "u1", (m) => published.push(m));
    try {
      const ctx = context("u1", "u1");
      const reply = await topic.handleIn!("presence", { status: "online" }, ctx);
      assert.equal((reply as Record<string, unknown>).status, "online");
      await chorus.users.getPresence("u1"); // the feed entry has been emitted by now
      assert.deepEqual(published.map((m) => [m.event, m.seq]), [["user_activity", 1]]);
      assert.equal(await refusal(() => topic.handleIn!("wave", {}, ctx)), "unknown event");
      assert.equal(
        await refusal(() => topic.handleIn!("presence", new ArrayBuffer(1), ctx)),
        "binary payload not accepted",
      );
      assert.equal(
        await refusal(() => topic.handleIn!("presence", { status: 42 }, ctx)),
        "invalid_request",
      );
    } finally {
      stop();
    }
  } finally {
    await chorus.close();
  }
});
