//! Accounts: create one, mint its bearer token.

use anyhow::Context;
use auth::{Role, TokenKeys};
use contracts::UserId;
use sqlx::PgPool;

/// Creates a user, or returns the existing one with that email (its password and
/// role are left as they are).
pub async fn create_user(
    pool: &PgPool,
    email: &str,
    password: &str,
    name: &str,
    role: Role,
) -> anyhow::Result<UserId> {
    let email = email.trim().to_lowercase();
    anyhow::ensure!(
        email.contains('@') && email.len() <= 254,
        "{email:?} is not an email address"
    );
    anyhow::ensure!(
        password.len() >= 8,
        "a password needs at least 8 characters"
    );
    if let Some(id) = sqlx::query_scalar::<_, uuid::Uuid>("select id from users where email = $1")
        .bind(&email)
        .fetch_optional(pool)
        .await?
    {
        return Ok(UserId(id));
    }
    let hash = auth::passwords::hash(password.to_owned()).await?;
    let id = UserId::new_v7();
    let inserted: uuid::Uuid = sqlx::query_scalar(
        "insert into users (id, email, password_hash, name, role) values ($1, $2, $3, $4, $5)
         on conflict (email) do update set email = excluded.email
         returning id",
    )
    .bind(id.0)
    .bind(&email)
    .bind(hash)
    .bind(name)
    .bind(role.as_str())
    .fetch_one(pool)
    .await
    .context("inserting the user")?;
    Ok(UserId(inserted))
}

/// A bearer token for the user with `email`, minted with the signing key: it counts
/// as strongly authenticated (`amr: ["key"]`), so a staff token works on the admin and
/// ops routes even where `auth.mfa_required_roles` requires a second factor. Whoever
/// holds the signing key can forge any token anyway; the policy guards the password
/// sign-in. It carries the account's current session generation, so it stops working
/// when the password is next changed or reset.
pub async fn mint_token(pool: &PgPool, keys: &TokenKeys, email: &str) -> anyhow::Result<String> {
    let email = email.trim().to_lowercase();
    let (id, role, epoch): (uuid::Uuid, String, i64) =
        sqlx::query_as("select id, role, auth_epoch from users where email = $1")
            .bind(&email)
            .fetch_optional(pool)
            .await?
            .with_context(|| format!("no user with email {email}"))?;
    let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    Ok(keys.mint_at(UserId(id), role, epoch)?)
}
