//! Setup before the clock starts: customer accounts with their tokens, and fresh shows.

use anyhow::Context;
use auth::{Role, TokenKeys};
use contracts::{ShowId, UserId};
use futures::{StreamExt, TryStreamExt};
use seed::{NewShow, create_show, inr_prices, theater_layout};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// A show of the run and the ids of its seats.
pub struct BenchShow {
    pub id: ShowId,
    pub seats: Vec<String>,
}

/// Creates `n` users of `role` whose emails carry `run`, and returns a bearer token
/// for each.
///
/// Every account gets the same password hash, computed once with argon2 (through
/// `bookctl`), and all rows go in with one `UNNEST` insert: hashing 200 passwords
/// would only time argon2, and the load test never logs in.
pub async fn users(
    pool: &PgPool,
    keys: &TokenKeys,
    run: &str,
    n: usize,
    role: Role,
) -> anyhow::Result<Vec<String>> {
    let hash = auth::passwords::hash("loadgen-password".to_owned()).await?;
    let ids: Vec<Uuid> = (0..n).map(|_| UserId::new_v7().0).collect();
    let emails: Vec<String> = (0..n)
        .map(|i| format!("loadgen-{run}-{i}@bench.local"))
        .collect();
    let names: Vec<String> = (0..n).map(|i| format!("Load Tester {i}")).collect();
    sqlx::query(
        "insert into users (id, email, password_hash, name, role)
         select id, email, $3, name, $5
           from unnest($1::uuid[], $2::text[], $4::text[]) as u(id, email, name)",
    )
    .bind(&ids)
    .bind(&emails)
    .bind(&hash)
    .bind(&names)
    .bind(role.as_str())
    .execute(pool)
    .await
    .context("inserting the load-test users")?;
    ids.into_iter()
        .map(|id| keys.mint(UserId(id), role).context("minting a token"))
        .collect()
}

/// Creates `count` shows of `rows` x `per_row` seats that start tomorrow, each with
/// a fresh random id (a few at a time: each is one short transaction).
pub async fn shows(
    pool: &PgPool,
    run: &str,
    count: usize,
    rows: usize,
    per_row: u16,
) -> anyhow::Result<Vec<BenchShow>> {
    let starts_at = OffsetDateTime::now_utc() + time::Duration::days(1);
    let layout = theater_layout(rows, per_row);
    let seats: Vec<String> = layout.seats().map(|(id, _)| id.to_string()).collect();
    futures::stream::iter(0..count)
        .map(|i| {
            let show = NewShow {
                show_id: ShowId(Uuid::new_v4()),
                layout: layout.clone(),
                prices: inr_prices(),
                starts_at,
                city: "Benchpur".to_owned(),
                theater: format!("Loadgen {run} theater {i}"),
                movie: "The Thundering Herd".to_owned(),
            };
            let seats = seats.clone();
            async move {
                let id = create_show(pool, &show)
                    .await
                    .with_context(|| format!("creating show {i}"))?;
                anyhow::Ok(BenchShow { id, seats })
            }
        })
        .buffered(8)
        .try_collect()
        .await
}
