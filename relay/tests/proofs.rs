//! Checkpoints and proof files on a real anvil chain, SQLite and PostgreSQL: the
//! checkpointer anchors checkpoints as the log grows, exactly once across a restart, a crash
//! between sending and recording, and two relays on one store; it refuses to sign a
//! rewritten log. A proof file exported through the API verifies with nothing but the chain
//! (through the library and the real `mediblock` binary), and every kind of tampered file
//! fails with the right reason: a file stripped of its acknowledgement still shows the
//! chain's verdict, a file with a borrowed tid claims nothing about it, and a file of
//! another registry fails when the registry is pinned and is flagged when it is not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/postgres.rs"]
mod postgres;

#[path = "support/http.rs"]
mod http;

#[path = "support/relay.rs"]
mod support;

use http::{call, get, sign_in};

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use mediblock_protocol::checkpoint::Checkpoint;
use mediblock_protocol::ids::{EthAddress, PatientId, Role, TxId, UnixMillis, UserId};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::merkle::{self, Keccak256Tree, TreeHasher as _};
use mediblock_protocol::proof::{Pinned, ProofBundle, ProofFailure, log_origin};
use mediblock_protocol::template::Template;
use mediblock_protocol::validated::Verdict;
use mediblock_relay::chain::Chain;
use mediblock_relay::chain::anvil::{Anvil, AnvilOptions};
use mediblock_relay::chain::registry::Rule;
use mediblock_relay::checkpointer::{CheckpointPolicy, Checkpointer, Tick};
use mediblock_relay::proof;
use mediblock_relay::store::Store;
use mediblock_relay::store::submissions::State;
use mediblock_relay::worker::Worker;
use mediblock_relay::{AppState, app};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value as Json;

const TEMPLATES: &str = include_str!("../../protocol/testdata/templates.json");
/// How long any awaited condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

struct Relay {
    app: Router,
    state: AppState,
    /// The one author's user id and keys.
    uid: UserId,
    nurse: Keypair,
    token: String,
    relay_keys: Keypair,
    rng: ChaCha20Rng,
    database_url: String,
    anvil: Arc<Anvil>,
}

/// A relay on `database_url` and a fresh anvil with a deployed registry; the vital-signs
/// template's heart rate is stricter on chain (20..=100) than in the relay (20..=250), so a
/// heart rate of 150 is anchored as rejected.
async fn relay(database_url: &str) -> Relay {
    let anvil = Arc::new(Anvil::start().unwrap());
    relay_on(database_url, anvil, 0, "nurse.bo", Role::Nurse).await
}

/// A relay on `database_url` whose registry anvil's `account` deploys on `anvil` (and is
/// its owner and relay), with one author `uid`; the relay's and the author's keys differ by
/// account.
async fn relay_on(
    database_url: &str,
    anvil: Arc<Anvil>,
    account: usize,
    uid: &str,
    role: Role,
) -> Relay {
    let seed = 1 + 10 * u8::try_from(account).unwrap();
    let file: Json = serde_json::from_str(TEMPLATES).unwrap();
    let template: Template = serde_json::from_value(file["template"].clone()).unwrap();
    // Heart rate 20..=100 on chain, stricter than the relay's rules.
    let chain = support::registry_with(
        &anvil,
        account,
        &template,
        vec![
            Rule::range(20, 100),
            Rule::range(50, 260),
            Rule::range(300, 450),
        ],
    )
    .await;
    let store = Store::open(database_url).await.unwrap();
    store
        .insert_template(&template, UnixMillis(1))
        .await
        .unwrap();
    let mut rng = ChaCha20Rng::from_seed([32 + seed; 32]);
    let nurse = Keypair::generate(&mut rng);
    let uid = UserId::new(uid).unwrap();
    support::enrol(&store, uid.as_str(), role, &nurse).await;
    let (relay_keys, keys) = support::relay_keys(seed);
    let state = support::state(store, keys, Some(chain));
    let app = app(state.clone());
    let token = sign_in(&app, uid.as_str(), &nurse).await;
    Relay {
        app,
        state,
        uid,
        nurse,
        token,
        relay_keys,
        rng,
        database_url: database_url.to_owned(),
        anvil,
    }
}

impl Relay {
    fn chain(&self) -> &Chain {
        self.state.chain.as_ref().unwrap()
    }

