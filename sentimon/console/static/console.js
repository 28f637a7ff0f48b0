// sentimon console: one page shell, routed by path; every view polls its JSON endpoint every refresh_s.
"use strict";

const main = document.getElementById("main");
const clock = document.getElementById("clock");
let refreshMs = 2000;
let timer = null;
let chart = null;

const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const pct = (v) => (v == null ? "–" : (100 * v).toFixed(0) + "%");
const num = (v, d = 2) => (v == null ? "–" : Number(v).toFixed(d));
const secs = (v) => (v == null ? "–" : v < 1 ? (1000 * v).toFixed(1) + " ms" : v.toFixed(1) + " s");
const entityHref = (e) => "/entity/" + encodeURIComponent(e);
const scoreClass = (v) => (v == null ? "" : v < -0.05 ? "neg" : v > 0.05 ? "pos" : "");
const badge = (a) => `<span class="badge ${esc(a.severity)}" title="since ${esc(a.started_at)}">${esc(a.rule)}</span>`;

async function getJSON(url) {
  const resp = await fetch(url, {credentials: "same-origin"});
  if (!resp.ok) throw new Error(`${url}: HTTP ${resp.status}`);
  return resp.json();
}

function errors(...msgs) {
  return msgs.filter(Boolean).map((m) => `<div class="error">${esc(m)}</div>`).join("");
}

