//! `loadgen`: fires booking requests at a running ingress and reports throughput,
//! latency, the oversell check and the memory of the processes under test.
//!
//! It reads the same settings as the services (`platform::Settings::load()`), so it
//! writes its users and shows into the database the services use and signs tokens
//! with their secret. Every run makes fresh users and shows.

mod fire;
mod observe;
mod setup;
mod watch;

use anyhow::Context;
use auth::{Role, TokenKeys};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::header::HeaderValue;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scenario {
    /// One show with `--seats` seats; every request fights for it.
    Hot,
    /// `--shows` shows of `--show-layout`, requests spread at random.
    Many,
}

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Fire POST /v1/bookings at a running ingress; report throughput, latency, oversell and memory.",
    version
)]
struct Cli {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Booking requests to fire.
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    /// Most requests in flight at once (also the number of connections opened).
    #[arg(long, default_value_t = 1_000)]
    concurrency: usize,
    /// Seats of the hot show (rows of 25).
    #[arg(long, default_value_t = 500)]
    seats: usize,
    /// Shows of the `many` scenario.
    #[arg(long, default_value_t = 1_000)]
    shows: usize,
    /// Layout of each show of the `many` scenario, ROWSxSEATS.
    #[arg(long, default_value = "5x10")]
    show_layout: String,
    /// Accounts the requests are spread over.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// Role of those accounts and their tokens. A role in `rate_limit.exempt_roles`
    /// (`operator` by default) keeps the run from being rate limited: a few hundred
    /// users firing thousands of requests each would otherwise mostly measure 429s.
    #[arg(long, default_value = "customer", value_parser = parse_role)]
    role: Role,
    /// Percent of requests that choose one random seat; the rest ask for 1-3 best available.
    #[arg(long, default_value_t = 50)]
    chosen_percent: u8,
    /// Processes to watch, by name as in /proc/<pid>/comm (peak RSS, CPU time).
    #[arg(long, value_delimiter = ',')]
    pids_of: Vec<String>,
    /// Processes to watch by id, LABEL=PID (repeatable).
    #[arg(long = "pid")]
    pids: Vec<String>,
    /// Prometheus pages to diff across the run (histogram counts, means, quantiles).
    #[arg(long, value_delimiter = ',')]
    metrics_url: Vec<String>,
    /// Before the clock starts, send one booking per show and wait for its decision,
    /// so that the runners have loaded every show (measures the steady state
    /// rather than the first touch).
    #[arg(long)]
    prime: bool,
    /// Send at most this many requests per second (an open schedule); unlimited when absent.
    #[arg(long)]
    rate: Option<f64>,
    /// Open `--concurrency` keep-alive connections before the clock starts.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    warm_up: bool,
    /// How to watch for decisions: tail booking_events by seq (cheap), or probe
    /// every pending id in bookings at each poll.
    #[arg(long, value_enum, default_value = "tail")]
    watch: watch::Mode,
    /// With `--watch tail`: how far back (in time) each poll re-reads, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    lookback_ms: u64,
    /// Pause between two polls of PostgreSQL for decisions, in milliseconds.
    #[arg(long, default_value_t = 25)]
    poll_ms: u64,
    /// How long to wait for decisions after the last answer, in seconds.
    #[arg(long, default_value_t = 120)]
    wait_secs: u64,
    /// Seed of the request mix (random when absent).
    #[arg(long)]
    seed: Option<u64>,
    /// Pay every booking with this card of the local gateway (e.g. `pm_card_ok`) and
    /// also measure submit->confirmed and confirmed/s.
    #[arg(long)]
    payment_method: Option<String>,
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

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

fn quantiles(h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return "n/a".to_owned();
    }
    format!(
        "p50 {}  p90 {}  p99 {}  max {}  (n={})",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.90)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        h.len()
    )
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

