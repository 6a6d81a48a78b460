//! `cargo xtask wasm`: builds the browser client (`client-wasm/`) into `web/pkg/`, the
//! ES module the pages import, exactly as the relay serves it.
//!
//! 1. `cargo build -p mediblock-client-wasm --target wasm32-unknown-unknown --profile wasm-release`
//!    (size-optimised, see the root `Cargo.toml`);
//! 2. `wasm-bindgen --target web` (the CLI at the version in `Cargo.lock`) into `web/pkg/`;
//! 3. `wasm-opt -Oz` from the pinned npm `binaryen`, in place.

use std::path::PathBuf;
use std::process::Command;

use crate::install;
use crate::shell::{Result, cargo, query_cargo, root, run, step};

/// The cargo profile the browser build uses.
const PROFILE: &str = "wasm-release";

/// Builds `web/pkg/` and prints the module's size.
pub(crate) fn build() -> Result {
    install::ensure_wasm_target()?;
    install::ensure_wasm_bindgen()?;
    install::ensure_node_tools()?;

    step("building the browser client (client-wasm → web/pkg)");
    cargo(&[
        "build",
        "-p",
        "mediblock-client-wasm",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        PROFILE,
    ])?;
    let wasm = target_dir()?
        .join("wasm32-unknown-unknown")
        .join(PROFILE)
        .join("mediblock_client_wasm.wasm");
    let out = root().join("web/pkg");
    run(Command::new("wasm-bindgen")
        .args(["--target", "web", "--no-typescript", "--out-dir"])
        .arg(&out)
        .arg(&wasm))?;
    let module = out.join("mediblock_client_wasm_bg.wasm");
    run(
        Command::new(root().join("tools/node_modules/.bin/wasm-opt"))
            .args([
                "-Oz",
                "--enable-bulk-memory",
                "--enable-nontrapping-float-to-int",
            ])
            .arg(&module)
            .arg("-o")
            .arg(&module),
    )?;
    let size = std::fs::metadata(&module)
        .map_err(|e| format!("{}: {e}", module.display()))?
        .len();
    println!("web/pkg/mediblock_client_wasm_bg.wasm: {size} bytes");
    Ok(())
}

/// Cargo's target directory (honours `CARGO_TARGET_DIR`), from `cargo metadata`.
fn target_dir() -> Result<PathBuf> {
    let meta = query_cargo(&["metadata", "--format-version", "1", "--no-deps"])?;
    let key = "\"target_directory\":\"";
    let start = meta
        .find(key)
        .map(|i| i + key.len())
        .ok_or("cargo metadata has no target_directory")?;
    let end = meta[start..]
        .find('"')
        .ok_or("cargo metadata's target_directory is not closed")?;
    Ok(PathBuf::from(&meta[start..start + end]))
}
