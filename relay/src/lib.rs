//! MediBlock's relay, the paper's *blockchain handshaker*.
//!
//! `app(state)` is the HTTP service: sign-in, enrolment, the template manager, the
//! submission front door and status, health and the web UI. The anchoring worker, the chain
//! client and the reads of records join as the relay issue progresses; `ARCHITECTURE.md`
//! shows where each lives.

pub mod api;
pub mod audit;
pub mod chain;
pub mod checkpointer;
pub mod client;
pub mod config;
pub mod erasure;
pub mod error;
pub mod handshaker;
pub mod keys;
pub mod limits;
pub mod listener;
pub mod lock;
pub mod metrics;
pub mod proof;
pub mod purge;
pub mod store;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::middleware;
use axum::routing::{MethodRouter, get, post};
use mediblock_protocol::ids::UnixMillis;
use rand_core::{Rng as _, UnwrapErr};
use tower_http::services::ServeDir;

pub use mediblock_protocol as protocol;

/// Largest request body the relay reads, in bytes. Larger bodies get `413 payload_too_large`.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every request handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The cloud store.
    pub store: store::Store,
    /// The relay's keys.
    pub keys: Arc<keys::RelayKeys>,
    /// Folder of the web UI's static files (`web/`).
    pub web_dir: PathBuf,
    /// How long a session token is valid, in milliseconds.
    pub session_ttl_ms: u64,
    /// Prometheus counters.
    pub metrics: Arc<metrics::Metrics>,
    /// Submission state changes, for the server-sent-events streams.
    pub events: tokio::sync::broadcast::Sender<api::events::StateChange>,
    /// The chain, when the relay anchors (tests of the HTTP layer alone run without one).
    pub chain: Option<chain::Chain>,
    /// Wakes the anchoring worker when a submission is accepted.
    pub wake_worker: Arc<tokio::sync::Notify>,
    /// Held while an audit requested through the API runs: one at a time per relay.
    pub audit_slot: Arc<tokio::sync::Mutex<()>>,
    /// The bounds on clients (rate limits, the queue's depth) and the rate limiter's state.
    pub limits: Arc<limits::Limiter>,
}

impl AppState {
    /// The operating system's CSPRNG, as the protocol crate takes it.
    pub fn rng(&self) -> UnwrapErr<getrandom::SysRng> {
        UnwrapErr(getrandom::SysRng)
    }

    /// `N` fresh random bytes.
    pub fn random<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        self.rng().fill_bytes(&mut out);
        out
    }
}

/// The repository root (the parent of the `relay` crate): where `web/` and the Node tools
/// (`tools/node_modules`) are found in a development checkout.
pub fn repo_root() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The wall clock, in Unix milliseconds. The shell's only clock.
pub fn now() -> UnixMillis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    UnixMillis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The relay's HTTP application: API routes under `/api/v1`, health under `/healthz` and
/// `/readyz`, and the web UI for every other path.
///
/// Endpoints that take a JSON body answer `415 unsupported_media_type` without
/// `Content-Type: application/json`; sign-in, tickets, submissions and erasure are rate
/// limited per client address ([`limits::per_client`]) and, once signed in, per user; an
/// unknown path is a JSON `404 not_found`, a wrong method `405 method_not_allowed`.
pub fn app(state: AppState) -> Router {
    use api::{auth, ops, records, submissions, templates, users};
    let per_client = middleware::from_fn_with_state(state.limits.clone(), limits::per_client);
    // The chain proxy has a bucket of its own per client address, CHAIN_READS_FACTOR times
    // the others: checking one chart makes a few reads per record.
    let base = *state.limits.limits();
    let chain_reads = middleware::from_fn_with_state(
        Arc::new(limits::Limiter::new(limits::Limits {
            rate_per_second: base
                .rate_per_second
                .saturating_mul(api::chain_rpc::CHAIN_READS_FACTOR),
            burst: base
                .burst
                .saturating_mul(api::chain_rpc::CHAIN_READS_FACTOR),
            ..base
        })),
        limits::per_client,
    );
    let api = Router::new()
        .route("/info", get(ops::info))
        .route(
            "/chain",
            json_post(api::chain_rpc::proxy).route_layer(chain_reads),
        )
        .route("/openapi.json", get(ops::openapi))
        .route(
            "/auth/challenge",
            json_post(auth::challenge).route_layer(per_client.clone()),
        )
        .route(
            "/auth/session",
            json_post(auth::session).route_layer(per_client.clone()),
        )
        .route("/me", get(users::me))
        .route("/users", json_post(users::enrol).get(users::list))
        .route("/users/{uid}/keys", get(users::keys))
        .route(
            "/templates",
            json_post(templates::publish).get(templates::list),
        )
        .route("/templates/check", json_post(templates::check))
        .route("/templates/{id}/{version}", get(templates::get_one))
        .route("/patients", get(records::patients))
        .route("/patients/{pid}/records", get(records::of_patient))
        .route("/records/{tid}/proof", get(api::proofs::proof))
        .route(
            "/records/{tid}/erasure",
            json_post(erasure::request).route_layer(per_client.clone()),
        )
        .route("/audit", get(api::audit::audit))
        .route("/rejected", get(records::rejected))
        // Takes no body, so it checks its (optional) content type itself.
        .route(
            "/tickets",
            post(api::tickets::issue).route_layer(per_client.clone()),
        )
        .route(
            "/submissions",
            json_post(submissions::submit).route_layer(per_client.clone()),
        )
        .route(
            "/submissions/wallet",
            json_post(submissions::submit_wallet).route_layer(per_client),
        )
        .route("/submissions/{tid}", get(submissions::status))
        .route("/submissions/{tid}/events", get(api::events::follow));
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .nest("/api/v1", api)
        .fallback_service(ServeDir::new(&state.web_dir))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(api::json_error_bodies))
        .with_state(state)
}

/// `POST` of a handler that reads a JSON body: `415 unsupported_media_type` before the
/// handler runs unless the request says `Content-Type: application/json`.
fn json_post<H, T>(handler: H) -> MethodRouter<AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    post(handler).route_layer(middleware::from_fn(api::require_json))
}
