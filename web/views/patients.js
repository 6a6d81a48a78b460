// The patient list (with search) and the new-patient profile form.

import { state, call, latestTemplate } from "/lib/session.js";
import { h, render, notice, say, slot, field, explain, busy, when, short } from "/lib/ui.js";
import { check, profileOf } from "/lib/records.js";
import { templateForm } from "/lib/forms.js";
import { send, stateText } from "/lib/submit.js";

/** Patients with their names, which live only inside their sealed profile records. */
async function withNames(summaries) {
  return Promise.all(summaries.map(async (p) => {
    try {
      const records = await call("GET", `/patients/${p.pid}/records`);
      const profiles = records.filter((r) => r.validated?.signed?.ti?.template?.id === "patient-profile");
      const checked = await Promise.all(profiles.map(check));
      const damaged = records.some((r) => !r.validated) || checked.some((c) => c.status === "tampered");
      return { ...p, profile: profileOf(checked), damaged };
    } catch (err) {
      return { ...p, profile: null, error: explain(err) };
    }
  }));
}

export async function list() {
  render(h("h2", {}, "Patients"), h("p", { role: "status" }, "Loading patients…"));
  const patients = await withNames(await call("GET", "/patients"));
  const search = h("input", { type: "search", autocomplete: "off", placeholder: "Name, hospital number or id" });
  const body = h("tbody");
  const count = h("p", { id: "patient-count", role: "status", "aria-live": "polite" });
  const show = () => {
    const q = search.value.trim().toLowerCase();
    const rows = patients.filter((p) => !q
      || (p.profile?.display_name ?? "").toLowerCase().includes(q)
      || (p.profile?.hospital_number ?? "").toLowerCase().includes(q)
      || p.pid.startsWith(q));
    body.replaceChildren(...rows.map((p) => h("tr", {},
      h("td", {}, h("a", { href: `#/patients/${p.pid}` }, p.profile?.display_name ?? `Patient ${short(p.pid)}`)),
      h("td", {}, p.profile?.date_of_birth ?? ""),
      h("td", {}, p.profile?.hospital_number ?? ""),
      h("td", { class: "num" }, String(p.records)),
      h("td", {}, when(p.last_stored_at)),
      h("td", {}, p.damaged ? h("span", { class: "badge tampered" }, "TAMPERED") : p.error ? p.error : ""))));
    count.textContent = `${rows.length} of ${patients.length} patient${patients.length === 1 ? "" : "s"}`;
  };
  search.addEventListener("input", show);
  const clinician = ["doctor", "nurse", "pathologist"].includes(state.session.role);
  render(h("h2", {}, "Patients"),
    h("div", { class: "row" }, field("patient-search", "Search patients", search),
      clinician ? h("a", { class: "button", href: "#/patients/new" }, "New patient") : null),
    count,
    h("table", { id: "patients" },
      h("caption", { class: "sr-only" }, "Patients"),
      h("thead", {}, h("tr", {}, ["Name", "Date of birth", "Hospital number", "Records", "Last update", "Checks"].map((t) => h("th", { scope: "col" }, t)))),
      body));
  show();
}

export async function create() {
  const template = await latestTemplate("patient-profile");
  if (!template) {
    return render(h("h2", {}, "New patient"), notice("error", "The patient-profile template is not published on this relay."));
  }
  const form = templateForm(template, "profile");
  const button = h("button", { type: "submit" }, "Create patient");
  render(h("h2", {}, "New patient"),
    h("p", {}, "The profile is signed with your key and encrypted before it leaves this browser; only its commitment and the de-identified values go on chain."),
    h("form", {
      id: "new-patient",
      novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        const violations = form.check(true);
        if (violations.length) {
          return say("profile-msg", "error", `Please correct ${violations.length === 1 ? "one field" : `${violations.length} fields`} before sending.`);
        }
        await busy(button, async () => {
          try {
            say("profile-msg", "info", "Signing and sending…");
            const r = await send({ template, pid: null, previous: null, values: form.values(),
              onUpdate: (v) => say("profile-msg", "info", stateText(v)) });
            if (r.final.state === "stored") location.hash = `#/patients/${r.pid}`;
            else say("profile-msg", "error", stateText(r.final));
          } catch (err) {
            say("profile-msg", "error", explain(err));
          }
        });
      },
    }, form.element, button, slot("profile-msg")));
}
