// The Events page: a filter, what to group by and calculate, a chart per
// calculation, the duration heatmap whose boxes run compare, the groups'
// table with example traces, and a trace's waterfall. Everything shown
// follows from the state, which lives in the address.
import * as session from "./session.js";
import { parseTime, syncRange, bindRange, showTenants } from "./pickers.js";
import { TimeChart } from "./timechart.js";
import { Heatmap } from "./heatmap.js";
import { FilterInput, valueLiteral } from "./filterinput.js";
import { renderWaterfall, renderSpan } from "./waterfall.js";
import { formatCompact, formatDuration, palette } from "./format.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);

// The state and its defaults; only what differs from a default goes
// into the address. box is "fromMs,untilMs,minNs,maxNs" (maxNs empty for
// no upper bound), row the JSON of the opened group's values, trace and
// span the opened trace and span, tt the trace's time in Unix ms.
const defaults = {
  q: "{ }", from: "now-1h", until: "now", by: "", calc: "count,p99(duration)", step: "", limit: "",
  having: "", order: "", box: "", row: "", trace: "", tt: "", span: "", tenant: "", theme: "",
  running: "",
};
const state = { ...defaults };

function readURL() {
  const p = new URLSearchParams(location.search);
  for (const k of Object.keys(defaults)) state[k] = p.has(k) ? p.get(k) : defaults[k];
}

function writeURL(push) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) if (v !== defaults[k]) p.set(k, v);
  const url = "?" + p.toString();
  if (url !== location.search) (push ? history.pushState : history.replaceState).call(history, null, "", url);
}

async function api(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const resp = await session.request(path + "?" + q);
  const body = await resp.json().catch(() => ({ status: "error", error: `${resp.status} ${resp.statusText}` }));
  if (body.status !== "success") {
    const err = new Error(body.error || resp.statusText);
    err.type = body.errorType;
    err.status = resp.status;
    throw err;
  }
  return { data: body.data, warnings: body.warnings || [] };
}


// autoStep gives about 60 to 100 steps over the range, at a round step.
const steps = [["1s", 1e3], ["5s", 5e3], ["10s", 1e4], ["30s", 3e4], ["1m", 6e4], ["5m", 3e5], ["15m", 9e5], ["30m", 18e5], ["1h", 36e5], ["3h", 108e5], ["6h", 216e5], ["12h", 432e5], ["1d", 864e5]];
function autoStep() {
  const span = Math.max(1e3, parseTime(state.until) - parseTime(state.from));
  return (steps.find(([, ms]) => ms >= span / 100) || steps[steps.length - 1])[0];
}
const effectiveStep = () => state.step || autoStep();

const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);

