// Questionnaire forms generated from a transaction template: one labelled control per
// attribute, the template's limits shown as hints, and every rule violation shown next to
// its field before anything is sent (checked by the WASM client's rule engine).

import { mb } from "/lib/session.js";
import { h } from "/lib/ui.js";

/** A fixed-point mantissa as text ("368" with scale 1 → "36.8"). */
export function fixed(mantissa, scale) {
  if (!scale) return String(mantissa);
  const neg = mantissa < 0;
  const digits = String(Math.abs(mantissa)).padStart(scale + 1, "0");
  return `${neg ? "-" : ""}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

function hint(attr) {
  const k = attr.kind;
  const unit = attr.unit ? ` ${attr.unit}` : "";
  const parts = [];
  if (k.type === "integer") {
    const scale = k.scale ?? 0;
    if (k.min !== undefined && k.max !== undefined) parts.push(`Between ${fixed(k.min, scale)} and ${fixed(k.max, scale)}${unit}.`);
    else if (k.min !== undefined) parts.push(`At least ${fixed(k.min, scale)}${unit}.`);
    else if (k.max !== undefined) parts.push(`At most ${fixed(k.max, scale)}${unit}.`);
    if (scale) parts.push(`Up to ${scale} decimal place${scale > 1 ? "s" : ""}.`);
  } else if (k.type === "date") {
    if (k.min) parts.push(`Not before ${k.min}.`);
    if (k.max) parts.push(`Not after ${k.max}.`);
  } else if (k.type === "text" && k.max_len) {
    parts.push(`Up to ${k.max_len} characters.`);
  }
  if (!attr.required) parts.push("Optional.");
  return parts.join(" ");
}

function control(attr, id) {
  const k = attr.kind;
  const common = { id, name: attr.name, required: !!attr.required, "aria-required": attr.required ? "true" : null };
  switch (k.type) {
    case "integer":
      return h("input", { ...common, type: "text", inputmode: (k.scale ?? 0) > 0 ? "decimal" : "numeric", autocomplete: "off" });
    case "enum":
      return h("select", common,
        h("option", { value: "" }, attr.required ? "Choose…" : "—"),
        k.values.map((v) => h("option", { value: v }, v)));
    case "boolean":
      return h("select", common,
        h("option", { value: "" }, attr.required ? "Choose…" : "—"),
        h("option", { value: "true" }, "Yes"),
        h("option", { value: "false" }, "No"));
    case "date":
      return h("input", { ...common, type: "date", min: k.min, max: k.max });
    case "text":
      return (k.max_len ?? 0) > 200
        ? h("textarea", { ...common, rows: 4, maxlength: k.max_len })
        : h("input", { ...common, type: "text", maxlength: k.max_len, autocomplete: "off" });
    default:
      return h("input", { ...common, type: "text" });
  }
}

/** The form for `template`: `{ element, values(), check(showAll) }`. `check` runs the rules
 * and marks every field that breaks one; it returns the violations. */
export function templateForm(template, prefix = "f") {
  const controls = new Map();
  const touched = new Set();
  const general = h("ul", { class: "violations", id: `${prefix}-violations`, "aria-live": "polite" });
  const fields = template.attributes.map((attr) => {
    const id = `${prefix}-${attr.name}`;
    const c = control(attr, id);
    controls.set(attr.name, c);
    const hintId = `${id}-hint`;
    const errId = `${id}-error`;
    c.setAttribute("aria-describedby", `${hintId} ${errId}`);
    const label = h("label", { for: id }, attr.label, attr.unit ? ` (${attr.unit})` : "", attr.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null);
    return h("div", { class: "field", dataset: { attribute: attr.name } },
      label, h("span", { class: "hint", id: hintId }, hint(attr)), c,
      h("span", { class: "field-error", id: errId, role: "alert" }));
  });

  function values() {
    const out = {};
    for (const attr of template.attributes) {
      const raw = controls.get(attr.name).value.trim();
      if (raw === "") continue;
      out[attr.name] = attr.kind.type === "boolean" ? raw === "true" : raw;
    }
    return out;
  }

  function check(showAll) {
    const violations = mb.checkForm(template, values());
    const byAttr = new Map();
    for (const v of violations) {
      if (!byAttr.has(v.attribute)) byAttr.set(v.attribute, []);
      byAttr.get(v.attribute).push(v.message);
    }
    for (const [name, c] of controls) {
      const err = document.getElementById(`${c.id}-error`);
      const msgs = showAll || touched.has(name) ? byAttr.get(name) ?? [] : [];
      err.textContent = msgs.join(" ");
      if (msgs.length) c.setAttribute("aria-invalid", "true");
      else c.removeAttribute("aria-invalid");
    }
    const others = violations.filter((v) => !controls.has(v.attribute));
    general.replaceChildren(...(showAll ? others : []).map((v) => h("li", {}, v.message)));
    return violations;
  }

  for (const [name, c] of controls) {
    const mark = () => {
      touched.add(name);
      check(false);
    };
    c.addEventListener("change", mark);
    c.addEventListener("blur", mark);
  }

  return { element: h("div", { class: "questionnaire" }, fields, general), values, check, controls };
}
