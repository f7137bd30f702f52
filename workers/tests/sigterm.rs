//! SIGTERM to the active runner in the middle of a load: it finishes or returns its
//! batch (never half-committed) and exits; the standby takes the partitions over;
//! no message is lost or applied twice. Runs the real `workers` binary twice, and
//! scrapes the survivor's `/metrics`.

use contracts::{
    BookingId, Command, CommandEnvelope, HoldSeats, MessageId, Price, ScreenLayout, SeatRequest,
    ShowId, UserId,
};
use lapin::types::FieldTable;
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PARTITIONS: u16 = 2;
const COMMANDS: usize = 600;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_workers(env: &[(String, String)], metrics_port: u16, log: &std::path::Path) -> Child {
    let mut cmd = Process::new(env!("CARGO_BIN_EXE_workers"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.env(
        "APP__WORKERS__METRICS_LISTEN",
        format!("127.0.0.1:{metrics_port}"),
    )
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(log).unwrap())
    .spawn()
    .expect("start the workers binary")
}

async fn http_get(port: u16, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

fn pid_of(owner: &str) -> Option<u32> {
    // owner = "{host}-{pid}-{random}"
    let mut parts = owner.rsplitn(3, '-');
    parts.next()?;
    parts.next()?.parse().ok()
}

/// One 500-seat show, straight into the catalog tables.
async fn insert_show(pool: &sqlx::PgPool) -> ShowId {
    let show = ShowId::new_v7();
    let layout = ScreenLayout::grid(20, 25, "regular");
    let (theater, screen, movie) = (
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
        uuid::Uuid::now_v7(),
    );
    sqlx::query("insert into theaters (id, name, city) values ($1, 'T', 'C')")
        .bind(theater)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("insert into screens (id, theater_id, name, layout, seat_count) values ($1, $2, 'S', $3, 500)")
        .bind(screen)
        .bind(theater)
        .bind(sqlx::types::Json(&layout))
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("insert into movies (id, title, duration_min) values ($1, 'M', 100)")
        .bind(movie)
        .execute(pool)
        .await
        .unwrap();
    sqlx::query(
        "insert into shows (id, movie_id, screen_id, starts_at, ends_at)
         values ($1, $2, $3, now() + interval '1 day', now() + interval '1 day 2 hours')",
    )
    .bind(show.0)
    .bind(movie)
    .bind(screen)
    .execute(pool)
    .await
    .unwrap();
    let price = Price {
        seat_type: "regular".into(),
        amount: 100,
        currency: "INR".into(),
    };
    sqlx::query("insert into show_prices values ($1, $2, $3, $4)")
        .bind(show.0)
        .bind(&price.seat_type)
        .bind(price.amount)
        .bind(&price.currency)
        .execute(pool)
        .await
        .unwrap();

    show
}

/// Publishes `COMMANDS` HoldSeats for `show` with confirms, in bursts of 20 with a
/// pause between them.
async fn publish_load(
    conn: &lapin::Connection,
    topo: &contracts::Topology,
    show: ShowId,
) -> tokio::task::JoinHandle<()> {
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let topo = topo.clone();
    tokio::spawn(async move {
        for i in 0..COMMANDS {
            let booking = BookingId::new_v7();
            let env = CommandEnvelope {
                message_id: MessageId::for_booking(booking, "hold"),
                show_id: show,
                issued_at: platform::now_millis(),
                request_id: None,
                trace: None,
                command: Command::HoldSeats(HoldSeats {
                    booking_id: booking,
                    user_id: UserId::new_v7(),
                    request: SeatRequest::BestAvailable {
                        quantity: 1,
                        seat_type: None,
                    },
                    hold_ttl_ms: 600_000,
                    payment_method: None,
                }),
            };
            let confirm = ch
                .basic_publish(
                    topo.commands_exchange().into(),
                    topo.partition_key(topo.partition_of(show)).into(),
                    Default::default(),
                    &serde_json::to_vec(&env).unwrap(),
                    platform::amqp::json_properties(
                        &env.message_id.to_string(),
                        FieldTable::default(),
                    ),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            assert!(confirm.is_ack());
            if i % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    })
}

/// The environment of a `workers` process on the test's database, vhost prefix and
/// partitions.
fn worker_env(settings: &platform::Settings) -> Vec<(String, String)> {
    vec![
        // The shipped development secrets (a production binary refuses them).
        ("APP_ENV".into(), "development".into()),
        ("APP__DATABASE__URL".into(), settings.database.url.clone()),
        ("APP__AMQP__URL".into(), settings.amqp.url.clone()),
        ("APP__AMQP__PREFIX".into(), settings.amqp.prefix.clone()),
        ("APP__AMQP__PARTITIONS".into(), PARTITIONS.to_string()),
        ("APP__REDIS__URL".into(), settings.redis.url.clone()),
        ("APP__WORKERS__SHUTDOWN_GRACE_SECS".into(), "5".into()),
        ("APP__TELEMETRY__FILTER".into(), "info".into()),
    ]
}

/// Nothing lost, nothing twice, nothing half-written: one event, one inbox row per
/// command, and the 500 seats held once each.
async fn assert_each_command_applied_once(pool: &sqlx::PgPool) {
    let (events, distinct, inbox, held, live_seats): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from booking_events),
                (select count(distinct booking_id) from booking_events),
                (select count(*) from processed_messages),
                (select count(*) from bookings where status = 'held'),
                (select count(*) from booking_seats where released_at is null)",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        (events, distinct, inbox),
        (COMMANDS as i64, COMMANDS as i64, COMMANDS as i64)
    );
    assert_eq!((held, live_seats), (500, 500));
}

/// Sends `child` SIGTERM and waits for it to exit (15 s at most).
async fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Process::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stopped_by = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(
            Instant::now() < stopped_by,
            "the runner did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_the_active_runner_mid_load_hands_over_without_loss() {
    let mut settings =
        platform::Settings::load_for(platform::settings::AppEnv::Development).unwrap();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db = format!("test_sig_{}", &id[..12]);
    let base = settings.database.url.rsplit_once('/').unwrap().0.to_owned();
    settings.database.url = format!("{base}/{db}");
    settings.amqp.prefix = format!("s{}.", &id[..12]);
    settings.amqp.partitions = PARTITIONS;
    platform::db::migrate(&settings.database.url)
        .await
        .expect("PostgreSQL must be reachable (DATABASE_URL)");
    let pool = sqlx::PgPool::connect(&settings.database.url).await.unwrap();
    let topo = settings.topology();
    let conn = platform::amqp::connect(&settings.amqp.url, "sigterm-test")
        .await
        .expect("RabbitMQ must be reachable (AMQP_URL)");
    let ch = conn.create_channel().await.unwrap();
    platform::amqp::declare_topology(&ch, &topo, settings.amqp.queue_shape())
        .await
        .unwrap();

    let show = insert_show(&pool).await;

    let env = worker_env(&settings);
    let dir = std::env::temp_dir().join(format!("sigterm-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let ports = [free_port(), free_port()];
    let mut procs = [
        spawn_workers(&env, ports[0], &dir.join("a.log")),
        spawn_workers(&env, ports[1], &dir.join("b.log")),
    ];

    // The load: HoldSeats commands published with confirms over about three seconds.
    let publisher = publish_load(&conn, &topo, show).await;

    // Once the active runner has committed something, SIGTERM it mid-load.
    let part = i16::try_from(topo.partition_of(show)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (epoch1, owner1) = loop {
        let row: Option<(i64, String)> =
            sqlx::query_as("select epoch, owner from partitions where partition = $1 and last_batch_at is not null")
                .bind(part)
                .fetch_optional(&pool)
                .await
                .unwrap();
        let decided: i64 = sqlx::query_scalar("select count(*) from bookings")
            .fetch_one(&pool)
            .await
            .unwrap();
        if let Some(r) = row
            && decided > 50
        {
            break r;
        }
        assert!(Instant::now() < deadline, "no runner became active");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let active_pid = pid_of(&owner1).expect("owner names its pid");
    let (active, standby) = if procs[0].id() == active_pid {
        (0, 1)
    } else {
        (1, 0)
    };
    assert_eq!(
        procs[active].id(),
        active_pid,
        "the owner is one of our two processes"
    );
    let exit = terminate(&mut procs[active]).await;
    assert!(exit.success(), "graceful exit: {exit:?}");

    publisher.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let decided: i64 = sqlx::query_scalar("select count(*) from bookings")
            .fetch_one(&pool)
            .await
            .unwrap();
        if decided == COMMANDS as i64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {decided} of {COMMANDS} decided"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_each_command_applied_once(&pool).await;
    let (epoch2, owner2): (i64, String) =
        sqlx::query_as("select epoch, owner from partitions where partition = $1")
            .bind(part)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(epoch2 > epoch1);
    assert_eq!(
        pid_of(&owner2),
        Some(procs[standby].id()),
        "the standby took over"
    );
    let log =
        std::fs::read_to_string(dir.join(if active == 0 { "a.log" } else { "b.log" })).unwrap();
    assert!(log.lines().any(|l| l.contains("workers stopping")), "{log}");

    // The survivor's metrics carry the runner series (the queue depths once its
    // watcher has sampled them).
    let series = [
        "runner_batch_size",
        "runner_commit_seconds",
        "sequencer_apply_seconds",
        "events_published_total",
        "partition_queue_depth",
        "dead_letter_queue_depth",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = http_get(ports[standby], "/metrics").await;
        let missing: Vec<&str> = series
            .iter()
            .copied()
            .filter(|s| !metrics.contains(s))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{missing:?} missing from {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let _ = procs[standby].kill();
    let _ = procs[standby].wait();
    drop(platform::amqp::delete_topology(&ch, &topo).await);
    pool.close().await;
    if let Ok(admin) = sqlx::PgPool::connect(&format!("{base}/postgres")).await {
        drop(
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "drop database if exists \"{db}\" with (force)"
            )))
            .execute(&admin)
            .await,
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
