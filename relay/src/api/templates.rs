//! The template manager's endpoints (the paper's TTM): check, publish, list, read.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use serde::Serialize;

use super::{hex, json_body};
use crate::error::ApiError;
use mediblock_protocol::template::Template;

/// What `POST /api/v1/templates/check` returns for a valid template.
#[derive(Debug, Serialize)]
pub struct TemplateCheck {
    /// `id@version`.
    pub reference: String,
    /// keccak256 of the canonical encoding: what publication anchors on chain.
    pub hash: String,
    /// keccak256 of the template id: the contracts' key for it.
    pub chain_id: String,
    /// Names of the attributes that go on chain, in on-chain order.
    pub on_chain: Vec<String>,
}

impl TemplateCheck {
    /// The check of a valid template.
    pub fn of(template: &Template) -> Self {
        Self {
            reference: template.reference().to_string(),
            hash: hex(&template.hash()),
            chain_id: hex(&template.reference().id.chain_id()),
            on_chain: template
                .on_chain_attributes()
                .map(|a| a.name.to_string())
                .collect(),
        }
    }
}

/// `POST /api/v1/templates/check`: checks a template (JSON) and answers its hash, or `400`
/// with the first invariant it breaks. Stores nothing.
pub async fn check(body: Result<Bytes, BytesRejection>) -> Result<Json<TemplateCheck>, ApiError> {
    let template: Template = json_body(body)?;
    Ok(Json(TemplateCheck::of(&template)))
}
