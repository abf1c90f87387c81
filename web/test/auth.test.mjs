// The UI against a server that requires tokens: signing in, the tenant
// picker, refusals, signing out, and the Targets page. The server gets a
// tokens file written here, and data in two tenants through the API.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { corpus, freePort, buildHearth, startServer, stopServer, launchBrowser } from "../harness.mjs";

// Tokens: a writer for every tenant, a reader of two, and a writer that
// may not read.
const WRITE = "w-" + "5f1c0e".repeat(5);
const READ = "r-" + "9a3b7d".repeat(5);
const PUSH = "p-" + "20c4e8".repeat(5);

let server, base, browser, dataDir, binDir;

before(async () => {
  const built = buildHearth();
  binDir = built.dir;
  dataDir = mkdtempSync(join(tmpdir(), "hearth-ui-auth-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const tokens = join(dataDir, "tokens.yaml");
  writeFileSync(tokens, JSON.stringify({
    tokens: [
      { name: "loader", token: WRITE, tenants: ["*"], scopes: ["write"] },
      { name: "viewer", token_sha256: createHash("sha256").update(READ).digest("hex"), tenants: ["team-a", "team-b"], scopes: ["read"] },
      { name: "pusher", token: PUSH, tenants: ["team-a"], scopes: ["write"] },
    ],
  }), { mode: 0o600 });
  // One scrape target in team-b and one in team-c, neither of which
  // answers: the Targets page shows the viewer the first only.
  const config = join(dataDir, "hearth.yaml");
  writeFileSync(config, JSON.stringify({
    global: { scrape_interval: "1s" },
    scrape_configs: [
      { job_name: "b-app", tenant: "team-b", static_configs: [{ targets: [`127.0.0.1:${await freePort()}`] }] },
      { job_name: "c-app", tenant: "team-c", static_configs: [{ targets: [`127.0.0.1:${await freePort()}`] }] },
    ],
  }));
  server = await startServer(built.bin, port, dataDir, ["--auth.tokens-file", tokens, "--config", config]);

  // A different service in each tenant.
  const files = readdirSync(corpus).filter((f) => f.startsWith("cpu-")).sort();
  const now = Math.floor(Date.now() / 1000);
  for (const [tenant, svc] of [["team-a", "checkout"], ["team-b", "search"]]) {
    for (let i = 0; i < 4; i++) {
      const from = now - 600 + i * 60;
      const r = await fetch(`${base}/ingest?name=${svc}&format=pprof&from=${from}&until=${from + 10}`, {
        method: "POST", body: readFileSync(join(corpus, files[i])),
        headers: { Authorization: "Bearer " + WRITE, "X-Scope-OrgID": tenant },
      });
      assert.equal(r.status, 200, await r.text());
    }
  }
  browser = await launchBrowser();
});

after(async () => {
  if (browser) await browser.close();
  await stopServer(server);
  for (const d of [dataDir, binDir]) if (d) rmSync(d, { recursive: true, force: true });
});

// open loads a page in a context of its own (or the one given), and
// records every request it makes.
async function open(path, context) {
  const page = await (context || browser).newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(15000);
  const errors = [];
  const requests = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => requests.push(r));
  await page.goto(base + path);
  return { page, errors, requests };
}

async function signIn(page, token, { remember = false } = {}) {
  await page.waitForSelector("#signin[open]");
  await page.fill("#signin-token", token);
  await page.setChecked("#signin-remember", remember);
  await page.click("#signin-submit");
}

const ready = (page, loads = 1) => page.waitForFunction((n) => window.__hearth && window.__hearth.ready && window.__hearth.loads >= n, loads);

// The services the filter builder offers, which come from the label
// values of the tenant in view.
async function services(page) {
  await page.selectOption("#b-name", "");
  await page.selectOption("#b-name", "service_name");
  await page.waitForFunction(() => document.querySelectorAll("#b-values option").length > 0);
  return page.$$eval("#b-values option", (os) => os.map((o) => o.value));
}

// headersOf returns the headers a request was sent with. Playwright's
// allHeaders waits for the browser to report them, which it never does for
// some requests (a download's, one cut short by navigation): past a
// moment, the headers the page gave the request stand in, which hold the
// Authorization and X-Scope-OrgID that the UI sets.
function headersOf(r) {
  return Promise.race([r.allHeaders(), new Promise((resolve) => setTimeout(() => resolve(r.headers()), 2000))]);
}

// No request may carry a token in its address, and those that carry one
// carry the right one.
async function checkRequests(requests, token) {
  for (const r of requests) {
    for (const t of [READ, WRITE, PUSH]) assert.ok(!r.url().includes(t), `a token in ${r.url()}`);
    const auth = (await headersOf(r)).authorization;
    if (auth !== undefined) assert.equal(auth, "Bearer " + token, r.url());
  }
}

test("without a token the UI asks for one, and says why a wrong one fails", async () => {
  const { page, errors, requests } = await open("/");
  await page.waitForSelector("#signin[open]");
  assert.match(await page.textContent("#signin"), /--auth\.tokens-file/);
  assert.equal(await page.getAttribute("#signin-token", "type"), "password");
  assert.ok(await page.locator("#signin-error").isHidden(), "an error before any token was typed");
  assert.equal(await page.evaluate(() => window.__hearth.ready), false);

  await signIn(page, "not-a-token");
  await page.waitForSelector("#signin-error:not([hidden])");
  assert.equal(await page.textContent("#signin-error"), "unknown token");
  assert.ok(await page.locator("#signin").isVisible(), "the form went away after a wrong token");

  await signIn(page, READ);
  await ready(page);
  assert.ok(await page.locator("#signin").isHidden());
  assert.equal(await page.textContent("#who"), "viewer");
  assert.equal(await page.evaluate(() => window.__hearth.error), null);
  assert.ok((await page.evaluate(() => window.__hearth.frames())).length > 20, "no flame graph after signing in");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("hearth.token")), READ);
  assert.equal(await page.evaluate(() => localStorage.getItem("hearth.token")), null);
  assert.ok(!page.url().includes(READ) && !page.url().includes("not-a-token"), page.url());
  // The wrong token went to whoami only, to be checked; every query
  // carried the right one.
  for (const r of requests) {
    assert.ok(!r.url().includes("not-a-token"), r.url());
    if ((await headersOf(r)).authorization === "Bearer not-a-token") assert.match(r.url(), /\/api\/v1\/auth\/whoami$/);
  }
  await checkRequests(requests.filter((r) => r.url().includes("/api/v1/query/")), READ);
  assert.deepEqual(errors, []);
  await page.close();
});