    /// Submits a vital-signs record; returns its tid and patient.
    async fn submit(&mut self, heart_rate: i64) -> (TxId, PatientId) {
        let pid = PatientId::random(&mut self.rng);
        let ticket = support::ticket(&self.app, &self.token).await;
        let ti = support::vital_signs(&mut self.rng, ticket, &self.uid, pid, heart_rate);
        let (tid, pid) = (ti.tid, ti.pid);
        let (status, body) = support::post_sealed(
            &self.app,
            "/api/v1/submissions",
            &self.token,
            ti,
            &self.nurse,
            &self.relay_keys.public(),
            &mut self.rng,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        (tid, pid)
    }

    /// Runs the anchoring worker's steps until every submission is stored or rejected.
    async fn anchor_all(&self) {
        let worker = Worker::new(
            self.state.clone(),
            self.chain().clone(),
            "test-worker".into(),
        );
        let start = Instant::now();
        while self.state.store.queue_depth().await.unwrap() > 0 {
            assert!(
                start.elapsed() < DEADLINE,
                "records were not anchored in time"
            );
            worker.tick().await.unwrap();
        }
    }

    fn checkpointer(&self, owner: &str, policy: CheckpointPolicy) -> Checkpointer {
        Checkpointer::new(
            self.state.clone(),
            self.chain().clone(),
            policy,
            owner.into(),
        )
    }

    /// Ticks `checkpointer` until the store holds an anchored checkpoint of at least `size`.
    async fn checkpoint_until(&self, checkpointer: &Checkpointer, size: u64) {
        let start = Instant::now();
        loop {
            let latest = self
                .state
                .store
                .latest_anchored_checkpoint()
                .await
                .unwrap()
                .map_or(0, |c| c.size());
            if latest >= size {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no checkpoint of size {size} in time"
            );
            checkpointer.tick().await.unwrap();
        }
    }

    /// A raw connection to the store's database, to tamper with it as an intruder would.
    async fn raw_db(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.database_url).await.unwrap()
    }
}

/// Counts only when the condition is due by count, never by age.
fn by_count(every_leaves: u64) -> CheckpointPolicy {
    CheckpointPolicy {
        every_leaves,
        max_delay: Duration::from_secs(3600),
    }
}

fn sqlite_url(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "mediblock-proofs-{name}-{}-{}",
        std::process::id(),
        mediblock_relay::now().0
    ));
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}", dir.join("p.db").display())
}

/// The store's log root over its first `size` leaves.
async fn store_root(store: &Store, size: u64) -> [u8; 32] {
    let leaves = store.log_prefix(size).await.unwrap();
    assert_eq!(leaves.len() as u64, size);
    let hashes: Vec<_> = leaves
        .iter()
        .map(|(_, d)| Keccak256Tree::hash_leaf(d))
        .collect();
    merkle::root::<Keccak256Tree>(&hashes)
}

