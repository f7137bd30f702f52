//! The client against a wiremock gateway: retries, error mapping, encoding.

use super::*;
use crate::model::IntentStatus;
use contracts::BookingId;
use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BOOKING: Uuid = Uuid::from_u128(0x1234);

fn gateway(server: &MockServer, timeout: Duration, max_attempts: usize) -> HttpGateway {
    let _ = rustls::crypto::ring::default_provider().install_default();
    HttpGateway::new(&server.uri(), "sk_test_unit", timeout, max_attempts)
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
}

fn payment() -> CreatePayment {
    CreatePayment {
        booking_id: BookingId(BOOKING),
        amount: 25_000,
        currency: "INR".into(),
        payment_method: "pm_card_ok".into(),
    }
}

fn intent_json() -> serde_json::Value {
    json!({
        "id": "pi_123", "object": "payment_intent", "amount": 25000, "currency": "INR",
        "status": "processing", "payment_method": "pm_card_ok",
        "metadata": {"booking_id": BOOKING.to_string()}, "amount_refunded": 0,
        "last_payment_error": null, "created": 1_700_000_000
    })
}

fn stripe_error(code: &str) -> serde_json::Value {
    json!({"error": {"type": "invalid_request_error", "code": code, "message": "nope"}})
}

fn idempotency_keys(requests: &[wiremock::Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            r.headers
                .get(IDEMPOTENCY_HEADER)
                .expect("every create carries an Idempotency-Key")
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn a_500_is_retried_and_the_retry_carries_the_same_idempotency_key_and_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({
            "error": {"type": "api_error", "code": "internal", "message": "boom"}
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .and(header("authorization", "Bearer sk_test_unit"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent_json()))
        .mount(&server)
        .await;

    let intent = gateway(&server, Duration::from_secs(2), 3)
        .create_payment(&payment(), "key-1")
        .await
        .unwrap();

    assert_eq!(intent.id, "pi_123");
    assert_eq!(intent.status, IntentStatus::Processing);
    assert_eq!(intent.metadata.booking_id, BOOKING);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(idempotency_keys(&requests), ["key-1", "key-1"]);
    assert_eq!(requests[0].body, requests[1].body);
    let sent: serde_json::Value = requests[0].body_json().unwrap();
    assert_eq!(
        sent,
        json!({"amount": 25000, "currency": "INR", "payment_method": "pm_card_ok",
               "metadata": {"booking_id": BOOKING.to_string()}})
    );
}

#[tokio::test]
async fn a_402_is_returned_as_rejected_without_a_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(402).set_body_json(stripe_error("card_declined")))
        .expect(1)
        .mount(&server)
        .await;

    let err = gateway(&server, Duration::from_secs(2), 5)
        .create_payment(&payment(), "key-2")
        .await
        .unwrap_err();

    assert!(
        matches!(&err, GatewayError::Rejected { status: 402, code, .. } if code == "card_declined"),
        "{err:?}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_400_is_returned_as_rejected_without_a_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(400).set_body_json(stripe_error("amount_too_large")))
        .expect(1)
        .mount(&server)
        .await;

    let err = gateway(&server, Duration::from_secs(2), 5)
        .refund("pi_123", 10, "refund-key")
        .await
        .unwrap_err();

    assert!(
        matches!(&err, GatewayError::Rejected { status: 400, code, .. } if code == "amount_too_large"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_4xx_without_a_stripe_body_is_rejected_with_the_status_as_code() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("not here"))
        .expect(1)
        .mount(&server)
        .await;

    let err = gateway(&server, Duration::from_secs(2), 3)
        .get_payment("pi_missing")
        .await
        .unwrap_err();

    assert!(
        matches!(&err, GatewayError::Rejected { status: 404, code, message } if code == "http_404" && message == "not here"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_timed_out_attempt_is_retried_and_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(intent_json())
                .set_delay(Duration::from_secs(2)),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent_json()))
        .mount(&server)
        .await;

    let started = Instant::now();
    let intent = gateway(&server, Duration::from_millis(200), 3)
        .create_payment(&payment(), "key-3")
        .await
        .unwrap();

    assert_eq!(intent.id, "pi_123");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for the slow answer"
    );
    let requests = server.received_requests().await.unwrap();
    assert_eq!(idempotency_keys(&requests), ["key-3", "key-3"]);
}

#[tokio::test]
async fn the_client_gives_up_after_max_attempts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .expect(4)
        .mount(&server)
        .await;

    let err = gateway(&server, Duration::from_secs(2), 4)
        .create_payment(&payment(), "key-4")
        .await
        .unwrap_err();

    assert!(
        matches!(&err, GatewayError::Server { status: 503, message } if message == "overloaded"),
        "{err:?}"
    );
}

#[tokio::test]
async fn timeouts_on_every_attempt_end_in_a_timeout_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(intent_json())
                .set_delay(Duration::from_secs(2)),
        )
        .expect(2)
        .mount(&server)
        .await;

    let err = gateway(&server, Duration::from_millis(100), 2)
        .get_payment("pi_123")
        .await
        .unwrap_err();

    assert!(matches!(err, GatewayError::Timeout), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_gateway_is_a_transport_error_after_every_attempt() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = HttpGateway::new(
        &format!("http://127.0.0.1:{port}"),
        "sk",
        Duration::from_secs(1),
        2,
    )
    .with_backoff(Duration::from_millis(1), Duration::from_millis(2));

    let err = client.cancel_payment("pi_1").await.unwrap_err();

    assert!(matches!(err, GatewayError::Transport(_)), "{err:?}");
}

#[tokio::test]
async fn a_garbled_success_answer_is_a_decode_error_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"id\": 5"))
        .expect(1)
        .mount(&server)
        .await;

    let err = gateway(&server, Duration::from_secs(1), 3)
        .get_payment("pi_123")
        .await
        .unwrap_err();

    assert!(matches!(err, GatewayError::Decode(_)), "{err:?}");
}

#[tokio::test]
async fn payment_ids_are_percent_encoded_into_one_path_segment() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents/pi_1%2Fx%3Fy/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent_json()))
        .expect(1)
        .mount(&server)
        .await;

    gateway(&server, Duration::from_secs(1), 1)
        .cancel_payment("pi_1/x?y")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_refund_is_fetched_by_its_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/refunds/re_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_1", "object": "refund", "payment_intent": "pi_123", "amount": 900,
            "currency": "INR", "status": "succeeded", "failure_reason": null
        })))
        .expect(1)
        .mount(&server)
        .await;

    let refund = gateway(&server, Duration::from_secs(1), 1)
        .get_refund("re_1")
        .await
        .unwrap();

    assert_eq!(
        (refund.payment_intent.as_str(), refund.amount, refund.status),
        ("pi_123", 900, crate::model::RefundStatus::Succeeded)
    );
}

#[tokio::test]
async fn payments_are_listed_a_page_at_a_time_after_a_cursor() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents"))
        .and(wiremock::matchers::query_param("limit", "2"))
        .and(wiremock::matchers::query_param("starting_after", "pi_9"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "data": [intent_json()], "has_more": false
        })))
        .expect(1)
        .mount(&server)
        .await;

    let page = gateway(&server, Duration::from_secs(1), 1)
        .list_payments(Some("pi_9"), 2)
        .await
        .unwrap();

    assert_eq!(page.data.len(), 1);
    assert_eq!(page.data[0].id, "pi_123");
    assert!(!page.has_more);
}
