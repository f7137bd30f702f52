//! Two-factor authentication: TOTP codes (RFC 6238 through `totp-rs`: SHA-1, 6 digits,
//! 30-second steps, one step of skew either side, as every authenticator app expects)
//! and single-use recovery codes.
//!
//! Pure functions with the time passed in; ingress keeps the secret (sealed with
//! [`SecretBox`]), the last step used (so a code is never accepted twice, RFC 6238
//! section 5.2) and the SHA-256 of each recovery code (they are 80 random bits: a slow
//! hash adds nothing).

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

/// Seals TOTP secrets for storage: ChaCha20-Poly1305 (ring) with a random 96-bit
/// nonce stored in front, and the account id as associated data, so a database copy
/// alone yields no secret and a sealed secret moved to another account does not open.
/// The key is derived (HKDF-SHA256) from `auth.mfa_encryption_key`, or from
/// `auth.jwt_secret` when that is empty.
#[derive(Clone)]
pub struct SecretBox {
    key: std::sync::Arc<ring::aead::LessSafeKey>,
}

const NONCE_BYTES: usize = 12;

impl SecretBox {
    pub fn new(key_material: &[u8]) -> Self {
        let okm = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"booking totp secrets")
            .extract(key_material);
        let key: ring::aead::UnboundKey = okm
            .expand(&[b"v1"], &ring::aead::CHACHA20_POLY1305)
            .expect("a 32-byte key is a valid HKDF output length")
            .into();
        Self {
            key: std::sync::Arc::new(ring::aead::LessSafeKey::new(key)),
        }
    }

    /// `nonce || ciphertext || tag` of `secret` for `account`.
    pub fn seal(&self, account: &[u8], secret: &[u8]) -> Vec<u8> {
        let nonce_bytes = rand::random::<[u8; NONCE_BYTES]>();
        let nonce = ring::aead::Nonce::assume_unique_for_key(nonce_bytes);
        let mut data = secret.to_vec();
        self.key
            .seal_in_place_append_tag(nonce, ring::aead::Aad::from(account), &mut data)
            .expect("sealing a short secret cannot fail");
        let mut out = nonce_bytes.to_vec();
        out.extend(data);
        out
    }

    /// The secret of a sealed value of `account`; `None` when it does not open (other
    /// key, other account, tampered).
    pub fn open(&self, account: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, data) = sealed.split_at(NONCE_BYTES);
        let nonce = ring::aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, ring::aead::Aad::from(account), &mut data)
            .ok()?;
        Some(plain.to_vec())
    }
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
    fn a_sealed_secret_opens_only_with_its_key_and_account() {
        let b = SecretBox::new(b"key material of at least some length");
        let secret = new_secret();
        let sealed = b.seal(b"account-1", &secret);
        assert_ne!(
            &sealed[NONCE_BYTES..NONCE_BYTES + SECRET_BYTES],
            secret.as_slice()
        );
        assert_eq!(b.open(b"account-1", &sealed).unwrap(), secret);
        assert_ne!(
            b.seal(b"account-1", &secret),
            sealed,
            "a fresh nonce each time"
        );
        assert!(b.open(b"account-2", &sealed).is_none());
        assert!(
            SecretBox::new(b"other key")
                .open(b"account-1", &sealed)
                .is_none()
        );
        let mut tampered = sealed.clone();
        tampered[NONCE_BYTES] ^= 1;
        assert!(b.open(b"account-1", &tampered).is_none());
        assert!(b.open(b"account-1", b"short").is_none());
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
