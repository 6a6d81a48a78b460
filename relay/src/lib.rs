//! MediBlock's relay, the paper's *blockchain handshaker*.
//!
//! This is the service's first slice: the HTTP shell (`app`), its error type, the health
//! endpoint, the template manager's pure check of a template, and the web UI's static files.
//! Sign-in, the submission pipeline, the chain client and the store come with the relay
//! issue; `ARCHITECTURE.md` shows where each will live.

pub mod api;
pub mod config;
pub mod error;

use std::path::PathBuf;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tower_http::services::ServeDir;

pub use mediblock_protocol as protocol;

/// Largest request body the relay reads, in bytes. Larger bodies get `413 payload_too_large`.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What every request handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Folder of the web UI's static files (`web/`).
    pub web_dir: PathBuf,
}

/// The relay's HTTP application: API routes under `/api/v1`, health under `/healthz`, and
/// the web UI for every other path.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/info", get(api::info))
        .route("/templates/check", post(api::check_template));
    Router::new()
        .route("/healthz", get(api::healthz))
        .nest("/api/v1", api)
        .fallback_service(ServeDir::new(&state.web_dir))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
pub mod store;
