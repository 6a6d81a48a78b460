//! Per-record anchoring on the local chain: submit → stored latency (p50, p99) and records
//! per second, through the real HTTP app, store (SQLite), worker and anvil.
//! Run: `cargo bench -p mediblock-relay --bench anchoring`. Figures: `docs/BENCHMARKS.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    missing_docs
)]

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use mediblock_protocol::hash::sha256;
use mediblock_protocol::ids::{
    AttrName, PatientId, Role, Salt, TemplateRef, TemplateVersion, TxId, UnixMillis, UserId,
};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::record::InitialTransaction;
use mediblock_protocol::template::Template;
use mediblock_protocol::value::{Attributes, Value};
use mediblock_relay::chain::anvil::Anvil;
use mediblock_relay::chain::{Chain, registry, setup};
use mediblock_relay::keys::RelayKeys;
use mediblock_relay::store::Store;
use mediblock_relay::store::submissions::State;
use mediblock_relay::store::users::User;
use mediblock_relay::worker::Worker;
use mediblock_relay::{AppState, app};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tower::ServiceExt as _;

const TEMPLATE: &str = include_str!("../templates/vital-signs.json");

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt().with_env_filter("error").init();
    let anvil = Anvil::start().unwrap();
    let provider = registry::provider(anvil.url(), anvil.signer(0));
    let address = setup::deploy_as_relay(&provider, anvil.address(0))
        .await
        .unwrap();
    let template: Template = serde_json::from_str(TEMPLATE).unwrap();
    setup::register_template(&provider, address, &template)
        .await
        .unwrap();
    let chain = Chain::connect(provider, address, 1)
        .await
        .unwrap()
        .for_relay(anvil.address(0))
        .await
        .unwrap();

    let dir = std::env::temp_dir().join(format!("mediblock-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.join("bench.db").display()))
        .await
        .unwrap();
    store
        .insert_template(&template, UnixMillis(1))
        .await
        .unwrap();
    let mut rng = ChaCha20Rng::from_seed([9; 32]);
    let nurse = Keypair::generate(&mut rng);
    let uid = UserId::new("nurse.bo").unwrap();
    store
        .insert_user(&User {
            uid: uid.clone(),
            role: Role::Nurse,
            keys: nurse.public(),
            eth_address: None,
            enrolled_at: UnixMillis(1),
            revoked_at: None,
        })
        .await
        .unwrap();
    let token = [7u8; 32];
    store
        .insert_session(&sha256(&token), &uid, UnixMillis(u64::MAX / 2))
        .await
        .unwrap();
    let relay = Keypair::from_seeds(&[1; 64]);
    let keys = RelayKeys::new(
        Keypair::from_seeds(&[1; 64]),
        &Keypair::from_seeds(&[2; 64]),
    )
    .unwrap();
    let mut state = AppState {
        store: store.clone(),
        keys: Arc::new(keys),
        web_dir: dir.clone(),
        metrics: Default::default(),
        chain: Some(chain.clone()),
        wake_worker: Default::default(),
        audit_slot: Default::default(),
        // The benchmark measures anchoring, not the front door's bounds.
        limits: std::sync::Arc::new(mediblock_relay::limits::Limiter::new(
            mediblock_relay::limits::Limits {
                max_queue: u64::MAX,
                rate_per_second: u32::MAX,
                burst: u32::MAX,
                ..Default::default()
            },
        )),
        events: tokio::sync::broadcast::channel(4096).0,
        session_ttl_ms: 60_000,
    };
    let worker = Worker::new(state.clone(), chain, "bench".into());
    state.wake_worker = worker.notify.clone();
    tokio::spawn(worker.run());
    let app = app(state.clone());
    let bearer = format!("Bearer {}", hex::encode(token));

    let submit = |rng: &mut ChaCha20Rng, ticket: u64, hr: i64| {
        let name = |s: &str| AttrName::new(s).unwrap();
        let attributes: Attributes = [
            (name("heart_rate"), Value::Integer(hr)),
            (name("systolic"), Value::Integer(120)),
            (name("temperature"), Value::Integer(368)),
        ]
        .into_iter()
        .collect();
        let ti = InitialTransaction {
            tid: TxId::for_ticket(ticket, rng),
            uid: uid.clone(),
            pid: PatientId::random(rng),
            template: TemplateRef {
                id: "vital-signs".parse().unwrap(),
                version: TemplateVersion::new(1).unwrap(),
            },
            attributes,
            created_at: UnixMillis(1),
            salt: Salt::random(rng),
            prev: None,
        };
        let tid = ti.tid;
        let sealed = ti.sign(&nurse).seal(&nurse, &relay.public(), rng).unwrap();
        let req = Request::post("/api/v1/submissions")
            .header("content-type", "application/json")
            .header("authorization", bearer.clone())
            .body(Body::from(serde_json::to_string(&sealed).unwrap()))
            .unwrap();
        (tid, req)
    };

    let wait_stored = |tid: TxId| {
        let store = store.clone();
        let mut rx = state.events.subscribe();
        async move {
            loop {
                let s = store.submission(&tid).await.unwrap().unwrap();
                if s.state == State::Stored {
                    return;
                }
                let _ = tokio::time::timeout(std::time::Duration::from_millis(50), rx.recv()).await;
            }
        }
    };

    // 1. Latency, one record at a time: submit → stored.
    const SEQUENTIAL: usize = 200;
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    let ticket = || async {
        store
            .issue_ticket(&uid, mediblock_relay::now())
            .await
            .unwrap()
            .unwrap()
            .number
    };
    for i in 0..SEQUENTIAL {
        let (tid, req) = submit(&mut rng, ticket().await, 60 + (i % 40) as i64);
        let start = Instant::now();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        wait_stored(tid).await;
        latencies.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);

    // 2. Throughput: a burst of records submitted back to back (each sealed with a fresh
    //    ticket just before it is sent, as a browser does), until every one is stored.
    const BURST: usize = 500;
    let start = Instant::now();
    let mut tids = Vec::with_capacity(BURST);
    for i in 0..BURST {
        let (tid, req) = submit(&mut rng, ticket().await, 60 + (i % 40) as i64);
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::ACCEPTED);
        tids.push(tid);
    }
    for tid in tids {
        wait_stored(tid).await;
    }
    let burst_secs = start.elapsed().as_secs_f64();

    println!("per-record anchoring on anvil (automine), SQLite store, one worker");
    println!(
        "  submit -> stored, sequential ({SEQUENTIAL} records): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1]
    );
    println!(
        "  burst of {BURST} records: all stored in {burst_secs:.2} s = {:.0} records/s",
        BURST as f64 / burst_secs
    );
    let _ = std::fs::remove_dir_all(&dir);
}
