//! The pure decision of the on-chain check: what the record (and the relay's ACK) claims,
//! what the chain holds for its tid in the trusted log, and whether the chain's verdict is
//! about this very record — its commitment, its values under its template, its verdict.

use mediblock_protocol::hash::Hash32;
use mediblock_protocol::ids::{ChainHash, Commitment};
use mediblock_protocol::proof::TemplateInfo;

use super::AnchoredEvent;

/// The verdict the record claims.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Claimed {
    /// Accepted on chain.
    Valid,
    /// Rejected on chain.
    Rejected,
}

/// What the record's own content says the chain must have judged: the hash of its on-chain
/// values under its template, and that template as the registry registers it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RecordContent {
    /// `values_hash` of the record's on-chain values.
    pub values_hash: Hash32,
    /// The record's template: keccak256 of its id, its version, keccak256 of its canonical
    /// encoding.
    pub template: TemplateInfo,
}

/// What the record (and the relay's ACK) claims, to be compared with the chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Claim {
    /// The log the record must be anchored in (the pinned one, else the relay's).
    pub log: u16,
    /// The record's commitment.
    pub commitment: Commitment,
    /// The verdict the relay stored with it.
    pub verdict: Claimed,
    /// The anchoring transaction the relay names, if any.
    pub tx: Option<ChainHash>,
    /// The values and template the verdict must be about; `None` when only the commitment
    /// is checked (an erased record, whose content is gone).
    pub content: Option<RecordContent>,
}

/// What the chain holds for the tid in the claim's log.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Seen {
    /// `ticketUsed(log, ticket)`.
    pub ticket_used: bool,
    /// The tid's `RecordAnchored` event of the log, when there is one.
    pub log: Option<FoundLog>,
    /// `templateInfo(event.handle)`, read when the content is checked; `None` when it was
    /// not read or the registry has no template under the handle.
    pub template: Option<TemplateInfo>,
}

/// What the check concluded.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Finding {
    /// `verified`, `missing` or `mismatch`.
    pub status: &'static str,
    /// The anchoring block, from the chain's log.
    pub block_number: Option<u64>,
    /// The anchoring transaction, from the chain's log (0x-prefixed).
    pub tx_hash: Option<String>,
    /// The values hash the chain's event holds (hex), from the chain's log.
    pub values_hash: Option<String>,
    /// What was found, in words.
    pub detail: String,
}

/// A log found for the tid, with where it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FoundLog {
    /// The event.
    pub event: AnchoredEvent,
    /// Its block.
    pub block_number: u64,
    /// Its transaction.
    pub tx_hash: [u8; 32],
}

/// The sentence of a verdict about other values than the record's.
pub const OTHER_VALUES: &str =
    "The chain judged other values than this record's: its verdict is not about this record.";

