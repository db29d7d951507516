// The dashboard's single page: plain HTML, CSS and a small script (no framework, no build step).
// It reads /api/state once, then follows /api/stream (server-sent events), falling back to polling
// /api/state when the stream is unavailable. Text is set with textContent, never parsed as HTML.
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kernelchaos</title>
<style>
  :root { --fg: #1d2433; --muted: #667085; --line: #e4e7ec; --bg: #f8f9fb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px; background: #101828; color: #fff; }
  header h1 { margin: 0; font-size: 18px; font-weight: 600; }
  header .live { font-size: 12px; color: #98a2b3; }
  header .live.on::before { content: ""; display: inline-block; width: 8px; height: 8px; margin-right: 6px; border-radius: 50%; background: #32d583; }
  main { padding: 20px 24px; display: grid; gap: 20px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px; }
  h2 { margin: 0 0 12px; font-size: 15px; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-size: 12px; text-transform: uppercase; color: var(--muted); font-weight: 600; }
  td.num { font-variant-numeric: tabular-nums; text-align: right; }
  .phase { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #eef4ff; color: #3538cd; }
  .phase.Injected, .phase.Injecting { background: #fef3f2; color: #b42318; }
  .phase.Finished, .phase.Paused, .phase.Waiting { background: #f2f4f7; color: #344054; }
  .phase.Denied, .phase.Invalid, .phase.Failed { background: #fffaeb; color: #b54708; }
  .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
  ul.pods { margin: 0; padding-left: 16px; color: var(--muted); }
  svg text { font-size: 11px; fill: var(--muted); }
  .empty { color: var(--muted); }
</style>
</head>
<body>
<header><h1>kernelchaos</h1><span id="live" class="live">connecting…</span><span id="updated" class="live"></span></header>
<main>
  <section>
    <h2>Faults over time</h2>
    <svg id="plot" viewBox="0 0 900 260" width="100%" role="img" aria-label="faults injected over time per experiment"></svg>
    <div id="legend"></div>
  </section>
  <section>
    <h2>Experiments</h2>
    <table>
      <thead><tr><th>Experiment</th><th>Phase</th><th>Schedule</th><th>Targeted pods and containers</th><th>Armed</th><th>Faults</th></tr></thead>
      <tbody id="experiments"><tr><td colspan="6" class="empty">loading…</td></tr></tbody>
    </table>
  </section>
</main>
<script>
"use strict";
const COLORS = ["#d92d20", "#1570ef", "#079455", "#dc6803", "#7a5af8", "#0e9384", "#c11574", "#475467"];
const colorOf = (() => { const m = new Map(); return (k) => { if (!m.has(k)) m.set(k, COLORS[m.size % COLORS.length]); return m.get(k); }; })();
const el = (tag, attrs, ...kids) => {
  const e = tag.startsWith("svg:") ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  for (const c of kids) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
};

function renderTable(state) {
  const body = document.getElementById("experiments");
  body.replaceChildren();
  if (state.experiments.length === 0) { body.append(el("tr", {}, el("td", { colspan: 6, class: "empty" }, "No KernelChaos experiments."))); return; }
  for (const x of state.experiments) {
    const pods = el("ul", { class: "pods" });
    for (const [pod, containers] of Object.entries(x.podContainers)) pods.append(el("li", {}, pod + " (" + (containers.join(", ") || "no container") + ")"));
    if (pods.children.length === 0) pods.append(el("li", {}, "none selected"));
    body.append(el("tr", { "data-experiment": x.key },
      el("td", {}, el("span", { class: "swatch", style: "background:" + colorOf(x.key) }), x.key),
      el("td", {}, el("span", { class: "phase " + x.phase }, x.phase)),
      el("td", {}, x.schedule),
      el("td", {}, pods),
      el("td", { class: "num" }, x.armedContainers),
      el("td", { class: "num faults" }, x.faults)));
  }
}

function renderPlot(state) {
  const svg = document.getElementById("plot");
  const W = 900, H = 260, L = 56, R = 16, T = 12, B = 28;
  svg.replaceChildren();
  const series = Object.entries(state.history).filter(([, s]) => s.length > 0);
  const now = Date.parse(state.generatedAt);
  // The last 10 minutes, or since the first sample (at least 10 s) while there is less history.
  let first = now;
  let max = 1;
  for (const [, s] of series) for (const p of s) { if (p.faults > max) max = p.faults; if (p.t < first) first = p.t; }
  const t0 = Math.min(now - 10 * 1000, Math.max(now - 10 * 60 * 1000, first));
  const x = (t) => L + ((t - t0) / (now - t0)) * (W - L - R);
  const y = (v) => H - B - (v / max) * (H - T - B);
  for (let i = 0; i <= 4; i++) {
    const v = Math.round((max * i) / 4);
    svg.append(el("svg:line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#eaecf0" }));
    svg.append(el("svg:text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, v));
  }
  for (let i = 0; i <= 5; i++) {
    const t = t0 + ((now - t0) * i) / 5;
    svg.append(el("svg:text", { x: x(t), y: H - 8, "text-anchor": i === 0 ? "start" : i === 5 ? "end" : "middle" }, new Date(t).toISOString().slice(11, 19)));
  }
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  for (const [key, s] of series) {
    const pts = s.filter((p) => p.t >= t0).map((p) => x(p.t).toFixed(1) + "," + y(p.faults).toFixed(1));
    const last = s[s.length - 1];
    if (last && last.t < now) pts.push(x(now).toFixed(1) + "," + y(last.faults).toFixed(1));
    svg.append(el("svg:polyline", { points: pts.join(" "), fill: "none", stroke: colorOf(key), "stroke-width": 2, "data-experiment": key }));
    legend.append(el("span", { style: "margin-right:16px" }, el("span", { class: "swatch", style: "background:" + colorOf(key) }), key + ": " + (last ? last.faults : 0) + " faults"));
  }
}

function render(state) {
  renderTable(state);
  renderPlot(state);
  document.getElementById("updated").textContent = "updated " + state.generatedAt.slice(11, 19) + " UTC";
}

function poll() {
  document.getElementById("live").textContent = "polling";
  const tick = () => fetch("api/state", { credentials: "same-origin" }).then((r) => r.json()).then(render).catch(() => {});
  tick();
  setInterval(tick, 5000);
}

if (typeof EventSource === "function") {
  const live = document.getElementById("live");
  const es = new EventSource("api/stream");
  let opened = false;
  es.onopen = () => { opened = true; live.textContent = "live"; live.classList.add("on"); };
  es.onmessage = (m) => render(JSON.parse(m.data));
  es.onerror = () => { live.classList.remove("on"); live.textContent = "reconnecting…"; if (!opened) { es.close(); poll(); } };
} else {
  poll();
}
</script>
</body>
</html>
`;
