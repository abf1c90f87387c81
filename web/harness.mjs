// What the browser tests share: a hearth binary built from this checkout,
// a server on a free port, and headless Chromium. It lives outside test/
// so that `node --test test/` does not take it for a test file.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";
import { chromium } from "playwright-core";

export const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
export const corpus = join(repo, "bench", "corpus");

export async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

export async function waitReady(url) {
  for (let i = 0; i < 300; i++) {
    try { if ((await fetch(url + "/ready")).ok) return; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("hearth server did not become ready");
}

// buildHearth builds cmd/hearth into a new temporary directory and returns
// the binary's path and the directory.
export function buildHearth() {
  const dir = mkdtempSync(join(tmpdir(), "hearth-ui-bin-"));
  const bin = join(dir, "hearth");
  execFileSync("go", ["build", "-o", bin, "./cmd/hearth"], { cwd: repo, stdio: "inherit" });
  return { bin, dir };
}

// startServer runs `hearth server` on port with the given extra flags and
// waits until it is ready.
export async function startServer(bin, port, dataDir, flags) {
  const server = spawn(bin, ["server", "--listen", `127.0.0.1:${port}`, "--data", dataDir, "--self-profile.interval", "0", "--otlp.grpc.listen=", ...flags], { stdio: "ignore" });
  await waitReady(`http://127.0.0.1:${port}`);
  return server;
}

export async function stopServer(server) {
  if (!server || server.exitCode !== null || server.signalCode !== null) return;
  const exited = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM"); // the server flushes its head to a block before it exits
  await exited;
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
