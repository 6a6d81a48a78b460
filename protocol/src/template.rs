//! Transaction templates (the paper's TT): the attributes a record may carry, their types,
//! units and rules, which of them go on chain, and which roles may submit.
//!
//! A template is immutable once published; its [`Template::hash`] is anchored on chain so a
//! relay cannot later pretend a record was checked against different rules.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::encoding::{Canonical, Reader, Writer};
use crate::error::{DecodeError, Error, Result};
use crate::hash::{Hash32, TAG_TEMPLATE, keccak256};
use crate::ids::{AttrName, Role, TemplateId, TemplateRef, TemplateVersion};
use crate::rules::{Rule, Violation};
use crate::value::{Attributes, Date, MAX_ATTRIBUTES, MAX_SCALE, MAX_TEXT_LEN, Value, parse_fixed};

/// Most attributes of one template that may go on chain (bounded for gas).
pub const MAX_ON_CHAIN: usize = 16;
/// Most allowed values of an enum attribute.
pub const MAX_ENUM_VALUES: usize = 64;
const MAX_LABEL: usize = 128;
const MAX_UNIT: usize = 32;

/// An attribute's type, with the rules that belong to that type.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", from = "KindJson")]
pub enum AttributeKind {
    /// A fixed-point number with `scale` decimal digits, optionally bounded (inclusive,
    /// in mantissa units: `min: 350, scale: 1` means 35.0).
    Integer {
        /// Digits after the decimal point (0–9).
        scale: u8,
        /// Smallest allowed mantissa.
        #[serde(default)]
        min: Option<i64>,
        /// Largest allowed mantissa.
        #[serde(default)]
        max: Option<i64>,
    },
    /// Free text of at most `max_len` bytes. Never on chain.
    Text {
        /// Longest allowed text, in UTF-8 bytes.
        max_len: u32,
    },
    /// One of a fixed list; on chain as the value's index in the list.
    Enum {
        /// The allowed values, in the order that gives their on-chain index.
        values: Vec<String>,
    },
    /// A calendar date, optionally bounded. Never on chain (dates identify people).
    Date {
        /// Earliest allowed date.
        #[serde(default)]
        min: Option<Date>,
        /// Latest allowed date.
        #[serde(default)]
        max: Option<Date>,
    },
    /// Yes or no; on chain as 0 or 1.
    Boolean,
}

/// What an [`AttributeKind`] is read from: the same shape, but `Boolean` as an empty struct
/// variant, since serde lets an internally tagged *unit* variant carry unknown fields even
/// under `deny_unknown_fields` (`{"type":"boolean","max":1}` would read).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum KindJson {
    Integer {
        scale: u8,
        #[serde(default)]
        min: Option<i64>,
        #[serde(default)]
        max: Option<i64>,
    },
    Text {
        max_len: u32,
    },
    Enum {
        values: Vec<String>,
    },
    Date {
        #[serde(default)]
        min: Option<Date>,
        #[serde(default)]
        max: Option<Date>,
    },
    Boolean {},
}

impl From<KindJson> for AttributeKind {
    fn from(k: KindJson) -> Self {
        match k {
            KindJson::Integer { scale, min, max } => Self::Integer { scale, min, max },
            KindJson::Text { max_len } => Self::Text { max_len },
            KindJson::Enum { values } => Self::Enum { values },
            KindJson::Date { min, max } => Self::Date { min, max },
            KindJson::Boolean {} => Self::Boolean,
        }
    }
}

impl AttributeKind {
    /// The type's name, as values and error messages spell it.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttributeKind::Integer { .. } => "integer",
            AttributeKind::Text { .. } => "text",
            AttributeKind::Enum { .. } => "enum",
            AttributeKind::Date { .. } => "date",
            AttributeKind::Boolean => "boolean",
        }
    }

    fn may_go_on_chain(&self) -> bool {
        matches!(
            self,
            AttributeKind::Integer { .. } | AttributeKind::Enum { .. } | AttributeKind::Boolean
        )
    }
}

/// One attribute of a template.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    /// The attribute's key in records.
    pub name: AttrName,
    /// What a clinician sees next to the field.
    pub label: String,
    /// Type and type-specific rules.
    pub kind: AttributeKind,
    /// Unit of measure shown to people, e.g. `bpm`.
    #[serde(default)]
    pub unit: Option<String>,
    /// Whether a record must carry this attribute.
    #[serde(default)]
    pub required: bool,
    /// Whether the value goes on chain (de-identified, for the contract's rule check).
    #[serde(default)]
    pub on_chain: bool,
}

/// A template as written by an administrator, before its invariants are checked.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSpec {
    /// Template id.
    pub id: TemplateId,
    /// Version being published.
    pub version: TemplateVersion,
    /// Human title, e.g. "Vital signs".
    pub title: String,
    /// The attributes, in display order (which is also the on-chain order).
    pub attributes: Vec<AttributeSpec>,
    /// Roles allowed to submit records of this template.
    pub roles: BTreeSet<Role>,
}

