// The Events page in headless Chromium against a real `hearth server`:
// events sent as JSON lines (a shop whose requests from one region are
// slow) and as an OTLP/JSON trace, then the query builder, the charts,
// the heatmap's compare, the table's example traces, the waterfall, the
// address as state, and errors.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repo, freePort, buildHearth, startServer, stopServer, launchBrowser } from "../harness.mjs";

let server, base, browser, dataDir, binDir;
let stockT0; // when the first of the stock service's requests started, in Unix ms

// A seeded generator, so that every run sends the same events.
function mulberry32(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const hex = (rnd, n) => Array.from({ length: n }, () => Math.floor(rnd() * 16).toString(16)).join("");

const REGIONS = ["us-east-1", "eu-west-3", "ap-south-1"];
const ROUTES = ["/cart", "/home", "/search"];
const SLOW = "eu-west-3";
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const LINKED = "11112222333344445555666677778888";

// pprof encodes a CPU profile (samples/count, cpu/nanoseconds) by hand:
// stacks are lists of function names, leaf first; labels are per-sample
// string labels. Enough of profile.proto for Hearth's ingest.
function pprof({ time, samples }) {
  const strings = [""];
  const str = (s) => { let i = strings.indexOf(s); if (i < 0) { i = strings.length; strings.push(s); } return i; };
  const varint = (n) => { const b = []; n = BigInt(n); do { let x = Number(n & 0x7fn); n >>= 7n; if (n) x |= 0x80; b.push(x); } while (n); return b; };
  const field = (num, bytes) => [...varint((num << 3) | 2), ...varint(bytes.length), ...bytes];
  const int = (num, n) => [...varint(num << 3), ...varint(n)];
  const packed = (num, ns) => field(num, ns.flatMap(varint));
  const fns = new Map();
  const out = [];
  for (const [t, u] of [["samples", "count"], ["cpu", "nanoseconds"]]) out.push(...field(1, [...int(1, str(t)), ...int(2, str(u))]));
  for (const s of samples) {
    for (const f of s.stack) if (!fns.has(f)) fns.set(f, fns.size + 1);
    const labels = Object.entries(s.labels || {}).flatMap(([k, v]) => field(3, [...int(1, str(k)), ...int(2, str(v))]));
    out.push(...field(2, [...packed(1, s.stack.map((f) => fns.get(f))), ...packed(2, [s.count, s.count * 10_000_000]), ...labels]));
  }
  for (const [name, id] of fns) {
    out.push(...field(4, [...int(1, id), ...int(3, 0x1000 + id), ...field(4, [...int(1, id), ...int(2, 10)])]));
    out.push(...field(5, [...int(1, id), ...int(2, str(name)), ...int(3, str(name)), ...int(4, str("pay.go"))]));
  }
  for (const s of strings) out.push(...field(6, [...Buffer.from(s)]));
  out.push(...int(9, time * 1_000_000_000), ...int(10, 10_000_000_000));
  out.push(...field(11, [...int(1, str("cpu")), ...int(2, str("nanoseconds"))]), ...int(12, 10_000_000));
  return Buffer.from(out);
}

before(async () => {
  const built = buildHearth();
  binDir = built.dir;
  dataDir = mkdtempSync(join(tmpdir(), "hearth-ui-events-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = await startServer(built.bin, port, dataDir, []);

  // 900 requests over the last 20 minutes: every region and route alike,
  // except that eu-west-3's take about a second and the rest tens of ms.
  const rnd = mulberry32(42);
  const now = Date.now();
  const lines = [];
  for (let i = 0; i < 900; i++) {
    const region = REGIONS[Math.floor(rnd() * 3)];
    const route = ROUTES[Math.floor(rnd() * 3)];
    const ms = region === SLOW ? 900 + rnd() * 700 : 5 + rnd() * 55;
    lines.push(JSON.stringify({
      time: new Date(now - 20 * 60e3 + (i / 900) * 19.5 * 60e3).toISOString(),
      "service.name": "shop", name: "GET " + route, duration_ms: ms,
      http: { route }, region, "user.id": `u-${i}`,
      trace_id: hex(rnd, 32), span_id: hex(rnd, 16),
    }));
  }
  let r = await fetch(`${base}/api/v1/events`, { method: "POST", headers: { "Content-Type": "application/x-ndjson" }, body: lines.join("\n") });
  const sent = await r.text();
  assert.equal(r.status, 200, sent);
  assert.equal(JSON.parse(sent).accepted, 900, sent);

  // One trace over two services: a request, its database call, and a
  // payment that fails after a retry, with a link to another trace.
  const t0 = BigInt(now - 5 * 60e3) * 1000000n;
  const ns = (ms) => String(t0 + BigInt(Math.round(ms * 1e6)));
  const str = (k, v) => ({ key: k, value: { stringValue: v } });
  const span = (id, parent, name, kind, from, to, extra = {}) => ({
    traceId: TRACE, spanId: id, ...(parent ? { parentSpanId: parent } : {}), name, kind,
    startTimeUnixNano: ns(from), endTimeUnixNano: ns(to), ...extra,
  });
  const body = {
    resourceSpans: [
      { resource: { attributes: [str("service.name", "frontend")] }, scopeSpans: [{ spans: [
        span("00000000000000a1", null, "GET /checkout", 2, 0, 420, { attributes: [str("http.route", "/checkout")] }),
        span("00000000000000a2", "00000000000000a1", "SELECT cart", 3, 10, 60, { attributes: [str("db.system", "postgresql")] }),
      ] }] },
      { resource: { attributes: [str("service.name", "payments")] }, scopeSpans: [{ spans: [
        span("00000000000000b1", "00000000000000a1", "charge", 2, 80, 400, {
          attributes: [str("card.brand", "visa")],
          status: { code: 2, message: "card declined" },
          events: [{ timeUnixNano: ns(250), name: "retry", attributes: [{ key: "attempt", value: { intValue: "2" } }] }],
          links: [{ traceId: LINKED, spanId: "00000000000000c1" }],
        }),
        span("00000000000000b2", "00000000000000b1", "POST /authorize", 3, 100, 380),
      ] }] },
    ],
  };
  r = await fetch(`${base}/v1/traces`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.text());

  // The CPU profile of payments while charge ran: 30 samples in charge's
  // tokenize, 7 in another span, 5 in none.
  const sec = Math.floor((now - 5 * 60e3) / 1000);
  const prof = pprof({ time: sec, samples: [
    { stack: ["pay.tokenize", "pay.charge", "main.main"], count: 30, labels: { span_id: "00000000000000b1" } },
    { stack: ["pay.charge", "main.main"], count: 7, labels: { span_id: "00000000000000ff" } },
    { stack: ["main.main"], count: 5 },
  ] });
  r = await fetch(`${base}/ingest?name=payments{env=test}&format=pprof&from=${sec}&until=${sec + 10}`, { method: "POST", body: prof });
  assert.equal(r.status, 200, await r.text());

  // A stock service whose code is known span by span: over the last ten
  // minutes, 10 slow item requests (2 s) whose samples ran stock.scan, 20
  // fast ones (20 ms) that ran stock.lookup, and 15 health checks (5 ms)
  // without samples. One profile holds every sample.
  const stock = [];
  stockT0 = now - 10 * 60e3;
  for (let i = 0; i < 45; i++) {
    const kind = i % 3 === 0 && i < 30 ? "slow" : i < 30 ? "fast" : "health";
    stock.push({
      time: new Date(stockT0 + i * 12e3).toISOString(), "service.name": "stock",
      name: kind === "health" ? "GET /health" : "GET /item", duration_ms: { slow: 2000, fast: 20, health: 5 }[kind],
      tier: kind === "slow" ? "enterprise" : "free", "request.kind": kind,
      trace_id: "5f0c" + String(i).padStart(28, "0"), span_id: "57" + String(i).padStart(14, "0"),
    });
  }
  r = await fetch(`${base}/api/v1/events`, { method: "POST", headers: { "Content-Type": "application/x-ndjson" }, body: stock.map((e) => JSON.stringify(e)).join("\n") });
  assert.equal(r.status, 200, await r.text());
  const stockSec = Math.floor((now - 5 * 60e3) / 1000);
  const stockProf = pprof({ time: stockSec, samples: stock.filter((e) => e["request.kind"] !== "health").map((e) => e["request.kind"] === "slow"
    ? { stack: ["stock.scan", "main.serve"], count: 3, labels: { span_id: e.span_id } }
    : { stack: ["stock.lookup", "main.serve"], count: 2, labels: { span_id: e.span_id } }) });
  r = await fetch(`${base}/ingest?name=stock{env=test}&format=pprof&from=${stockSec}&until=${stockSec + 10}`, { method: "POST", body: stockProf });
  assert.equal(r.status, 200, await r.text());
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  await stopServer(server);
  for (const d of [dataDir, binDir]) if (d) rmSync(d, { recursive: true, force: true });
});

const SHOP = '{ resource.service.name = "shop" }';

// newPage opens a tab that collects the page's errors.
async function newPage() {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(15000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  return { page, errors };
}

// open opens the Events page with params in its address.
async function open(params = {}) {
  const { page, errors } = await newPage();
  const q = new URLSearchParams(params).toString();
  await page.goto(`${base}/events.html${q ? "?" + q : ""}`);
  await ready(page, 1);
  return { page, errors };
}

// openProfiles opens the profiles page with params in its address.
async function openProfiles(params) {
  const { page, errors } = await newPage();
  await page.goto(`${base}/?` + new URLSearchParams(params));
  await page.waitForFunction(() => window.__hearth && window.__hearth.ready);
  return { page, errors };
}

// ready waits until the page has finished its n-th update.
async function ready(page, n) {
  await page.waitForFunction((n) => window.__hearth && window.__hearth.ready && window.__hearth.loads >= n, n);
}
const loads = (page) => page.evaluate(() => window.__hearth.loads);

test("group by with the builder: a chart per calculation, with axes and a hover read-out, and the table", async () => {
  const { page, errors } = await open({ q: SHOP });
  let n = await loads(page);
  await page.selectOption("#by-add", "span.region");
  await ready(page, ++n);
  await page.selectOption("#calc-fn", "p95");
  await page.selectOption("#calc-field", "duration");
  await page.click("#calc-add");
  await ready(page, ++n);
  assert.deepEqual(await page.$$eval("#by-chips .chip", (cs) => cs.map((c) => c.dataset.value)), ["span.region"]);
  assert.deepEqual(await page.$$eval("#calc-chips .chip", (cs) => cs.map((c) => c.dataset.value)), ["count", "p99(duration)", "p95(duration)"]);

  // Order by p99: the slow region first.
  await page.click('#groups th[data-calc="p99(duration)"]');
  await ready(page, ++n);
  const rows = await page.$$eval("#groups tbody tr.group", (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));
  assert.equal(rows.length, 3);
  assert.equal(rows[0][1], SLOW);
  assert.match(rows[0][3], /^1(\.\d+)? s$/, `p99 of ${SLOW} is ${rows[0][3]}`);
  assert.match(rows[1][3], /^\d+(\.\d+)? ms$/);
  assert.equal(rows.reduce((s, r) => s + Number(r[2]), 0), 900);
  assert.match(page.url(), /order=p99/);

  // One chart per calculation, with a line per group and labelled axes.
  const charts = await page.evaluate(() => window.__hearth.charts());
  assert.deepEqual(charts.map((c) => c.calc), ["count", "p99(duration)", "p95(duration)"]);
  const p99 = charts[1];
  assert.ok(p99.axes[0].length >= 3, `time axis ticks: ${p99.axes[0]}`);
  assert.ok(p99.axes[1].some((t) => / (ms|s)$/.test(t)), `duration axis ticks: ${p99.axes[1]}`);
  // A line per group, in the table's order.
  assert.deepEqual(p99.readout.slice(1).map((r) => r.label), rows.map((r) => r[1]));

  // Hover near the end of the range, where every region has requests.
  const over = await page.locator('.chart-card[data-calc="p99(duration)"] .u-over').boundingBox();
  await page.mouse.move(over.x + over.width * 0.9, over.y + over.height / 2);
  await page.waitForFunction(() => window.__hearth.charts()[1].readout[0].value !== "–");
  const read = (await page.evaluate(() => window.__hearth.charts()))[1].readout;
  assert.match(read[0].value, /\d\d:\d\d/);
  assert.match(read.find((r) => r.label === SLOW).value, /^1(\.\d+)? s$/);
  // The charts move their cursors together: the count chart reads out too.
  const count = (await page.evaluate(() => window.__hearth.charts()))[0].readout;
  assert.ok(count.slice(1).every((r) => /^\d+$/.test(r.value)), JSON.stringify(count));
  assert.deepEqual(errors, []);
  await page.close();
});

test("the filter completes field names, operators and values", async () => {
  const { page } = await open();
  await page.fill("#filter", "");
  await page.type("#filter", "{ span.reg");
  await page.waitForSelector('#filter-complete li:has-text("span.region")');
  await page.keyboard.press("Enter");
  assert.equal(await page.inputValue("#filter"), "{ span.region ");
  await page.waitForSelector('#filter-complete li:has-text("!=")');
  await page.keyboard.press("Enter"); // the first operator, =
  assert.equal(await page.inputValue("#filter"), "{ span.region = ");
  await page.waitForSelector(`#filter-complete li:has-text("${SLOW}")`);
  const offered = await page.$$eval("#filter-complete li span:first-child", (s) => s.map((x) => x.textContent));
  assert.deepEqual([...offered].sort(), REGIONS.map((r) => JSON.stringify(r)).sort());
  await page.click(`#filter-complete li:has-text("${SLOW}")`);
  assert.equal(await page.inputValue("#filter"), `{ span.region = "${SLOW}" `);
  const n = await loads(page);
  await page.type("#filter", "}");
  await page.keyboard.press("Escape");
  await page.keyboard.press("Enter");
  await ready(page, n + 1);
  assert.equal(await page.evaluate(() => window.__hearth.state.q), `{ span.region = "${SLOW}" }`);
  assert.match(await page.textContent("#status"), /^[\d,]+ of [\d,]+ events matched/);
  await page.close();
});

test("a box dragged on the heatmap runs compare: the slow region ranks first", async () => {
  const { page, errors } = await open({ q: SHOP, by: "span.region" });
  const g = await page.evaluate(() => window.__hearth.heatmapGeometry());
  assert.ok(g && g.width > 100, "no heatmap drawn");
  const at = await page.evaluate(() => window.__hearth.heatmapPoint(Date.now(), 500e6));
  const canvas = await page.locator("#heatmap").boundingBox();
  const n = await loads(page);
  // From 500 ms at the left edge to the top right: every slow request.
  await page.mouse.move(canvas.x + g.left + 2, canvas.y + at.y);
  await page.mouse.down();
  await page.mouse.move(canvas.x + g.left + g.width / 2, canvas.y + g.top + 40, { steps: 4 });
  await page.mouse.move(canvas.x + g.left + g.width - 2, canvas.y + g.top + 2, { steps: 4 });
  await page.mouse.up();
  await ready(page, n + 1);
  const cmp = await page.evaluate(() => window.__hearth.compare);
  assert.equal(cmp.attributes[0], "span.region", `ranking: ${cmp.attributes.join(", ")}`);
  assert.ok(cmp.defining.includes("duration"), `defining: ${cmp.defining}`);
  assert.ok(!cmp.attributes.includes("duration"));
  assert.ok(cmp.selection > 200 && cmp.selection < 400 && cmp.selection + cmp.baseline === 900, JSON.stringify(cmp));

  // Paired bars: the slow region's share in the box and out of it.
  const first = page.locator("#cmp-attrs > li").first();
  assert.equal(await first.getAttribute("data-attr"), "span.region");
  const top = first.locator(".cmp-value").first();
  assert.equal(await top.getAttribute("data-value"), SLOW);
  const [sel, bl] = await top.locator(".bar").evaluateAll((bs) => bs.map((b) => b.getBoundingClientRect().width));
  assert.ok(sel > 5 * bl, `bars ${sel} vs ${bl}`);
  assert.match(await top.locator(".pct").textContent(), /^100\.0% vs 0\.0%$/);
  assert.match(await page.textContent("#cmp-defining summary"), /duration/);
  assert.match(page.url(), /box=\d+%2C\d+%2C\d+%2C/);
  await page.screenshot({ path: join(repo, "docs", "ui-events.png"), fullPage: true });

  // The address brings the box and its comparison back.
  const again = await open(Object.fromEntries(new URL(page.url()).searchParams));
  assert.deepEqual(await again.page.evaluate(() => window.__hearth.compare), cmp);
  await again.page.close();
  // Clearing the box, and back.
  await page.click("#compare-clear");
  await ready(page, n + 2);
  assert.equal(await page.evaluate(() => window.__hearth.compare), null);
  await page.goBack();
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.compare && window.__hearth.compare.attributes);
  assert.deepEqual(errors, []);
  await page.close();
});

const STOCK = '{ resource.service.name = "stock" }';

test("the profiles page's diff keeps each side to the samples of its span filter", async () => {
  const spans = '{ resource.service.name = "stock" && duration < 1s }';
  const cspans = '{ resource.service.name = "stock" && duration >= 1s }';
  const query = 'cpu{service_name="stock"}';
  const { page, errors } = await openProfiles({ query, from: "now-1h", spans, compare: query, cspans });
  // The fast requests and health checks against the slow requests: 20
  // spans of 2 samples of 10 ms (the checks have none) against 10 of 3.
  assert.deepEqual(await page.evaluate(() => window.__hearth.diff), { baselineTotal: 400e6, comparisonTotal: 300e6 });
  const diffs = Object.fromEntries((await page.evaluate(() => window.__hearth.frames())).map((f) => [f.name, f.diff]));
  assert.equal(diffs["stock.scan"], 1);
  assert.equal(diffs["stock.lookup"], -1);
  assert.equal(diffs["main.serve"], 0);
  const chips = await page.$$eval("#filters .chip", (cs) => Object.fromEntries(cs.map((c) => [c.dataset.filter, c.textContent])));
  assert.equal(chips.spans, `baseline: samples of 35 spans that ${spans} selects×`);
  assert.equal(chips.cspans, `comparison: samples of 10 spans that ${cspans} selects×`);
  assert.equal(await page.inputValue("#compare-spans"), cspans);

  // Side by side, the comparison's graph is the slow requests' alone.
  await page.check("#side-by-side");
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.sides === "1");
  const [left, right] = await page.evaluate(() => window.__hearth.sides().map((fs) => fs.map((f) => f.name)));
  assert.ok(left.includes("stock.lookup") && !left.includes("stock.scan"), left.join(", "));
  assert.ok(right.includes("stock.scan") && !right.includes("stock.lookup"), right.join(", "));

  // Without its span filter, the comparison is every sample: 700 ms.
  await page.click('#filters .chip[data-filter="cspans"] button');
  await page.waitForFunction(() => window.__hearth.ready && !window.__hearth.state.cspans);
  assert.deepEqual(await page.evaluate(() => window.__hearth.diff), { baselineTotal: 400e6, comparisonTotal: 700e6 });
  assert.equal(await page.inputValue("#compare-spans"), "");
  // Typed into the comparison row, it is back.
  await page.fill("#compare-spans", cspans);
  await page.press("#compare-spans", "Enter");
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.cspans && window.__hearth.diff.comparisonTotal === 300e6);
  // Another profile type changes both sides of a comparison of one
  // selector: samples, 40 against 30.
  const samples = await page.$eval("#ptype", (s) => [...s.options].map((o) => o.value).find((v) => v.startsWith("process_cpu:samples:")));
  assert.ok(samples, "no samples type offered");
  await page.selectOption("#ptype", samples);
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.diff && window.__hearth.diff.baselineTotal === 40);
  const st = await page.evaluate(() => window.__hearth.state);
  assert.equal(st.query, samples + '{service_name="stock"}');
  assert.equal(st.compare, st.query);
  assert.deepEqual(await page.evaluate(() => window.__hearth.diff), { baselineTotal: 40, comparisonTotal: 30 });
  assert.deepEqual(errors, []);
  await page.close();
});

