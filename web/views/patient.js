// A patient's page (questionnaire from the template, comments, timeline with a check badge
// on every record) and a record's detail (transaction, block, template version, proof).

import { state, call, template as getTemplate, templates, sentRecords } from "/lib/session.js";
import { h, render, notice, say, slot, field, explain, busy, when, short, download } from "/lib/ui.js";
import { patientRecords, profileOf, show } from "/lib/records.js";
import { templateForm } from "/lib/forms.js";
import { send, stateText, reasons } from "/lib/submit.js";

/** The questionnaire last chosen, kept across re-renders of the patient page. */
let lastChoice = null;

/** A record's values in the template's order (unknown names last). */
function ordered(t, values) {
  const names = (t?.attributes ?? []).map((a) => a.name).filter((n) => n in (values ?? {}));
  const rest = Object.keys(values ?? {}).filter((n) => !names.includes(n));
  return [...names, ...rest].map((n) => [n, values[n]]);
}

function badge(status, text) {
  return h("span", { class: `badge ${status}` }, text);
}

/** Questionnaire templates this user may fill in (newest version of each, no profile). */
async function questionnaires() {
  const role = state.session.role;
  const newest = new Map();
  for (const t of await templates()) {
    if (t.id === "patient-profile" || !(t.roles ?? []).includes(role)) continue;
    if (!newest.has(t.id) || newest.get(t.id).version < t.version) newest.set(t.id, t);
  }
  return [...newest.values()];
}

/** Asks the person to confirm what their wallet will sign; resolves true or false. */
function confirmWallet(summary) {
  return new Promise((resolve) => {
    const box = document.getElementById("wallet-confirm");
    const yes = h("button", { type: "button", id: "wallet-send", onclick: () => { box.hidden = true; resolve(true); } }, "Send with my wallet");
    const no = h("button", { type: "button", class: "secondary", onclick: () => { box.hidden = true; resolve(false); } }, "Cancel");
    box.replaceChildren(
      h("h3", { tabindex: "-1" }, summary.title ?? "What your wallet will sign"),
      h("dl", { class: "facts" }, (summary.lines ?? []).map((l) => [h("dt", {}, l.label), h("dd", {}, String(l.value))])),
      h("p", {}, "Your wallet sends this transaction and pays its gas."),
      h("div", { class: "row" }, yes, no));
    box.hidden = false;
    box.querySelector("h3").focus();
  });
}

async function timelineEntries(pid, checked) {
  const stored = new Set(checked.map((c) => c.tid));
  const local = sentRecords(pid).filter((s) => !stored.has(s.tid));
  const pending = await Promise.all(local.map(async (s) => {
    try {
      const view = await call("GET", `/submissions/${s.tid}`);
      return { ...s, view };
    } catch {
      return null;
    }
  }));
  const entries = checked.map((c) => ({ kind: "record", at: c.timestamp ?? 0, c }));
  for (const p of pending.filter(Boolean)) {
    if (p.view.state === "stored") continue; // listed once the store read catches up
    entries.push({ kind: "submission", at: p.at, p });
  }
  return entries.sort((a, b) => b.at - a.at);
}

function renderEntry(pid, e, titles) {
  if (e.kind === "submission") {
    const v = e.p.view;
    const tpl = state.templates.get(`${e.p.template}@${e.p.version}`);
    const rejected = v.state === "rejected";
    const expired = v.state === "expired"
      || (v.state === "awaiting_wallet" && e.p.deadline && Date.now() / 1000 > e.p.deadline);
    if (expired) {
      return h("li", { class: "entry", dataset: { tid: e.p.tid, status: "expired" } },
        h("div", { class: "entry-head" },
          h("strong", {}, titles.get(e.p.template) ?? e.p.template), " ",
          badge("rejected", "Not sent"), " ",
          h("span", { class: "muted" }, when(e.p.at))),
        h("p", {}, "Your wallet did not send this record before the relay's signature expired, so it is not on chain and not stored. Fill in the questionnaire again to send it."));
    }
    if (v.state === "failed") {
      return h("li", { class: "entry", dataset: { tid: e.p.tid, status: "failed" } },
        h("div", { class: "entry-head" },
          h("strong", {}, titles.get(e.p.template) ?? e.p.template), " ",
          badge("rejected", "Not anchored"), " ",
          h("span", { class: "muted" }, when(e.p.at))),
        h("p", {}, stateText(v, tpl)));
    }
    return h("li", { class: "entry", dataset: { tid: e.p.tid, status: rejected ? "rejected" : "pending" } },
      h("div", { class: "entry-head" },
        h("strong", {}, titles.get(e.p.template) ?? e.p.template), " ",
        badge(rejected ? "rejected" : "pending", rejected ? "Rejected" : "Pending"), " ",
        h("span", { class: "muted" }, when(e.p.at))),
      h("p", {}, rejected ? `Reasons: ${reasons(v.detail, tpl)}` : stateText(v, tpl)));
  }
  const c = e.c;
  const t = state.templates.get(`${c.template}@${c.version}`);
  const summary = ordered(t, c.values)
    .slice(0, 8)
    .map(([name, value]) => `${t?.attributes?.find((a) => a.name === name)?.label ?? name}: ${show(t, name, value, c.display)}`);
  return h("li", { class: `entry ${c.status}`, dataset: { tid: c.tid, status: c.status } },
    h("div", { class: "entry-head" },
      h("strong", {}, t?.title ?? c.template ?? (c.status === "erased" ? "Erased record" : "Unreadable record")), " ",
      badge(c.status, c.text), " ",
      h("span", { class: "muted" }, [when(c.timestamp), c.uid ? ` · by ${c.uid}` : ""].join(""))),
    summary.length ? h("p", {}, summary.join(" · ")) : null,
    ["tampered", "unchecked", "erased"].includes(c.status) ? h("p", { class: `detail ${c.status}` }, c.detail) : null,
    h("a", { href: `#/patients/${pid}/records/${c.tid}` }, "Details", h("span", { class: "sr-only" }, ` of record ${c.tid}`)));
}

