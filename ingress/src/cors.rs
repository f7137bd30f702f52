//! CORS for browser apps on other origins (a mobile web app, a partner's site):
//! only the origins of `ingress.cors_origins` (env `APP__INGRESS__CORS_ORIGINS`,
//! comma-separated), and no CORS headers at all when that list is empty (the
//! default). The layer sits outside the rate limiter, so a preflight is answered
//! before it spends any budget or reaches a handler.

use axum::http::{HeaderName, HeaderValue, Method, header};
use std::time::Duration;
use tower_http::cors::CorsLayer;

/// How long a browser may reuse a preflight answer.
const MAX_AGE_SECS: u64 = 600;

/// The CORS layer of `origins` (blank entries ignored, unparseable ones dropped),
/// or `None` when no origin is configured.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("traceparent"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
            ])
            .max_age(Duration::from_secs(MAX_AGE_SECS)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn preflight(origins: &[&str], origin: &str) -> axum::response::Response {
        let origins: Vec<String> = origins.iter().map(|o| (*o).to_owned()).collect();
        // A fallback, not a route: ingress registers routes only through utoipa.
        let app = Router::new().fallback(|| async { "ok" });
        let app = match layer(&origins) {
            Some(cors) => app.layer(cors),
            None => app,
        };
        let req = Request::builder()
            .method(Method::OPTIONS)
            .uri("/v1/movies")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,idempotency-key",
            )
            .body(Body::empty())
            .unwrap();
        app.oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn a_configured_origin_gets_its_preflight_answered() {
        let res = preflight(&["https://app.example.com"], "https://app.example.com").await;
        assert_eq!(res.status(), StatusCode::OK);
        let h = res.headers();
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        let allowed = h[header::ACCESS_CONTROL_ALLOW_HEADERS].to_str().unwrap();
        assert!(allowed.contains("idempotency-key"), "{allowed}");
    }

    #[tokio::test]
    async fn another_origin_and_an_empty_list_get_no_cors_headers() {
        let other = preflight(&["https://app.example.com"], "https://evil.example").await;
        assert!(
            !other
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
        let none = preflight(&[" ", ""], "https://app.example.com").await;
        assert!(
            !none
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        );
        assert!(
            !none
                .headers()
                .contains_key(header::ACCESS_CONTROL_ALLOW_METHODS)
        );
    }
}
