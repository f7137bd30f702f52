//! The fault-injection soak (`scripts/soak.sh`, docs/reliability.md): the real
//! `ingress` and `workers` binaries on a PostgreSQL cluster, a RabbitMQ node and a
//! Redis of the soak's own, customers booking with good and declined cards and
//! cancelling, a seeded schedule of faults (kill -9, SIGSTOP, broker and database
//! stops, restarts and outages, cache loss), then quiescence and the invariants:
//! every 202 decided exactly once, nothing oversold, money reconciled with the
//! gateway, no accepted booking answered 404, one email per event.

pub mod check;
pub mod drive;
pub mod procs;
pub mod report;
pub mod schedule;
pub mod stack;
pub mod system;

use anyhow::Context;
use clap::Parser;
use loadgen::setup;
use rand::SeedableRng;
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "soak",
    about = "Fault-injection soak of the real ingress and workers on stores of its own",
    version
)]
pub struct Options {
    /// Seed of the fault schedule and of the customers' choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Minutes of load (faults are fitted into them); quiescence and checks follow.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Fault kinds to draw from (comma-separated; all by default).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub faults: Vec<schedule::Kind>,
    /// Shortest and longest pause between two faults, in seconds.
    #[arg(long, num_args = 2, default_values_t = [20.0, 40.0])]
    pub gap: Vec<f64>,
    /// Concurrent customers.
    #[arg(long, default_value_t = 12)]
    pub users: usize,
    /// Shows of 10 rows of 20 seats (default: 5 per minute of load, so that seats
    /// stay on sale for the whole run).
    #[arg(long)]
    pub shows: Option<usize>,
    /// Hold lifetime of the services (declined and unpaid bookings end after it).
    #[arg(long, default_value_t = 20)]
    pub hold_ttl_secs: u64,
    /// Partition queues.
    #[arg(long, default_value_t = 4)]
    pub partitions: u16,
    /// Longest wait for every accepted booking to be final after the load.
    #[arg(long, default_value_t = 180)]
    pub quiesce_secs: u64,
    /// Folder of the built `ingress` and `workers` (default: this program's own).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Folder for the stores' data, logs and mail (default: a new one under /tmp).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Keep the folder even when every check passed.
    #[arg(long)]
    pub keep: bool,
    /// Checks whose failure is reported but does not fail the run (known open bugs).
    #[arg(long, value_delimiter = ',')]
    pub allow: Vec<String>,
}

/// The result: every check, and whether the run passes.
pub struct Outcome {
    pub checks: Vec<check::Check>,
    pub passed: bool,
    pub work_dir: PathBuf,
}

fn bin_dir(o: &Options) -> anyhow::Result<PathBuf> {
    if let Some(d) = &o.bin_dir {
        return Ok(d.clone());
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("no parent folder")?;
    // A test executable lives in target/<profile>/deps; the binaries one up.
    Ok(if dir.ends_with("deps") {
        dir.parent().context("no profile folder")?.to_owned()
    } else {
        dir.to_owned()
    })
}

/// Runs the soak to the end; everything it started is stopped on return (also on
/// an error or when the future is dropped).
pub async fn run(o: Options) -> anyhow::Result<Outcome> {
    drop(rustls::crypto::ring::default_provider().install_default());
    let bins = bin_dir(&o)?;
    procs::check_binaries(&bins)?;
    let work = o.work_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("soak-{}-{}", o.seed, std::process::id()))
    });
    std::fs::create_dir_all(work.join("logs"))?;
    println!(
        "soak: seed {}, folder {}, binaries in {} ({})",
        o.seed,
        work.display(),
        bins.display(),
        procs::ages(&bins)
    );
    let [pg_port, amqp_port, dist_port, redis_port, ingress_port] = stack::free_ports()?;
    let stores = Stores::start(&o, &work, [pg_port, amqp_port, dist_port, redis_port]).await?;
    let settings = stores.settings.clone();

    // The gateway and the mail sink are never faulted; they stop with `stop`.
    let stop = CancellationToken::new();
    let _stop_guard = stop.clone().drop_guard();
    let mail = work.join("mail");
    let wiring = start_stand_ins(&o, &stores, &mail, ingress_port, &stop).await?;
    let gateway_client = payment_adapter::HttpGateway::new(
        &wiring.gateway_url,
        settings.payments.gateway_api_key.expose_secret(),
        Duration::from_secs(5),
        3,
    );

    let logs = work.join("logs");
    let mut sys = system::System {
        ingress: procs::Proc::new("ingress", &bins, "ingress", &wiring, &logs),
        workers: (1..=2)
            .map(|i| procs::Proc::new(&format!("workers-{i}"), &bins, "workers", &wiring, &logs))
            .collect(),
        pool: platform::db::pool(&settings.database)?,
        pg: stores.pg,
        rabbit: stores.rabbit,
        redis: stores.redis,
        t0: Instant::now(),
        exits: Vec::new(),
    };
    for w in &mut sys.workers {
        w.start()?;
    }
    sys.ingress.start()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .build()?;
    wait_ready(&client, &wiring.base_url(), &mut sys).await?;

    let Driven {
        log,
        capacity,
        runs,
        t0_unix,
    } = drive_with_faults(&o, &settings, &wiring, client, &mut sys).await?;
    let load_end = sys.now();

    // --- quiescence and the checks ---
    let ids: Vec<uuid::Uuid> = log.bookings.keys().copied().collect();
    let (waited, open) =
        check::quiesce(&sys.pool, &ids, Duration::from_secs(o.quiesce_secs)).await?;
    settle_mail(&sys.pool, &mail).await;
    let (mail_check, mail_figures, dup_times) = check::emails(&sys.pool, &ids, &mail).await?;
    let dup_emails: Vec<f64> = dup_times.iter().map(|t| t - t0_unix).collect();
    let checks = vec![
        check::decided_once(&sys.pool, &ids).await?,
        check::settled(&open, waited),
        check::pending_after_decline(&open),
        check::oversold(&sys.pool, &capacity).await?,
        check::reconciled(&sys.pool, &gateway_client, &ids).await?,
        check::no_404(&log),
        check::no_500(&log),
        mail_check,
        check::no_dead_letters(&settings).await?,
    ];
    report::Summary {
        seed: o.seed,
        load_secs: load_end,
        log: &log,
        faults: &runs,
        exits: &sys.exits,
        checks: &checks,
        emails: &mail_figures,
        dup_emails: &dup_emails,
        allowed: &o.allow,
    }
    .print();
    let passed = checks
        .iter()
        .all(|c| c.ok || o.allow.iter().any(|a| a == c.name))
        && runs.iter().all(|r| r.error.is_none());
    sys.shutdown().await;
    if passed && !o.keep {
        drop(std::fs::remove_dir_all(&work));
    } else {
        println!("soak: logs, data and mail kept in {}", work.display());
    }
    Ok(Outcome {
        checks,
        passed,
        work_dir: work,
    })
}

