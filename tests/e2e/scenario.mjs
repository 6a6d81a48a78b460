// The clinicians' web app, driven in the system's headless Chromium by playwright-core.
// Run by `tests/tests/browser.rs`, which starts the relay and anvil and passes one JSON
// argument: {phase, relay, rpc, adminKeyFile, walletAddress, profiles, screenshots, extra}.
// Each person (admin, nurse, wallet doctor) has their own persistent browser profile, so
// keys created in one phase are still in their browser in the next: "admin-key" (the admin
// imports the relay's first-run admin.key into the browser, under a passphrase),
// "flow", "tampered", then "attack" (a record the relay anchored with values of its own
// choosing). The result is
// one JSON line on stdout ({ok: true, …} or {ok: false, step, error}); the log goes to stderr.

import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(new URL("../../tools/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const args = JSON.parse(process.argv[2]);
const PASSPHRASE = "correct horse battery staple";
const LONG = 90_000;
const result = { ok: false, phase: args.phase };
let step = "start";
const contexts = [];

const log = (...parts) => console.error(`[e2e ${args.phase}] ${step}:`, ...parts);

// A last resort so a hung browser cannot hang the test run; every wait below has its own
// deadline well inside this one.
const watchdog = setTimeout(() => {
  console.log(JSON.stringify({ ...result, ok: false, step, error: "scenario timed out" }));
  process.exit(3);
}, 8 * 60_000);

/** An injected EIP-1193 wallet whose account is an unlocked anvil dev account: requests go
 * to anvil's JSON-RPC; `window.__mediblockRefuse = true` makes it refuse like a person would,
 * and `window.__mediblockChainId` makes it claim another network. */
function walletScript({ rpc, address }) {
  let id = 0;
  window.ethereum = {
    isMediBlockTestWallet: true,
    async request({ method, params }) {
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [address];
      if (method === "eth_chainId" && window.__mediblockChainId) return window.__mediblockChainId;
      if (window.__mediblockRefuse && (method === "eth_sendTransaction" || method === "eth_requestAccounts")) {
        throw Object.assign(new Error("User rejected the request."), { code: 4001 });
      }
      const res = await fetch(rpc, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: ++id, method, params: params ?? [] }),
      });
      const body = await res.json();
      if (body.error) throw Object.assign(new Error(body.error.message), { code: body.error.code, data: body.error.data });
      return body.result;
    },
    on() {},
    removeListener() {},
  };
}

async function person(name, { wallet = false } = {}) {
  const context = await chromium.launchPersistentContext(join(args.profiles, name), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1200, height: 900 },
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  contexts.push(context);
  if (wallet) await context.addInitScript(walletScript, { rpc: args.rpc, address: args.walletAddress });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") console.error(`[${name} console] ${m.text()}`); });
  page.on("pageerror", (e) => console.error(`[${name} page error] ${e.message}`));
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(args.screenshots, `${name}.png`), fullPage: true });
}

/** Waits until the element's text matches `pattern`, and returns the text. */
async function textMatching(page, selector, pattern, timeout = 30_000) {
  await page.waitForFunction(([sel, src, flags]) => {
    const el = document.querySelector(sel);
    return el && new RegExp(src, flags).test(el.textContent);
  }, [selector, pattern.source, pattern.flags], { timeout });
  return page.locator(selector).first().textContent();
}

/** Fails when a form control on the page has no label (the pages are used with screen
 * readers and by keyboard). */
async function assertLabelled(page, where) {
  const missing = await page.evaluate(() => [...document.querySelectorAll("main input, main select, main textarea")]
    .filter((el) => el.type !== "hidden" && el.labels.length === 0 && !el.getAttribute("aria-label"))
    .map((el) => el.id || el.name || el.outerHTML.slice(0, 60)));
  if (missing.length) throw new Error(`unlabelled controls on ${where}: ${missing.join(", ")}`);
  result.labelledPages = [...(result.labelledPages ?? []), where];
}

async function waitForHash(page, pattern) {
  await page.waitForFunction(([src]) => new RegExp(src).test(location.hash), [pattern.source]);
  return page.evaluate(() => location.hash);
}

