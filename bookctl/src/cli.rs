//! The commands of `bookctl`: parsed by clap, run by [`run`] against the configured
//! services, printed as tables for people or as JSON (`--json`) for scripts.
//!
//! `main` only parses, loads the settings and calls [`run`] with stdout; the tests
//! call [`run`] with a buffer.

use crate::dry_run::{self, DryRunMessage};
use anyhow::Context;
use clap::{ArgGroup, Parser, Subcommand};
use ingress::auth::{Role, TokenKeys};
use ops::dlq::{DlqMessage, Selection};
use platform::Settings;
use serde_json::json;
use std::io::{BufRead, Write};

#[derive(Debug, Parser)]
#[command(
    name = "bookctl",
    about = "Operate the booking platform: schema, broker topology, accounts, tokens, demo data, \
             dead-letter queues and partitions.",
    long_about = "Operate the booking platform: schema, broker topology, accounts, tokens, demo \
                  data, dead-letter queues and partitions.\n\nReads the same configuration as the \
                  services (config/default.toml, APP_CONFIG, APP__SECTION__KEY, DATABASE_URL, \
                  AMQP_URL).",
    version
)]
pub struct Cli {
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Create the database if needed and apply every pending migration.
    Migrate,
    /// Declare every RabbitMQ exchange and queue (idempotent).
    Topology,
    /// Seed data: the demo show and logins, and/or a generated catalog. Seeding the
    /// catalog again adds nothing already there; the demo show moves to tomorrow.
    #[command(group(ArgGroup::new("what").required(true).multiple(true).args(["demo", "catalog"])))]
    Seed {
        /// A theater, a show tomorrow, and admin/operator/customer logins.
        #[arg(long)]
        demo: bool,
        /// A generated catalog: `small` (3 cities, 6 theaters, 12 screens, 20 movies,
        /// about 140 shows over 3 days) or `large` (20 cities, 200 theaters, 800 screens,
        /// 500 movies, about 47,000 shows over two weeks), shows from tomorrow (IST).
        #[arg(long, value_enum)]
        catalog: Option<CatalogSize>,
        /// Seed of the generated catalog: the same seed makes the same catalog.
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCmd,
    },
    /// Print a bearer token for the user with this email.
    MintToken {
        #[arg(long)]
        email: String,
    },
    /// Inspect and replay dead-letter queues (commands that could not be applied).
    #[command(
        long_about = "Inspect and replay dead-letter queues.\n\nA command the sequencer can never \
                      apply (unparseable, for a show that cannot be loaded) is copied to a \
                      dead-letter queue with the reason and its source queue in headers; one that \
                      keeps failing is dead-lettered by the broker past the delivery limit. The safe \
                      path is: list -> show -> replay --dry-run -> replay."
    )]
    Dlq {
        #[command(subcommand)]
        command: DlqCmd,
    },
    /// Each partition: queue depth, consumers, owner (active worker), epoch, last batch.
    Partitions,
    /// Check money against seats over the whole database: every confirmed booking
    /// has a captured payment, every captured payment a ticket or a refund, no seat
    /// is live twice. Exits non-zero when it finds a problem.
    Reconcile,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create an account (does nothing if the email exists).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "customer")]
        role: String,
        #[arg(long, default_value = "")]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCmd {
    /// Every dead-letter queue with its message count and the age of its oldest message.
    List,
    /// Messages of a dead-letter queue: id, death reason and count, source queue,
    /// headers, body.
    #[command(
        long_about = "Messages of a dead-letter queue: id, death reason and count, source queue, \
                      age, headers and body.\n\nThe messages are read with manual acks and put back \
                      (requeued at the back of the queue; order in a dead-letter queue carries no \
                      meaning). Nothing is removed."
    )]
    Show {
        /// The queue, as `dlq list` prints it (the prefix may be left out).
        queue: String,
        /// Most messages to show.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
    },
    /// Publish messages back to their source queue, then remove them from the
    /// dead-letter queue.
    #[command(
        group(ArgGroup::new("which").required(true).args(["ids", "all"])),
        long_about = "Publish messages back to their source queue (for commands: the partition of \
                      their show), wait for the broker's confirm, then remove them from the \
                      dead-letter queue. Messages not selected stay.\n\nSafe to repeat: the \
                      sequencer's inbox makes a message id it has applied a no-op.\n\n--dry-run \
                      loads each show's current state from PostgreSQL, applies the selected \
                      commands with the pure sequencer and prints what would change (seats taken or \
                      freed), publishing and removing nothing."
    )]
    Replay {
        /// The queue, as `dlq list` prints it.
        queue: String,
        /// A message id to replay (repeat for several).
        #[arg(long = "id", value_name = "MESSAGE_ID")]
        ids: Vec<String>,
        /// Replay every message of the queue.
        #[arg(long)]
        all: bool,
        /// Print what the replay would change; publish nothing, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove the named messages for good (asks for confirmation unless --yes).
    Purge {
        /// The queue, as `dlq list` prints it.
        queue: String,
        /// A message id to remove (repeat for several).
        #[arg(long = "id", value_name = "MESSAGE_ID", required = true)]
        ids: Vec<String>,
        /// Do not ask. Without a terminal to ask on, --yes is required.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CatalogSize {
    Small,
    Large,
}

impl CatalogSize {
    pub fn scale(self) -> &'static crate::catalog::Scale {
        match self {
            CatalogSize::Small => &crate::catalog::Scale::SMALL,
            CatalogSize::Large => &crate::catalog::Scale::LARGE,
        }
    }
}

