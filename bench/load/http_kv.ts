/**
 * HTTP load: `GET` and `PUT /api/v1/kv/:key` on Chorus vs a bare Hono route answering the same
 * JSON, measured with wrk in the same run (servers in their own processes on 127.0.0.1; wrk shares
 * the 2 cores). Prints a Markdown table of requests/s and ratios.
 *
 * Rows: GET of one key; PUT over 1,000 keys in lockstep (each wrk thread cycles `k0`…`k999` from
 * its own counter, so the threads write the same key at about the same moment); PUT of keys drawn
 * at random from the same 1,000.
 *
 * By default each server is one `Deno.serve` in one process (Chorus with `chorus_server.ts`),
 * a third server measures Chorus with auth on, and a fourth the floor of any HTTP layer in front
 * of Chorus: `chorus_server.ts … direct`, a bare handler calling the embedded `kv.get`/`kv.put`. With `--parallel`, both run as `deno task start`
 * serves them: `deno serve --parallel` (one worker per core), Chorus on `main.ts` with its workers
 * sharing one KV file, the bare app from `bare_hono.ts` (each worker its own `Map`); no auth row.
 * Under `--parallel` the workers write through the one started first (storage/one_writer.ts);
 * with `CHORUS_ONE_WRITER=off` in this script's environment (the servers inherit it) each worker
 * writes itself, and a PUT may find its actor's cache behind the other worker's write (a
 * conflict: reload and retry).
 *
 * Usage: deno run -A bench/load/http_kv.ts [seconds=8] [connections=64] [--parallel]
 */
const parallel = Deno.args.includes("--parallel");
const positional = Deno.args.filter((a) => !a.startsWith("--"));
const seconds = Number(positional[0] ?? 8);
const connections = Number(positional[1] ?? 64);
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

/** A wrk script writing PUTs whose path takes `keyExpression` (Lua) as the key's number. */
async function putScript(keyExpression: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".lua" });
  await Deno.writeTextFile(
    path,
    `wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/api/v1/kv/k" .. (${keyExpression}), nil, '{"value":{"n":' .. counter .. ',"s":"hello"}}')
end
`,
  );
  return path;
}
const lockstepScript = await putScript("counter % 1000");
const randomScript = await putScript("math.random(0, 999)");
const ROUTES = ["GET", "PUT", "PUT random"] as const;
type Route = typeof ROUTES[number];
const LABELS: Record<Route, string> = {
  GET: "GET /api/v1/kv/:key (one key)",
  PUT: "PUT /api/v1/kv/:key (1,000 keys, lockstep)",
  "PUT random": "PUT /api/v1/kv/:key (1,000 keys, random)",
};

const dir = await Deno.makeTempDir({ prefix: "chorus-http-" });
const servers: { name: string; port: number; args: string[]; env?: Record<string, string> }[] =
  parallel
    ? [
      {
        name: "bare Hono route",
        port: 18101,
        args: ["serve", "--parallel", "-A", "--host", "127.0.0.1", "--port", "18101"].concat(
          `${here}bare_hono.ts`,
        ),
      },
      {
        name: "Chorus",
        port: 18102,
        args: ["serve", "--parallel", "-A", "--host", "127.0.0.1", "--port", "18102"].concat(
          `${here}../../main.ts`,
        ),
        env: { CHORUS_KV: `${dir}/chorus.kv`, CHORUS_AUTH: "off", CHORUS_LOG_LEVEL: "warn" },
      },
    ]
    : [
      { name: "bare Hono route", port: 18101, args: ["run", "-A", `${here}bare_hono.ts`, "18101"] },
      {
        name: "Chorus",
        port: 18102,
        args: ["run", "-A", `${here}chorus_server.ts`, "18102", `${dir}/chorus.kv`],
      },
      {
        name: "Chorus, auth on",
        port: 18103,
        args: ["run", "-A", `${here}chorus_server.ts`, "18103", `${dir}/chorus-auth.kv`, "auth"],
      },
      {
        name: "direct",
        port: 18104,
        args: [
          "run",
          "-A",
          `${here}chorus_server.ts`,
          "18104",
          `${dir}/chorus-direct.kv`,
          "direct",
        ],
      },
    ];
const results: Record<string, Record<Route, { rps: number; p99: string }>> = {};
for (const s of servers) {
  const child = new Deno.Command(Deno.execPath(), {
    args: s.args,
    env: s.env,
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
      PUT: await wrk(base, lockstepScript, headers),
      "PUT random": await wrk(base, randomScript, headers),
    };
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await drain.catch(() => {});
  }
}
await Deno.remove(dir, { recursive: true });
await Deno.remove(lockstepScript);
await Deno.remove(randomScript);

const bare = results["bare Hono route"];
const ours = results["Chorus"];
const authed = results["Chorus, auth on"];
const floor = results["direct"];
console.log(
  `\nwrk -t2 -c${connections} -d${seconds}s, servers on 127.0.0.1, ${
    parallel
      ? "each under `deno serve --parallel` (2 workers), Chorus with " +
        (/^(0|false|off|no)$/i.test(Deno.env.get("CHORUS_ONE_WRITER") ?? "")
          ? "each worker writing itself (`CHORUS_ONE_WRITER=off`)"
          : "one writer")
      : "each one Deno.serve"
  }, ${Deno.build.target}\n`,
);
console.log("| route | bare Hono req/s | Chorus req/s | ratio | bare p99 | Chorus p99 |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const m of ROUTES) {
  const ratio = ours[m].rps / bare[m].rps;
  console.log(
    `| ${LABELS[m]} | ${bare[m].rps.toFixed(0)} | ${ours[m].rps.toFixed(0)} | ${
      (ratio * 100).toFixed(0)
    }% | ${bare[m].p99} | ${ours[m].p99} |`,
  );
}

if (authed) {
  console.log("\n| route | Chorus auth off req/s | auth on req/s | auth on / off |");
  console.log("| --- | ---: | ---: | ---: |");
  for (const m of ROUTES) {
    console.log(
      `| ${LABELS[m]} | ${ours[m].rps.toFixed(0)} | ${authed[m].rps.toFixed(0)} | ${
        (authed[m].rps / ours[m].rps * 100).toFixed(0)
      }% |`,
    );
  }
}

if (floor) {
  console.log(
    "\n| route | bare Hono req/s | floor: `Deno.serve` → embedded call req/s | floor / bare | Chorus / floor |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: |");
  for (const m of ROUTES) {
    console.log(
      `| ${LABELS[m]} | ${bare[m].rps.toFixed(0)} | ${floor[m].rps.toFixed(0)} | ${
        (floor[m].rps / bare[m].rps * 100).toFixed(0)
      }% | ${(ours[m].rps / floor[m].rps * 100).toFixed(0)}% |`,
    );
  }
}
