//! The relay's HTTP API on a real SQLite store, called in-process with `oneshot`: sign-in,
//! enrolment, roles, submission and every refusal with its stable code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use mediblock_protocol::auth::sign_in_message;
use mediblock_protocol::ids::{
    AttrName, PatientId, Role, Salt, TemplateRef, TemplateVersion, TxId, UnixMillis, UserId,
};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::record::InitialTransaction;
use mediblock_protocol::template::Template;
use mediblock_protocol::value::{Attributes, Value};
use mediblock_relay::keys::RelayKeys;
use mediblock_relay::store::Store;
use mediblock_relay::store::users::User;
use mediblock_relay::{AppState, MAX_BODY_BYTES, app};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value as Json, json};
use tower::ServiceExt as _;

const TEMPLATES: &str = include_str!("../../protocol/testdata/templates.json");

#[path = "support/postgres.rs"]
mod postgres;

#[path = "support/http.rs"]
mod http;

/// Which database a test runs on: every test below runs on both.
#[derive(Debug, Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

/// Runs each named test body once on SQLite and once on a throw-away PostgreSQL.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $( #[tokio::test] async fn $name() { super::$name(super::Db::Sqlite).await } )*
        }
        mod on_postgres {
            $( #[tokio::test] async fn $name() { super::$name(super::Db::Postgres).await } )*
        }
    };
}

on_both_databases!(
    health_info_and_web_ui,
    template_check_answers_the_protocol_hash_and_codes,
    sign_in_needs_the_enrolled_key_and_a_fresh_challenge,
    enrolment_is_for_admins_and_ids_are_unique,
    submission_is_accepted_once_and_refusals_store_nothing,
    tickets_are_issued_to_authors_and_bind_one_record,
    roles_outside_the_template_are_forbidden,
    templates_are_published_once_by_admins,
    records_are_read_decrypted_by_clinicians_and_every_read_is_logged,
    every_documented_endpoint_exists
);

struct Harness {
    app: Router,
    store: Store,
    relay: Keypair,
    admin: Keypair,
    events: tokio::sync::broadcast::Sender<mediblock_relay::api::events::StateChange>,
    rng: ChaCha20Rng,
}

