//! Building blocks shared by the relay's test files: a user enrolled straight into the
//! store, the relay's state over a store and a chain, a vital-signs record, and posting a
//! sealed record. Test files that use it also include `support/http.rs` as `http`.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use alloy::primitives::{Address, FixedBytes};
use mediblock_protocol::ids::{
    AttrName, PatientId, Role, Salt, TemplateRef, TemplateVersion, TxId, UnixMillis, UserId,
};
use mediblock_protocol::keys::Keypair;
use mediblock_protocol::record::InitialTransaction;
use mediblock_protocol::template::Template;
use mediblock_protocol::value::{Attributes, Value};
use mediblock_relay::AppState;
use mediblock_relay::chain::anvil::Anvil;
use mediblock_relay::chain::registry::{self, MediBlockRegistry, Rule};
use mediblock_relay::chain::{Chain, setup};
use mediblock_relay::keys::RelayKeys;
use mediblock_relay::store::Store;
use mediblock_relay::store::users::User;
use rand_core::CryptoRng;

/// Enrols `uid` with `role` and `keys` directly in the store (enrolled at 1 ms).
pub(crate) async fn enrol(store: &Store, uid: &str, role: Role, keys: &Keypair) {
    store
        .insert_user(&User {
            uid: UserId::new(uid).unwrap(),
            role,
            keys: keys.public(),
            eth_address: None,
            enrolled_at: UnixMillis(1),
            revoked_at: None,
        })
        .await
        .unwrap();
}

/// The relay's keys from fixed seeds: the relay's keypair from `[seed; 64]`, the store key
/// holder's from `[seed + 1; 64]`. The first is what clients seal to.
pub(crate) fn relay_keys(seed: u8) -> (Keypair, RelayKeys) {
    let keys = RelayKeys::new(
        Keypair::from_seeds(&[seed; 64]),
        &Keypair::from_seeds(&[seed.wrapping_add(1); 64]),
    )
    .unwrap();
    (Keypair::from_seeds(&[seed; 64]), keys)
}

/// The relay's state over `store` and `chain`, serving the repository's `web/`.
pub(crate) fn state(store: Store, keys: RelayKeys, chain: Option<Chain>) -> AppState {
    AppState {
        store,
        keys: Arc::new(keys),
        web_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/../web").into(),
        metrics: Default::default(),
        chain,
        wake_worker: Default::default(),
        audit_slot: Default::default(),
        limits: no_limits(),
        events: tokio::sync::broadcast::channel(4096).0,
        session_ttl_ms: 3_600_000,
    }
}

/// Bounds the tests of other concerns never run into (thousands of records from one
/// author, queued faster than anchored); `relay/tests/limits.rs` sets its own.
pub(crate) fn no_limits() -> Arc<mediblock_relay::limits::Limiter> {
    Arc::new(mediblock_relay::limits::Limiter::new(
        mediblock_relay::limits::Limits {
            max_queue: u64::MAX,
            rate_per_second: u32::MAX,
            burst: u32::MAX,
            ..Default::default()
        },
    ))
}

/// A ticket issued to `token`'s user by `POST /api/v1/tickets`.
pub(crate) async fn ticket(app: &axum::Router, token: &str) -> u64 {
    let (status, body) =
        crate::http::call(app, crate::http::post("/api/v1/tickets", Some(token), "")).await;
    assert_eq!(status, axum::http::StatusCode::CREATED, "{body}");
    body["ticket"].as_str().unwrap().parse().unwrap()
}

/// A vital-signs record (`vital-signs@1`) by `uid` for `pid`, with this heart rate and
/// ordinary other values, a tid for `ticket` and a fresh salt, and no previous record.
pub(crate) fn vital_signs(
    rng: &mut impl CryptoRng,
    ticket: u64,
    uid: &UserId,
    pid: PatientId,
    heart_rate: i64,
) -> InitialTransaction {
    let name = |s: &str| AttrName::new(s).unwrap();
    let attributes: Attributes = [
        (name("heart_rate"), Value::Integer(heart_rate)),
        (name("systolic"), Value::Integer(120)),
        (name("temperature"), Value::Integer(368)),
    ]
    .into_iter()
    .collect();
    InitialTransaction {
        tid: TxId::for_ticket(ticket, rng),
        uid: uid.clone(),
        pid,
        template: TemplateRef {
            id: "vital-signs".parse().unwrap(),
            version: TemplateVersion::new(1).unwrap(),
        },
        attributes,
        created_at: UnixMillis(5),
        salt: Salt::random(rng),
        prev: None,
    }
}

/// Deploys a registry from anvil's account `account` (which becomes its relay), registers
/// `template` with these on-chain `rules` (tests make them stricter than the relay's), and
/// connects a chain client that co-signs with that account (1 confirmation).
pub(crate) async fn registry_with(
    anvil: &Anvil,
    account: usize,
    template: &Template,
    rules: Vec<Rule>,
) -> Chain {
    let provider = registry::provider(anvil.url(), anvil.signer(account));
    let address = setup::deploy_as_relay(&provider, anvil.address(account))
        .await
        .unwrap();
    MediBlockRegistry::new(address, provider.clone())
        .registerTemplate(
            FixedBytes(template.reference().id.chain_id()),
            template.reference().version.get(),
            FixedBytes(template.hash()),
            rules,
            Address::ZERO,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    Chain::connect(provider, address, 1)
        .await
        .unwrap()
        .for_relay(anvil.address(account))
        .await
        .unwrap()
        .with_cosigner(anvil.signer(account))
}

/// Signs `ti` as `author`, seals it to the relay's public keys and posts it to `path`
/// (`/api/v1/submissions` or `/api/v1/submissions/wallet`) with `token`.
pub(crate) async fn post_sealed(
    app: &axum::Router,
    path: &str,
    token: &str,
    ti: InitialTransaction,
    author: &Keypair,
    relay: &mediblock_protocol::keys::PublicKeys,
    rng: &mut impl CryptoRng,
) -> (axum::http::StatusCode, serde_json::Value) {
    let sealed = ti.sign(author).seal(author, relay, rng).unwrap();
    crate::http::call(
        app,
        crate::http::post(path, Some(token), serde_json::to_string(&sealed).unwrap()),
    )
    .await
}
