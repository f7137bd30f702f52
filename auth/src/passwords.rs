//! Password hashing: argon2id (the `argon2` crate's defaults are OWASP's: 19 MiB of
//! memory, 2 passes, 1 lane), stored as PHC strings that carry their parameters, so
//! raising them later still verifies older hashes. Hashing costs tens of
//! milliseconds of CPU on purpose: it runs on the blocking pool, never on the async
//! threads. `bookctl user create`, ingress and the tests use the same functions.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Hashes `password` (argon2id, random salt).
pub async fn hash(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
    })
    .await?
}

/// Whether `password` matches `stored` (a PHC string). A malformed `stored` (e.g.
/// an account created without a password) never matches.
pub async fn verify(password: String, stored: String) -> anyhow::Result<bool> {
    Ok(tokio::task::spawn_blocking(move || {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), stored.as_str())
            .is_ok()
    })
    .await?)
}

/// Does the work of one verification and fails: the login of an unknown email costs
/// the same time as a wrong password, so answers do not reveal which emails exist.
pub async fn verify_unknown(password: String) -> anyhow::Result<bool> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = tokio::task::spawn_blocking(|| {
        DUMMY
            .get_or_init(|| {
                argon2::Argon2::default()
                    .hash_password(uuid::Uuid::new_v4().as_bytes())
                    .map(|h| h.to_string())
                    .unwrap_or_default()
            })
            .clone()
    })
    .await?;
    verify(password, dummy).await.map(|_| false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let h = hash("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify("correct horse battery".into(), h.clone())
                .await
                .unwrap()
        );
        assert!(!verify("correct horse battery!".into(), h).await.unwrap());
        assert!(!verify("x".into(), "not a hash".into()).await.unwrap());
        assert!(!verify_unknown("anything".into()).await.unwrap());
    }
}
