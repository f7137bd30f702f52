//! Who is calling: access tokens and passwords, with no HTTP server attached.
//!
//! - [`TokenKeys`]: HS256 JWTs whose subject is the user id and which carry the
//!   [`Role`]; [`TokenKeys::check`] answers the token's [`Claims`].
//! - [`passwords`]: argon2id hashing and verification on the blocking pool.
//!
//! Ingress builds its `Caller` extractor on top; `bookctl`, `loadgen` and the tests
//! mint tokens and hash passwords with the same code, without linking ingress.

pub mod passwords;

pub use contracts::Role;

use contracts::UserId;
use http::{HeaderMap, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a valid token says about its bearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub user_id: UserId,
    pub role: Role,
}

/// The JWT body on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Jwt {
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
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Jwt {
            sub: user.0,
            role,
            iat: now,
            exp: now + self.ttl_secs,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of the request's `Authorization: Bearer` token, when the header
    /// is present and the token is valid (signature, expiry).
    pub fn bearer(&self, headers: &HeaderMap) -> Option<Claims> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))?;
        self.check(token.trim())
    }

    /// The claims of `token` when its signature and expiry check out.
    pub fn check(&self, token: &str) -> Option<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        let data = jsonwebtoken::decode::<Jwt>(token, &self.decoding, &v).ok()?;
        Some(Claims {
            user_id: UserId(data.claims.sub),
            role: data.claims.role,
        })
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

    #[test]
    fn a_bearer_header_is_read_in_either_case_of_its_scheme() {
        let keys = TokenKeys::new(&SecretString::from("x".repeat(32)), 60);
        let user = UserId(uuid::Uuid::from_u128(9));
        let t = keys.mint(user, Role::Customer).unwrap();
        for scheme in ["Bearer", "bearer"] {
            let mut h = HeaderMap::new();
            h.insert(
                header::AUTHORIZATION,
                format!("{scheme} {t}").parse().unwrap(),
            );
            assert_eq!(keys.bearer(&h).map(|c| c.user_id), Some(user));
        }
        assert!(keys.bearer(&HeaderMap::new()).is_none());
    }
}