async function signIn(page, screenshot) {
  await page.goto(`${args.relay}/#/`);
  const pass = page.getByLabel("Passphrase", { exact: true });
  if (screenshot) {
    await pass.waitFor();
    await shot(page, screenshot);
  }
  await pass.fill(PASSPHRASE);
  await pass.press("Enter"); // keyboard submission
  await page.waitForFunction(() => /^#\/(patients|admin)/.test(location.hash), null, { timeout: LONG });
}

async function createKey(page, uid) {
  await page.goto(`${args.relay}/#/keys/new`);
  await page.getByLabel("User id").fill(uid);
  await page.locator("#new-passphrase").fill(PASSPHRASE);
  await page.locator("#new-passphrase-again").fill(PASSPHRASE);
  await page.locator("#new-passphrase-again").press("Enter");
  await waitForHash(page, /^#\/enrolment$/);
  await page.locator("#enrolment-request").waitFor();
}

async function enrol(admin, requestText, uid) {
  await admin.goto(`${args.relay}/#/admin/users`);
  await admin.getByLabel("Enrolment request").fill(requestText);
  await admin.getByRole("button", { name: "Enrol" }).click();
  return textMatching(admin, "#enrol-msg", new RegExp(`Enrolled ${uid.replace(".", "\\.")}`));
}

/** Waits until the patient list the sign-in landed on has checked its records: a view still
 * loading when the next page is opened renders over that page, and the app then shows the
 * newer page again, afresh (so what was typed into it meanwhile is lost). */
async function listSettled(page) {
  if ((await page.evaluate(() => location.hash)) === "#/patients") {
    await page.locator("#patients").waitFor({ timeout: LONG });
  }
}

async function newPatient(page, { name, born, sex, number }) {
  await listSettled(page);
  await page.getByRole("navigation").getByRole("link", { name: "New patient" }).click();
  await page.locator("#profile-display_name").waitFor();
  await page.getByLabel("Name").fill(name);
  await page.locator("#profile-date_of_birth").fill(born);
  await page.getByLabel("Sex").selectOption(sex);
  await page.getByLabel("Hospital number").fill(number);
}

async function fillVitals(page, { heart, systolic, temperature, triage, notes }) {
  await page.getByLabel("Questionnaire", { exact: true }).selectOption("vital-signs@1");
  await page.locator("#q-heart_rate").fill(heart);
  await page.locator("#q-systolic").fill(systolic);
  await page.locator("#q-temperature").fill(temperature);
  if (triage) await page.locator("#q-triage").selectOption(triage);
  if (notes) await page.locator("#q-notes").fill(notes);
}

/** The newest verified vital-signs entry of the timeline: {tid, block}. */
async function newestVerifiedVitals(page) {
  const entry = page.locator('#timeline li.entry[data-status="verified"]', { hasText: "Vital signs" }).first();
  await entry.waitFor();
  const badge = await entry.locator(".badge").textContent();
  const m = badge.match(/Verified on chain · block (\d+)/);
  if (!m) throw new Error(`unexpected badge: ${badge}`);
  return { tid: await entry.getAttribute("data-tid"), block: Number(m[1]) };
}

/** Reloads `page` (which locks the key again), unlocks it with the passphrase and waits for
 * the timeline entry of `tid`, checked: returns {status, badge, detail}. */
async function reloadUnlockAndRead(page, tid) {
  await page.reload();
  const pass = page.getByLabel("Passphrase", { exact: true });
  await pass.fill(PASSPHRASE);
  await pass.press("Enter");
  return readEntry(page, tid);
}

/** The checked timeline entry of `tid`: {status, badge, detail}. */
async function readEntry(page, tid) {
  const entry = page.locator(`#timeline li.entry[data-tid="${tid}"]`);
  await entry.waitFor({ timeout: LONG });
  const detail = entry.locator(".detail");
  return {
    status: await entry.getAttribute("data-status"),
    badge: await entry.locator(".badge").textContent(),
    detail: (await detail.count()) ? await detail.textContent() : null,
  };
}

/** One JSON-RPC call to the test's anvil. */
async function rpc(method, params = []) {
  const res = await fetch(args.rpc, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
  });
  const body = await res.json();
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result;
}

/** Deploys a second, empty MediBlock registry on the test's chain (from anvil's last dev
 * account, which nothing else uses) and returns its address: a real registry where none of
 * the relay's records are anchored, like one a dishonest relay would announce. */
async function deployOtherRegistry() {
  const { readFileSync } = await import("node:fs");
  const artifact = JSON.parse(readFileSync(new URL("../../contracts/out/MediBlockRegistry.json", import.meta.url), "utf8"));
  const accounts = await rpc("eth_accounts");
  const from = accounts[accounts.length - 1];
  const admin = from.toLowerCase().replace(/^0x/, "").padStart(64, "0");
  const hash = await rpc("eth_sendTransaction", [{ from, data: `${artifact.bytecode.object}${admin}`, gas: "0x1c9c380" }]);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const receipt = await rpc("eth_getTransactionReceipt", [hash]);
    if (receipt) {
      if (receipt.status !== "0x1" || !receipt.contractAddress) throw new Error(`registry deployment failed: ${JSON.stringify(receipt)}`);
      return receipt.contractAddress;
    }
    if (Date.now() > deadline) throw new Error("the second registry was not mined in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The pin this browser keeps, as stored. */
function storedPin(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem("mediblock.pin") ?? "null"));
}

async function adminKey() {
  step = "the administrator imports the relay's admin.key into the browser";
  const admin = await person("admin");
  await admin.goto(`${args.relay}/#/keys/import`);
  await admin.locator("#admin-keyfile").setInputFiles(args.adminKeyFile);
  await admin.locator("#new-passphrase").fill(PASSPHRASE);
  await admin.locator("#new-passphrase-again").fill(PASSPHRASE);
  await shot(admin, "import-admin-key");
  await admin.getByRole("button", { name: "Import the administrator key" }).click();
  result.adminLanding = await waitForHash(admin, /^#\/(patients|admin)/);
  result.adminMe = await admin.evaluate(() => JSON.parse(sessionStorage.getItem("mediblock.session") ?? "null")?.uid ?? null);

  step = "a wrong key file is refused in words";
  const stranger = await person("stranger");
  await stranger.goto(`${args.relay}/#/keys/import`);
  await stranger.locator("#admin-keyfile").setInputFiles({ name: "admin.key", mimeType: "text/plain", buffer: Buffer.from("not a key") });
  await stranger.locator("#new-passphrase").fill(PASSPHRASE);
  await stranger.locator("#new-passphrase-again").fill(PASSPHRASE);
  await stranger.getByRole("button", { name: "Import the administrator key" }).click();
  result.badKeyFile = await textMatching(stranger, "#admin-msg", /key file/i);
}

async function flow() {
  step = "the administrator signs in";
  const admin = await person("admin");
  await signIn(admin);
  await waitForHash(admin, /^#\/admin\/users$/);
  await admin.locator("#users").waitFor();
  await shot(admin, "admin-users");
  await assertLabelled(admin, "admin-users");

  step = "nurse creates a key";
  const nurse = await person("nurse");
  await createKey(nurse, "nurse.ana");
  await nurse.getByLabel("Role").selectOption("nurse");
  const request = await nurse.locator("#enrolment-request").textContent();
  const parsed = JSON.parse(request);
  if (parsed.uid !== "nurse.ana" || parsed.role !== "nurse") throw new Error(`enrolment request: ${request}`);
  await shot(nurse, "enrolment");
  await assertLabelled(nurse, "enrolment");

  step = "admin enrols the nurse";
  result.enrolled = await enrol(admin, request, "nurse.ana");
  await admin.locator('#users tr[data-uid="nurse.ana"]').waitFor();

  step = "nurse signs in and creates a patient";
  await signIn(nurse);
  await newPatient(nurse, { name: "Ada Lovelace", born: "1985-12-10", sex: "female", number: "H-1001" });
  await shot(nurse, "new-patient");
  await assertLabelled(nurse, "new-patient");
  await nurse.getByRole("button", { name: "Create patient" }).click();
  const hash = await nurse.waitForFunction(() => /^#\/patients\/[0-9a-f]{32}$/.test(location.hash) && location.hash, null, { timeout: LONG });
  result.pid = (await hash.jsonValue()).split("/").pop();
  await nurse.getByRole("heading", { name: "Ada Lovelace" }).waitFor({ timeout: LONG });

  step = "nurse fills the vital signs and sees them verified on chain";
  await fillVitals(nurse, { heart: "72", systolic: "120", temperature: "36.8", triage: "green", notes: "Resting, comfortable." });
  await nurse.locator("#send").click();
  result.vitalsMessage = await textMatching(nurse, "#q-msg", /Verified on chain in block \d+/, LONG);
  const vitals = await newestVerifiedVitals(nurse);
  result.vitalsTid = vitals.tid;
  result.vitalsBlock = vitals.block;
  if (!result.vitalsMessage.includes(`block ${vitals.block}`)) throw new Error(`message and badge disagree: ${result.vitalsMessage}`);
  await shot(nurse, "patient");
  await assertLabelled(nurse, "patient");

  step = "an out-of-range value is flagged before sending";
  const entriesBefore = await nurse.locator("#timeline li.entry").count();
  await fillVitals(nurse, { heart: "400", systolic: "120", temperature: "36.8" });
  await nurse.locator("#q-heart_rate").press("Tab");
  result.violationShown = await textMatching(nurse, "#q-heart_rate-error", /\S/);
  if ((await nurse.locator("#q-heart_rate").getAttribute("aria-invalid")) !== "true") throw new Error("the field is not marked invalid");
  await nurse.locator("#send").click();
  result.notSent = await textMatching(nurse, "#q-msg", /^Not sent/);
  const entriesAfter = await nurse.locator("#timeline li.entry").count();
  if (entriesAfter !== entriesBefore) throw new Error("an invalid record was sent");
  await shot(nurse, "violation");

  step = "a value the chain's rules refuse ends up rejected, with the reason (sent after a used ticket was replaced)";
  // The page's first ticket for this record is one already bound to the first vital-signs
  // record (its tid's first 8 bytes): the relay answers 409 ticket_used, and the page must
  // get a fresh ticket, seal again and send once more. Only that one ticket answer is
  // injected; everything else is the real relay.
  const usedTicket = BigInt(`0x${vitals.tid.slice(0, 16)}`).toString();
  const ticketsGiven = [];
  const submissionStatuses = [];
  const onSubmission = (response) => {
    const r = response.request();
    if (r.method() === "POST" && new URL(r.url()).pathname === "/api/v1/submissions") submissionStatuses.push(response.status());
  };
  nurse.on("response", onSubmission);
  await nurse.route("**/api/v1/tickets", async (route) => {
    if (route.request().method() === "POST" && ticketsGiven.length === 0) {
      ticketsGiven.push(usedTicket);
      return route.fulfill({ status: 201, json: { ticket: usedTicket, expires_at: Date.now() + 3_600_000 } });
    }
    const response = await route.fetch();
    const json = await response.json();
    ticketsGiven.push(json.ticket);
    return route.fulfill({ response, json });
  });
  await fillVitals(nurse, { heart: "220", systolic: "120", temperature: "36.8" });
  await nurse.locator("#send").click();
  result.chainRejected = await textMatching(nurse, "#q-msg", /^Rejected: /, LONG);
  await nurse.unroute("**/api/v1/tickets");
  nurse.off("response", onSubmission);
  result.ticketRetry = { ticketsGiven, submissionStatuses };
  if (ticketsGiven.length !== 2 || ticketsGiven[1] === usedTicket || !/^[0-9]+$/.test(ticketsGiven[1] ?? "")) {
    throw new Error(`expected the used ticket, then one fresh ticket: ${JSON.stringify(ticketsGiven)}`);
  }
  if (JSON.stringify(submissionStatuses) !== JSON.stringify([409, 202])) {
    throw new Error(`expected 409 ticket_used, then 202: ${JSON.stringify(submissionStatuses)}`);
  }
  const rejectedEntry = nurse.locator('#timeline li.entry[data-status="rejected"]');
  await rejectedEntry.waitFor();
  result.rejectedEntry = await rejectedEntry.textContent();
  result.chainRejectedTid = await rejectedEntry.getAttribute("data-tid");
  if (BigInt(`0x${result.chainRejectedTid.slice(0, 16)}`).toString() !== ticketsGiven[1]) {
    throw new Error(`the rejected record's tid ${result.chainRejectedTid} does not start with its fresh ticket ${ticketsGiven[1]}`);
  }
  if (!/Heart rate/.test(result.rejectedEntry)) throw new Error(`rejected entry without reason: ${result.rejectedEntry}`);
  await shot(nurse, "rejected-on-chain");

  step = "record detail";
  await nurse.locator(`#timeline li.entry[data-tid="${vitals.tid}"] a`, { hasText: "Details" }).click();
  await nurse.locator("#record-facts").waitFor({ timeout: LONG });
  const facts = await nurse.locator("#record-facts").textContent();
  for (const expected of [vitals.tid, String(vitals.block), "vital-signs, version 1"]) {
    if (!facts.includes(expected)) throw new Error(`record detail lacks ${expected}: ${facts}`);
  }
  await shot(nurse, "record-detail");

  step = "the record's proof file downloads";
  // The relay checkpoints the log shortly after the record is stored; until then the page
  // says so, and a person tries again. Poll that with a deadline.
  const deadline = Date.now() + LONG;
  for (;;) {
    const download = nurse.waitForEvent("download", { timeout: 5_000 }).catch(() => null);
    await nurse.getByRole("button", { name: "Download proof file" }).click();
    const file = await download;
    if (file) {
      const path = await file.path();
      result.proof = (await import("node:fs")).readFileSync(path, "utf8");
      result.proofName = file.suggestedFilename();
      break;
    }
    const message = await nurse.locator("#proof-msg").textContent();
    if (Date.now() > deadline) throw new Error(`no proof file: ${message}`);
    log("proof not ready:", message);
  }

  step = "wallet doctor creates a key with the wallet's address";
  const doctor = await person("wallet", { wallet: true });
  await createKey(doctor, "dr.wallet");
  await doctor.getByLabel("Role").selectOption("doctor");
  await doctor.getByRole("button", { name: "Use my wallet's address" }).click();
  await doctor.waitForFunction((a) => document.querySelector("#wallet").value.toLowerCase() === a.toLowerCase(), args.walletAddress);
  const walletRequest = await doctor.locator("#enrolment-request").textContent();
  if ((JSON.parse(walletRequest).eth_address ?? "").toLowerCase() !== args.walletAddress.toLowerCase()) {
    throw new Error(`enrolment request without the wallet: ${walletRequest}`);
  }

  step = "admin enrols the wallet doctor";
  await enrol(admin, walletRequest, "dr.wallet");

  step = "wallet doctor submits through the wallet";
  await signIn(doctor);
  await newPatient(doctor, { name: "Grace Hopper", born: "1936-12-09", sex: "female", number: "H-2002" });
  await doctor.getByRole("button", { name: "Create patient" }).click();
  await doctor.getByRole("heading", { name: "Grace Hopper" }).waitFor({ timeout: LONG });
  await fillVitals(doctor, { heart: "88", systolic: "135", temperature: "37.2" });
  await doctor.locator("#send-wallet").click();
  await doctor.locator("#wallet-confirm").waitFor({ state: "visible", timeout: LONG });
  result.walletSummary = await doctor.locator("#wallet-confirm").textContent();
  await shot(doctor, "wallet-summary");
  await doctor.locator("#wallet-send").click();
  result.walletMessage = await textMatching(doctor, "#q-msg", /Verified on chain in block \d+/, LONG);
  const walletRecord = await newestVerifiedVitals(doctor);
  result.walletTid = walletRecord.tid;
  result.walletPid = (await doctor.evaluate(() => location.hash)).split("/").pop();
  result.walletBlock = walletRecord.block;

  step = "the wallet refuses";
  await doctor.evaluate(() => { window.__mediblockRefuse = true; });
  await fillVitals(doctor, { heart: "90", systolic: "130", temperature: "37.0" });
  await doctor.locator("#send-wallet").click();
  await doctor.locator("#wallet-confirm").waitFor({ state: "visible", timeout: LONG });
  await doctor.locator("#wallet-send").click();
  result.refusalMessage = await textMatching(doctor, "#q-msg", /declined/i, LONG);
  await shot(doctor, "wallet-refused");

  step = "a wallet on another network is told so";
  await doctor.evaluate(() => { window.__mediblockRefuse = false; window.__mediblockChainId = "0x1"; });
  await fillVitals(doctor, { heart: "91", systolic: "131", temperature: "37.1" });
  await doctor.locator("#send-wallet").click();
  await doctor.locator("#wallet-confirm").waitFor({ state: "visible", timeout: LONG });
  await doctor.locator("#wallet-send").click();
  result.wrongNetworkMessage = await textMatching(doctor, "#q-msg", /Switch the network/, LONG);
  await doctor.evaluate(() => { window.__mediblockChainId = null; });

  step = "the refused record shows as pending in the timeline";
  const walletPid = result.walletPid;
  await doctor.getByRole("navigation").getByRole("link", { name: "Patients" }).click();
  await doctor.locator("#patients").waitFor({ timeout: LONG });
  await doctor.getByRole("link", { name: "Grace Hopper" }).click();
  await waitForHash(doctor, new RegExp(`^#/patients/${walletPid}$`));
  const pending = doctor.locator('#timeline li.entry[data-status="pending"]').first();
  await pending.waitFor({ timeout: LONG });
  result.pendingText = await pending.textContent();
  if (!/Pending/.test(result.pendingText) || !/wallet/.test(result.pendingText)) throw new Error(`pending entry: ${result.pendingText}`);
  await shot(doctor, "pending");

  step = "admin checks and publishes a template";
  await admin.goto(`${args.relay}/#/admin/templates`);
  await admin.getByLabel("Start from").selectOption("assessment@1");
  await admin.getByRole("button", { name: "Check" }).click();
  result.templateCheck = await textMatching(admin, "#tpl-msg", /^Valid: assessment@2/);
  await admin.getByRole("button", { name: "Publish" }).click();
  result.templatePublished = await textMatching(admin, "#tpl-msg", /^Published assessment@2/, LONG);
  await admin.locator("#templates").getByText("assessment").first().waitFor();
  await shot(admin, "templates");
  await assertLabelled(admin, "templates");

  await registryPin(nurse, result.pid, vitals.tid);
}

/** The nurse pins the registry and log her browser trusts: the announced ones (still
 * verified after a reload), then another registry (a warning, and the record no longer
 * verified), the right registry with another log (TAMPERED: its anchors are not the
 * hospital's), then none (verified again). Leaves no pin behind for the later phases. */
async function registryPin(nurse, pid, tid) {
  const pin = {};
  result.registryPin = pin;
  const badgeSel = `#timeline li.entry[data-tid="${tid}"] .badge`;

  step = "without a pin, the footer names the relay's registry as announced, not pinned";
  await nurse.goto(`${args.relay}/#/patients/${pid}`);
  pin.before = await readEntry(nurse, tid);
  pin.noteBefore = await textMatching(nurse, "#registry-note", /announced by the relay, not pinned/);
  pin.pinBefore = await storedPin(nurse);
  pin.warningBefore = await nurse.locator("#registry-warning").count();
  await shot(nurse, "registry-announced");

  step = "the nurse trusts the announced registry; after a reload the record is still verified";
  await nurse.getByRole("button", { name: "Trust this registry" }).click();
  pin.trustMessage = await textMatching(nurse, "#pin-msg", /^You now trust registry/);
  pin.pinnedAfterTrust = await storedPin(nurse);
  pin.trusted = await reloadUnlockAndRead(nurse, tid);
  pin.noteTrusted = await textMatching(nurse, "#registry-note", /pinned in this browser/);
  pin.warningWhenTrusted = await nurse.locator("#registry-warning").count();
  if (!/^Verified on chain · block \d+$/.test(pin.trusted.badge) || pin.warningWhenTrusted !== 0) {
    throw new Error(`with the announced registry pinned: ${JSON.stringify(pin)}`);
  }
  await shot(nurse, "registry-pinned");

  step = "the settings form refuses a malformed address, chain id and log in words";
  await nurse.locator("#registry-settings summary").click();
  await nurse.getByLabel("Registry contract address").fill("0x1234");
  await nurse.getByLabel("Chain id").fill("0");
  await nurse.getByLabel("Log number").fill("65536");
  await nurse.getByRole("button", { name: "Save", exact: true }).click();
  pin.invalidMessage = await textMatching(nurse, "#pin-msg", /^Not saved/);
  pin.invalidRegistryError = await nurse.locator("#pin-registry-error").textContent();
  pin.invalidChainError = await nurse.locator("#pin-chain-error").textContent();
  pin.invalidLogError = await nurse.locator("#pin-log-error").textContent();
  pin.invalidMarked = (await nurse.getByLabel("Registry contract address").getAttribute("aria-invalid")) === "true"
    && (await nurse.getByLabel("Chain id").getAttribute("aria-invalid")) === "true"
    && (await nurse.getByLabel("Log number").getAttribute("aria-invalid")) === "true";
  pin.pinAfterInvalid = await storedPin(nurse);
  await shot(nurse, "registry-invalid");

  step = "the nurse pins another registry; after a reload a warning shows and the record is not verified";
  const other = "0x000000000000000000000000000000000000dEaD";
  await nurse.getByLabel("Registry contract address").fill(other);
  await nurse.getByLabel("Chain id").fill("31337");
  await nurse.getByLabel("Log number").fill(String(pin.pinnedAfterTrust.log));
  await nurse.getByRole("button", { name: "Save", exact: true }).click();
  pin.saveMessage = await textMatching(nurse, "#pin-msg", /^Saved/);
  pin.pinnedOther = await storedPin(nurse);
  pin.other = await reloadUnlockAndRead(nurse, tid);
  pin.warning = await textMatching(nurse, "#registry-warning", /not the registry you trust/);
  if (/^Verified on chain/.test(pin.other.badge)) throw new Error(`verified against another registry: ${JSON.stringify(pin.other)}`);
  await shot(nurse, "registry-warning");

  step = "the warning stays on the other pages";
  await nurse.getByRole("navigation").getByRole("link", { name: "Patients" }).click();
  await nurse.locator("#patients").waitFor({ timeout: LONG });
  pin.warningOnPatients = await nurse.locator("#registry-warning").isVisible();
  await nurse.goto(`${args.relay}/#/patients/${pid}`);
  await readEntry(nurse, tid);

  step = "the nurse pins a real registry that holds none of the relay's records: TAMPERED";
  pin.otherRegistry = await deployOtherRegistry();
  await nurse.locator("#registry-settings summary").click();
  await nurse.getByLabel("Registry contract address").fill(pin.otherRegistry);
  await nurse.getByLabel("Chain id").fill("31337");
  await nurse.getByLabel("Log number").fill(String(pin.pinnedAfterTrust.log));
  await nurse.getByRole("button", { name: "Save", exact: true }).click();
  await textMatching(nurse, "#pin-msg", /^Saved/);
  // Saving checks the page's records again, without a reload.
  await textMatching(nurse, badgeSel, /^TAMPERED$/, LONG);
  pin.emptyRegistry = await readEntry(nurse, tid);
  pin.warningEmptyRegistry = await textMatching(nurse, "#registry-warning", /not the registry you trust/);
  await shot(nurse, "registry-other-tampered");

  step = "the nurse pins the relay's registry with another log: its anchors are not that log's, TAMPERED";
  await nurse.getByLabel("Registry contract address").fill(pin.pinnedAfterTrust.registry);
  await nurse.getByLabel("Log number").fill(String(pin.pinnedAfterTrust.log + 1));
  await nurse.getByRole("button", { name: "Save", exact: true }).click();
  await textMatching(nurse, "#pin-msg", /^Saved/);
  await textMatching(nurse, badgeSel, /^TAMPERED$/, LONG);
  pin.otherLog = await readEntry(nurse, tid);
  pin.pinnedOtherLog = await storedPin(nurse);
  pin.warningOtherLog = await textMatching(nurse, "#registry-warning", /not the registry you trust/);
  await shot(nurse, "registry-other-log");

  step = "the nurse clears the pin; the record is verified again";
  await nurse.getByRole("button", { name: "Clear", exact: true }).click();
  pin.clearMessage = await textMatching(nurse, "#pin-msg", /^Cleared/);
  await textMatching(nurse, badgeSel, /^Verified on chain · block \d+$/, LONG);
  pin.cleared = await readEntry(nurse, tid);
  pin.pinAfterClear = await storedPin(nurse);
  pin.warningAfterClear = await nurse.locator("#registry-warning").count();
  if (pin.pinAfterClear !== null || pin.warningAfterClear !== 0) throw new Error(`pin not cleared: ${JSON.stringify(pin)}`);
  await shot(nurse, "registry-cleared");
}

async function tampered() {
  const { pid, tamperedTid, rejectedTid, chainRejectedTid, walletPid, relabelledTid, movedTid, erasedTid, fakeErasedTid } = args.extra;

  step = "nurse signs in again and finds the patient";
  const nurse = await person("nurse");
  await signIn(nurse, "sign-in");
  await nurse.locator("#patients").waitFor({ timeout: LONG });
  await nurse.getByLabel("Search patients").fill("ada");
  result.searchCount = await textMatching(nurse, "#patient-count", /^1 of 2 patients$/);
  const row = nurse.locator("#patients tbody tr", { hasText: "Ada Lovelace" });
  result.listFlag = await row.locator(".badge").textContent();
  await shot(nurse, "patients");
  await row.getByRole("link", { name: "Ada Lovelace" }).click();
  await waitForHash(nurse, new RegExp(`^#/patients/${pid}$`));

  step = "the changed record shows TAMPERED";
  const entry = nurse.locator(`#timeline li.entry[data-tid="${tamperedTid}"]`);
  await entry.waitFor({ timeout: LONG });
  result.tamperedStatus = await entry.getAttribute("data-status");
  result.tamperedBadge = await entry.locator(".badge").textContent();
  result.tamperedDetail = await entry.locator(".detail").textContent();
  result.verifiedCount = await nurse.locator('#timeline li.entry[data-status="verified"]').count();
  if (result.tamperedBadge !== "TAMPERED") throw new Error(`badge: ${result.tamperedBadge}`);
  await shot(nurse, "tampered");

  step = "a record filed under this patient from another one shows TAMPERED";
  const moved = nurse.locator(`#timeline li.entry[data-tid="${movedTid}"]`);
  await moved.waitFor({ timeout: LONG });
  result.movedStatus = await moved.getAttribute("data-status");
  result.movedDetail = await moved.locator(".detail").textContent();

  step = "a lawfully erased record shows Erased; one erased only in the database shows TAMPERED";
  const erased = nurse.locator(`#timeline li.entry[data-tid="${erasedTid}"]`);
  await erased.waitFor({ timeout: LONG });
  result.erasedStatus = await erased.getAttribute("data-status");
  const fakeErased = nurse.locator(`#timeline li.entry[data-tid="${fakeErasedTid}"]`);
  await fakeErased.waitFor({ timeout: LONG });
  result.fakeErasedStatus = await fakeErased.getAttribute("data-status");
  result.fakeErasedDetail = await fakeErased.locator(".detail").textContent();
  await shot(nurse, "erased");

  step = "a wrong passphrase is refused in words";
  const admin = await person("admin");
  await admin.goto(`${args.relay}/#/`);
  const pass = admin.getByLabel("Passphrase", { exact: true });
  await pass.fill("not my passphrase");
  await pass.press("Enter");
  result.wrongPassphrase = await textMatching(admin, "#sign-in-msg", /passphrase does not unlock/);

  step = "admin sees the rejected record with its reasons";
  await signIn(admin);
  await admin.goto(`${args.relay}/#/admin/rejected`);
  const rejected = admin.locator(`#rejected tr[data-tid="${rejectedTid}"]`);
  await rejected.waitFor({ timeout: LONG });
  result.rejectedRow = await rejected.textContent();
  if (!/Heart rate above the maximum of 250/.test(result.rejectedRow) || /is 400/.test(result.rejectedRow)) throw new Error(`rejected row without reasons: ${result.rejectedRow}`);
  const byChain = admin.locator(`#rejected tr[data-tid="${chainRejectedTid}"]`);
  result.chainRejectedRow = await byChain.textContent();
  if (!/the blockchain.*Heart rate/.test(result.chainRejectedRow)) throw new Error(`chain rejection row: ${result.chainRejectedRow}`);
  await shot(admin, "rejected");

  step = "a record whose commitment was changed shows TAMPERED";
  const doctor = await person("wallet", { wallet: true });
  await signIn(doctor);
  await doctor.goto(`${args.relay}/#/patients/${walletPid}`);
  const changed = doctor.locator(`#timeline li.entry[data-tid="${relabelledTid}"]`);
  await changed.waitFor({ timeout: LONG });
  result.relabelledStatus = await changed.getAttribute("data-status");
  result.relabelledDetail = await changed.locator(".detail").textContent();
  await changed.getByRole("link", { name: /Details/ }).click();
  await doctor.locator("#record-facts").waitFor({ timeout: LONG });
  result.relabelledFacts = await doctor.locator("#record-facts").textContent();
  await shot(doctor, "tampered-commitment");
}

/** ATTACK 1: the relay's operator anchored a record's tid and commitment with values of
 * its choosing (valid on chain) and stored it as validated. The patient's chart shows it
 * TAMPERED, saying the chain judged other values, and the honest records verified. */
async function attack() {
  const { pid, attackTid, honestTid } = args.extra;

  step = "the nurse opens the chart of the patient whose record was anchored with other values";
  const nurse = await person("nurse");
  await signIn(nurse);
  await listSettled(nurse);
  await nurse.goto(`${args.relay}/#/patients/${pid}`);
  result.attack = await readEntry(nurse, attackTid);
  result.honest = await readEntry(nurse, honestTid);
  result.verifiedCount = await nurse.locator('#timeline li.entry[data-status="verified"]').count();
  if (result.attack.badge !== "TAMPERED") throw new Error(`the falsified anchor: ${JSON.stringify(result.attack)}`);
  if (result.honest.status !== "verified") throw new Error(`the honest record: ${JSON.stringify(result.honest)}`);
  const entry = nurse.locator(`#timeline li.entry[data-tid="${attackTid}"]`);
  result.attackSummary = await entry.textContent();
  await entry.scrollIntoViewIfNeeded();
  await shot(nurse, "attack-values");

  step = "the record's detail names both values hashes";
  await entry.getByRole("link", { name: /Details/ }).click();
  await nurse.locator("#record-facts").waitFor({ timeout: LONG });
  result.attackCheckDetail = await nurse.locator("#check-detail").textContent();
  result.attackFacts = await nurse.locator("#record-facts").textContent();
  await shot(nurse, "attack-values-detail");
}

try {
  if (args.phase === "admin-key") await adminKey();
  else if (args.phase === "flow") await flow();
  else if (args.phase === "tampered") await tampered();
  else if (args.phase === "attack") await attack();
  else throw new Error(`unknown phase ${args.phase}`);
  result.ok = true;
} catch (err) {
  result.ok = false;
  result.step = step;
  result.error = String(err?.stack ?? err);
  log("failed:", err);
  for (const [i, c] of contexts.entries()) {
    for (const p of c.pages()) await p.screenshot({ path: join(args.screenshots, `failure-${args.phase}-${i}.png`), fullPage: true }).catch(() => {});
  }
} finally {
  for (const c of contexts) await c.close().catch(() => {});
  clearTimeout(watchdog);
}
console.log(JSON.stringify(result));
process.exit(result.ok ? 0 : 1);