test("a token of two tenants: the picker, each tenant's data, the tenant in the address", async () => {
  const { page, errors, requests } = await open("/");
  await signIn(page, READ);
  await ready(page);
  assert.ok(await page.locator("#tenant").isVisible(), "no tenant picker");
  assert.deepEqual(await page.$$eval("#tenant option", (os) => os.map((o) => o.value)), ["team-a", "team-b"]);
  assert.equal(await page.inputValue("#tenant"), "team-a");
  assert.match(page.url(), /[?&]tenant=team-a/);
  assert.deepEqual(await services(page), ["checkout"]);
  assert.match(await page.textContent("#status"), /in all/);

  const loads = await page.evaluate(() => window.__hearth.loads);
  await page.selectOption("#tenant", "team-b");
  await ready(page, loads + 1);
  assert.equal(await page.evaluate(() => window.__hearth.state.tenant), "team-b");
  assert.match(page.url(), /[?&]tenant=team-b/);
  assert.deepEqual(await services(page), ["search"]);
  assert.ok((await page.evaluate(() => window.__hearth.frames())).length > 20);
  assert.match(await page.getAttribute('nav.pages a[href^="targets"]', "href"), /tenant=team-b/);

  // The pprof download carries the token and the tenant too.
  const [download] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
  const bytes = readFileSync(await download.path());
  assert.deepEqual([...bytes.subarray(0, 2)], [0x1f, 0x8b], "the download is not a gzipped profile");
  const pprof = requests.find((r) => r.url().includes("/api/v1/query/pprof"));
  assert.equal((await headersOf(pprof))["x-scope-orgid"], "team-b");

  // Back is tenant A again; a reload keeps the tenant of the address.
  await page.goBack();
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.tenant === "team-a");
  assert.deepEqual(await services(page), ["checkout"]);
  await page.goForward();
  await page.waitForFunction(() => window.__hearth.ready && window.__hearth.state.tenant === "team-b");
  await page.reload();
  await ready(page);
  assert.ok(await page.locator("#signin").isHidden(), "signed out by a reload");
  assert.equal(await page.inputValue("#tenant"), "team-b");
  assert.deepEqual(await services(page), ["search"]);

  // Every query named the tenant on screen at the time, and carried the token.
  await checkRequests(requests.filter((r) => r.url().includes("/api/") && !r.url().endsWith("/auth/whoami")), READ);
  for (const r of requests.filter((r) => r.url().includes("/api/v1/query/"))) {
    assert.match((await headersOf(r))["x-scope-orgid"] || "", /^team-[ab]$/, r.url());
  }
  assert.ok(!page.url().includes(READ));
  assert.deepEqual(errors, []);
  await page.close();
});

