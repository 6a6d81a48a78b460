//! `cargo xtask run`: installs what is missing, then runs the relay (`mediblock serve`)
//! on its embedded default, with the browser client built into `web/pkg/`. Extra arguments are passed to `mediblock serve`.

use crate::shell::{self, Result, cargo_cmd};
use crate::{install, wasm};

pub(crate) fn run(args: &[String]) -> Result {
    install::ensure_node_tools()?;
    wasm::build()?;
    let mut cmd = cargo_cmd(&[
        "run",
        "--release",
        "-p",
        "mediblock-relay",
        "--bin",
        "mediblock",
        "--",
        "serve",
    ]);
    // `cargo xtask run -- --listen …`: the `--` separates xtask's arguments from serve's.
    let args = match args.first().map(String::as_str) {
        Some("--") => &args[1..],
        _ => args,
    };
    cmd.args(args);
    shell::run(&mut cmd)
}
