//! Failed logins per target account: whatever IPs they come from, an account takes
//! at most `rate_limit.failed_logins_per_hour` wrong passwords an hour (a burst of
//! that many, refilled evenly), on top of the per-IP `auth` budget. Failed logins
//! per client IP, over every account: at most `rate_limit.failed_logins_per_ip_per_hour`
//! (credential stuffing from one address). Both only count failures, so the `auth`
//! budget itself can be generous: thirty people behind one NAT signing in correctly
//! are never refused.
//!
//! Each attempt spends one before the password is checked, so concurrent guesses
//! cannot overspend, and a successful login gives it back: only failures count. The
//! budget is keyed by a hash of the normalised email, known account or not (the
//! answer must not tell which emails exist), so no email is stored in Redis. Redis
//! slow or down: the login goes on unlimited, like every other limit.

use super::{Budget, RateLimiter, ceil_secs};
use crate::problem::ApiError;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The name of the budget in Redis keys and metrics.
const BUDGET_NAME: &str = "failed_logins";
/// The per-IP one.
const IP_BUDGET_NAME: &str = "failed_logins_ip";

/// Gives back one spent attempt (KEYS[1]: the cell; ARGV[1]: the interval, us).
const GIVE_BACK: &str = r"
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local new_tat = tat - tonumber(ARGV[1])
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%d', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
end
return 1
";

/// One counted login attempt; [`LoginAttempt::succeeded`] gives it back.
pub struct LoginAttempt<'a> {
    limiter: &'a RateLimiter,
    /// The budgets spent: (name, subject, budget).
    spent: Vec<(&'static str, String, Budget)>,
}

/// The client address of a request under `/v1/auth`, as the limiter identified it
/// (put in the request's extensions by [`super::enforce`]).
#[derive(Debug, Clone)]
pub struct ClientSubject(pub super::Subject);

impl RateLimiter {
    fn failed_logins_budget(&self) -> Budget {
        Budget::per_window(self.failed_logins_per_hour, Duration::from_secs(3600))
    }

    fn failed_logins_ip_budget(&self) -> Budget {
        Budget::per_window(
            self.failed_logins_per_ip_per_hour,
            Duration::from_secs(3600),
        )
    }

    /// Counts a login attempt on the account of `email` (normalised), and from the
    /// client `ip` when known: `429` when either failed-login budget is spent, before
    /// any password work.
    pub async fn login_attempt(
        &self,
        email: &str,
        ip: Option<&ClientSubject>,
    ) -> Result<Option<LoginAttempt<'_>>, ApiError> {
        if self.skipping() {
            return Ok(None);
        }
        let mut attempt = LoginAttempt {
            limiter: self,
            spent: Vec::with_capacity(2),
        };
        let account = format!("account:{}", hex::encode(Sha256::digest(email.as_bytes())));
        let mut cells = vec![(BUDGET_NAME, account, self.failed_logins_budget())];
        if let Some(ClientSubject(subject)) = ip {
            cells.push((
                IP_BUDGET_NAME,
                subject.to_string(),
                self.failed_logins_ip_budget(),
            ));
        }
        for (name, subject, budget) in cells {
            match self.spend(name, &subject, budget).await {
                Ok(d) if d.allowed => attempt.spent.push((name, subject, budget)),
                Ok(d) => {
                    // The budgets spent before this one are given back: a refused
                    // attempt makes no guess.
                    attempt.succeeded().await;
                    metrics::counter!("rate_limited_total", "class" => name).increment(1);
                    return Err(ApiError::RateLimited {
                        retry_after_secs: ceil_secs(d.retry_after).max(1),
                    });
                }
                Err(e) => {
                    self.failed_open(&e);
                    break;
                }
            }
        }
        Ok(Some(attempt))
    }
}

impl LoginAttempt<'_> {
    /// The password was right: the attempt does not count.
    pub async fn succeeded(self) {
        let l = self.limiter;
        for (name, subject, budget) in &self.spent {
            let key = l.keys.rate_limit(name, subject);
            let mut conn = l.redis.clone();
            let script = redis::Script::new(GIVE_BACK);
            let mut call = script.key(key);
            call.arg(budget.interval_us);
            let given: Result<Result<i64, _>, _> =
                tokio::time::timeout(l.timeout, call.invoke_async(&mut conn)).await;
            if !matches!(given, Ok(Ok(_))) {
                // At worst the account (or IP) keeps one counted attempt too many.
                tracing::debug!("could not give back a login attempt");
            }
        }
    }
}
