//! Growing the partition count from 16 to 64 while buyers book
//! (`bookctl partitions grow`, docs/repartition.md): every request answered `202`
//! is decided exactly once, each buyer's bookings of a show are applied in the order
//! they were answered, nothing is oversold, and the old layout's queues are gone.
//! Once as an operator runs it, once with the workers killed (SIGKILL) between the
//! flip and the seals and the command run again.

use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

const FROM: u16 = 16;
const TO: u16 = 64;
const BUYERS: usize = 12;
const SHOWS: usize = 24;

/// What one buyer saw: each `202` in the order it came (show, booking id).
type Answered = Vec<(String, uuid::Uuid)>;

async fn system() -> TestSystem {
    spawn_system(SystemOptions {
        settings_override: Some(Arc::new(|s| s.amqp.partitions = FROM)),
        ..SystemOptions::default()
    })
    .await
}

/// `BUYERS` buyers, each booking one seat at a time on its three shows in turn
/// (a `503` retried with the same Idempotency-Key), until `stop`.
fn start_load(
    sys: &TestSystem,
    shows: &[contracts::ShowId],
    tokens: &[String],
    stop: &Arc<AtomicBool>,
    count: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<Answered>> {
    (0..BUYERS)
        .map(|b| {
            let count = count.clone();
            let http = sys.http.clone();
            let url = sys.url("/v1/bookings");
            let stop = stop.clone();
            let token = tokens[b].clone();
            let mine: Vec<String> = (0..3)
                .map(|k| shows[(b * 3 + k) % shows.len()].to_string())
                .collect();
            tokio::spawn(async move {
                let mut answered = Vec::new();
                let mut i = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let show = &mine[i % mine.len()];
                    let key = format!("grow-{b}-{i}");
                    let body = json!({"show_id": show, "quantity": 1});
                    let mut tries = 0;
                    loop {
                        let res = http
                            .post(&url)
                            .bearer_auth(&token)
                            .header("idempotency-key", &key)
                            .json(&body)
                            .send()
                            .await
                            .unwrap_or_else(|e| panic!("buyer {b}: no answer: {e}"));
                        let status = res.status().as_u16();
                        let res: serde_json::Value = res.json().await.unwrap_or_default();
                        if status == 202 {
                            let id = res["booking_id"].as_str().expect("booking_id");
                            answered.push((show.clone(), id.parse().expect("uuid")));
                            count.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        assert_eq!(status, 503, "buyer {b}, request {i}: {res}");
                        tries += 1;
                        assert!(tries < 100, "buyer {b}: 503 for 20 s: {res}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    i += 1;
                }
                answered
            })
        })
        .collect()
}

async fn bookctl(sys: &TestSystem, args: &[&str]) -> serde_json::Value {
    let argv = ["bookctl", "--json"].iter().chain(args).copied();
    let cli = bookctl::cli::parse_from(argv).expect("bookctl arguments");
    let mut out = Vec::new();
    bookctl::cli::run(&sys.settings, cli, &mut out, None)
        .await
        .unwrap_or_else(|e| panic!("bookctl {args:?}: {e:#}"));
    serde_json::from_slice(&out).expect("bookctl --json output")
}

/// The checks after the load: each `202` decided once, in its buyer's order per
/// show, nothing oversold, the old queues gone and the new ones listed.
async fn assert_grown(sys: &TestSystem, answered: Vec<Answered>) {
    let ids: Vec<uuid::Uuid> = answered.iter().flatten().map(|(_, id)| *id).collect();
    assert!(
        ids.len() > 200,
        "too little load to prove anything: {}",
        ids.len()
    );
    sys.wait_decided(&ids, Duration::from_secs(60)).await;
    // Each booking's first event: its place in its show's order.
    let rows: Vec<(uuid::Uuid, i64, i64)> = sqlx::query_as(
        "select booking_id, min(seq), count(*) filter (where type in ('booking.held', 'booking.rejected'))
           from booking_events where booking_id = any($1) group by booking_id",
    )
    .bind(&ids)
    .fetch_all(&sys.pool)
    .await
    .expect("events");
    assert_eq!(rows.len(), ids.len(), "every accepted booking has events");
    let first: HashMap<uuid::Uuid, i64> = rows
        .iter()
        .map(|(id, seq, decisions)| {
            assert_eq!(*decisions, 1, "booking {id} decided {decisions} times");
            (*id, *seq)
        })
        .collect();
    for (b, mine) in answered.iter().enumerate() {
        let mut last: HashMap<&str, i64> = HashMap::new();
        for (show, id) in mine {
            let seq = first[id];
            if let Some(prev) = last.insert(show.as_str(), seq) {
                assert!(
                    prev < seq,
                    "buyer {b}, show {show}: booking {id} applied before the one answered earlier"
                );
            }
        }
    }
    let oversold: i64 = sqlx::query_scalar(
        "select count(*) from (select seat_id, show_id from booking_seats
          where released_at is null group by show_id, seat_id having count(*) > 1) s",
    )
    .fetch_one(&sys.pool)
    .await
    .expect("oversold");
    assert_eq!(oversold, 0, "a seat live twice");
    let reconcile = bookctl(sys, &["reconcile"]).await;
    assert_eq!(reconcile["ok"], true, "{reconcile}");
    // The layouts: the first retired, its queues gone; the new one current.
    let states: Vec<(i16, i16, String)> = sqlx::query_as(
        "select generation, partitions, state from partition_layouts order by generation",
    )
    .fetch_all(&sys.pool)
    .await
    .expect("layouts");
    assert_eq!(
        states,
        vec![
            (1, FROM as i16, "retired".to_owned()),
            (2, TO as i16, "current".to_owned())
        ]
    );
    let listed = bookctl(sys, &["partitions"]).await;
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), usize::from(TO), "{listed}");
    assert!(
        items
            .iter()
            .all(|p| p["generation"] == 2 && p["layout"] == "current")
    );
    assert!(
        items.iter().all(|p| p["consumers"].as_u64() >= Some(1)),
        "every new partition has its runner: {listed}"
    );
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "grow-test")
        .await
        .expect("connect");
    let old = sys.settings.topology();
    for p in old.all_partitions() {
        let ch = conn.create_channel().await.expect("channel");
        let gone = platform::amqp::queue_counts(&ch, &old.partition_queue(p)).await;
        assert!(gone.is_err(), "{} is still there", old.partition_queue(p));
    }
    // The new queues are the test's to remove (its clean-up knows the first layout).
    let ch = conn.create_channel().await.expect("channel");
    let new = old.at_layout(2, TO);
    for p in new.all_partitions() {
        ch.queue_delete(new.partition_queue(p).into(), Default::default())
            .await
            .expect("delete a new queue");
    }
    drop(conn.close(200, "done".into()).await);
}

