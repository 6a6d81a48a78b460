//! The relay's signed checkpoints of the record log and their anchoring on chain, plus the
//! reads that proof files need (a record's leaf, a prefix of the log).
//!
//! A checkpoint row is written when the relay signs it (`signed`, `signer`), leased to one
//! relay while that relay anchors it (`lease_owner`, `lease_until`, so several relays on one
//! PostgreSQL do not send the same checkpoint twice), then marked sent (`tx_hash`) and
//! finally anchored (`block_number`, `block_hash`, `log_index`, `anchored_at`). A row that
//! was never anchored because another relay anchored a larger size first is deleted: the
//! contract refuses sizes that do not grow, so it can never be anchored.

use mediblock_protocol::checkpoint::{Checkpoint, SignedCheckpoint};
use mediblock_protocol::encoding::{Canonical as _, Reader, Writer};
use mediblock_protocol::hash::Hash32;
use mediblock_protocol::ids::{Commitment, PatientId, TxId, UnixMillis};
use sqlx::Row as _;

use super::{Result, Store, StoreError, fixed, to_i64, to_u64};

/// Where and when a checkpoint was anchored on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointAnchoring {
    /// The anchoring transaction.
    pub tx_hash: [u8; 32],
    /// Its block.
    pub block_number: u64,
    /// That block's hash.
    pub block_hash: [u8; 32],
    /// Index of the `CheckpointAnchored` event in the block.
    pub log_index: u64,
    /// When the relay saw it confirmed.
    pub anchored_at: UnixMillis,
}

/// A checkpoint as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// The checkpoint and the relay's ed25519 signature.
    pub signed: SignedCheckpoint,
    /// The ed25519 public key that signed it (several relays may share a store).
    pub signer: [u8; 32],
    /// The anchoring transaction, once sent.
    pub tx_hash: Option<[u8; 32]>,
    /// Set once the anchoring is confirmed.
    pub anchoring: Option<CheckpointAnchoring>,
    /// When it was signed.
    pub created_at: UnixMillis,
}

impl StoredCheckpoint {
    /// The tree size.
    pub fn size(&self) -> u64 {
        self.signed.checkpoint.size()
    }

    /// The Merkle root.
    pub fn root(&self) -> &Hash32 {
        self.signed.checkpoint.root()
    }
}

/// Where a record's commitment sits in the log, for its proof file.
#[derive(Debug, Clone)]
pub struct LoggedRecord {
    /// Transaction id.
    pub tid: TxId,
    /// Patient (for the access log).
    pub pid: PatientId,
    /// Author.
    pub uid: String,
    /// The commitment the row claims.
    pub commitment: Commitment,
    /// The leaf index the row claims.
    pub leaf_index: u64,
    /// The sealed validated transaction (envelope bytes).
    pub envelope: Vec<u8>,
    /// Whether the record was lawfully erased (its content may be gone).
    pub erased: bool,
}

/// The bytes of the `signed` column: the checkpoint's canonical bytes, then the signature.
fn encode_signed(signed: &SignedCheckpoint) -> Vec<u8> {
    let mut w = Writer::new();
    signed.checkpoint.encode(&mut w);
    w.fixed(&signed.signature);
    w.into_bytes()
}

fn decode_signed(bytes: &[u8]) -> Result<SignedCheckpoint> {
    let corrupt =
        |e: mediblock_protocol::Error| StoreError::Corrupt(format!("checkpoints.signed: {e}"));
    let mut r = Reader::new(bytes);
    let checkpoint = Checkpoint::decode(&mut r).map_err(corrupt)?;
    let signature = r.array().map_err(|e| corrupt(e.into()))?;
    r.finish().map_err(|e| corrupt(e.into()))?;
    Ok(SignedCheckpoint {
        checkpoint,
        signature,
    })
}

