//! The commands of `bookctl`: parsed by clap, run by [`run`] against the configured
//! services, printed as tables for people or as JSON (`--json`) for scripts.
//!
//! `main` only parses, loads the settings and calls [`run`] with stdout; the tests
//! call [`run`] with a buffer.

mod dlq;
mod refund;
mod seeding;
mod status;
mod table;

pub use table::age;

use anyhow::Context;
use auth::{Role, TokenKeys};
use clap::{ArgGroup, Parser, Subcommand};
use platform::Settings;
use serde_json::json;
use std::io::{BufRead, Write};

#[derive(Debug, Parser)]
#[command(
    name = "bookctl",
    about = "Operate the booking platform: schema, broker topology, accounts, tokens, demo data, \
             dead-letter queues, refunds and partitions.",
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
pub enum PartitionsCmd {
    /// Grow the partition count to N (a multiple of the current count) while
    /// bookings go on: nothing lost, per-show order kept (docs/repartition.md).
    /// Running it again continues an interrupted growth.
    Grow {
        /// The new partition count.
        partitions: u16,
        /// Stop once the new layout takes the traffic; run again to seal and retire
        /// the old one.
        #[arg(long)]
        stop_after_flip: bool,
        /// Longest wait for the old partitions' seals, in seconds.
        #[arg(long, default_value_t = 600)]
        timeout_secs: u64,
    },
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
    /// Refunds operators deal with.
    Refund {
        #[command(subcommand)]
        command: RefundCmd,
    },
    /// Each partition: queue depth, consumers, owner (active worker), epoch, last batch;
    /// `partitions grow N` changes the partition count under load.
    Partitions {
        #[command(subcommand)]
        command: Option<PartitionsCmd>,
    },
    /// Check money against seats over the whole database and with the payment
    /// gateway: every confirmed booking has a captured payment (at the gateway too,
    /// for it, in full), every captured payment a ticket or a refund, every refund
    /// done at the gateway, no seat is live twice. Exits non-zero when it finds a
    /// problem.
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
    /// Scope an admin or staff member to a theater (repeat for more theaters). The
    /// account's role becomes --role; from now on it manages only its theaters.
    Grant {
        #[arg(long)]
        email: String,
        /// `admin` or `staff`.
        #[arg(long)]
        role: String,
        /// The theater id.
        #[arg(long)]
        theater: uuid::Uuid,
    },
    /// Take a theater out of an account's scope (with none left it manages nothing).
    Revoke {
        #[arg(long)]
        email: String,
        #[arg(long)]
        theater: uuid::Uuid,
    },
    /// The theaters an account manages.
    Grants {
        #[arg(long)]
        email: String,
    },
    /// Make a scoped admin a platform admin again (every theater).
    Unscope {
        #[arg(long)]
        email: String,
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

#[derive(Debug, Subcommand)]
pub enum RefundCmd {
    /// Record a refund made by hand (provider dashboard, bank transfer) for a
    /// booking whose refund the gateway refused for good.
    #[command(
        long_about = "Record a refund made by hand for a booking whose refund the gateway refused \
                      for good (it is parked in payments.dlq with reason `refund failed: ...`).\n\n\
                      The saga ends the refund with this reference and the booking ends `refunded` \
                      through its partition; reconciliation no longer reports it. To ask the \
                      gateway again instead, replay the parked message (`dlq replay payments.dlq \
                      --id ...`)."
    )]
    Record {
        /// The booking id.
        booking: uuid::Uuid,
        /// The provider's or bank's reference of the refund made.
        #[arg(long)]
        refund_id: String,
        /// What was done (kept with the payment).
        #[arg(long)]
        note: String,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CatalogSize {
    Small,
    Large,
}

impl CatalogSize {
    pub fn scale(self) -> &'static seed::catalog::Scale {
        match self {
            CatalogSize::Small => &seed::catalog::Scale::SMALL,
            CatalogSize::Large => &seed::catalog::Scale::LARGE,
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
            // The partition queues of every layout not retired (the first layout's
            // before any growth, or when PostgreSQL does not answer).
            platform::layout::declare_queues(
                &ch,
                &pool()?,
                &settings.topology(),
                settings.amqp.queue_shape(),
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
                seeding::demo(settings, &pool, json, out, &mut report).await?;
            }
            if let Some(size) = catalog {
                seeding::catalog(settings, &pool, size, seed, json, out, &mut report).await?;
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
        Cmd::User { command } => users(&pool()?, command, json, out).await?,
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
        Cmd::Dlq { command } => dlq::run(settings, command, json, out, input).await?,
        Cmd::Refund { command } => refund::run(settings, &pool()?, command, json, out).await?,
        Cmd::Partitions { command: None } => {
            status::partitions(settings, &pool()?, json, out).await?;
        }
        Cmd::Partitions {
            command: Some(command),
        } => status::grow(settings, &pool()?, command, json, out).await?,
        Cmd::Reconcile => status::reconcile(settings, &pool()?, json, out).await?,
    }
    Ok(())
}

/// The scope commands of `bookctl user` (create is handled above).
async fn users(
    pool: &sqlx::PgPool,
    command: UserCmd,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    use crate::users as u;
    let email = match &command {
        UserCmd::Create { email, .. }
        | UserCmd::Grant { email, .. }
        | UserCmd::Revoke { email, .. }
        | UserCmd::Grants { email }
        | UserCmd::Unscope { email } => email.clone(),
    };
    match command {
        UserCmd::Create { .. } => anyhow::bail!("handled by run"),
        UserCmd::Grant { role, theater, .. } => {
            let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            u::grant(pool, &email, role, theater).await?;
        }
        UserCmd::Revoke { theater, .. } => {
            u::revoke(pool, &email, theater).await?;
        }
        UserCmd::Unscope { .. } => u::unscope(pool, &email).await?,
        UserCmd::Grants { .. } => {}
    }
    let scoped = u::is_scoped(pool, &email).await?;
    let grants = u::grants(pool, &email).await?;
    if json {
        writeln!(
            out,
            "{}",
            json!({"email": email, "scoped": scoped, "theaters": grants})
        )?;
    } else if !scoped {
        writeln!(out, "{email}: every theater (not scoped)")?;
    } else if grants.is_empty() {
        writeln!(out, "{email}: scoped to no theater (manages nothing)")?;
    } else {
        table::table(
            out,
            &["THEATER", "NAME", "CITY"],
            grants
                .into_iter()
                .map(|g| vec![g.theater_id.to_string(), g.theater, g.city])
                .collect(),
        )?;
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
        table::table(&mut out, &["A", "BB"], vec![vec!["xxx".into(), "1".into()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "A    BB\nxxx  1\n");
    }
}
