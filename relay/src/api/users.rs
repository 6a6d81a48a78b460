//! Enrolment and the user list (administrators only), a user's public keys (anyone signed
//! in, to check the signatures on records), and `GET /api/v1/me`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mediblock_protocol::ids::{EthAddress, Role, UserId};
use mediblock_protocol::keys::PublicKeys;
use serde::{Deserialize, Serialize};

use super::auth::Caller;
use super::json_body;
use crate::error::ApiError;
use crate::store::StoreError;
use crate::store::users::User;
use crate::{AppState, now};

/// Request of `POST /api/v1/users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    /// The new user's id.
    pub uid: UserId,
    /// Their role.
    pub role: Role,
    /// Their public keys (from their browser's enrolment request).
    pub keys: PublicKeys,
    /// Their wallet address, for wallet holders.
    #[serde(default)]
    pub eth_address: Option<EthAddress>,
}

/// A user as the API shows it.
#[derive(Debug, Serialize)]
pub struct UserView {
    /// User id.
    pub uid: UserId,
    /// Role.
    pub role: Role,
    /// Public keys.
    pub keys: PublicKeys,
    /// Wallet address.
    pub eth_address: Option<EthAddress>,
    /// Enrolment time (Unix ms).
    pub enrolled_at: u64,
    /// Whether access was revoked.
    pub revoked: bool,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            uid: u.uid,
            role: u.role,
            keys: u.keys,
            eth_address: u.eth_address,
            enrolled_at: u.enrolled_at.0,
            revoked: u.revoked_at.is_some(),
        }
    }
}

/// `POST /api/v1/users` (admin): enrols a user. `409 user_exists` for a known id.
pub async fn enrol(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    caller.require(&[Role::Admin])?;
    let req: Enrolment = json_body(body)?;
    let user = User {
        uid: req.uid,
        role: req.role,
        keys: req.keys,
        eth_address: req.eth_address,
        enrolled_at: now(),
        revoked_at: None,
    };
    // A wallet holder's address becomes a submitter on chain before the user exists here.
    if let (Some(address), Some(chain)) = (user.eth_address, &state.chain) {
        chain
            .enroll_wallet(alloy::primitives::Address::from(*address.as_bytes()))
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "wallet enrolment on chain failed");
                ApiError::client(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "chain_unavailable",
                    "the wallet could not be enrolled on chain; try again",
                )
            })?;
    }
    match state.store.insert_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::client(
                StatusCode::CONFLICT,
                "user_exists",
                format!("user {} is already enrolled", user.uid),
            ));
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    tracing::info!(uid = %user.uid, role = %user.role, by = %caller.0.uid, "user enrolled");
    Ok((StatusCode::CREATED, Json(user.into())))
}

/// `GET /api/v1/users` (admin): every enrolled user.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<UserView>>, ApiError> {
    caller.require(&[Role::Admin])?;
    let users = state.store.users().await.map_err(ApiError::internal)?;
    Ok(Json(users.into_iter().map(UserView::from).collect()))
}

/// `GET /api/v1/users/{uid}/keys` (anyone signed in): one user's public keys, role and
/// status, so that a reader's browser can check the author's signature on a record itself.
/// Public keys are not secret; `404 unknown_user` for an id nobody holds.
pub async fn keys(
    State(state): State<AppState>,
    _caller: Caller,
    Path(uid): Path<String>,
) -> Result<Json<UserView>, ApiError> {
    let uid: UserId = uid.parse()?;
    match state.store.user(&uid).await.map_err(ApiError::internal)? {
        Some(user) => Ok(Json(user.into())),
        None => Err(ApiError::client(
            StatusCode::NOT_FOUND,
            "unknown_user",
            format!("no user {uid} is enrolled"),
        )),
    }
}

/// `GET /api/v1/me`: the signed-in user.
pub async fn me(caller: Caller) -> Json<UserView> {
    Json(caller.0.into())
}
