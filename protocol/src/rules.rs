//! The rule engine: checks a record's attribute values against its template and reports
//! *every* violation (attribute and rule), so a clinician can fix a form in one pass.
//!
//! The same rules are published to the on-chain validator for the attributes that go on
//! chain; the relay and the browser run this engine first so most mistakes never cost gas.

use serde::{Deserialize, Serialize};

use crate::ids::AttrName;
use crate::template::{AttributeKind, Template};
use crate::value::{Attributes, Value, format_fixed};

/// Which rule an attribute value broke. Bounds and values are shown in human form
/// (fixed-point numbers as decimals, dates as `YYYY-MM-DD`).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// A required attribute is missing.
    Required,
    /// The template has no attribute of this name.
    Unknown,
    /// The value has another type than the template says.
    WrongType {
        /// The template's type.
        expected: String,
        /// The value's type.
        got: String,
    },
    /// Form text that cannot be read as the attribute's type.
    Unparsable {
        /// What was expected, in words.
        expected: String,
    },
    /// Below the minimum.
    BelowMin {
        /// The smallest allowed value.
        min: String,
        /// The value given.
        got: String,
    },
    /// Above the maximum.
    AboveMax {
        /// The largest allowed value.
        max: String,
        /// The value given.
        got: String,
    },
    /// Not one of the allowed values.
    NotAllowed {
        /// The allowed values.
        allowed: Vec<String>,
        /// The value given.
        got: String,
    },
    /// Text longer than allowed.
    TooLong {
        /// The longest allowed length, in bytes.
        max: u32,
        /// The length given, in bytes.
        got: usize,
    },
}

/// One broken rule of one attribute.
///
/// Unlike the crate's other JSON types this one does not refuse unknown fields: serde cannot
/// combine `deny_unknown_fields` with the flattened [`Rule`]. It is a report the relay and
/// the browser write, never evidence a verifier reads.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Violation {
    /// The attribute concerned.
    pub attribute: AttrName,
    /// What is wrong with it.
    #[serde(flatten)]
    pub rule: Rule,
}

impl Violation {
    /// A violation of `rule` by `attribute`.
    pub fn new(attribute: AttrName, rule: Rule) -> Self {
        Self { attribute, rule }
    }
}

/// Checks `attrs` against `template`; returns every violation, in template order and then
/// unknown attributes by name.
pub fn check(template: &Template, attrs: &Attributes) -> Result<(), Vec<Violation>> {
    let mut out = Vec::new();
    for spec in template.attributes() {
        match attrs.get(&spec.name) {
            None if spec.required => out.push(Violation::new(spec.name.clone(), Rule::Required)),
            None => {}
            Some(value) => {
                if let Some(rule) = check_value(&spec.kind, value) {
                    out.push(Violation::new(spec.name.clone(), rule));
                }
            }
        }
    }
    for (name, _) in attrs.iter() {
        if !template.attributes().iter().any(|a| &a.name == name) {
            out.push(Violation::new(name.clone(), Rule::Unknown));
        }
    }
    if out.is_empty() { Ok(()) } else { Err(out) }
}

fn check_value(kind: &AttributeKind, value: &Value) -> Option<Rule> {
    match (kind, value) {
        (AttributeKind::Integer { scale, min, max }, Value::Integer(v)) => {
            let show = |x: i64| format_fixed(x, *scale);
            if let Some(min) = min.filter(|m| v < m) {
                return Some(Rule::BelowMin {
                    min: show(min),
                    got: show(*v),
                });
            }
            if let Some(max) = max.filter(|m| v > m) {
                return Some(Rule::AboveMax {
                    max: show(max),
                    got: show(*v),
                });
            }
            None
        }
        (AttributeKind::Text { max_len }, Value::Text(s)) => (s.len() > *max_len as usize)
            .then_some(Rule::TooLong {
                max: *max_len,
                got: s.len(),
            }),
        (AttributeKind::Enum { values }, Value::Enum(s)) => {
            (!values.contains(s)).then(|| Rule::NotAllowed {
                allowed: values.clone(),
                got: s.clone(),
            })
        }
        (AttributeKind::Date { min, max }, Value::Date(d)) => {
            if let Some(min) = min.filter(|m| d < m) {
                return Some(Rule::BelowMin {
                    min: min.to_string(),
                    got: d.to_string(),
                });
            }
            if let Some(max) = max.filter(|m| d > m) {
                return Some(Rule::AboveMax {
                    max: max.to_string(),
                    got: d.to_string(),
                });
            }
            None
        }
        (AttributeKind::Boolean, Value::Boolean(_)) => None,
        (kind, value) => Some(Rule::WrongType {
            expected: kind.type_name().to_owned(),
            got: value.type_name().to_owned(),
        }),
    }
}
