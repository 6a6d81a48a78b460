//! Configuration: a TOML file (`--config`), overridden by environment variables, overridden
//! by command-line flags. Parsed into typed values at start, so a bad setting fails fast
//! with a message naming the key. The only place that reads arguments or the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use serde::Deserialize;

/// MediBlock relay: the blockchain handshaker between clinicians' browsers, Ethereum and the
/// cloud record store.
#[derive(Debug, Parser)]
#[command(name = "mediblock", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API and the web UI (on the embedded default unless configured otherwise).
    Serve(ServeArgs),
    /// Create a key file (ed25519 + X25519) and print its public keys.
    KeysNew {
        /// Where to write the secret keys (mode 0600; refuses to overwrite).
        file: PathBuf,
    },
    /// Enrol a user (as the administrator).
    Enrol {
        /// The relay.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The administrator's key file.
        #[arg(long, default_value = "data/admin.key")]
        admin_key: PathBuf,
        /// New user's id, e.g. nurse.bo.
        #[arg(long)]
        uid: String,
        /// Role: doctor, nurse, pathologist, auditor or admin.
        #[arg(long)]
        role: String,
        /// The user's public keys as printed by `mediblock keys-new`.
        #[arg(long)]
        public: String,
    },
    /// Publish a template (JSON file) as the administrator: registered on chain, then stored.
    Publish {
        /// The relay.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The administrator's key file.
        #[arg(long, default_value = "data/admin.key")]
        admin_key: PathBuf,
        /// The template, as JSON (see relay/templates/ for examples).
        file: PathBuf,
    },
    /// Deploy the registry contracts on a chain (for real deployments; the embedded default
    /// deploys by itself) and make the deployer a relay. Prints the registry's address.
    Deploy {
        /// Ethereum JSON-RPC URL.
        #[arg(long, env = "MEDIBLOCK_RPC_URL")]
        rpc_url: String,
        /// File holding the deployer's (the registry owner's) private key as hex.
        #[arg(long, env = "MEDIBLOCK_ETH_KEY_FILE")]
        eth_key_file: PathBuf,
    },
    /// Sign, seal and submit a record, then wait until it is stored or rejected.
    Submit {
        /// The relay.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Your key file.
        #[arg(long)]
        key: PathBuf,
        /// Your user id.
        #[arg(long)]
        uid: String,
        /// Template as id@version, e.g. vital-signs@1.
        #[arg(long)]
        template: String,
        /// Patient id (32 hex digits); a new patient when absent.
        #[arg(long)]
        patient: Option<String>,
        /// Attribute values as name=value, e.g. heart_rate=72 temperature=36.8.
        fields: Vec<String>,
    },
    /// Download one record's proof file (see docs/PROOFS.md) as a clinician or auditor.
    Proof {
        /// The relay.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Your key file.
        #[arg(long)]
        key: PathBuf,
        /// Your user id.
        #[arg(long)]
        uid: String,
        /// The record's transaction id (32 hex digits).
        #[arg(long)]
        tid: String,
        /// Where to write the proof file (JSON).
        #[arg(long)]
        out: PathBuf,
        /// Leave the signed record (the health data) out of the file.
        #[arg(long)]
        withhold_content: bool,
    },
    /// Audit the store against the chain and the Merkle log: report every modified,
    /// deleted, forged, moved, replayed, rolled-back or verdict-flipped record and any
    /// rewrite of the log. Same settings as `serve`. Exit code 0: clean; 1: findings;
    /// 2: the audit could not run.
    Audit(AuditArgs),
    /// Verify a proof file with nothing but an Ethereum JSON-RPC endpoint. Exit code 0:
    /// verified; 1: a check failed; 2: the file or the node could not be read.
    Verify {
        /// The proof file.
        file: PathBuf,
        /// Ethereum JSON-RPC URL of the chain the file names.
        #[arg(long, env = "MEDIBLOCK_RPC_URL")]
        rpc: String,
        /// Require this relay ed25519 public key (64 hex digits) for the checkpoint.
        #[arg(long)]
        relay_key: Option<String>,
        /// Require this MediBlockRegistry address (40 hex digits). Without it the file
        /// names its own registry and the result only shows consistency with that contract.
        #[arg(long, env = "MEDIBLOCK_REGISTRY")]
        registry: Option<String>,
        /// Require this EIP-155 chain id.
        #[arg(long)]
        chain_id: Option<u64>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Options of `mediblock audit`: `serve`'s settings (database, chain, keys) and the scope.
#[derive(Debug, Default, clap::Args)]
pub struct AuditArgs {
    /// The relay's settings, exactly as for `serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Only this patient's records (32 hex digits).
    #[arg(long)]
    pub patient: Option<String>,
    /// Only records stored at or after this time (RFC 3339 or Unix milliseconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Only records stored at or before this time (RFC 3339 or Unix milliseconds).
    #[arg(long)]
    pub until: Option<String>,
    /// Print the report as JSON (the same as `GET /api/v1/audit`).
    #[arg(long)]
    pub json: bool,
}

/// Options of `mediblock serve`. Each overrides the config file's key of the same name.
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "MEDIBLOCK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "MEDIBLOCK_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Folder of the web UI's static files [default: the repository's web/].
    #[arg(long, env = "MEDIBLOCK_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Folder for the embedded default's files: the SQLite store, key files [default: data].
    #[arg(long, env = "MEDIBLOCK_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL, `sqlite://FILE` or `postgres://…` [default: data/mediblock.db].
    #[arg(long, env = "MEDIBLOCK_DATABASE_URL")]
    pub database_url: Option<String>,
    /// File of the relay's secret keys (64 bytes as hex; created when missing)
    /// [default: data/relay.key].
    #[arg(long, env = "MEDIBLOCK_RELAY_KEY_FILE")]
    pub relay_key_file: Option<PathBuf>,
    /// File of the store key holder's secret keys, from which SK(relay, store) is derived
    /// (created when missing) [default: data/store.key].
    #[arg(long, env = "MEDIBLOCK_STORE_KEY_FILE")]
    pub store_key_file: Option<PathBuf>,
    /// Lifetime of a sign-in session, in minutes [default: 480].
    #[arg(long, env = "MEDIBLOCK_SESSION_MINUTES")]
    pub session_minutes: Option<u64>,
    /// Ethereum JSON-RPC URL; without it the relay starts a local anvil (embedded default).
    #[arg(long, env = "MEDIBLOCK_RPC_URL")]
    pub rpc_url: Option<String>,
    /// Address of the deployed registry (required with --rpc-url).
    #[arg(long, env = "MEDIBLOCK_REGISTRY")]
    pub registry: Option<String>,
    /// The block the registry was deployed in (`mediblock deploy` prints it), with
    /// --rpc-url: where searches for a record's event start, published to browsers.
    #[arg(long, env = "MEDIBLOCK_REGISTRY_BLOCK")]
    pub registry_block: Option<u64>,
    /// The JSON-RPC URL browsers are told to check anchors with (`/api/v1/info`), with
    /// --rpc-url. Never the relay's own URL, which may carry a provider's API key; without
    /// it browsers use the person's wallet or a node they choose.
    #[arg(long, env = "MEDIBLOCK_BROWSER_RPC_URL")]
    pub browser_rpc_url: Option<String>,
    /// File holding the relay's Ethereum private key as hex (with --rpc-url; or put the key
    /// itself in the MEDIBLOCK_ETH_KEY environment variable).
    #[arg(long, env = "MEDIBLOCK_ETH_KEY_FILE")]
    pub eth_key_file: Option<PathBuf>,
    /// Blocks to wait after inclusion before a record counts as anchored [default: 1].
    #[arg(long, env = "MEDIBLOCK_CONFIRMATIONS")]
    pub confirmations: Option<u64>,
    /// Sign and anchor a checkpoint of the record log once this many leaves are not yet
    /// covered by one [default: 256].
    #[arg(long, env = "MEDIBLOCK_CHECKPOINT_EVERY_LEAVES")]
    pub checkpoint_every_leaves: Option<u64>,
    /// ... or once the oldest uncovered leaf is this many seconds old [default: 30].
    #[arg(long, env = "MEDIBLOCK_CHECKPOINT_EVERY_SECONDS")]
    pub checkpoint_every_seconds: Option<u64>,
    /// Refuse submissions (503 queue_full, Retry-After) while this many records wait for
    /// the chain [default: 1000].
    #[arg(long, env = "MEDIBLOCK_MAX_QUEUE")]
    pub max_queue: Option<u64>,
    /// Requests per second each client address and each user may make, sustained, on
    /// sign-in, tickets, submissions and erasure (429 rate_limited past it) [default: 20].
    #[arg(long, env = "MEDIBLOCK_RATE_LIMIT_PER_SECOND")]
    pub rate_limit_per_second: Option<u32>,
    /// ... and at once, before that rate applies [default: 100].
    #[arg(long, env = "MEDIBLOCK_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,
    /// Connections served at once; one more is closed when accepted [default: 1024].
    #[arg(long, env = "MEDIBLOCK_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a connection may take to send a request's headers, or stay idle between
    /// requests, before it is closed [default: 10].
    #[arg(long, env = "MEDIBLOCK_HEADER_TIMEOUT_SECONDS")]
    pub header_timeout_seconds: Option<u64>,
    /// Seconds a request's body may take to arrive in full (408 request_timeout)
    /// [default: 30].
    #[arg(long, env = "MEDIBLOCK_BODY_TIMEOUT_SECONDS")]
    pub body_timeout_seconds: Option<u64>,
}

