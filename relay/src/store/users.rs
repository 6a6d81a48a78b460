//! Enrolled users, sign-in challenges and sessions.

use mediblock_protocol::ids::{EthAddress, Role, UnixMillis, UserId};
use mediblock_protocol::keys::PublicKeys;
use sqlx::Row as _;

use super::{Result, Store, StoreError, conflict_on_unique, fixed};

/// An enrolled user as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// User id.
    pub uid: UserId,
    /// Role, checked on every call.
    pub role: Role,
    /// Ed25519 and X25519 public keys.
    pub keys: PublicKeys,
    /// Wallet address, for wallet holders.
    pub eth_address: Option<EthAddress>,
    /// When the admin enrolled them.
    pub enrolled_at: UnixMillis,
    /// When access was revoked, if it was.
    pub revoked_at: Option<UnixMillis>,
}

fn millis(v: i64) -> UnixMillis {
    UnixMillis(u64::try_from(v).unwrap_or(0))
}

fn db_millis(t: UnixMillis) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("users.{what}"));
    let uid: String = row.try_get("uid")?;
    let role: String = row.try_get("role")?;
    let ed: Vec<u8> = row.try_get("ed25519")?;
    let x: Vec<u8> = row.try_get("x25519")?;
    let eth: Option<Vec<u8>> = row.try_get("eth_address")?;
    let keys = PublicKeys::from_bytes(&fixed(ed, "users.ed25519")?, &fixed(x, "users.x25519")?)
        .map_err(|_| corrupt("ed25519"))?;
    Ok(User {
        uid: UserId::new(uid).map_err(|_| corrupt("uid"))?,
        role: role.parse().map_err(|_| corrupt("role"))?,
        keys,
        eth_address: eth
            .map(|b| fixed(b, "users.eth_address").map(EthAddress::from_bytes))
            .transpose()?,
        enrolled_at: millis(row.try_get("enrolled_at")?),
        revoked_at: row.try_get::<Option<i64>, _>("revoked_at")?.map(millis),
    })
}

/// What [`Store::purge_expired`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Sign-in challenges past their expiry.
    pub challenges: u64,
    /// Sessions past their expiry.
    pub sessions: u64,
}

impl Store {
    /// Enrols a user; an existing user id is a conflict.
    pub async fn insert_user(&self, user: &User) -> Result<()> {
        sqlx::query(
            "INSERT INTO users (uid, role, ed25519, x25519, eth_address, enrolled_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.uid.as_str())
        .bind(user.role.as_str())
        .bind(user.keys.signing_bytes().to_vec())
        .bind(user.keys.agreement_bytes().to_vec())
        .bind(user.eth_address.map(|a| a.as_bytes().to_vec()))
        .bind(db_millis(user.enrolled_at))
        .bind(user.revoked_at.map(db_millis))
        .execute(self.pool())
        .await
        .map_err(conflict_on_unique("user id already enrolled"))?;
        Ok(())
    }

    /// The user with this id.
    pub async fn user(&self, uid: &UserId) -> Result<Option<User>> {
        let row = sqlx::query("SELECT * FROM users WHERE uid = $1")
            .bind(uid.as_str())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Every user, by id.
    pub async fn users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY uid")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Whether any administrator is enrolled (first-run detection).
    pub async fn has_admin(&self) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT 1 FROM users WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(row.is_some())
    }

    /// Stores a sign-in challenge nonce for `uid`.
    pub async fn insert_challenge(
        &self,
        nonce: &[u8; 32],
        uid: &UserId,
        expires_at: UnixMillis,
    ) -> Result<()> {
        sqlx::query("INSERT INTO challenges (nonce, uid, expires_at) VALUES ($1, $2, $3)")
            .bind(nonce.to_vec())
            .bind(uid.as_str())
            .bind(db_millis(expires_at))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Consumes a challenge: returns its user and expiry once, then never again.
    pub async fn take_challenge(&self, nonce: &[u8; 32]) -> Result<Option<(String, UnixMillis)>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("DELETE FROM challenges WHERE nonce = $1 RETURNING uid, expires_at")
                .bind(nonce.to_vec())
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(uid, exp)| (uid, millis(exp))))
    }

    /// Stores a session by the SHA-256 of its token (the token itself is never stored).
    pub async fn insert_session(
        &self,
        token_hash: &[u8; 32],
        uid: &UserId,
        expires_at: UnixMillis,
    ) -> Result<()> {
        sqlx::query("INSERT INTO sessions (token_hash, uid, expires_at) VALUES ($1, $2, $3)")
            .bind(token_hash.to_vec())
            .bind(uid.as_str())
            .bind(db_millis(expires_at))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Deletes the sign-in challenges and sessions that expired before `now`: neither can be
    /// used any more ([`Store::take_challenge`] and the session check refuse them), so
    /// keeping them only grows the tables.
    pub async fn purge_expired(&self, now: UnixMillis) -> Result<Purged> {
        let challenges = sqlx::query("DELETE FROM challenges WHERE expires_at < $1")
            .bind(db_millis(now))
            .execute(self.pool())
            .await?
            .rows_affected();
        let sessions = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(db_millis(now))
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(Purged {
            challenges,
            sessions,
        })
    }

    /// The user id and expiry of a session, by token hash.
    pub async fn session(&self, token_hash: &[u8; 32]) -> Result<Option<(String, UnixMillis)>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT uid, expires_at FROM sessions WHERE token_hash = $1")
                .bind(token_hash.to_vec())
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(uid, exp)| (uid, millis(exp))))
    }
}

impl Store {
    /// Writes one line of the access log: who read or did what, about which patient or
    /// record, when. Never any health data.
    pub async fn log_access(
        &self,
        uid: &UserId,
        action: &str,
        pid: Option<&mediblock_protocol::ids::PatientId>,
        tid: Option<&mediblock_protocol::ids::TxId>,
        at: UnixMillis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_log (uid, action, pid, tid, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uid.as_str())
        .bind(action)
        .bind(pid.map(|p| p.as_bytes().to_vec()))
        .bind(tid.map(|t| t.as_bytes().to_vec()))
        .bind(db_millis(at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The access log's entries about one patient, oldest first: `(uid, action, at)`.
    pub async fn access_log_of_patient(
        &self,
        pid: &mediblock_protocol::ids::PatientId,
    ) -> Result<Vec<(String, String, UnixMillis)>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT uid, action, at FROM access_log WHERE pid = $1 ORDER BY id")
                .bind(pid.as_bytes().to_vec())
                .fetch_all(self.pool())
                .await?;
        Ok(rows
            .into_iter()
            .map(|(u, a, t)| (u, a, millis(t)))
            .collect())
    }
}
