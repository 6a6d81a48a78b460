// Reading a patient's records and checking each one in the browser: open it (signature and
// commitment, and the hash of its on-chain values under its template), then ask the chain
// itself whether the registry anchored exactly this commitment in the trusted log, and
// judged exactly these values under this template — so a changed database row, or a relay
// that lies (even one that anchored the record with values of its choosing), shows as
// TAMPERED.

import { mb, state, call, template as getTemplate } from "/lib/session.js";
import { fixed } from "/lib/forms.js";
import { registryInUse } from "/lib/pin.js";

const keyCache = new Map();

/** The JSON-RPC endpoint the browser checks anchors with: a person's override
 * (localStorage "mediblock.rpc"), else the relay's configured one, else the wallet. */
export function rpcEndpoint() {
  return localStorage.getItem("mediblock.rpc") || state.info?.rpc_url || (window.ethereum ? "wallet" : null);
}

/** The sentence that starts a failed check's detail when the registry and log checked
 * against are the pinned ones and the relay announces others: the reason may be just that. */
function againstPin(trusted) {
  return trusted.conflict
    ? `Checked against the registry you trust (${trusted.registry} on chain ${trusted.chainId}, log ${trusted.log}), not the registry or log this relay announces. `
    : "";
}

/** Why a record cannot be checked on chain with this registry in use, or null when it can. */
function noChain(rpc, trusted) {
  if (!rpc || !trusted) return "No blockchain connection is configured in this browser.";
  if (!trusted.log) {
    return "This relay does not say which log of the registry its records are in, and this browser pins none, so the records cannot be checked on chain.";
  }
  return null;
}

/** An author's public keys: its own, else `GET /users/{uid}/keys` (public keys are readable
 * by anyone signed in), so the browser checks every author's signature itself. */
function author(uid) {
  if (uid === state.session?.uid && state.me) return Promise.resolve(state.me);
  // One request per author, shared by the records checked at the same time.
  if (!keyCache.has(uid)) {
    keyCache.set(uid, call("GET", `/users/${encodeURIComponent(uid)}/keys`));
  }
  return keyCache.get(uid).catch(() => null);
}

function authorKeys(uid) {
  return author(uid).then((u) => u?.keys ?? null);
}

/** The values of a record as the row carries them, for display when it cannot be checked. */
function rawValues(record) {
  const attrs = record.validated?.signed?.ti?.attributes ?? {};
  return Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, v?.value ?? v]));
}

/** Why a record is TAMPERED, in words, from the problem codes of the relay and the client. */
const PROBLEMS = {
  does_not_open: "its stored bytes were changed, so it no longer opens with the relay's key",
  envelope_corrupt: "its stored bytes were changed, so it can no longer be read",
  signature_invalid: "the author's signature does not match the content",
  commitment_mismatch: "the commitment the database lists for it is not the one of the signed content",
  tid_mismatch: "it is filed under another transaction id than the one signed",
  no_on_chain_values: "its on-chain values cannot be read under its template, so no verdict of the chain can be about it",
};

function problemText(code) {
  return PROBLEMS[code] ?? `it failed a check (${code})`;
}

/** A value as a person reads it, with the template's scale, labels and unit (the WASM
 * client's `display` text when it gave one). */
export function show(template, name, value, display) {
  if (display && display[name] !== undefined) return display[name];
  const attr = template?.attributes?.find((a) => a.name === name);
  if (value === undefined || value === null) return "";
  if (typeof value === "boolean") return value ? "Yes" : "No";
  if (attr?.kind?.type === "integer" && typeof value === "number") {
    return `${fixed(value, attr.kind.scale ?? 0)}${attr.unit ? ` ${attr.unit}` : ""}`;
  }
  if (attr?.unit && attr.kind?.type === "integer") return `${value} ${attr.unit}`;
  return String(value);
}

/**
 * Checks one record of patient `pid`. Returns {record, opened, values, uid, template,
 * version, timestamp, status: "verified"|"rejected"|"tampered"|"unchecked"|"erased", text,
 * detail, chain}. An erased mark is only believed after `confirmErasure`.
 */
