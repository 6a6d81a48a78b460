//! The whole per-record path on a real anvil chain, on SQLite and on PostgreSQL: a nurse
//! submits, the worker anchors, the record is stored with a correct ACK; a record the relay
//! accepts but the chain's rules refuse ends in the rejected audit with the chain's verdict;
//! records queued while no worker runs are each stored exactly once when one starts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/postgres.rs"]
mod postgres;

#[path = "support/http.rs"]
mod http;

#[path = "support/relay.rs"]
mod support;

use http::{call, get, post, sign_in};

use alloy::primitives::Address;
use alloy::providers::Provider as _;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use mediblock_protocol::ids::{
    AttrName, PatientId, Role, Salt, TemplateRef, TemplateVersion, TxId, UnixMillis, UserId,
};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::record::InitialTransaction;
use mediblock_protocol::template::Template;
use mediblock_protocol::value::Value;
use mediblock_relay::chain::anvil::Anvil;
use mediblock_relay::chain::registry::{self, Rule};
use mediblock_relay::chain::{Chain, setup};
use mediblock_relay::store::Store;
use mediblock_relay::worker::Worker;
use mediblock_relay::{AppState, app};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value as Json, json};
use tower::ServiceExt as _;

const TEMPLATES: &str = include_str!("../../protocol/testdata/templates.json");

struct Relay {
    app: Router,
    state: AppState,
    nurse: Keypair,
    token: String,
    relay_keys: Keypair,
    rng: ChaCha20Rng,
    _anvil: Anvil,
}