/// The config file's shape. Unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `listen`.
    pub listen: Option<SocketAddr>,
    /// `web_dir`.
    pub web_dir: Option<PathBuf>,
    /// `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `database_url`.
    pub database_url: Option<String>,
    /// `relay_key_file`.
    pub relay_key_file: Option<PathBuf>,
    /// `store_key_file`.
    pub store_key_file: Option<PathBuf>,
    /// `session_minutes`.
    pub session_minutes: Option<u64>,
    /// `rpc_url`.
    pub rpc_url: Option<String>,
    /// `registry`.
    pub registry: Option<String>,
    /// `registry_block`.
    pub registry_block: Option<u64>,
    /// `browser_rpc_url`.
    pub browser_rpc_url: Option<String>,
    /// `eth_key_file`.
    pub eth_key_file: Option<PathBuf>,
    /// `confirmations`.
    pub confirmations: Option<u64>,
    /// `checkpoint_every_leaves`.
    pub checkpoint_every_leaves: Option<u64>,
    /// `checkpoint_every_seconds`.
    pub checkpoint_every_seconds: Option<u64>,
    /// `max_queue`.
    pub max_queue: Option<u64>,
    /// `rate_limit_per_second`.
    pub rate_limit_per_second: Option<u32>,
    /// `rate_limit_burst`.
    pub rate_limit_burst: Option<u32>,
    /// `max_connections`.
    pub max_connections: Option<usize>,
    /// `header_timeout_seconds`.
    pub header_timeout_seconds: Option<u64>,
    /// `body_timeout_seconds`.
    pub body_timeout_seconds: Option<u64>,
}

