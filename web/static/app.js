import { FlameGraph, diffTree } from "./flame.js";
import { SeriesChart } from "./chart.js";
import { formatValue, percent } from "./format.js";
import { sandwich, sortTree } from "./sandwich.js";
import * as session from "./session.js";
import { parseTime, syncRange, bindRange, showTenants } from "./pickers.js";

const $ = (id) => document.getElementById(id);

// Everything on screen follows from this state, which lives in the URL:
// copying the address reproduces the view.
const state = {
  query: "", from: "now-1h", until: "now", zoom: [], search: "",
  dir: "icicle", sort: "self", filter: "", theme: "", nodes: "", sandwich: "",
  compare: "", cfrom: "", cuntil: "", sides: "", focus: "", ignore: "", group: "",
  tenant: "", spans: "", cspans: "",
};

function readURL() {
  const p = new URLSearchParams(location.search);
  for (const k of ["query", "from", "until", "search", "dir", "sort", "filter", "theme", "nodes", "sandwich", "compare", "cfrom", "cuntil", "sides", "focus", "ignore", "group", "tenant", "spans", "cspans"]) {
    if (p.has(k)) state[k] = p.get(k);
  }
  state.zoom = p.get("zoom") ? p.get("zoom").split("\n") : [];
}

function writeURL(push) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (k === "zoom") { if (v.length) p.set("zoom", v.join("\n")); continue; }
    if (v) p.set(k, v);
  }
  const url = "?" + p.toString();
  if (url !== location.search) (push ? history.pushState : history.replaceState).call(history, null, "", url);
}

async function api(path, params) {
  const resp = await session.request(path + "?" + new URLSearchParams(params));
  const body = await resp.json().catch(() => ({ status: "error", error: `${resp.status} ${resp.statusText}` }));
  if (body.status !== "success") {
    const err = new Error(body.error || resp.statusText);
    err.type = body.errorType;
    throw err;
  }
  return body.data;
}

// A frame's diff is its change in share of the total when comparing.
const hook = { ready: false, loads: 0, error: null, state, frames: () => flame.frames.map(({ name, x, y, w, match, node }) => ({ name, x, y, w, match, diff: node.diff })) };
window.__hearth = hook;
hook.redraw = () => flame.draw();

const flame = new FlameGraph($("flame"), $("tooltip"), {
  onZoom(path) { state.zoom = path; renderCrumbs(); writeURL(true); },
  onHover(name) {
    for (const tr of $("top").tBodies[0].rows) tr.classList.toggle("hover", tr.dataset.name === name);
  },
});
const noHooks = { onZoom() {}, onHover() {} };
const leftGraph = new FlameGraph($("left"), $("tooltip"), noHooks);
const rightGraph = new FlameGraph($("right"), $("tooltip"), noHooks);
hook.sides = () => [leftGraph, rightGraph].map((g) => g.frames.map(({ name, w }) => ({ name, w })));
const callersGraph = new FlameGraph($("callers"), $("tooltip"), noHooks);
const calleesGraph = new FlameGraph($("callees"), $("tooltip"), noHooks);
callersGraph.flame = true;
hook.sandwich = () => ({
  callers: callersGraph.frames.map(({ name, x, y, w }) => ({ name, x, y, w })),
  callees: calleesGraph.frames.map(({ name, x, y, w }) => ({ name, x, y, w })),
});

// renderCompare shows, when comparing, one diff flame graph (or the two
// sides next to each other) in place of the flame graph.
let diffGraph = null;
function renderCompare(fg, diff, right) {
  $("compare-row").hidden = !state.compare && $("compare-row").dataset.open !== "1";
  const sides = !!(diff && state.sides);
  $("sides").hidden = !sides;
  if (sides) {
    leftGraph.set(fg, []);
    rightGraph.set(right, []);
  }
  diffGraph = diff ? { unit: diff.unit, baselineTotal: diff.baselineTotal, comparisonTotal: diff.comparisonTotal, root: diffTree(diff), truncated: diff.truncated } : null;
  hook.diff = diff ? { baselineTotal: diff.baselineTotal, comparisonTotal: diff.comparisonTotal } : null;
}

