//! The clinicians' web app end to end, in a real headless Chromium driven by Playwright
//! (`tests/e2e/scenario.mjs`), against a real relay (HTTP app + anchoring worker) on SQLite
//! and a real anvil chain started here.
//!
//! Phase `admin-key`: the admin imports the relay's `admin.key` into the browser. Phase
//! `flow`: the admin enrols a nurse whose key was
//! created in her browser; she creates a patient, fills the vital-signs questionnaire and
//! sees "verified on chain" with the block number; an out-of-range value is flagged before
//! sending; a doctor with a wallet (an injected EIP-1193 provider backed by an anvil dev
//! account) submits through the wallet, and a refusal in the wallet is shown in words.
//! Between the phases this test sends an out-of-range record through the API anyway (the
//! relay rejects it and keeps it in the rejected audit) and flips a byte of a stored
//! record's envelope in the SQLite file. Phase `tampered`: the nurse's timeline shows that
//! record as TAMPERED and the others still verified; the admin sees the rejected record.
//! Then ATTACK 1 of issue 12: the relay's operator, with the relay's Ethereum key and store
//! and the honest worker stopped, anchors a signed record's tid and commitment with values
//! of its choosing and stores it as validated; phase `attack`: the chart shows it TAMPERED,
//! because the chain judged other values, and the honest records verified.
//! Screenshots of the main pages go to `$CARGO_TARGET_DIR/screenshots` (or
//! `target/screenshots`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use alloy::primitives::FixedBytes;
use alloy::providers::Provider as _;
use alloy::transports::http::reqwest;
use mediblock_protocol::encoding::Canonical as _;
use mediblock_protocol::envelope::Envelope;
use mediblock_protocol::generator::{on_chain_values, values_hash};
use mediblock_protocol::ids::{
    AttrName, ChainHash, EthAddress, PatientId, Role, Salt, TemplateRef, TemplateVersion, TxId,
    UnixMillis, UserId,
};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::record::{InitialTransaction, SignedInitialTransaction};
use mediblock_protocol::template::Template;
use mediblock_protocol::validated::{Ack, ValidatedTransaction, Verdict};
use mediblock_protocol::value::{Attributes, Value};
use mediblock_relay::chain::anvil::Anvil;
use mediblock_relay::chain::registry::{Anchor, MediBlockRegistry, Rule};
use mediblock_relay::chain::{Chain, registry, setup};
use mediblock_relay::checkpointer::{CheckpointPolicy, Checkpointer};
use mediblock_relay::keys::RelayKeys;
use mediblock_relay::store::Store;
use mediblock_relay::store::submissions::{Accepted, Mode, NewSubmission, Outcome};
use mediblock_relay::store::users::User;
use mediblock_relay::worker::Worker;
use mediblock_relay::{AppState, app};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng as _;
use serde_json::{Value as Json, json};

const DEMO_TEMPLATES: [&str; 4] = [
    include_str!("../../relay/templates/vital-signs.json"),
    include_str!("../../relay/templates/patient-profile.json"),
    include_str!("../../relay/templates/assessment.json"),
    mediblock_relay::erasure::TEMPLATE_JSON,
];

fn repo() -> PathBuf {
    mediblock_e2e::repo_root()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mediblock-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the screenshots of an earlier run, so every file checked below is this run's.
fn clear_screenshots() {
    for entry in std::fs::read_dir(screenshots_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "png") {
            std::fs::remove_file(path).unwrap();
        }
    }
}