export async function check(record, pid) {
  const ti = record.validated?.signed?.ti;
  const base = {
    record,
    tid: record.tid,
    commitment: record.commitment,
    opened: null,
    uid: ti?.uid ?? null,
    template: ti?.template?.id ?? null,
    version: ti?.template?.version ?? null,
    timestamp: ti?.created_at ?? null,
    values: rawValues(record),
    chain: null,
  };
  if (record.erased_by) {
    return { ...base, status: "erased", text: "Erased",
      detail: `Lawfully erased by record ${record.erased_by}: its content was destroyed on an administrator's signed request; its commitment stays in the log and on chain.` };
  }
  if (!record.validated) {
    return { ...base, status: "tampered", text: "TAMPERED",
      detail: `This record was changed in the database: ${problemText(record.problem ?? "does_not_open")}.` };
  }
  const keys = await authorKeys(base.uid).catch(() => null);
  if (!keys) {
    return { ...base, status: "unchecked", text: "Not checked",
      detail: `The public keys of ${base.uid} are not available to this browser, so the signature was not checked.` };
  }
  const template = ti?.template ? await getTemplate(ti.template.id, ti.template.version).catch(() => null) : null;
  let opened;
  try {
    opened = mb.openRecord(record, keys, template);
  } catch (err) {
    return { ...base, status: "tampered", text: "TAMPERED", detail: `This record does not open: ${err.message}` };
  }
  const withOpened = { ...base, opened, values: opened.values ?? base.values, display: opened.display ?? null,
    template: opened.template ?? base.template, version: opened.version ?? base.version,
    timestamp: opened.timestamp ?? base.timestamp, uid: opened.uid ?? base.uid };
  if (opened.problem === "no_on_chain_values") {
    return { ...withOpened, status: "tampered", text: "TAMPERED",
      detail: `This record cannot have been anchored as signed: ${problemText(opened.problem)}${opened.valuesProblem ? ` (${opened.valuesProblem.replace(/\.$/, "")})` : ""}.` };
  }
  if (opened.problem || !opened.signatureOk || !opened.commitmentOk) {
    const why = opened.problem ? problemText(opened.problem)
      : !opened.signatureOk ? problemText("signature_invalid")
        : problemText("commitment_mismatch");
    return { ...withOpened, status: "tampered", text: "TAMPERED", detail: `This record was changed: ${why}.` };
  }
  if (pid && opened.pid && opened.pid !== pid) {
    return { ...withOpened, status: "tampered", text: "TAMPERED",
      detail: "This record is filed under another patient than the one its author signed it for." };
  }
  if (opened.commitment && opened.commitment !== record.commitment) {
    return { ...withOpened, status: "tampered", text: "TAMPERED", detail: "The database row claims another commitment than the signed record." };
  }
  const rpc = rpcEndpoint();
  const trusted = registryInUse();
  const unavailable = noChain(rpc, trusted);
  if (unavailable) {
    return { ...withOpened, status: "unchecked", text: "Not checked on chain", detail: unavailable };
  }
  if (!opened.valuesHash) {
    // Without the template the record names, its on-chain values are unknown, and the
    // chain's verdict could be about any values.
    return { ...withOpened, status: "unchecked", text: "Not checked on chain",
      detail: `The template ${base.template}, version ${base.version}, is not available to this browser, so the values the chain judged could not be compared with this record's.` };
  }
  let chain;
  try {
    chain = await mb.verifyOnChain({
      rpc,
      // The pinned registry, chain and log when this browser has them, never the relay's
      // then.
      registry: trusted.registry,
      log: trusted.log,
      tid: opened.tid ?? record.tid,
      commitment: record.commitment,
      verdict: opened.verdict ?? "valid",
      blockNumber: opened.ack?.blockNumber ?? undefined,
      txHash: opened.ack?.txHash ?? undefined,
      chainId: trusted.chainId,
      // Where the scan starts when the ACK's block (the relay's word) is not the anchor's.
      fromBlock: trusted.fromBlock,
      // What the chain's verdict must be about: this record's on-chain values under its
      // template (the template as the relay served it; the chain's templateInfo of the
      // event's handle must hold its hash).
      valuesHash: opened.valuesHash,
      templateHash: opened.templateHash,
      templateChainId: opened.templateChainId,
      templateVersion: opened.templateVersion,
    });
  } catch (err) {
    return { ...withOpened, status: "unchecked", text: "Not checked on chain",
      detail: trusted.conflict
        ? `${againstPin(trusted)}The chain could not confirm this record there: ${err.message}`
        : `The blockchain could not be asked: ${err.message}` };
  }
  const done = { ...withOpened, chain };
  if (chain.status !== "verified") {
    return { ...done, status: "tampered", text: "TAMPERED",
      // The check's own sentence says what is wrong: no anchor in the log, another
      // commitment or verdict in the record's anchoring event, a verdict about other values
      // or under another template, or its ticket taken by another record.
      detail: againstPin(trusted) + (chain.detail ?? (chain.status === "missing"
        ? "The chain has no anchor for this record."
        : "The chain anchored something else for this record.")) };
  }
  if (opened.verdict === "rejected") {
    return { ...done, status: "rejected", text: `Rejected on chain (block ${chain.blockNumber})`,
      detail: `The chain's rules refused this record${opened.rejectedAttribute !== undefined ? ` (on-chain attribute ${opened.rejectedAttribute})` : ""}.` };
  }
  return { ...done, status: "verified", text: `Verified on chain · block ${chain.blockNumber}`,
    detail: `Anchored in block ${chain.blockNumber}, transaction ${chain.txHash}.` };
}

