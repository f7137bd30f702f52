//! Shared rate limits: one budget per caller across all of `/v1` (API.md: 100
//! requests a minute per user, per client IP when anonymous), and a stricter budget
//! on top for `/v1/auth/*`; kept in Redis so that every ingress instance draws on
//! the same ones. A request spends every budget of its class, the stricter first:
//! a login spends the `auth` budget and the caller's `/v1` budget, a booking, a
//! search or a read only the `/v1` one. (Budgets per route class that added up, 320
//! a minute where the contract says 100, were replaced by this.)
//!
//! The algorithm is GCRA (the generic cell rate algorithm, as in `redis-cell`): a
//! budget of `n` requests per minute is one request every `60/n` s with a burst of
//! `n`. Redis stores one number per caller and budget, the theoretical arrival time
//! (TAT) of the next request; one Lua script reads the Redis clock, decides and moves
//! the TAT atomically, so concurrent requests on several instances can never
//! overspend. The key expires when the budget is full again: an idle caller costs
//! nothing.
//!
//! The caller is the user of a valid bearer token, else the client IP (an invalid
//! token counts as anonymous: forging tokens buys no fresh budget). Callers whose
//! role is exempt (the load generator, operators' tools) are never limited.
//! `/v1/auth/*` is always limited by client IP, token or not: N accounts' tokens must
//! not buy N budgets of login guesses or registrations. Failed logins are also
//! limited per target account ([`login`]), whatever the IP.
//!
//! Redis slow or down: the request is served (fail open), a warning is logged at
//! most every few seconds and `rate_limit_errors_total` counts it; for a second
//! after a failure requests skip the limiter instead of each waiting out the
//! timeout. Limiting is a protection; an outage of its store must not become an
//! outage (or a slowdown) of the API.

use crate::auth::{Role, TokenKeys};
use crate::problem::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::cache::Keys;
use platform::cache::Redis;
use platform::settings::RateLimitSettings;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub mod login;

/// The route classes. Each class spends the budgets [`RouteClass::budgets`] names,
/// set by `rate_limit.per_minute.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteClass {
    /// `/v1/auth/*`: logins and registrations, the target of credential stuffing:
    /// the `auth` budget, then the `/v1` one.
    Auth,
    /// The rest of `/v1`: the one `/v1` budget (`default`).
    Default,
}

impl RouteClass {
    pub const ALL: [RouteClass; 2] = [RouteClass::Auth, RouteClass::Default];

    /// The name used in settings, Redis keys and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteClass::Auth => "auth",
            RouteClass::Default => "default",
        }
    }

    /// The budgets a request of this class spends, the stricter first.
    pub fn budgets(self) -> &'static [RouteClass] {
        match self {
            RouteClass::Auth => &[RouteClass::Auth, RouteClass::Default],
            RouteClass::Default => &[RouteClass::Default],
        }
    }
}

/// Budgets of earlier versions, one per route class, now covered by `default`.
const RETIRED: [&str; 2] = ["bookings", "search"];

/// Paths under `/v1` that are never limited: the OpenAPI document (static), and the
/// payment gateway's webhook, which is authenticated by its signature and must never
/// be throttled (a dropped webhook delays a confirmation until reconciliation).
const UNLIMITED: [&str; 2] = ["/v1/openapi.json", "/v1/payments/webhook"];

/// `path` is `prefix` or lies below it (`/v1/shows` and `/v1/shows/x`, not `/v1/showsx`).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The class of a request, or `None` when it is not limited (everything outside
/// `/v1`: health, readiness, metrics, docs; and [`UNLIMITED`]).
pub fn classify(_method: &Method, path: &str) -> Option<RouteClass> {
    if !under(path, "/v1") || UNLIMITED.contains(&path) {
        return None;
    }
    Some(if under(path, "/v1/auth") {
        RouteClass::Auth
    } else {
        RouteClass::Default
    })
}

/// Whose budget a request spends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User(contracts::UserId),
    Ip(IpAddr),
    /// No token and no known peer address (a router served without connection
    /// info): all such requests share one budget.
    Unknown,
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::User(u) => write!(f, "user:{u}"),
            Subject::Ip(ip) => write!(f, "ip:{ip}"),
            Subject::Unknown => f.write_str("unknown"),
        }
    }
}

/// A budget: `per_minute` requests, as one every `interval`, with a burst of
/// `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub per_minute: u32,
    interval_us: u64,
}

impl Budget {
    fn new(per_minute: u32) -> Self {
        Self::per_window(per_minute, Duration::from_secs(60))
    }

    /// `n` requests per `window` (at least 1), as one every `window / n`, with a
    /// burst of `n`. (`per_minute` then holds `n`.)
    pub fn per_window(n: u32, window: Duration) -> Self {
        let n = n.max(1);
        Self {
            per_minute: n,
            interval_us: (u64::try_from(window.as_micros()).unwrap_or(u64::MAX) / u64::from(n))
                .max(1),
        }
    }
}

