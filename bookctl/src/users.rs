//! Accounts: create one, mint its bearer token.

use anyhow::Context;
use auth::{Role, TokenKeys};
use contracts::UserId;
use sqlx::PgPool;

/// The API's password rule (`POST /v1/auth/register`, resets, changes): at least 8
/// characters, not only whitespace, not one of the commonest, not the email.
fn acceptable_password(password: &str, email: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        password.chars().count() >= 8,
        "a password needs at least 8 characters"
    );
    match auth::strength::weakness(password, email) {
        Some(w) => anyhow::bail!("{}", w.explain()),
        None => Ok(()),
    }
}

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
    acceptable_password(password, &email)?;
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

/// One theater an account manages.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Grant {
    pub theater_id: uuid::Uuid,
    pub theater: String,
    pub city: String,
}

/// The account of `email`: its id and role.
async fn account(pool: &PgPool, email: &str) -> anyhow::Result<(uuid::Uuid, Role)> {
    let email = email.trim().to_lowercase();
    let (id, role): (uuid::Uuid, String) =
        sqlx::query_as("select id, role from users where email = $1")
            .bind(&email)
            .fetch_optional(pool)
            .await?
            .with_context(|| format!("no user with email {email}"))?;
    Ok((id, role.parse().map_err(|e: String| anyhow::anyhow!(e))?))
}

/// Makes the account of `email` an admin or staff member of `theater` (its role
/// becomes `role`; it is scoped from now on). Operators are platform-wide by nature
/// and are refused, as is a role other than admin or staff. Granting twice is
/// harmless. A token minted before keeps its old role until it expires; the scope
/// applies at once (ingress looks scopes up, see `ingress::scope`).
pub async fn grant(
    pool: &PgPool,
    email: &str,
    role: Role,
    theater: uuid::Uuid,
) -> anyhow::Result<Vec<Grant>> {
    anyhow::ensure!(
        matches!(role, Role::Admin | Role::Staff),
        "only admin and staff are scoped to theaters"
    );
    let (id, current) = account(pool, email).await?;
    anyhow::ensure!(
        current != Role::Operator,
        "{email} is an operator: operators work across every theater"
    );
    let mut tx = pool.begin().await?;
    let exists: bool = sqlx::query_scalar("select exists (select 1 from theaters where id = $1)")
        .bind(theater)
        .fetch_one(&mut *tx)
        .await?;
    anyhow::ensure!(exists, "no theater {theater}");
    sqlx::query("update users set role = $2, theater_scoped = true where id = $1")
        .bind(id)
        .bind(role.as_str())
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into theater_grants (user_id, theater_id) values ($1, $2) on conflict do nothing",
    )
    .bind(id)
    .bind(theater)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    grants(pool, email).await
}

/// Removes `theater` from the account's scope. The account stays scoped: without
/// grants left it manages nothing (it never becomes a platform admin this way).
pub async fn revoke(pool: &PgPool, email: &str, theater: uuid::Uuid) -> anyhow::Result<Vec<Grant>> {
    let (id, _) = account(pool, email).await?;
    sqlx::query("delete from theater_grants where user_id = $1 and theater_id = $2")
        .bind(id)
        .bind(theater)
        .execute(pool)
        .await?;
    grants(pool, email).await
}

/// Makes a scoped admin a platform admin again: its grants are dropped and it
/// manages every theater. Staff cannot be unscoped.
pub async fn unscope(pool: &PgPool, email: &str) -> anyhow::Result<()> {
    let (id, role) = account(pool, email).await?;
    anyhow::ensure!(
        role == Role::Admin,
        "{email} is {}: only an admin can manage every theater",
        role.as_str()
    );
    let mut tx = pool.begin().await?;
    sqlx::query("delete from theater_grants where user_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("update users set theater_scoped = false where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The theaters the account of `email` manages (empty for a platform admin, see
/// [`is_scoped`]).
pub async fn grants(pool: &PgPool, email: &str) -> anyhow::Result<Vec<Grant>> {
    let (id, _) = account(pool, email).await?;
    let rows: Vec<(uuid::Uuid, String, String)> = sqlx::query_as(
        "select t.id, t.name, t.city from theater_grants g join theaters t on t.id = g.theater_id
          where g.user_id = $1 order by t.city, t.name, t.id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(theater_id, theater, city)| Grant {
            theater_id,
            theater,
            city,
        })
        .collect())
}

/// Whether the account of `email` is limited to its grants (staff always are).
pub async fn is_scoped(pool: &PgPool, email: &str) -> anyhow::Result<bool> {
    let (id, role) = account(pool, email).await?;
    let scoped: bool = sqlx::query_scalar("select theater_scoped from users where id = $1")
        .bind(id)
        .fetch_one(pool)
        .await?;
    Ok(scoped || role == Role::Staff)
}

#[cfg(test)]
mod tests {
    use super::acceptable_password;

    #[test]
    fn the_api_password_rule_applies_to_accounts_made_by_the_cli() {
        let email = "ops.lead@example.com";
        assert!(acceptable_password("short", email).is_err());
        assert!(
            acceptable_password("password", email).is_err(),
            "a common one"
        );
        assert!(
            acceptable_password("          ", email).is_err(),
            "only spaces"
        );
        assert!(
            acceptable_password("my-ops.lead-pass", email).is_err(),
            "the email's name"
        );
        assert!(acceptable_password("tram-violet-cargo", email).is_ok());
        // The demo logins the run command seeds.
        assert!(acceptable_password("demo-password", "admin@demo.local").is_ok());
    }
}
