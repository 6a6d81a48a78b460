//! A throw-away PostgreSQL server for tests: [`TempPostgres::start`] runs `initdb` into a fresh
//! temporary folder and starts `postgres` on 127.0.0.1 on a free port; dropping the value stops
//! the server and removes the folder. [`shared`] gives one server per test process, with
//! [`TempPostgres::fresh_database`] (or [`TempPostgres::create_database`]) giving each test its
//! own database on it.
//!
//! Include it from a test file with `#[path = "support/postgres.rs"] mod postgres;`.
//!
//! # Binaries
//!
//! `$MEDIBLOCK_PG_BIN` when set, else the highest `/usr/lib/postgresql/<version>/bin` (Debian's
//! layout; the `postgresql` package, which the project's automation installs), else the folder
//! of an `initdb` found on `PATH`. `initdb`, `postgres`, `pg_ctl` and `psql` are taken from it.
//!
//! # Root
//!
//! `initdb`, `pg_ctl` and `postgres` refuse to run as root. When the tests run as root (as in
//! the project's containers) the harness runs them as the `postgres` system user (created by
//! the Debian package): it `chown`s the temporary folder to that user and spawns the server
//! programs with `std::os::unix::process::CommandExt::{uid, gid}`, which also drops the
//! supplementary groups. This needs no `su`/`runuser` (no PAM, no extra process in between, so
//! the harness holds the real postmaster as its child). As a normal user nothing changes hands.
//! The temporary folder (`std::env::temp_dir()`, i.e. `$TMPDIR` or `/tmp`) must therefore be
//! reachable by the `postgres` user when running as root.
//!
//! # Cleanup, including when the test process dies
//!
//! A `static` is never dropped, and a test process may also end by a panic in another thread,
//! `exit`, Ctrl-C or `SIGKILL`. So cleanup does not rely on `Drop` alone. Each server gets a
//! *watchdog*: a tiny `sh` started before `initdb`, whose standard input is a pipe whose only
//! writer is this process (std creates pipes close-on-exec, so no other child inherits it). The
//! watchdog blocks reading that pipe; it reads end-of-file when the harness closes the pipe
//! (`Drop`) or when the kernel closes it because this process ended, however it ended. It then
//! runs `pg_ctl stop -m immediate -w` and removes the folder. `Drop` closes the pipe and waits
//! for the watchdog and the postmaster, so when `drop` returns the port is closed and the
//! folder is gone. The watchdog and the server live in their own process group, so a Ctrl-C in
//! the terminal (sent to the foreground group) cannot kill the watchdog before it cleans up.
//!
//! If even the watchdog is killed (`kill -9` of every process), the next [`TempPostgres::start`]
//! in any test process sweeps the temporary folder for `mediblock-pg-<pid>-…` folders whose
//! owning test process no longer exists, stops their postmaster if one still runs there (it is
//! recognised by its working directory being that data directory, so a reused pid is never
//! signalled), and removes them. As a last resort PostgreSQL itself shuts down within a minute
//! once its data directory's lock file has been removed.
//!
//! # Speed and isolation
//!
//! `initdb --no-sync`, and the server runs with `fsync`, `synchronous_commit` and
//! `full_page_writes` off: a crash loses data, which a throw-away test server does not mind. It
//! listens on 127.0.0.1 only, with its Unix socket inside its own folder, and trusts every local
//! connection as the superuser `postgres`. The port comes from binding `127.0.0.1:0`; since
//! another process may take it before `postgres` binds it, a start that fails with "Address
//! already in use" is retried on a new port. Readiness is polled (short, growing pauses) on the
//! status line the postmaster writes into `postmaster.pid` — the same signal `pg_ctl -w` uses —
//! and then confirmed by a real query over TCP.
// Each test binary includes this file and uses a different subset of it.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{env, thread};

