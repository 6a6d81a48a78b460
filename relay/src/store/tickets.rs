//! Tickets: the numbers the relay issues before a record is sealed.
//!
//! A record's tid starts with its ticket (`TxId::for_ticket`), and the registry marks each
//! ticket used in a bitmap of 256 tickets per storage word, so anchoring a record rewrites a
//! word that is usually already in use instead of paying for a fresh slot per tid (issue #4's
//! gas budgets). The relay therefore issues tickets densely: consecutive numbers from a
//! random base aligned to 256, chosen once per store, so two stores anchoring to one registry
//! (or a fresh store on an old registry) do not collide in practice.
//!
//! A ticket belongs to the user it was issued to, stays usable for [`TICKET_TTL_MS`], and is
//! bound to exactly one tid when the relay accepts a record with it ([`bind`], inside the
//! transaction that appends the record to the log) — or refuses it for its template's
//! rules (inside the transaction that keeps it in the rejected-records audit), so one
//! ticket gives at most one rejected record. Binding is what the submission path checks:
//! unknown, someone else's, expired and already-bound tickets are refused.
//!
//! A user holds at most [`MAX_OPEN_TICKETS`] usable, unbound tickets. An unused ticket is
//! released when it lapses (it stops counting at once) and its row is deleted when its user
//! next asks for a ticket, [`TICKET_TTL_MS`] later still, so a late record with it reads
//! `ticket_expired` meanwhile and the table keeps no more than that per user.

use mediblock_protocol::ids::{TxId, UnixMillis, UserId};
use sqlx::Row as _;

use super::{Result, Store, StoreError, to_i64, to_u64};

/// How long an issued ticket stays usable: 15 minutes (up to and including
/// `issued_at + TICKET_TTL_MS`). Clients ask for a ticket right before they seal and post a
/// record, and the wallet path binds it when the relay accepts the record, before the
/// wallet is asked; so a short life costs nothing, and a user who let
/// [`MAX_OPEN_TICKETS`] lapse unused waits at most this long for the next one.
pub const TICKET_TTL_MS: u64 = 15 * 60 * 1000;

/// How many usable, unbound tickets one user may hold at once.
pub const MAX_OPEN_TICKETS: i64 = 64;

/// Why a ticket cannot be bound to a tid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketProblem {
    /// Never issued, or issued to someone else.
    #[error("ticket unknown")]
    Unknown,
    /// Issued more than [`TICKET_TTL_MS`] ago and never used.
    #[error("ticket expired")]
    Expired,
    /// Already bound to another tid, or to this one by a refusal for the template's rules.
    #[error("ticket used")]
    Used,
}

/// A freshly issued ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// The number: the first 8 bytes of the tid sealed with it.
    pub number: u64,
    /// When it stops being usable.
    pub expires_at: UnixMillis,
}

