//! A property-based fuzzer over every operation of the served OpenAPI document:
//! random path parameters, queries, headers, tokens and bodies shaped by each
//! operation's schemas (mostly plausible, sometimes hostile), sent to the real
//! ingress. Every answer must be:
//!
//! - not a 5xx (no input makes a server error);
//! - a status the document lists for that operation;
//! - for 4xx, an `application/problem+json` body with a `code`;
//! - for 2xx JSON, a body that validates against the documented schema.
//!
//! The seed is printed; `FUZZ_SEED=<n>` replays a run, `FUZZ_CASES=<n>` sets the
//! requests per operation (default 100).

use auth::Role;
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::time::Duration;
use tests::openapi::{Generator, Operation, Pools, hostile_string, operations, validate};
use tests::{SystemOptions, spawn_system};

/// One generated request.
#[derive(Debug, Clone)]
struct Case {
    op: usize,
    method: reqwest::Method,
    url: String,
    headers: Vec<(String, String)>,
    auth: Option<(&'static str, String)>,
    body: Option<(String, Vec<u8>)>,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.url)?;
        if let Some((who, _)) = &self.auth {
            write!(f, " as {who}")?;
        }
        for (k, v) in &self.headers {
            write!(f, " [{k}: {v}]")?;
        }
        if let Some((ct, body)) = &self.body {
            write!(f, " ({ct}) {}", String::from_utf8_lossy(body))?;
        }
        Ok(())
    }
}

/// Percent-encodes one path segment.
fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query or header value from a generated JSON value.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct Identities {
    tokens: Vec<(&'static str, String)>,
}

fn generate(
    rng: &mut StdRng,
    gen_: &Generator<'_>,
    index: usize,
    op: &Operation,
    base: &str,
    ids: &Identities,
) -> Case {
    let mut path = op.path.clone();
    for p in op.params("path") {
        let name = p["name"].as_str().unwrap_or_default();
        let raw = if rng.random_bool(0.1) {
            hostile_string(rng)
        } else {
            gen_.string(rng, &p["schema"])
        };
        path = path.replace(&format!("{{{name}}}"), &encode_segment(&raw));
    }
    let mut query = vec![];
    for p in op.params("query") {
        if rng.random_bool(0.7) {
            let v = gen_.value(rng, &p["schema"], 0);
            query.push((p["name"].as_str().unwrap_or_default().to_owned(), plain(&v)));
        }
    }
    if rng.random_bool(0.05) {
        query.push(("unexpected".to_owned(), hostile_string(rng)));
    }
    let mut url = reqwest::Url::parse(&format!("{base}{path}")).expect("url");
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    let mut headers = vec![];
    for p in op.params("header") {
        let v = plain(&gen_.value(rng, &p["schema"], 0));
        if rng.random_bool(0.85) && v.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
            headers.push((p["name"].as_str().unwrap_or_default().to_owned(), v));
        }
    }
    let auth = match rng.random_range(0..10) {
        0 => None,
        1 => Some(("a garbage token", "not-a-jwt".to_owned())),
        _ => ids.tokens.choose(rng).cloned(),
    };
    let body = op.op.get("requestBody").map(|rb| {
        let schema = &rb["content"]["application/json"]["schema"];
        match rng.random_range(0..20) {
            0 => (
                "application/json".to_owned(),
                b"{\"unterminated\":".to_vec(),
            ),
            1 => ("application/json".to_owned(), vec![]),
            2 => ("text/plain".to_owned(), b"{}".to_vec()),
            _ => {
                let v = gen_.value(rng, schema, 0);
                (
                    "application/json".to_owned(),
                    serde_json::to_vec(&v).unwrap(),
                )
            }
        }
    });
    Case {
        op: index,
        method: op.method.to_uppercase().parse().expect("method"),
        url: url.to_string(),
        headers,
        auth,
        body,
    }
}

/// How [`check`] says that a request got no HTTP answer at all.
const NO_ANSWER: &str = "no answer: ";

/// Sends `case` and returns what is wrong with the answer, if anything.
async fn check(
    http: &reqwest::Client,
    doc: &Value,
    ops: &[Operation],
    case: &Case,
) -> Option<String> {
    let mut req = http.request(case.method.clone(), &case.url);
    for (k, v) in &case.headers {
        req = req.header(k, v);
    }
    if let Some((_, token)) = &case.auth {
        req = req.bearer_auth(token);
    }
    if let Some((ct, body)) = &case.body {
        req = req.header("content-type", ct).body(body.clone());
    }
    let res = match req.send().await {
        Ok(r) => r,
        Err(e) => return Some(format!("{NO_ANSWER}{e}")),
    };
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = res.text().await.unwrap_or_default();
    let op = &ops[case.op];
    if status >= 500 {
        return Some(format!("server error {status}: {text}"));
    }
    if !op.documents_status(status) {
        return Some(format!("undocumented status {status}: {text}"));
    }
    if status >= 400 {
        let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if ct != "application/problem+json" || !problem["code"].is_string() {
            return Some(format!("{status} is not problem+json ({ct}): {text}"));
        }
        return None;
    }
    if ct.starts_with("application/json")
        && let Some(schema) = op.response_schema(doc, status)
    {
        let body: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => return Some(format!("{status} body is not JSON ({e}): {text}")),
        };
        if let Err(e) = validate(doc, schema, &body) {
            return Some(format!(
                "{status} body does not match its schema: {e}; body {text}"
            ));
        }
    }
    None
}

