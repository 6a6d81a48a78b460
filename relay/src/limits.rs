//! The relay's bounds on what clients can make it do or hold: per-client rate limits (a
//! token bucket per IP address and one per signed-in user, in memory), the depth of the
//! anchoring queue past which submissions are refused (backpressure), and the numbers the
//! listener applies ([`crate::listener`]: the connection cap and the header and body
//! timeouts).
//!
//! The buckets are the imperative shell's: [`Bucket::take`] is pure arithmetic over the
//! instants it is given, and only [`per_client`] and the handlers read the clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use mediblock_protocol::ids::UserId;

use crate::AppState;
use crate::error::ApiError;

/// Default of `max_queue`: submissions are refused while this many wait for the chain.
pub const DEFAULT_MAX_QUEUE: u64 = 1_000;
/// Default of `rate_limit_per_second`: requests each client and each user may make per
/// second on the limited routes, sustained.
pub const DEFAULT_RATE_PER_SECOND: u32 = 20;
/// Default of `rate_limit_burst`: requests each may make at once before the rate applies.
pub const DEFAULT_BURST: u32 = 100;
/// Default of `max_connections`: connections served at once.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1_024;
/// Default of `header_timeout_seconds`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of `body_timeout_seconds`.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many clients (or users) the limiter tracks at once. When the table is full, buckets
/// that have refilled are forgotten (a full bucket is what a new one starts as); if none
/// has, a request from a client not in the table is refused until one has.
pub const MAX_TRACKED: usize = 65_536;
/// How often, at most, a full table is swept for refilled buckets.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// What `Retry-After` says when the anchoring queue is full: the worker anchors a record in
/// about a second on the embedded chain, so a few seconds let the queue move.
const QUEUE_RETRY_AFTER_SECS: u64 = 5;

/// The configured bounds (`max_queue`, `rate_limit_per_second`, `rate_limit_burst`,
/// `max_connections`, `header_timeout_seconds`, `body_timeout_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Submissions are refused (`503 queue_full`) while this many records wait for the
    /// chain (queued or sent).
    pub max_queue: u64,
    /// Sustained requests per second per client IP address and per user on the limited
    /// routes (sign-in, tickets, submissions, erasure).
    pub rate_per_second: u32,
    /// Requests a client or user may make at once before the rate applies.
    pub burst: u32,
    /// Connections the listener serves at once; one more is closed as soon as it is
    /// accepted.
    pub max_connections: usize,
    /// How long a connection may take to send a request's line and headers (and how long a
    /// kept-alive connection may wait idle for its next request) before it is closed.
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive in full, from its headers
    /// (`408 request_timeout`).
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_queue: DEFAULT_MAX_QUEUE,
            rate_per_second: DEFAULT_RATE_PER_SECOND,
            burst: DEFAULT_BURST,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// A token bucket: `burst` tokens at most, refilled at `rate` per second; a request takes
/// one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            at: now,
        }
    }

    fn refill(&mut self, rate: u32, burst: u32, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(burst));
        self.at = self.at.max(now);
    }

    /// Takes a token at `now`, or says how long until one is there.
    pub fn take(&mut self, rate: u32, burst: u32, now: Instant) -> Result<(), Duration> {
        self.refill(rate, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / f64::from(rate.max(1)),
            ))
        }
    }

    /// Whether the bucket has refilled completely by `now` (forgetting it changes nothing).
    pub fn is_full(&self, rate: u32, burst: u32, now: Instant) -> bool {
        let mut b = *self;
        b.refill(rate, burst, now);
        b.tokens >= f64::from(burst)
    }
}

/// The buckets of one kind of key, at most [`MAX_TRACKED`] of them.
#[derive(Debug)]
struct Buckets<K> {
    map: HashMap<K, Bucket>,
    swept_at: Option<Instant>,
}

impl<K> Default for Buckets<K> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            swept_at: None,
        }
    }
}

impl<K: Hash + Eq> Buckets<K> {
    fn take(&mut self, key: K, rate: u32, burst: u32, now: Instant) -> Result<(), Duration> {
        if let Some(bucket) = self.map.get_mut(&key) {
            return bucket.take(rate, burst, now);
        }
        if self.map.len() >= MAX_TRACKED {
            let due = self
                .swept_at
                .is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY);
            if due {
                self.swept_at = Some(now);
                self.map.retain(|_, b| !b.is_full(rate, burst, now));
            }
            if self.map.len() >= MAX_TRACKED {
                return Err(SWEEP_EVERY);
            }
        }
        let mut bucket = Bucket::full(burst, now);
        let taken = bucket.take(rate, burst, now);
        self.map.insert(key, bucket);
        taken
    }
}

/// Whom a per-client bucket counts: an IPv4 address, or an IPv6 address's /64 network (one
/// host usually holds a whole /64, so counting single IPv6 addresses would not limit it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(std::net::Ipv4Addr),
    V6Network(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4),
                None => ClientKey::V6Network((v6.to_bits() >> 64) as u64),
            },
        }
    }
}

/// The bounds and the rate limiter's buckets, shared by every request.
#[derive(Debug, Default)]
pub struct Limiter {
    limits: Limits,
    clients: Mutex<Buckets<ClientKey>>,
    users: Mutex<Buckets<String>>,
}

