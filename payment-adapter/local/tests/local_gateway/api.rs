//! Authentication and validation of the HTTP API.

use super::*;

#[tokio::test]
async fn requests_without_the_api_key_are_refused_with_401() {
    let system = spawn_system(Options::default()).await;

    let anonymous = reqwest::Client::new()
        .get(format!("{}/v1/payment_intents/pi_x", system.base_url))
        .send()
        .await
        .unwrap();
    let wrong_key = HttpGateway::new(&system.base_url, "sk_wrong", Duration::from_secs(1), 3)
        .get_payment("pi_x")
        .await
        .unwrap_err();

    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert_rejected(&wrong_key, 401, "invalid_api_key");
}

#[tokio::test]
async fn invalid_payment_requests_are_refused_with_400() {
    let system = spawn_system(Options::default()).await;
    let cases = [
        (payment("pm_card_gold"), "invalid_payment_method"),
        (
            CreatePayment {
                amount: 0,
                ..payment("pm_card_ok")
            },
            "amount_too_small",
        ),
        (
            CreatePayment {
                currency: "inr".into(),
                ..payment("pm_card_ok")
            },
            "currency_invalid",
        ),
    ];

    for (i, (req, code)) in cases.iter().enumerate() {
        let err = system
            .client
            .create_payment(req, &format!("invalid-{i}"))
            .await
            .unwrap_err();
        assert_rejected(&err, 400, code);
    }
    let no_key = reqwest::Client::new()
        .post(format!("{}/v1/payment_intents", system.base_url))
        .bearer_auth(API_KEY)
        .json(
            &serde_json::json!({"amount": 1, "currency": "INR", "payment_method": "pm_card_ok",
                                  "metadata": {"booking_id": Uuid::new_v4()}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 400);
    let body: serde_json::Value = no_key.json().await.unwrap();
    assert_eq!(body["error"]["code"], "idempotency_key_missing");
    let garbage = reqwest::Client::new()
        .post(format!("{}/v1/payment_intents", system.base_url))
        .bearer_auth(API_KEY)
        .header("Idempotency-Key", "garbage-1")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
}

#[tokio::test]
async fn unknown_payments_are_404() {
    let system = spawn_system(Options::default()).await;

    let err = system.client.get_payment("pi_nope").await.unwrap_err();

    assert_rejected(&err, 404, "resource_missing");
}

#[tokio::test]
async fn healthz_answers_without_auth() {
    let system = spawn_system(Options::default()).await;

    let answer = reqwest::get(format!("{}/healthz", system.base_url))
        .await
        .unwrap();

    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn stopping_the_gateway_answers_a_hanging_request_and_returns_promptly() {
    let mut options = Options::default();
    options.gateway.hang_ms = 30_000;
    let mut system = spawn_system(options).await;
    let patient = system.client(Duration::from_secs(60), 1);
    let hanging = tokio::spawn(async move {
        patient
            .create_payment(&payment("pm_card_timeout"), "stop-1")
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    drop(system.stop.take());
    tokio::time::timeout(PATIENCE, &mut system.gateway_task)
        .await
        .expect("the gateway stops")
        .unwrap();

    assert!(started.elapsed() < Duration::from_secs(2));
    let answered = tokio::time::timeout(PATIENCE, hanging)
        .await
        .unwrap()
        .unwrap();
    assert!(answered.is_ok(), "{answered:?}");
}
