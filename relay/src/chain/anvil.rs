//! A real local chain for tests and the embedded default: an `anvil` process on a free
//! port, ready when [`Anvil::start`] returns, killed when the [`Anvil`] is dropped — and by
//! the kernel when its parent dies without dropping it (a SIGKILL, a crash).
//!
//! The binary is `$MEDIBLOCK_ANVIL` when set, else `tools/node_modules/.bin/anvil` (installed
//! by the project's automation with `npm ci --prefix tools`). Anvil is asked for port 0, so
//! the operating system picks a free port, and readiness is anvil's own "Listening on" line:
//! it prints it after its RPC socket is bound, so no test ever sleeps or polls to wait.
//!
//! ```no_run
//! # fn main() -> Result<(), mediblock_relay::chain::anvil::AnvilError> {
//! let anvil = mediblock_relay::chain::anvil::Anvil::start()?;
//! let url = anvil.url(); // http://127.0.0.1:<port>
//! let admin = anvil.signer(0); // a funded dev account
//! # Ok(()) }
//! ```

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest::Url;

/// The hardfork every test chain runs, so that gas figures are reproducible: Osaka, the
/// execution rules of Ethereum mainnet since December 2025 (anvil's "latest" may move on).
pub const HARDFORK: &str = "osaka";

/// How long anvil may take to print its "Listening on" line.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Why anvil could not be started.
#[derive(Debug, thiserror::Error)]
pub enum AnvilError {
    /// The binary is missing.
    #[error(
        "anvil not found at {0}: run the project's automation (it runs `npm ci --prefix tools`) \
         or set MEDIBLOCK_ANVIL to an anvil binary"
    )]
    NotFound(PathBuf),
    /// Spawning the process failed.
    #[error("could not start anvil at {path}: {source}")]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Anvil exited, or did not become ready in time; `output` is what it printed.
    #[error("anvil did not start: {reason}\n--- anvil output ---\n{output}")]
    NotReady {
        /// What went wrong.
        reason: String,
        /// Everything anvil printed so far.
        output: String,
    },
}

/// Options for [`Anvil::start_with`].
#[derive(Debug, Clone)]
pub struct AnvilOptions {
    /// `--hardfork`; [`HARDFORK`] by default.
    pub hardfork: String,
    /// Number of funded dev accounts (`--accounts`), 10 by default.
    pub accounts: usize,
    /// Extra command-line arguments, e.g. `--block-time 1`.
    pub extra_args: Vec<String>,
    /// A state file the chain is loaded from and saved to (`--state`, every second and when
    /// anvil exits): the embedded default's chain. Only one anvil at a time runs on it: the
    /// next one waits for the lock (`<file>.lock`) until the previous one saved and exited.
    pub state: Option<PathBuf>,
}

impl Default for AnvilOptions {
    fn default() -> Self {
        Self {
            hardfork: HARDFORK.to_owned(),
            accounts: 10,
            extra_args: Vec::new(),
            state: None,
        }
    }
}

/// `program` as a command that the kernel sends `signal` (`KILL`, or `TERM` for a chain
/// that must save its state first) when the thread that spawns it dies — with the whole
/// process on a SIGKILL or a crash — so a chain never outlives its relay. It runs through
/// util-linux's `setpriv --pdeathsig`, which sets the parent-death signal and execs the
/// program (the child's pid is the program's). With `lock`, util-linux's `flock --no-fork`
/// comes in between: it waits for an exclusive lock on that file and execs the program
/// holding it, so the lock is released only once the program has exited. Where those tools
/// are missing, the program runs without them. Spawn from a thread that lives as long as
/// the child should: the main thread or a runtime worker, not a short-lived blocking thread.
fn dies_with_this_thread(
    program: &std::path::Path,
    signal: &str,
    lock: Option<PathBuf>,
) -> Command {
    const SETPRIV: &str = "/usr/bin/setpriv";
    const FLOCK: &str = "/usr/bin/flock";
    let exists = |p: &str| std::path::Path::new(p).exists();
    if !exists(SETPRIV) {
        return Command::new(program);
    }
    let mut c = Command::new(SETPRIV);
    c.args(["--pdeathsig", signal, "--"]);
    if let Some(lock) = lock {
        if exists(FLOCK) {
            c.args([FLOCK, "--no-fork", "--exclusive"]).arg(lock);
        }
        c.args(["/bin/sh", "-c", STATE_SUPERVISOR]);
    }
    c.arg(program);
    c
}

/// The shell between the lock and a chain with a state file. It writes with umask 077 (the
/// state holds every record's on-chain values), runs the chain as its child — itself with a
/// parent-death signal, should the shell die first — and on SIGTERM (its relay died, or is
/// stopping) gives the chain a moment before passing the signal on: a request the relay
/// sent just before it died may still be mining a block, and anvil's state dump taken in
/// the middle of that can hold a block's storage without the block (seen under SIGKILL:
/// a ticket marked used whose RecordAnchored event was gone). Then it waits for the chain
/// to save and exit, and only then lets go of the lock.
const STATE_SUPERVISOR: &str = r#"umask 077
/usr/bin/setpriv --pdeathsig TERM -- "$0" "$@" &
child=$!
trap 'sleep 0.2; kill -TERM "$child" 2>/dev/null' TERM INT
while kill -0 "$child" 2>/dev/null; do wait "$child"; done"#;

