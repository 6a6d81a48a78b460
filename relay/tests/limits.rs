//! The relay's bounds on what clients can make it hold or do (issue 19, "Bounded
//! resources"), each performed as an abuser would, from outside: over HTTP against the real
//! router on a real store (SQLite and a throw-away PostgreSQL), or against the real listener
//! on port 0 for the connection-level bounds. Each test asserts the refusal, with its
//! status and stable code, and that nothing was stored — by counting the tables' rows
//! through a connection of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use mediblock_protocol::hash::sha256;
use mediblock_protocol::ids::{PatientId, Role, TxId, UnixMillis, UserId};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::template::Template;
use mediblock_relay::limits::{Limiter, Limits};
use mediblock_relay::store::Store;
use mediblock_relay::store::tickets::{MAX_OPEN_TICKETS, TICKET_TTL_MS};
use mediblock_relay::{AppState, app, now};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tower::ServiceExt as _;

#[path = "support/postgres.rs"]
mod postgres;

#[path = "support/http.rs"]
mod http;

#[path = "support/relay.rs"]
mod relay;

const TEMPLATES: &str = include_str!("../../protocol/testdata/templates.json");

/// Which database a test runs on.
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
    challenges_for_unknown_uids_store_nothing_and_expired_sign_in_state_is_purged,
    unused_tickets_are_released_when_they_lapse,
    one_ticket_gives_at_most_one_rejected_record,
    a_full_queue_refuses_submissions_with_503_and_stores_nothing,
);

/// An answer: status, the headers the tests look at, and the body as JSON.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    retry_after: Option<u64>,
    allow: Option<String>,
    body: Json,
}

impl Answer {
    fn code(&self) -> Option<&str> {
        self.body["code"].as_str()
    }
}

struct Harness {
    app: Router,
    store: Store,
    /// A connection of the test's own, to count rows as stored.
    pool: sqlx::AnyPool,
    relay: Keypair,
    rng: ChaCha20Rng,
}

/// The default bounds, but a rate no test of another bound runs into.
fn roomy() -> Limits {
    Limits {
        rate_per_second: 10_000,
        burst: 10_000,
        ..Limits::default()
    }
}

