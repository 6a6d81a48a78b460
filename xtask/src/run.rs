//! `cargo xtask run`: installs what is missing, then runs the relay (`mediblock serve`)
//! on its embedded default. Extra arguments are passed to `mediblock serve`.

use crate::install;
use crate::shell::{self, Result, cargo_cmd};

pub(crate) fn run(args: &[String]) -> Result {
    install::ensure_node_tools()?;
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
    cmd.args(args);
    shell::run(&mut cmd)
}
