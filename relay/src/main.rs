//! The `mediblock` binary: parse the command line, set up logging, build state, serve.

use std::sync::Arc;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use clap::Parser;
use mediblock_protocol::ids::{Role, UserId};
use mediblock_protocol::template::Template;
use mediblock_relay::chain::anvil::{Anvil, AnvilOptions};
use mediblock_relay::chain::{Chain, registry, setup};
use mediblock_relay::checkpointer::Checkpointer;
use mediblock_relay::client;
use mediblock_relay::config::{ChainSettings, Cli, Command, Settings};
use mediblock_relay::keys::{RelayKeys, load_or_create};
use mediblock_relay::store::Store;
use mediblock_relay::store::users::User;
use mediblock_relay::worker::Worker;
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
        Command::KeysNew { file } => client::keys_new(&file).map(|public| {
            println!("{}", serde_json::json!(public));
        }),
        Command::Enrol {
            url,
            admin_key,
            uid,
            role,
            public,
        } => enrol(&url, &admin_key, &uid, &role, &public).await,
        Command::Publish {
            url,
            admin_key,
            file,
        } => client::publish(&url, &admin_key, &file)
            .await
            .map(|t| println!("{t}")),
        Command::Deploy {
            rpc_url,
            eth_key_file,
        } => deploy(&rpc_url, &eth_key_file).await,
        Command::Submit {
            url,
            key,
            uid,
            template,
            patient,
            fields,
        } => submit(&url, &key, &uid, &template, patient.as_deref(), &fields).await,
        Command::Proof {
            url,
            key,
            uid,
            tid,
            out,
            withhold_content,
        } => proof(&url, &key, &uid, &tid, &out, withhold_content).await,
        Command::Audit(args) => return mediblock_relay::audit::cli::command(args).await,
        Command::Verify {
            file,
            rpc,
            relay_key,
            registry,
            chain_id,
            json,
        } => {
            let pins = VerifyPins {
                relay_key: relay_key.as_deref(),
                registry: registry.as_deref(),
                chain_id,
            };
            return verify(&file, &rpc, &pins, json).await;
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn enrol(
    url: &str,
    admin_key: &std::path::Path,
    uid: &str,
    role: &str,
    public: &str,
) -> Result<(), String> {
    let uid = UserId::new(uid).map_err(|e| e.to_string())?;
    let public = serde_json::from_str(public).map_err(|e| format!("--public: {e}"))?;
    let user = client::enrol(url, admin_key, &uid, role, &public).await?;
    println!("{user}");
    Ok(())
}

async fn submit(
    url: &str,
    key: &std::path::Path,
    uid: &str,
    template: &str,
    patient: Option<&str>,
    fields: &[String],
) -> Result<(), String> {
    let uid = UserId::new(uid).map_err(|e| e.to_string())?;
    let (id, version) = template
        .split_once('@')
        .ok_or("--template: expected id@version")?;
    let template = mediblock_protocol::ids::TemplateRef {
        id: id.parse().map_err(|e| format!("--template: {e}"))?,
        version: mediblock_protocol::ids::TemplateVersion::new(
            version
                .parse()
                .map_err(|_| "--template: version must be a number")?,
        )
        .map_err(|e| e.to_string())?,
    };
    let patient = patient
        .map(|p| p.parse().map_err(|e| format!("--patient: {e}")))
        .transpose()?;
    let out = client::submit(url, key, &uid, &template, patient, fields).await?;
    println!("{out:#}");
    Ok(())
}

async fn proof(
    url: &str,
    key: &std::path::Path,
    uid: &str,
    tid: &str,
    out: &std::path::Path,
    withhold_content: bool,
) -> Result<(), String> {
    let uid = UserId::new(uid).map_err(|e| e.to_string())?;
    let tid = tid.parse().map_err(|e| format!("--tid: {e}"))?;
    let bundle =
        mediblock_relay::proof::download(url, key, &uid, &tid, withhold_content, out).await?;
    println!(
        "wrote the proof file of record {tid} (leaf {} of checkpoint {}) to {}",
        bundle.inclusion.leaf_index,
        bundle.checkpoint.checkpoint.size(),
        out.display()
    );
    Ok(())
}

/// What `mediblock verify` was told to pin, as given on the command line.
struct VerifyPins<'a> {
    relay_key: Option<&'a str>,
    registry: Option<&'a str>,
    chain_id: Option<u64>,
}