fn temp_db() -> String {
    let dir = std::env::temp_dir().join(format!(
        "mediblock-api-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}", dir.join("store.db").display())
}

fn template() -> Template {
    let file: Json = serde_json::from_str(TEMPLATES).unwrap();
    serde_json::from_value(file["template"].clone()).unwrap()
}

impl Harness {
    async fn new(db: Db) -> Self {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let url = match db {
            Db::Sqlite => temp_db(),
            Db::Postgres => postgres::shared().fresh_database().expect("fresh database"),
        };
        let store = Store::open(&url).await.unwrap();
        let relay = Keypair::from_seeds(&[1; 64]);
        let events = tokio::sync::broadcast::channel(1024).0;
        let keys = RelayKeys::new(
            Keypair::from_seeds(&[1; 64]),
            &Keypair::from_seeds(&[2; 64]),
        )
        .unwrap();
        let state = AppState {
            store: store.clone(),
            keys: Arc::new(keys),
            web_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../web").into(),
            metrics: Default::default(),
            chain: None,
            wake_worker: Default::default(),
            audit_slot: Default::default(),
            limits: Default::default(),
            events: events.clone(),
            session_ttl_ms: 60_000,
        };
        store
            .insert_template(&template(), UnixMillis(1))
            .await
            .unwrap();
        let admin = Keypair::generate(&mut rng);
        store
            .insert_user(&User {
                uid: UserId::new("admin").unwrap(),
                role: Role::Admin,
                keys: admin.public(),
                eth_address: None,
                enrolled_at: UnixMillis(1),
                revoked_at: None,
            })
            .await
            .unwrap();
        Self {
            app: app(state),
            store,
            relay,
            admin,
            events,
            rng,
        }
    }

    async fn call(&self, req: Request<Body>) -> (StatusCode, Json) {
        http::call(&self.app, req).await
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, Json) {
        self.call(http::post(path, token, body)).await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Json) {
        self.call(http::get(path, token)).await
    }

    async fn sign_in(&self, uid: &str, keys: &Keypair) -> String {
        http::sign_in(&self.app, uid, keys).await
    }

    async fn admin_token(&self) -> String {
        self.sign_in("admin", &self.admin).await
    }

    /// Enrols `uid` with `role` and signs them in.
    async fn clinician(&mut self, uid: &str, role: &str) -> (Keypair, String) {
        let keys = Keypair::generate(&mut self.rng);
        let admin = self.admin_token().await;
        let body = json!({"uid": uid, "role": role, "keys": keys.public()});
        let (status, _) = self
            .post("/api/v1/users", Some(&admin), body.to_string())
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let token = self.sign_in(uid, &keys).await;
        (keys, token)
    }

    /// A vital-signs record by `uid`, with a ticket the store issued to `uid`.
    async fn ti(&mut self, uid: &str, heart_rate: i64) -> InitialTransaction {
        let ticket = self
            .store
            .issue_ticket(&UserId::new(uid).unwrap(), mediblock_relay::now())
            .await
            .unwrap()
            .unwrap();
        let tid = TxId::for_ticket(ticket.number, &mut self.rng);
        self.ti_with(tid, uid, heart_rate)
    }

    /// A vital-signs record by `uid` under `tid`, whatever its ticket.
    fn ti_with(&mut self, tid: TxId, uid: &str, heart_rate: i64) -> InitialTransaction {
        let name = |s: &str| AttrName::new(s).unwrap();
        let attributes: Attributes = [
            (name("heart_rate"), Value::Integer(heart_rate)),
            (name("systolic"), Value::Integer(120)),
            (name("temperature"), Value::Integer(368)),
        ]
        .into_iter()
        .collect();
        InitialTransaction {
            tid,
            uid: UserId::new(uid).unwrap(),
            pid: PatientId::random(&mut self.rng),
            template: TemplateRef {
                id: "vital-signs".parse().unwrap(),
                version: TemplateVersion::new(1).unwrap(),
            },
            attributes,
            created_at: UnixMillis(5),
            salt: Salt::random(&mut self.rng),
            prev: None,
        }
    }

    /// `POST /api/v1/tickets` with `token`: the ticket, after checking the answer's shape.
    async fn ticket(&self, token: &str) -> u64 {
        let (status, body) = self.post("/api/v1/tickets", Some(token), "").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body["expires_at"].as_u64().unwrap() > mediblock_relay::now().0);
        body["ticket"].as_str().unwrap().parse().unwrap()
    }

    fn seal(&mut self, ti: InitialTransaction, signer: &Keypair, sealer: &Keypair) -> String {
        let signed = ti.sign(signer);
        serde_json::to_string(
            &signed
                .seal(sealer, &self.relay.public(), &mut self.rng)
                .unwrap(),
        )
        .unwrap()
    }
}

async fn health_info_and_web_ui(db: Db) {
    let h = Harness::new(db).await;
    let (status, _) = h.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, info) = h.get("/api/v1/info", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["protocol"], "v1");
    assert_eq!(
        info["relay_keys"],
        serde_json::to_value(h.relay.public()).unwrap()
    );
    let res = h
        .app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&html).contains("MediBlock"));
}