/// A checked template. Construct with [`Template::new`] (or deserialize, which checks too).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "TemplateSpec", into = "TemplateSpec")]
pub struct Template {
    spec: TemplateSpec,
}

fn check_text(what: &'static str, s: &str, max: usize, optional: bool) -> Result<()> {
    if (!optional && s.is_empty()) || s.len() > max {
        return Err(Error::invalid(what, format!("must be 1 to {max} bytes")));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(what, "must not contain control characters"));
    }
    Ok(())
}

impl Template {
    /// Checks every invariant of `spec`:
    /// 1 to 64 uniquely named attributes; at most 16 on chain, and only required
    /// integer, enum or boolean ones; sane bounds; non-empty labels; at least one role.
    pub fn new(spec: TemplateSpec) -> Result<Self> {
        check_text("template title", &spec.title, MAX_LABEL, false)?;
        if spec.attributes.is_empty() || spec.attributes.len() > MAX_ATTRIBUTES {
            return Err(Error::invalid(
                "template",
                format!("must have 1 to {MAX_ATTRIBUTES} attributes"),
            ));
        }
        if spec.roles.is_empty() {
            return Err(Error::invalid(
                "template",
                "at least one role must be allowed",
            ));
        }
        let mut names = BTreeSet::new();
        for a in &spec.attributes {
            if !names.insert(&a.name) {
                return Err(Error::invalid(
                    "template",
                    format!("attribute {} appears twice", a.name),
                ));
            }
            check_text("attribute label", &a.label, MAX_LABEL, false)?;
            if let Some(unit) = &a.unit {
                check_text("attribute unit", unit, MAX_UNIT, false)?;
            }
            if a.on_chain && !a.kind.may_go_on_chain() {
                return Err(Error::invalid(
                    "template",
                    format!(
                        "attribute {}: a {} value may not go on chain",
                        a.name,
                        a.kind.type_name()
                    ),
                ));
            }
            if a.on_chain && !a.required {
                return Err(Error::invalid(
                    "template",
                    format!("attribute {}: on-chain attributes must be required", a.name),
                ));
            }
            check_kind(&a.name, &a.kind)?;
        }
        let on_chain = spec.attributes.iter().filter(|a| a.on_chain).count();
        if on_chain > MAX_ON_CHAIN {
            return Err(Error::invalid(
                "template",
                format!("at most {MAX_ON_CHAIN} attributes may go on chain"),
            ));
        }
        Ok(Self { spec })
    }

    /// The template as written.
    pub fn spec(&self) -> &TemplateSpec {
        &self.spec
    }

    /// `id@version`.
    pub fn reference(&self) -> TemplateRef {
        TemplateRef {
            id: self.spec.id.clone(),
            version: self.spec.version,
        }
    }

    /// The attributes in order.
    pub fn attributes(&self) -> &[AttributeSpec] {
        &self.spec.attributes
    }

    /// The attributes that go on chain, in on-chain order.
    pub fn on_chain_attributes(&self) -> impl Iterator<Item = &AttributeSpec> {
        self.spec.attributes.iter().filter(|a| a.on_chain)
    }

    /// Whether a user with `role` may submit records of this template.
    pub fn allows(&self, role: Role) -> bool {
        self.spec.roles.contains(&role)
    }

    /// keccak256 of the canonical encoding: the value anchored on chain at publication.
    pub fn hash(&self) -> Hash32 {
        keccak256(&self.to_canonical_bytes())
    }

    /// Checks `attrs` against every rule, returning *all* violations.
    pub fn check(&self, attrs: &Attributes) -> Result<(), Vec<Violation>> {
        crate::rules::check(self, attrs)
    }