/// Resolved settings of `mediblock serve`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Web UI folder.
    pub web_dir: PathBuf,
    /// Data folder.
    pub data_dir: PathBuf,
    /// Database URL.
    pub database_url: String,
    /// Relay key file.
    pub relay_key_file: PathBuf,
    /// Store key file.
    pub store_key_file: PathBuf,
    /// Session lifetime in minutes.
    pub session_minutes: u64,
    /// Where the chain is.
    pub chain: ChainSettings,
    /// When the checkpointer signs and anchors a checkpoint.
    pub checkpoint: crate::checkpointer::CheckpointPolicy,
    /// The bounds on clients: rate limits, queue depth, connections and timeouts.
    pub limits: crate::limits::Limits,
}

/// Which chain the relay anchors on.
#[derive(Debug, Clone)]
pub enum ChainSettings {
    /// Start a local anvil with its state in the data folder, deploy the registry once.
    Embedded {
        /// Blocks to wait for.
        confirmations: u64,
    },
    /// A configured JSON-RPC endpoint with a deployed registry.
    Remote {
        /// JSON-RPC URL.
        rpc_url: alloy::transports::http::reqwest::Url,
        /// Registry address.
        registry: alloy::primitives::Address,
        /// The block the registry was deployed in, when configured.
        registry_block: Option<u64>,
        /// The JSON-RPC URL published to browsers, if any (checked to be a URL).
        browser_rpc_url: Option<String>,
        /// Where the relay's Ethereum key comes from (never logged).
        eth_key: EthKey,
        /// Blocks to wait for.
        confirmations: u64,
    },
}

