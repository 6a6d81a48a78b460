//! Bringing a chain up for the relay: deploy the registry (once), make the relay a
//! submitter, and register templates with their on-chain rules. Every step first checks
//! whether it was already done, so running it again after a restart changes nothing.

use alloy::primitives::{Address, FixedBytes};
use alloy::providers::{DynProvider, Provider};
use mediblock_protocol::template::Template;

use super::ChainError;
use super::registry::{self, MediBlockRegistry, ROLE_RELAY};

fn rpc(e: impl std::fmt::Display) -> ChainError {
    ChainError::Rpc(e.to_string())
}

/// Deploys a registry owned by `admin` (the provider's signer); returns its address and
/// the block it was deployed in (where searches for its events may start).
pub async fn deploy_registry(
    provider: &DynProvider,
    admin: Address,
) -> Result<(Address, u64), ChainError> {
    let receipt = MediBlockRegistry::deploy_builder(provider.clone(), admin)
        .send()
        .await
        .map_err(rpc)?
        .get_receipt()
        .await
        .map_err(rpc)?;
    let address = receipt
        .contract_address
        .ok_or_else(|| ChainError::Reverted("registry deployment created no contract".into()))?;
    Ok((address, receipt.block_number.unwrap_or(0)))
}

/// Deploys a registry owned by `me` (the provider's signer) and makes `me` a relay too:
/// the single-operator setup of the embedded default, the benchmarks and the tests.
pub async fn deploy_as_relay(provider: &DynProvider, me: Address) -> Result<Address, ChainError> {
    let (address, _) = deploy_registry(provider, me).await?;
    ensure_relay(provider, address, me).await?;
    Ok(address)
}

/// Whether a contract is deployed at `address` (a reset dev chain has none).
pub async fn has_code(provider: &DynProvider, address: Address) -> Result<bool, ChainError> {
    Ok(!provider.get_code_at(address).await.map_err(rpc)?.is_empty())
}

/// Makes `relay` a submitter of the registry unless it already is (needs the owner's key).
pub async fn ensure_relay(
    provider: &DynProvider,
    registry: Address,
    relay: Address,
) -> Result<(), ChainError> {
    let contract = MediBlockRegistry::new(registry, provider.clone());
    let role = contract.roleOf(relay).call().await.map_err(rpc)?;
    if role == ROLE_RELAY {
        return Ok(());
    }
    contract
        .addRelay(relay)
        .send()
        .await
        .map_err(rpc)?
        .get_receipt()
        .await
        .map_err(rpc)?;
    Ok(())
}

/// Registers `template` with its range rules unless it is registered; returns its handle.
pub async fn register_template(
    provider: &DynProvider,
    registry: Address,
    template: &Template,
) -> Result<u16, ChainError> {
    let contract = MediBlockRegistry::new(registry, provider.clone());
    let id = FixedBytes(template.reference().id.chain_id());
    let version = template.reference().version.get();
    let handle = contract.handleOf(id, version).call().await.map_err(rpc)?;
    if handle != 0 {
        return Ok(handle);
    }
    contract
        .registerTemplate(
            id,
            version,
            FixedBytes(template.hash()),
            registry::rules_for(template),
            Address::ZERO,
        )
        .send()
        .await
        .map_err(rpc)?
        .get_receipt()
        .await
        .map_err(rpc)?;
    contract.handleOf(id, version).call().await.map_err(rpc)
}

/// Checks the store's next tickets against the registry (in the relay's log: tickets are per
/// log): when the chain already marks any
/// of them used — from the next ticket to the end of its bitmap word, and the whole word
/// after — a store restored from a backup, or cloned, would re-issue tickets other records
/// have used. Then it moves the store's tickets to a fresh random base and returns it. Run
/// at start-up, before any ticket is issued.
pub async fn ensure_fresh_tickets(
    store: &crate::store::Store,
    chain: &super::Chain,
) -> Result<Option<u64>, String> {
    let next = store.next_ticket().await.map_err(|e| e.to_string())?;
    let contract = MediBlockRegistry::new(chain.registry(), chain.provider().clone());
    let word = |w: u64| {
        let contract = contract.clone();
        async move {
            contract
                .ticketWord(chain.log(), w)
                .call()
                .await
                .map_err(rpc)
        }
    };
    let ahead = word(next >> 8).await.map_err(|e| e.to_string())? >> (next & 0xff);
    let after = word((next >> 8).saturating_add(1))
        .await
        .map_err(|e| e.to_string())?;
    if ahead.is_zero() && after.is_zero() {
        return Ok(None);
    }
    store
        .rebase_tickets()
        .await
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The `meta` key where a store records the log it writes: `<registry address>/<log id>`.
pub const LOG_META: &str = "log";

/// Binds the store to the relay's log on the registry: records it on first use, and refuses
/// a store that writes another log (or another registry's): its leaves and tickets belong
/// to that log, and anchoring them into this one would split one log across two. Happens
/// when a relay that was removed is added again (it gets a new log), or when a store is
/// pointed at another registry.
pub async fn bind_store_log(
    store: &crate::store::Store,
    chain: &super::Chain,
) -> Result<(), String> {
    let ours = format!("{}/{}", chain.registry(), chain.log());
    match store.meta(LOG_META).await.map_err(|e| e.to_string())? {
        Some(recorded) if recorded == ours => Ok(()),
        Some(recorded) => Err(format!(
            "this store writes log {recorded} (registry/log), but the relay's account writes \
             log {ours}: a relay removed from its registry and added again gets a new log, \
             and a store belongs to one log. Keep the store with the relay key and registry \
             that write its log (replaceRelay moves a log to a new key), or start a fresh store"
        )),
        None => store
            .set_meta(LOG_META, &ours)
            .await
            .map_err(|e| e.to_string()),
    }
}

/// The log a store recorded with [`bind_store_log`]: `(registry, log id)`.
pub async fn store_log(store: &crate::store::Store) -> Result<Option<(Address, u16)>, String> {
    let Some(text) = store.meta(LOG_META).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let bad = || format!("meta.{LOG_META} is not <registry>/<log id>: {text:?}");
    let (registry, log) = text.split_once('/').ok_or_else(bad)?;
    Ok(Some((
        registry.parse().map_err(|_| bad())?,
        log.parse().map_err(|_| bad())?,
    )))
}