/// The environment variable naming the folder holding `initdb`, `postgres`, `pg_ctl`, `psql`.
pub(crate) const BIN_ENV: &str = "MEDIBLOCK_PG_BIN";
/// Every server folder is `<temp dir>/mediblock-pg-<owner pid>-<counter>-<time>`.
pub(crate) const DIR_PREFIX: &str = "mediblock-pg-";
/// The superuser `initdb` creates; every connection uses it.
pub(crate) const SUPERUSER: &str = "postgres";

/// How long one start (`initdb` excluded) may wait for the server to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How many ports to try when another process takes the chosen one first.
const PORT_ATTEMPTS: u32 = 10;
/// Settings for a fast, local-only, throw-away server.
const SERVER_SETTINGS: &[&str] = &[
    "listen_addresses=127.0.0.1",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    // Many tests, each with its own pool, may share one server.
    "max_connections=200",
];
/// The watchdog. `$1` is `pg_ctl`, `$2` the data directory, `$3` the server folder. `cat`
/// returns at end-of-file on stdin: the harness dropped the server or its process ended.
const WATCHDOG: &str = r#"trap '' INT HUP
cat >/dev/null
"$1" stop -D "$2" -m immediate -w -t 60 >/dev/null 2>&1
status=$?
rm -rf -- "$3"
exit $status
"#;

static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);
static SWEEP: Once = Once::new();
static SHARED: OnceLock<Result<TempPostgres, String>> = OnceLock::new();

/// The user the server programs run as, when this process is root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// A running throw-away PostgreSQL server; dropping it stops the server and deletes its files.
#[derive(Debug)]
pub(crate) struct TempPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    run_as: Option<RunAs>,
    postgres: Option<Child>,
    watchdog: Option<Child>,
    next_database: AtomicU64,
}

/// The process-wide server, started on first use and reused by every test in this binary (give
/// each test its own database with [`TempPostgres::fresh_database`]). It is stopped and its
/// folder removed by its watchdog when the test process ends.
///
/// # Panics
///
/// If the server cannot be started; the message says why. See [`try_shared`].
pub(crate) fn shared() -> &'static TempPostgres {
    match try_shared() {
        Ok(pg) => pg,
        Err(e) => panic!("{e}"),
    }
}

/// [`shared`], returning the start error instead of panicking (every later call returns the
/// same error: a failed start is not retried).
pub(crate) fn try_shared() -> io::Result<&'static TempPostgres> {
    match SHARED.get_or_init(|| TempPostgres::start().map_err(|e| e.to_string())) {
        Ok(pg) => Ok(pg),
        Err(message) => Err(io::Error::other(format!(
            "the shared PostgreSQL server did not start: {message}"
        ))),
    }
}

impl TempPostgres {
    /// Runs `initdb` into a fresh temporary folder and starts a server on 127.0.0.1; returns
    /// once the server answers a query. Errors name the command that failed and its output.
    pub(crate) fn start() -> io::Result<Self> {
        SWEEP.call_once(|| {
            remove_stale_clusters();
        });
        let bin = find_bin_dir()?;
        let dir = make_server_dir()?;
        // From here on, `Drop` cleans up whatever has been set up if a step fails.
        let mut pg = Self {
            bin,
            dir,
            port: 0,
            run_as: None,
            postgres: None,
            watchdog: None,
            next_database: AtomicU64::new(0),
        };
        if fs::metadata(&pg.dir)?.uid() == 0 {
            let user = postgres_user()?;
            std::os::unix::fs::chown(&pg.dir, Some(user.uid), Some(user.gid)).map_err(|e| {
                with_context(
                    e,
                    format!("could not chown {} to `postgres`", pg.dir.display()),
                )
            })?;
            pg.run_as = Some(user);
        }
        pg.spawn_watchdog()?;
        pg.initdb()?;
        pg.start_server()?;
        Ok(pg)
    }