fn sqlite_url() -> String {
    let dir = std::env::temp_dir().join(format!(
        "mediblock-limits-{}-{}",
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
    /// A relay without a chain on `db`, with `limits`, the vital-signs template and an
    /// administrator `admin`.
    async fn new(db: Db, limits: Limits) -> (Self, AppState) {
        let url = match db {
            Db::Sqlite => sqlite_url(),
            Db::Postgres => postgres::shared().fresh_database().expect("fresh database"),
        };
        let store = Store::open(&url).await.unwrap();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        store
            .insert_template(&template(), UnixMillis(1))
            .await
            .unwrap();
        let (relay, keys) = relay::relay_keys(1);
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        relay::enrol(&store, "admin", Role::Admin, &Keypair::generate(&mut rng)).await;
        let state = AppState {
            limits: Arc::new(Limiter::new(limits)),
            ..relay::state(store.clone(), keys, None)
        };
        let harness = Self {
            app: app(state.clone()),
            store,
            pool,
            relay,
            rng,
        };
        (harness, state)
    }

    /// Rows in `table`, as stored.
    async fn count(&self, table: &str) -> i64 {
        let (n,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&self.pool)
                .await
                .unwrap();
        n
    }

    async fn call(&self, req: Request<Body>) -> Answer {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let header = |name: header::HeaderName| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (status, content_type, retry_after, allow) = (
            res.status(),
            header(header::CONTENT_TYPE),
            header(header::RETRY_AFTER).map(|s| s.parse().expect("Retry-After in seconds")),
            header(header::ALLOW),
        );
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        Answer {
            status,
            content_type,
            retry_after,
            allow,
            body: serde_json::from_slice(&bytes).unwrap_or(Json::Null),
        }
    }

    async fn post(&self, path: &str, token: Option<&str>, body: impl Into<Body>) -> Answer {
        self.call(http::post(path, token, body)).await
    }

    /// Enrols `uid` with `role` in the store and signs them in: their keys and token.
    async fn clinician(&mut self, uid: &str, role: Role) -> (Keypair, String) {
        let keys = Keypair::generate(&mut self.rng);
        relay::enrol(&self.store, uid, role, &keys).await;
        let token = http::sign_in(&self.app, uid, &keys).await;
        (keys, token)
    }

    /// A sealed vital-signs record by `uid` under `tid` with this heart rate, as JSON.
    fn sealed(&mut self, tid: TxId, uid: &str, author: &Keypair, heart_rate: i64) -> String {
        let uid = UserId::new(uid).unwrap();
        let pid = PatientId::random(&mut self.rng);
        let mut ti = relay::vital_signs(&mut self.rng, 0, &uid, pid, heart_rate);
        ti.tid = tid;
        let sealed = ti
            .sign(author)
            .seal(author, &self.relay.public(), &mut self.rng)
            .unwrap();
        serde_json::to_string(&sealed).unwrap()
    }

    /// A ticket from `POST /api/v1/tickets`.
    async fn ticket(&self, token: &str) -> u64 {
        relay::ticket(&self.app, token).await
    }
}

/// A sign-in flood of unknown uids stores nothing and is answered exactly as a known uid
/// is; a known uid's challenge purges the expired challenges and sessions first, and so
/// does the relay's periodic purge.
async fn challenges_for_unknown_uids_store_nothing_and_expired_sign_in_state_is_purged(db: Db) {
    let (mut h, _) = Harness::new(db, roomy()).await;
    let (_, token) = h.clinician("nurse.bo", Role::Nurse).await;
    let (_, revoked_token) = h.clinician("dr.gone", Role::Doctor).await;
    drop(revoked_token);
    sqlx::query("UPDATE users SET revoked_at = 2 WHERE uid = 'dr.gone'")
        .execute(&h.pool)
        .await
        .unwrap();
    let sessions = h.count("sessions").await;
    assert_eq!(
        h.count("challenges").await,
        0,
        "sign-in took its challenges"
    );

    // The flood: 300 unknown uids (and a revoked one) get challenges; none is stored.
    let known = h
        .post(
            "/api/v1/auth/challenge",
            None,
            json!({"uid": "nurse.bo"}).to_string(),
        )
        .await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(h.count("challenges").await, 1);
    for i in 0..300 {
        let uid = if i == 0 {
            "dr.gone".to_owned()
        } else {
            format!("nobody.{i}")
        };
        let a = h
            .post(
                "/api/v1/auth/challenge",
                None,
                json!({ "uid": uid }).to_string(),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        // The same answer as for a known uid: a 32-byte challenge, five minutes to answer.
        let keys: Vec<_> = a.body.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["challenge", "expires_at"]);
        assert_eq!(a.body["challenge"].as_str().unwrap().len(), 64);
        let ttl = a.body["expires_at"].as_u64().unwrap() - now().0;
        assert!(ttl <= mediblock_relay::api::auth::CHALLENGE_TTL_MS, "{ttl}");
    }
    assert_eq!(
        h.count("challenges").await,
        1,
        "only the known uid's challenge is stored"
    );
    // Answering an unknown uid's challenge fails like any bad sign-in.
    let a = h
        .post(
            "/api/v1/auth/challenge",
            None,
            json!({"uid": "nobody.x"}).to_string(),
        )
        .await;
    let answer =
        json!({"uid": "nobody.x", "challenge": a.body["challenge"], "signature": "00".repeat(64)});
    let a = h
        .post("/api/v1/auth/session", None, answer.to_string())
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    assert_eq!(h.count("sessions").await, sessions);

    // Expired rows, as a relay that ran for a while leaves them.
    let nurse = UserId::new("nurse.bo").unwrap();
    h.store
        .insert_challenge(&[7; 32], &nurse, UnixMillis(1_000))
        .await
        .unwrap();
    h.store
        .insert_session(&sha256(&[8; 32]), &nurse, UnixMillis(2_000))
        .await
        .unwrap();
    assert_eq!(h.count("challenges").await, 2);
    assert_eq!(h.count("sessions").await, sessions + 1);
    // A known uid's challenge purges them before it is stored.
    let a = h
        .post(
            "/api/v1/auth/challenge",
            None,
            json!({"uid": "nurse.bo"}).to_string(),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let (live,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM challenges WHERE expires_at < $1")
        .bind(i64::try_from(now().0).unwrap())
        .fetch_one(&h.pool)
        .await
        .unwrap();
    assert_eq!(live, 0, "the expired challenge is gone");
    assert_eq!(h.count("challenges").await, 2, "the two live ones stay");
    assert_eq!(
        h.count("sessions").await,
        sessions,
        "the expired session is gone"
    );
    // The live session still works.
    let me = h.call(http::get("/api/v1/me", Some(&token))).await;
    assert_eq!(me.status, StatusCode::OK);

    // The relay's periodic purge: what expired meanwhile goes too, and nothing live.
    h.store
        .insert_challenge(&[9; 32], &nurse, UnixMillis(3_000))
        .await
        .unwrap();
    h.store
        .insert_session(&sha256(&[10; 32]), &nurse, UnixMillis(4_000))
        .await
        .unwrap();
    let purged = h.store.purge_expired(now()).await.unwrap();
    assert_eq!((purged.challenges, purged.sessions), (1, 1));
    assert_eq!(h.count("challenges").await, 2);
    assert_eq!(h.count("sessions").await, sessions);
}

/// Unused tickets stop counting against the cap once they lapse, and their rows are
/// deleted a lifetime later; the cap's refusal says when the oldest lapses.
async fn unused_tickets_are_released_when_they_lapse(db: Db) {
    let (mut h, _) = Harness::new(db, roomy()).await;
    let (nurse_keys, token) = h.clinician("nurse.bo", Role::Nurse).await;
    let nurse = UserId::new("nurse.bo").unwrap();
    let t = now().0;
    // A user who once took the cap and used none: one batch lapsed long ago, one just now.
    let long_ago = UnixMillis(t - 3 * TICKET_TTL_MS);
    let lapsed = UnixMillis(t - TICKET_TTL_MS - 1);
    for _ in 0..MAX_OPEN_TICKETS {
        h.store
            .issue_ticket(&nurse, long_ago)
            .await
            .unwrap()
            .unwrap();
    }
    let mut last_lapsed = 0;
    for _ in 0..MAX_OPEN_TICKETS {
        last_lapsed = h
            .store
            .issue_ticket(&nurse, lapsed)
            .await
            .unwrap()
            .unwrap()
            .number;
    }
    assert_eq!(h.count("tickets").await, 2 * MAX_OPEN_TICKETS);

    // She is not locked out: the lapsed ones do not count.
    let fresh = h.ticket(&token).await;
    // The ones that lapsed a lifetime ago are gone; the recent ones stay to say "expired".
    let old_rows = |cutoff: u64| {
        let pool = h.pool.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM tickets WHERE uid = 'nurse.bo' AND issued_at < $1",
            )
            .bind(i64::try_from(cutoff).unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
            n
        }
    };
    assert_eq!(old_rows(t - 2 * TICKET_TTL_MS).await, 0);
    assert_eq!(old_rows(t - TICKET_TTL_MS).await, MAX_OPEN_TICKETS);
    let tid = TxId::for_ticket(last_lapsed, &mut h.rng);
    let body = h.sealed(tid, "nurse.bo", &nurse_keys, 72);
    let a = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ticket_expired"))
    );

    // The cap still holds for usable ones, and its refusal says when the oldest lapses.
    for _ in 1..MAX_OPEN_TICKETS {
        h.ticket(&token).await;
    }
    let rows = h.count("tickets").await;
    let a = h.post("/api/v1/tickets", Some(&token), "").await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_tickets"))
    );
    let wait = a.retry_after.expect("Retry-After");
    assert!(
        (1..=TICKET_TTL_MS / 1000 + 1).contains(&wait),
        "Retry-After {wait}"
    );
    assert_eq!(h.count("tickets").await, rows, "the refusal stored nothing");
    // Using one frees a place at once.
    let tid = TxId::for_ticket(fresh, &mut h.rng);
    let body = h.sealed(tid, "nurse.bo", &nurse_keys, 72);
    let a = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    h.ticket(&token).await;
}

/// `POST /api/v1/tickets` takes no body, or `{}` as JSON; anything else is refused and
/// issues nothing.
#[tokio::test]
async fn the_tickets_endpoint_takes_no_body_or_an_empty_json_object() {
    let (mut h, _) = Harness::new(Db::Sqlite, roomy()).await;
    let (_, token) = h.clinician("nurse.bo", Role::Nurse).await;
    let req = |content_type: Option<&str>, body: &'static str| {
        let mut r =
            Request::post("/api/v1/tickets").header("authorization", format!("Bearer {token}"));
        if let Some(ct) = content_type {
            r = r.header("content-type", ct);
        }
        r.body(Body::from(body)).unwrap()
    };
    // No body at all (what the browser sends), an empty JSON body, and `{}`.
    for (ct, body) in [
        (None, ""),
        (Some("application/json"), ""),
        (Some("application/json"), "{}"),
        (Some("application/json; charset=utf-8"), " { } "),
    ] {
        let a = h.call(req(ct, body)).await;
        assert_eq!(a.status, StatusCode::CREATED, "{ct:?} {body:?}: {}", a.body);
    }
    assert_eq!(h.count("tickets").await, 4);
    for (ct, body, status, code) in [
        (
            Some("application/json"),
            r#"{"count": 1000}"#,
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            Some("application/json"),
            "[]",
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            Some("application/json"),
            "null",
            StatusCode::BAD_REQUEST,
            "invalid_input",
        ),
        (
            Some("application/json"),
            "give me tickets",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            None,
            "{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Some("text/plain"),
            "{}",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            "",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ] {
        let a = h.call(req(ct, body)).await;
        assert_eq!(
            (a.status, a.code()),
            (status, Some(code)),
            "{ct:?} {body:?}: {}",
            a.body
        );
        assert_eq!(a.content_type.as_deref(), Some("application/json"));
    }
    assert_eq!(h.count("tickets").await, 4, "refusals issue nothing");
}

/// 200 rule-violating records on one ticket give one rejected row: the refusal uses the
/// ticket, and every later record with it is `409 ticket_used` and stores nothing.
async fn one_ticket_gives_at_most_one_rejected_record(db: Db) {
    let (mut h, _) = Harness::new(db, roomy()).await;
    let (nurse, token) = h.clinician("nurse.bo", Role::Nurse).await;
    let ticket = h.ticket(&token).await;
    let first = TxId::for_ticket(ticket, &mut h.rng);
    let body = h.sealed(first, "nurse.bo", &nurse, 400);
    let a = h
        .post("/api/v1/submissions", Some(&token), body.clone())
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rule_violation"))
    );
    assert_eq!(a.body["details"][0]["rule"], "above_max");
    // 199 more on the same ticket: new tids, the same record again, and a corrected one.
    let mut used = 0;
    for i in 0..199 {
        let body = match i % 3 {
            0 => body.clone(),
            1 => {
                let tid = TxId::for_ticket(ticket, &mut h.rng);
                h.sealed(tid, "nurse.bo", &nurse, 300 + i)
            }
            _ => h.sealed(first, "nurse.bo", &nurse, 72),
        };
        let a = h.post("/api/v1/submissions", Some(&token), body).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::CONFLICT, Some("ticket_used")),
            "attempt {i}: {}",
            a.body
        );
        used += 1;
    }
    assert_eq!(used, 199);
    assert_eq!(h.count("rejected").await, 1, "one rejected row");
    let audit = h.store.rejected_records(500).await.unwrap();
    assert_eq!(
        (audit.len(), audit[0].tid, audit[0].source.as_deref()),
        (1, first, Some("relay"))
    );
    assert_eq!(
        (h.count("log_leaves").await, h.count("submissions").await),
        (0, 0)
    );
    // The author gets a fresh ticket and seals the corrected record again.
    let tid = TxId::for_ticket(h.ticket(&token).await, &mut h.rng);
    let body = h.sealed(tid, "nurse.bo", &nurse, 72);
    let a = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    assert_eq!(h.count("log_leaves").await, 1);
}