export async function page(pid) {
  render(h("h2", {}, "Patient"), h("p", { role: "status" }, "Loading and checking records…"));
  const [checked, forms] = await Promise.all([patientRecords(pid), questionnaires()]);
  for (const c of checked) {
    if (c.template && c.version) await getTemplate(c.template, c.version).catch(() => null);
  }
  const profile = profileOf(checked) ?? {};
  const titles = new Map([...state.templates.values()].map((t) => [t.id, t.title]));
  const entries = await timelineEntries(pid, checked);
  const latest = checked.filter((c) => c.status !== "tampered").sort((a, b) => (b.timestamp ?? 0) - (a.timestamp ?? 0))[0];

  const clinician = ["doctor", "nurse", "pathologist"].includes(state.session.role);
  const formArea = h("div", { id: "questionnaire" });
  const picker = h("select", {}, forms.map((t) => h("option", { value: `${t.id}@${t.version}` }, t.title)));
  if (forms.some((t) => `${t.id}@${t.version}` === lastChoice)) picker.value = lastChoice;
  let current = null;
  const showForm = () => {
    const t = forms.find((f) => `${f.id}@${f.version}` === picker.value);
    lastChoice = picker.value;
    current = t ? templateForm(t, "q") : null;
    formArea.replaceChildren(current ? current.element : notice("info", "No questionnaire is available for your role."));
  };
  picker.addEventListener("change", showForm);

  const submitWith = async (button, wallet) => {
    const t = forms.find((f) => `${f.id}@${f.version}` === picker.value);
    const violations = current.check(true);
    if (violations.length) {
      say("q-msg", "error", `Not sent: ${violations.map((v) => v.message).join(" ")}`);
      return;
    }
    await busy(button, async () => {
      try {
        say("q-msg", "info", "Signing and sending…");
        const r = await send({ template: t, pid, previous: latest?.commitment ?? null, values: current.values(), wallet,
          confirmWallet, onUpdate: (v) => say("q-msg", "info", stateText(v, t)) });
        await page(pid);
        say("q-msg", r.final.state === "stored" ? "ok" : "error", stateText(r.final, t));
      } catch (err) {
        say("q-msg", "error", explain(err));
      }
    });
  };
  const sendButton = h("button", { type: "submit", id: "send" }, "Sign and send");
  const walletButton = state.me?.eth_address
    ? h("button", { type: "button", id: "send-wallet", onclick: (ev) => submitWith(ev.currentTarget, true) }, "Sign and send with my wallet")
    : null;

  render(
    h("h2", {}, profile.display_name ?? `Patient ${short(pid)}`),
    h("dl", { class: "facts", id: "patient-facts" },
      h("dt", {}, "Date of birth"), h("dd", {}, profile.date_of_birth ?? "—"),
      h("dt", {}, "Sex"), h("dd", {}, profile.sex ?? "—"),
      h("dt", {}, "Hospital number"), h("dd", {}, profile.hospital_number ?? "—"),
      h("dt", {}, "Patient id"), h("dd", { class: "mono" }, pid)),
    clinician && forms.length ? h("section", { "aria-labelledby": "q-h" },
      h("h3", { id: "q-h" }, "New questionnaire"),
      h("form", { id: "questionnaire-form", novalidate: true, onsubmit: (ev) => { ev.preventDefault(); submitWith(sendButton, false); } },
        field("template-picker", "Questionnaire", picker),
        formArea,
        h("div", { class: "row" }, sendButton, walletButton),
        slot("q-msg")),
      h("section", { id: "wallet-confirm", class: "confirm", hidden: true, "aria-live": "polite" })) : null,
    h("section", { "aria-labelledby": "t-h" },
      h("h3", { id: "t-h" }, "Timeline"),
      entries.length
        ? h("ol", { class: "timeline", id: "timeline" }, entries.map((e) => renderEntry(pid, e, titles)))
        : h("p", {}, "No records yet.")),
  );
  if (clinician && forms.length) showForm();
}

