//! A card number is never accepted as a `payment_method`: `422
//! card_number_refused` on booking and on paying, with the number neither echoed
//! in the answer, nor stored (every text column of every table, and the Redis
//! keys of the test, are searched), nor written to any log line of any process.
//! The logs searched are the `ingress` and `workers` processes' own JSON lines.

use serde_json::{Value, json};
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

/// The card number, in every form a client might send it.
const PAN: &str = "4111111111111111";
const FORMS: [&str; 4] = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    " 4111 1111 1111 1111 ",
];

/// Whether `text` holds the card number in any form: its digits once spaces and
/// dashes are dropped, or its last 12 digits alone.
fn leaks(text: &str) -> bool {
    let squeezed: String = text.chars().filter(|c| *c != ' ' && *c != '-').collect();
    squeezed.contains(PAN) || squeezed.contains(&PAN[4..])
}

/// Every row of every table of the test database, as text.
async fn dump_database(sys: &TestSystem) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "select tablename::text from pg_tables where schemaname = 'public' order by 1",
    )
    .fetch_all(&sys.pool)
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "payments"), "{tables:?}");
    let mut all = String::new();
    for t in tables {
        let rows: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select string_agg(t::text, E'\\n') from \"{t}\" t"
        )))
        .fetch_one(&sys.pool)
        .await
        .unwrap();
        all.push_str(&format!("== {t}\n{}\n", rows.unwrap_or_default()));
    }
    all
}

/// Every string value under the test's Redis key prefix.
async fn dump_redis(sys: &TestSystem) -> String {
    let mut redis = sys.redis().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", sys.settings.redis.key_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut all = String::new();
    for k in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&k)
            .query_async(&mut redis)
            .await
            .unwrap();
        if kind == "string" {
            let v: Vec<u8> = redis::cmd("GET")
                .arg(&k)
                .query_async(&mut redis)
                .await
                .unwrap();
            all.push_str(&format!("{k} {}\n", String::from_utf8_lossy(&v)));
        } else {
            all.push_str(&format!("{k} ({kind})\n"));
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_number_is_refused_and_never_stored_logged_or_echoed() {
    // Everything any process logs, at every level our code logs at.
    let sys = spawn_system(SystemOptions {
        log_filter: Some(
            "debug,lapin=info,sqlx=info,hyper=info,h2=info,reqwest=info,hyper_util=info,\
             amq_protocol=info,pinky_swear=info,redis=info,tokio_util=info,rustls=info"
                .into(),
        ),
        ..SystemOptions::default()
    })
    .await;
    let show = sys.show(1, 4).await;
    let (_, token) = sys.customer(1).await;
    let mut answers: Vec<Value> = vec![];

    for (i, pan) in FORMS.iter().enumerate() {
        let body = json!({"show_id": show.to_string(), "seats": ["A1"], "payment_method": pan});
        let (status, problem) = sys.submit(&token, &format!("pan-{i}"), body).await;
        assert_eq!(status, 422, "{pan:?}: {problem}");
        assert_eq!(problem["code"], "card_number_refused", "{problem}");
        answers.push(problem);
    }
    // Also as a JSON number (a type error, whose parser message would quote it).
    let res = sys
        .http
        .post(sys.url("/v1/bookings"))
        .bearer_auth(&token)
        .header("idempotency-key", "pan-number")
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"show_id": "{show}", "seats": ["A1"], "payment_method": {PAN}}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    answers.push(res.json().await.unwrap());

    // Paying a held booking with a card number: refused the same way.
    let (status, accepted) = sys
        .submit(
            &token,
            "held",
            json!({"show_id": show.to_string(), "seats": ["A2"]}),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["booking_id"].as_str().unwrap().to_owned();
    sys.eventually(Duration::from_secs(30), "the booking is held", || async {
        sys.booking(&token, &id).await.1["status"] == "held"
    })
    .await;
    for pan in FORMS {
        let (status, problem) = sys
            .post(
                &token,
                &format!("/v1/bookings/{id}/payment"),
                Some(json!({"payment_method": pan})),
            )
            .await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["code"], "card_number_refused", "{problem}");
        answers.push(problem);
    }
    // A gateway token still pays.
    let (status, _) = sys
        .post(
            &token,
            &format!("/v1/bookings/{id}/payment"),
            Some(json!({"payment_method": "pm_card_ok"})),
        )
        .await;
    assert_eq!(status, 202);
    sys.eventually(
        Duration::from_secs(30),
        "the booking is confirmed",
        || async { sys.booking(&token, &id).await.1["status"] == "confirmed" },
    )
    .await;
    let (_, booking) = sys.booking(&token, &id).await;
    answers.push(booking);
    // The booking's last step, its confirmation e-mail, has happened (and been logged).
    sys.wait_emails(1, Duration::from_secs(30)).await;

    for a in &answers {
        assert!(!leaks(&a.to_string()), "echoed: {a}");
    }
    let db = dump_database(&sys).await;
    assert!(db.contains("pm_card_ok"), "the dump covers the payments");
    assert!(!leaks(&db), "stored in the database:\n{db}");
    let cache = dump_redis(&sys).await;
    assert!(!leaks(&cache), "stored in Redis:\n{cache}");
    let lines = sys.logs();
    assert!(
        lines.iter().any(|l| l.contains("booking accepted")),
        "the capture holds the processes' logs ({} lines, of ingress {:?})",
        lines.len(),
        sys.ingress.process.logs.lines()
    );
    let leaked: Vec<&String> = lines.iter().filter(|l| leaks(l)).collect();
    assert!(leaked.is_empty(), "logged: {leaked:#?}");
    sys.shutdown().await;
}

#[test]
fn the_leak_check_finds_every_form_of_the_number() {
    for f in FORMS {
        assert!(leaks(&format!("x {f} y")), "{f:?}");
    }
    assert!(leaks("\"4111-1111 1111-1111\""));
    assert!(!leaks("pm_card_ok 2026-12-07 41111"));
}
