//! The one error type of the WASM boundary: a stable `code`, a sentence a clinician can read,
//! and, where they apply, every rule violation, the relay's HTTP status and its details.
//!
//! JavaScript receives it as an `Error` whose `message` is the sentence and which carries
//! `code` (and `violations`, `status`, `details` when present).

use core::fmt;
use std::borrow::Cow;

use serde::Serialize;
use wasm_bindgen::JsValue;

/// One broken rule of one form field, as the pages show it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ViolationView {
    /// The attribute's name (the form field's key).
    pub attribute: String,
    /// The rule's stable code: `required`, `unknown`, `wrong_type`, `unparsable`,
    /// `below_min`, `above_max`, `not_allowed`, `too_long`.
    pub code: String,
    /// The problem in words, naming the field by its label.
    pub message: String,
}

/// An error as JavaScript sees it.
#[derive(Clone, PartialEq)]
pub struct ClientError {
    code: Cow<'static, str>,
    message: String,
    violations: Option<Vec<ViolationView>>,
    status: Option<u16>,
    details: Option<serde_json::Value>,
}

/// Result alias of this crate.
pub type Result<T, E = ClientError> = core::result::Result<T, E>;

impl ClientError {
    /// An error with a stable `code` and a human `message`.
    pub fn new(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            violations: None,
            status: None,
            details: None,
        }
    }

    /// `rule_violation`, carrying every violation.
    pub fn rules(violations: Vec<ViolationView>) -> Self {
        let message = match violations.as_slice() {
            [one] => format!("The form has a problem: {}", one.message),
            many => format!(
                "The form has {} problems; please correct them: {}",
                many.len(),
                many.iter()
                    .map(|v| v.message.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        };
        Self {
            violations: Some(violations),
            ..Self::new("rule_violation", message)
        }
    }

    /// Input that is not what a function expects (`invalid_input`).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new("invalid_input", message)
    }

    /// Adds the relay's HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Adds machine-readable details (the relay's `details`).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// Adds violations (for a `rule_violation` answered by the relay).
    pub fn with_violations(mut self, violations: Vec<ViolationView>) -> Self {
        self.violations = Some(violations);
        self
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The human message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The violations of a `rule_violation`.
    pub fn violations(&self) -> Option<&[ViolationView]> {
        self.violations.as_deref()
    }

    /// The relay's HTTP status, for errors answered by the relay.
    pub fn status(&self) -> Option<u16> {
        self.status
    }
}

impl fmt::Debug for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientError")
            .field("code", &self.code)
            .field("message", &self.message)
            .field("violations", &self.violations)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ClientError {}

impl From<ClientError> for JsValue {
    fn from(e: ClientError) -> JsValue {
        let err = js_sys::Error::new(&e.message);
        let obj: &JsValue = err.as_ref();
        let set = |key: &str, value: &JsValue| {
            // Setting a property of a fresh Error object cannot fail.
            let _ = js_sys::Reflect::set(obj, &JsValue::from_str(key), value);
        };
        set("code", &JsValue::from_str(&e.code));
        if let Some(violations) = &e.violations
            && let Ok(v) = crate::js::to_js(violations)
        {
            set("violations", &v);
        }
        if let Some(status) = e.status {
            set("status", &JsValue::from(status));
        }
        if let Some(details) = &e.details
            && let Ok(v) = crate::js::to_js(details)
        {
            set("details", &v);
        }
        err.into()
    }
}

impl From<mediblock_protocol::Error> for ClientError {
    fn from(e: mediblock_protocol::Error) -> Self {
        use mediblock_protocol::Error as E;
        match e {
            E::Signature => Self::new("signature_invalid", "A signature does not verify."),
            E::Crypto => Self::new(
                "decrypt_failed",
                "A cryptographic operation failed (wrong key or damaged data).",
            ),
            E::Rules(v) => Self::rules(v.iter().map(|v| crate::form::describe(v, None)).collect()),
            other => Self::new(other.code(), capitalise(&other.to_string())),
        }
    }
}

/// The first letter in upper case, and a full stop at the end.
pub(crate) fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    let mut out: String = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_errors_list_every_problem() {
        let v = |a: &str, m: &str| ViolationView {
            attribute: a.into(),
            code: "required".into(),
            message: m.into(),
        };
        let e = ClientError::rules(vec![v("a", "A is required."), v("b", "B is required.")]);
        assert_eq!(e.code(), "rule_violation");
        assert_eq!(
            e.message(),
            "The form has 2 problems; please correct them: A is required. B is required."
        );
        assert_eq!(e.violations().map(<[_]>::len), Some(2));
    }

    #[test]
    fn protocol_errors_keep_their_codes() {
        let e: ClientError = mediblock_protocol::ids::UserId::new("Bad Id")
            .err()
            .map(Into::into)
            .unwrap_or_else(|| ClientError::new("none", ""));
        assert_eq!(e.code(), "invalid_input");
        assert!(
            e.message().starts_with("Invalid user id"),
            "{}",
            e.message()
        );
        assert_eq!(capitalise("abc"), "Abc.");
    }
}
