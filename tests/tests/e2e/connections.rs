//! What one client can do to everyone's connections: a request id it chooses is
//! kept only when small and visible, an oversized head is refused before any work
//! (it never reaches the broker's shared publishing connection), slow or idle
//! connections are closed, and the number of connections is capped.

use serde_json::json;
use std::time::{Duration, Instant};
use tests::{IngressHandle, SystemOptions, TestSystem, spawn_system};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Another ingress process of `sys` with its `ingress` settings changed by `tune`,
/// serving until the returned handle is stopped or dropped.
async fn another_ingress(
    sys: &TestSystem,
    tune: impl FnOnce(&mut platform::settings::IngressSettings),
) -> (std::net::SocketAddr, IngressHandle) {
    let mut settings = sys.settings.clone();
    tune(&mut settings.ingress);
    let ingress = sys.start_ingress(&settings).await;
    (ingress.addr, ingress)
}

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

#[tokio::test]
async fn a_200_kb_request_id_is_refused_and_other_users_bookings_all_succeed() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(10, 10).await;
    let (_, attacker) = sys.customer(1).await;
    let (_, other) = sys.customer(2).await;
    let huge = "x".repeat(200 * 1024);
    let attacks = (0..5).map(|i| {
        let req = sys
            .http
            .post(sys.url("/v1/bookings"))
            .bearer_auth(&attacker)
            .header("idempotency-key", format!("attack-{i}"))
            .header("x-request-id", huge.as_str())
            .json(&json!({"show_id": show.to_string(), "quantity": 1}));
        async move { req.send().await.map(|r| r.status().as_u16()) }
    });
    let bookings = (0..45).map(|i| {
        let sys = &sys;
        let other = &other;
        async move {
            sys.submit(
                other,
                &format!("k{i}"),
                json!({"show_id": show.to_string(), "quantity": 1}),
            )
            .await
        }
    });
    let (attacks, bookings) = tokio::join!(
        futures::future::join_all(attacks),
        futures::future::join_all(bookings)
    );
    for answer in &attacks {
        // Refused at the head (431), or the connection closed while it was sent.
        assert!(
            matches!(answer, Ok(431) | Err(_)),
            "an oversized head was answered {answer:?}"
        );
    }
    for (status, body) in &bookings {
        assert_eq!(*status, 202, "{body}");
    }
    // And the publishing connection is still fine afterwards.
    let (status, body) = sys
        .submit(
            &other,
            "after",
            json!({"show_id": show.to_string(), "quantity": 1}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    sys.shutdown().await;
}

/// Reads until the server closes the connection; returns what it sent and when
/// it closed (or `None` if it did not within `limit`).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => {
                return Some((
                    String::from_utf8_lossy(&got).into_owned(),
                    started.elapsed(),
                ));
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_slow_header_connection_and_an_idle_one_are_closed_within_the_timeout() {
    let sys = spawn_system(SystemOptions::default()).await;
    let timeout = Duration::from_millis(600);
    let (addr, other) = another_ingress(&sys, |s| {
        s.header_read_timeout_ms = 600;
    })
    .await;

    // Slowloris: a head that never ends, one header line every 200 ms.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    while started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if slow.write_all(b"X-Slow: yes\r\n").await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a slow head was still open after 5 s");
    assert!(
        started.elapsed() < timeout * 3,
        "closed only after {:?}",
        started.elapsed()
    );

    // Keep-alive: one request answered, then silence.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, after) = read_until_closed(&mut idle, Duration::from_secs(5))
        .await
        .expect("an idle keep-alive connection was still open after 5 s");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(after < timeout * 3, "closed only after {after:?}");
    other.stop().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_waits_until_one_closes() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (addr, other) = another_ingress(&sys, |s| {
        s.connections_max = 2;
    })
    .await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // Two connections that hold their slots (accepted, nothing sent yet).
    let first = TcpStream::connect(addr).await.unwrap();
    let second = TcpStream::connect(addr).await.unwrap();
    // The kernel's backlog is first in, first out: those two are accepted first.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(request).await.unwrap();
    assert!(
        read_until_closed(&mut third, Duration::from_millis(500))
            .await
            .is_none(),
        "a third connection was served past a cap of 2"
    );
    drop(first);
    let (answer, _) = read_until_closed(&mut third, Duration::from_secs(5))
        .await
        .expect("the waiting connection is served once a slot frees");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(second);
    other.stop().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn after_sigterm_readyz_turns_503_while_requests_are_still_served_then_the_port_closes() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (addr, other) = another_ingress(&sys, |s| {
        s.drain_delay_ms = 4000;
    })
    .await;
    let url = |path: &str| format!("http://{addr}{path}");
    let ready = sys.http.get(url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    // A keep-alive client connected before the signal.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    other.process.sigterm();
    let started = Instant::now();
    sys.eventually(Duration::from_secs(2), "readyz says draining", || async {
        let res = sys.http.get(url("/readyz")).send().await.unwrap();
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap();
        status == 503 && body == json!({"status": "draining"})
    })
    .await;
    // Draining is not stopped: new connections and the old one are still served.
    let res = sys.http.get(url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(2), kept.read(&mut buf))
        .await
        .expect("answered while draining")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() < Duration::from_millis(4000),
        "the checks above ran after the drain delay; the machine is too slow for this test"
    );
    // After the delay the listener closes.
    sys.eventually(Duration::from_secs(5), "the port closes", || async {
        TcpStream::connect(addr).await.is_err()
    })
    .await;
    assert!(started.elapsed() >= Duration::from_millis(3900));
    let status = other.process.exited().await;
    assert!(
        status.success(),
        "ingress exited with {status} after draining"
    );
    sys.shutdown().await;
}

/// The value of `name{labels}` in a Prometheus text exposition (0 when absent).
fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_body_trickled_past_the_request_deadline_is_a_408_problem_and_counted() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (addr, other) = another_ingress(&sys, |s| {
        s.request_timeout_ms = 800;
    })
    .await;
    let counted = r#"http_request_timeouts_total{kind="body"}"#;
    let before = metric(&other.metrics().await, counted);

    // A complete head announcing 200 bytes, then one byte every 100 ms.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(
        b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n",
    )
    .await
    .unwrap();
    // Each round sends one byte and reads for 100 ms, until the server closes.
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answer = None;
    while started.elapsed() < Duration::from_secs(6) {
        drop(slow.write_all(b" ").await);
        match tokio::time::timeout(Duration::from_millis(100), slow.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0) | Err(_)) => {
                answer = Some((
                    String::from_utf8_lossy(&got).into_owned(),
                    started.elapsed(),
                ));
                break;
            }
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
    let (answer, after) = answer.expect("the slow request was still open after 6 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(lower.contains("connection: close"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or("")).expect("a JSON body");
    assert_eq!(body["code"], "request_timeout", "{body}");
    assert_eq!(body["status"], 408, "{body}");
    assert!(
        after < Duration::from_secs(4),
        "answered only after {after:?}"
    );

    let after_count = metric(&other.metrics().await, counted);
    assert!(
        after_count >= before + 1.0,
        "{counted} went from {before} to {after_count}"
    );
    other.stop().await;
    sys.shutdown().await;
}
