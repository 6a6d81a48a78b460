//! The relay's HTTP API, called in-process with `tower::ServiceExt::oneshot`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mediblock_relay::{AppState, MAX_BODY_BYTES, app};
use tower::ServiceExt as _;

const TEMPLATES: &str = include_str!("../../protocol/testdata/templates.json");

fn state() -> AppState {
    AppState {
        web_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../web").into(),
    }
}

async fn call(req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let res = app(state()).oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

fn post(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn health_and_info() {
    let res = app(state())
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (status, info) = call(Request::get("/api/v1/info").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["protocol"], "v1");
}

#[tokio::test]
async fn template_check_answers_the_protocol_hash() {
    let file: serde_json::Value = serde_json::from_str(TEMPLATES).unwrap();
    let (status, body) = call(post(
        "/api/v1/templates/check",
        file["template"].to_string(),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hash"], file["hash_hex"]);
    assert_eq!(body["chain_id"], file["chain_id_hex"]);
    assert_eq!(body["reference"], "vital-signs@1");
    assert_eq!(
        body["on_chain"],
        serde_json::json!(["heart_rate", "systolic", "temperature"])
    );
}

#[tokio::test]
async fn bad_templates_get_stable_codes() {
    let file: serde_json::Value = serde_json::from_str(TEMPLATES).unwrap();
    for case in file["invalid"].as_array().unwrap() {
        let (status, body) = call(post(
            "/api/v1/templates/check",
            case["template"].to_string(),
        ))
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", case["name"]);
        assert_eq!(body["code"], "invalid_input", "{}", case["name"]);
    }
    let (status, body) = call(post("/api/v1/templates/check", "{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "malformed_json");
    let (status, _) = call(post("/api/v1/templates/check", vec![0xffu8, 0x00, 0x13])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    let (status, body) = call(post("/api/v1/templates/check", big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
}

#[tokio::test]
async fn serves_the_web_ui() {
    let res = app(state())
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&html).contains("MediBlock"));
}