test("a later refusal asks for the token again, then finishes what it was doing", async () => {
  const { page } = await open("/");
  await signIn(page, READ);
  await ready(page);
  const loads = await page.evaluate(() => window.__hearth.loads);
  // As if the token had been revoked since.
  await page.evaluate(() => sessionStorage.setItem("hearth.token", "revoked"));
  await page.click("#run");
  await page.waitForSelector("#signin[open]");
  assert.equal(await page.textContent("#signin-error"), "unknown token");
  await signIn(page, READ);
  await ready(page, loads + 1);
  assert.equal(await page.evaluate(() => window.__hearth.error), null);
  assert.ok((await page.evaluate(() => window.__hearth.frames())).length > 20);
  await page.close();
});

test("remember on this device, and sign out", async () => {
  const context = await browser.newContext();
  const first = await open("/", context);
  await signIn(first.page, READ);
  await ready(first.page);
  // Not remembered: another tab asks again.
  const second = await open("/", context);
  await signIn(second.page, READ, { remember: true });
  await ready(second.page);
  assert.equal(await second.page.evaluate(() => localStorage.getItem("hearth.token")), READ);
  // Remembered: a third tab does not ask.
  const third = await open("/?tenant=team-b", context);
  await ready(third.page);
  assert.ok(await third.page.locator("#signin").isHidden());
  assert.equal(await third.page.inputValue("#tenant"), "team-b");

  await third.page.click("#sign-out");
  await third.page.waitForSelector("#signin[open]");
  assert.equal(await third.page.evaluate(() => localStorage.getItem("hearth.token") || sessionStorage.getItem("hearth.token")), null);
  assert.ok(!third.page.url().includes("tenant="), "the tenant outlived the sign-out: " + third.page.url());
  await context.close();
});

test("refusals show the server's reason where errors go", async () => {
  // A token that may write but not read.
  const { page } = await open("/");
  await signIn(page, PUSH);
  await ready(page);
  assert.match(await page.textContent("#status.error"), /^Not allowed: token "pusher" lacks the read scope/);
  await page.close();

  // A tenant the token does not have, named in the address.
  const other = await open("/?tenant=team-c");
  await signIn(other.page, READ);
  await ready(other.page);
  assert.match(await other.page.textContent("#status.error"), /token "viewer" may not use tenant "team-c"/);
  // The picker offers the token's tenants, and leaving them works.
  const loads = await other.page.evaluate(() => window.__hearth.loads);
  await other.page.selectOption("#tenant", "team-a");
  await ready(other.page, loads + 1);
  assert.equal(await other.page.evaluate(() => window.__hearth.error), null);
  assert.match(await other.page.textContent("#status"), /in all/);
  await other.page.close();
});

test("the targets page signs in, lists the token's targets, and reports a refused reload", async () => {
  const { page, errors, requests } = await open("/targets.html?tenant=team-b");
  await signIn(page, READ);
  await page.waitForFunction(() => window.__hearth.targets.length > 0 && window.__hearth.targets.every((t) => t.health === "down"), null, { timeout: 20000 });
  const keys = await page.$$eval("tr.target", (trs) => trs.map((tr) => tr.dataset.key.split(" ")[0]));
  assert.deepEqual(keys, ["b-app"]);
  // The target's profiles are in team-b, not in the token's default tenant.
  assert.match(await page.getAttribute("tr.target a", "href"), /[?&]tenant=team-b/);
  assert.equal(await page.getAttribute('nav.pages a[aria-current]+a, nav.pages a:not([aria-current])', "href"), "./?tenant=team-b");
  assert.equal(await page.textContent("#who"), "viewer");

  await page.click("#t-reload");
  await page.waitForFunction(() => /Reload failed/.test(document.getElementById("status").textContent));
  assert.match(await page.textContent("#status"), /token "viewer" lacks the admin scope/);
  await checkRequests(requests, READ);
  assert.deepEqual(errors, []);
  await page.close();
});