fn checkpoint_from_row(row: &sqlx::any::AnyRow) -> Result<StoredCheckpoint> {
    let signed = decode_signed(&row.try_get::<Vec<u8>, _>("signed")?)?;
    let size = to_u64(row.try_get("size")?, "checkpoints.size")?;
    let root: [u8; 32] = fixed(row.try_get("root")?, "checkpoints.root")?;
    if size != signed.checkpoint.size() || root != *signed.checkpoint.root() {
        return Err(StoreError::Corrupt(format!(
            "checkpoints row {size}: size or root differ from the signed checkpoint"
        )));
    }
    let tx_hash = row
        .try_get::<Option<Vec<u8>>, _>("tx_hash")?
        .map(|b| fixed(b, "checkpoints.tx_hash"))
        .transpose()?;
    let block_number: Option<i64> = row.try_get("block_number")?;
    let anchoring = match (tx_hash, block_number) {
        (Some(tx_hash), Some(block)) => Some(CheckpointAnchoring {
            tx_hash,
            block_number: to_u64(block, "checkpoints.block_number")?,
            block_hash: fixed(
                row.try_get::<Option<Vec<u8>>, _>("block_hash")?
                    .ok_or_else(|| StoreError::Corrupt("checkpoints.block_hash".into()))?,
                "checkpoints.block_hash",
            )?,
            log_index: to_u64(
                row.try_get::<Option<i64>, _>("log_index")?
                    .ok_or_else(|| StoreError::Corrupt("checkpoints.log_index".into()))?,
                "checkpoints.log_index",
            )?,
            anchored_at: UnixMillis(to_u64(
                row.try_get::<Option<i64>, _>("anchored_at")?
                    .ok_or_else(|| StoreError::Corrupt("checkpoints.anchored_at".into()))?,
                "checkpoints.anchored_at",
            )?),
        }),
        _ => None,
    };
    Ok(StoredCheckpoint {
        signed,
        signer: fixed(row.try_get("signer")?, "checkpoints.signer")?,
        tx_hash,
        anchoring,
        created_at: UnixMillis(to_u64(
            row.try_get("created_at")?,
            "checkpoints.created_at",
        )?),
    })
}

