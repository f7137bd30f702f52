//! What every handler shares, built once by [`crate::startup::Application::build`].

use crate::auth::{Authenticator, TokenKeys};
use crate::catalog::Catalog;
use crate::ratelimit::RateLimiter;
use crate::shows::ShowCache;
use axum::extract::FromRef;
use contracts::Topology;
use platform::Settings;
use platform::amqp::ConfirmedPublisher;
use platform::cache::Keys;
use platform::cache::Redis;
use platform::commands::CommandBus;
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: PgPool,
    pub redis: Redis,
    pub keys: Keys,
    pub publisher: ConfirmedPublisher,
    /// Commands into the show partitions, and pay requests to the saga.
    pub commands: CommandBus,
    pub topology: Topology,
    pub shows: ShowCache,
    pub tokens: TokenKeys,
    /// Checks bearer tokens against the account's session generation and the
    /// two-factor policy.
    pub auth: Authenticator,
    /// Account emails (verification, password reset).
    pub mailer: crate::mail::AccountMailer,
    /// Phone-verification codes by SMS (`None`: no provider configured).
    pub sms: Option<platform::sms::SmsClient>,
    /// Seals the TOTP secrets of two-step sign-in in the database.
    pub mfa_secrets: ::auth::totp::SecretBox,
    /// The OpenID providers accepted for sign-in.
    pub oidc: crate::oidc::Providers,
    /// The shared rate limiter; `None` when `rate_limit.enabled` is off.
    pub limiter: Option<Arc<RateLimiter>>,
    /// The catalog's reads, with their memoised lists.
    pub catalog: Catalog,
    /// Set once shutdown has begun: `/readyz` answers 503 from then on.
    pub draining: Draining,
    /// Records every booking answered 202, in batches (see [`crate::accepted`]).
    pub accepted: crate::accepted::AcceptanceLog,
    /// Theater scopes of admins and staff, trusted for `door.scope_cache_ttl_ms`.
    pub scopes: crate::scope::ScopeCache,
}

impl AppState {
    /// The configured ticket keys. Built per call: deriving two Ed25519 keys costs
    /// microseconds, and it keeps the signing keys out of the shared state.
    pub fn ticket_keys(&self) -> Result<tickets::TicketKeys, crate::problem::ApiError> {
        tickets::TicketKeys::from_config(
            &self.settings.notifier.ticket_current_kid,
            &self.settings.notifier.ticket_signing_keys,
            &self.settings.notifier.ticket_public_keys,
        )
        .map_err(|e| crate::problem::ApiError::Internal(anyhow::anyhow!("ticket keys: {e}")))
    }
}

/// Whether this instance is shutting down (see `ingress.drain_delay_ms`).
#[derive(Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl FromRef<AppState> for TokenKeys {
    fn from_ref(s: &AppState) -> TokenKeys {
        s.tokens.clone()
    }
}

impl FromRef<AppState> for crate::scope::ScopeCache {
    fn from_ref(s: &AppState) -> crate::scope::ScopeCache {
        s.scopes.clone()
    }
}

impl FromRef<AppState> for PgPool {
    fn from_ref(s: &AppState) -> PgPool {
        s.db.clone()
    }
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(s: &AppState) -> Authenticator {
        s.auth.clone()
    }
}