/// Parses `args` (the first one is the program name).
pub fn parse_from<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Cli::try_parse_from(args)
}

/// The accounts the demo seed creates.
const DEMO_USERS: [(&str, &str, Role); 3] = [
    ("admin@demo.local", "Admin", Role::Admin),
    ("operator@demo.local", "Operator", Role::Operator),
    ("customer@demo.local", "Customer", Role::Customer),
];
const DEMO_PASSWORD: &str = "demo-password";

/// Runs `cli`, writing its output to `out`. `input` is where a confirmation is
/// read from: `None` when there is no terminal to ask on.
pub async fn run(
    settings: &Settings,
    cli: Cli,
    out: &mut impl Write,
    input: Option<&mut dyn BufRead>,
) -> anyhow::Result<()> {
    let json = cli.json;
    let pool = || platform::db::pool(&settings.database);
    match cli.command {
        Cmd::Migrate => {
            platform::db::migrate(&settings.database.url)
                .await
                .context("migrating the database")?;
            if json {
                writeln!(out, "{}", json!({"migrated": true}))?;
            } else {
                writeln!(out, "database migrated")?;
            }
        }
        Cmd::Topology => {
            let conn = platform::amqp::connect(&settings.amqp.url, "bookctl").await?;
            let ch = conn.create_channel().await?;
            platform::amqp::declare_topology(
                &ch,
                &settings.topology(),
                settings.amqp.delivery_limit,
            )
            .await?;
            drop(conn.close(200, "bookctl done".into()).await);
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({"partitions": settings.amqp.partitions, "prefix": settings.amqp.prefix})
                )?;
            } else {
                writeln!(
                    out,
                    "topology declared: {} partitions under prefix {:?}",
                    settings.amqp.partitions, settings.amqp.prefix
                )?;
            }
        }
        Cmd::Seed {
            demo,
            catalog,
            seed,
        } => {
            let pool = pool()?;
            let mut report = serde_json::Map::new();
            if demo {
                seed_demo(settings, &pool, json, out, &mut report).await?;
            }
            if let Some(size) = catalog {
                seed_catalog(settings, &pool, size, seed, json, out, &mut report).await?;
            }
            if json {
                writeln!(out, "{}", serde_json::Value::Object(report))?;
            }
        }
        Cmd::User {
            command:
                UserCmd::Create {
                    email,
                    password,
                    role,
                    name,
                },
        } => {
            let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let id = crate::users::create_user(&pool()?, &email, &password, &name, role).await?;
            if json {
                writeln!(out, "{}", json!({"user_id": id.to_string()}))?;
            } else {
                writeln!(out, "{id}")?;
            }
        }
        Cmd::MintToken { email } => {
            let keys = TokenKeys::new(
                &settings.auth.jwt_secret,
                settings.auth.access_token_ttl_secs,
            );
            let token = crate::users::mint_token(&pool()?, &keys, &email).await?;
            if json {
                writeln!(out, "{}", json!({"token": token}))?;
            } else {
                writeln!(out, "{token}")?;
            }
        }
        Cmd::Dlq { command } => dlq(settings, command, json, out, input).await?,
        Cmd::Partitions => {
            let conn = platform::amqp::connect(&settings.amqp.url, "bookctl").await?;
            let res = ops::partitions::list(&conn, &pool()?, &settings.topology()).await;
            drop(conn.close(200, "bookctl done".into()).await);
            let items = res?;
            if json {
                writeln!(out, "{}", json!({ "items": items }))?;
            } else {
                let rows = items
                    .iter()
                    .map(|p| {
                        vec![
                            p.partition.to_string(),
                            p.queue.clone(),
                            p.messages.to_string(),
                            p.consumers.to_string(),
                            p.owner.clone().unwrap_or_else(|| "-".into()),
                            p.epoch.map_or("-".into(), |e| e.to_string()),
                            p.last_batch_at.clone().unwrap_or_else(|| "-".into()),
                            p.last_batch_size.map_or("-".into(), |n| n.to_string()),
                        ]
                    })
                    .collect();
                table(
                    out,
                    &[
                        "PARTITION",
                        "QUEUE",
                        "MESSAGES",
                        "CONSUMERS",
                        "OWNER",
                        "EPOCH",
                        "LAST BATCH AT",
                        "LAST BATCH SIZE",
                    ],
                    rows,
                )?;
            }
        }
        Cmd::Reconcile => {
            let report = ops::reconcile::reconcile(&pool()?).await?;
            if json {
                writeln!(out, "{}", json!(report))?;
            } else {
                writeln!(
                    out,
                    "{} bookings checked: {}",
                    report.bookings,
                    if report.ok {
                        "money and seats agree"
                    } else {
                        "PROBLEMS FOUND"
                    }
                )?;
                let rows = report
                    .problems
                    .iter()
                    .map(|p| {
                        vec![
                            p.kind.to_owned(),
                            p.booking_id.map_or("-".into(), |b| b.to_string()),
                            p.detail.clone(),
                        ]
                    })
                    .collect();
                if !report.ok {
                    table(out, &["PROBLEM", "BOOKING", "DETAIL"], rows)?;
                }
            }
            anyhow::ensure!(
                report.ok,
                "{} reconciliation problem(s)",
                report.problems.len()
            );
        }
    }
    Ok(())
}