/// While `max_queue` records wait for the chain, submissions get `503 queue_full` with
/// `Retry-After` before anything is opened or written: no leaf, no queued row, no rejected
/// row, and the ticket stays unused.
async fn a_full_queue_refuses_submissions_with_503_and_stores_nothing(db: Db) {
    let limits = Limits {
        max_queue: 2,
        ..roomy()
    };
    let (mut h, _) = Harness::new(db, limits).await;
    let (nurse, token) = h.clinician("nurse.bo", Role::Nurse).await;
    for _ in 0..2 {
        let tid = TxId::for_ticket(h.ticket(&token).await, &mut h.rng);
        let body = h.sealed(tid, "nurse.bo", &nurse, 72);
        let a = h.post("/api/v1/submissions", Some(&token), body).await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
    }
    let before = (
        h.count("log_leaves").await,
        h.count("submissions").await,
        h.count("rejected").await,
    );
    assert_eq!(before, (2, 2, 0));
    let nurse_id = UserId::new("nurse.bo").unwrap();
    for heart_rate in [72, 400] {
        let ticket = h.ticket(&token).await;
        let tid = TxId::for_ticket(ticket, &mut h.rng);
        let body = h.sealed(tid, "nurse.bo", &nurse, heart_rate);
        let a = h.post("/api/v1/submissions", Some(&token), body).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::SERVICE_UNAVAILABLE, Some("queue_full")),
            "{}",
            a.body
        );
        assert_eq!(a.retry_after, Some(5));
        assert_eq!(
            h.store
                .ticket_problem(&nurse_id, &tid, now())
                .await
                .unwrap(),
            None,
            "the ticket is still usable"
        );
    }
    let after = (
        h.count("log_leaves").await,
        h.count("submissions").await,
        h.count("rejected").await,
    );
    assert_eq!(after, before, "nothing stored");
    // The queue moves (one record leaves it): submissions are taken again.
    sqlx::query("UPDATE submissions SET state = 'stored' WHERE leaf_index = 0")
        .execute(&h.pool)
        .await
        .unwrap();
    let tid = TxId::for_ticket(h.ticket(&token).await, &mut h.rng);
    let body = h.sealed(tid, "nurse.bo", &nurse, 72);
    let a = h.post("/api/v1/submissions", Some(&token), body).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", a.body);
}

