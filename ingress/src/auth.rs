//! Bearer tokens: HS256 JWTs whose subject is the user id and which carry the role.

use crate::problem::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use contracts::UserId;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The role a token carries (the vocabulary lives in `contracts`).
pub use contracts::Role;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: uuid::Uuid,
    role: Role,
    iat: u64,
    exp: u64,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    ttl_secs: u64,
}

impl TokenKeys {
    pub fn new(secret: &SecretString, ttl_secs: u64) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        Self {
            encoding: Arc::new(EncodingKey::from_secret(bytes)),
            decoding: Arc::new(DecodingKey::from_secret(bytes)),
            ttl_secs,
        }
    }

    /// A token for `user` with `role`, valid for the configured lifetime.
    pub fn mint(&self, user: UserId, role: Role) -> Result<String, jsonwebtoken::errors::Error> {
        let now = u64::try_from(platform::now_millis().0 / 1000).unwrap_or(0);
        let claims = Claims {
            sub: user.0,
            role,
            iat: now,
            exp: now + self.ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The caller named by the request's `Authorization: Bearer` token, when the
    /// header is present and the token is valid (signature, expiry).
    pub fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))?;
        self.check(token.trim())
    }

    fn check(&self, token: &str) -> Option<Caller> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &v).ok()?;
        Some(Caller {
            user_id: UserId(data.claims.sub),
            role: data.claims.role,
        })
    }
}

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
        keys.caller(&parts.headers).ok_or(ApiError::Unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_checks_and_a_tampered_one_does_not() {
        let keys = TokenKeys::new(&SecretString::from("x".repeat(32)), 60);
        let user = UserId(uuid::Uuid::from_u128(7));
        let t = keys.mint(user, Role::Operator).unwrap();
        let c = keys.check(&t).unwrap();
        assert_eq!(c.user_id, user);
        assert_eq!(c.role, Role::Operator);
        let other = TokenKeys::new(&SecretString::from("y".repeat(32)), 60);
        assert!(other.check(&t).is_none());
        assert!(keys.check(&format!("{t}x")).is_none());
    }
}
