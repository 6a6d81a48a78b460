//! `GET /api/v1/submissions/{tid}/events`: a server-sent-events stream of a submission's
//! state changes, ending when it is stored, rejected or expired.
//!
//! The first event is the current state. Later events come from the in-process broadcast
//! that the anchoring worker publishes to, and from a re-read of the store every few seconds
//! (so a change made by another relay sharing the database is seen too).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use mediblock_protocol::ids::{Role, TxId};
use tokio::sync::broadcast;

use super::auth::Caller;
use super::submissions::{SubmissionView, view};
use crate::AppState;
use crate::error::ApiError;
use crate::store::submissions::State as SubState;

/// How often the stream re-reads the store when no broadcast arrives.
const RECHECK: Duration = Duration::from_secs(2);

/// A state change, published by whoever changed it.
#[derive(Debug, Clone)]
pub struct StateChange {
    /// Which submission.
    pub tid: TxId,
}

fn is_final(state: SubState) -> bool {
    matches!(
        state,
        SubState::Stored | SubState::Rejected | SubState::Expired | SubState::Failed
    )
}

fn event(view: &SubmissionView) -> Event {
    Event::default()
        .event("state")
        .json_data(view)
        .unwrap_or_else(|_| Event::default().event("error").data("internal error"))
}

struct Follow {
    state: AppState,
    tid: TxId,
    rx: broadcast::Receiver<StateChange>,
    last: Option<SubState>,
    done: bool,
}

/// The stream handler.
pub async fn follow(
    State(state): State<AppState>,
    caller: Caller,
    Path(tid): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let tid: TxId = tid.parse()?;
    // Subscribe before the first read, so no change between the two is missed.
    let rx = state.events.subscribe();
    let first = view(&state, &tid).await?;
    let privileged = matches!(caller.0.role, Role::Admin | Role::Auditor);
    if !privileged && first.1 != caller.0.uid.as_str() {
        return Err(super::submissions::not_found());
    }
    let opening = event(&first.0);
    let start = Follow {
        last: Some(first.0.state),
        done: is_final(first.0.state),
        state,
        tid,
        rx,
    };
    let later = futures_util::stream::unfold(start, |mut f| async move {
        loop {
            if f.done {
                return None;
            }
            let woke = tokio::time::timeout(RECHECK, f.rx.recv()).await;
            match woke {
                Ok(Ok(change)) if change.tid != f.tid => continue,
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                _ => {}
            }
            let Ok((v, _)) = view(&f.state, &f.tid).await else {
                return None;
            };
            if Some(v.state) == f.last {
                continue;
            }
            f.last = Some(v.state);
            f.done = is_final(v.state);
            return Some((Ok(event(&v)), f));
        }
    });
    let stream = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok(opening) }),
        later,
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
