//! `cargo xtask test`: every check and test, in the order that fails fastest.
//!
//! 1. `cargo fmt --check`; 2. `cargo clippy --workspace --all-targets -D warnings`;
//! 3. the browser client built into `web/pkg/` (`cargo xtask wasm`);
//! 4. native tests of the whole workspace (unit, golden vectors, properties, end to end);
//! 5. the wasm32 build of the protocol and the client, and the protocol's tests compiled to
//!    wasm32 and run by `wasm-bindgen-test-runner` on Node, and the browser client's tests
//!    run by it in headless Chromium. A summary of counts closes the run.

use crate::shell::{Result, cargo, cargo_cmd, run_capture, step};
use crate::{install, wasm};

/// Counts from `test result:` lines.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
    binaries: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.ignored += other.ignored;
        self.binaries += other.binaries;
    }

    /// Adds every `test result: ok. 3 passed; 0 failed; 1 ignored; …` line in `output`.
    fn parse(output: &str) -> Self {
        let mut c = Counts::default();
        for line in output
            .lines()
            .filter(|l| l.trim_start().starts_with("test result:"))
        {
            c.binaries += 1;
            for part in line.split([';', '.']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next())
                    && let Ok(n) = n.parse::<u64>()
                {
                    match what {
                        "passed" => c.passed += n,
                        "failed" => c.failed += n,
                        "ignored" => c.ignored += n,
                        _ => {}
                    }
                }
            }
        }
        c
    }
}

pub(crate) fn test(args: &[String]) -> Result {
    if let Some(extra) = args.first() {
        return Err(format!(
            "`cargo xtask test` takes no arguments (got {extra:?})"
        ));
    }
    install::ensure_all()?;

    step("formatting (cargo fmt --check)");
    cargo(&["fmt", "--all", "--", "--check"])?;

    step("the protocol crate does no I/O (cargo tree)");
    check_protocol_is_pure()?;

    step("lints (cargo clippy, warnings are errors)");
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;

    // The browser end-to-end tests load the client the relay serves from web/pkg.
    wasm::build()?;

    step("native tests (whole workspace)");
    let native = Counts::parse(&run_capture(&mut cargo_cmd(&["test", "--workspace"]))?);

    step("wasm32 build of protocol and client-wasm");
    cargo(&[
        "build",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "mediblock-protocol",
        "-p",
        "mediblock-client-wasm",
    ])?;

    step("wasm32 tests of protocol (wasm-bindgen-test-runner on Node)");
    let mut wasm_cmd = cargo_cmd(&[
        "test",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "mediblock-protocol",
        "--tests",
    ]);
    wasm_cmd.env(
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
        "wasm-bindgen-test-runner",
    );
    let mut wasm = Counts::parse(&run_capture(&mut wasm_cmd)?);

    step("wasm32 tests of client-wasm (wasm-bindgen-test-runner in headless Chromium)");
    // The runner drives Chromium through ChromeDriver with client-wasm/webdriver.json
    // (the system browser, --no-sandbox and no background networking).
    let mut browser_cmd = cargo_cmd(&[
        "test",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "mediblock-client-wasm",
        "--tests",
    ]);
    browser_cmd
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            "wasm-bindgen-test-runner",
        )
        .env("CHROMEDRIVER", "/usr/bin/chromedriver");
    let browser = Counts::parse(&run_capture(&mut browser_cmd)?);
    wasm.add(browser);

    println!("\n==> summary");
    for (name, c) in [("native", native), ("wasm32", wasm)] {
        println!(
            "{name:>7}: {} passed, {} failed, {} ignored in {} test binaries",
            c.passed, c.failed, c.ignored, c.binaries
        );
    }
    if wasm.passed == 0 {
        return Err("the wasm32 run executed no tests".into());
    }
    println!("all checks passed");
    Ok(())
}

/// Crates that would mean I/O in the pure core.
const FORBIDDEN_IN_PROTOCOL: &[&str] = &[
    "tokio",
    "axum",
    "sqlx",
    "hyper",
    "reqwest",
    "web-sys",
    "getrandom",
    "alloy-provider",
];

/// Fails when `cargo tree -p mediblock-protocol -e normal` lists an I/O crate.
fn check_protocol_is_pure() -> Result {
    let out = crate::shell::query_cargo(&[
        "tree",
        "-p",
        "mediblock-protocol",
        "-e",
        "normal",
        "--prefix",
        "none",
    ])?;
    let found: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| FORBIDDEN_IN_PROTOCOL.contains(name))
        .collect();
    if found.is_empty() {
        println!("protocol's normal dependencies include none of {FORBIDDEN_IN_PROTOCOL:?}");
        Ok(())
    } else {
        Err(format!(
            "mediblock-protocol depends on I/O crates: {found:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_across_binaries() {
        let out = "running 2 tests\n\
                   test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\
                   test result: ok. 40 passed; 0 failed; 0 ignored; 0 filtered out; finished in 1.2s\n";
        assert_eq!(
            Counts::parse(out),
            Counts {
                passed: 42,
                failed: 0,
                ignored: 1,
                binaries: 2
            }
        );
    }
}
