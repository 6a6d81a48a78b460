// Measures the browser client: the size of the WASM in web/pkg (raw and gzip, and after
// `wasm-opt -Oz` from tools/node_modules) and the time of `Identity.seal` in headless
// Chromium (median and p95 over RUNS runs).
//
// Build web/pkg first with `cargo xtask wasm` (which already runs wasm-opt -Oz, so the two
// size lines then agree), then: node client-wasm/bench/seal.mjs [--runs N] [--warmup N]
//
// A tiny static server on 127.0.0.1 (port 0) serves web/ and the bench page; the page
// loads /pkg/mediblock_client_wasm.js exactly as the app does. When wasm-opt is available
// the optimised module is the one served and timed.

import { createServer } from "node:http";
import { readFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { gzipSync, constants as zlib } from "node:zlib";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, dirname, extname, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const web = join(root, "web");
const pkg = join(web, "pkg");
const wasmPath = join(pkg, "mediblock_client_wasm_bg.wasm");
const argRuns = process.argv.indexOf("--runs");
const RUNS = argRuns > 0 ? Number(process.argv[argRuns + 1]) : 300;
const argWarm = process.argv.indexOf("--warmup");
const WARMUP = argWarm > 0 ? Number(process.argv[argWarm + 1]) : 100;

if (!existsSync(wasmPath)) {
  console.error(`${wasmPath} is missing: build web/pkg first (see the top of this file).`);
  process.exit(1);
}

const gz = (b) => gzipSync(b, { level: zlib.Z_BEST_COMPRESSION }).length;
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
const raw = readFileSync(wasmPath);
console.log(`wasm as built (web/pkg): ${raw.length} bytes raw (${kib(raw.length)}), ${gz(raw)} bytes gzip -9 (${kib(gz(raw))})`);

// wasm-opt -Oz (binaryen from tools/node_modules), into a temporary file.
let served = raw;
const wasmOpt = join(root, "tools/node_modules/.bin/wasm-opt");
if (existsSync(wasmOpt)) {
  const dir = mkdtempSync(join(tmpdir(), "mediblock-bench-"));
  const out = join(dir, "opt.wasm");
  execFileSync(wasmOpt, [
    "-Oz",
    "--enable-bulk-memory", "--enable-nontrapping-float-to-int", "--enable-sign-ext",
    "--enable-mutable-globals", "--enable-reference-types", "--enable-multivalue",
    wasmPath, "-o", out,
  ]);
  served = readFileSync(out);
  rmSync(dir, { recursive: true, force: true });
  console.log(`wasm after wasm-opt -Oz: ${served.length} bytes raw (${kib(served.length)}), ${gz(served)} bytes gzip -9 (${kib(gz(served))})`);
} else {
  console.log("wasm-opt not found in tools/node_modules: timing the module as built");
}

const template = readFileSync(join(root, "relay/templates/vital-signs.json"), "utf8");
const page = `<!doctype html><meta charset="utf-8"><title>seal bench</title>
<script type="module">
import init, * as mb from "/pkg/mediblock_client_wasm.js";
window.bench = async (runs, warmup) => {
  await init();
  const me = mb.Identity.generate("dr.bench");
  const relayId = mb.Identity.generate("relay");
  const k = relayId.publicKeys();
  const relay = { relay_keys: { ed25519: k.ed25519, x25519: k.x25519 } };
  const template = ${template};
  const values = { heart_rate: 72, systolic: 120, temperature: "36.6", triage: "green",
                   smoker: false, measured_on: "2026-11-24", notes: "routine check" };
  // A ticket as the relay issues it (POST /api/v1/tickets, a decimal string); no relay
  // binds it here, so one ticket serves every run.
  const req = { template, relay, ticket: "72623859790382856", patient: null, previous: null, values };
  for (let i = 0; i < warmup; i++) me.seal(req);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const out = me.seal(req);
    times.push(performance.now() - t0);
    if (!(out.body instanceof Uint8Array) || out.commitment.length !== 64 || !out.tid.startsWith("0102030405060708")) throw new Error("bad seal");
  }
  return times;
};
window.benchReady = true;
</script>`;

const types = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html", ".css": "text/css", ".json": "application/json" };
const server = createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  // Cross-origin isolation gives performance.now() 5 µs resolution instead of 100 µs.
  res.setHeader("Cross-Origin-Opener-Policy", "same-origin");
  res.setHeader("Cross-Origin-Embedder-Policy", "require-corp");
  if (url.pathname === "/__bench.html") {
    res.writeHead(200, { "content-type": "text/html" });
    return res.end(page);
  }
  if (url.pathname === "/pkg/mediblock_client_wasm_bg.wasm") {
    res.writeHead(200, { "content-type": "application/wasm" });
    return res.end(served);
  }
  const file = normalize(join(web, url.pathname));
  if (!file.startsWith(web) || !existsSync(file)) {
    res.writeHead(404);
    return res.end();
  }
  res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream" });
  res.end(readFileSync(file));
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const base = `http://127.0.0.1:${server.address().port}`;

const require = createRequire(join(root, "tools/node_modules/"));
const { chromium } = require("playwright-core");
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});
try {
  const pageObj = await browser.newPage();
  await pageObj.goto(`${base}/__bench.html`);
  await pageObj.waitForFunction(() => window.benchReady === true);
  const times = await pageObj.evaluate(([r, w]) => window.bench(r, w), [RUNS, WARMUP]);
  times.sort((a, b) => a - b);
  const q = (p) => times[Math.min(times.length - 1, Math.ceil(p * times.length) - 1)];
  const version = browser.version();
  console.log(`Identity.seal in Chromium ${version}, ${RUNS} runs after ${WARMUP} warm-up: median ${q(0.5).toFixed(3)} ms, p95 ${q(0.95).toFixed(3)} ms, min ${times[0].toFixed(3)} ms, max ${times[times.length - 1].toFixed(3)} ms`);
} finally {
  await browser.close();
  server.close();
}
