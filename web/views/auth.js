// Keys and sign-in: the start page, creating a key (kept in this browser under a passphrase),
// importing a key file, unlocking after a reload, and the enrolment request for the admin.

import { mb, state, signIn, keystoreUid } from "/lib/session.js";
import { h, render, notice, say, slot, field, explain, busy, download } from "/lib/ui.js";

const ROLES = [
  ["doctor", "Doctor"],
  ["nurse", "Nurse"],
  ["pathologist", "Pathologist"],
  ["auditor", "Auditor"],
  ["admin", "Administrator"],
];

function landing() {
  return state.session?.role === "admin" ? "#/admin/users" : "#/patients";
}

function go(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

function relayLine() {
  const i = state.info;
  const chain = i.chain_id ? ` Records are anchored on chain ${i.chain_id}.` : " This relay does not anchor on a chain.";
  return h("p", { class: "muted", id: "relay-status" }, `Connected to MediBlock relay ${i.version}.${chain}`);
}

/** Unlocks the stored key with a passphrase and signs in. */
async function unlockAndSignIn(passphrase) {
  const text = mb.loadKeystore();
  const identity = mb.Identity.fromKeystore(text, passphrase);
  try {
    await signIn(identity);
  } catch (err) {
    if (err.status === 401) {
      state.identity = identity; // keep it unlocked to show the enrolment request
      const e = new Error(`The key of "${identity.uid}" is not enrolled on this relay yet. Show your enrolment request to your administrator.`);
      e.code = "not_enrolled";
      throw e;
    }
    identity.free();
    throw err;
  }
}

/** The start page: sign in, or create / import a key. */
export async function home() {
  if (state.session && state.identity) return go(landing());
  const stored = mb.loadKeystore();
  const uid = stored ? keystoreUid(stored) : null;
  const parts = [h("h2", {}, "Sign in"), relayLine()];
  if (stored) {
    const pass = h("input", { type: "password", autocomplete: "current-password", required: true });
    const button = h("button", { type: "submit" }, "Sign in");
    const form = h("form", {
      id: "sign-in",
      onsubmit: async (ev) => {
        ev.preventDefault();
        say("sign-in-msg", "info", "Unlocking your key…");
        await busy(button, async () => {
          try {
            await unlockAndSignIn(pass.value);
            pass.value = "";
            go(landing());
          } catch (err) {
            say("sign-in-msg", "error", err.code === "not_enrolled" ? err.message : explain(err));
            if (err.code === "not_enrolled") {
              document.getElementById("sign-in-msg").append(" ", h("a", { href: "#/enrolment" }, "Show my enrolment request"));
            }
          }
        });
      },
    },
      h("p", {}, uid ? `This browser keeps the key of ${uid}.` : "This browser keeps your key."),
      field("passphrase", "Passphrase", pass),
      button,
      slot("sign-in-msg"));
    parts.push(form);
  } else {
    parts.push(h("p", {}, "This browser has no MediBlock key yet."));
  }
  parts.push(h("h3", {}, "Keys"), h("ul", { class: "actions" },
    h("li", {}, h("a", { href: "#/keys/new" }, stored ? "Create a new key (replaces the one in this browser)" : "Create my key")),
    h("li", {}, h("a", { href: "#/keys/import" }, "Import a key file")),
    stored ? h("li", {}, h("a", { href: "#/enrolment" }, "Show my enrolment request")) : null));
  render(parts);
}

/** After a reload: the session is still valid but the key is locked. */
export async function unlock(path) {
  const pass = h("input", { type: "password", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit" }, "Unlock");
  render(h("h2", {}, "Unlock your key"),
    h("p", {}, `Signed in as ${state.session.uid}. Enter your passphrase to continue.`),
    h("form", {
      id: "unlock",
      onsubmit: async (ev) => {
        ev.preventDefault();
        await busy(button, async () => {
          try {
            await unlockAndSignIn(pass.value);
            go(`#/${path}`);
          } catch (err) {
            say("unlock-msg", "error", explain(err));
          }
        });
      },
    }, field("passphrase", "Passphrase", pass), button, slot("unlock-msg")));
}

function passphraseFields() {
  const pass = h("input", { type: "password", autocomplete: "new-password", required: true, minlength: 10 });
  const again = h("input", { type: "password", autocomplete: "new-password", required: true, minlength: 10 });
  return {
    pass,
    again,
    fields: [
      field("new-passphrase", "Passphrase", pass, "At least 10 characters. It never leaves this browser; nobody can recover it."),
      field("new-passphrase-again", "Passphrase again", again),
    ],
    check() {
      if (pass.value.length < 10) return "The passphrase needs at least 10 characters.";
      if (pass.value !== again.value) return "The two passphrases differ.";
      return null;
    },
  };
}

/** Creates a fresh key, saves it encrypted in this browser and offers the file. */
export async function createKey() {
  const uid = h("input", { type: "text", autocomplete: "username", required: true, pattern: "[a-z0-9._\\-]+", spellcheck: "false" });
  const pp = passphraseFields();
  const button = h("button", { type: "submit" }, "Create my key");
  render(h("h2", {}, "Create my key"),
    h("p", {}, "Your key signs every record you write. It is kept in this browser, encrypted under your passphrase; save the file too, as a backup."),
    h("form", {
      id: "create-key",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const problem = pp.check();
        if (problem) return say("create-msg", "error", problem);
        say("create-msg", "info", "Creating and encrypting your key…");
        await busy(button, async () => {
          try {
            const identity = mb.Identity.generate(uid.value.trim());
            const text = identity.toKeystore(pp.pass.value);
            mb.saveKeystore(text);
            state.identity = identity;
            pp.pass.value = pp.again.value = "";
            go("#/enrolment");
          } catch (err) {
            say("create-msg", "error", explain(err));
          }
        });
      },
    },
      field("uid", "User id", uid, "Lower-case letters, digits, dots, dashes, e.g. nurse.ana. Your administrator may tell you which to use."),
      pp.fields, button, slot("create-msg")));
}

/** Imports a MediBlock key file, or the relay's administrator key (`data/admin.key`). */
export async function importKey() {
  const file = h("input", { type: "file", accept: ".json,application/json,.key,text/plain", required: true });
  const pass = h("input", { type: "password", autocomplete: "current-password", required: true });
  const button = h("button", { type: "submit" }, "Import and sign in");

  const adminFile = h("input", { type: "file", accept: ".key,text/plain", required: true });
  const adminUid = h("input", { type: "text", value: "admin", required: true, spellcheck: "false" });
  const pp = passphraseFields();
  const adminButton = h("button", { type: "submit" }, "Import the administrator key");
  const canImportRaw = typeof mb.Identity.fromKeyFile === "function";

  render(h("h2", {}, "Import a key file"),
    h("form", {
      id: "import-keystore",
      onsubmit: async (ev) => {
        ev.preventDefault();
        await busy(button, async () => {
          try {
            const text = await file.files[0].text();
            const identity = mb.Identity.fromKeystore(text, pass.value);
            mb.saveKeystore(text);
            identity.free();
            await unlockAndSignIn(pass.value);
            pass.value = "";
            go(landing());
          } catch (err) {
            say("import-msg", "error", err.code === "not_enrolled" ? err.message : explain(err));
          }
        });
      },
    },
      h("h3", {}, "My MediBlock key file"),
      field("keyfile", "Key file", file, "The file you saved when you created your key."),
      field("keyfile-passphrase", "Passphrase", pass),
      button, slot("import-msg")),
    canImportRaw ? h("form", {
      id: "import-admin",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const problem = pp.check();
        if (problem) return say("admin-msg", "error", problem);
        await busy(adminButton, async () => {
          try {
            const text = await adminFile.files[0].text();
            const identity = mb.Identity.fromKeyFile(adminUid.value.trim(), text);
            mb.saveKeystore(identity.toKeystore(pp.pass.value));
            await signIn(identity);
            pp.pass.value = pp.again.value = "";
            go(landing());
          } catch (err) {
            say("admin-msg", "error", explain(err));
          }
        });
      },
    },
      h("h3", {}, "The relay's administrator key"),
      h("p", {}, "On first start the relay writes the administrator's key to admin.key in its data folder. Import it once; this browser then keeps it encrypted under a passphrase you choose."),
      field("admin-keyfile", "admin.key", adminFile),
      field("admin-uid", "Administrator's user id", adminUid),
      pp.fields,
      adminButton, slot("admin-msg"))
      : h("section", { id: "first-admin" },
        h("h3", {}, "The first administrator"),
        h("p", {}, "On first start the relay writes the administrator's key to admin.key in its data folder; that raw key file is for the command line. To administer from a browser, ",
          h("a", { href: "#/keys/new" }, "create a key here"),
          " with the role Administrator, and have the relay's operator enrol it with the command shown on your enrolment page (mediblock enrol --admin-key data/admin.key …).")));
}

/** The enrolment request: the public keys (and wallet address) the admin enrols. */
export async function enrolment() {
  if (!state.identity) {
    const stored = mb.loadKeystore();
    if (!stored) return go("#/keys/new");
    const pass = h("input", { type: "password", autocomplete: "current-password", required: true });
    const button = h("button", { type: "submit" }, "Unlock");
    return render(h("h2", {}, "My enrolment request"),
      h("form", {
        id: "unlock-enrolment",
        onsubmit: async (ev) => {
          ev.preventDefault();
          await busy(button, async () => {
            try {
              state.identity = mb.Identity.fromKeystore(stored, pass.value);
              enrolment();
            } catch (err) {
              say("enrol-msg", "error", explain(err));
            }
          });
        },
      }, field("passphrase", "Passphrase", pass), button, slot("enrol-msg")));
  }
  const identity = state.identity;
  const role = h("select", {}, ROLES.map(([v, t]) => h("option", { value: v }, t)));
  const wallet = h("input", { type: "text", placeholder: "0x…", spellcheck: "false", pattern: "0x[0-9a-fA-F]{40}" });
  const out = h("pre", { id: "enrolment-request", tabindex: "0", "aria-label": "Enrolment request" });
  const cli = h("pre", { id: "enrolment-cli", tabindex: "0", "aria-label": "Enrolment command" });
  const update = () => {
    try {
      const addr = wallet.value.trim() || undefined;
      const req = identity.enrolmentRequest(role.value, addr);
      out.textContent = JSON.stringify(req, null, 2);
      cli.textContent = `mediblock enrol --url ${location.origin} --admin-key data/admin.key --uid ${req.uid} --role ${req.role} --public '${JSON.stringify(req.keys)}'`;
      say("enrolment-msg", "info", "");
    } catch (err) {
      say("enrolment-msg", "error", explain(err));
    }
  };
  role.addEventListener("change", update);
  wallet.addEventListener("input", update);
  const connect = h("button", {
    type: "button",
    onclick: async (ev) => busy(ev.currentTarget, async () => {
      try {
        const w = await mb.connectWallet();
        wallet.value = w.address;
        update();
      } catch (err) {
        say("enrolment-msg", "error", explain(err));
      }
    }),
  }, "Use my wallet's address");
  render(h("h2", {}, "My enrolment request"),
    h("p", {}, `Your key for ${identity.uid} is saved in this browser. Give this request to your administrator; once you are enrolled, sign in.`),
    h("div", { class: "row" }, field("role", "Role", role), field("wallet", "Wallet address (only if you send records with your own Ethereum wallet)", wallet)),
    connect,
    out,
    slot("enrolment-msg"),
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => navigator.clipboard?.writeText(out.textContent).then(() => say("enrolment-msg", "ok", "Copied.")) }, "Copy"),
      h("button", { type: "button", onclick: () => download(`${identity.uid}-enrolment.json`, out.textContent) }, "Download request"),
      h("button", {
        type: "button",
        onclick: () => download(`${identity.uid}.mediblock-key.json`, mb.loadKeystore() ?? ""),
      }, "Download my key file (encrypted)")),
    h("details", {},
      h("summary", {}, "No administrator in the browser yet? Enrol with the relay's command line"),
      h("p", {}, "The relay's operator can enrol you (the first browser administrator, for example) with the key file the relay wrote on its first start:"),
      cli),
    h("p", {}, h("a", { href: "#/" }, "Sign in once enrolled")));
  update();
}
