// The Chorus console: reels, contexts and kv over this server's API and socket. No framework,
// nothing from another origin. The token lives in sessionStorage (this tab only).
// phoenix's browser ESM build, served by Chorus (a URL only a browser resolves, so imported
// dynamically: type checkers leave it alone).
const PHOENIX = "/console/phoenix.mjs?v={{v}}";
const { Presence, Socket } = await import(PHOENIX);

const $ = (id) => document.getElementById(id);
const state = {
  authOn: false,
  token: sessionStorage.getItem("chorus.token") ?? "",
  user: sessionStorage.getItem("chorus.user") ?? `u-${Math.random().toString(36).slice(2, 7)}`,
  socket: null,
  reel: null,
  ctx: null,
  watch: null,
};
sessionStorage.setItem("chorus.user", state.user);
$("user").value = state.user;
$("token").value = state.token;

/** Shows a message for everyone to see (scope problems, bad tokens). */
function notice(text) {
  const el = $("notice");
  el.textContent = text;
  el.hidden = !text;
}

function log(list, text, cls) {
  const li = document.createElement("li");
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  if (cls) li.className = cls;
  $(list).prepend(li);
  while ($(list).children.length > 200) $(list).lastChild.remove();
}

/** Explains an error answer: 401 and 403 get a clear message about the token. */
function explain(status, body) {
  const message = body?.error?.message ?? `HTTP ${status}`;
  if (status === 401) notice(`The token is missing, unknown, revoked or expired: ${message}`);
  else if (status === 403) notice(`This token lacks a scope for that: ${message}`);
  return `${status} ${body?.error?.code ?? ""}: ${message}`;
}

/** Calls the API with the tab's token; resolves with {status, body, headers}. */
async function api(method, path, body, contentType = "application/json") {
  const headers = {};
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["content-type"] = contentType;
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

// ---- socket ----

function setConn(s, text) {
  const el = $("conn");
  el.dataset.state = s;
  el.textContent = `socket: ${text ?? s}`;
}

function connect() {
  if (state.socket) state.socket.disconnect();
  if (state.authOn && !state.token) {
    setConn("closed", "needs a token");
    return;
  }
  const options = { params: state.authOn ? {} : { user_id: state.user } };
  if (state.authOn) options.authToken = state.token;
  const socket = new Socket("/socket", options);
  let drops = 0;
  socket.onOpen(() => setConn("open"));
  socket.onClose(() => {
    drops++;
    setConn("reconnecting", `reconnecting (${drops})`);
  });
  socket.onError(() => setConn("reconnecting", "error, retrying"));
  setConn("connecting");
  socket.connect();
  state.socket = socket;
  if (state.reel) openReel(state.reel.id);
  if (state.ctx) openContext(state.ctx.id);
}

async function detectAuth() {
  const res = await fetch("/api/v1/status");
  await res.body?.cancel();
  state.authOn = res.status === 401;
  $("auth-mode").textContent = state.authOn ? "auth: on" : "auth: off";
  if (state.authOn && !state.token) notice("Auth is on: enter an API token to connect.");
  connect();
}

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.token = $("token").value.trim();
  if (state.token) sessionStorage.setItem("chorus.token", state.token);
  else sessionStorage.removeItem("chorus.token");
  notice("");
  connect();
});
$("token-clear").addEventListener("click", () => {
  state.token = "";
  $("token").value = "";
  sessionStorage.removeItem("chorus.token");
  connect();
});
$("user").addEventListener("change", () => {
  state.user = $("user").value.trim() || state.user;
  sessionStorage.setItem("chorus.user", state.user);
  connect();
});

function joinError(topic, reason) {
  const why = typeof reason === "object" ? (reason?.reason ?? JSON.stringify(reason)) : reason;
  if (why === "unauthorized") {
    notice(`This token lacks a scope (or prefix) to join "${topic}".`);
  }
  return why;
}

// ---- reels ----

const COUNTER = {
  like: "likes",
  unlike: "likes",
  comment: "comments",
  share: "shares",
  view: "views",
};

function setCounters(c) {
  for (const k of ["views", "likes", "comments", "shares", "seq"]) {
    if (typeof c[k] === "number") $(`c-${k}`).textContent = String(c[k]);
  }
}

function reelControls(enabled) {
  for (const id of ["like", "unlike", "share", "view", "comment", "update"]) {
    $(`act-${id}`).disabled = !enabled;
  }
  $("comment-text").disabled = !enabled;
  $("update-text").disabled = !enabled;
}