function spark(values, w = 120, h = 24) {
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`).join(" ");
  return `<svg class="spark" width="${w}" height="${h}" role="img" aria-label="mentions, last 2 h"><polyline fill="none" stroke="#539bf5" stroke-width="1.5" points="${pts}"/></svg>`;
}

// --- board -------------------------------------------------------------------------------------
async function board() {
  const d = await getJSON("/api/board");
  clock.textContent = d.now ? "event time " + d.now : "";
  const rows = (d.entities || []).map((r) => `
    <tr class="entity-row${r.firing.length ? " firing" : ""}" data-entity="${esc(r.entity)}">
      <td class="l"><a href="${entityHref(r.entity)}">${esc(r.entity)}</a></td>
      <td>${r.h1.mentions}</td><td class="${scoreClass(r.h1.mean_score)}">${num(r.h1.mean_score)}</td>
      <td class="neg">${pct(r.h1.negative)}</td><td class="pos">${pct(r.h1.positive)}</td>
      <td>${r.h24.mentions}</td><td class="${scoreClass(r.h24.mean_score)}">${num(r.h24.mean_score)}</td>
      <td class="neg">${pct(r.h24.negative)}</td><td class="pos">${pct(r.h24.positive)}</td>
      <td>${spark(r.spark.mentions)}</td>
      <td class="l">${r.firing.map(badge).join("")}</td>
    </tr>`).join("");
  main.innerHTML = `<h1>Entities</h1>${errors(d.error, d.alerts_error)}
    <table id="board"><thead><tr><th class="l">entity</th>
      <th>1 h mentions</th><th>1 h mean</th><th>1 h neg</th><th>1 h pos</th>
      <th>24 h mentions</th><th>24 h mean</th><th>24 h neg</th><th>24 h pos</th>
      <th>last 2 h</th><th class="l">firing alerts</th></tr></thead>
    <tbody>${rows || '<tr><td class="l muted" colspan="11">no mentions in the last 24 h of event time</td></tr>'}</tbody></table>`;
}

// --- entity ------------------------------------------------------------------------------------
function episodeBands(episodes) {
  return (u) => {
    const ctx = u.ctx;
    ctx.save();
    for (const e of episodes) {
      const x0 = u.valToPos(e.start_ms / 1000, "x", true);
      const x1 = Math.max(u.valToPos(e.end_ms / 1000, "x", true), x0 + 2);
      ctx.fillStyle = e.severity === "critical" ? "rgba(229,83,75,0.18)" : "rgba(198,144,38,0.18)";
      ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
    }
    ctx.restore();
  };
}

function drawChart(t, episodes) {
  const el = document.getElementById("chart");
  const data = [t.t, t.mentions, t.negative, t.positive, t.mean_score];
  const opts = {
    width: Math.max(480, el.clientWidth - 14), height: 300,
    scales: {x: {time: true}, score: {range: [-1, 1]}},
    series: [{},
      {label: "mentions", stroke: "#539bf5", width: 2, fill: "rgba(83,155,245,0.12)"},
      {label: "negative", stroke: "#e5534b", width: 1.5},
      {label: "positive", stroke: "#57ab5a", width: 1.5},
      {label: "mean score", stroke: "#c69026", width: 1.5, scale: "score", spanGaps: true}],
    axes: [{stroke: "#8a96a3", grid: {stroke: "#26303b"}},
      {stroke: "#8a96a3", grid: {stroke: "#26303b"}, label: "mentions / step"},
      {scale: "score", side: 1, stroke: "#c69026", grid: {show: false}, label: "mean score"}],
    hooks: {drawClear: [episodeBands(episodes)],
            draw: [() => el.setAttribute("data-rendered", String(t.t.length))]},
  };
  if (chart) chart.destroy();
  el.innerHTML = "";
  chart = new uPlot(opts, data, el);
}

async function entity(name) {
  const q = new URLSearchParams(location.search);
  const range = q.get("range") || "24h";
  const api = `/api/entity/${encodeURIComponent(name)}?range=${range}` + (q.get("at") ? `&at=${q.get("at")}` : "");
  const d = await getJSON(api);
  clock.textContent = d.now_ms ? "event time " + new Date(d.now_ms).toISOString().slice(0, 19) + "Z" : "";
  const ranges = ["1h", "6h", "24h", "7d"].map((r) =>
    `<a class="${r === d.range ? "active" : ""}" href="?range=${r}${q.get("at") ? "&at=" + q.get("at") : ""}">${r}</a>`).join("");
  const ex = d.examples || {};
  const exBox = (label) => `<div class="box"><b class="${label === "negative" ? "neg" : label === "positive" ? "pos" : ""}">${label}</b>
      <ul class="examples-${label}">${(ex[label] || []).map((e) => `<li>${esc(e.text)} <span class="muted">${num(e.score)}</span></li>`).join("") || '<li class="muted">none seen yet</li>'}</ul></div>`;
  const alerts = (d.alerts || []).map((a) => `<tr class="alert-row"><td class="l">${badge(a)}</td><td class="l">${esc(a.state)}</td>
      <td class="l">${esc(a.started_at)}</td><td class="l">${esc(a.resolved_at || "")}</td>
      <td class="l">${esc((a.payload || {}).summary || "")}</td></tr>`).join("");
  const h1 = d.h1 || {}, h24 = d.h24 || {};
  const html = `<h1>${esc(name)}</h1>${errors(d.error, d.alerts_error, d.examples_error)}
    <div class="cards">
      <div class="card"><div class="k">1 h mentions</div><div class="v">${h1.mentions ?? "–"}</div></div>
      <div class="card"><div class="k">1 h mean score</div><div class="v ${scoreClass(h1.mean_score)}">${num(h1.mean_score)}</div></div>
      <div class="card"><div class="k">1 h negative / positive</div><div class="v"><span class="neg">${pct(h1.negative)}</span> / <span class="pos">${pct(h1.positive)}</span></div></div>
      <div class="card"><div class="k">24 h mentions</div><div class="v">${h24.mentions ?? "–"}</div></div>
      <div class="card"><div class="k">24 h mean score</div><div class="v ${scoreClass(h24.mean_score)}">${num(h24.mean_score)}</div></div>
    </div>
    <div class="ranges">range: ${ranges} <span class="muted">shaded: alert episodes</span></div>
    <div id="chart"></div>
    <h2>Top terms</h2><div class="terms">${(d.top_terms || []).map((w) => `<span>${esc(w)}</span>`).join("") || '<span class="muted">none yet</span>'}</div>
    <h2>Example posts</h2><div class="grid">${exBox("negative")}${exBox("neutral")}${exBox("positive")}</div>
    <h2>Alerts</h2><table id="entity-alerts"><thead><tr><th class="l">rule</th><th class="l">state</th><th class="l">started</th>
      <th class="l">resolved</th><th class="l">summary</th></tr></thead><tbody>${alerts || '<tr><td class="l muted" colspan="5">no alerts</td></tr>'}</tbody></table>`;
  main.innerHTML = html;
  if (d.timeline) drawChart(d.timeline, d.episodes || []);
}

// --- alerts ------------------------------------------------------------------------------------
async function alertList() {
  const q = new URLSearchParams(location.search);
  const d = await getJSON("/api/alerts?" + q.toString());
  const sel = (name, opts) => `<select name="${name}"><option value="">any ${name}</option>${opts.map((o) =>
    `<option${q.get(name) === o ? " selected" : ""}>${o}</option>`).join("")}</select>`;
  const rows = (d.alerts || []).map((a) => `<tr class="alert-row"><td class="l">${badge(a)}</td>
      <td class="l"><a href="${entityHref(a.entity)}?range=6h&at=${encodeURIComponent(a.started_at)}">${esc(a.entity)}</a></td>
      <td class="l">${esc(a.state)}</td><td class="l">${esc(a.rule_kind)}</td><td class="l">${esc(a.started_at)}</td>
      <td class="l">${esc(a.resolved_at || "")}</td><td>${num(a.value, 3)}</td><td>${num(a.baseline, 3)}</td>
      <td class="l"><details><summary>${esc((a.payload || {}).summary || "payload")}</summary><pre>${esc(JSON.stringify(a.payload, null, 2))}</pre></details></td></tr>`).join("");
  main.innerHTML = `<h1>Alerts</h1>${errors(d.error)}
    <form class="filters" id="filters">${sel("state", ["firing", "resolved"])}${sel("severity", ["critical", "warning", "info"])}
      ${sel("kind", ["level", "spike", "silence"])}<input name="entity" placeholder="entity" value="${esc(q.get("entity") || "")}">
      <input name="q" placeholder="search rule / summary" value="${esc(q.get("q") || "")}"><button>filter</button></form>
    <table id="alerts"><thead><tr><th class="l">rule</th><th class="l">entity</th><th class="l">state</th><th class="l">kind</th>
      <th class="l">started</th><th class="l">resolved</th><th>value</th><th>baseline</th><th class="l">payload</th></tr></thead>
      <tbody>${rows || '<tr><td class="l muted" colspan="9">no alerts match</td></tr>'}</tbody></table>`;
  document.getElementById("filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new URLSearchParams(new FormData(ev.target));
    for (const [k, v] of [...f]) if (!v) f.delete(k);
    history.replaceState(null, "", "/alerts?" + f.toString());
    alertList();
  });
}

// --- status ------------------------------------------------------------------------------------
async function status() {
  const d = await getJSON("/api/status");
  const w = d.worker;
  const lag = w ? w.lag.map((r) => `<tr><td class="l">${esc(r.topic)}</td><td>${esc(r.partition)}</td>
      <td>${r.messages ?? "–"}</td><td>${secs(r.seconds)}</td></tr>`).join("") : "";
  const kv = (o) => Object.entries(o || {}).map(([k, v]) => `${esc(k)}: <b>${v}</b>`).join(" · ") || "none";
  main.innerHTML = `<h1>Pipeline</h1>${errors(d.worker_error, d.error, d.alerts_error, d.examples_error)}
    <div class="cards" id="status-cards">
      <div class="card"><div class="k">model (tier)</div><div class="v" id="model">${w && w.model ? esc(w.model.name + " " + w.model.version) + ` <span class="muted">(${esc(w.model.tier)})</span>` : "–"}</div></div>
      <div class="card"><div class="k">batches</div><div class="v">${w ? w.batches : "–"}</div></div>
      <div class="card"><div class="k">mean batch size</div><div class="v">${w ? num(w.mean_batch_size, 1) : "–"}</div></div>
      <div class="card"><div class="k">mean scorer time / batch</div><div class="v">${w ? secs(w.mean_inference_s) : "–"}</div></div>
      <div class="card"><div class="k">mean ingest → window</div><div class="v">${w ? secs(w.mean_ingest_to_window_s) : "–"}</div></div>
      <div class="card"><div class="k">windows watermark</div><div class="v" style="font-size:14px">${esc(d.watermark || "–")}</div></div>
    </div>
    <div class="box">messages: ${w ? kv(w.messages) : "–"}<br>dead letters: ${w ? kv(w.dlq) : "–"}<br>errors: ${w ? kv(w.errors) : "–"}
      <br><span class="muted">from ${esc(d.metrics_url)}</span></div>
    <h2>Consumer lag</h2><table><thead><tr><th class="l">topic</th><th>partition</th><th>messages</th><th>seconds</th></tr></thead>
      <tbody>${lag || '<tr><td class="l muted" colspan="4">no lag reported</td></tr>'}</tbody></table>`;
}

// --- router ------------------------------------------------------------------------------------
function route() {
  const p = location.pathname;
  if (p.startsWith("/entity/")) return ["board", () => entity(decodeURIComponent(p.slice(8)))];
  if (p === "/alerts") return ["alerts", alertList];
  if (p === "/status") return ["status", status];
  return ["board", board];
}

async function tick(view) {
  try {
    await view();
  } catch (err) {
    main.innerHTML = errors(String(err));
  }
}

async function start() {
  try { refreshMs = 1000 * (await getJSON("/api/config")).refresh_s; } catch (err) { /* keep the default */ }
  const [nav, view] = route();
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === nav);
  await tick(view);
  // The alert list keeps its open payloads and filter inputs: it refreshes on demand, not on a timer.
  if (nav !== "alerts") timer = setInterval(() => tick(view), refreshMs);
}

start();