/// The pure decision: compares what the record claims with what the chain holds in the
/// claim's log — whether the tid's ticket is used there (`ticketUsed`), this tid's
/// `RecordAnchored` event of that log (found by its tid topic) and the template the
/// registry holds under the event's handle.
///
/// - no event and the ticket unused: `missing` (never anchored in this log);
/// - no event but the ticket used: `mismatch` (another tid took the ticket, so this record
///   can never be anchored);
/// - an event of another log: never this record's anchor (such events are not passed in;
///   one that is counts as none);
/// - an event whose commitment differs: `mismatch`;
/// - with the content: a template under the handle that is not the record's (id, version or
///   hash), or a values hash that is not the record's: `mismatch`, the verdict being about
///   something else;
/// - a verdict that differs from the record's, or an anchor by another transaction than the
///   one the relay names: `mismatch`;
/// - otherwise `verified`, with the event's block and transaction.
pub fn judge(claim: &Claim, seen: &Seen) -> Finding {
    let found = seen.log.filter(|l| l.event.log == claim.log);
    let block_number = found.map(|l| l.block_number);
    let tx_hash = found.map(|l| format!("0x{}", hex::encode(l.tx_hash)));
    let values_hash = found.map(|l| hex::encode(l.event.values_hash));
    let finding = |status, detail: String| Finding {
        status,
        block_number,
        tx_hash: tx_hash.clone(),
        values_hash: values_hash.clone(),
        detail,
    };
    let Some(l) = found else {
        return if seen.ticket_used {
            finding(
                "mismatch",
                format!(
                    "The chain has no anchor for this record in log {}, and its ticket was used \
                     by another record there: this record was never anchored and can no longer \
                     be, whatever the relay says.",
                    claim.log
                ),
            )
        } else {
            finding(
                "missing",
                format!(
                    "The chain has no anchor for this record in log {}: it was never anchored \
                     there, whatever the relay says.",
                    claim.log
                ),
            )
        };
    };
    if l.event.commitment != *claim.commitment.as_bytes() {
        return finding(
            "mismatch",
            "The chain's anchoring event carries a different commitment: the record was \
             changed after it was anchored."
                .into(),
        );
    }
    if let Some(content) = &claim.content {
        let handle = l.event.handle;
        match &seen.template {
            None => {
                return finding(
                    "mismatch",
                    format!(
                        "The registry holds no template under the handle the chain judged this \
                         record with ({handle}): its verdict is not about this record."
                    ),
                );
            }
            Some(t) if t.id != content.template.id || t.version != content.template.version => {
                return finding(
                    "mismatch",
                    format!(
                        "The chain judged this record under another template (handle {handle} \
                         is another template or version than the record's): its verdict is not \
                         about this record."
                    ),
                );
            }
            Some(t) if t.template_hash != content.template.template_hash => {
                return finding(
                    "mismatch",
                    format!(
                        "The template the chain holds under handle {handle} is not the one this \
                         record's values were read with (another template hash): its verdict \
                         is not about this record."
                    ),
                );
            }
            Some(_) => {}
        }
        if l.event.values_hash != content.values_hash {
            return finding("mismatch", OTHER_VALUES.into());
        }
    }
    let valid_on_chain = l.event.verdict == 0;
    if valid_on_chain != (claim.verdict == Claimed::Valid) {
        let said = if valid_on_chain { "valid" } else { "rejected" };
        return finding(
            "mismatch",
            format!("The chain recorded this record as {said}, which is not what the relay says."),
        );
    }
    if let Some(claimed) = &claim.tx
        && claimed.as_bytes() != &l.tx_hash
    {
        return finding(
            "mismatch",
            "The record was anchored by another transaction than the one the relay names.".into(),
        );
    }
    let what = if claim.content.is_some() {
        "commitment, values and verdict, under its template"
    } else {
        "commitment and verdict"
    };
    finding(
        "verified",
        format!(
            "The chain holds this record's {what} in log {} (block {}).",
            claim.log, l.block_number
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mediblock_protocol::ids::TxId;

    fn tid() -> TxId {
        "00112233445566778899aabbccddeeff".parse().expect("tid")
    }

    fn content() -> RecordContent {
        RecordContent {
            values_hash: [0x56; 32],
            template: TemplateInfo {
                id: [0x21; 32],
                version: 1,
                template_hash: [0x43; 32],
            },
        }
    }

    fn found() -> FoundLog {
        FoundLog {
            event: AnchoredEvent {
                tid: *tid().as_bytes(),
                commitment: [0x42; 32],
                values_hash: [0x56; 32],
                submitter: [1; 20],
                log: 1,
                handle: 1,
                verdict: 0,
                path: 1,
            },
            block_number: 9,
            tx_hash: [7; 32],
        }
    }

    fn claim() -> Claim {
        Claim {
            log: 1,
            commitment: Commitment::from_bytes([0x42; 32]),
            verdict: Claimed::Valid,
            tx: None,
            content: Some(content()),
        }
    }

    fn seen() -> Seen {
        Seen {
            ticket_used: true,
            log: Some(found()),
            template: Some(content().template),
        }
    }

    #[test]
    fn judge_tells_verified_missing_and_mismatch() {
        let ok = judge(&claim(), &seen());
        assert_eq!(
            (ok.status, ok.block_number),
            ("verified", Some(9)),
            "{ok:?}"
        );
        assert_eq!(
            ok.tx_hash.as_deref(),
            Some(&*format!("0x{}", "07".repeat(32)))
        );
        assert_eq!(ok.values_hash.as_deref(), Some(&*"56".repeat(32)));
        assert!(ok.detail.contains("values"), "{}", ok.detail);
        let right_tx = Claim {
            tx: Some(ChainHash::from_bytes([7; 32])),
            ..claim()
        };
        assert_eq!(judge(&right_tx, &seen()).status, "verified");

        let none = Seen {
            ticket_used: false,
            log: None,
            template: None,
        };
        let missing = judge(&claim(), &none);
        assert_eq!(
            (missing.status, missing.block_number, missing.tx_hash),
            ("missing", None, None)
        );

        // The ticket is used, but no event carries this tid: another tid took the ticket.
        let taken = judge(
            &claim(),
            &Seen {
                ticket_used: true,
                ..none
            },
        );
        assert_eq!(taken.status, "mismatch");
        assert!(taken.detail.contains("ticket"), "{}", taken.detail);

        // The event's full commitment differs, even in its last byte alone.
        let mut last = [0x42; 32];
        last[31] ^= 1;
        for other in [[0x43; 32], last] {
            let f = judge(
                &Claim {
                    commitment: Commitment::from_bytes(other),
                    ..claim()
                },
                &seen(),
            );
            assert_eq!(f.status, "mismatch");
            assert!(f.detail.contains("different commitment"), "{}", f.detail);
        }

        // The verdict differs, either way.
        let rejected_claim = Claim {
            verdict: Claimed::Rejected,
            ..claim()
        };
        assert_eq!(judge(&rejected_claim, &seen()).status, "mismatch");
        let rejected = Seen {
            log: Some(FoundLog {
                event: AnchoredEvent {
                    verdict: 2,
                    ..found().event
                },
                ..found()
            }),
            ..seen()
        };
        assert_eq!(judge(&claim(), &rejected).status, "mismatch");
        assert_eq!(judge(&rejected_claim, &rejected).status, "verified");

        let wrong_tx = Claim {
            tx: Some(ChainHash::from_bytes([8; 32])),
            ..claim()
        };
        assert_eq!(judge(&wrong_tx, &seen()).status, "mismatch");
    }

    #[test]
    fn a_verdict_on_other_values_is_not_about_the_record() {
        // The chain's event holds another values hash (here one bit apart): whatever its
        // verdict, it judged other values.
        let mut other = [0x56; 32];
        other[0] ^= 0x80;
        for verdict in [0u8, 1] {
            let seen = Seen {
                log: Some(FoundLog {
                    event: AnchoredEvent {
                        values_hash: other,
                        verdict,
                        ..found().event
                    },
                    ..found()
                }),
                ..seen()
            };
            let claimed = if verdict == 0 {
                Claimed::Valid
            } else {
                Claimed::Rejected
            };
            let f = judge(
                &Claim {
                    verdict: claimed,
                    ..claim()
                },
                &seen,
            );
            assert_eq!((f.status, f.detail.as_str()), ("mismatch", OTHER_VALUES));
            assert_eq!(f.values_hash, Some(hex::encode(other)));
            assert_eq!(f.block_number, Some(9));
        }
    }

    #[test]
    fn a_verdict_under_another_template_is_not_about_the_record() {
        let under = |template: Option<TemplateInfo>| judge(&claim(), &Seen { template, ..seen() });
        let t = content().template;
        for (other, says) in [
            (
                TemplateInfo {
                    id: [0x22; 32],
                    ..t
                },
                "another template",
            ),
            (TemplateInfo { version: 2, ..t }, "another template"),
            (
                TemplateInfo {
                    template_hash: [0x44; 32],
                    ..t
                },
                "template hash",
            ),
        ] {
            let f = under(Some(other));
            assert_eq!(f.status, "mismatch", "{other:?}");
            assert!(f.detail.contains(says), "{}", f.detail);
            assert!(f.detail.contains("not about this record"), "{}", f.detail);
        }
        let f = under(None);
        assert_eq!(f.status, "mismatch");
        assert!(f.detail.contains("no template under"), "{}", f.detail);
    }

    #[test]
    fn an_event_in_another_log_is_not_the_anchor() {
        // Another relay anchored a copy of the tid in its log 2; this record's log is 1.
        let other_log = Seen {
            log: Some(FoundLog {
                event: AnchoredEvent {
                    log: 2,
                    ..found().event
                },
                ..found()
            }),
            ..seen()
        };
        let f = judge(&claim(), &other_log);
        assert_eq!((f.status, f.block_number), ("mismatch", None), "{f:?}");
        assert!(f.detail.contains("log 1"), "{}", f.detail);
        let f = judge(
            &claim(),
            &Seen {
                ticket_used: false,
                ..other_log
            },
        );
        assert_eq!(f.status, "missing");
    }

    #[test]
    fn without_content_only_commitment_and_verdict_count() {
        // An erased record: its values are gone, so neither the values hash nor the template
        // is compared (and templateInfo is not read).
        let bare = Claim {
            content: None,
            ..claim()
        };
        let seen = Seen {
            log: Some(FoundLog {
                event: AnchoredEvent {
                    values_hash: [0; 32],
                    ..found().event
                },
                ..found()
            }),
            template: None,
            ..seen()
        };
        let f = judge(&bare, &seen);
        assert_eq!(f.status, "verified", "{f:?}");
        assert!(!f.detail.contains("values"), "{}", f.detail);
    }
}
