//! The throw-away PostgreSQL harness (`support/postgres.rs`) checked with the real `psql`
//! command line: a server starts and answers, databases are independent, dropping the harness
//! stops the server, and a killed test process does not leave its server behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/postgres.rs"]
mod postgres;

use std::io::{BufRead as _, BufReader, ErrorKind, Read as _};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use std::{env, fs, thread};

use postgres::TempPostgres;

/// Set when this test binary is re-executed as the process that gets killed.
const CHILD_ENV: &str = "MEDIBLOCK_PG_HARNESS_CHILD";

/// Runs `sql` with the `psql` command line against `url`; stdout (unaligned, no headers) on
/// success, stderr on failure.
fn psql(pg: &TempPostgres, url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new(pg.bin_dir().join("psql"))
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim_end().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port))
}

#[test]
fn a_started_server_answers_and_its_databases_are_independent() {
    let pg = TempPostgres::start().expect("start PostgreSQL");

    let alpha = pg.create_database("alpha").expect("create alpha");
    let beta = pg.create_database("beta").expect("create beta");
    assert_eq!(
        alpha,
        format!("postgres://postgres@127.0.0.1:{}/alpha", pg.port())
    );
    assert_eq!(beta, pg.url("beta"));

    for url in [&alpha, &beta] {
        assert_eq!(psql(&pg, url, "SELECT 1+1").unwrap(), "2");
    }
    assert_eq!(
        psql(&pg, &alpha, "SELECT current_database()").unwrap(),
        "alpha"
    );
    assert_eq!(
        psql(&pg, &beta, "SELECT current_database()").unwrap(),
        "beta"
    );

    psql(
        &pg,
        &alpha,
        "CREATE TABLE notes (id int PRIMARY KEY, body text); \
         INSERT INTO notes VALUES (1, 'pulse 72'), (2, 'temp 36.6')",
    )
    .unwrap();
    assert_eq!(
        psql(
            &pg,
            &alpha,
            "SELECT string_agg(body, ';' ORDER BY id) FROM notes"
        )
        .unwrap(),
        "pulse 72;temp 36.6"
    );
    assert_eq!(
        psql(&pg, &beta, "SELECT to_regclass('public.notes') IS NULL").unwrap(),
        "t"
    );
    let err = psql(&pg, &beta, "SELECT count(*) FROM notes").unwrap_err();
    assert!(
        err.contains("relation \"notes\" does not exist"),
        "unexpected error: {err}"
    );

    // The speed settings and the local-only listener are in force.
    let settings = psql(
        &pg,
        &alpha,
        "SELECT current_setting('fsync') || ',' || current_setting('synchronous_commit') \
         || ',' || current_setting('full_page_writes') || ',' \
         || current_setting('listen_addresses') || ',' || current_user",
    )
    .unwrap();
    assert_eq!(settings, "off,off,off,127.0.0.1,postgres");
    // The harness's own `psql` helper sees the same server.
    assert_eq!(pg.psql("alpha", "SELECT count(*) FROM notes").unwrap(), "2");
}

#[test]
fn dropping_the_server_stops_it_and_removes_its_folder() {
    let pg = TempPostgres::start().expect("start PostgreSQL");
    let port = pg.port();
    let dir = pg.dir().to_path_buf();
    assert!(dir.join("data").join("PG_VERSION").is_file());
    connect(port).expect("the server accepts connections while it runs");
    assert_eq!(psql(&pg, &pg.url("postgres"), "SELECT 40+2").unwrap(), "42");

    drop(pg);

    // `drop` returns after the postmaster has exited, so this is already decided. (Another
    // process could in theory be given the same port in between; the kernel's choice of free
    // ports makes that vanishingly unlikely.)
    let err = connect(port).expect_err("the port must refuse connections after drop");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[test]
fn the_shared_server_is_one_server_with_a_fresh_database_per_test() {
    let first = postgres::shared();
    let second = postgres::shared();
    assert!(std::ptr::eq(first, second));

    let a = first.fresh_database().unwrap();
    let b = second.fresh_database().unwrap();
    assert_ne!(a, b);
    psql(first, &a, "CREATE TABLE only_in_a (x int)").unwrap();
    assert_eq!(
        psql(
            first,
            &b,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        )
        .unwrap(),
        "0"
    );
    assert_eq!(
        psql(
            first,
            &a,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'"
        )
        .unwrap(),
        "1"
    );
}

#[test]
fn servers_start_in_parallel_threads() {
    let servers: Vec<TempPostgres> = (0..3)
        .map(|_| thread::spawn(TempPostgres::start))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|handle| handle.join().unwrap().expect("start PostgreSQL"))
        .collect();
    let mut ports: Vec<u16> = servers.iter().map(TempPostgres::port).collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 3, "three servers, three ports");
    for pg in &servers {
        assert_eq!(
            psql(pg, &pg.url("postgres"), "SHOW port").unwrap(),
            pg.port().to_string()
        );
    }
}