/// A relay on `database_url` and a fresh anvil with a deployed registry. The vital-signs
/// template is registered on chain with a *stricter* heart-rate rule (20..=100) than the
/// relay's (20..=250), so a heart rate of 150 passes the relay and fails the chain.
async fn relay(database_url: &str) -> Relay {
    let anvil = Anvil::start().unwrap();
    let file: Json = serde_json::from_str(TEMPLATES).unwrap();
    let template: Template = serde_json::from_value(file["template"].clone()).unwrap();
    // Heart rate 20..=100 on chain, stricter than the relay's rules.
    let chain = support::registry_with(
        &anvil,
        0,
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
    let mut rng = ChaCha20Rng::from_seed([21; 32]);
    let nurse = Keypair::generate(&mut rng);
    support::enrol(&store, "nurse.bo", Role::Nurse, &nurse).await;
    let (relay_keys, keys) = support::relay_keys(1);
    let state = support::state(store, keys, Some(chain));
    let app = app(state.clone());
    let token = sign_in(&app, "nurse.bo", &nurse).await;
    Relay {
        app,
        state,
        nurse,
        token,
        relay_keys,
        rng,
        _anvil: anvil,
    }
}

impl Relay {
    async fn submit(&mut self, heart_rate: i64) -> (TxId, PatientId) {
        let pid = PatientId::random(&mut self.rng);
        let nurse = UserId::new("nurse.bo").unwrap();
        let ticket = support::ticket(&self.app, &self.token).await;
        let mut ti = support::vital_signs(&mut self.rng, ticket, &nurse, pid, heart_rate);
        // Free text too: it is sealed and never goes on chain.
        ti.attributes.insert(
            AttrName::new("notes").unwrap(),
            Value::Text("Resting, no distress.".into()),
        );
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

    /// Follows the submission's event stream to its final state (event-driven, no sleeps).
    async fn final_state(&self, tid: &TxId) -> Json {
        self.final_state_as(tid, &self.token).await
    }

    /// [`Relay::final_state`] for the author signed in with `token`.
    async fn final_state_as(&self, tid: &TxId, token: &str) -> Json {
        let res = self
            .app
            .clone()
            .oneshot(
                Request::get(format!("/api/v1/submissions/{tid}/events"))
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let last = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .next_back()
            .unwrap();
        serde_json::from_str(last).unwrap()
    }

    fn worker(&self, name: &str) -> Worker {
        Worker::new(
            self.state.clone(),
            self.state.chain.clone().unwrap(),
            name.into(),
        )
    }
}

async fn full_path(database_url: &str) {
    let mut r = relay(database_url).await;
    tokio::spawn(r.worker("w1").run());
    let (status, _) = call(&r.app, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);

    // A valid record: anchored, stored, with an ACK that matches the chain.
    let (tid, pid) = r.submit(72).await;
    let done = r.final_state(&tid).await;
    assert_eq!(done["state"], "stored", "{done}");
    let (status, records) = call(
        &r.app,
        Request::get(format!("/api/v1/patients/{pid}/records"))
            .header("authorization", format!("Bearer {}", r.token))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ack = &records[0]["validated"]["ack"];
    assert_eq!(ack["verdict"]["verdict"], "valid");
    assert_eq!(ack["chain_id"], 31337);
    assert_eq!(ack["block_number"], done["block_number"]);
    assert_eq!(ack["tx_hash"], done["tx_hash"]);
    let chain = r.state.chain.as_ref().unwrap();
    let tx: [u8; 32] = hex::decode(ack["tx_hash"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let receipt = chain
        .confirmed_receipt(&tx)
        .await
        .unwrap()
        .expect("confirmed");
    assert!(receipt.status());
    assert_eq!(
        ack["block_hash"].as_str().unwrap(),
        hex::encode(receipt.block_hash.unwrap().0)
    );
    let anchored = chain.anchored_in(&receipt, tid.as_bytes()).unwrap();
    assert_eq!(
        hex::encode(anchored.record.commitment),
        records[0]["commitment"].as_str().unwrap()
    );

    // Passes the relay (≤ 250) but not the chain (≤ 100): anchored as rejected at attribute 0.
    let (tid, pid) = r.submit(150).await;
    let done = r.final_state(&tid).await;
    assert_eq!(done["state"], "rejected", "{done}");
    assert_eq!(done["detail"]["attribute_index"], 0);
    let audit = r.state.store.rejected_records(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].tid, tid);
    assert_eq!(audit[0].source.as_deref(), Some("chain"));
    assert!(
        r.state
            .store
            .records_of_patient(&pid)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_path_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("mediblock-anchor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    full_path(&format!("sqlite://{}", dir.join("a.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_path_on_postgres() {
    full_path(&postgres::shared().fresh_database().unwrap()).await;
}

/// Records accepted while no worker runs (a relay that stopped after answering 202) are each
/// stored exactly once when workers start — two of them, racing, as after a restart with two
/// relays on one PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_records_are_stored_exactly_once_after_a_restart() {
    let mut r = relay(&postgres::shared().fresh_database().unwrap()).await;
    let mut tids = Vec::new();
    for hr in [60, 61, 62, 63, 64] {
        tids.push(r.submit(hr).await.0);
    }
    assert_eq!(r.state.store.queue_depth().await.unwrap(), 5);
    tokio::spawn(r.worker("after-restart-a").run());
    tokio::spawn(r.worker("after-restart-b").run());
    for tid in &tids {
        assert_eq!(r.final_state(tid).await["state"], "stored");
    }
    assert_eq!(r.state.store.queue_depth().await.unwrap(), 0);
    // Exactly one anchoring event per record on chain.
    let chain = r.state.chain.as_ref().unwrap();
    for tid in &tids {
        let hash = chain
            .find_anchor(tid.as_bytes())
            .await
            .unwrap()
            .expect("anchored");
        let receipt = chain.confirmed_receipt(&hash).await.unwrap().unwrap();
        assert!(chain.anchored_in(&receipt, tid.as_bytes()).is_some());
    }
    let leaves = r.state.store.log_leaves().await.unwrap();
    assert_eq!(leaves.len(), 5);
}

/// `/readyz` says 503 when the chain's node is gone, and nothing is lost: the submission
/// stays queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_a_dead_chain() {
    let dir = std::env::temp_dir().join(format!("mediblock-ready-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut r = relay(&format!("sqlite://{}", dir.join("r.db").display())).await;
    let (tid, _) = r.submit(70).await;
    drop(std::mem::replace(&mut r._anvil, Anvil::start().unwrap()));
    // The state still points at the first (now killed) node.
    let (status, _) = call(&r.app, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let worker = r.worker("w-dead-chain");
    assert!(worker.tick().await.is_err());
    let sub = r.state.store.submission(&tid).await.unwrap().unwrap();
    assert_eq!(
        sub.state,
        mediblock_relay::store::submissions::State::Queued
    );
    assert!(sub.detail.is_some());
}

/// The relay refuses to run against an address that is not a registry of version 2: no
/// contract there, a contract that is no registry, or a registry deployed by the MediBlock
/// before this one (version 1, the committed bytecode of that release) — each with a
/// sentence saying what it found and what to do. An account that is not one of the
/// registry's relays is refused too.
#[tokio::test]
async fn an_address_without_a_version_2_registry_is_refused_at_start() {
    let anvil = Anvil::start().unwrap();
    let provider = registry::provider(anvil.url(), anvil.signer(0));
    let registry = setup::deploy_as_relay(&provider, anvil.address(0))
        .await
        .unwrap();
    let chain = Chain::connect(provider.clone(), registry, 1).await.unwrap();
    assert_eq!(
        chain
            .clone()
            .for_relay(anvil.address(0))
            .await
            .unwrap()
            .log(),
        1
    );
    let err = chain
        .for_relay(anvil.address(4))
        .await
        .expect_err("not a relay");
    assert!(
        err.to_string().contains("is not a relay of the registry"),
        "{err}"
    );

    // The previous release's registry, deployed from its committed creation bytecode.
    let mut code = hex::decode(include_str!("data/registry-v1.bytecode.hex").trim()).unwrap();
    code.extend_from_slice(&[0; 12]);
    code.extend_from_slice(anvil.address(0).as_slice());
    let receipt = provider
        .send_transaction(
            alloy::rpc::types::TransactionRequest::default()
                .create()
                .input(code.into()),
        )
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    let v1 = receipt.contract_address.expect("deployed");
    for (address, found) in [
        (Address::repeat_byte(0x42), "is no MediBlock registry"),
        (anvil.address(3), "is no MediBlock registry"),
        (v1, "is a MediBlock registry of version 1"),
    ] {
        let err = Chain::connect(provider.clone(), address, 1)
            .await
            .expect_err("refused");
        let text = err.to_string();
        assert!(text.contains(found), "{address}: {text}");
        assert!(text.contains("deploy a new registry"), "{text}");
    }
}

/// The wallet path: the admin enrols a wallet holder (her address becomes a submitter on
/// chain), the relay validates and co-signs, her wallet sends the transaction and pays the
/// gas, and the relay's worker stores the record when the chain's event appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_path_with_an_anvil_account_as_the_wallet() {
    let dir = std::env::temp_dir().join(format!("mediblock-wallet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut r = relay(&format!("sqlite://{}", dir.join("w.db").display())).await;
    tokio::spawn(r.worker("w-wallet").run());

    let admin = Keypair::generate(&mut r.rng);
    support::enrol(&r.state.store, "admin", Role::Admin, &admin).await;
    let admin_token = sign_in(&r.app, "admin", &admin).await;
    let dr = Keypair::generate(&mut r.rng);
    let wallet = r._anvil.address(2);
    let body = json!({"uid": "dr.wu", "role": "doctor", "keys": dr.public(), "eth_address": wallet.to_string()});
    let (status, enrolled) = call(
        &r.app,
        post("/api/v1/users", Some(&admin_token), body.to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
    let token = sign_in(&r.app, "dr.wu", &dr).await;

    let name = |s: &str| AttrName::new(s).unwrap();
    let ticket = support::ticket(&r.app, &token).await;
    let ti = InitialTransaction {
        tid: TxId::for_ticket(ticket, &mut r.rng),
        uid: UserId::new("dr.wu").unwrap(),
        pid: PatientId::random(&mut r.rng),
        template: TemplateRef {
            id: "vital-signs".parse().unwrap(),
            version: TemplateVersion::new(1).unwrap(),
        },
        attributes: [
            (name("heart_rate"), Value::Integer(66)),
            (name("systolic"), Value::Integer(118)),
            (name("temperature"), Value::Integer(366)),
        ]
        .into_iter()
        .collect(),
        created_at: UnixMillis(5),
        salt: Salt::random(&mut r.rng),
        prev: None,
    };
    let tid = ti.tid;
    let signed_ti = ti.clone();
    let (status, answer) = support::post_sealed(
        &r.app,
        "/api/v1/submissions/wallet",
        &token,
        ti,
        &dr,
        &r.relay_keys.public(),
        &mut r.rng,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["state"], "awaiting_wallet");
    assert_eq!(answer["wallet"]["chain_id"], 31337);
    assert_eq!(answer["wallet"]["record"]["submitter"], wallet.to_string());
    assert_eq!(answer["wallet"]["record"]["values"], json!([66, 118, 366]));

    // A wallet that has not sent yet holds up nobody: a record queued after it is anchored
    // and stored meanwhile (the worker never claims a submission still awaiting its wallet).
    let (later, _) = r.submit(71).await;
    let later_state = r.final_state(&later).await;
    assert_eq!(later_state["state"], "stored", "{later_state}");
    let (_, waiting) = call(
        &r.app,
        get(&format!("/api/v1/submissions/{tid}"), Some(&token)),
    )
    .await;
    assert_eq!(waiting["state"], "awaiting_wallet", "{waiting}");

    // The wallet sends the co-signed transaction itself.
    let wallet_provider = registry::provider(r._anvil.url(), r._anvil.signer(2));
    let to: Address = answer["wallet"]["to"].as_str().unwrap().parse().unwrap();
    let data: alloy::primitives::Bytes =
        answer["wallet"]["data"].as_str().unwrap().parse().unwrap();
    let receipt = registry::send_raw(&wallet_provider, to, data)
        .await
        .unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.from, wallet);

    let done = r.final_state_as(&tid, &token).await;
    assert_eq!(done["state"], "stored", "{done}");
    assert_eq!(done["tx_hash"], hex::encode(receipt.transaction_hash.0));
    let chain = r.state.chain.as_ref().unwrap();
    let anchored = chain.anchored_in(&receipt, tid.as_bytes()).unwrap();
    assert_eq!(anchored.record.submitter, wallet);
    assert_eq!(anchored.record.path, registry::AnchorPath::Wallet);

    // A co-signed transaction the wallet never sends expires once the chain's time passes
    // its deadline: the submission ends `expired`, and the registry refuses it from then on.
    let ticket = support::ticket(&r.app, &token).await;
    let unsent = InitialTransaction {
        tid: TxId::for_ticket(ticket, &mut r.rng),
        pid: PatientId::random(&mut r.rng),
        salt: Salt::random(&mut r.rng),
        created_at: UnixMillis(6),
        ..signed_ti
    };
    let unsent_tid = unsent.tid;
    let (status, answer) = support::post_sealed(
        &r.app,
        "/api/v1/submissions/wallet",
        &token,
        unsent,
        &dr,
        &r.relay_keys.public(),
        &mut r.rng,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let deadline = answer["wallet"]["deadline"].as_u64().unwrap();
    use alloy::providers::Provider as _;
    let provider = chain.provider();
    let head = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap();
    let _: serde_json::Value = provider
        .raw_request(
            "evm_increaseTime".into(),
            (deadline + 1 - head.header.timestamp,),
        )
        .await
        .unwrap();
    let _: serde_json::Value = provider.raw_request("evm_mine".into(), ()).await.unwrap();
    let expired = r.final_state_as(&unsent_tid, &token).await;
    assert_eq!(expired["state"], "expired", "{expired}");
    let data: alloy::primitives::Bytes =
        answer["wallet"]["data"].as_str().unwrap().parse().unwrap();
    match registry::send_raw(&wallet_provider, to, data).await {
        Err(_) => {}
        Ok(receipt) => assert!(
            !receipt.status(),
            "the registry refuses an expired co-signature"
        ),
    }
    let report = mediblock_relay::audit::run(
        &r.state.store,
        chain,
        r.state.keys.clone(),
        mediblock_relay::audit::Scope::default(),
        None,
    )
    .await
    .unwrap();
    assert!(
        report.clean && report.findings.is_empty(),
        "{:#?}",
        report.findings
    );

    // Without an enrolled wallet address the wallet path is refused.
    let (status, err) = call(
        &r.app,
        post("/api/v1/submissions/wallet", Some(&r.token), "{}"),
    )
    .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
}

/// Anchors are found however far apart they are: the chain's log queries walk the chain in
/// ranges of `LOG_RANGE` blocks (hosted nodes refuse wider ones) and still see every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchors_are_found_across_log_ranges() {
    use alloy::providers::Provider as _;
    use mediblock_relay::chain::LOG_RANGE;
    let dir = std::env::temp_dir().join(format!("mediblock-ranges-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut r = relay(&format!("sqlite://{}", dir.join("r.db").display())).await;
    tokio::spawn(r.worker("w-ranges").run());
    let (first, _) = r.submit(70).await;
    assert_eq!(r.final_state(&first).await["state"], "stored");
    let chain = r.state.chain.clone().unwrap();
    let _: serde_json::Value = chain
        .provider()
        .raw_request("anvil_mine".into(), (2 * LOG_RANGE + 7,))
        .await
        .unwrap();
    let (second, _) = r.submit(71).await;
    assert_eq!(r.final_state(&second).await["state"], "stored");
    assert!(chain.head().await.unwrap() > 2 * LOG_RANGE);
    let found = (
        chain.find_anchor(first.as_bytes()).await.unwrap(),
        chain.find_anchor(second.as_bytes()).await.unwrap(),
    );
    assert!(found.0.is_some() && found.1.is_some(), "{found:?}");
    assert_ne!(found.0, found.1);
    assert_eq!(
        chain
            .find_anchor(TxId::random(&mut r.rng).as_bytes())
            .await
            .unwrap(),
        None
    );
}

/// The command line's client (`mediblock enrol`, `mediblock submit`) against the relay over
/// real HTTP: the administrator enrols a nurse from her key file, and her record — with a
/// ticket taken first — is anchored and stored; a value outside the rules is refused before
/// anything is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_client_enrols_and_submits() {
    use mediblock_relay::client;
    let dir = std::env::temp_dir().join(format!("mediblock-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let r = relay(&format!("sqlite://{}", dir.join("c.db").display())).await;
    tokio::spawn(r.worker("w-cli").run());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, r.app.clone()).into_future());

    let (admin_key, nurse_key) = (dir.join("admin.key"), dir.join("nurse.key"));
    let _ = std::fs::remove_file(&admin_key);
    let _ = std::fs::remove_file(&nurse_key);
    client::keys_new(&admin_key).unwrap();
    let admin = client::read_keys(&admin_key).unwrap();
    support::enrol(&r.state.store, "admin", Role::Admin, &admin).await;
    let public = client::keys_new(&nurse_key).unwrap();
    let uid = UserId::new("nurse.cli").unwrap();
    let enrolled = client::enrol(&base, &admin_key, &uid, "nurse", &public)
        .await
        .unwrap();
    assert_eq!(enrolled["uid"], "nurse.cli", "{enrolled}");

    let template = TemplateRef {
        id: "vital-signs".parse().unwrap(),
        version: TemplateVersion::new(1).unwrap(),
    };
    let fields = |hr: &str| {
        vec![
            format!("heart_rate={hr}"),
            "systolic=120".to_owned(),
            "temperature=36.8".to_owned(),
        ]
    };
    let done = client::submit(&base, &nurse_key, &uid, &template, None, &fields("72"))
        .await
        .unwrap();
    assert_eq!(done["submission"]["state"], "stored", "{done}");
    let tid: TxId = done["submission"]["tid"].as_str().unwrap().parse().unwrap();
    let sub = r.state.store.submission(&tid).await.unwrap().unwrap();
    assert!(sub.block_number.is_some());
    assert!(
        r.state
            .chain
            .as_ref()
            .unwrap()
            .find_anchor(tid.as_bytes())
            .await
            .unwrap()
            .is_some(),
        "anchored under the ticketed tid"
    );

    let refused = client::submit(&base, &nurse_key, &uid, &template, None, &fields("400"))
        .await
        .expect_err("refused before sending");
    assert!(refused.contains("heart_rate"), "{refused}");
}

/// A ticket someone else already used on chain (a store restored from a backup, or cloned,
/// issues it again): the relay's record with it fails for good, with a reason, instead of
/// being retried forever; the audit finds nothing wrong with it (the chain shows the other
/// tid with its ticket) and reports the foreign anchor as a record missing from the store.
/// At start-up, a store whose next tickets the chain has used moves to a fresh base.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_taken_on_chain_fails_its_record_and_the_store_moves_on() {
    use mediblock_protocol::generator::BlockchainTransaction;
    use mediblock_protocol::ids::Commitment;
    use mediblock_relay::audit::{Kind, Scope};
    let dir = std::env::temp_dir().join(format!("mediblock-taken-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut r = relay(&format!("sqlite://{}", dir.join("t.db").display())).await;
    tokio::spawn(r.worker("w-taken").run());
    let chain = r.state.chain.clone().unwrap();
    let template = TemplateRef {
        id: "vital-signs".parse().unwrap(),
        version: TemplateVersion::new(1).unwrap(),
    };
    let handle = chain
        .template_handle(template.id.chain_id(), 1)
        .await
        .unwrap()
        .unwrap();
    // Another party anchors a record under `ticket` directly on the registry.
    let anchor_elsewhere = |ticket: u64, rng: &mut ChaCha20Rng| {
        let tc = BlockchainTransaction {
            tid: TxId::for_ticket(ticket, rng),
            commitment: Commitment::from_bytes([0x5a; 32]),
            template: template.clone(),
            values: vec![72, 120, 368],
        };
        let chain = chain.clone();
        async move {
            let receipt = registry::send_raw(
                chain.provider(),
                chain.registry(),
                registry::Anchor::new(&tc, handle).calldata(),
            )
            .await
            .unwrap();
            assert!(receipt.status());
            tc.tid
        }
    };

    let ticket = support::ticket(&r.app, &r.token).await;
    let foreign = anchor_elsewhere(ticket, &mut r.rng).await;
    let nurse = UserId::new("nurse.bo").unwrap();
    let pid = PatientId::random(&mut r.rng);
    let ti = support::vital_signs(&mut r.rng, ticket, &nurse, pid, 72);
    let tid = ti.tid;
    let (status, body) = support::post_sealed(
        &r.app,
        "/api/v1/submissions",
        &r.token,
        ti,
        &r.nurse,
        &r.relay_keys.public(),
        &mut r.rng,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let done = r.final_state(&tid).await;
    assert_eq!(done["state"], "failed", "{done}");
    assert_eq!(done["detail"]["code"], "ticket_taken", "{done}");
    // Records behind it are anchored as usual.
    let (next, _) = r.submit(70).await;
    assert_eq!(r.final_state(&next).await["state"], "stored");

    let report = mediblock_relay::audit::run(
        &r.state.store,
        &chain,
        r.state.keys.clone(),
        Scope::default(),
        None,
    )
    .await
    .unwrap();
    let found: Vec<_> = report
        .findings
        .iter()
        .map(|f| (f.kind, f.tid.clone()))
        .collect();
    assert_eq!(
        found,
        vec![(Kind::Deleted, Some(foreign.to_hex()))],
        "{report:#?}"
    );

    // Start-up: nothing used ahead of the next ticket, nothing to do; once the chain has used
    // a ticket ahead of it, the store moves to a fresh base.
    let store = &r.state.store;
    assert_eq!(
        setup::ensure_fresh_tickets(store, &chain).await.unwrap(),
        None
    );
    let next_ticket = store.next_ticket().await.unwrap();
    anchor_elsewhere(next_ticket + 3, &mut r.rng).await;
    let base = setup::ensure_fresh_tickets(store, &chain)
        .await
        .unwrap()
        .expect("moved");
    assert_eq!(base % 256, 0);
    assert_eq!(store.next_ticket().await.unwrap(), base);
    assert_eq!(support::ticket(&r.app, &r.token).await, base);
    assert_eq!(
        setup::ensure_fresh_tickets(store, &chain).await.unwrap(),
        None
    );
}

/// A sent anchor whose transaction the node no longer knows — dropped from its pool before
/// it was mined (anvil's own `anvil_dropAllTransactions`, the fault injected on the real
/// node) — is sent again once the node has not known it for the worker's wait, and the
/// record is stored once; nothing stays `sent`. Without the re-send it would wait in `sent`
/// forever (the node would never mine what it no longer has).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_the_node_forgot_is_sent_again() {
    use std::time::{Duration, Instant};
    let dir = std::env::temp_dir().join(format!("mediblock-resend-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut r = relay(&format!("sqlite://{}", dir.join("r.db").display())).await;
    let chain = r.state.chain.clone().unwrap();
    let node = chain.provider().clone();
    let automine = |on: bool| {
        let node = node.clone();
        async move {
            let _: serde_json::Value = node
                .raw_request("evm_setAutomine".into(), [on])
                .await
                .unwrap();
        }
    };
    automine(false).await;
    let (tid, _) = r.submit(70).await;
    let worker = r.worker("resend").with_resend_after(Duration::ZERO);
    // Sent, not mined: the record waits in `sent`.
    assert!(!worker.tick().await.unwrap());
    let sent = r.state.store.submission(&tid).await.unwrap().unwrap();
    assert_eq!(sent.state, mediblock_relay::store::submissions::State::Sent);
    let lost = sent.tx_hash.unwrap();
    assert!(chain.knows_transaction(&lost).await.unwrap());
    let _: serde_json::Value = node
        .raw_request("anvil_dropAllTransactions".into(), ())
        .await
        .unwrap();
    assert!(!chain.knows_transaction(&lost).await.unwrap());
    automine(true).await;

    let start = Instant::now();
    while r.state.store.queue_depth().await.unwrap() > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "not stored in time"
        );
        worker.tick().await.unwrap();
    }
    let stored = r.state.store.submission(&tid).await.unwrap().unwrap();
    assert_eq!(
        stored.state,
        mediblock_relay::store::submissions::State::Stored
    );
    // Sent again from the same account with the nonce the dropped one never used, the
    // anchor is the same transaction, byte for byte (so the same hash): now mined, once.
    let resent = stored.tx_hash.unwrap();
    assert_eq!(
        chain.find_anchor(tid.as_bytes()).await.unwrap(),
        Some(resent)
    );
    let receipt = chain
        .confirmed_receipt(&resent)
        .await
        .unwrap()
        .expect("mined");
    assert!(chain.anchored_in(&receipt, tid.as_bytes()).is_some());
    assert_eq!(resent, lost);
}