/// The demo show and the admin, operator and customer logins.
async fn seed_demo(
    settings: &Settings,
    pool: &sqlx::PgPool,
    json: bool,
    out: &mut impl Write,
    report: &mut serde_json::Map<String, serde_json::Value>,
) -> anyhow::Result<()> {
    let show = crate::seed::demo(pool).await?;
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
        report.insert("logins".into(), json!(logins));
        report.insert("customer_token".into(), json!(token));
    } else {
        writeln!(out, "demo show: {show}")?;
        for (email, _, role) in DEMO_USERS {
            writeln!(out, "login: {email} / {DEMO_PASSWORD} ({})", role.as_str())?;
        }
        writeln!(out, "customer token: {token}")?;
    }
    Ok(())
}

/// A generated catalog, with what was inserted and how long it took.
async fn seed_catalog(
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
        crate::catalog::Options::starting_tomorrow(seed, settings.catalog.cleaning_buffer_min);
    let catalog = crate::catalog::generate(scale, &opts);
    let inserted = crate::catalog::insert(pool, &catalog)
        .await
        .context("inserting the catalog")?;
    let secs = started.elapsed().as_secs_f64();
    if json {
        report.insert(
            "catalog".into(),
            json!({"scale": scale.name, "seed": seed, "first_day": opts.first_day.to_string(),
                   "inserted": inserted, "seconds": secs}),
        );
    } else {
        writeln!(
            out,
            "catalog {} (seed {seed}, shows from {}): inserted {} theaters, {} screens, {} movies, \
             {} shows, {} prices in {secs:.1} s (rows already there are left as they are)",
            scale.name,
            opts.first_day,
            inserted.theaters,
            inserted.screens,
            inserted.movies,
            inserted.shows,
            inserted.prices
        )?;
    }
    Ok(())
}

