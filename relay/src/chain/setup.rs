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
        async move { contract.ticketWord(chain.log(), w).call().await.map_err(rpc) }
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
