//! The `mediblock` binary: parse the command line, set up logging, build state, serve.

use std::sync::Arc;

use clap::Parser;
use mediblock_protocol::ids::{Role, UserId};
use mediblock_relay::config::{Cli, Command, Settings};
use mediblock_relay::keys::{RelayKeys, load_or_create};
use mediblock_relay::store::Store;
use mediblock_relay::store::users::User;
use mediblock_relay::{AppState, app, now};
use rand_core::UnwrapErr;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => match args.resolve() {
            Ok(settings) => serve(settings).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: Settings) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create data folder {}: {e}", args.data_dir.display()))?;
    let mut rng = UnwrapErr(getrandom::SysRng);
    let relay = load_or_create(&args.relay_key_file, &mut rng)?;
    let store_keys = load_or_create(&args.store_key_file, &mut rng)?;
    let keys = RelayKeys::new(relay, &store_keys)?;
    let store = Store::open(&args.database_url)
        .await
        .map_err(|e| format!("cannot open the store: {e}"))?;
    first_run_admin(&store, &args, &mut rng).await?;

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(backend = ?store.backend(), "MediBlock relay listening on http://{addr}");
    let state = AppState {
        store: store.clone(),
        keys: Arc::new(keys),
        web_dir: args.web_dir,
        metrics: Default::default(),
        chain: None,
        wake_worker: Default::default(),
        events: tokio::sync::broadcast::channel(1024).0,
        session_ttl_ms: args.session_minutes.saturating_mul(60_000),
    };
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| format!("server error: {e}"));
    store.close().await;
    served
}

/// On first run (no administrator yet), creates the `admin` user with fresh keys saved to
/// `admin.key` in the data folder, and says so once.
async fn first_run_admin(
    store: &Store,
    args: &Settings,
    rng: &mut UnwrapErr<getrandom::SysRng>,
) -> Result<(), String> {
    if store.has_admin().await.map_err(|e| e.to_string())? {
        return Ok(());
    }
    let path = args.data_dir.join("admin.key");
    let keys = load_or_create(&path, rng)?;
    let admin = User {
        uid: UserId::new("admin").map_err(|e| e.to_string())?,
        role: Role::Admin,
        keys: keys.public(),
        eth_address: None,
        enrolled_at: now(),
        revoked_at: None,
    };
    store.insert_user(&admin).await.map_err(|e| e.to_string())?;
    println!(
        "First run: created the administrator `admin`; its secret keys are in {} (keep them safe).",
        path.display()
    );
    Ok(())
}
