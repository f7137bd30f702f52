//! `loadgen`: fires booking requests at a running ingress and reports throughput,
//! latency, the oversell check and the memory of the processes under test.
//!
//! It reads the same settings as the services (`platform::Settings::load()`), so it
//! writes its users and shows into the database the services use and signs tokens
//! with their secret. Every run makes fresh users and shows.

mod ceiling;
mod ceiling_run;
mod figures;
mod fire;
mod observe;
mod probe;
mod report;
mod watch;

use anyhow::Context;
use auth::{Role, TokenKeys};
use clap::{Parser, ValueEnum};
use loadgen::setup;
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::header::HeaderValue;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Scenario {
    /// One show with `--seats` seats; every request fights for it.
    Hot,
    /// `--shows` shows of `--show-layout`, requests spread at random.
    Many,
    /// The bare limits of the box: `GET /healthz` on ingress, and one quorum queue
    /// carrying `--requests` persistent messages with confirms (see `ceiling.rs`).
    Ceiling,
}

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Fire POST /v1/bookings at a running ingress; report throughput, latency, oversell and memory.",
    version
)]
pub struct Cli {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    #[arg(long, value_enum)]
    pub scenario: Scenario,
    /// Booking requests to fire.
    #[arg(long, default_value_t = 10_000)]
    pub requests: usize,
    /// Most requests in flight at once (also the number of connections opened).
    #[arg(long, default_value_t = 1_000)]
    pub concurrency: usize,
    /// Seats of the hot show (rows of 25).
    #[arg(long, default_value_t = 500)]
    pub seats: usize,
    /// Shows of the `many` scenario.
    #[arg(long, default_value_t = 1_000)]
    pub shows: usize,
    /// Layout of each show of the `many` scenario, ROWSxSEATS.
    #[arg(long, default_value = "5x10")]
    pub show_layout: String,
    /// Accounts the requests are spread over.
    #[arg(long, default_value_t = 200)]
    pub users: usize,
    /// Role of those accounts and their tokens. A role in `rate_limit.exempt_roles`
    /// (`operator` by default) keeps the run from being rate limited: a few hundred
    /// users firing thousands of requests each would otherwise mostly measure 429s.
    #[arg(long, default_value = "customer", value_parser = parse_role)]
    pub role: Role,
    /// Percent of requests that choose one random seat; the rest ask for 1-3 best available.
    #[arg(long, default_value_t = 50)]
    pub chosen_percent: u8,
    /// Processes to watch, by name as in /proc/<pid>/comm (peak RSS, CPU time).
    #[arg(long, value_delimiter = ',')]
    pub pids_of: Vec<String>,
    /// Processes to watch by id, LABEL=PID (repeatable).
    #[arg(long = "pid")]
    pub pids: Vec<String>,
    /// Prometheus pages to diff across the run (histogram counts, means, quantiles).
    #[arg(long, value_delimiter = ',')]
    pub metrics_url: Vec<String>,
    /// Before the clock starts, send one booking per show and wait for its decision,
    /// so that the runners have loaded every show (measures the steady state
    /// rather than the first touch).
    #[arg(long)]
    pub prime: bool,
    /// Send at most this many requests per second (an open schedule); unlimited when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open `--concurrency` keep-alive connections before the clock starts.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub warm_up: bool,
    /// How to watch for decisions: tail booking_events by seq (cheap), or probe
    /// every pending id in bookings at each poll.
    #[arg(long, value_enum, default_value = "tail")]
    pub watch: watch::Mode,
    /// With `--watch tail`: how far back (in time) each poll re-reads, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub lookback_ms: u64,
    /// Pause between two polls of PostgreSQL for decisions, in milliseconds.
    #[arg(long, default_value_t = 25)]
    pub poll_ms: u64,
    /// How long to wait for decisions after the last answer, in seconds.
    #[arg(long, default_value_t = 120)]
    pub wait_secs: u64,
    /// Seed of the request mix (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Pay every booking with this card of the local gateway (e.g. `pm_card_ok`) and
    /// also measure submit->confirmed and confirmed/s.
    #[arg(long)]
    pub payment_method: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    drop(rustls::crypto::ring::default_provider().install_default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = runtime.block_on(run(cli))?;
    std::process::exit(code);
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn parse_layout(s: &str) -> anyhow::Result<(usize, u16)> {
    let (r, c) = s
        .split_once('x')
        .with_context(|| format!("{s:?} is not ROWSxSEATS (e.g. 5x10)"))?;
    Ok((r.trim().parse()?, c.trim().parse()?))
}

/// Says so when the services will rate-limit this run's users.
fn warn_if_limited(limits: &platform::settings::RateLimitSettings, role: Role) {
    if limits.enabled && !limits.exempt_roles.iter().any(|r| r == role.as_str()) {
        eprintln!(
            "warning: role {} is not in rate_limit.exempt_roles {:?}: expect 429s; pass --role operator to measure the pipeline",
            role.as_str(),
            limits.exempt_roles
        );
    }
}

impl Cli {
    fn watch_options(&self) -> watch::Options {
        watch::Options {
            mode: self.watch,
            every: Duration::from_millis(self.poll_ms),
            lookback: Duration::from_millis(self.lookback_ms),
            limit: Duration::from_secs(self.wait_secs),
        }
    }
}

/// What the untimed setup made: users' tokens, shows and the planned requests.
struct Prepared {
    tokens: Vec<HeaderValue>,
    shows: Vec<setup::BenchShow>,
    capacity: HashMap<Uuid, usize>,
    planned: Vec<fire::Planned>,
}

/// Users, shows and the request mix (not timed).
async fn prepare(
    cli: &Cli,
    settings: &platform::Settings,
    pool: &PgPool,
    run_id: &str,
) -> anyhow::Result<Prepared> {
    let started = Instant::now();
    let keys = TokenKeys::new(
        &settings.auth.jwt_secret,
        settings.auth.access_token_ttl_secs,
    );
    warn_if_limited(&settings.rate_limit, cli.role);
    let tokens: Vec<HeaderValue> = setup::users(pool, &keys, run_id, cli.users, cli.role)
        .await?
        .into_iter()
        .map(|t| HeaderValue::from_str(&format!("Bearer {t}")))
        .collect::<Result<_, _>>()?;
    let (count, rows, per_row) = match cli.scenario {
        Scenario::Hot => {
            anyhow::ensure!(cli.seats > 0, "--seats must be positive");
            let per_row = cli.seats.min(25);
            (1, cli.seats.div_ceil(per_row), u16::try_from(per_row)?)
        }
        // (`ceiling` makes no shows: it returns before this.)
        Scenario::Many | Scenario::Ceiling => {
            let (r, c) = parse_layout(&cli.show_layout)?;
            (cli.shows.max(1), r, c)
        }
    };
    let shows = setup::shows(pool, run_id, count, rows, per_row).await?;
    let capacity = shows.iter().map(|s| (s.id.0, s.seats.len())).collect();
    let mut rng = match cli.seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_os_rng(),
    };
    let planned = fire::plan(
        &mut rng,
        &shows,
        cli.users,
        cli.requests,
        run_id,
        cli.chosen_percent,
        cli.payment_method.as_deref(),
    )?;
    println!(
        "run {run_id}: scenario {:?}, {} requests, concurrency {}, {} show(s) of {} seats ({}x{}), {} users; setup took {:.1} s",
        cli.scenario,
        cli.requests,
        cli.concurrency,
        shows.len(),
        rows * usize::from(per_row),
        rows,
        per_row,
        cli.users,
        started.elapsed().as_secs_f64()
    );
    Ok(Prepared {
        tokens,
        shows,
        capacity,
        planned,
    })
}

/// One booking per show, each waited for, so the runners have loaded every show
/// before the clock starts.
async fn prime(
    cli: &Cli,
    client: &reqwest::Client,
    base: &str,
    pool: &PgPool,
    run_id: &str,
    p: &Prepared,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let plan = fire::prime_plan(&p.shows, cli.users, run_id)?;
    let n = plan.len();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn(watch::watch(pool.clone(), rx, started, cli.watch_options()));
    let primed = fire::fire(
        client,
        base,
        &p.tokens,
        plan,
        cli.concurrency.min(n),
        None,
        started,
        tx,
    )
    .await?;
    let w = watcher.await??;
    println!(
        "primed: {} of {n} shows decided {:.2} s after their first booking ({} undecided)",
        w.decided.len(),
        started.elapsed().as_secs_f64(),
        w.undecided.len() + (n - primed.accepted)
    );
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let settings = platform::Settings::load().context("loading settings")?;
    let pool = platform::db::pool(&settings.database)?;
    platform::db::wait_ready(&pool, Duration::from_secs(30)).await?;
    let base = cli.base_url.trim_end_matches('/').to_owned();
    let run_id = Uuid::new_v4().simple().to_string()[..8].to_owned();
    anyhow::ensure!(
        cli.requests > 0 && cli.concurrency > 0 && cli.users > 0,
        "requests, concurrency and users must be positive"
    );
    if matches!(cli.scenario, Scenario::Ceiling) {
        return ceiling_run::run(&cli, &settings, &base).await;
    }
    let mut prepared = prepare(&cli, &settings, &pool, &run_id).await?;
    let client = fire::client()?;
    let probes = probe::Probes::new(&cli.pids_of, &cli.pids, &base, &cli.metrics_url)?;
    if cli.warm_up {
        let started = Instant::now();
        let (held, failed) = fire::warm_up(&client, &base, cli.concurrency, 5).await;
        println!(
            "warm-up: {held} keep-alive connections held after {:.2} s ({failed} warm-up requests failed)",
            started.elapsed().as_secs_f64()
        );
    }
    if cli.prime {
        prime(&cli, &client, &base, &pool, &run_id, &prepared).await?;
    }
    let metrics_before = probes.scrape_all(&client).await;
    let before = probes.snapshot();

    // --- the run -------------------------------------------------------------
    let t0 = Instant::now();
    let t0_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn(watch::watch(pool.clone(), rx, t0, cli.watch_options()));
    let rate = cli.rate.filter(|r| *r > 0.0);
    let planned = std::mem::take(&mut prepared.planned);
    let fired = fire::fire(
        &client,
        &base,
        &prepared.tokens,
        planned,
        cli.concurrency,
        rate,
        t0,
        tx,
    )
    .await?;
    let watched = watcher.await??;
    let mut wall = t0.elapsed();
    let mut after = probes.snapshot();

    // --- figures and report --------------------------------------------------
    let decisions = figures::decisions(&pool, &watched, t0_epoch).await?;
    let payments = match cli.payment_method {
        Some(_) => {
            let wait = Duration::from_secs(cli.wait_secs);
            let p =
                figures::payments(&pool, &watched, t0_epoch, decisions.first_submit, wait).await?;
            // The processes' CPU must cover the payments too, not only the holds.
            wall = t0.elapsed();
            after = probes.snapshot();
            p
        }
        None => figures::Payments::none(decisions.held),
    };
    let metrics_lines = probes.metrics_delta(&client, &metrics_before).await;
    let oversell = figures::oversell(&pool, &prepared.capacity).await?;
    report::Run {
        cli: &cli,
        run_id: &run_id,
        shows: prepared.shows.len(),
        fired: &fired,
        watched: &watched,
        decisions: &decisions,
        payments: &payments,
        oversell: &oversell,
        probes: &probes,
        before: &before,
        after: &after,
        wall,
        t0_epoch,
        metrics_lines: &metrics_lines,
    }
    .print();
    if !oversell.ok() {
        eprintln!(
            "loadgen: OVERSOLD: {} seats doubly allocated, {:?} over capacity",
            oversell.doubled, oversell.over_capacity
        );
        return Ok(2);
    }
    Ok(0)
}
