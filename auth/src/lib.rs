//! Who is calling: access tokens and passwords, with no HTTP server attached.
//!
//! - [`TokenKeys`]: HS256 JWTs whose subject is the user id and which carry the
//!   [`Role`], the account's session generation (`gen`, see [`Claims::epoch`]), the
//!   login's refresh-token family (`fam`) and how the bearer authenticated (`amr`,
//!   RFC 8176, see [`Amr`]); [`TokenKeys::check`] answers the token's [`Claims`].
//! - [`passwords`]: argon2id hashing and verification on the blocking pool.
//! - [`strength`]: passwords too easy to guess (whitespace only, common, the email).
//! - [`totp`]: two-factor codes (RFC 6238) and single-use recovery codes.
//!
//! Ingress builds its `Caller` extractor on top; `bookctl`, `loadgen` and the tests
//! mint tokens and hash passwords with the same code, without linking ingress.

pub mod passwords;
pub mod strength;
pub mod totp;

pub use contracts::Role;

use contracts::UserId;
use http::{HeaderMap, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// How the bearer of a token authenticated (the JWT's `amr`, RFC 8176).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amr {
    /// Minted directly with the signing key (`bookctl mint-token`, the load generator,
    /// the test harness), not by a login: whoever holds the key can forge any claim,
    /// so such a token counts as strongly authenticated (`amr: ["key"]`).
    Key,
    /// A password login (`amr: ["pwd"]`). Tokens without `amr` (minted before it
    /// existed) count as this, the weakest.
    Password,
    /// A password and a second factor: a TOTP code or a recovery code
    /// (`amr: ["pwd", "otp"]` or `["pwd", "mfa"]`).
    Mfa,
}

impl Amr {
    /// Whether a role whose policy requires two factors may use this token.
    pub fn is_strong(self) -> bool {
        matches!(self, Amr::Key | Amr::Mfa)
    }

    fn to_wire(self) -> Vec<String> {
        match self {
            Amr::Key => vec!["key".into()],
            Amr::Password => vec!["pwd".into()],
            Amr::Mfa => vec!["pwd".into(), "otp".into()],
        }
    }

    fn from_wire(amr: &[String]) -> Self {
        if amr.iter().any(|m| m == "otp" || m == "mfa") {
            Amr::Mfa
        } else if amr.iter().any(|m| m == "key") && !amr.iter().any(|m| m == "pwd") {
            Amr::Key
        } else {
            Amr::Password
        }
    }
}

/// What a valid token says about its bearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claims {
    pub user_id: UserId,
    pub role: Role,
    /// The account's session generation (`users.auth_epoch`) when the token was
    /// issued. A password change or reset bumps the account's generation: every
    /// token of an older one is refused from then on (ingress compares it with the
    /// database on each authenticated request). 0 for tokens minted with the key.
    pub epoch: i64,
    /// The refresh-token family (the login) the token belongs to, when issued by a
    /// login: a password change keeps the caller's own login and ends the others.
    pub family: Option<uuid::Uuid>,
    pub amr: Amr,
}

/// The JWT body on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct Jwt {
    sub: uuid::Uuid,
    role: Role,
    iat: u64,
    exp: u64,
    #[serde(default)]
    r#gen: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fam: Option<uuid::Uuid>,
    #[serde(default)]
    amr: Vec<String>,
}

/// Signs and checks access tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    ttl_secs: u64,
}

/// A login's place in its account, for [`TokenKeys::mint_session`].
#[derive(Debug, Clone, Copy)]
pub struct Session {
    pub epoch: i64,
    pub family: uuid::Uuid,
    pub amr: Amr,
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

    /// A token for `user` with `role`, valid for the configured lifetime, minted
    /// with the key itself (not by a login: [`Amr::Key`], generation 0).
    pub fn mint(&self, user: UserId, role: Role) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign(user, role, 0, None, Amr::Key)
    }

    /// Like [`TokenKeys::mint`] for an account whose session generation is `epoch`
    /// (`bookctl mint-token` reads it, so its tokens work after a password change).
    pub fn mint_at(
        &self,
        user: UserId,
        role: Role,
        epoch: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign(user, role, epoch, None, Amr::Key)
    }

    /// The access token of a login.
    pub fn mint_session(
        &self,
        user: UserId,
        role: Role,
        session: Session,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign(user, role, session.epoch, Some(session.family), session.amr)
    }

    fn sign(
        &self,
        user: UserId,
        role: Role,
        epoch: i64,
        family: Option<uuid::Uuid>,
        amr: Amr,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Jwt {
            sub: user.0,
            role,
            iat: now,
            exp: now + self.ttl_secs,
            r#gen: epoch,
            fam: family,
            amr: amr.to_wire(),
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

    /// The claims of `token` when its signature and expiry check out. Whether its
    /// generation is still current is the caller's to check ([`Claims::epoch`]).
    pub fn check(&self, token: &str) -> Option<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        let data = jsonwebtoken::decode::<Jwt>(token, &self.decoding, &v).ok()?;
        Some(Claims {
            user_id: UserId(data.claims.sub),
            role: data.claims.role,
            epoch: data.claims.r#gen,
            family: data.claims.fam,
            amr: Amr::from_wire(&data.claims.amr),
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
        assert_eq!((c.epoch, c.family, c.amr), (0, None, Amr::Key));
    }

    #[test]
    fn a_login_token_carries_its_generation_family_and_factors() {
        let keys = TokenKeys::new(&SecretString::from("x".repeat(32)), 60);
        let user = UserId(uuid::Uuid::from_u128(7));
        let family = uuid::Uuid::from_u128(8);
        for amr in [Amr::Password, Amr::Mfa] {
            let t = keys
                .mint_session(
                    user,
                    Role::Admin,
                    Session {
                        epoch: 3,
                        family,
                        amr,
                    },
                )
                .unwrap();
            let c = keys.check(&t).unwrap();
            assert_eq!((c.epoch, c.family, c.amr), (3, Some(family), amr));
        }
        assert!(!Amr::Password.is_strong());
        assert!(Amr::Mfa.is_strong() && Amr::Key.is_strong());
        // A token from before `amr` existed is a password login, the weakest.
        assert_eq!(Amr::from_wire(&[]), Amr::Password);
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
