//! Redis: what may be lost and rebuilt (the "queued" markers, the rate limits' cells,
//! later seat maps). Every key carries the deployment's (or test's) prefix.
//!
//! Every Redis client of the project connects through [`connect`] or [`connect_lazy`]
//! with the `redis.*` settings: one Redis (`redis.url`), or, with `redis.sentinels`
//! set, the primary that the Sentinels name for `redis.master_name`, found again
//! after a failover (see [`Redis`]).

use crate::settings::RedisSettings;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    RedisResult, TlsCertificates, TlsMode, Value,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Least time between two questions to the Sentinels (every failing command of
/// every task would otherwise ask at once).
const ASK_SENTINELS_EVERY: Duration = Duration::from_millis(250);

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(3)
}

/// A Redis connection that reconnects by itself: a [`ConnectionManager`] to one
/// Redis, or to the primary the Sentinels name. In the Sentinel case, a command
/// that fails as if the primary were gone (connection refused or dropped, a
/// timeout, `READONLY` from a demoted primary) makes it ask the Sentinels; when
/// they name another primary, the next commands go there. The failing command
/// itself returns its error (callers already treat Redis as best effort), so
/// nothing is sent twice.
#[derive(Clone)]
pub struct Redis {
    current: Arc<Mutex<ConnectionManager>>,
    sentinel: Option<Arc<SentinelSource>>,
}

struct SentinelSource {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    /// The primary's address now in use, and when the Sentinels were last asked.
    state: Mutex<(String, Option<Instant>)>,
}

/// The Sentinels' addresses of `s` (`redis.sentinels`, comma-separated).
fn sentinels(s: &RedisSettings) -> Vec<String> {
    s.sentinels
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            if a.contains("://") {
                a.to_owned()
            } else {
                format!("redis://{a}")
            }
        })
        .collect()
}

impl Redis {
    async fn open(s: &RedisSettings, lazy: bool) -> RedisResult<Self> {
        let addrs = sentinels(s);
        let certs = certificates(s)?;
        if addrs.is_empty() {
            let client = match certs {
                Some(certs) if s.url.starts_with("rediss://") => {
                    redis::Client::build_with_tls(s.url.as_str(), certs)?
                }
                Some(_) => return Err(invalid("redis.tls_ca_path is for a rediss:// url")),
                None => redis::Client::open(s.url.as_str())?,
            };
            return Ok(Self {
                current: Arc::new(Mutex::new(manager(client, lazy).await?)),
                sentinel: None,
            });
        }
        let mut sentinel = sentinel_client(s, &addrs, certs)?;
        let client = sentinel.async_get_client().await?;
        let addr = client.get_connection_info().addr().to_string();
        Ok(Self {
            current: Arc::new(Mutex::new(manager(client, lazy).await?)),
            sentinel: Some(Arc::new(SentinelSource {
                sentinel: tokio::sync::Mutex::new(sentinel),
                state: Mutex::new((addr, None)),
            })),
        })
    }

    fn conn(&self) -> ConnectionManager {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// After `e`: with Sentinels, and when `e` looks like a lost primary, asks them
    /// (at most every [`ASK_SENTINELS_EVERY`]) and moves to the primary they name.
    async fn after_error(&self, e: &redis::RedisError) {
        let Some(src) = &self.sentinel else { return };
        let lost = e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly);
        if !lost {
            return;
        }
        {
            let mut st = src
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if st.1.is_some_and(|at| at.elapsed() < ASK_SENTINELS_EVERY) {
                return;
            }
            st.1 = Some(Instant::now());
        }
        let client = {
            let mut sentinel = src.sentinel.lock().await;
            match sentinel.async_get_client().await {
                Ok(c) => c,
                Err(err) => {
                    tracing::warn!(error = %err, "redis: the sentinels name no primary");
                    return;
                }
            }
        };
        let addr = client.get_connection_info().addr().to_string();
        if src
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            == addr
        {
            return;
        }
        match ConnectionManager::new_lazy_with_config(client, config()) {
            Ok(m) => {
                tracing::warn!(primary = %addr, "redis: the sentinels name a new primary; switching");
                metrics::counter!("redis_primary_switches_total").increment(1);
                *self
                    .current
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = m;
                src.state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0 = addr;
            }
            Err(err) => tracing::warn!(error = %err, "redis: connecting to the new primary failed"),
        }
    }
}

