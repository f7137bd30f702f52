//! Failed logins per target account: whatever IPs they come from, an account takes
//! at most `rate_limit.failed_logins_per_hour` wrong passwords an hour (a burst of
//! that many, refilled evenly), on top of the per-IP `auth` budget.
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
    subject: String,
    budget: Budget,
}

impl RateLimiter {
    fn failed_logins_budget(&self) -> Budget {
        Budget::per_window(self.failed_logins_per_hour, Duration::from_secs(3600))
    }

    /// Counts a login attempt on the account of `email` (normalised): `429` when
    /// its failed-login budget is spent, before any password work.
    pub async fn login_attempt(&self, email: &str) -> Result<Option<LoginAttempt<'_>>, ApiError> {
        if self.skipping() {
            return Ok(None);
        }
        let subject = format!("account:{}", hex::encode(Sha256::digest(email.as_bytes())));
        let budget = self.failed_logins_budget();
        match self.spend(BUDGET_NAME, &subject, budget).await {
            Ok(d) if d.allowed => Ok(Some(LoginAttempt {
                limiter: self,
                subject,
                budget,
            })),
            Ok(d) => {
                metrics::counter!("rate_limited_total", "class" => BUDGET_NAME).increment(1);
                Err(ApiError::RateLimited {
                    retry_after_secs: ceil_secs(d.retry_after).max(1),
                })
            }
            Err(e) => {
                self.failed_open(&e);
                Ok(None)
            }
        }
    }
}

impl LoginAttempt<'_> {
    /// The password was right: the attempt does not count.
    pub async fn succeeded(self) {
        let l = self.limiter;
        let key = l.keys.rate_limit(BUDGET_NAME, &self.subject);
        let mut conn = l.redis.clone();
        let script = redis::Script::new(GIVE_BACK);
        let mut call = script.key(key);
        call.arg(self.budget.interval_us);
        let given: Result<Result<i64, _>, _> =
            tokio::time::timeout(l.timeout, call.invoke_async(&mut conn)).await;
        if !matches!(given, Ok(Ok(_))) {
            // At worst the account keeps one counted attempt too many.
            tracing::debug!("could not give back a login attempt");
        }
    }
}
