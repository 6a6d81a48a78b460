//! The audit's reads of the store, as raw as the database holds them (a tampered row must
//! be reported, not refused), and lawful erasure's one write.
//!
//! Byte columns stay `Vec<u8>` here: a transaction id of the wrong length is evidence for
//! the audit, not a reason to stop it.

use sqlx::Row as _;

use super::{Result, Store};

/// The tables the audit reads, from one snapshot.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `log_head.size`.
    pub log_size: i64,
    /// `log_leaves`, in index order.
    pub leaves: Vec<LeafRow>,
    /// `submissions`, without the sealed content.
    pub submissions: Vec<SubmissionRow>,
    /// `records`, in leaf order.
    pub records: Vec<RecordRow>,
    /// `rejected`.
    pub rejected: Vec<RejectedRow>,
}

/// A row of `records`, as stored.
#[derive(Debug, Clone)]
pub struct RecordRow {
    /// `tid`.
    pub tid: Vec<u8>,
    /// `pid`.
    pub pid: Vec<u8>,
    /// `uid`.
    pub uid: String,
    /// `template_id`.
    pub template_id: String,
    /// `version`.
    pub version: i64,
    /// `commitment`.
    pub commitment: Vec<u8>,
    /// `leaf_index`.
    pub leaf_index: i64,
    /// `envelope` (empty once erased).
    pub envelope: Vec<u8>,
    /// `stored_at` (Unix ms).
    pub stored_at: i64,
    /// `erased_by`: the transaction id of the erasure record, once erased.
    pub erased_by: Option<Vec<u8>>,
    /// `erased_at` (Unix ms).
    pub erased_at: Option<i64>,
}

/// A row of `rejected`, as stored.
#[derive(Debug, Clone)]
pub struct RejectedRow {
    /// `tid`.
    pub tid: Vec<u8>,
    /// `pid`.
    pub pid: Vec<u8>,
    /// `uid`.
    pub uid: String,
    /// `template_id`.
    pub template_id: String,
    /// `version`.
    pub version: i64,
    /// `commitment`.
    pub commitment: Vec<u8>,
    /// `leaf_index` (absent for the relay's own refusals).
    pub leaf_index: Option<i64>,
    /// `source`: `relay` or `chain`.
    pub source: String,
    /// `envelope`.
    pub envelope: Vec<u8>,
    /// `rejected_at` (Unix ms).
    pub rejected_at: i64,
}

/// The audit's view of a `submissions` row (no sealed content).
#[derive(Debug, Clone)]
pub struct SubmissionRow {
    /// `tid`.
    pub tid: Vec<u8>,
    /// `pid`.
    pub pid: Vec<u8>,
    /// `commitment`.
    pub commitment: Vec<u8>,
    /// `leaf_index`.
    pub leaf_index: i64,
    /// `state`.
    pub state: String,
    /// `mode` (`per_record` or `wallet`).
    pub mode: String,
    /// `created_at` (Unix ms).
    pub created_at: i64,
    /// `sealed_ti` of a `failed` submission (empty for every other state): the audit opens
    /// it when the chain holds an anchor of a record the relay refused to store.
    pub failed_sealed_ti: Vec<u8>,
}

/// A row of `log_leaves`.
#[derive(Debug, Clone)]
pub struct LeafRow {
    /// `leaf_index`.
    pub leaf_index: i64,
    /// `leaf_data`: the record's commitment.
    pub leaf_data: Vec<u8>,
    /// `tid`.
    pub tid: Option<Vec<u8>>,
}

fn record_row(r: &sqlx::any::AnyRow) -> Result<RecordRow> {
    Ok(RecordRow {
        tid: r.try_get("tid")?,
        pid: r.try_get("pid")?,
        uid: r.try_get("uid")?,
        template_id: r.try_get("template_id")?,
        version: r.try_get("version")?,
        commitment: r.try_get("commitment")?,
        leaf_index: r.try_get("leaf_index")?,
        envelope: r.try_get("envelope")?,
        stored_at: r.try_get("stored_at")?,
        erased_by: r.try_get("erased_by")?,
        erased_at: r.try_get("erased_at")?,
    })
}

impl Store {
    /// Every table the audit reads, from one consistent snapshot of the database (a
    /// repeatable-read, read-only transaction), so that a record the worker stores meanwhile
    /// is seen either in flight or stored, never neither: the log, the submissions, the
    /// records and the rejected records.
    pub async fn audit_snapshot(&self) -> Result<Snapshot> {
        let mut tx = self.pool().begin().await?;
        if self.backend() == super::Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let (log_size, leaves) = audit_log(&mut tx).await?;
        let submissions = audit_submissions(&mut tx).await?;
        let records = audit_records(&mut tx).await?;
        let rejected = audit_rejected(&mut tx).await?;
        tx.commit().await?;
        Ok(Snapshot {
            log_size,
            leaves,
            submissions,
            records,
            rejected,
        })
    }

