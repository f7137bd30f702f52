//! `build(settings)` then `run_until_stopped()`. `build` binds the port, so tests
//! pass port 0 and read the real one back.

use crate::auth::{Authenticator, TokenKeys};
use crate::catalog::Catalog;
use crate::openapi::{self, ApiDoc, ServedDocs};
use crate::problem;
use crate::ratelimit::{self, RateLimiter};
use crate::routes::{
    account, admin, bookings, catalog, door, health, ops, payments, release, tickets,
};
use crate::serve::ServeLimits;
use crate::shows::ShowCache;
use crate::state::{AppState, Draining};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::{Extension, Router};
use contracts::TraceParent;
use platform::Settings;
use platform::amqp::ConfirmedPublisher;
use platform::cache::Keys;
use platform::commands::CommandBus;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub struct Application {
    listener: TcpListener,
    /// `/metrics` and `/healthz` apart from the API (`ingress.metrics_listen`).
    metrics: Option<TcpListener>,
    router: Router,
    addr: SocketAddr,
    limits: ServeLimits,
    /// HTTPS (`ingress.tls_cert_path`/`tls_key_path`), or plain HTTP.
    tls: Option<tokio_rustls::TlsAcceptor>,
    draining: Draining,
    drain_delay: Duration,
}

/// Number of AMQP channels ingress publishes over.
const PUBLISH_CHANNELS: usize = 4;

impl Application {
    /// Connects to the stores (waiting for them with bounded backoff), declares the
    /// broker topology and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // Install the metrics recorder before anything records.
        let _ = platform::telemetry::prometheus();
        // The HTTP clients' TLS (the gateway's, the OpenID providers'; reqwest is built
        // without a provider) uses ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Bad TLS files stop the start before anything connects.
        let tls = crate::tls::acceptor(&settings.ingress)?;
        let db = platform::db::pool(&settings.database)?;
        let redis = platform::cache::connect(&settings.redis).await?;
        let topology = settings.topology();
        {
            let conn = platform::amqp::connect_with_retry(
                &settings.amqp.url,
                "ingress-setup",
                Duration::from_secs(30),
            )
            .await?;
            let ch = conn.create_channel().await?;
            platform::layout::declare_queues(&ch, &db, &topology, settings.amqp.queue_shape())
                .await?;
            drop(conn.close(200, "setup done".into()).await);
        }
        let publisher = ConfirmedPublisher::new(
            &settings.amqp.url,
            "ingress",
            PUBLISH_CHANNELS,
            Duration::from_millis(settings.amqp.publish_confirm_timeout_ms),
        );
        let keys = Keys::new(settings.redis.key_prefix.clone());
        let tokens = TokenKeys::new(
            &settings.auth.jwt_secret,
            settings.auth.access_token_ttl_secs,
        );
        let limiter = if settings.rate_limit.enabled {
            Some(Arc::new(RateLimiter::new(
                &settings.rate_limit,
                tokens.clone(),
                redis.clone(),
                keys.clone(),
            )?))
        } else {
            None
        };
        let auth = Authenticator::new(tokens.clone(), db.clone(), &settings.auth.mfa_roles())?;
        let mailer = crate::mail::AccountMailer::from_settings(&settings.notifier)?;
        let layout = platform::layout::LayoutWatch::spawn(&db, topology.clone());
        let state = AppState {
            auth,
            mailer,
            sms: platform::sms::SmsClient::from_settings(&settings.notifier)?,
            mfa_secrets: ::auth::totp::SecretBox::new(&settings.auth.mfa_key_material()),
            oidc: crate::oidc::Providers::new(&settings.auth.oidc_providers)?,
            keys,
            shows: ShowCache::new(
                db.clone(),
                Duration::from_secs(settings.ingress.show_cache_ttl_secs),
            ),
            tokens,
            limiter,
            catalog: Catalog::new(db.clone(), &settings.catalog),
            accepted: crate::accepted::AcceptanceLog::start(db.clone()),
            scopes: crate::scope::ScopeCache::new(
                Duration::from_millis(settings.door.scope_cache_ttl_ms),
                crate::scope::SCOPE_CACHE_MAX,
            ),
            settings: Arc::new(settings),
            db,
            redis,
            commands: CommandBus::new(publisher.clone(), topology.clone(), layout),
            publisher,
            topology,
            draining: Draining::default(),
        };
        let listener = bind(&state.settings.ingress.listen).await?;
        let metrics = platform::probe::bind(
            &state.settings.ingress.metrics_listen,
            "APP__INGRESS__METRICS_LISTEN",
        )
        .await;
        let addr = listener.local_addr()?;
        let s = &state.settings.ingress;
        state
            .oidc
            .set_callback_base(if s.public_base_url.trim().is_empty() {
                format!("{}://{addr}", s.scheme())
            } else {
                s.public_url()
            });
        let limits = ServeLimits {
            header_read_timeout: Duration::from_millis(s.header_read_timeout_ms),
            header_bytes_max: s.header_bytes_max,
            connections_max: s.connections_max,
        };
        let drain_delay = Duration::from_millis(s.drain_delay_ms);
        let draining = state.draining.clone();
        let router = router(state);
        Ok(Self {
            listener,
            metrics,
            router,
            addr,
            limits,
            tls,
            draining,
            drain_delay,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https` when serving TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The address `/metrics` is served on, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` resolves; then `/readyz` answers 503 for
    /// `ingress.drain_delay_ms` while requests are still served (so load balancers
    /// stop sending new ones), and only then the listener closes and in-flight
    /// requests drain, with the connection limits of [`crate::serve`].
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(addr = %self.addr, metrics = ?self.metrics_addr(), "ingress listening");
        let metrics_stop = tokio_util::sync::CancellationToken::new();
        if let Some(listener) = self.metrics {
            tokio::spawn(platform::probe::serve(listener, metrics_stop.clone()));
        }
        // The metrics listener stops with the API's (dropping this cancels it).
        let _metrics_stop = metrics_stop.drop_guard();
        let (draining, delay) = (self.draining, self.drain_delay);
        let stop = async move {
            shutdown.await;
            draining.start();
            if !delay.is_zero() {
                tracing::info!(
                    delay_ms = delay.as_millis(),
                    "draining: not ready, still serving"
                );
                tokio::time::sleep(delay).await;
            }
        };
        crate::serve::serve(self.listener, self.router, self.limits, self.tls, stop).await
    }
}

/// Pending connections the kernel queues before `accept` (tokio's default is 1024:
/// a burst of thousands of clients connecting at once overflowed it in the benchmark).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `listen` ("host:port") with a deep accept backlog.
async fn bind(listen: &str) -> std::io::Result<TcpListener> {
    let addr = tokio::net::lookup_host(listen)
        .await?
        .next()
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{listen} resolves to no address"),
            )
        })?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Every route of the API, each with its OpenAPI entry: a handler is registered