// dragBox drags a box on the heatmap from a duration (ns) at its left
// edge to past its top right corner, and waits for the page's update.
async function dragBox(page, ns) {
  const g = await page.evaluate(() => window.__hearth.heatmapGeometry());
  assert.ok(g && g.width > 100, "no heatmap drawn");
  const at = await page.evaluate((ns) => window.__hearth.heatmapPoint(Date.now(), ns), ns);
  const canvas = await page.locator("#heatmap").boundingBox();
  const n = await loads(page);
  await page.mouse.move(canvas.x + g.left + 2, canvas.y + at.y);
  await page.mouse.down();
  await page.mouse.move(canvas.x + g.left + g.width / 2, canvas.y + g.top + 20, { steps: 4 });
  await page.mouse.move(canvas.x + g.left + g.width + 20, canvas.y + g.top - 20, { steps: 4 });
  await page.mouse.up();
  await ready(page, n + 1);
}

test("a box's code: a diff flame graph of its spans against the rest", async () => {
  const { page, errors } = await open({ q: STOCK });
  await dragBox(page, 500e6);
  // The box holds the slow item requests; the rest are the fast ones and
  // the health checks.
  const cmp = await page.evaluate(() => window.__hearth.compare);
  assert.equal(cmp.selection, 10, JSON.stringify(cmp));
  assert.equal(cmp.baseline, 35, JSON.stringify(cmp));
  const link = page.locator("#compare-code");
  const href = new URL(await link.getAttribute("href"), base);
  const p = Object.fromEntries(href.searchParams);
  assert.equal(p.query, 'cpu{service_name="stock"}');
  assert.equal(p.compare, p.query);
  assert.match(p.cspans, /^\{ resource\.service\.name = "stock" && duration >= \d+(ns|us|ms|s) \}$/);
  assert.equal(p.spans, p.cspans.replace(/&& (duration >= \S+) \}$/, "&& !($1) }"));
  const box = (await page.evaluate(() => window.__hearth.state.box)).split(",");
  assert.deepEqual([p.cfrom, p.cuntil], box.slice(0, 2));
  // No span of the box's durations started outside its time: the box's
  // spans against the rest is exact, and the page says nothing more.
  assert.equal(await page.textContent(".cmp-code"), "Compare code → the box's spans against the rest, as a diff flame graph");

  await Promise.all([page.waitForURL(/cspans=/), link.click()]);
  await page.waitForFunction(() => window.__hearth && window.__hearth.ready && window.__hearth.diff);
  // 10 spans of 3 samples of 10 ms against 20 of 2: only scan in the box,
  // only lookup out of it, serve under both.
  assert.deepEqual(await page.evaluate(() => window.__hearth.diff), { baselineTotal: 400e6, comparisonTotal: 300e6 });
  const frames = await page.evaluate(() => window.__hearth.frames());
  const diffOf = (name) => frames.find((f) => f.name === name)?.diff;
  assert.equal(diffOf("stock.scan"), 1);
  assert.equal(diffOf("stock.lookup"), -1);
  assert.equal(diffOf("main.serve"), 0);
  assert.equal(await page.inputValue("#compare-spans"), p.cspans);
  assert.deepEqual(errors, []);
  await page.close();
});

