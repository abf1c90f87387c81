// The Targets page: what `hearth server --config` scrapes and how each
// scrape went, as GET /api/v1/targets reports it, refreshed every few
// seconds.
import * as session from "./session.js";

const $ = (id) => document.getElementById(id);

// tenant is not this page's: it lists the targets of every tenant the
// token may read. It is carried so that the link back to the profiles
// keeps the tenant they showed.
const state = { filter: "", unhealthy: "", open: "", tenant: "" };
const p = new URLSearchParams(location.search);
for (const k of Object.keys(state)) if (p.has(k)) state[k] = p.get(k);

function writeURL() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) if (v) q.set(k, v);
  const url = "?" + q.toString();
  if (url !== location.search) history.replaceState(null, "", url);
}

document.documentElement.classList.toggle("dark", p.get("theme") === "dark" ||
  (!p.get("theme") && matchMedia("(prefers-color-scheme: dark)").matches));

const hook = { loads: 0, error: null, targets: [] };
window.__hearth = hook;

function ago(iso) {
  if (!iso || iso.startsWith("0001-")) return "never";
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (s < 1) return "just now";
  if (s < 90) return Math.round(s) + "s ago";
  if (s < 5400) return Math.round(s / 60) + "m ago";
  return Math.round(s / 3600) + "h ago";
}

function seconds(s) {
  if (s == null) return "";
  return s < 1 ? (s * 1000).toFixed(1) + " ms" : s.toFixed(2) + " s";
}

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}

function labelChips(labels) {
  const span = el("span", { class: "chips" });
  for (const [k, v] of Object.entries(labels || {}).sort()) {
    if (k.startsWith("__")) continue;
    span.append(el("span", { class: "chip" }, `${k}="${v}"`));
  }
  return span;
}

// The profiles of one target on the main page, in the target's tenant
// when that is not the one the main page shows without being told.
function profilesLink(t) {
  const ls = t.labels || {};
  const ms = ["job", "instance"].filter((k) => ls[k]).map((k) => `${k}="${ls[k].replace(/["\\]/g, "\\$&")}"`);
  const q = { query: `{${ms.join(", ")}}` };
  if (t.tenant && t.tenant !== who.tenant) q.tenant = t.tenant;
  return "./?" + new URLSearchParams(q);
}

// The first failing endpoint's error, and how many more fail: a dead
// target fails every endpoint the same way. The full text is the title.
function shortError(t) {
  const down = (t.endpoints || []).filter((e) => e.health === "down" && e.lastError);
  if (down.length === 0) return t.lastError || "";
  const first = `${down[0].name}: ${down[0].lastError}`;
  return down.length === 1 ? first : `${first} (and ${down.length - 1} more endpoints)`;
}

function matches(t) {
  if (state.unhealthy && t.health === "up") return false;
  if (!state.filter) return true;
  const hay = [t.scrapePool, t.scrapeUrl, t.lastError, ...Object.entries(t.labels || {}).map(([k, v]) => `${k}="${v}"`)].join(" ").toLowerCase();
  return hay.includes(state.filter.toLowerCase());
}

