//! The cloud store: SQLite (embedded default) or PostgreSQL, behind one `Store`.
//!
//! Both backends run the same SQL through sqlx's `Any` driver (`$1` placeholders work in
//! both); the few statements that differ (schema types, row locking) are chosen by
//! [`Backend`]. Health data is never stored in clear: records are validated transactions
//! sealed under SK(relay, store); the columns beside them are ids, hashes and states.

pub mod audit;
pub mod checkpoints;
pub mod schema;
pub mod submissions;
pub mod templates;
pub mod tickets;

pub mod users;

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor as _};

pub use schema::SCHEMA_VERSION;

/// Result alias of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was hit (e.g. an existing user id or transaction id).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The store cannot be brought to this relay's schema.
    #[error("cannot upgrade this store: {0}")]
    Upgrade(String),
    /// A record's ticket cannot be used for its tid.
    #[error("ticket: {0}")]
    Ticket(tickets::TicketProblem),
    /// Stored bytes that do not decode: the store was changed outside the relay.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file (the embedded default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// A connection pool to the store, with its schema in place.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`), creating a SQLite file if
    /// needed, and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Db(sqlx::Error::Configuration(
                "database URL must start with sqlite: or postgres:".into(),
            )));
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 4,
                Backend::Postgres => 10,
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets readers run beside the one writer; FULL sync keeps every
                        // acknowledged commit across a power cut.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        // Overwrite deleted content (a lawful erasure's envelope) instead of
                        // leaving it in free pages.
                        conn.execute("PRAGMA secure_delete = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let store = Self { pool, backend };
        schema::migrate(&store).await?;
        store.init_tickets().await?;
        Ok(store)
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for the store's modules.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later fails
    /// with "database is locked" instead of waiting when another writer got in between.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// A trivial query: is the database reachable?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A value from the `meta` table (contract addresses, chain id, …).
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Sets a `meta` value, replacing any previous one.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
pub(crate) fn conflict_on_unique(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Db(e),
    }
}

/// Bytes of a fixed length from a BLOB column, or a corruption error naming the column.
pub(crate) fn fixed<const N: usize>(bytes: Vec<u8>, column: &str) -> Result<[u8; N]> {
    bytes.try_into().map_err(|b: Vec<u8>| {
        StoreError::Corrupt(format!("{column}: {} bytes, expected {N}", b.len()))
    })
}

/// A `u64` as a BIGINT, saturating at `i64::MAX` (times, counters, tickets from input).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A BIGINT read back as a `u64`; negative means the row was changed outside the relay.
pub(crate) fn to_u64(v: i64, column: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{column} is negative")))
}
