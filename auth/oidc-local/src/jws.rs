//! The provider's signing key: ES256 (ECDSA P-256, SHA-256) as JWS compact
//! serialisation (RFC 7515) and the public half as a JWK set (RFC 7517).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};

/// An ES256 key with its key id.
pub struct Key {
    pub kid: String,
    signing: SigningKey,
}

impl Key {
    /// A fresh random key (one per process start: nothing is stored).
    pub fn random(kid: &str) -> Self {
        loop {
            // A random 32-byte string is a valid scalar except with negligible odds.
            if let Ok(signing) = SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
                return Self {
                    kid: kid.to_owned(),
                    signing,
                };
            }
        }
    }

    /// The public key as a JWK (`kty` EC, `crv` P-256).
    pub fn jwk(&self) -> Value {
        let point = self.signing.verifying_key().to_encoded_point(false);
        let b64 = |b: Option<&[u8]>| URL_SAFE_NO_PAD.encode(b.unwrap_or_default());
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": b64(point.x().map(|x| &x[..])),
            "y": b64(point.y().map(|y| &y[..])),
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        })
    }

    /// `claims` signed: `header.payload.signature`, base64url each.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        // JWS ES256 signatures are r || s, 64 bytes (not DER).
        let sig: Signature = self.signing.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    #[test]
    fn a_signed_token_verifies_with_the_published_key_and_not_another() {
        let key = Key::random("k1");
        let token = key.sign(&json!({"sub": "1"}));
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
        let jwk = key.jwk();
        let coord = |c: &str| URL_SAFE_NO_PAD.decode(jwk[c].as_str().unwrap()).unwrap();
        let mut sec1 = vec![4u8];
        sec1.extend(coord("x"));
        sec1.extend(coord("y"));
        let public = VerifyingKey::from_sec1_bytes(&sec1).unwrap();
        assert!(public.verify(input.as_bytes(), &sig).is_ok());
        let other = Key::random("k1");
        assert!(
            other
                .signing
                .verifying_key()
                .verify(input.as_bytes(), &sig)
                .is_err()
        );
    }
}
