/**
 * HTTP load: `GET` and `PUT /api/v1/kv/:key` on Chorus vs a bare Hono route answering the same
 * JSON, measured with wrk in the same run (servers in their own processes on 127.0.0.1; wrk shares
 * the 2 cores). Prints a Markdown table of requests/s and ratios.
 * Usage: deno run -A bench/load/http_kv.ts [seconds=8] [connections=64]
 */
const seconds = Number(Deno.args[0] ?? 8);
const connections = Number(Deno.args[1] ?? 64);
const here = new URL(".", import.meta.url).pathname;

function haveWrk(): boolean {
  try {
    new Deno.Command("wrk", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync();
    return true;
  } catch {
    return false;
  }
}
if (!haveWrk()) {
  console.error("wrk is not installed (apt-get install -y wrk)");
  Deno.exit(1);
}

async function waitFor(port: number) {
  for (let i = 0; i < 200; i++) {
    try {
      await (await fetch(`http://127.0.0.1:${port}/api/v1/kv/warm`)).body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`server on ${port} did not start`);
}

async function wrk(
  url: string,
  script?: string,
  headers: string[] = [],
): Promise<{ rps: number; p99: string }> {
  const args = ["-t2", `-c${connections}`, `-d${seconds}s`, "--latency"];
  for (const h of headers) args.push("-H", h);
  if (script) args.push("-s", script);
  const out = await new Deno.Command("wrk", { args: [...args, url], stdout: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0);
  const p99 = /99%\s+([\d.]+\w+)/.exec(text)?.[1] ?? "?";
  if (/Non-2xx/.test(text)) console.error(`non-2xx answers from ${url}:\n${text}`);
  return { rps, p99 };
}

const putScript = await Deno.makeTempFile({ suffix: ".lua" });
await Deno.writeTextFile(
  putScript,
  `wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/api/v1/kv/k" .. (counter % 1000), nil, '{"value":{"n":' .. counter .. ',"s":"hello"}}')
end
`,
);

const dir = await Deno.makeTempDir({ prefix: "chorus-http-" });
const servers = [
  { name: "bare Hono route", port: 18101, args: [`${here}bare_hono.ts`, "18101"] },
  {
    name: "Chorus",
    port: 18102,
    args: [`${here}chorus_server.ts`, "18102", `${dir}/chorus.kv`],
  },
  {
    name: "Chorus, auth on",
    port: 18103,
    args: [`${here}chorus_server.ts`, "18103", `${dir}/chorus-auth.kv`, "auth"],
  },
];
const results: Record<string, Record<string, { rps: number; p99: string }>> = {};
for (const s of servers) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", ...s.args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  const drain = (async () => {
    for (;;) {
      const { value, done } = await lines.read();
      if (done) return;
      printed += value;
    }
  })();
  try {
    await waitFor(s.port);
    while (s.args.includes("auth") && !/token (\S+)/.test(printed)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const token = /token (\S+)/.exec(printed)?.[1];
    const headers = token ? [`Authorization: Bearer ${token}`] : [];
    const base = `http://127.0.0.1:${s.port}`;
    await fetch(`${base}/api/v1/kv/hot`, {
      method: "PUT",
      headers: {
        "content-type": "application/json",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: JSON.stringify({ value: { user: "u-42", cart: [1, 2, 3], total: 99.5 } }),
    }).then((r) => r.body?.cancel());
    results[s.name] = {
      GET: await wrk(`${base}/api/v1/kv/hot`, undefined, headers),
      PUT: await wrk(base, putScript, headers),
    };
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await drain.catch(() => {});
  }
}
await Deno.remove(dir, { recursive: true });
await Deno.remove(putScript);

const bare = results["bare Hono route"];
const ours = results["Chorus"];
const authed = results["Chorus, auth on"];
console.log(
  `\nwrk -t2 -c${connections} -d${seconds}s, servers on 127.0.0.1, ${Deno.build.target}\n`,
);
console.log("| route | bare Hono req/s | Chorus req/s | ratio | bare p99 | Chorus p99 |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const m of ["GET", "PUT"] as const) {
  const ratio = ours[m].rps / bare[m].rps;
  console.log(
    `| ${m} /api/v1/kv/:key | ${bare[m].rps.toFixed(0)} | ${ours[m].rps.toFixed(0)} | ${
      (ratio * 100).toFixed(0)
    }% | ${bare[m].p99} | ${ours[m].p99} |`,
  );
}

console.log("\n| route | Chorus auth off req/s | auth on req/s | auth on / off |");
console.log("| --- | ---: | ---: | ---: |");
for (const m of ["GET", "PUT"] as const) {
  console.log(
    `| ${m} /api/v1/kv/:key | ${ours[m].rps.toFixed(0)} | ${authed[m].rps.toFixed(0)} | ${
      (authed[m].rps / ours[m].rps * 100).toFixed(0)
    }% |`,
  );
}