/// The pure part of the limiter: who the caller is and which budget applies.
#[derive(Clone)]
pub struct Policy {
    budgets: BTreeMap<RouteClass, Budget>,
    exempt: Vec<Role>,
    trust_forwarded_for: bool,
    tokens: TokenKeys,
}

/// Who a request is, for the limiter.
#[derive(Debug, PartialEq, Eq)]
pub enum Identity {
    Exempt,
    Limited(Subject),
}

impl Policy {
    /// Checks the settings: every role named, a positive budget for `default` and
    /// for every class given (a class left out uses `default`), no unknown class.
    pub fn new(s: &RateLimitSettings, tokens: TokenKeys) -> anyhow::Result<Self> {
        let known: Vec<&str> = RouteClass::ALL.iter().map(|c| c.as_str()).collect();
        if let Some(retired) = s.per_minute.keys().find(|k| RETIRED.contains(&k.as_str())) {
            anyhow::bail!(
                "rate_limit.per_minute.{retired}: no longer a budget of its own; one budget \
                 (rate_limit.per_minute.default) covers all of /v1, auth has its own on top"
            );
        }
        if let Some(unknown) = s.per_minute.keys().find(|k| !known.contains(&k.as_str())) {
            anyhow::bail!(
                "rate_limit.per_minute.{unknown}: unknown class (one of {})",
                known.join(", ")
            );
        }
        let per_minute = |class: RouteClass| {
            s.per_minute
                .get(class.as_str())
                .or_else(|| s.per_minute.get(RouteClass::Default.as_str()))
                .copied()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "rate_limit.per_minute.{} must be a positive number (or set default)",
                        class.as_str()
                    )
                })
        };
        let budgets = RouteClass::ALL
            .into_iter()
            .map(|c| Ok((c, Budget::new(per_minute(c)?))))
            .collect::<anyhow::Result<_>>()?;
        let exempt = s
            .exempt_roles
            .iter()
            .map(|r| {
                r.parse::<Role>()
                    .map_err(|e| anyhow::anyhow!("rate_limit.exempt_roles: {e}"))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            budgets,
            exempt,
            trust_forwarded_for: s.trust_forwarded_for,
            tokens,
        })
    }

    pub fn budget(&self, class: RouteClass) -> Budget {
        self.budgets[&class]
    }

    /// The user of a valid token (or exempt, by role); else the client IP: the
    /// first `X-Forwarded-For` entry when trusted and well-formed, else the peer.
    /// [`RouteClass::Auth`] is always the client IP: tokens do not count there.
    pub fn identify(
        &self,
        class: RouteClass,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Identity {
        if class != RouteClass::Auth
            && let Some(caller) = self.tokens.bearer(headers)
        {
            return if self.exempt.contains(&caller.role) {
                Identity::Exempt
            } else {
                Identity::Limited(Subject::User(caller.user_id))
            };
        }
        let forwarded = self
            .trust_forwarded_for
            .then(|| first_forwarded_for(headers))
            .flatten();
        Identity::Limited(match forwarded.or(peer.map(|p| p.ip())) {
            Some(ip) => Subject::Ip(ip),
            None => Subject::Unknown,
        })
    }
}

/// The client address a proxy put first in `X-Forwarded-For`.
fn first_forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    headers
        .get("x-forwarded-for")?
        .to_str()
        .ok()?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// GCRA over the Redis clock, atomically. KEYS[1]: the caller's cell; ARGV[1]: the
/// emission interval in microseconds; ARGV[2]: the burst (requests). Returns
/// {allowed 0|1, remaining, retry after (us), until the budget is full again (us)}.
const GCRA: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
";

/// Redis's verdict on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u64,
    pub retry_after: Duration,
    /// Until the whole budget is available again.
    pub reset: Duration,
}

impl Decision {
    fn from_reply(
        limit: u32,
        (allowed, remaining, retry_us, reset_us): (i64, i64, i64, i64),
    ) -> Self {
        let micros = |us: i64| Duration::from_micros(u64::try_from(us).unwrap_or(0));
        Self {
            allowed: allowed == 1,
            limit,
            remaining: u64::try_from(remaining).unwrap_or(0),
            retry_after: micros(retry_us),
            reset: micros(reset_us),
        }
    }

