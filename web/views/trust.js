// Which registry and log the pages check records against, shown on every page: a warning
// banner when this browser pins a registry and log and the relay announces others; in the
// footer, the registry and log in use (pinned, or only announced by the relay) with "Trust
// this registry" and a small form to pin a registry and log known from elsewhere or to
// clear the pin.

import { state } from "/lib/session.js";
import { h, field, say, slot } from "/lib/ui.js";
import { announced, clearPin, pinConflict, pinProblems, pinUnreadable, readPin, savePin } from "/lib/pin.js";

/** Called after the pin changed, so the page on screen checks its records again. */
let onChange = () => {};

function where(r) {
  return r ? `${r.registry} on chain ${r.chain_id ?? "unknown"}, log ${r.log ?? "unknown"}` : "none";
}

/** The persistent warning when the relay announces another registry than the pinned one. */
function banner() {
  const conflict = pinConflict();
  if (!conflict) return null;
  const { pinned, announced: relay } = conflict;
  const uses = relay
    ? `This relay uses registry ${where(relay)}, not the registry you trust (${where(pinned)}).`
    : `This relay announces no registry; you trust registry ${where(pinned)}.`;
  return h("div", { id: "registry-warning", class: "notice error banner", role: "alert" },
    h("strong", {}, "Registry warning. "),
    uses,
    " Records are checked against the registry and log you trust; records this relay anchored elsewhere show as not verified or TAMPERED. ",
    "If your hospital has moved to a new registry or log, confirm its address and log number with them (not through this site) before you trust it.");
}

/** Adds a field's error line under it, read out with the field. */
function withError(fieldEl, input, error) {
  fieldEl.append(error);
  input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), error.id].filter(Boolean).join(" "));
  return fieldEl;
}

/** The registry facts in the footer, with the pin's settings. */
function note({ open = false } = {}) {
  const pinned = readPin();
  const relay = announced();
  const facts = [];
  if (pinned) {
    facts.push(h("p", { id: "registry-note" },
      "Registry ", h("span", { class: "mono" }, pinned.registry), ` on chain ${pinned.chain_id}, log ${pinned.log} `,
      h("strong", {}, "(pinned in this browser)"),
      pinConflict() ? "; the relay announces another registry or log." : "; the relay announces the same ones."));
  } else if (relay) {
    facts.push(h("p", { id: "registry-note" },
      "Registry ", h("span", { class: "mono" }, relay.registry), ` on chain ${relay.chain_id ?? "unknown"}, `,
      relay.log ? `log ${relay.log} ` : "no log ",
      "(announced by the relay, not pinned). ",
      relay.log ? null : "Without a log, this browser cannot check records on chain. ",
      relay.chain_id && relay.log ? h("button", { type: "button", class: "secondary", id: "trust-registry", onclick: () => {
        const problems = savePin(relay.registry, String(relay.chain_id), String(relay.log));
        if (Object.keys(problems).length) return say("pin-msg", "error", `Not saved: ${Object.values(problems).join(" ")}`);
        changed(`You now trust registry ${where(relay)}: records are checked against it even if the relay announces another registry or log.`);
      } }, "Trust this registry") : null));
  } else {
    facts.push(h("p", { id: "registry-note" }, "This relay announces no registry, and none is pinned in this browser."));
  }
  if (pinUnreadable()) {
    facts.push(h("p", { class: "bad" }, "The trusted registry saved in this browser cannot be read (a pin saved before logs existed has no log number), so it is ignored. Save it again below, with its log."));
  }

  const registry = h("input", { type: "text", spellcheck: "false", autocomplete: "off", value: pinned?.registry ?? "" });
  const chain = h("input", { type: "text", inputmode: "numeric", autocomplete: "off", value: pinned ? String(pinned.chain_id) : "" });
  const log = h("input", { type: "text", inputmode: "numeric", autocomplete: "off", value: pinned ? String(pinned.log) : "" });
  const errors = {
    registry: h("span", { class: "field-error", id: "pin-registry-error" }),
    chainId: h("span", { class: "field-error", id: "pin-chain-error" }),
    log: h("span", { class: "field-error", id: "pin-log-error" }),
  };
  const inputs = [["registry", registry, "the registry address"], ["chainId", chain, "the chain id"], ["log", log, "the log number"]];
  const form = h("form", {
    id: "pin-form",
    novalidate: true,
    onsubmit: (ev) => {
      ev.preventDefault();
      const problems = pinProblems(registry.value, chain.value, log.value);
      for (const [key, input] of inputs) {
        errors[key].textContent = problems[key] ?? "";
        if (problems[key]) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      }
      const bad = inputs.filter(([key]) => problems[key]);
      if (bad.length) {
        const names = bad.map(([, , name]) => name);
        const which = names.length === 1 ? `${names[0]} needs`
          : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]} need`;
        say("pin-msg", "error", `Not saved: ${which} correcting (see under ${bad.length === 1 ? "the field" : "each field"}).`);
        bad[0][1].focus();
        return;
      }
      savePin(registry.value, chain.value, log.value);
      changed(`Saved: records are checked against registry ${where(readPin())}.`);
    },
  },
    h("div", { class: "row top" },
      withError(field("pin-registry", "Registry contract address", registry, "0x and 40 hexadecimal characters, as your hospital publishes it."), registry, errors.registry),
      withError(field("pin-chain", "Chain id", chain, "The network's number, for example 1 for Ethereum mainnet."), chain, errors.chainId),
      withError(field("pin-log", "Log number", log, "Your hospital's log on the registry (a whole number from 1), as it publishes it."), log, errors.log)),
    h("div", { class: "row" },
      h("button", { type: "submit", id: "pin-save" }, "Save"),
      h("button", { type: "button", class: "secondary", id: "pin-clear", disabled: !pinned && !pinUnreadable(), onclick: () => {
        clearPin();
        changed("Cleared: records are checked against the registry and log the relay announces.");
      } }, "Clear")),
    slot("pin-msg"));
  return h("section", { id: "registry-trust", "aria-label": "Trusted registry" },
    facts,
    h("details", { id: "registry-settings", open },
      h("summary", {}, "Trusted registry settings"),
      h("p", {}, "Pin the registry contract and the log number your hospital publishes, so this browser checks every record against them whatever the relay says. A registry keeps one log per relay: only anchors in your hospital's log count."),
      form));
}

/** Shows the banner and the footer for the current pin and relay. */
function draw(options) {
  document.getElementById("registry-banner")?.replaceChildren(...[banner()].filter(Boolean));
  document.getElementById("footer")?.replaceChildren(note(options));
}

function changed(message) {
  draw({ open: true });
  say("pin-msg", "ok", message);
  onChange();
}

/** Draws the registry banner and footer once the relay's facts are loaded; `recheck` runs
 * after the pin changes so the page's badges follow it. */
export function mount(recheck) {
  if (!state.info) return;
  const first = onChange !== recheck;
  onChange = recheck;
  if (first) draw();
}
