//! With `telemetry.otlp_endpoint` set, spans are exported over OTLP/HTTP (JSON) under
//! the W3C trace the client started: a stand-in collector (a real HTTP server on
//! port 0 speaking the OTLP/HTTP receiver's protocol: `POST /v1/traces`) receives
//! the spans of ingress, the sequencer runner and the saga for one booking, all with
//! the client's trace id. Its own test binary, because it installs the global
//! subscriber.

use axum::body::Bytes;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tests::{SystemOptions, spawn_system};

const CLIENT_TRACE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const CLIENT_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

/// A collector that keeps every export request body it receives.
async fn collector() -> (String, Arc<Mutex<Vec<Value>>>) {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let store = store.clone();
            async move {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    store.lock().unwrap().push(v);
                }
                axum::Json(json!({}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// (service name, span name, trace id) of every exported span.
fn spans(exports: &[Value]) -> Vec<(String, String, String)> {
    let mut out = vec![];
    for export in exports {
        for rs in export["resourceSpans"].as_array().into_iter().flatten() {
            let service = rs["resource"]["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["key"] == "service.name")
                .and_then(|a| a["value"]["stringValue"].as_str())
                .unwrap_or_default()
                .to_owned();
            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                for span in ss["spans"].as_array().into_iter().flatten() {
                    out.push((
                        service.clone(),
                        span["name"].as_str().unwrap_or_default().to_owned(),
                        span["traceId"].as_str().unwrap_or_default().to_lowercase(),
                    ));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_one_booking_are_exported_under_the_clients_trace() {
    let (url, received) = collector().await;
    let mut telemetry = platform::Settings::load_for(platform::settings::AppEnv::Development)
        .unwrap()
        .telemetry;
    telemetry.otlp_endpoint = url;
    telemetry.filter = "info,lapin=warn,sqlx=warn".into();
    let guard = platform::telemetry::init(&telemetry, "booking-test");

    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(2, 4).await;
    let (_, token) = sys.customer(1).await;
    let res = sys
        .http
        .post(sys.url("/v1/bookings"))
        .bearer_auth(&token)
        .header("idempotency-key", "otlp")
        .header("traceparent", CLIENT_TRACE)
        .json(&json!({"show_id": show, "seats": ["A1"], "payment_method": "pm_card_ok"}))
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

    let mut ours = vec![];
    for _ in 0..100 {
        guard.flush();
        ours = spans(&received.lock().unwrap())
            .into_iter()
            .filter(|(_, _, trace)| trace == CLIENT_TRACE_ID)
            .map(|(_, name, _)| name)
            .collect::<Vec<_>>();
        if ours.iter().any(|n| n == "saga.handle")
            && ours.iter().filter(|n| *n == "sequencer.apply").count() >= 3
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ours.iter().any(|n| n == "http"),
        "no ingress span in {ours:?}"
    );
    // hold, payment started, payment succeeded: three commands of this booking.
    assert!(
        ours.iter().filter(|n| *n == "sequencer.apply").count() >= 3,
        "sequencer spans missing in {ours:?}"
    );
    assert!(
        ours.iter().any(|n| n == "saga.handle"),
        "no saga span in {ours:?}"
    );
    let all = spans(&received.lock().unwrap());
    assert!(
        all.iter().all(|(service, _, _)| service == "booking-test"),
        "spans name their service"
    );
    sys.shutdown().await;
}