impl Store {
    /// Writes the ticket counter's row once, with a random base: below 2^62, a multiple of
    /// 256 (one registry bitmap word), so this store's tickets fill whole words. Opening an
    /// initialised store only reads (`mediblock audit` opens it read-only).
    pub(super) async fn init_tickets(&self) -> Result<()> {
        let head: Option<(i64,)> = sqlx::query_as("SELECT next FROM ticket_head WHERE id = 0")
            .fetch_optional(self.pool())
            .await?;
        if head.is_some() {
            return Ok(());
        }
        let base = random_base()?;
        sqlx::query(
            "INSERT INTO ticket_head (id, next) VALUES (0, $1) ON CONFLICT (id) DO NOTHING",
        )
        .bind(to_i64(base))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The number the next ticket will get.
    pub async fn next_ticket(&self) -> Result<u64> {
        let (next,): (i64,) = sqlx::query_as("SELECT next FROM ticket_head WHERE id = 0")
            .fetch_one(self.pool())
            .await?;
        to_u64(next, "ticket_head.next")
    }

    /// Moves the ticket counter to a fresh random base (see [`Store::init_tickets`]) and
    /// returns it: for a store whose next tickets the chain has already used.
    pub async fn rebase_tickets(&self) -> Result<u64> {
        let base = random_base()?;
        sqlx::query("UPDATE ticket_head SET next = $1 WHERE id = 0")
            .bind(to_i64(base))
            .execute(self.pool())
            .await?;
        Ok(base)
    }

    /// What, if anything, stops `uid` from using `tid`'s ticket for `tid` now: the
    /// submission path asks before anything else is decided, so a bad ticket is refused
    /// with its own code and writes nothing. Read-only; [`bind`] decides for good.
    pub async fn ticket_problem(
        &self,
        uid: &UserId,
        tid: &TxId,
        now: UnixMillis,
    ) -> Result<Option<TicketProblem>> {
        let mut conn = self.pool().acquire().await?;
        diagnose(&mut conn, uid, tid, now).await
    }

    /// Issues the next ticket to `uid`, or `None` when they already hold
    /// [`MAX_OPEN_TICKETS`] usable, unbound ones.
    pub async fn issue_ticket(&self, uid: &UserId, now: UnixMillis) -> Result<Option<Ticket>> {
        let mut tx = self.begin_write().await?;
        // The counter first: its row lock serialises issuance until commit, so two
        // concurrent requests cannot both see room under the limit (PostgreSQL runs READ
        // COMMITTED).
        let (number,): (i64,) = sqlx::query_as(
            "UPDATE ticket_head SET next = next + 1 WHERE id = 0 RETURNING next - 1",
        )
        .fetch_one(&mut *tx)
        .await?;
        // Forget this user's unused tickets that lapsed a lifetime ago (through the index on
        // (uid, issued_at)): they no longer count, and a record with one is long refused.
        sqlx::query("DELETE FROM tickets WHERE uid = $1 AND tid IS NULL AND issued_at < $2")
            .bind(uid.as_str())
            .bind(to_i64(now.0.saturating_sub(2 * TICKET_TTL_MS)))
            .execute(&mut *tx)
            .await?;
        let (open,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM tickets WHERE uid = $1 AND tid IS NULL AND issued_at >= $2",
        )
        .bind(uid.as_str())
        .bind(to_i64(now.0.saturating_sub(TICKET_TTL_MS)))
        .fetch_one(&mut *tx)
        .await?;
        if open >= MAX_OPEN_TICKETS {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query("INSERT INTO tickets (ticket, uid, issued_at) VALUES ($1, $2, $3)")
            .bind(number)
            .bind(uid.as_str())
            .bind(to_i64(now.0))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(Ticket {
            number: to_u64(number, "ticket_head.next")?,
            expires_at: UnixMillis(now.0.saturating_add(TICKET_TTL_MS)),
        }))
    }
}

impl Store {
    /// When `uid`, holding [`MAX_OPEN_TICKETS`] usable unbound tickets at `now`, may have
    /// another: just after the oldest lapses (`None` when they hold none).
    pub async fn next_ticket_room(
        &self,
        uid: &UserId,
        now: UnixMillis,
    ) -> Result<Option<UnixMillis>> {
        let (oldest,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(issued_at) FROM tickets WHERE uid = $1 AND tid IS NULL AND issued_at >= $2",
        )
        .bind(uid.as_str())
        .bind(to_i64(now.0.saturating_sub(TICKET_TTL_MS)))
        .fetch_one(self.pool())
        .await?;
        oldest
            .map(|at| {
                Ok(UnixMillis(
                    to_u64(at, "tickets.issued_at")? + TICKET_TTL_MS + 1,
                ))
            })
            .transpose()
    }
}

/// Binds `tid`'s ticket to `tid` for `uid`, inside the caller's write transaction. Binding
/// the same tid again is a no-op (a retried submission).
pub(super) async fn bind(
    tx: &mut sqlx::AnyConnection,
    uid: &UserId,
    tid: &TxId,
    now: UnixMillis,
) -> Result<()> {
    // A ticket above i64::MAX was never issued (bases stay below 2^62): it saturates to a
    // number no row has.
    let ticket = to_i64(tid.ticket());
    let oldest = to_i64(now.0.saturating_sub(TICKET_TTL_MS));
    let bound = sqlx::query(
        "UPDATE tickets SET tid = $1 WHERE ticket = $2 AND uid = $3 AND tid IS NULL \
         AND issued_at >= $4",
    )
    .bind(tid.as_bytes().to_vec())
    .bind(ticket)
    .bind(uid.as_str())
    .bind(oldest)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if bound == 1 {
        return Ok(());
    }
    match diagnose(tx, uid, tid, now).await? {
        Some(problem) => Err(StoreError::Ticket(problem)),
        // Already bound to this very tid (a retried submission).
        None => Ok(()),
    }
}

/// What, if anything, stops `uid` from using `tid`'s ticket for `tid` at `now`.
async fn diagnose(
    conn: &mut sqlx::AnyConnection,
    uid: &UserId,
    tid: &TxId,
    now: UnixMillis,
) -> Result<Option<TicketProblem>> {
    let row = sqlx::query("SELECT uid, issued_at, tid FROM tickets WHERE ticket = $1")
        .bind(to_i64(tid.ticket()))
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(Some(TicketProblem::Unknown));
    };
    if row.try_get::<String, _>("uid")? != uid.as_str() {
        return Ok(Some(TicketProblem::Unknown));
    }
    let oldest = to_i64(now.0.saturating_sub(TICKET_TTL_MS));
    Ok(match row.try_get::<Option<Vec<u8>>, _>("tid")? {
        // Bound to this tid: by its acceptance (a retried submission is fine), or by the
        // relay's refusal of it for its template's rules, which used the ticket.
        Some(t) if t == tid.as_bytes() => {
            let refused: Option<(i64,)> =
                sqlx::query_as("SELECT 1 FROM rejected WHERE tid = $1 AND source = 'relay'")
                    .bind(tid.as_bytes().to_vec())
                    .fetch_optional(&mut *conn)
                    .await?;
            refused.map(|_| TicketProblem::Used)
        }
        Some(_) => Some(TicketProblem::Used),
        None if row.try_get::<i64, _>("issued_at")? < oldest => Some(TicketProblem::Expired),
        None => None,
    })
}

/// A random ticket base: below 2^62 (a BIGINT with room to count), a multiple of 256 (one
/// registry bitmap word).
fn random_base() -> Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok((u64::from_be_bytes(bytes) >> 2) & !0xff)
}
