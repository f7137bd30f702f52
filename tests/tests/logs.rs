//! One booking can be followed through the JSON logs of every part it crosses:
//! ingress (accepted, webhook), the sequencer runner (each decision), the payment
//! saga, the notifier — by its booking id, and by the W3C trace id the client
//! started, which travels in the AMQP `traceparent` headers and envelopes.
//! The lines read are the processes' own: the JSON the `ingress` and `workers`
//! binaries write to stderr, as a log shipper would read them.

use serde_json::{Value, json};
use std::time::Duration;
use tests::{SystemOptions, spawn_system};

/// The client's W3C trace: every part continues it.
const CLIENT_TRACE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const CLIENT_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_booking_can_be_followed_through_the_json_logs_of_every_process() {
    let sys = spawn_system(SystemOptions {
        log_filter: Some("info,lapin=warn,sqlx=warn".into()),
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(2, 4).await;
    let (_, token) = sys.customer(1).await;
    let res = sys
        .http
        .post(sys.url("/v1/bookings"))
        .bearer_auth(&token)
        .header("idempotency-key", "follow-me")
        .header("x-request-id", "trace-me-123")
        .header("traceparent", CLIENT_TRACE)
        .json(
            &json!({"show_id": show.to_string(), "seats": ["A1"], "payment_method": "pm_card_ok"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["booking_id"]
        .as_str()
        .unwrap()
        .to_owned();
    sys.eventually(
        Duration::from_secs(30),
        "the booking is confirmed",
        || async { sys.booking(&token, &id).await.1["status"] == "confirmed" },
    )
    .await;
    sys.wait_emails(1, Duration::from_secs(30)).await;
    // The notifier logs its send after the mail is stored: wait for that line.
    sys.eventually(Duration::from_secs(10), "the notifier's line", || async {
        sys.logs()
            .iter()
            .any(|l| l.contains(&id) && l.contains("email sent"))
    })
    .await;

    let lines: Vec<Value> = sys
        .logs()
        .iter()
        .filter(|l| l.contains(&id))
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    let seen = |target: &str, message: &str| {
        lines.iter().any(|l| {
            l["target"].as_str().is_some_and(|t| t.starts_with(target))
                && l["message"].as_str() == Some(message)
        })
    };
    assert!(seen("ingress", "booking accepted"), "{lines:#?}");
    assert!(seen("workers::runner", "booking decided"), "{lines:#?}");
    assert!(
        seen("workers::saga", "payment created at the gateway"),
        "{lines:#?}"
    );
    assert!(seen("ingress", "webhook accepted"), "{lines:#?}");
    let decisions: Vec<&str> = lines
        .iter()
        .filter(|l| l["message"] == "booking decided")
        .filter_map(|l| l["event"].as_str())
        .collect();
    assert_eq!(
        decisions,
        [
            "booking.held",
            "booking.payment_pending",
            "booking.confirmed"
        ]
    );
    // The client's request id travels with the command into the runner's log.
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "booking decided" && l["request_id"] == "trace-me-123"),
        "{lines:#?}"
    );
    // The client's traceparent is continued by every part the booking crosses:
    // ingress, each decision of the sequencer runner, the saga (also for the work a
    // gateway webhook triggers) and the notifier.
    let trace_of = |l: &Value| {
        l["trace_id"]
            .as_str()
            .or_else(|| l["span"]["trace_id"].as_str())
            .map(str::to_owned)
    };
    for (target, message) in [
        ("ingress", "booking accepted"),
        ("workers::runner", "booking decided"),
        ("workers::saga", "payment created at the gateway"),
        ("workers::saga", "saga sent command"),
        ("notifier", "email sent"),
    ] {
        let traced: Vec<Option<String>> = lines
            .iter()
            .filter(|l| {
                l["target"].as_str().is_some_and(|t| t.starts_with(target))
                    && l["message"].as_str() == Some(message)
            })
            .map(trace_of)
            .collect();
        assert!(
            !traced.is_empty(),
            "no {message:?} line of {target}: {lines:#?}"
        );
        assert!(
            traced.iter().all(|t| t.as_deref() == Some(CLIENT_TRACE_ID)),
            "{target} {message:?} lines carry traces {traced:?}, not the client's"
        );
    }
    sys.shutdown().await;
}