impl Store {
    /// Every checkpoint the store holds, anchored or not, smallest size first.
    pub async fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        let rows = sqlx::query("SELECT * FROM checkpoints ORDER BY size")
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    /// The checkpoint of `size`, if the store holds one.
    pub async fn checkpoint(&self, size: u64) -> Result<Option<StoredCheckpoint>> {
        let row = sqlx::query("SELECT * FROM checkpoints WHERE size = $1")
            .bind(to_i64(size))
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    /// The anchored checkpoint of the largest size.
    pub async fn latest_anchored_checkpoint(&self) -> Result<Option<StoredCheckpoint>> {
        let row = sqlx::query(
            "SELECT * FROM checkpoints WHERE block_number IS NOT NULL ORDER BY size DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    /// Stores a freshly signed checkpoint; `false` when one of that size exists already
    /// (signed by this or another relay: same size means same leaves, same root).
    pub async fn insert_checkpoint(
        &self,
        signed: &SignedCheckpoint,
        signer: &[u8; 32],
        now: UnixMillis,
    ) -> Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO checkpoints (size, root, signed, signer, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (size) DO NOTHING",
        )
        .bind(to_i64(signed.checkpoint.size()))
        .bind(signed.checkpoint.root().to_vec())
        .bind(encode_signed(signed))
        .bind(signer.to_vec())
        .bind(to_i64(now.0))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Leases the not yet anchored checkpoint of `size` to `owner` until `lease_until`,
    /// unless another relay holds a live lease; `true` when this caller got it.
    pub async fn claim_checkpoint(
        &self,
        size: u64,
        owner: &str,
        now: UnixMillis,
        lease_until: UnixMillis,
    ) -> Result<bool> {
        let claimed = sqlx::query(
            "UPDATE checkpoints SET lease_owner = $2, lease_until = $3 \
             WHERE size = $1 AND block_number IS NULL \
             AND (lease_until IS NULL OR lease_until < $4 OR lease_owner = $2)",
        )
        .bind(to_i64(size))
        .bind(owner)
        .bind(to_i64(lease_until.0))
        .bind(to_i64(now.0))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    /// Records the hash of the transaction that anchors the checkpoint of `size`.
    pub async fn checkpoint_sent(&self, size: u64, tx_hash: &[u8; 32]) -> Result<()> {
        sqlx::query("UPDATE checkpoints SET tx_hash = $2 WHERE size = $1 AND block_number IS NULL")
            .bind(to_i64(size))
            .bind(tx_hash.to_vec())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Records the confirmed anchoring of the checkpoint of `size` and drops its lease.
    pub async fn checkpoint_anchored(&self, size: u64, a: &CheckpointAnchoring) -> Result<()> {
        sqlx::query(
            "UPDATE checkpoints SET tx_hash = $2, block_number = $3, block_hash = $4, \
             log_index = $5, anchored_at = $6, lease_owner = NULL, lease_until = NULL \
             WHERE size = $1",
        )
        .bind(to_i64(size))
        .bind(a.tx_hash.to_vec())
        .bind(to_i64(a.block_number))
        .bind(a.block_hash.to_vec())
        .bind(to_i64(a.log_index))
        .bind(to_i64(a.anchored_at.0))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Drops the lease of the checkpoint of `size` (after a transient failure).
    pub async fn release_checkpoint(&self, size: u64) -> Result<()> {
        sqlx::query(
            "UPDATE checkpoints SET lease_owner = NULL, lease_until = NULL WHERE size = $1",
        )
        .bind(to_i64(size))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deletes the checkpoint of `size` unless it is anchored: the chain holds a larger
    /// size already, so this one can never be anchored.
    pub async fn drop_unanchored_checkpoint(&self, size: u64) -> Result<()> {
        sqlx::query("DELETE FROM checkpoints WHERE size = $1 AND block_number IS NULL")
            .bind(to_i64(size))
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The log's size as its head counter says (every index below it was assigned).
    pub async fn log_size(&self) -> Result<u64> {
        let (size,): (i64,) = sqlx::query_as("SELECT size FROM log_head WHERE id = 0")
            .fetch_one(self.pool())
            .await?;
        to_u64(size, "log_head.size")
    }

    /// The leaf data of the log's first `size` leaves, in index order, as `(index, data)`.
    /// Fewer than `size` rows come back when the log has holes or is shorter.
    pub async fn log_prefix(&self, size: u64) -> Result<Vec<(u64, [u8; 32])>> {
        let rows = sqlx::query(
            "SELECT leaf_index, leaf_data FROM log_leaves WHERE leaf_index < $1 ORDER BY leaf_index",
        )
        .bind(to_i64(size))
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

    /// When the submission at leaf `index` was accepted (the age of the oldest leaf that no
    /// checkpoint covers yet decides when the next checkpoint is due).
    pub async fn leaf_accepted_at(&self, index: u64) -> Result<Option<UnixMillis>> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT created_at FROM submissions WHERE leaf_index = $1")
                .bind(to_i64(index))
                .fetch_optional(self.pool())
                .await?;
        row.map(|(at,)| Ok(UnixMillis(to_u64(at, "submissions.created_at")?)))
            .transpose()
    }

    /// A stored or chain-rejected record by transaction id, with its leaf (records refused
    /// before the log have none and are not found here). A record is erased when its
    /// `erased_by` is set (as the API and the audit decide it); rejected records are never
    /// erased.
    pub async fn logged_record(&self, tid: &TxId) -> Result<Option<LoggedRecord>> {
        let stored = sqlx::query(
            "SELECT tid, pid, uid, commitment, leaf_index, envelope, erased_by FROM records \
             WHERE tid = $1",
        )
        .bind(tid.as_bytes().to_vec())
        .fetch_optional(self.pool())
        .await?;
        if let Some(row) = stored {
            let erased = row.try_get::<Option<Vec<u8>>, _>("erased_by")?.is_some();
            return logged_from_row(&row, erased).map(Some);
        }
        let rejected = sqlx::query(
            "SELECT tid, pid, uid, commitment, leaf_index, envelope FROM rejected \
             WHERE tid = $1 AND leaf_index IS NOT NULL",
        )
        .bind(tid.as_bytes().to_vec())
        .fetch_optional(self.pool())
        .await?;
        rejected.map(|row| logged_from_row(&row, false)).transpose()
    }
}

fn logged_from_row(r: &sqlx::any::AnyRow, erased: bool) -> Result<LoggedRecord> {
    Ok(LoggedRecord {
        tid: TxId::from_bytes(fixed(r.try_get("tid")?, "tid")?),
        pid: PatientId::from_bytes(fixed(r.try_get("pid")?, "pid")?),
        uid: r.try_get("uid")?,
        commitment: Commitment::from_bytes(fixed(r.try_get("commitment")?, "commitment")?),
        leaf_index: to_u64(r.try_get("leaf_index")?, "leaf_index")?,
        envelope: r.try_get("envelope")?,
        erased,
    })
}
