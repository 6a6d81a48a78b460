//! `mediblock serve` on its embedded default, as an operator runs it (the real binary, a
//! fresh data folder): its chain dies with it, however it dies, and one data folder has one
//! relay — a second `serve` on it is refused while the first runs, and starts once it is
//! gone, with one chain again; and SIGKILLed again and again while clinicians submit, it
//! loses nothing it acknowledged.
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
    serve_on(dir, "127.0.0.1:0")
}

fn serve_on(dir: &Path, listen: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mediblock"));
    c.args(["serve", "--listen", listen, "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        // The load here is the test's own, on one address: crashes are under test, not
        // the rate limits (relay/tests/limits.rs tests those).
        .env("MEDIBLOCK_RATE_LIMIT_PER_SECOND", "100000")
        .env("MEDIBLOCK_RATE_LIMIT_BURST", "100000")
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
    start_with(serve(dir))
}

// The caller kills and waits for the child it gets back.
#[allow(clippy::zombie_processes)]
fn start_with(mut command: Command) -> (Child, String) {
    let mut child = command.spawn().unwrap();
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

/// What a load client needs: the relay's base URL, a nurse's keys and the template.
struct Load {
    base: String,
    uid: mediblock_protocol::ids::UserId,
    nurse: mediblock_protocol::keys::Keypair,
    relay: mediblock_protocol::keys::PublicKeys,
    template: mediblock_protocol::template::Template,
}

impl Load {
    /// Takes a ticket, signs and seals a vital-signs record and submits it: its tid once the
    /// relay answered 202, or why not (the relay is down, being killed, restarting…).
    async fn submit_one(
        &self,
        session: &mediblock_relay::client::Session,
        heart_rate: i64,
    ) -> Result<mediblock_protocol::ids::TxId, String> {
        use mediblock_protocol::ids::{PatientId, Salt, TxId, UnixMillis};
        let issued = session
            .post("/api/v1/tickets", &serde_json::json!({}))
            .await?;
        let ticket: u64 = issued["ticket"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .ok_or("no ticket")?;
        let form = [
            ("heart_rate".to_owned(), heart_rate.to_string()),
            ("systolic".to_owned(), "120".to_owned()),
            ("temperature".to_owned(), "36.8".to_owned()),
        ]
        .into_iter()
        .collect();
        let attributes = self
            .template
            .map_form(&form)
            .map_err(|v| format!("{v:?}"))?;
        let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
        let ti = mediblock_protocol::record::InitialTransaction {
            tid: TxId::for_ticket(ticket, &mut rng),
            uid: self.uid.clone(),
            pid: PatientId::random(&mut rng),
            template: self.template.reference(),
            attributes,
            created_at: UnixMillis(mediblock_relay::now().0),
            salt: Salt::random(&mut rng),
            prev: None,
        };
        let tid = ti.tid;
        let sealed = ti
            .sign(&self.nurse)
            .seal(&self.nurse, &self.relay, &mut rng)
            .map_err(|e| e.to_string())?;
        session
            .post(
                "/api/v1/submissions",
                &serde_json::to_value(&sealed).map_err(|e| e.to_string())?,
            )
            .await?;
        Ok(tid)
    }

    /// Submits until `stop`, signing in again whenever the relay was away; every 202's tid
    /// goes to `acked`.
    async fn run(
        &self,
        stop: &std::sync::atomic::AtomicBool,
        acked: &std::sync::Mutex<Vec<mediblock_protocol::ids::TxId>>,
        progress: &tokio::sync::Notify,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        let mut session = None;
        let mut n = 0i64;
        while !stop.load(Relaxed) {
            if session.is_none() {
                session =
                    mediblock_relay::client::Session::sign_in(&self.base, &self.uid, &self.nurse)
                        .await
                        .ok();
            }
            let outcome = match &session {
                Some(s) => self.submit_one(s, 40 + n % 100).await,
                None => Err("not signed in".into()),
            };
            n += 1;
            match outcome {
                Ok(tid) => {
                    acked.lock().unwrap().push(tid);
                    progress.notify_waiters();
                }
                // The relay is down or restarting: pace the retries (a load generator's
                // pause, not a wait for a condition).
                Err(_) => {
                    session = None;
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        }
    }
}

/// How many times the crash test SIGKILLs the relay.
const KILLS: usize = 20;

/// Issue 19's acceptance test: the relay on its embedded default is SIGKILLed 20 times at
/// seeded-random moments while 3 clients submit continuously; afterwards every record that
/// got a 202 is stored exactly once with its anchor on the chain (the audit, which checks
/// every stored record's anchor, the log and the checkpoints, is clean), nothing is left
/// `sent` or `queued`, and no chain outlived its relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_under_load_nothing_acknowledged_is_lost() {
    use rand_core::{Rng as _, SeedableRng as _};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

    let dir = data_dir("crash");
    // One address across restarts, for the clients; on a loopback address of its own, so
    // that no other test's relay (on 127.0.0.1, port 0) can take the port while this relay
    // is down.
    let port = std::net::TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.2:{port}");
    let base = format!("http://{listen}");
    let (mut relay, _) = start_with(serve_on(&dir, &listen));

    // A nurse, enrolled by the first-run administrator.
    let mut seeded = rand_chacha::ChaCha20Rng::seed_from_u64(19);
    let nurse = mediblock_protocol::keys::Keypair::generate(&mut seeded);
    let uid = mediblock_protocol::ids::UserId::new("nurse.bo").unwrap();
    mediblock_relay::client::enrol(
        &base,
        &dir.join("admin.key"),
        &uid,
        "nurse",
        &nurse.public(),
    )
    .await
    .unwrap();
    let session = mediblock_relay::client::Session::sign_in(&base, &uid, &nurse)
        .await
        .unwrap();
    let info = session.get("/api/v1/info").await.unwrap();
    let template = session
        .get("/api/v1/templates/vital-signs/1")
        .await
        .unwrap();
    let load = Arc::new(Load {
        base: base.clone(),
        uid: uid.clone(),
        nurse,
        relay: serde_json::from_value(info["relay_keys"].clone()).unwrap(),
        template: serde_json::from_value(template).unwrap(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let progress = Arc::new(tokio::sync::Notify::new());
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (load, stop, acked, progress) =
                (load.clone(), stop.clone(), acked.clone(), progress.clone());
            tokio::spawn(async move { load.run(&stop, &acked, &progress).await })
        })
        .collect();

    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    for kill in 0..KILLS {
        // A seeded-random number of new acknowledgements, then SIGKILL.
        let target = acked.lock().unwrap().len() + 2 + (seeded.next_u32() % 9) as usize;
        while acked.lock().unwrap().len() < target {
            assert!(
                std::time::Instant::now() < deadline,
                "the load stalled at kill {kill}"
            );
            let _ = tokio::time::timeout(Duration::from_millis(500), progress.notified()).await;
        }
        let anvil = anvil_of(&relay);
        relay.kill().unwrap();
        relay.wait().unwrap();
        let listen = listen.clone();
        let dir2 = dir.clone();
        relay = tokio::task::spawn_blocking(move || start_with(serve_on(&dir2, &listen)).0)
            .await
            .unwrap();
        // The new chain started only once the old one let go of the state file.
        assert!(
            dead_or_dying(anvil),
            "anvil {anvil} outlived its relay (kill {kill})"
        );
    }
    stop.store(true, Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= KILLS * 2, "{} acknowledged", acked.len());

    let settle = std::time::Instant::now();
    // Every acknowledged record ends stored (the relay finishes what it accepted).
    let session = mediblock_relay::client::Session::sign_in(&base, &uid, &load.nurse)
        .await
        .unwrap();
    for tid in &acked {
        loop {
            let st = session
                .get(&format!("/api/v1/submissions/{}", tid.to_hex()))
                .await
                .unwrap();
            match st["state"].as_str() {
                Some("stored") => break,
                Some("queued" | "sent") => {
                    assert!(std::time::Instant::now() < deadline, "{tid} stuck: {st}");
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), progress.notified()).await;
                }
                other => {
                    // What the chain holds for the tid, to tell a lost anchor from a refusal.
                    let topic = format!("0x{}{}", tid.to_hex(), "0".repeat(32));
                    let logs = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs",
                        "params": [{"fromBlock": "0x0", "toBlock": "latest", "topics": [null, topic]}]});
                    let found = http(&listen, "POST", "/api/v1/chain", &logs.to_string());
                    panic!("{tid} ended {other:?}: {st}\nits events on chain: {found}");
                }
            }
        }
    }

    eprintln!(
        "{KILLS} kills, {} records acknowledged, all stored {:?} after the last restart",
        acked.len(),
        settle.elapsed()
    );
    // The audit: every stored record's anchor on the chain, every anchor in the store, the
    // dense log against the anchored checkpoints — clean.
    let admin = mediblock_relay::client::read_keys(&dir.join("admin.key")).unwrap();
    let admin = mediblock_relay::client::Session::sign_in(
        &base,
        &mediblock_protocol::ids::UserId::new("admin").unwrap(),
        &admin,
    )
    .await
    .unwrap();
    let report = admin.get("/api/v1/audit").await.unwrap();
    assert_eq!(report["clean"], true, "{report:#}");
    assert_eq!(report["findings"], serde_json::json!([]), "{report:#}");
    let stored = report["counts"]["records"].as_u64().unwrap_or_default();
    assert!(
        stored >= acked.len() as u64,
        "{stored} stored, {} acked: {report:#}",
        acked.len()
    );

    let anvil = anvil_of(&relay);
    relay.kill().unwrap();
    relay.wait().unwrap();
    let (mut last, _) = start_with(serve_on(&dir, &listen));
    assert!(dead_or_dying(anvil));
    last.kill().unwrap();
    last.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
