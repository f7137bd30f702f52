//! Writing a generated catalog: one `UNNEST` statement (one transaction) per chunk
//! of rows, skipping rows that exist and shows that would overlap one already on
//! their screen.

use super::{Catalog, Movie, Screen, Show, Theater};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Rows written per statement.
const CHUNK_ROWS: usize = 5_000;

/// Rows of each table actually inserted (0 for rows that were already there).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Inserted {
    pub theaters: u64,
    pub screens: u64,
    pub movies: u64,
    pub shows: u64,
    pub prices: u64,
}

/// Writes `catalog`, skipping every row that exists (same id) and every show that
/// would overlap one already on its screen.
pub async fn insert(pool: &PgPool, catalog: &Catalog) -> anyhow::Result<Inserted> {
    let mut n = Inserted::default();
    for chunk in catalog.theaters.chunks(CHUNK_ROWS) {
        n.theaters += insert_theaters(pool, chunk).await?;
    }
    for chunk in catalog.screens.chunks(CHUNK_ROWS / 5) {
        n.screens += insert_screens(pool, chunk).await?;
    }
    for chunk in catalog.movies.chunks(CHUNK_ROWS) {
        n.movies += insert_movies(pool, chunk).await?;
    }
    for chunk in catalog.shows.chunks(CHUNK_ROWS) {
        n.shows += insert_shows(pool, chunk).await?;
    }
    for chunk in catalog.shows.chunks(CHUNK_ROWS / 2) {
        n.prices += insert_prices(pool, chunk).await?;
    }
    Ok(n)
}

async fn insert_theaters(pool: &PgPool, rows: &[Theater]) -> sqlx::Result<u64> {
    let col = |f: fn(&Theater) -> &str| rows.iter().map(|r| f(r).to_owned()).collect::<Vec<_>>();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    sqlx::query(
        "insert into theaters (id, name, city, address)
         select * from unnest($1::uuid[], $2::text[], $3::text[], $4::text[])
         on conflict (id) do nothing",
    )
    .bind(ids)
    .bind(col(|r| &r.name))
    .bind(col(|r| &r.city))
    .bind(col(|r| &r.address))
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

async fn insert_screens(pool: &PgPool, rows: &[Screen]) -> anyhow::Result<u64> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let theaters: Vec<Uuid> = rows.iter().map(|r| r.theater_id).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let layouts = rows
        .iter()
        .map(|r| serde_json::to_string(&r.layout))
        .collect::<Result<Vec<_>, _>>()?;
    let seats = rows
        .iter()
        .map(|r| i32::try_from(r.layout.seats().count()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(sqlx::query(
        "insert into screens (id, theater_id, name, layout, seat_count)
         select id, theater_id, name, layout::jsonb, seat_count
           from unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::int[])
             as u(id, theater_id, name, layout, seat_count)
         on conflict (id) do nothing",
    )
    .bind(ids)
    .bind(theaters)
    .bind(names)
    .bind(layouts)
    .bind(seats)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Genres and cast go in as `|`-joined text (`unnest` cannot take ragged arrays); an
/// empty rating is none (events need not have one).
async fn insert_movies(pool: &PgPool, rows: &[Movie]) -> sqlx::Result<u64> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let text = |f: fn(&Movie) -> String| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "insert into movies (id, title, genres, cast_members, duration_min, rating, language, synopsis,
                             kind)
         select id, title, string_to_array(genres, '|'), string_to_array(cast_members, '|'),
                duration_min, nullif(rating, ''), language, synopsis, kind
           from unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
                       $7::text[], $8::text[], $9::text[])
             as u(id, title, genres, cast_members, duration_min, rating, language, synopsis, kind)
         on conflict (id) do nothing",
    )
    .bind(ids)
    .bind(text(|m| m.title.clone()))
    .bind(text(|m| m.genres.join("|")))
    .bind(text(|m| m.cast.join("|")))
    .bind(rows.iter().map(|m| m.duration_min).collect::<Vec<_>>())
    .bind(text(|m| m.rating.clone()))
    .bind(text(|m| m.language.clone()))
    .bind(text(|m| m.synopsis.clone()))
    .bind(text(|m| m.kind.as_str().to_owned()))
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

/// `on conflict do nothing` without a target also yields to the exclusion
/// constraint: a show that would overlap one already on its screen is skipped.
async fn insert_shows(pool: &PgPool, rows: &[Show]) -> sqlx::Result<u64> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let times = |f: fn(&Show) -> OffsetDateTime| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(
        "insert into shows (id, movie_id, screen_id, starts_at, ends_at, busy_until, status)
         select id, movie_id, screen_id, starts_at, ends_at, busy_until, 'on_sale'
           from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::timestamptz[],
                       $6::timestamptz[])
             as u(id, movie_id, screen_id, starts_at, ends_at, busy_until)
         on conflict do nothing",
    )
    .bind(ids)
    .bind(rows.iter().map(|r| r.movie_id).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.screen_id).collect::<Vec<_>>())
    .bind(times(|r| r.starts_at))
    .bind(times(|r| r.ends_at))
    .bind(times(|r| r.busy_until))
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}

/// Prices of the shows that exist (a skipped show gets none).
async fn insert_prices(pool: &PgPool, shows: &[Show]) -> sqlx::Result<u64> {
    let rows = shows
        .iter()
        .flat_map(|s| s.prices.iter().map(move |(t, a)| (s.id, t.as_str(), *a)));
    let (mut ids, mut types, mut amounts) = (Vec::new(), Vec::new(), Vec::new());
    for (id, t, a) in rows {
        ids.push(id);
        types.push(t);
        amounts.push(a);
    }
    sqlx::query(
        "insert into show_prices (show_id, seat_type, amount, currency)
         select u.show_id, u.seat_type, u.amount, 'INR'
           from unnest($1::uuid[], $2::text[], $3::bigint[]) as u(show_id, seat_type, amount)
           join shows s on s.id = u.show_id
         on conflict (show_id, seat_type) do nothing",
    )
    .bind(ids)
    .bind(types)
    .bind(amounts)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
}
