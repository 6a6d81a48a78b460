// The registry this browser trusts: a person may pin a registry contract and chain
// (localStorage "mediblock.pin": {registry, chain_id}), known from somewhere other than the
// relay (the hospital's published address). With a pin, every on-chain check uses it and
// never the registry the relay announces in `/api/v1/info`, so a relay that announces a
// registry of its own cannot make its records look verified. No DOM here: the banner and
// the settings form are in /views/trust.js.

import { state } from "/lib/session.js";

export const PIN_KEY = "mediblock.pin";

/** The largest chain id the pages pass on exactly (the WASM client reads it as a JS number). */
const MAX_CHAIN_ID = Number.MAX_SAFE_INTEGER;

/** Why a typed registry address or chain id is not acceptable, as sentences: {registry?,
 * chainId?}; empty when both are fine. */
export function pinProblems(registryText, chainText) {
  const problems = {};
  const registry = String(registryText ?? "").trim();
  const chain = String(chainText ?? "").trim();
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
  return problems;
}

/** The pinned {registry, chain_id}, or null when there is none. A stored value that does
 * not read as a pin counts as none and is reported by `pinUnreadable()`. */
export function readPin() {
  const raw = localStorage.getItem(PIN_KEY);
  if (raw === null) return null;
  try {
    const pin = JSON.parse(raw);
    const chain = typeof pin?.chain_id === "number" ? String(pin.chain_id) : "";
    if (Object.keys(pinProblems(pin?.registry, chain)).length) return null;
    return { registry: pin.registry, chain_id: pin.chain_id };
  } catch {
    return null;
  }
}

/** True when something is stored under the pin's key but it is not a valid pin. */
export function pinUnreadable() {
  return localStorage.getItem(PIN_KEY) !== null && readPin() === null;
}

/** Pins `registryText` on chain `chainText` after checking both; returns the problems in
 * words ({} when saved). */
export function savePin(registryText, chainText) {
  const problems = pinProblems(registryText, chainText);
  if (Object.keys(problems).length) return problems;
  const pin = { registry: String(registryText).trim(), chain_id: Number(String(chainText).trim()) };
  localStorage.setItem(PIN_KEY, JSON.stringify(pin));
  return {};
}

/** Forgets the pin: checks use the relay's announced registry again. */
export function clearPin() {
  localStorage.removeItem(PIN_KEY);
}

/** The registry the relay announces, or null when it announces none. */
export function announced() {
  const i = state.info;
  return i?.registry ? { registry: i.registry, chain_id: i.chain_id ?? null } : null;
}

function same(a, b) {
  return !!a && !!b && a.registry.toLowerCase() === b.registry.toLowerCase()
    && Number(a.chain_id) === Number(b.chain_id);
}

/** When a pin exists and the relay announces another registry or chain (or none):
 * {pinned, announced}; otherwise null. */
export function pinConflict() {
  const pinned = readPin();
  if (!pinned) return null;
  const relay = announced();
  return same(pinned, relay) ? null : { pinned, announced: relay };
}

/**
 * What every on-chain check uses: {registry, chainId, fromBlock, pinned, conflict}, or null
 * when there is no registry to check against. With a pin: its registry and chain, and
 * `fromBlock` 0 unless the relay announces that same registry (its `registry_block` is
 * about its own registry). Without one: the relay's announcement.
 */
export function registryInUse() {
  const pinned = readPin();
  const relay = announced();
  if (pinned) {
    const matches = same(pinned, relay);
    return {
      registry: pinned.registry,
      chainId: pinned.chain_id,
      fromBlock: matches ? (state.info?.registry_block ?? 0) : 0,
      pinned: true,
      conflict: !matches,
    };
  }
  if (!relay) return null;
  return {
    registry: relay.registry,
    chainId: relay.chain_id ?? undefined,
    fromBlock: state.info?.registry_block ?? 0,
    pinned: false,
    conflict: false,
  };
}
