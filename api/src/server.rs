//! Serving the router over HTTP/1.1 with every connection bounded, so that no stranger can
//! exhaust the node's file descriptors, its concurrency or its memory by opening connections
//! and sending nothing, or sending slowly (docs/adr/0017-api-connection-and-request-limits.md):
//!
//! - at most [`ApiConfig::connections_max`] connections are open; at the cap, a new connection
//!   takes the place of the one that has waited longest for a request, and when none waits it
//!   is closed at once (each counted in the metrics);
//! - a connection that waits for a request longer than [`ApiConfig::idle_timeout_ms`], or whose
//!   request head takes longer than [`ApiConfig::header_read_timeout_ms`] from its first byte,
//!   is closed;
//! - an error of `accept` (too many open files, most often) pauses the loop briefly and is
//!   logged at most once per [`ACCEPT_ERROR_LOG_INTERVAL`]; it never ends the server.
//!
//! Bodies, the concurrency permits and the per-request timeout are the router's (`guard` in
//! `routes/router.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;

use crate::config::ApiConfig;
use crate::limits::{ACCEPT_ERROR_LOG_INTERVAL, ACCEPT_ERROR_PAUSE};
use crate::state::{ApiMetrics, ApiState};

/// Serves the API on `listener` until `shutdown` completes, then lets the open connections
/// finish their requests (the caller bounds how long it waits for that).
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let router = crate::router(state.clone());
    let config = state.config().clone();
    let registry = Arc::new(Registry::new(config.connections_max));
    let metrics = &state.inner.metrics;
    metrics
        .connections_max
        .store(config.connections_max as u64, Ordering::Relaxed);
    let (stop_sender, stop) = watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut accept_errors = AcceptErrorLog::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    ApiMetrics::bump(&metrics.connections_accepted);
                    let Some(connection) = registry.admit(metrics) else {
                        // Closing it at once costs the descriptor only for this moment.
                        ApiMetrics::bump(&metrics.connections_refused);
                        drop(stream);
                        continue;
                    };
                    connections.spawn(serve_connection(
                        stream,
                        peer,
                        router.clone(),
                        connection,
                        registry.clone(),
                        state.clone(),
                        stop.clone(),
                    ));
                }
                Err(error) => {
                    ApiMetrics::bump(&metrics.accept_errors);
                    accept_errors.record(&error);
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let _ = stop_sender.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// Logs accept errors at most once per interval, with how many were not logged.
#[derive(Debug, Default)]
struct AcceptErrorLog {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrorLog {
    fn record(&mut self, error: &std::io::Error) {
        let now = Instant::now();
        if self
            .last_logged
            .is_some_and(|at| now.duration_since(at) < ACCEPT_ERROR_LOG_INTERVAL)
        {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(
            %error,
            not_logged_since_last = self.unlogged,
            "API accept failed; pausing before the next accept"
        );
        self.last_logged = Some(now);
        self.unlogged = 0;
    }
}

/// "No time recorded" in the millisecond fields of [`Connection`].
const NEVER: u64 = u64::MAX;

/// One open connection, as the registry and its own task see it. Times are milliseconds
/// since the registry's start.
#[derive(Debug)]
struct Connection {
    id: u64,
    /// Requests whose answer has not been produced yet.
    requests_in_flight: AtomicU32,
    /// When the connection last started waiting for a request (accepted, or answered).
    idle_since_ms: AtomicU64,
    /// When the first byte of the next request arrived while waiting ([`NEVER`] if none).
    head_started_ms: AtomicU64,
    /// Told to close: another connection took its place.
    evicted: Notify,
}

impl Connection {
    fn is_idle(&self) -> bool {
        self.requests_in_flight.load(Ordering::Acquire) == 0
    }

    fn begin_request(&self) {
        self.requests_in_flight.fetch_add(1, Ordering::AcqRel);
    }

    fn end_request(&self, now_ms: u64) {
        if self.requests_in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.head_started_ms.store(NEVER, Ordering::Release);
            self.idle_since_ms.store(now_ms, Ordering::Release);
        }
    }

    fn bytes_arrived(&self, now_ms: u64) {
        if self.is_idle() {
            let _ = self.head_started_ms.compare_exchange(
                NEVER,
                now_ms,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// When this connection must be closed if nothing changes, and why; `None` while a
    /// request is being served (the router bounds that).
    fn deadline_ms(&self, config: &ApiConfig) -> Option<(u64, Expiry)> {
        if !self.is_idle() {
            return None;
        }
        match self.head_started_ms.load(Ordering::Acquire) {
            NEVER => Some((
                self.idle_since_ms
                    .load(Ordering::Acquire)
                    .saturating_add(config.idle_timeout_ms),
                Expiry::Idle,
            )),
            started => Some((
                started.saturating_add(config.header_read_timeout_ms),
                Expiry::SlowHead,
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expiry {
    Idle,
    SlowHead,
}

/// The open connections, bounded.
#[derive(Debug)]
struct Registry {
    started: Instant,
    connections_max: usize,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl Registry {
    fn new(connections_max: usize) -> Self {
        Registry {
            started: Instant::now(),
            connections_max,
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A place for a new connection: free, or taken from the connection that has waited
    /// longest for a request (told to close). `None` when every open connection is serving.
    fn admit(&self, metrics: &ApiMetrics) -> Option<Arc<Connection>> {
        let now_ms = self.now_ms();
        let Ok(mut open) = self.open.lock() else {
            return None;
        };
        if open.len() >= self.connections_max {
            let oldest = open
                .values()
                .filter(|connection| connection.is_idle())
                .min_by_key(|connection| connection.idle_since_ms.load(Ordering::Acquire))
                .map(|connection| connection.id)?;
            if let Some(evicted) = open.remove(&oldest) {
                evicted.evicted.notify_one();
                ApiMetrics::bump(&metrics.connections_evicted);
            }
        }
        let connection = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            requests_in_flight: AtomicU32::new(0),
            idle_since_ms: AtomicU64::new(now_ms),
            head_started_ms: AtomicU64::new(NEVER),
            evicted: Notify::new(),
        });
        open.insert(connection.id, connection.clone());
        metrics
            .connections_open
            .store(open.len() as u64, Ordering::Relaxed);
        Some(connection)
    }

    fn remove(&self, connection: &Connection, metrics: &ApiMetrics) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&connection.id);
            metrics
                .connections_open
                .store(open.len() as u64, Ordering::Relaxed);
        }
    }
}

/// The socket, noting when bytes arrive (the head deadline starts at the first one).
struct Watched {
    stream: TcpStream,
    connection: Arc<Connection>,
    registry: Arc<Registry>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buffer.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(context, buffer);
        if matches!(polled, Poll::Ready(Ok(()))) && buffer.filled().len() > before {
            self.connection.bytes_arrived(self.registry.now_ms());
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(context, bytes)
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(context)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    connection: Arc<Connection>,
    registry: Arc<Registry>,
    state: ApiState,
    mut stop: watch::Receiver<bool>,
) {
    let config = state.config().clone();
    let metrics = &state.inner.metrics;
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Watched {
        stream,
        connection: connection.clone(),
        registry: registry.clone(),
    });
    let service = {
        let connection = connection.clone();
        let registry = registry.clone();
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            connection.begin_request();
            let router = router.clone();
            let connection = connection.clone();
            let registry = registry.clone();
            async move {
                let response = router.oneshot(request.map(Body::new)).await;
                connection.end_request(registry.now_ms());
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // hyper's own head deadline counts from when it starts waiting for a head; the two
        // deadlines here together are its bound, so it only acts if this task stalls.
        .header_read_timeout(Duration::from_millis(
            config
                .idle_timeout_ms
                .saturating_add(config.header_read_timeout_ms),
        ))
        .max_buf_size(crate::limits::CONNECTION_READ_BUFFER_BYTES_MAX);
    let served = builder.serve_connection(io, service);
    let mut served = std::pin::pin!(served);
    let mut stopping = false;
    loop {
        let deadline = connection.deadline_ms(&config);
        let sleep_for = deadline.map_or(crate::limits::CONNECTION_CHECK_INTERVAL, |(at_ms, _)| {
            Duration::from_millis(at_ms.saturating_sub(registry.now_ms()))
                .min(crate::limits::CONNECTION_CHECK_INTERVAL)
        });
        tokio::select! {
            _ = served.as_mut() => break,
            () = connection.evicted.notified() => break,
            changed = stop.changed(), if !stopping => {
                if changed.is_err() || *stop.borrow() {
                    stopping = true;
                    served.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep(sleep_for) => {
                if let Some((at_ms, expiry)) = connection.deadline_ms(&config)
                    && registry.now_ms() >= at_ms
                {
                    ApiMetrics::bump(match expiry {
                        Expiry::Idle => &metrics.connections_closed_idle,
                        Expiry::SlowHead => &metrics.connections_closed_slow_head,
                    });
                    break;
                }
            }
        }
    }
    registry.remove(&connection, metrics);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(registry: &Registry, metrics: &ApiMetrics) -> Arc<Connection> {
        registry.admit(metrics).expect("a place")
    }

    #[test]
    fn at_the_cap_the_longest_waiting_connection_gives_way_and_busy_ones_do_not() {
        let metrics = ApiMetrics::default();
        let registry = Registry::new(2);
        let first = connection(&registry, &metrics);
        std::thread::sleep(Duration::from_millis(5));
        let second = connection(&registry, &metrics);
        assert_eq!(metrics.connections_open.load(Ordering::Relaxed), 2);
        // The first has waited longest: it is told to close and loses its place.
        let third = connection(&registry, &metrics);
        assert_eq!(metrics.connections_evicted.load(Ordering::Relaxed), 1);
        let open = registry.open.lock().unwrap();
        assert!(!open.contains_key(&first.id));
        assert!(open.contains_key(&second.id) && open.contains_key(&third.id));
        drop(open);
        // While both serve a request, a newcomer is refused.
        second.begin_request();
        third.begin_request();
        assert!(registry.admit(&metrics).is_none());
        assert_eq!(metrics.connections_open.load(Ordering::Relaxed), 2);
        // One answered: it waits again, and gives way.
        third.end_request(registry.now_ms());
        let fourth = connection(&registry, &metrics);
        assert!(!registry.open.lock().unwrap().contains_key(&third.id));
        registry.remove(&fourth, &metrics);
        assert_eq!(metrics.connections_open.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn deadlines_follow_the_connection_state() {
        let config = ApiConfig {
            idle_timeout_ms: 1_000,
            header_read_timeout_ms: 300,
            ..ApiConfig::default()
        };
        let metrics = ApiMetrics::default();
        let registry = Registry::new(4);
        let connection = connection(&registry, &metrics);
        let idle_since = connection.idle_since_ms.load(Ordering::Relaxed);
        assert_eq!(
            connection.deadline_ms(&config),
            Some((idle_since + 1_000, Expiry::Idle))
        );
        // A first byte starts the head deadline; more bytes do not move it.
        connection.bytes_arrived(idle_since + 50);
        connection.bytes_arrived(idle_since + 250);
        assert_eq!(
            connection.deadline_ms(&config),
            Some((idle_since + 350, Expiry::SlowHead))
        );
        // Serving: no connection deadline (the router bounds the request).
        connection.begin_request();
        connection.bytes_arrived(idle_since + 400);
        assert_eq!(connection.deadline_ms(&config), None);
        // Answered: waiting again, from then.
        connection.end_request(idle_since + 900);
        assert_eq!(
            connection.deadline_ms(&config),
            Some((idle_since + 1_900, Expiry::Idle))
        );
    }
}
