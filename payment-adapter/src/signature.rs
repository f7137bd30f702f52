//! Webhook signatures: `Gateway-Signature: t=<unix>,v1=<hex hmac-sha256 of "<t>.<body>">`.
//!
//! The scheme is Stripe's: the timestamp is inside the signed bytes, so a captured
//! delivery cannot be replayed after the tolerance window, and several `v1=` entries
//! may be present (a provider rotating its secret signs with both for a while).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::{Choice, ConstantTimeEq};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Gateway-Signature";

/// How far the signed timestamp may be from the receiver's clock (API.md: "older
/// than 5 minutes is 400").
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Longest header [`verify`] looks at; a real one is about 80 bytes.
const HEADER_LEN_MAX: usize = 1024;
/// Most `v1=` entries [`verify`] tries; rotation needs two.
const SIGNATURES_MAX: usize = 8;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    #[error("signature timestamp {timestamp} is more than {tolerance_secs}s away from now ({now})")]
    OutsideTolerance {
        timestamp: i64,
        now: i64,
        tolerance_secs: i64,
    },
    #[error("no v1 signature matches the body")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret).expect("hmac takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The header value signing `body` at `timestamp` (unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

/// Checks `header` against `body`: some `v1=` entry must be the HMAC of
/// `"<t>.<body>"` under `secret` (compared in constant time), and `t` must be within
/// `tolerance_secs` of `now_unix` in either direction.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    if header.len() > HEADER_LEN_MAX {
        return Err(SignatureError::Malformed("header is too long"));
    }
    let mut timestamp = None;
    let mut candidates: Vec<Vec<u8>> = Vec::new();
    let mut v1_entries = 0usize;
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("an entry is not key=value"))?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed("more than one t="));
                }
                let t = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("t= is not an integer"))?;
                timestamp = Some(t);
            }
            "v1" => {
                v1_entries += 1;
                if v1_entries > SIGNATURES_MAX {
                    return Err(SignatureError::Malformed("too many v1= entries"));
                }
                // A v1 that is not hex cannot match; keep looking at the others.
                if let Ok(bytes) = hex::decode(value) {
                    candidates.push(bytes);
                }
            }
            // Other schemes (v0, ...) are ignored, as Stripe does.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("missing t="))?;
    if v1_entries == 0 {
        return Err(SignatureError::Malformed("missing v1="));
    }

    let expected = mac(secret, timestamp, body);
    // Fold over every candidate so the time taken does not say which one matched.
    let matched = candidates
        .iter()
        .fold(Choice::from(0), |acc, c| acc | expected.as_slice().ct_eq(c));
    if !bool::from(matched) {
        return Err(SignatureError::Mismatch);
    }
    if now_unix.abs_diff(timestamp) > tolerance_secs.unsigned_abs() {
        return Err(SignatureError::OutsideTolerance {
            timestamp,
            now: now_unix,
            tolerance_secs,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment.succeeded"}"#;
    const NOW: i64 = 1_700_000_000;

    #[test]
    fn a_signed_body_verifies() {
        let header = sign(SECRET, NOW, BODY);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(verify(SECRET, &header, BODY, NOW, 300), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, NOW + 299, 300), Ok(()));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Pinned against an independent computation (`openssl dgst -sha256 -hmac`),
        // so the receiver in ingress and this signer cannot drift together unnoticed.
        let header = sign(b"key", 1, b"body");
        assert_eq!(
            header,
            "t=1,v1=91b5374b153842ad05b2c4eab9349b8321b14703165bd3fb8b034dfb8be98ae5"
        );
    }

    #[test]
    fn a_tampered_body_is_refused() {
        let header = sign(SECRET, NOW, BODY);
        let tampered = br#"{"id":"evt_1","type":"payment.failed"}"#;
        assert_eq!(
            verify(SECRET, &header, tampered, NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_signature_older_than_five_minutes_is_refused() {
        let header = sign(SECRET, NOW - 301, BODY);
        assert!(matches!(
            verify(SECRET, &header, BODY, NOW, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::OutsideTolerance { .. })
        ));
    }

    #[test]
    fn a_signature_from_the_future_is_refused() {
        let header = sign(SECRET, NOW + 301, BODY);
        assert!(matches!(
            verify(SECRET, &header, BODY, NOW, 300),
            Err(SignatureError::OutsideTolerance { .. })
        ));
    }

    #[test]
    fn a_signature_under_another_secret_is_refused() {
        let header = sign(b"whsec_other", NOW, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_rewritten_timestamp_is_refused() {
        let header = sign(SECRET, NOW - 1000, BODY).replace("t=1699999000", "t=1700000000");
        assert_eq!(
            verify(SECRET, &header, BODY, NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_matching_v1_entry_is_enough() {
        let good = sign(SECRET, NOW, BODY);
        let good_v1 = good.split_once(",v1=").unwrap().1;
        let bad_v1 = sign(b"old", NOW, BODY)
            .split_once(",v1=")
            .unwrap()
            .1
            .to_owned();
        let header = format!("t={NOW},v1={bad_v1},v0=abc,v1=zz,v1={good_v1}");
        assert_eq!(verify(SECRET, &header, BODY, NOW, 300), Ok(()));
    }

    #[test]
    fn malformed_headers_are_refused() {
        let v1 = "v1=".to_owned() + &"00".repeat(32);
        for header in [
            String::new(),
            "garbage".to_owned(),
            v1.clone(),
            format!("t=abc,{v1}"),
            format!("t=1,t=2,{v1}"),
            format!("t={NOW}"),
            format!("t={NOW},v0=00"),
            format!("t={NOW},{}", "v1=00,".repeat(100)),
        ] {
            assert!(
                matches!(
                    verify(SECRET, &header, BODY, NOW, 300),
                    Err(SignatureError::Malformed(_))
                ),
                "{header:?} accepted as well-formed"
            );
        }
    }
}