/// Ids of every kind of row, so that generated requests often name real resources.
async fn pools(sys: &tests::TestSystem) -> Pools {
    let mut uuids: Vec<String> = vec![];
    for table in [
        "theaters", "screens", "movies", "shows", "bookings", "users",
    ] {
        let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select id::text from {table} limit 20"
        )))
        .fetch_all(&sys.pool)
        .await
        .expect("ids");
        uuids.extend(ids);
    }
    let strings = [
        "commands.dlq",
        "payments.dlq",
        "notifier.dlq",
        "pm_card_ok",
        "pm_card_declined",
        // A card number: refused (`card_number_refused`), never a 5xx.
        "4111 1111 1111 1111",
        "Pune",
        "Mumbai",
        "regular",
        "premium",
        "INR",
        "drama",
        "Test Movie",
        "avngers",
        "customer@test.local",
        "2026-12-01",
    ]
    .map(str::to_owned)
    .to_vec();
    Pools { uuids, strings }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_input_makes_a_server_error_and_answers_match_the_document() {
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    println!("FUZZ_SEED={seed} FUZZ_CASES={cases} (set them to replay this run)");

    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(4, 8).await;
    let (_, customer) = sys.customer(1).await;
    let (_, admin) = sys.user_with_role(Role::Admin).await;
    let (_, operator) = sys.user_with_role(Role::Operator).await;
    // Door staff with no theater: every scoped route must refuse them cleanly.
    let (_, staff) = sys.user_with_role(Role::Staff).await;
    let (status, booked) = sys
        .submit(
            &customer,
            "fuzz-seed-booking",
            json!({"show_id": show, "seats": ["A1", "A2"], "payment_method": "pm_card_ok"}),
        )
        .await;
    assert_eq!(status, 202, "{booked}");
    let booking: uuid::Uuid = booked["booking_id"].as_str().unwrap().parse().unwrap();
    sys.wait_decided(&[booking], Duration::from_secs(30)).await;

    let doc: Value = sys
        .http
        .get(sys.url("/v1/openapi.json"))
        .send()
        .await
        .expect("openapi.json")
        .json()
        .await
        .expect("openapi.json is JSON");
    let ops = operations(&doc);
    assert!(
        ops.len() >= 18,
        "the served document lists {} operations",
        ops.len()
    );
    let pools = pools(&sys).await;
    let generator = Generator {
        doc: &doc,
        pools: &pools,
        chaos: 0.08,
    };
    let ids = Identities {
        tokens: vec![
            ("customer", customer.clone()),
            ("admin", admin),
            ("operator", operator),
            ("staff", staff),
        ],
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let all: Vec<Case> = ops
        .iter()
        .enumerate()
        .flat_map(|(i, op)| (0..cases).map(move |_| (i, op)))
        .map(|(i, op)| generate(&mut rng, &generator, i, op, &sys.base_url, &ids))
        .collect();
    let total = all.len();
    // A request that got no answer on a pooled keep-alive connection is sent once
    // more on a new connection: HTTP/1.1 cannot tell a connection the server was
    // closing at that moment (after an answer whose request body it did not read)
    // from a failure, and clients retry such requests. The second answer is
    // checked like any other; the resends are counted and printed.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    let resent = std::sync::atomic::AtomicUsize::new(0);
    let failures: Vec<String> = futures::stream::iter(all.iter())
        .map(|case| {
            let (http, fresh, doc, ops, resent) = (&sys.http, &fresh, &doc, &ops, &resent);
            async move {
                let why = match check(http, doc, ops, case).await {
                    Some(why) if why.starts_with(NO_ANSWER) => {
                        resent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        check(fresh, doc, ops, case).await
                    }
                    other => other,
                };
                why.map(|why| format!("{case}\n    -> {why}"))
            }
        })
        .buffer_unordered(8)
        .filter_map(|f| async move { f })
        .collect()
        .await;
    sys.shutdown().await;
    println!(
        "{} of {total} requests sent again on a new connection after no answer",
        resent.into_inner()
    );
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed (FUZZ_SEED={seed}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!(
        "{total} requests over {} operations, all answered as documented",
        ops.len()
    );
}
