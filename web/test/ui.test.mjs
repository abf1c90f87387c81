// Drives Hearth's UI in headless Chromium: starts `hearth server`, ingests
// real Go CPU profiles, and clicks through the views, checking what the
// canvas drew through the page's test hook (window.__hearth).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repo, corpus, freePort, buildHearth, startServer, stopServer, launchBrowser } from "../harness.mjs";

let server, base, browser, dataDir, binDir;

before(async () => {
  const built = buildHearth();
  binDir = built.dir;
  dataDir = mkdtempSync(join(tmpdir(), "hearth-ui-data-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // The server scrapes its own goroutine profile, and an address where
  // nothing listens, for the Targets page.
  const config = join(dataDir, "hearth.yaml");
  const off = { enabled: false };
  writeFileSync(config, JSON.stringify({
    global: { scrape_interval: "1s" },
    scrape_configs: [
      { job_name: "hearth", static_configs: [{ targets: [`127.0.0.1:${port}`], labels: { team: "profiling" } }],
        profiling_config: { pprof_config: { process_cpu: off, memory: off, allocs: off, mutex: off, block: off } } },
      { job_name: "gone", static_configs: [{ targets: [`127.0.0.1:${await freePort()}`] }] },
    ],
  }));
  server = await startServer(built.bin, port, dataDir, ["--config", config]);
  const files = readdirSync(corpus).filter((f) => f.startsWith("cpu-")).sort();
  const now = Math.floor(Date.now() / 1000);
  for (let i = 0; i < 24; i++) {
    const svc = i % 2 ? "checkout" : "search";
    const from = now - 600 + i * 20;
    const body = readFileSync(join(corpus, files[i % files.length]));
    const r = await fetch(`${base}/ingest?name=${svc}{env=test}&format=pprof&from=${from}&until=${from + 10}`, { method: "POST", body });
    assert.equal(r.status, 200, await r.text());
  }
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  await stopServer(server);
  for (const d of [dataDir, binDir]) if (d) rmSync(d, { recursive: true, force: true });
});

async function open(path = "/") {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + path);
  await page.waitForFunction(() => window.__hearth && window.__hearth.ready);
  return { page, errors };
}

const frames = (page) => page.evaluate(() => window.__hearth.frames());

test("the default view draws a CPU flame graph, a table and a chart", async () => {
  const { page, errors } = await open();
  assert.match(await page.inputValue("#query"), /^process_cpu:cpu:nanoseconds:cpu:nanoseconds\{\}$/);
  const fs = await frames(page);
  assert.ok(fs.length > 50, `only ${fs.length} frames drawn`);
  assert.equal(fs[0].name, "total");
  assert.ok(fs.some((f) => /^main\.f\d\d$/.test(f.name)), "no corpus function drawn");
  assert.ok(await page.locator("#top tbody tr").count() > 10);
  assert.match(await page.textContent("#status"), /in all/);
  const ms = await page.evaluate(() => window.__hearth.renderMillis);
  console.log(`flame graph of ${fs.length} frames drawn in ${ms.toFixed(1)} ms`);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a 10,000-node flame graph: time from response to drawn, and hover", async () => {
  const { page } = await open("/?nodes=10000");
  const r = await page.evaluate(() => ({ ms: window.__hearth.renderMillis, n: window.__hearth.drawnFrames, nodes: window.__hearth.nodes }));
  assert.ok(r.nodes >= 9000, `the answer has only ${r.nodes} nodes`);
  assert.ok(r.n > 500, `only ${r.n} frames drawn`);
  // Again, now that the page has its fonts: the steady state.
  await page.click("#run");
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.loads >= 2);
  const again = await page.evaluate(() => window.__hearth.renderMillis);
  // Frame time while hovering: move over the graph and time the redraws.
  const box = await page.locator("#flame").boundingBox();
  const t0 = Date.now();
  for (let i = 0; i < 30; i++) await page.mouse.move(box.x + 20 + i * 20, box.y + 30);
  const hover = (Date.now() - t0) / 30;
  const zoomMs = await page.evaluate(() => { const t = performance.now(); window.__hearth.redraw(); return performance.now() - t; });
  console.log(`${r.nodes} nodes, ${r.n} frames wide enough to draw, drawn ${r.ms.toFixed(1)} ms after the response (first load), ${again.toFixed(1)} ms (next load); hover ${hover.toFixed(1)} ms per move; a redraw ${zoomMs.toFixed(1)} ms`);
  assert.ok(!(await page.locator("#tooltip").isHidden()), "hover shows no tooltip");
  await page.close();
});