/**
 * An erased mark from the store is believed only when this browser confirms it: the erasure
 * record it names is in the same patient's list and verified on chain, is of the `erasure`
 * template, names this very record, and was signed by an administrator; and the chain still
 * holds the erased record's commitment. Otherwise the record is TAMPERED.
 */
async function confirmErasure(c, checked) {
  const erasure = checked.find((e) => e.tid === c.record.erased_by);
  const refuse = (why) => ({ ...c, status: "tampered", text: "TAMPERED",
    detail: `The database marks this record as erased, but ${why}.` });
  if (!erasure) return refuse("the erasure record it names is not in this patient's records");
  if (erasure.status !== "verified") return refuse("the erasure record it names is not verified on chain");
  if (erasure.template !== "erasure") return refuse("the record it names is not an erasure");
  if (erasure.opened?.values?.erased_tid !== c.tid) return refuse("the erasure record names another record");
  const signer = await author(erasure.uid);
  if (signer?.role !== "admin") return refuse("the erasure was not signed by an administrator");
  const rpc = rpcEndpoint();
  const trusted = registryInUse();
  const unavailable = noChain(rpc, trusted);
  if (unavailable) return { ...c, status: "unchecked", text: "Erased (not checked on chain)", detail: unavailable };
  try {
    // The erased record's own ACK went with its content; the erasure's ACK block is the
    // hint, and the scan from the registry's deployment block finds it elsewhere. Its
    // content is destroyed, so there are no values to compare: only the commitment, in the
    // trusted log.
    const chain = await mb.verifyOnChain({ rpc, registry: trusted.registry, log: trusted.log, tid: c.tid,
      commitment: c.commitment, verdict: "valid", chainId: trusted.chainId,
      blockNumber: erasure.opened?.ack?.blockNumber ?? undefined,
      fromBlock: trusted.fromBlock });
    if (chain.status !== "verified") return refuse("the chain holds another commitment for it");
    return { ...c, chain };
  } catch (err) {
    return { ...c, status: "unchecked", text: "Erased (not checked on chain)", detail: `The blockchain could not be asked: ${err.message}` };
  }
}

/** A patient's stored records, each checked. */
export async function patientRecords(pid) {
  const records = await call("GET", `/patients/${pid}/records`);
  const checked = await Promise.all(records.map((r) => check(r, pid)));
  return Promise.all(checked.map((c) => (c.status === "erased" ? confirmErasure(c, checked) : c)));
}

/** The patient's profile (name, date of birth…) from their newest profile record. */
export function profileOf(checked) {
  const profiles = checked
    .filter((c) => c.template === "patient-profile" && c.status !== "tampered")
    .sort((a, b) => (b.timestamp ?? 0) - (a.timestamp ?? 0));
  return profiles[0]?.values ?? null;
}
