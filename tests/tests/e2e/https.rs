//! HTTPS on ingress (`ingress.tls_cert_path`, `ingress.tls_key_path`), with a
//! certificate of a CA made for the test: a client that trusts the CA books over it;
//! plain HTTP on the same port and a client that does not trust the CA get nothing.

use serde_json::json;
use std::time::Duration;
use tests::tls::LocalCa;
use tests::{SystemOptions, spawn_system};

#[tokio::test]
async fn ingress_serves_https_with_its_certificate_and_nothing_in_plain_http() {
    let sys = spawn_system(SystemOptions::default()).await;
    let ca = LocalCa::new();
    let mut settings = sys.settings.clone();
    settings.ingress.tls_cert_path = ca.cert_file.display().to_string();
    settings.ingress.tls_key_path = ca.key_file.display().to_string();
    let https = sys.start_ingress(&settings).await;
    let addr = https.addr;

    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.ca_pem().as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let res = trusting
        .get(format!("https://localhost:{}/healthz", addr.port()))
        .send()
        .await
        .expect("HTTPS with the CA trusted");
    assert_eq!(res.status(), 200);

    // A booking over HTTPS, by IP address (the certificate names 127.0.0.1 too).
    let show = sys.show(1, 5).await;
    let (_, token) = sys.customer(1).await;
    let res = trusting
        .post(format!("https://{addr}/v1/bookings"))
        .bearer_auth(&token)
        .header("idempotency-key", "https-1")
        .json(&json!({"show_id": show.to_string(), "quantity": 1}))
        .send()
        .await
        .expect("a booking over HTTPS");
    assert_eq!(res.status(), 202);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = sys.http.get(format!("http://{addr}/healthz")).send().await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    // A client that does not trust the CA refuses the certificate.
    let stranger = reqwest::Client::builder()
        .tls_certs_only([])
        .build()
        .unwrap()
        .get(format!("https://{addr}/healthz"))
        .send()
        .await;
    assert!(stranger.is_err(), "an untrusted certificate was accepted");
    // The TLS ingress still serves after those failed handshakes.
    let res = trusting
        .get(format!("https://{addr}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    https.stop().await;
    sys.shutdown().await;
}