function openReel(id) {
  if (!state.socket) return;
  state.reel?.channel.leave();
  const reel = { id, lastSeq: null, joins: 0 };
  const channel = state.socket.channel(`reel:${id}`, () => {
    const params = { status: "online", activity: "console" };
    if (reel.lastSeq !== null) params.last_seq = reel.lastSeq;
    reel.sentSeq = reel.lastSeq;
    return params;
  });
  reel.channel = channel;
  state.reel = reel;
  $("presence").replaceChildren();
  $("reel-log").replaceChildren();
  const presence = new Presence(channel);
  presence.onSync(() => {
    const items = [];
    presence.list((key, { metas }) => {
      const li = document.createElement("li");
      li.textContent = metas.length > 1 ? `${key} ×${metas.length}` : key;
      li.dataset.user = key;
      items.push(li);
    });
    $("presence").replaceChildren(...items);
    $("watch-count").textContent = String(items.length);
  });
  channel.on("presence_stats", ({ count }) => {
    $("presence").replaceChildren();
    $("watch-count").textContent = `${count} (too many to list)`;
  });
  channel.on("reel_update", (u) => {
    reel.lastSeq = u.seq;
    $("c-seq").textContent = String(u.seq);
    log("reel-log", `update #${u.seq} ${JSON.stringify(u.update_data)}`);
  });
  channel.on("interaction", (i) => {
    const counter = COUNTER[i.type];
    if (counter) {
      const el = $(`c-${counter}`);
      el.textContent = String(Number(el.textContent) + (i.type === "unlike" ? -1 : 1));
    }
    log("reel-log", `${i.user_id} ${i.type}${i.text ? `: ${i.text}` : ""}`);
  });
  channel.join()
    .receive("ok", (reply) => {
      reel.joins++;
      setCounters(reply);
      if (reel.lastSeq === null) reel.lastSeq = reply.seq ?? 0;
      if (reel.joins > 1) {
        log(
          "recovery",
          `reconnected: rejoined with last_seq ${reel.sentSeq} → recovered: ${reply.recovered} ` +
            `(seq now ${reply.seq})`,
          reply.recovered === false ? "error" : undefined,
        );
      } else log("recovery", `joined reel:${id} at seq ${reply.seq}`);
      reelControls(true);
    })
    .receive("error", (reason) => {
      log("reel-log", `join refused: ${joinError(`reel:${id}`, reason)}`, "error");
      reelControls(false);
    });
}

function interact(type, text) {
  const payload = { type };
  if (!state.authOn) payload.user_id = state.user;
  if (text) payload.text = text;
  state.reel?.channel.push("interaction", payload)
    .receive("ok", (r) => {
      if (r.counted === false) log("reel-log", `${type}: not counted (already done)`);
    })
    .receive("error", (e) => log("reel-log", `${type} refused: ${joinError("reel", e)}`, "error"));
}

$("reel-form").addEventListener("submit", (e) => {
  e.preventDefault();
  openReel($("reel-id").value.trim());
});
$("reel-drop").addEventListener("click", () => state.socket?.conn?.close(4000, "dropped"));
for (const type of ["like", "unlike", "share", "view"]) {
  $(`act-${type}`).addEventListener("click", () => interact(type));
}
$("comment-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("comment-text").value.trim();
  if (text) interact("comment", text);
  $("comment-text").value = "";
});
$("update-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("update-text").value.trim();
  state.reel?.channel.push("update", { update_data: { text } })
    .receive("error", (r) => log("reel-log", `update refused: ${joinError("reel", r)}`, "error"));
  $("update-text").value = "";
});

// ---- contexts ----

function showContext(version, context) {
  // Answers may arrive out of order: never go back to an older version.
  if (state.ctx && version < (state.ctx.version ?? 0)) return;
  if (state.ctx) state.ctx.version = version;
  $("ctx-version").textContent = String(version);
  $("ctx-editor").value = JSON.stringify(context ?? {}, null, 2);
}

async function refreshContext(id) {
  const res = await api("GET", `/api/v1/contexts/${encodeURIComponent(id)}`);
  if (res.status === 200) showContext(res.body.version, res.body.context);
}

function openContext(id) {
  if (!state.socket) return;
  state.ctx?.channel.leave();
  const channel = state.socket.channel(`context:${id}`, {});
  state.ctx = { id, channel };
  $("ctx-log").replaceChildren();
  channel.on("delta", (d) => {
    if (d.type === "delta") {
      log("ctx-log", `v${d.from_version}→v${d.version} delta ${JSON.stringify(d.delta)}`);
      refreshContext(id);
    } else if (d.type === "full_context") {
      log("ctx-log", `v${d.version} full context`);
      showContext(d.version, d.context);
    } else {
      log("ctx-log", `v${d.version} ${d.type}`);
      state.ctx.version = d.version;
    }
  });
  channel.join()
    .receive("ok", (r) => {
      log("ctx-log", `joined at v${r.version} (${r.type})`);
      if (r.type === "full_context") showContext(r.version, r.context);
    })
    .receive(
      "error",
      (r) => log("ctx-log", `join refused: ${joinError(`context:${id}`, r)}`, "error"),
    );
}

