//! Crashes, failover, poison messages and a lost database: nothing accepted is lost,
//! nothing is applied twice, a stale runner cannot write.

use contracts::{BookingId, Event, EventEnvelope, EventId, MessageId, Millis, ShowId, UserId};
use futures::StreamExt;
use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::types::AMQPValue;
use sequencer_store::{StoreError, commit_batch};
use serde_json::json;
use std::time::Duration;
use tests::proxy::TcpProxy;
use tests::{Faults, SystemOptions, TestSystem, spawn_system};

async fn submit_many(sys: &TestSystem, show: ShowId, n: usize, prefix: &str) -> Vec<uuid::Uuid> {
    let (_, token) = sys.customer(0).await;
    let results: Vec<(u16, serde_json::Value)> = futures::stream::iter(0..n)
        .map(|i| {
            let token = token.clone();
            async move {
                sys.submit(
                    &token,
                    &format!("{prefix}-{i}"),
                    json!({"show_id": show.to_string(), "quantity": 1}),
                )
                .await
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    results
        .into_iter()
        .map(|(s, b)| {
            assert_eq!(s, 202, "{b}");
            b["booking_id"].as_str().unwrap().parse().unwrap()
        })
        .collect()
}

/// Every booking has exactly one decision, and no seat is live twice.
async fn assert_exactly_once(sys: &TestSystem, ids: &[uuid::Uuid]) {
    let per_booking: Vec<i64> = sqlx::query_scalar(
        "select count(*) from booking_events where booking_id = any($1) group by booking_id",
    )
    .bind(ids)
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    assert_eq!(per_booking.len(), ids.len(), "a booking has no event");
    assert!(
        per_booking.iter().all(|n| *n == 1),
        "a booking was decided twice"
    );
    let doubled: i64 = sqlx::query_scalar(
        "select count(*) from (select show_id, seat_id from booking_seats where released_at is null
          group by 1, 2 having count(*) > 1) x",
    )
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert_eq!(doubled, 0);
}

async fn epoch_of(sys: &TestSystem, show: ShowId) -> (i64, String) {
    let p = sys.settings.topology().partition_of(show);
    sqlx::query_as("select epoch, owner from partitions where partition = $1")
        .bind(p as i16)
        .fetch_one(&sys.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_runner_killed_before_its_commit_loses_and_duplicates_nothing() {
    let sys = spawn_system(SystemOptions {
        workers: 0,
        ..SystemOptions::default()
    })
    .await;
    let faults = Faults {
        crash_before_commit: 1,
        ..Faults::default()
    };
    let w = sys.start_worker(None, faults).await;
    let show = sys.show(4, 5).await;
    let ids = submit_many(&sys, show, 30, "kill-before").await;
    sys.wait_decided(&ids, Duration::from_secs(60)).await;
    assert_eq!(
        w.faults_left().await.crash_before_commit,
        0,
        "the crash happened"
    );
    assert_exactly_once(&sys, &ids).await;
    let (epoch, _) = epoch_of(&sys, show).await;
    assert!(epoch >= 1);
    w.stop().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn a_runner_killed_after_its_commit_before_its_ack_applies_the_redelivery_once() {
    let sys = spawn_system(SystemOptions {
        workers: 0,
        ..SystemOptions::default()
    })
    .await;
    let faults = Faults {
        crash_after_commit: 1,
        ..Faults::default()
    };
    let w = sys.start_worker(None, faults).await;
    let show = sys.show(4, 5).await;
    let ids = submit_many(&sys, show, 30, "kill-after").await;
    sys.wait_decided(&ids, Duration::from_secs(60)).await;
    assert_eq!(
        w.faults_left().await.crash_after_commit,
        0,
        "the crash happened"
    );
    // The redelivered batch must be absorbed by the inbox: wait until the queue is
    // empty (everything acked), then count.
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let queue = sys
        .settings
        .topology()
        .partition_queue(sys.settings.topology().partition_of(show));
    sys.eventually(
        Duration::from_secs(30),
        "the partition queue drains",
        || async { platform::amqp::queue_counts(&ch, &queue).await.unwrap().0 == 0 },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_exactly_once(&sys, &ids).await;
    let (epoch, _) = epoch_of(&sys, show).await;
    assert!(
        epoch >= 2,
        "the restarted session took the partition again (epoch {epoch})"
    );
    w.stop().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn two_runners_share_a_partition_one_at_a_time_and_a_stale_batch_is_fenced() {
    let sys = spawn_system(SystemOptions {
        workers: 2,
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(4, 5).await;
    let ids = submit_many(&sys, show, 10, "first").await;
    sys.wait_decided(&ids, Duration::from_secs(30)).await;
    let (epoch1, owner1) = epoch_of(&sys, show).await;
    let active = sys
        .workers
        .iter()
        .position(|w| w.owner == owner1)
        .expect("the owner is one of the two runners");

    // Stop the active one: the standby takes over through single active consumer.
    let mut sys = sys;
    let stopped = sys.workers.remove(active);
    stopped.stop().await;
    let more = submit_many(&sys, show, 10, "second").await;
    sys.wait_decided(&more, Duration::from_secs(30)).await;
    let (epoch2, owner2) = epoch_of(&sys, show).await;
    assert_ne!(owner2, owner1, "the standby owns the partition now");
    assert!(epoch2 > epoch1);
    let all: Vec<uuid::Uuid> = ids.iter().chain(&more).copied().collect();
    assert_exactly_once(&sys, &all).await;

    // A batch from the stale runner (old epoch) is refused and writes nothing.
    let p = sys.settings.topology().partition_of(show);
    let booking = BookingId::new_v7();
    let msg = MessageId::new_v7();
    let stale = vec![EventEnvelope {
        event_id: EventId::derive(msg, 0),
        show_id: show,
        booking_id: booking,
        occurred_at: Millis(0),
        caused_by: msg,
        trace: None,
        event: Event::BookingRejected {
            user_id: UserId::new_v7(),
            reason: contracts::RejectReason::NotOnSale,
        },
    }];
    let res = commit_batch(
        &sys.pool,
        p,
        epoch1,
        &sys.settings.topology().events_exchange(),
        &[msg.0],
        &stale,
    )
    .await;
    assert!(matches!(res, Err(StoreError::Fenced { .. })), "{res:?}");
    let written: i64 = sqlx::query_scalar("select count(*) from bookings where id = $1")
        .bind(booking.0)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(written, 0);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_malformed_message_lands_in_the_dead_letter_queue_with_its_reason() {
    let sys = spawn_system(SystemOptions::default()).await;
    let topo = sys.settings.topology();
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.basic_publish(
        topo.commands_exchange().into(),
        topo.partition_key(0).into(),
        BasicPublishOptions::default(),
        b"{\"this is\": \"not a command\"}",
        platform::amqp::json_properties("poison-1", Default::default()),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    // A good booking behind it still goes through.
    let show = sys.show(2, 4).await;
    let ok = submit_many(&sys, show, 1, "after-poison").await;
    sys.wait_decided(&ok, Duration::from_secs(30)).await;

    let mut got = None;
    for _ in 0..100 {
        if let Some(m) = ch
            .basic_get(topo.commands_dlq().into(), BasicGetOptions { no_ack: true })
            .await
            .unwrap()
        {
            got = Some(m);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = got.expect("the poison message reaches the dead-letter queue");
    assert_eq!(m.data, b"{\"this is\": \"not a command\"}");
    let headers = m.properties.headers().clone().unwrap();
    let reason = match headers.inner().get("x-dead-letter-reason") {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        other => panic!("no reason header: {other:?}"),
    };
    assert!(reason.contains("unparseable command"), "{reason}");
    match headers.inner().get("x-source-queue") {
        Some(AMQPValue::LongString(s)) => assert_eq!(s.to_string(), topo.partition_queue(0)),
        other => panic!("no source queue header: {other:?}"),
    }
    sys.shutdown().await;
}

#[tokio::test]
async fn cutting_the_runners_database_makes_bookings_wait_and_loses_none() {
    let (settings, _) = tests::test_settings(&SystemOptions::default()).await;
    drop(settings);
    let target = std::env::var("DATABASE_URL")
        .ok()
        .and_then(|u| {
            let host = u.split('@').nth(1)?.split('/').next()?.to_owned();
            Some(host)
        })
        .unwrap_or_else(|| "127.0.0.1:5432".to_owned());
    let proxy = TcpProxy::start(target).await.unwrap();
    let sys = spawn_system(SystemOptions {
        workers: 1,
        workers_db_port: Some(proxy.port),
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(4, 5).await;
    // Warm up: the runner loads the show through the proxy.
    let warm = submit_many(&sys, show, 2, "warm").await;
    sys.wait_decided(&warm, Duration::from_secs(30)).await;

    proxy.cut();
    let ids = submit_many(&sys, show, 20, "during-cut").await;
    sys.holds_for(
        Duration::from_secs(2),
        "nothing is decided without the database",
        || async {
            let decided: i64 =
                sqlx::query_scalar("select count(*) from bookings where id = any($1)")
                    .bind(&ids)
                    .fetch_one(&sys.pool)
                    .await
                    .unwrap();
            decided == 0
        },
    )
    .await;
    proxy.restore();
    sys.wait_decided(&ids, Duration::from_secs(60)).await;
    let all: Vec<uuid::Uuid> = warm.iter().chain(&ids).copied().collect();
    assert_exactly_once(&sys, &all).await;
    // Nothing went to the dead-letter queue.
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let (dead, _) = platform::amqp::queue_counts(&ch, &sys.settings.topology().commands_dlq())
        .await
        .unwrap();
    assert_eq!(dead, 0);
    sys.shutdown().await;
}

#[tokio::test]
async fn an_accepted_booking_is_queued_not_unknown_after_redis_lost_its_marker() {
    // No workers: the command waits in its partition, undecided.
    let mut sys = spawn_system(SystemOptions {
        workers: 0,
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(1, 3).await;
    let (user, token) = sys.customer(1).await;
    let (status, accepted) = sys
        .submit(
            &token,
            "k",
            json!({"show_id": show.to_string(), "seats": ["A2"]}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["booking_id"].as_str().unwrap().to_owned();

    // Redis loses every key of this system (a restart without persistence, a flush).
    let mut redis = sys.redis().await;
    let marker = platform::cache::Keys::new(sys.settings.redis.key_prefix.clone())
        .queued(id.parse().unwrap());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", sys.settings.redis.key_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(keys.contains(&marker), "the marker was written: {keys:?}");
    let () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();

    // Still accepted, still undecided: `queued`, with what the buyer asked for.
    let (status, b) = sys.booking(&token, &id).await;
    assert_eq!(status, 200, "an accepted booking is never unknown: {b}");
    assert_eq!(b["status"], "queued", "{b}");
    assert_eq!(b["seats"], json!(["A2"]), "{b}");
    assert_eq!(b["user_id"], user.0.to_string(), "{b}");
    // It is still nobody else's.
    let (_, stranger) = sys.customer(2).await;
    assert_eq!(sys.booking(&stranger, &id).await.0, 404);

    // The sequencer runs: the booking is decided and GET says so.
    let w = sys.start_worker(None, Faults::default()).await;
    sys.workers.push(w);
    let b = sys
        .booking_until(&token, &id, "decided", |b| b["status"] != "queued")
        .await;
    assert_eq!(b["status"], "held", "{b}");
    assert_eq!(b["seats"], json!(["A2"]), "{b}");
    sys.shutdown().await;
}
