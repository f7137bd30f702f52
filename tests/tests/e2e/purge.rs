//! Purging a dead-letter queue (`POST /v1/ops/dlq/{queue}/purge`): only the named
//! messages go, also one that another read holds unacked for a moment.

use crate::ops::{bookctl, bookctl_json, post, publish_poison, queue_depth, token, wait_dlq};
use auth::Role;
use lapin::types::FieldTable;
use serde_json::json;
use std::time::Duration;
use tests::{SystemOptions, spawn_system};

#[tokio::test]
async fn purge_removes_only_the_named_message() {
    let sys = spawn_system(SystemOptions::default()).await;
    let dlq = sys.settings.topology().commands_dlq();
    publish_poison(&sys, "poison-a").await;
    publish_poison(&sys, "poison-b").await;
    wait_dlq(&sys, 2).await;

    let out = bookctl(&sys, &["dlq", "purge", &dlq, "--id", "poison-a", "--yes"]).await;
    assert!(out.contains("removed 1 message(s)"), "{out}");
    wait_dlq(&sys, 1).await;
    let left = bookctl_json(&sys, &["dlq", "show", &dlq]).await;
    let ids: Vec<&str> = left["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["poison-b"]);
    wait_dlq(&sys, 1).await;

    // An id that is not there removes nothing and says so.
    let out = bookctl_json(&sys, &["dlq", "purge", &dlq, "--id", "poison-a", "--yes"]).await;
    assert_eq!(out, json!({"removed": 0, "not_found": ["poison-a"]}));
    wait_dlq(&sys, 1).await;

    // Over HTTP: an empty list is refused, a named message is removed.
    let op = token(&sys, Role::Operator);
    let purge = format!("/v1/ops/dlq/{dlq}/purge");
    let (status, res) = post(&sys, Some(&op), &purge, json!({"message_ids": []})).await;
    assert_eq!(status, 422, "{res}");
    wait_dlq(&sys, 1).await;
    let (status, res) = post(
        &sys,
        Some(&op),
        &purge,
        json!({"message_ids": ["poison-b"]}),
    )
    .await;
    assert_eq!(status, 200, "{res}");
    assert_eq!(res, json!({"removed": 1, "not_found": []}));
    wait_dlq(&sys, 0).await;
    sys.shutdown().await;
}

/// The console lists a queue (which takes its messages unacked for a moment) and
/// the operator purges at once: the purge finds the message once the other read has
/// put it back, instead of answering that it is gone (seen in the browser test).
#[tokio::test]
async fn a_purge_finds_a_message_that_another_read_holds_for_a_moment() {
    use futures::StreamExt;
    use lapin::options::{BasicConsumeOptions, BasicNackOptions};
    let sys = spawn_system(SystemOptions {
        // The purge's "looking again" is an info line.
        log_filter: Some("info".into()),
        ..SystemOptions::default()
    })
    .await;
    let dlq = sys.settings.topology().commands_dlq();
    publish_poison(&sys, "poison-held").await;
    wait_dlq(&sys, 1).await;

    // Another reader holds the message unacked.
    let conn = platform::amqp::connect(&sys.settings.amqp.url, "other-reader")
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    let mut consumer = ch
        .basic_consume(
            dlq.as_str().into(),
            "other-reader".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let held = consumer
        .next()
        .await
        .expect("a delivery")
        .expect("no error");
    assert_eq!(queue_depth(&sys, &dlq).await, 0, "not ready while held");

    let op = token(&sys, Role::Operator);
    let purge = format!("/v1/ops/dlq/{dlq}/purge");
    let purging = post(
        &sys,
        Some(&op),
        &purge,
        json!({"message_ids": ["poison-held"]}),
    );
    let put_back = async {
        // The other read gives the message back once the purge has looked and
        // missed it.
        sys.eventually(Duration::from_secs(10), "the purge looks again", || async {
            sys.logs()
                .iter()
                .any(|l| l.contains("purge: not in the queue yet, looking again"))
        })
        .await;
        ch.basic_cancel("other-reader".into(), Default::default())
            .await
            .unwrap();
        held.nack(BasicNackOptions {
            requeue: true,
            multiple: false,
        })
        .await
        .unwrap();
    };
    let ((status, res), ()) = tokio::join!(purging, put_back);
    assert_eq!(status, 200, "{res}");
    assert_eq!(res, json!({"removed": 1, "not_found": []}));
    wait_dlq(&sys, 0).await;
    drop(conn.close(200, "done".into()).await);
    sys.shutdown().await;
}
