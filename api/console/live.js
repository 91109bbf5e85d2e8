// plateflow dispatch console: what the page knows and how it talks to the server: the state,
// HTTP to this origin only, and the live alert stream. GET /v1/alerts/stream (SSE) brings alerts
// (event ids = alert-log stream ids; the browser resends the last one on reconnect), the
// dispositions snapshot, live disposition events and `gap` when the log was trimmed. What the
// page shows of it is console.js's: it fills in `view`.

export const $ = (sel) => document.querySelector(sel);
const MAX_ITEMS = 2000;

// Everything the page knows, in one object: window.plateflowConsole (tests read it).
export const state = {
  config: { tile_url: "", urgent_priority_max: 1 },
  me: null,
  csrf: null,
  why: {},
  covert: false,
  items: new Map(), // alert_id -> {id, alert, logId, covert, sightings: [ids], seq}
  dispositions: new Map(), // alert_id -> current state (the disposition JSON)
  received: {}, // alert_id -> how many `alert` events carried it (should be 1)
  sounds: [], // {alert_id, priority, played}
  labels: { reasons: {}, actions: {} },
  lists: null,
  selected: null,
  muted: false,
  source: null,
  lastEventId: null,
  connects: 0,
  gaps: 0,
  quiet: true, // the replay of a fresh connection makes no sound
  skew: 0, // server clock minus ours, ms (from the Date header)
  order: [],
};
window.plateflowConsole = state;

let seq = 0;

/** What the page does when the stream changes something (console.js sets each one). */
export const view = {
  render() {},
  /** A new hit; `loud` when it is live, not part of a fresh connection's replay. */
  added(item, loud) {},
  /** The list was emptied (a gap). */
  cleared() {},
  /** The session is over: back to the login, with this message. */
  ended(message) {},
};

// -- HTTP ---------------------------------------------------------------------------------

export function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
}

export function withWhy(path, extra) {
  const params = new URLSearchParams({ ...state.why, ...(extra || {}) });
  const query = params.toString();
  return query ? `${path}${path.includes("?") ? "&" : "?"}${query}` : path;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRF-Token"] = cookie("plateflow_csrf") || state.csrf || "";
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const date = Date.parse(res.headers.get("Date") || "");
  if (!Number.isNaN(date)) state.skew = date - Date.now();
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  return { ok: res.ok, status: res.status, data };
}

export function detail(res) {
  const d = res.data && res.data.detail;
  return typeof d === "string" ? d : `the server answered ${res.status}`;
}

export const now = () => Date.now() + state.skew;

// -- the stream ---------------------------------------------------------------------------

export function setConn(st, text) {
  const el = $("#conn");
  el.dataset.state = st;
  el.textContent = text;
}

export function stopStream() {
  if (state.source) state.source.close();
  state.source = null;
  clearTimeout(state.retryTimer);
}

/** Open the stream; `resume` passes the last event id (a new EventSource never does). */
export function connect(resume) {
  stopStream();
  const extra = state.covert ? { covert: "true" } : {};
  if (resume && state.lastEventId) extra.last_event_id = state.lastEventId;
  const es = new EventSource(withWhy("/v1/alerts/stream", extra));
  state.source = es;
  state.connects += 1;
  state.quiet = !resume;
  setConn("connecting", "connecting…");
  es.addEventListener("open", () => {
    setConn("live", "live");
    // a server that sends no dispositions snapshot still ends the replay's silence
    clearTimeout(state.quietTimer);
    state.quietTimer = setTimeout(() => { state.quiet = false; }, 2000);
  });
  es.addEventListener("alert", onAlert);
  es.addEventListener("dispositions", onSnapshot);
  es.addEventListener("disposition", onDisposition);
  es.addEventListener("gap", onGap);
  es.addEventListener("end", () => { // the session ended (logout elsewhere, expiry)
    if (es === state.source) view.ended("Your session ended; log in again.");
  });
  es.addEventListener("error", () => {
    if (es !== state.source) return;
    if (es.readyState === EventSource.CLOSED) diagnose();
    else setConn("reconnecting", "reconnecting…");
  });
}

/** The stream was refused (not a dropped connection): ask why, then log in or retry. */
async function diagnose() {
  const res = await api("GET", "/v1/auth/me");
  if (res.status === 401) {
    view.ended("Your session ended; log in again.");
    return;
  }
  const probe = new AbortController();
  let message = "the alert stream is unavailable";
  try {
    const extra = state.covert ? { covert: "true" } : {};
    const r = await fetch(withWhy("/v1/alerts/stream", { ...extra, replay: "0" }),
      { signal: probe.signal, credentials: "same-origin" });
    if (!r.ok) {
      const body = await r.json().catch(() => null);
      message = (body && body.detail) || `the alert stream answered ${r.status}`;
    }
  } catch { /* the server is down: retry below */ }
  probe.abort();
  setConn("error", `${message}; retrying`);
  showNotice(message);
  state.retryTimer = setTimeout(() => connect(true), 5000);
}

function onAlert(event) {
  const alert = JSON.parse(event.data);
  if (event.lastEventId) state.lastEventId = event.lastEventId;
  state.received[alert.alert_id] = (state.received[alert.alert_id] || 0) + 1;
  const known = state.items.get(alert.alert_id);
  if (known) { // at-least-once upstream: the same alert id is the same hit
    known.logId = alert.log_id || known.logId;
    return;
  }
  const item = {
    id: alert.alert_id, alert, logId: alert.log_id, covert: !!alert.covert,
    sightings: [], seq: ++seq, error: null,
  };
  state.items.set(item.id, item);
  const parent = alert.sighting_of && state.items.get(alert.sighting_of);
  if (parent) parent.sightings.push(item.id);
  // sightings that came before their first alert (a trimmed or late log) join it now
  for (const other of state.items.values()) {
    if (other.alert.sighting_of === item.id) item.sightings.push(other.id);
  }
  view.added(item, !state.quiet);
  trim();
  view.render();
}

function trim() {
  if (state.items.size <= MAX_ITEMS) return;
  const oldest = [...state.items.values()].sort((a, b) => a.seq - b.seq);
  for (const item of oldest.slice(0, state.items.size - MAX_ITEMS)) state.items.delete(item.id);
}

function onSnapshot(event) {
  const data = JSON.parse(event.data);
  state.dispositions.clear();
  for (const d of data.items || []) state.dispositions.set(d.alert_id, d);
  clearTimeout(state.quietTimer);
  state.quiet = false;
  view.render();
}

export function onDisposition(event) {
  const d = JSON.parse(event.data);
  const current = state.dispositions.get(d.alert_id);
  if (current && typeof current.seq === "number" && typeof d.seq === "number" &&
      d.seq < current.seq) return; // an older transition than the one shown
  state.dispositions.set(d.alert_id, d);
  view.render();
}

function onGap(event) {
  const data = JSON.parse(event.data || "{}");
  state.gaps += 1;
  showNotice("Alerts were trimmed from the server's log while this console was away " +
    `(after ${data.after}, oldest kept ${data.oldest}); the list was reloaded.`);
  state.items.clear();
  state.dispositions.clear();
  state.received = {};
  state.lastEventId = null;
  state.selected = null;
  view.cleared();
  view.render();
  connect(false);
}

export function showNotice(text) {
  const el = $("#notice");
  el.textContent = text;
  el.hidden = !text;
}
