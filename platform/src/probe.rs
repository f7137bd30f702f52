//! The metrics listener every long-running process serves on its own address (not
//! the public API's): `GET /metrics` (the Prometheus text of
//! [`crate::telemetry::prometheus`]) and `GET /healthz` (`ok` while the process
//! runs, the liveness probe). Keeping it off the API port keeps the metrics (route
//! names, queue depths, error counts) away from the public and lets the network
//! policy open it to Prometheus only.

use axum::Router;
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Binds `listen` ("" = no listener). A failure to bind is logged, not fatal: a
/// second process on one host (a standby) must not fail over a metrics port; it
/// runs without one, and says which setting (`setting`, e.g.
/// `APP__WORKERS__METRICS_LISTEN`) to change.
pub async fn bind(listen: &str, setting: &str) -> Option<TcpListener> {
    if listen.is_empty() {
        return None;
    }
    match TcpListener::bind(listen).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(
                listen,
                error = %e,
                "metrics listener not started; set {setting} to a free address"
            );
            None
        }
    }
}

/// `/metrics` and `/healthz`.
pub fn router() -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
}

async fn metrics() -> axum::response::Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::telemetry::prometheus().render(),
    )
        .into_response()
}

/// Serves [`router`] on `listener` until `stop` is cancelled.
pub async fn serve(listener: TcpListener, stop: CancellationToken) {
    serve_with(listener, Router::new(), stop).await;
}

/// Like [`serve`], with the process's own routes of this listener (`extra`) too.
pub async fn serve_with(listener: TcpListener, extra: Router, stop: CancellationToken) {
    if let Err(e) = axum::serve(listener, router().merge(extra))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
    {
        tracing::warn!(error = %e, "metrics listener failed");
    }
}
