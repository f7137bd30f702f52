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
