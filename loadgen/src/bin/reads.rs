//! `reads`: measures the catalog's read path under concurrent clients: movie search
//! (`GET /v1/movies` with city, date and text filters, typos included), live seat
//! maps (`GET /v1/shows/{id}/seats`) and the web app's pages (a deep link's HTML
//! and the app's script and style sheet, gzip accepted, as a browser asks for them),
//! against a running ingress and the catalog in its database (seed it with
//! `bookctl seed --catalog large`).
//!
//! Each of `--concurrency` clients loops for `--duration-secs`: it picks a request
//! kind by `--seats-percent` and `--pages-percent`, sends it over its own keep-alive
//! connection and
//! records the latency. The report gives per-kind counts, errors, throughput and
//! latency percentiles. Requests carry an operator token so that the shared rate
//! limit (which exempts operators) does not turn the benchmark into a 429 count.

use anyhow::Context;
use auth::{Role, TokenKeys};
use clap::Parser;
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Parser)]
#[command(
    name = "reads",
    about = "Benchmark catalog search and seat-map reads.",
    version
)]
struct Cli {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    /// Concurrent clients (each with its own connection).
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
    /// How long to fire, after a warm-up of `--warmup-secs`.
    #[arg(long, default_value_t = 30)]
    duration_secs: u64,
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    /// Percent of requests that read a seat map.
    #[arg(long, default_value_t = 40)]
    seats_percent: u8,
    /// Percent of requests for the web app's pages and assets; the rest (after seat
    /// maps) search movies.
    #[arg(long, default_value_t = 20)]
    pages_percent: u8,
    /// Seed of the request mix (random when absent).
    #[arg(long)]
    seed: Option<u64>,
    /// Mean pause of a client between two requests, in milliseconds (uniform in
    /// 0.5x..1.5x): people read a page before the next click. 0: every client fires
    /// back to back (a closed loop that measures saturation).
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
}

/// What the requests are drawn from: real cities, dates, titles and shows.
struct Corpus {
    cities: Vec<String>,
    dates: Vec<String>,
    titles: Vec<String>,
    genres: Vec<String>,
    shows: Vec<uuid::Uuid>,
}

async fn corpus(pool: &sqlx::PgPool) -> anyhow::Result<Corpus> {
    let cities = sqlx::query_scalar("select distinct city from theaters order by 1")
        .fetch_all(pool)
        .await?;
    let dates = sqlx::query_scalar(
        "select distinct to_char(starts_at at time zone 'UTC', 'YYYY-MM-DD') from shows
          where status = 'on_sale' and starts_at > now() order by 1",
    )
    .fetch_all(pool)
    .await?;
    let titles = sqlx::query_scalar("select title from movies order by id limit 500")
        .fetch_all(pool)
        .await?;
    let genres = sqlx::query_scalar("select distinct unnest(genres) from movies order by 1")
        .fetch_all(pool)
        .await?;
    let shows = sqlx::query_scalar(
        "select id from shows where status = 'on_sale' and starts_at > now()
          order by md5(id::text) limit 20000",
    )
    .fetch_all(pool)
    .await?;
    let c = Corpus {
        cities,
        dates,
        titles,
        genres,
        shows,
    };
    anyhow::ensure!(
        !c.cities.is_empty() && !c.titles.is_empty() && !c.shows.is_empty(),
        "the catalog is empty: run `bookctl seed --catalog large` first"
    );
    Ok(c)
}

/// A word of a title with one letter dropped half the time (a typo to forgive).
fn query_word(rng: &mut StdRng, title: &str) -> String {
    let words: Vec<&str> = title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 4)
        .collect();
    let word = words.choose(rng).copied().unwrap_or(title);
    let mut chars: Vec<char> = word.chars().collect();
    if chars.len() > 4 && rng.random_bool(0.5) {
        chars.remove(rng.random_range(1..chars.len() - 1));
    }
    chars.into_iter().collect::<String>().to_lowercase()
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Search,
    Seats,
    Page,
}

/// What a browser asks for on a visit: a deep link (the app's HTML), the app's
/// script and style sheet.
const ASSETS: [&str; 2] = ["/assets/js/app.js", "/assets/css/app.css"];

fn request(rng: &mut StdRng, c: &Corpus, base: &str, mix: (u8, u8)) -> (Kind, String) {
    let (seats_percent, pages_percent) = (u32::from(mix.0), u32::from(mix.1));
    let roll = rng.random_range(0..100);
    if roll < seats_percent {
        let show = c.shows.choose(rng).copied().unwrap_or_default();
        return (Kind::Seats, format!("{base}/v1/shows/{show}/seats"));
    }
    if roll < seats_percent + pages_percent {
        let show = c.shows.choose(rng).copied().unwrap_or_default();
        let path = match rng.random_range(0..4) {
            0 => "/".to_owned(),
            1 => format!("/shows/{show}"),
            n => ASSETS[n - 2].to_owned(),
        };
        return (Kind::Page, format!("{base}{path}"));
    }
    let mut params = vec![];
    if let Some(city) = c.cities.choose(rng) {
        params.push(("city", city.clone()));
    }
    if rng.random_bool(0.5)
        && let Some(d) = c.dates.choose(rng)
    {
        params.push(("date", d.clone()));
    }
    if rng.random_bool(0.2)
        && let Some(g) = c.genres.choose(rng)
    {
        params.push(("genre", g.clone()));
    }
    if rng.random_bool(0.6)
        && let Some(t) = c.titles.choose(rng)
    {
        params.push(("q", query_word(rng, t)));
    }
    let mut url = reqwest::Url::parse(&format!("{base}/v1/movies")).expect("base url");
    url.query_pairs_mut().extend_pairs(params);
    (Kind::Search, url.to_string())
}

