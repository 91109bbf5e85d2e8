// plateflow dispatch console: login, the live alert stream, dispositions, sound, keys.
// Talks only to this origin: POST /v1/auth/login {"cookie": true} sets an HttpOnly session
// cookie and a CSRF cookie; every POST sends X-CSRF-Token. GET /v1/alerts/stream (SSE) brings
// alerts (event ids = alert-log stream ids; the browser resends the last one on reconnect),
// the dispositions snapshot, live disposition events and `gap` when the log was trimmed.
"use strict";

(() => {
  const PF = window.PF;
  const $ = (sel) => document.querySelector(sel);
  const COVERT_PERMISSION = "hotlists:view_covert";
  const RECEIVE_PERMISSION = "alerts:receive";
  const DISPOSITION_PERMISSION = "alerts:disposition";
  const MAX_ITEMS = 2000;

  // Everything the page knows, in one object: window.plateflowConsole (tests read it).
  const state = {
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

  let map = null;
  let audio = null;
  let renderQueued = false;
  let seq = 0;

  // -- HTTP ---------------------------------------------------------------------------------

  function cookie(name) {
    const found = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : null;
  }

  function withWhy(path, extra) {
    const params = new URLSearchParams({ ...state.why, ...(extra || {}) });
    const query = params.toString();
    return query ? `${path}${path.includes("?") ? "&" : "?"}${query}` : path;
  }

  async function api(method, path, body) {
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

  function detail(res) {
    const d = res.data && res.data.detail;
    return typeof d === "string" ? d : `the server answered ${res.status}`;
  }

  const now = () => Date.now() + state.skew;

  // -- login --------------------------------------------------------------------------------

  function whyOf(text) {
    const t = text.trim();
    if (!t) return {};
    return /\s/.test(t) ? { description: t } : { event_number: t };
  }

  async function login(event) {
    event.preventDefault();
    const form = event.target;
    const error = $("#login-error");
    error.textContent = "";
    unlockAudio(); // the click is the user gesture browsers want before sound
    const body = { username: form.username.value, password: form.password.value, cookie: true };
    if (form.otp.value.trim()) body.totp_code = form.otp.value.trim();
    const res = await api("POST", "/v1/auth/login", body);
    if (!res.ok) {
      error.textContent = detail(res);
      return;
    }
    state.csrf = res.data.csrf_token || cookie("plateflow_csrf");
    state.why = whyOf(form.why.value);
    sessionStorage.setItem("plateflow-why", JSON.stringify(state.why));
    form.password.value = "";
    form.otp.value = "";
    await start();
  }

  async function logout() {
    stopStream();
    await api("POST", "/v1/auth/logout");
    state.me = null;
    showLogin("Logged out.");
  }

  function showLogin(message) {
    stopStream();
    $("#app").hidden = true;
    $("#login").hidden = false;
    $("#mute").hidden = $("#logout").hidden = true;
    $("#who").textContent = "";
    $("#login-error").textContent = message || "";
    setConn("offline", "not connected");
  }

  async function start() {
    const me = await api("GET", "/v1/auth/me");
    if (!me.ok) {
      showLogin(me.status === 401 ? "" : detail(me));
      return;
    }
    state.me = me.data.user;
    const perms = new Set(state.me.permissions || []);
    if (!perms.has(RECEIVE_PERMISSION)) {
      showLogin(`${state.me.username} may not receive alerts (${RECEIVE_PERMISSION} is needed)`);
      return;
    }
    state.covert = perms.has(COVERT_PERMISSION);
    state.canAct = perms.has(DISPOSITION_PERMISSION);
    $("#login").hidden = true;
    $("#app").hidden = false;
    $("#mute").hidden = $("#logout").hidden = false;
    $("#who").textContent = `${state.me.name} (${state.me.username})` +
      (state.covert ? " · covert lists" : "");
    if (!map) {
      map = new PF.HitMap($("#map"), state.config.tile_url, select);
      $("#map-note").textContent = state.config.tile_url ? "" :
        "No map tiles configured (PLATEFLOW_CONSOLE_TILE_URL): cameras and hits on a plain background.";
    }
    loadLists();
    connect(false);
  }

  async function loadLists() {
    const res = await api("GET", "/v1/dispositions/lists");
    if (!res.ok || !res.data) return;
    state.lists = res.data;
    for (const kind of ["reasons", "actions"]) {
      state.labels[kind] = Object.fromEntries((res.data[kind] || []).map((x) => [x.code, x.label]));
    }
    render();
  }

  // -- the stream ---------------------------------------------------------------------------

  function setConn(st, text) {
    const el = $("#conn");
    el.dataset.state = st;
    el.textContent = text;
  }

  function stopStream() {
    if (state.source) state.source.close();
    state.source = null;
    clearTimeout(state.retryTimer);
  }

  /** Open the stream; `resume` passes the last event id (a new EventSource never does). */
  function connect(resume) {
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
      if (es === state.source) showLogin("Your session ended; log in again.");
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
      showLogin("Your session ended; log in again.");
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
    if (map) map.add(item, !state.quiet);
    if (!state.quiet) sound(alert);
    trim();
    render();
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
    render();
  }

  function onDisposition(event) {
    const d = JSON.parse(event.data);
    const current = state.dispositions.get(d.alert_id);
    if (current && typeof current.seq === "number" && typeof d.seq === "number" &&
        d.seq < current.seq) return; // an older transition than the one shown
    state.dispositions.set(d.alert_id, d);
    render();
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
    if (map) map.clear();
    render();
    connect(false);
  }

  function showNotice(text) {
    const el = $("#notice");
    el.textContent = text;
    el.hidden = !text;
  }

  // -- sound --------------------------------------------------------------------------------

  function unlockAudio() {
    try {
      if (!audio) audio = new AudioContext();
      if (audio.state === "suspended") audio.resume();
    } catch { audio = null; }
  }

  /** A tone per priority: urgent ones three square beeps, higher pitch for higher priority. */
  function sound(alert) {
    const priority = alert.hotlist.priority;
    const urgent = priority <= state.config.urgent_priority_max;
    const played = urgent || !state.muted;
    state.sounds.push({ alert_id: alert.alert_id, priority, played });
    if (!played || !audio) return;
    const beeps = urgent ? 3 : 1;
    const freq = 1100 - 60 * Math.min(priority, 9);
    let t = audio.currentTime + 0.01;
    for (let i = 0; i < beeps; i += 1) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.type = urgent ? "square" : "sine";
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.18, t);
      gain.gain.exponentialRampToValueAtTime(0.001, t + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(t);
      osc.stop(t + 0.17);
      t += 0.22;
    }
  }

  function toggleMute() {
    state.muted = !state.muted;
    const btn = $("#mute");
    btn.setAttribute("aria-pressed", String(state.muted));
    btn.textContent = state.muted ? "Routine muted" : "Mute routine";
  }

  // -- dispositions -------------------------------------------------------------------------

  function ask(title, choice, text) {
    const dialog = $("#ask");
    $("#ask-title").textContent = title;
    $("#ask-error").textContent = "";
    const select = $("#ask-choice");
    $("#ask-choice-label").hidden = !choice;
    select.replaceChildren(...(choice ? choice.options : []).map((o) =>
      PF.h("option", { value: o.code }, o.label)));
    $("#ask-choice-label span").textContent = choice ? choice.label : "";
    $("#ask-text-label span").textContent = text.label;
    $("#ask-text").value = "";
    return new Promise((resolve) => {
      const ok = $("#ask-ok");
      const done = (answer) => {
        dialog.removeEventListener("close", onClose);
        ok.removeEventListener("click", onOk);
        resolve(answer);
      };
      const onClose = () => done(null);
      const onOk = (e) => {
        const value = $("#ask-text").value.trim();
        const code = choice ? select.value : null;
        if (!text.optional(code) && !value) {
          e.preventDefault();
          $("#ask-error").textContent = `${text.label} is needed`;
          return;
        }
        e.preventDefault();
        dialog.close();
        done({ code, text: value });
      };
      dialog.addEventListener("close", onClose);
      ok.addEventListener("click", onOk);
      dialog.showModal();
      (choice ? select : $("#ask-text")).focus();
    });
  }

  /** Whether a reason or action code must come with text (the lists say; `other` always). */
  function needsText(code) {
    const lists = state.lists || {};
    const found = [...(lists.reasons || []), ...(lists.actions || [])].find((x) => x.code === code);
    return found ? !!found.needs_text : code === "other";
  }

  async function act(alertId, to) {
    const item = state.items.get(alertId);
    if (!item || !state.canAct) return;
    const current = state.dispositions.get(alertId);
    const st = current ? current.state : "new";
    if (!PF.offered(st, to)) {
      item.error = `${to === "undo" ? "nothing to undo" : `cannot go to ${to}`} from ${st}`;
      render();
      return;
    }
    const body = { log_id: item.logId, to };
    if (to === "confirmed" || to === "rejected") {
      if (!state.lists) await loadLists();
      const lists = state.lists || { reasons: [], actions: [] };
      const confirm = to === "confirmed";
      const answer = await ask(
        confirm ? `Confirm ${item.alert.read.plate}: what was done?`
          : `Reject ${item.alert.read.plate}: why?`,
        { label: confirm ? "Action" : "Reason", options: confirm ? lists.actions : lists.reasons },
        { label: confirm ? "Note" : "Details", optional: (code) => !needsText(code) });
      if (!answer) return;
      if (confirm) { body.action = answer.code; if (answer.text) body.note = answer.text; }
      else { body.reason = answer.code; if (answer.text) body.reason_text = answer.text; }
    } else if (to === "undo") {
      const answer = await ask(`Undo the last step on ${item.alert.read.plate}`, null,
        { label: "Why", optional: () => false });
      if (!answer) return;
      body.note = answer.text;
    }
    const res = await api("POST",
      withWhy(`/v1/alerts/${encodeURIComponent(alertId)}/disposition`), body);
    item.error = res.ok ? null : detail(res);
    if (res.ok && res.data && res.data.alert_id) onDisposition({ data: JSON.stringify(res.data) });
    render();
  }

  // -- rendering ----------------------------------------------------------------------------

  function topLevel() {
    return [...state.items.values()].filter(
      (it) => !it.alert.sighting_of || !state.items.has(it.alert.sighting_of));
  }

  function sorted(items) {
    const time = (it) => it.alert.emitted_at || it.alert.read.ts || 0;
    return items.sort((a, b) => a.alert.hotlist.priority - b.alert.hotlist.priority ||
      time(b) - time(a) || b.seq - a.seq);
  }

  function render() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      const items = sorted(topLevel());
      state.order = items.map((it) => it.id);
      const ctx = {
        now: now(), dispositions: state.dispositions, labels: state.labels, items: state.items,
        selected: state.selected, canAct: state.canAct, act, select,
      };
      const list = $("#list");
      const open = new Set([...list.querySelectorAll("details[open]")].map(
        (d) => d.closest(".card").dataset.alertId));
      for (const it of items) it.sightingsOpen = open.has(it.id);
      list.replaceChildren(...items.map((it) => PF.card(it, ctx)));
      $("#empty").hidden = items.length > 0;
      summarise(items);
    });
  }

  /** The header's count of open hits and of overdue verifications. */
  function summarise(items) {
    const t = now();
    let open = 0;
    let overdue = 0;
    for (const it of items || sorted(topLevel())) {
      const d = state.dispositions.get(it.id);
      if (d && PF.CLOSED.has(d.state)) continue;
      open += 1;
      if (d && d.state === "verifying" && d.deadline_at && Date.parse(d.deadline_at) <= t)
        overdue += 1;
    }
    const el = $("#summary");
    el.textContent = `${open} open` + (overdue ? ` · ${overdue} overdue` : "");
    el.classList.toggle("alarm", overdue > 0);
  }

  function tick() { // countdowns and the overdue switch, every second
    const t = now();
    for (const el of document.querySelectorAll(".countdown[data-deadline]")) {
      const deadline = Number(el.dataset.deadline);
      el.textContent = PF.countdownText(deadline, t);
      const cardEl = el.closest(".card");
      if (cardEl) cardEl.classList.toggle("overdue", deadline <= t);
    }
    if (!$("#app").hidden) summarise();
  }

  function select(id) {
    state.selected = id;
    const item = state.items.get(id);
    if (item && map) map.focus(item);
    render();
    requestAnimationFrame(() => {
      const el = document.querySelector(`.card[data-alert-id="${CSS.escape(id)}"]`);
      if (el) { el.scrollIntoView({ block: "nearest" }); el.focus({ preventScroll: true }); }
    });
  }

  function move(step) {
    const order = state.order;
    if (!order.length) return;
    const at = order.indexOf(state.selected);
    const next = at < 0 ? 0 : Math.min(order.length - 1, Math.max(0, at + step));
    select(order[next]);
  }

  const KEYS = { c: "claimed", v: "verifying", y: "confirmed", r: "rejected", d: "dismissed",
    u: "undo" };

  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target.closest("input, textarea, select, dialog")) return;
    if ($("#app").hidden) return;
    const key = event.key.toLowerCase();
    if (key === "j") move(1);
    else if (key === "k") move(-1);
    else if (key === "m") toggleMute();
    else if (KEYS[key] && state.selected) act(state.selected, KEYS[key]);
    else return;
    event.preventDefault();
  }

  // -- boot ---------------------------------------------------------------------------------

  async function boot() {
    const res = await api("GET", "/console/config.json");
    if (res.ok && res.data) Object.assign(state.config, res.data);
    $("#login").addEventListener("submit", login);
    $("#logout").addEventListener("click", logout);
    $("#mute").addEventListener("click", toggleMute);
    document.addEventListener("keydown", onKey);
    document.addEventListener("click", unlockAudio, { once: true });
    setInterval(tick, 1000);
    try { state.why = JSON.parse(sessionStorage.getItem("plateflow-why") || "{}"); }
    catch { state.why = {}; }
    await start(); // a session cookie from an earlier login goes straight to the list
  }

  boot();
})();
