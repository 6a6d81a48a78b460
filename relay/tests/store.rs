//! The store on a real SQLite file (and, in `store_postgres`, a real PostgreSQL): dense
//! log indices, idempotent acceptance, leases, and one-transaction completion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mediblock_protocol::ids::{
    Commitment, KeyId, PatientId, Role, TemplateRef, TemplateVersion, TxId, UnixMillis, UserId,
};
use mediblock_protocol::keys::Keypair;
use mediblock_relay::store::submissions::{Accepted, Mode, NewSubmission, Outcome, State};
use mediblock_relay::store::users::User;
use mediblock_relay::store::{Store, StoreError};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[path = "support/postgres.rs"]
mod postgres;

/// A fresh SQLite file in a fresh temporary folder.
fn sqlite_url(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "mediblock-store-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite://{}", dir.join("store.db").display())
}

/// A submission by nurse.bo with a ticket the store issued to her.
async fn submission(store: &Store, rng: &mut ChaCha20Rng, byte: u8) -> NewSubmission {
    let nurse = UserId::new("nurse.bo").unwrap();
    let ticket = store
        .issue_ticket(&nurse, UnixMillis(1_000))
        .await
        .unwrap()
        .unwrap();
    NewSubmission {
        tid: TxId::for_ticket(ticket.number, rng),
        commitment: Commitment::from_bytes([byte; 32]),
        sealed_ti: vec![byte; 40],
        now: UnixMillis(1_000 + u64::from(byte)),
        ..submission_shape(rng)
    }
}

