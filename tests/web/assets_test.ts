import assert from "node:assert/strict";
import { generate } from "../../web/build.ts";
import { PAGE_CSP } from "../../web/routes.ts";
import { openTest } from "../_helpers.ts";

Deno.test("[web] the embedded assets match swagger-ui-dist, phoenix and web/src (run `deno task web:build`)", async () => {
  for (const [name, text] of Object.entries(await generate())) {
    const current = await Deno.readTextFile(new URL(`../../web/${name}`, import.meta.url));
    assert.ok(current === text, `web/${name} is stale: run \`deno task web:build\``);
  }
});

Deno.test("[web] pages have a strict CSP; assets are served from here with long cache", async () => {
  const { chorus } = await openTest();
  try {
    for (const path of ["/", "/api/docs"]) {
      const res = await chorus.app.request(path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get("content-security-policy"), PAGE_CSP);
      const html = await res.text();
      assert.doesNotMatch(html, /https?:\/\//, `${path} loads nothing from another origin`);
      assert.doesNotMatch(html, /<script>|<style|style=/, `${path} has no inline script or style`);
      for (const [, src] of html.matchAll(/(?:src|href)="(\/[^"]+)"/g)) {
        const asset = await chorus.app.request(src);
        assert.equal(asset.status, 200, src);
        await asset.body?.cancel();
        if (src.includes("?v=")) {
          assert.match(asset.headers.get("cache-control") ?? "", /max-age=31536000/, src);
        }
      }
    }
    assert.doesNotMatch(PAGE_CSP, /unsafe/);
    const bundle = await chorus.app.request("/api/docs/swagger-ui-bundle.js");
    assert.match(bundle.headers.get("content-type") ?? "", /javascript/);
    assert.ok((await bundle.text()).length > 500_000);
    const md = await chorus.app.request("/api/docs/socket.md");
    assert.match(await md.text(), /Phoenix Channels v2/);
    const icon = await chorus.app.request("/favicon.ico");
    assert.equal(icon.status, 200);
    await icon.body?.cancel();
  } finally {
    await chorus.close();
  }
});

Deno.test("[web] third-party assets go out gzip-compressed to clients that accept it, plain to others", async () => {
  const { chorus } = await openTest();
  try {
    const path = "/api/docs/swagger-ui-bundle.js";
    const plain = await (await chorus.app.request(path)).text();
    const res = await chorus.app.request(path, { headers: { "accept-encoding": "gzip, br" } });
    assert.equal(res.headers.get("content-encoding"), "gzip");
    assert.equal(res.headers.get("vary"), "Accept-Encoding");
    const unzipped = await new Response(
      res.body!.pipeThrough(new DecompressionStream("gzip")),
    ).text();
    assert.equal(unzipped, plain);
  } finally {
    await chorus.close();
  }
});
