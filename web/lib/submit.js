// Sending a record: seal it in the browser (signed, encrypted to the relay), send it by the
// relay's path or the author's wallet, and follow its state until it is stored or rejected.

import { mb, state, call, rememberSent } from "/lib/session.js";
import { registryInUse } from "/lib/pin.js";

/** What a submission's state means, in words. */
export function stateText(view, template) {
  switch (view?.state) {
    case "queued": return "Accepted by the relay; waiting to be anchored on the blockchain…";
    case "awaiting_wallet": return "Waiting for your wallet to send the transaction…";
    case "sent": return "Sent to the blockchain; waiting for confirmation…";
    case "stored": return `Verified on chain in block ${view.block_number} and stored.`;
    case "rejected": return `Rejected: ${reasons(view.detail, template)}`;
    case "expired": return "Not sent: the wallet did not send the transaction before the relay's signature expired. Nothing was anchored or stored.";
    case "failed": return "Not anchored: another record already used this record's ticket on the blockchain, so it can never be anchored. Nothing was stored; fill in the questionnaire again to send it.";
    default: return "Working…";
  }
}

/** One rule violation (the relay's JSON: {attribute, rule, …}) in words; `template`, when
 * given, names the attribute by its label. */
export function violationText(v, template, withValues = true) {
  if (v.message && withValues) return v.message;
  const a = template?.attributes?.find((x) => x.name === v.attribute)?.label ?? v.attribute;
  // Without values (the administrators' audit shows no health data): the rule only.
  const got = (text) => (withValues ? text : "");
  switch (v.rule) {
    case "required": return `${a} is required`;
    case "unknown": return `${a} is not part of this questionnaire`;
    case "wrong_type": return `${a} should be ${v.expected}${got(`, not ${v.got}`)}`;
    case "unparsable": return `${a} should be ${v.expected}`;
    case "below_min": return `${a}${got(` is ${v.got},`)} below the minimum of ${v.min}`;
    case "above_max": return `${a}${got(` is ${v.got},`)} above the maximum of ${v.max}`;
    case "not_allowed": return `${a}${got(` is "${v.got}", which is`)} not one of ${(v.allowed ?? []).join(", ")}`;
    case "too_long": return `${a} is too long (${got(`${v.got} of `)}at most ${v.max} characters)`;
    default: return JSON.stringify(v);
  }
}

/** Rejection reasons (the relay's or the chain's) as a sentence. */
export function reasons(detail, template, withValues = true) {
  if (!detail) return "no reason given.";
  if (Array.isArray(detail)) return `${detail.map((v) => violationText(v, template, withValues)).join("; ")}.`;
  if (Array.isArray(detail.violations)) return reasons(detail.violations, template, withValues);
  if (detail.message) return detail.message;
  if (detail.attribute_index !== undefined) {
    const attr = (template?.attributes ?? []).filter((a) => a.on_chain)[detail.attribute_index];
    return attr
      ? `the blockchain's rules refused the value of ${attr.label}.`
      : `the blockchain's rules refused on-chain value number ${detail.attribute_index + 1}.`;
  }
  return JSON.stringify(detail);
}

/** Ticket errors after which a fresh ticket and a new seal are worth one more try: the
 * ticket lapsed unused, or another record took it. Nothing was stored in either case. */
const RETRY_WITH_NEW_TICKET = new Set(["ticket_expired", "ticket_used"]);

/** A fresh ticket from the relay (`POST /api/v1/tickets`): its decimal string, which
 * `identity.seal` puts at the start of the record's tid. */
async function newTicket() {
  const answer = await call("POST", "/tickets");
  return answer?.ticket;
}

/**
 * Seals a record under a fresh ticket and posts it to `path`. When the relay answers
 * `ticket_expired` or `ticket_used`, gets another ticket, seals again (a new tid) and posts
 * once more; any other error is thrown. Returns {sealed, answer}.
 */
async function sealAndPost(path, request) {
  const seal = async () => state.identity.seal({ ...request, ticket: await newTicket() });
  let sealed = await seal();
  try {
    return { sealed, answer: await call("POST", path, sealed.body) };
  } catch (err) {
    if (!RETRY_WITH_NEW_TICKET.has(err?.code)) throw err;
    sealed = await seal();
    return { sealed, answer: await call("POST", path, sealed.body) };
  }
}

/**
 * Seals and sends a record. `confirmWallet(summary)` is awaited on the wallet path and must
 * resolve true to send. Returns {tid, pid, commitment, final}.
 */
export async function send({ template, pid, previous, values, wallet = false, confirmWallet, onUpdate }) {
  // The form's rules first, so a record that cannot be sealed does not take a ticket.
  const violations = mb.checkForm(template, values);
  if (violations.length) {
    const e = new Error(`The form has ${violations.length === 1 ? "a problem" : `${violations.length} problems`}: ${violations.map((v) => v.message).join(" ")}`);
    e.code = "rule_violation";
    e.violations = violations;
    throw e;
  }
  const trusted = registryInUse();
  if (wallet && trusted?.conflict) {
    // The relay prepares the wallet's transaction for its own registry, and the registry
    // files a co-signed record in the co-signing relay's log: not the registry or log this
    // browser trusts. The record would not count here, so send nothing.
    const e = new Error(`Not sent: your wallet would anchor this record on the relay's registry and log, not on the ones you trust (${trusted.registry} on chain ${trusted.chainId}, log ${trusted.log}). Nothing was sent.`);
    e.code = "registry_not_trusted";
    throw e;
  }
  const request = { template, relay: state.info, patient: pid ?? null, previous: previous ?? null, values };
  const { sealed, answer } = await sealAndPost(wallet ? "/submissions/wallet" : "/submissions", request);
  const remember = (extra) => rememberSent({ tid: sealed.tid, pid: sealed.pid, template: template.id, version: template.version, at: Date.now(), ...extra });
  if (wallet) {
    remember({ deadline: answer.wallet?.deadline });
    onUpdate?.(answer);
    // What this browser itself sealed and the registry it expects (the pinned one when it
    // has a pin): the wallet must send exactly that record there, whatever the relay prepared.
    const expected = {
      tid: sealed.tid,
      commitment: sealed.commitment,
      registry: trusted?.registry ?? null,
      chainId: trusted?.chainId ?? null,
    };
    const summary = mb.walletSummary(answer.wallet, template, expected);
    if (!(await confirmWallet(summary))) {
      const e = new Error("You cancelled before your wallet sent the record.");
      e.code = "wallet_rejected";
      throw e;
    }
    await mb.sendWalletTransaction(answer.wallet, expected);
  } else {
    remember();
    onUpdate?.(answer);
  }
  const final = await mb.followStatus(location.origin, state.session.token, sealed.tid, (v) => onUpdate?.(v));
  return { tid: sealed.tid, pid: sealed.pid, commitment: sealed.commitment, final };
}