export async function detail(pid, tid) {
  render(h("h2", {}, "Record"), h("p", { role: "status" }, "Loading and checking the record…"));
  const checked = await patientRecords(pid);
  const c = checked.find((x) => x.tid === tid);
  if (!c) {
    return render(h("h2", {}, "Record not found"), notice("error", "This patient has no stored record with this id."),
      h("a", { href: `#/patients/${pid}` }, "Back to the patient"));
  }
  const t = c.template && c.version ? await getTemplate(c.template, c.version).catch(() => null) : null;
  const ack = c.opened?.ack;
  const fact = (label, value, mono) => [h("dt", {}, label), h("dd", { class: mono ? "mono" : null }, value ?? "—")];
  const proofButton = h("button", {
    type: "button",
    onclick: (ev) => busy(ev.currentTarget, async () => {
      try {
        const proof = await call("GET", `/records/${tid}/proof`);
        download(`mediblock-proof-${tid}.json`, JSON.stringify(proof, null, 2));
        say("proof-msg", "ok", "Proof file downloaded.");
      } catch (err) {
        const text = err.code === "not_checkpointed"
          ? "This record is not yet covered by a checkpoint anchored on chain. Try again in a minute."
          : err.status === 404 ? "This relay has no proof file for this record." : explain(err);
        say("proof-msg", "error", text);
      }
    }),
  }, "Download proof file");
  render(
    h("h2", {}, `${t?.title ?? c.template ?? "Record"} `, badge(c.status, c.text)),
    h("p", { class: c.status === "tampered" ? "notice error" : "muted", id: "check-detail" }, c.detail),
    h("dl", { class: "facts", id: "record-facts" },
      fact("Transaction id", c.tid, true),
      fact("Commitment (as the database lists it)", c.commitment, true),
      c.opened?.commitment && c.opened.commitment !== c.commitment
        ? fact("Commitment of the signed content", c.opened.commitment, true) : null,
      fact("Leaf index in the record log", c.record.leaf_index ?? "—"),
      fact("Template", c.template ? `${c.template}, version ${c.version}` : null),
      fact("Author", c.uid),
      fact("Written", when(c.timestamp)),
      fact("Author's signature", c.opened ? (c.opened.signatureOk ? "valid" : "INVALID") : "not checked"),
      fact("Content matches its commitment", c.opened ? (c.opened.commitmentOk ? "yes" : "NO") : "not checked"),
      // The stored acknowledgement's word; the badge says whether the chain agrees.
      fact("Verdict in the stored acknowledgement", c.opened?.verdict ?? null),
      fact("Values hash of the signed content (on-chain values)", c.opened?.valuesHash, true),
      fact("Values hash the chain judged", c.chain?.valuesHash, true),
      fact("Transaction hash", ack?.txHash ?? c.chain?.txHash, true),
      fact("Block", ack?.blockNumber ?? c.chain?.blockNumber),
      fact("Block hash", ack?.blockHash, true),
      fact("Chain id", ack?.chainId),
      fact("Registry contract", ack?.contract, true),
      fact("Checked on chain by this browser", c.chain ? `${c.chain.status}${c.chain.detail ? ` — ${c.chain.detail}` : ""}` : "no")),
    h("h3", {}, "Values"),
    h("table", { id: "record-values" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Question"), h("th", { scope: "col" }, "Answer"))),
      h("tbody", {}, ordered(t, c.values).map(([name, value]) => h("tr", {},
        h("th", { scope: "row" }, t?.attributes?.find((a) => a.name === name)?.label ?? name),
        h("td", {}, show(t, name, value, c.display)))))),
    h("h3", {}, "Proof"),
    h("p", {}, "A proof file lets anyone check this record against the blockchain without trusting this server."),
    proofButton, slot("proof-msg"),
    h("p", {}, h("a", { href: `#/patients/${pid}` }, "Back to the patient")));
}
