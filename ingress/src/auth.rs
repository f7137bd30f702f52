//! The caller of a request: the `Caller` extractor over the `auth` crate's tokens.
//! A missing or invalid bearer token is `401` problem+json.

use crate::problem::ApiError;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use contracts::UserId;

pub use ::auth::{Claims, Role, TokenKeys};

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub user_id: UserId,
    pub role: Role,
}

impl Caller {
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
    TokenKeys: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let keys = <TokenKeys as axum::extract::FromRef<S>>::from_ref(state);
        caller(&keys, &parts.headers).ok_or(ApiError::Unauthenticated)
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

/// The caller named by the request's bearer token, when there is a valid one.
pub fn caller(keys: &TokenKeys, headers: &HeaderMap) -> Option<Caller> {
    keys.bearer(headers).map(Caller::from)
}

/// Role checks as one layer per area: the admin and ops routers are wrapped in
/// `route_layer(from_fn(..))` with these, so every handler in them runs only for a
/// caller of the right role (`401` without a valid token, `403` with another role),
/// before its body is read. `router` puts the [`TokenKeys`] in the request's
/// extensions.
pub mod layer {
    use super::{Caller, Role, TokenKeys, caller};
    use crate::problem::ApiError;
    use axum::extract::Request;
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Response};

    fn check(req: &Request, allowed: &[Role]) -> Result<Caller, ApiError> {
        let keys = req
            .extensions()
            .get::<TokenKeys>()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("token keys not in extensions")))?;
        let c = caller(keys, req.headers()).ok_or(ApiError::Unauthenticated)?;
        c.require(allowed)?;
        Ok(c)
    }

    async fn only(allowed: &[Role], req: Request, next: Next) -> Response {
        match check(&req, allowed) {
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