async function ctxWrite(method, body, type) {
  const id = $("ctx-id").value.trim();
  let parsed;
  try {
    parsed = JSON.parse(body);
  } catch {
    log("ctx-log", "not valid JSON", "error");
    return;
  }
  const payload = method === "PUT" ? { context: parsed } : parsed;
  const res = await api(method, `/api/v1/contexts/${encodeURIComponent(id)}`, payload, type);
  if (res.status === 200) showContext(res.body.version, res.body.context);
  else log("ctx-log", explain(res.status, res.body), "error");
}

$("ctx-form").addEventListener("submit", (e) => {
  e.preventDefault();
  openContext($("ctx-id").value.trim());
});
$("ctx-put").addEventListener("click", () => ctxWrite("PUT", $("ctx-editor").value));
$("ctx-merge").addEventListener(
  "click",
  () => ctxWrite("PATCH", $("ctx-patch").value, "application/merge-patch+json"),
);
$("ctx-jsonpatch").addEventListener(
  "click",
  () => ctxWrite("PATCH", $("ctx-patch").value, "application/json-patch+json"),
);

// ---- kv ----

const keyPath = (key) => `/api/v1/kv/${encodeURIComponent(key)}`;

function result(res) {
  $("kv-result").textContent = res.status < 300
    ? `${res.status} ${JSON.stringify(res.body)}`
    : explain(res.status, res.body);
  $("kv-result").classList.toggle("error", res.status >= 400);
}

$("kv-list-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = new URLSearchParams({ prefix: $("kv-prefix").value, values: "true" });
  const res = await api("GET", `/api/v1/kv?${q}`);
  if (res.status !== 200) return result(res);
  $("kv-list").replaceChildren(...res.body.items.map((item) => {
    const li = document.createElement("li");
    li.textContent = `${item.key} v${item.version} = ${JSON.stringify(item.value)}`;
    return li;
  }));
});
$("kv-get").addEventListener("click", async () => {
  result(await api("GET", `${keyPath($("kv-key").value)}?with_ttl=true`));
});
$("kv-put").addEventListener("click", async () => {
  let value;
  try {
    value = JSON.parse($("kv-value").value);
  } catch {
    value = $("kv-value").value;
  }
  const body = { value };
  const ttl = $("kv-ttl").value.trim();
  if (ttl) body.ttl = Number(ttl);
  const headers = {};
  const ifMatch = $("kv-if-match").value.trim();
  if (ifMatch) headers["if-match"] = `"${ifMatch}"`;
  if ($("kv-if-absent").checked) headers["if-none-match"] = "*";
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  headers["content-type"] = "application/json";
  const res = await fetch(keyPath($("kv-key").value), {
    method: "PUT",
    headers,
    body: JSON.stringify(body),
  });
  result({ status: res.status, body: await res.json() });
});
$("kv-delete").addEventListener("click", async () => {
  const headers = {};
  const ifMatch = $("kv-if-match").value.trim();
  if (ifMatch) headers["if-match"] = `"${ifMatch}"`;
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  const res = await fetch(keyPath($("kv-key").value), { method: "DELETE", headers });
  result({ status: res.status, body: await res.json() });
});

function stopWatch() {
  state.watch?.source.close();
  clearTimeout(state.watch?.retry);
  state.watch = null;
  $("kv-watch-state").textContent = "off";
  $("kv-unwatch").disabled = true;
}

/** Watches a key over SSE; with auth on, each (re)connect uses a fresh single-use ticket. */
async function watchKey(key, since) {
  const w = state.watch ?? { key, version: since ?? null };
  state.watch = w;
  const q = new URLSearchParams();
  if (w.version !== null) q.set("since", String(w.version));
  if (state.authOn) {
    const res = await api("POST", "/api/v1/tickets");
    if (res.status !== 201) {
      $("kv-watch-state").textContent = explain(res.status, res.body);
      return;
    }
    q.set("ticket", res.body.ticket);
  }
  if (state.watch !== w) return;
  const source = new EventSource(`${keyPath(key)}/watch?${q}`);
  w.source = source;
  source.addEventListener("ready", () => $("kv-watch-state").textContent = `on (${key})`);
  source.addEventListener("change", (e) => {
    const c = JSON.parse(e.data);
    w.version = c.version;
    log(
      "kv-log",
      `${c.key} ${c.op} v${c.version}${
        c.value !== undefined ? ` = ${JSON.stringify(c.value)}` : ""
      }`,
    );
  });
  source.onerror = () => {
    // A ticket opens one stream: reconnect with a fresh one, resuming after the last version.
    source.close();
    if (state.watch !== w) return;
    $("kv-watch-state").textContent = "reconnecting";
    w.retry = setTimeout(() => state.watch === w && watchKey(key), 1000);
  };
  $("kv-unwatch").disabled = false;
}

$("kv-watch").addEventListener("click", () => {
  stopWatch();
  $("kv-log").replaceChildren();
  watchKey($("kv-key").value);
});
$("kv-unwatch").addEventListener("click", stopWatch);

detectAuth();
