//! E-tickets: compact tokens signed with Ed25519, and their QR code as a PNG.
//!
//! # The token (what a scanner app implements; see `tickets/TICKETS.md`)
//!
//! `token = base64url(payload) "." base64url(signature)`, base64url without padding;
//! `payload` is UTF-8 JSON `{"kid","bid","sid","seats","iat"}` (key id, booking id,
//! show id, seat labels, issue time in unix seconds), and `signature` is the 64-byte
//! Ed25519 signature of the ASCII bytes of the FIRST segment (the base64url text, so
//! a verifier never re-serialises JSON). The public key of `kid` comes from
//! `GET /v1/tickets/keys`. A valid signature proves the ticket was issued; whether the
//! booking is still confirmed is only known online (`GET /v1/tickets/verify`).
//!
//! # Keys and rotation
//!
//! Keys come from configuration: 32-byte Ed25519 secret seeds (base64) by key id, one
//! of which is `current` and signs. Rotating = add a new seed, make it current, and
//! keep the old key (its seed, or only its public key) so tickets already mailed
//! still verify.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use contracts::{BookingId, Event, EventEnvelope, ShowId};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Longest token accepted for verification (a real one is about 300 characters).
pub const TOKEN_LEN_MAX: usize = 2048;
/// Pixels per QR module, and quiet-zone modules around the code.
const QR_SCALE_PX: u32 = 6;
const QR_QUIET_MODULES: u32 = 4;

/// What a ticket says. Field names are short on purpose: the token goes in a QR code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketClaims {
    pub kid: String,
    pub bid: BookingId,
    pub sid: ShowId,
    pub seats: Vec<String>,
    /// Issue time, unix seconds: the time the booking was confirmed.
    pub iat: i64,
}

impl TicketClaims {
    /// The claims of the ticket of a `BookingConfirmed` event (without `kid`, which
    /// the signer sets). Everything comes from the event, so the email and the
    /// ticket endpoint produce the same token.
    pub fn from_confirmed(env: &EventEnvelope) -> Option<Self> {
        match &env.event {
            Event::BookingConfirmed { seats, .. } => Some(Self {
                kid: String::new(),
                bid: env.booking_id,
                sid: env.show_id,
                seats: seats.iter().map(|s| s.to_string()).collect(),
                iat: env.occurred_at.0.div_euclid(1000),
            }),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token was signed with an unknown key {0:?}")]
    UnknownKey(String),
    #[error("the signature does not match")]
    BadSignature,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("ticket key {kid:?}: {why}")]
    Bad { kid: String, why: String },
    #[error("the current ticket key {0:?} has no secret seed")]
    NoCurrent(String),
}

/// Public keys by key id, as the key endpoint publishes them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    /// `Ed25519`.
    pub alg: String,
    /// The 32-byte public key, base64url without padding.
    pub public_key: String,
}

/// The signing key and every verification key.
#[derive(Clone)]
pub struct TicketKeys {
    current_kid: String,
    signing: Arc<SigningKey>,
    verifying: Arc<BTreeMap<String, VerifyingKey>>,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeys")
            .field("current_kid", &self.current_kid)
            .field("kids", &self.verifying.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn decode_any(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    STANDARD
        .decode(s)
        .ok()
        .or_else(|| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok())
}

fn bytes32(kid: &str, s: &str) -> Result<[u8; 32], KeyError> {
    decode_any(s)
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| KeyError::Bad {
            kid: kid.to_owned(),
            why: "must be 32 bytes, base64".into(),
        })
}

impl TicketKeys {
    /// `seeds`: secret seeds (base64) by kid; `public_only`: retired public keys
    /// (base64) by kid, kept so old tickets verify.
    pub fn new<'a>(
        current_kid: &str,
        seeds: impl IntoIterator<Item = (&'a str, &'a str)>,
        public_only: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, KeyError> {
        let mut verifying = BTreeMap::new();
        let mut signing = None;
        for (kid, seed) in seeds {
            let key = SigningKey::from_bytes(&bytes32(kid, seed)?);
            verifying.insert(kid.to_owned(), key.verifying_key());
            if kid == current_kid {
                signing = Some(key);
            }
        }
        for (kid, public) in public_only {
            let key =
                VerifyingKey::from_bytes(&bytes32(kid, public)?).map_err(|e| KeyError::Bad {
                    kid: kid.to_owned(),
                    why: e.to_string(),
                })?;
            verifying.entry(kid.to_owned()).or_insert(key);
        }
        let signing = signing.ok_or_else(|| KeyError::NoCurrent(current_kid.to_owned()))?;
        Ok(Self {
            current_kid: current_kid.to_owned(),
            signing: Arc::new(signing),
            verifying: Arc::new(verifying),
        })
    }

