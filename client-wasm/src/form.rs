//! Form values → typed attributes, through the template's own rules (`Template::map_form`),
//! with every violation described in words a clinician understands.

use std::collections::BTreeMap;

use mediblock_protocol::rules::{Rule, Violation};
use mediblock_protocol::template::{AttributeSpec, Template};
use mediblock_protocol::value::Attributes;
use wasm_bindgen::prelude::*;

use crate::error::{ClientError, Result, ViolationView};
use crate::js::{from_js, to_js};

/// A scalar form value as JavaScript hands it over.
#[derive(Clone, PartialEq, Debug)]
pub enum FormValue {
    /// Typed text (numbers, dates and choices arrive as text from `<input>`s).
    Text(String),
    /// A number (from `valueAsNumber` or a script).
    Number(f64),
    /// A checkbox.
    Boolean(bool),
    /// `null` or `undefined`: the field is empty.
    Empty,
    /// Anything else (an object, an array): cannot be a field's value.
    Other,
}

/// The stable code of a rule, as JavaScript sees it.
pub fn rule_code(rule: &Rule) -> &'static str {
    match rule {
        Rule::Required => "required",
        Rule::Unknown => "unknown",
        Rule::WrongType { .. } => "wrong_type",
        Rule::Unparsable { .. } => "unparsable",
        Rule::BelowMin { .. } => "below_min",
        Rule::AboveMax { .. } => "above_max",
        Rule::NotAllowed { .. } => "not_allowed",
        Rule::TooLong { .. } => "too_long",
    }
}

fn with_unit(value: &str, spec: Option<&AttributeSpec>) -> String {
    match spec.and_then(|s| s.unit.as_deref()) {
        Some(unit) => format!("{value} {unit}"),
        None => value.to_owned(),
    }
}

/// A violation as the pages show it; `template` supplies the field's label and unit.
pub fn describe(v: &Violation, template: Option<&Template>) -> ViolationView {
    let spec = template.and_then(|t| t.attributes().iter().find(|a| a.name == v.attribute));
    let label = spec.map_or_else(|| v.attribute.to_string(), |s| s.label.clone());
    let message = match &v.rule {
        Rule::Required => format!("{label} is required."),
        Rule::Unknown => format!("“{}” is not a field of this form.", v.attribute),
        Rule::WrongType { expected, got } => {
            format!("{label} must be a {expected} value, not a {got} value.")
        }
        Rule::Unparsable { expected } => format!("{label} must be {expected}."),
        Rule::BelowMin { min, got } => format!(
            "{label} must be at least {}; {} is too low.",
            with_unit(min, spec),
            with_unit(got, spec)
        ),
        Rule::AboveMax { max, got } => format!(
            "{label} must be at most {}; {} is too high.",
            with_unit(max, spec),
            with_unit(got, spec)
        ),
        Rule::NotAllowed { allowed, got } => {
            format!(
                "{label} must be one of {}; “{got}” is not.",
                allowed.join(", ")
            )
        }
        Rule::TooLong { max, got } => {
            format!("{label} is too long: at most {max} bytes are allowed, it has {got}.")
        }
    };
    ViolationView {
        attribute: v.attribute.to_string(),
        code: rule_code(&v.rule).to_owned(),
        message,
    }
}

/// Maps form values to typed attributes with the template's rules, reporting every
/// violation (in the template's order, then unknown fields) described for people.
pub fn map_values(
    template: &Template,
    values: &BTreeMap<String, FormValue>,
) -> core::result::Result<Attributes, Vec<ViolationView>> {
    let mut fields = BTreeMap::new();
    let mut early = Vec::new();
    for (key, value) in values {
        let text = match value {
            FormValue::Text(s) => s.clone(),
            FormValue::Number(n) if n.is_finite() => format!("{n}"),
            FormValue::Boolean(b) => b.to_string(),
            FormValue::Empty => continue,
            FormValue::Number(_) | FormValue::Other => {
                early.push(unreadable(template, key));
                continue;
            }
        };
        fields.insert(key.clone(), text);
    }
    // Keys that are not even valid attribute names are unknown fields too.
    for key in values.keys() {
        if mediblock_protocol::ids::AttrName::new(key.as_str()).is_err() {
            early.push(ViolationView {
                attribute: key.clone(),
                code: "unknown".into(),
                message: format!("“{key}” is not a field of this form."),
            });
            fields.remove(key);
        }
    }
    match template.map_form(&fields) {
        Ok(attrs) if early.is_empty() => Ok(attrs),
        Ok(_) => Err(early),
        Err(mut violations) => {
            // A field that was given but unreadable is not also "missing".
            violations.retain(|v| {
                !(v.rule == Rule::Required
                    && early.iter().any(|e| e.attribute == v.attribute.as_str()))
            });
            let mut out: Vec<ViolationView> = Vec::new();
            // Template order first, then unknown names: what a person reads top to bottom.
            for spec in template.attributes() {
                out.extend(
                    early
                        .iter()
                        .filter(|e| e.attribute == spec.name.as_str())
                        .cloned(),
                );
                out.extend(
                    violations
                        .iter()
                        .filter(|v| v.attribute == spec.name)
                        .map(|v| describe(v, Some(template))),
                );
            }
            let known = |a: &str| template.attributes().iter().any(|s| s.name.as_str() == a);
            out.extend(early.iter().filter(|e| !known(&e.attribute)).cloned());
            out.extend(
                violations
                    .iter()
                    .filter(|v| !known(v.attribute.as_str()))
                    .map(|v| describe(v, Some(template))),
            );
            Err(out)
        }
    }
}