async fn checkpoints_follow_the_log(database_url: &str) {
    let mut r = relay(database_url).await;
    let store = r.state.store.clone();
    let chain = r.chain().clone();
    for hr in [60, 61, 150] {
        r.submit(hr).await;
    }
    r.anchor_all().await;

    // Three leaves: due by count (every 3).
    let first = r.checkpointer("relay-a", by_count(3));
    r.checkpoint_until(&first, 3).await;
    let stored = store.checkpoints().await.unwrap();
    assert_eq!(stored.len(), 1);
    let c = &stored[0];
    assert_eq!(c.size(), 3);
    assert_eq!(*c.root(), store_root(&store, 3).await);
    assert_eq!(
        c.signed.checkpoint.origin(),
        log_origin(
            chain.chain_id(),
            &mediblock_protocol::ids::EthAddress::from_bytes(chain.registry().0.0),
            chain.log()
        )
    );
    c.signed.verify(r.relay_keys.public().signing()).unwrap();
    assert_eq!(c.signer, r.relay_keys.public().signing_bytes());
    let anchoring = c.anchoring.expect("anchored");
    let on_chain = chain.anchored_checkpoints(0).await.unwrap();
    assert_eq!(on_chain.len(), 1);
    assert_eq!(
        (
            on_chain[0].size,
            on_chain[0].root,
            on_chain[0].tx_hash,
            on_chain[0].block_number,
            on_chain[0].block_hash,
            on_chain[0].log_index
        ),
        (
            3,
            *c.root(),
            anchoring.tx_hash,
            anchoring.block_number,
            anchoring.block_hash,
            anchoring.log_index
        )
    );
    assert_eq!(on_chain[0].submitter, r.anvil.address(0));
    assert_eq!(chain.latest_checkpoint().await.unwrap(), (3, *c.root()));

    // Two more leaves: not due by count, and nothing is signed.
    for hr in [62, 63] {
        r.submit(hr).await;
    }
    r.anchor_all().await;
    assert_eq!(first.tick().await.unwrap(), Tick::Idle);
    assert_eq!(store.checkpoints().await.unwrap().len(), 1);

    // A restarted relay (a new checkpointer) whose oldest uncovered leaf is overdue.
    let restarted = r.checkpointer(
        "relay-a-restarted",
        CheckpointPolicy {
            every_leaves: 100,
            max_delay: Duration::from_millis(1),
        },
    );
    r.checkpoint_until(&restarted, 5).await;
    assert_eq!(restarted.tick().await.unwrap(), Tick::Idle);
    let sizes: Vec<u64> = chain
        .anchored_checkpoints(0)
        .await
        .unwrap()
        .iter()
        .map(|c| c.size)
        .collect();
    assert_eq!(sizes, [3, 5]);

    // A crash between sending and recording: the row is signed, the transaction anchored
    // it, the hash never reached the store. The next relay records the chain's anchoring
    // and sends nothing.
    r.submit(64).await;
    r.anchor_all().await;
    let root6 = store_root(&store, 6).await;
    let signed = Checkpoint::new(first.origin(), 6, root6)
        .unwrap()
        .sign(r.relay_keys.signing_key());
    assert!(
        store
            .insert_checkpoint(
                &signed,
                &r.relay_keys.public().signing_bytes(),
                mediblock_relay::now()
            )
            .await
            .unwrap()
    );
    let sent = chain.send_checkpoint(6, &root6).await.unwrap();
    let after_crash = r.checkpointer("relay-after-crash", by_count(1));
    r.checkpoint_until(&after_crash, 6).await;
    let six = store.checkpoint(6).await.unwrap().unwrap();
    assert_eq!(six.anchoring.unwrap().tx_hash, sent);
    let sizes: Vec<u64> = chain
        .anchored_checkpoints(0)
        .await
        .unwrap()
        .iter()
        .map(|c| c.size)
        .collect();
    assert_eq!(sizes, [3, 5, 6], "size 6 was anchored once");

    // Two relays on one store race: every size is anchored once, in growing order, and the
    // store ends with exactly the sizes the chain holds.
    let a = r.checkpointer("relay-a", by_count(1));
    let b = r.checkpointer("relay-b", by_count(1));
    for round in 0..3 {
        for hr in [65, 66] {
            r.submit(hr + round).await;
        }
        r.anchor_all().await;
        let size = store.log_size().await.unwrap();
        let start = Instant::now();
        loop {
            let (ta, tb) = tokio::join!(a.tick(), b.tick());
            // A lost race surfaces as an error of one tick; the next one resolves it.
            let _ = (ta, tb);
            if store
                .latest_anchored_checkpoint()
                .await
                .unwrap()
                .is_some_and(|c| c.size() >= size)
            {
                break;
            }
            assert!(start.elapsed() < DEADLINE, "racing relays did not anchor");
        }
    }
    // Let both finish whatever they hold.
    for _ in 0..3 {
        let _ = a.tick().await;
        let _ = b.tick().await;
    }
    let on_chain = chain.anchored_checkpoints(0).await.unwrap();
    let sizes: Vec<u64> = on_chain.iter().map(|c| c.size).collect();
    assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
    assert_eq!(*sizes.last().unwrap(), 12);
    let stored = store.checkpoints().await.unwrap();
    assert!(stored.iter().all(|c| c.anchoring.is_some()), "{stored:#?}");
    let stored_sizes: Vec<u64> = stored.iter().map(|c| c.size()).collect();
    assert_eq!(stored_sizes, sizes);
    for (s, c) in stored.iter().zip(&on_chain) {
        assert_eq!(s.anchoring.unwrap().tx_hash, c.tx_hash);
        assert_eq!(*s.root(), c.root);
    }

    // A signed row that the chain overtook (a larger size was anchored first) can never be
    // anchored: the contract refuses sizes that do not grow. It is dropped, nothing is sent,
    // and the next checkpoint extends the chain's.
    for hr in [70, 71] {
        r.submit(hr).await;
    }
    r.anchor_all().await;
    let root13 = store_root(&store, 13).await;
    let signed13 = Checkpoint::new(first.origin(), 13, root13)
        .unwrap()
        .sign(r.relay_keys.signing_key());
    assert!(
        store
            .insert_checkpoint(
                &signed13,
                &r.relay_keys.public().signing_bytes(),
                mediblock_relay::now()
            )
            .await
            .unwrap()
    );
    chain
        .send_checkpoint(14, &store_root(&store, 14).await)
        .await
        .unwrap();
    assert_eq!(a.tick().await.unwrap(), Tick::Idle);
    assert!(store.checkpoint(13).await.unwrap().is_none());
    r.submit(72).await;
    r.anchor_all().await;
    r.checkpoint_until(&a, 15).await;
    let sizes: Vec<u64> = chain
        .anchored_checkpoints(0)
        .await
        .unwrap()
        .iter()
        .map(|c| c.size)
        .collect();
    assert_eq!(&sizes[sizes.len() - 2..], [14, 15]);
    let stored = store.checkpoints().await.unwrap();

    // An intruder rewrites an old leaf: the relay refuses to sign a log that does not
    // extend the chain's latest checkpoint.
    let db = r.raw_db().await;
    sqlx::query("UPDATE log_leaves SET leaf_data = $1 WHERE leaf_index = 1")
        .bind(vec![0xab_u8; 32])
        .execute(&db)
        .await
        .unwrap();
    r.submit(67).await;
    r.anchor_all().await;
    let err = a.tick().await.unwrap_err();
    assert!(err.contains("does not extend"), "{err}");
    assert_eq!(chain.latest_checkpoint().await.unwrap().0, 15);
    assert_eq!(store.checkpoints().await.unwrap(), stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_follow_the_log_on_sqlite() {
    checkpoints_follow_the_log(&sqlite_url("follow")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_follow_the_log_on_postgres() {
    checkpoints_follow_the_log(&postgres::shared().fresh_database().unwrap()).await;
}

/// Verifies `bundle` against the node at `rpc`; the first failure's code.
async fn verdict(bundle: &ProofBundle, rpc: &str) -> Option<&'static str> {
    let report = proof::verify(bundle, rpc, &Pinned::default())
        .await
        .unwrap();
    report.first_failure().map(ProofFailure::code)
}

/// Runs the `mediblock` binary (off the async threads, so the served relay keeps answering).
async fn run(mut command: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

fn proof_path(tid: &TxId) -> String {
    format!("/api/v1/records/{tid}/proof")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_files_verify_with_the_chain_alone() {
    let mut r = relay(&sqlite_url("verify")).await;
    let rpc = r.anvil.url().to_string();
    let (valid, pid) = r.submit(72).await;
    let (rejected, _) = r.submit(150).await;
    for hr in [70, 71] {
        r.submit(hr).await;
    }
    r.anchor_all().await;
    assert_eq!(
        r.state
            .store
            .submission(&rejected)
            .await
            .unwrap()
            .unwrap()
            .state,
        State::Rejected
    );

    // Not yet covered by an anchored checkpoint: 409, and nothing is exported.
    let (status, body) = call(&r.app, get(&proof_path(&valid), Some(&r.token))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_checkpointed"))
    );
    let checkpointer = r.checkpointer("relay", by_count(1));
    r.checkpoint_until(&checkpointer, 4).await;

    // Exported through the API, logged in the access log, verified by the library.
    let (status, body) = call(&r.app, get(&proof_path(&valid), Some(&r.token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let bundle: ProofBundle = serde_json::from_value(body).unwrap();
    assert_eq!(bundle.record.tid, valid);
    assert_eq!(bundle.inclusion.leaf_index, 0);
    assert_eq!(bundle.checkpoint.checkpoint.size(), 4);
    let log = r.state.store.access_log_of_patient(&pid).await.unwrap();
    assert!(
        log.iter()
            .any(|(uid, action, _)| uid == "nurse.bo" && action == "export_proof"),
        "{log:?}"
    );
    let genuine = Pinned {
        relay_key: Some(r.relay_keys.public().signing_bytes()),
        registry: Some(EthAddress::from_bytes(r.chain().registry().0.0)),
        chain_id: Some(r.chain().chain_id()),
    };
    let report = proof::verify(&bundle, &rpc, &genuine).await.unwrap();
    let text = proof::render(&bundle, &report);
    assert!(report.ok(), "{text}");
    assert!(report.content_checked);
    assert_eq!(report.chain_verdict, Some(Verdict::Valid));
    assert!(!text.contains("NOT PINNED"), "{text}");
    assert!(
        text.ends_with("under this transaction id as valid.\n"),
        "{text}"
    );

    // A record the chain rejected has a proof too: anchored, as rejected.
    let (status, body) = call(&r.app, get(&proof_path(&rejected), Some(&r.token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rejected_bundle: ProofBundle = serde_json::from_value(body).unwrap();
    assert!(
        !rejected_bundle
            .record_anchor
            .as_ref()
            .unwrap()
            .verdict
            .is_valid()
    );
    let report = proof::verify(&rejected_bundle, &rpc, &genuine)
        .await
        .unwrap();
    assert!(report.ok(), "{report:#?}");
    let rejected_at_0 = Verdict::Rejected { attribute_index: 0 };
    assert_eq!(report.chain_verdict, Some(rejected_at_0));

    // Stripped of its acknowledgement, the rejected record's file still verifies only as
    // what the chain says: rejected (the ticket and the tid's event are always read).
    let mut stripped = rejected_bundle.clone();
    stripped.record_anchor = None;
    let report = proof::verify(&stripped, &rpc, &genuine).await.unwrap();
    let text = proof::render(&stripped, &report);
    assert!(report.ok(), "{text}");
    assert_eq!(report.chain_verdict, Some(rejected_at_0), "{text}");
    assert!(
        text.ends_with(
            "the chain anchored it under this transaction id as rejected at attribute 0.\n"
        ),
        "{text}"
    );
    assert!(!text.contains("as valid"), "{text}");
    // And an acknowledgement rewritten to say valid is caught by the chain.
    let mut flipped = rejected_bundle.clone();
    flipped.record_anchor.as_mut().unwrap().verdict = Verdict::Valid;
    assert_eq!(
        verdict(&flipped, &rpc).await,
        Some("record_anchor_mismatch")
    );
    // An acknowledgement that names another block: the verifier does not take the hint on
    // trust, finds the tid's event where it is, and reports the difference.
    let mut moved = rejected_bundle.clone();
    moved.record_anchor.as_mut().unwrap().block_number += 1;
    let report = proof::verify(&moved, &rpc, &genuine).await.unwrap();
    assert_eq!(
        report.first_failure().map(|f| f.code()),
        Some("record_anchor_mismatch")
    );
    assert!(
        proof::render(&moved, &report).contains("the acknowledgement says transaction"),
        "{report:#?}"
    );

    // Content withheld: no signed TI in the file, and it still proves the anchoring.
    let (status, body) = call(
        &r.app,
        get(
            &format!("{}?content=withheld", proof_path(&valid)),
            Some(&r.token),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["record"].get("content").is_none());
    let withheld: ProofBundle = serde_json::from_value(body).unwrap();
    let report = proof::verify(&withheld, &rpc, &Pinned::default())
        .await
        .unwrap();
    assert!(report.ok() && !report.content_checked, "{report:#?}");
    assert_eq!(report.chain_verdict, Some(Verdict::Valid));
    let text = proof::render(&withheld, &report);
    assert!(
        text.contains("anchored this commitment under this transaction id as valid"),
        "{text}"
    );

    // Withheld content, the tid swapped for one the chain never anchored and the
    // acknowledgement dropped: the log's leaves hold only commitments, so the file proves
    // the commitment's place in the log and nothing about the tid or a verdict.
    let mut borrowed = withheld.clone();
    borrowed.record.tid = TxId::from_bytes([0xab; 16]);
    borrowed.record_anchor = None;
    let report = proof::verify(&borrowed, &rpc, &Pinned::default())
        .await
        .unwrap();
    let text = proof::render(&borrowed, &report);
    assert!(report.ok(), "{text}");
    assert!(
        !report.tid_anchored() && report.chain_verdict.is_none(),
        "{text}"
    );
    assert!(!text.contains("under this transaction id"), "{text}");
    assert!(
        text.contains("Nothing is proven about the transaction id or a verdict"),
        "{text}"
    );
    let json = proof::render_json(&borrowed, &report);
    assert_eq!(
        (&json["tid_anchored"], &json["chain_verdict"]),
        (&Json::Bool(false), &Json::Null)
    );
    // Keeping the acknowledgement claims an anchor the chain does not have.
    let mut claimed = withheld.clone();
    claimed.record.tid = TxId::from_bytes([0xab; 16]);
    assert_eq!(verdict(&claimed, &rpc).await, Some("record_not_anchored"));
    // Another record's tid: the chain anchored it with another commitment.
    let mut other = withheld.clone();
    other.record.tid = rejected;
    other.record_anchor = None;
    assert_eq!(verdict(&other, &rpc).await, Some("record_anchor_mismatch"));

    // Bad input gets a 4xx with a code.
    for (path, token, expected) in [
        (
            "/api/v1/records/nothex/proof".to_owned(),
            Some(r.token.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_input"),
        ),
        (
            proof_path(&TxId::from_bytes([0xee; 16])),
            Some(r.token.as_str()),
            (StatusCode::NOT_FOUND, "not_found"),
        ),
        (
            format!("{}?content=maybe", proof_path(&valid)),
            Some(r.token.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_input"),
        ),
        (
            proof_path(&valid),
            None,
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
        ),
    ] {
        let (status, body) = call(&r.app, get(&path, token)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (expected.0, Some(expected.1)),
            "{path}"
        );
    }

    // Every kind of tampering fails with its reason, checked against the real chain.
    let tampered = |f: &dyn Fn(&mut ProofBundle)| {
        let mut b = bundle.clone();
        f(&mut b);
        b
    };
    let changed_ti_byte = tampered(&|b| {
        let ti = &mut b.record.content.as_mut().unwrap().signed_ti;
        let at = ti.len() - 64 - 2;
        ti[at] ^= 1;
    });
    let wrong_leaf = tampered(&|b| b.inclusion.leaf_index = 1);
    let altered_path = tampered(&|b| b.inclusion.path[0][31] ^= 1);
    let forged_signature = tampered(&|b| b.checkpoint.signature[0] ^= 1);
    for (what, b, code) in [
        (
            "changed TI byte",
            &changed_ti_byte,
            "record_signature_invalid",
        ),
        ("wrong leaf index", &wrong_leaf, "inclusion_invalid"),
        ("altered path", &altered_path, "inclusion_invalid"),
        (
            "forged checkpoint signature",
            &forged_signature,
            "checkpoint_signature_invalid",
        ),
    ] {
        assert_eq!(verdict(b, &rpc).await, Some(code), "{what}");
    }

    // A checkpoint the relay signed but never anchored: valid offline, unknown on chain.
    r.submit(73).await;
    r.anchor_all().await;
    let store = &r.state.store;
    let leaves = store.log_prefix(5).await.unwrap();
    let hashes: Vec<_> = leaves
        .iter()
        .map(|(_, d)| Keccak256Tree::hash_leaf(d))
        .collect();
    let never_anchored = tampered(&|b| {
        b.checkpoint = Checkpoint::new(
            b.checkpoint.checkpoint.origin(),
            5,
            merkle::root::<Keccak256Tree>(&hashes),
        )
        .unwrap()
        .sign(r.relay_keys.signing_key());
        b.inclusion = merkle::inclusion_proof::<Keccak256Tree>(&hashes, 0).unwrap();
    });
    assert!(never_anchored.verify_offline(&Pinned::default()).ok());
    assert_eq!(
        verdict(&never_anchored, &rpc).await,
        Some("checkpoint_not_anchored")
    );

    // The wrong chain: another chain id, and another chain with the same id.
    let other_id = Anvil::start_with(&AnvilOptions {
        extra_args: vec!["--chain-id".into(), "1337".into()],
        ..AnvilOptions::default()
    })
    .unwrap();
    assert_eq!(
        verdict(&bundle, other_id.url().as_str()).await,
        Some("wrong_chain")
    );
    let same_id = Anvil::start().unwrap();
    assert_eq!(
        verdict(&bundle, same_id.url().as_str()).await,
        Some("checkpoint_not_anchored")
    );

    // The real binary: `mediblock proof` downloads from a served relay, `mediblock verify`
    // checks the file: exit 0; a tampered file: exit 1 with its reason in the JSON.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = r.app.clone();
    tokio::spawn(async move { axum::serve(listener, served).await });
    let dir = std::env::temp_dir().join(format!(
        "mediblock-proof-cli-{}-{}",
        std::process::id(),
        mediblock_relay::now().0
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("nurse.key");
    std::fs::write(&key_file, hex::encode(r.nurse.to_seeds().as_ref())).unwrap();
    let file = dir.join("proof.json");
    let bin = env!("CARGO_BIN_EXE_mediblock");
    let mut c = std::process::Command::new(bin);
    c.args([
        "proof",
        "--url",
        &format!("http://{addr}"),
        "--uid",
        "nurse.bo",
    ])
    .arg("--key")
    .arg(&key_file)
    .args(["--tid", &valid.to_hex()])
    .arg("--out")
    .arg(&file);
    let out = run(c).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let downloaded = proof::read_bundle(&file).unwrap();
    assert_eq!(downloaded.record, bundle.record);
    let mut c = std::process::Command::new(bin);
    c.arg("verify").arg(&file).args(["--rpc", &rpc, "--json"]);
    let out = run(c).await;
    let result: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{result}");
    assert_eq!(result["verified"], true);
    let mut c = std::process::Command::new(bin);
    c.arg("verify").arg(&file).args(["--rpc", &rpc]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("VERIFIED"), "{text}");
    // A file in version 1's shape (no chain.log, no content.template) is refused as of
    // another version — a finding, exit 1 — not as a file that cannot be read.
    let mut v1: Json = serde_json::to_value(&downloaded).unwrap();
    v1["version"] = 1.into();
    v1["chain"].as_object_mut().unwrap().remove("log");
    v1["record"]["content"]
        .as_object_mut()
        .unwrap()
        .remove("template");
    let v1_file = dir.join("v1.json");
    std::fs::write(&v1_file, v1.to_string()).unwrap();
    let mut c = std::process::Command::new(bin);
    c.arg("verify")
        .arg(&v1_file)
        .args(["--rpc", &rpc, "--json"]);
    let out = run(c).await;
    let result: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{result}");
    assert_eq!(result["failure"]["code"], "unsupported_format", "{result}");
    // The stripped rejected file through the binary: the JSON carries the chain's verdict.
    let stripped_file = dir.join("stripped.json");
    std::fs::write(&stripped_file, serde_json::to_string(&stripped).unwrap()).unwrap();
    let mut c = std::process::Command::new(bin);
    c.arg("verify")
        .arg(&stripped_file)
        .args(["--rpc", &rpc, "--json"]);
    let out = run(c).await;
    let result: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{result}");
    assert_eq!(
        result["chain_verdict"],
        serde_json::json!({"verdict": "rejected", "attribute_index": 0}),
        "{result}"
    );
    let bad_file = dir.join("tampered.json");
    std::fs::write(&bad_file, serde_json::to_string(&altered_path).unwrap()).unwrap();
    let mut c = std::process::Command::new(bin);
    c.arg("verify")
        .arg(&bad_file)
        .args(["--rpc", &rpc, "--json"]);
    let out = run(c).await;
    let result: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{result}");
    assert_eq!(result["verified"], false);
    assert_eq!(result["failure"]["code"], "inclusion_invalid");
    // A node that is not there: exit 2, the file's verdict unknown.
    let mut c = std::process::Command::new(bin);
    c.arg("verify")
        .arg(&file)
        .args(["--rpc", "http://127.0.0.1:9"]);
    let out = run(c).await;
    assert_eq!(out.status.code(), Some(2));

    // A lawfully erased record (content and salt destroyed): its file carries no content,
    // its acknowledgement is read back from the chain, and it still verifies.
    // Erasure is decided by `erased_by` (as the API and the audit decide it): a row with
    // only `erased_at` set still opens and exports its content.
    let db = r.raw_db().await;
    sqlx::query("UPDATE records SET erased_at = 1 WHERE tid = $1")
        .bind(valid.as_bytes().to_vec())
        .execute(&db)
        .await
        .unwrap();
    let (status, body) = call(&r.app, get(&proof_path(&valid), Some(&r.token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["record"].get("content").is_some(), "{body}");
    sqlx::query("UPDATE records SET erased_by = $1, envelope = $2 WHERE tid = $3")
        .bind(vec![0x5au8; 16])
        .bind(vec![0u8; 4])
        .bind(valid.as_bytes().to_vec())
        .execute(&db)
        .await
        .unwrap();
    let (status, body) = call(&r.app, get(&proof_path(&valid), Some(&r.token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let erased: ProofBundle = serde_json::from_value(body).unwrap();
    assert!(erased.record.content.is_none());
    assert_eq!(erased.record_anchor, bundle.record_anchor);
    let report = proof::verify(&erased, &rpc, &Pinned::default())
        .await
        .unwrap();
    assert!(report.ok() && !report.content_checked, "{report:#?}");
}

/// A record changed in the store gets no proof file: the relay refuses with a code instead
/// of exporting evidence that does not hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_record_gets_no_proof_file() {
    let mut r = relay(&sqlite_url("refuse")).await;
    let (tid, _) = r.submit(72).await;
    r.anchor_all().await;
    let checkpointer = r.checkpointer("relay", by_count(1));
    r.checkpoint_until(&checkpointer, 1).await;
    let db = r.raw_db().await;
    let (mut envelope,): (Vec<u8>,) = sqlx::query_as("SELECT envelope FROM records WHERE tid = $1")
        .bind(tid.as_bytes().to_vec())
        .fetch_one(&db)
        .await
        .unwrap();
    let last = envelope.len() - 1;
    envelope[last] ^= 1;
    sqlx::query("UPDATE records SET envelope = $1 WHERE tid = $2")
        .bind(envelope)
        .bind(tid.as_bytes().to_vec())
        .execute(&db)
        .await
        .unwrap();
    let (status, body) = call(&r.app, get(&proof_path(&tid), Some(&r.token))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("record_unreadable"))
    );
    // A column that does not decode (a 3-byte patient id) is an inconsistent store, not a
    // failure of the relay.
    sqlx::query("UPDATE records SET pid = $1 WHERE tid = $2")
        .bind(vec![1u8, 2, 3])
        .bind(tid.as_bytes().to_vec())
        .execute(&db)
        .await
        .unwrap();
    let (status, body) = call(&r.app, get(&proof_path(&tid), Some(&r.token))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("store_inconsistent")),
        "{body}"
    );
}

/// Anyone can deploy a registry, enrol themselves as its relay and anchor a made-up record
/// signed by a key they label "dr.ada": the file is consistent with *that* contract. Pinned
/// to the genuine registry it fails; unpinned, the output says the file named its own
/// registry before the verdict, and `--json` shows nothing was pinned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_another_registry_fails_when_the_registry_is_pinned() {
    let mut r = relay(&sqlite_url("genuine")).await;
    let rpc = r.anvil.url().to_string();
    let (tid, _) = r.submit(72).await;
    r.anchor_all().await;
    let checkpointer = r.checkpointer("relay", by_count(1));
    r.checkpoint_until(&checkpointer, 1).await;
    let (status, body) = call(&r.app, get(&proof_path(&tid), Some(&r.token))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let genuine_file: ProofBundle = serde_json::from_value(body).unwrap();
    let registry = EthAddress::from_bytes(r.chain().registry().0.0);
    let chain_id = r.chain().chain_id();

    // The forger: another account on the same chain, its own registry and relay key.
    let mut forger = relay_on(
        &sqlite_url("forger"),
        r.anvil.clone(),
        1,
        "dr.ada",
        Role::Doctor,
    )
    .await;
    let (forged_tid, _) = forger.submit(72).await;
    forger.anchor_all().await;
    let forger_checkpointer = forger.checkpointer("forger", by_count(1));
    forger.checkpoint_until(&forger_checkpointer, 1).await;
    let (status, body) = call(
        &forger.app,
        get(&proof_path(&forged_tid), Some(&forger.token)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let forged: ProofBundle = serde_json::from_value(body).unwrap();
    assert_ne!(forged.chain.registry, registry);
    assert_eq!(forged.chain.chain_id, chain_id);

    // Unpinned, it is consistent with the forger's contract, and the output says so.
    let report = proof::verify(&forged, &rpc, &Pinned::default())
        .await
        .unwrap();
    let text = proof::render(&forged, &report);
    assert!(report.ok(), "{text}");
    let warning = text.find("REGISTRY NOT PINNED").expect(&text);
    let verified = text.find("\nVERIFIED").expect(&text);
    assert!(warning < verified, "{text}");
    assert!(
        text.contains(&format!("0x{}", forged.chain.registry.to_hex())),
        "{text}"
    );

    // Pinned: the registry, the chain id, the genuine relay's key each refuse it.
    for (pinned, code) in [
        (
            Pinned {
                registry: Some(registry),
                ..Pinned::default()
            },
            "pinned_registry_mismatch",
        ),
        (
            Pinned {
                chain_id: Some(chain_id + 1),
                ..Pinned::default()
            },
            "pinned_chain_mismatch",
        ),
        (
            Pinned {
                relay_key: Some(r.relay_keys.public().signing_bytes()),
                ..Pinned::default()
            },
            "pinned_relay_key_mismatch",
        ),
    ] {
        let report = proof::verify(&forged, &rpc, &pinned).await.unwrap();
        assert_eq!(
            report.first_failure().map(ProofFailure::code),
            Some(code),
            "{pinned:?}"
        );
        assert!(
            !proof::render(&forged, &report).contains("\nVERIFIED"),
            "{code}"
        );
    }

    // The real binary, with and without --registry.
    let dir = std::env::temp_dir().join(format!(
        "mediblock-proof-pin-{}-{}",
        std::process::id(),
        mediblock_relay::now().0
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let forged_file = dir.join("forged.json");
    std::fs::write(&forged_file, serde_json::to_string(&forged).unwrap()).unwrap();
    let genuine_path = dir.join("genuine.json");
    std::fs::write(&genuine_path, serde_json::to_string(&genuine_file).unwrap()).unwrap();
    let bin = env!("CARGO_BIN_EXE_mediblock");
    let verify = |file: &std::path::Path, extra: &[&str]| {
        let mut c = std::process::Command::new(bin);
        c.env_remove("MEDIBLOCK_REGISTRY")
            .arg("verify")
            .arg(file)
            .args(["--rpc", &rpc])
            .args(extra);
        c
    };
    let registry_hex = format!("0x{}", registry.to_hex());
    let out = run(verify(
        &forged_file,
        &["--registry", &registry_hex, "--json"],
    ))
    .await;
    let result: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{result}");
    assert_eq!(result["failure"]["code"], "pinned_registry_mismatch");
    assert_eq!(result["pinned"]["registry"], registry.to_hex());
    let out = run(verify(&forged_file, &["--json"])).await;
    let result: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{result}");
    assert_eq!(
        result["pinned"],
        serde_json::json!({"registry": null, "chain_id": null, "relay_key": null}),
        "{result}"
    );
    let out = run(verify(&forged_file, &[])).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.find("REGISTRY NOT PINNED").unwrap() < text.find("\nVERIFIED").unwrap(),
        "{text}"
    );
    // The genuine file with everything pinned: verified, no warning.
    let relay_hex = hex::encode(r.relay_keys.public().signing_bytes());
    let chain_text = chain_id.to_string();
    let out = run(verify(
        &genuine_path,
        &[
            "--registry",
            &registry_hex,
            "--chain-id",
            &chain_text,
            "--relay-key",
            &relay_hex,
        ],
    ))
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(!text.contains("NOT PINNED"), "{text}");
    assert!(
        text.contains("registry, chain id and relay key pinned and matching"),
        "{text}"
    );
    // A malformed pin cannot be checked: exit 2.
    let out = run(verify(&genuine_path, &["--registry", "0x1234"])).await;
    assert_eq!(out.status.code(), Some(2));
}

/// The checkpointer as `serve` runs it: a leaf older than `checkpoint_every_seconds` gets
/// anchored without anyone ticking by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_checkpointer_anchors_an_overdue_leaf() {
    let mut r = relay(&sqlite_url("run")).await;
    r.submit(72).await;
    r.anchor_all().await;
    tokio::spawn(
        r.checkpointer(
            "background",
            CheckpointPolicy {
                every_leaves: 1000,
                max_delay: Duration::from_millis(200),
            },
        )
        .run(),
    );
    let start = Instant::now();
    while r
        .state
        .store
        .latest_anchored_checkpoint()
        .await
        .unwrap()
        .is_none()
    {
        assert!(
            start.elapsed() < DEADLINE,
            "the running checkpointer did not anchor"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(r.chain().latest_checkpoint().await.unwrap().0, 1);
}

/// The two checkpoint settings follow the config file < environment < flags pattern, have
/// defaults, and refuse zero naming the key.
#[test]
fn checkpoint_settings_resolve_with_defaults_and_checks() {
    use mediblock_relay::config::ServeArgs;
    let s = ServeArgs::default().resolve().unwrap();
    assert_eq!(s.checkpoint, CheckpointPolicy::default());
    assert_eq!(
        (s.checkpoint.every_leaves, s.checkpoint.max_delay),
        (256, Duration::from_secs(30))
    );
    let dir = std::env::temp_dir().join(format!("mediblock-cp-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("relay.toml");
    std::fs::write(
        &file,
        "checkpoint_every_leaves = 10\ncheckpoint_every_seconds = 7\n",
    )
    .unwrap();
    let s = ServeArgs {
        config: Some(file.clone()),
        checkpoint_every_seconds: Some(5),
        ..ServeArgs::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(
        s.checkpoint,
        CheckpointPolicy {
            every_leaves: 10,
            max_delay: Duration::from_secs(5)
        }
    );
    for (leaves, seconds, key) in [
        (Some(0), None, "checkpoint_every_leaves"),
        (None, Some(0), "checkpoint_every_seconds"),
    ] {
        let err = ServeArgs {
            checkpoint_every_leaves: leaves,
            checkpoint_every_seconds: seconds,
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap_err();
        assert!(err.starts_with(key), "{err}");
    }
}
