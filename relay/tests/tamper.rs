//! The randomized tamper suite, on SQLite and on PostgreSQL: more than a thousand records go
//! through the real relay (HTTP app, worker, anvil) — several patients with previous-record
//! chains, two templates, some refused by the relay's rules and some rejected by the chain's
//! stricter rule — and a checkpoint of the log is anchored. The audit of the untouched store
//! finds nothing. A lawful erasure is then reported as `erased` only. Then random attacks of
//! every kind are applied directly in the database with a seeded RNG, and the audit must
//! report exactly the expected (kind, record) pairs and nothing else.
//!
//! The seed is printed; `MEDIBLOCK_TAMPER_SEED=<n>` replays a run. `MEDIBLOCK_TAMPER_RECORDS`
//! changes the number of records (default 1,050), `MEDIBLOCK_TAMPER_ATTACKS` the number of
//! random attacks beyond one of each kind (default 16).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "support/postgres.rs"]
mod postgres;

#[path = "support/http.rs"]
mod http;

#[path = "support/relay.rs"]
mod support;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, FixedBytes};
use axum::Router;
use axum::http::StatusCode;
use http::{call, get, post, sign_in};
use mediblock_protocol::encoding::Canonical as _;
use mediblock_protocol::ids::{
    AttrName, Commitment, PatientId, Role, Salt, TemplateRef, TemplateVersion, TxId, UnixMillis,
    UserId,
};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::merkle::{Keccak256Tree, TreeHasher as _, root};
use mediblock_protocol::record::InitialTransaction;
use mediblock_protocol::template::Template;
use mediblock_protocol::validated::ValidatedTransaction;
use mediblock_protocol::value::{Attributes, Value};
use mediblock_relay::audit::{Kind, Report, Scope};
use mediblock_relay::chain::anvil::Anvil;
use mediblock_relay::chain::registry::{self, MediBlockRegistry, Rule};
use mediblock_relay::chain::{Chain, setup};
use mediblock_relay::store::Store;
use mediblock_relay::worker::Worker;
use mediblock_relay::{AppState, app};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng};
use sqlx::AnyPool;

const VITALS: &str = include_str!("../templates/vital-signs.json");
const ASSESSMENT: &str = include_str!("../templates/assessment.json");

