//! Gas of every operation, measured from real receipts on anvil (hardfork
//! [`mediblock_e2e::anvil::HARDFORK`]), checked against the budgets of issue #4.
//!
//! `cargo test -p mediblock-e2e --test gas -- --nocapture` prints the table that
//! docs/BENCHMARKS.md ("Gas (contracts)") reproduces.
//!
//! A record's anchor marks its ticket used in its log's bitmap (the sending or co-signing
//! relay's ticket space), 256 tickets to a storage word, and logs the hash of the values it
//! judged. The first ticket of a word pays for a fresh slot (22,100 gas, cold zero to non-zero);
//! the other 255 rewrite a slot already non-zero (5,000: 2,100 cold read + 2,900). So each
//! path is measured over one whole word of 256 consecutive tickets, as a store issues them:
//! the budgets are asserted for every anchor whose word is already in use (255 in 256) and
//! for the mean over the word; the first ticket of the word is reported as the worst case,
//! and asserted to differ from its neighbour by exactly the fresh slot.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::{Address, FixedBytes};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;
use mediblock_e2e::fixture::{Chain, TICKET_BASE};
use mediblock_e2e::registry::{Anchor, OrderValidator, Rule, SendError};

/// Issue #4's budgets.
const BUDGET_ANCHOR: u64 = 45_000;
const BUDGET_CHECKPOINT: u64 = 40_000;
const BUDGET_CHECKPOINT_PER_RECORD_AT_500: u64 = 80;
const BUDGET_WALLET: u64 = 55_000;

/// What the first ticket of a word costs more than the others: a cold zero → non-zero
/// SSTORE (22,100) instead of a cold non-zero → non-zero one (5,000).
const FRESH_SLOT_EXTRA: u64 = 22_100 - 5_000;
/// Calldata of two tids differs by a few zero bytes (4 gas instead of 16 each).
const CALLDATA_SLACK: u64 = 16 * 12;

/// The on-chain values of the i-th record of a measured word: valid, except the tickets
/// 1, 2 and 3 of the word, each rejected at a different attribute (a rejection stops the
/// checks, so the last attribute is the dearest).
fn values(i: u64) -> [i64; 3] {
    match i {
        1 => [19, 368, 1],
        2 => [72, 451, 1],
        3 => [72, 368, 2],
        _ => [72, 368, 1],
    }
}

/// Gas of one anchoring path over the 256 tickets of a fresh bitmap word.
#[derive(Debug)]
struct Word {
    /// The word's first ticket (fresh slot), valid.
    fresh: u64,
    /// The dearest valid anchor whose word was already in use.
    valid: u64,
    /// The dearest rejected anchor whose word was already in use.
    rejected: u64,
    /// The valid ticket right after the rejected ones (4), for the fresh-slot comparison.
    neighbour: u64,
    /// Mean over all 256.
    mean: f64,
}

impl Word {
    fn new(gas: &[u64]) -> Self {
        assert_eq!(gas.len(), 256);
        Self {
            fresh: gas[0],
            valid: gas[4..].iter().copied().max().unwrap(),
            rejected: gas[1..4].iter().copied().max().unwrap(),
            neighbour: gas[4],
            mean: gas.iter().sum::<u64>() as f64 / 256.0,
        }
    }

    /// Asserts `budget` for every anchor of a word in use and for the mean, and that the
    /// word's first record costs its neighbour plus the fresh slot, no more and no less.
    fn check(&self, what: &str, budget: u64) {
        assert!(
            self.valid <= budget,
            "{what}, valid: {} > {budget}",
            self.valid
        );
        assert!(
            self.rejected <= budget,
            "{what}, rejected: {} > {budget}",
            self.rejected
        );
        assert!(self.mean <= budget as f64, "{what}, mean: {}", self.mean);
        let extra = self.fresh.abs_diff(self.neighbour + FRESH_SLOT_EXTRA);
        assert!(
            extra <= CALLDATA_SLACK,
            "{what}: the first ticket of a word costs {} against {} for its neighbour",
            self.fresh,
            self.neighbour
        );
    }

    fn report(&self, report: &mut Report, what: &str, budget: u64) {
        report.row(
            &format!("{what}, valid, ticket's word in use (255 in 256)"),
            self.valid,
            met(self.valid as f64, budget),
        );
        report.row(
            &format!("{what}, rejected (worst attribute), ticket's word in use"),
            self.rejected,
            met(self.rejected as f64, budget),
        );
        report.row(
            &format!("{what}, first record anchored in a fresh word (1 in 256)"),
            self.fresh,
            format!("worst case, {}", versus(self.fresh, budget)),
        );
        report.row(
            &format!("{what}, mean over 256 consecutive tickets"),
            format!("{:.0}", self.mean),
            met(self.mean, budget),
        );
    }
}

/// "≤ budget: met", or "not met" (the test then fails).
fn met(gas: f64, budget: u64) -> String {
    let status = if gas <= budget as f64 {
        "met"
    } else {
        "NOT met"
    };
    format!("≤ {budget}: {status}")
}

/// "n over" or "n under" the budget.
fn versus(gas: u64, budget: u64) -> String {
    if gas > budget {
        format!("{} over {budget}", gas - budget)
    } else {
        format!("{} under {budget}", budget - gas)
    }
}

#[derive(Debug, Default)]
struct Report {
    rows: Vec<(String, String, String)>,
}

