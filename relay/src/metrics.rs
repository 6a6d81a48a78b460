//! Prometheus metrics in the text exposition format, kept in atomics (no dependency).
//!
//! - `mediblock_submissions_total{outcome}` — accepted, duplicate, rule_violation, refused;
//! - `mediblock_anchored_total{verdict}` — records the chain anchored, valid or rejected;
//! - `mediblock_anchor_latency_seconds` — histogram, acceptance → stored;
//! - `mediblock_gas_used_total` — gas of the relay's anchoring transactions;
//! - `mediblock_queue_depth` — submissions waiting for the chain (read from the store).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

/// Submission outcomes counted at the front door.
#[derive(Debug, Clone, Copy)]
pub enum SubmitOutcome {
    /// Queued (202).
    Accepted,
    /// An idempotent retry of an accepted submission.
    Duplicate,
    /// Refused for rule violations (422).
    RuleViolation,
    /// Refused otherwise (bad signature, key, template, role, …).
    Refused,
}

/// The relay's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    submissions: [AtomicU64; 4],
    anchored_valid: AtomicU64,
    anchored_rejected: AtomicU64,
    gas_used: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ms: AtomicU64,
}

impl Metrics {
    /// Counts one submission outcome.
    pub fn submission(&self, outcome: SubmitOutcome) {
        self.submissions[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one anchored record, its gas and its acceptance → stored latency.
    pub fn anchored(&self, valid: bool, gas: u64, latency_ms: u64) {
        if valid {
            self.anchored_valid.fetch_add(1, Ordering::Relaxed);
        } else {
            self.anchored_rejected.fetch_add(1, Ordering::Relaxed);
        }
        self.gas_used.fetch_add(gas, Ordering::Relaxed);
        let secs = latency_ms as f64 / 1000.0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            if secs <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ms.fetch_add(latency_ms, Ordering::Relaxed);
    }

    /// Renders every metric; `queue_depth` comes from the store at scrape time.
    pub fn render(&self, queue_depth: u64) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP mediblock_submissions_total Submissions by outcome at the relay's front door."
        );
        let _ = writeln!(out, "# TYPE mediblock_submissions_total counter");
        for (i, name) in ["accepted", "duplicate", "rule_violation", "refused"]
            .iter()
            .enumerate()
        {
            let _ = writeln!(
                out,
                "mediblock_submissions_total{{outcome=\"{name}\"}} {}",
                get(&self.submissions[i])
            );
        }
        let _ = writeln!(
            out,
            "# HELP mediblock_anchored_total Records anchored on chain by verdict."
        );
        let _ = writeln!(out, "# TYPE mediblock_anchored_total counter");
        let _ = writeln!(
            out,
            "mediblock_anchored_total{{verdict=\"valid\"}} {}",
            get(&self.anchored_valid)
        );
        let _ = writeln!(
            out,
            "mediblock_anchored_total{{verdict=\"rejected\"}} {}",
            get(&self.anchored_rejected)
        );
        let _ = writeln!(
            out,
            "# HELP mediblock_gas_used_total Gas used by the relay's anchoring transactions."
        );
        let _ = writeln!(out, "# TYPE mediblock_gas_used_total counter");
        let _ = writeln!(out, "mediblock_gas_used_total {}", get(&self.gas_used));
        let _ = writeln!(
            out,
            "# HELP mediblock_queue_depth Submissions waiting for the chain."
        );
        let _ = writeln!(out, "# TYPE mediblock_queue_depth gauge");
        let _ = writeln!(out, "mediblock_queue_depth {queue_depth}");
        let _ = writeln!(
            out,
            "# HELP mediblock_anchor_latency_seconds Time from acceptance to stored."
        );
        let _ = writeln!(out, "# TYPE mediblock_anchor_latency_seconds histogram");
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "mediblock_anchor_latency_seconds_bucket{{le=\"{bound}\"}} {}",
                get(bucket)
            );
        }
        let count = get(&self.latency_count);
        let _ = writeln!(
            out,
            "mediblock_anchor_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "mediblock_anchor_latency_seconds_sum {}",
            get(&self.latency_sum_ms) as f64 / 1000.0
        );
        let _ = writeln!(out, "mediblock_anchor_latency_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.submission(SubmitOutcome::Accepted);
        m.submission(SubmitOutcome::Accepted);
        m.submission(SubmitOutcome::RuleViolation);
        m.anchored(true, 40_000, 300);
        m.anchored(false, 41_000, 7_000);
        let text = m.render(3);
        assert!(text.contains("mediblock_submissions_total{outcome=\"accepted\"} 2\n"));
        assert!(text.contains("mediblock_submissions_total{outcome=\"rule_violation\"} 1\n"));
        assert!(text.contains("mediblock_anchored_total{verdict=\"rejected\"} 1\n"));
        assert!(text.contains("mediblock_gas_used_total 81000\n"));
        assert!(text.contains("mediblock_queue_depth 3\n"));
        assert!(text.contains("mediblock_anchor_latency_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("mediblock_anchor_latency_seconds_bucket{le=\"10\"} 2\n"));
        assert!(text.contains("mediblock_anchor_latency_seconds_count 2\n"));
        assert!(text.contains("mediblock_anchor_latency_seconds_sum 7.3\n"));
    }
}
