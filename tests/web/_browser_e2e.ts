/**
 * End-to-end tests in real Chromium (Debian's `/usr/bin/chromium`, driven by playwright-core)
 * against Chorus served on 127.0.0.1: the console, the docs page and CORS. A missing Chromium
 * fails these tests; it never skips them (`.ci/run` installs it). playwright-core needs all
 * permissions (it probes `/proc`), so `browser_test.ts` runs this file in `deno test -A`.
 * @module
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { ADMIN, serveChorus, type Served } from "./_server.ts";

const CHROMIUM = Deno.env.get("CHORUS_CHROMIUM") ?? "/usr/bin/chromium";
const SCREENSHOTS = new URL("./screenshots/", import.meta.url);
const TIMEOUT = 10_000;

async function launch(): Promise<Browser> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(
      `Chromium is missing at ${CHROMIUM}: install it (apt-get install -y chromium) or set ` +
        "CHORUS_CHROMIUM; the browser tests never skip",
    );
  }
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
}

/** A page that records every request's URL and every console error or page error. */
async function watchedPage(browser: Browser) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const urls: string[] = [];
  const errors: string[] = [];
  page.on("request", (r) => urls.push(r.url()));
  page.on("websocket", (ws) => urls.push(ws.url()));
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  return { page, urls, errors, close: () => context.close() };
}

function assertSameOrigin(urls: string[], origin: string) {
  const host = new URL(origin).host;
  const foreign = urls.filter((u) => !u.startsWith("data:") && new URL(u).host !== host);
  assert.deepEqual(foreign, [], "no request leaves the server's origin");
  assert.ok(urls.length > 0);
}

async function screenshot(page: Page, name: string, fullPage = true) {
  await Deno.mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: new URL(name, SCREENSHOTS).pathname, fullPage });
}

async function openConsole(browser: Browser, served: Served) {
  const watched = await watchedPage(browser);
  await watched.page.goto(served.origin + "/");
  await watched.page.locator('#conn[data-state="open"]').waitFor();
  return watched;
}

Deno.test("[web] the console: presence, interactions, context deltas, kv watch, recovery", async () => {
  const browser = await launch();
  const served = await serveChorus();
  try {
    const one = await openConsole(browser, served);
    const two = await openConsole(browser, served);
    const [a, b] = [one.page, two.page];

    // Reels: both open r1 and see each other in presence.
    for (const page of [a, b]) {
      await page.fill("#reel-id", "r1");
      await page.click('#reel-form button[type="submit"]');
      await page.locator("#act-like:not([disabled])").waitFor();
    }
    const userA = await a.inputValue("#user");
    const userB = await b.inputValue("#user");
    assert.notEqual(userA, userB);
    await a.locator(`#presence li[data-user="${userB}"]`).waitFor();
    await b.locator(`#presence li[data-user="${userA}"]`).waitFor();

    // Each sees the other's like and comment, live.
    await a.click("#act-like");
    await b.locator("#c-likes", { hasText: "1" }).waitFor();
    await b.fill("#comment-text", "hello from b");
    await b.click("#act-comment");
    await a.locator("#c-comments", { hasText: "1" }).waitFor();
    await a.locator("#reel-log li", { hasText: "hello from b" }).waitFor();

    // An update, then a dropped connection: the rejoin recovers from last_seq.
    await a.fill("#update-text", "first update");
    await a.click("#act-update");
    await b.locator("#reel-log li", { hasText: "first update" }).waitFor();
    await b.click("#reel-drop");
    await b.locator("#recovery li", { hasText: "recovered: true" }).waitFor();

    // Contexts: an edit in one page arrives as a delta in the other.
    for (const page of [a, b]) {
      await page.fill("#ctx-id", "c1");
      await page.click('#ctx-form button[type="submit"]');
      await page.locator("#ctx-log li", { hasText: "joined" }).waitFor();
    }
    await a.fill("#ctx-editor", '{"title": "one"}');
    await a.click("#ctx-put");
    await b.locator("#ctx-log li", { hasText: "v0→v1 delta" }).waitFor();
    await b.locator("#ctx-version", { hasText: "1" }).waitFor();
    await b.fill("#ctx-patch", '{"done": true}');
    await b.click("#ctx-merge");
    await a.locator("#ctx-log li", { hasText: "v1→v2 delta" }).waitFor();
    await a.fill("#ctx-patch", '[{"op": "replace", "path": "/title", "value": "two"}]');
    await a.click("#ctx-jsonpatch");
    await b.locator("#ctx-log li", { hasText: "v2→v3 delta" }).waitFor();
    await b.locator("#ctx-version", { hasText: "3" }).waitFor();
    assert.deepEqual(JSON.parse(await b.inputValue("#ctx-editor")), { title: "two", done: true });

    // kv: a watched key updates live over SSE.
    await b.fill("#kv-key", "live");
    await b.click("#kv-watch");
    await b.locator("#kv-watch-state", { hasText: "on" }).waitFor();
    await a.fill("#kv-key", "live");
    await a.fill("#kv-value", '{"n": 42}');
    await a.click("#kv-put");
    await b.locator("#kv-log li", { hasText: '{"n":42}' }).waitFor();
    await a.fill("#kv-prefix", "li");
    await a.click('#kv-list-form button[type="submit"]');
    await a.locator("#kv-list li", { hasText: "live v1" }).waitFor();

    await screenshot(b, "console.png");
    for (const w of [one, two]) {
      assertSameOrigin(w.urls, served.origin);
      assert.deepEqual(w.errors, [], "no console error");
    }
    assert.ok(one.urls.some((u) => u.startsWith("ws://")), "the socket is used");
    await one.close();
    await two.close();
  } finally {
    await browser.close();
    await served.close();
  }
});

