// The appliance panel: nodes, models, LEDs, alerts and small sparklines, from GET /status.
// Charts are hand-made inline SVG (a polyline per series): no chart library, nothing fetched from elsewhere.

import { ApiError, api } from "./api.js";
import { h, fill } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
const SERIES = [
  ["power_watts", "Power", "W"],
  ["gpu_load", "GPU load", "%"],
  ["tokens_per_s", "Tokens/s", ""],
  ["temperature_c", "Temperature", "°C"],
];

/** A 100x24 sparkline of [[t, v], ...] scaled to its own min/max. */
export function sparkline(points, label) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 100 24");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  if (points.length < 2) return svg;
  const ts = points.map((p) => p[0]);
  const vs = points.map((p) => p[1]);
  const [t0, t1] = [Math.min(...ts), Math.max(...ts)];
  const [v0, v1] = [Math.min(...vs), Math.max(...vs)];
  // A flat series is drawn mid-height rather than dividing by zero.
  const x = (t) => (t1 > t0 ? ((t - t0) / (t1 - t0)) * 100 : 50);
  const y = (v) => (v1 > v0 ? 22 - ((v - v0) / (v1 - v0)) * 20 : 12);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
  svg.append(line);
  return svg;
}

function dot(ok) {
  return h("span", { class: ok ? "dot up" : "dot down", title: ok ? "up" : "down" });
}

function section(title, items) {
  return items.length ? [h("h3", {}, title), h("ul", { class: "list compact" }, items)] : [];
}

function render(body, status) {
  const nodes = (status.nodes || []).map((n) =>
    h("li", { class: "node" }, dot(n.up), ` ${n.name} `, h("span", { class: "muted" }, n.role)),
  );
  const models = (status.models || []).map((m) =>
    h("li", { class: "model" }, dot(m.loaded), ` ${m.name}`, m.loaded ? "" : h("span", { class: "muted" }, " (not loaded)")),
  );
  const alerts = (status.alerts || []).map((a) =>
    h("li", { class: `alert ${a.severity}` }, h("strong", {}, a.name), ` ${a.summary}`),
  );
  const leds = status.leds
    ? [h("h3", {}, "LEDs"), h("p", { class: "leds" }, h("strong", {}, status.leds.state), ` ${status.leds.detail || ""}`)]
    : [];
  const series = SERIES.filter(([key]) => status.series?.[key]?.length).map(([key, label, unit]) => {
    const points = status.series[key];
    const last = points.at(-1)[1];
    return h(
      "div",
      { class: "series", dataset: { series: key } },
      h("span", {}, label),
      h("span", { class: "value" }, `${Math.round(last * 10) / 10}${unit}`),
      sparkline(points, label),
    );
  });
  fill(
    body,
    ...section("Nodes", nodes),
    ...section("Models", models),
    ...leds,
    ...section("Alerts", alerts.length ? alerts : [h("li", { class: "muted" }, "none")]),
    ...(series.length ? [h("h3", {}, "Last hour"), ...series] : []),
  );
  body.classList.remove("muted");
}

/** Load /status into `body`; 404/503 (not there, or no data yet) read "status unavailable". */
export async function refreshStatus(body) {
  try {
    render(body, await api("GET", "/status"));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    body.classList.add("muted");
    fill(body, h("p", { class: "unavailable" }, "status unavailable"));
  }
}
