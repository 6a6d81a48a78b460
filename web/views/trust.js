// Which registry the pages check records against, shown on every page: a warning banner
// when this browser pins a registry and the relay announces another; in the footer, the
// registry in use (pinned, or only announced by the relay) with "Trust this registry" and a
// small form to pin a registry known from elsewhere or to clear the pin.

import { state } from "/lib/session.js";
import { h, field, say, slot } from "/lib/ui.js";
import { announced, clearPin, pinConflict, pinProblems, pinUnreadable, readPin, savePin } from "/lib/pin.js";

/** Called after the pin changed, so the page on screen checks its records again. */
let onChange = () => {};

function where(r) {
  return r ? `${r.registry} on chain ${r.chain_id ?? "unknown"}` : "none";
}

/** The persistent warning when the relay announces another registry than the pinned one. */
function banner() {
  const conflict = pinConflict();
  if (!conflict) return null;
  const { pinned, announced: relay } = conflict;
  const uses = relay
    ? `This relay uses registry ${relay.registry} on chain ${relay.chain_id ?? "unknown"}, not the registry you trust (${pinned.registry} on chain ${pinned.chain_id}).`
    : `This relay announces no registry; you trust registry ${pinned.registry} on chain ${pinned.chain_id}.`;
  return h("div", { id: "registry-warning", class: "notice error banner", role: "alert" },
    h("strong", {}, "Registry warning. "),
    uses,
    " Records are checked against the one you trust; records this relay anchored elsewhere show as not verified or TAMPERED. ",
    "If your hospital has moved to a new registry, confirm its address with them (not through this site) before you trust it.");
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
      "Registry ", h("span", { class: "mono" }, pinned.registry), ` on chain ${pinned.chain_id} `,
      h("strong", {}, "(pinned in this browser)"),
      pinConflict() ? "; the relay announces another one." : "; the relay announces the same one."));
  } else if (relay) {
    facts.push(h("p", { id: "registry-note" },
      "Registry ", h("span", { class: "mono" }, relay.registry), ` on chain ${relay.chain_id ?? "unknown"} `,
      "(announced by the relay, not pinned). ",
      relay.chain_id ? h("button", { type: "button", class: "secondary", id: "trust-registry", onclick: () => {
        const problems = savePin(relay.registry, String(relay.chain_id));
        if (Object.keys(problems).length) return say("pin-msg", "error", `Not saved: ${Object.values(problems).join(" ")}`);
        changed(`You now trust registry ${where(relay)}: records are checked against it even if the relay announces another.`);
      } }, "Trust this registry") : null));
  } else {
    facts.push(h("p", { id: "registry-note" }, "This relay announces no registry, and none is pinned in this browser."));
  }
  if (pinUnreadable()) {
    facts.push(h("p", { class: "bad" }, "The trusted registry saved in this browser cannot be read, so it is ignored. Save it again below."));
  }

  const registry = h("input", { type: "text", spellcheck: "false", autocomplete: "off", value: pinned?.registry ?? "" });
  const chain = h("input", { type: "text", inputmode: "numeric", autocomplete: "off", value: pinned ? String(pinned.chain_id) : "" });
  const errors = {
    registry: h("span", { class: "field-error", id: "pin-registry-error" }),
    chainId: h("span", { class: "field-error", id: "pin-chain-error" }),
  };
  const form = h("form", {
    id: "pin-form",
    novalidate: true,
    onsubmit: (ev) => {
      ev.preventDefault();
      const problems = pinProblems(registry.value, chain.value);
      for (const [key, input] of [["registry", registry], ["chainId", chain]]) {
        errors[key].textContent = problems[key] ?? "";
        if (problems[key]) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      }
      const count = Object.keys(problems).length;
      if (count) {
        const which = count === 2 ? "the registry address and the chain id need"
          : problems.registry ? "the registry address needs" : "the chain id needs";
        say("pin-msg", "error", `Not saved: ${which} correcting (see under ${count === 2 ? "each field" : "the field"}).`);
        (problems.registry ? registry : chain).focus();
        return;
      }
      savePin(registry.value, chain.value);
      changed(`Saved: records are checked against registry ${where(readPin())}.`);
    },
  },
    h("div", { class: "row top" },
      withError(field("pin-registry", "Registry contract address", registry, "0x and 40 hexadecimal characters, as your hospital publishes it."), registry, errors.registry),
      withError(field("pin-chain", "Chain id", chain, "The network's number, for example 1 for Ethereum mainnet."), chain, errors.chainId)),
    h("div", { class: "row" },
      h("button", { type: "submit", id: "pin-save" }, "Save"),
      h("button", { type: "button", class: "secondary", id: "pin-clear", disabled: !pinned && !pinUnreadable(), onclick: () => {
        clearPin();
        changed("Cleared: records are checked against the registry the relay announces.");
      } }, "Clear")),
    slot("pin-msg"));
  return h("section", { id: "registry-trust", "aria-label": "Trusted registry" },
    facts,
    h("details", { id: "registry-settings", open },
      h("summary", {}, "Trusted registry settings"),
      h("p", {}, "Pin the registry contract your hospital publishes, so this browser checks every record against it whatever the relay says."),
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
