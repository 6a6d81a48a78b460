//! The chain's word against a relay that lies and against another relay, on a real anvil
//! and SQLite, each attack performed as its adversary would:
//!
//! - the relay's own operator (its Ethereum key and its store) anchors a record's tid with
//!   other values than the record's and stores it as valid: the honest worker refuses such
//!   an anchor, and whoever stored it anyway is caught by `mediblock verify` (the real
//!   binary, exit 1, `record_values_mismatch`) and by the audit (`values_mismatch`);
//! - a second relay of the same registry anchors a checkpoint of size 2^64 − 1 and anchors
//!   records under the first relay's next tickets: the first relay's tickets, records and
//!   checkpoints carry on untouched, and its proof files verify.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/http.rs"]
mod http;

#[path = "support/relay.rs"]
mod support;

use http::{call, get, sign_in};

use std::time::{Duration, Instant};

use alloy::primitives::Address;
use axum::Router;
use axum::http::StatusCode;
use mediblock_protocol::encoding::Canonical as _;
use mediblock_protocol::envelope::Envelope;
use mediblock_protocol::ids::{ChainHash, EthAddress, PatientId, Role, TxId, UnixMillis, UserId};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::proof::{Pinned, ProofBundle};
use mediblock_protocol::record::SignedInitialTransaction;
use mediblock_protocol::template::Template;
use mediblock_protocol::validated::{Ack, ValidatedTransaction, Verdict};
use mediblock_relay::AppState;
use mediblock_relay::audit::{Kind, Scope};
use mediblock_relay::chain::anvil::Anvil;
use mediblock_relay::chain::registry::{self, Anchor, MediBlockRegistry, Rule};
use mediblock_relay::chain::{Chain, setup};
use mediblock_relay::checkpointer::{CheckpointPolicy, Checkpointer};
use mediblock_relay::store::submissions::{Outcome, State};
use mediblock_relay::{app, proof};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value as Json;

const TEMPLATES: &str = include_str!("../../protocol/testdata/templates.json");

/// How long any awaited condition may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// A relay (anvil account 0, owner and relay of a fresh registry) on SQLite, with one nurse.
/// On chain the heart rate must be 20..=100, stricter than the relay's 20..=250: a heart
/// rate of 150 passes the relay and is anchored as rejected.
struct Relay {
    anvil: Anvil,
    app: Router,
    state: AppState,
    uid: UserId,
    nurse: Keypair,
    token: String,
    relay_keys: Keypair,
    rng: ChaCha20Rng,
}

