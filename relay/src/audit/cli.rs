//! `mediblock audit`: resolve `serve`'s settings, open the store and the chain read-only
//! (it never creates keys or a database), run the audit, print the table or JSON.
//! Exit code 0: clean (information such as lawful erasures allowed); 1: findings; 2: the
//! audit could not run.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use alloy::primitives::Address;
use alloy::providers::{Provider as _, ProviderBuilder};

use super::render::{Bar, table};
use super::{Progress, Scope, parse_time};
use crate::chain::Chain;
use crate::chain::anvil::{Anvil, AnvilOptions};
use crate::config::{AuditArgs, ChainSettings, Settings};
use crate::keys::RelayKeys;
use crate::store::Store;

/// The `meta` key where `serve` notes its embedded chain's URL while it runs, so that an
/// audit of the embedded default reads the live chain.
pub const EMBEDDED_RPC_META: &str = "embedded_rpc_url";

/// Runs `mediblock audit`.
pub async fn command(args: AuditArgs) -> ExitCode {
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("audit failed: {e}");
            ExitCode::from(2)
        }
    }
}

fn read_keys(path: &Path) -> Result<mediblock_protocol::keys::Keypair, String> {
    if !path.exists() {
        return Err(format!(
            "{} does not exist: the audit needs the relay's existing keys",
            path.display()
        ));
    }
    // The file exists, so nothing is created.
    crate::keys::load_or_create(path, &mut rand_core::UnwrapErr(getrandom::SysRng))
}

async fn run(args: AuditArgs) -> Result<bool, String> {
    let scope = Scope {
        patient: args
            .patient
            .as_deref()
            .map(|p| p.parse().map_err(|e| format!("--patient: {e}")))
            .transpose()?,
        since: args
            .since
            .as_deref()
            .map(|t| parse_time(t).map_err(|e| format!("--since: {e}")))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|t| parse_time(t).map_err(|e| format!("--until: {e}")))
            .transpose()?,
    };
    let settings = args.serve.resolve()?;
    let keys = RelayKeys::new(
        read_keys(&settings.relay_key_file)?,
        &read_keys(&settings.store_key_file)?,
    )?;
    if let Some(file) = settings.database_url.strip_prefix("sqlite://")
        && !Path::new(file.split('?').next().unwrap_or(file)).exists()
    {
        return Err(format!("no database at {file}"));
    }
    let store = Store::open(&settings.database_url)
        .await
        .map_err(|e| format!("cannot open the store: {e}"))?;
    let (chain, _anvil) = connect(&settings, &store).await?;
    let progress: Option<Progress> = if std::io::stderr().is_terminal() && !args.json {
        let bar = Arc::new(Bar::default());
        Some(Arc::new(move |phase: &str, done: u64, total: u64| {
            bar.draw(phase, done, total);
        }))
    } else {
        None
    };
    let report = super::run(&store, &chain, Arc::new(keys), scope, progress.clone())
        .await
        .map_err(|e| e.to_string())?;
    if progress.is_some() {
        eprintln!();
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", table(&report));
    }
    store.close().await;
    Ok(report.clean)
}

/// A read-only client of the configured chain; for the embedded default, the running
/// relay's chain when it answers, else a local anvil loaded from the saved chain state.
async fn connect(settings: &Settings, store: &Store) -> Result<(Chain, Option<Anvil>), String> {
    let (chain, anvil) = connect_registry(settings, store).await?;
    // The store's own log: the one its relay writes (other relays' records are not its).
    let (registry, log) = crate::chain::setup::store_log(store)
        .await?
        .ok_or("this store has not recorded its log yet: run `mediblock serve` once first")?;
    if registry != chain.registry() {
        return Err(format!(
            "this store's log is on registry {registry}, not on {}",
            chain.registry()
        ));
    }
    Ok((chain.with_log(log), anvil))
}

async fn connect_registry(
    settings: &Settings,
    store: &Store,
) -> Result<(Chain, Option<Anvil>), String> {
    match &settings.chain {
        ChainSettings::Remote {
            rpc_url,
            registry,
            confirmations,
            ..
        } => {
            let provider = ProviderBuilder::new()
                .connect_http(rpc_url.clone())
                .erased();
            let chain = Chain::connect(provider, *registry, *confirmations)
                .await
                .map_err(|e| format!("rpc_url: {e}"))?;
            Ok((chain, None))
        }
        ChainSettings::Embedded { confirmations } => {
            let registry: Address = store
                .meta("registry")
                .await
                .map_err(|e| e.to_string())?
                .ok_or("this store has no registry yet: run `mediblock serve` first")?
                .parse()
                .map_err(|_| "meta.registry is not an address")?;
            if let Some(url) = store
                .meta(EMBEDDED_RPC_META)
                .await
                .map_err(|e| e.to_string())?
                .and_then(|u| u.parse().ok())
            {
                let provider = ProviderBuilder::new().connect_http(url).erased();
                if provider
                    .get_code_at(registry)
                    .await
                    .is_ok_and(|c| !c.is_empty())
                {
                    let chain = Chain::connect(provider, registry, *confirmations)
                        .await
                        .map_err(|e| e.to_string())?;
                    return Ok((chain, None));
                }
            }
            let state_file = settings.data_dir.join("anvil-state.json");
            if !state_file.exists() {
                return Err(format!("no chain state at {}", state_file.display()));
            }
            let anvil = Anvil::start_with(&AnvilOptions {
                extra_args: vec!["--load-state".into(), state_file.display().to_string()],
                ..AnvilOptions::default()
            })
            .map_err(|e| format!("cannot start the local chain: {e}"))?;
            let provider = ProviderBuilder::new().connect_http(anvil.url()).erased();
            let chain = Chain::connect(provider, registry, *confirmations)
                .await
                .map_err(|e| e.to_string())?;
            Ok((chain, Some(anvil)))
        }
    }
}