/// only through `routes!`, which also records its `#[utoipa::path]` in the document.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs_page))
        .merge(health::router())
        .merge(account::router())
        .merge(admin::router())
        .merge(bookings::router())
        .merge(payments::router())
        .merge(release::router())
        .merge(tickets::router())
        .merge(door::router())
        .merge(ops::router())
        .merge(catalog::router())
}

/// The OpenAPI document of [`api_routes`], with the shared error answers added.
pub fn openapi_document() -> serde_json::Value {
    document_of(api_routes().split_for_parts().1)
}

fn document_of(api: utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut doc = serde_json::to_value(api).unwrap_or_default();
    openapi::add_common_responses(&mut doc);
    doc
}

/// The router with every layer. The rate limiter runs inside the request id and
/// trace layers (a 429 carries `x-request-id` and is logged in the request's span)
/// and inside `track_http` (429s show in the HTTP metrics), but before the body is
/// read or any handler runs: a limited request does no work.
pub fn router(state: AppState) -> Router {
    let s = &state.settings.ingress;
    let body_limit = s.body_limit_bytes;
    let timeout = Duration::from_millis(s.request_timeout_ms);
    let (routes, api) = api_routes().split_for_parts();
    let docs = Arc::new(ServedDocs::new(&document_of(api)));
    // The web app's pages and assets (same origin as the API: no CORS needed).
    let routes = routes
        .merge(web::router())
        .fallback(problem::not_found)
        .method_not_allowed_fallback(problem::method_not_allowed)
        .layer(Extension(docs))
        // The role layers of the admin and ops routers read the authenticator here.
        .layer(Extension(state.auth.clone()))
        .layer(DefaultBodyLimit::max(body_limit));
    let routes = match state.limiter.clone() {
        Some(limiter) => routes.layer(axum::middleware::from_fn_with_state(
            limiter,
            ratelimit::enforce,
        )),
        None => routes,
    };
    let routes = match crate::cors::layer(&state.settings.ingress.cors_origins) {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    routes
        .layer(axum::middleware::from_fn(track_http))
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            crate::deadline::enforce,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let rid = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let trace = req.extensions().get::<TraceParent>().copied();
                let trace_id = trace.map(|t| t.trace_id_hex()).unwrap_or_default();
                let span = tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %rid, trace_id = %trace_id);
                platform::trace::attach(&span, trace);
                span
            }),
        )
        .layer(axum::middleware::from_fn(trace_context))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(axum::middleware::from_fn(drop_invalid_request_id))
        .with_state(state)
}

/// Removes an `x-request-id` that is not 1-128 visible ASCII characters, so that
/// [`SetRequestIdLayer`] makes a fresh one: the id is copied into every log line and
/// into the AMQP headers of the commands the request causes, and must stay small.
async fn drop_invalid_request_id(mut req: Request, next: Next) -> Response {
    let headers = req.headers_mut();
    let valid = headers
        .get_all(contracts::topology::REQUEST_ID_HEADER)
        .iter()
        .all(|v| contracts::topology::is_valid_request_id(v.as_bytes()));
    if !valid
        || headers
            .get_all(contracts::topology::REQUEST_ID_HEADER)
            .iter()
            .count()
            > 1
    {
        headers.remove(contracts::topology::REQUEST_ID_HEADER);
    }
    next.run(req).await
}

/// Continues the caller's W3C trace (a valid `traceparent` header) or starts one, and
/// runs the request inside it: every command or message it publishes carries it on.
async fn trace_context(mut req: Request, next: Next) -> Response {
    let trace = req
        .headers()
        .get(contracts::trace::TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceParent::parse)
        .map(|t| t.child())
        .unwrap_or_else(TraceParent::new_root);
    req.extensions_mut().insert(trace);
    platform::trace::scope(Some(trace), next.run(req)).await
}

/// Records `http_request_duration_seconds{method, route, status}`.
async fn track_http(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let res = next.run(req).await;
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => res.status().as_u16().to_string(),
    )
    .record(started.elapsed().as_secs_f64());
    res
}