async fn suite(store: Store) {
    let mut rng = ChaCha20Rng::from_seed([5; 32]);
    store.ping().await.unwrap();

    // Users: enrol, read back, refuse a second enrolment of the same id.
    let keys = Keypair::generate(&mut rng).public();
    let user = User {
        uid: UserId::new("nurse.bo").unwrap(),
        role: Role::Nurse,
        keys,
        eth_address: None,
        enrolled_at: UnixMillis(10),
        revoked_at: None,
    };
    assert!(!store.has_admin().await.unwrap());
    store.insert_user(&user).await.unwrap();
    assert_eq!(store.user(&user.uid).await.unwrap(), Some(user.clone()));
    assert!(matches!(
        store.insert_user(&user).await,
        Err(StoreError::Conflict(_))
    ));

    // A challenge can be taken exactly once.
    store
        .insert_challenge(&[1; 32], &user.uid, UnixMillis(99))
        .await
        .unwrap();
    assert_eq!(
        store.take_challenge(&[1; 32]).await.unwrap(),
        Some(("nurse.bo".to_owned(), UnixMillis(99)))
    );
    assert_eq!(store.take_challenge(&[1; 32]).await.unwrap(), None);

    // Acceptance assigns dense leaf indices 0, 1, 2 and is idempotent by tid.
    let mut subs = Vec::new();
    for b in 1u8..=3 {
        subs.push(submission(&store, &mut rng, b).await);
    }
    for (i, s) in subs.iter().enumerate() {
        assert_eq!(
            store.accept(s).await.unwrap(),
            Accepted::New {
                leaf_index: i as u64
            }
        );
    }
    assert_eq!(
        store.accept(&subs[1]).await.unwrap(),
        Accepted::Existing {
            leaf_index: 1,
            state: State::Queued
        }
    );
    let mut replay = subs[1].clone();
    replay.commitment = Commitment::from_bytes([9; 32]);
    assert!(matches!(
        store.accept(&replay).await,
        Err(StoreError::Conflict(_))
    ));
    let leaves = store.log_leaves().await.unwrap();
    assert_eq!(
        leaves.iter().map(|(i, d)| (*i, d[0])).collect::<Vec<_>>(),
        vec![(0, 1), (1, 2), (2, 3)]
    );
    assert_eq!(store.queue_depth().await.unwrap(), 3);

    // Claims go oldest first and are leased: a second worker gets the next one.
    let a = store
        .claim("w1", UnixMillis(2_000), UnixMillis(5_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.tid, subs[0].tid);
    assert_eq!(a.sealed_ti, vec![1; 40]);
    assert_eq!(a.attempts, 1);
    let b = store
        .claim("w2", UnixMillis(2_000), UnixMillis(5_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.tid, subs[1].tid);
    // After the lease expires, the first one can be claimed again (a crashed worker).
    store
        .claim("w3", UnixMillis(2_000), UnixMillis(5_000))
        .await
        .unwrap()
        .unwrap();
    assert!(
        store
            .claim("w3", UnixMillis(2_001), UnixMillis(5_000))
            .await
            .unwrap()
            .is_none()
    );
    let again = store
        .claim("w4", UnixMillis(6_000), UnixMillis(9_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.tid, subs[0].tid);
    assert_eq!(again.attempts, 2);

    // Completion writes the record and moves the state once; a second completion does nothing.
    store
        .mark_sent(&a.tid, &[7; 32], UnixMillis(6_100))
        .await
        .unwrap();
    let key_id = KeyId::from_bytes([4; 8]);
    assert!(
        store
            .complete(
                &again,
                &Outcome::Stored,
                &[7; 32],
                12,
                &key_id,
                b"sealed",
                UnixMillis(6_200)
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .complete(
                &again,
                &Outcome::Stored,
                &[7; 32],
                12,
                &key_id,
                b"sealed",
                UnixMillis(6_300)
            )
            .await
            .unwrap()
    );
    let done = store.submission(&a.tid).await.unwrap().unwrap();
    assert_eq!(done.state, State::Stored);
    assert_eq!(done.block_number, Some(12));
    let records = store.records_of_patient(&a.pid).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].envelope, b"sealed");
    assert_eq!(records[0].leaf_index, Some(0));

    // A chain rejection lands in the audit, not in records.
    let reasons = r#"{"attribute_index":2}"#.to_owned();
    assert!(
        store
            .complete(
                &b,
                &Outcome::Rejected {
                    reasons: reasons.clone()
                },
                &[8; 32],
                13,
                &key_id,
                b"r",
                UnixMillis(7_000)
            )
            .await
            .unwrap()
    );
    let audit = store.rejected_records(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].tid, b.tid);
    assert_eq!(audit[0].reasons.as_deref(), Some(reasons.as_str()));
    assert_eq!(audit[0].source.as_deref(), Some("chain"));
    assert!(store.records_of_patient(&b.pid).await.unwrap().is_empty());
    assert_eq!(store.queue_depth().await.unwrap(), 1);

    // Meta values replace.
    store.set_meta("registry", "0x01").await.unwrap();
    store.set_meta("registry", "0x02").await.unwrap();
    assert_eq!(
        store.meta("registry").await.unwrap().as_deref(),
        Some("0x02")
    );
}

#[tokio::test]
async fn store_on_sqlite() {
    let url = sqlite_url("suite");
    suite(Store::open(&url).await.unwrap()).await;
    // Reopening runs no migration twice and keeps the data (a restart loses nothing).
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.log_leaves().await.unwrap().len(), 3);
    assert_eq!(store.queue_depth().await.unwrap(), 1);
}

#[tokio::test]
async fn store_on_postgres() {
    let url = postgres::shared().fresh_database().expect("fresh database");
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.backend(), mediblock_relay::store::Backend::Postgres);
    suite(store).await;
    // Reopening runs no migration twice and keeps the data.
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.log_leaves().await.unwrap().len(), 3);
    assert_eq!(store.queue_depth().await.unwrap(), 1);
}

/// Several relays on one PostgreSQL: concurrent acceptances still get distinct, dense
/// leaf indices, and concurrent claims never hand one submission to two workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_relays_share_one_postgres() {
    concurrent(&postgres::shared().fresh_database().expect("fresh database")).await;
}

/// The same on SQLite, where concurrent writers must wait for the lock instead of failing
/// with "database is locked" (write transactions begin IMMEDIATE).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_sqlite() {
    concurrent(&sqlite_url("concurrent")).await;
}