// The context menu of a frame: focus on it or ignore it (the query's
// stack filters), open its sandwich, or copy its name.
let menuName = null;
$("flame").addEventListener("contextmenu", (e) => {
  const f = flame.frameAt(e);
  if (!f || f.node === flame.root) return;
  e.preventDefault();
  menuName = f.name;
  const m = $("menu");
  m.hidden = false;
  m.style.left = e.clientX + "px";
  m.style.top = e.clientY + "px";
});
window.addEventListener("click", () => { $("menu").hidden = true; });
const exact = (name) => "^" + name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&") + "$";
for (const b of $("menu").querySelectorAll("button")) {
  b.onclick = async () => {
    $("menu").hidden = true;
    const act = b.dataset.act;
    if (act === "copy") { await navigator.clipboard.writeText(menuName).catch(() => {}); hook.copied = menuName; return; }
    if (act === "sandwich") { state.sandwich = menuName; renderSandwich(); writeURL(true); return; }
    if (act === "requests") { location.href = requestsURL(menuName); return; }
    state[act] = exact(menuName);
    state.zoom = [];
    load(true);
  };
}

// renderFilters shows the stack filters and the span filters as chips
// that a click removes; counts are the answers' counts of matching spans,
// spans of the query (the baseline when comparing) and cspans of the
// comparison.
// requestsURL is the Events page of the spans whose own samples ran the
// function name, grouped by span name, in this page's range and of the
// query's service when it names one.
function requestsURL(name) {
  const svc = /service_name="([^"]*)"/.exec(state.query);
  const p = new URLSearchParams({
    q: svc ? `{ resource.service.name = "${svc[1]}" }` : "{ }",
    running: exact(name), by: "name", calc: "count,sum(cpu),p99(duration)",
    from: state.from, until: state.until,
  });
  if (state.tenant) p.set("tenant", state.tenant);
  return "events.html?" + p;
}

function renderFilters(counts = {}) {
  const el = $("filters");
  el.innerHTML = "";
  const spansText = (k) => `samples of ${counts[k] === undefined ? "the" : counts[k]} spans that ${state[k]} selects`;
  for (const k of ["focus", "ignore", "spans", "cspans"]) {
    if (!state[k] || (k === "cspans" && !state.compare)) continue;
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.dataset.filter = k;
    if (k === "spans") chip.textContent = (state.compare ? "baseline: " : "") + spansText(k);
    else if (k === "cspans") chip.textContent = "comparison: " + spansText(k);
    else chip.textContent = `${k} ${state[k]}`;
    const x = document.createElement("button");
    x.textContent = "×";
    x.title = "Remove this filter";
    x.onclick = () => {
      state[k] = "";
      if (k === "cspans") $("compare-spans").value = "";
      load(true);
    };
    chip.append(x);
    el.append(chip);
  }
}

// The filter builder: a label, an operator and a value (offered from what
// the server knows) become one more matcher of the query.
$("b-name").onchange = async () => {
  const dl = $("b-values");
  dl.innerHTML = "";
  if (!$("b-name").value) return;
  try {
    // Values of the selected profile type only: other types may come
    // from other services.
    const params = { from: state.from, until: state.until };
    if ($("ptype").value) params.query = $("ptype").value;
    const vals = await api(`/api/v1/label/${encodeURIComponent($("b-name").value)}/values`, params);
    for (const v of vals.slice(0, 500)) {
      const o = document.createElement("option");
      o.value = v;
      dl.append(o);
    }
  } catch (e) { /* typing a value still works */ }
};
$("b-add").onclick = () => {
  const name = $("b-name").value, op = $("b-op").value, value = $("b-value").value;
  if (!name) return;
  const text = $("query").value.trim() || state.query;
  const open = text.indexOf("{");
  const head = open >= 0 ? text.slice(0, open) : text;
  const inner = open >= 0 ? text.slice(open + 1).replace(/}\s*$/, "").trim() : "";
  const matcher = `${name}${op}${JSON.stringify(value)}`;
  state.query = `${head}{${inner ? inner.replace(/,\s*$/, "") + ", " : ""}${matcher}}`;
  $("query").value = state.query;
  $("b-value").value = "";
  state.zoom = [];
  load(true);
};

