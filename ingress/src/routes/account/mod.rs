//! Accounts (API.md, "Auth and profile" and Round 2 "Accounts"): registration,
//! login (with a second step when two-factor authentication is on), refresh-token
//! rotation with reuse detection, logout, email verification, password change and
//! reset, TOTP enrolment, the caller's profile and bookings.
//!
//! - [`session`]: register, login, refresh, logout; tokens are issued here.
//! - [`mfa`]: TOTP enrolment, recovery codes, the login's code step.
//! - [`email`]: the emailed single-use tokens (verification, reset) and their routes.
//! - [`password`]: change and reset; ending every login of an account.
//! - [`profile`]: `GET`/`PATCH /v1/me`, `GET /v1/me/bookings`.
//! - [`phone`]: phone verification by an SMS code.
//! - [`oidc`]: sign in with a provider (OpenID Connect).
//! - [`mail`]: sending account emails over the notifier's SMTP settings.
//!
//! Access tokens are short-lived JWTs ([`crate::auth::TokenKeys`]) carrying the
//! account's session generation, checked on every authenticated request
//! ([`crate::auth::Authenticator`]). Refresh tokens are 32 random bytes; only their
//! SHA-256 is stored. A login starts a *family*; each refresh marks the presented
//! token used and issues the next one of the family in the same transaction.
//! Presenting a token that was already used means two parties hold it (a thief
//! replaying it, or the client after the thief): the whole family is revoked, so the
//! newer token in the thief's hands dies too, and both must log in again.

mod email;
mod mfa;
mod oidc;
mod password;
mod phone;
mod profile;
mod session;

use crate::auth::Role;
use crate::problem::ApiError;
use crate::state::AppState;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

const MIN_PASSWORD_CHARS: usize = 8;
const MAX_PASSWORD_CHARS: usize = 128;
const MAX_NAME_CHARS: usize = 100;
const MAX_EMAIL_CHARS: usize = 254;
const MAX_CITY_CHARS: usize = 100;
const MAX_GENRES: usize = 20;
const MAX_GENRE_CHARS: usize = 40;
/// Longest opaque token accepted (refresh, email and MFA tokens; ours are 43
/// characters).
const MAX_TOKEN_CHARS: usize = 128;

// ---------------------------------------------------------------------------
// Validation.

/// Trimmed and lower-cased; one `@` with text on both sides and a dot in the domain.
pub(crate) fn normalize_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let valid = email.chars().count() <= MAX_EMAIL_CHARS
        && !email
            .chars()
            .any(|c| c.is_whitespace() || crate::text::invisible(c))
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(ApiError::Validation(format!(
            "email must be an address like name@example.com (at most {MAX_EMAIL_CHARS} characters)"
        )))
    }
}

/// A new password for the account of `email`: 8 to 128 characters (else `422
/// validation_failed`), and not easy to guess (else `422 weak_password` with a
/// `reason`: `whitespace_only`, `too_common`, `contains_email`).
pub(crate) fn check_password(p: &str, email: &str) -> Result<(), ApiError> {
    let n = p.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) || p.contains('\0') {
        return Err(ApiError::Validation(format!(
            "password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
    match ::auth::strength::weakness(p, email) {
        Some(w) => Err(ApiError::WeakPassword(w)),
        None => Ok(()),
    }
}

// A bounded, trimmed, non-empty visible text (`crate::text::clean`).
pub(crate) use crate::text::clean as clean_text;

pub(crate) fn check_phone(raw: &str) -> Result<String, ApiError> {
    let digits = raw.strip_prefix('+').unwrap_or("");
    if (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::Validation(
            "phone must be + and 7 to 15 digits (E.164), e.g. +919812345678".into(),
        ))
    }
}

pub(crate) fn check_preferences(p: profile::Preferences) -> Result<profile::Preferences, ApiError> {
    let city = p
        .city
        .map(|c| clean_text("preferences.city", &c, MAX_CITY_CHARS))
        .transpose()?;
    if p.genres.len() > MAX_GENRES {
        return Err(ApiError::Validation(format!(
            "preferences.genres holds at most {MAX_GENRES} genres"
        )));
    }
    let genres = p
        .genres
        .iter()
        .map(|g| clean_text("each genre", g, MAX_GENRE_CHARS))
        .collect::<Result<_, _>>()?;
    if p.notify.is_empty() {
        return Err(ApiError::Validation(
            "preferences.notify must name at least one channel: [\"email\"], [\"sms\"] or [\"email\", \"sms\"]".into(),
        ));
    }
    let mut notify = p.notify;
    notify.sort();
    notify.dedup();
    Ok(profile::Preferences {
        city,
        genres,
        notify,
    })
}

// ---------------------------------------------------------------------------
// Tokens.

/// What is stored of an opaque token (refresh, emailed, MFA challenge): its SHA-256.
/// They are 256 random bits: a slow hash would add nothing.
fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A fresh opaque token: 32 random bytes, base64url.
fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn parse_role(role: &str) -> Result<Role, ApiError> {
    role.parse()
        .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))
}