async fn relay(name: &str) -> Relay {
    let anvil = Anvil::start().unwrap();
    let file: Json = serde_json::from_str(TEMPLATES).unwrap();
    let template: Template = serde_json::from_value(file["template"].clone()).unwrap();
    let rules = vec![
        Rule::range(20, 100),
        Rule::range(50, 260),
        Rule::range(300, 450),
    ];
    let chain = support::registry_with(&anvil, 0, &template, rules).await;
    let dir = std::env::temp_dir().join(format!(
        "mediblock-relays-{name}-{}-{}",
        std::process::id(),
        mediblock_relay::now().0
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("relay.db").display());
    let store = mediblock_relay::store::Store::open(&url).await.unwrap();
    store
        .insert_template(&template, UnixMillis(1))
        .await
        .unwrap();
    setup::bind_store_log(&store, &chain).await.unwrap();
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    let nurse = Keypair::generate(&mut rng);
    let uid = UserId::new("nurse.bo").unwrap();
    support::enrol(&store, uid.as_str(), Role::Nurse, &nurse).await;
    let (relay_keys, keys) = support::relay_keys(3);
    let state = support::state(store, keys, Some(chain));
    let app = app(state.clone());
    let token = sign_in(&app, uid.as_str(), &nurse).await;
    Relay {
        anvil,
        app,
        state,
        uid,
        nurse,
        token,
        relay_keys,
        rng,
    }
}

impl Relay {
    fn chain(&self) -> &Chain {
        self.state.chain.as_ref().unwrap()
    }

    /// Submits a vital-signs record through the API; returns its tid and patient.
    async fn submit(&mut self, heart_rate: i64) -> (TxId, PatientId) {
        let pid = PatientId::random(&mut self.rng);
        let ticket = support::ticket(&self.app, &self.token).await;
        let ti = support::vital_signs(&mut self.rng, ticket, &self.uid, pid, heart_rate);
        let tid = ti.tid;
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

    /// Runs the honest worker until the queue is empty.
    async fn anchor_all(&self) {
        let worker = mediblock_relay::worker::Worker::new(
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

    /// Ticks a checkpointer until the store holds an anchored checkpoint of `size` leaves.
    async fn checkpoint_to(&self, size: u64) {
        let policy = CheckpointPolicy {
            every_leaves: 1,
            max_delay: Duration::from_secs(3600),
        };
        let checkpointer = Checkpointer::new(
            self.state.clone(),
            self.chain().clone(),
            policy,
            "cp".into(),
        );
        let start = Instant::now();
        while self
            .state
            .store
            .latest_anchored_checkpoint()
            .await
            .unwrap()
            .is_none_or(|c| c.size() < size)
        {
            assert!(
                start.elapsed() < DEADLINE,
                "no checkpoint of {size} in time"
            );
            checkpointer.tick().await.unwrap();
        }
    }

    /// The record's anchor with these values, sent with the relay's own Ethereum key, as
    /// someone holding that key would: the registry judges these values, not the record's.
    async fn anchor_with_values(
        &self,
        tid: &TxId,
        values: Vec<i64>,
    ) -> mediblock_relay::chain::Anchored {
        let sub = self.state.store.submission(tid).await.unwrap().unwrap();
        let mut anchor = mediblock_relay::worker::anchor_of(&self.state, self.chain(), &sub)
            .await
            .unwrap();
        assert_ne!(anchor.values, values, "the attack needs other values");
        anchor.values = values;
        let receipt = registry::send_raw(
            self.chain().provider(),
            self.chain().registry(),
            anchor.calldata(),
        )
        .await
        .unwrap();
        self.chain()
            .anchored_in(&receipt, tid.as_bytes())
            .expect("the forged anchor is in the relay's log")
    }

    /// Stores `tid` as a valid record with the acknowledgement of `anchored`, as a relay
    /// that lies would (the honest worker refuses to): the signed record sealed at rest
    /// with the relay's key, in the accepting submission's place.
    async fn store_with(&self, tid: &TxId, anchored: &mediblock_relay::chain::Anchored) {
        let keys = &self.state.keys;
        let sub = self.state.store.submission(tid).await.unwrap().unwrap();
        let envelope = Envelope::from_canonical_bytes(&sub.sealed_ti).unwrap();
        let plain = envelope.open(&keys.at_rest, tid.as_bytes()).unwrap();
        let validated = ValidatedTransaction {
            signed: SignedInitialTransaction::from_canonical_bytes(&plain).unwrap(),
            ack: Ack {
                verdict: Verdict::Valid,
                chain_id: self.chain().chain_id(),
                contract: EthAddress::from_bytes(self.chain().registry().0.0),
                tx_hash: ChainHash::from_bytes(anchored.tx_hash),
                block_number: anchored.block_number,
                block_hash: ChainHash::from_bytes(anchored.block_hash),
                log_index: anchored.log_index,
                batch: None,
            },
        };
        let sealed = validated
            .seal_at_rest(&keys.at_rest, &mut self.state.rng())
            .unwrap()
            .to_canonical_bytes();
        assert!(
            self.state
                .store
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
                .unwrap()
        );
    }

    /// `mediblock verify --json` of `tid`'s proof file (exported through the API) against
    /// the chain, pinned to this registry: its exit code and JSON.
    async fn verify_with_the_binary(&self, tid: &TxId) -> (Option<i32>, Json) {
        let (status, body) = call(
            &self.app,
            get(
                &format!("/api/v1/records/{}/proof", tid.to_hex()),
                Some(&self.token),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let bundle: ProofBundle = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(bundle.chain.log, self.chain().log());
        let file = std::env::temp_dir().join(format!(
            "mediblock-relays-{}-{}.json",
            std::process::id(),
            tid.to_hex()
        ));
        std::fs::write(&file, body.to_string()).unwrap();
        let registry = format!("0x{}", hex::encode(self.chain().registry().0.0));
        let rpc = self.anvil.url().to_string();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_mediblock"))
                .arg("verify")
                .arg(&file)
                .args(["--rpc", &rpc, "--registry", &registry, "--json"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let json = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.code(), json)
    }
}

/// A relay's own key anchors a record's tid with other values than the record's: a heart
/// rate of 150, which the chain's rules reject, anchored as 80, which they accept. The
/// honest worker never stores a record on such an anchor; a lying relay that does is
/// caught by the proof file's verifier and by the audit, with the values named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verdict_about_other_values_is_refused_and_detected() {
    let mut r = relay("values").await;
    let (honest, _) = r.submit(72).await;
    r.anchor_all().await;

    // The honest worker finds its tid taken by an anchor of other values: it fails the
    // record, it does not store it under that verdict.
    let (refused, refused_pid) = r.submit(150).await;
    r.anchor_with_values(&refused, vec![80, 120, 368]).await;
    r.anchor_all().await;
    let sub = r.state.store.submission(&refused).await.unwrap().unwrap();
    assert_eq!(sub.state, State::Failed);
    let detail: Json = serde_json::from_str(sub.detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["code"], "anchored_otherwise");
    let (status, body) = call(
        &r.app,
        get(
            &format!("/api/v1/patients/{}/records", refused_pid.to_hex()),
            Some(&r.token),
        ),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::json!([])));

    // A lying relay stores it anyway, as valid, on the forged anchor.
    let (forged, _) = r.submit(150).await;
    let anchored = r.anchor_with_values(&forged, vec![80, 120, 368]).await;
    assert_eq!(anchored.record.verdict, registry::Verdict::Valid);
    r.store_with(&forged, &anchored).await;
    r.checkpoint_to(3).await;

    let (code, json) = r.verify_with_the_binary(&forged).await;
    assert_eq!(code, Some(1), "{json:#}");
    assert_eq!(json["verified"], false);
    assert_eq!(
        json["failure"]["code"], "record_values_mismatch",
        "{json:#}"
    );
    let (code, json) = r.verify_with_the_binary(&honest).await;
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(json["verified"], true);

    let report = mediblock_relay::audit::run(
        &r.state.store,
        r.chain(),
        r.state.keys.clone(),
        Scope::default(),
        None,
    )
    .await
    .unwrap();
    // Both anchors of other values are found: the one a lying relay stored, and the one
    // the honest worker refused (someone anchored it with the relay's key). Nothing else.
    let mut found: Vec<_> = report.findings.iter().collect();
    found.sort_by_key(|f| f.tid.clone());
    let mut expected = [forged.to_hex(), refused.to_hex()];
    expected.sort();
    assert_eq!(
        found
            .iter()
            .map(|f| f.tid.clone().unwrap())
            .collect::<Vec<_>>(),
        expected,
        "{found:#?}"
    );
    let record_hash = hex::encode(mediblock_protocol::generator::values_hash(&[150, 120, 368]));
    let chain_hash = hex::encode(mediblock_protocol::generator::values_hash(&[80, 120, 368]));
    for f in &found {
        assert_eq!(f.kind, Kind::ValuesMismatch, "{f:#?}");
        assert_eq!(f.kind.as_str(), "values_mismatch");
        assert_eq!(f.evidence["record_values_hash"], record_hash);
        assert_eq!(f.evidence["chain_values_hash"], chain_hash);
        assert_eq!(f.evidence["chain_verdict"], "valid");
    }
    let refused_finding = found
        .iter()
        .find(|f| f.tid.as_deref() == Some(refused.to_hex().as_str()))
        .unwrap();
    assert_eq!(refused_finding.evidence["submission_state"], "failed");
    assert!(!report.clean);
}

/// A second relay of the same registry (anvil account 5, added by the admin) tries to stop
/// the first relay: it anchors a checkpoint of size 2^64 − 1 and records under the first
/// relay's next tickets, on its own path and by co-signing for a wallet. Each lands in the
/// second relay's own log; the first relay checks its tickets at start-up and keeps them,
/// anchors and stores those very tickets' records, checkpoints its log before and after
/// the second relay is removed, and its proof files verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_relay_cannot_touch_this_relays_log_or_tickets() {
    let mut r = relay("other").await;
    let (first, _) = r.submit(70).await;
    r.anchor_all().await;
    r.checkpoint_to(1).await;

    let admin = MediBlockRegistry::new(r.chain().registry(), r.chain().provider().clone());
    let intruder = r.anvil.address(5);
    admin
        .addRelay(intruder)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let wallet = r.anvil.address(6);
    admin
        .enrollWallet(wallet)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let theirs = registry::provider(r.anvil.url(), r.anvil.signer(5));
    let their_log = admin.logOf(intruder).call().await.unwrap();
    assert_ne!(their_log, r.chain().log());

    // Size 2^64 − 1 in the intruder's log.
    registry::send_raw(
        &theirs,
        r.chain().registry(),
        registry::checkpoint_calldata(u64::MAX, &[0xee; 32]),
    )
    .await
    .unwrap();
    let theirs_latest = admin.latestCheckpoint(their_log).call().await.unwrap();
    assert_eq!(theirs_latest.size, u64::MAX);

    // The first relay's next tickets, used by the intruder on both paths.
    let next = r.state.store.next_ticket().await.unwrap();
    let handle = r
        .chain()
        .template_handle(
            "vital-signs"
                .parse::<mediblock_protocol::ids::TemplateId>()
                .unwrap()
                .chain_id(),
            1,
        )
        .await
        .unwrap()
        .unwrap();
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    for (i, ticket) in (next..next + 3).enumerate() {
        let anchor = Anchor {
            tid: *TxId::for_ticket(ticket, &mut rng).as_bytes(),
            commitment: [0x5a; 32],
            handle,
            values: vec![60, 120, 368],
        };
        if i == 2 {
            let domain = registry::domain(r.chain().chain_id(), r.chain().registry());
            let deadline = u64::MAX / 2;
            let cosig = anchor
                .cosign(&r.anvil.signer(5), &domain, deadline, wallet)
                .unwrap();
            registry::send_raw(
                &registry::provider(r.anvil.url(), r.anvil.signer(6)),
                r.chain().registry(),
                anchor.cosigned_calldata(&cosig),
            )
            .await
            .unwrap();
        } else {
            registry::send_raw(&theirs, r.chain().registry(), anchor.calldata())
                .await
                .unwrap();
        }
        assert!(admin.ticketUsed(their_log, ticket).call().await.unwrap());
        assert!(
            !r.chain().ticket_used(ticket).await.unwrap(),
            "ticket {ticket}"
        );
    }
    // At start-up the relay reads its own log's ticket bits: nothing to move away from.
    assert_eq!(
        setup::ensure_fresh_tickets(&r.state.store, r.chain())
            .await
            .unwrap(),
        None
    );

    // Those very tickets: the first relay's records anchor and are stored.
    let mut tids = Vec::new();
    for hr in [71, 72, 73] {
        tids.push(r.submit(hr).await.0);
    }
    assert_eq!(
        tids.iter().map(TxId::ticket).collect::<Vec<_>>(),
        (next..next + 3).collect::<Vec<_>>()
    );
    r.anchor_all().await;
    for tid in &tids {
        let sub = r.state.store.submission(tid).await.unwrap().unwrap();
        assert_eq!(sub.state, State::Stored, "{:?}", sub.detail);
    }
    r.checkpoint_to(4).await;

    // The intruder removed: its log is frozen with its huge size; the first relay's goes on.
    admin
        .removeRelay(intruder)
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert_eq!(
        admin.logWriter(their_log).call().await.unwrap(),
        Address::ZERO
    );
    assert_eq!(
        admin.latestCheckpoint(their_log).call().await.unwrap().size,
        u64::MAX
    );
    tids.push(r.submit(74).await.0);
    r.anchor_all().await;
    r.checkpoint_to(5).await;
    assert_eq!(r.chain().latest_checkpoint().await.unwrap().0, 5);

    let pinned = Pinned {
        relay_key: Some(r.relay_keys.public().signing_bytes()),
        registry: Some(EthAddress::from_bytes(r.chain().registry().0.0)),
        chain_id: Some(r.chain().chain_id()),
    };
    for tid in std::iter::once(&first).chain(&tids) {
        let (status, body) = call(
            &r.app,
            get(
                &format!("/api/v1/records/{}/proof", tid.to_hex()),
                Some(&r.token),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let bundle: ProofBundle = serde_json::from_value(body).unwrap();
        let report = proof::verify(&bundle, r.anvil.url().as_ref(), &pinned)
            .await
            .unwrap();
        assert!(report.ok(), "{}", proof::render(&bundle, &report));
        assert_eq!(report.chain_verdict, Some(Verdict::Valid));
    }
}
