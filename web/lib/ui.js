// Small DOM helpers shared by the views: element building, messages in plain words,
// downloads. No framework: every view renders into <main> with these.

import { violationText } from "/lib/submit.js";

/** Builds an element: h("p", {class: "x", onclick: fn}, "text", child, ...). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replaces the page's main content and moves keyboard focus to its first heading. */
export function render(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children.flat());
  const heading = main.querySelector("h2");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

/** What a clinician reads for an error code, when the code's own message is too technical. */
const PLAIN = {
  unauthenticated: "You are not signed in, or your session has ended. Please sign in again.",
  forbidden: "Your role does not allow this.",
  wrong_passphrase: "That passphrase does not unlock this key. Check it and try again.",
  bad_keystore: "This file is not a MediBlock key file.",
  no_wallet: "No Ethereum wallet was found in this browser. Install or unlock one (for example MetaMask) and try again.",
  wallet_rejected: "You declined the request in your wallet, so the record was not sent to the blockchain and is not stored.",
  user_exists: "A user with this id is already enrolled.",
  template_exists: "This template version is already published. Raise the version number to publish a change.",
  chain_unavailable: "The blockchain cannot be reached right now. Try again in a moment.",
  duplicate_tid: "This record was already sent.",
  payload_too_large: "This is too large to send.",
  ticket_unknown: "The relay does not know the ticket this record was sealed with (it was not issued to you). Nothing was stored; send the record again.",
  ticket_expired: "The record's ticket expired before the relay accepted it, twice in a row. Nothing was stored; send the record again.",
  ticket_used: "The record's ticket was already taken by another record, twice in a row. Nothing was stored; send the record again.",
  too_many_tickets: "You have too many unused tickets at the relay, so it will not issue another now. Nothing was sent; try again later (unused tickets lapse after 15 minutes).",
  rate_limited: "Too many requests from you in a short time. Nothing was stored; wait a moment and try again.",
  queue_full: "The relay is busy anchoring earlier records. Nothing was stored; try again in a few seconds.",
};

/** A sentence for an error thrown by the WASM client or the relay. */
export function explain(err) {
  if (!err) return "Something went wrong.";
  const code = err.code;
  const list = err.violations ?? err.details;
  if (code === "rule_violation" && Array.isArray(list) && list.length) {
    return `Some values are not allowed: ${list.map((v) => violationText(v)).join("; ")}.`;
  }
  // Busy, not broken: said as such although it is a 503.
  if (code === "queue_full") return PLAIN.queue_full;
  if (code === "relay_error" || err.status >= 500) {
    return "The MediBlock server had a problem. Try again; if it keeps happening, tell your administrator.";
  }
  if (code === "rpc_error") {
    return `The blockchain could not be checked: ${err.message}`;
  }
  if (code && PLAIN[code]) return PLAIN[code];
  if (err instanceof TypeError && /fetch/i.test(err.message)) {
    return "The MediBlock server cannot be reached. Check your network connection.";
  }
  return err.message || String(err);
}

/** A message box (role=alert for errors so screen readers announce it). */
export function notice(kind, text) {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** Shows `text` in the element with id `id` (a live region), as `kind`. */
export function say(id, kind, text) {
  const el = document.getElementById(id);
  if (!el) return;
  el.className = `notice ${kind}`;
  el.setAttribute("role", kind === "error" ? "alert" : "status");
  el.textContent = text;
  el.hidden = !text;
}

/** An empty live region for later messages. */
export function slot(id) {
  return h("p", { id, class: "notice", role: "status", "aria-live": "polite", hidden: true });
}

/** Offers `text` as a file download. */
export function download(name, text, type = "application/json") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A labelled form field; `control` is the input element (its id is set here). */
export function field(id, label, control, hint) {
  control.id = id;
  if (!control.name) control.name = id;
  const parts = [h("label", { for: id }, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.splice(1, 0, h("span", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

/** Date and time for people (local time). */
export function when(ms) {
  if (ms === undefined || ms === null) return "";
  return new Date(Number(ms)).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

/** Shortens a long hex id for display; the full value stays in the title. */
export function short(hex, n = 10) {
  const s = String(hex ?? "");
  return s.length > n + 4 ? `${s.slice(0, n)}…` : s;
}

/** Disables a button while `work` runs, and re-enables it after. */
export async function busy(button, work) {
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}
