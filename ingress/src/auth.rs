//! The caller of a request: the `Caller` extractor over the `auth` crate's tokens.
//! A missing or invalid bearer token is `401` problem+json.
//!
//! **Ending every login at once.** A password change or reset must make the access
//! tokens already handed out useless immediately, on every ingress instance, although
//! they are stateless JWTs valid for `auth.access_token_ttl_secs`. Each account has a
//! session generation (`users.auth_epoch`); a token carries the generation it was
//! issued in (`gen`), and [`Authenticator::authenticate`] refuses a token whose
//! generation is older than the account's. The check reads PostgreSQL for every
//! authenticated request (reads of concurrent requests share one query,
//! [`crate::epochs`]): the database every instance shares, so
//! there is no cache to invalidate and no window in which another instance still
//! accepts the token (a per-instance cache or a Redis copy would need exactly that
//! invalidation, and fail open when it is lost). Anonymous requests (the catalog,
//! most of the traffic) pay nothing. A deleted account's tokens stop working too,
//! whether they came from a login or were minted with the key (`bookctl mint-token`).

use crate::epochs::Epochs;
use crate::problem::ApiError;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use contracts::UserId;
use sqlx::PgPool;
use std::sync::Arc;

pub use ::auth::{Amr, Claims, Role, TokenKeys};

/// Checks bearer tokens: signature and expiry ([`TokenKeys`]), the account's session
/// generation (PostgreSQL), and the two-factor policy of privileged routes.
#[derive(Clone)]
pub struct Authenticator {
    pub keys: TokenKeys,
    epochs: Epochs,
    /// Roles that need a second factor on the admin and ops routes.
    mfa_roles: Arc<[Role]>,
}

impl Authenticator {
    /// Starts the reader of session generations on `db` (needs a runtime).
    pub fn new(keys: TokenKeys, db: PgPool, mfa_roles: &[String]) -> anyhow::Result<Self> {
        let mfa_roles = mfa_roles
            .iter()
            .map(|r| {
                r.parse::<Role>()
                    .map_err(|e| anyhow::anyhow!("auth.mfa_required_roles: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            keys,
            epochs: Epochs::start(db),
            mfa_roles: mfa_roles.into(),
        })
    }

    /// The caller of a request with a valid, current bearer token, else `401`.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<(Caller, Claims), ApiError> {
        let claims = self.keys.bearer(headers).ok_or(ApiError::Unauthenticated)?;
        let current = self.epochs.current(claims.user_id.0).await?;
        let valid = match current {
            Some(epoch) => claims.epoch >= epoch,
            // No stored account: a deleted one, whose tokens must stop working, or
            // none ever. Only an operator token minted with the key itself may name
            // no account (operators' tools, the load generator's readers); any
            // other role acts for an account (books, pays, is scoped to theaters),
            // and that account must exist.
            None => claims.amr == Amr::Key && claims.role == Role::Operator,
        };
        if !valid {
            return Err(ApiError::Unauthenticated);
        }
        Ok((Caller::from(claims), claims))
    }

    /// Whether the role needs a second factor.
    pub fn mfa_required(&self, role: Role) -> bool {
        self.mfa_roles.contains(&role)
    }

    /// `403 mfa_enrollment_required` when the caller's role needs a second factor and
    /// the token was not issued with one.
    pub fn require_mfa_policy(&self, claims: &Claims) -> Result<(), ApiError> {
        if self.mfa_required(claims.role) && !claims.amr.is_strong() {
            Err(ApiError::MfaEnrollmentRequired)
        } else {
            Ok(())
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: UserId,
    pub role: Role,
}

impl Caller {
    /// `403 email_not_verified` when `auth.require_verified_email_to_pay` is on and
    /// the caller's email is not verified; what every way of paying calls first.
    pub async fn may_pay(
        &self,
        settings: &platform::settings::AuthSettings,
        db: &PgPool,
    ) -> Result<(), ApiError> {
        if !settings.require_verified_email_to_pay {
            return Ok(());
        }
        let verified: Option<bool> =
            sqlx::query_scalar("select email_verified_at is not null from users where id = $1")
                .bind(self.user_id.0)
                .fetch_optional(db)
                .await?;
        if verified == Some(true) {
            Ok(())
        } else {
            Err(ApiError::EmailNotVerified)
        }
    }

    /// Staff may read every booking.
    pub fn is_staff(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Operator)
    }

    /// `Ok` when the caller has one of `roles`, else `403`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Authenticator: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = <Authenticator as axum::extract::FromRef<S>>::from_ref(state);
        Ok(auth.authenticate(&parts.headers).await?.0)
    }
}

/// The caller with the claims of its token (how it authenticated, its login).
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub Caller, pub Claims);

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    Authenticator: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = <Authenticator as axum::extract::FromRef<S>>::from_ref(state);
        let (caller, claims) = auth.authenticate(&parts.headers).await?;
        Ok(Authenticated(caller, claims))
    }
}

impl From<Claims> for Caller {
    fn from(c: Claims) -> Self {
        Caller {
            user_id: c.user_id,
            role: c.role,
        }
    }
}

/// Role checks as one layer per area: the admin and ops routers are wrapped in
/// `route_layer(from_fn(..))` with these, so every handler in them runs only for a
/// caller of the right role (`401` without a valid token, `403` with another role,
/// `403 mfa_enrollment_required` for a role that needs a second factor and signed in
/// without one), before its body is read. `router` puts the [`Authenticator`] in the
/// request's extensions.
pub mod layer {
    use super::{Authenticator, Caller, Role};
    use crate::problem::ApiError;
    use axum::extract::Request;
    use axum::http::HeaderMap;
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Response};

    async fn check(
        auth: Option<Authenticator>,
        headers: HeaderMap,
        allowed: &[Role],
    ) -> Result<Caller, ApiError> {
        let auth = auth.ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("authenticator not in extensions"))
        })?;
        let (c, claims) = auth.authenticate(&headers).await?;
        c.require(allowed)?;
        auth.require_mfa_policy(&claims)?;
        Ok(c)
    }

    async fn only(allowed: &[Role], req: Request, next: Next) -> Response {
        // Owned copies: the request (its body) is not `Sync`, so no borrow of it may
        // be held across the database read.
        let auth = req.extensions().get::<Authenticator>().cloned();
        match check(auth, req.headers().clone(), allowed).await {
            Ok(_) => next.run(req).await,
            Err(e) => e.into_response(),
        }
    }

    /// Theater admins.
    pub async fn admins(req: Request, next: Next) -> Response {
        only(&[Role::Admin], req, next).await
    }

    /// Staff of the platform: admins and operators.
    pub async fn staff(req: Request, next: Next) -> Response {
        only(&[Role::Admin, Role::Operator], req, next).await
    }

    /// At the door: door staff, admins and operators (handlers then check the
    /// theater scope, [`crate::scope::Access`]).
    pub async fn door(req: Request, next: Next) -> Response {
        only(&[Role::Admin, Role::Staff, Role::Operator], req, next).await
    }
}