#[derive(Default)]
struct Tally {
    ok: Option<Histogram<u64>>,
    errors: u64,
    statuses: std::collections::BTreeMap<u16, u64>,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static bounds are valid")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    drop(rustls::crypto::ring::default_provider().install_default());
    let settings = platform::Settings::load().context("loading settings")?;
    let pool = platform::db::pool(&settings.database)?;
    let c = Arc::new(corpus(&pool).await?);
    println!(
        "catalog: {} cities, {} dates, {} movies sampled, {} shows sampled",
        c.cities.len(),
        c.dates.len(),
        c.titles.len(),
        c.shows.len()
    );
    let token = TokenKeys::new(&settings.auth.jwt_secret, 24 * 3600)
        .mint(contracts::UserId::new_v7(), Role::Operator)?;
    let seed = cli.seed.unwrap_or_else(rand::random);
    println!(
        "seed {seed}; {} clients, think {} ms, {} s warm-up, {} s measured, {}% seat maps, {}% pages",
        cli.concurrency,
        cli.think_ms,
        cli.warmup_secs,
        cli.duration_secs,
        cli.seats_percent,
        cli.pages_percent
    );
    anyhow::ensure!(
        u32::from(cli.seats_percent) + u32::from(cli.pages_percent) <= 100,
        "--seats-percent and --pages-percent add up to at most 100"
    );
    let base = cli.base_url.trim_end_matches('/').to_owned();
    let tallies: Arc<Mutex<Vec<(Kind, Tally)>>> = Arc::new(Mutex::new(vec![
        (Kind::Search, Tally::default()),
        (Kind::Seats, Tally::default()),
        (Kind::Page, Tally::default()),
    ]));
    let started = Instant::now();
    let measure_from = started + Duration::from_secs(cli.warmup_secs);
    let stop_at = measure_from + Duration::from_secs(cli.duration_secs);
    let mut clients = vec![];
    for i in 0..cli.concurrency {
        let (c, base, token, tallies) = (c.clone(), base.clone(), token.clone(), tallies.clone());
        let mix = (cli.seats_percent, cli.pages_percent);
        let think_ms = cli.think_ms;
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()?;
            let mut rng = StdRng::seed_from_u64(seed.wrapping_add(i as u64));
            let mut local: Vec<(Kind, Tally)> = vec![
                (Kind::Search, Tally::default()),
                (Kind::Seats, Tally::default()),
                (Kind::Page, Tally::default()),
            ];
            for (_, t) in &mut local {
                t.ok = Some(histogram());
            }
            while Instant::now() < stop_at {
                let (kind, url) = request(&mut rng, &c, &base, mix);
                let sent = Instant::now();
                let res = if kind == Kind::Page {
                    // As a browser asks: no token, gzip accepted (the body is read
                    // as it comes, compressed).
                    http.get(&url)
                        .header("accept-encoding", "gzip")
                        .header("accept", "text/html,*/*")
                        .send()
                        .await
                } else {
                    http.get(&url).bearer_auth(&token).send().await
                };
                let status = match res {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        drop(r.bytes().await);
                        s
                    }
                    Err(_) => 0,
                };
                let took = sent.elapsed();
                if think_ms > 0 {
                    let pause = rng.random_range(think_ms / 2..=think_ms + think_ms / 2);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                if sent < measure_from {
                    continue;
                }
                let t = &mut local.iter_mut().find(|(k, _)| *k == kind).expect("kind").1;
                *t.statuses.entry(status).or_default() += 1;
                if status == 200 {
                    let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                    if let Some(h) = t.ok.as_mut() {
                        h.saturating_record(us.max(1));
                    }
                } else {
                    t.errors += 1;
                }
            }
            let mut all = tallies.lock().await;
            for ((_, mine), (_, total)) in local.into_iter().zip(all.iter_mut()) {
                total.errors += mine.errors;
                for (s, n) in mine.statuses {
                    *total.statuses.entry(s).or_default() += n;
                }
                match (&mut total.ok, mine.ok) {
                    (Some(t), Some(m)) => {
                        let _ = t.add(m);
                    }
                    (t @ None, m) => *t = m,
                    _ => {}
                }
            }
            anyhow::Ok(())
        }));
    }
    for c in clients {
        c.await??;
    }
    let secs = cli.duration_secs as f64;
    println!("\nkind    requests   req/s   errors   p50 ms   p95 ms   p99 ms   max ms   statuses");
    for (kind, t) in tallies.lock().await.iter() {
        let h = t.ok.clone().unwrap_or_else(histogram);
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let n: u64 = t.statuses.values().sum();
        println!(
            "{:<7} {:>8} {:>7.0} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>8.1}   {:?}",
            format!("{kind:?}").to_lowercase(),
            n,
            n as f64 / secs,
            t.errors,
            ms(0.50),
            ms(0.95),
            ms(0.99),
            h.max() as f64 / 1000.0,
            t.statuses
        );
    }
    Ok(())
}
