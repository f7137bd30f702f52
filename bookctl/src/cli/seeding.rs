//! `bookctl seed`: the demo show with its logins, and the generated catalog.

use super::CatalogSize;
use anyhow::Context;
use auth::{Role, TokenKeys};
use platform::Settings;
use serde_json::json;
use std::io::Write;

/// The accounts the demo seed creates.
const DEMO_USERS: [(&str, &str, Role); 3] = [
    ("admin@demo.local", "Admin", Role::Admin),
    ("operator@demo.local", "Operator", Role::Operator),
    ("customer@demo.local", "Customer", Role::Customer),
];
const DEMO_PASSWORD: &str = "demo-password";

/// The demo show and the admin, operator and customer logins.
pub(super) async fn demo(
    settings: &Settings,
    pool: &sqlx::PgPool,
    json: bool,
    out: &mut impl Write,
    report: &mut serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<()> {
    let show = seed::demo(pool).await?;
    let concert = seed::demo_concert(pool).await?;
    let keys = TokenKeys::new(
        &settings.auth.jwt_secret,
        settings.auth.access_token_ttl_secs,
    );
    for (email, name, role) in DEMO_USERS {
        crate::users::create_user(pool, email, DEMO_PASSWORD, name, role).await?;
    }
    let token = crate::users::mint_token(pool, &keys, "customer@demo.local").await?;
    if json {
        let logins: Vec<_> = DEMO_USERS
            .iter()
            .map(|(e, _, r)| json!({"email": e, "password": DEMO_PASSWORD, "role": r.as_str()}))
            .collect();
        report.insert("show_id".into(), json!(show.to_string()));
        report.insert("concert_show_id".into(), json!(concert.to_string()));
        report.insert("logins".into(), json!(logins));
        report.insert("customer_token".into(), json!(token));
    } else {
        writeln!(out, "demo show: {show}")?;
        writeln!(
            out,
            "demo concert (200 seats, a 500-place standing floor): {concert}"
        )?;
        for (email, _, role) in DEMO_USERS {
            writeln!(out, "login: {email} / {DEMO_PASSWORD} ({})", role.as_str())?;
        }
        writeln!(out, "customer token: {token}")?;
    }
    Ok(())
}

/// A generated catalog, with what was inserted and how long it took.
pub(super) async fn catalog(
    settings: &Settings,
    pool: &sqlx::PgPool,
    size: CatalogSize,
    seed: u64,
    json: bool,
    out: &mut impl Write,
    report: &mut serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let scale = size.scale();
    let opts =
        seed::catalog::Options::starting_tomorrow(seed, settings.catalog.cleaning_buffer_min);
    let catalog = seed::catalog::generate(scale, &opts);
    let inserted = seed::catalog::insert(pool, &catalog)
        .await
        .context("inserting the catalog")?;
    // Concerts, a match, a play and a comedy night beside the movies.
    let events = seed::catalog::insert(pool, &seed::catalog::generate_events(scale, &opts))
        .await
        .context("inserting the events")?;
    let secs = started.elapsed().as_secs_f64();
    if json {
        report.insert(
            "catalog".into(),
            json!({"scale": scale.name, "seed": seed, "first_day": opts.first_day.to_string(),
                   "inserted": inserted, "events": events, "seconds": secs}),
        );
    } else {
        writeln!(
            out,
            "catalog {} (seed {seed}, shows from {}): inserted {} theaters, {} screens, {} movies, \
             {} shows, {} prices, and {} events with {} venues and {} shows in {secs:.1} s \
             (rows already there are left as they are)",
            scale.name,
            opts.first_day,
            inserted.theaters,
            inserted.screens,
            inserted.movies,
            inserted.shows,
            inserted.prices,
            events.movies,
            events.theaters,
            events.shows
        )?;
    }
    Ok(())
}