/// One growth at a time: each declares 80 quorum queues and runs 80 runners, which
/// two at once on a 2-core machine turn into a test of the broker's patience.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn setup() -> (TestSystem, Vec<contracts::ShowId>, Vec<String>) {
    let sys = system().await;
    let mut shows = Vec::new();
    for _ in 0..SHOWS {
        shows.push(sys.show(10, 20).await);
    }
    let mut tokens = Vec::new();
    for i in 0..BUYERS {
        tokens.push(sys.customer(i).await.1);
    }
    (sys, shows, tokens)
}

/// Waits until the buyers were answered `202` `more` times after now.
async fn more_answered(count: &AtomicUsize, more: usize) {
    let want = count.load(Ordering::SeqCst) + more;
    let reached = tests::poll(
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async {
            let have = count.load(Ordering::SeqCst);
            if have >= want { Ok(()) } else { Err(have) }
        },
    )
    .await;
    if let Err(have) = reached {
        panic!("the buyers got {have} of {want} answers within 60 s");
    }
}

async fn finish(
    sys: TestSystem,
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
    load: Vec<tokio::task::JoinHandle<Answered>>,
) {
    // Bookings go on after the growth too.
    more_answered(&count, 100).await;
    stop.store(true, Ordering::SeqCst);
    let mut answered = Vec::new();
    for h in load {
        answered.push(h.await.expect("a buyer panicked"));
    }
    assert_grown(&sys, answered).await;
    sys.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn growing_from_16_to_64_partitions_under_load_loses_nothing_and_keeps_each_buyers_order() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (sys, shows, tokens) = setup().await;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let load = start_load(&sys, &shows, &tokens, &stop, &count);
    more_answered(&count, 200).await;
    let grown = bookctl(&sys, &["partitions", "grow", "64"]).await;
    assert_eq!(grown["report"]["state"], "done", "{grown}");
    assert_eq!(grown["report"]["partitions"], 64, "{grown}");
    finish(sys, stop, count, load).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_growth_interrupted_by_a_workers_crash_after_the_flip_continues_when_run_again() {
    let _one = ONE_AT_A_TIME.lock().await;
    let (mut sys, shows, tokens) = setup().await;
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let load = start_load(&sys, &shows, &tokens, &stop, &count);
    more_answered(&count, 200).await;
    let flipped = bookctl(&sys, &["partitions", "grow", "64", "--stop-after-flip"]).await;
    assert_eq!(flipped["report"]["state"], "flipped", "{flipped}");
    // The only workers process dies with the new layout current and the old one
    // not sealed: new commands wait in the new queues, the old queues keep theirs.
    sys.workers.pop().expect("one workers process").kill().await;
    let w = sys.start_worker(None, tests::Faults::default()).await;
    sys.workers.push(w);
    let grown = bookctl(&sys, &["partitions", "grow", "64"]).await;
    assert_eq!(grown["report"]["state"], "done", "{grown}");
    assert_eq!(grown["report"]["from_generation"], 1, "{grown}");
    finish(sys, stop, count, load).await;
}
