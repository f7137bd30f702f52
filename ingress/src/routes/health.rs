//! `/healthz`, `/readyz` (outside `/v1`, no auth). `/metrics` is served on its own
//! listener (`ingress.metrics_listen`), never on the API's port.

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Alive: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "`{status: \"ok\"}`", body = Object)))]
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Ready: PostgreSQL, RabbitMQ and Redis all answer, and the instance is not
/// shutting down.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Every dependency answers", body = Object),
        (status = 503, description = "A dependency does not answer, or the instance is draining after SIGTERM", body = Object),
    ))]
pub async fn readyz(State(app): State<AppState>) -> Response {
    if app.draining.is_draining() {
        let body = json!({"status": "draining"});
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    let timeout = std::time::Duration::from_secs(2);
    let pg = tokio::time::timeout(timeout, sqlx::query("select 1").execute(&app.db))
        .await
        .is_ok_and(|r| r.is_ok());
    let amqp = tokio::time::timeout(timeout, app.publisher.is_connected())
        .await
        .unwrap_or(false);
    let mut redis = app.redis.clone();
    let redis_ok = tokio::time::timeout(
        timeout,
        redis::cmd("PING").query_async::<String>(&mut redis),
    )
    .await
    .is_ok_and(|r| r.is_ok());
    let ok = pg && amqp && redis_ok;
    let body = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "checks": {"postgres": pg, "rabbitmq": amqp, "redis": redis_ok},
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Health and readiness (outside `/v1`). `/metrics` is not on the API's port: see
/// `ingress.metrics_listen` ([`platform::probe`]).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}