impl VerifyPins<'_> {
    fn parse(&self) -> Result<mediblock_protocol::proof::Pinned, String> {
        let mut pinned = mediblock_protocol::proof::Pinned {
            chain_id: self.chain_id,
            ..Default::default()
        };
        if let Some(key) = self.relay_key {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(key.trim_start_matches("0x"), &mut bytes)
                .map_err(|_| "--relay-key: expected 32 bytes as hex".to_owned())?;
            pinned.relay_key = Some(bytes);
        }
        if let Some(registry) = self.registry {
            pinned.registry = Some(
                registry
                    .parse()
                    .map_err(|_| "--registry: expected a 20-byte address as hex".to_owned())?,
            );
        }
        Ok(pinned)
    }
}

/// `mediblock verify`: exit code 0 verified, 1 a check failed, 2 could not check.
async fn verify(
    file: &std::path::Path,
    rpc: &str,
    pins: &VerifyPins<'_>,
    json: bool,
) -> std::process::ExitCode {
    use mediblock_relay::proof;
    // A file of another format or version (a version 1 file, say) is a finding, not a
    // failure to read: said as such, exit 1, and the node is not asked. Malformed pins
    // come first (exit 2 below).
    let unsupported = match pins.parse() {
        Ok(_) => proof::unsupported(file),
        Err(_) => Ok(None),
    };
    // Anything else (this verifier's format, or unreadable: read_bundle below says why).
    if let Ok(Some(failure)) = unsupported {
        if json {
            println!(
                "{:#}",
                serde_json::json!({
                    "verified": false,
                    "failure": {"code": failure.code(), "message": failure.to_string()},
                })
            );
        } else {
            println!("NOT VERIFIED ({}): {failure}", failure.code());
        }
        return std::process::ExitCode::from(1);
    }
    let checked = async {
        let pinned = pins.parse()?;
        let bundle = proof::read_bundle(file)?;
        let report = proof::verify(&bundle, rpc, &pinned).await?;
        Ok::<_, String>((bundle, report))
    };
    match checked.await {
        Ok((bundle, report)) => {
            if json {
                println!("{:#}", proof::render_json(&bundle, &report));
            } else {
                print!("{}", proof::render(&bundle, &report));
            }
            if report.ok() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::from(1)
            }
        }
        Err(e) => {
            if json {
                println!("{:#}", serde_json::json!({"verified": null, "error": e}));
            } else {
                eprintln!("cannot verify: {e}");
            }
            std::process::ExitCode::from(2)
        }
    }
}

async fn deploy(rpc_url: &str, eth_key_file: &std::path::Path) -> Result<(), String> {
    let signer = read_eth_key(eth_key_file)?;
    let me = signer.address();
    let url = rpc_url.parse().map_err(|e| format!("--rpc-url: {e}"))?;
    let provider = registry::provider(url, signer);
    let (address, block) = setup::deploy_registry(&provider, me)
        .await
        .map_err(|e| e.to_string())?;
    setup::ensure_relay(&provider, address, me)
        .await
        .map_err(|e| e.to_string())?;
    println!("{address}");
    eprintln!(
        "deployed in block {block}: set registry = \"{address}\" and registry_block = {block}"
    );
    Ok(())
}

/// Reads an Ethereum private key (hex) from a file; the key is never printed.
fn read_eth_key(path: &std::path::Path) -> Result<PrivateKeySigner, String> {
    parse_eth_key(&mediblock_relay::config::EthKey::File(path.to_path_buf()).read()?)
}