test("with running, the box compares the spans that ran the function, in and out of it", async () => {
  // A box by the address, above 1 s from 150 s after the first stock
  // request on: the slow requests of the 13th on (5 of them); the 5
  // before start outside its time.
  const { page, errors } = await open({ q: STOCK, running: "^main\\.serve$", box: `${stockT0 + 150e3},${Date.now() + 60e3},1000000000,` });
  // Item requests ran main.serve, health checks nothing: 5 in the box
  // against the other 25, not 40.
  const cmp = await page.evaluate(() => window.__hearth.compare);
  assert.equal(cmp.selection, 5, JSON.stringify(cmp));
  assert.equal(cmp.baseline, 25, JSON.stringify(cmp));
  const href = new URL(await page.getAttribute("#compare-code", "href"), base);
  assert.equal(href.searchParams.get("cspans"), '{ resource.service.name = "stock" && duration >= 1s }');
  assert.equal(href.searchParams.get("spans"), '{ resource.service.name = "stock" && !(duration >= 1s) }');
  const note = await page.textContent(".cmp-code");
  // The 5 slow requests before the box are left out of the code's
  // comparison; the heatmap's cells at the box's edge may add some.
  const stray = /Up to (\d+) spans of the box's durations started outside its time/.exec(note);
  assert.ok(stray && Number(stray[1]) >= 5, note);
  assert.match(note, /may hold spans that did not run \^main\\\.serve\$/);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a group's example opens its trace as a waterfall; a span shows its details", async () => {
  const { page, errors } = await open({ q: '{ resource.service.name = "frontend" }', by: "name" });
  const row = page.locator("#groups tbody tr.group", { hasText: "GET /checkout" });
  await row.click();
  const example = page.locator(`tr.detail button.example[data-trace="${TRACE}"]`);
  await example.waitFor();
  const n = await loads(page);
  await example.click();
  await ready(page, n + 1);
  await page.waitForSelector("#trace-view:not([hidden]) #waterfall .wf-row[data-span]");
  const spans = await page.$$eval("#waterfall .wf-row[data-span]", (rs) => rs.map((r) => ({
    id: r.dataset.span, depth: Number(r.dataset.depth), error: r.classList.contains("error"),
    name: r.querySelector(".wf-op").textContent, svc: r.querySelector(".wf-svc").textContent,
    left: parseFloat(r.querySelector(".wf-bar").style.left), width: parseFloat(r.querySelector(".wf-bar").style.width),
  })));
  assert.deepEqual(spans.map((s) => [s.name, s.svc, s.depth, s.error]), [
    ["GET /checkout", "frontend", 0, false],
    ["SELECT cart", "frontend", 1, false],
    ["charge", "payments", 1, true],
    ["POST /authorize", "payments", 2, false],
  ]);
  // Bars on the trace's time axis: the root spans it, charge starts at 80 of 420 ms.
  assert.ok(Math.abs(spans[0].left) < 0.01 && Math.abs(spans[0].width - 100) < 0.01, JSON.stringify(spans[0]));
  assert.ok(Math.abs(spans[2].left - (80 / 420) * 100) < 0.1, JSON.stringify(spans[2]));
  assert.ok(await page.locator("#waterfall .wf-axis .wf-tick").count() >= 3);
  assert.match(await page.textContent("#trace-summary"), /420 ms · 4 spans · frontend, payments · 1 error/);

  await page.click('#waterfall .wf-row[data-span="00000000000000b1"]');
  const detail = await page.textContent("#span-detail");
  assert.match(detail, /error: card declined/);
  assert.match(detail, /card\.brand\s*visa/);
  assert.match(detail, /retry\s*\+170 ms into the span/);
  assert.match(detail, /attempt\s*2/);
  assert.match(detail, new RegExp(`trace ${LINKED}`));
  assert.match(page.url(), /trace=4bf92f3577b34da6a3ce929d0e0e4736/);
  assert.match(page.url(), /span=00000000000000b1/);
  await page.screenshot({ path: join(repo, "docs", "ui-trace.png") });

  // The address reopens the trace at the same span.
  const again = await open(Object.fromEntries(new URL(page.url()).searchParams));
  await again.page.waitForSelector('#waterfall .wf-row.selected[data-span="00000000000000b1"]');
  assert.match(await again.page.textContent("#span-detail"), /card declined/);
  await again.page.close();

  // Back closes the trace; forward opens it again.
  await page.goBack();
  await page.waitForFunction(() => window.__hearth.ready && !window.__hearth.state.trace);
  assert.ok(await page.locator("#trace-view").isHidden());
  await page.goForward();
  await page.waitForSelector("#trace-view:not([hidden]) #waterfall .wf-row[data-span]");
  await page.click("#trace-close");
  await page.waitForFunction(() => window.__hearth.ready && !window.__hearth.state.trace);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a span's code: the profiles page kept to that span's samples", async () => {
  const { page, errors } = await open({ trace: TRACE, span: "00000000000000b1" });
  const link = page.locator("#span-detail a.code-link");
  await link.waitFor();
  const href = new URL(await link.getAttribute("href"), base);
  assert.equal(href.searchParams.get("spans"), '{ span:id = "00000000000000b1" }');
  assert.equal(href.searchParams.get("query"), 'cpu{service_name="payments"}');
  await Promise.all([page.waitForURL(/spans=/), link.click()]);
  await page.waitForFunction(() => window.__hearth && window.__hearth.ready);
  assert.match(await page.textContent("#filters"), /samples of 1 spans that \{ span:id = "00000000000000b1" \} selects/);
  // charge's own samples only: tokenize is all of them, 300 ms.
  const rows = await page.$$eval("#top tbody tr", (rs) => rs.map((r) => r.textContent));
  assert.ok(rows.some((r) => r.includes("pay.tokenize")), rows.join("\n"));
  assert.match(await page.textContent("#status"), /^300\.00 ms in all/);
  // Removing the chip shows every sample of the service again.
  await page.click("#filters .chip button");
  await page.waitForFunction(() => window.__hearth.ready && !new URL(location.href).searchParams.has("spans"));
  assert.match(await page.textContent("#status"), /^420\.00 ms in all/);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a frame's requests: the Events page of the spans that ran it", async () => {
  const { page, errors } = await openProfiles({ query: 'cpu{service_name="payments"}', from: "now-1h" });
  const target = (await page.evaluate(() => window.__hearth.frames())).find((f) => f.name === "pay.tokenize");
  assert.ok(target, "pay.tokenize not drawn");
  const box = await page.locator("#flame").boundingBox();
  await page.mouse.click(box.x + target.x + 2, box.y + target.y + 9, { button: "right" });
  await Promise.all([page.waitForURL(/events\.html/), page.click('#menu button[data-act="requests"]')]);
  await ready(page, 1);
  const url = new URL(page.url());
  assert.equal(url.searchParams.get("running"), "^pay\\.tokenize$");
  assert.equal(url.searchParams.get("q"), '{ resource.service.name = "payments" }');
  assert.match(await page.textContent("#running"), /spans that ran \^pay\\\.tokenize\$/);
  // One span ran it: charge, with its 300 ms in it.
  await page.waitForSelector("#groups tbody tr.group");
  const groups = await page.$$eval("#groups tbody tr.group", (rs) => rs.map((r) => r.textContent));
  assert.equal(groups.length, 1, groups.join("\n"));
  assert.match(groups[0], /charge/);
  assert.match(groups[0], /300(\.00)? ?ms/);
  assert.match(await page.textContent("#status"), /running \^pay\\\.tokenize\$: 1 spans took 300ms/);
  // The chip's × shows every span again.
  const n = await loads(page);
  await page.click("#running-clear");
  await ready(page, n + 1);
  assert.ok(await page.locator("#running").isHidden());
  assert.ok(!new URL(page.url()).searchParams.has("running"));
  assert.deepEqual(errors, []);
  await page.close();
});

