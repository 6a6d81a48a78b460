//! The submission queue, the dense record log, and the records and rejected-records tables.
//!
//! A submission is accepted in one transaction that assigns its leaf index (the next slot of
//! the dense log), writes the leaf, and queues the sealed initial transaction; only then does
//! the relay answer `202`. Completing a submission writes the sealed validated transaction to
//! `records` (or `rejected`) and moves the queue state in one transaction, so a crash at any
//! point leaves either the queued submission or the stored record, never neither.

use mediblock_protocol::ids::{
    Commitment, KeyId, PatientId, TemplateRef, TxId, UnixMillis, UserId,
};
use sqlx::Row as _;

use super::{Backend, Result, Store, StoreError, conflict_on_unique, fixed, to_i64, to_u64};

/// Where a submission is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Accepted (202), waiting for the anchoring worker.
    Queued,
    /// Waiting for the author's wallet to send the co-signed transaction.
    AwaitingWallet,
    /// The blockchain transaction was sent; waiting for its receipt and confirmations.
    Sent,
    /// Anchored as valid and stored in `records`.
    Stored,
    /// Anchored as rejected by the chain and stored in the rejected-records audit.
    Rejected,
    /// A wallet submission whose co-signature's deadline passed on chain with no anchor:
    /// the registry refuses it from then on, so it will never be anchored. Its leaf stays in
    /// the log (dense), and nothing is stored.
    Expired,
    /// The chain shows another tid with this record's ticket (a store restored from a
    /// backup, or cloned, issued it again): the registry refuses this one for good. Its leaf
    /// stays in the log, nothing is stored, and the author must seal the record again.
    Failed,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::AwaitingWallet => "awaiting_wallet",
            State::Sent => "sent",
            State::Stored => "stored",
            State::Rejected => "rejected",
            State::Expired => "expired",
            State::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "queued" => State::Queued,
            "awaiting_wallet" => State::AwaitingWallet,
            "sent" => State::Sent,
            "stored" => State::Stored,
            "rejected" => State::Rejected,
            "expired" => State::Expired,
            "failed" => State::Failed,
            other => return Err(StoreError::Corrupt(format!("submissions.state {other:?}"))),
        })
    }
}

/// How a submission gets anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The relay sends one transaction per record (the paper's design).
    PerRecord,
    /// The author's wallet sends the relay-co-signed transaction.
    Wallet,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::PerRecord => "per_record",
            Mode::Wallet => "wallet",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "per_record" => Ok(Mode::PerRecord),
            "wallet" => Ok(Mode::Wallet),
            other => Err(StoreError::Corrupt(format!("submissions.mode {other:?}"))),
        }
    }
}

/// A submission to accept.
#[derive(Debug, Clone)]
pub struct NewSubmission {
    /// Transaction id.
    pub tid: TxId,
    /// Author.
    pub uid: UserId,
    /// Patient.
    pub pid: PatientId,
    /// Template and version.
    pub template: TemplateRef,
    /// Commitment of the signed TI: the log leaf.
    pub commitment: Commitment,
    /// Anchoring mode.
    pub mode: Mode,
    /// The signed TI sealed under SK(relay, store) (canonical envelope bytes): the on-chain
    /// values are derived from it when the record is anchored, never kept in clear text.
    pub sealed_ti: Vec<u8>,
    /// Acceptance time.
    pub now: UnixMillis,
}

/// The outcome of [`Store::accept`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Newly queued at this leaf index.
    New {
        /// Its place in the log.
        leaf_index: u64,
    },
    /// The same submission was accepted before (an idempotent retry).
    Existing {
        /// Its place in the log.
        leaf_index: u64,
        /// Its current state.
        state: State,
    },
}