impl Report {
    fn row(&mut self, what: &str, gas: impl ToString, budget: impl ToString) {
        self.rows
            .push((what.to_owned(), gas.to_string(), budget.to_string()));
    }

    fn print(&self) {
        println!("| operation | gas | budget (issue #4) |");
        println!("| --- | ---: | --- |");
        for (what, gas, budget) in &self.rows {
            println!("| {what} | {gas} | {budget} |");
        }
    }
}

/// The records of the word starting at ticket `first` (a multiple of 256).
fn word_of(chain: &Chain, first: u64) -> Vec<Anchor> {
    assert_eq!(first % 256, 0);
    (0..256)
        .map(|i| chain.ticketed_anchor(first + i, first + i, &values(i)))
        .collect()
}

fn gas_of(result: Result<TransactionReceipt, SendError>) -> u64 {
    let receipt = result.unwrap();
    assert!(receipt.status());
    receipt.gas_used
}

/// Gas of `registerTemplate` for a template of three range rules with `validator`.
async fn registration_gas(chain: &Chain, salt: u8, validator: Address) -> u64 {
    let rules = vec![Rule::range(20, 250), Rule::range(300, 450), Rule::set(0b11)];
    let receipt = chain
        .admin
        .registerTemplate(
            FixedBytes([salt; 32]),
            1,
            FixedBytes([salt; 32]),
            rules,
            validator,
        )
        .send()
        .await
        .unwrap()
        .get_receipt()
        .await
        .unwrap();
    assert!(receipt.status());
    receipt.gas_used
}

#[tokio::test]
async fn gas_budgets() {
    let chain = Chain::start().await.unwrap();
    let mut report = Report::default();
    report.row("deploy (registry + admin module)", chain.deploy_gas, "—");

    // Per-record anchors of 3-attribute records, over one whole word of tickets.
    let mut gas = Vec::with_capacity(256);
    for anchor in word_of(&chain, TICKET_BASE) {
        gas.push(gas_of(chain.relay_anchors(&anchor).await));
    }
    let relay = Word::new(&gas);
    relay.report(
        &mut report,
        "per-record anchor, 3 attributes",
        BUDGET_ANCHOR,
    );

    // Wallet co-signed anchors, over the next word.
    let deadline = chain.now().await.unwrap() + 3600;
    let mut gas = Vec::with_capacity(256);
    for anchor in word_of(&chain, TICKET_BASE + 256) {
        let cosignature = chain.cosign(&anchor, deadline);
        gas.push(gas_of(chain.wallet_anchors(&anchor, &cosignature).await));
    }
    let wallet = Word::new(&gas);

    // Checkpoints: the first, then ones covering 1, 16, 256, 500 and 4096 more records.
    let mut size = 1000u64;
    let first = gas_of(chain.relay_checkpoints(size, &[1; 32]).await);
    report.row("first checkpoint anchor", first, "—");
    let mut checkpoint_max = 0;
    let mut per_record = Vec::new();
    for (i, covered) in [1u64, 16, 256, 500, 4096].into_iter().enumerate() {
        size += covered;
        let root = [i as u8 + 2; 32];
        let gas = gas_of(chain.relay_checkpoints(size, &root).await);
        checkpoint_max = checkpoint_max.max(gas);
        per_record.push((covered, gas, gas as f64 / covered as f64));
    }
    report.row(
        "checkpoint anchor (after the first)",
        checkpoint_max,
        met(checkpoint_max as f64, BUDGET_CHECKPOINT),
    );
    for (covered, _, per) in &per_record {
        let budget = if *covered == 500 {
            met(*per, BUDGET_CHECKPOINT_PER_RECORD_AT_500)
        } else {
            "—".to_owned()
        };
        report.row(
            &format!("checkpoint gas per record, {covered} records"),
            format!("{per:.1}"),
            budget,
        );
    }
    wallet.report(
        &mut report,
        "wallet co-signed anchor, 3 attributes",
        BUDGET_WALLET,
    );

    // Registration, an admin call: with a validator, the purity scan reads its runtime code
    // byte by byte (not budgeted; reported so that the scan's cost is known).
    let plain = registration_gas(&chain, 0x71, Address::ZERO).await;
    report.row(
        "register a template, 3 attributes, no validator",
        plain,
        "—",
    );
    let validator = OrderValidator::deploy(chain.admin.provider().clone(), vec![[0u8, 1]])
        .await
        .unwrap();
    let scanned = chain
        .admin
        .provider()
        .get_code_at(*validator.address())
        .await
        .unwrap()
        .len();
    let with_validator = registration_gas(&chain, 0x72, *validator.address()).await;
    report.row(
        &format!("register a template, 3 attributes, OrderValidator ({scanned} bytes scanned)"),
        with_validator,
        "—",
    );
    report.print();

    relay.check("per-record anchor", BUDGET_ANCHOR);
    wallet.check("wallet co-signed anchor", BUDGET_WALLET);
    assert!(
        checkpoint_max <= BUDGET_CHECKPOINT,
        "checkpoint {checkpoint_max} > {BUDGET_CHECKPOINT}"
    );
    let (_, gas_500, _) = per_record.iter().find(|(c, _, _)| *c == 500).unwrap();
    assert!(gas_500 / 500 <= BUDGET_CHECKPOINT_PER_RECORD_AT_500);
}