#[test]
fn create_database_refuses_bad_names_and_reports_failures() {
    let pg = postgres::shared();
    for bad in [
        "",
        "Upper",
        "1st",
        "semi;colon",
        "quote\"d",
        &"x".repeat(64),
    ] {
        let err = pg.create_database(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    let name = "created_twice";
    pg.create_database(name).unwrap();
    let err = pg.create_database(name).unwrap_err().to_string();
    assert!(err.contains("psql"), "names the command: {err}");
    assert!(
        err.contains("CREATE DATABASE"),
        "names the statement: {err}"
    );
    assert!(
        err.contains("database \"created_twice\" already exists"),
        "quotes stderr: {err}"
    );
}

#[test]
fn stale_folders_of_dead_processes_are_swept_and_live_ones_kept() {
    // No process can have a pid of `pid_max` or more.
    let pid_max: u32 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let me = std::process::id();
    let dead = env::temp_dir().join(format!("{}{pid_max}-0-sweeptest{me}", postgres::DIR_PREFIX));
    let live = env::temp_dir().join(format!("{}{me}-sweeptest", postgres::DIR_PREFIX));
    fs::create_dir_all(dead.join("data")).unwrap();
    fs::write(dead.join("data").join("PG_VERSION"), "15\n").unwrap();
    fs::create_dir_all(&live).unwrap();

    postgres::remove_stale_clusters();

    let live_survived = live.exists();
    fs::remove_dir_all(&live).unwrap();
    assert!(!dead.exists(), "{} was not swept", dead.display());
    assert!(live_survived, "the folder of a live process was removed");
}

/// Not a check on its own: when `server_stops_when_its_test_process_is_killed` re-executes
/// this binary with `MEDIBLOCK_PG_HARNESS_CHILD` set, this starts the shared server, reports
/// its port and folder, and blocks until it is killed. Otherwise it returns at once.
#[test]
fn child_process_holding_the_shared_server() {
    if env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let pg = postgres::shared();
    println!("MEDIBLOCK_PG {} {}", pg.port(), pg.dir().display());
    // Blocks until the parent kills us (or closes our stdin if it fails first).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

#[test]
fn server_stops_when_its_test_process_is_killed() {
    let mut child = Command::new(env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_holding_the_shared_server",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the report on another thread so that a child that never reports (it is blocked on
    // its stdin, which we hold) fails this test instead of hanging it.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (report_tx, report_rx) = mpsc::channel();
    thread::spawn(move || {
        let report = stdout
            .lines()
            .map_while(Result::ok)
            // libtest may print "test <name> ... " before it on the same line.
            .find_map(|line| line.split_once("MEDIBLOCK_PG ").map(|(_, r)| r.to_owned()));
        let _ = report_tx.send(report);
    });
    let report = report_rx.recv_timeout(Duration::from_secs(120));
    let Ok(Some(report)) = report else {
        let _ = child.kill();
        panic!("the child did not report its server ({report:?}); see its stderr above");
    };
    let (port, dir) = report.split_once(' ').unwrap();
    let port: u16 = port.parse().unwrap();
    let dir = PathBuf::from(dir);
    connect(port).expect("the child's server runs");
    assert!(dir.is_dir());

    child.kill().unwrap(); // SIGKILL: no destructor, no exit handler runs in the child.
    child.wait().unwrap();

    // The child's watchdog cleans up on its own; it is not our child, so there is nothing to
    // wait on but the effect itself: poll for it, with a generous deadline.
    let deadline = Instant::now() + Duration::from_secs(30);
    let gone = |dir: &Path| connect(port).is_err() && !dir.exists();
    while !gone(&dir) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let err = connect(port).expect_err("the killed process's server still accepts connections");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
    assert!(!dir.exists(), "{} was left behind", dir.display());
}
