// The registry this browser trusts: a person may pin a registry contract, its chain and the
// relay's log on it (localStorage "mediblock.pin": {registry, chain_id, log}), known from
// somewhere other than the relay (the hospital's published address and log). With a pin,
// every on-chain check uses it and never the registry or log the relay announces in
// `/api/v1/info`, so a relay that announces a registry of its own, or another relay's log,
// cannot make its records look verified. A registry keeps one log per relay, and a tid is
// unique only within a log: the log says whose anchors count. No DOM here: the banner and
// the settings form are in /views/trust.js.

import { state } from "/lib/session.js";

export const PIN_KEY = "mediblock.pin";

/** The largest chain id the pages pass on exactly (the WASM client reads it as a JS number). */
const MAX_CHAIN_ID = Number.MAX_SAFE_INTEGER;

/** The largest log id (a registry numbers its logs 1, 2, … in 16 bits). */
const MAX_LOG = 65535;

/** Why a typed registry address, chain id or log is not acceptable, as sentences:
 * {registry?, chainId?, log?}; empty when all are fine. */
export function pinProblems(registryText, chainText, logText) {
  const problems = {};
  const registry = String(registryText ?? "").trim();
  const chain = String(chainText ?? "").trim();
  const log = String(logText ?? "").trim();
  if (registry === "") {
    problems.registry = "Enter the registry contract's address.";
  } else if (!/^0x[0-9a-fA-F]{40}$/.test(registry)) {
    problems.registry = "A registry address is 0x followed by 40 hexadecimal characters (0–9, a–f), as your hospital publishes it.";
  }
  if (chain === "") {
    problems.chainId = "Enter the chain id of the network the registry is on.";
  } else if (!/^[0-9]+$/.test(chain) || Number(chain) < 1 || Number(chain) > MAX_CHAIN_ID) {
    problems.chainId = "A chain id is a whole number of at least 1, for example 1 for Ethereum mainnet.";
  }
  if (log === "") {
    problems.log = "Enter the number of your hospital's log on the registry.";
  } else if (!/^[0-9]+$/.test(log) || Number(log) < 1 || Number(log) > MAX_LOG) {
    problems.log = `A log number is a whole number from 1 to ${MAX_LOG}, as your hospital publishes it with the registry.`;
  }
  return problems;
}

/** The pinned {registry, chain_id, log}, or null when there is none. A stored value that
 * does not read as a pin (a pin saved before logs existed has none) counts as none and is
 * reported by `pinUnreadable()`. */
export function readPin() {
  const raw = localStorage.getItem(PIN_KEY);
  if (raw === null) return null;
  try {
    const pin = JSON.parse(raw);
    const chain = typeof pin?.chain_id === "number" ? String(pin.chain_id) : "";
    const log = typeof pin?.log === "number" ? String(pin.log) : "";
    if (Object.keys(pinProblems(pin?.registry, chain, log)).length) return null;
    return { registry: pin.registry, chain_id: pin.chain_id, log: pin.log };
  } catch {
    return null;
  }
}

/** True when something is stored under the pin's key but it is not a valid pin. */
export function pinUnreadable() {
  return localStorage.getItem(PIN_KEY) !== null && readPin() === null;
}

/** Pins `registryText` on chain `chainText` with log `logText` after checking all three;
 * returns the problems in words ({} when saved). */
export function savePin(registryText, chainText, logText) {
  const problems = pinProblems(registryText, chainText, logText);
  if (Object.keys(problems).length) return problems;
  const pin = {
    registry: String(registryText).trim(),
    chain_id: Number(String(chainText).trim()),
    log: Number(String(logText).trim()),
  };
  localStorage.setItem(PIN_KEY, JSON.stringify(pin));
  return {};
}

/** Forgets the pin: checks use the relay's announced registry and log again. */
export function clearPin() {
  localStorage.removeItem(PIN_KEY);
}

/** The registry and log the relay announces ({registry, chain_id, log}, the chain id and log
 * null when it does not say), or null when it announces no registry. */
export function announced() {
  const i = state.info;
  return i?.registry ? { registry: i.registry, chain_id: i.chain_id ?? null, log: i.log ?? null } : null;
}

function same(a, b) {
  return !!a && !!b && a.registry.toLowerCase() === b.registry.toLowerCase()
    && Number(a.chain_id) === Number(b.chain_id) && Number(a.log) === Number(b.log);
}

/** When a pin exists and the relay announces another registry, chain or log (or none):
 * {pinned, announced}; otherwise null. */
export function pinConflict() {
  const pinned = readPin();
  if (!pinned) return null;
  const relay = announced();
  return same(pinned, relay) ? null : { pinned, announced: relay };
}

/**
 * What every on-chain check uses: {registry, chainId, log, fromBlock, pinned, conflict}, or
 * null when there is no registry to check against. With a pin: its registry, chain and log,
 * and `fromBlock` 0 unless the relay announces that same registry (its `registry_block` is
 * about its own registry). Without one: the relay's announcement, whose `log` is null when
 * the relay does not say which log its records are in (then nothing can be checked).
 */
export function registryInUse() {
  const pinned = readPin();
  const relay = announced();
  if (pinned) {
    const sameRegistry = !!relay && relay.registry.toLowerCase() === pinned.registry.toLowerCase()
      && Number(relay.chain_id) === Number(pinned.chain_id);
    return {
      registry: pinned.registry,
      chainId: pinned.chain_id,
      log: pinned.log,
      fromBlock: sameRegistry ? (state.info?.registry_block ?? 0) : 0,
      pinned: true,
      conflict: !same(pinned, relay),
    };
  }
  if (!relay) return null;
  return {
    registry: relay.registry,
    chainId: relay.chain_id ?? undefined,
    log: relay.log,
    fromBlock: state.info?.registry_block ?? 0,
    pinned: false,
    conflict: false,
  };
}