async fn dlq(
    settings: &Settings,
    command: DlqCmd,
    json: bool,
    out: &mut impl Write,
    input: Option<&mut dyn BufRead>,
) -> anyhow::Result<()> {
    let topo = settings.topology();
    // Refuse a name outside the registry before touching anything.
    match &command {
        DlqCmd::List => {}
        DlqCmd::Show { queue, .. } | DlqCmd::Replay { queue, .. } | DlqCmd::Purge { queue, .. } => {
            ops::dlq::resolve(&topo, queue)?;
        }
    }
    if let DlqCmd::Purge {
        queue, ids, yes, ..
    } = &command
        && !yes
    {
        let Some(input) = input else {
            anyhow::bail!(
                "refusing to purge without confirmation: there is no terminal to ask on; pass --yes"
            );
        };
        eprint!(
            "Permanently remove the message(s) with id {} from {queue}? [y/N] ",
            ids.join(", ")
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        input.read_line(&mut answer)?;
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            if json {
                writeln!(out, "{}", json!({"removed": 0, "cancelled": true}))?;
            } else {
                writeln!(out, "purge cancelled; nothing removed")?;
            }
            return Ok(());
        }
    }
    let conn = platform::amqp::connect(&settings.amqp.url, "bookctl")
        .await
        .context("connecting to RabbitMQ")?;
    let res = dlq_on(settings, &conn, command, json, out).await;
    drop(conn.close(200, "bookctl done".into()).await);
    res
}

async fn dlq_on(
    settings: &Settings,
    conn: &lapin::Connection,
    command: DlqCmd,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let topo = settings.topology();
    match command {
        DlqCmd::List => {
            let items = ops::dlq::list(conn, &topo).await?;
            if json {
                writeln!(out, "{}", json!({ "items": items }))?;
            } else {
                let rows = items
                    .iter()
                    .map(|q| {
                        vec![
                            q.queue.clone(),
                            q.messages.to_string(),
                            q.oldest_age_secs.map_or("-".into(), age),
                        ]
                    })
                    .collect();
                table(out, &["QUEUE", "MESSAGES", "OLDEST"], rows)?;
            }
        }
        DlqCmd::Show { queue, limit } => {
            let items = ops::dlq::show(conn, &topo, &queue, limit).await?;
            if json {
                writeln!(out, "{}", json!({ "items": items }))?;
            } else if items.is_empty() {
                writeln!(out, "{queue} is empty")?;
            } else {
                for m in &items {
                    show_message(out, m)?;
                }
            }
        }
        DlqCmd::Replay {
            queue,
            ids,
            all,
            dry_run,
        } => {
            let selection = if all {
                Selection::All
            } else {
                Selection::Ids(ids)
            };
            if dry_run {
                let peeked = ops::dlq::peek(conn, &topo, &queue, &selection).await?;
                let pool = platform::db::pool(&settings.database)?;
                let lines = dry_run::simulate(&pool, &peeked.messages).await;
                pool.close().await;
                print_dry_run(out, json, &queue, &lines?, &peeked.not_found)?;
            } else {
                let outcome = ops::dlq::replay(conn, &topo, &queue, &selection).await?;
                if json {
                    writeln!(out, "{}", serde_json::to_string(&outcome)?)?;
                } else {
                    writeln!(out, "replayed {} message(s) from {queue}", outcome.replayed)?;
                    if !outcome.not_found.is_empty() {
                        writeln!(out, "not found: {}", outcome.not_found.join(", "))?;
                    }
                    for s in &outcome.skipped {
                        writeln!(
                            out,
                            "skipped {}: {}",
                            s.message_id.as_deref().unwrap_or("(no id)"),
                            s.reason
                        )?;
                    }
                }
            }
        }
        DlqCmd::Purge { queue, ids, .. } => {
            let outcome = ops::dlq::purge(conn, &topo, &queue, &ids).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&outcome)?)?;
            } else {
                writeln!(out, "removed {} message(s) from {queue}", outcome.removed)?;
                if !outcome.not_found.is_empty() {
                    writeln!(out, "not found: {}", outcome.not_found.join(", "))?;
                }
            }
        }
    }
    Ok(())
}

