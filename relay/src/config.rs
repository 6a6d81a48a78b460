//! The `mediblock` command line. The only place that reads arguments or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Serve the API and the web UI.
    Serve(ServeArgs),
}

/// Options of `mediblock serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MEDIBLOCK_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder of the web UI's static files.
    #[arg(long, env = "MEDIBLOCK_WEB_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../web"))]
    pub web_dir: PathBuf,
    /// Folder for the embedded default's files: the SQLite store and the key files.
    #[arg(long, env = "MEDIBLOCK_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Database URL (`sqlite://FILE` or `postgres://…`); default: a SQLite file in the data folder.
    #[arg(long, env = "MEDIBLOCK_DATABASE_URL")]
    pub database_url: Option<String>,
    /// File of the relay's secret keys (64 bytes as hex); created when missing.
    /// Default: `relay.key` in the data folder.
    #[arg(long, env = "MEDIBLOCK_RELAY_KEY_FILE")]
    pub relay_key_file: Option<PathBuf>,
    /// File of the store key holder's secret keys, from which SK(relay, store) is derived;
    /// created when missing. Default: `store.key` in the data folder.
    #[arg(long, env = "MEDIBLOCK_STORE_KEY_FILE")]
    pub store_key_file: Option<PathBuf>,
    /// Lifetime of a sign-in session, in minutes.
    #[arg(long, env = "MEDIBLOCK_SESSION_MINUTES", default_value_t = 480)]
    pub session_minutes: u64,
}

impl ServeArgs {
    /// The database URL, defaulting to `mediblock.db` in the data folder.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("mediblock.db").display()))
    }

    /// The relay key file path.
    pub fn relay_key_file(&self) -> PathBuf {
        self.relay_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("relay.key"))
    }

    /// The store key file path.
    pub fn store_key_file(&self) -> PathBuf {
        self.store_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("store.key"))
    }
}