/// Every endpoint that reads a JSON body answers `415 unsupported_media_type` (a JSON
/// body with its code) to a body without `Content-Type: application/json`, before the
/// handler runs; unknown paths and wrong methods answer the documented JSON error shape.
#[tokio::test]
async fn json_endpoints_refuse_other_content_types_and_routing_errors_are_json() {
    let (mut h, _) = Harness::new(Db::Sqlite, roomy()).await;
    let (_, token) = h.clinician("dr.eve", Role::Doctor).await;
    let doc: Json = serde_json::from_str(mediblock_relay::api::ops::OPENAPI).unwrap();
    let mut checked = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        // Tickets take no body; their content types are checked above.
        if methods.get("post").is_none() || path == "/api/v1/tickets" {
            continue;
        }
        let concrete = path.replace("{tid}", &"ab".repeat(16));
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let mut r = Request::post(&concrete).header("authorization", format!("Bearer {token}"));
            if let Some(ct) = content_type {
                r = r.header("content-type", ct);
            }
            let a = h.call(r.body(Body::from("{}")).unwrap()).await;
            assert_eq!(
                (a.status, a.code()),
                (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    Some("unsupported_media_type")
                ),
                "POST {path} with {content_type:?}"
            );
            assert_eq!(a.content_type.as_deref(), Some("application/json"));
            assert!(a.body["message"].is_string());
        }
        // With the right content type (and any parameters) the handler runs.
        let r = Request::post(&concrete)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "Application/JSON; charset=utf-8")
            .body(Body::from("{}"))
            .unwrap();
        let a = h.call(r).await;
        assert_ne!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "POST {path}");
        checked.push(path.clone());
    }
    assert_eq!(checked.len(), 9, "{checked:?}");
    assert_eq!(
        (h.count("users").await, h.count("templates").await),
        (2, 1),
        "nothing enrolled or published"
    );

    // Unknown paths, under the API and among the web UI's files: JSON 404.
    for path in ["/api/v1/nope", "/api/v2/info", "/no-such-page.html"] {
        let a = h.call(http::get(path, None)).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "GET {path}"
        );
        assert_eq!(a.content_type.as_deref(), Some("application/json"));
    }
    // A handler's own 404 keeps its code.
    let a = h
        .call(http::get(
            &format!("/api/v1/submissions/{}", "ab".repeat(16)),
            Some(&token),
        ))
        .await;
    assert_eq!(
        (a.status, a.code()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let a = h
        .call(http::get("/api/v1/users/dr.who/keys", Some(&token)))
        .await;
    assert_eq!(a.code(), Some("unknown_user"));
    // Wrong methods: JSON 405 with Allow.
    for (method, path, allow) in [
        ("DELETE", "/api/v1/info", "GET"),
        ("GET", "/api/v1/auth/challenge", "POST"),
        ("PUT", "/api/v1/tickets", "POST"),
        ("POST", "/index.html", "GET"),
    ] {
        let r = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let a = h.call(r).await;
        assert_eq!(
            (a.status, a.code()),
            (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")),
            "{method} {path}"
        );
        assert!(
            a.allow.as_deref().is_some_and(|v| v.contains(allow)),
            "{method} {path}: Allow {:?}",
            a.allow
        );
    }
    // The web UI is still served.
    let a = h.call(http::get("/", None)).await;
    assert_eq!(a.status, StatusCode::OK);
}

/// Sign-in, tickets and submissions are limited per client address and per signed-in user:
/// past the burst, `429 rate_limited` with `Retry-After`, and nothing stored.
#[tokio::test]
async fn requests_past_the_rate_are_refused_per_client_and_per_user() {
    const BURST: u32 = 3;
    const TRIES: usize = 13;
    let limits = Limits {
        rate_per_second: 1,
        burst: BURST,
        ..Limits::default()
    };
    let (mut h, _) = Harness::new(Db::Sqlite, limits).await;
    let (_, token) = h.clinician("nurse.bo", Role::Nurse).await;
    let (_, eve) = h.clinician("dr.eve", Role::Doctor).await;
    let from = |ip: [u8; 4], path: &str, token: Option<&str>, body: String| {
        let mut r = http::post(path, token, body);
        r.extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((ip, 40_000))));
        r
    };
    let challenge = json!({"uid": "nurse.bo"}).to_string();
    let stored = h.count("challenges").await;

    // One address: its burst, then refusals (a token a second comes back meanwhile).
    let started = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..TRIES {
        answers.push(
            h.call(from(
                [192, 0, 2, 7],
                "/api/v1/auth/challenge",
                None,
                challenge.clone(),
            ))
            .await,
        );
    }
    let served = served_within(
        &answers,
        |a| a.status == StatusCode::OK,
        BURST,
        started.elapsed(),
    );
    assert_eq!(
        h.count("challenges").await,
        stored + served,
        "the refused ones stored nothing"
    );
    // Another address is not affected; the first one's bucket covers submissions too.
    let a = h
        .call(from(
            [192, 0, 2, 8],
            "/api/v1/auth/challenge",
            None,
            challenge.clone(),
        ))
        .await;
    assert_eq!(a.status, StatusCode::OK);

    // One user, from no address (an in-process call): tickets and submissions share her
    // bucket. A submission she may make is `{}` here, so `400 invalid_input`.
    let rows = h.count("tickets").await;
    let started = Instant::now();
    let mut answers = Vec::new();
    for i in 0..TRIES {
        answers.push(if i % 2 == 0 {
            h.post("/api/v1/tickets", Some(&token), "").await
        } else {
            h.post("/api/v1/submissions", Some(&token), "{}").await
        });
    }
    let elapsed = started.elapsed();
    let issued = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    for a in &answers {
        assert!(
            matches!(
                (a.status, a.code()),
                (StatusCode::CREATED, None)
                    | (StatusCode::BAD_REQUEST, Some("invalid_input"))
                    | (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"))
            ),
            "{:?} {}",
            a.status,
            a.body
        );
    }
    served_within(
        &answers,
        |a| a.status != StatusCode::TOO_MANY_REQUESTS,
        BURST,
        elapsed,
    );
    assert_eq!(
        h.count("tickets").await,
        rows + i64::try_from(issued).unwrap()
    );
    assert_eq!(h.count("log_leaves").await, 0);
    // Another user has a bucket of her own.
    h.ticket(&eve).await;
}

/// Checks a run of answers to one client's requests made within `elapsed` against a
/// bucket of `burst` refilled at one token a second: the burst is served, at most one more
/// per second that passed (so some are refused however the machine's speed spreads them),
/// and every other one is `429 rate_limited` with `Retry-After: 1`.
/// Returns how many were served.
fn served_within(
    answers: &[Answer],
    is_served: impl Fn(&Answer) -> bool,
    burst: u32,
    elapsed: Duration,
) -> i64 {
    assert!(
        elapsed < Duration::from_secs(5),
        "the requests took {elapsed:?}: too slow for the test's bucket"
    );
    let served = answers.iter().filter(|a| is_served(a)).count();
    let refused: Vec<_> = answers.iter().filter(|a| !is_served(a)).collect();
    let burst = usize::try_from(burst).unwrap();
    let most = burst + usize::try_from(elapsed.as_secs()).unwrap() + 1;
    assert!(
        answers[..burst].iter().all(&is_served),
        "the burst is served"
    );
    assert!(
        (burst..=most).contains(&served),
        "{served} served of {} in {elapsed:?}",
        answers.len()
    );
    assert!(!refused.is_empty());
    for a in refused {
        assert_eq!(
            (a.status, a.code(), a.retry_after),
            (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited"), Some(1)),
            "{}",
            a.body
        );
    }
    i64::try_from(served).unwrap()
}

// ---- The listener: connection cap, header and body timeouts, on a real socket. ----

/// The real listener on 127.0.0.1:0 serving a relay with `limits`; stops on drop of the
/// sender, and the task ends (graceful shutdown returns).
struct Listening {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    harness: Harness,
}

impl Listening {
    async fn start(limits: Limits) -> Self {
        let (harness, state) = Harness::new(Db::Sqlite, limits).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(mediblock_relay::listener::serve(
            listener,
            app(state),
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            served: Some(served),
            harness,
        }
    }

    async fn stop(mut self) {
        drop(self.stop.take());
        let served = self.served.take().unwrap();
        tokio::time::timeout(Duration::from_secs(15), served)
            .await
            .expect("the listener stops")
            .unwrap()
            .unwrap();
    }
}

/// How long a test waits for the server to close a connection before it fails: far
/// longer than the timeouts under test, so only a connection left open trips it.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);

/// What the server sent until it closed the connection, or `None` if it was still open
/// after `within` (a reset counts as closed).
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut got)).await {
        Ok(Ok(_)) => Some(got),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Some(got),
        Ok(Err(e)) => panic!("reading: {e}"),
        Err(_) => None,
    }
}

