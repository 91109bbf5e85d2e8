// plateflow dispatch console: the page: login, sound, dispositions, the list, keys.
// Talks only to this origin (live.js): POST /v1/auth/login {"cookie": true} sets an HttpOnly
// session cookie and a CSRF cookie; every POST sends X-CSRF-Token.

import {
  $, api, connect, cookie, detail, now, onDisposition, setConn, state, stopStream, view, withWhy,
} from "./live.js";
import { CLOSED, HitMap, card, countdownText, h, offered } from "./render.js";

const COVERT_PERMISSION = "hotlists:view_covert";
const RECEIVE_PERMISSION = "alerts:receive";
const DISPOSITION_PERMISSION = "alerts:disposition";

let map = null;
let audio = null;
let renderQueued = false;

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
    map = new HitMap($("#map"), state.config.tile_url, select);
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
    h("option", { value: o.code }, o.label)));
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
  if (!offered(st, to)) {
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
    list.replaceChildren(...items.map((it) => card(it, ctx)));
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
    if (d && CLOSED.has(d.state)) continue;
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
    el.textContent = countdownText(deadline, t);
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

Object.assign(view, {
  render,
  added(item, loud) {
    if (map) map.add(item, loud);
    if (loud) sound(item.alert);
  },
  cleared() {
    if (map) map.clear();
  },
  ended: showLogin,
});

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