    /// The keys as configuration holds them (`notifier.ticket_*` settings): secret
    /// seeds and public keys by key id, and the id of the key that signs.
    pub fn from_config(
        current_kid: &str,
        signing_seeds: &BTreeMap<String, secrecy::SecretString>,
        public_keys: &BTreeMap<String, String>,
    ) -> Result<Self, KeyError> {
        use secrecy::ExposeSecret;
        Self::new(
            current_kid,
            signing_seeds
                .iter()
                .map(|(k, v)| (k.as_str(), v.expose_secret())),
            public_keys.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )
    }

    pub fn current_kid(&self) -> &str {
        &self.current_kid
    }

    /// Every public key, for `GET /v1/tickets/keys`.
    pub fn public_keys(&self) -> Vec<PublicKey> {
        self.verifying
            .iter()
            .map(|(kid, k)| PublicKey {
                kid: kid.clone(),
                alg: "Ed25519".into(),
                public_key: URL_SAFE_NO_PAD.encode(k.as_bytes()),
            })
            .collect()
    }

    /// Signs `claims` with the current key (its `kid` is overwritten).
    pub fn sign(&self, claims: &TicketClaims) -> String {
        let claims = TicketClaims {
            kid: self.current_kid.clone(),
            ..claims.clone()
        };
        let json = serde_json::to_vec(&claims).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let sig = self.signing.sign(payload.as_bytes());
        format!("{payload}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    /// Checks the signature of `token` against the key its `kid` names.
    pub fn verify(&self, token: &str) -> Result<TicketClaims, TicketError> {
        verify(token, &self.verifying)
    }
}

/// Checks `token` against public keys by kid (what an offline scanner does).
pub fn verify(
    token: &str,
    keys: &BTreeMap<String, VerifyingKey>,
) -> Result<TicketClaims, TicketError> {
    if token.len() > TOKEN_LEN_MAX {
        return Err(TicketError::Malformed);
    }
    let (payload, sig) = token.trim().split_once('.').ok_or(TicketError::Malformed)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TicketError::Malformed)?;
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .ok_or(TicketError::Malformed)?;
    let claims: TicketClaims = serde_json::from_slice(&json).map_err(|_| TicketError::Malformed)?;
    let key = keys
        .get(&claims.kid)
        .ok_or_else(|| TicketError::UnknownKey(claims.kid.clone()))?;
    key.verify(payload.as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| TicketError::BadSignature)?;
    Ok(claims)
}

/// The QR code of `token` as a grayscale PNG.
pub fn qr_png(token: &str) -> Result<Vec<u8>, anyhow::Error> {
    let code = qrcode::QrCode::with_error_correction_level(token.as_bytes(), qrcode::EcLevel::M)?;
    let modules = u32::try_from(code.width())?;
    let colors = code.to_colors();
    let side = (modules + 2 * QR_QUIET_MODULES) * QR_SCALE_PX;
    let mut pixels = vec![255u8; (side * side) as usize];
    for y in 0..side {
        for x in 0..side {
            let (mx, my) = (
                (x / QR_SCALE_PX).checked_sub(QR_QUIET_MODULES),
                (y / QR_SCALE_PX).checked_sub(QR_QUIET_MODULES),
            );
            if let (Some(mx), Some(my)) = (mx, my)
                && mx < modules
                && my < modules
                && colors[(my * modules + mx) as usize] == qrcode::Color::Dark
            {
                pixels[(y * side + x) as usize] = 0;
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&pixels)?;
        w.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const SEED_B: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn claims() -> TicketClaims {
        TicketClaims {
            kid: String::new(),
            bid: BookingId(uuid::Uuid::new_v4()),
            sid: ShowId(uuid::Uuid::new_v4()),
            seats: vec!["A1".into(), "A2".into()],
            iat: 1_800_000_000,
        }
    }

    fn keys(current: &str) -> TicketKeys {
        TicketKeys::new(current, [("k1", SEED_A), ("k2", SEED_B)], []).unwrap()
    }

    #[test]
    fn a_signed_ticket_verifies_and_carries_its_claims() {
        let k = keys("k1");
        let c = claims();
        let token = k.sign(&c);
        let got = k.verify(&token).unwrap();
        assert_eq!(got.kid, "k1");
        assert_eq!(got.bid, c.bid);
        assert_eq!(got.seats, c.seats);
        assert!(token.len() < 400, "{} chars", token.len());
        // Deterministic: the same claims give the same token.
        assert_eq!(token, k.sign(&c));
    }

    #[test]
    fn a_tampered_payload_or_signature_fails() {
        let k = keys("k1");
        let token = k.sign(&claims());
        let (payload, sig) = token.split_once('.').unwrap();
        let mut other = claims();
        other.kid = "k1".into();
        other.seats = vec!["Z9".into()];
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(
            k.verify(&format!("{forged_payload}.{sig}")),
            Err(TicketError::BadSignature)
        );
        let mut bad_sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        bad_sig[0] ^= 1;
        assert_eq!(
            k.verify(&format!("{payload}.{}", URL_SAFE_NO_PAD.encode(bad_sig))),
            Err(TicketError::BadSignature)
        );
        assert_eq!(k.verify("nonsense"), Err(TicketError::Malformed));
        assert_eq!(
            k.verify(&format!("{payload}.")),
            Err(TicketError::Malformed)
        );
    }

    #[test]
    fn an_unknown_kid_is_refused() {
        let signer = TicketKeys::new("k9", [("k9", SEED_A)], []).unwrap();
        let token = signer.sign(&claims());
        assert_eq!(
            keys("k1").verify(&token),
            Err(TicketError::UnknownKey("k9".into()))
        );
    }

    #[test]
    fn after_rotation_old_tickets_verify_with_the_kept_public_key() {
        let old = keys("k1");
        let token = old.sign(&claims());
        let k1_public = old
            .public_keys()
            .into_iter()
            .find(|p| p.kid == "k1")
            .unwrap()
            .public_key;
        let rotated =
            TicketKeys::new("k2", [("k2", SEED_B)], [("k1", k1_public.as_str())]).unwrap();
        assert_eq!(rotated.verify(&token).unwrap().kid, "k1");
        assert_eq!(rotated.verify(&rotated.sign(&claims())).unwrap().kid, "k2");
    }

    #[test]
    fn a_current_kid_without_seed_or_a_short_seed_is_a_config_error() {
        assert!(matches!(
            TicketKeys::new("nope", [("k1", SEED_A)], []),
            Err(KeyError::NoCurrent(_))
        ));
        assert!(matches!(
            TicketKeys::new("k1", [("k1", "AAEC")], []),
            Err(KeyError::Bad { .. })
        ));
    }

    #[test]
    fn the_qr_png_is_a_grayscale_png_of_a_square_code() {
        let png_bytes = qr_png(&keys("k1").sign(&claims())).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert_eq!(info.color_type, png::ColorType::Grayscale);
    }
}
