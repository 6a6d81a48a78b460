// The signed-in session and the relay: loads the WASM client, keeps the unlocked identity in
// memory (never in storage), the bearer token in sessionStorage (so `audit.html` can use it
// too: key "mediblock.session", JSON {uid, role, token, expires_at}), and wraps the API.

import init, * as mb from "/pkg/mediblock_client_wasm.js";

export { mb };

const SESSION_KEY = "mediblock.session";

/** Everything the views share. */
export const state = {
  /** The relay's `/api/v1/info`. */
  info: null,
  /** The unlocked `mb.Identity`, only in memory. */
  identity: null,
  /** {uid, role, token, expires_at} */
  session: null,
  /** `/api/v1/me` of the signed-in user. */
  me: null,
  /** Published templates by "id@version". */
  templates: new Map(),
};

let ready = null;

/** Loads the WASM module and the relay's facts once. */
export function boot() {
  ready ??= (async () => {
    await init();
    state.info = await mb.api(location.origin, null, "GET", "/api/v1/info");
    const saved = sessionStorage.getItem(SESSION_KEY);
    if (saved) {
      try {
        const s = JSON.parse(saved);
        if (s.expires_at > Date.now()) state.session = s;
        else sessionStorage.removeItem(SESSION_KEY);
      } catch {
        sessionStorage.removeItem(SESSION_KEY);
      }
    }
  })();
  return ready;
}

/** Calls the relay's API (`path` below `/api/v1`) as the signed-in user. */
export async function call(method, path, body) {
  try {
    return await mb.api(location.origin, state.session?.token ?? null, method, `/api/v1${path}`, body);
  } catch (err) {
    if (err.status === 401 && state.session) signOut();
    throw err;
  }
}

/** Signs in with the unlocked identity: challenge, signature, session. */
export async function signIn(identity) {
  const uid = identity.uid;
  const challenge = await mb.api(location.origin, null, "POST", "/api/v1/auth/challenge", { uid });
  const answer = identity.signIn(challenge);
  const s = await mb.api(location.origin, null, "POST", "/api/v1/auth/session", answer);
  state.identity = identity;
  state.session = { uid, role: s.role, token: s.token, expires_at: s.expires_at };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(state.session));
  state.me = await call("GET", "/me");
  return state.session;
}

/** Loads `/me` for a session restored from sessionStorage. */
export async function loadMe() {
  if (state.session && !state.me) state.me = await call("GET", "/me");
  return state.me;
}

/** Forgets the session and the unlocked key. */
export function signOut() {
  try {
    state.identity?.free();
  } catch {
    /* already freed */
  }
  state.identity = null;
  state.session = null;
  state.me = null;
  sessionStorage.removeItem(SESSION_KEY);
}

/** A published template (cached). */
export async function template(id, version) {
  const key = `${id}@${version}`;
  if (!state.templates.has(key)) {
    state.templates.set(key, await call("GET", `/templates/${encodeURIComponent(id)}/${version}`));
  }
  return state.templates.get(key);
}

/** Every published template (refreshes the cache). */
export async function templates() {
  const list = await call("GET", "/templates");
  for (const t of list) state.templates.set(`${t.id}@${t.version}`, t);
  return list;
}

/** The newest version of template `id`, or null. */
export async function latestTemplate(id) {
  const list = await templates();
  return list.filter((t) => t.id === id).sort((a, b) => b.version - a.version)[0] ?? null;
}

/** The uid written in a keystore file, if it says (shown before unlocking). */
export function keystoreUid(text) {
  try {
    const uid = JSON.parse(text)?.uid;
    return typeof uid === "string" ? uid : null;
  } catch {
    return null;
  }
}

/** Submissions this browser sent, so a patient's timeline shows pending and rejected ones
 * (the relay lists only stored records). localStorage "mediblock.sent": [{tid, pid, template, at}]. */
export function sentRecords(pid) {
  try {
    const all = JSON.parse(localStorage.getItem("mediblock.sent") || "[]");
    return pid ? all.filter((s) => s.pid === pid) : all;
  } catch {
    return [];
  }
}

/** Remembers a submission this browser sent. */
export function rememberSent(entry) {
  const all = sentRecords().filter((s) => s.tid !== entry.tid);
  all.push(entry);
  localStorage.setItem("mediblock.sent", JSON.stringify(all.slice(-500)));
}