    /// One row of `records` by transaction id.
    pub async fn audit_record(&self, tid: &[u8]) -> Result<Option<RecordRow>> {
        let row = sqlx::query(
            "SELECT tid, pid, uid, template_id, version, commitment, leaf_index, envelope, \
             stored_at, erased_by, erased_at FROM records WHERE tid = $1",
        )
        .bind(tid.to_vec())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record_row).transpose()
    }

    /// The stored records of the erasure template that have not been applied yet: their
    /// transaction ids and sealed envelopes.
    pub async fn stored_erasure_records(
        &self,
        template_id: &str,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = sqlx::query_as(
            "SELECT e.tid, e.envelope FROM records e WHERE e.template_id = $1 \
             AND e.erased_by IS NULL \
             AND NOT EXISTS (SELECT 1 FROM records t WHERE t.erased_by = e.tid)",
        )
        .bind(template_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows)
    }

    /// Lawful erasure: destroys the content of record `tid` (its sealed validated
    /// transaction, and the sealed signed TI its submission kept), keeping its id,
    /// commitment and leaf, and marks it erased by record `erasure`. `false` when there is
    /// no such record or it was erased already. One transaction.
    pub async fn erase(&self, tid: &[u8; 16], erasure: &[u8; 16], at: i64) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE records SET envelope = $2, erased_by = $3, erased_at = $4 \
             WHERE tid = $1 AND erased_by IS NULL",
        )
        .bind(tid.to_vec())
        .bind(Vec::<u8>::new())
        .bind(erasure.to_vec())
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE submissions SET sealed_ti = $2 WHERE tid = $1")
            .bind(tid.to_vec())
            .bind(Vec::<u8>::new())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if self.backend() == super::Backend::Sqlite {
            // With `secure_delete` the pages now hold zeros; copy them into the database
            // file and empty the write-ahead log, which still held the old page images.
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(self.pool())
                .await?;
        }
        Ok(true)
    }
}

async fn audit_records(conn: &mut sqlx::AnyConnection) -> Result<Vec<RecordRow>> {
    let rows = sqlx::query(
        "SELECT tid, pid, uid, template_id, version, commitment, leaf_index, envelope, \
         stored_at, erased_by, erased_at FROM records ORDER BY leaf_index",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(record_row).collect()
}

async fn audit_rejected(conn: &mut sqlx::AnyConnection) -> Result<Vec<RejectedRow>> {
    let rows = sqlx::query(
        "SELECT tid, pid, uid, template_id, version, commitment, leaf_index, source, \
             envelope, rejected_at FROM rejected ORDER BY rejected_at",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(RejectedRow {
                tid: r.try_get("tid")?,
                pid: r.try_get("pid")?,
                uid: r.try_get("uid")?,
                template_id: r.try_get("template_id")?,
                version: r.try_get("version")?,
                commitment: r.try_get("commitment")?,
                leaf_index: r.try_get("leaf_index")?,
                source: r.try_get("source")?,
                envelope: r.try_get("envelope")?,
                rejected_at: r.try_get("rejected_at")?,
            })
        })
        .collect()
}

async fn audit_submissions(conn: &mut sqlx::AnyConnection) -> Result<Vec<SubmissionRow>> {
    let rows = sqlx::query(
        "SELECT tid, pid, commitment, leaf_index, state, mode, created_at, \
         CASE WHEN state = 'failed' THEN sealed_ti END AS failed_sealed_ti FROM submissions",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(SubmissionRow {
                tid: r.try_get("tid")?,
                pid: r.try_get("pid")?,
                commitment: r.try_get("commitment")?,
                leaf_index: r.try_get("leaf_index")?,
                state: r.try_get("state")?,
                mode: r.try_get("mode")?,
                created_at: r.try_get("created_at")?,
                failed_sealed_ti: r
                    .try_get::<Option<Vec<u8>>, _>("failed_sealed_ti")?
                    .unwrap_or_default(),
            })
        })
        .collect()
}

async fn audit_log(conn: &mut sqlx::AnyConnection) -> Result<(i64, Vec<LeafRow>)> {
    let (size,): (i64,) = sqlx::query_as("SELECT size FROM log_head WHERE id = 0")
        .fetch_one(&mut *conn)
        .await?;
    let rows = sqlx::query("SELECT leaf_index, leaf_data, tid FROM log_leaves ORDER BY leaf_index")
        .fetch_all(&mut *conn)
        .await?;
    let leaves = rows
        .iter()
        .map(|r| {
            Ok(LeafRow {
                leaf_index: r.try_get("leaf_index")?,
                leaf_data: r.try_get("leaf_data")?,
                tid: r.try_get("tid")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((size, leaves))
}