async fn run(cli: Cli) -> anyhow::Result<i32> {
    let settings = platform::Settings::load().context("loading settings")?;
    let pool = platform::db::pool(&settings.database)?;
    platform::db::wait_ready(&pool, Duration::from_secs(30)).await?;
    let keys = TokenKeys::new(
        &settings.auth.jwt_secret,
        settings.auth.access_token_ttl_secs,
    );
    let base = cli.base_url.trim_end_matches('/').to_owned();
    let run_id = Uuid::new_v4().simple().to_string()[..8].to_owned();
    anyhow::ensure!(
        cli.requests > 0 && cli.concurrency > 0 && cli.users > 0,
        "requests, concurrency and users must be positive"
    );

    // --- setup (not timed) -------------------------------------------------
    let setup_started = Instant::now();
    warn_if_limited(&settings.rate_limit, cli.role);
    let tokens: Vec<HeaderValue> = setup::users(&pool, &keys, &run_id, cli.users, cli.role)
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
        Scenario::Many => {
            let (r, c) = parse_layout(&cli.show_layout)?;
            (cli.shows.max(1), r, c)
        }
    };
    let shows = setup::shows(&pool, &run_id, count, rows, per_row).await?;
    let capacity: HashMap<Uuid, usize> = shows.iter().map(|s| (s.id.0, s.seats.len())).collect();
    let show_ids: Vec<Uuid> = shows.iter().map(|s| s.id.0).collect();
    let mut rng = match cli.seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_os_rng(),
    };
    let planned = fire::plan(
        &mut rng,
        &shows,
        cli.users,
        cli.requests,
        &run_id,
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
        setup_started.elapsed().as_secs_f64()
    );

    let client = fire::client()?;
    let mut watched: Vec<observe::Watched> = cli
        .pids_of
        .iter()
        .filter(|n| !n.is_empty())
        .map(|n| observe::Watched {
            label: n.clone(),
            name: Some(n.clone()),
            pids: vec![],
        })
        .collect();
    for p in &cli.pids {
        let (label, pid) = p.split_once('=').context("--pid takes LABEL=PID")?;
        watched.push(observe::Watched {
            label: label.to_owned(),
            name: None,
            pids: vec![pid.parse().context("--pid takes LABEL=PID")?],
        });
    }
    watched.push(observe::Watched {
        label: "loadgen (self)".to_owned(),
        name: None,
        pids: vec![std::process::id()],
    });
    // Resident memory before the warm-up: the processes with no client connection.
    let rss_idle: Vec<Option<u64>> = watched
        .iter()
        .map(|w| {
            w.current()
                .iter()
                .filter_map(|p| observe::status_kib(*p, "VmRSS"))
                .max()
        })
        .collect();
    if cli.warm_up {
        let started = Instant::now();
        let (held, failed) = fire::warm_up(&client, &base, cli.concurrency, 5).await;
        println!(
            "warm-up: {held} keep-alive connections held after {:.2} s ({failed} warm-up requests failed)",
            started.elapsed().as_secs_f64()
        );
    }
    if cli.prime {
        let started = Instant::now();
        let plan = fire::prime_plan(&shows, cli.users, &run_id)?;
        let n = plan.len();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let watcher = tokio::spawn(watch::watch(
            pool.clone(),
            rx,
            started,
            watch::Options {
                mode: cli.watch,
                every: Duration::from_millis(cli.poll_ms),
                lookback: Duration::from_millis(cli.lookback_ms),
                limit: Duration::from_secs(cli.wait_secs),
            },
        ));
        let primed = fire::fire(
            &client,
            &base,
            &tokens,
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
    }

    let mut metrics_before = vec![];
    for url in &cli.metrics_url {
        metrics_before.push(observe::scrape(&client, url).await.unwrap_or_default());
    }
    let rss_before: Vec<Option<u64>> = watched
        .iter()
        .map(|w| {
            w.current()
                .iter()
                .filter_map(|p| observe::status_kib(*p, "VmRSS"))
                .max()
        })
        .collect();
    let listen_before = observe::listen_overflows();
    let port = reqwest::Url::parse(&base)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(80);
    let conns_before = fire::established_to(port);
    let cpu_before: Vec<_> = watched.iter().map(observe::Watched::cpu).collect();
    let all_before = observe::all_cpu();
    let machine_before = observe::machine_jiffies();

    // --- the run -------------------------------------------------------------
    let t0 = Instant::now();
    let t0_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let watcher = tokio::spawn(watch::watch(
        pool.clone(),
        rx,
        t0,
        watch::Options {
            mode: cli.watch,
            every: Duration::from_millis(cli.poll_ms),
            lookback: Duration::from_millis(cli.lookback_ms),
            limit: Duration::from_secs(cli.wait_secs),
        },
    ));
    let rate = cli.rate.filter(|r| *r > 0.0);
    let fired = fire::fire(
        &client,
        &base,
        &tokens,
        planned,
        cli.concurrency,
        rate,
        t0,
        tx,
    )
    .await?;
    let w = watcher.await??;
    let run_wall = t0.elapsed();
    let cpu_after: Vec<_> = watched.iter().map(observe::Watched::cpu).collect();
    let all_after = observe::all_cpu();
    let machine_after = observe::machine_jiffies();
    let listen_after = observe::listen_overflows();
    let conns_after = fire::established_to(port);
    let mut metrics_lines = vec![];
    for (url, before) in cli.metrics_url.iter().zip(&metrics_before) {
        match observe::scrape(&client, url).await {
            Ok(after) => {
                metrics_lines.push(format!("{url}:"));
                metrics_lines.extend(
                    observe::describe_delta(before, &after)
                        .into_iter()
                        .map(|l| format!("  {l}")),
                );
            }
            Err(e) => metrics_lines.push(format!("{url}: scrape failed: {e}")),
        }
    }

    // --- figures -------------------------------------------------------------
    let mut decided_us = histogram();
    let mut held_us = histogram();
    let mut first_submit = Duration::MAX;
    let mut last_seen = Duration::ZERO;
    let mut held = 0usize;
    for d in w.decided.values() {
        let lat = micros(d.seen.saturating_sub(d.submitted));
        decided_us.saturating_record(lat);
        if d.held {
            held += 1;
            held_us.saturating_record(lat);
        }
        first_submit = first_submit.min(d.submitted);
        last_seen = last_seen.max(d.seen);
    }
    let decided = w.decided.len();
    let rejected = decided - held;

    // The database's own clock: the first event of each booking was recorded in the
    // transaction that decided it (`recorded_at` = that transaction's start).
    let ids: Vec<Uuid> = w.decided.keys().copied().collect();
    let recorded: Vec<(Uuid, f64)> = sqlx::query_as(
        "select booking_id, extract(epoch from min(recorded_at))::float8
           from booking_events where booking_id = any($1) group by booking_id",
    )
    .bind(&ids)
    .fetch_all(&pool)
    .await?;
    let mut db_decided_us = histogram();
    let mut db_last = f64::MIN;
    for (id, at) in &recorded {
        if let Some(d) = w.decided.get(id) {
            let submit_epoch = t0_epoch + d.submitted.as_secs_f64();
            db_decided_us.saturating_record(((at - submit_epoch).max(0.0) * 1e6) as u64);
            db_last = db_last.max(*at);
        }
    }

    // --- payments: held -> payment_pending -> confirmed (or failed) -------------
    let held_ids: Vec<Uuid> = w
        .decided
        .iter()
        .filter(|(_, d)| d.held)
        .map(|(id, _)| *id)
        .collect();
    let mut confirmed_us = histogram();
    let mut confirmed = 0usize;
    let mut confirm_window = 0.0f64;
    let mut unpaid = 0i64;
    if cli.payment_method.is_some() && !held_ids.is_empty() {
        let deadline = Instant::now() + Duration::from_secs(cli.wait_secs);
        loop {
            unpaid = sqlx::query_scalar(
                "select count(*) from bookings
                  where id = any($1) and status in ('held', 'payment_pending')",
            )
            .bind(&held_ids)
            .fetch_one(&pool)
            .await?;
            if unpaid == 0 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let rows: Vec<(Uuid, f64)> = sqlx::query_as(
            "select booking_id, extract(epoch from recorded_at)::float8 from booking_events
              where booking_id = any($1) and type = 'booking.confirmed'",
        )
        .bind(&held_ids)
        .fetch_all(&pool)
        .await?;
        let first_submit_epoch = t0_epoch + first_submit.as_secs_f64();
        let mut last = first_submit_epoch;
        for (id, at) in &rows {
            if let Some(d) = w.decided.get(id) {
                let submit_epoch = t0_epoch + d.submitted.as_secs_f64();
                confirmed_us.saturating_record(((at - submit_epoch).max(0.0) * 1e6) as u64);
                last = last.max(*at);
            }
        }
        confirmed = rows.len();
        confirm_window = last - first_submit_epoch;
    }

    // --- the oversell check ---------------------------------------------------
    let doubled: i64 = sqlx::query_scalar(
        "select count(*) from (
             select show_id, seat_id from booking_seats
              where released_at is null and show_id = any($1)
              group by 1, 2 having count(*) > 1) x",
    )
    .bind(&show_ids)
    .fetch_one(&pool)
    .await?;
    let live: Vec<(Uuid, i64)> = sqlx::query_as(
        "select show_id, count(*) from booking_seats
          where released_at is null and show_id = any($1) group by 1",
    )
    .bind(&show_ids)
    .fetch_all(&pool)
    .await?;
    let live_seats: i64 = live.iter().map(|(_, n)| n).sum();
    let over_capacity: Vec<&(Uuid, i64)> = live
        .iter()
        .filter(|(s, n)| usize::try_from(*n).unwrap_or(usize::MAX) > capacity[s])
        .collect();
    let total_capacity: usize = capacity.values().sum();
    let full_shows = live
        .iter()
        .filter(|(s, n)| usize::try_from(*n).unwrap_or(0) == capacity[s])
        .count();

    // --- report ------------------------------------------------------------------
    let fire_s = fired.elapsed.as_secs_f64();
    let decide_window = last_seen.saturating_sub(first_submit).as_secs_f64();
    println!();
    println!("== loadgen {:?} (run {run_id}) ==", cli.scenario);
    println!(
        "requests          {} at concurrency {}{} (most in flight: {})",
        cli.requests,
        cli.concurrency,
        cli.rate
            .map(|r| format!(", paced at {r:.0}/s"))
            .unwrap_or_default(),
        fired.max_in_flight
    );
    let statuses: Vec<String> = fired
        .statuses
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    println!("answers           {}", statuses.join(", "));
    println!(
        "accepted          {} in {:.2} s = {:.0} accepted/s",
        fired.accepted,
        fire_s,
        fired.accepted as f64 / fire_s
    );
    println!(
        "decided           {decided} (held {held}, rejected {rejected}), last seen {:.2} s after the first submit = {:.0} decided/s",
        decide_window,
        decided as f64 / decide_window.max(1e-9)
    );
    if db_last > f64::MIN {
        let db_window = db_last - (t0_epoch + first_submit.as_secs_f64());
        println!(
            "                  by the database's clock (last decision transaction began {:.2} s after the first submit): {:.0} decided/s",
            db_window,
            decided as f64 / db_window.max(1e-9)
        );
    }
    if !w.other_statuses.is_empty() {
        println!("other statuses    {:?}", w.other_statuses);
    }
    if !w.undecided.is_empty() {
        println!(
            "UNDECIDED         {} accepted bookings had no row {} s after the last answer (e.g. {})",
            w.undecided.len(),
            cli.wait_secs,
            w.undecided[0].0
        );
    }
    println!("run wall time     {:.2} s", run_wall.as_secs_f64());
    println!("connections       {conns_before} established at the start, {conns_after} at the end");
    if let (Some((o0, d0)), Some((o1, d1))) = (listen_before, listen_after) {
        println!(
            "TCP listen queue  {} overflows, {} drops during the run (SYNs dropped: the client retries after 1 s, 3 s, ...)",
            o1 - o0,
            d1 - d0
        );
    }
    println!("HTTP accept (202) {}", quantiles(&fired.accept_us));
    if !fired.other_us.is_empty() {
        println!("HTTP other        {}", quantiles(&fired.other_us));
    }
    println!(
        "submit->decided   {}   [loadgen sees the row; poll every {} ms + query time]",
        quantiles(&decided_us),
        cli.poll_ms
    );
    println!("submit->held      {}", quantiles(&held_us));
    println!(
        "submit->decided   {}   [database clock: booking_events.recorded_at, a lower bound]",
        quantiles(&db_decided_us)
    );
    println!(
        "watcher           {:?}: {} polls, mean {:.1} ms, max {:.1} ms, most pending {}{}",
        cli.watch,
        w.polls,
        w.poll_time.as_secs_f64() * 1000.0 / (w.polls.max(1) as f64),
        w.poll_max.as_secs_f64() * 1000.0,
        w.max_pending,
        if cli.watch == watch::Mode::Tail {
            format!(
                ", {} missed by the tail and found by the once-a-second id lookup",
                w.missed_by_tail
            )
        } else {
            String::new()
        }
    );
    if let Some(pm) = &cli.payment_method {
        println!(
            "paid ({pm})  {confirmed} confirmed of {} held, {unpaid} still unpaid; {:.0} confirmed/s (first submit to last confirmation)",
            held_ids.len(),
            confirmed as f64 / confirm_window.max(1e-9)
        );
        println!(
            "submit->confirmed {}   [database clock: booking_events.recorded_at of booking.confirmed]",
            quantiles(&confirmed_us)
        );
    }
    println!(
        "seats             {live_seats} live of {total_capacity} ({full_shows} of {} shows full)",
        shows.len()
    );
    println!(
        "oversell          {doubled} doubly allocated seats, {} shows over capacity -> {}",
        over_capacity.len(),
        if doubled == 0 && over_capacity.is_empty() {
            "OK"
        } else {
            "OVERSOLD"
        }
    );
    let (machine_busy, machine_steal) = match (machine_before, machine_after) {
        (Some((b0, s0, t0)), Some((b1, s1, t1))) if t1 > t0 => (
            Some((b1 - b0) as f64 / (t1 - t0) as f64 * 100.0),
            Some((s1 - s0) as f64 / (t1 - t0) as f64 * 100.0),
        ),
        _ => (None, None),
    };
    println!(
        "processes         (CPU seconds during the run; peak resident memory; the machine's {} cores were {} busy, {} stolen by the hypervisor)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        machine_busy.map_or_else(|| "?".to_owned(), |b| format!("{b:.0}%")),
        machine_steal.map_or_else(|| "?".to_owned(), |b| format!("{b:.0}%"))
    );
    let mut procs = BTreeMap::new();
    for (i, wch) in watched.iter().enumerate() {
        let cpu = observe::cpu_between(&cpu_before[i], &cpu_after[i]);
        let pids = wch.current();
        let hwm = pids
            .iter()
            .filter_map(|p| observe::status_kib(*p, "VmHWM"))
            .max();
        let rss = pids
            .iter()
            .filter_map(|p| observe::status_kib(*p, "VmRSS"))
            .max();
        let mem = match (pids.len(), hwm) {
            (_, None) => "memory n/a".to_owned(),
            (1, Some(h)) => format!(
                "VmHWM {:.1} MiB, VmRSS {:.1} MiB (before the warm-up {:.1} MiB, at the start {:.1} MiB)",
                h as f64 / 1024.0,
                rss.unwrap_or(0) as f64 / 1024.0,
                rss_idle[i].unwrap_or(0) as f64 / 1024.0,
                rss_before[i].unwrap_or(0) as f64 / 1024.0
            ),
            (n, Some(h)) => format!(
                "{n} processes, largest VmHWM {:.1} MiB (shared memory counted in each)",
                h as f64 / 1024.0
            ),
        };
        println!(
            "  {:<16} cpu {:.2} s ({:.0}% of one core), {mem}",
            wch.label,
            cpu,
            100.0 * cpu / run_wall.as_secs_f64(),
        );
        procs.insert(
            wch.label.clone(),
            serde_json::json!({ "pids": pids, "cpu_s": cpu, "vm_hwm_kib": hwm, "vm_rss_kib": rss, "vm_rss_start_kib": rss_before[i], "vm_rss_idle_kib": rss_idle[i] }),
        );
    }
    let known: std::collections::HashSet<u32> = cpu_before
        .iter()
        .chain(&cpu_after)
        .flat_map(|m| m.keys().copied())
        .collect();
    let (other_cpu, top) = observe::others(&all_before, &all_after, &known, 4);
    let top: Vec<String> = top.iter().map(|(n, c)| format!("{n} {c:.2} s")).collect();
    println!(
        "  {:<16} cpu {:.2} s ({:.0}% of one core){}",
        "everything else",
        other_cpu,
        100.0 * other_cpu / run_wall.as_secs_f64(),
        if top.is_empty() {
            String::new()
        } else {
            format!(": {}", top.join(", "))
        }
    );
    for l in &metrics_lines {
        println!("{l}");
    }
    let q = |h: &Histogram<u64>, q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q));
    let summary = serde_json::json!({
        "scenario": format!("{:?}", cli.scenario).to_lowercase(),
        "run": run_id,
        "requests": cli.requests,
        "concurrency": cli.concurrency,
        "rate": cli.rate,
        "statuses": fired.statuses,
        "accepted": fired.accepted,
        "accepted_per_s": fired.accepted as f64 / fire_s,
        "decided": decided,
        "held": held,
        "rejected": rejected,
        "undecided": w.undecided.len(),
        "missed_by_tail": w.missed_by_tail,
        "decided_per_s": decided as f64 / decide_window.max(1e-9),
        "accept_us": [q(&fired.accept_us, 0.5), q(&fired.accept_us, 0.9), q(&fired.accept_us, 0.99), fired.accept_us.max()],
        "decided_us": [q(&decided_us, 0.5), q(&decided_us, 0.9), q(&decided_us, 0.99), decided_us.max()],
        "held_us": [q(&held_us, 0.5), q(&held_us, 0.9), q(&held_us, 0.99), held_us.max()],
        "db_decided_us": [q(&db_decided_us, 0.5), q(&db_decided_us, 0.9), q(&db_decided_us, 0.99), db_decided_us.max()],
        "payment_method": cli.payment_method,
        "confirmed": confirmed,
        "confirmed_per_s": confirmed as f64 / confirm_window.max(1e-9),
        "confirmed_us": [q(&confirmed_us, 0.5), q(&confirmed_us, 0.9), q(&confirmed_us, 0.99), confirmed_us.max()],
        "oversold_seats": doubled,
        "shows_over_capacity": over_capacity.len(),
        "machine_busy_percent": machine_busy,
        "machine_steal_percent": machine_steal,
        "processes": procs,
    });
    println!("SUMMARY {summary}");
    if doubled > 0 || !over_capacity.is_empty() {
        eprintln!(
            "loadgen: OVERSOLD: {doubled} seats doubly allocated, {over_capacity:?} over capacity"
        );
        return Ok(2);
    }
    Ok(0)
}