/// The certificate authority to trust for `rediss://` (`redis.tls_ca_path`, PEM)
/// instead of the public ones.
fn certificates(s: &RedisSettings) -> RedisResult<Option<TlsCertificates>> {
    if s.tls_ca_path.is_empty() {
        return Ok(None);
    }
    let pem = std::fs::read(&s.tls_ca_path).map_err(|e| {
        RedisError::from((
            ErrorKind::InvalidClientConfig,
            "redis.tls_ca_path",
            format!("{}: {e}", s.tls_ca_path),
        ))
    })?;
    Ok(Some(TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    }))
}

fn invalid(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, what))
}

/// A client of the Sentinels at `addrs` that names the primary of
/// `redis.master_name`. Sentinels written `rediss://` are spoken to over TLS, and then
/// so are the data nodes they name (Redis's `tls-replication`: one cluster, one
/// scheme); the certificates are verified, against `redis.tls_ca_path` when set.
fn sentinel_client(
    s: &RedisSettings,
    addrs: &[String],
    certs: Option<TlsCertificates>,
) -> RedisResult<SentinelClient> {
    let nodes = addrs
        .iter()
        .map(|a| Ok(a.as_str().into_connection_info()?.addr().clone()))
        .collect::<RedisResult<Vec<ConnectionAddr>>>()?;
    let tls = nodes
        .iter()
        .filter(|a| matches!(a, ConnectionAddr::TcpTls { .. }))
        .count();
    if tls != 0 && tls != nodes.len() {
        return Err(invalid(
            "redis.sentinels: all rediss:// or none (the cluster speaks one scheme)",
        ));
    }
    if tls == 0 && certs.is_some() {
        return Err(invalid("redis.tls_ca_path is for rediss:// sentinels"));
    }
    let mut b = SentinelClientBuilder::new(nodes, &s.master_name, SentinelServerType::Master)?;
    if tls != 0 {
        b = b
            .set_client_to_sentinel_tls_mode(TlsMode::Secure)
            .set_client_to_redis_tls_mode(TlsMode::Secure);
        if let Some(certs) = certs {
            b = b
                .set_client_to_sentinel_certificates(certs.clone())
                .set_client_to_redis_certificates(certs);
        }
    }
    b.build()
}

async fn manager(client: redis::Client, lazy: bool) -> RedisResult<ConnectionManager> {
    if lazy {
        ConnectionManager::new_lazy_with_config(client, config())
    } else {
        ConnectionManager::new_with_config(client, config()).await
    }
}

impl ConnectionLike for Redis {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let res = self.conn().req_packed_command(cmd).await;
            if let Err(e) = &res {
                self.after_error(e).await;
            }
            res
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let res = self
                .conn()
                .req_packed_commands(pipeline, offset, count)
                .await;
            if let Err(e) = &res {
                self.after_error(e).await;
            }
            res
        })
    }

    fn get_db(&self) -> i64 {
        self.conn().get_db()
    }
}

/// Connects on first use and reconnects by itself, for processes whose Redis use is
/// best effort and must not wait for Redis to start (with Sentinels, asking them for
/// the primary is the one thing done now).
pub async fn connect_lazy(s: &RedisSettings) -> RedisResult<Redis> {
    Redis::open(s, true).await
}

/// Connects now; reconnects by itself afterwards.
pub async fn connect(s: &RedisSettings) -> RedisResult<Redis> {
    Redis::open(s, false).await
}

/// Key naming.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The "queued" marker of a booking the sequencer has not decided yet.
    pub fn queued(&self, booking: contracts::BookingId) -> String {
        format!("{}booking:queued:{booking}", self.prefix)
    }

    /// The rate-limit cell of one caller (`user:<id>` or `ip:<addr>`) in one route class.
    pub fn rate_limit(&self, class: &str, subject: &str) -> String {
        format!("{}ratelimit:{class}:{subject}", self.prefix)
    }

    /// A started provider sign-in, by the SHA-256 of its `state` (hex).
    pub fn oidc_state(&self, state_hash: &str) -> String {
        format!("{}oidc:state:{state_hash}", self.prefix)
    }

    /// The live seat map of a show (see [`crate::seatmap`]).
    pub fn seatmap(&self, show: contracts::ShowId) -> String {
        format!("{}seatmap:{show}", self.prefix)
    }
}