function render(targets) {
  const main = $("targets");
  main.replaceChildren();
  const pools = new Map();
  for (const t of targets) {
    if (!pools.has(t.scrapePool)) pools.set(t.scrapePool, []);
    pools.get(t.scrapePool).push(t);
  }
  if (pools.size === 0) {
    main.append(el("div", { class: "empty" }, el("b", {}, "No scrape targets"),
      "Hearth scrapes Go pprof endpoints listed under scrape_configs in the file given to hearth server --config; see the README's section on scraping."));
    return;
  }
  for (const [pool, ts] of [...pools].sort((a, b) => a[0].localeCompare(b[0]))) {
    const shown = ts.filter(matches);
    const up = ts.filter((t) => t.health === "up").length;
    const sec = el("section", { class: "pool" });
    sec.append(el("h2", {}, pool, el("span", { class: "muted-label" }, ` ${up}/${ts.length} up`)));
    if (shown.length === 0) {
      sec.append(el("div", { class: "muted-label" }, "no target matches the filter"));
      main.append(sec);
      continue;
    }
    const tbody = el("tbody");
    for (const t of shown.sort((a, b) => a.scrapeUrl.localeCompare(b.scrapeUrl))) {
      const key = pool + " " + t.scrapeUrl;
      const open = state.open === key;
      const row = el("tr", { class: "target " + t.health, "data-key": key },
        el("td", {}, el("button", { class: "disclose", title: "Each profile endpoint", "aria-expanded": String(open), onclick: () => { state.open = open ? "" : key; writeURL(); render(hook.targets); } }, open ? "▾" : "▸"),
          el("a", { href: profilesLink(t), title: "Profiles of this target" }, t.scrapeUrl)),
        el("td", {}, el("span", { class: "health " + t.health }, t.health)),
        el("td", {}, labelChips(t.labels)),
        el("td", { title: t.lastScrape || "" }, ago(t.lastScrape)),
        el("td", {}, seconds(t.lastScrapeDuration)),
        el("td", { class: "error", title: t.lastError || "" }, shortError(t)));
      tbody.append(row);
      if (open) {
        const inner = el("tbody");
        for (const e of t.endpoints || []) {
          inner.append(el("tr", {},
            el("td", {}, e.name), el("td", {}, el("span", { class: "health " + e.health }, e.health)),
            el("td", {}, e.scrapeUrl), el("td", { title: e.lastScrape || "" }, ago(e.lastScrape)),
            el("td", {}, seconds(e.lastScrapeDuration)), el("td", { class: "error" }, e.lastError || "")));
        }
        tbody.append(el("tr", { class: "detail" }, el("td", { colspan: "6" },
          el("table", { class: "endpoints" }, el("thead", {}, el("tr", {}, ...["Profile", "State", "URL", "Last scrape", "Duration", "Error"].map((h) => el("th", {}, h)))), inner))));
      }
    }
    sec.append(el("table", { class: "targets" },
      el("thead", {}, el("tr", {}, ...["Endpoint", "State", "Labels", "Last scrape", "Duration", "Error"].map((h) => el("th", {}, h)))), tbody));
    main.append(sec);
  }
}

let loading = false;
async function load() {
  // A load waiting for the sign-in form is enough; the timer's would queue.
  if (loading) return;
  loading = true;
  try {
    const resp = await session.request("api/v1/targets");
    if (!resp.ok) throw new Error(await session.errorText(resp));
    const body = await resp.json();
    if (body.status !== "success") throw new Error(body.error || resp.statusText);
    hook.targets = body.data.activeTargets || [];
    hook.error = null;
    $("status").textContent = `${hook.targets.length} targets · updated ${new Date().toLocaleTimeString()}`;
    $("status").className = "";
    render(hook.targets);
  } catch (e) {
    hook.error = String(e.message || e);
    $("status").textContent = "Could not load targets: " + hook.error;
    $("status").className = "error";
  }
  loading = false;
  hook.loads++;
}

$("t-filter").value = state.filter;
$("t-unhealthy").checked = !!state.unhealthy;
$("t-filter").oninput = () => { state.filter = $("t-filter").value; writeURL(); render(hook.targets); };
$("t-unhealthy").onchange = () => { state.unhealthy = $("t-unhealthy").checked ? "1" : ""; writeURL(); render(hook.targets); };
$("t-reload").onclick = async () => {
  const resp = await session.request("-/reload", { method: "POST" });
  const text = resp.ok ? "" : await session.errorText(resp);
  $("status").textContent = resp.ok ? "Configuration reloaded" : "Reload failed: " + text;
  $("status").className = resp.ok ? "" : "error";
  if (resp.ok) load();
};

for (const a of document.querySelectorAll('a[href="./"]')) {
  if (state.tenant) a.href = "./?" + new URLSearchParams({ tenant: state.tenant });
}
let who = { tenant: "" };
try {
  who = await session.whoami();
  session.showIdentity(who);
} catch (e) { /* load() says what is wrong */ }
session.onSignIn(async () => { who = await session.whoami(); session.showIdentity(who); });
load();
setInterval(load, 5000);
