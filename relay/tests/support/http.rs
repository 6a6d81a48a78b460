//! HTTP helpers shared by the relay's test files: call the app in-process, build requests,
//! sign in by challenge signature.
#![allow(dead_code, clippy::unwrap_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use mediblock_protocol::auth::sign_in_message;
use mediblock_protocol::ids::UserId;
use mediblock_protocol::keys::Keypair;
use serde_json::{Value as Json, json};
use tower::ServiceExt as _;

/// Calls `app` with `req`; the status and the body as JSON (`Null` when not JSON).
pub(crate) async fn call(app: &Router, req: Request<Body>) -> (StatusCode, Json) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Json::Null))
}

/// A JSON `POST`, with a bearer token when given.
pub(crate) fn post(path: &str, token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut r = Request::post(path).header("content-type", "application/json");
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(body.into()).unwrap()
}

/// A `GET`, with a bearer token when given.
pub(crate) fn get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::empty()).unwrap()
}

/// Signs `uid` in with `keys` (challenge, signature, session); the session token.
pub(crate) async fn sign_in(app: &Router, uid: &str, keys: &Keypair) -> String {
    let (status, ch) = call(
        app,
        post(
            "/api/v1/auth/challenge",
            None,
            json!({"uid": uid}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{ch}");
    let nonce: [u8; 32] = hex::decode(ch["challenge"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let sig = keys.sign(&sign_in_message(&nonce, &UserId::new(uid).unwrap()));
    let body = json!({"uid": uid, "challenge": ch["challenge"], "signature": hex::encode(sig)});
    let (status, session) = call(app, post("/api/v1/auth/session", None, body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{session}");
    session["token"].as_str().unwrap().to_owned()
}
