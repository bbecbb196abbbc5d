import assert from "node:assert/strict";
import { Chorus } from "../../mod.ts";
import { SOCKET_REPORTS_AT_ONCE } from "../../actors/user_api.ts";
import { until } from "../_helpers.ts";

Deno.test("[users] presence reports from socket joins are all written, in order, a bounded number at once", async () => {
  const chorus = await Chorus.open({ path: ":memory:" });
  try {
    const users = chorus.users;
    const setPresence = users.setPresence.bind(users);
    let running = 0;
    let most = 0;
    let written = 0;
    users.setPresence = async (...args: Parameters<typeof setPresence>) => {
      running++;
      most = Math.max(most, running);
      try {
        const result = await setPresence(...args);
        written++;
        return result;
      } finally {
        running--;
      }
    };
    const failures: unknown[] = [];
    for (let i = 0; i < 200; i++) {
      users.reportFromSocket(`viewer-${i}`, { status: "online", current_reel: "show" }, (e) => {
        failures.push(e);
      });
    }
    // One user's two reports land in the order they were made.
    users.reportFromSocket("viewer-0", { status: "away", current_reel: "other" }, (e) => {
      failures.push(e);
    });
    await until(() => written + failures.length === 201, 10_000, "every report written");
    assert.deepEqual(failures, []);
    assert.ok(most <= SOCKET_REPORTS_AT_ONCE, `${most} reports ran at once`);
    assert.ok(most > 1, "reports run concurrently");
    for (const i of [1, 57, 142]) {
      assert.equal((await users.getPresence(`viewer-${i}`)).current_reel, "show");
    }
    const first = await users.getPresence("viewer-0");
    assert.equal(first.current_reel, "other");
    assert.equal(first.status, "away");
  } finally {
    await chorus.close();
  }
});
