//! The template manager's endpoints (the paper's TTM): check, publish, list, read.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mediblock_protocol::ids::{Role, TemplateId, TemplateVersion};
use mediblock_protocol::template::Template;
use serde::Serialize;

use super::auth::Caller;
use super::{hex, json_body};
use crate::error::ApiError;
use crate::store::StoreError;
use crate::{AppState, now};

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

/// `POST /api/v1/templates` (admin): publishes a template version. Published versions are
/// immutable: publishing an existing `id@version` is `409 template_exists`.
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<TemplateCheck>), ApiError> {
    caller.require(&[Role::Admin])?;
    let template: Template = json_body(body)?;
    let reference = template.reference();
    if state
        .store
        .template(&reference.id, reference.version)
        .await
        .map_err(ApiError::internal)?
        .is_some()
    {
        return Err(ApiError::client(
            StatusCode::CONFLICT,
            "template_exists",
            format!("{reference} is already published; publish a new version"),
        ));
    }
    // Register on chain first (idempotent), so a stored template is always anchored.
    if let Some(chain) = &state.chain {
        crate::chain::setup::register_template(chain.provider(), chain.registry(), &template)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, template = %reference, "template registration failed");
                ApiError::client(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "chain_unavailable",
                    "the template could not be registered on chain; try again",
                )
            })?;
    }
    match state.store.insert_template(&template, now()).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::client(
                StatusCode::CONFLICT,
                "template_exists",
                format!(
                    "{} is already published; publish a new version",
                    template.reference()
                ),
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    tracing::info!(template = %template.reference(), by = %caller.0.uid, "template published");
    Ok((StatusCode::CREATED, Json(TemplateCheck::of(&template))))
}

/// `GET /api/v1/templates` (signed in): every published template.
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<Vec<Template>>, ApiError> {
    Ok(Json(
        state.store.templates().await.map_err(ApiError::internal)?,
    ))
}

/// `GET /api/v1/templates/{id}/{version}` (signed in): one published template.
pub async fn get_one(
    State(state): State<AppState>,
    _caller: Caller,
    Path((id, version)): Path<(String, u32)>,
) -> Result<Json<Template>, ApiError> {
    let id: TemplateId = id.parse()?;
    let version = TemplateVersion::new(version)?;
    state
        .store
        .template(&id, version)
        .await
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or_else(|| {
            ApiError::client(
                StatusCode::NOT_FOUND,
                "template_unknown",
                format!("no template {id}@{version}"),
            )
        })
}