/// Parses an Ethereum private key (hex); the error never contains the key.
fn parse_eth_key(key: &str) -> Result<PrivateKeySigner, String> {
    key.trim()
        .parse()
        .map_err(|_| "the relay's Ethereum key is not a private key (hex)".to_owned())
}
async fn serve(args: Settings) -> Result<(), String> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create data folder {}: {e}", args.data_dir.display()))?;
    // Held until serve returns, and by the kernel until the process is gone.
    let one_relay = mediblock_relay::lock::DataDirLock::acquire(&args.data_dir)?;
    let owner = one_relay.lease_owner();
    owner_only(&args.data_dir, &args.database_url)?;
    let mut rng = UnwrapErr(getrandom::SysRng);
    let relay = load_or_create(&args.relay_key_file, &mut rng)?;
    let store_keys = load_or_create(&args.store_key_file, &mut rng)?;
    let keys = RelayKeys::new(relay, &store_keys)?;
    let store = Store::open(&args.database_url)
        .await
        .map_err(|e| format!("cannot open the store: {e}"))?;
    first_run_admin(&store, &args, &mut rng).await?;
    let (chain, anvil) = connect_chain(&args, &store).await?;
    if let Some(base) = setup::ensure_fresh_tickets(&store, &chain)
        .await
        .map_err(|e| format!("cannot check the ticket counter against the chain: {e}"))?
    {
        tracing::warn!(
            base,
            "the chain already used this store's next ticket (a restored or cloned store?): \
             tickets now start from a fresh base"
        );
    }
    publish_demo_templates(&store, &chain).await?;

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
        // The HTTP side needs the chain too: wallet enrolment, template registration, the
        // wallet path's co-signature and `/info`'s chain facts.
        chain: Some(chain.clone()),
        wake_worker: Default::default(),
        audit_slot: Default::default(),
        events: tokio::sync::broadcast::channel(1024).0,
        session_ttl_ms: args.session_minutes.saturating_mul(60_000),
        limits: Arc::new(mediblock_relay::limits::Limiter::new(args.limits)),
    };
    // This folder's previous process (a crash, a SIGKILL) may have died holding leases.
    let taken_back = store
        .release_leases(&owner)
        .await
        .map_err(|e| format!("cannot release the previous process's leases: {e}"))?;
    if taken_back > 0 {
        tracing::info!(
            taken_back,
            "took back the leases of this relay's previous process"
        );
    }
    let worker = Worker::new(state.clone(), chain.clone(), owner.clone());
    let wake = worker.notify.clone();
    let state = AppState {
        wake_worker: wake,
        ..state
    };
    tokio::spawn(worker.run());
    let checkpointer = Checkpointer::new(state.clone(), chain, args.checkpoint, owner.clone());
    tokio::spawn(checkpointer.run());
    // Lawful erasures: destroy an erased record's content once its erasure record is stored.
    tokio::spawn(mediblock_relay::erasure::run(state.clone()));
    // Expired sign-in challenges and sessions.
    tokio::spawn(mediblock_relay::purge::run(store.clone()));
    let served =
        mediblock_relay::listener::serve(listener, app(state), args.limits, shutdown_requested())
            .await
            .map_err(|e| format!("server error: {e}"));
    store.close().await;
    // The chain saves its state and stops first; then the folder is free for another relay.
    drop(anvil);
    drop(one_relay);
    served
}

/// The data folder (0700) and a SQLite store's files (0600, created so before SQLite opens
/// them, which then gives its journal the same mode) are the owner's only: they hold keys,
/// sealed records and the chain's state.
fn owner_only(data_dir: &std::path::Path, database_url: &str) -> Result<(), String> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let private = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot make {} private: {e}", path.display()))
    };
    private(data_dir, 0o700)?;
    let Some(rest) = database_url.strip_prefix("sqlite://") else {
        return Ok(());
    };
    let db = std::path::PathBuf::from(rest.split('?').next().unwrap_or(rest));
    if rest.starts_with(':') || db.as_os_str().is_empty() {
        return Ok(()); // in memory
    }
    if !db.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&db)
            .map_err(|e| format!("cannot create {}: {e}", db.display()))?;
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = db.clone().into_os_string();
        path.push(suffix);
        let path = std::path::PathBuf::from(path);
        if path.exists() {
            private(&path, 0o600)?;
        }
    }
    let state = data_dir.join("anvil-state.json");
    if state.exists() {
        private(&state, 0o600)?;
    }
    Ok(())
}

