// MediBlock web UI entry point: relay status and the template checker.
const status = document.getElementById("status");
fetch("/api/v1/info")
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
  .then((info) => { status.textContent = `Relay ${info.version} is up (protocol ${info.protocol}).`; status.className = "ok"; })
  .catch((e) => { status.textContent = `The relay cannot be reached: ${e.message}`; status.className = "bad"; });

document.getElementById("tpl-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const out = document.getElementById("tpl-result");
  const res = await fetch("/api/v1/templates/check", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: document.getElementById("tpl").value,
  });
  const body = await res.json();
  out.className = res.ok ? "ok" : "bad";
  out.textContent = res.ok
    ? `Valid: ${body.reference}\nhash ${body.hash}\non chain: ${body.on_chain.join(", ") || "nothing"}`
    : `Not valid (${body.code}): ${body.message}`;
});