/// The relay's Ethereum private key: from a file, or from the `MEDIBLOCK_ETH_KEY`
/// environment variable (hex). `Debug` never shows the key.
#[derive(Clone)]
pub enum EthKey {
    /// A file holding the key as hex.
    File(PathBuf),
    /// The key itself, from the environment.
    Env(zeroize::Zeroizing<String>),
}

impl std::fmt::Debug for EthKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EthKey::File(p) => f.debug_tuple("File").field(p).finish(),
            EthKey::Env(_) => f.write_str("Env(<redacted>)"),
        }
    }
}

impl EthKey {
    /// The key's hex text (file contents or the variable).
    pub fn read(&self) -> Result<zeroize::Zeroizing<String>, String> {
        match self {
            EthKey::File(path) => std::fs::read_to_string(path)
                .map(zeroize::Zeroizing::new)
                .map_err(|e| format!("eth_key_file {}: {e}", path.display())),
            EthKey::Env(key) => Ok(key.clone()),
        }
    }
}

/// Reads and parses a config file; errors name the file and the offending key.
pub fn read_file(path: &Path) -> Result<FileConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    parse_file(&text).map_err(|e| format!("config file {}: {e}", path.display()))
}

/// Parses config text (TOML).
pub fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

impl ServeArgs {
    /// Merges flags and environment (already in `self`) over the config file over defaults.
    pub fn resolve(self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = self
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("data"));
        let database_url = self
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("mediblock.db").display()));
        if !(database_url.starts_with("sqlite:") || database_url.starts_with("postgres")) {
            return Err(format!(
                "database_url: expected sqlite://FILE or postgres://…, got {database_url:?}"
            ));
        }
        let session_minutes = self.session_minutes.or(file.session_minutes).unwrap_or(480);
        if session_minutes == 0 {
            return Err("session_minutes: must be at least 1".into());
        }
        let confirmations = self.confirmations.or(file.confirmations).unwrap_or(1);
        let chain = match self.rpc_url.or(file.rpc_url) {
            None => ChainSettings::Embedded { confirmations },
            Some(url) => ChainSettings::Remote {
                rpc_url: url
                    .parse()
                    .map_err(|e| format!("rpc_url: not a URL ({e})"))?,
                registry: self
                    .registry
                    .or(file.registry)
                    .ok_or("registry: required with rpc_url")?
                    .parse()
                    .map_err(|e| format!("registry: not an address ({e})"))?,
                registry_block: self.registry_block.or(file.registry_block),
                browser_rpc_url: self
                    .browser_rpc_url
                    .or(file.browser_rpc_url)
                    .map(|u| {
                        u.parse::<alloy::transports::http::reqwest::Url>()
                            .map(|u| u.to_string())
                            .map_err(|e| format!("browser_rpc_url: not a URL ({e})"))
                    })
                    .transpose()?,
                eth_key: match self.eth_key_file.or(file.eth_key_file) {
                    Some(path) => EthKey::File(path),
                    None => EthKey::Env(zeroize::Zeroizing::new(
                        std::env::var("MEDIBLOCK_ETH_KEY").map_err(
                            |_| "eth_key_file: required with rpc_url (or set MEDIBLOCK_ETH_KEY)",
                        )?,
                    )),
                },
                confirmations,
            },
        };
        let every_leaves = self
            .checkpoint_every_leaves
            .or(file.checkpoint_every_leaves)
            .unwrap_or(256);
        if every_leaves == 0 {
            return Err("checkpoint_every_leaves: must be at least 1".into());
        }
        let every_seconds = self
            .checkpoint_every_seconds
            .or(file.checkpoint_every_seconds)
            .unwrap_or(30);
        if every_seconds == 0 {
            return Err("checkpoint_every_seconds: must be at least 1".into());
        }
        let checkpoint = crate::checkpointer::CheckpointPolicy {
            every_leaves,
            max_delay: std::time::Duration::from_secs(every_seconds),
        };
        let mut limits = crate::limits::Limits::default();
        if let Some(n) = bounded("max_queue", self.max_queue.or(file.max_queue), u64::MAX)? {
            limits.max_queue = n;
        }
        let rate = self.rate_limit_per_second.or(file.rate_limit_per_second);
        if let Some(n) = bounded(
            "rate_limit_per_second",
            rate.map(u64::from),
            u32::MAX.into(),
        )? {
            limits.rate_per_second = u32::try_from(n).map_err(|e| e.to_string())?;
        }
        let burst = self.rate_limit_burst.or(file.rate_limit_burst);
        if let Some(n) = bounded("rate_limit_burst", burst.map(u64::from), u32::MAX.into())? {
            limits.burst = u32::try_from(n).map_err(|e| e.to_string())?;
        }
        let connections = self.max_connections.or(file.max_connections);
        let connections = connections.map(|n| u64::try_from(n).unwrap_or(u64::MAX));
        if let Some(n) = bounded("max_connections", connections, MAX_CONNECTIONS_LIMIT)? {
            limits.max_connections = usize::try_from(n).map_err(|e| e.to_string())?;
        }
        let header = self.header_timeout_seconds.or(file.header_timeout_seconds);
        if let Some(n) = bounded("header_timeout_seconds", header, MAX_TIMEOUT_SECONDS)? {
            limits.header_timeout = std::time::Duration::from_secs(n);
        }
        let body = self.body_timeout_seconds.or(file.body_timeout_seconds);
        if let Some(n) = bounded("body_timeout_seconds", body, MAX_TIMEOUT_SECONDS)? {
            limits.body_timeout = std::time::Duration::from_secs(n);
        }
        Ok(Settings {
            chain,
            checkpoint,
            limits,
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            web_dir: self
                .web_dir
                .or(file.web_dir)
                .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../web"))),
            relay_key_file: self
                .relay_key_file
                .or(file.relay_key_file)
                .unwrap_or_else(|| data_dir.join("relay.key")),
            store_key_file: self
                .store_key_file
                .or(file.store_key_file)
                .unwrap_or_else(|| data_dir.join("store.key")),
            data_dir,
            database_url,
            session_minutes,
        })
    }
}

