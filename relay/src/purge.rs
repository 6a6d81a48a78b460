//! The relay's periodic purge of what has expired: sign-in challenges and sessions
//! ([`crate::store::Store::purge_expired`]). Sign-in also purges before it stores a
//! challenge, so the tables stay small under load too; this task covers quiet times. Unused
//! tickets are released when they lapse and forgotten when their user next asks for one
//! ([`crate::store::tickets`]).

use std::time::Duration;

use crate::now;
use crate::store::Store;

/// How often the relay purges.
pub const PURGE_EVERY: Duration = Duration::from_secs(300);

/// Purges every [`PURGE_EVERY`], forever (the relay's tasks spawn it).
pub async fn run(store: Store) {
    let mut every = tokio::time::interval(PURGE_EVERY);
    loop {
        every.tick().await;
        match store.purge_expired(now()).await {
            Ok(purged) => tracing::debug!(
                challenges = purged.challenges,
                sessions = purged.sessions,
                "purged expired sign-in state"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot purge expired sign-in state"),
        }
    }
}
