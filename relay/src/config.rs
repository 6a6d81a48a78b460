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
}
