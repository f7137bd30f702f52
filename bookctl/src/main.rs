//! `bookctl`: the operator CLI.

use anyhow::Context;
use clap::{Parser, Subcommand};
use ingress::auth::{Role, TokenKeys};

#[derive(Parser)]
#[command(
    name = "bookctl",
    about = "Operate the booking platform: schema, broker topology, accounts, tokens, demo data.",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the database if needed and apply every pending migration.
    Migrate,
    /// Declare every RabbitMQ exchange and queue (idempotent).
    Topology,
    /// Seed data. `--demo`: a theater, a show tomorrow, and admin/operator/customer logins.
    Seed {
        #[arg(long)]
        demo: bool,
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
}

#[derive(Subcommand)]
enum UserCmd {
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

/// The accounts the demo seed creates.
const DEMO_USERS: [(&str, &str, Role); 3] = [
    ("admin@demo.local", "Admin", Role::Admin),
    ("operator@demo.local", "Operator", Role::Operator),
    ("customer@demo.local", "Customer", Role::Customer),
];
const DEMO_PASSWORD: &str = "demo-password";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = platform::Settings::load()?;
    let pool = || platform::db::pool(&settings.database);
    match cli.command {
        Cmd::Migrate => {
            platform::db::migrate(&settings.database.url)
                .await
                .context("migrating the database")?;
            println!("database migrated");
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
            println!(
                "topology declared: {} partitions under prefix {:?}",
                settings.amqp.partitions, settings.amqp.prefix
            );
        }
        Cmd::Seed { demo } => {
            anyhow::ensure!(demo, "say what to seed: --demo");
            let pool = pool()?;
            let show = bookctl::seed::demo(&pool).await?;
            let keys = TokenKeys::new(
                &settings.auth.jwt_secret,
                settings.auth.access_token_ttl_secs,
            );
            for (email, name, role) in DEMO_USERS {
                bookctl::users::create_user(&pool, email, DEMO_PASSWORD, name, role).await?;
            }
            println!("demo show: {show}");
            for (email, _, role) in DEMO_USERS {
                println!("login: {email} / {DEMO_PASSWORD} ({})", role.as_str());
            }
            let token = bookctl::users::mint_token(&pool, &keys, "customer@demo.local").await?;
            println!("customer token: {token}");
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
            let id = bookctl::users::create_user(&pool()?, &email, &password, &name, role).await?;
            println!("{id}");
        }
        Cmd::MintToken { email } => {
            let keys = TokenKeys::new(
                &settings.auth.jwt_secret,
                settings.auth.access_token_ttl_secs,
            );
            println!(
                "{}",
                bookctl::users::mint_token(&pool()?, &keys, &email).await?
            );
        }
    }
    Ok(())
}