/// A queued or finished submission.
#[derive(Debug, Clone)]
pub struct Submission {
    /// Transaction id.
    pub tid: TxId,
    /// Author.
    pub uid: String,
    /// Patient.
    pub pid: PatientId,
    /// Template id.
    pub template_id: String,
    /// Template version.
    pub version: u32,
    /// Commitment.
    pub commitment: Commitment,
    /// Leaf index.
    pub leaf_index: u64,
    /// Anchoring mode.
    pub mode: Mode,
    /// State.
    pub state: State,
    /// Sealed signed TI (envelope bytes).
    pub sealed_ti: Vec<u8>,
    /// Anchoring transaction hash, once sent.
    pub tx_hash: Option<[u8; 32]>,
    /// Block number, once confirmed.
    pub block_number: Option<u64>,
    /// Rejection reasons or the last error, as JSON text.
    pub detail: Option<String>,
    /// How many times a worker claimed it.
    pub attempts: u64,
    /// When it was accepted.
    pub created_at: UnixMillis,
}

fn submission_from_row(row: &sqlx::any::AnyRow) -> Result<Submission> {
    Ok(Submission {
        tid: TxId::from_bytes(fixed(row.try_get("tid")?, "submissions.tid")?),
        uid: row.try_get("uid")?,
        pid: PatientId::from_bytes(fixed(row.try_get("pid")?, "submissions.pid")?),
        template_id: row.try_get("template_id")?,
        version: u32::try_from(row.try_get::<i64, _>("version")?)
            .map_err(|_| StoreError::Corrupt("submissions.version".into()))?,
        commitment: Commitment::from_bytes(fixed(
            row.try_get("commitment")?,
            "submissions.commitment",
        )?),
        leaf_index: to_u64(row.try_get("leaf_index")?, "submissions.leaf_index")?,
        mode: Mode::parse(&row.try_get::<String, _>("mode")?)?,
        state: State::parse(&row.try_get::<String, _>("state")?)?,
        sealed_ti: row.try_get("sealed_ti")?,
        tx_hash: row
            .try_get::<Option<Vec<u8>>, _>("tx_hash")?
            .map(|b| fixed(b, "submissions.tx_hash"))
            .transpose()?,
        block_number: row
            .try_get::<Option<i64>, _>("block_number")?
            .map(|b| to_u64(b, "submissions.block_number"))
            .transpose()?,
        detail: row.try_get("detail")?,
        attempts: to_u64(row.try_get("attempts")?, "submissions.attempts")?,
        created_at: UnixMillis(to_u64(
            row.try_get("created_at")?,
            "submissions.created_at",
        )?),
    })
}

/// A stored (valid) or rejected record: the sealed validated transaction and its index.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    /// Transaction id.
    pub tid: TxId,
    /// Patient.
    pub pid: PatientId,
    /// Author.
    pub uid: String,
    /// Template id and version.
    pub template_id: String,
    /// Template version.
    pub version: u32,
    /// Commitment.
    pub commitment: Commitment,
    /// Leaf index (absent for records refused before the log).
    pub leaf_index: Option<u64>,
    /// Key id of the at-rest key.
    pub key_id: KeyId,
    /// The sealed validated transaction (envelope bytes).
    pub envelope: Vec<u8>,
    /// When it was stored.
    pub at: UnixMillis,
    /// Why it was rejected (JSON), for rejected records.
    pub reasons: Option<String>,
    /// `relay` or `chain`, for rejected records.
    pub source: Option<String>,
    /// The erasure record that lawfully erased this record's content, if any.
    pub erased_by: Option<TxId>,
}

/// The identifying columns shared by submissions, records and rejected records.
#[derive(Debug, Clone, Copy)]
struct RowKey<'a> {
    tid: &'a TxId,
    pid: &'a PatientId,
    uid: &'a str,
    template_id: &'a str,
    version: u32,
    commitment: &'a Commitment,
}

impl Submission {
    fn key(&self) -> RowKey<'_> {
        RowKey {
            tid: &self.tid,
            pid: &self.pid,
            uid: &self.uid,
            template_id: &self.template_id,
            version: self.version,
            commitment: &self.commitment,
        }
    }
}

impl NewSubmission {
    fn key(&self) -> RowKey<'_> {
        RowKey {
            tid: &self.tid,
            pid: &self.pid,
            uid: self.uid.as_str(),
            template_id: self.template.id.as_str(),
            version: self.template.version.get(),
            commitment: &self.commitment,
        }
    }
}

