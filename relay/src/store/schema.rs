//! The store's schema, one version at a time, for SQLite and PostgreSQL.
//!
//! Migrations are plain SQL applied in order inside a transaction; `schema_version` records
//! the last one applied. `{blob}` stands for `BLOB` (SQLite) or `BYTEA` (PostgreSQL).

use super::{Backend, Result, Store, StoreError};

/// The schema version this relay writes.
pub const SCHEMA_VERSION: i64 = 5;

const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE users (
    uid          TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    ed25519      {blob} NOT NULL,
    x25519       {blob} NOT NULL,
    eth_address  {blob},
    enrolled_at  BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE TABLE challenges (
    nonce       {blob} PRIMARY KEY,
    uid         TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE TABLE sessions (
    token_hash  {blob} PRIMARY KEY,
    uid         TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE TABLE templates (
    template_id   TEXT NOT NULL,
    version       BIGINT NOT NULL,
    spec_json     TEXT NOT NULL,
    hash          {blob} NOT NULL,
    published_at  BIGINT NOT NULL,
    anchor_tx     {blob},
    PRIMARY KEY (template_id, version)
);
CREATE TABLE log_head (
    id    BIGINT PRIMARY KEY,
    size  BIGINT NOT NULL
);
INSERT INTO log_head (id, size) VALUES (0, 0);
CREATE TABLE log_leaves (
    leaf_index  BIGINT PRIMARY KEY,
    leaf_data   {blob} NOT NULL,
    tid         {blob} UNIQUE
);
CREATE TABLE submissions (
    tid           {blob} PRIMARY KEY,
    uid           TEXT NOT NULL,
    pid           {blob} NOT NULL,
    template_id   TEXT NOT NULL,
    version       BIGINT NOT NULL,
    commitment    {blob} NOT NULL UNIQUE,
    leaf_index    BIGINT NOT NULL UNIQUE,
    mode          TEXT NOT NULL,
    state         TEXT NOT NULL,
    sealed_ti     {blob} NOT NULL,
    chain_values  TEXT NOT NULL,
    tx_hash       {blob},
    block_number  BIGINT,
    detail        TEXT,
    lease_owner   TEXT,
    lease_until   BIGINT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX submissions_state ON submissions (state, created_at);
CREATE TABLE records (
    tid          {blob} PRIMARY KEY,
    pid          {blob} NOT NULL,
    uid          TEXT NOT NULL,
    template_id  TEXT NOT NULL,
    version      BIGINT NOT NULL,
    commitment   {blob} NOT NULL,
    leaf_index   BIGINT NOT NULL,
    key_id       {blob} NOT NULL,
    envelope     {blob} NOT NULL,
    stored_at    BIGINT NOT NULL
);
CREATE INDEX records_pid ON records (pid, stored_at);
CREATE TABLE rejected (
    tid          {blob} PRIMARY KEY,
    pid          {blob} NOT NULL,
    uid          TEXT NOT NULL,
    template_id  TEXT NOT NULL,
    version      BIGINT NOT NULL,
    commitment   {blob} NOT NULL,
    leaf_index   BIGINT,
    source       TEXT NOT NULL,
    reasons      TEXT NOT NULL,
    key_id       {blob} NOT NULL,
    envelope     {blob} NOT NULL,
    rejected_at  BIGINT NOT NULL
);
CREATE TABLE access_log (
    id      {serial} PRIMARY KEY,
    uid     TEXT NOT NULL,
    action  TEXT NOT NULL,
    pid     {blob},
    tid     {blob},
    at      BIGINT NOT NULL
);
CREATE TABLE schema_version (
    version  BIGINT NOT NULL
);
"#;

/// Version 2: the relay's signed checkpoints and their anchoring (batch anchoring, proofs and
/// the audit's "log rewritten" check), and lawful erasure of a stored record.
const V2: &str = r#"
CREATE TABLE checkpoints (
    size          BIGINT PRIMARY KEY,
    root          {blob} NOT NULL,
    signed        {blob} NOT NULL,
    signer        {blob} NOT NULL,
    lease_owner   TEXT,
    lease_until   BIGINT,
    tx_hash       {blob},
    block_number  BIGINT,
    block_hash    {blob},
    log_index     BIGINT,
    created_at    BIGINT NOT NULL,
    anchored_at   BIGINT
);
ALTER TABLE records ADD COLUMN erased_by {blob};
ALTER TABLE records ADD COLUMN erased_at BIGINT;
ALTER TABLE submissions ADD COLUMN wallet_deadline BIGINT;
"#;

/// Version 3: tickets, the numbers the relay issues before a record is sealed (the first 8
/// bytes of its tid; the registry marks each used once). `ticket_head` holds the next
/// number; its row is written by [`Store::open`] with a random base.
const V3: &str = r#"
CREATE TABLE ticket_head (
    id    BIGINT PRIMARY KEY,
    next  BIGINT NOT NULL
);
CREATE TABLE tickets (
    ticket     BIGINT PRIMARY KEY,
    uid        TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    tid        {blob} UNIQUE
);
CREATE INDEX tickets_uid ON tickets (uid, issued_at);
"#;

/// Version 4 changes no table: it marks a store whose records are anchored on a registry
/// of version 2 (verdicts bound to their values, a log per relay), which records the log it
/// writes in `meta.log`.
const V4: &str = "";

/// Version 5 clears `submissions.chain_values`, which held records' on-chain values (heart
/// rates, temperatures) in clear text beside the patient and the author: the worker now
/// derives them from the sealed TI, and the column stays "[]" (kept so that the table's
/// shape does not change).
const V5: &str = "UPDATE submissions SET chain_values = '[]'";

/// Every migration, oldest first: (version it brings the database to, its SQL).
const MIGRATIONS: [(i64, &str); 5] = [(1, V1), (2, V2), (3, V3), (4, V4), (5, V5)];

fn render(sql: &str, backend: Backend) -> String {
    let (blob, serial) = match backend {
        Backend::Sqlite => ("BLOB", "INTEGER"),
        Backend::Postgres => ("BYTEA", "BIGSERIAL"),
    };
    sql.replace("{blob}", blob).replace("{serial}", serial)
}

/// Applies every migration newer than the database's version.
pub(super) async fn migrate(store: &Store) -> Result<()> {
    let pool = store.pool();
    // An empty database has no schema_version table yet: the query fails, meaning version 0.
    let current: Option<(Option<i64>,)> = sqlx::query_as("SELECT MAX(version) FROM schema_version")
        .fetch_optional(pool)
        .await
        .unwrap_or_default();
    let current = current.and_then(|r| r.0).unwrap_or(0);
    if current >= SCHEMA_VERSION {
        return Ok(());
    }
    if (1..3).contains(&current) {
        // Version 3 brings tickets, and a registry that marks tickets instead of storing
        // each record: records this store holds were anchored on a registry without them,
        // which this relay can neither verify nor keep anchoring to.
        let (size,): (i64,) = sqlx::query_as("SELECT size FROM log_head WHERE id = 0")
            .fetch_one(pool)
            .await?;
        if size > 0 {
            return Err(StoreError::Upgrade(format!(
                "it holds {size} records anchored by a MediBlock from before tickets (schema \
                 version {current}); keep running that version for this store, or start a \
                 fresh one (a new --data-dir, or an empty database)"
            )));
        }
    }
    if current == 3 {
        // Version 4 comes with registry version 2: a store of version 3 that holds records
        // anchored them on a version-1 registry, whose events carry no values hash and whose
        // relays share one log; this relay can neither verify nor extend them.
        let (size,): (i64,) = sqlx::query_as("SELECT size FROM log_head WHERE id = 0")
            .fetch_one(pool)
            .await?;
        if size > 0 {
            return Err(StoreError::Upgrade(format!(
                "it holds {size} records anchored on a registry of version 1 (from before \
                 bound verdicts and per-relay logs, schema version 3). They stay verifiable \
                 with the MediBlock that wrote them; keep running that version for this \
                 store, or move it aside and start a fresh one (a new --data-dir, or an \
                 empty database) on a new registry"
            )));
        }
    }
    let mut tx = store.begin_write().await?;
    for (version, sql) in MIGRATIONS.into_iter().filter(|(v, _)| *v > current) {
        for stmt in render(sql, store.backend())
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            // The schema text is ours, not input: asserting it SQL-safe is sound.
            sqlx::query(sqlx::AssertSqlSafe(stmt.to_owned()))
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind(version)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
