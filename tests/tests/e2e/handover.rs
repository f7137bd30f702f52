//! SIGTERM to the active runner in the middle of a load: it finishes or returns its
//! batch (never half-committed) and exits; the standby takes the partition over; no
//! message is lost or applied twice; the survivor's `/metrics` carry the runner
//! series.

use contracts::{BookingId, Command, CommandEnvelope, HoldSeats, MessageId, SeatRequest, UserId};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::FieldTable;
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

const COMMANDS: usize = 600;

/// Publishes `COMMANDS` HoldSeats of one seat each for `show` with confirms, in
/// bursts of 20 with a pause between them (about three seconds in all).
async fn publish_load(sys: &TestSystem, show: contracts::ShowId) -> tokio::task::JoinHandle<()> {
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "handover-load")
        .await
        .expect("connect");
    let topo = sys.settings.topology();
    tokio::spawn(async move {
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm select");
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
                    BasicPublishOptions::default(),
                    &serde_json::to_vec(&env).expect("JSON"),
                    platform::amqp::json_properties(
                        &env.message_id.to_string(),
                        FieldTable::default(),
                    ),
                )
                .await
                .expect("publish")
                .await
                .expect("confirm");
            assert!(confirm.is_ack());
            if i % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        drop(conn.close(200, "done".into()).await);
    })
}

/// Nothing lost, nothing twice, nothing half-written: one event and one inbox row
/// per command, and the 500 seats held once each.
async fn assert_each_command_applied_once(sys: &TestSystem) {
    let (events, distinct, inbox, held, live_seats): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from booking_events),
                (select count(distinct booking_id) from booking_events),
                (select count(*) from processed_messages),
                (select count(*) from bookings where status = 'held'),
                (select count(*) from booking_seats where released_at is null)",
    )
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    let n = COMMANDS as i64;
    assert_eq!((events, distinct, inbox), (n, n, n));
    assert_eq!((held, live_seats), (500, 500));
}

#[tokio::test]
async fn sigterm_to_the_active_runner_mid_load_hands_over_without_loss() {
    let mut sys = spawn_system(SystemOptions {
        workers: 2,
        // "workers stopping" is an info line.
        log_filter: Some("info".into()),
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(20, 25).await;
    let part = i16::try_from(sys.settings.topology().partition_of(show)).unwrap();
    let publisher = publish_load(&sys, show).await;

    // Once the active runner has committed something, SIGTERM it mid-load.
    let (epoch1, owner1): (i64, String) = sys
        .until_some(Duration::from_secs(60), "a runner commits", || async {
            let decided: i64 = sqlx::query_scalar("select count(*) from bookings")
                .fetch_one(&sys.pool)
                .await
                .unwrap();
            if decided <= 50 {
                return None;
            }
            sqlx::query_as(
                "select epoch, owner from partitions
                  where partition = $1 and last_batch_at is not null",
            )
            .bind(part)
            .fetch_optional(&sys.pool)
            .await
            .unwrap()
        })
        .await;
    let active = sys
        .workers
        .iter()
        .position(|w| w.owner == owner1)
        .expect("the owner is one of the two workers");
    let stopped = sys.workers.remove(active);
    let logs = stopped.process.logs.clone();
    let exit = tokio::time::timeout(Duration::from_secs(15), stopped.process.terminate())
        .await
        .expect("the runner exits within 15 s of SIGTERM");
    assert!(exit.success(), "graceful exit: {exit:?}");
    assert!(
        logs.lines().iter().any(|l| l.contains("workers stopping")),
        "{:?}",
        logs.lines()
    );

    publisher.await.unwrap();
    sys.eventually(Duration::from_secs(60), "every command decided", || async {
        let decided: i64 = sqlx::query_scalar("select count(*) from bookings")
            .fetch_one(&sys.pool)
            .await
            .unwrap();
        decided == COMMANDS as i64
    })
    .await;
    assert_each_command_applied_once(&sys).await;
    let (epoch2, owner2): (i64, String) =
        sqlx::query_as("select epoch, owner from partitions where partition = $1")
            .bind(part)
            .fetch_one(&sys.pool)
            .await
            .unwrap();
    assert!(epoch2 > epoch1);
    let survivor = &sys.workers[0];
    assert_eq!(owner2, survivor.owner, "the standby took over");

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
    sys.eventually(
        Duration::from_secs(30),
        "the survivor's /metrics carry every runner series",
        || async {
            let metrics = survivor.metrics().await;
            series.iter().all(|s| metrics.contains(s))
        },
    )
    .await;
    sys.shutdown().await;
}