// loadGroupLabels offers the label names of the tenant in view, in the
// chart's group-by and in the filter builder; it runs again when the
// tenant changes.
async function loadGroupLabels() {
  const sel = $("group-by");
  for (const target of [sel, $("b-name")]) target.replaceChildren(target.options[0]);
  try {
    const names = await api("/api/v1/labels", { from: state.from, until: state.until });
    for (const n of names.filter((n) => !n.startsWith("__"))) {
      for (const target of [sel, $("b-name")]) {
        const o = document.createElement("option");
        o.value = o.textContent = n;
        target.append(o);
      }
    }
  } catch (e) { /* the chart stays ungrouped */ }
  sel.value = state.group;
  sel.onchange = () => { state.group = sel.value; load(true); };
}

// renderSandwich shows the callers and callees of state.sandwich, merged
// over the whole flame graph, in place of the graph.
function renderSandwich() {
  const on = !!(state.sandwich && flame.root);
  $("sandwich").hidden = !on;
  $("flame").hidden = on || !!(diffGraph && state.sides);
  if (!on) return;
  const { callers, callees } = sandwich(flame.root, state.sandwich);
  $("sandwich-name").textContent = state.sandwich;
  const unit = flame.fg.unit;
  callersGraph.set({ unit, root: sortTree(callers) }, []);
  calleesGraph.set({ unit, root: sortTree(callees) }, []);
}
$("compare-toggle").onclick = () => {
  $("compare-row").dataset.open = "1";
  $("compare-row").hidden = false;
  if (!$("compare-query").value) $("compare-query").value = state.query;
  $("compare-query").focus();
};
for (const id of ["compare-query", "compare-from", "compare-until", "compare-spans"]) {
  $(id).addEventListener("keydown", (e) => { if (e.key === "Enter") runCompare(); });
}
$("side-by-side").onchange = runCompare;
function runCompare() {
  state.compare = $("compare-query").value.trim();
  state.cfrom = $("compare-from").value.trim();
  state.cuntil = $("compare-until").value.trim();
  state.cspans = $("compare-spans").value.trim();
  state.sides = $("side-by-side").checked ? "1" : "";
  state.zoom = [];
  load(true);
}
$("compare-close").onclick = () => {
  Object.assign(state, { compare: "", cfrom: "", cuntil: "", cspans: "", sides: "" });
  $("compare-row").dataset.open = "";
  load(true);
};
$("sandwich-close").onclick = () => { state.sandwich = ""; renderSandwich(); writeURL(true); };

const chart = new SeriesChart($("chart"), $("chart-legend"), (from, until) => {
  state.from = String(Math.floor(from / 1000));
  state.until = String(Math.ceil(until / 1000));
  state.zoom = [];
  syncControls();
  load(true);
});
hook.chart = () => ({ readout: chart.readout(), axes: chart.axes() });

const kinds = [
  ["CPU", /^(process_cpu|cpu|wall)/], ["Memory", /^memory/], ["Goroutines", /^goroutine/],
  ["Locks", /^(mutex|block)/],
];

