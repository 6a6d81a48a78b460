// The tamper audit page: runs `GET /api/v1/audit` with the bearer token the app keeps in
// sessionStorage ("mediblock.session": {uid, role, token, expires_at}) and shows the findings
// with their evidence, or "no findings" plainly.

const $ = (id) => document.getElementById(id);

function session() {
  try {
    const s = JSON.parse(sessionStorage.getItem("mediblock.session") || "null");
    return s && s.expires_at > Date.now() ? s : null;
  } catch {
    return null;
  }
}

function show(el, text, kind) {
  el.hidden = false;
  el.textContent = text;
  el.className = `notice ${kind}`;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function render(report) {
  const c = report.counts;
  $("result").hidden = false;
  const tampering = report.findings.filter((f) => f.severity !== "info").length;
  $("summary").textContent =
    `Checked ${c.records} records (${c.verified} verified, ${c.erased} erased), ${c.rejected} rejected, ` +
    `${c.in_flight} in flight; log of ${c.leaves} leaves; ${c.anchors} anchors and ${c.checkpoints} checkpoints ` +
    `on chain ${report.chain_id} at block ${report.head_block}, in ${report.took_ms} ms.`;
  const body = $("findings").querySelector("tbody");
  body.replaceChildren();
  if (report.findings.length === 0) {
    $("findings").hidden = true;
    show($("status"), "No findings: every record checks out against the chain and the log.", "ok");
    return;
  }
  $("findings").hidden = false;
  if (tampering === 0) {
    show($("status"), `No tampering. ${report.findings.length} finding(s) for information (lawful erasures).`, "ok");
  } else {
    show($("status"), `${tampering} finding(s) of tampering or problems. Details below.`, "error");
  }
  for (const f of report.findings) {
    const tr = document.createElement("tr");
    const kind = cell(tr, "");
    const badge = document.createElement("span");
    badge.className = `badge ${f.severity === "info" ? "verified" : "tampered"}`;
    badge.textContent = f.kind.replaceAll("_", " ");
    kind.append(badge);
    cell(tr, f.leaf_index ?? "–");
    const rec = cell(tr, f.tid ?? "–", "mono");
    if (f.patient) rec.title = `patient ${f.patient}`;
    cell(tr, f.patient ? `${f.summary} (patient ${f.patient})` : f.summary);
    const ev = cell(tr, "", "mono");
    const dl = document.createElement("dl");
    for (const [k, v] of Object.entries(f.evidence)) {
      const dt = document.createElement("dt");
      dt.textContent = k.replaceAll("_", " ");
      const dd = document.createElement("dd");
      dd.textContent = v;
      dl.append(dt, dd);
    }
    ev.append(dl);
    body.append(tr);
  }
}

function init() {
  const s = session();
  if (!s || !["admin", "auditor"].includes(s.role)) {
    $("signin").hidden = false;
    $("run").disabled = true;
    return;
  }
  $("who").textContent = `Signed in as ${s.uid} (${s.role})`;
  $("audit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    const patient = $("patient").value.trim();
    if (patient) params.set("patient", patient.toLowerCase());
    for (const name of ["since", "until"]) {
      const v = $(name).value;
      if (v) params.set(name, String(new Date(v).getTime()));
    }
    $("run").disabled = true;
    show($("status"), "Auditing… this reads the whole store and the chain.", "info");
    try {
      const res = await fetch(`/api/v1/audit?${params}`, { headers: { authorization: `Bearer ${s.token}` } });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) {
        show($("status"), `The audit could not run (${body.code ?? res.status}): ${body.message ?? res.statusText}`, "error");
        return;
      }
      render(body);
    } catch (err) {
      show($("status"), `The relay cannot be reached: ${err.message}`, "error");
    } finally {
      $("run").disabled = false;
    }
  });
}

init();