fn unreadable(template: &Template, key: &str) -> ViolationView {
    let spec = template
        .attributes()
        .iter()
        .find(|a| a.name.as_str() == key);
    let label = spec.map_or(key, |s| s.label.as_str());
    ViolationView {
        attribute: key.to_owned(),
        code: "unparsable".into(),
        message: format!("{label} has a value that cannot be read."),
    }
}

/// Reads `{ name: string | number | boolean | null }` from JavaScript.
pub(crate) fn values_from_js(values: &JsValue) -> Result<BTreeMap<String, FormValue>> {
    if !values.is_object() {
        return Err(ClientError::invalid(
            "The form values must be an object of field names and values.",
        ));
    }
    let mut out = BTreeMap::new();
    for entry in js_sys::Object::entries(values.unchecked_ref()).iter() {
        let pair: js_sys::Array = entry.unchecked_into();
        let Some(key) = pair.get(0).as_string() else {
            continue;
        };
        let v = pair.get(1);
        let value = if v.is_null() || v.is_undefined() {
            FormValue::Empty
        } else if let Some(s) = v.as_string() {
            FormValue::Text(s)
        } else if let Some(n) = v.as_f64() {
            FormValue::Number(n)
        } else if let Some(b) = v.as_bool() {
            FormValue::Boolean(b)
        } else {
            FormValue::Other
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// Reads a template (as `GET /api/v1/templates/{id}/{version}` returns it).
pub(crate) fn template_from_js(template: JsValue) -> Result<Template> {
    from_js(template, "The template")
}

/// `checkForm(template, values)`: every violation of the form (`[]` when it is fine), so
/// the person sees them all before sending.
#[wasm_bindgen(js_name = checkForm)]
pub fn check_form(template: JsValue, values: JsValue) -> Result<JsValue> {
    let template = template_from_js(template)?;
    let values = values_from_js(&values)?;
    let violations = match map_values(&template, &values) {
        Ok(_) => Vec::new(),
        Err(v) => v,
    };
    to_js(&violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn vitals() -> Template {
        serde_json::from_value(serde_json::json!({
            "id": "vitals", "version": 1, "title": "Vital signs",
            "attributes": [
                {"name": "heart_rate", "label": "Heart rate", "unit": "bpm",
                 "kind": {"type": "integer", "scale": 0, "min": 20, "max": 250},
                 "required": true, "on_chain": true},
                {"name": "temperature", "label": "Temperature", "unit": "°C",
                 "kind": {"type": "integer", "scale": 1, "min": 300, "max": 450},
                 "required": true, "on_chain": true},
                {"name": "position", "label": "Position",
                 "kind": {"type": "enum", "values": ["sitting", "lying"]}},
                {"name": "note", "label": "Note", "kind": {"type": "text", "max_len": 10}}
            ],
            "roles": ["doctor", "nurse"]
        }))
        .expect("template")
    }

    fn form(pairs: &[(&str, FormValue)]) -> BTreeMap<String, FormValue> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn numbers_and_text_map_to_typed_values() {
        let t = vitals();
        let attrs = map_values(
            &t,
            &form(&[
                ("heart_rate", FormValue::Number(72.0)),
                ("temperature", FormValue::Text("36.6".into())),
                ("position", FormValue::Text("lying".into())),
                ("note", FormValue::Empty),
            ]),
        )
        .expect("valid");
        assert_eq!(attrs.len(), 3);
    }

    #[test]
    fn every_violation_is_reported_in_form_order() {
        let t = vitals();
        let err = map_values(
            &t,
            &form(&[
                ("temperature", FormValue::Number(51.5)),
                ("position", FormValue::Text("standing".into())),
                ("note", FormValue::Text("far too long a note".into())),
                ("Bad Key", FormValue::Boolean(true)),
            ]),
        )
        .expect_err("invalid");
        let codes: Vec<_> = err
            .iter()
            .map(|v| (v.attribute.as_str(), v.code.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                ("heart_rate", "required"),
                ("temperature", "above_max"),
                ("position", "not_allowed"),
                ("note", "too_long"),
                ("Bad Key", "unknown"),
            ]
        );
        assert_eq!(err[0].message, "Heart rate is required.");
        assert_eq!(
            err[1].message,
            "Temperature must be at most 45.0 °C; 51.5 °C is too high."
        );
    }

    #[test]
    fn unreadable_numbers_are_not_also_missing() {
        let t = vitals();
        let err = map_values(
            &t,
            &form(&[
                ("heart_rate", FormValue::Number(f64::NAN)),
                ("temperature", FormValue::Text("36.66".into())),
            ]),
        )
        .expect_err("invalid");
        let codes: Vec<_> = err.iter().map(|v| v.code.as_str()).collect();
        assert_eq!(codes, ["unparsable", "unparsable"]);
        assert_eq!(
            err[1].message,
            "Temperature must be a number with at most 1 decimal digit(s)."
        );
    }
}