async fn template_check_answers_the_protocol_hash_and_codes(db: Db) {
    let h = Harness::new(db).await;
    let file: Json = serde_json::from_str(TEMPLATES).unwrap();
    let (status, body) = h
        .post(
            "/api/v1/templates/check",
            None,
            file["template"].to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hash"], file["hash_hex"]);
    assert_eq!(
        body["on_chain"],
        json!(["heart_rate", "systolic", "temperature"])
    );
    for case in file["invalid"].as_array().unwrap() {
        let (status, body) = h
            .post(
                "/api/v1/templates/check",
                None,
                case["template"].to_string(),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_input"))
        );
    }
    let (status, body) = h.post("/api/v1/templates/check", None, "{not json").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    let (status, body) = h.post("/api/v1/templates/check", None, big).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
}

async fn sign_in_needs_the_enrolled_key_and_a_fresh_challenge(db: Db) {
    let mut h = Harness::new(db).await;
    let (_nurse, token) = h.clinician("nurse.bo", "nurse").await;
    let (status, me) = h.get("/api/v1/me", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["role"], "nurse");

    // A signature by another key, and a replayed challenge, are both refused.
    let (_, ch) = h
        .post(
            "/api/v1/auth/challenge",
            None,
            json!({"uid": "nurse.bo"}).to_string(),
        )
        .await;
    let nonce: [u8; 32] = hex::decode(ch["challenge"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let stranger = Keypair::generate(&mut h.rng);
    let sig = stranger.sign(&sign_in_message(&nonce, &UserId::new("nurse.bo").unwrap()));
    let body =
        json!({"uid": "nurse.bo", "challenge": ch["challenge"], "signature": hex::encode(sig)})
            .to_string();
    let (status, err) = h.post("/api/v1/auth/session", None, body.clone()).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (status, _) = h.post("/api/v1/auth/session", None, body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // No token, a made-up token: 401.
    let (status, err) = h.get("/api/v1/me", None).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (status, _) = h.get("/api/v1/me", Some(&"ab".repeat(32))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn enrolment_is_for_admins_and_ids_are_unique(db: Db) {
    let mut h = Harness::new(db).await;
    let (_nurse, nurse_token) = h.clinician("nurse.bo", "nurse").await;
    let keys = Keypair::generate(&mut h.rng);
    let body = json!({"uid": "dr.eve", "role": "doctor", "keys": keys.public()}).to_string();
    let (status, err) = h
        .post("/api/v1/users", Some(&nurse_token), body.clone())
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let admin = h.admin_token().await;
    let (status, _) = h.post("/api/v1/users", Some(&admin), body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, err) = h.post("/api/v1/users", Some(&admin), body).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("user_exists"))
    );
    let (status, users) = h.get("/api/v1/users", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["uid"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["admin", "dr.eve", "nurse.bo"]);

    // Any signed-in reader may fetch one author's public keys, to check signatures itself.
    let (status, eve) = h.get("/api/v1/users/dr.eve/keys", Some(&nurse_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(eve["keys"], json!(keys.public()));
    assert_eq!(eve["role"], "doctor");
    let (status, err) = h.get("/api/v1/users/dr.who/keys", Some(&nurse_token)).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_user"))
    );
    let (status, err) = h
        .get("/api/v1/users/Not%20An%20Id/keys", Some(&nurse_token))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, _) = h.get("/api/v1/users/dr.eve/keys", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn submission_is_accepted_once_and_refusals_store_nothing(db: Db) {
    let mut h = Harness::new(db).await;
    let (nurse, token) = h.clinician("nurse.bo", "nurse").await;

    // A valid record: 202, leaf 0, queued; the same request again is an idempotent 202.
    let ti = h.ti("nurse.bo", 72).await;
    let tid = ti.tid;
    let body = h.seal(ti.clone(), &nurse, &nurse);
    let (status, sub) = h
        .post("/api/v1/submissions", Some(&token), body.clone())
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sub}");
    assert_eq!(sub["leaf_index"], 0);
    assert_eq!(sub["state"], "queued");
    assert_eq!(sub["status_url"], format!("/api/v1/submissions/{tid}"));
    let (status, again) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(
        (status, again["leaf_index"].as_u64()),
        (StatusCode::ACCEPTED, Some(0))
    );
    let (status, st) = h
        .get(&format!("/api/v1/submissions/{tid}"), Some(&token))
        .await;
    assert_eq!(
        (status, st["state"].as_str()),
        (StatusCode::OK, Some("queued"))
    );

    // The same tid with other content: 409 duplicate_tid.
    let mut other = ti.clone();
    other
        .attributes
        .insert(AttrName::new("heart_rate").unwrap(), Value::Integer(80));
    let body = h.seal(other, &nurse, &nurse);
    let (status, err) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("duplicate_tid"))
    );

    // Every refusal below leaves the log and the queue as they are.
    let before = (
        h.store.log_leaves().await.unwrap().len(),
        h.store.queue_depth().await.unwrap(),
    );

    // Out of range: 422 with every violation, kept in the audit.
    let ti = h.ti("nurse.bo", 400).await;
    let bad_tid = ti.tid;
    let body = h.seal(ti, &nurse, &nurse);
    let (status, err) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rule_violation"))
    );
    assert_eq!(err["details"][0]["attribute"], "heart_rate");
    assert_eq!(err["details"][0]["rule"], "above_max");
    assert_eq!(
        err["details"][0]["got"], "400",
        "the author sees what they sent"
    );
    let audit = h.store.rejected_records(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].tid, bad_tid);
    assert_eq!(audit[0].source.as_deref(), Some("relay"));
    // The clear-text reasons say which rule failed, never the value (health data).
    let reasons: Json = serde_json::from_str(audit[0].reasons.as_deref().unwrap()).unwrap();
    assert_eq!(reasons[0]["rule"], "above_max");
    assert!(reasons[0].get("got").is_none(), "{reasons}");

    // Signed by someone else's key (sealed with the nurse's agreement key): signature_invalid.
    let mallory = Keypair::generate(&mut h.rng);
    let ti = h.ti("nurse.bo", 72).await;
    let body = h.seal(ti, &mallory, &nurse);
    let (status, err) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("signature_invalid"))
    );

    // Sealed with another agreement key (wrong key): decrypt_failed.
    let ti = h.ti("nurse.bo", 72).await;
    let body = h.seal(ti, &nurse, &mallory);
    let (status, err) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("decrypt_failed"))
    );

    // Unknown template version.
    let mut ti = h.ti("nurse.bo", 72).await;
    ti.template.version = TemplateVersion::new(9).unwrap();
    let body = h.seal(ti, &nurse, &nurse);
    let (status, err) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("template_unknown"))
    );

    // Someone else's record under my session: forbidden.
    let ti = h.ti("dr.eve", 72).await;
    let body = h.seal(ti, &nurse, &nurse);
    let (status, err) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );

    // Garbage, bad JSON shape, oversized body, no session.
    let (status, err) = h
        .post("/api/v1/submissions", Some(&token), vec![0xff, 0x00, 0x13])
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_json"))
    );
    let (status, err) = h
        .post(
            "/api/v1/submissions",
            Some(&token),
            json!({"tid": 1}).to_string(),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );
    let (status, err) = h
        .post(
            "/api/v1/submissions",
            Some(&token),
            vec![b'x'; MAX_BODY_BYTES + 1],
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    let (status, _) = h.post("/api/v1/submissions", None, "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let after = (
        h.store.log_leaves().await.unwrap().len(),
        h.store.queue_depth().await.unwrap(),
    );
    assert_eq!(after, before);

    // The front door's outcomes are counted for Prometheus.
    let res = h
        .app
        .clone()
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(
        axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        text.contains("mediblock_submissions_total{outcome=\"accepted\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("mediblock_submissions_total{outcome=\"duplicate\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("mediblock_submissions_total{outcome=\"rule_violation\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("mediblock_queue_depth 1\n"), "{text}");
}

async fn tickets_are_issued_to_authors_and_bind_one_record(db: Db) {
    let mut h = Harness::new(db).await;
    let (nurse, token) = h.clinician("nurse.bo", "nurse").await;
    let (_, eve_token) = h.clinician("dr.eve", "doctor").await;
    let (_, auditor_token) = h.clinician("aud.ray", "auditor").await;

    // Issued as decimal strings, consecutively, with their expiry; not to auditors.
    let mine = h.ticket(&token).await;
    let eves = h.ticket(&eve_token).await;
    assert_eq!(eves, mine + 1);
    let (status, err) = h.post("/api/v1/tickets", Some(&auditor_token), "").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );

    let before = h.store.log_leaves().await.unwrap().len();
    let post_with = |tid: TxId, h: &mut Harness| {
        let ti = h.ti_with(tid, "nurse.bo", 72);
        h.seal(ti, &nurse, &nurse)
    };
    // A ticket never issued, and one issued to someone else: 422 ticket_unknown.
    for ticket in [mine + 1_000, eves] {
        let tid = TxId::for_ticket(ticket, &mut h.rng);
        let body = post_with(tid, &mut h);
        let (status, err) = h.post("/api/v1/submissions", Some(&token), body).await;
        assert_eq!(
            (status, err["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("ticket_unknown")),
            "{err}"
        );
    }
    assert_eq!(
        h.store.log_leaves().await.unwrap().len(),
        before,
        "nothing written"
    );
    // The ticket is checked before the rules: a record that also breaks them is refused for
    // its ticket and is not kept in the rejected-records audit.
    let tid = TxId::for_ticket(mine + 2_000, &mut h.rng);
    let ti = h.ti_with(tid, "nurse.bo", 400);
    let body = h.seal(ti, &nurse, &nurse);
    let (status, err) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ticket_unknown"))
    );
    assert!(h.store.rejected_records(10).await.unwrap().is_empty());

    // Her own ticket: accepted; the same ticket under another tid: 409 ticket_used.
    let tid = TxId::for_ticket(mine, &mut h.rng);
    let body = post_with(tid, &mut h);
    let (status, sub) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{sub}");
    let again = TxId::for_ticket(mine, &mut h.rng);
    let body = post_with(again, &mut h);
    let (status, err) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("ticket_used"))
    );
    assert_eq!(h.store.log_leaves().await.unwrap().len(), before + 1);

    // Unused tickets are limited per user: the 65th open one is 429 too_many_tickets.
    for _ in 0..mediblock_relay::store::tickets::MAX_OPEN_TICKETS {
        h.ticket(&token).await;
    }
    let (status, err) = h.post("/api/v1/tickets", Some(&token), "").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_tickets"))
    );
    h.ticket(&eve_token).await;
}

async fn roles_outside_the_template_are_forbidden(db: Db) {
    let mut h = Harness::new(db).await;
    // The vital-signs template allows doctors and nurses, not pathologists.
    let (path, token) = h.clinician("path.kim", "pathologist").await;
    let ti = h.ti("path.kim", 72).await;
    let body = h.seal(ti, &path, &path);
    let (status, err) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    // Admins never author records.
    let admin = h.admin_token().await;
    let (status, _) = h.post("/api/v1/submissions", Some(&admin), "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(h.store.log_leaves().await.unwrap().is_empty());
}

async fn templates_are_published_once_by_admins(db: Db) {
    let mut h = Harness::new(db).await;
    let admin = h.admin_token().await;
    let (_nurse, nurse_token) = h.clinician("nurse.bo", "nurse").await;
    let mut spec: Json = serde_json::from_str::<Json>(TEMPLATES).unwrap()["template"].clone();
    spec["version"] = json!(2);
    let (status, err) = h
        .post("/api/v1/templates", Some(&nurse_token), spec.to_string())
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, body) = h
        .post("/api/v1/templates", Some(&admin), spec.to_string())
        .await;
    assert_eq!(
        (status, body["reference"].as_str()),
        (StatusCode::CREATED, Some("vital-signs@2"))
    );
    let (status, err) = h
        .post("/api/v1/templates", Some(&admin), spec.to_string())
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("template_exists"))
    );
    let (status, list) = h.get("/api/v1/templates", Some(&nurse_token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (status, one) = h
        .get("/api/v1/templates/vital-signs/2", Some(&nurse_token))
        .await;
    assert_eq!((status, one["version"].as_u64()), (StatusCode::OK, Some(2)));
    let (status, err) = h
        .get("/api/v1/templates/vital-signs/7", Some(&nurse_token))
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("template_unknown"))
    );
}