async function loadTypes() {
  let types = [];
  try {
    types = await api("/api/v1/profile_types", { from: state.from, until: state.until });
  } catch (e) { /* shown by load() */ }
  const sel = $("ptype");
  sel.innerHTML = "";
  const groups = new Map();
  for (const t of types) {
    const kind = (kinds.find(([, re]) => re.test(t)) || ["Other"])[0];
    if (!groups.has(kind)) groups.set(kind, []);
    groups.get(kind).push(t);
  }
  for (const [kind, ts] of groups) {
    const og = document.createElement("optgroup");
    og.label = kind;
    for (const t of ts) {
      const o = document.createElement("option");
      o.value = t;
      const [name, sample, unit] = t.split(":");
      o.textContent = `${name} ${sample} (${unit})`;
      og.append(o);
    }
    sel.append(og);
  }
  if (!state.query && types.length) {
    state.query = (types.find((t) => t.startsWith("process_cpu:cpu:")) || types[0]) + "{}";
  }
  const cur = state.query.split("{")[0].trim();
  if (types.includes(cur)) sel.value = cur;
  return types;
}

function syncControls() {
  $("query").value = state.query;
  syncRange(state);
  $("search").value = state.search;
  $("compare-query").value = state.compare;
  $("compare-from").value = state.cfrom;
  $("compare-until").value = state.cuntil;
  $("compare-spans").value = state.cspans;
  $("side-by-side").checked = !!state.sides;
  $("table-filter").value = state.filter;
  $("direction").textContent = state.dir === "flame" ? "Icicle" : "Flame";
  document.documentElement.classList.toggle("dark", state.theme === "dark" ||
    (!state.theme && matchMedia("(prefers-color-scheme: dark)").matches));
}


let topEntries = [];
let loadSeq = 0;

