//! With `telemetry.otlp_endpoint` set, spans are exported over OTLP/HTTP (JSON) under
//! the W3C trace the client started: a stand-in collector (a real HTTP server on
//! port 0 speaking the OTLP/HTTP receiver's protocol: `POST /v1/traces`) receives
//! the spans of ingress, the sequencer runner and the saga for one booking, all with
//! the client's trace id, each process's under its own service name.

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
    let sys = spawn_system(SystemOptions {
        otlp_endpoint: Some(url),
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

    // The processes export in batches (every few seconds).
    let ours: Vec<(String, String)> = tests::poll(Duration::from_secs(30), tests::POLL, || {
        let ours: Vec<(String, String)> = spans(&received.lock().unwrap())
            .into_iter()
            .filter(|(_, _, trace)| trace == CLIENT_TRACE_ID)
            .map(|(service, name, _)| (service, name))
            .collect();
        let done = ours.iter().any(|(_, n)| n == "saga.handle")
            && ours.iter().filter(|(_, n)| n == "sequencer.apply").count() >= 3
            && ours.iter().any(|(_, n)| n == "http");
        async move { if done { Ok(ours) } else { Err(ours) } }
    })
    .await
    .unwrap_or_else(|ours| ours);
    let of = |service: &str, name: &str| {
        ours.iter()
            .filter(|(s, n)| s == service && n == name)
            .count()
    };
    assert!(of("ingress", "http") >= 1, "no ingress span in {ours:?}");
    // hold, payment started, payment succeeded: three commands of this booking.
    assert!(
        of("workers", "sequencer.apply") >= 3,
        "sequencer spans missing in {ours:?}"
    );
    assert!(
        of("workers", "saga.handle") >= 1,
        "no saga span in {ours:?}"
    );
    let all = spans(&received.lock().unwrap());
    assert!(
        all.iter()
            .all(|(service, _, _)| service == "ingress" || service == "workers"),
        "spans name their service: {all:?}"
    );
    sys.shutdown().await;
}
