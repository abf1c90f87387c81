import { formatDuration, palette } from "./format.js";
import { el } from "./dom.js";

/** serviceColor gives each service its own colour of the palette, the same on every page load. */
export function serviceColor(service) {
  let h = 0;
  for (let i = 0; i < service.length; i++) h = (h * 31 + service.charCodeAt(i)) >>> 0;
  return palette[h % palette.length];
}

// Where a time axis puts its ticks: about five, at round durations.
function ticks(total) {
  if (total <= 0) return [0];
  const raw = total / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = 0; t <= total * 1.0001; t += step) out.push(t);
  return out;
}

/**
 * renderWaterfall draws a trace's spans (the answer of
 * /api/v1/events/trace/{id}, in tree order with depths) as rows on a
 * time axis: each name indented by its depth and marked in its service's
 * colour, each bar from the span's start for its duration, errors in red,
 * span events as ticks on the bar. Clicking a row calls onSelect(span).
 */
export function renderWaterfall(container, trace, { selected, onSelect }) {
  const t0 = trace.spans.reduce((m, s) => Math.min(m, s.start_unix_nano), Infinity);
  const total = Math.max(trace.duration_ns, 1);
  const pct = (ns) => ((ns - t0) / total) * 100;
  const axis = el("div", { class: "wf-row wf-axis", "aria-hidden": "true" },
    el("div", { class: "wf-name muted-label" }, `${trace.spans.length} span${trace.spans.length === 1 ? "" : "s"}`),
    el("div", { class: "wf-lane" }, ...ticks(total).map((t) =>
      el("span", { class: "wf-tick", style: `left:${(t / total) * 100}%` }, formatDuration(t)))));
  const rows = trace.spans.map((s) => {
    const color = serviceColor(s.service);
    const err = s.status === "error";
    const left = pct(s.start_unix_nano), width = Math.max((s.duration_ns / total) * 100, 0.15);
    // Span events as ticks on the bar, placed within it.
    const marks = (s.span_events || []).map((ev) => {
      const into = s.duration_ns > 0 ? (unixNanos(ev.time) - s.start_unix_nano) / s.duration_ns : 0;
      return el("span", { class: "wf-mark", title: ev.name, style: `left:${Math.min(100, Math.max(0, into * 100))}%` });
    });
    const row = el("div", {
      class: "wf-row" + (err ? " error" : "") + (s.span_id === selected ? " selected" : ""),
      role: "treeitem", tabindex: "0", "aria-level": String((s.depth || 0) + 1),
      "aria-selected": s.span_id === selected ? "true" : "false",
      "data-span": s.span_id, "data-depth": String(s.depth || 0),
      onclick: () => onSelect(s),
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onSelect(s); } },
    },
    el("div", { class: "wf-name", style: `padding-left:${4 + (s.depth || 0) * 14}px`, title: `${s.service}: ${s.name}` },
      el("span", { class: "svc-dot", style: `background:${color}` }),
      err ? el("span", { class: "wf-err", title: s.status_message || "error" }, "!") : null,
      el("span", { class: "wf-svc" }, s.service), " ", el("span", { class: "wf-op" }, s.name)),
    el("div", { class: "wf-lane" },
      el("div", { class: "wf-bar", style: `left:${left}%;width:${width}%;background:${color}` }, ...marks),
      el("span", { class: "wf-dur", style: left + width > 80 ? `right:${100 - left + 0.5}%` : `left:${left + width + 0.5}%` }, formatDuration(s.duration_ns))));
    return row;
  });
  container.replaceChildren(axis, ...rows);
  return t0;
}

// unixNanos reads an RFC 3339 time with its fraction of a second, which
// Date.parse would cut to milliseconds. (A double holds Unix nanoseconds
// to about a quarter of a microsecond: enough to place a mark.)
export function unixNanos(iso) {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(iso);
  if (!m) return Date.parse(iso) * 1e6;
  const frac = (m[2] || "").padEnd(9, "0").slice(0, 9);
  return Date.parse(m[1] + m[3]) * 1e6 + Number(frac);
}

function valueText(v) {
  if (v === null || v === undefined) return "null";
  return typeof v === "string" ? v : JSON.stringify(v);
}

function attrTable(attrs) {
  const keys = Object.keys(attrs || {}).sort();
  if (!keys.length) return el("p", { class: "muted-label" }, "none");
  return el("table", { class: "kv" }, el("tbody", {}, ...keys.map((k) =>
    el("tr", {}, el("th", {}, k), el("td", {}, valueText(attrs[k]))))));
}

/**
 * renderSpan shows one span in full: what it is, its status and message,
 * its attributes, its span events (at their offset into the span) and its
 * links, each of which onOpenTrace(traceId) opens.
 */
export function renderSpan(container, s, t0, { onOpenTrace }) {
  const err = s.status === "error";
  const fields = [
    ["service", s.service], ["name", s.name], ["kind", s.kind],
    ["status", s.status + (s.status_message ? `: ${s.status_message}` : "")],
    ["start", `+${formatDuration(s.start_unix_nano - t0)} (${s.start})`], ["duration", formatDuration(s.duration_ns)],
    ["span ID", s.span_id], ["parent span ID", s.parent_span_id || "none"], ["trace ID", s.trace_id],
  ];
  const events = (s.span_events || []).map((ev) => el("li", {},
    el("b", {}, ev.name), " ", el("span", { class: "muted-label" }, `+${formatDuration(unixNanos(ev.time) - s.start_unix_nano)} into the span`),
    attrTable(ev.attributes)));
  const links = (s.links || []).map((l) => el("li", {},
    el("button", { class: "link", title: "Open the linked trace", onclick: () => onOpenTrace(l.trace_id) }, `trace ${l.trace_id}`),
    ` span ${l.span_id}`, l.attributes ? attrTable(l.attributes) : null));
  // The code the span ran: the profiles page, kept to the samples of this
  // span and, for the first span of its request in a service, of every
  // span below it there. Profiles cover windows of seconds: the range is
  // the span's, a minute wider on each side.
  const end = s.start_unix_nano + s.duration_ns;
  const code = "/?" + new URLSearchParams({
    query: `cpu{service_name="${s.service}"}`,
    spans: `{ span:id = "${s.span_id}" }`,
    from: new Date(Math.floor(s.start_unix_nano / 1e6) - 60_000).toISOString(),
    until: new Date(Math.ceil(end / 1e6) + 60_000).toISOString(),
  });
  container.replaceChildren(
    el("h3", { class: err ? "error-title" : "" }, err ? "⚠ " : "", s.name),
    el("p", {}, el("a", { class: "code-link", href: code, title: "The CPU profile of this span and the spans below it in its service" }, "Code this span ran →")),
    el("table", { class: "kv span-fields" }, el("tbody", {}, ...fields.map(([k, v]) =>
      el("tr", { class: k === "status" && err ? "error" : "" }, el("th", {}, k), el("td", {}, v))))),
    el("h4", {}, "Attributes"), attrTable(s.attributes),
    el("h4", {}, `Span events (${events.length})`), events.length ? el("ul", { class: "span-events" }, ...events) : el("p", { class: "muted-label" }, "none"),
    el("h4", {}, `Links (${links.length})`), links.length ? el("ul", { class: "span-links" }, ...links) : el("p", { class: "muted-label" }, "none"),
  );
  container.hidden = false;
}
