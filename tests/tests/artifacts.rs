//! The committed contract artifacts (`contracts/out/`) must be exactly what a fresh compile
//! of `contracts/src/` with the pinned solc-js gives, and the check must notice when not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mediblock_e2e::repo_root;

/// Runs `node contracts/build.mjs <args>` in `root`.
fn build(root: &Path, args: &[&str]) -> Output {
    let solc = repo_root().join("tools/node_modules/solc/package.json");
    assert!(
        solc.exists(),
        "{} is missing: the pinned Node tools are not installed. Run the project's automation \
         (it runs `npm ci --prefix tools`), then run the tests again.",
        solc.display()
    );
    Command::new("node")
        .arg("contracts/build.mjs")
        .args(args)
        .current_dir(root)
        .output()
        .expect("`node` (Node 20) must be on PATH to compile the contracts")
}

#[test]
fn committed_artifacts_match_a_fresh_compile() {
    let out = build(&repo_root(), &["--check"]);
    assert!(
        out.status.success(),
        "contracts/out/ is stale:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A scratch copy of `contracts/` next to a link to the real `tools/`.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "mediblock-artifacts-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        for sub in ["contracts/src", "contracts/out"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
            for entry in std::fs::read_dir(repo_root().join(sub)).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), dir.join(sub).join(entry.file_name())).unwrap();
            }
        }
        std::fs::copy(
            repo_root().join("contracts/build.mjs"),
            dir.join("contracts/build.mjs"),
        )
        .unwrap();
        std::os::unix::fs::symlink(repo_root().join("tools"), dir.join("tools")).unwrap();
        Self(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_check_names_the_contract_whose_artifact_differs() {
    // Each check compiles everything (a few seconds with solc-js), so this test runs two.
    let scratch = Scratch::new();
    let root = &scratch.0;

    // A changed source: only the artifact of the contract built from it is stale.
    let source = root.join("contracts/src/OrderValidator.sol");
    let original = std::fs::read_to_string(&source).unwrap();
    std::fs::write(
        &source,
        original.replace("MAX_PAIRS = 15", "MAX_PAIRS = 14"),
    )
    .unwrap();
    let out = build(root, &["--check"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("stale artifact: OrderValidator"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("stale artifact").count(), 1, "{stderr}");

    // Sources restored; a hand-edited artifact and a missing one are both named.
    std::fs::write(&source, original).unwrap();
    let artifact = root.join("contracts/out/MediBlockRegistry.json");
    let text = std::fs::read_to_string(&artifact).unwrap();
    std::fs::write(
        &artifact,
        text.replacen("\"runs\": 1000000", "\"runs\": 200", 1),
    )
    .unwrap();
    std::fs::remove_file(root.join("contracts/out/IRecordValidator.json")).unwrap();
    let out = build(root, &["--check"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "stale artifact: MediBlockRegistry (contracts/out/MediBlockRegistry.json differs)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "stale artifact: IRecordValidator (contracts/out/IRecordValidator.json is missing)"
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("stale artifact").count(), 2, "{stderr}");
}

#[test]
fn artifacts_record_the_compiler_settings() {
    let text =
        std::fs::read_to_string(repo_root().join("contracts/out/MediBlockRegistry.json")).unwrap();
    let artifact: serde_json::Value = serde_json::from_str(&text).unwrap();
    let compiler = &artifact["compiler"];
    assert!(compiler["version"].as_str().unwrap().starts_with("0.8.37+"));
    assert_eq!(compiler["settings"]["optimizer"]["enabled"], true);
    assert_eq!(compiler["settings"]["optimizer"]["runs"], 1_000_000);
    assert_eq!(compiler["settings"]["evmVersion"], "cancun");
    for key in ["abi", "bytecode", "deployedBytecode", "methodIdentifiers"] {
        assert!(!artifact[key].is_null(), "{key}");
    }
    // No ABI function of the registry starts with a packed operation's byte.
    for selector in artifact["methodIdentifiers"].as_object().unwrap().values() {
        let first = &selector.as_str().unwrap()[..2];
        assert!(!["01", "02", "03"].contains(&first), "selector {selector}");
    }
}
