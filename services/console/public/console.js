/* global document, window, EventSource */
/**
 * The console page: one EventSource on /api/stream (a snapshot, then `mirrors`, `rates`, `event`
 * and `feed` messages), rendered into the two tables. Every value from the server goes into the
 * DOM as text (textContent, setAttribute); nothing is parsed as markup.
 */
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const SPARK_W = 120;
const SPARK_H = 28;
const EVENTS_SHOWN = 100;
const PHASES = ["pending", "applying", "active", "degraded", "failed", "expired", "deleted"];

const state = {
  /** Server clock minus ours, for the countdowns. */
  offsetMs: 0,
  windowSeconds: 120,
  averageSeconds: 5,
  pcapSeconds: [10, 30, 60],
  /** The last second the series cover. */
  second: 0,
  mirrors: [],
  /** id → { packets: number[], bytes: number[], pps, bps, packetsTotal, bytesTotal, drops, missedBatches } */
  rates: new Map(),
  events: [],
  /** id → the row's elements */
  rows: new Map(),
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

// ---------------------------------------------------------------------------------------------
// Formatting

function formatCount(n) {
  if (n >= 100) return Math.round(n).toLocaleString("en-US");
  if (n >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function formatBytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

function formatDuration(ms) {
  if (!Number.isFinite(ms)) return "—";
  if (ms <= 0) return "expired";
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  return `${m}m ${String(s).padStart(2, "0")}s`;
}

function formatTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleTimeString("en-GB", { hour12: false });
}

// ---------------------------------------------------------------------------------------------
// Sparklines

function makeSpark(kind, label) {
  const s = svg("svg", {
    class: `spark spark-${kind}`,
    viewBox: `0 0 ${SPARK_W} ${SPARK_H}`,
    preserveAspectRatio: "none",
    role: "img",
  });
  const title = svg("title");
  title.textContent = label;
  s.append(
    title,
    svg("line", { class: "spark-base", x1: 0, y1: SPARK_H - 0.5, x2: SPARK_W, y2: SPARK_H - 0.5 }),
    svg("polygon", { class: "spark-area", points: "" }),
    svg("polyline", { class: "spark-line", points: "" }),
  );
  return s;
}

function drawSpark(s, values, label) {
  const n = values.length;
  const max = Math.max(1, ...values);
  const step = n > 1 ? SPARK_W / (n - 1) : SPARK_W;
  const pts = values.map(
    (v, i) => `${(i * step).toFixed(1)},${(SPARK_H - 1 - (v / max) * (SPARK_H - 3)).toFixed(1)}`,
  );
  s.querySelector(".spark-line").setAttribute("points", pts.join(" "));
  s.querySelector(".spark-area").setAttribute(
    "points",
    `0,${SPARK_H} ${pts.join(" ")} ${SPARK_W},${SPARK_H}`,
  );
  s.querySelector("title").textContent = label;
  s.setAttribute("aria-label", label);
}

// ---------------------------------------------------------------------------------------------
// Mirrors

function seriesOf(id) {
  let r = state.rates.get(id);
  if (!r) {
    r = {
      packets: new Array(state.windowSeconds).fill(0),
      bytes: new Array(state.windowSeconds).fill(0),
      pps: 0,
      bps: 0,
      packetsTotal: 0,
      bytesTotal: 0,
      drops: 0,
      missedBatches: 0,
    };
    state.rates.set(id, r);
  }
  return r;
}

function pcapHref(m, seconds) {
  return `/mirrors/${encodeURIComponent(m.namespace)}/${encodeURIComponent(m.name)}/pcap?seconds=${seconds}`;
}

function selectedSeconds() {
  const v = Number($("pcap-seconds").value);
  return Number.isFinite(v) && v > 0 ? v : 30;
}

function makeRow(m) {
  const tr = el("tr", { "data-mirror": m.id });
  const name = el("th", { scope: "row", "data-field": "mirror" });
  const nameText = el("span", {}, m.name);
  const nsText = el("span", { class: "sub" });
  name.append(nameText, nsText);

  const phaseCell = el("td", { "data-field": "phase-cell" });
  const phase = el("span", { class: "phase", "data-field": "phase" });
  const phaseWhy = el("span", { class: "sub", "data-field": "phase-reason" });
  phaseCell.append(phase, phaseWhy);

  const owner = el("td", { "data-field": "owner" });
  const sink = el("td", { "data-field": "sink" });
  const sinkTarget = el("span", { class: "sub" });
  const sinkText = el("span");
  sink.append(sinkText, sinkTarget);
  const key = el("td", { "data-field": "key" });
  const expires = el("td", { "data-field": "expires" });

  const ppsCell = el("td", { class: "num" });
  const ppsWrap = el("div", { class: "rate" });
  const pps = el("span", { class: "rate-value", "data-field": "pps" }, "0.00");
  const ppsSpark = makeSpark("packets", "packets per second");
  ppsWrap.append(pps, ppsSpark);
  ppsCell.append(ppsWrap);

  const bpsCell = el("td", { class: "num" });
  const bpsWrap = el("div", { class: "rate" });
  const bps = el("span", { class: "rate-value", "data-field": "bps" }, "0 B/s");
  const bpsSpark = makeSpark("bytes", "bytes per second");
  bpsWrap.append(bps, bpsSpark);
  bpsCell.append(bpsWrap);

  const capture = el("td", { "data-field": "capture" });
  const link = el("a", { "data-field": "pcap", download: "" });
  const totals = el("span", { class: "sub", "data-field": "totals" });
  capture.append(link, totals);

  tr.append(name, phaseCell, owner, sink, key, expires, ppsCell, bpsCell, capture);
  return {
    tr,
    nsText,
    nameText,
    phase,
    phaseWhy,
    owner,
    sinkText,
    sinkTarget,
    key,
    expires,
    pps,
    bps,
    ppsSpark,
    bpsSpark,
    link,
    totals,
    mirror: m,
  };
}

function fillRow(row, m) {
  row.mirror = m;
  row.nameText.textContent = m.name;
  row.nsText.textContent = `${m.namespace} · ${m.sources} · ${m.direction}`;
  const phase = String(m.phase);
  const known = PHASES.includes(phase.toLowerCase()) ? phase.toLowerCase() : "unknown";
  row.phase.className = `phase phase-${known}`;
  row.phase.textContent = m.deleting && phase !== "Deleted" ? `${phase} (deleting)` : phase;
  row.phaseWhy.textContent = m.reason ? `${m.reason}${m.message ? `: ${m.message}` : ""}` : "";
  row.owner.textContent = m.owner;
  row.sinkText.textContent = m.sink;
  row.sinkTarget.textContent = m.target;
  row.key.textContent = m.key || "—";
  const seconds = selectedSeconds();
  row.link.setAttribute("href", pcapHref(m, seconds));
  row.link.textContent = `pcap, last ${seconds} s`;
  row.link.setAttribute("aria-label", `Download the last ${seconds} seconds of ${m.id} as a pcap file`);
  fillRates(row);
  fillExpiry(row);
}

function fillRates(row) {
  const r = seriesOf(row.mirror.id);
  row.pps.textContent = formatCount(r.pps);
  row.bps.textContent = `${formatBytes(r.bps)}/s`;
  const peakP = Math.max(0, ...r.packets);
  const peakB = Math.max(0, ...r.bytes);
  drawSpark(
    row.ppsSpark,
    r.packets,
    `packets per second over the last ${state.windowSeconds} s, peak ${formatCount(peakP)}`,
  );
  drawSpark(
    row.bpsSpark,
    r.bytes,
    `bytes per second over the last ${state.windowSeconds} s, peak ${formatBytes(peakB)}`,
  );
  const lost = r.drops + r.missedBatches;
  row.totals.textContent = `${r.packetsTotal.toLocaleString("en-US")} packets, ${formatBytes(r.bytesTotal)}${lost ? `, ${r.drops} dropped, ${r.missedBatches} batches missed` : ""}`;
}

function fillExpiry(row) {
  const at = Date.parse(row.mirror.expiresAt);
  row.expires.textContent = formatDuration(at - (Date.now() + state.offsetMs));
  row.expires.setAttribute("title", `expires at ${row.mirror.expiresAt}`);
}

function renderMirrors() {
  const tbody = $("mirrors").tBodies[0];
  const seen = new Set();
  for (const m of state.mirrors) {
    seen.add(m.id);
    let row = state.rows.get(m.id);
    if (!row) {
      row = makeRow(m);
      state.rows.set(m.id, row);
    }
    fillRow(row, m);
    tbody.append(row.tr); // moves it into sorted order
  }
  for (const [id, row] of state.rows) {
    if (!seen.has(id)) {
      row.tr.remove();
      state.rows.delete(id);
    }
  }
  $("no-mirrors").hidden = state.mirrors.length > 0;
}

// ---------------------------------------------------------------------------------------------
// Events

const FEED_TEXT = {
  starting: "starting…",
  live: "live",
  "waiting for the event stream": "waiting for the event stream (intake creates it)",
  reconnecting: "reconnecting to the event stream…",
};

function eventRow(e) {
  const tr = el("tr", { "data-seq": e.seq });
  const type = el(
    "td",
    { class: `event-type event-${/^[a-z_]+$/.test(e.type) ? e.type : "other"}`, "data-field": "type" },
    e.type,
  );
  tr.append(
    el("td", { title: e.time }, formatTime(e.time)),
    el("td", { "data-field": "mirror" }, e.mirror),
    type,
    el("td", {}, e.principal),
    el("td", {}, e.summary),
  );
  return tr;
}

function renderEvents() {
  const tbody = $("events").tBodies[0];
  const shown = state.events.slice(-EVENTS_SHOWN).reverse();
  tbody.replaceChildren(...shown.map(eventRow));
  $("no-events").hidden = state.events.length > 0;
}

function addEvent(e) {
  state.events.push(e);
  if (state.events.length > EVENTS_SHOWN) state.events.splice(0, state.events.length - EVENTS_SHOWN);
  const tbody = $("events").tBodies[0];
  tbody.prepend(eventRow(e));
  while (tbody.rows.length > EVENTS_SHOWN) tbody.deleteRow(-1);
  $("no-events").hidden = true;
}

function setFeed(feed) {
  $("events-feed").textContent = `event feed: ${FEED_TEXT[feed] || feed}`;
}

// ---------------------------------------------------------------------------------------------
// Messages

function setClock(serverTime) {
  const t = Date.parse(serverTime);
  if (Number.isFinite(t)) state.offsetMs = t - Date.now();
}

function onSnapshot(s) {
  setClock(s.serverTime);
  state.windowSeconds = s.windowSeconds;
  state.averageSeconds = s.averageSeconds;
  state.second = s.second;
  state.rates = new Map();
  for (const [id, r] of Object.entries(s.rates)) state.rates.set(id, { ...r });
  const select = $("pcap-seconds");
  const previous = select.value;
  const choices = s.pcapSeconds.length ? s.pcapSeconds : [30];
  select.replaceChildren(...choices.map((n) => el("option", { value: n }, `last ${n} s`)));
  select.value = choices.includes(Number(previous))
    ? previous
    : String(choices.includes(30) ? 30 : choices[0]);
  state.mirrors = s.mirrors;
  state.events = s.events.slice(-EVENTS_SHOWN);
  setFeed(s.eventsFeed);
  renderMirrors();
  renderEvents();
}

function onRates(msg) {
  if (msg.t <= state.second) return; // already in the snapshot
  // Seconds without a message (a late timer) are zeros.
  const shift = Math.min(msg.t - state.second, state.windowSeconds);
  for (const r of state.rates.values()) {
    r.packets = r.packets.slice(shift).concat(new Array(shift).fill(0));
    r.bytes = r.bytes.slice(shift).concat(new Array(shift).fill(0));
  }
  state.second = msg.t;
  for (const [id, tick] of Object.entries(msg.rates)) {
    const r = seriesOf(id);
    r.packets[r.packets.length - 1] = tick.packets;
    r.bytes[r.bytes.length - 1] = tick.bytes;
    Object.assign(r, {
      pps: tick.pps,
      bps: tick.bps,
      packetsTotal: tick.packetsTotal,
      bytesTotal: tick.bytesTotal,
      drops: tick.drops,
      missedBatches: tick.missedBatches,
    });
  }
  for (const row of state.rows.values()) {
    // A mirror without a series this second saw nothing: its averaged rate decays to 0.
    if (!(row.mirror.id in msg.rates)) {
      const r = seriesOf(row.mirror.id);
      const recent = r.packets.slice(-state.averageSeconds);
      const recentB = r.bytes.slice(-state.averageSeconds);
      r.pps = recent.reduce((a, b) => a + b, 0) / state.averageSeconds;
      r.bps = recentB.reduce((a, b) => a + b, 0) / state.averageSeconds;
    }
    fillRates(row);
  }
}

function connect() {
  const status = $("connection");
  const source = new EventSource("/api/stream");
  const on = (name, fn) =>
    source.addEventListener(name, (ev) => {
      try {
        fn(JSON.parse(ev.data));
      } catch (err) {
        window.console.error(`console: bad ${name} message`, err);
      }
    });
  source.addEventListener("open", () => {
    status.dataset.state = "live";
    status.textContent = "Live";
  });
  source.addEventListener("error", () => {
    status.dataset.state = "reconnecting";
    status.textContent = "Reconnecting…";
  });
  on("snapshot", onSnapshot);
  on("mirrors", (m) => {
    setClock(m.serverTime);
    state.mirrors = m.mirrors;
    renderMirrors();
  });
  on("rates", onRates);
  on("event", addEvent);
  on("feed", (f) => setFeed(f.eventsFeed));
}

document.addEventListener("DOMContentLoaded", () => {
  $("pcap-seconds").addEventListener("change", () => {
    for (const row of state.rows.values()) fillRow(row, row.mirror);
  });
  window.setInterval(() => {
    for (const row of state.rows.values()) fillExpiry(row);
  }, 1000);
  connect();
});
