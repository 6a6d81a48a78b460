//! Installs what the commands need and a fresh machine lacks: the wasm32 target,
//! `wasm-bindgen-cli` at the exact version in `Cargo.lock`, the Node tools pinned in
//! `tools/package.json` (into `tools/node_modules`), and Debian packages.
//! Each step checks first and does nothing when the tool is already there.

use std::process::Command;

use crate::shell::{Result, cargo_cmd, query, root, run, step};

/// Installs everything either command needs.
pub(crate) fn ensure_all() -> Result {
    ensure_wasm_target()?;
    ensure_wasm_bindgen()?;
    ensure_node_tools()?;
    ensure_postgres()?;
    ensure_chromium()?;
    Ok(())
}

/// PostgreSQL's server binaries (tests start throw-away clusters with them).
pub(crate) fn ensure_postgres() -> Result {
    let installed = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().any(|d| d.path().join("bin/initdb").exists()))
        .unwrap_or(false);
    if installed {
        return Ok(());
    }
    apt_install(&["postgresql"])
}

/// Debian's Chromium and ChromeDriver (the browser tests drive them headless).
pub(crate) fn ensure_chromium() -> Result {
    ensure_debian(&[
        ("chromium", "chromium"),
        ("chromedriver", "chromium-driver"),
    ])
}

/// `rustup target add wasm32-unknown-unknown` when the target is missing.
pub(crate) fn ensure_wasm_target() -> Result {
    let installed = query("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        return Ok(());
    }
    step("installing the wasm32-unknown-unknown target");
    run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))
}

/// The `wasm-bindgen` version locked in `Cargo.lock`; the CLI must match it exactly.
pub(crate) fn locked_wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\""
            && let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
        {
            return Ok(v.trim_matches('"').to_owned());
        }
    }
    Err("Cargo.lock has no wasm-bindgen package".into())
}

/// `cargo install wasm-bindgen-cli --version =X` unless `wasm-bindgen --version` says X.
///
/// Not `--locked`: one of the CLI's locked dependencies is missing from the registry
/// mirror here, and the unlocked resolution builds and works.
pub(crate) fn ensure_wasm_bindgen() -> Result {
    let want = locked_wasm_bindgen_version()?;
    let have = query("wasm-bindgen", &["--version"]).unwrap_or_default();
    let runner = query("wasm-bindgen-test-runner", &["--version"]).unwrap_or_default();
    if have.split_whitespace().nth(1) == Some(want.as_str()) && runner.contains(&want) {
        return Ok(());
    }
    step(&format!(
        "installing wasm-bindgen-cli {want} (about 1.5 minutes)"
    ));
    run(&mut cargo_cmd(&[
        "install",
        "wasm-bindgen-cli",
        "--version",
        &format!("={want}"),
        "--force",
    ]))
}

/// `npm ci` in `tools/` when `tools/node_modules` is missing or older than the lock file.
pub(crate) fn ensure_node_tools() -> Result {
    ensure_debian(&[("node", "nodejs"), ("npm", "npm")])?;
    let tools = root().join("tools");
    let marker = tools.join("node_modules/.package-lock.json");
    let lock = tools.join("package-lock.json");
    let fresh = match (std::fs::metadata(&marker), std::fs::metadata(&lock)) {
        (Ok(m), Ok(l)) => match (m.modified(), l.modified()) {
            (Ok(m), Ok(l)) => m >= l,
            _ => false,
        },
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    step("installing the pinned Node tools into tools/node_modules");
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&tools))
}

/// Installs Debian packages for commands that are missing: `(command, package)` pairs.
pub(crate) fn ensure_debian(needs: &[(&str, &str)]) -> Result {
    let missing: Vec<&str> = needs
        .iter()
        .filter(|(cmd, _)| query("sh", &["-c", &format!("command -v {cmd}")]).is_none())
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing)
}

/// `apt-get update` and `apt-get install` of `packages` (through sudo when not root).
pub(crate) fn apt_install(packages: &[&str]) -> Result {
    step(&format!(
        "installing Debian packages: {}",
        packages.join(" ")
    ));
    let sudo = query("id", &["-u"]).is_some_and(|u| u.trim() != "0");
    let apt = |args: &[&str]| -> Result {
        let mut cmd = if sudo {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        } else {
            Command::new("apt-get")
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    apt(&["update", "-q"])?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend_from_slice(packages);
    apt(&args)
}
