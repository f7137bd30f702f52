//! The HTTP/1.1 server loop, with the limits `axum::serve` does not offer:
//!
//! - a header-read timeout: a connection must send a complete request head within
//!   [`ServeLimits::header_read_timeout`] of opening, and of its previous response
//!   (hyper starts the same timer whenever it waits for a head, so it is also the
//!   idle keep-alive timeout); otherwise it is closed (slowloris, idle hoarding);
//! - a cap on the size of a request head ([`ServeLimits::header_bytes_max`]):
//!   larger ones are answered `431` and closed;
//! - a connection cap ([`ServeLimits::connections_max`]): at the cap, ingress stops
//!   accepting until a connection closes (new clients wait in the kernel's backlog).
//!
//! Each request carries its peer address (`ConnectInfo`): the rate limiter keys
//! anonymous callers by it. On shutdown the loop stops accepting, asks every
//! connection to finish its in-flight request, and waits for them.
//!
//! HTTP/1.1 only: the API sits behind load balancers that speak HTTP/1.1 to it, and
//! HTTP/2 (cleartext, prior knowledge) would need limits of its own. With a TLS
//! acceptor ([`crate::tls`]) each connection is HTTPS; its handshake must finish
//! within the header-read timeout too.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// The connection limits (`ingress.*` settings).
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub header_read_timeout: Duration,
    pub header_bytes_max: usize,
    pub connections_max: usize,
}

/// Least `header_bytes_max` (hyper's read buffer cannot be smaller).
const HEADER_BYTES_MIN: usize = 8192;

/// Pause after a failed `accept` (out of file descriptors, ...) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` (HTTPS with `tls`) until `shutdown` resolves, then
/// drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_bytes = limits.header_bytes_max.max(HEADER_BYTES_MIN);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(header_bytes)
        // The read buffer holds at least one head; twice leaves room for pipelining.
        .max_buf_size(header_bytes * 2);
    let http = Arc::new(http);
    let permits = Arc::new(Semaphore::new(limits.connections_max.max(1)));
    let tracker = TaskTracker::new();
    let stopping = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        drop(stream.set_nodelay(true));
        let service = router
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let http = http.clone();
        let stopping = stopping.clone();
        let tls = tls.clone();
        let handshake_within = limits.header_read_timeout;
        tracker.spawn(async move {
            let _permit = permit;
            let result = match tls {
                None => serve_connection(&http, stream, service, &stopping).await,
                Some(tls) => match tokio::time::timeout(handshake_within, tls.accept(stream)).await
                {
                    Ok(Ok(stream)) => serve_connection(&http, stream, service, &stopping).await,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                        Ok(())
                    }
                    Err(_) => {
                        tracing::debug!(peer = %peer, "no TLS handshake within the header-read timeout");
                        Ok(())
                    }
                },
            };
            if let Err(e) = result {
                tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stopping.cancel();
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Serves one connection until it closes, or until `stopping`: then its in-flight
/// request finishes and it closes.
async fn serve_connection<S, Svc>(
    http: &hyper::server::conn::http1::Builder,
    stream: S,
    service: Svc,
    stopping: &CancellationToken,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    Svc: tower::Service<
            axum::http::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    Svc::Future: Send + 'static,
{
    let conn = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        () = stopping.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}