/// Connects to the configured chain, or starts the embedded anvil (state kept in the data
/// folder) and deploys the registry on first run.
async fn connect_chain(args: &Settings, store: &Store) -> Result<(Chain, Option<Anvil>), String> {
    match &args.chain {
        ChainSettings::Remote {
            rpc_url,
            registry: address,
            registry_block,
            browser_rpc_url,
            eth_key,
            confirmations,
        } => {
            let signer = parse_eth_key(&eth_key.read()?)?;
            let provider = registry::provider(rpc_url.clone(), signer.clone());
            let me = signer.address();
            let mut chain = Chain::connect(provider, *address, *confirmations)
                .await
                .map_err(|e| format!("rpc_url: {e}"))?
                .for_relay(me)
                .await
                .map_err(|e| format!("eth_key: {e}"))?
                .with_cosigner(signer)
                .with_deploy_block(*registry_block);
            setup::bind_store_log(store, &chain).await?;
            if let Some(url) = browser_rpc_url {
                chain = chain.with_rpc_url(url.clone());
            }
            Ok((chain, None))
        }
        ChainSettings::Embedded { confirmations } => {
            let state_file = args.data_dir.join("anvil-state.json");
            let anvil = Anvil::start_with(&AnvilOptions {
                state: Some(state_file),
                ..AnvilOptions::default()
            })
            .map_err(|e| format!("cannot start the local chain: {e}"))?;
            let signer = anvil.signer(0);
            let me = anvil.address(0);
            let provider = registry::provider(anvil.url(), signer.clone());
            let known = match store.meta("registry").await.map_err(|e| e.to_string())? {
                Some(text) => {
                    let address: Address = text
                        .parse()
                        .map_err(|_| "meta.registry is not an address")?;
                    setup::has_code(&provider, address)
                        .await
                        .map_err(|e| e.to_string())?
                        .then_some(address)
                }
                None => None,
            };
            let address = match known {
                Some(address) => address,
                None => {
                    let (address, block) = setup::deploy_registry(&provider, me)
                        .await
                        .map_err(|e| e.to_string())?;
                    store
                        .set_meta("registry_block", &block.to_string())
                        .await
                        .map_err(|e| e.to_string())?;
                    store
                        .set_meta("registry", &address.to_string())
                        .await
                        .map_err(|e| e.to_string())?;
                    tracing::info!(%address, "deployed the registry on the local chain");
                    address
                }
            };
            setup::ensure_relay(&provider, address, me)
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(rpc = %anvil.url(), registry = %address, "local chain ready");
            // `mediblock audit` reads the live chain while this relay runs.
            store
                .set_meta(
                    mediblock_relay::audit::cli::EMBEDDED_RPC_META,
                    anvil.url().as_str(),
                )
                .await
                .map_err(|e| e.to_string())?;
            let deployed_in = store
                .meta("registry_block")
                .await
                .map_err(|e| e.to_string())?
                .and_then(|b| b.parse().ok());
            let chain = Chain::connect(provider, address, *confirmations)
                .await
                .map_err(|e| format!("{}: {e}", args.data_dir.display()))?
                .for_relay(me)
                .await
                .map_err(|e| e.to_string())?
                .with_cosigner(signer)
                // Browsers get the relay's read-only proxy of this node, never the node
                // itself: it holds the relay's unlocked account and answers evm_snapshot.
                .with_rpc_url(mediblock_relay::api::chain_rpc::PATH)
                .with_deploy_block(deployed_in);
            setup::bind_store_log(store, &chain).await?;
            Ok((chain, Some(anvil)))
        }
    }
}

/// The demo templates shipped in `relay/templates/`, published and registered on first run.
const DEMO_TEMPLATES: [&str; 4] = [
    include_str!("../templates/vital-signs.json"),
    include_str!("../templates/patient-profile.json"),
    include_str!("../templates/assessment.json"),
    mediblock_relay::erasure::TEMPLATE_JSON,
];

async fn publish_demo_templates(store: &Store, chain: &Chain) -> Result<(), String> {
    for text in DEMO_TEMPLATES {
        let template: Template =
            serde_json::from_str(text).map_err(|e| format!("demo template: {e}"))?;
        let r = template.reference();
        setup::register_template(chain.provider(), chain.registry(), &template)
            .await
            .map_err(|e| format!("registering {r}: {e}"))?;
        if store
            .template(&r.id, r.version)
            .await
            .map_err(|e| e.to_string())?
            .is_none()
        {
            store
                .insert_template(&template, now())
                .await
                .map_err(|e| e.to_string())?;
            tracing::info!(template = %r, "published demo template");
        }
    }
    Ok(())
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

/// Resolves on Ctrl-C or SIGTERM (what a service manager or `kill` sends), so that `serve`
/// stops its embedded anvil and closes the store either way.
async fn shutdown_requested() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler, Ctrl-C still works.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