async fn records_are_read_decrypted_by_clinicians_and_every_read_is_logged(db: Db) {
    use mediblock_protocol::encoding::Canonical as _;
    use mediblock_protocol::ids::{ChainHash, EthAddress};
    use mediblock_protocol::keys::Purpose;
    use mediblock_protocol::validated::{Ack, ValidatedTransaction, Verdict};
    use mediblock_relay::store::submissions::Outcome;

    let mut h = Harness::new(db).await;
    let (nurse, token) = h.clinician("nurse.bo", "nurse").await;
    let ti = h.ti("nurse.bo", 72).await;
    let (tid, pid) = (ti.tid, ti.pid);
    let signed = ti.clone().sign(&nurse);
    let body = h.seal(ti, &nurse, &nurse);
    let (status, _) = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(status, StatusCode::ACCEPTED);

    // Follow the submission's events: the first is the current state.
    let events = h
        .app
        .clone()
        .oneshot(
            Request::get(format!("/api/v1/submissions/{tid}/events"))
                .header("authorization", format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);

    // Complete the submission as the anchoring worker does: seal T'I at rest, store it.
    let sub = h.store.submission(&tid).await.unwrap().unwrap();
    let vt = ValidatedTransaction {
        signed,
        ack: Ack {
            verdict: Verdict::Valid,
            chain_id: 31337,
            contract: EthAddress::from_bytes([1; 20]),
            tx_hash: ChainHash::from_bytes([2; 32]),
            block_number: 7,
            block_hash: ChainHash::from_bytes([3; 32]),
            log_index: 0,
            batch: None,
        },
    };
    let at_rest = Keypair::from_seeds(&[1; 64])
        .agree(&Keypair::from_seeds(&[2; 64]).public(), Purpose::RelayStore)
        .unwrap();
    let envelope = vt.seal_at_rest(&at_rest, &mut h.rng).unwrap();
    assert!(
        h.store
            .complete(
                &sub,
                &Outcome::Stored,
                &[2; 32],
                7,
                &at_rest.id(),
                &envelope.to_canonical_bytes(),
                UnixMillis(9)
            )
            .await
            .unwrap()
    );

    // The worker announces the change; the stream reports it and ends at the final state.
    h.events
        .send(mediblock_relay::api::events::StateChange { tid })
        .unwrap();
    let stream = axum::body::to_bytes(events.into_body(), usize::MAX)
        .await
        .unwrap();
    let stream = String::from_utf8(stream.to_vec()).unwrap();
    let states: Vec<&str> = stream
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| {
            serde_json::from_str::<Json>(d).unwrap()["state"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .map(|s| {
            if s == "queued" {
                "queued"
            } else if s == "stored" {
                "stored"
            } else {
                "other"
            }
        })
        .collect();
    assert_eq!(states, ["queued", "stored"], "{stream}");

    let (status, records) = h
        .get(&format!("/api/v1/patients/{pid}/records"), Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{records}");
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["leaf_index"], 0);
    assert_eq!(records[0]["validated"]["ack"]["block_number"], 7);
    assert_eq!(
        records[0]["validated"]["signed"]["ti"]["attributes"]["heart_rate"]["value"],
        72
    );
    let (status, patients) = h.get("/api/v1/patients", Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        patients,
        json!([{"pid": pid, "records": 1, "last_stored_at": 9}])
    );
    let log = h.store.access_log_of_patient(&pid).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].0.as_str(), log[0].1.as_str()),
        ("nurse.bo", "read_records")
    );

    // Administrators manage; they do not read health data.
    let admin = h.admin_token().await;
    let (status, _) = h
        .get(&format!("/api/v1/patients/{pid}/records"), Some(&admin))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = h.get("/api/v1/rejected", Some(&token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, audit) = h.get("/api/v1/rejected", Some(&admin)).await;
    assert_eq!(
        (status, audit.as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
}

/// Every path and method of the OpenAPI document is routed (never 404 or 405), so the
/// document cannot list an endpoint the relay lacks.
async fn every_documented_endpoint_exists(db: Db) {
    let h = Harness::new(db).await;
    let doc: Json = serde_json::from_str(mediblock_relay::api::ops::OPENAPI).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 20, "the document lists {} paths", paths.len());
    for (path, methods) in paths {
        let concrete = path
            .replace("{tid}", &"ab".repeat(16))
            .replace("{pid}", &"cd".repeat(16))
            .replace("{id}", "vital-signs")
            .replace("{uid}", "admin")
            .replace("{version}", "1");
        for method in methods.as_object().unwrap().keys() {
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap();
            let res = h.app.clone().oneshot(req).await.unwrap();
            assert_ne!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            // Unknown resources answer a JSON 404 with a code; an unrouted path would
            // fall through to the static files and answer an empty 404.
            if res.status() == StatusCode::NOT_FOUND {
                let body = axum::body::to_bytes(res.into_body(), usize::MAX)
                    .await
                    .unwrap();
                let json: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
                assert!(json["code"].is_string(), "{method} {path} is not routed");
            }
        }
    }
}
