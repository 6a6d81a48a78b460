//! Sign-in by challenge signature, sessions, and the `Caller` extractor that every
//! protected endpoint uses to learn who calls and with which role.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use mediblock_protocol::auth::sign_in_message;
use mediblock_protocol::hash::sha256;
use mediblock_protocol::ids::{Role, UnixMillis, UserId};
use serde::{Deserialize, Serialize};

use super::{hex, json_body};
use crate::error::ApiError;
use crate::store::users::User;
use crate::{AppState, now};

/// How long a sign-in challenge may be answered.
pub const CHALLENGE_TTL_MS: u64 = 5 * 60 * 1000;

/// Request of `POST /api/v1/auth/challenge`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// Who wants to sign in.
    pub uid: UserId,
}

/// Answer of `POST /api/v1/auth/challenge`.
#[derive(Debug, Serialize)]
pub struct Challenge {
    /// 32 random bytes, hex: sign `sign_in_message(challenge, uid)`.
    pub challenge: String,
    /// Until when it may be answered (Unix ms).
    pub expires_at: u64,
}

/// `POST /api/v1/auth/challenge`: a fresh challenge for a user id. Every uid gets the same
/// kind of answer, so it does not reveal whether the user exists; only an enrolled,
/// unrevoked user's challenge is stored (no one else could answer it, so a flood of unknown
/// uids stores nothing), after the expired challenges and sessions are purged.
pub async fn challenge(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Challenge>, ApiError> {
    let req: ChallengeRequest = json_body(body)?;
    let nonce: [u8; 32] = state.random();
    let at = now();
    let expires_at = UnixMillis(at.0 + CHALLENGE_TTL_MS);
    let can_sign_in = state
        .store
        .user(&req.uid)
        .await
        .map_err(ApiError::internal)?
        .is_some_and(|u| u.revoked_at.is_none());
    if can_sign_in {
        state
            .store
            .purge_expired(at)
            .await
            .map_err(ApiError::internal)?;
        state
            .store
            .insert_challenge(&nonce, &req.uid, expires_at)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(Json(Challenge {
        challenge: hex(&nonce),
        expires_at: expires_at.0,
    }))
}

/// Request of `POST /api/v1/auth/session`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    /// Who signs in.
    pub uid: UserId,
    /// The challenge, hex.
    pub challenge: String,
    /// Ed25519 signature over `sign_in_message(challenge, uid)`, hex.
    pub signature: String,
}

/// Answer of `POST /api/v1/auth/session`.
#[derive(Debug, Serialize)]
pub struct Session {
    /// Bearer token for `Authorization: Bearer …`.
    pub token: String,
    /// The user's role.
    pub role: Role,
    /// Until when the token is valid (Unix ms).
    pub expires_at: u64,
}

fn unauthenticated() -> ApiError {
    ApiError::client(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "sign-in failed: unknown user, expired challenge or wrong signature",
    )
}

fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok().map(|()| out)
}

/// `POST /api/v1/auth/session`: answers a challenge with a signature and gets a session.
/// Every failure is the same `401 unauthenticated`.
pub async fn session(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Session>, ApiError> {
    let req: SessionRequest = json_body(body)?;
    let nonce = decode_fixed::<32>(&req.challenge).ok_or_else(unauthenticated)?;
    let signature = decode_fixed::<64>(&req.signature).ok_or_else(unauthenticated)?;
    let (uid, expires) = state
        .store
        .take_challenge(&nonce)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(unauthenticated)?;
    if uid != req.uid.as_str() || expires < now() {
        return Err(unauthenticated());
    }
    let user = state
        .store
        .user(&req.uid)
        .await
        .map_err(ApiError::internal)?
        .filter(|u| u.revoked_at.is_none())
        .ok_or_else(unauthenticated)?;
    user.keys
        .verify(&sign_in_message(&nonce, &req.uid), &signature)
        .map_err(|_| unauthenticated())?;
    let token: [u8; 32] = state.random();
    let expires_at = UnixMillis(now().0 + state.session_ttl_ms);
    state
        .store
        .insert_session(&sha256(&token), &user.uid, expires_at)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(uid = %user.uid, role = %user.role, "signed in");
    Ok(Json(Session {
        token: hex(&token),
        role: user.role,
        expires_at: expires_at.0,
    }))
}

/// The authenticated caller of a request (from `Authorization: Bearer <token>`).
#[derive(Debug, Clone)]
pub struct Caller(pub User);

impl Caller {
    /// Fails with `403 forbidden` unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.0.role) {
            Ok(())
        } else {
            Err(ApiError::client(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("a {} may not do this", self.0.role),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let missing = || {
            ApiError::client(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "sign in first: send Authorization: Bearer <token>",
            )
        };
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(decode_fixed::<32>)
            .ok_or_else(missing)?;
        let (uid, expires) = state
            .store
            .session(&sha256(&token))
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(missing)?;
        if expires < now() {
            return Err(missing());
        }
        let uid = UserId::new(uid).map_err(ApiError::internal)?;
        let user = state
            .store
            .user(&uid)
            .await
            .map_err(ApiError::internal)?
            .filter(|u| u.revoked_at.is_none())
            .ok_or_else(missing)?;
        Ok(Caller(user))
    }
}