fn print_dry_run(
    out: &mut impl Write,
    json: bool,
    queue: &str,
    lines: &[DryRunMessage],
    not_found: &[String],
) -> anyhow::Result<()> {
    if json {
        writeln!(
            out,
            "{}",
            json!({"dry_run": true, "queue": queue, "messages": lines, "not_found": not_found})
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "dry run of {} message(s) from {queue}: nothing is published or removed",
        lines.len()
    )?;
    for l in lines {
        writeln!(
            out,
            "  {}: {}",
            l.message_id.as_deref().unwrap_or("(no id)"),
            l.summary()
        )?;
    }
    if !not_found.is_empty() {
        writeln!(out, "not found: {}", not_found.join(", "))?;
    }
    Ok(())
}

fn show_message(out: &mut impl Write, m: &DlqMessage) -> anyhow::Result<()> {
    writeln!(
        out,
        "message {}  (dead-lettered {}x, {} ago)",
        m.message_id.as_deref().unwrap_or("(no id)"),
        m.death_count,
        m.age_secs.map_or("?".into(), age)
    )?;
    writeln!(
        out,
        "  reason:  {}",
        m.reason.as_deref().unwrap_or("(unknown)")
    )?;
    writeln!(
        out,
        "  source:  {}",
        m.source_queue.as_deref().unwrap_or("(unknown)")
    )?;
    writeln!(out, "  headers: {}", m.headers)?;
    writeln!(out, "  body:    {}", m.body)?;
    Ok(())
}

/// `42s`, `5m12s`, `3h04m`, `2d03h`.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A plain left-aligned table.
fn table(out: &mut impl Write, headers: &[&str], rows: Vec<Vec<String>>) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for r in &rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_needs_exactly_one_of_ids_or_all() {
        assert!(parse_from(["bookctl", "dlq", "replay", "q"]).is_err());
        assert!(parse_from(["bookctl", "dlq", "replay", "q", "--all", "--id", "a"]).is_err());
        let cli = parse_from([
            "bookctl",
            "--json",
            "dlq",
            "replay",
            "q",
            "--id",
            "a",
            "--id",
            "b",
            "--dry-run",
        ])
        .unwrap();
        assert!(cli.json);
        match cli.command {
            Cmd::Dlq {
                command:
                    DlqCmd::Replay {
                        ids, all, dry_run, ..
                    },
            } => {
                assert_eq!(ids, ["a", "b"]);
                assert!(!all && dry_run);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn purge_needs_an_id_and_json_is_global() {
        assert!(parse_from(["bookctl", "dlq", "purge", "q"]).is_err());
        let cli = parse_from(["bookctl", "dlq", "purge", "q", "--id", "a", "--json"]).unwrap();
        assert!(cli.json);
    }

    #[tokio::test]
    async fn purge_without_yes_and_without_a_terminal_is_refused_before_connecting() {
        let mut s = Settings::load_for(platform::settings::AppEnv::Development).unwrap();
        // Nothing listens here: had it tried to connect, the error would say so.
        s.amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
        let q = s.topology().commands_dlq();
        let cli = parse_from(["bookctl", "dlq", "purge", &q, "--id", "a"]).unwrap();
        let mut out = Vec::new();
        let err = run(&s, cli, &mut out, None).await.unwrap_err();
        assert!(err.to_string().contains("--yes"), "{err}");
    }

    #[tokio::test]
    async fn purge_answered_no_removes_nothing() {
        let mut s = Settings::load_for(platform::settings::AppEnv::Development).unwrap();
        s.amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
        let q = s.topology().commands_dlq();
        let cli = parse_from(["bookctl", "dlq", "purge", &q, "--id", "a"]).unwrap();
        let mut out = Vec::new();
        let mut answer: &[u8] = b"n\n";
        run(&s, cli, &mut out, Some(&mut answer)).await.unwrap();
        assert!(String::from_utf8(out).unwrap().contains("nothing removed"));
    }

    #[tokio::test]
    async fn a_queue_outside_the_registry_is_refused() {
        let s = Settings::load_for(platform::settings::AppEnv::Development).unwrap();
        let q = s.topology().partition_queue(0);
        let cli = parse_from(["bookctl", "dlq", "show", &q]).unwrap();
        let err = run(&s, cli, &mut Vec::new(), None).await.unwrap_err();
        assert!(err.to_string().contains("not a dead-letter queue"), "{err}");
    }

    #[test]
    fn ages_read_well_and_tables_align() {
        assert_eq!(age(42), "42s");
        assert_eq!(age(312), "5m12s");
        assert_eq!(age(3 * 3600 + 240), "3h04m");
        assert_eq!(age(2 * 86_400 + 3 * 3600), "2d03h");
        let mut out = Vec::new();
        table(&mut out, &["A", "BB"], vec![vec!["xxx".into(), "1".into()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A    BB\nxxx  1\n");
    }
}