test("filter by label, search, zoom, and a copied URL reproduces the view", async () => {
  const { page } = await open();
  await page.fill("#query", 'cpu{service_name="checkout"}');
  await page.press("#query", "Enter");
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.loads >= 2);
  const all = await page.evaluate(() => window.__hearth.state.query);
  assert.equal(all, 'cpu{service_name="checkout"}');

  await page.fill("#search", "main.f0");
  const matched = (await frames(page)).filter((f) => f.match);
  assert.ok(matched.length > 0, "search highlighted nothing");
  assert.match(await page.textContent("#search-share"), /% of total/);

  // Click the widest main.f* frame: the view zooms into it.
  const target = matched.sort((a, b) => b.w - a.w)[0];
  const box = await page.locator("#flame").boundingBox();
  await page.mouse.click(box.x + target.x + 2, box.y + target.y + 9);
  const zoomed = await frames(page);
  const self = zoomed.find((f) => f.name === target.name && f.w > box.width * 0.9);
  assert.ok(self, `after a click, ${target.name} does not fill the width`);
  assert.match(await page.textContent("#crumbs"), new RegExp(target.name.replace(/\./g, "\\.")));

  // Reload from the address: the same frames.
  const url = page.url();
  const again = await open(url.slice(base.length));
  assert.deepEqual(await frames(again.page), zoomed);
  assert.equal(await again.page.inputValue("#search"), "main.f0");
  await again.page.close();

  // Back to the whole graph through the breadcrumb.
  await page.click("#crumbs a:first-child");
  assert.equal((await frames(page))[0].name, "total");
  await page.close();
});

test("the filter builder adds matchers from the labels the server knows", async () => {
  const { page } = await open();
  await page.selectOption("#b-name", "service_name");
  await page.waitForFunction(() => document.querySelectorAll("#b-values option").length === 2);
  const offered = await page.$$eval("#b-values option", (os) => os.map((o) => o.value));
  assert.deepEqual(offered, ["checkout", "search"]);
  await page.selectOption("#b-op", "!=");
  await page.fill("#b-value", "search");
  await page.click("#b-add");
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.loads >= 2);
  assert.equal(await page.inputValue("#query"), 'process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name!="search"}');
  await page.selectOption("#b-name", "env");
  await page.selectOption("#b-op", "=~");
  await page.fill("#b-value", "te.*");
  await page.click("#b-add");
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.loads >= 3);
  assert.equal(await page.inputValue("#query"), 'process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name!="search", env=~"te.*"}');
  assert.equal(await page.evaluate(() => window.__hearth.error), null);
  assert.ok((await frames(page)).length > 50);
  await page.close();
});

test("the table filters and highlights frames, and sorts", async () => {
  const { page } = await open();
  await page.fill("#table-filter", "main.f1");
  const names = await page.locator("#top tbody tr td:nth-child(3)").allTextContents();
  assert.ok(names.length > 0 && names.every((n) => n.includes("main.f1")), names.join(","));
  await page.hover("#top tbody tr:first-child");
  assert.equal(await page.evaluate(() => window.__hearth.state.filter), "main.f1");
  await page.click('th[data-sort="total"]');
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.sort === "total");
  assert.match(page.url(), /sort=total/);
  await page.close();
});

test("sandwich: a function's callers above and callees below, merged", async () => {
  const { page } = await open("/?sort=total");
  const row = page.locator("#top tbody tr", { hasText: "main.f18" }).first();
  await row.click();
  await page.waitForSelector("#sandwich:not([hidden])");
  assert.ok(await page.locator("#flame").isHidden(), "the flame graph still shows beside the sandwich");
  const sw = await page.evaluate(() => window.__hearth.sandwich());
  const width = (await page.locator("#callers").boundingBox()).width;
  const bottom = sw.callers.reduce((a, f) => (f.y > a.y ? f : a));
  assert.equal(bottom.name, "main.f18");
  assert.ok(bottom.w > width * 0.95, "the function does not span the callers graph");
  assert.equal(sw.callees[0].name, "main.f18");
  assert.ok(sw.callers.some((f) => f.name === "main.runWindow.func1"), "callers lack the workers' root");
  assert.ok(sw.callers.every((f) => f.y <= bottom.y));
  assert.match(page.url(), /sandwich=main.f18/);
  // The address brings the sandwich back.
  const again = await open(page.url().slice(base.length));
  await again.page.waitForSelector("#sandwich:not([hidden])");
  assert.deepEqual(await again.page.evaluate(() => window.__hearth.sandwich()), sw);
  await again.page.close();
  await page.click("#sandwich-close");
  assert.ok(await page.locator("#sandwich").isHidden());
  await page.close();
});

