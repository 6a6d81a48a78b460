//! Audit throughput over a large store: records per second of `mediblock audit`'s engine
//! (read the store and the chain's events, open and verify every record, compare).
//!
//! Seeding 100,000 records through HTTP and per-record anchoring would take hours, so the
//! store is seeded with real sealed records and real anchors, fast: every record is a real
//! signed TI of the vital-signs template; its `OP_ANCHOR` transaction is signed and sent to
//! anvil with an explicit nonce while automine is off, then anvil mines them in big blocks;
//! the real events give each record its ACK (tx hash, block, block hash, log index); the
//! validated transactions are sealed at rest and inserted in bulk (log leaves, submissions,
//! records) in a few database transactions. A checkpoint of the log is anchored too.
//!
//! Run: `cargo bench -p mediblock-relay --bench audit` (SQLite; set
//! `MEDIBLOCK_BENCH_RECORDS` for another size, `MEDIBLOCK_BENCH_POSTGRES=1` to also run on
//! a throw-away PostgreSQL). Figures: `docs/BENCHMARKS.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs,
    unreachable_pub,
    dead_code
)]

#[path = "../tests/support/postgres.rs"]
mod postgres;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use alloy::network::{EthereumWallet, TransactionBuilder as _};
use alloy::primitives::Address;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::rpc::types::{Filter, TransactionRequest};
use alloy::sol_types::SolEvent as _;
use futures_util::StreamExt as _;
use mediblock_protocol::encoding::Canonical as _;
use mediblock_protocol::generator::generate;
use mediblock_protocol::ids::{
    AttrName, ChainHash, EthAddress, PatientId, Role, Salt, TemplateRef, TemplateVersion, TxId,
    UnixMillis, UserId,
};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::merkle::{Keccak256Tree, TreeHasher as _, root};
use mediblock_protocol::record::{InitialTransaction, SignedInitialTransaction};
use mediblock_protocol::template::Template;
use mediblock_protocol::validated::{Ack, ValidatedTransaction, Verdict};
use mediblock_protocol::value::{Attributes, Value};
use mediblock_relay::audit::Scope;
use mediblock_relay::chain::anvil::{Anvil, AnvilOptions};
use mediblock_relay::chain::registry::{self, Anchor, MediBlockRegistry};
use mediblock_relay::chain::{Chain, setup};
use mediblock_relay::keys::RelayKeys;
use mediblock_relay::store::Store;
use mediblock_relay::store::users::User;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const TEMPLATE: &str = include_str!("../templates/vital-signs.json");

/// Where a record was anchored: tx hash, block number, block hash, log index.
type Where = (Vec<u8>, u64, [u8; 32], u64);

