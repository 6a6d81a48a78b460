//! `mediblock serve` on its embedded default, as an operator runs it (the real binary, a
//! fresh data folder): its chain dies with it, however it dies, and one data folder has one
//! relay — a second `serve` on it is refused while the first runs, and starts once it is
//! gone, with one chain again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long `serve` may take to start (first run: deploy the registry, publish templates).
const START: Duration = Duration::from_secs(120);

fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mediblock-serve-{name}-{}-{}",
        std::process::id(),
        mediblock_relay::now().0
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn serve(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mediblock"));
    c.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Starts `serve` on `dir` and returns it once it listens (its own log line says so), with
/// its address; its output is drained in the background so it never blocks on a full pipe.
// The caller kills and waits for the child it gets back.
#[allow(clippy::zombie_processes)]
fn start(dir: &Path) -> (Child, String) {
    let mut child = serve(dir).spawn().unwrap();
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
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut seen = String::new();
    loop {
        let line = rx
            .recv_timeout(START)
            .unwrap_or_else(|e| panic!("serve did not start ({e}):\n{seen}"));
        if let Some((_, rest)) = line.split_once("MediBlock relay listening on http://") {
            let addr = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            return (child, addr);
        }
        seen.push_str(&line);
        seen.push('\n');
    }
}

/// The pids of `pid`'s children (every thread's), from `/proc`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let path = task.unwrap().path().join("children");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        out.extend(text.split_whitespace().map(|p| p.parse::<u32>().unwrap()));
    }
    out
}

/// The process's command line, empty once it is gone.
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Whether `pid` is dead or being killed: gone, a zombie, or with SIGKILL pending. The
/// kernel sends the parent-death signal while the parent exits, before the parent can be
/// reaped, so once the relay has been waited for this holds without waiting any further.
fn dead_or_dying(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_owned()
    };
    let pending = |name: &str| u64::from_str_radix(&field(name), 16).unwrap_or(0) & (1 << 8) != 0;
    field("State:").starts_with('Z')
        || field("State:").starts_with('X')
        || pending("SigPnd:")
        || pending("ShdPnd:")
}

/// One HTTP/1.1 request to `addr` (`host:port`); the JSON body of the answer.
fn http(addr: &str, method: &str, path: &str, body: &str) -> serde_json::Value {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

/// `GET /api/v1/info` of the relay at `addr`.
fn info(addr: &str) -> serde_json::Value {
    http(addr, "GET", "/api/v1/info", "")
}

/// The embedded chain's own URL (`host:port`), which `serve` notes in the store for
/// `mediblock audit` (browsers get only the relay's read-only proxy).
fn anvil_addr(dir: &Path) -> String {
    let url = format!("sqlite://{}", dir.join("mediblock.db").display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let value = rt.block_on(async {
        let store = mediblock_relay::store::Store::open(&url).await.unwrap();
        let value = store
            .meta(mediblock_relay::audit::cli::EMBEDDED_RPC_META)
            .await
            .unwrap()
            .unwrap();
        store.close().await;
        value
    });
    value
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// A JSON-RPC call straight to the embedded chain of the folder `dir` (anvil's own
/// methods, such as `evm_mine`, included).
fn chain(dir: &Path, method: &str) -> serde_json::Value {
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": []});
    http(&anvil_addr(dir), "POST", "/", &call.to_string())["result"].clone()
}

/// The chain's head, read as a browser reads it: through the relay's proxy at `addr`.
fn block_number(addr: &str) -> u64 {
    let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber"});
    let hex = http(addr, "POST", "/api/v1/chain", &call.to_string())["result"].clone();
    u64::from_str_radix(hex.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// The data folder is its owner's only (0700), and so are `files` in it (0600) — once they
/// exist: the chain's state file appears at anvil's first save, within a second, and the
/// test waits for that (bounded), having nothing else to wait on.
fn assert_private(dir: &Path, files: &[&str]) {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for f in files {
        let path = dir.join(f);
        while !path.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
}

/// The relay's one anvil child.
fn anvil_of(relay: &Child) -> u32 {
    let anvils: Vec<u32> = children(relay.id())
        .into_iter()
        .filter(|&p| cmdline(p).contains("anvil"))
        .collect();
    assert_eq!(anvils.len(), 1, "the relay's anvil children: {anvils:?}");
    anvils[0]
}

#[test]
fn the_embedded_chain_dies_with_the_relay_and_one_folder_has_one_relay() {
    let dir = data_dir("lock");
    let (mut first, addr) = start(&dir);
    let anvil = anvil_of(&first);
    assert!(!dead_or_dying(anvil));
    // The registry was deployed and the demo templates registered a moment ago: the last
    // blocks the chain mined before the crash below.
    let registry = info(&addr)["registry"].clone();
    assert!(registry.is_string(), "{registry}");
    assert_private(
        &dir,
        &[
            "mediblock.db",
            "anvil-state.json",
            "relay.key",
            "store.key",
            "admin.key",
        ],
    );

    // A second relay on the same folder is refused, and starts no chain.
    let out = serve(&dir).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "process {} is already serving the data folder",
            first.id()
        )),
        "{text}"
    );
    assert_eq!(anvil_of(&first), anvil, "still exactly one chain");

    // A block mined just now (well within anvil's one-second save interval), then SIGKILL,
    // as a crash or the OOM killer would: the relay cannot stop its chain itself; the
    // kernel tells the chain (SIGTERM), which saves its state and exits.
    chain(&dir, "evm_mine");
    let mined = block_number(&addr);
    first.kill().unwrap();
    first.wait().unwrap();

    // The folder serves again, once the old chain has saved and let go of the state file
    // (the next chain waits for its lock): one chain, and nothing the old one had mined is
    // lost — the same registry, not a fresh deployment.
    let (mut second, addr) = start(&dir);
    assert!(dead_or_dying(anvil), "anvil {anvil} outlived its relay");
    let again = anvil_of(&second);
    assert_ne!(again, anvil);
    assert_eq!(info(&addr)["registry"], registry);
    assert!(
        block_number(&addr) >= mined,
        "the chain lost blocks up to {mined}"
    );
    chain(&dir, "evm_mine");
    let mined = block_number(&addr);
    second.kill().unwrap();
    second.wait().unwrap();
    let (mut third, addr) = start(&dir);
    assert!(dead_or_dying(again));
    assert_eq!(info(&addr)["registry"], registry);
    assert!(
        block_number(&addr) >= mined,
        "the chain lost blocks up to {mined}"
    );
    assert_private(&dir, &["mediblock.db", "anvil-state.json"]);
    third.kill().unwrap();
    third.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