test("comparison: a diff flame graph, and the two sides next to each other", async () => {
  const { page } = await open('/?query=' + encodeURIComponent('cpu{service_name="search"}'));
  await page.click("#compare-toggle");
  assert.equal(await page.inputValue("#compare-query"), 'cpu{service_name="search"}');
  await page.fill("#compare-query", 'cpu{service_name="checkout"}');
  await page.press("#compare-query", "Enter");
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.diff);
  const d = await page.evaluate(() => window.__hearth.diff);
  assert.ok(d.baselineTotal > 0 && d.comparisonTotal > 0, JSON.stringify(d));
  const fs = await frames(page);
  assert.equal(fs[0].name, "total");
  assert.ok(fs.length > 50);
  assert.match(page.url(), /compare=/);

  await page.check("#side-by-side");
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.sides === "1");
  const [left, right] = await page.evaluate(() => window.__hearth.sides());
  assert.ok(left.length > 20 && right.length > 20, `sides drew ${left.length} and ${right.length} frames`);
  assert.ok(await page.locator("#flame").isHidden());

  // The address holds the comparison.
  const again = await open(page.url().slice(base.length));
  assert.deepEqual(await again.page.evaluate(() => window.__hearth.sides()), [left, right]);
  assert.equal(await again.page.inputValue("#compare-query"), 'cpu{service_name="checkout"}');
  await again.page.close();
  await page.click("#compare-close");
  await page.waitForFunction(() => window.__hearth.ready && !window.__hearth.diff);
  assert.ok(await page.locator("#compare-row").isHidden());
  await page.close();
});

test("context menu: focus on and ignore a function; the chart groups by a label", async () => {
  const { page } = await open();
  const before = await page.evaluate(() => window.__hearth.frames()[0]);
  const target = (await frames(page)).filter((f) => f.name === "main.f18").sort((a, b) => b.w - a.w)[0];
  assert.ok(target, "main.f18 not drawn");
  const box = await page.locator("#flame").boundingBox();
  await page.mouse.click(box.x + target.x + 2, box.y + target.y + 9, { button: "right" });
  await page.click('#menu button[data-act="focus"]');
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.focus);
  assert.equal(await page.evaluate(() => window.__hearth.state.focus), "^main\\.f18$");
  const focused = await frames(page);
  // Every stack left passes through main.f18: its frames span the width.
  const span = focused.filter((f) => f.name === "main.f18").reduce((s, f) => s + f.w, 0);
  assert.ok(span > focused[0].w * 0.97, `after focus, main.f18 spans ${span} of ${focused[0].w}`);
  assert.match(await page.textContent("#filters"), /focus/);
  assert.match(page.url(), /focus=/);
  await page.click("#filters .chip button");
  await page.waitForFunction(() => window.__hearth.ready && !window.__hearth.state.focus);

  await page.mouse.click(box.x + target.x + 2, box.y + target.y + 9, { button: "right" });
  await page.click('#menu button[data-act="ignore"]');
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.ignore);
  assert.ok(!(await frames(page)).some((f) => f.name === "main.f18"), "an ignored function is still drawn");

  await page.selectOption("#group-by", "service_name");
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.group === "service_name");
  assert.match(await page.textContent("#chart-legend"), /checkout/);
  assert.match(await page.textContent("#chart-legend"), /search/);
  assert.ok(before.w > 0);
  await page.close();
});

test("errors are shown where the user typed, and an empty selection says so", async () => {
  const { page } = await open();
  await page.fill("#query", "cpu{service_name=");
  await page.press("#query", "Enter");
  await page.waitForSelector("#query-error:not([hidden])");
  assert.match(await page.textContent("#query-error"), /^1:\d+: /);

  await page.fill("#query", 'cpu{service_name="nobody"}');
  await page.press("#query", "Enter");
  await page.waitForFunction(() => window.__hearth.ready && !window.__hearth.error);
  assert.match(await page.textContent("#status"), /No data/);
  assert.ok(await page.locator("#empty").isVisible(), "the empty state is not shown");
  await page.close();
});

test("the chart has a time axis, a value axis in the profile's unit, and a read-out on hover", async () => {
  const { page, errors } = await open("/?group=service_name");
  const { axes, readout } = await page.evaluate(() => window.__hearth.chart());
  assert.ok(axes[0].length >= 3, `time axis: ${axes[0]}`);
  assert.ok(axes[1].length >= 2 && axes[1].slice(1).every((t) => / (ns|µs|ms|s|min)$/.test(t)), `CPU axis: ${axes[1]}`);
  assert.deepEqual(readout.map((r) => r.label), ["time", "service_name=checkout", "service_name=search"]);
  assert.ok(readout.every((r) => r.value === "–"), "a read-out before any hover");
  // The profiles were sent over the last ten minutes: hover there until
  // the read-out shows a point of each service.
  const over = await page.locator("#chart .u-over").boundingBox();
  let got = null;
  for (let f = 0.84; f < 1 && !got; f += 0.005) {
    await page.mouse.move(over.x + over.width * f, over.y + over.height / 2);
    const r = (await page.evaluate(() => window.__hearth.chart())).readout;
    if (r.slice(1).some((x) => x.value !== "–")) got = r;
  }
  assert.ok(got, "no value read out along the last part of the chart");
  assert.match(got[0].value, /\d\d:\d\d/);
  assert.ok(got.slice(1).some((x) => / (ns|µs|ms|s|min)$/.test(x.value)), JSON.stringify(got));
  assert.deepEqual(errors, []);
  await page.close();
});

