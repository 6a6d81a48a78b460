//! MediBlock's automation, reached as `cargo xtask <command>` (see `.cargo/config.toml`).
//!
//! - `cargo xtask run`  — installs what is missing and runs the product on its embedded
//!   default.
//! - `cargo xtask wasm` — builds the browser client into `web/pkg/`.
//! - `cargo xtask test` — installs what is missing and runs every check and test: the same
//!   command CI runs through `.ci/run`.
//!
//! Everything it needs beyond the Rust toolchain (the wasm32 target, `wasm-bindgen-cli` at
//! the version in `Cargo.lock`, the Node tools pinned in `tools/package.json`, Debian
//! packages) it installs itself, so both commands work on a fresh machine.

mod install;
mod run;
mod shell;
mod test;
mod wasm;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  run     install what is missing, then run the product (relay + web UI) locally
  test    install what is missing, then run every check and test (what CI runs)
  wasm    build the browser client into web/pkg (the relay serves it)
  setup   only install what is missing
  vectors regenerate protocol/testdata/ golden vectors
";

fn main() -> ExitCode {
    // The first argument is the program itself.
    let all: Vec<String> = std::env::args().collect();
    let args = all.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("run") => run::run(&args[1..]),
        Some("test") => test::test(&args[1..]),
        Some("wasm") => wasm::build(),
        Some("setup") => install::ensure_all(),
        Some("vectors") => shell::cargo(&[
            "run",
            "-p",
            "mediblock-protocol",
            "--example",
            "gen_vectors",
        ]),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