/// The soak's own PostgreSQL, RabbitMQ and Redis, migrated, with the topology
/// declared, and the settings that reach them.
struct Stores {
    pg: stack::Postgres,
    rabbit: stack::Rabbit,
    redis: stack::Redis,
    settings: platform::Settings,
}

impl Stores {
    async fn start(o: &Options, work: &std::path::Path, ports: [u16; 4]) -> anyhow::Result<Self> {
        let [pg_port, amqp_port, dist_port, redis_port] = ports;
        let pg = stack::Postgres::init(work, pg_port).await?;
        let admin = sqlx::PgPool::connect(&pg.url("postgres")).await?;
        sqlx::query("create database booking")
            .execute(&admin)
            .await?;
        admin.close().await;
        let rabbit = stack::Rabbit::init(work, amqp_port, dist_port).await?;
        let redis = stack::Redis::init(work, redis_port).await?;

        let mut settings = platform::Settings::load_for(platform::settings::AppEnv::Development)?;
        settings.database.url = pg.url("booking");
        settings.amqp.url = rabbit.url();
        settings.amqp.partitions = o.partitions;
        settings.amqp.prefix = String::new();
        settings.redis.url = redis.url();
        for args in [["bookctl", "migrate"], ["bookctl", "topology"]] {
            let mut out = Vec::new();
            bookctl::cli::run(
                &settings,
                bookctl::cli::Cli::parse_from(args),
                &mut out,
                None,
            )
            .await
            .with_context(|| args.join(" "))?;
        }
        Ok(Stores {
            pg,
            rabbit,
            redis,
            settings,
        })
    }
}

/// Starts the mail sink and the local gateway (stopped by `stop`), and returns how
/// the platform's processes reach everything.
async fn start_stand_ins(
    o: &Options,
    stores: &Stores,
    mail: &std::path::Path,
    ingress_port: u16,
    stop: &CancellationToken,
) -> anyhow::Result<procs::Wiring> {
    let settings = &stores.settings;
    let sink = smtp_sink::SmtpSink::bind(smtp_sink::SinkConfig {
        listen: "127.0.0.1:0".into(),
        dir: mail.to_owned(),
        refuse_first: 0,
        reject_pattern: None,
    })
    .await?;
    let gateway = local_gateway::LocalGateway::build(local_gateway::LocalGatewayConfig {
        webhook_url: Some(format!(
            "http://127.0.0.1:{ingress_port}/v1/payments/webhook"
        )),
        api_key: settings.payments.gateway_api_key.expose_secret().to_owned(),
        webhook_secret: settings.payments.webhook_secret.expose_secret().to_owned(),
        seed: Some(o.seed),
        ..Default::default()
    })
    .await?;
    let wiring = procs::Wiring {
        database_url: settings.database.url.clone(),
        amqp_url: settings.amqp.url.clone(),
        redis_url: settings.redis.url.clone(),
        ingress_port,
        gateway_url: gateway.base_url(),
        smtp_port: sink.port(),
        hold_ttl_secs: o.hold_ttl_secs,
        partitions: o.partitions,
    };
    let s = stop.clone();
    tokio::spawn(sink.run_until_stopped(async move { s.cancelled().await }));
    let s = stop.clone();
    tokio::spawn(gateway.run_until_stopped(async move { s.cancelled().await }));
    Ok(wiring)
}

