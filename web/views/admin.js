// Administration: users and roles (enrolment), the template editor (check and publish), and
// the rejected-records audit. Administrators do not read health data; none is shown here.

import { call, templates as listTemplates } from "/lib/session.js";
import { h, render, say, slot, field, explain, busy, when, short } from "/lib/ui.js";
import { reasons } from "/lib/submit.js";

const ROLE_NAMES = { doctor: "Doctor", nurse: "Nurse", pathologist: "Pathologist", auditor: "Auditor", admin: "Administrator" };

export async function users() {
  const list = await call("GET", "/users");
  const request = h("textarea", { rows: 8, spellcheck: "false", required: true });
  const role = h("select", {}, h("option", { value: "" }, "As in the request"),
    Object.entries(ROLE_NAMES).map(([v, t]) => h("option", { value: v }, t)));
  const button = h("button", { type: "submit" }, "Enrol");
  render(h("h2", {}, "Users and roles"),
    h("table", { id: "users" },
      h("thead", {}, h("tr", {}, ["User", "Role", "Wallet", "Signing key", "Enrolled", "Status"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, list.map((u) => h("tr", { dataset: { uid: u.uid } },
        h("td", {}, u.uid),
        h("td", {}, ROLE_NAMES[u.role] ?? u.role),
        h("td", { class: "mono" }, u.eth_address ?? ""),
        h("td", { class: "mono", title: u.keys.ed25519 }, short(u.keys.ed25519, 16)),
        h("td", {}, when(u.enrolled_at)),
        h("td", {}, u.revoked ? "revoked" : "active"))))),
    h("h3", {}, "Enrol a user"),
    h("form", {
      id: "enrol",
      onsubmit: async (ev) => {
        ev.preventDefault();
        let body;
        try {
          body = JSON.parse(request.value);
        } catch {
          return say("enrol-msg", "error", "The enrolment request is not valid JSON. Paste it exactly as the user's browser showed it.");
        }
        if (role.value) body.role = role.value;
        await busy(button, async () => {
          try {
            const u = await call("POST", "/users", body);
            await users();
            say("enrol-msg", "ok", `Enrolled ${u.uid} as ${ROLE_NAMES[u.role] ?? u.role}${u.eth_address ? ` with wallet ${u.eth_address}` : ""}.`);
          } catch (err) {
            say("enrol-msg", "error", explain(err));
          }
        });
      },
    },
      field("enrolment-request", "Enrolment request", request, "The JSON the user's browser shows on its enrolment page (user id, role, public keys, optional wallet)."),
      field("enrol-role", "Role", role),
      button, slot("enrol-msg")));
}

export async function templates() {
  const list = (await listTemplates()).sort((a, b) => a.id.localeCompare(b.id) || a.version - b.version);
  const editor = h("textarea", { rows: 22, spellcheck: "false", class: "code" });
  const pick = h("select", {}, h("option", { value: "" }, "Empty template"),
    list.map((t) => h("option", { value: `${t.id}@${t.version}` }, `${t.title} (${t.id}, version ${t.version})`)));
  pick.addEventListener("change", () => {
    const t = list.find((x) => `${x.id}@${x.version}` === pick.value);
    editor.value = JSON.stringify(t ? { ...t, version: t.version + 1 } : {
      id: "new-template", version: 1, title: "New questionnaire",
      attributes: [{ name: "score", label: "Score", kind: { type: "integer", scale: 0, min: 0, max: 10 }, required: true, on_chain: true }],
      roles: ["doctor", "nurse"],
    }, null, 2);
    say("tpl-msg", "info", "");
  });
  const parse = () => {
    try {
      return JSON.parse(editor.value);
    } catch (err) {
      say("tpl-msg", "error", `This is not valid JSON: ${err.message}`);
      return null;
    }
  };
  const checkButton = h("button", {
    type: "button",
    onclick: (ev) => busy(ev.currentTarget, async () => {
      const t = parse();
      if (!t) return;
      try {
        const c = await call("POST", "/templates/check", t);
        say("tpl-msg", "ok", `Valid: ${c.reference}. Hash ${c.hash}. On chain: ${c.on_chain.join(", ") || "nothing"}.`);
      } catch (err) {
        say("tpl-msg", "error", `Not valid: ${explain(err)}`);
      }
    }),
  }, "Check");
  const publishButton = h("button", { type: "submit" }, "Publish");
  render(h("h2", {}, "Templates"),
    h("table", { id: "templates" },
      h("thead", {}, h("tr", {}, ["Template", "Id", "Version", "Questions", "On chain", "Roles"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, list.map((t) => h("tr", {},
        h("td", {}, t.title), h("td", {}, h("code", {}, t.id)), h("td", { class: "num" }, String(t.version)),
        h("td", {}, t.attributes.map((a) => a.label).join(", ")),
        h("td", {}, t.attributes.filter((a) => a.on_chain).map((a) => a.name).join(", ") || "—"),
        h("td", {}, (t.roles ?? []).join(", ")))))),
    h("h3", {}, "Edit and publish"),
    h("p", {}, "Published versions never change. To change a template, publish it with a higher version; its rules are registered on chain when it is published."),
    h("form", {
      id: "template-editor",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const t = parse();
        if (!t) return;
        await busy(publishButton, async () => {
          try {
            const c = await call("POST", "/templates", t);
            await templates();
            say("tpl-msg", "ok", `Published ${c.reference}; hash ${c.hash} is anchored on chain.`);
          } catch (err) {
            say("tpl-msg", "error", explain(err));
          }
        });
      },
    },
      field("template-start", "Start from", pick),
      field("template-json", "Template (JSON)", editor),
      h("div", { class: "row" }, checkButton, publishButton),
      slot("tpl-msg")));
  pick.dispatchEvent(new Event("change"));
}

export async function rejected() {
  const [list, all] = await Promise.all([call("GET", "/rejected"), listTemplates()]);
  const byRef = new Map(all.map((t) => [`${t.id}@${t.version}`, t]));
  render(h("h2", {}, "Rejected records"),
    h("p", {}, "Records that broke a template's rules, refused by the relay before anchoring or anchored as rejected by the chain. No health data is shown."),
    list.length === 0 ? h("p", { id: "no-rejected" }, "No rejected records.") :
      h("table", { id: "rejected" },
        h("thead", {}, h("tr", {}, ["When", "Author", "Template", "Refused by", "Reasons", "Transaction id"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, list.map((r) => h("tr", { dataset: { tid: r.tid } },
          h("td", {}, when(r.at)), h("td", {}, r.uid), h("td", {}, byRef.get(r.template)?.title ?? r.template),
          h("td", {}, r.source === "chain" ? "the blockchain" : r.source === "relay" ? "the relay" : r.source ?? ""),
          h("td", {}, reasons(r.reasons, byRef.get(r.template), false)),
          h("td", { class: "mono", title: r.tid }, short(r.tid, 12)))))));
}