/// How a submission ends.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Anchored as valid: goes to `records`.
    Stored,
    /// Anchored as rejected by the chain: goes to `rejected` with these reasons (JSON).
    Rejected {
        /// Why, as JSON text.
        reasons: String,
    },
}

impl Store {
    /// Accepts a submission: assigns the next leaf index of the dense log, writes the leaf
    /// and queues the submission, in one transaction. Idempotent by transaction id: the same
    /// submission again answers [`Accepted::Existing`]; another commitment under a known
    /// transaction id is a conflict. A new submission binds its tid's ticket first
    /// ([`super::tickets`]): an unknown, someone else's, expired or used ticket is
    /// [`StoreError::Ticket`] and nothing is written.
    pub async fn accept(&self, s: &NewSubmission) -> Result<Accepted> {
        let mut tx = self.begin_write().await?;
        let existing =
            sqlx::query("SELECT commitment, leaf_index, state FROM submissions WHERE tid = $1")
                .bind(s.tid.as_bytes().to_vec())
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(row) = existing {
            let commitment: Vec<u8> = row.try_get("commitment")?;
            if commitment != s.commitment.as_bytes() {
                return Err(StoreError::Conflict("transaction id already used"));
            }
            return Ok(Accepted::Existing {
                leaf_index: to_u64(row.try_get("leaf_index")?, "submissions.leaf_index")?,
                state: State::parse(&row.try_get::<String, _>("state")?)?,
            });
        }
        super::tickets::bind(&mut tx, &s.uid, &s.tid, s.now).await?;
        let (next,): (i64,) =
            sqlx::query_as("UPDATE log_head SET size = size + 1 WHERE id = 0 RETURNING size - 1")
                .fetch_one(&mut *tx)
                .await?;
        sqlx::query("INSERT INTO log_leaves (leaf_index, leaf_data, tid) VALUES ($1, $2, $3)")
            .bind(next)
            .bind(s.commitment.as_bytes().to_vec())
            .bind(s.tid.as_bytes().to_vec())
            .execute(&mut *tx)
            .await
            .map_err(conflict_on_unique("transaction id already used"))?;
        let state = match s.mode {
            Mode::PerRecord => State::Queued,
            Mode::Wallet => State::AwaitingWallet,
        };
        // `chain_values` stays "[]": the values are health data, and the sealed TI has them.
        sqlx::query(
            "INSERT INTO submissions (tid, uid, pid, template_id, version, commitment, leaf_index, \
             mode, state, sealed_ti, chain_values, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
        )
        .bind(s.tid.as_bytes().to_vec())
        .bind(s.uid.as_str())
        .bind(s.pid.as_bytes().to_vec())
        .bind(s.template.id.as_str())
        .bind(i64::from(s.template.version.get()))
        .bind(s.commitment.as_bytes().to_vec())
        .bind(next)
        .bind(s.mode.as_str())
        .bind(state.as_str())
        .bind(s.sealed_ti.clone())
        .bind("[]")
        .bind(to_i64(s.now.0))
        .execute(&mut *tx)
        .await
        .map_err(conflict_on_unique(
            "transaction id or commitment already used",
        ))?;
        tx.commit().await?;
        Ok(Accepted::New {
            leaf_index: to_u64(next, "log_head.size")?,
        })
    }

