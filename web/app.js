// MediBlock's clinicians' app: a single page with hash routes, so the unlocked key stays in
// memory while a person moves between pages. Views live in /views; shared state and the
// relay's API in /lib/session.js.

import { boot, loadMe, signOut, state } from "/lib/session.js";
import { h, notice, render, explain } from "/lib/ui.js";
import * as auth from "/views/auth.js";
import * as patients from "/views/patients.js";
import * as patient from "/views/patient.js";
import * as admin from "/views/admin.js";
import * as trust from "/views/trust.js";

const CLINICIANS = ["doctor", "nurse", "pathologist"];
const READERS = [...CLINICIANS, "auditor"];

/** Routes: pattern → [view, roles allowed (null = anyone, even signed out)]. */
const ROUTES = [
  [/^$/, auth.home, null],
  [/^keys\/new$/, auth.createKey, null],
  [/^keys\/import$/, auth.importKey, null],
  [/^enrolment$/, auth.enrolment, null],
  [/^patients$/, patients.list, READERS],
  [/^patients\/new$/, patients.create, CLINICIANS],
  [/^patients\/([0-9a-f]+)$/, patient.page, READERS],
  [/^patients\/([0-9a-f]+)\/records\/([0-9a-f]+)$/, patient.detail, READERS],
  [/^admin\/users$/, admin.users, ["admin"]],
  [/^admin\/templates$/, admin.templates, ["admin"]],
  [/^admin\/rejected$/, admin.rejected, ["admin", "auditor"]],
];

function navigation() {
  const role = state.session?.role;
  const links = [];
  if (role && READERS.includes(role)) links.push(["#/patients", "Patients"]);
  if (role && CLINICIANS.includes(role)) links.push(["#/patients/new", "New patient"]);
  if (role === "admin") {
    links.push(["#/admin/users", "Users and roles"], ["#/admin/templates", "Templates"]);
  }
  if (role === "admin" || role === "auditor") {
    links.push(["#/admin/rejected", "Rejected records"], ["/audit.html", "Tamper audit"]);
  }
  const here = location.hash || "#/";
  const nav = document.getElementById("nav");
  nav.replaceChildren(
    h("ul", {}, links.map(([href, text]) =>
      h("li", {}, h("a", { href, "aria-current": here === href ? "page" : null }, text)))),
    state.session
      ? h("p", { class: "who" },
          `Signed in as ${state.session.uid} (${state.session.role}) `,
          h("button", { type: "button", class: "link", onclick: () => { signOut(); location.hash = "#/"; route(); } }, "Sign out"))
      : h("p", { class: "who" }, "Not signed in"),
  );
}

let routeSeq = 0;
let shownSeq = 0;

async function route() {
  const mine = ++routeSeq;
  try {
    await show((location.hash || "#/").replace(/^#\/?/, ""));
  } finally {
    if (mine === routeSeq) shownSeq = mine;
    // A slower view for an earlier address rendered over the newer one, which had already
    // finished: show the current address again.
    else if (shownSeq === routeSeq) route();
  }
}

async function show(path) {
  try {
    await boot();
    // The registry the records are checked against, on every page (once; again on a change
    // of the pin, which also runs the route again so the badges follow it).
    trust.mount(route);
    if (state.session && !state.identity) {
      // A reload keeps the session token but not the key: unlock again to sign.
      navigation();
      return auth.unlock(path);
    }
    await loadMe();
    navigation();
    for (const [pattern, view, roles] of ROUTES) {
      const m = path.match(pattern);
      if (!m) continue;
      if (roles && !state.session) return auth.home();
      if (roles && !roles.includes(state.session.role)) {
        return render(h("h2", {}, "Not available"),
          notice("error", `A ${state.session.role} cannot open this page.`));
      }
      return await view(...m.slice(1));
    }
    render(h("h2", {}, "Page not found"), h("p", {}, h("a", { href: "#/" }, "Go to the start page")));
  } catch (err) {
    console.error(err);
    navigation();
    render(h("h2", {}, "Something went wrong"), notice("error", explain(err)));
  }
}

window.addEventListener("hashchange", route);
route();
