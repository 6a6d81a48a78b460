//! The human form of a report: a summary and a table of findings with their evidence, and a
//! plain progress bar for terminals.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;

use super::{Report, Severity};

/// The report as text: what was checked, then one block per finding.
pub fn table(report: &Report) -> String {
    let c = &report.counts;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "MediBlock audit — chain {} registry {} at block {} ({} ms)",
        report.chain_id, report.registry, report.head_block, report.took_ms
    );
    if let Some(p) = &report.scope.patient {
        let _ = writeln!(out, "patient: {p}");
    }
    if report.scope.since.is_some() || report.scope.until.is_some() {
        let _ = writeln!(
            out,
            "time range (Unix ms): {} .. {}",
            report.scope.since.map_or("-".into(), |t| t.0.to_string()),
            report.scope.until.map_or("-".into(), |t| t.0.to_string())
        );
    }
    let _ = writeln!(
        out,
        "checked: {} records ({} verified, {} erased), {} rejected, {} in flight; log {} leaves (size {}); chain {} anchors, {} checkpoints",
        c.records,
        c.verified,
        c.erased,
        c.rejected,
        c.in_flight,
        c.leaves,
        c.log_size,
        c.anchors,
        c.checkpoints
    );
    let tampering = report
        .findings
        .iter()
        .filter(|f| f.severity != Severity::Info)
        .count();
    if report.findings.is_empty() {
        let _ = writeln!(
            out,
            "\nNo findings: every record checks out against the chain and the log."
        );
        return out;
    }
    let _ = writeln!(
        out,
        "\n{} finding(s), {} of them tampering or problems{}\n",
        report.findings.len(),
        tampering,
        if tampering == 0 {
            " (information only)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "{:<16} {:<8} {:<32}  WHAT", "KIND", "LEAF", "TID");
    for f in &report.findings {
        let _ = writeln!(
            out,
            "{:<16} {:<8} {:<32}  {}",
            f.kind.as_str(),
            f.leaf_index.map_or("-".into(), |l| l.to_string()),
            f.tid.as_deref().unwrap_or("-"),
            f.summary
        );
        if let Some(p) = &f.patient {
            let _ = writeln!(out, "{:<58}patient {p}", "");
        }
        for (k, v) in &f.evidence {
            let _ = writeln!(out, "{:<58}{k}: {v}", "");
        }
    }
    out
}

/// A one-line progress bar on stderr, redrawn at most once per percent.
#[derive(Debug, Default)]
pub struct Bar {
    last: Mutex<(String, u64)>,
}

impl Bar {
    /// Draws `phase` at `done` of `total`.
    pub fn draw(&self, phase: &str, done: u64, total: u64) {
        let percent = (done.min(total) * 100).checked_div(total).unwrap_or(100);
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if last.0 == phase && last.1 == percent {
            return;
        }
        if last.0 != phase && !last.0.is_empty() {
            eprintln!();
        }
        *last = (phase.to_owned(), percent);
        let filled = usize::try_from(percent / 4).unwrap_or(25);
        eprint!(
            "\r{phase:<18} [{}{}] {percent:>3}% ({done}/{total})",
            "#".repeat(filled),
            " ".repeat(25 - filled.min(25))
        );
        let _ = std::io::stderr().flush();
    }

    /// Ends the bar's line.
    pub fn finish(&self) {
        if let Ok(last) = self.last.lock()
            && !last.0.is_empty()
        {
            eprintln!();
        }
    }
}