Deno.test("[web] auth on: the docs page's Try it out works with a token; SSE uses tickets", async () => {
  const browser = await launch();
  const served = await serveChorus({ auth: true, adminToken: ADMIN });
  try {
    const docs = await watchedPage(browser);
    const page = docs.page;
    await page.goto(served.origin + "/api/docs");
    await page.locator(".swagger-ui .info .title", { hasText: "Chorus" }).waitFor();
    await page.click(".btn.authorize");
    await page.locator(".modal-ux input").first().fill(ADMIN);
    await page.click(".modal-ux .auth-btn-wrapper .authorize");
    await page.click(".modal-ux .btn-done");
    const op = page.locator("#operations-system-getStatus");
    await op.locator(".opblock-summary").first().click();
    await op.locator(".try-out__btn").click();
    await op.locator(".execute").click();
    await op.locator(".live-responses-table .response-col_status", { hasText: "200" }).waitFor();
    assert.equal(await page.locator("a#socket-doc").getAttribute("href"), "/api/docs/socket.md");
    await op.scrollIntoViewIfNeeded();
    await screenshot(page, "docs.png", false);
    assertSameOrigin(docs.urls, served.origin);
    assert.deepEqual(docs.errors, [], "no console error on the docs page");
    await docs.close();

    // The console with a token: the socket connects and a kv watch opens with a ticket.
    const { token } = await served.chorus.tokens.create({ scopes: ["kv:read", "kv:write"] });
    const con = await watchedPage(browser);
    await con.page.goto(served.origin + "/");
    await con.page.locator("#auth-mode", { hasText: "auth: on" }).waitFor();
    await con.page.fill("#token", token);
    await con.page.click('#token-form button[type="submit"]');
    await con.page.locator('#conn[data-state="open"]').waitFor();
    await con.page.fill("#kv-key", "secured");
    await con.page.click("#kv-watch");
    await con.page.locator("#kv-watch-state", { hasText: "on" }).waitFor();
    await con.page.click("#kv-put");
    await con.page.locator("#kv-log li", { hasText: "secured set v1" }).waitFor();
    assert.ok(con.urls.some((u) => u.includes("/watch?ticket=tk_chorus_")));
    // A token without a scope gets a clear message.
    await con.page.fill("#reel-id", "r1");
    await con.page.click('#reel-form button[type="submit"]');
    await con.page.locator("#notice", { hasText: "lacks a scope" }).waitFor();
    assertSameOrigin(con.urls, served.origin);
    await con.close();
  } finally {
    await browser.close();
    await served.close();
  }
});

Deno.test("[web] fetch and SSE from another origin work exactly when CHORUS_CORS_ORIGINS lists it", async () => {
  const browser = await launch();
  const other = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response("<!doctype html><title>other origin</title>", {
        headers: { "content-type": "text/html" },
      }),
  );
  const otherOrigin = `http://127.0.0.1:${other.addr.port}`;
  const listed = await serveChorus({ corsOrigins: [otherOrigin] });
  const unlisted = await serveChorus({ corsOrigins: [] });
  try {
    const { page, close } = await watchedPage(browser);
    await page.goto(otherOrigin + "/");
    const probe = (api: string) =>
      page.evaluate(async (api) => {
        let fetched = "failed";
        try {
          const res = await fetch(`${api}/api/v1/kv/cors`, {
            method: "PUT",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ value: 1 }),
          });
          fetched = String(res.status);
        } catch {
          // blocked by CORS
        }
        const sse = await new Promise<string>((resolve) => {
          const source = new EventSource(`${api}/api/v1/kv/cors/watch`);
          const done = (what: string) => {
            source.close();
            resolve(what);
          };
          source.addEventListener("ready", () => done("ready"));
          source.onerror = () => done("failed");
          setTimeout(() => done("timeout"), 5000);
        });
        return { fetched, sse };
      }, api);
    assert.deepEqual(await probe(listed.origin), { fetched: "200", sse: "ready" });
    assert.deepEqual(await probe(unlisted.origin), { fetched: "failed", sse: "failed" });
    await close();
  } finally {
    await browser.close();
    await listed.close();
    await unlisted.close();
    await other.shutdown();
  }
});