async function load(push) {
  writeURL(push);
  const seq = ++loadSeq;
  hook.ready = false;
  const status = $("status");
  status.className = "";
  status.textContent = "Loading…";
  document.body.classList.add("loading");
  $("query-error").hidden = true;
  const range = { from: state.from, until: state.until };
  const filters = {};
  if (state.focus) filters.focus = state.focus;
  if (state.ignore) filters.ignore = state.ignore;
  if (state.spans) filters.spans = state.spans;
  const q = { query: state.query, ...range, ...filters };
  renderFilters();
  $("download").href = "/api/v1/query/pprof?" + new URLSearchParams({ query: state.query.replace(/^[^{]*/, ""), ...range, ...filters });
  try {
    const comparing = !!state.compare;
    // Each side keeps the samples of the spans its own span filter
    // selects, if it has one.
    const cq = { query: state.compare, from: state.cfrom || state.from, until: state.cuntil || state.until };
    if (state.cspans) cq.spans = state.cspans;
    const sideSpans = {};
    if (state.spans) sideSpans.baseline_spans = state.spans;
    if (state.cspans) sideSpans.comparison_spans = state.cspans;
    const [fg, top, series, diff, right] = await Promise.all([
      api("/api/v1/query/flamegraph", { ...q, max_nodes: state.nodes || 4096 }),
      api("/api/v1/query/top", { ...q, sort: state.sort }),
      api("/api/v1/query/series", state.group ? { ...q, group_by: state.group } : q),
      comparing ? api("/api/v1/query/diff", {
        baseline_query: q.query, baseline_from: q.from, baseline_until: q.until,
        comparison_query: cq.query, comparison_from: cq.from, comparison_until: cq.until,
        ...sideSpans, max_nodes: state.nodes || 4096,
      }) : null,
      comparing && state.sides ? api("/api/v1/query/flamegraph", { ...cq, max_nodes: state.nodes || 4096 }) : null,
    ]);
    if (seq !== loadSeq) return;
    renderFilters({ spans: fg.spans && fg.spans.spans, cspans: diff && diff.comparisonSpans ? diff.comparisonSpans.spans : undefined });
    renderCompare(fg, diff, right);
    const t0 = performance.now();
    flame.flame = state.dir === "flame";
    flame.search = state.search;
    flame.set(diffGraph || fg, state.zoom);
    hook.renderMillis = performance.now() - t0;
    hook.drawnFrames = flame.frames.length;
    hook.nodes = flame.nodeCount;
    renderCrumbs();
    topEntries = top.entries;
    renderTable(fg.unit, fg.total);
    chart.set(series, parseTime(state.from), parseTime(state.until), fg.unit);
    $("empty").hidden = !!fg.total;
    if (!fg.total) {
      status.textContent = "No data: nothing matches this query in this time range.";
    } else {
      status.textContent = `${formatValue(fg.total, fg.unit)} in all` +
        (fg.truncated ? ` · showing the ${fg.maxNodes} largest of ${fg.numNodes} frames; the rest are folded into "other"` : "");
    }
    renderSearchShare();
    renderSandwich();
    hook.error = null;
  } catch (e) {
    if (seq !== loadSeq) return;
    hook.error = e.message;
    $("empty").hidden = true;
    flame.set(null, []);
    $("top").tBodies[0].innerHTML = "";
    if (e.type === "bad_data") {
      $("query-error").textContent = e.message;
      $("query-error").hidden = false;
      status.textContent = "";
    } else if (e.type === "forbidden") {
      // The token may not read this tenant, or lacks the read scope:
      // the server's reason says which.
      status.className = "error";
      status.textContent = "Not allowed: " + e.message;
    } else {
      status.className = "error";
      status.textContent = "The server could not answer: " + e.message;
    }
  }
  document.body.classList.remove("loading");
  hook.loads++;
  hook.ready = true;
}

function renderCrumbs() {
  const nav = $("crumbs");
  nav.innerHTML = "";
  const all = document.createElement("a");
  all.textContent = "all";
  all.onclick = () => flame.zoom(null);
  nav.append(all);
  state.zoom.forEach((name, i) => {
    const a = document.createElement("a");
    a.textContent = name;
    a.title = name;
    a.onclick = () => { flame.zoomTo(state.zoom.slice(0, i + 1)); flame.hooks.onZoom(state.zoom.slice(0, i + 1)); };
    nav.append(a);
  });
}

function renderTable(unit, total) {
  const tbody = $("top").tBodies[0];
  tbody.innerHTML = "";
  const f = state.filter.toLowerCase();
  const rows = topEntries.filter((e) => !f || e.name.toLowerCase().includes(f)).slice(0, 500);
  for (const e of rows) {
    const tr = document.createElement("tr");
    tr.dataset.name = e.name;
    const cells = [`${formatValue(e.self, unit)} ${percent(e.selfShare)}`, `${formatValue(e.total, unit)} ${percent(e.totalShare)}`, e.name];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = c;
      tr.append(td);
    }
    tr.onmouseenter = () => { flame.highlight = e.name; flame.draw(); };
    tr.onclick = () => { state.sandwich = e.name; renderSandwich(); writeURL(true); };
    tr.title = "Click for callers and callees";
    tr.onmouseleave = () => { flame.highlight = null; flame.draw(); };
    tbody.append(tr);
  }
  for (const th of $("top").tHead.rows[0].cells) th.classList.toggle("sorted", th.dataset.sort === state.sort);
}

function renderSearchShare() {
  $("search-share").textContent = state.search && flame.matchedShare !== null ? percent(flame.matchedShare) + " of total" : "";
}

// Completions: the query with one more matcher, for each label value the
// server knows in this range.
let completionTimer;
async function complete() {
  clearTimeout(completionTimer);
  completionTimer = setTimeout(async () => {
    const text = $("query").value;
    const open = text.lastIndexOf("{");
    if (open < 0) return;
    const inner = text.slice(open + 1).replace(/}\s*$/, "").trim();
    const base = text.slice(0, open + 1) + (inner ? inner.replace(/,\s*$/, "") + ", " : "");
    try {
      const names = (await api("/api/v1/labels", { from: state.from, until: state.until }))
        .filter((n) => !n.startsWith("__") && !inner.includes(n + "="));
      const dl = $("completions");
      dl.innerHTML = "";
      for (const n of names.slice(0, 20)) {
        const vals = await api(`/api/v1/label/${encodeURIComponent(n)}/values`, { from: state.from, until: state.until });
        for (const v of vals.slice(0, 20)) {
          const o = document.createElement("option");
          o.value = `${base}${n}="${v}"}`;
          dl.append(o);
        }
      }
    } catch (e) { /* completions are a convenience */ }
  }, 250);
}