// Calculations split at top-level commas only: count_distinct(span."a,b").
function splitCalcs(s) {
  const out = [];
  let depth = 0, quoted = false, cur = "";
  for (const ch of s) {
    if (ch === "\"") quoted = !quoted;
    if (!quoted && ch === "(") depth++;
    if (!quoted && ch === ")") depth--;
    if (!quoted && depth === 0 && ch === ",") { if (cur.trim()) out.push(cur.trim()); cur = ""; continue; }
    cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

// fieldRef writes a field as a filter names it, quoting an attribute name
// that a bare name cannot hold.
function fieldRef(key) {
  const m = /^(span|resource)\.(.*)$/.exec(key);
  if (m && !/^[^\s{}()=~!<>&|^,"]+$/.test(m[2])) return `${m[1]}."${m[2].replace(/[\\"]/g, "\\$&")}"`;
  return key;
}

// addCondition adds "field op value" to the filter, joined with &&.
function addCondition(filter, cond) {
  const t = filter.trim();
  const open = t.indexOf("{"), close = t.lastIndexOf("}");
  const inner = open >= 0 && close > open ? t.slice(open + 1, close).trim() : t;
  if (!inner) return `{ ${cond} }`;
  return `{ ${/\|\|/.test(inner) ? `(${inner})` : inner} && ${cond} }`;
}

const hook = { ready: false, loads: 0, error: null, state };
window.__hearth = hook;

// Fields for completion and pickers, once per tenant and range.
let fieldsCache = { key: "", promise: null };
function fields() {
  const key = [state.tenant, state.from, state.until].join("|");
  if (fieldsCache.key !== key || !fieldsCache.promise) {
    fieldsCache = {
      key,
      promise: api("/api/v1/events/attributes", { from: state.from, until: state.until }).then(({ data }) => {
        const seen = new Set();
        const out = [];
        for (const f of [...data.intrinsics, ...data.attributes]) if (!seen.has(f.key)) { seen.add(f.key); out.push(f); }
        return out;
      }).catch((e) => { fieldsCache.promise = null; throw e; }),
    };
  }
  return fieldsCache.promise;
}
let valuesCache = new Map();
async function values(field) {
  const key = [state.tenant, state.from, state.until, field].join("|");
  if (!valuesCache.has(key)) {
    valuesCache.set(key, api(`/api/v1/events/attribute/${encodeURIComponent(field)}/values`, { from: state.from, until: state.until, limit: 50 })
      .then(({ data }) => data.values).catch((e) => { valuesCache.delete(key); throw e; }));
  }
  return valuesCache.get(key);
}

const filterInput = new FilterInput($("filter"), $("filter-complete"), { fields, values, onRun: () => run() });

// --- The query builder -------------------------------------------------

function chip(text, title, onRemove) {
  return el("span", { class: "chip", "data-value": text }, text,
    el("button", { title, "aria-label": title, onclick: onRemove }, "×"));
}

function renderSpec() {
  $("by-chips").replaceChildren(...list(state.by).map((f) => chip(f, `Stop grouping by ${f}`, () => {
    state.by = list(state.by).filter((x) => x !== f).join(",");
    run();
  })));
  $("calc-chips").replaceChildren(...splitCalcs(state.calc).map((c) => chip(c, `Remove ${c}`, () => {
    state.calc = splitCalcs(state.calc).filter((x) => x !== c).join(",");
    if (state.order.startsWith(c + " ")) state.order = "";
    run();
  })));
  $("step").value = [...$("step").options].some((o) => o.value === state.step) ? state.step : "";
  $("limit").value = [...$("limit").options].some((o) => o.value === state.limit) ? state.limit : "";
  $("having").value = state.having;
}

async function fillPickers() {
  let fs = [];
  try { fs = await fields(); } catch { /* the pickers keep duration and the intrinsics typed by hand */ }
  const groupable = fs.filter((f) => !["duration", "trace:id", "span:id", "span:parentID"].includes(f.key));
  $("by-add").replaceChildren(new Option("+ field…", ""), ...groupable.map((f) => new Option(f.key, f.key)));
  fillCalcFields(fs);
}

function fillCalcFields(fs) {
  const fn = $("calc-fn").value;
  const sel = $("calc-field");
  const keep = sel.value;
  let opts;
  if (fn === "count") opts = [];
  else if (fn === "count_distinct") opts = fs.map((f) => f.key);
  else opts = ["duration", ...fs.filter((f) => f.type === "int" || f.type === "float").map((f) => f.key)];
  sel.replaceChildren(...opts.map((k) => new Option(k, k)));
  sel.disabled = fn === "count";
  if (opts.includes(keep)) sel.value = keep;
}

$("by-add").onchange = () => {
  const f = $("by-add").value;
  $("by-add").value = "";
  if (!f || list(state.by).includes(f)) return;
  state.by = [...list(state.by), f].join(",");
  run();
};
$("calc-fn").onchange = async () => fillCalcFields(await fields().catch(() => []));
$("calc-add").onclick = () => {
  const fn = $("calc-fn").value, field = $("calc-field").value;
  const c = fn === "count" ? "count" : `${fn}(${field || "duration"})`;
  const cs = splitCalcs(state.calc);
  if (!cs.includes(c)) state.calc = [...cs, c].join(",");
  run();
};
$("step").onchange = () => { state.step = $("step").value; run(); };
$("limit").onchange = () => { state.limit = $("limit").value; run(); };
$("having").addEventListener("keydown", (e) => { if (e.key === "Enter") { state.having = $("having").value.trim(); run(); } });
$("having").addEventListener("change", () => { state.having = $("having").value.trim(); run(); });

// --- Time range ----------------------------------------------------------

function syncControls() {
  $("filter").value = state.q;
  syncRange(state);
  renderSpec();
  document.documentElement.classList.toggle("dark", state.theme === "dark" ||
    (!state.theme && matchMedia("(prefers-color-scheme: dark)").matches));
}

bindRange(state, () => run());

// --- Running ---------------------------------------------------------------

const queryKey = () => [state.tenant, state.q, state.from, state.until, state.by, state.calc, effectiveStep(), state.order, state.having, state.limit, state.running].join("\n");
const shown = { query: null, box: null, trace: null };
const pending = { query: null, box: null, trace: null };
const seqs = { query: 0, box: 0, trace: 0 };
let result = null; // the last answer of the query
let heat = null; // and of its heatmap
let trace = null;

// run takes what the user asked for and asks the server again, even when
// nothing changed (a relative range has moved on). A different query
// forgets the box and the opened group, which belonged to the one before.
function run() {
  state.q = $("filter").value.trim() || defaults.q;
  state.having = $("having").value.trim();
  if (queryKey() !== shown.query) { state.box = ""; state.row = ""; }
  fieldsCache.promise = null;
  valuesCache = new Map();
  fillPickers();
  update(true, true);
}
$("run").onclick = () => run();

async function update(push, force = false) {
  writeURL(push);
  hook.ready = false;
  document.body.classList.add("loading");
  const qk = queryKey();
  if (force || qk !== shown.query) { shown.query = qk; shown.box = null; pending.query = runQuery(); }
  const bk = qk + "\n" + state.box;
  if (force || bk !== shown.box) { shown.box = bk; pending.box = runCompare(); }
  const tk = [state.tenant, state.trace, state.tt].join("|");
  if (force || tk !== shown.trace) { shown.trace = tk; pending.trace = loadTrace(); } else renderTraceSelection();
  renderSpec();
  const all = [pending.query, pending.box, pending.trace];
  await Promise.all(all);
  // A newer update may have started meanwhile; it says when it is ready.
  if (all.some((p, i) => p !== [pending.query, pending.box, pending.trace][i])) return;
  renderRowSelection();
  document.body.classList.remove("loading");
  hook.loads++;
  hook.ready = true;
}

function say(text, cls = "") {
  $("status").className = cls;
  $("status").textContent = text;
}

// showError puts an error where its cause was typed: a filter's (with
// its line and column) under the filter, a part of the calculation's
// beside the builder, anything else in the status line.
function showError(e) {
  hook.error = e.message;
  const m = e.message;
  if (e.type === "bad_data" || e.status === 400) {
    const pos = /^(?:(?:selection|baseline): )?(\d+):(\d+): /.exec(m);
    if (pos) { showFilterError(m, Number(pos[1]), Number(pos[2])); say(""); return; }
    if (/^(by|calc|order|having|step|limit|examples): /.test(m)) {
      $("spec-error").textContent = m;
      $("spec-error").hidden = false;
      say("");
      return;
    }
  }
  if (e.type === "forbidden") say("Not allowed: " + m, "error");
  else say("The server could not answer: " + m, "error");
}

function showFilterError(msg, line, col) {
  const lines = state.q.split("\n");
  const text = lines[line - 1] ?? "";
  const box = $("filter-error");
  box.replaceChildren(
    el("div", { class: "msg" }, msg),
    el("div", { class: "where" }, text),
    el("div", { class: "where caret" }, " ".repeat(Math.max(0, col - 1)) + "^"));
  box.hidden = false;
  $("filter").setAttribute("aria-invalid", "true");
  // Put the cursor where the mistake is, when the input shows that line.
  if (lines.length === 1) {
    const chars = [...text];
    const offset = chars.slice(0, col - 1).join("").length;
    $("filter").setSelectionRange(offset, offset);
  }
}

function clearErrors() {
  $("filter-error").hidden = true;
  $("filter").removeAttribute("aria-invalid");
  $("spec-error").hidden = true;
  hook.error = null;
}

function renderRunning() {
  const chip = $("running");
  chip.hidden = !state.running;
  $("running-text").textContent = `spans that ran ${state.running}`;
}
$("running-clear").onclick = () => { state.running = ""; update(true); };

async function runQuery() {
  const seq = ++seqs.query;
  clearErrors();
  say("Loading…");
  // running keeps the spans whose samples ran a function (from a flame
  // graph frame's "Requests that ran this"); a chip shows it.
  const base = { q: state.q, from: state.from, until: state.until, running: state.running };
  renderRunning();
  const step = effectiveStep();
  try {
    const [main, hm] = await Promise.all([
      api("/api/v1/events/query", { ...base, by: state.by, calc: state.calc, step, order: state.order, having: state.having, limit: state.limit || 20, examples: 3 }),
      api("/api/v1/events/query", { ...base, calc: "heatmap(duration)", step }),
    ]);
    if (seq !== seqs.query) return;
    result = main.data;
    heat = hm.data;
    render([...main.warnings, ...(result.warnings || [])]);
  } catch (e) {
    if (seq !== seqs.query) return;
    shown.query = null; // the same query may be asked again
    result = heat = null;
    render([]);
    showError(e);
  }
}

// --- Rendering the answer --------------------------------------------------

const TOP = 10; // groups drawn in the charts
let charts = [];

function groupLabel(res, g) {
  if (!res.by.length) return "all events";
  return res.by.map((k) => (g.by[k] === null || g.by[k] === undefined ? "(none)" : String(g.by[k]))).join(" · ");
}

function render(warnings) {
  const res = result;
  const empty = !res || res.matched === 0;
  $("charts").hidden = $("explore").hidden = $("results").hidden = empty;
  const note = $("ev-empty");
  note.hidden = !res || !empty;
  if (res && empty) {
    note.replaceChildren(el("b", {}, res.scanned ? "No events match this filter" : "No events in this time range"),
      res.scanned
        ? `${res.scanned.toLocaleString()} events in this range, none of which the filter selects. Loosen a condition or widen the range.`
        : "Nothing was received in this range for this tenant. Widen the range, or send events: OpenTelemetry traces and logs to /v1/traces and /v1/logs, or JSON lines to /api/v1/events (see the README, \"Sending events\").");
  }
  renderCharts(res && !empty ? res : null);
  renderHeatmap(res && !empty ? heat : null);
  renderTable(res && !empty ? res : null);
  if (!res) return;
  const parts = [`${res.matched.toLocaleString()} of ${res.scanned.toLocaleString()} events matched`];
  if (res.by.length) parts.push(`${res.group_count.toLocaleString()} group${res.group_count === 1 ? "" : "s"}` + (res.groups.length < res.group_count ? `, the first ${res.groups.length} listed` : ""));
  parts.push(`step ${effectiveStep()}`);
  say([...parts, ...warnings].join(" · "), warnings.length ? "warn" : "");
}

function renderCharts(res) {
  for (const c of charts) c.chart.destroy();
  charts = [];
  const wrap = $("charts");
  wrap.replaceChildren();
  if (!res) return;
  const groups = res.groups.slice(0, TOP);
  for (const calc of res.calcs.filter((c) => !c.startsWith("heatmap("))) {
    const unit = res.units[calc] || "";
    const plot = el("div", { class: "chart-plot", role: "img", "aria-label": `${calc} over time` });
    const legend = el("div", { class: "chart-legend" });
    const more = res.groups.length > TOP ? el("span", { class: "muted-label" }, ` top ${TOP} of ${res.groups.length} groups`) : null;
    wrap.append(el("figure", { class: "chart-card", "data-calc": calc }, el("figcaption", {}, calc, more), plot, legend));
    const chart = new TimeChart(plot, { legend, height: 170, sync: "events" });
    chart.set({
      times: res.times || [],
      series: groups.map((g) => ({ label: groupLabel(res, g), values: (g.series && g.series[calc]) || [] })),
      unit, from: Date.parse(res.from), until: Date.parse(res.until),
      integer: calc === "count" || calc.startsWith("count_distinct("),
    });
    charts.push({ calc, chart });
  }
}
hook.charts = () => charts.map(({ calc, chart }) => ({ calc, readout: chart.readout(), axes: chart.axes() }));

// --- The heatmap and compare -------------------------------------------------

function parseBox(s) {
  const [fromMs, untilMs, minNs, maxNs] = s.split(",");
  if (!fromMs || !untilMs) return null;
  return { fromMs: Number(fromMs), untilMs: Number(untilMs), minNs: Number(minNs || 0), maxNs: maxNs ? Number(maxNs) : null };
}

const heatmap = new Heatmap($("heatmap"), $("tooltip"), {
  onBox(b) {
    state.box = [b.fromMs, b.untilMs, b.minNs, b.maxNs ?? ""].join(",");
    update(true);
  },
});
hook.heatmapPoint = (ms, ns) => heatmap.point(ms, ns);
hook.heatmapGeometry = () => heatmap.geometry();

function renderHeatmap(hm) {
  const key = "heatmap(duration)";
  const g = hm && hm.groups[0];
  const data = g && hm.buckets && hm.buckets[key] && g.histogram_series ? {
    times: hm.times, stepMs: hm.step_ms, buckets: hm.buckets[key], counts: g.histogram_series[key],
    from: Date.parse(hm.from), until: Date.parse(hm.until),
  } : null;
  heatmap.box = state.box ? parseBox(state.box) : null;
  heatmap.set(data);
  $("heat-note").textContent = hm && !data ? "No durations to show." : "";
}

function boxText(b) {
  const t = (ms) => new Date(ms).toLocaleTimeString();
  const d = b.maxNs == null ? `${formatDuration(b.minNs)} and slower` : `${formatDuration(b.minNs)} to ${formatDuration(b.maxNs)}`;
  return `${d}, ${t(b.fromMs)} to ${t(b.untilMs)}`;
}

async function runCompare() {
  const seq = ++seqs.box;
  const panel = $("compare");
  const b = state.box ? parseBox(state.box) : null;
  heatmap.box = b;
  heatmap.draw();
  if (!b) {
    hook.compare = null;
    panel.replaceChildren(el("p", { class: "muted-label hint" }, "Drag a box on the heatmap, around the slow events say, to see which fields set them apart from the rest: each field's values, ranked by how differently they are shared out inside the box and outside it."));
    return;
  }
  panel.replaceChildren(el("p", { class: "muted-label" }, `Comparing events ${boxText(b)} with the rest…`));
  try {
    // With running, the heatmap is of the spans that ran the function,
    // and so are both sides of its box. The heatmap's answer (runQuery
    // reports its own errors) tells what the box's code leaves out.
    const [{ data }] = await Promise.all([api("/api/v1/events/compare", {
      q: state.q, from: state.from, until: state.until, values: 6, running: state.running,
      box_from: b.fromMs, box_until: b.untilMs, box_min_duration: b.minNs, box_max_duration: b.maxNs ?? "",
    }), pending.query]);
    if (seq !== seqs.box) return;
    hook.compare = { attributes: data.attributes.map((a) => a.attribute), defining: data.defining.map((a) => a.attribute), selection: data.selection_count, baseline: data.baseline_count };
    renderCompare(data, b);
  } catch (e) {
    if (seq !== seqs.box) return;
    shown.box = null;
    hook.compare = { error: e.message };
    panel.replaceChildren(compareHead(b, null), el("p", { class: "error" }, e.message));
  }
}

function compareHead(b, data) {
  return el("div", { class: "cmp-head" },
    el("div", {},
      el("b", {}, "Selection"), `: ${data ? data.selection_count.toLocaleString() + " events " : ""}${boxText(b)}`,
      data ? el("span", {}, " · ", el("b", {}, "baseline"), `: the other ${data.baseline_count.toLocaleString()}`) : null),
    el("button", { id: "compare-clear", title: "Clear the box", "aria-label": "Clear the box", onclick: () => { state.box = ""; update(true); } }, "×"));
}

function shareText(x) {
  return (100 * x).toFixed(x > 0 && x < 0.01 ? 2 : 1) + "%";
}

function valueLabel(attr, v) {
  if (v.absent) return "(none)";
  if (v.other) return "(other values)";
  if (v.range) {
    const f = attr.unit === "ns" ? formatDuration : (x) => formatCompact(x, "");
    return `${f(v.range.lo)} – ${f(v.range.hi)}`;
  }
  return typeof v.value === "string" ? v.value : JSON.stringify(v.value);
}

function renderAttribute(a, addable) {
  const rows = a.values.map((v) => {
    const label = valueLabel(a, v);
    const canAdd = addable && !v.other && !v.range;
    const cond = canAdd ? `${fieldRef(a.attribute)} = ${v.absent ? "nil" : valueLiteral(v.value, a.attribute)}` : "";
    return el("div", { class: "cmp-value", "data-value": label },
      canAdd
        ? el("button", { class: "v link", title: `Add ${cond} to the filter`, onclick: () => { $("filter").value = addCondition(state.q, cond); run(); } }, label)
        : el("span", { class: "v" }, label),
      el("span", { class: "bars", title: `selection ${shareText(v.selection_share)}, baseline ${shareText(v.baseline_share)}` },
        el("span", { class: "bar sel", style: `width:${(100 * v.selection_share).toFixed(2)}%` }),
        el("span", { class: "bar base", style: `width:${(100 * v.baseline_share).toFixed(2)}%` })),
      el("span", { class: "pct" }, `${shareText(v.selection_share)} vs ${shareText(v.baseline_share)}`));
  });
  return el("li", { class: "cmp-attr", "data-attr": a.attribute },
    el("div", { class: "cmp-title" }, el("b", {}, a.attribute),
      el("span", { class: "score", title: "How differently the values are shared out, from 0 (alike) to 1 (nothing in common)" }, a.score.toFixed(2)),
      a.high_cardinality ? el("span", { class: "badge", title: "Most events have a value of their own (an ID): compared on its frequent values only" }, "high cardinality") : null),
    ...rows);
}

const SHOWN_ATTRS = 8;

function renderCompare(data, b) {
  const panel = $("compare");
  const head = compareHead(b, data);
  if (!data.selection_count) {
    panel.replaceChildren(head, el("p", { class: "muted-label" }, "No events in this box. Draw it over coloured cells."));
    return;
  }
  // The fields that differ, up to SHOWN_ATTRS; the rest, alike on both
  // sides or past that, one click away.
  const ranked = data.attributes;
  const differ = ranked.findIndex((a) => a.score < 0.01);
  const top = ranked.slice(0, Math.min(SHOWN_ATTRS, differ < 0 ? ranked.length : Math.max(differ, 1)));
  const rest = ranked.slice(top.length);
  const ol = el("ol", { id: "cmp-attrs" }, ...top.map((a) => renderAttribute(a, true)));
  const more = rest.length ? el("button", { class: "link", onclick: (e) => { ol.append(...rest.map((a) => renderAttribute(a, true))); e.target.remove(); } }, `Show ${rest.length} more fields`) : null;
  const defining = data.defining.length ? el("details", { id: "cmp-defining" },
    el("summary", {}, `Defining the selection: ${data.defining.map((a) => a.attribute).join(", ")}`),
    el("ol", {}, ...data.defining.map((a) => renderAttribute(a, false)))) : null;
  panel.replaceChildren(head, compareCode(b, data),
    el("div", { class: "cmp-legend muted-label" }, el("span", { class: "sw sel" }), " in the box ", el("span", { class: "sw base" }), " the rest"),
    ol, more, defining);
}

// --- The box's code ------------------------------------------------------------

// durationLiteral writes nanoseconds as a filter's duration, in the
// largest unit that keeps it exact.
function durationLiteral(ns) {
  for (const [unit, n] of [["h", 36e11], ["m", 6e10], ["s", 1e9], ["ms", 1e6], ["us", 1e3]]) {
    if (ns % n === 0) return `${ns / n}${unit}`;
  }
  return `${ns}ns`;
}

// profileQueryOf is the profile selector of the spans a filter selects:
// cpu of the service it names, when it asks for exactly one with = and
// neither || nor ! could widen that; else cpu of every service (the span
// filter keeps the spans' samples either way).
function profileQueryOf(filter) {
  const names = new Set([...filter.matchAll(/resource\.service\.name\s*=\s*"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]));
  return names.size === 1 && !/\|\||!\(/.test(filter) ? `cpu{service_name="${[...names][0]}"}` : "cpu{}";
}

// strayCount is how many events of the box's durations the heatmap shows
// outside the box's time; cells only partly outside count too, so that 0
// means none. null when there is no heatmap to count on.
function strayCount(b) {
  const key = "heatmap(duration)";
  const g = heat && heat.groups[0];
  const buckets = heat && heat.buckets && heat.buckets[key];
  const counts = g && g.histogram_series && g.histogram_series[key];
  if (!buckets || !counts) return null;
  const from = Date.parse(heat.from), until = Date.parse(heat.until), step = heat.step_ms;
  let n = 0;
  heat.times.forEach((t, i) => {
    if (Math.max(t, from) >= b.fromMs && Math.min(t + step, until) <= b.untilMs) return;
    buckets.forEach((k, j) => {
      if (k.hi > b.minNs && (b.maxNs == null || k.lo < b.maxNs)) n += (counts[i] && counts[i][j]) || 0;
    });
  });
  return n;
}

// boxCode is the profiles page comparing the code of a box's spans with
// that of the other spans, and what the comparison rests on. The box
// selects spans by duration and start; a span filter has no start, so
// the comparison side is the spans of the box's durations, by their
// samples taken in its time, and the baseline the filter's spans of
// other durations over the whole range. That is the box and its outside
// when no span of the box's durations started outside its time; else
// such spans' samples in its time count as the box's, the rest on
// neither side.
function boxCode(b, range) {
  const inDurations = [
    b.minNs > 0 ? `duration >= ${durationLiteral(b.minNs)}` : null,
    b.maxNs != null ? `duration < ${durationLiteral(b.maxNs)}` : null,
  ].filter(Boolean);
  const comparison = inDurations.reduce(addCondition, state.q);
  const baseline = inDurations.length ? addCondition(state.q, `!(${inDurations.join(" && ")})`) : state.q;
  const query = profileQueryOf(state.q);
  const p = new URLSearchParams({
    query, from: String(range.from), until: String(range.until), spans: baseline,
    compare: query, cfrom: String(b.fromMs), cuntil: String(b.untilMs), cspans: comparison,
  });
  if (state.tenant) p.set("tenant", state.tenant);
  const notes = [];
  const stray = strayCount(b);
  if (!inDurations.length) notes.push("The box holds every duration: the baseline is every span of the filter over the range, the box's among them.");
  else if (stray !== 0) notes.push(`${stray ? `Up to ${stray.toLocaleString()} spans` : "Spans"} of the box's durations started outside its time: their samples in its time count as the box's, the rest on neither side, as a span filter cannot select by start time.`);
  if (state.running) notes.push(`Profiles take event filters only: both sides may hold spans that did not run ${state.running}.`);
  return { href: "./?" + p, notes };
}

function compareCode(b, data) {
  const range = { from: Date.parse(data.from), until: Date.parse(data.until) };
  const { href, notes } = boxCode(b, range);
  return el("p", { class: "cmp-code" },
    el("a", { id: "compare-code", class: "code-link", href, title: "A diff flame graph: the CPU profile of the filter's spans of the box's durations, by their samples in its time, against that of the filter's spans of other durations over the whole range" }, "Compare code →"),
    " ", el("span", { class: "muted-label" }, "the box's spans against the rest, as a diff flame graph", ...notes.map((n) => " · " + n)));
}

// --- The table -------------------------------------------------------------

function renderTable(res) {
  const head = $("groups").tHead.rows[0];
  const body = $("groups").tBodies[0];
  head.replaceChildren();
  body.replaceChildren();
  if (!res) return;
  const calcs = res.calcs.filter((c) => !c.startsWith("heatmap("));
  const [orderCalc, orderDir] = state.order ? [state.order.replace(/\s+(asc|desc)$/, ""), /\sasc$/.test(state.order) ? "asc" : "desc"] : [calcs[0], "desc"];
  head.append(el("th", { class: "sw-col" }), ...(res.by.length ? res.by : ["group"]).map((k) => el("th", {}, k)),
    ...calcs.map((c) => el("th", {
      class: "num" + (c === orderCalc ? ` sorted ${orderDir}` : ""), "data-calc": c,
      title: `Order by ${c}`,
      onclick: () => { state.order = c === orderCalc && orderDir === "desc" ? `${c} asc` : `${c} desc`; update(true); },
    }, c)));
  res.groups.forEach((g, i) => {
    const tr = el("tr", { class: "group", tabindex: "0", "data-row": JSON.stringify(g.by), "aria-expanded": "false", title: "Show example traces of this group" },
      el("td", { class: "sw-col" }, i < TOP ? el("span", { class: "sw", style: `background:${palette[i % palette.length]}` }) : null),
      ...(res.by.length ? res.by.map((k) => el("td", { class: g.by[k] == null ? "muted-label" : "" }, g.by[k] == null ? "(none)" : String(g.by[k]))) : [el("td", {}, "all events")]),
      ...calcs.map((c) => el("td", { class: "num" }, formatCompact(g.values[c], res.units[c] || ""))));
    const toggle = () => { state.row = state.row === tr.dataset.row ? "" : tr.dataset.row; writeURL(true); renderRowSelection(); };
    tr.onclick = toggle;
    tr.onkeydown = (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } };
    body.append(tr);
  });
}

function renderRowSelection() {
  const body = $("groups").tBodies[0];
  for (const d of body.querySelectorAll("tr.detail")) d.remove();
  for (const tr of body.querySelectorAll("tr.group")) {
    const open = !!state.row && tr.dataset.row === state.row;
    tr.setAttribute("aria-expanded", String(open));
    tr.classList.toggle("open", open);
    if (open) tr.after(exampleRow(tr));
  }
}

function exampleRow(tr) {
  const res = result;
  const g = res.groups.find((x) => JSON.stringify(x.by) === tr.dataset.row);
  const ex = (g && g.examples) || [];
  const conds = res.by.map((k) => `${fieldRef(k)} = ${valueLiteral(g.by[k], k)}`);
  // An event without a trace (a JSON line sent without trace_id) comes
  // without trace_id: nothing to open.
  const items = ex.map((x) => el("li", {},
    x.trace_id && !/^0+$/.test(x.trace_id)
      ? el("button", { class: "example link", "data-trace": x.trace_id, title: "Open this trace", onclick: () => openTrace(x.trace_id, x.start) },
        `${formatDuration(x.duration)} at ${new Date(x.start).toLocaleTimeString()}, trace ${x.trace_id.slice(0, 16)}…`)
      : el("span", {}, `${formatDuration(x.duration)} at ${new Date(x.start).toLocaleTimeString()} (no trace ID)`)));
  return el("tr", { class: "detail" }, el("td", { colspan: String(tr.cells.length) },
    el("div", { class: "muted-label" }, ex.length ? "The slowest events of this group:" : "No example events."),
    ex.length ? el("ul", { class: "examples" }, ...items) : null,
    conds.length ? el("button", { class: "link", title: "Add this group's values to the filter", onclick: () => {
      let f = state.q;
      for (const c of conds) f = addCondition(f, c);
      $("filter").value = f;
      run();
    } }, "Filter to this group") : null));
}

// --- The trace view -----------------------------------------------------------

function openTrace(id, startIso) {
  state.trace = id;
  state.tt = startIso ? String(Date.parse(startIso)) : "";
  state.span = "";
  update(true);
}

let traceT0 = 0;
async function loadTrace() {
  const seq = ++seqs.trace;
  const view = $("trace-view");
  if (!state.trace) { trace = null; hook.trace = null; view.hidden = true; return; }
  view.hidden = false;
  $("trace-title").textContent = `Trace ${state.trace}`;
  $("trace-summary").textContent = "Loading…";
  $("trace-error").hidden = true;
  $("waterfall").replaceChildren();
  $("span-detail").hidden = true;
  // Around the time it was seen, when the link says; else the server's
  // default, the last day.
  const at = Number(state.tt);
  const params = at ? { from: String(at - 36e5), until: String(at + 36e5) } : {};
  try {
    const { data } = await api(`/api/v1/events/trace/${encodeURIComponent(state.trace)}`, params);
    if (seq !== seqs.trace) return;
    trace = data;
    hook.trace = { spans: data.spans.length, errors: data.errors, services: data.services };
    $("trace-summary").textContent = `${formatDuration(data.duration_ns)} · ${data.spans.length} span${data.spans.length === 1 ? "" : "s"} · ${data.services.join(", ")}` +
      (data.errors ? ` · ${data.errors} error${data.errors === 1 ? "" : "s"}` : "");
    renderTraceSelection();
  } catch (e) {
    if (seq !== seqs.trace) return;
    trace = null;
    shown.trace = null;
    hook.trace = { error: e.message };
    $("trace-summary").textContent = "";
    $("trace-error").textContent = e.message;
    $("trace-error").hidden = false;
  }
}

function renderTraceSelection() {
  if (!trace) return;
  traceT0 = renderWaterfall($("waterfall"), trace, {
    selected: state.span,
    onSelect: (s) => { state.span = s.span_id; writeURL(false); renderTraceSelection(); },
  });
  const s = trace.spans.find((x) => x.span_id === state.span);
  if (s) renderSpan($("span-detail"), s, traceT0, { onOpenTrace: (id) => openTrace(id, null) });
  else $("span-detail").hidden = true;
}

$("trace-close").onclick = () => { state.trace = state.tt = state.span = ""; update(true); };
document.addEventListener("keydown", (e) => {
  // Escape closes the trace, unless it closed a completion list first.
  if (e.key === "Escape" && !e.defaultPrevented && state.trace) $("trace-close").click();
});

// --- Theme, history, tenants --------------------------------------------------

$("theme").onclick = () => {
  const dark = document.documentElement.classList.contains("dark");
  state.theme = dark ? "light" : "dark";
  syncControls();
  for (const c of charts) c.chart.draw();
  heatmap.draw();
  writeURL(false);
};

window.addEventListener("popstate", async () => {
  const tenant = state.tenant;
  readURL();
  if (state.tenant !== tenant) await useTenant();
  syncControls();
  await update(false);
});

let who = null;

async function useTenant() {
  session.setTenant(state.tenant);
  if (who) $("tenant").value = state.tenant || who.tenant;
  const q = state.tenant ? "?" + new URLSearchParams({ tenant: state.tenant }) : "";
  document.querySelector('nav.pages a[href^="./"]').href = "./" + q;
  document.querySelector('nav.pages a[href^="targets.html"]').href = "targets.html" + q;
  document.querySelector("a.brand").href = "./" + q;
  await fillPickers();
}

$("tenant").onchange = async () => {
  state.tenant = $("tenant").value;
  Object.assign(state, { box: "", row: "", trace: "", tt: "", span: "" });
  await useTenant();
  syncControls();
  await update(true, true);
};

readURL();
syncControls();
try {
  who = await session.whoami();
} catch (e) {
  who = { auth: false, name: "", tenants: [], scopes: [], tenant: "" };
  say("The server could not say who this is: " + e.message, "error");
}
showTenants(who, state, hook);
session.onSignIn(async () => { who = await session.whoami(); showTenants(who, state, hook); session.setTenant(state.tenant); });
await useTenant();
syncControls();
await update(false);