async fn concurrent(url: &str) {
    let url = url.to_owned();
    let a = Store::open(&url).await.unwrap();
    let b = Store::open(&url).await.unwrap();
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let mut subs = Vec::new();
    for i in 0u8..40 {
        let store = if i % 2 == 0 { &a } else { &b };
        subs.push(submission(store, &mut rng, i).await);
    }
    let tickets: std::collections::BTreeSet<u64> = subs.iter().map(|s| s.tid.ticket()).collect();
    assert_eq!(tickets.len(), 40, "two relays never issue one ticket twice");
    let mut tasks = Vec::new();
    for (i, s) in subs.into_iter().enumerate() {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { store.accept(&s).await.unwrap() }));
    }
    let mut indices = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Accepted::New { leaf_index } => indices.push(leaf_index),
            other => panic!("unexpected {other:?}"),
        }
    }
    indices.sort_unstable();
    assert_eq!(indices, (0..40).collect::<Vec<u64>>());

    let mut claims = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        claims.push(tokio::spawn(async move {
            store
                .claim(&format!("w{i}"), UnixMillis(10_000), UnixMillis(90_000))
                .await
                .unwrap()
                .map(|s| s.tid)
        }));
    }
    let mut claimed = Vec::new();
    for c in claims {
        claimed.push(c.await.unwrap().expect("one submission per claim"));
    }
    let unique: std::collections::BTreeSet<_> = claimed.iter().collect();
    assert_eq!(unique.len(), 40);
}

/// Tickets: issued consecutively to one user, bound to exactly one tid, refused when unknown,
/// someone else's, expired or used, and limited per user; every refusal writes nothing.
async fn tickets(store: Store) {
    use mediblock_relay::store::tickets::{MAX_OPEN_TICKETS, TICKET_TTL_MS, TicketProblem};
    let mut rng = ChaCha20Rng::from_seed([6; 32]);
    let nurse = UserId::new("nurse.bo").unwrap();
    let eve = UserId::new("dr.eve").unwrap();
    let now = UnixMillis(1_700_000_000_000);
    let issue = |uid: &UserId, at: UnixMillis| {
        let (store, uid) = (store.clone(), uid.clone());
        async move { store.issue_ticket(&uid, at).await.unwrap().unwrap() }
    };
    let first = issue(&nurse, now).await;
    let second = issue(&eve, now).await;
    assert_eq!(
        second.number,
        first.number + 1,
        "one dense sequence per store"
    );
    assert_eq!(first.expires_at, UnixMillis(now.0 + TICKET_TTL_MS));
    assert!(first.number < 1 << 62);

    let with = |tid: TxId| NewSubmission {
        tid,
        now,
        ..submission_shape(&mut ChaCha20Rng::from_seed([7; 32]))
    };
    let refused = |r: Result<Accepted, StoreError>| match r {
        Err(StoreError::Ticket(p)) => p,
        other => panic!("expected a ticket refusal, got {other:?}"),
    };
    // Never issued, and issued to someone else: unknown.
    let never = with(TxId::for_ticket(first.number + 1_000, &mut rng));
    assert_eq!(refused(store.accept(&never).await), TicketProblem::Unknown);
    let eves = with(TxId::for_ticket(second.number, &mut rng));
    assert_eq!(refused(store.accept(&eves).await), TicketProblem::Unknown);
    // Issued more than a day before: expired.
    let old = issue(&nurse, UnixMillis(now.0 - TICKET_TTL_MS - 1)).await;
    let late = with(TxId::for_ticket(old.number, &mut rng));
    assert_eq!(refused(store.accept(&late).await), TicketProblem::Expired);
    assert!(
        store.log_leaves().await.unwrap().is_empty(),
        "refusals write nothing"
    );

    // The nurse's own ticket binds once; the same record again is fine, another tid is not.
    let mine = with(TxId::for_ticket(first.number, &mut rng));
    assert_eq!(
        store.accept(&mine).await.unwrap(),
        Accepted::New { leaf_index: 0 }
    );
    assert!(matches!(
        store.accept(&mine).await.unwrap(),
        Accepted::Existing { leaf_index: 0, .. }
    ));
    let mut reuse = with(TxId::for_ticket(first.number, &mut rng));
    reuse.commitment = Commitment::from_bytes([0xee; 32]);
    assert_eq!(refused(store.accept(&reuse).await), TicketProblem::Used);
    assert_eq!(store.log_leaves().await.unwrap().len(), 1);

    // At most MAX_OPEN_TICKETS usable, unbound tickets per user (the expired one and the
    // bound one do not count); other users are not affected.
    for _ in 0..MAX_OPEN_TICKETS {
        issue(&nurse, now).await;
    }
    assert_eq!(store.issue_ticket(&nurse, now).await.unwrap(), None);
    issue(&eve, now).await;
    // A day later the unused ones have expired, and she gets tickets again.
    let tomorrow = UnixMillis(now.0 + TICKET_TTL_MS + 1);
    assert!(
        store
            .issue_ticket(&nurse, tomorrow)
            .await
            .unwrap()
            .is_some()
    );
}