/// `/v1/auth/...` and `/v1/me...`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(session::register))
        .routes(routes!(session::login))
        .routes(routes!(session::refresh))
        .routes(routes!(session::logout))
        .routes(routes!(mfa::complete_login))
        .routes(routes!(oidc::providers))
        .routes(routes!(oidc::start))
        .routes(routes!(oidc::callback))
        .routes(routes!(email::verify_email))
        .routes(routes!(email::resend_verification))
        .routes(routes!(email::request_password_reset))
        .routes(routes!(password::confirm_password_reset))
        .routes(routes!(password::change_password))
        .routes(routes!(mfa::enrol, mfa::disable))
        .routes(routes!(mfa::confirm))
        .routes(routes!(profile::me, profile::update_me))
        .routes(routes!(profile::my_bookings))
        .routes(routes!(phone::verify_phone))
        .routes(routes!(phone::confirm_phone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("  Asha.Rao@Example.COM ").unwrap(),
            "asha.rao@example.com"
        );
        for bad in [
            "",
            "asha",
            "@example.com",
            "asha@",
            "asha@example",
            "a b@example.com",
            "a@b@c.com",
            "asha@.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_email(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn phones_passwords_and_preferences_are_bounded() {
        assert!(check_phone("+919812345678").is_ok());
        for bad in [
            "919812345678",
            "+12",
            "+1234567890123456",
            "+91 98123",
            "+91abc4567",
        ] {
            assert!(check_phone(bad).is_err(), "{bad:?} accepted");
        }
        let email = "asha@example.com";
        assert!(check_password("lantern-93-quay", email).is_ok());
        assert!(matches!(
            check_password("1234567", email),
            Err(ApiError::Validation(_))
        ));
        assert!(check_password(&"x".repeat(129), email).is_err());
        assert!(matches!(
            check_password("12345678", email),
            Err(ApiError::WeakPassword(_))
        ));
        let many = profile::Preferences {
            city: None,
            genres: (0..21).map(|i| format!("g{i}")).collect(),
            notify: profile::default_notify(),
        };
        assert!(check_preferences(many).is_err());
        let ok = check_preferences(profile::Preferences {
            city: Some("  Pune ".into()),
            genres: vec!["drama".into()],
            notify: vec![
                profile::Channel::Sms,
                profile::Channel::Email,
                profile::Channel::Sms,
            ],
        })
        .unwrap();
        assert_eq!(ok.city.as_deref(), Some("Pune"));
        assert_eq!(ok.notify, [profile::Channel::Email, profile::Channel::Sms]);
        let none = profile::Preferences {
            city: None,
            genres: vec![],
            notify: vec![],
        };
        assert!(check_preferences(none).is_err());
    }

    #[test]
    fn a_refresh_token_is_stored_only_as_its_sha256() {
        let h = token_hash("abc");
        assert_eq!(h.len(), 32);
        assert_eq!(
            hex::encode(h),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