    /// Maps form fields (text, as typed in a browser) to typed values, then checks the
    /// rules. Empty fields count as absent. Every problem is reported, not just the first.
    pub fn map_form(
        &self,
        fields: &BTreeMap<String, String>,
    ) -> Result<Attributes, Vec<Violation>> {
        let mut attrs = Attributes::new();
        let mut violations = Vec::new();
        for (key, text) in fields {
            let Some(spec) = self.spec.attributes.iter().find(|a| a.name.as_str() == key) else {
                if let Ok(name) = AttrName::new(key.as_str()) {
                    violations.push(Violation::new(name, Rule::Unknown));
                }
                continue;
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match parse_value(&spec.kind, text) {
                Ok(v) => {
                    attrs.insert(spec.name.clone(), v);
                }
                Err(expected) => violations.push(Violation::new(
                    spec.name.clone(),
                    Rule::Unparsable { expected },
                )),
            }
        }
        if let Err(more) = self.check(&attrs) {
            // A field that was typed but unreadable is not also "missing".
            let unparsable: BTreeSet<AttrName> =
                violations.iter().map(|v| v.attribute.clone()).collect();
            violations.extend(
                more.into_iter()
                    .filter(|v| !(v.rule == Rule::Required && unparsable.contains(&v.attribute))),
            );
        }
        if violations.is_empty() {
            Ok(attrs)
        } else {
            violations.sort();
            violations.dedup();
            Err(violations)
        }
    }
}

fn parse_value(kind: &AttributeKind, text: &str) -> core::result::Result<Value, String> {
    match kind {
        AttributeKind::Integer { scale, .. } => parse_fixed(text, *scale)
            .map(Value::Integer)
            .map_err(|_| format!("a number with at most {scale} decimal digit(s)")),
        AttributeKind::Text { .. } => Ok(Value::Text(text.to_owned())),
        AttributeKind::Enum { .. } => Ok(Value::Enum(text.to_owned())),
        AttributeKind::Date { .. } => text
            .parse()
            .map(Value::Date)
            .map_err(|_| "a date as YYYY-MM-DD".to_owned()),
        AttributeKind::Boolean => match text {
            "true" | "yes" | "on" => Ok(Value::Boolean(true)),
            "false" | "no" | "off" => Ok(Value::Boolean(false)),
            _ => Err("yes or no".to_owned()),
        },
    }
}

fn check_kind(name: &AttrName, kind: &AttributeKind) -> Result<()> {
    let bad = |why: String| {
        Err(Error::invalid(
            "template",
            format!("attribute {name}: {why}"),
        ))
    };
    match kind {
        AttributeKind::Integer { scale, min, max } => {
            if *scale > MAX_SCALE {
                return bad(format!("scale must be at most {MAX_SCALE}"));
            }
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                return bad("min is greater than max".into());
            }
        }
        AttributeKind::Text { max_len } => {
            if *max_len == 0 || *max_len > MAX_TEXT_LEN {
                return bad(format!("max_len must be 1 to {MAX_TEXT_LEN}"));
            }
        }
        AttributeKind::Enum { values } => {
            if values.is_empty() || values.len() > MAX_ENUM_VALUES {
                return bad(format!("an enum needs 1 to {MAX_ENUM_VALUES} values"));
            }
            let mut seen = BTreeSet::new();
            for v in values {
                check_text("enum value", v, MAX_LABEL, false)?;
                if !seen.insert(v) {
                    return bad(format!("enum value {v:?} appears twice"));
                }
            }
        }
        AttributeKind::Date { min, max } => {
            if let (Some(lo), Some(hi)) = (min, max)
                && lo > hi
            {
                return bad("min is after max".into());
            }
        }
        AttributeKind::Boolean => {}
    }
    Ok(())
}

impl TryFrom<TemplateSpec> for Template {
    type Error = Error;
    fn try_from(spec: TemplateSpec) -> Result<Self> {
        Self::new(spec)
    }
}

impl From<Template> for TemplateSpec {
    fn from(t: Template) -> Self {
        t.spec
    }
}

fn encode_opt_i64(w: &mut Writer, v: Option<i64>) {
    w.option(v.as_ref(), |w, v| w.i64(*v));
}

fn encode_opt_str(w: &mut Writer, v: Option<&String>) {
    w.option(v, |w, v| w.str(v));
}

impl Canonical for AttributeKind {
    fn encode(&self, w: &mut Writer) {
        match self {
            AttributeKind::Integer { scale, min, max } => {
                w.u8(1);
                w.u8(*scale);
                encode_opt_i64(w, *min);
                encode_opt_i64(w, *max);
            }
            AttributeKind::Text { max_len } => {
                w.u8(2);
                w.u32(*max_len);
            }
            AttributeKind::Enum { values } => {
                w.u8(3);
                w.len(values.len());
                for v in values {
                    w.str(v);
                }
            }
            AttributeKind::Date { min, max } => {
                w.u8(4);
                encode_opt_i64(w, min.map(|d| i64::from(d.days())));
                encode_opt_i64(w, max.map(|d| i64::from(d.days())));
            }
            AttributeKind::Boolean => w.u8(5),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let date = |r: &mut Reader<'_>| -> Result<Option<Date>> {
            r.option(|r| {
                let days = i32::try_from(r.i64()?)
                    .map_err(|_| DecodeError::NonCanonical("date out of range"))?;
                Date::from_days(days)
            })
        };
        Ok(match r.u8()? {
            1 => AttributeKind::Integer {
                scale: r.u8()?,
                min: r.option(|r| Ok(r.i64()?))?,
                max: r.option(|r| Ok(r.i64()?))?,
            },
            2 => AttributeKind::Text { max_len: r.u32()? },
            3 => {
                let n = r.len(MAX_ENUM_VALUES as u32)?;
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    values.push(r.str_limited(MAX_LABEL as u32)?.to_owned());
                }
                AttributeKind::Enum { values }
            }
            4 => AttributeKind::Date {
                min: date(r)?,
                max: date(r)?,
            },
            5 => AttributeKind::Boolean,
            got => {
                return Err(DecodeError::UnknownDiscriminant {
                    what: "attribute kind",
                    got,
                }
                .into());
            }
        })
    }
}

