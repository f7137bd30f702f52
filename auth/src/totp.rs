//! Two-factor authentication: TOTP codes (RFC 6238 through `totp-rs`: SHA-1, 6 digits,
//! 30-second steps, one step of skew either side, as every authenticator app expects)
//! and single-use recovery codes.
//!
//! Pure functions with the time passed in; ingress keeps the secret, the last step
//! used (so a code is never accepted twice, RFC 6238 section 5.2) and the SHA-256 of
//! each recovery code (they are 80 random bits: a slow hash adds nothing).

use sha2::{Digest, Sha256};
use totp_rs::{Algorithm, Builder, Secret, Totp};

/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Recovery codes handed out at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// The name authenticator apps show beside the account.
pub const ISSUER: &str = "Booking";

/// A fresh random TOTP secret.
pub fn new_secret() -> Vec<u8> {
    rand::random::<[u8; SECRET_BYTES]>().to_vec()
}

fn totp(secret: &[u8], account: &str) -> Result<Totp, totp_rs::TotpError> {
    // The otpauth label may not hold a colon; an email rarely does.
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(Secret::from(secret.to_vec()))
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some(ISSUER))
        .build()
}

/// What the user types into an authenticator app: the base32 secret and the
/// `otpauth://totp/...` URI (also shown as a QR code).
pub fn enrolment(secret: &[u8], account: &str) -> anyhow::Result<(String, String)> {
    let t = totp(secret, account).map_err(|e| anyhow::anyhow!("totp: {e}"))?;
    let uri = t.to_url().map_err(|e| anyhow::anyhow!("totp uri: {e}"))?;
    Ok((t.secret().to_base32(), uri))
}

/// The time step `code` is valid for at `now_secs` (within one step either side), or
/// `None`. Callers refuse a step not later than the last one accepted.
pub fn check(secret: &[u8], code: &str, now_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    totp(secret, "user").ok()?.check(code, now_secs)
}

/// The code of `secret` at `now_secs` (tests and the browser test's authenticator).
pub fn code_at(secret: &[u8], now_secs: u64) -> Option<String> {
    totp(secret, "user")
        .ok()
        .map(|t| t.generate(now_secs).to_string())
}

/// The secret bytes of a base32 secret (as shown at enrolment).
pub fn secret_from_base32(b32: &str) -> Option<Vec<u8>> {
    Secret::try_from_base32(b32.trim())
        .ok()
        .map(|s| s.as_ref().to_vec())
}

/// Ten fresh recovery codes, `xxxx-xxxx-xxxx-xxxx-xxxx` in lowercase hex (80 random
/// bits each; hex is easy to read out and type).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let raw = hex(&rand::random::<[u8; 10]>());
            format!(
                "{}-{}-{}-{}-{}",
                &raw[0..4],
                &raw[4..8],
                &raw[8..12],
                &raw[12..16],
                &raw[16..20]
            )
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `code` has the shape of a recovery code (so a mistyped TOTP code is
/// not looked up as one).
pub fn looks_like_recovery_code(code: &str) -> bool {
    let n = normalize(code);
    n.len() == 20 && n.bytes().all(|b| b.is_ascii_hexdigit())
}

fn normalize(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// What is stored of a recovery code: the SHA-256 of its normalised form (case,
/// spaces and dashes do not matter when typed).
pub fn recovery_code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(normalize(code).as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (its 8-digit values, last six digits).
    #[test]
    fn codes_match_the_rfc_test_vectors_and_are_checked_within_one_step() {
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59).unwrap(), "287082");
        assert_eq!(code_at(secret, 1_111_111_109).unwrap(), "081804");
        assert_eq!(check(secret, "081804", 1_111_111_109), Some(37_037_036));
        // Still accepted one step later (clock skew), not two.
        assert_eq!(
            check(secret, "081804", 1_111_111_109 + 30),
            Some(37_037_036)
        );
        assert_eq!(check(secret, "081804", 1_111_111_109 + 60), None);
        for bad in ["", "12345", "1234567", "abcdef", "08180 4"] {
            assert_eq!(check(secret, bad, 1_111_111_109), None, "{bad:?}");
        }
    }

    #[test]
    fn enrolment_gives_a_base32_secret_and_an_otpauth_uri() {
        let secret = new_secret();
        let (b32, uri) = enrolment(&secret, "asha:x@example.com").unwrap();
        assert_eq!(secret_from_base32(&b32).unwrap(), secret);
        assert!(uri.starts_with("otpauth://totp/Booking:"), "{uri}");
        assert!(uri.contains(&format!("secret={b32}")), "{uri}");
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_hash_the_same_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), 10);
        let set: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(set.len(), 10);
        let c = &codes[0];
        assert!(looks_like_recovery_code(c), "{c}");
        assert!(!looks_like_recovery_code("123456"));
        let typed = format!(" {} ", c.replace('-', "").to_uppercase());
        assert_eq!(recovery_code_hash(c), recovery_code_hash(&typed));
        assert_ne!(recovery_code_hash(c), recovery_code_hash(&codes[1]));
    }
}