$("query").addEventListener("input", complete);
$("query").addEventListener("keydown", (e) => { if (e.key === "Enter") run(); });
$("run").onclick = run;
function run() {
  state.query = $("query").value.trim();
  state.zoom = [];
  load(true);
}
$("ptype").onchange = () => {
  const text = $("query").value.trim();
  const rest = text.includes("{") ? text.slice(text.indexOf("{")) : "{}";
  // A comparison of the same selector (another range, other spans)
  // follows the profile type.
  if (state.compare && state.compare === state.query) {
    state.compare = $("ptype").value + rest;
    $("compare-query").value = state.compare;
  }
  state.query = $("ptype").value + rest;
  $("query").value = state.query;
  state.zoom = [];
  load(true);
};
bindRange(state, () => load(true));
$("search").addEventListener("input", () => {
  state.search = $("search").value;
  flame.search = state.search;
  flame.draw();
  renderSearchShare();
  writeURL(false);
});
$("table-filter").addEventListener("input", () => {
  state.filter = $("table-filter").value;
  renderTable(flame.fg ? flame.fg.unit : "", 0);
  writeURL(false);
});
for (const th of $("top").tHead.rows[0].cells) {
  th.onclick = () => { state.sort = th.dataset.sort; load(false); };
}
$("direction").onclick = () => {
  state.dir = state.dir === "flame" ? "icicle" : "flame";
  syncControls();
  flame.flame = state.dir === "flame";
  flame.draw();
  writeURL(false);
};
$("theme").onclick = () => {
  const dark = document.documentElement.classList.contains("dark");
  state.theme = dark ? "light" : "dark";
  syncControls();
  flame.draw();
  chart.draw();
  writeURL(false);
};
window.addEventListener("popstate", async () => {
  const tenant = state.tenant;
  readURL();
  if (state.tenant !== tenant) await useTenant();
  syncControls();
  await load(false);
});

// The download goes through session.request like every other request: a
// plain link could carry neither the token nor the tenant.
$("download").onclick = async (e) => {
  e.preventDefault();
  const status = $("status");
  try {
    const resp = await session.request($("download").href);
    if (!resp.ok) throw new Error(await session.errorText(resp));
    const url = URL.createObjectURL(await resp.blob());
    const a = document.createElement("a");
    a.href = url;
    a.download = $("download").getAttribute("download");
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  } catch (err) {
    status.className = "error";
    status.textContent = "The download failed: " + err.message;
  }
};

// who is the answer of whoami, for the tenant picker (pickers.js).
let who = null;

// useTenant makes state.tenant the tenant of the requests to come, and
// loads what depends on it.
async function useTenant() {
  session.setTenant(state.tenant);
  if (who) $("tenant").value = state.tenant || who.tenant;
  for (const page of ["targets.html", "events.html"]) {
    const a = document.querySelector(`nav.pages a[href^="${page}"]`);
    a.href = page + (state.tenant ? "?" + new URLSearchParams({ tenant: state.tenant }) : "");
  }
  await loadTypes();
  await loadGroupLabels();
}

$("tenant").onchange = async () => {
  state.tenant = $("tenant").value;
  state.zoom = [];
  state.sandwich = "";
  await useTenant();
  syncControls();
  await load(true);
};

readURL();
syncControls();
try {
  who = await session.whoami();
} catch (e) {
  who = { auth: false, name: "", tenants: [], scopes: [], tenant: "" };
  $("status").className = "error";
  $("status").textContent = "The server could not say who this is: " + e.message;
}
showTenants(who, state, hook);
// Signing in again (the token was revoked, say) may change the tenants.
session.onSignIn(async () => { who = await session.whoami(); showTenants(who, state, hook); session.setTenant(state.tenant); });
await useTenant();
syncControls();
await load(false);