test("a brush on the chart selects the range to merge", async () => {
  const { page } = await open();
  const box = await page.locator("#chart").boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + 40);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.99, box.y + 40, { steps: 5 });
  await page.mouse.up();
  await page.waitForFunction(() => window.__hearth.ready && /^\d+$/.test(window.__hearth.state.from));
  const st = await page.evaluate(() => window.__hearth.state);
  assert.ok(Number(st.until) > Number(st.from));
  assert.match(page.url(), /from=\d+/);
  await page.close();
});

test("the targets page shows each scrape target's health, and filters", async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + "/targets.html");
  await page.waitForFunction(() => {
    const ts = window.__hearth.targets;
    return ts.some((t) => t.scrapePool === "hearth" && t.health === "up") && ts.some((t) => t.scrapePool === "gone" && t.health === "down");
  }, null, { timeout: 20000 });
  const rows = () => page.$$eval("tr.target", (trs) => trs.map((tr) => ({
    key: tr.dataset.key, health: tr.cells[1].textContent, labels: tr.cells[2].textContent, error: tr.cells[5].textContent,
    href: tr.cells[0].querySelector("a").getAttribute("href"),
  })));
  let got = await rows();
  assert.equal(got.length, 2);
  const self = got.find((r) => r.key.startsWith("hearth "));
  const gone = got.find((r) => r.key.startsWith("gone "));
  assert.equal(self.health, "up");
  assert.match(self.labels, /team="profiling"/);
  assert.match(decodeURIComponent(self.href.replace(/\+/g, " ")), /job="hearth", instance="127\.0\.0\.1:\d+"/);
  assert.equal(gone.health, "down");
  assert.match(gone.error, /refused/);
  assert.match(await page.textContent("section.pool h2"), /gone 0\/1 up/);
  await page.screenshot({ path: join(repo, "docs", "ui-targets.png") });

  // Unhealthy only, then a text filter; both go into the URL.
  await page.check("#t-unhealthy");
  got = await rows();
  assert.deepEqual(got.map((r) => r.key.split(" ")[0]), ["gone"]);
  await page.uncheck("#t-unhealthy");
  await page.fill("#t-filter", "profiling");
  got = await rows();
  assert.deepEqual(got.map((r) => r.key.split(" ")[0]), ["hearth"]);
  assert.match(page.url(), /filter=profiling/);

  // The disclosure lists the target's endpoints with their URLs.
  await page.click("tr.target button.disclose");
  const endpoints = await page.$$eval("table.endpoints tbody tr", (trs) => trs.map((tr) => [tr.cells[0].textContent, tr.cells[2].textContent]));
  assert.deepEqual(endpoints.map((e) => e[0]), ["goroutine"]);
  assert.match(endpoints[0][1], /\/debug\/pprof\/goroutine$/);
  assert.deepEqual(errors, []);
  await page.close();
});

// Last, because it adds a tenant: every view before saw one only, and no
// picker.
test("without tokens, a picker offers each tenant that holds data", async () => {
  const r = await fetch(`${base}/ingest?name=billing&format=pprof`, {
    method: "POST", headers: { "X-Scope-OrgID": "team-x" },
    body: readFileSync(join(corpus, readdirSync(corpus).filter((f) => f.startsWith("cpu-")).sort()[0])),
  });
  assert.equal(r.status, 200, await r.text());
  const { page, errors } = await open();
  assert.deepEqual(await page.$$eval("#tenant option", (os) => os.map((o) => o.value)), ["anonymous", "team-x"]);
  assert.equal(await page.inputValue("#tenant"), "anonymous");
  assert.match(page.url(), /[?&]tenant=anonymous/);
  assert.ok(await page.locator("#session").isHidden(), "a sign-out control on a server without tokens");
  await page.selectOption("#tenant", "team-x");
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.tenant === "team-x");
  await page.selectOption("#b-name", "service_name");
  await page.waitForFunction(() => document.querySelectorAll("#b-values option").length > 0);
  assert.deepEqual(await page.$$eval("#b-values option", (os) => os.map((o) => o.value)), ["billing"]);
  assert.ok((await frames(page)).length > 20, "tenant team-x drew no flame graph");
  assert.match(page.url(), /[?&]tenant=team-x/);
  assert.deepEqual(errors, []);
  await page.close();
});