/// Status and JSON body of a raw HTTP/1.1 response.
fn parse(raw: &[u8]) -> (u16, String, Json) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        head.to_owned(),
        serde_json::from_str(body).unwrap_or(Json::Null),
    )
}

/// One request on a fresh connection (`Connection: close`): status, head and JSON body.
async fn exchange(addr: SocketAddr, request: String) -> (u16, String, Json) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let raw = until_closed(&mut s, CLOSE_WITHIN)
        .await
        .expect("the server answers and closes");
    parse(&raw)
}

fn healthz() -> &'static [u8] {
    b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n"
}

/// Reads one `/healthz` answer on a kept-alive connection.
async fn healthy(stream: &mut TcpStream) -> bool {
    stream.write_all(healthz()).await.unwrap();
    let mut buf = vec![0u8; 512];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).ends_with("ok") {
        match tokio::time::timeout(CLOSE_WITHIN, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return false,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200")
}

#[tokio::test]
async fn one_connection_past_the_cap_is_closed_and_its_place_is_given_back() {
    const CAP: usize = 4;
    let served = Listening::start(Limits {
        max_connections: CAP,
        header_timeout: Duration::from_secs(60),
        ..Limits::default()
    })
    .await;
    // CAP idle connections, accepted in order; each is served (one request proves it).
    let mut open = Vec::new();
    for _ in 0..CAP {
        let mut s = TcpStream::connect(served.addr).await.unwrap();
        assert!(healthy(&mut s).await);
        open.push(s);
    }
    // One more: accepted and closed at once, without an answer.
    let mut extra = TcpStream::connect(served.addr).await.unwrap();
    let _ = extra.write_all(healthz()).await;
    let got = until_closed(&mut extra, CLOSE_WITHIN)
        .await
        .expect("the connection past the cap is closed");
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    // The others are still served.
    for s in &mut open {
        assert!(healthy(s).await);
    }
    // One leaves: its place is given back. The server frees it when it has seen the close,
    // which the test cannot await, so it tries again until a deadline.
    drop(open.pop());
    let deadline = Instant::now() + CLOSE_WITHIN;
    loop {
        let mut s = TcpStream::connect(served.addr).await.unwrap();
        if healthy(&mut s).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed place was not given back"
        );
        tokio::task::yield_now().await;
    }
    drop(open);
    served.stop().await;
}