impl Limiter {
    /// A limiter for these bounds, with no client seen yet.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The configured bounds.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Takes a token from `ip`'s bucket at `now`, or `429 rate_limited`.
    pub fn check_client(&self, ip: IpAddr, now: Instant) -> Result<(), ApiError> {
        let taken = self
            .clients
            .lock()
            .map_err(|_| ApiError::internal("rate limiter lock poisoned"))?
            .take(
                ip.into(),
                self.limits.rate_per_second,
                self.limits.burst,
                now,
            );
        taken.map_err(rate_limited)
    }

    /// Takes a token from `uid`'s bucket at `now`, or `429 rate_limited`.
    pub fn check_user(&self, uid: &UserId, now: Instant) -> Result<(), ApiError> {
        let taken = self
            .users
            .lock()
            .map_err(|_| ApiError::internal("rate limiter lock poisoned"))?
            .take(
                uid.as_str().to_owned(),
                self.limits.rate_per_second,
                self.limits.burst,
                now,
            );
        taken.map_err(rate_limited)
    }
}

fn rate_limited(wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::client(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!("too many requests; try again in {seconds} s"),
    )
    .with_retry_after(seconds)
}

/// Middleware of the limited routes: one token from the bucket of the request's peer
/// address. A request without one (an in-process call, as in the HTTP tests) is not
/// limited per client; the listener ([`crate::listener::serve`]) always gives one.
pub async fn per_client(State(limiter): State<Arc<Limiter>>, req: Request, next: Next) -> Response {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>()
        && let Err(e) = limiter.check_client(peer.ip(), Instant::now())
    {
        return e.into_response();
    }
    next.run(req).await
}

/// Backpressure: `503 queue_full` with `Retry-After` while [`Limits::max_queue`] records
/// wait for the chain. Called before a submission writes anything. Two submissions checked
/// at once may both pass, so the queue can pass the limit by the number of requests in
/// flight, never more.
pub(crate) async fn ensure_queue_room(state: &AppState) -> Result<(), ApiError> {
    let depth = state
        .store
        .queue_depth()
        .await
        .map_err(ApiError::internal)?;
    let max = state.limits.limits().max_queue;
    if depth >= max {
        return Err(ApiError::client(
            StatusCode::SERVICE_UNAVAILABLE,
            "queue_full",
            format!(
                "{depth} records wait for the chain (the limit is {max}); nothing was stored, \
                 try again shortly"
            ),
        )
        .with_retry_after(QUEUE_RETRY_AFTER_SECS));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::full(3, t0);
        for _ in 0..3 {
            assert_eq!(b.take(2, 3, t0), Ok(()));
        }
        // Empty: the next token comes in 1 / rate = 0.5 s.
        let wait = b.take(2, 3, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(b.take(2, 3, t0 + Duration::from_millis(499)).is_err());
        assert_eq!(b.take(2, 3, t0 + Duration::from_secs(1)), Ok(()));
        // Refilling stops at the burst.
        let later = t0 + Duration::from_secs(60);
        assert!(b.is_full(2, 3, later));
        for _ in 0..3 {
            assert_eq!(b.take(2, 3, later), Ok(()));
        }
        assert!(b.take(2, 3, later).is_err());
    }

    #[test]
    fn an_instant_before_the_last_one_does_not_refill_or_panic() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = Bucket::full(1, t0);
        assert_eq!(b.take(1, 1, t0), Ok(()));
        assert!(b.take(1, 1, t0 - Duration::from_secs(5)).is_err());
    }

    #[test]
    fn clients_are_counted_apart_and_ipv6_by_network() {
        let limiter = Limiter::new(Limits {
            rate_per_second: 1,
            burst: 2,
            ..Limits::default()
        });
        let now = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..2 {
            limiter.check_client(a, now).unwrap();
        }
        let refused = limiter.check_client(a, now).unwrap_err();
        assert_eq!(
            (refused.status(), refused.code(), refused.retry_after()),
            (StatusCode::TOO_MANY_REQUESTS, "rate_limited", Some(1))
        );
        limiter.check_client(b, now).unwrap();
        // Two addresses of one /64 share a bucket; an IPv4-mapped address is its IPv4 one.
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        limiter.check_client(one, now).unwrap();
        limiter.check_client(other, now).unwrap();
        assert!(limiter.check_client(one, now).is_err());
        let mapped: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        limiter.check_client(mapped, now).unwrap();
        assert!(limiter.check_client(b, now).is_err());
        // Users have buckets of their own.
        let uid = UserId::new("nurse.bo").unwrap();
        limiter.check_user(&uid, now).unwrap();
        limiter.check_user(&uid, now).unwrap();
        assert_eq!(
            limiter.check_user(&uid, now).unwrap_err().code(),
            "rate_limited"
        );
    }

    #[test]
    fn the_table_of_clients_is_bounded() {
        let mut buckets = Buckets::<u32>::default();
        let now = Instant::now();
        for key in 0..u32::try_from(MAX_TRACKED).unwrap() {
            buckets.take(key, 1, 2, now).unwrap();
        }
        // Full of buckets that have not refilled: a new client must wait.
        assert_eq!(buckets.take(u32::MAX, 1, 2, now), Err(SWEEP_EVERY));
        assert_eq!(buckets.map.len(), MAX_TRACKED);
        // Once they have refilled they are forgotten, and new clients get in.
        let later = now + Duration::from_secs(5);
        assert_eq!(buckets.take(u32::MAX, 1, 2, later), Ok(()));
        assert_eq!(buckets.map.len(), 1);
    }
}
