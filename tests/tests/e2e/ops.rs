//! Operations: dead-letter queues through `bookctl` (its library) and `/v1/ops`, a
//! dry run that changes nothing, a replay that applies once however often it is
//! repeated, a purge that removes only what it names, and the partitions view.

use auth::Role;
use contracts::topology::{DEAD_LETTER_REASON_HEADER, SOURCE_QUEUE_HEADER};
use contracts::{
    BookingId, Command, CommandEnvelope, HoldSeats, MessageId, SeatId, SeatRequest, ShowId, UserId,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde_json::{Value, json};
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

/// Runs a `bookctl` command (without the program name) and returns its output.
pub(crate) async fn bookctl(sys: &TestSystem, args: &[&str]) -> String {
    let cli = bookctl::cli::parse_from(std::iter::once("bookctl").chain(args.iter().copied()))
        .expect("valid bookctl arguments");
    let mut out = Vec::new();
    bookctl::cli::run(&sys.settings, cli, &mut out, None)
        .await
        .unwrap_or_else(|e| panic!("bookctl {args:?} failed: {e:#}"));
    String::from_utf8(out).unwrap()
}

/// Runs a `bookctl --json` command and parses its output.
pub(crate) async fn bookctl_json(sys: &TestSystem, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = bookctl(sys, &all).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

pub(crate) fn token(sys: &TestSystem, role: Role) -> String {
    sys.tokens.mint(UserId::new_v7(), role).unwrap()
}

async fn get(sys: &TestSystem, token: Option<&str>, path: &str) -> (u16, Value) {
    let mut req = sys.http.get(sys.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

pub(crate) async fn post(
    sys: &TestSystem,
    token: Option<&str>,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let mut req = sys.http.post(sys.url(path)).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// Publishes a malformed command to partition 0: the runner dead-letters it.
pub(crate) async fn publish_poison(sys: &TestSystem, id: &str) {
    let topo = sys.settings.topology();
    sys.publish_raw(
        &topo.commands_exchange(),
        &topo.partition_key(0),
        b"{\"this is\": \"not a command\"}",
        id,
        FieldTable::default(),
    )
    .await;
}

pub(crate) async fn queue_depth(sys: &TestSystem, queue: &str) -> u32 {
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "test")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let (n, _) = platform::amqp::queue_counts(&ch, queue).await.unwrap();
    drop(conn.close(200, "done".into()).await);
    n
}

/// Waits until the commands dead-letter queue holds exactly `n` ready messages
/// (a read puts its messages back asynchronously).
pub(crate) async fn wait_dlq(sys: &TestSystem, n: u32) {
    wait_depth(sys, &sys.settings.topology().commands_dlq(), n).await;
}

/// Waits until `queue` holds exactly `n` ready messages.
pub(crate) async fn wait_depth(sys: &TestSystem, queue: &str, n: u32) {
    sys.eventually(
        Duration::from_secs(30),
        &format!("{queue} holds {n} message(s)"),
        || async { queue_depth(sys, queue).await == n },
    )
    .await;
}

fn hold(show: ShowId, seats: &[&str]) -> CommandEnvelope {
    CommandEnvelope {
        message_id: MessageId::new_v7(),
        show_id: show,
        issued_at: platform::now_millis(),
        request_id: Some("ops-test".into()),
        trace: None,
        command: Command::HoldSeats(HoldSeats {
            booking_id: BookingId::new_v7(),
            user_id: UserId::new_v7(),
            request: SeatRequest::Chosen {
                seats: seats
                    .iter()
                    .map(|s| SeatId::try_from((*s).to_owned()).unwrap())
                    .collect(),
            },
            hold_ttl_ms: 480_000,
            payment_method: None,
        }),
    }
}

async fn booking_row(sys: &TestSystem, booking: BookingId) -> Option<String> {
    sqlx::query_scalar("select status from bookings where id = $1")
        .bind(booking.0)
        .fetch_optional(&sys.pool)
        .await
        .unwrap()
}

async fn events_of(sys: &TestSystem, booking: BookingId) -> i64 {
    sqlx::query_scalar("select count(*) from booking_events where booking_id = $1")
        .bind(booking.0)
        .fetch_one(&sys.pool)
        .await
        .unwrap()
}

async fn live_seats(sys: &TestSystem, booking: BookingId) -> Vec<String> {
    sqlx::query_scalar(
        "select seat_id from booking_seats where booking_id = $1 and released_at is null
          order by seat_id",
    )
    .bind(booking.0)
    .fetch_all(&sys.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_poison_message_is_visible_through_dlq_list_and_show() {
    let sys = spawn_system(SystemOptions::default()).await;
    let topo = sys.settings.topology();
    let dlq = topo.commands_dlq();
    publish_poison(&sys, "poison-1").await;
    wait_dlq(&sys, 1).await;

    // The CLI, as people read it.
    let list = bookctl(&sys, &["dlq", "list"]).await;
    let row: Vec<&str> = list
        .lines()
        .find(|l| l.starts_with(&dlq))
        .unwrap_or_else(|| panic!("no row for {dlq}:\n{list}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[1], "1", "{list}");
    assert!(row[2].ends_with('s'), "an age is shown: {list}");
    wait_dlq(&sys, 1).await;
    let shown = bookctl(&sys, &["dlq", "show", &dlq]).await;
    assert!(shown.contains("message poison-1"), "{shown}");
    assert!(shown.contains("reason:  unparseable command"), "{shown}");
    assert!(
        shown.contains(&format!("source:  {}", topo.partition_queue(0))),
        "{shown}"
    );
    assert!(
        shown.contains("not a command"),
        "the body is shown: {shown}"
    );
    wait_dlq(&sys, 1).await;

    // The HTTP API, as scripts read it.
    let op = token(&sys, Role::Operator);
    let (status, body) = get(&sys, Some(&op), "/v1/ops/dlq").await;
    assert_eq!(status, 200, "{body}");
    let item = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["queue"] == dlq.as_str())
        .unwrap_or_else(|| panic!("{dlq} is listed: {body}"));
    assert_eq!(item["messages"], 1, "{body}");
    assert!(item["oldest_age_secs"].as_u64().is_some(), "{body}");
    wait_dlq(&sys, 1).await;
    let (status, body) = get(
        &sys,
        Some(&op),
        &format!("/v1/ops/dlq/{dlq}/messages?limit=5"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    let m = &items[0];
    assert_eq!(m["message_id"], "poison-1");
    assert!(
        m["reason"]
            .as_str()
            .unwrap()
            .starts_with("unparseable command"),
        "{m}"
    );
    assert_eq!(m["source_queue"], topo.partition_queue(0).as_str());
    assert_eq!(m["death_count"], 1);
    assert_eq!(m["body"], json!({"this is": "not a command"}));
    assert_eq!(
        m["headers"][DEAD_LETTER_REASON_HEADER], m["reason"],
        "every header is shown"
    );

    // A body that is not a command cannot be routed back: a replay skips it.
    wait_dlq(&sys, 1).await;
    let out = bookctl_json(&sys, &["dlq", "replay", &dlq, "--all"]).await;
    assert_eq!(out["replayed"], 0, "{out}");
    assert_eq!(out["skipped"][0]["message_id"], "poison-1", "{out}");

    // Reading lost nothing.
    wait_dlq(&sys, 1).await;
    sys.shutdown().await;
}

#[tokio::test]
async fn a_dead_lettered_hold_is_dry_run_then_replayed_once_however_often_it_is_replayed() {
    let sys = spawn_system(SystemOptions::default()).await;
    let topo = sys.settings.topology();
    let dlq = topo.commands_dlq();

    // A valid hold for a show that does not exist yet: the runner cannot load the
    // show and dead-letters the command.
    let show = ShowId::new_v7();
    let cmd = hold(show, &["A1", "A2"]);
    let booking = cmd.command.booking_id();
    let id = cmd.message_id.to_string();
    let body = serde_json::to_vec(&cmd).unwrap();
    sys.publish_raw(
        &topo.commands_exchange(),
        &topo.partition_key(topo.partition_of(show)),
        &body,
        &id,
        FieldTable::default(),
    )
    .await;
    wait_dlq(&sys, 1).await;
    let shown = bookctl_json(&sys, &["dlq", "show", &dlq]).await;
    let reason = shown["items"][0]["reason"].as_str().unwrap().to_owned();
    assert_eq!(reason, format!("show {show} cannot be loaded"));
    wait_dlq(&sys, 1).await;

    // The show is fixed (created) afterwards.
    sys.show_with_id(show, 2, 4).await;

    // Dry run: the seat change is printed; nothing is published or removed.
    let dry = bookctl(&sys, &["dlq", "replay", &dlq, "--id", &id, "--dry-run"]).await;
    assert!(
        dry.contains(&format!("booking {booking} held A1,A2")),
        "{dry}"
    );
    assert!(dry.contains("nothing is published"), "{dry}");
    let dry_json = bookctl_json(&sys, &["dlq", "replay", &dlq, "--id", &id, "--dry-run"]).await;
    let change = &dry_json["messages"][0]["changes"][0];
    assert_eq!(change["event"], "booking.held", "{dry_json}");
    assert_eq!(change["seats_taken"], json!(["A1", "A2"]), "{dry_json}");
    wait_dlq(&sys, 1).await;
    // The same dry run over HTTP (what the /ops page shows before a replay).
    let op = token(&sys, Role::Operator);
    let (status, http_dry) = post(
        &sys,
        Some(&op),
        &format!("/v1/ops/dlq/{dlq}/replay"),
        json!({"message_ids": [id, "not-there"], "dry_run": true}),
    )
    .await;
    assert_eq!(status, 200, "{http_dry}");
    assert_eq!(http_dry["dry_run"], true, "{http_dry}");
    assert_eq!(http_dry["messages"], dry_json["messages"], "{http_dry}");
    assert_eq!(http_dry["not_found"], json!(["not-there"]), "{http_dry}");
    wait_dlq(&sys, 1).await;
    sys.holds_for(
        Duration::from_millis(500),
        "a dry run applies nothing",
        || async { booking_row(&sys, booking).await.is_none() },
    )
    .await;
    assert_eq!(
        queue_depth(&sys, &dlq).await,
        1,
        "the message is still there"
    );

    // The replay applies it once.
    let replayed = bookctl_json(&sys, &["dlq", "replay", &dlq, "--id", &id]).await;
    assert_eq!(replayed["replayed"], 1, "{replayed}");
    assert_eq!(replayed["not_found"], json!([]), "{replayed}");
    sys.wait_decided(&[booking.0], Duration::from_secs(30))
        .await;
    assert_eq!(booking_row(&sys, booking).await.as_deref(), Some("held"));
    assert_eq!(live_seats(&sys, booking).await, ["A1", "A2"]);
    assert_eq!(events_of(&sys, booking).await, 1);
    wait_dlq(&sys, 0).await;

    // The identical message lands in the dead-letter queue a second time.
    let mut h = FieldTable::default();
    h.insert(
        DEAD_LETTER_REASON_HEADER.into(),
        AMQPValue::LongString(LongString::from(reason.clone())),
    );
    h.insert(
        SOURCE_QUEUE_HEADER.into(),
        AMQPValue::LongString(LongString::from(
            topo.partition_queue(topo.partition_of(show)),
        )),
    );
    sys.publish_raw(&topo.commands_dlx(), "", &body, &id, h)
        .await;
    wait_dlq(&sys, 1).await;
    let dry = bookctl(&sys, &["dlq", "replay", &dlq, "--all", "--dry-run"]).await;
    assert!(dry.contains("already applied"), "{dry}");
    wait_dlq(&sys, 1).await;

    // Replaying it again (over HTTP this time) changes nothing.
    let (status, res) = post(
        &sys,
        Some(&op),
        &format!("/v1/ops/dlq/{dlq}/replay"),
        json!({"message_ids": [id]}),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res["replayed"], 1, "{res}");
    // A booking published after the replay, on the same show (so the same
    // partition queue), is decided after the replayed message.
    let marker = hold(show, &["B1"]);
    sys.publish_raw(
        &topo.commands_exchange(),
        &topo.partition_key(topo.partition_of(show)),
        &serde_json::to_vec(&marker).unwrap(),
        &marker.message_id.to_string(),
        FieldTable::default(),
    )
    .await;
    sys.wait_decided(&[marker.command.booking_id().0], Duration::from_secs(30))
        .await;
    assert_eq!(events_of(&sys, booking).await, 1, "still one event");
    assert_eq!(booking_row(&sys, booking).await.as_deref(), Some("held"));
    assert_eq!(live_seats(&sys, booking).await, ["A1", "A2"]);
    assert_eq!(queue_depth(&sys, &dlq).await, 0, "not dead-lettered again");
    sys.shutdown().await;
}

#[tokio::test]
async fn the_ops_endpoints_refuse_customers_and_anonymous_callers() {
    let sys = spawn_system(SystemOptions::default()).await;
    let dlq = sys.settings.topology().commands_dlq();
    let (_, customer) = sys.customer(1).await;
    let gets = [
        "/v1/ops/dlq".to_owned(),
        format!("/v1/ops/dlq/{dlq}/messages"),
        "/v1/ops/partitions".to_owned(),
    ];
    for path in &gets {
        let (status, body) = get(&sys, None, path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("unauthenticated")),
            "{path}"
        );
        let (status, body) = get(&sys, Some(&customer), path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("forbidden")),
            "{path}"
        );
    }
    let replay = format!("/v1/ops/dlq/{dlq}/replay");
    let (status, _) = post(&sys, None, &replay, json!({"all": true})).await;
    assert_eq!(status, 401);
    let (status, body) = post(&sys, Some(&customer), &replay, json!({"all": true})).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    sys.shutdown().await;
}

#[tokio::test]
async fn the_ops_endpoints_refuse_other_queues_and_unclear_replays() {
    let sys = spawn_system(SystemOptions::default()).await;
    let topo = sys.settings.topology();
    let dlq = topo.commands_dlq();
    let (_, admin) = sys.user_with_role(Role::Admin).await;
    // A real queue, but not a dead-letter queue: it cannot be read through ops.
    let partition = topo.partition_queue(0);
    let (status, body) = get(
        &sys,
        Some(&admin),
        &format!("/v1/ops/dlq/{partition}/messages"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, _) = post(
        &sys,
        Some(&admin),
        &format!("/v1/ops/dlq/{partition}/replay"),
        json!({"all": true}),
    )
    .await;
    assert_eq!(status, 404);
    for bad in [
        json!({}),
        json!({"all": true, "message_ids": ["a"]}),
        json!({"message_ids": []}),
        json!({"all": false}),
    ] {
        let (status, body) = post(
            &sys,
            Some(&admin),
            &format!("/v1/ops/dlq/{dlq}/replay"),
            bad.clone(),
        )
        .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed")),
            "{bad}: {body}"
        );
    }
    let (status, _) = get(
        &sys,
        Some(&admin),
        &format!("/v1/ops/dlq/{dlq}/messages?limit=101"),
    )
    .await;
    assert_eq!(status, 422);
    // The short name (without the deployment's prefix) is accepted too.
    let (status, body) = get(
        &sys,
        Some(&admin),
        "/v1/ops/dlq/booking.commands.dlq/messages",
    )
    .await;
    assert_eq!((status, &body["items"]), (200, &json!([])), "{body}");
    sys.shutdown().await;
}

#[tokio::test]
async fn the_partitions_endpoint_shows_the_owner_and_epoch_after_a_booking() {
    let sys = spawn_system(SystemOptions::default()).await;
    let topo = sys.settings.topology();
    let show = sys.show(2, 4).await;
    let (_, customer) = sys.customer(0).await;
    let (status, body) = sys
        .submit(
            &customer,
            "ops-partitions-1",
            json!({"show_id": show.to_string(), "seats": ["A1"]}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let booking: uuid::Uuid = body["booking_id"].as_str().unwrap().parse().unwrap();
    sys.wait_decided(&[booking], Duration::from_secs(30)).await;

    let p = topo.partition_of(show);
    let op = token(&sys, Role::Operator);
    let (status, body) = get(&sys, Some(&op), "/v1/ops/partitions").await;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), usize::from(topo.partitions), "{body}");
    let item = &items[usize::from(p)];
    assert_eq!(item["partition"], p);
    assert_eq!(item["queue"], topo.partition_queue(p).as_str());
    assert_eq!(item["owner"], sys.workers[0].owner.as_str(), "{item}");
    assert!(item["epoch"].as_i64().unwrap() >= 1, "{item}");
    assert!(item["last_batch_at"].is_string(), "{item}");
    assert!(item["last_batch_size"].as_i64().unwrap() >= 1, "{item}");
    assert!(item["consumers"].as_u64().unwrap() >= 1, "{item}");

    let table = bookctl(&sys, &["partitions"]).await;
    assert!(table.starts_with("PARTITION"), "{table}");
    assert!(table.contains(&sys.workers[0].owner), "{table}");
    sys.shutdown().await;
}