impl Canonical for Template {
    fn encode(&self, w: &mut Writer) {
        let s = &self.spec;
        w.tag(TAG_TEMPLATE);
        s.id.encode(w);
        w.u32(s.version.get());
        w.str(&s.title);
        w.len(s.attributes.len());
        for a in &s.attributes {
            a.name.encode(w);
            w.str(&a.label);
            a.kind.encode(w);
            encode_opt_str(w, a.unit.as_ref());
            w.bool(a.required);
            w.bool(a.on_chain);
        }
        w.len(s.roles.len());
        for role in &s.roles {
            role.encode(w);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self> {
        r.expect_tag(TAG_TEMPLATE)?;
        let id = TemplateId::decode(r)?;
        let version = TemplateVersion::new(r.u32()?)?;
        let title = r.str_limited(MAX_LABEL as u32)?.to_owned();
        let n = r.len(MAX_ATTRIBUTES as u32)?;
        let mut attributes = Vec::with_capacity(n);
        for _ in 0..n {
            attributes.push(AttributeSpec {
                name: AttrName::decode(r)?,
                label: r.str_limited(MAX_LABEL as u32)?.to_owned(),
                kind: AttributeKind::decode(r)?,
                unit: r.option(|r| Ok(r.str_limited(MAX_UNIT as u32)?.to_owned()))?,
                required: r.bool()?,
                on_chain: r.bool()?,
            });
        }
        let n = r.len(Role::ALL.len() as u32)?;
        let mut roles = BTreeSet::new();
        let mut last = None;
        for _ in 0..n {
            let role = Role::decode(r)?;
            if last.is_some_and(|l| l >= role) {
                return Err(DecodeError::NonCanonical("roles not strictly ascending").into());
            }
            last = Some(role);
            roles.insert(role);
        }
        Self::new(TemplateSpec {
            id,
            version,
            title,
            attributes,
            roles,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_kind_refuses_unknown_fields() {
        for (json, kind) in [
            (
                r#"{"type":"integer","scale":1,"min":-5}"#,
                AttributeKind::Integer {
                    scale: 1,
                    min: Some(-5),
                    max: None,
                },
            ),
            (
                r#"{"type":"text","max_len":10}"#,
                AttributeKind::Text { max_len: 10 },
            ),
            (
                r#"{"type":"enum","values":["a"]}"#,
                AttributeKind::Enum {
                    values: vec!["a".into()],
                },
            ),
            (
                r#"{"type":"date","max":"2000-01-01"}"#,
                AttributeKind::Date {
                    min: None,
                    max: Some("2000-01-01".parse().unwrap()),
                },
            ),
            (r#"{"type":"boolean"}"#, AttributeKind::Boolean),
        ] {
            assert_eq!(serde_json::from_str::<AttributeKind>(json).unwrap(), kind);
            let back = serde_json::to_value(&kind).unwrap();
            assert_eq!(serde_json::from_value::<AttributeKind>(back).unwrap(), kind);
            // A field of another kind counts as unknown too.
            for field in ["zz", "values", "max_len"] {
                let mut extra: serde_json::Value = serde_json::from_str(json).unwrap();
                if extra.get(field).is_some() {
                    continue;
                }
                extra[field] = serde_json::json!(1);
                let err = serde_json::from_value::<AttributeKind>(extra)
                    .unwrap_err()
                    .to_string();
                assert!(
                    err.contains(&format!("unknown field `{field}`")),
                    "{json}: {err}"
                );
            }
        }
    }

    #[test]
    fn a_template_refuses_unknown_fields_at_every_level() {
        let good = serde_json::json!({
            "id": "t", "version": 1, "title": "T",
            "attributes": [{"name": "a", "label": "A", "kind": {"type": "boolean"}, "required": true, "on_chain": true}],
            "roles": ["nurse"]
        });
        assert!(serde_json::from_value::<Template>(good.clone()).is_ok());
        for at in ["", "/attributes/0", "/attributes/0/kind"] {
            let mut v = good.clone();
            v.pointer_mut(at)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert("zz".into(), serde_json::json!(1));
            let err = serde_json::from_value::<Template>(v).unwrap_err();
            assert!(
                err.to_string().contains("unknown field `zz`"),
                "{at}: {err}"
            );
        }
    }
}
