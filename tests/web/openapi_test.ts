// deno-lint-ignore-file no-explicit-any
import assert from "node:assert/strict";
import { createConfig, lintFromString } from "@redocly/openapi-core";
import { openTest } from "../_helpers.ts";

async function documentOf(): Promise<any> {
  const { chorus } = await openTest({
    config: { auth: true, adminToken: "sk_chorus_x-0123456789" },
  });
  try {
    const res = await chorus.app.request("/api/v1/openapi.json");
    assert.equal(res.status, 200, "open with auth on");
    return await res.json();
  } finally {
    await chorus.close();
  }
}

const METHODS = ["get", "put", "post", "patch", "delete"];

function operations(doc: any): { path: string; method: string; op: any }[] {
  const out = [];
  for (const [path, item] of Object.entries<any>(doc.paths)) {
    for (const method of METHODS) if (item[method]) out.push({ path, method, op: item[method] });
  }
  return out;
}

Deno.test("[openapi] the document passes Redocly's recommended rules with no error", async () => {
  const doc = await documentOf();
  const config = await createConfig({ extends: ["recommended"] });
  const problems = await lintFromString({
    source: JSON.stringify(doc),
    absoluteRef: "/api/v1/openapi.json",
    config,
  });
  const errors = problems.filter((p: any) => p.severity === "error");
  assert.deepEqual(
    errors.map((p: any) => `${p.ruleId}: ${p.message} at ${p.location?.[0]?.pointer}`),
    [],
  );
});

Deno.test("[openapi] security, errors, tags, operation ids, servers and required bodies", async () => {
  const doc = await documentOf();
  assert.ok(doc.servers.length > 0 && doc.servers.every((s: any) => s.url));
  assert.deepEqual(doc.components.securitySchemes.bearer, {
    ...doc.components.securitySchemes.bearer,
    type: "http",
    scheme: "bearer",
  });
  const open = new Set(["/health", "/ready", "/api/v1/openapi.json", "/api/v1/health"]);
  const ids = new Set<string>();
  const tags = new Set(["kv", "contexts", "reels", "users", "system", "tokens", "admin"]);
  for (const { path, method, op } of operations(doc)) {
    const where = `${method} ${path}`;
    assert.ok(op.operationId, where);
    assert.ok(!ids.has(op.operationId), `duplicate operationId ${op.operationId}`);
    ids.add(op.operationId);
    assert.equal(op.tags?.length, 1, where);
    assert.ok(tags.has(op.tags[0]), `${where}: tag ${op.tags[0]}`);
    const secured = op.security?.some((s: any) => "bearer" in s);
    if (open.has(path) || !path.startsWith("/api/v1/")) {
      assert.ok(!secured, `${where} is open`);
    } else {
      assert.ok(secured, `${where} needs a token`);
      for (const status of ["401", "429"]) assert.ok(op.responses[status], `${where} ${status}`);
      const schema = op.responses["401"].content["application/json"].schema;
      assert.equal(schema.$ref, "#/components/schemas/Error");
    }
    if (path.startsWith("/api/v1/") && ["post", "put", "patch"].includes(method)) {
      for (const status of ["413", "415", "504"]) {
        assert.ok(op.responses[status], `${where} ${status}`);
      }
    }
  }
  assert.equal(doc.paths["/api/v1/kv/{key}"].put.tags[0], "kv");
  assert.equal(doc.paths["/api/v1/tokens"].post.tags[0], "tokens");
  assert.ok(doc.paths["/api/v1/kv/{key}"].put.responses["403"]);
  assert.ok(doc.paths["/api/v1/tickets"].post);
  assert.ok(
    doc.paths["/api/v1/kv/{key}/watch"].get.parameters.some((p: any) => p.name === "ticket"),
  );
  const put = doc.paths["/api/v1/contexts/{id}"].put.requestBody.content["application/json"];
  assert.deepEqual(put.schema.required, ["context"]);
  assert.match(doc.info.description, /\/api\/docs\/socket\.md/);
});