    /// Claims the oldest submission that needs work (per-record: queued or sent; wallet:
    /// awaiting the wallet's transaction) and whose lease expired, leasing it to `owner`
    /// until `lease_until`.
    /// Several relays may share one PostgreSQL: a row is claimed by one of them at a time.
    pub async fn claim(
        &self,
        owner: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> Result<Option<Submission>> {
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE submissions SET lease_owner = $1, lease_until = $2, attempts = attempts + 1, \
             updated_at = $3 WHERE tid = (SELECT tid FROM submissions \
             WHERE ((mode = 'per_record' AND state IN ('queued', 'sent')) \
             OR (mode = 'wallet' AND state = 'sent')) \
             AND (lease_until IS NULL OR lease_until < $3) \
             ORDER BY created_at, leaf_index LIMIT 1{lock}) RETURNING *"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(owner)
            .bind(to_i64(lease_until.0))
            .bind(to_i64(now.0))
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(submission_from_row).transpose()
    }

    /// Clears every lease `owner` holds: a relay restarted after a crash takes back its
    /// previous process's leases (only one process serves a data folder at a time, so none
    /// of them is being worked on). Returns how many it cleared.
    pub async fn release_leases(&self, owner: &str) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE submissions SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
        )
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Records that the anchoring transaction was sent.
    pub async fn mark_sent(&self, tid: &TxId, tx_hash: &[u8; 32], now: UnixMillis) -> Result<()> {
        sqlx::query(
            "UPDATE submissions SET state = 'sent', tx_hash = $2, updated_at = $3 \
             WHERE tid = $1 AND state IN ('queued', 'sent', 'awaiting_wallet')",
        )
        .bind(tid.as_bytes().to_vec())
        .bind(tx_hash.to_vec())
        .bind(to_i64(now.0))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Notes the deadline (Unix seconds) of a wallet submission's co-signature; a later
    /// co-signature of the same submission (the author asked again) moves it later.
    pub async fn note_wallet_deadline(&self, tid: &TxId, deadline: u64) -> Result<()> {
        sqlx::query(
            "UPDATE submissions SET wallet_deadline = $2 \
             WHERE tid = $1 AND (wallet_deadline IS NULL OR wallet_deadline < $2)",
        )
        .bind(tid.as_bytes().to_vec())
        .bind(to_i64(deadline))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Whether any wallet submission is still awaiting its wallet (with a noted deadline).
    pub async fn has_awaiting_wallet(&self) -> Result<bool> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM submissions WHERE mode = 'wallet' \
             AND state = 'awaiting_wallet' AND wallet_deadline IS NOT NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(n > 0)
    }

    /// Wallet submissions still awaiting their wallet whose co-signature expired before
    /// `chain_time` (the chain's latest block timestamp, Unix seconds).
    pub async fn expired_wallet_submissions(&self, chain_time: u64) -> Result<Vec<TxId>> {
        let rows: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT tid FROM submissions WHERE mode = 'wallet' AND state = 'awaiting_wallet' \
             AND wallet_deadline IS NOT NULL AND wallet_deadline < $1",
        )
        .bind(to_i64(chain_time))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(tid,)| fixed(tid, "tid").map(TxId::from_bytes))
            .collect()
    }

    /// Marks a wallet submission expired (see [`State::Expired`]); `false` when it was not
    /// awaiting its wallet any more (its event was seen meanwhile).
    pub async fn expire(&self, tid: &TxId, now: UnixMillis) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE submissions SET state = 'expired', lease_owner = NULL, lease_until = NULL, \
             detail = 'the co-signature expired before the wallet sent the transaction', \
             updated_at = $2 WHERE tid = $1 AND state = 'awaiting_wallet'",
        )
        .bind(tid.as_bytes().to_vec())
        .bind(to_i64(now.0))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Marks a claimed submission failed for good (see [`State::Failed`]) with `detail`.
    pub async fn fail(&self, tid: &TxId, detail: &str, now: UnixMillis) -> Result<()> {
        sqlx::query(
            "UPDATE submissions SET state = 'failed', lease_owner = NULL, lease_until = NULL, \
             detail = $2, updated_at = $3 WHERE tid = $1 AND state IN ('queued', 'sent')",
        )
        .bind(tid.as_bytes().to_vec())
        .bind(detail)
        .bind(to_i64(now.0))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Gives a claimed submission back with `detail`; no worker claims it again before
    /// `retry_at`, so a submission that must wait (confirmations) or keeps failing does not
    /// hold up the ones queued behind it.
    pub async fn release(
        &self,
        tid: &TxId,
        detail: &str,
        now: UnixMillis,
        retry_at: UnixMillis,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE submissions SET lease_owner = NULL, lease_until = $4, detail = $2, updated_at = $3 \
             WHERE tid = $1",
        )
        .bind(tid.as_bytes().to_vec())
        .bind(detail)
        .bind(to_i64(now.0))
        .bind(to_i64(retry_at.0))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Finishes a submission: writes the sealed validated transaction to `records` or
    /// `rejected` and moves the submission's state, in one transaction. Returns `false` when
    /// the submission was already finished (by this or another relay): nothing is written.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete(
        &self,
        sub: &Submission,
        outcome: &Outcome,
        tx_hash: &[u8; 32],
        block_number: u64,
        key_id: &KeyId,
        envelope: &[u8],
        now: UnixMillis,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let (state, detail) = match outcome {
            Outcome::Stored => (State::Stored, None),
            Outcome::Rejected { reasons } => (State::Rejected, Some(reasons.as_str())),
        };
        let moved = sqlx::query(
            "UPDATE submissions SET state = $2, tx_hash = $3, block_number = $4, detail = $5, \
             lease_owner = NULL, lease_until = NULL, updated_at = $6 \
             WHERE tid = $1 AND state IN ('queued', 'sent', 'awaiting_wallet')",
        )
        .bind(sub.tid.as_bytes().to_vec())
        .bind(state.as_str())
        .bind(tx_hash.to_vec())
        .bind(to_i64(block_number))
        .bind(detail)
        .bind(to_i64(now.0))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(false);
        }
        match outcome {
            Outcome::Stored => {
                sqlx::query(
                    "INSERT INTO records (tid, pid, uid, template_id, version, commitment, leaf_index, \
                     key_id, envelope, stored_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(sub.tid.as_bytes().to_vec())
                .bind(sub.pid.as_bytes().to_vec())
                .bind(sub.uid.as_str())
                .bind(sub.template_id.as_str())
                .bind(i64::from(sub.version))
                .bind(sub.commitment.as_bytes().to_vec())
                .bind(to_i64(sub.leaf_index))
                .bind(key_id.as_bytes().to_vec())
                .bind(envelope.to_vec())
                .bind(to_i64(now.0))
                .execute(&mut *tx)
                .await?;
            }
            Outcome::Rejected { reasons } => {
                self.insert_rejected(
                    &mut tx,
                    sub.key(),
                    Some(sub.leaf_index),
                    "chain",
                    reasons,
                    key_id,
                    envelope,
                    now,
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_rejected(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        sub: RowKey<'_>,
        leaf_index: Option<u64>,
        source: &str,
        reasons: &str,
        key_id: &KeyId,
        envelope: &[u8],
        now: UnixMillis,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO rejected (tid, pid, uid, template_id, version, commitment, leaf_index, source, \
             reasons, key_id, envelope, rejected_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(sub.tid.as_bytes().to_vec())
        .bind(sub.pid.as_bytes().to_vec())
        .bind(sub.uid)
        .bind(sub.template_id)
        .bind(i64::from(sub.version))
        .bind(sub.commitment.as_bytes().to_vec())
        .bind(leaf_index.map(to_i64))
        .bind(source)
        .bind(reasons)
        .bind(key_id.as_bytes().to_vec())
        .bind(envelope.to_vec())
        .bind(to_i64(now.0))
        .execute(&mut **tx)
        .await
        .map_err(conflict_on_unique("transaction id already used"))?;
        Ok(())
    }

    /// Keeps a record that the relay refused before anchoring (rule violations) in the
    /// rejected-records audit, and binds its ticket to it in the same transaction: the
    /// refusal uses the ticket, so one ticket gives at most one rejected row (another
    /// record with it is [`StoreError::Ticket`] and nothing is written). It takes no leaf
    /// in the log.
    pub async fn reject_before_log(
        &self,
        sub: &NewSubmission,
        reasons: &str,
        key_id: &KeyId,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        super::tickets::bind(&mut tx, &sub.uid, &sub.tid, sub.now).await?;
        self.insert_rejected(
            &mut tx,
            sub.key(),
            None,
            "relay",
            reasons,
            key_id,
            &sub.sealed_ti,
            sub.now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A submission by transaction id.
    pub async fn submission(&self, tid: &TxId) -> Result<Option<Submission>> {
        let row = sqlx::query("SELECT * FROM submissions WHERE tid = $1")
            .bind(tid.as_bytes().to_vec())
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(submission_from_row).transpose()
    }

    /// How many submissions wait for anchoring (queued or sent).
    pub async fn queue_depth(&self) -> Result<u64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM submissions WHERE state IN ('queued', 'sent')")
                .fetch_one(self.pool())
                .await?;
        to_u64(n, "count")
    }

    /// The log's size and every leaf's data, in index order.
    pub async fn log_leaves(&self) -> Result<Vec<(u64, [u8; 32])>> {
        let rows = sqlx::query("SELECT leaf_index, leaf_data FROM log_leaves ORDER BY leaf_index")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    to_u64(r.try_get("leaf_index")?, "log_leaves.leaf_index")?,
                    fixed(r.try_get("leaf_data")?, "log_leaves.leaf_data")?,
                ))
            })
            .collect()
    }

    /// Every patient with stored records: `(pid, number of records, last stored at)`,
    /// most recently updated first.
    pub async fn patients(&self, limit: u32) -> Result<Vec<(PatientId, u64, UnixMillis)>> {
        let rows: Vec<(Vec<u8>, i64, i64)> = sqlx::query_as(
            "SELECT pid, COUNT(*), MAX(stored_at) FROM records GROUP BY pid \
             ORDER BY MAX(stored_at) DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|(pid, n, at)| {
                Ok((
                    PatientId::from_bytes(fixed(pid, "records.pid")?),
                    to_u64(n, "count")?,
                    UnixMillis(to_u64(at, "records.stored_at")?),
                ))
            })
            .collect()
    }

    /// A patient's stored records, oldest first.
    pub async fn records_of_patient(&self, pid: &PatientId) -> Result<Vec<StoredRecord>> {
        let rows =
            sqlx::query("SELECT * FROM records WHERE pid = $1 ORDER BY stored_at, leaf_index")
                .bind(pid.as_bytes().to_vec())
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(|r| stored_from_row(r, false)).collect()
    }

    /// The rejected-records audit, newest first.
    pub async fn rejected_records(&self, limit: u32) -> Result<Vec<StoredRecord>> {
        let rows = sqlx::query("SELECT * FROM rejected ORDER BY rejected_at DESC LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| stored_from_row(r, true)).collect()
    }
}

fn stored_from_row(row: &sqlx::any::AnyRow, rejected: bool) -> Result<StoredRecord> {
    let at_col = if rejected { "rejected_at" } else { "stored_at" };
    Ok(StoredRecord {
        tid: TxId::from_bytes(fixed(row.try_get("tid")?, "tid")?),
        pid: PatientId::from_bytes(fixed(row.try_get("pid")?, "pid")?),
        uid: row.try_get("uid")?,
        template_id: row.try_get("template_id")?,
        version: u32::try_from(row.try_get::<i64, _>("version")?)
            .map_err(|_| StoreError::Corrupt("version".into()))?,
        commitment: Commitment::from_bytes(fixed(row.try_get("commitment")?, "commitment")?),
        leaf_index: row
            .try_get::<Option<i64>, _>("leaf_index")?
            .map(|v| to_u64(v, "leaf_index"))
            .transpose()?,
        key_id: KeyId::from_bytes(fixed(row.try_get("key_id")?, "key_id")?),
        envelope: row.try_get("envelope")?,
        at: UnixMillis(to_u64(row.try_get(at_col)?, at_col)?),
        reasons: if rejected {
            row.try_get("reasons")?
        } else {
            None
        },
        source: if rejected {
            row.try_get("source")?
        } else {
            None
        },
        erased_by: if rejected {
            None
        } else {
            row.try_get::<Option<Vec<u8>>, _>("erased_by")?
                .map(|b| fixed(b, "erased_by").map(TxId::from_bytes))
                .transpose()?
        },
    })
}
