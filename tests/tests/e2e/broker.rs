//! Ingress while its RabbitMQ connection is gone (a proxy between the two is cut,
//! the shared broker is untouched): a booking is answered at once with `503`,
//! `Retry-After` and a problem body, never left hanging; once the broker is back the
//! publisher reconnects within about a second, and says so in its metrics.

use serde_json::json;
use std::time::{Duration, Instant};
use tests::proxy::TcpProxy;
use tests::{SystemOptions, spawn_system, with_port};

#[tokio::test]
async fn without_the_broker_a_booking_is_a_prompt_503_problem_with_retry_after_then_it_recovers() {
    let sys = spawn_system(SystemOptions::default()).await;
    let amqp = reqwest::Url::parse(&sys.settings.amqp.url).unwrap();
    let proxy = TcpProxy::start(format!(
        "{}:{}",
        amqp.host_str().unwrap(),
        amqp.port().unwrap_or(5672)
    ))
    .await
    .unwrap();
    let mut settings = sys.settings.clone();
    settings.amqp.url = with_port(&sys.settings.amqp.url, proxy.port);
    let proxied = sys.start_ingress(&settings).await;
    let base = proxied.base_url();

    let show = sys.show(5, 10).await;
    let (_, token) = sys.customer(1).await;
    let book = |key: String| {
        sys.http
            .post(format!("{base}/v1/bookings"))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&json!({"show_id": show.to_string(), "quantity": 1}))
            .send()
    };
    let res = book("before".into()).await.unwrap();
    assert_eq!(res.status(), 202);

    proxy.cut();
    let started = Instant::now();
    let answers = futures::future::join_all((0..10).map(|i| book(format!("during-{i}")))).await;
    for res in answers {
        let res = res.unwrap();
        assert_eq!(res.status(), 503);
        let retry_after: u64 = res.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=5).contains(&retry_after), "{retry_after}");
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        let problem: serde_json::Value = res.json().await.unwrap();
        assert_eq!(problem["code"], "unavailable", "{problem}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the answers took {:?}",
        started.elapsed()
    );

    proxy.restore();
    let restored = Instant::now();
    let mut n = 0;
    sys.eventually(
        Duration::from_secs(5),
        "bookings are accepted again",
        || {
            n += 1;
            let req = book(format!("after-{n}"));
            async move { req.await.is_ok_and(|r| r.status() == 202) }
        },
    )
    .await;
    assert!(
        restored.elapsed() < Duration::from_secs(3),
        "recovered only after {:?}",
        restored.elapsed()
    );
    // The proxied ingress's own metrics (its own process and listener).
    let metrics = proxied.metrics().await;
    assert!(
        metrics.contains("amqp_publisher_reconnects_total{name=\"ingress\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("amqp_publisher_down_seconds"), "{metrics}");
    proxied.stop().await;
    sys.shutdown().await;
}
