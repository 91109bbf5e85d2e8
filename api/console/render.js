// plateflow dispatch console: building hit cards and the map (no state of its own).
// Every value from an alert is set as text, never as HTML: plates and reasons come from
// cameras and hotlist files, not from us.

/** An element with attributes (class, data-*, on* handlers, properties) and children. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key in el && key !== "list") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const pad = (n) => String(n).padStart(2, "0");

function clock(ms) {
  if (ms === null || ms === undefined) return "";
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function when(ms) {
  if (ms === null || ms === undefined) return "";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(ms)}`;
}

/** "m:ss" of a duration in ms (never negative). */
function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const hours = Math.floor(s / 3600);
  const rest = `${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  return hours ? `${hours}:${rest}` : rest.replace(/^0/, "");
}

const ORDINAL = (i) => `position ${Number(i) + 1}`;

/** Why the read matched the entry, in words (matchers' `match` object). */
function explainMatch(alert) {
  const m = alert.match || {};
  const subs = (m.substitutions || []).map(
    ([pos, readChar, entryChar]) => `${readChar} read for ${entryChar} at ${ORDINAL(pos)}`,
  );
  const candidate = m.via_candidate ? " (on an alternate candidate read of the camera)" : "";
  switch (m.kind) {
    case "exact":
      return `Exact match${candidate}`;
    case "ocr":
      return `OCR look-alike: ${subs.join("; ") || "equivalent characters"}${candidate}`;
    case "fuzzy": {
      const n = m.differences || (m.edits || []).length;
      const edits = (m.edits || []).join("; ");
      const extra = subs.length ? `; look-alikes: ${subs.join("; ")}` : "";
      return `Fuzzy: ${n} difference${n === 1 ? "" : "s"} (${edits})${extra}${candidate}`;
    }
    case "partial": {
      const extra = subs.length ? `; look-alikes: ${subs.join("; ")}` : "";
      return `Partial plate: pattern ${alert.entry.plate} matched ${m.matched_text}${extra}`;
    }
    default:
      return `Matched (${m.kind || "unknown kind"})`;
  }
}

function isWebImage(ref) {
  return typeof ref === "string" && /^https?:\/\//i.test(ref);
}

function place(read) {
  if (read.lat === null || read.lat === undefined || read.lon === null || read.lon === undefined)
    return "no position";
  return `${Number(read.lat).toFixed(5)}, ${Number(read.lon).toFixed(5)}`;
}

function percent(confidence) {
  return confidence === null || confidence === undefined
    ? "?"
    : `${Math.round(Number(confidence) * 100)}%`;
}

const CLOSED = new Set(["confirmed", "rejected", "dismissed"]);

/** What the disposition says, in words, and the countdown while verifying. */
function dispositionLine(disp, labels, now) {
  if (!disp || disp.state === "new") return null;
  const who = disp.by ? ` by ${disp.by}` : "";
  const at = disp.at ? ` at ${clock(Date.parse(disp.at))}` : "";
  const parts = [h("strong", {}, disp.state), `${who}${at}`];
  if (disp.claimed_by && disp.state !== "confirmed")
    parts.push(` · held by ${disp.claimed_by}`);
  if (disp.state === "verifying" && disp.deadline_at) {
    const deadline = Date.parse(disp.deadline_at);
    parts.push(" · ", h("span", { class: "countdown", dataset: { deadline } },
      countdownText(deadline, now)));
  }
  if (disp.action) parts.push(` · action: ${labels.actions[disp.action] || disp.action}`);
  if (disp.reason) parts.push(` · reason: ${labels.reasons[disp.reason] || disp.reason}`);
  if (disp.reason_text) parts.push(` (${disp.reason_text})`);
  if (disp.note) parts.push(` · note: ${disp.note}`);
  return h("p", { class: "disp" }, parts);
}

function countdownText(deadline, now) {
  const left = deadline - now;
  return left > 0 ? `${duration(left)} left to verify` : `OVERDUE by ${duration(-left)}`;
}

/** The buttons of a card; which are enabled follows the state (the server decides). */
/** The steps the state machine offers from a state (the server has the last word). */
function offered(st, to) {
  const open = st === "claimed" || st === "verifying";
  switch (to) {
    case "claimed": return st === "new";
    case "verifying": return st === "claimed";
    case "undo": return st !== "new";
    default: return open;
  }
}

const BUTTONS = [
  ["claimed", "Claim", "c"], ["verifying", "Verify", "v"], ["confirmed", "Confirm", "y"],
  ["rejected", "Reject", "r"], ["dismissed", "Dismiss", "d"], ["undo", "Undo", "u"],
];

/** The buttons of a card; which are enabled follows the state. */
function actionButtons(item, disp, canAct, act) {
  const st = disp ? disp.state : "new";
  return h("div", { class: "actions" }, BUTTONS.map(([to, label, key]) =>
    h("button", {
      type: "button",
      dataset: { to },
      disabled: !canAct || !offered(st, to),
      title: `${label} (${key})`,
      onclick: (e) => { e.stopPropagation(); act(item.id, to); },
    }, label, " ", h("kbd", {}, key))));
}

function sightingRow(s) {
  const read = s.alert.read;
  return h("li", { dataset: { alertId: s.id } },
    `${clock(read.ts)} · ${read.plate} · ${read.camera_id} · ${percent(read.confidence)} · `,
    place(read));
}

/** One hit card: the first alert of an (entry, plate) pair with its sightings under it. */
function card(item, ctx) {
  const { alert } = item;
  const { read, entry, hotlist } = alert;
  const disp = ctx.dispositions.get(item.id);
  const st = disp ? disp.state : "new";
  const deadline = disp && disp.state === "verifying" && disp.deadline_at
    ? Date.parse(disp.deadline_at) : null;
  const overdue = deadline !== null && deadline <= ctx.now;
  const classes = ["card", `p${Math.min(9, Math.max(0, hotlist.priority))}`, `state-${st}`];
  if (CLOSED.has(st)) classes.push("closed");
  if (overdue) classes.push("overdue");
  if (item.id === ctx.selected) classes.push("selected");
  const geofences = (alert.advisories || []).filter((a) => a !== alert.advisories[0]);
  const facts = [
    ["List", `${hotlist.name} (${hotlist.category})`],
    ["Reason", entry.reason || "—"],
    ["Case", entry.case_number || "—"],
    ["Confidence", percent(read.confidence)],
    ["Camera", read.camera_id],
    ["Time", when(read.ts)],
    ["Place", place(read)],
    ["Entered by", entry.entered_by || "—"],
  ];
  const children = [
    h("div", { class: "head" },
      h("span", { class: "prio", title: "hotlist priority (0 is highest)" },
        `P${hotlist.priority}`),
      h("span", { class: "list-name" }, hotlist.name),
      item.covert || hotlist.covert ? h("span", { class: "covert" }, "COVERT") : null,
      h("time", { dateTime: new Date(read.ts).toISOString() }, clock(read.ts)),
      h("span", { class: "state" }, st)),
    h("div", { class: "plates" },
      h("span", { class: "plate read", title: "plate as read" }, read.plate),
      h("span", { class: "plate-state" }, read.state || "--"),
      h("span", {}, "≈"),
      h("span", { class: "plate entry", title: "hotlist entry" }, entry.plate),
      h("span", { class: "plate-state" }, entry.state || "--")),
    h("p", { class: "why" }, explainMatch(alert)),
    alert.state_mismatch
      ? h("p", { class: "mismatch" },
        `State mismatch: read ${read.state || "?"}, entry ${entry.state || "?"}`)
      : null,
    h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("ul", { class: "advisories" },
      alert.verify_before_action && alert.advisories && alert.advisories.length
        ? h("li", { class: "verify" }, alert.advisories[0]) : null,
      geofences.map((text) => h("li", { class: "geofence" }, text))),
    isWebImage(read.image_ref)
      ? h("img", { class: "shot", src: read.image_ref, alt: `camera image of ${read.plate}`,
        loading: "lazy", referrerPolicy: "no-referrer" })
      : null,
    dispositionLine(disp, ctx.labels, ctx.now),
    actionButtons(item, disp, ctx.canAct, ctx.act),
    item.error ? h("p", { class: "card-error", role: "alert" }, item.error) : null,
  ];
  if (item.sightings.length) {
    const rows = item.sightings.map((sid) => ctx.items.get(sid)).filter(Boolean);
    children.push(h("details", { class: "sightings", open: item.sightingsOpen },
      h("summary", {}, `${rows.length} sighting${rows.length === 1 ? "" : "s"} since`),
      h("ol", {}, rows.map(sightingRow))));
  }
  return h("li", {
    class: classes.join(" "),
    tabIndex: -1,
    dataset: { alertId: item.id, priority: hotlist.priority, state: st, logId: item.logId },
    onclick: () => ctx.select(item.id),
  }, children);
}

// -- the map ------------------------------------------------------------------------------

const COLOURS = ["#e5383b", "#f47c20", "#f2b233", "#e9d44c", "#e9d44c", "#e9d44c"];

class HitMap {
  /** Leaflet map of hits and cameras; without a tile URL, a plain background. */
  constructor(element, tileUrl, onSelect) {
    this.onSelect = onSelect;
    this.ready = typeof window.L !== "undefined";
    this.hits = new Map();
    this.cameras = new Map();
    if (!this.ready) return;
    this.map = window.L.map(element, { attributionControl: !!tileUrl, worldCopyJump: true });
    this.map.setView([0, 0], 2);
    if (tileUrl) window.L.tileLayer(tileUrl, { maxZoom: 19 }).addTo(this.map);
    window.L.control.scale().addTo(this.map);
    const legend = window.L.control({ position: "topright" });
    legend.onAdd = () => h("div", { class: "map-legend" },
      h("span", { class: "dot" }), " hit (colour: priority)  ",
      h("span", { class: "ring" }), " camera");
    legend.addTo(this.map);
    this.bounds = window.L.latLngBounds([]);
  }

  _has(read) {
    return read.lat !== null && read.lat !== undefined && read.lon !== null &&
      read.lon !== undefined;
  }

  /** Draw an alert (and its camera); a live one (`pan`) brings the view to all hits. */
  add(item, pan) {
    const { read, hotlist } = item.alert;
    if (!this.ready || !this._has(read)) return;
    const L = window.L;
    const at = [read.lat, read.lon];
    if (!this.cameras.has(read.camera_id)) {
      // a ring around the camera's position, drawn under the hits it saw
      const cam = L.circleMarker(at, { radius: 14, className: "camera-marker", weight: 2,
        color: "#9aa3ad", dashArray: "3 3", fill: false }).bindTooltip(`camera ${read.camera_id}`);
      cam.addTo(this.map);
      this.cameras.set(read.camera_id, cam);
    }
    if (this.hits.has(item.id)) return;
    const colour = COLOURS[Math.min(hotlist.priority, 5)] || "#5b8def";
    const marker = L.circleMarker(at, {
      radius: item.alert.sighting_of ? 5 : 9, className: "hit-marker", color: "#000",
      weight: 1, fillColor: colour, fillOpacity: 0.9,
    }).bindTooltip(`${read.plate} · ${hotlist.name} · ${clock(read.ts)}`);
    marker.on("click", () => this.onSelect(item.alert.sighting_of || item.id));
    marker.addTo(this.map);
    this.hits.set(item.id, marker);
    // every hit stays in view: a new one widens the view to take it in
    this.bounds.extend(at);
    if (pan || this.hits.size === 1 || !this.map.getBounds().contains(at)) {
      this.map.fitBounds(this.bounds, { maxZoom: 15, padding: [30, 30] });
    }
  }

  focus(item) {
    const { read } = item.alert;
    if (!this.ready || !this._has(read)) return;
    const at = [read.lat, read.lon];
    if (!this.map.getBounds().pad(-0.1).contains(at)) this.map.panTo(at);
  }

  clear() {
    if (!this.ready) return;
    for (const layer of [...this.hits.values(), ...this.cameras.values()]) layer.remove();
    this.hits.clear();
    this.cameras.clear();
    this.bounds = window.L.latLngBounds([]);
  }
}

export { CLOSED, HitMap, card, countdownText, h, offered };