test("the address holds the whole query: reload and back restore it", async () => {
  const { page } = await open();
  let n = await loads(page);
  await page.fill("#filter", SHOP);
  await page.press("#filter", "Enter");
  await ready(page, ++n);
  await page.selectOption("#by-add", "span.http.route");
  await ready(page, ++n);
  await page.selectOption("#range", "6h");
  await ready(page, ++n);
  await page.selectOption("#step", "5m");
  await ready(page, ++n);
  const st = await page.evaluate(() => ({ ...window.__hearth.state }));
  assert.equal(st.q, SHOP);
  assert.equal(st.by, "span.http.route");
  assert.equal(st.from, "now-6h");
  assert.equal(st.step, "5m");
  const table = await page.$$eval("#groups tbody tr.group td:nth-child(2)", (ts) => ts.map((t) => t.textContent).sort());
  assert.deepEqual(table, ROUTES);

  const again = await open(Object.fromEntries(new URL(page.url()).searchParams));
  assert.equal(await again.page.inputValue("#filter"), SHOP);
  assert.equal(await again.page.inputValue("#range"), "6h");
  assert.equal(await again.page.inputValue("#step"), "5m");
  assert.deepEqual(await again.page.$$eval("#by-chips .chip", (cs) => cs.map((c) => c.dataset.value)), ["span.http.route"]);
  assert.deepEqual(await again.page.evaluate(() => ({ ...window.__hearth.state })), st);
  await again.page.close();

  // Back: the step is auto again, then the range is an hour.
  await page.goBack();
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.step === "");
  assert.equal(await page.inputValue("#step"), "");
  await page.goBack();
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.from === "now-1h");
  assert.equal(await page.inputValue("#range"), "1h");
  await page.close();
});