/// A running anvil node. Dropping it kills the process.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    url: Url,
    keys: Vec<PrivateKeySigner>,
    /// Whether it runs on a state file (stopped with SIGTERM so that it saves it).
    saves_state: bool,
}

impl Anvil {
    /// Starts anvil with [`AnvilOptions::default`].
    pub fn start() -> Result<Self, AnvilError> {
        Self::start_with(&AnvilOptions::default())
    }

    /// Starts anvil with `options` and returns once its RPC endpoint accepts requests.
    pub fn start_with(options: &AnvilOptions) -> Result<Self, AnvilError> {
        let path = binary();
        if !path.exists() {
            return Err(AnvilError::NotFound(path));
        }
        let mut command = match &options.state {
            None => dies_with_this_thread(&path, "KILL", None),
            Some(state) => {
                let mut lock = state.clone().into_os_string();
                lock.push(".lock");
                let mut c = dies_with_this_thread(&path, "TERM", Some(PathBuf::from(lock)));
                c.arg("--state").arg(state).args(["--state-interval", "1"]);
                c
            }
        };
        let mut child = command
            .args(["--port", "0", "--host", "127.0.0.1"])
            .args(["--hardfork", &options.hardfork])
            .args(["--accounts", &options.accounts.to_string()])
            .args(&options.extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| AnvilError::Spawn {
                path: path.clone(),
                source,
            })?;

        // One thread per output stream: lines go to the channel until anvil is ready, then
        // are discarded, so anvil never blocks on a full pipe while a test runs.
        let (tx, rx) = mpsc::channel::<String>();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    // The receiver is gone once anvil is ready: keep draining.
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);

        let mut output = String::new();
        let mut keys = Vec::new();
        let not_ready = |reason: &str, output: String| AnvilError::NotReady {
            reason: reason.to_owned(),
            output,
        };
        let url = loop {
            let line = match rx.recv_timeout(START_TIMEOUT) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    return Err(not_ready("timed out", output));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.wait();
                    return Err(not_ready("anvil exited", output));
                }
            };
            output.push_str(&line);
            output.push('\n');
            if let Some(key) = parse_private_key(&line) {
                keys.push(key);
            }
            if let Some(addr) = line.trim().strip_prefix("Listening on ") {
                match Url::parse(&format!("http://{addr}")) {
                    Ok(url) => break url,
                    Err(_) => {
                        let _ = child.kill();
                        return Err(not_ready("unreadable listen address", output));
                    }
                }
            }
        };
        if keys.len() != options.accounts {
            let _ = child.kill();
            return Err(not_ready(
                "could not read the dev accounts' private keys",
                output,
            ));
        }
        Ok(Self {
            child,
            url,
            keys,
            saves_state: options.state.is_some(),
        })
    }

    /// The process id of the node.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The HTTP JSON-RPC endpoint.
    pub fn url(&self) -> Url {
        self.url.clone()
    }

    /// The `i`-th funded dev account's signer.
    ///
    /// # Panics
    /// If `i` is not below the number of accounts.
    pub fn signer(&self, i: usize) -> PrivateKeySigner {
        self.keys[i].clone()
    }

    /// The `i`-th funded dev account's address.
    ///
    /// # Panics
    /// If `i` is not below the number of accounts.
    pub fn address(&self, i: usize) -> Address {
        self.keys[i].address()
    }

    /// Chain id of every anvil dev chain.
    pub fn chain_id(&self) -> u64 {
        31337
    }
}

impl Drop for Anvil {
    /// A chain with a state file is asked to stop (SIGTERM, through `kill(1)`: this crate
    /// has no unsafe code), so that it saves its state as it exits; any other is killed.
    fn drop(&mut self) {
        let asked = self.saves_state
            && Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
        if !asked {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The anvil binary: `$MEDIBLOCK_ANVIL`, else the one the automation installs.
fn binary() -> PathBuf {
    match std::env::var_os("MEDIBLOCK_ANVIL") {
        Some(path) => PathBuf::from(path),
        None => crate::repo_root().join("tools/node_modules/.bin/anvil"),
    }
}

/// A line of anvil's "Private Keys" banner: `(3) 0x<64 hex digits>`.
fn parse_private_key(line: &str) -> Option<PrivateKeySigner> {
    let rest = line.trim().strip_prefix('(')?;
    let (_, key) = rest.split_once(") 0x")?;
    if key.len() != 64 {
        return None;
    }
    let bytes = hex::decode(key).ok()?;
    PrivateKeySigner::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_private_key_lines_only() {
        let key = parse_private_key(
            "(0) 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        )
        .expect("a key line");
        assert_eq!(
            key.address().to_string(),
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
        assert!(
            parse_private_key("(0) 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266 (10000 ETH)")
                .is_none()
        );
        assert!(parse_private_key("Listening on 127.0.0.1:8545").is_none());
    }
}