/// Largest `max_connections`: a semaphore's permits and far more than a process's open
/// files.
const MAX_CONNECTIONS_LIMIT: u64 = 1 << 20;
/// Largest timeout, in seconds: a day.
const MAX_TIMEOUT_SECONDS: u64 = 86_400;

/// `value` when it is set, checked to be from 1 to `max`; else a message naming `key`.
fn bounded(key: &str, value: Option<u64>, max: u64) -> Result<Option<u64>, String> {
    match value {
        Some(0) => Err(format!("{key}: must be at least 1")),
        Some(n) if n > max => Err(format!("{key}: must be at most {max}")),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_mistyped_keys_are_named() {
        let err = parse_file("listen = \"127.0.0.1:1\"\ndatabse_url = \"x\"\n").unwrap_err();
        assert!(err.contains("databse_url"), "{err}");
        let err = parse_file("session_minutes = \"ten\"\n").unwrap_err();
        assert!(err.contains("session_minutes"), "{err}");
    }

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = std::env::temp_dir().join(format!("mediblock-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("relay.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\nsession_minutes = 30\n").unwrap();
        let args = ServeArgs {
            config: Some(file),
            session_minutes: Some(5),
            ..ServeArgs::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(s.session_minutes, 5);
        assert_eq!(s.database_url, "sqlite://data/mediblock.db");
        assert_eq!(s.relay_key_file, PathBuf::from("data/relay.key"));
    }

    #[test]
    fn a_remote_registry_takes_its_deployment_block_from_the_file() {
        let dir = std::env::temp_dir().join(format!("mediblock-config-rb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("relay.toml");
        std::fs::write(
            &file,
            "rpc_url = \"http://127.0.0.1:8545\"\nregistry = \"0x5FbDB2315678afecb367f032d93F642f64180aa3\"\nregistry_block = 42\neth_key_file = \"eth.key\"\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        match args.resolve().unwrap().chain {
            ChainSettings::Remote { registry_block, .. } => assert_eq!(registry_block, Some(42)),
            other => panic!("expected a remote chain, got {other:?}"),
        }
    }

    #[test]
    fn limits_come_from_the_file_and_flags_over_their_defaults() {
        let dir = std::env::temp_dir().join(format!("mediblock-config-lim-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("relay.toml");
        std::fs::write(
            &file,
            "max_queue = 50\nrate_limit_per_second = 3\nrate_limit_burst = 7\n\
             max_connections = 9\nheader_timeout_seconds = 4\nbody_timeout_seconds = 5\n",
        )
        .unwrap();
        let args = ServeArgs {
            config: Some(file.clone()),
            max_queue: Some(60),
            ..ServeArgs::default()
        };
        let l = args.resolve().unwrap().limits;
        assert_eq!(
            l,
            crate::limits::Limits {
                max_queue: 60,
                rate_per_second: 3,
                burst: 7,
                max_connections: 9,
                header_timeout: std::time::Duration::from_secs(4),
                body_timeout: std::time::Duration::from_secs(5),
            }
        );
        // Without any, the defaults.
        let defaults = ServeArgs::default().resolve().unwrap().limits;
        assert_eq!(defaults, crate::limits::Limits::default());
        assert_eq!(defaults.max_queue, crate::limits::DEFAULT_MAX_QUEUE);
        // Zero, and too many connections, are refused with the key.
        for (args, key) in [
            (
                ServeArgs {
                    rate_limit_burst: Some(0),
                    ..ServeArgs::default()
                },
                "rate_limit_burst",
            ),
            (
                ServeArgs {
                    max_connections: Some(usize::MAX),
                    ..ServeArgs::default()
                },
                "max_connections",
            ),
            (
                ServeArgs {
                    header_timeout_seconds: Some(0),
                    ..ServeArgs::default()
                },
                "header_timeout_seconds",
            ),
        ] {
            let err = args.resolve().unwrap_err();
            assert!(err.starts_with(key), "{err}");
        }
        let err = parse_file("max_queue = -1\n").unwrap_err();
        assert!(err.contains("max_queue"), "{err}");
        // The flags' names (each also has its MEDIBLOCK_… variable, as clap documents).
        let cli = Cli::try_parse_from([
            "mediblock",
            "serve",
            "--max-queue",
            "7",
            "--rate-limit-per-second",
            "8",
            "--rate-limit-burst",
            "9",
            "--max-connections",
            "10",
            "--header-timeout-seconds",
            "11",
            "--body-timeout-seconds",
            "12",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let l = args.resolve().unwrap().limits;
        assert_eq!(
            (l.max_queue, l.rate_per_second, l.burst, l.max_connections),
            (7, 8, 9, 10)
        );
        assert_eq!(
            (l.header_timeout.as_secs(), l.body_timeout.as_secs()),
            (11, 12)
        );
    }

    #[test]
    fn bad_values_fail_with_the_key() {
        let args = ServeArgs {
            database_url: Some("mysql://x".into()),
            ..ServeArgs::default()
        };
        assert!(args.resolve().unwrap_err().starts_with("database_url"));
    }
}

#[cfg(test)]
mod secret_tests {
    use super::*;

    #[test]
    fn the_eth_key_never_shows_in_debug() {
        let key = EthKey::Env(zeroize::Zeroizing::new("ac0974bec39a17e36ba4a6b4".into()));
        assert_eq!(format!("{key:?}"), "Env(<redacted>)");
        let settings = ChainSettings::Remote {
            rpc_url: "http://127.0.0.1:8545".parse().unwrap(),
            registry: alloy::primitives::Address::ZERO,
            registry_block: None,
            browser_rpc_url: None,
            eth_key: key,
            confirmations: 1,
        };
        assert!(!format!("{settings:?}").contains("ac0974"));
    }
}