    /// `RateLimit-Limit`, `-Remaining`, `-Reset` (IETF draft fields; whole seconds,
    /// rounded up) and `RateLimit-Policy` (`<limit>;w=60`).
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let fields = [
            ("ratelimit-limit", u64::from(self.limit).to_string()),
            ("ratelimit-remaining", self.remaining.to_string()),
            ("ratelimit-reset", ceil_secs(self.reset).to_string()),
            ("ratelimit-policy", format!("{};w=60", self.limit)),
        ];
        for (name, value) in fields {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_micros()
        .div_ceil(1_000_000)
        .try_into()
        .unwrap_or(u64::MAX)
}

/// Least pause between two "Redis unavailable" warnings.
const WARN_EVERY: Duration = Duration::from_secs(5);
/// How long requests skip the limiter after Redis failed to answer.
const SKIP_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// The limiter: the [`Policy`] and the Redis cells.
pub struct RateLimiter {
    policy: Policy,
    redis: Redis,
    keys: Keys,
    script: redis::Script,
    timeout: Duration,
    started: Instant,
    /// Milliseconds after `started` of the last warning (0: none yet).
    last_warning_ms: AtomicU64,
    /// Milliseconds after `started` of the last failure (0: none yet).
    last_failure_ms: AtomicU64,
    /// Wrong passwords an account takes per hour ([`login`]).
    failed_logins_per_hour: u32,
    /// Wrong passwords one client IP makes per hour, over all accounts ([`login`]).
    failed_logins_per_ip_per_hour: u32,
}

impl RateLimiter {
    pub fn new(
        settings: &RateLimitSettings,
        tokens: TokenKeys,
        redis: Redis,
        keys: Keys,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            policy: Policy::new(settings, tokens)?,
            redis,
            keys,
            script: redis::Script::new(GCRA),
            timeout: Duration::from_millis(settings.timeout_ms),
            started: Instant::now(),
            last_warning_ms: AtomicU64::new(0),
            last_failure_ms: AtomicU64::new(0),
            failed_logins_per_hour: settings.failed_logins_per_hour,
            failed_logins_per_ip_per_hour: settings.failed_logins_per_ip_per_hour,
        })
    }

    /// Spends one request of `subject`'s budget in `class` (EVALSHA; the script is
    /// loaded by itself when Redis does not know it yet).
    pub async fn check(&self, class: RouteClass, subject: &Subject) -> anyhow::Result<Decision> {
        let budget = self.policy.budget(class);
        self.spend(class.as_str(), &subject.to_string(), budget)
            .await
    }

    /// Spends one request of `subject`'s `budget` named `name` (a route class, or
    /// another budget such as [`login`]'s).
    pub async fn spend(
        &self,
        name: &str,
        subject: &str,
        budget: Budget,
    ) -> anyhow::Result<Decision> {
        let key = self.keys.rate_limit(name, subject);
        let mut conn = self.redis.clone();
        let mut call = self.script.key(key);
        call.arg(budget.interval_us).arg(budget.per_minute);
        let reply = tokio::time::timeout(self.timeout, call.invoke_async(&mut conn))
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {:?}", self.timeout))??;
        Ok(Decision::from_reply(budget.per_minute, reply))
    }

    /// Milliseconds since the limiter started (at least 1: 0 means "never").
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Redis failed less than [`SKIP_AFTER_FAILURE`] ago: do not ask it now.
    fn skipping(&self) -> bool {
        let last = self.last_failure_ms.load(Ordering::Relaxed);
        last != 0 && self.now_ms().saturating_sub(last) < SKIP_AFTER_FAILURE.as_millis() as u64
    }

    /// Counts a failed check, skips Redis for a moment and (at most every
    /// [`WARN_EVERY`]) logs it.
    fn failed_open(&self, error: &anyhow::Error) {
        metrics::counter!("rate_limit_errors_total").increment(1);
        let now_ms = self.now_ms();
        self.last_failure_ms.store(now_ms, Ordering::Relaxed);
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && self
                .last_warning_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(error = %error, "rate limiter unavailable; serving requests unlimited");
        }
    }
}

/// The middleware: classifies, identifies, asks Redis; serves the request with the
/// `RateLimit-*` fields, or answers 429 without calling the handler.
pub async fn enforce(
    State(limiter): State<Arc<RateLimiter>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(class) = classify(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let Identity::Limited(subject) = limiter.policy.identify(class, req.headers(), peer) else {
        return next.run(req).await;
    };
    if class == RouteClass::Auth {
        // The login's per-IP failed-login budget ([`login`]) is this client's.
        req.extensions_mut()
            .insert(login::ClientSubject(subject.clone()));
    }
    if limiter.skipping() {
        return next.run(req).await;
    }
    // Every budget of the class, the stricter first; the first to refuse answers
    // (the later ones are not spent). The answer's `RateLimit-*` fields are those
    // of the budget closest to running out.
    let mut shown: Option<Decision> = None;
    let mut refused_by = None;
    for &budget in class.budgets() {
        let decision = match limiter.check(budget, &subject).await {
            Ok(d) => d,
            Err(e) => {
                limiter.failed_open(&e);
                return next.run(req).await;
            }
        };
        let tighter = shown.is_none_or(|s| decision.remaining < s.remaining);
        if !decision.allowed || tighter {
            shown = Some(decision);
        }
        if !decision.allowed {
            refused_by = Some(budget);
            break;
        }
    }
    let mut res = match refused_by {
        None => next.run(req).await,
        Some(budget) => {
            metrics::counter!("rate_limited_total", "class" => budget.as_str()).increment(1);
            let retry_after = shown.map(|d| d.retry_after).unwrap_or_default();
            ApiError::RateLimited {
                retry_after_secs: ceil_secs(retry_after).max(1),
            }
            .into_response()
        }
    };
    if let Some(decision) = shown {
        decision.write_headers(res.headers_mut());
    }
    res
}

#[cfg(test)]
mod tests;
