//! Running commands: echoed before they run, failing loudly with the command line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Result of an automation step; the error is a sentence for a person.
pub(crate) type Result<T = (), E = String> = std::result::Result<T, E>;

/// The repository root (the parent of the `xtask` crate).
///
/// `cargo run` sets `CARGO_MANIFEST_DIR` for the running program too; the compile-time value
/// is the fallback when the binary is started directly.
pub(crate) fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    Path::new(&manifest_dir)
        .parent()
        .expect("xtask lives one level below the repository root")
        .to_path_buf()
}

/// Prints a step heading.
pub(crate) fn step(title: &str) {
    println!("\n==> {title}");
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` in the repository root, inheriting stdio; fails unless it exits with 0.
pub(crate) fn run(cmd: &mut Command) -> Result {
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(root());
    }
    let line = describe(cmd);
    println!("$ {line}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start `{line}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{line}` failed ({status})"))
    }
}

/// Runs `cmd`, streaming its output and also returning the standard output.
pub(crate) fn run_capture(cmd: &mut Command) -> Result<String> {
    use std::io::{BufRead, BufReader};
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(root());
    }
    let line = describe(cmd);
    println!("$ {line}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{line}`: {e}"))?;
    let mut out = String::new();
    if let Some(stdout) = child.stdout.take() {
        for l in BufReader::new(stdout).lines() {
            let l = l.map_err(|e| format!("reading output of `{line}`: {e}"))?;
            println!("{l}");
            out.push_str(&l);
            out.push('\n');
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for `{line}`: {e}"))?;
    if status.success() {
        Ok(out)
    } else {
        Err(format!("`{line}` failed ({status})"))
    }
}

/// The output of a quick query command, or `None` if it cannot run or fails.
pub(crate) fn query(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `cargo <args>` with the toolchain that runs this xtask.
pub(crate) fn cargo_cmd(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(args);
    cmd
}

/// Runs `cargo <args>`.
pub(crate) fn cargo(args: &[&str]) -> Result {
    run(&mut cargo_cmd(args))
}

/// Runs `cargo <args>` quietly and returns its standard output; fails on a non-zero exit.
pub(crate) fn query_cargo(args: &[&str]) -> Result<String> {
    let out = cargo_cmd(args)
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`cargo {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