/// A submission's fields other than its tid and time (nurse.bo, vital signs).
fn submission_shape(rng: &mut ChaCha20Rng) -> NewSubmission {
    NewSubmission {
        tid: TxId::from_bytes([0; 16]),
        uid: UserId::new("nurse.bo").unwrap(),
        pid: PatientId::random(rng),
        template: TemplateRef {
            id: "vital-signs".parse().unwrap(),
            version: TemplateVersion::new(1).unwrap(),
        },
        commitment: Commitment::from_bytes([0xcc; 32]),
        mode: Mode::PerRecord,
        sealed_ti: vec![1; 40],
        now: UnixMillis(0),
    }
}

#[tokio::test]
async fn tickets_on_sqlite() {
    tickets(Store::open(&sqlite_url("tickets")).await.unwrap()).await;
}

#[tokio::test]
async fn tickets_on_postgres() {
    let url = postgres::shared().fresh_database().expect("fresh database");
    tickets(Store::open(&url).await.unwrap()).await;
}

/// A store written before tickets (schema 2) is upgraded only when it holds no records:
/// those were anchored on a registry without tickets, which this relay cannot verify.
#[tokio::test]
async fn a_store_with_records_from_before_tickets_is_not_upgraded() {
    let url = sqlite_url("upgrade");
    let store = Store::open(&url).await.unwrap();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let back_to_v2 = |records: i64| {
        let pool = pool.clone();
        async move {
            for sql in [
                "DELETE FROM schema_version WHERE version >= 3",
                "DROP TABLE tickets",
                "DROP TABLE ticket_head",
            ] {
                sqlx::query(sql).execute(&pool).await.unwrap();
            }
            sqlx::query("UPDATE log_head SET size = $1 WHERE id = 0")
                .bind(records)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    drop(store);
    back_to_v2(0).await;
    let store = Store::open(&url).await.expect("an empty v2 store upgrades");
    let nurse = UserId::new("nurse.bo").unwrap();
    assert!(
        store
            .issue_ticket(&nurse, UnixMillis(1))
            .await
            .unwrap()
            .is_some()
    );
    drop(store);
    back_to_v2(3).await;
    let err = Store::open(&url).await.expect_err("refused");
    assert!(matches!(err, StoreError::Upgrade(_)), "{err}");
    assert!(err.to_string().contains("3 records"), "{err}");
}

/// A store of schema 3 holds records anchored on a registry of version 1 (no values hash,
/// one log for all relays): it is upgraded to 4 only when it holds none, and otherwise
/// refused with a sentence saying what changed and what to do.
#[tokio::test]
async fn a_store_with_records_on_a_version_1_registry_is_not_upgraded() {
    let url = sqlite_url("upgrade-v3");
    let store = Store::open(&url).await.unwrap();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let back_to_v3 = |records: i64| {
        let pool = pool.clone();
        async move {
            sqlx::query("DELETE FROM schema_version WHERE version >= 4")
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query("UPDATE log_head SET size = $1 WHERE id = 0")
                .bind(records)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    drop(store);
    back_to_v3(0).await;
    drop(Store::open(&url).await.expect("an empty v3 store upgrades"));
    let (version,): (i64,) = sqlx::query_as("SELECT MAX(version) FROM schema_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(version, mediblock_relay::store::schema::SCHEMA_VERSION);
    back_to_v3(5).await;
    let err = Store::open(&url).await.expect_err("refused");
    assert!(matches!(err, StoreError::Upgrade(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("5 records"), "{text}");
    assert!(text.contains("registry of version 1"), "{text}");
    assert!(text.contains("start a fresh one"), "{text}");
}

/// A store of schema 4 kept each submission's on-chain values in clear text
/// (`chain_values`, beside the patient and the author): upgrading wipes them, and new
/// submissions never write them (the worker derives them from the sealed TI).
#[tokio::test]
async fn no_health_values_in_clear_text_after_the_upgrade() {
    let url = sqlite_url("upgrade-v4");
    let store = Store::open(&url).await.unwrap();
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let first = submission(&store, &mut rng, 1).await;
    store.accept(&first).await.unwrap();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let columns = |pool: sqlx::AnyPool| async move {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT chain_values FROM submissions")
            .fetch_all(&pool)
            .await
            .unwrap();
        rows.into_iter().map(|r| r.0).collect::<Vec<_>>()
    };
    assert_eq!(columns(pool.clone()).await, ["[]"]);
    // As a version 4 relay left it.
    drop(store);
    sqlx::query("UPDATE submissions SET chain_values = '[72,120,368]'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM schema_version WHERE version = 5")
        .execute(&pool)
        .await
        .unwrap();
    let store = Store::open(&url).await.unwrap();
    assert_eq!(columns(pool.clone()).await, ["[]"]);
    let second = submission(&store, &mut rng, 2).await;
    store.accept(&second).await.unwrap();
    assert_eq!(columns(pool).await, ["[]", "[]"]);
}

/// Two relays on one store race to bind one ticket to two tids: exactly one wins, the
/// other is `Used`; and concurrent issuance never lets a user hold more than the limit.
async fn ticket_races(url: &str) {
    use mediblock_relay::store::tickets::{MAX_OPEN_TICKETS, TicketProblem};
    let a = Store::open(url).await.unwrap();
    let b = Store::open(url).await.unwrap();
    let nurse = UserId::new("nurse.bo").unwrap();
    let now = UnixMillis(1_700_000_000_000);
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    for round in 0u8..10 {
        let ticket = a.issue_ticket(&nurse, now).await.unwrap().unwrap().number;
        let mut one = submission_shape(&mut rng);
        one.tid = TxId::for_ticket(ticket, &mut rng);
        one.commitment = Commitment::from_bytes([round; 32]);
        one.now = now;
        let mut two = one.clone();
        two.tid = TxId::for_ticket(ticket, &mut rng);
        two.commitment = Commitment::from_bytes([round | 0x80; 32]);
        let (sa, sb) = (a.clone(), b.clone());
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { sa.accept(&one).await }),
            tokio::spawn(async move { sb.accept(&two).await })
        );
        let outcomes = [ra.unwrap(), rb.unwrap()];
        let won = outcomes
            .iter()
            .filter(|r| matches!(r, Ok(Accepted::New { .. })))
            .count();
        let used = outcomes
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Ticket(TicketProblem::Used))))
            .count();
        assert_eq!((won, used), (1, 1), "round {round}: {outcomes:?}");
    }
    // Bring the nurse to one below the limit, then ask twice at once: one more at most.
    let eve = UserId::new("dr.eve").unwrap();
    for _ in 0..MAX_OPEN_TICKETS - 1 {
        a.issue_ticket(&eve, now).await.unwrap().unwrap();
    }
    let (sa, sb, ea, eb) = (a.clone(), b.clone(), eve.clone(), eve.clone());
    let (x, y) = tokio::join!(
        tokio::spawn(async move { sa.issue_ticket(&ea, now).await.unwrap() }),
        tokio::spawn(async move { sb.issue_ticket(&eb, now).await.unwrap() })
    );
    let granted = [x.unwrap(), y.unwrap()]
        .iter()
        .filter(|t| t.is_some())
        .count();
    assert_eq!(granted, 1, "the limit holds under concurrency");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ticket_races_on_postgres() {
    ticket_races(&postgres::shared().fresh_database().expect("fresh database")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ticket_races_on_sqlite() {
    ticket_races(&sqlite_url("ticket-races")).await;
}

/// Opening an initialised store writes nothing: it opens read-only.
#[tokio::test]
async fn an_initialised_store_opens_read_only() {
    let url = sqlite_url("read-only");
    let store = Store::open(&url).await.unwrap();
    let nurse = UserId::new("nurse.bo").unwrap();
    store
        .issue_ticket(&nurse, UnixMillis(1))
        .await
        .unwrap()
        .unwrap();
    drop(store);
    let ro = Store::open(&format!("{url}?mode=ro"))
        .await
        .expect("opens read-only");
    assert!(ro.log_leaves().await.unwrap().is_empty());
    assert!(
        ro.issue_ticket(&nurse, UnixMillis(2)).await.is_err(),
        "and cannot write"
    );
}