/// What the load and the faults left for the checks.
struct Driven {
    /// What the customers saw.
    log: drive::Log,
    /// Seats of each show.
    capacity: HashMap<uuid::Uuid, usize>,
    /// The faults as they ran.
    runs: Vec<system::FaultRun>,
    /// The load's start, in Unix seconds.
    t0_unix: f64,
}

/// Seeds the customers and shows, then drives the load while the seeded schedule's
/// faults are injected one after the other.
async fn drive_with_faults(
    o: &Options,
    settings: &platform::Settings,
    wiring: &procs::Wiring,
    client: reqwest::Client,
    sys: &mut system::System,
) -> anyhow::Result<Driven> {
    let keys = auth::TokenKeys::new(&settings.auth.jwt_secret, 7 * 24 * 3600);
    let run_id = format!("{}", o.seed);
    let tokens = setup::users(&sys.pool, &keys, &run_id, o.users, auth::Role::Operator)
        .await?
        .into_iter()
        .map(|t| reqwest::header::HeaderValue::from_str(&format!("Bearer {t}")))
        .collect::<Result<Vec<_>, _>>()?;
    let show_count = o.shows.unwrap_or((o.minutes * 5.0).ceil() as usize).max(1);
    let shows = setup::shows(&sys.pool, &run_id, show_count, 10, 20).await?;
    let capacity: HashMap<uuid::Uuid, usize> =
        shows.iter().map(|s| (s.id.0, s.seats.len())).collect();

    let load_secs = o.minutes * 60.0;
    let kinds = if o.faults.is_empty() {
        schedule::Kind::ALL.to_vec()
    } else {
        o.faults.clone()
    };
    let gap = (o.gap[0], o.gap[1].max(o.gap[0] + 0.1));
    let mut rng = rand::rngs::StdRng::seed_from_u64(o.seed);
    let plan = schedule::draw(&mut rng, &kinds, load_secs, gap);
    schedule::print(&plan);
    sys.t0 = Instant::now();
    let t0_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    let log = Arc::new(Mutex::new(drive::Log::default()));
    let load = drive::Load {
        base: wiring.base_url(),
        client,
        tokens,
        shows,
        t0: sys.t0,
        until: load_secs,
        stop: load_secs + 60.0,
        seed: o.seed,
        log: log.clone(),
    };
    let load_task = tokio::spawn(drive::run(load, o.users));
    let mut runs = Vec::new();
    for f in &plan {
        sys.wait(f.gap).await;
        let r = sys.inject(f).await;
        println!(
            "  fault {}: {} of {} from {:.1} s to {:.1} s{}",
            runs.len() + 1,
            r.kind,
            r.target,
            r.start,
            r.end,
            r.error
                .as_ref()
                .map(|e| format!(" (FAILED: {e})"))
                .unwrap_or_default()
        );
        runs.push(r);
    }
    while !load_task.is_finished() {
        sys.wait(0.5).await;
    }
    load_task.await?;
    let log = std::mem::take(&mut *log.lock().unwrap());
    Ok(Driven {
        log,
        capacity,
        runs,
        t0_unix,
    })
}

/// Waits for ingress's /readyz (60 s), restarting a process that exits.
async fn wait_ready(
    client: &reqwest::Client,
    base: &str,
    sys: &mut system::System,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "ingress not ready in 60 s: see the logs"
        );
        sys.wait(0.25).await;
    }
}

/// Lets the notifier finish: no send in progress and no new message for 3 s (60 s
/// at most).
async fn settle_mail(pool: &sqlx::PgPool, dir: &std::path::Path) {
    // Longer than a send claim's lease (105 s with the default notifier settings):
    // an event whose sender was killed mid-send is sent again once it ends.
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut last = (usize::MAX, Instant::now());
    while Instant::now() < deadline {
        let files = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let sending: i64 =
            sqlx::query_scalar("select count(*) from sent_messages where status = 'sending'")
                .fetch_one(pool)
                .await
                .unwrap_or(1);
        if files != last.0 {
            last = (files, Instant::now());
        } else if sending == 0 && last.1.elapsed() > Duration::from_secs(3) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