test("a bad filter is shown under the input with its position; no match says so", async () => {
  const { page } = await open();
  let n = await loads(page);
  await page.fill("#filter", "{ span.region = }");
  await page.press("#filter", "Enter");
  await ready(page, ++n);
  await page.waitForSelector("#filter-error:not([hidden])");
  const msg = await page.textContent("#filter-error .msg");
  assert.match(msg, /^1:17: /);
  assert.equal(await page.textContent("#filter-error .caret"), " ".repeat(16) + "^");
  assert.equal(await page.getAttribute("#filter", "aria-invalid"), "true");
  assert.match(await page.evaluate(() => window.__hearth.error), /^1:17: /);

  await page.fill("#filter", '{ span.region = "nowhere" }');
  await page.press("#filter", "Enter");
  await ready(page, ++n);
  assert.ok(await page.locator("#filter-error").isHidden());
  await page.waitForSelector("#ev-empty:not([hidden])");
  assert.match(await page.textContent("#ev-empty"), /No events match this filter/);
  assert.ok(await page.locator("#charts").isHidden());
  await page.close();

  // A calculation that does not parse is shown beside the builder.
  const bad = await open({ calc: "count,p98x(duration)" });
  await bad.page.waitForSelector("#spec-error:not([hidden])");
  assert.match(await bad.page.textContent("#spec-error"), /^calc: 1:\d+: unknown calculation/);
  await bad.page.close();
});

test("the profiles page links to the Events page, which keeps the tenant", async () => {
  const { page } = await openProfiles({ tenant: "anonymous" });
  const link = page.locator('nav.pages a[href^="events.html"]');
  assert.equal(await link.getAttribute("href"), "events.html?tenant=anonymous");
  await link.click();
  await page.waitForURL(/events\.html/);
  await ready(page, 1);
  assert.equal(await page.evaluate(() => window.__hearth.state.tenant), "anonymous");
  assert.match(await page.textContent("#status"), /^[\d,]+ of [\d,]+ events matched/);
  assert.equal(await page.getAttribute('nav.pages a[href^="./"]', "href"), "./?tenant=anonymous");
  await page.close();
});