#[tokio::test]
async fn slow_or_idle_connections_are_closed_after_the_header_timeout() {
    let timeout = Duration::from_millis(400);
    let served = Listening::start(Limits {
        header_timeout: timeout,
        ..Limits::default()
    })
    .await;
    // Slowloris: a request line and one header, never the blank line that ends them.
    let started = Instant::now();
    let mut slow = TcpStream::connect(served.addr).await.unwrap();
    slow.write_all(b"GET /api/v1/info HTTP/1.1\r\nHost: relay\r\nX-Wait: ")
        .await
        .unwrap();
    let got = until_closed(&mut slow, CLOSE_WITHIN)
        .await
        .expect("the slow connection is closed");
    assert!(started.elapsed() >= timeout, "{:?}", started.elapsed());
    assert!(
        !String::from_utf8_lossy(&got).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // A connection that sends nothing, and one idle after a request, are closed too.
    let started = Instant::now();
    let mut silent = TcpStream::connect(served.addr).await.unwrap();
    let mut idle = TcpStream::connect(served.addr).await.unwrap();
    assert!(healthy(&mut idle).await);
    for s in [&mut silent, &mut idle] {
        let got = until_closed(s, CLOSE_WITHIN).await.expect("closed");
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    }
    assert!(started.elapsed() >= timeout);
    // A prompt client is served as ever.
    let (status, _, info) = exchange(
        served.addr,
        "GET /api/v1/info HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert_eq!((status, info["protocol"].as_str()), (200, Some("v1")));
    served.stop().await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408_and_stores_nothing() {
    let served = Listening::start(Limits {
        body_timeout: Duration::from_millis(400),
        ..Limits::default()
    })
    .await;
    let challenges = served.harness.count("challenges").await;
    // Headers promise 100 bytes; 13 come, then nothing.
    let mut s = TcpStream::connect(served.addr).await.unwrap();
    s.write_all(
        b"POST /api/v1/auth/challenge HTTP/1.1\r\nHost: relay\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"uid\": \"adm",
    )
    .await
    .unwrap();
    let raw = until_closed(&mut s, CLOSE_WITHIN)
        .await
        .expect("answered and closed");
    let (status, head, body) = parse(&raw);
    assert_eq!(
        (status, body["code"].as_str()),
        (408, Some("request_timeout")),
        "{head}"
    );
    assert_eq!(served.harness.count("challenges").await, challenges);
    // The same body sent in time is answered.
    let body = json!({"uid": "admin"}).to_string();
    let (status, _, answer) = exchange(
        served.addr,
        format!(
            "POST /api/v1/auth/challenge HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(served.harness.count("challenges").await, challenges + 1);
    served.stop().await;
}

/// The chain proxy has its own bucket per client address, `CHAIN_READS_FACTOR` times the
/// others: reads past it are `429 rate_limited`, and they do not use up the sign-in bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_reads_have_a_bucket_of_their_own() {
    use mediblock_relay::api::chain_rpc::CHAIN_READS_FACTOR;
    let served = Listening::start(Limits {
        rate_per_second: 1,
        burst: 1,
        ..Limits::default()
    })
    .await;
    let post = |path: &str, body: String| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let read = post(
        "/api/v1/chain",
        json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).to_string(),
    );
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..CHAIN_READS_FACTOR + 10 {
        statuses.push(exchange(served.addr, read.clone()).await.0);
    }
    let elapsed = started.elapsed();
    let served_reads = statuses.iter().filter(|&&s| s != 429).count() as u64;
    // The burst (1 × the factor) and at most the factor per elapsed second more.
    let factor = u64::from(CHAIN_READS_FACTOR);
    assert!(
        statuses[..CHAIN_READS_FACTOR as usize]
            .iter()
            .all(|&s| s != 429),
        "{statuses:?}"
    );
    assert!(
        served_reads <= factor * (2 + elapsed.as_secs()),
        "{served_reads} reads in {elapsed:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
    // Sign-in still has its own token.
    let sign_in = post(
        "/api/v1/auth/challenge",
        json!({"uid": "admin"}).to_string(),
    );
    assert_eq!(exchange(served.addr, sign_in).await.0, 200);
    served.stop().await;
}

#[tokio::test]
async fn the_listener_gives_each_request_its_address_for_the_rate_limit() {
    const BURST: u32 = 2;
    let served = Listening::start(Limits {
        rate_per_second: 1,
        burst: BURST,
        ..Limits::default()
    })
    .await;
    let body = json!({"uid": "admin"}).to_string();
    let request = format!(
        "POST /api/v1/auth/challenge HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let started = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..8 {
        let (status, head, body) = exchange(served.addr, request.clone()).await;
        let retry_after = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("retry-after: ")
                    .map(str::to_owned)
            })
            .and_then(|v| v.trim().parse().ok());
        answers.push(Answer {
            status: StatusCode::from_u16(status).unwrap(),
            content_type: None,
            retry_after,
            allow: None,
            body,
        });
    }
    let ok = served_within(
        &answers,
        |a| a.status == StatusCode::OK,
        BURST,
        started.elapsed(),
    );
    assert_eq!(served.harness.count("challenges").await, ok);
    served.stop().await;
}
