//! The web app, served by the platform's own HTTP server (same origin as `/v1`).
//!
//! - `assets/`: every file of the app (`index.html`, `css/app.css`, `js/**.js`) and
//!   vendored third-party scripts (`vendor/redoc`, for `/docs`), embedded into the
//!   binary at compile time ([`Assets`]); nothing is fetched from another host.
//! - [`router`]: `GET /assets/{path}` with its content type, a strong `ETag`
//!   (`If-None-Match` answers `304`), `Cache-Control: no-cache` (revalidate: the
//!   file names carry no hash) and gzip when the client accepts it; and
//!   `index.html` for every deep link of the app ([`PAGES`]): routing happens in the
//!   browser (History API).
//! - [`docs_page`]: the `/docs` page (Redoc, from `/v1/openapi.json`), for the API
//!   server to serve under its own route.
//!
//! Pages carry a `Content-Security-Policy` that allows only this origin, so the
//! browser itself refuses any request to another host.

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::Embed;
use tower_http::compression::CompressionLayer;

/// The embedded files of `web/assets/`.
#[derive(Embed)]
#[folder = "assets/"]
pub struct Assets;

/// The app's deep links: each answers `index.html`, and the app draws the page.
pub const PAGES: [&str; 13] = [
    "/",
    "/movies/{id}",
    "/events/{id}",
    "/shows/{id}",
    "/bookings/{id}",
    "/account",
    "/account/bookings",
    "/admin",
    "/door",
    "/ops",
    "/signin",
    "/reset-password",
    "/verify-email",
];

/// Policy of the app's pages: scripts, styles, requests and images from this origin
/// only (QR codes arrive as `data:` images).
pub const APP_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'; form-action 'self'";

/// Policy of `/docs`: Redoc injects its styles and runs its search in a blob worker.
pub const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; \
style-src 'self' 'unsafe-inline'; script-src 'self'; worker-src 'self' blob:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /assets/{path}` and the app's pages, compressed when the client accepts gzip.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new().route("/assets/{*path}", get(asset));
    for page in PAGES {
        r = r.route(page, get(index));
    }
    r.layer(CompressionLayer::new())
}

/// The docs page (`/docs`): Redoc rendering `/v1/openapi.json`, all from this origin.
pub fn docs_page() -> Response {
    page("docs.html", DOCS_CSP)
}

async fn index() -> Response {
    page("index.html", APP_CSP)
}

fn page(name: &str, csp: &'static str) -> Response {
    let Some(file) = Assets::get(name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(csp),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("same-origin"),
            ),
        ],
        Body::from(file.data.into_owned()),
    )
        .into_response()
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(file) = Assets::get(&path) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("no asset {path}"),
        )
            .into_response();
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let etag = HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"0\""));
    let common = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == etag.to_str().unwrap_or(""))
        });
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(&path)),
        )],
        Body::from(file.data.into_owned()),
    )
        .into_response()
}

/// The content type of an asset, by its extension (the app ships only these kinds).
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(uri: &str, headers: &[(&str, &str)]) -> Response {
        let mut req = Request::get(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        router::<()>()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn every_deep_link_answers_the_app_shell_with_a_same_origin_policy() {
        for uri in [
            "/",
            "/movies/x",
            "/shows/x",
            "/bookings/x",
            "/account",
            "/door",
            "/reset-password?token=x",
            "/verify-email?token=x",
        ] {
            let res = get(uri, &[]).await;
            assert_eq!(res.status(), StatusCode::OK, "{uri}");
            assert_eq!(
                res.headers()[header::CONTENT_TYPE],
                "text/html; charset=utf-8"
            );
            assert_eq!(res.headers()[header::CONTENT_SECURITY_POLICY], APP_CSP);
        }
    }

    #[tokio::test]
    async fn assets_carry_their_type_and_an_etag_that_revalidates_to_304() {
        let res = get("/assets/js/app.js", &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let etag = res.headers()[header::ETAG].to_str().unwrap().to_owned();
        let again = get("/assets/js/app.js", &[("if-none-match", &etag)]).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            get("/assets/css/app.css", &[]).await.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        assert_eq!(
            get("/assets/nope.js", &[]).await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn assets_are_gzipped_for_clients_that_accept_it() {
        let res = get(
            "/assets/vendor/redoc/redoc.standalone.js",
            &[("accept-encoding", "gzip")],
        )
        .await;
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
    }

    #[test]
    fn no_shipped_file_names_another_host_to_load_from() {
        for name in Assets::iter().filter(|n| !n.starts_with("vendor/")) {
            let file = Assets::get(&name).unwrap();
            let text = String::from_utf8_lossy(&file.data);
            for bad in [
                "src=\"http",
                "href=\"http",
                "url(http",
                "import(\"http",
                "from \"http",
                "fetch(\"http",
            ] {
                assert!(
                    !text.contains(bad),
                    "{name} loads from another host ({bad})"
                );
            }
        }
    }
}
