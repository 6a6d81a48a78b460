//! The relay's HTTP listener: the router served over hyper's HTTP/1.1 connections, with the
//! listener's bounds of [`Limits`]:
//!
//! - **a connection cap**: at most `max_connections` connections are served at once; one
//!   more is accepted and closed at once (so its client sees the end of the stream instead
//!   of waiting in the kernel's backlog);
//! - **a header timeout**: a connection that takes longer than `header_timeout` to send a
//!   request's line and headers — including a new connection that sends nothing, and a
//!   kept-alive one idle between requests — is closed (hyper's `header_read_timeout`, which
//!   only runs with a timer, so `axum::serve`, which sets none, never applies it);
//! - **a body deadline**: a request body that has not arrived in full `body_timeout` after
//!   its headers fails to read, and the handler answers `408 request_timeout`. It is one
//!   deadline for the whole body, not a pause between its pieces
//!   (`tower_http::timeout::RequestBodyTimeoutLayer`'s), which a client sending one byte
//!   at a time would never trip.
//!
//! Each request carries its peer's address (`ConnectInfo<SocketAddr>`) for the per-client
//! rate limits ([`crate::limits::per_client`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Bytes, HttpBody};
use axum::extract::ConnectInfo;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;

use crate::limits::Limits;

/// How long open connections may take to finish once shutdown is asked for (a stream of
/// server-sent events may never end by itself).
const DRAIN: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (out of file descriptors, …), so a persistent failure
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets open
/// connections finish their requests for a bounded time.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(
                max = limits.max_connections,
                "connection closed: at the cap"
            );
            drop(stream);
            continue;
        };
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            stopping.clone(),
            permit,
        ));
    }
    let _ = stop.send(true);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::info!("connections still open at shutdown are dropped");
    }
    Ok(())
}

/// Serves one connection; its permit is given back when it ends.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let body_timeout = limits.body_timeout;
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(|body| axum::body::Body::new(Deadline::new(body, body_timeout)));
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = http.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let stop = async move {
        // Dropped at once: a watch `Ref` must not be held across an await.
        let _ = stopping.wait_for(|stop| *stop).await.map(drop);
    };
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        () = stop => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        // Timeouts and clients that go away: routine, not the relay's failure.
        tracing::debug!(error = %e, "connection ended");
    }
}

/// The error a request body gives when its [`Limits::body_timeout`] passed before it
/// arrived in full.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// A request body with one deadline for all of it.
struct Deadline<B> {
    body: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<B> Deadline<B> {
    fn new(body: B, timeout: Duration) -> Self {
        Self {
            body,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<B> HttpBody for Deadline<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