struct Seeded {
    signed: Vec<SignedInitialTransaction>,
    anchors: HashMap<[u8; 16], Where>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt().with_env_filter("error").init();
    let n: usize = std::env::var("MEDIBLOCK_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let anvil = Anvil::start_with(&AnvilOptions {
        extra_args: vec![
            "--gas-limit".into(),
            "2000000000".into(),
            "--no-mining".into(),
        ],
        ..AnvilOptions::default()
    })
    .unwrap();
    let signer = anvil.signer(0);
    let provider = registry::provider(anvil.url(), signer.clone());
    // Automine is off: deployment and registration need blocks, mined on demand.
    let mine = |p: alloy::providers::DynProvider| async move {
        let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await.unwrap();
    };
    let deploy = {
        let p = provider.clone();
        let me = anvil.address(0);
        tokio::spawn(async move { setup::deploy_as_relay(&p, me).await.unwrap() })
    };
    let registry_address = loop {
        mine(provider.clone()).await;
        if deploy.is_finished() {
            break deploy.await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let template: Template = serde_json::from_str(TEMPLATE).unwrap();
    let register = {
        let p = provider.clone();
        let t = template.clone();
        tokio::spawn(async move {
            setup::register_template(&p, registry_address, &t)
                .await
                .unwrap()
        })
    };
    let handle = loop {
        mine(provider.clone()).await;
        if register.is_finished() {
            break register.await.unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let chain = Chain::connect(provider.clone(), registry_address, 1)
        .await
        .unwrap()
        .for_relay(anvil.address(0))
        .await
        .unwrap();

    // 1. Signed records and their anchoring transactions.
    let t0 = Instant::now();
    let mut rng = ChaCha20Rng::from_seed([42; 32]);
    let nurse = Keypair::generate(&mut rng);
    let uid = UserId::new("nurse.bo").unwrap();
    let patients: Vec<PatientId> = (0..1000).map(|_| PatientId::random(&mut rng)).collect();
    let mut prev: HashMap<PatientId, mediblock_protocol::ids::Commitment> = HashMap::new();
    let name = |s: &str| AttrName::new(s).unwrap();
    let mut signed = Vec::with_capacity(n);
    let mut calldata = Vec::with_capacity(n);
    for i in 0..n {
        let pid = patients[i % patients.len()];
        let attributes: Attributes = [
            (name("heart_rate"), Value::Integer(50 + (i % 100) as i64)),
            (name("systolic"), Value::Integer(120)),
            (name("temperature"), Value::Integer(368)),
            (name("notes"), Value::Text("Resting, no distress.".into())),
        ]
        .into_iter()
        .collect();
        let ti = InitialTransaction {
            // Consecutive tickets, as one store issues them.
            tid: TxId::for_ticket((1 << 40) + i as u64, &mut rng),
            uid: uid.clone(),
            pid,
            template: TemplateRef {
                id: "vital-signs".parse().unwrap(),
                version: TemplateVersion::new(1).unwrap(),
            },
            attributes,
            created_at: UnixMillis(1_700_000_000_000 + i as u64),
            salt: Salt::random(&mut rng),
            prev: prev.get(&pid).copied(),
        };
        let s = ti.sign(&nurse);
        prev.insert(pid, s.commitment());
        let tc = generate(&s, &template).unwrap();
        calldata.push(Anchor::new(&tc, handle).calldata());
        signed.push(s);
    }
    let t_sign = t0.elapsed();

    // 2. Send them all with explicit nonces (automine off), then mine.
    let t1 = Instant::now();
    let sender = ProviderBuilder::new()
        .disable_recommended_fillers()
        .wallet(EthereumWallet::from(signer.clone()))
        .connect_http(anvil.url())
        .erased();
    let base_nonce = provider
        .get_transaction_count(anvil.address(0))
        .pending()
        .await
        .unwrap();
    let chain_id = chain.chain_id();
    let sent: Vec<_> = futures_util::stream::iter(calldata.into_iter().enumerate())
        .map(|(i, data)| {
            let sender = sender.clone();
            async move {
                let tx = TransactionRequest::default()
                    .with_to(registry_address)
                    .with_input(data)
                    .with_nonce(base_nonce + i as u64)
                    .with_chain_id(chain_id)
                    .with_gas_limit(200_000)
                    .with_max_fee_per_gas(20_000_000_000)
                    .with_max_priority_fee_per_gas(1_000_000_000);
                sender.send_transaction(tx).await.unwrap().tx_hash().0
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert_eq!(sent.len(), n);
    let t_send = t1.elapsed();
    let t2 = Instant::now();
    let target = base_nonce + n as u64;
    while provider
        .get_transaction_count(anvil.address(0))
        .latest()
        .await
        .unwrap()
        < target
    {
        mine(provider.clone()).await;
    }
    let t_mine = t2.elapsed();

    // 3. The real events give every record its ACK.
    let head = provider.get_block_number().await.unwrap();
    let filter = Filter::new()
        .address(registry_address)
        .event_signature(MediBlockRegistry::RecordAnchored::SIGNATURE_HASH)
        .from_block(0u64)
        .to_block(head);
    let logs = provider.get_logs(&filter).await.unwrap();
    let mut anchors = HashMap::new();
    for log in &logs {
        let e = MediBlockRegistry::RecordAnchored::decode_log_data(log.data()).unwrap();
        let rec = registry::AnchoredRecord::from_event(&e).unwrap();
        assert_eq!(rec.verdict, registry::Verdict::Valid);
        anchors.insert(
            rec.tid,
            (
                log.transaction_hash.unwrap().0.to_vec(),
                log.block_number.unwrap(),
                log.block_hash.unwrap().0,
                log.log_index.unwrap(),
            ),
        );
    }
    assert_eq!(anchors.len(), n, "every record anchored");
    println!(
        "seeded {n} records: signed in {:.1}s, sent in {:.1}s, mined in {:.1}s ({} blocks)",
        t_sign.as_secs_f64(),
        t_send.as_secs_f64(),
        t_mine.as_secs_f64(),
        head
    );
    let seeded = Seeded { signed, anchors };

    // Checkpoint of the whole log.
    let leaves: Vec<[u8; 32]> = seeded
        .signed
        .iter()
        .map(|s| Keccak256Tree::hash_leaf(s.commitment().as_bytes()))
        .collect();
    let cp = chain
        .send_checkpoint(n as u64, &root::<Keccak256Tree>(&leaves))
        .await
        .unwrap();
    mine(provider.clone()).await;
    assert!(chain.confirmed_receipt(&cp).await.unwrap().is_some());

    let keys = Arc::new(
        RelayKeys::new(
            Keypair::from_seeds(&[1; 64]),
            &Keypair::from_seeds(&[2; 64]),
        )
        .unwrap(),
    );
    let dir = std::env::temp_dir().join(format!("mediblock-bench-audit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = format!("sqlite://{}", dir.join("audit.db").display());
    run(
        &sqlite,
        "SQLite",
        &seeded,
        &nurse,
        &keys,
        &chain,
        registry_address,
    )
    .await;
    if std::env::var("MEDIBLOCK_BENCH_POSTGRES").is_ok() {
        let pg = postgres::shared().fresh_database().unwrap();
        run(
            &pg,
            "PostgreSQL",
            &seeded,
            &nurse,
            &keys,
            &chain,
            registry_address,
        )
        .await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

async fn run(
    url: &str,
    label: &str,
    seeded: &Seeded,
    nurse: &Keypair,
    keys: &Arc<RelayKeys>,
    chain: &Chain,
    registry_address: Address,
) {
    let n = seeded.signed.len();
    let store = Store::open(url).await.unwrap();
    let template: Template = serde_json::from_str(TEMPLATE).unwrap();
    store
        .insert_template(&template, UnixMillis(1))
        .await
        .unwrap();
    store
        .insert_user(&User {
            uid: UserId::new("nurse.bo").unwrap(),
            role: Role::Nurse,
            keys: nurse.public(),
            eth_address: None,
            enrolled_at: UnixMillis(1),
            revoked_at: None,
        })
        .await
        .unwrap();
    // 4. Bulk insert: leaves, submissions (stored), records (sealed validated transactions).
    let t3 = Instant::now();
    let pool = sqlx::AnyPool::connect(url).await.unwrap();
    let mut rng = ChaCha20Rng::from_seed([7; 32]);
    for (c, chunk) in seeded.signed.chunks(5_000).enumerate() {
        let mut tx = pool.begin().await.unwrap();
        for (k, s) in chunk.iter().enumerate() {
            let i = (c * 5_000 + k) as i64;
            let ti = s.ti();
            let (tx_hash, block, block_hash, log_index) = &seeded.anchors[ti.tid.as_bytes()];
            let vt = ValidatedTransaction {
                signed: s.clone(),
                ack: Ack {
                    verdict: Verdict::Valid,
                    chain_id: chain.chain_id(),
                    contract: EthAddress::from_bytes(registry_address.0.0),
                    tx_hash: ChainHash::from_bytes(tx_hash.clone().try_into().unwrap()),
                    block_number: *block,
                    block_hash: ChainHash::from_bytes(*block_hash),
                    log_index: *log_index,
                    batch: None,
                },
            };
            let sealed = vt
                .seal_at_rest(&keys.at_rest, &mut rng)
                .unwrap()
                .to_canonical_bytes();
            let commitment = s.commitment().as_bytes().to_vec();
            let tid = ti.tid.as_bytes().to_vec();
            let pid = ti.pid.as_bytes().to_vec();
            sqlx::query("INSERT INTO log_leaves (leaf_index, leaf_data, tid) VALUES ($1, $2, $3)")
                .bind(i)
                .bind(commitment.clone())
                .bind(tid.clone())
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO submissions (tid, uid, pid, template_id, version, commitment, leaf_index, \
                 mode, state, sealed_ti, chain_values, tx_hash, block_number, created_at, updated_at) \
                 VALUES ($1, 'nurse.bo', $2, 'vital-signs', 1, $3, $4, 'per_record', 'stored', $5, '[]', $6, $7, $8, $8)",
            )
            .bind(tid.clone())
            .bind(pid.clone())
            .bind(commitment.clone())
            .bind(i)
            .bind(Vec::<u8>::new())
            .bind(tx_hash.clone())
            .bind(*block as i64)
            .bind(1_700_000_000_000 + i)
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO records (tid, pid, uid, template_id, version, commitment, leaf_index, \
                 key_id, envelope, stored_at) VALUES ($1, $2, 'nurse.bo', 'vital-signs', 1, $3, $4, $5, $6, $7)",
            )
            .bind(tid)
            .bind(pid)
            .bind(commitment)
            .bind(i)
            .bind(keys.at_rest.id().as_bytes().to_vec())
            .bind(sealed)
            .bind(1_700_000_000_000 + i)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
    sqlx::query("UPDATE log_head SET size = $1 WHERE id = 0")
        .bind(n as i64)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    println!(
        "{label}: store seeded in {:.1}s",
        t3.elapsed().as_secs_f64()
    );

    // 5. The audit, twice (the second with a warm page cache).
    for round in 1..=2 {
        let start = Instant::now();
        let report =
            mediblock_relay::audit::run(&store, chain, keys.clone(), Scope::default(), None)
                .await
                .unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert!(
            report.findings.is_empty(),
            "{:?}",
            &report.findings[..3.min(report.findings.len())]
        );
        assert_eq!(report.counts.verified as usize, n);
        println!(
            "{label}: audit of {n} records (round {round}): {secs:.2} s = {:.0} records/s, clean",
            n as f64 / secs
        );
    }
    store.close().await;
}
