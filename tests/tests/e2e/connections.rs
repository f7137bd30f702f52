//! What one client can do to everyone's connections: a request id it chooses is
//! kept only when small and visible (it goes into every log line and the AMQP
//! headers of the commands the request causes).

use tests::{SystemOptions, TestSystem, spawn_system};

/// The `x-request-id` ingress answers `GET /healthz` sent with `id`.
async fn answered_request_id(sys: &TestSystem, id: &str) -> String {
    let res = sys
        .http
        .get(sys.url("/healthz"))
        .header("x-request-id", id)
        .send()
        .await
        .expect("healthz");
    assert_eq!(res.status(), 200);
    res.headers()["x-request-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_request_id_is_kept_only_when_it_is_1_to_128_visible_ascii_characters() {
    let sys = spawn_system(SystemOptions::default()).await;
    let kept = "req-0193_abc.DEF~1";
    assert_eq!(answered_request_id(&sys, kept).await, kept);
    let longest = "r".repeat(128);
    assert_eq!(answered_request_id(&sys, &longest).await, longest);
    for bad in ["r".repeat(129), "x".repeat(4096), "has space".to_owned()] {
        let fresh = answered_request_id(&sys, &bad).await;
        assert_ne!(fresh, bad);
        assert!(
            uuid::Uuid::parse_str(&fresh).is_ok(),
            "a fresh id is a UUID, got {fresh:?}"
        );
    }
    sys.shutdown().await;
}