/// Fails with the fix when a prerequisite of the browser test is missing.
fn prerequisites() {
    let pkg = repo().join("web/pkg/mediblock_client_wasm.js");
    let glue = std::fs::read_to_string(&pkg).unwrap_or_default();
    assert!(
        glue.contains("class Identity"),
        "{} is missing or predates the browser client's JS API: run `cargo xtask wasm` first",
        pkg.display()
    );
    assert!(
        repo()
            .join("tools/node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is not installed in tools/node_modules: run `cargo xtask setup`"
    );
    assert!(
        Command::new("node").arg("--version").output().is_ok(),
        "node is not on PATH"
    );
}

/// A relay (HTTP app + anchoring worker) on SQLite and a fresh anvil with the registry and
/// the demo templates, serving `web/` on a free localhost port.
struct Relay {
    url: String,
    db: PathBuf,
    anvil: Anvil,
    state: AppState,
    /// The honest anchoring worker's task.
    worker: tokio::task::JoinHandle<()>,
    admin: Keypair,
    admin_key_file: PathBuf,
    _dir: PathBuf,
}

impl Relay {
    /// The honest anchoring worker of this relay, woken by the API's `wake_worker`.
    fn honest_worker(&self) -> tokio::task::JoinHandle<()> {
        let mut worker = Worker::new(
            self.state.clone(),
            self.state.chain.clone().unwrap(),
            "browser-test".into(),
        );
        worker.notify = self.state.wake_worker.clone();
        tokio::spawn(worker.run())
    }
}

async fn start_relay() -> Relay {
    let dir = scratch("browser");
    let anvil = Anvil::start().unwrap();
    let provider = registry::provider(anvil.url(), anvil.signer(0));
    let address = setup::deploy_as_relay(&provider, anvil.address(0))
        .await
        .unwrap();
    let chain = Chain::connect(provider.clone(), address, 1)
        .await
        .unwrap()
        .for_relay(anvil.address(0))
        .await
        .unwrap()
        .with_cosigner(anvil.signer(0))
        // Browsers check the chain through the relay's read-only proxy, as on the embedded
        // default (never the signing node itself).
        .with_rpc_url(mediblock_relay::api::chain_rpc::PATH);

    let db = dir.join("mediblock.db");
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for text in DEMO_TEMPLATES {
        let template: Template = serde_json::from_str(text).unwrap();
        if template.reference().id.as_str() == "vital-signs" {
            // On chain, vital signs get a stricter heart-rate rule (20..=200) than the
            // template's (20..=250), so a heart rate of 220 passes the browser and the relay
            // and is anchored as rejected by the chain: the timeline's "rejected" badge.
            let mut rules = registry::rules_for(&template);
            rules[0] = Rule::range(20, 200);
            MediBlockRegistry::new(address, provider.clone())
                .registerTemplate(
                    FixedBytes(template.reference().id.chain_id()),
                    template.reference().version.get(),
                    FixedBytes(template.hash()),
                    rules,
                    alloy::primitives::Address::ZERO,
                )
                .send()
                .await
                .unwrap()
                .get_receipt()
                .await
                .unwrap();
        } else {
            setup::register_template(&provider, address, &template)
                .await
                .unwrap();
        }
        store
            .insert_template(&template, UnixMillis(1))
            .await
            .unwrap();
    }
    // The first-run administrator, with its key in the relay's `admin.key` format.
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let admin = Keypair::generate(&mut rng);
    let admin_key_file = dir.join("admin.key");
    std::fs::write(&admin_key_file, hex::encode(admin.to_seeds().as_ref())).unwrap();
    store
        .insert_user(&User {
            uid: UserId::new("admin").unwrap(),
            role: Role::Admin,
            keys: admin.public(),
            eth_address: None,
            enrolled_at: mediblock_relay::now(),
            revoked_at: None,
        })
        .await
        .unwrap();

    let keys = RelayKeys::new(Keypair::generate(&mut rng), &Keypair::generate(&mut rng)).unwrap();
    let state = AppState {
        store,
        keys: Arc::new(keys),
        web_dir: repo().join("web"),
        metrics: Default::default(),
        chain: Some(chain.clone()),
        wake_worker: Default::default(),
        audit_slot: Default::default(),
        limits: Default::default(),
        events: tokio::sync::broadcast::channel(1024).0,
        session_ttl_ms: 60 * 60 * 1000,
    };
    let worker = Worker::new(state.clone(), chain, "browser-test".into());
    let state = AppState {
        wake_worker: worker.notify.clone(),
        audit_slot: Default::default(),
        ..state
    };
    let worker = tokio::spawn(worker.run());
    // Checkpoints after every leaf, so a record's proof file is available at once.
    let checkpointer = Checkpointer::new(
        state.clone(),
        state.chain.clone().unwrap(),
        CheckpointPolicy {
            every_leaves: 1,
            max_delay: std::time::Duration::from_secs(1),
        },
        "browser-test".into(),
    );
    tokio::spawn(checkpointer.run());
    tokio::spawn(mediblock_relay::erasure::run(state.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = app(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Relay {
        url,
        db,
        anvil,
        state,
        worker,
        admin,
        admin_key_file,
        _dir: dir,
    }
}

/// Runs one phase of the Playwright scenario and returns its JSON result (the last line of
/// its standard output). Its log goes to this test's standard error.
async fn scenario(phase: &str, relay: &Relay, profiles: &Path, extra: &Json) -> Json {
    let args = json!({
        "phase": phase,
        "relay": relay.url,
        "rpc": relay.anvil.url().to_string(),
        "adminKeyFile": relay.admin_key_file,
        "walletAddress": relay.anvil.address(1).to_string(),
        "profiles": profiles,
        "screenshots": screenshots_dir(),
        "extra": extra,
    });
    let script = repo().join("tests/e2e/scenario.mjs");
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .arg(args.to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().rev().find(|l| l.starts_with('{'));
    let result: Json = last
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("phase {phase} printed no result:\n{stdout}"));
    assert!(
        out.status.success() && result["ok"] == json!(true),
        "phase {phase} failed: {}",
        serde_json::to_string_pretty(&result).unwrap()
    );
    result
}

/// A relay API call with a bearer token; returns the status and the JSON body.
async fn api(
    relay: &Relay,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
) -> (u16, Json) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}/api/v1{path}", relay.url))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Json::String(text)),
    )
}

/// A ticket for `token`'s user (`POST /api/v1/tickets`): what a tid starts with.
async fn ticket(relay: &Relay, token: &str) -> u64 {
    let (status, body) = api(relay, token, reqwest::Method::POST, "/tickets", None).await;
    assert_eq!(status, 201, "{body}");
    body["ticket"].as_str().unwrap().parse().unwrap()
}

/// Signs in as `uid` with `keys` (the same challenge/session exchange as the CLI).
async fn sign_in(relay: &Relay, uid: &str, keys: &Keypair) -> String {
    let ch = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/challenge", relay.url))
        .json(&json!({"uid": uid}))
        .send()
        .await
        .unwrap()
        .json::<Json>()
        .await
        .unwrap();
    let mut nonce = [0u8; 32];
    hex::decode_to_slice(ch["challenge"].as_str().unwrap(), &mut nonce).unwrap();
    let signature = keys.sign(&mediblock_protocol::auth::sign_in_message(
        &nonce,
        &UserId::new(uid).unwrap(),
    ));
    let s = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/session", relay.url))
        .json(
            &json!({"uid": uid, "challenge": ch["challenge"], "signature": hex::encode(signature)}),
        )
        .send()
        .await
        .unwrap()
        .json::<Json>()
        .await
        .unwrap();
    s["token"].as_str().expect("signed in").to_owned()
}

/// A clinician whose keys live in this test (not in a browser), enrolled directly in the
/// store as `nurse.api`, who submits records through the API.
struct ApiNurse {
    keys: Keypair,
    token: String,
    rng: ChaCha20Rng,
}

impl ApiNurse {
    async fn enrol(relay: &Relay) -> Self {
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let keys = Keypair::generate(&mut rng);
        relay
            .state
            .store
            .insert_user(&User {
                uid: UserId::new("nurse.api").unwrap(),
                role: Role::Nurse,
                keys: keys.public(),
                eth_address: None,
                enrolled_at: mediblock_relay::now(),
                revoked_at: None,
            })
            .await
            .unwrap();
        let token = sign_in(relay, "nurse.api", &keys).await;
        Self { keys, token, rng }
    }

    /// Signs vital signs with this heart rate for `pid` under a fresh ticket the relay issued
    /// to this nurse: the record as its author signed it, not sent anywhere.
    async fn sign_vitals(
        &mut self,
        relay: &Relay,
        pid: PatientId,
        heart_rate: i64,
    ) -> SignedInitialTransaction {
        let name = |s: &str| AttrName::new(s).unwrap();
        let attributes: Attributes = [
            (name("heart_rate"), Value::Integer(heart_rate)),
            (name("systolic"), Value::Integer(120)),
            (name("temperature"), Value::Integer(368)),
        ]
        .into_iter()
        .collect();
        let ticket = ticket(relay, &self.token).await;
        InitialTransaction {
            tid: TxId::for_ticket(ticket, &mut self.rng),
            uid: UserId::new("nurse.api").unwrap(),
            pid,
            template: TemplateRef {
                id: "vital-signs".parse().unwrap(),
                version: TemplateVersion::new(1).unwrap(),
            },
            attributes,
            created_at: mediblock_relay::now(),
            salt: Salt::random(&mut self.rng),
            prev: None,
        }
        .sign(&self.keys)
    }

    /// Seals vital signs with this heart rate for `pid` and posts them: the status, the
    /// relay's answer and the record's tid.
    async fn send_vitals(
        &mut self,
        relay: &Relay,
        pid: PatientId,
        heart_rate: i64,
    ) -> (u16, Json, TxId) {
        let signed = self.sign_vitals(relay, pid, heart_rate).await;
        let tid = signed.ti().tid;
        let sealed = signed
            .seal(&self.keys, &relay.state.keys.relay.public(), &mut self.rng)
            .unwrap();
        let (status, body) = api(
            relay,
            &self.token,
            reqwest::Method::POST,
            "/submissions",
            Some(serde_json::to_string(&sealed).unwrap()),
        )
        .await;
        (status, body, tid)
    }

    /// Sends a valid record for `pid` and waits (polling its status, with a deadline) until
    /// the relay has anchored and stored it.
    async fn send_stored(&mut self, relay: &Relay, pid: PatientId) -> TxId {
        let (status, body, tid) = self.send_vitals(relay, pid, 72).await;
        assert_eq!(status, 202, "{body}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (_, sub) = api(
                relay,
                &self.token,
                reqwest::Method::GET,
                &format!("/submissions/{tid}"),
                None,
            )
            .await;
            if sub["state"] == "stored" {
                return tid;
            }
            assert!(std::time::Instant::now() < deadline, "never stored: {sub}");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// The API nurse sends an out-of-range record through the API anyway: the relay refuses it
/// with every violation and keeps it in the rejected-records audit.
async fn send_out_of_range_anyway(nurse: &mut ApiNurse, relay: &Relay, pid: PatientId) -> TxId {
    let (status, body, tid) = nurse.send_vitals(relay, pid, 400).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "rule_violation", "{body}");
    let details = body["details"].as_array().expect("violations listed");
    assert!(
        details
            .iter()
            .any(|v| v["attribute"] == "heart_rate" && v["rule"] == "above_max"),
        "{body}"
    );
    tid
}

/// The administrator lawfully erases stored record `tid` of patient `pid` through the API
/// (a signed erasure record, anchored), and this waits until its content is destroyed.
async fn erase_lawfully(relay: &Relay, pid: PatientId, tid: &TxId) {
    let mut rng = ChaCha20Rng::from_seed([11; 32]);
    let name = |s: &str| AttrName::new(s).unwrap();
    let token = sign_in(relay, "admin", &relay.admin).await;
    let ticket = ticket(relay, &token).await;
    let ti = InitialTransaction {
        tid: TxId::for_ticket(ticket, &mut rng),
        uid: UserId::new("admin").unwrap(),
        pid,
        template: TemplateRef {
            id: "erasure".parse().unwrap(),
            version: TemplateVersion::new(1).unwrap(),
        },
        attributes: [
            (name("erased_tid"), Value::Text(tid.to_hex())),
            (name("reason"), Value::Enum("patient_request".into())),
        ]
        .into_iter()
        .collect(),
        created_at: mediblock_relay::now(),
        salt: Salt::random(&mut rng),
        prev: None,
    };
    let sealed = ti
        .sign(&relay.admin)
        .seal(&relay.admin, &relay.state.keys.relay.public(), &mut rng)
        .unwrap();
    let (status, body) = api(
        relay,
        &token,
        reqwest::Method::POST,
        &format!("/records/{tid}/erasure"),
        Some(serde_json::to_string(&sealed).unwrap()),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while relay
        .state
        .store
        .audit_record(tid.as_bytes())
        .await
        .unwrap()
        .is_none_or(|row| row.erased_by.is_none())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the erasure never applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Destroys a stored record's content and marks it "erased" by a record that does not
/// exist, as an intruder hiding a deletion might.
async fn fake_erasure(db: &Path, tid: &TxId) {
    change_record(
        db,
        "UPDATE records SET envelope = x'', erased_by = $1, erased_at = 1 WHERE tid = $2",
        vec![0x42; 16],
        tid.as_bytes(),
    )
    .await;
}

/// Runs one `UPDATE records … $1 … WHERE tid = $2` on the relay's SQLite file directly, as
/// someone with write access to the database might, and checks it changed one row.
async fn change_record(db: &Path, update: &'static str, value: Vec<u8>, tid: &[u8]) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let changed = sqlx::query(update)
        .bind(value)
        .bind(tid.to_vec())
        .execute(&mut conn)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1, "{update}");
    conn.close().await.unwrap();
}

/// Files a stored record under another patient.
async fn move_record(db: &Path, tid: &TxId, to: &str) {
    change_record(
        db,
        "UPDATE records SET pid = $1 WHERE tid = $2",
        hex::decode(to).unwrap(),
        tid.as_bytes(),
    )
    .await;
}

/// Overwrites the commitment a stored record's row claims (its sealed content unchanged), as
/// someone relabelling rows in the database might.
async fn change_commitment(db: &Path, tid: &str) {
    change_record(
        db,
        "UPDATE records SET commitment = $1 WHERE tid = $2",
        vec![0x5a; 32],
        &hex::decode(tid).unwrap(),
    )
    .await;
}

/// Flips one byte in the middle of a stored record's sealed envelope.
async fn tamper_with_record(db: &Path, tid: &str) {
    use sqlx::Connection as _;
    let tid = hex::decode(tid).unwrap();
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (mut envelope,): (Vec<u8>,) = sqlx::query_as("SELECT envelope FROM records WHERE tid = $1")
        .bind(&tid)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let middle = envelope.len() / 2;
    envelope[middle] ^= 0x01;
    change_record(
        db,
        "UPDATE records SET envelope = $1 WHERE tid = $2",
        envelope,
        &tid,
    )
    .await;
}

/// ATTACK 1 of issue 12, as the relay's operator would do it: with the relay's Ethereum key
/// (anvil account 0) and its store, and the honest anchoring worker stopped (it refuses to
/// store a record anchored with other values than its own). The API nurse signs vital signs
/// for `pid` with a heart rate of 220, which the chain's rule (20..=200) rejects; the
/// operator anchors the record's tid and commitment in the relay's log with a heart rate of
/// 72 instead, which the chain accepts, and stores the signed record, sealed under the
/// relay's at-rest key, as validated with that anchor's acknowledgement — what a malicious
/// worker would do. Returns the record's tid and the values hash of its own on-chain values.
async fn anchor_with_other_values(
    relay: &mut Relay,
    nurse: &mut ApiNurse,
    pid: PatientId,
) -> (TxId, String) {
    let signed = nurse.sign_vitals(relay, pid, 220).await;
    let ti = signed.ti().clone();
    let keys = &relay.state.keys;
    let store = &relay.state.store;
    let chain = relay.state.chain.clone().unwrap();
    let mut rng = ChaCha20Rng::from_seed([13; 32]);

    // The malicious worker replaces the honest one.
    relay.worker.abort();
    assert!(
        (&mut relay.worker).await.unwrap_err().is_cancelled(),
        "the honest worker did not stop"
    );

    // Queued as the API would (the ticket bound, the next leaf of the log)…
    let template = store
        .template(&ti.template.id, ti.template.version)
        .await
        .unwrap()
        .unwrap();
    let honest = on_chain_values(&signed, &template).unwrap();
    assert_eq!(honest, [220, 120, 368]);
    let mut falsified = honest.clone();
    falsified[0] = 72;
    let sealed_ti = Envelope::seal(
        &keys.at_rest,
        ti.tid.as_bytes(),
        &signed.to_canonical_bytes(),
        &mut rng,
    )
    .unwrap()
    .to_canonical_bytes();
    let accepted = store
        .accept(&NewSubmission {
            tid: ti.tid,
            uid: ti.uid.clone(),
            pid: ti.pid,
            template: ti.template.clone(),
            commitment: signed.commitment(),
            mode: Mode::PerRecord,
            sealed_ti,
            now: mediblock_relay::now(),
        })
        .await
        .unwrap();
    assert!(matches!(accepted, Accepted::New { .. }), "{accepted:?}");

    // …anchored with the relay's key, the record's tid and commitment, other values…
    let handle = chain
        .template_handle(ti.template.id.chain_id(), ti.template.version.get())
        .await
        .unwrap()
        .unwrap();
    let anchor = Anchor {
        tid: *ti.tid.as_bytes(),
        commitment: *signed.commitment().as_bytes(),
        handle,
        values: falsified,
    };
    let tx_hash = chain.send_anchor(&anchor).await.unwrap();
    let receipt = alloy::providers::PendingTransactionBuilder::new(
        chain.provider().root().clone(),
        alloy::primitives::B256::from(tx_hash),
    )
    .get_receipt()
    .await
    .unwrap();
    let anchored = chain.anchored_in(&receipt, ti.tid.as_bytes()).unwrap();
    // The chain judged the falsified values, valid, in the relay's log.
    assert_eq!(anchored.record.verdict, registry::Verdict::Valid);
    assert_eq!(anchored.record.log, chain.log());
    assert_eq!(anchored.record.commitment, *signed.commitment().as_bytes());
    assert_eq!(anchored.record.values_hash, anchor.values_hash());
    assert_ne!(anchored.record.values_hash, values_hash(&honest));

    // …and stored as validated with that anchor's acknowledgement.
    let validated = ValidatedTransaction {
        signed,
        ack: Ack {
            verdict: Verdict::Valid,
            chain_id: chain.chain_id(),
            contract: EthAddress::from_bytes(chain.registry().0.0),
            tx_hash: ChainHash::from_bytes(anchored.tx_hash),
            block_number: anchored.block_number,
            block_hash: ChainHash::from_bytes(anchored.block_hash),
            log_index: anchored.log_index,
            batch: None,
        },
    };
    let sealed = validated
        .seal_at_rest(&keys.at_rest, &mut rng)
        .unwrap()
        .to_canonical_bytes();
    let sub = store.submission(&ti.tid).await.unwrap().unwrap();
    let stored = store
        .complete(
            &sub,
            &Outcome::Stored,
            &anchored.tx_hash,
            anchored.block_number,
            &keys.at_rest.id(),
            &sealed,
            mediblock_relay::now(),
        )
        .await
        .unwrap();
    assert!(stored, "the falsified record was not stored");
    relay.worker = relay.honest_worker();

    // The relay now says the record is stored, anchored in that block.
    let (status, sub) = api(
        relay,
        &nurse.token,
        reqwest::Method::GET,
        &format!("/submissions/{}", ti.tid),
        None,
    )
    .await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["state"], "stored", "{sub}");
    assert_eq!(sub["block_number"].as_u64(), Some(anchored.block_number));
    (ti.tid, hex::encode(values_hash(&honest)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinicians_web_app_end_to_end() {
    prerequisites();
    clear_screenshots();
    let mut relay = start_relay().await;
    let profiles = scratch("browser-profiles");

    // What the pages need to check anchors on chain themselves.
    let info: Json = reqwest::get(format!("{}/api/v1/info", relay.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chain = relay.state.chain.as_ref().unwrap();
    assert_eq!(info["chain_id"].as_u64(), Some(chain.chain_id()), "{info}");
    assert_eq!(info["registry"], chain.registry().to_string(), "{info}");
    assert_eq!(
        info["rpc_url"],
        mediblock_relay::api::chain_rpc::PATH,
        "{info}"
    );
    // The relay's log on the registry: a tid is unique only within it.
    assert_eq!(info["log"].as_u64(), Some(u64::from(chain.log())), "{info}");
    assert!(chain.log() >= 1, "{info}");

    // Phase 0: the administrator imports the relay's first-run `admin.key` into the browser
    // (kept there under a passphrase) and is signed in; a file that is no key is refused.
    let admin_key = scenario("admin-key", &relay, &profiles, &json!({})).await;
    assert_eq!(admin_key["adminMe"], "admin", "{admin_key}");
    let refusal = admin_key["badKeyFile"].as_str().unwrap_or_default();
    assert!(refusal.contains("not a MediBlock key file"), "{admin_key}");

    // Phase 1: enrolment, a patient, vital signs verified on chain, the wallet path.
    let flow = scenario("flow", &relay, &profiles, &json!({})).await;
    eprintln!("flow: {flow:#}");
    let pid = flow["pid"].as_str().expect("patient id").to_owned();
    let tid = flow["vitalsTid"]
        .as_str()
        .expect("vital signs tid")
        .to_owned();
    let shown_block = flow["vitalsBlock"].as_u64().expect("block shown");
    // Flagged before sending, in words, with the template's limit.
    let flagged = flow["violationShown"].as_str().unwrap_or_default();
    assert!(flagged.contains("250"), "{flagged}");
    assert!(
        flow["notSent"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Not sent")
    );
    // A used ticket (the page was handed one on purpose): the relay said 409 ticket_used,
    // and the page took a fresh ticket, sealed again and was accepted.
    assert_eq!(
        flow["ticketRetry"]["submissionStatuses"],
        serde_json::json!([409, 202]),
        "{}",
        flow["ticketRetry"]
    );
    // The wallet's refusal, in words.
    let refusal = flow["refusalMessage"].as_str().unwrap_or_default();
    assert!(refusal.contains("declined"), "{refusal}");
    let network = flow["wrongNetworkMessage"].as_str().unwrap_or_default();
    assert!(network.contains("Switch the network"), "{network}");
    // The proof file the record page downloaded is this record's.
    let proof: Json = serde_json::from_str(flow["proof"].as_str().expect("proof downloaded"))
        .expect("the proof file is JSON");
    assert!(proof.to_string().contains(&tid), "{proof}");

    // The block the page showed is the block the relay recorded and the chain holds.
    let token = sign_in(&relay, "admin", &relay.admin).await;
    let (status, sub) = api(
        &relay,
        &token,
        reqwest::Method::GET,
        &format!("/submissions/{tid}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{sub}");
    assert_eq!(sub["state"], "stored", "{sub}");
    assert_eq!(sub["block_number"].as_u64(), Some(shown_block), "{sub}");
    let head = relay
        .state
        .chain
        .as_ref()
        .unwrap()
        .provider()
        .get_block_number()
        .await
        .unwrap();
    assert!(shown_block <= head);

    // The registry pin: the browser checks against the registry it trusts, not the one the
    // relay announces.
    let pin = &flow["registryPin"];
    let registry = relay.state.chain.as_ref().unwrap().registry().to_string();
    let verified = format!("Verified on chain · block {shown_block}");
    assert!(pin["pinBefore"].is_null(), "{pin}");
    assert!(
        pin["noteBefore"]
            .as_str()
            .unwrap_or_default()
            .contains("announced by the relay, not pinned"),
        "{pin}"
    );
    // Trusting the announced registry: still verified, no warning.
    assert!(
        pin["pinnedAfterTrust"]["registry"]
            .as_str()
            .unwrap_or_default()
            .eq_ignore_ascii_case(&registry),
        "{pin}"
    );
    assert_eq!(pin["pinnedAfterTrust"]["chain_id"], 31337, "{pin}");
    assert_eq!(pin["pinnedAfterTrust"]["log"], info["log"], "{pin}");
    assert!(
        pin["noteTrusted"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("log {}", info["log"])),
        "{pin}"
    );
    assert_eq!(pin["trusted"]["status"], "verified", "{pin}");
    assert_eq!(pin["trusted"]["badge"], verified.as_str(), "{pin}");
    assert_eq!(pin["warningWhenTrusted"], 0, "{pin}");
    // A malformed pin is refused in words and changes nothing.
    assert_eq!(pin["invalidMarked"], true, "{pin}");
    assert_eq!(pin["pinAfterInvalid"], pin["pinnedAfterTrust"], "{pin}");
    // Another registry pinned: a warning on every page, and the record is not verified.
    let warning = pin["warning"].as_str().unwrap_or_default();
    assert!(warning.contains("not the registry you trust"), "{pin}");
    assert_eq!(pin["warningOnPatients"], true, "{pin}");
    assert_ne!(pin["other"]["status"], "verified", "{pin}");
    // An empty registry that exists pinned (what a lying relay's own registry looks like
    // from the other side): TAMPERED.
    assert_eq!(pin["emptyRegistry"]["status"], "tampered", "{pin}");
    assert_eq!(pin["emptyRegistry"]["badge"], "TAMPERED", "{pin}");
    // The relay's own registry, but another log pinned: the record's anchor is not in that
    // log, so it is TAMPERED, and the page says which log it checked.
    assert_eq!(
        pin["pinnedOtherLog"]["log"].as_u64(),
        info["log"].as_u64().map(|l| l + 1),
        "{pin}"
    );
    assert_eq!(pin["otherLog"]["status"], "tampered", "{pin}");
    assert_eq!(pin["otherLog"]["badge"], "TAMPERED", "{pin}");
    let other_log = pin["otherLog"]["detail"].as_str().unwrap_or_default();
    let log2 = format!("log {}", info["log"].as_u64().unwrap() + 1);
    assert!(
        other_log.contains(&format!("no anchor for this record in {log2}")),
        "{pin}"
    );
    // Cleared: verified again.
    assert_eq!(pin["cleared"]["status"], "verified", "{pin}");
    assert_eq!(pin["cleared"]["badge"], verified.as_str(), "{pin}");
    assert!(pin["pinAfterClear"].is_null(), "{pin}");

    // The wallet path's record was sent by the wallet's account, not the relay's.
    let wallet_tid = flow["walletTid"].as_str().expect("wallet tid");
    let (_, wsub) = api(
        &relay,
        &token,
        reqwest::Method::GET,
        &format!("/submissions/{wallet_tid}"),
        None,
    )
    .await;
    assert_eq!(wsub["state"], "stored", "{wsub}");
    let tx_hash: alloy::primitives::B256 = format!("0x{}", wsub["tx_hash"].as_str().unwrap())
        .parse()
        .unwrap();
    let chain = relay.state.chain.as_ref().unwrap();
    let receipt = chain
        .provider()
        .get_transaction_receipt(tx_hash)
        .await
        .unwrap()
        .expect("the wallet's transaction is on chain");
    assert_eq!(receipt.from, relay.anvil.address(1), "sent by the wallet");
    assert_eq!(receipt.to, Some(chain.registry()));

    // Between the phases: an out-of-range record sent anyway, and a record changed in the
    // database.
    let mut api_nurse = ApiNurse::enrol(&relay).await;
    let rejected_tid = send_out_of_range_anyway(&mut api_nurse, &relay, pid.parse().unwrap()).await;
    tamper_with_record(&relay.db, &tid).await;
    change_commitment(&relay.db, wallet_tid).await;
    // A record of the wallet doctor's patient, filed under the nurse's patient instead.
    let wallet_pid: PatientId = flow["walletPid"].as_str().unwrap().parse().unwrap();
    let moved_tid = api_nurse.send_stored(&relay, wallet_pid).await;
    move_record(&relay.db, &moved_tid, &pid).await;
    // Two more of the nurse's patient's records: one lawfully erased by the administrator,
    // one "erased" by an intruder in the database.
    let ada: PatientId = pid.parse().unwrap();
    let erased_tid = api_nurse.send_stored(&relay, ada).await;
    let fake_tid = api_nurse.send_stored(&relay, ada).await;
    erase_lawfully(&relay, ada, &erased_tid).await;
    fake_erasure(&relay.db, &fake_tid).await;

    // Phase 2: the change shows as TAMPERED; the rejected record is in the admin's audit.
    let checked = scenario(
        "tampered",
        &relay,
        &profiles,
        &json!({
            "pid": pid,
            "tamperedTid": tid,
            "rejectedTid": rejected_tid.to_string(),
            "chainRejectedTid": flow["chainRejectedTid"],
            "walletPid": flow["walletPid"],
            "relabelledTid": wallet_tid,
            "movedTid": moved_tid.to_string(),
            "erasedTid": erased_tid.to_string(),
            "fakeErasedTid": fake_tid.to_string(),
        }),
    )
    .await;
    eprintln!("tampered: {checked:#}");
    assert_eq!(checked["tamperedStatus"], "tampered", "{checked}");
    assert_eq!(checked["listFlag"], "TAMPERED", "{checked}");
    assert_eq!(checked["relabelledStatus"], "tampered", "{checked}");
    assert_eq!(checked["movedStatus"], "tampered", "{checked}");
    let moved = checked["movedDetail"].as_str().unwrap_or_default();
    assert!(moved.contains("another patient"), "{checked}");
    assert_eq!(checked["erasedStatus"], "erased", "{checked}");
    assert_eq!(checked["fakeErasedStatus"], "tampered", "{checked}");
    let fake = checked["fakeErasedDetail"].as_str().unwrap_or_default();
    assert!(fake.contains("marks this record as erased"), "{checked}");
    assert!(checked["verifiedCount"].as_u64().unwrap() >= 1, "{checked}");

    // ATTACK 1: the relay's operator anchors a record of the nurse's patient with other
    // values than it holds (valid on chain) and stores it as validated. One honest record of
    // the same patient is sent first, the honest way.
    let honest_tid = api_nurse.send_stored(&relay, ada).await;
    let (attack_tid, record_values) =
        anchor_with_other_values(&mut relay, &mut api_nurse, ada).await;
    let attacked = scenario(
        "attack",
        &relay,
        &profiles,
        &json!({
            "pid": pid,
            "attackTid": attack_tid.to_string(),
            "honestTid": honest_tid.to_string(),
        }),
    )
    .await;
    eprintln!("attack: {attacked:#}");
    let verdict_elsewhere =
        "The chain judged other values than this record's: its verdict is not about this record.";
    assert_eq!(attacked["attack"]["status"], "tampered", "{attacked}");
    assert_eq!(attacked["attack"]["badge"], "TAMPERED", "{attacked}");
    assert_eq!(
        attacked["attack"]["detail"], verdict_elsewhere,
        "{attacked}"
    );
    assert_eq!(
        attacked["attackCheckDetail"], verdict_elsewhere,
        "{attacked}"
    );
    // The chart shows the values the author signed (220 bpm), not the chain's.
    let summary = attacked["attackSummary"].as_str().unwrap_or_default();
    assert!(summary.contains("Heart rate: 220 bpm"), "{attacked}");
    // The detail page names the record's own values hash and the other one the chain judged.
    let facts = attacked["attackFacts"].as_str().unwrap_or_default();
    assert!(facts.contains(&record_values), "{attacked}");
    let chain_values = hex::encode(values_hash(&[72, 120, 368]));
    assert!(facts.contains(&chain_values), "{attacked}");
    // The patient's honest records stay verified.
    assert_eq!(attacked["honest"]["status"], "verified", "{attacked}");
    let honest_badge = attacked["honest"]["badge"].as_str().unwrap_or_default();
    assert!(
        honest_badge.starts_with("Verified on chain · block "),
        "{attacked}"
    );
    assert!(
        attacked["verifiedCount"].as_u64().unwrap() >= 2,
        "{attacked}"
    );

    for shot in [
        "admin-users",
        "enrolment",
        "new-patient",
        "patient",
        "violation",
        "record-detail",
        "wallet-summary",
        "tampered",
        "rejected",
        "templates",
        "patients",
        "sign-in",
        "wallet-refused",
        "pending",
        "rejected-on-chain",
        "tampered-commitment",
        "registry-announced",
        "registry-pinned",
        "registry-invalid",
        "registry-warning",
        "registry-other-tampered",
        "registry-other-log",
        "registry-cleared",
        "attack-values",
        "attack-values-detail",
    ] {
        let file = screenshots_dir().join(format!("{shot}.png"));
        assert!(file.exists(), "screenshot {} missing", file.display());
    }
    std::fs::remove_dir_all(&profiles).ok();
}