#[derive(Debug, Clone, Copy)]
enum Db {
    Sqlite,
    Postgres,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tamper_suite_on_sqlite() {
    tamper_suite(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tamper_suite_on_postgres() {
    tamper_suite(Db::Postgres).await;
}

/// A chain reorganisation that drops a stored record's anchor (anvil's snapshot and revert)
/// is reported as `reorged` for that record, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_that_drops_an_anchor_is_reported() {
    use alloy::providers::Provider as _;
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let r = relay(Db::Sqlite, &mut rng).await;
    let store = r.state.store.clone();
    let provider = r.state.chain.as_ref().unwrap().provider().clone();
    let pid = PatientId::random(&mut rng);
    let attributes = assessment(&mut rng);
    let (_, first, _) = r
        .submit(&mut rng, false, pid, None, attributes, "assessment")
        .await;
    until(Duration::from_secs(60), "the first record", || {
        let store = store.clone();
        async move { store.queue_depth().await.unwrap() == 0 }
    })
    .await;
    let snapshot: alloy::primitives::U256 = provider
        .raw_request("evm_snapshot".into(), ())
        .await
        .unwrap();
    let attributes = assessment(&mut rng);
    let (dropped, _, _) = r
        .submit(&mut rng, false, pid, Some(first), attributes, "assessment")
        .await;
    until(Duration::from_secs(60), "the second record", || {
        let store = store.clone();
        async move { store.queue_depth().await.unwrap() == 0 }
    })
    .await;
    assert!(r.audit(Scope::default()).await.findings.is_empty());
    let reverted: bool = provider
        .raw_request("evm_revert".into(), (snapshot,))
        .await
        .unwrap();
    assert!(reverted);
    for _ in 0..3 {
        let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    }
    let report = r.audit(Scope::default()).await;
    let expected: BTreeSet<(Kind, String)> =
        [(Kind::Reorged, dropped.to_hex())].into_iter().collect();
    assert_eq!(pairs(&report), expected, "{:#?}", report.findings);
    assert_eq!(
        report.findings[0].severity,
        mediblock_relay::audit::Severity::Problem
    );
    assert!(!report.clean);
}

/// What the suite knows about one record it submitted.
#[derive(Debug, Clone)]
struct Sent {
    tid: TxId,
    pid: PatientId,
    /// `valid`, `chain` (rejected by the chain) or `relay` (refused before the log).
    outcome: &'static str,
}

struct Relay {
    app: Router,
    state: AppState,
    url: String,
    nurse: Keypair,
    doctor: Keypair,
    admin: Keypair,
    nurse_token: String,
    doctor_token: String,
    admin_token: String,
    relay_public: mediblock_protocol::keys::PublicKeys,
    _anvil: Anvil,
}

fn db_url(db: Db) -> String {
    match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join(format!(
                "mediblock-tamper-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            format!("sqlite://{}", dir.join("store.db").display())
        }
        Db::Postgres => postgres::shared().fresh_database().unwrap(),
    }
}

/// A relay on a fresh database and a fresh anvil. Vital signs are registered on chain with a
/// stricter heart-rate rule (20..=100) than the relay's (20..=250): 150 passes the relay and
/// is anchored as rejected; 300 is refused by the relay.
async fn relay(db: Db, rng: &mut ChaCha20Rng) -> Relay {
    let anvil = Anvil::start().unwrap();
    let provider = registry::provider(anvil.url(), anvil.signer(0));
    let address = setup::deploy_as_relay(&provider, anvil.address(0))
        .await
        .unwrap();
    let vitals: Template = serde_json::from_str(VITALS).unwrap();
    let assessment: Template = serde_json::from_str(ASSESSMENT).unwrap();
    let erasure: Template = serde_json::from_str(mediblock_relay::erasure::TEMPLATE_JSON).unwrap();
    let mut rules = registry::rules_for(&vitals);
    rules[0] = Rule::range(20, 100);
    MediBlockRegistry::new(address, provider.clone())
        .registerTemplate(
            FixedBytes(vitals.reference().id.chain_id()),
            1,
            FixedBytes(vitals.hash()),
            rules,
            Address::ZERO,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    setup::register_template(&provider, address, &assessment)
        .await
        .unwrap();
    setup::register_template(&provider, address, &erasure)
        .await
        .unwrap();
    let chain = Chain::connect(provider, address, 1)
        .await
        .unwrap()
        .for_relay(anvil.address(0))
        .await
        .unwrap();
    let url = db_url(db);
    let store = Store::open(&url).await.unwrap();
    for t in [&vitals, &assessment, &erasure] {
        store.insert_template(t, UnixMillis(1)).await.unwrap();
    }
    let nurse = Keypair::generate(rng);
    let doctor = Keypair::generate(rng);
    let admin = Keypair::generate(rng);
    let auditor = Keypair::generate(rng);
    support::enrol(&store, "nurse.bo", Role::Nurse, &nurse).await;
    support::enrol(&store, "dr.wu", Role::Doctor, &doctor).await;
    support::enrol(&store, "admin", Role::Admin, &admin).await;
    support::enrol(&store, "auditor.li", Role::Auditor, &auditor).await;
    let (relay_keys, keys) = support::relay_keys(1);
    let state = support::state(store, keys, Some(chain.clone()));
    let worker = Worker::new(state.clone(), chain, "tamper".into());
    let state = AppState {
        wake_worker: worker.notify.clone(),
        audit_slot: Default::default(),
        ..state
    };
    tokio::spawn(worker.run());
    tokio::spawn(mediblock_relay::erasure::run(state.clone()));
    let app = app(state.clone());
    let nurse_token = sign_in(&app, "nurse.bo", &nurse).await;
    let doctor_token = sign_in(&app, "dr.wu", &doctor).await;
    let admin_token = sign_in(&app, "admin", &admin).await;
    Relay {
        app,
        state,
        url,
        nurse,
        doctor,
        admin,
        nurse_token,
        doctor_token,
        admin_token,
        relay_public: relay_keys.public(),
        _anvil: anvil,
    }
}

fn name(s: &str) -> AttrName {
    AttrName::new(s).unwrap()
}

fn template(id: &str) -> TemplateRef {
    TemplateRef {
        id: id.parse().unwrap(),
        version: TemplateVersion::new(1).unwrap(),
    }
}

/// Polls `cond` until it holds or `limit` passes.
async fn until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Relay {
    /// Signs, seals and submits one record; `None` when the relay refused it (422).
    async fn submit(
        &self,
        rng: &mut ChaCha20Rng,
        doctor: bool,
        pid: PatientId,
        prev: Option<Commitment>,
        attributes: Attributes,
        template_id: &str,
    ) -> (TxId, Commitment, StatusCode) {
        let (uid, keys, token) = if doctor {
            ("dr.wu", &self.doctor, &self.doctor_token)
        } else {
            ("nurse.bo", &self.nurse, &self.nurse_token)
        };
        let ticket = support::ticket(&self.app, token).await;
        let ti = InitialTransaction {
            tid: TxId::for_ticket(ticket, rng),
            uid: UserId::new(uid).unwrap(),
            pid,
            template: template(template_id),
            attributes,
            created_at: UnixMillis(1_700_000_000_000),
            salt: Salt::random(rng),
            prev,
        };
        let signed = ti.sign(keys);
        let commitment = signed.commitment();
        let sealed = signed.seal(keys, &self.relay_public, rng).unwrap();
        let (status, body) = call(
            &self.app,
            post(
                "/api/v1/submissions",
                Some(token),
                serde_json::to_string(&sealed).unwrap(),
            ),
        )
        .await;
        assert!(
            status == StatusCode::ACCEPTED || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{status} {body}"
        );
        (signed.ti().tid, commitment, status)
    }

    async fn audit(&self, scope: Scope) -> Report {
        mediblock_relay::audit::run(
            &self.state.store,
            self.state.chain.as_ref().unwrap(),
            self.state.keys.clone(),
            scope,
            None,
        )
        .await
        .unwrap()
    }
}

fn vitals(rng: &mut ChaCha20Rng, heart_rate: i64) -> Attributes {
    let mut a: Attributes = [
        (name("heart_rate"), Value::Integer(heart_rate)),
        (
            name("systolic"),
            Value::Integer(100 + i64::from(rng.next_u32() % 60)),
        ),
        (
            name("temperature"),
            Value::Integer(360 + i64::from(rng.next_u32() % 20)),
        ),
    ]
    .into_iter()
    .collect();
    if rng.next_u32().is_multiple_of(2) {
        a.insert(name("notes"), Value::Text("Resting, no distress.".into()));
    }
    a
}

fn assessment(rng: &mut ChaCha20Rng) -> Attributes {
    let mobility = ["independent", "assisted", "bedbound"][(rng.next_u32() % 3) as usize];
    [
        (
            name("pain_score"),
            Value::Integer(i64::from(rng.next_u32() % 11)),
        ),
        (name("mobility"), Value::Enum(mobility.into())),
        (
            name("fall_risk"),
            Value::Boolean(rng.next_u32().is_multiple_of(2)),
        ),
    ]
    .into_iter()
    .collect()
}

/// A random record of `from` that no attack touched yet (and marks it touched); `None`
/// when every one was touched (small runs).
fn pick(rng: &mut ChaCha20Rng, from: &[&Sent], touched: &mut HashSet<TxId>) -> Option<Sent> {
    let fresh: Vec<&&Sent> = from.iter().filter(|s| !touched.contains(&s.tid)).collect();
    if fresh.is_empty() {
        return None;
    }
    let s = fresh[(rng.next_u32() as usize) % fresh.len()];
    touched.insert(s.tid);
    Some((*s).clone())
}

/// The (kind, tid) pairs of a report.
fn pairs(report: &Report) -> BTreeSet<(Kind, String)> {
    report
        .findings
        .iter()
        .map(|f| {
            (
                f.kind,
                f.tid
                    .clone()
                    .unwrap_or_else(|| format!("leaf {:?}", f.leaf_index)),
            )
        })
        .collect()
}

async fn tamper_suite(db: Db) {
    let seed: u64 = std::env::var("MEDIBLOCK_TAMPER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let records: usize = std::env::var("MEDIBLOCK_TAMPER_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_050);
    println!("tamper suite on {db:?}: MEDIBLOCK_TAMPER_SEED={seed} ({records} records)");
    let started = Instant::now();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let r = relay(db, &mut rng).await;

    // 1. Records through the real relay: 40 patients, each with a chain of previous records.
    let patients: Vec<PatientId> = (0..40).map(|_| PatientId::random(&mut rng)).collect();
    let mut last: HashMap<PatientId, Commitment> = HashMap::new();
    let mut sent: Vec<Sent> = Vec::new();
    for i in 0..records {
        let pid = patients[(rng.next_u32() as usize) % patients.len()];
        let roll = rng.next_u32() % 100;
        let (attributes, template_id, outcome) = match roll {
            0..=4 => (vitals(&mut rng, 300), "vital-signs", "relay"),
            5..=10 => (vitals(&mut rng, 150), "vital-signs", "chain"),
            11..=40 => (assessment(&mut rng), "assessment", "valid"),
            _ => {
                let hr = 50 + i64::from(rng.next_u32() % 50);
                (vitals(&mut rng, hr), "vital-signs", "valid")
            }
        };
        let (tid, commitment, status) = r
            .submit(
                &mut rng,
                i % 3 == 0,
                pid,
                last.get(&pid).copied(),
                attributes,
                template_id,
            )
            .await;
        let expected = if outcome == "relay" {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::ACCEPTED
        };
        assert_eq!(status, expected, "record {i} ({outcome})");
        if outcome != "relay" {
            last.insert(pid, commitment);
        }
        sent.push(Sent { tid, pid, outcome });
    }
    let store = r.state.store.clone();
    until(Duration::from_secs(600), "the queue to drain", || {
        let store = store.clone();
        async move { store.queue_depth().await.unwrap() == 0 }
    })
    .await;
    let valid: Vec<&Sent> = sent.iter().filter(|s| s.outcome == "valid").collect();
    let chain_rejected: Vec<&Sent> = sent.iter().filter(|s| s.outcome == "chain").collect();
    let relay_refused = sent.iter().filter(|s| s.outcome == "relay").count();
    println!(
        "{} records submitted ({} valid, {} rejected by the chain, {relay_refused} refused by the relay) in {:.1}s",
        sent.len(),
        valid.len(),
        chain_rejected.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(sent.len() >= 1_000 || std::env::var("MEDIBLOCK_TAMPER_RECORDS").is_ok());
    assert!(!chain_rejected.is_empty() && relay_refused > 0);

    // A checkpoint of the whole log, anchored on chain.
    let chain = r.state.chain.clone().unwrap();
    let leaves = store.log_leaves().await.unwrap();
    let hashes: Vec<[u8; 32]> = leaves
        .iter()
        .map(|(_, d)| Keccak256Tree::hash_leaf(d))
        .collect();
    let log_root = root::<Keccak256Tree>(&hashes);
    let tx = chain
        .send_checkpoint(leaves.len() as u64, &log_root)
        .await
        .unwrap();
    until(Duration::from_secs(30), "the checkpoint", || {
        let chain = chain.clone();
        async move { chain.confirmed_receipt(&tx).await.unwrap().is_some() }
    })
    .await;

    // 2. The untouched store: no findings at all.
    let report = r.audit(Scope::default()).await;
    assert!(
        report.findings.is_empty(),
        "false alarms: {:#?}",
        &report.findings[..report.findings.len().min(5)]
    );
    assert!(report.clean);
    assert_eq!(report.counts.records as usize, valid.len());
    assert_eq!(report.counts.verified as usize, valid.len());
    assert_eq!(
        report.counts.rejected as usize,
        chain_rejected.len() + relay_refused
    );
    assert_eq!(
        report.counts.log_size as usize,
        valid.len() + chain_rejected.len()
    );
    assert_eq!(report.counts.checkpoints, 1);
    println!(
        "untouched audit of {} records: clean in {} ms",
        report.counts.records, report.took_ms
    );

    // The same report through the API, for an auditor; a nurse may not run it.
    let (status, body) = call(&r.app, get("/api/v1/audit", Some(&r.admin_token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["clean"], true);
    assert_eq!(body["counts"]["records"], valid.len());
    let (status, body) = call(&r.app, get("/api/v1/audit", Some(&r.nurse_token))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, body) = call(
        &r.app,
        get("/api/v1/audit?since=yesterday", Some(&r.admin_token)),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );
    // One audit at a time per relay: while one runs (its slot held), another is 429.
    {
        let _running = r.state.audit_slot.lock().await;
        let (status, body) = call(&r.app, get("/api/v1/audit", Some(&r.admin_token))).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("audit_running"))
        );
    }
    let (status, _) = call(&r.app, get("/api/v1/audit", Some(&r.admin_token))).await;
    assert_eq!(status, StatusCode::OK, "the slot is free again");

    // No false alarm while records are in flight: a burst submitted and audited at once,
    // while the worker anchors and stores them.
    let mut in_flight_seen = 0;
    for _ in 0..30 {
        let pid = patients[(rng.next_u32() as usize) % patients.len()];
        let attributes = assessment(&mut rng);
        let (_, commitment, status) = r
            .submit(
                &mut rng,
                false,
                pid,
                last.get(&pid).copied(),
                attributes,
                "assessment",
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED);
        last.insert(pid, commitment);
    }
    for _ in 0..3 {
        let during = r.audit(Scope::default()).await;
        assert!(
            during.findings.is_empty(),
            "false alarm while in flight: {:#?}",
            during.findings
        );
        in_flight_seen += during.counts.in_flight;
    }
    println!("audits during a burst: clean ({in_flight_seen} in-flight sightings)");
    until(Duration::from_secs(120), "the burst to drain", || {
        let store = store.clone();
        async move { store.queue_depth().await.unwrap() == 0 }
    })
    .await;

    // 3. Lawful erasure: the admin's signed erasure record, anchored and stored, then the
    //    content is destroyed; the audit says `erased` and nothing else, and the log's root
    //    (hence every other record's proof) is unchanged.
    let erased = valid[(rng.next_u32() as usize) % valid.len()].clone();
    let ticket = support::ticket(&r.app, &r.admin_token).await;
    let erasure_ti = InitialTransaction {
        tid: TxId::for_ticket(ticket, &mut rng),
        uid: UserId::new("admin").unwrap(),
        pid: erased.pid,
        template: template("erasure"),
        attributes: [
            (name("erased_tid"), Value::Text(erased.tid.to_hex())),
            (name("reason"), Value::Enum("patient_request".into())),
        ]
        .into_iter()
        .collect(),
        created_at: UnixMillis(1_700_000_000_000),
        salt: Salt::random(&mut rng),
        prev: None,
    };
    let erasure_tid = erasure_ti.tid;
    let sealed = erasure_ti
        .sign(&r.admin)
        .seal(&r.admin, &r.relay_public, &mut rng)
        .unwrap();
    let body = serde_json::to_string(&sealed).unwrap();
    // Only an administrator, and only for the record it names.
    let (status, _) = call(
        &r.app,
        post(
            &format!("/api/v1/records/{}/erasure", erased.tid),
            Some(&r.nurse_token),
            body.clone(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other = valid.iter().find(|s| s.tid != erased.tid).unwrap();
    let (status, answer) = call(
        &r.app,
        post(
            &format!("/api/v1/records/{}/erasure", other.tid),
            Some(&r.admin_token),
            body.clone(),
        ),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_input"))
    );
    let (status, answer) = call(
        &r.app,
        post(
            &format!("/api/v1/records/{}/erasure", erased.tid),
            Some(&r.admin_token),
            body,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    until(Duration::from_secs(60), "the erasure to apply", || {
        let store = store.clone();
        let tid = erased.tid;
        async move {
            store
                .audit_record(tid.as_bytes())
                .await
                .unwrap()
                .is_some_and(|row| row.erased_by.is_some())
        }
    })
    .await;
    let row = store
        .audit_record(erased.tid.as_bytes())
        .await
        .unwrap()
        .unwrap();
    assert!(row.envelope.is_empty());
    assert_eq!(
        row.erased_by.as_deref(),
        Some(erasure_tid.as_bytes().as_slice())
    );
    let sub = store.submission(&erased.tid).await.unwrap().unwrap();
    assert!(
        sub.sealed_ti.is_empty(),
        "the queue's copy of the content is destroyed too"
    );
    let leaves_after = store.log_leaves().await.unwrap();
    let hashes: Vec<[u8; 32]> = leaves_after
        .iter()
        .take(leaves.len())
        .map(|(_, d)| Keccak256Tree::hash_leaf(d))
        .collect();
    assert_eq!(root::<Keccak256Tree>(&hashes), log_root);
    // Readers see the record as erased (by which record), not as damaged.
    let (status, listed) = call(
        &r.app,
        get(
            &format!("/api/v1/patients/{}/records", erased.pid),
            Some(&r.nurse_token),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let shown = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["tid"] == erased.tid.to_hex())
        .expect("the erased record is still listed");
    assert_eq!(shown["erased_by"], erasure_tid.to_hex(), "{shown}");
    assert!(
        shown["validated"].is_null() && shown.get("problem").is_none(),
        "{shown}"
    );

    // The erasure record is the evidence of a lawful erasure: it cannot itself be erased.
    let ticket = support::ticket(&r.app, &r.admin_token).await;
    let again = InitialTransaction {
        tid: TxId::for_ticket(ticket, &mut rng),
        uid: UserId::new("admin").unwrap(),
        pid: erased.pid,
        template: template("erasure"),
        attributes: [
            (name("erased_tid"), Value::Text(erasure_tid.to_hex())),
            (name("reason"), Value::Enum("entered_in_error".into())),
        ]
        .into_iter()
        .collect(),
        created_at: UnixMillis(1_700_000_000_001),
        salt: Salt::random(&mut rng),
        prev: None,
    }
    .sign(&r.admin)
    .seal(&r.admin, &r.relay_public, &mut rng)
    .unwrap();
    let (status, answer) = call(
        &r.app,
        post(
            &format!("/api/v1/records/{erasure_tid}/erasure"),
            Some(&r.admin_token),
            serde_json::to_string(&again).unwrap(),
        ),
    )
    .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (StatusCode::CONFLICT, Some("erasure_not_erasable")),
        "{answer}"
    );

    let report = r.audit(Scope::default()).await;
    let expected: BTreeSet<(Kind, String)> =
        [(Kind::Erased, erased.tid.to_hex())].into_iter().collect();
    assert_eq!(pairs(&report), expected, "{:#?}", report.findings);
    assert!(report.clean, "an erasure is information, not tampering");
    assert_eq!(report.findings[0].evidence["reason"], "patient_request");

    // 4. Random attacks of every kind, directly in the database.
    let pool = AnyPool::connect(&r.url).await.unwrap();
    let mut touched: HashSet<TxId> = [erased.tid, erasure_tid].into_iter().collect();
    let mut expected: BTreeSet<(Kind, String)> = expected;
    let blob = |tid: &TxId| tid.as_bytes().to_vec();
    let kinds = [
        "modify_envelope",
        "modify_column",
        "delete_row",
        "delete_leaf",
        "fake_erasure",
        "forge_row",
        "forge_insider",
        "move",
        "replay",
        "roll_back",
        "flip_to_valid",
        "flip_to_rejected",
        "rewrite_leaf",
        "modify_rejected",
    ];
    let mut plan: Vec<&str> = kinds.to_vec();
    let extra: usize = std::env::var("MEDIBLOCK_TAMPER_ATTACKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(16);
    for _ in 0..extra {
        plan.push(kinds[(rng.next_u32() as usize) % kinds.len()]);
    }
    let mut applied = Vec::new();
    for attack in plan {
        match attack {
            "modify_envelope" => {
                let Some(v) = pick(&mut rng, &valid, &mut touched) else {
                    continue;
                };
                let (mut env,): (Vec<u8>,) =
                    sqlx::query_as("SELECT envelope FROM records WHERE tid = $1")
                        .bind(blob(&v.tid))
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                let i = (rng.next_u32() as usize) % env.len();
                env[i] ^= 1 << (rng.next_u32() % 8);
                sqlx::query("UPDATE records SET envelope = $2 WHERE tid = $1")
                    .bind(blob(&v.tid))
                    .bind(env)
                    .execute(&pool)
                    .await
                    .unwrap();
                expected.insert((Kind::Modified, v.tid.to_hex()));
            }
            "modify_column" => {
                let Some(v) = pick(&mut rng, &valid, &mut touched) else {
                    continue;
                };
                let sql = if rng.next_u32().is_multiple_of(2) {
                    "UPDATE records SET uid = 'dr.evil' WHERE tid = $1"
                } else {
                    "UPDATE records SET version = version + 1 WHERE tid = $1"
                };
                exec(&pool, sql, &v.tid).await;
                expected.insert((Kind::Modified, v.tid.to_hex()));
            }
            "delete_row" => {
                let Some(v) = pick(&mut rng, &valid, &mut touched) else {
                    continue;
                };
                exec(&pool, "DELETE FROM records WHERE tid = $1", &v.tid).await;
                expected.insert((Kind::Deleted, v.tid.to_hex()));
            }
            "delete_leaf" => {
                let Some(v) = pick(&mut rng, &valid, &mut touched) else {
                    continue;
                };
                exec(&pool, "DELETE FROM log_leaves WHERE tid = $1", &v.tid).await;
                expected.insert((Kind::Deleted, v.tid.to_hex()));
            }
            "fake_erasure" => {
                let Some(v) = pick(&mut rng, &valid, &mut touched) else {
                    continue;
                };
                sqlx::query(
                    "UPDATE records SET envelope = $2, erased_by = $3, erased_at = 1 WHERE tid = $1",
                )
                .bind(blob(&v.tid))
                .bind(Vec::<u8>::new())
                .bind(blob(&erasure_tid))
                .execute(&pool)
                .await
                .unwrap();
                expected.insert((Kind::Deleted, v.tid.to_hex()));
            }
            "forge_row" => {
                let tid = TxId::random(&mut rng);
                let mut env = vec![0u8; 180 + (rng.next_u32() % 200) as usize];
                rng.fill_bytes(&mut env);
                let mut commitment = [0u8; 32];
                rng.fill_bytes(&mut commitment);
                let pid = patients[(rng.next_u32() as usize) % patients.len()];
                sqlx::query(
                    "INSERT INTO records (tid, pid, uid, template_id, version, commitment, leaf_index, \
                     key_id, envelope, stored_at) VALUES ($1, $2, 'nurse.bo', 'vital-signs', 1, $3, $4, $5, $6, $7)",
                )
                .bind(blob(&tid))
                .bind(pid.as_bytes().to_vec())
                .bind(commitment.to_vec())
                .bind((rng.next_u32() % 100) as i64)
                .bind(r.state.keys.at_rest.id().as_bytes().to_vec())
                .bind(env)
                .bind(mediblock_relay::now().0 as i64)
                .execute(&pool)
                .await
                .unwrap();
                expected.insert((Kind::Forged, tid.to_hex()));
            }
            "forge_insider" => {
                // Someone holding the at-rest key re-signs other values under the same tid.
                let Some(v) = pick(&mut rng, &valid, &mut touched) else {
                    continue;
                };
                let (env,): (Vec<u8>,) =
                    sqlx::query_as("SELECT envelope FROM records WHERE tid = $1")
                        .bind(blob(&v.tid))
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                let envelope =
                    mediblock_protocol::envelope::Envelope::from_canonical_bytes(&env).unwrap();
                let vt =
                    ValidatedTransaction::open_at_rest(&envelope, &r.state.keys.at_rest, &v.tid)
                        .unwrap();
                let mut ti = vt.signed.ti().clone();
                ti.salt = Salt::random(&mut rng);
                let author = if ti.uid.as_str() == "dr.wu" {
                    &r.doctor
                } else {
                    &r.nurse
                };
                let forged = ValidatedTransaction {
                    signed: ti.sign(author),
                    ack: vt.ack.clone(),
                };
                let commitment = forged.signed.commitment();
                let sealed = forged
                    .seal_at_rest(&r.state.keys.at_rest, &mut rng)
                    .unwrap()
                    .to_canonical_bytes();
                sqlx::query("UPDATE records SET envelope = $2, commitment = $3 WHERE tid = $1")
                    .bind(blob(&v.tid))
                    .bind(sealed)
                    .bind(commitment.as_bytes().to_vec())
                    .execute(&pool)
                    .await
                    .unwrap();
                expected.insert((Kind::Forged, v.tid.to_hex()));
            }
            "move" => {
                let Some(v) = pick(&mut rng, &valid, &mut touched) else {
                    continue;
                };
                let to = patients.iter().find(|p| **p != v.pid).unwrap();
                sqlx::query("UPDATE records SET pid = $2 WHERE tid = $1")
                    .bind(blob(&v.tid))
                    .bind(to.as_bytes().to_vec())
                    .execute(&pool)
                    .await
                    .unwrap();
                expected.insert((Kind::Moved, v.tid.to_hex()));
            }
            "replay" => {
                let Some(v) = pick(&mut rng, &valid, &mut touched) else {
                    continue;
                };
                let copy = TxId::random(&mut rng);
                sqlx::query(
                    "INSERT INTO records (tid, pid, uid, template_id, version, commitment, leaf_index, \
                     key_id, envelope, stored_at) SELECT $2, pid, uid, template_id, version, commitment, \
                     leaf_index, key_id, envelope, stored_at FROM records WHERE tid = $1",
                )
                .bind(blob(&v.tid))
                .bind(blob(&copy))
                .execute(&pool)
                .await
                .unwrap();
                expected.insert((Kind::Replayed, copy.to_hex()));
            }
            "roll_back" => {
                // A patient's newer record replaced by one of their older ones.
                let mut found = None;
                for _ in 0..1000 {
                    let newer = valid[(rng.next_u32() as usize) % valid.len()];
                    let older = valid
                        .iter()
                        .take_while(|s| s.tid != newer.tid)
                        .filter(|s| s.pid == newer.pid && !touched.contains(&s.tid))
                        .last();
                    if let Some(older) = older
                        && !touched.contains(&newer.tid)
                    {
                        found = Some((newer.clone(), (*older).clone()));
                        break;
                    }
                }
                let Some((newer, older)) = found else {
                    continue;
                };
                touched.insert(newer.tid);
                touched.insert(older.tid);
                sqlx::query(
                    "UPDATE records SET envelope = (SELECT envelope FROM records WHERE tid = $2), \
                     commitment = (SELECT commitment FROM records WHERE tid = $2) WHERE tid = $1",
                )
                .bind(blob(&newer.tid))
                .bind(blob(&older.tid))
                .execute(&pool)
                .await
                .unwrap();
                expected.insert((Kind::RolledBack, newer.tid.to_hex()));
            }
            "flip_to_valid" => {
                let Some(v) = pick(&mut rng, &chain_rejected, &mut touched) else {
                    continue;
                };
                sqlx::query(
                    "INSERT INTO records (tid, pid, uid, template_id, version, commitment, leaf_index, \
                     key_id, envelope, stored_at) SELECT tid, pid, uid, template_id, version, commitment, \
                     leaf_index, key_id, envelope, rejected_at FROM rejected WHERE tid = $1",
                )
                .bind(blob(&v.tid))
                .execute(&pool)
                .await
                .unwrap();
                exec(&pool, "DELETE FROM rejected WHERE tid = $1", &v.tid).await;
                expected.insert((Kind::VerdictFlipped, v.tid.to_hex()));
            }
            "flip_to_rejected" => {
                let Some(v) = pick(&mut rng, &valid, &mut touched) else {
                    continue;
                };
                sqlx::query(
                    "INSERT INTO rejected (tid, pid, uid, template_id, version, commitment, leaf_index, \
                     source, reasons, key_id, envelope, rejected_at) SELECT tid, pid, uid, template_id, \
                     version, commitment, leaf_index, 'chain', '{}', key_id, envelope, stored_at \
                     FROM records WHERE tid = $1",
                )
                .bind(blob(&v.tid))
                .execute(&pool)
                .await
                .unwrap();
                exec(&pool, "DELETE FROM records WHERE tid = $1", &v.tid).await;
                expected.insert((Kind::VerdictFlipped, v.tid.to_hex()));
            }
            "rewrite_leaf" => {
                let Some(v) = pick(&mut rng, &valid, &mut touched) else {
                    continue;
                };
                let mut data = [0u8; 32];
                rng.fill_bytes(&mut data);
                sqlx::query("UPDATE log_leaves SET leaf_data = $2 WHERE tid = $1")
                    .bind(blob(&v.tid))
                    .bind(data.to_vec())
                    .execute(&pool)
                    .await
                    .unwrap();
                expected.insert((Kind::LogRewritten, v.tid.to_hex()));
            }
            "modify_rejected" => {
                let Some(v) = pick(&mut rng, &chain_rejected, &mut touched) else {
                    continue;
                };
                let (mut env,): (Vec<u8>,) =
                    sqlx::query_as("SELECT envelope FROM rejected WHERE tid = $1")
                        .bind(blob(&v.tid))
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                let i = (rng.next_u32() as usize) % env.len();
                env[i] ^= 0x80;
                sqlx::query("UPDATE rejected SET envelope = $2 WHERE tid = $1")
                    .bind(blob(&v.tid))
                    .bind(env)
                    .execute(&pool)
                    .await
                    .unwrap();
                expected.insert((Kind::Modified, v.tid.to_hex()));
            }
            other => unreachable!("{other}"),
        }
        applied.push(attack);
    }
    println!("applied {} attacks: {applied:?}", applied.len());
    let report = r.audit(Scope::default()).await;
    let got = pairs(&report);
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "seed {seed}: missing {missing:#?}\nunexpected {extra:#?}\nall findings {:#?}",
        report.findings
    );
    assert!(!report.clean);
    // Every finding carries its evidence.
    assert!(report.findings.iter().all(|f| !f.evidence.is_empty()));

    // A patient's audit reports only findings about that patient.
    let attacked = report
        .findings
        .iter()
        .find_map(|f| f.patient.clone())
        .unwrap();
    let pid: PatientId = attacked.parse().unwrap();
    let scoped = r
        .audit(Scope {
            patient: Some(pid),
            ..Scope::default()
        })
        .await;
    assert!(!scoped.findings.is_empty());
    assert!(
        scoped
            .findings
            .iter()
            .all(|f| f.patient.as_deref() == Some(attacked.as_str())
                || f.evidence.get("store_patient").map(String::as_str) == Some(attacked.as_str()))
    );
    // A time range before everything reports nothing stored in it.
    let none = r
        .audit(Scope {
            until: Some(UnixMillis(1)),
            ..Scope::default()
        })
        .await;
    assert_eq!(none.counts.records, 0);
    pool.close().await;
    println!(
        "tamper suite on {db:?}: {} findings exactly as expected, {:.1}s in all",
        report.findings.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Runs one statement on the store directly, with the record's tid as `$1`: an attack.
async fn exec(pool: &AnyPool, sql: &'static str, tid: &TxId) {
    sqlx::query(sql)
        .bind(tid.as_bytes().to_vec())
        .execute(pool)
        .await
        .unwrap();
}
