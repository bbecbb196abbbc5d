/**
 * What browsers load, all from embedded assets (web/build.ts generates them), never from a CDN or
 * the disk: the console at `GET /`, Swagger UI at `GET /api/docs`, their scripts and styles, the
 * favicon and a copy of docs/socket.md. Pages get a strict Content-Security-Policy (no inline
 * script or style, nothing from another origin) and are revalidated; assets are addressed by a
 * content hash (`?v=`) and cached for a year.
 * @module
 */
import { type Context, Hono } from "hono";
import {
  consoleAssetsVersion,
  consoleCss,
  consoleHtml,
  consoleJs,
  docsCss,
  docsHtml,
  docsJs,
  favicon,
  phoenixJsGz,
  socketMd,
} from "./_console_assets.ts";
import { swaggerAssetsVersion, swaggerBundleJsGz, swaggerCssGz } from "./_swagger_assets.ts";
import { gunzipSync } from "node:zlib";

/** The CSP of the console and docs pages. */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const IMMUTABLE = "public, max-age=31536000, immutable";

const fill = (text: string) =>
  text.replaceAll("{{v}}", consoleAssetsVersion).replaceAll("{{sv}}", swaggerAssetsVersion);

const pages = { console: fill(consoleHtml), docs: fill(docsHtml), consoleJs: fill(consoleJs) };

function page(html: string): Response {
  return new Response(html, {
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Security-Policy": PAGE_CSP,
      "Cache-Control": "no-cache",
    },
  });
}

function asset(body: string, type: string): () => Response {
  return () =>
    new Response(body, {
      headers: { "Content-Type": type, "Cache-Control": IMMUTABLE },
    });
}

/**
 * A third-party asset embedded gzip-compressed (see web/build.ts `pack`): sent as it is to a
 * browser that accepts gzip, decompressed once (on first need) for any other client.
 */
function packedAsset(hex: string, type: string): (c: Context) => Response {
  let gzipped: Uint8Array<ArrayBuffer> | undefined;
  let plain: string | undefined;
  return (c) => {
    gzipped ??= Uint8Array.from(
      { length: hex.length / 2 },
      (_, i) => parseInt(hex.slice(2 * i, 2 * i + 2), 16),
    );
    const headers: Record<string, string> = {
      "Content-Type": type,
      "Cache-Control": IMMUTABLE,
      Vary: "Accept-Encoding",
    };
    if (/\bgzip\b/.test(c.req.header("accept-encoding") ?? "")) {
      return new Response(gzipped, { headers: { ...headers, "Content-Encoding": "gzip" } });
    }
    plain ??= new TextDecoder().decode(gunzipSync(gzipped));
    return new Response(plain, { headers });
  };
}

const JS = "text/javascript; charset=utf-8";
const CSS = "text/css; charset=utf-8";
const SVG = "image/svg+xml";

/** The browser routes, mounted at the root. */
export function webRoutes(): Hono {
  const app = new Hono();
  app.get("/", () => page(pages.console));
  app.get("/console/app.js", asset(pages.consoleJs, JS));
  app.get("/console/app.css", asset(consoleCss, CSS));
  app.get("/console/phoenix.mjs", packedAsset(phoenixJsGz, JS));
  app.get("/favicon.svg", asset(favicon, SVG));
  app.get("/favicon.ico", asset(favicon, SVG));
  app.get("/api/docs", () => page(pages.docs));
  app.get("/api/docs/", () => page(pages.docs));
  app.get("/api/docs/swagger-ui.css", packedAsset(swaggerCssGz, CSS));
  app.get("/api/docs/swagger-ui-bundle.js", packedAsset(swaggerBundleJsGz, JS));
  app.get("/api/docs/init.js", asset(docsJs, JS));
  app.get("/api/docs/docs.css", asset(docsCss, CSS));
  app.get("/api/docs/socket.md", () =>
    new Response(socketMd, {
      headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache" },
    }));
  return app;
}