    /// The TCP port the server listens on (127.0.0.1 only).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The folder holding the data directory, the socket and `postgres.log`.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder the PostgreSQL programs were taken from.
    pub(crate) fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>`.
    pub(crate) fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates the empty database `name` (lowercase ASCII letters, digits and `_`, not starting
    /// with a digit, at most 63 bytes) and returns its URL.
    pub(crate) fn create_database(&self, name: &str) -> io::Result<String> {
        check_database_name(name)?;
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.url(name))
    }

    /// Creates a database with a name not used before on this server and returns its URL.
    pub(crate) fn fresh_database(&self) -> io::Result<String> {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        self.create_database(&format!("test_{n}"))
    }

    /// Runs `sql` in database `db` with `psql` over TCP and returns what it printed, unaligned
    /// and without headers (one row a line, columns separated by `|`), trailing newline removed.
    pub(crate) fn psql(&self, db: &str, sql: &str) -> io::Result<String> {
        let mut cmd = Command::new(self.bin.join("psql"));
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-d")
            .arg(self.url(db))
            .arg("-c")
            .arg(sql)
            .stdin(Stdio::null());
        let out = run(&mut cmd)?;
        Ok(out.trim_end_matches('\n').to_owned())
    }

    /// A command for a server program (`initdb`, `postgres`, `pg_ctl`): run as the `postgres`
    /// user when this process is root, from the server folder.
    fn server_command(&self, program: &str) -> Command {
        server_command(&self.bin.join(program), self.run_as, &self.dir)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    fn spawn_watchdog(&mut self) -> io::Result<()> {
        let mut cmd = server_command(Path::new("/bin/sh"), self.run_as, &self.dir);
        cmd.arg("-c")
            .arg(WATCHDOG)
            .arg("mediblock-pg-watchdog")
            .arg(self.bin.join("pg_ctl"))
            .arg(self.data_dir())
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let child = cmd.spawn().map_err(|e| {
            with_context(
                e,
                format!("could not start the watchdog{} {cmd:?}", self.as_whom()),
            )
        })?;
        self.watchdog = Some(child);
        Ok(())
    }

    fn initdb(&self) -> io::Result<()> {
        let mut cmd = self.server_command("initdb");
        cmd.arg("-D")
            .arg(self.data_dir())
            .args([
                "--auth=trust",
                "-U",
                SUPERUSER,
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .stdin(Stdio::null());
        run(&mut cmd)
            .map(drop)
            .map_err(|e| with_context(e, format!("initdb{}", self.as_whom())))
    }

    /// Says who runs the server programs, for error messages.
    fn as_whom(&self) -> &'static str {
        match self.run_as {
            Some(_) => " (run as the `postgres` user, since this process is root)",
            None => "",
        }
    }

    fn start_server(&mut self) -> io::Result<()> {
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            match self.try_start_on(port)? {
                Started::Ready => {
                    self.port = port;
                    // A real query over TCP, as the tests will connect.
                    let answer = self.psql("postgres", "SELECT 1")?;
                    if answer != "1" {
                        return Err(io::Error::other(format!(
                            "PostgreSQL answered {answer:?} to `SELECT 1`"
                        )));
                    }
                    return Ok(());
                }
                Started::PortTaken(log) => last_error = Some(log),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!(
                "postgres could not bind a port in {PORT_ATTEMPTS} attempts; last log:\n{}",
                last_error.unwrap_or_default()
            ),
        ))
    }

    /// Starts `postgres` on `port` and waits until it is ready or has exited.
    fn try_start_on(&mut self, port: u16) -> io::Result<Started> {
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| with_context(e, format!("could not open {}", log_path.display())))?;
        let log_start = log.seek(SeekFrom::End(0))?;
        let mut cmd = self.server_command("postgres");
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-p")
            .arg(port.to_string())
            .arg("-k")
            .arg(&self.dir);
        for setting in SERVER_SETTINGS {
            cmd.arg("-c").arg(setting);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| with_context(e, format!("could not start{} {cmd:?}", self.as_whom())))?;
        let pid = child.id();
        let data = self.data_dir();
        let child = self.postgres.insert(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        let mut pause = Duration::from_millis(2);
        loop {
            if let Some(status) = child.try_wait()? {
                self.postgres = None;
                let log = read_from(&log_path, log_start);
                if log.contains("Address already in use") {
                    return Ok(Started::PortTaken(log));
                }
                return Err(exited_error(&cmd, status, &log));
            }
            if postmaster_ready(&data, pid, port) {
                return Ok(Started::Ready);
            }
            if Instant::now() >= deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{cmd:?} was not ready after {READY_TIMEOUT:?}; its log:\n{}",
                        read_from(&log_path, log_start)
                    ),
                ));
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        // Closing the watchdog's stdin makes it stop the server and remove the folder.
        let stopped = match self.watchdog.take() {
            Some(mut watchdog) => {
                drop(watchdog.stdin.take());
                watchdog.wait().is_ok_and(|status| status.success())
            }
            None => false,
        };
        if let Some(mut postgres) = self.postgres.take() {
            // `pg_ctl stop -w` returned once the postmaster removed its pid file on its way
            // out; reap it. If the watchdog failed, kill the server ourselves.
            if !stopped && matches!(postgres.try_wait(), Ok(None)) {
                let _ = postgres.kill();
            }
            let _ = postgres.wait();
        }
        // Nothing to report from a destructor: a leftover folder is swept by a later start.
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// What one attempt to start the server gave.
enum Started {
    Ready,
    /// Another process took the port first; the server's log.
    PortTaken(String),
}

/// Removes server folders left in the temporary folder by test processes that no longer
/// exist, stopping any postmaster still running in them; returns how many were removed.
/// Folders of live processes, and anything this process may not delete, are left alone.
pub(crate) fn remove_stale_clusters() -> usize {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return 0; // no way to tell which owners are alive
    }
    let Ok(entries) = fs::read_dir(env::temp_dir()) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if proc.join(owner.to_string()).exists() {
            continue;
        }
        let dir = entry.path();
        stop_stale_postmaster(&dir);
        if fs::remove_dir_all(&dir).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Stops the postmaster of a stale folder, if one still runs there. It is recognised by its
/// working directory (a postmaster `chdir`s into its data directory), so a pid reused by an
/// unrelated process is never signalled.
fn stop_stale_postmaster(dir: &Path) {
    let data = dir.join("data");
    let Ok(pid_file) = fs::read_to_string(data.join("postmaster.pid")) else {
        return;
    };
    let Some(pid) = pid_file.lines().next().map(str::trim) else {
        return;
    };
    let running_there = fs::read_link(Path::new("/proc").join(pid).join("cwd"))
        .is_ok_and(|cwd| fs::canonicalize(&data).is_ok_and(|data| cwd == data));
    if !running_there {
        return;
    }
    let (Ok(bin), Ok(meta)) = (find_bin_dir(), fs::metadata(&data)) else {
        return;
    };
    // As root, run `pg_ctl` as the data directory's owner (it refuses root).
    let run_as = (am_root() && meta.uid() != 0).then(|| RunAs {
        uid: meta.uid(),
        gid: meta.gid(),
    });
    let mut cmd = server_command(&bin.join("pg_ctl"), run_as, dir);
    cmd.arg("stop")
        .arg("-D")
        .arg(&data)
        .args(["-m", "immediate", "-w", "-t", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _ = cmd.status();
}

/// Whether this process runs as root (`/proc/self` belongs to the effective user).
fn am_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `$MEDIBLOCK_PG_BIN`, else the highest `/usr/lib/postgresql/<n>/bin`, else `initdb`'s
/// folder on `PATH`.
fn find_bin_dir() -> io::Result<PathBuf> {
    let has_programs = |dir: &Path| {
        ["initdb", "postgres", "pg_ctl", "psql"]
            .iter()
            .all(|p| dir.join(p).is_file())
    };
    if let Some(dir) = env::var_os(BIN_ENV) {
        let dir = PathBuf::from(dir);
        if has_programs(&dir) {
            return Ok(dir);
        }
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{BIN_ENV}={} does not hold initdb, postgres, pg_ctl and psql",
                dir.display()
            ),
        ));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| has_programs(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let on_path = env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|dir| has_programs(dir));
    on_path.ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "PostgreSQL server programs (initdb, postgres, pg_ctl, psql) not found in \
                 /usr/lib/postgresql/*/bin or on PATH: install them (`apt-get install -y \
                 postgresql`; the project's automation does) or set {BIN_ENV}"
            ),
        )
    })
}

/// Creates `<temp dir>/mediblock-pg-<pid>-<counter>-<time>`; fails rather than reuse a folder.
fn make_server_dir() -> io::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = env::temp_dir().join(format!(
        "{DIR_PREFIX}{}-{}-{:x}",
        std::process::id(),
        DIR_COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos & u128::from(u64::MAX),
    ));
    fs::create_dir(&dir)
        .map_err(|e| with_context(e, format!("could not create {}", dir.display())))?;
    Ok(dir)
}

/// The uid and gid of the `postgres` system user (`getent passwd postgres`).
fn postgres_user() -> io::Result<RunAs> {
    let mut cmd = Command::new("getent");
    cmd.args(["passwd", "postgres"]).stdin(Stdio::null());
    let line = run(&mut cmd).map_err(|e| {
        with_context(
            e,
            "running as root, the server must run as the `postgres` system user, which was \
             not found (the Debian `postgresql` package creates it)"
                .to_owned(),
        )
    })?;
    let fields: Vec<&str> = line.trim().split(':').collect();
    match (
        fields.get(2).and_then(|u| u.parse().ok()),
        fields.get(3).and_then(|g| g.parse().ok()),
    ) {
        (Some(uid), Some(gid)) if uid != 0 => Ok(RunAs { uid, gid }),
        _ => Err(io::Error::other(format!(
            "unexpected `getent passwd postgres` output: {line:?}"
        ))),
    }
}

fn server_command(program: &Path, run_as: Option<RunAs>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir);
    if let Some(user) = run_as {
        cmd.uid(user.uid).gid(user.gid);
    }
    cmd
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| with_context(e, "could not bind 127.0.0.1:0".to_owned()))?;
    Ok(listener.local_addr()?.port())
}

/// Whether `postmaster.pid` says that postmaster `pid` accepts connections on `port`
/// (lines 1, 4 and 8: pid, port, status).
fn postmaster_ready(data: &Path, pid: u32, port: u16) -> bool {
    let Ok(text) = fs::read_to_string(data.join("postmaster.pid")) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    lines.first() == Some(&pid.to_string().as_str())
        && lines.get(3) == Some(&port.to_string().as_str())
        && lines.get(7) == Some(&"ready")
}

fn check_database_name(name: &str) -> io::Result<()> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "invalid database name {name:?}: use 1 to 63 lowercase ASCII letters, digits \
                 and `_`, not starting with a digit"
            ),
        ))
    }
}

/// Runs `cmd` to completion; its stdout on success, else an error naming the command and
/// quoting its stderr (and stdout: `initdb` explains itself on both).
fn run(cmd: &mut Command) -> io::Result<String> {
    let out = cmd
        .output()
        .map_err(|e| with_context(e, format!("could not run {cmd:?}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        return Ok(stdout);
    }
    let mut message = format!("{cmd:?} failed ({})", out.status);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (name, text) in [("stderr", stderr.trim()), ("stdout", stdout.trim())] {
        if !text.is_empty() {
            let _ = write!(message, "\n--- {name} ---\n{text}");
        }
    }
    Err(io::Error::other(message))
}

fn exited_error(cmd: &Command, status: ExitStatus, log: &str) -> io::Error {
    io::Error::other(format!(
        "{cmd:?} exited ({status}) before it was ready; its log:\n{log}"
    ))
}

/// The text of `path` from byte `offset` on (what one server attempt logged), best effort.
fn read_from(path: &Path, offset: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path)
        && file.seek(SeekFrom::Start(offset)).is_ok()
    {
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    text
}

fn with_context(e: io::Error, context: String) -> io::Error {
    io::Error::new(e.kind(), format!("{context}: {e}"))
}
