// deno-lint-ignore-file no-explicit-any
/**
 * Chord's sync habits over the socket: a subscriber's `delta_format` (chord, json-patch,
 * merge-patch or a registered format) shapes its join reply and every live `delta` event.
 * (Context expiry with auto-delete off and cleanup limits: tests/actors/context_api_test.ts and
 * tests/contexts/scheduler_test.ts.)
 * @module
 */
import assert from "node:assert/strict";
import { connect, disconnect, join, serve } from "../realtime/_socket_helpers.ts";
import { until } from "../_helpers.ts";
import { applyJsonPatch, applyMergePatch } from "../../deltas/mod.ts";

Deno.test("[chord] socket delta events and the join reply honour delta_format", async () => {
  const srv = await serve({
    deltaFormats: [{
      name: "keys",
      diff: (from, to) => Object.keys({ ...from, ...to }).filter((k) => from[k] !== to[k]),
      apply: (context) => context,
    }],
  });
  const socket = connect(srv.url);
  try {
    const contexts = srv.chorus.contexts;
    await contexts.set("doc", { title: "a", n: 1 });
    const got: Record<string, any[]> = { chord: [], "json-patch": [], "merge-patch": [], keys: [] };
    const replies: Record<string, any> = {};
    for (const format of Object.keys(got)) {
      // One socket may hold one channel per topic: a socket per format.
      const s = format === "chord" ? socket : connect(srv.url);
      const channel = s.channel(
        "context:doc",
        format === "chord" ? { version: 0 } : {
          version: 1,
          delta_format: format,
        },
      );
      channel.on("delta", (p: any) => got[format].push(p));
      replies[format] = await join(channel);
      (got[format] as any).socket = s;
    }
    assert.equal(replies.chord.type, "full_context");
    assert.deepEqual(replies["json-patch"], { type: "no_change", version: 1 });
    await contexts.update("doc", { n: 2 });
    await contexts.update("doc", { title: null }); // merge patch: removes title
    await contexts.update("doc", [{ op: "add", path: "/tags", value: null }], {
      type: "json-patch",
    });
    await until(() => Object.values(got).every((list) => list.length >= 3), "deltas");
    // chord: as before.
    assert.deepEqual(got.chord[0].delta, { n: { action: "modified", value: 2, old_value: 1 } });
    // json-patch: RFC 6902 operations that rebuild the context.
    assert.deepEqual(got["json-patch"][0].delta, [{ op: "replace", path: "/n", value: 2 }]);
    let doc: any = { title: "a", n: 1 };
    for (const e of got["json-patch"]) {
      assert.equal(e.type, "delta");
      doc = applyJsonPatch(doc, e.delta);
    }
    assert.deepEqual(doc, (await contexts.get("doc"))?.context);
    // merge-patch: a change to null cannot be a merge patch, so it comes as full_context.
    assert.deepEqual(got["merge-patch"][0].delta, { n: 2 });
    assert.deepEqual(
      applyMergePatch({ n: 2, title: "a" }, got["merge-patch"][1].delta),
      { n: 2 },
    );
    assert.equal(got["merge-patch"][2].type, "full_context");
    assert.deepEqual(got["merge-patch"][2].context, { n: 2, tags: null });
    // A registered format.
    assert.deepEqual(got.keys.map((e) => e.delta), [["n"], ["title"], ["tags"]]);
    // Versions and ids are the same in every format.
    for (const list of Object.values(got)) {
      assert.deepEqual(list.map((e) => e.version), [2, 3, 4]);
    }
    // The join reply's sync result uses the format too.
    const late = connect(srv.url);
    const ch = late.channel("context:doc", { version: 1, delta_format: "json-patch" });
    const reply = await join(ch);
    assert.equal(reply.type, "delta");
    assert.deepEqual(applyJsonPatch({ title: "a", n: 1 }, reply.delta), { n: 2, tags: null });
    const bad = late.channel("context:other", { delta_format: "yaml" });
    await assert.rejects(join(bad), (r: any) => r.reason === "invalid_request");
    bad.leave();
    for (const list of Object.values(got)) {
      const s = (list as any).socket;
      if (s !== socket) await disconnect(s);
    }
    await disconnect(late);
  } finally {
    await disconnect(socket);
    await srv.close();
  }
});
