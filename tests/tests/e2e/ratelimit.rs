//! Shared rate limits (API.md "Conventions"): one budget per user (per IP when
//! anonymous) across `/v1`, a stricter one on top for `/v1/auth/*`, shared by every
//! ingress instance through Redis; over
//! it a 429 problem with `Retry-After` and `RateLimit-*`, and the handler never runs.

use platform::Settings;
use reqwest::{RequestBuilder, Response};
use serde_json::json;
use std::time::Duration;
use tests::proxy::TcpProxy;
use tests::{IngressHandle, SystemOptions, TestSystem, spawn_system, with_port};

const BUDGET: u32 = 10;

async fn limited_system(per_minute: u32) -> TestSystem {
    spawn_system(SystemOptions {
        workers: 1,
        rate_limit_per_minute: per_minute,
        ..Default::default()
    })
    .await
}

/// Another ingress process with `settings` (the same Redis prefix: the same
/// budgets), serving until the returned handle is stopped or dropped.
async fn another_ingress(settings: Settings) -> (String, IngressHandle) {
    let ingress = tests::start_ingress(&settings).await;
    (ingress.base_url(), ingress)
}

fn header(res: &Response, name: &str) -> Option<u64> {
    res.headers().get(name)?.to_str().ok()?.parse().ok()
}

async fn send(req: RequestBuilder) -> Response {
    req.send().await.expect("request")
}

/// `GET /v1/bookings/{random id}` at `base`: a `default`-class request that reads
/// nothing anyone has (404 when served).
fn read_booking(sys: &TestSystem, base: &str, token: Option<&str>) -> RequestBuilder {
    let req = sys
        .http
        .get(format!("{base}/v1/bookings/{}", uuid::Uuid::new_v4()));
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
}

/// Sends `n` requests made by `make`, one after the other; returns their statuses.
async fn statuses(n: usize, make: impl Fn() -> RequestBuilder) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(send(make()).await.status().as_u16());
    }
    out
}

fn count(statuses: &[u16], code: u16) -> usize {
    statuses.iter().filter(|s| **s == code).count()
}

#[tokio::test]
async fn the_request_over_a_users_budget_is_a_429_problem_and_changes_nothing() {
    let sys = limited_system(BUDGET).await;
    let show = sys.show(5, 10).await;
    let (user, token) = sys.customer(1).await;
    let submit = |key: String| {
        sys.http
            .post(sys.url("/v1/bookings"))
            .bearer_auth(&token)
            .header("idempotency-key", key)
            .json(&json!({"show_id": show.to_string(), "quantity": 1}))
    };
    let mut accepted = Vec::new();
    for i in 0..BUDGET {
        let res = send(submit(format!("k{i}"))).await;
        assert_eq!(res.status(), 202);
        assert_eq!(header(&res, "ratelimit-limit"), Some(u64::from(BUDGET)));
        assert_eq!(
            header(&res, "ratelimit-remaining"),
            Some(u64::from(BUDGET - 1 - i))
        );
        let body: serde_json::Value = res.json().await.unwrap();
        accepted.push(body["booking_id"].as_str().unwrap().parse().unwrap());
    }

    let res = send(submit("one-too-many".into()).header("x-request-id", "rl-1")).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert_eq!(res.headers()["x-request-id"], "rl-1");
    let retry_after = header(&res, "retry-after").expect("Retry-After");
    assert!((1..=6).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&res, "ratelimit-limit"), Some(u64::from(BUDGET)));
    assert_eq!(header(&res, "ratelimit-remaining"), Some(0));
    let reset = header(&res, "ratelimit-reset").expect("RateLimit-Reset");
    assert!((55..=60).contains(&reset), "{reset}");
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(problem["status"], 429);

    // Another user's booking of the same show goes to the same partition queue,
    // after anything the 11th request could have published: once it is decided,
    // the 11th would have been too.
    let (_, other) = sys.customer(2).await;
    let (status, b) = sys
        .submit(
            &other,
            "other",
            json!({"show_id": show.to_string(), "quantity": 1}),
        )
        .await;
    assert_eq!(status, 202, "{b}");
    accepted.push(b["booking_id"].as_str().unwrap().parse().unwrap());
    sys.wait_decided(&accepted, Duration::from_secs(20)).await;
    let mine: i64 = sqlx::query_scalar("select count(*) from bookings where user_id = $1")
        .bind(user.0)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(
        mine,
        i64::from(BUDGET),
        "the limited request booked nothing"
    );

    let metrics = sys.ingress_metrics().await;
    assert!(
        metrics.contains("rate_limited_total{class=\"default\"}"),
        "{metrics}"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn two_ingress_instances_share_one_budget() {
    let sys = limited_system(BUDGET).await;
    let (second, other) = another_ingress(sys.settings.clone()).await;
    let (_, token) = sys.customer(1).await;
    let mut got = Vec::new();
    for i in 0..2 * BUDGET {
        let base = if i % 2 == 0 { &sys.base_url } else { &second };
        got.push(
            send(read_booking(&sys, base, Some(&token)))
                .await
                .status()
                .as_u16(),
        );
    }
    let budget = BUDGET as usize;
    assert_eq!(count(&got[..budget], 404), budget, "{got:?}");
    assert_eq!(count(&got[budget..], 429), budget, "{got:?}");
    other.stop().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn anonymous_callers_are_limited_per_ip_and_each_user_has_a_budget() {
    let sys = limited_system(BUDGET).await;
    let budget = BUDGET as usize;
    let keys = || sys.http.get(sys.url("/v1/tickets/keys"));
    let anonymous = statuses(budget + 1, keys).await;
    assert_eq!(count(&anonymous[..budget], 200), budget, "{anonymous:?}");
    assert_eq!(anonymous[budget], 429);
    // An invalid token is anonymous: it buys no fresh budget.
    let forged = send(keys().bearer_auth("not-a-token")).await;
    assert_eq!(forged.status(), 429);

    // Users are not the IP they call from, and not each other.
    let (_, alice) = sys.customer(1).await;
    let (_, bob) = sys.customer(2).await;
    let a = statuses(budget + 1, || {
        read_booking(&sys, &sys.base_url, Some(&alice))
    })
    .await;
    assert_eq!(count(&a[..budget], 404), budget, "{a:?}");
    assert_eq!(a[budget], 429);
    let b = send(read_booking(&sys, &sys.base_url, Some(&bob))).await;
    assert_eq!(b.status(), 404);
    assert_eq!(
        header(&b, "ratelimit-remaining"),
        Some(u64::from(BUDGET - 1))
    );

    // Behind a trusted proxy, the client is the first X-Forwarded-For entry; an
    // instance that does not trust the header ignores it.
    let mut trusting = sys.settings.clone();
    trusting.rate_limit.trust_forwarded_for = true;
    let (proxied, other) = another_ingress(trusting).await;
    let xff = "203.0.113.7, 127.0.0.1";
    let via_proxy = send(
        sys.http
            .get(format!("{proxied}/v1/tickets/keys"))
            .header("x-forwarded-for", xff),
    )
    .await;
    assert_eq!(via_proxy.status(), 200);
    let spoofed = send(keys().header("x-forwarded-for", xff)).await;
    assert_eq!(spoofed.status(), 429);
    other.stop().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn an_exempt_operator_health_checks_and_the_payment_webhook_are_never_limited() {
    let sys = limited_system(BUDGET).await;
    let n = 3 * BUDGET as usize;
    let operator = sys
        .tokens
        .mint(contracts::UserId::new_v7(), auth::Role::Operator)
        .unwrap();
    let op = statuses(n, || read_booking(&sys, &sys.base_url, Some(&operator))).await;
    assert_eq!(count(&op, 404), n, "{op:?}");
    let res = send(read_booking(&sys, &sys.base_url, Some(&operator))).await;
    assert!(res.headers().get("ratelimit-limit").is_none());

    for path in ["/healthz", "/readyz", "/v1/openapi.json"] {
        let got = statuses(n, || sys.http.get(sys.url(path))).await;
        assert_eq!(count(&got, 200), n, "{path}: {got:?}");
    }
    let webhook = statuses(n, || {
        sys.http
            .post(sys.url("/v1/payments/webhook"))
            .body("{}")
            .header("content-type", "application/json")
    })
    .await;
    assert_eq!(count(&webhook, 429), 0, "{webhook:?}");
    // The anonymous budget of this IP is still whole.
    let res = send(sys.http.get(sys.url("/v1/tickets/keys"))).await;
    assert_eq!(
        header(&res, "ratelimit-remaining"),
        Some(u64::from(BUDGET - 1))
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn one_budget_covers_all_of_v1_and_auth_has_a_stricter_one_on_top() {
    let sys = limited_system(BUDGET).await;
    // An instance whose auth budget is stricter than the /v1 one (same Redis prefix).
    const AUTH: u32 = 3;
    let mut strict = sys.settings.clone();
    strict.rate_limit.per_minute.insert("auth".into(), AUTH);
    let (base, other) = another_ingress(strict).await;
    let (_, token) = sys.customer(1).await;

    // Bookings, searches and reads draw on one budget of BUDGET.
    let show = uuid::Uuid::new_v4();
    let bad_booking = || {
        sys.http
            .post(format!("{base}/v1/bookings"))
            .bearer_auth(&token)
            .header("idempotency-key", "k")
            .json(&json!({"show_id": "not-a-uuid"}))
    };
    let search = || {
        sys.http
            .get(format!("{base}/v1/shows/{show}"))
            .bearer_auth(&token)
    };
    let mut remaining = Vec::new();
    for i in 0..BUDGET {
        let req = match i % 3 {
            0 => bad_booking(),
            1 => search(),
            _ => read_booking(&sys, &base, Some(&token)),
        };
        let res = send(req).await;
        assert_ne!(res.status(), 429, "request {i}: {}", res.url());
        remaining.push(header(&res, "ratelimit-remaining").expect("RateLimit-Remaining"));
    }
    let expected: Vec<u64> = (0..u64::from(BUDGET)).rev().collect();
    assert_eq!(
        remaining, expected,
        "one budget spent by every kind of request"
    );
    for req in [
        bad_booking(),
        search(),
        read_booking(&sys, &base, Some(&token)),
    ] {
        let res = send(req).await;
        assert_eq!(res.status(), 429, "{}", res.url());
    }

    // Auth: AUTH requests from this IP, then 429, although its /v1 budget is not spent;
    // they spent that budget too (AUTH of BUDGET), and the refused one did not.
    let login = || {
        sys.http
            .post(format!("{base}/v1/auth/login"))
            .json(&json!({"email": "nobody@example.com", "password": "whatever-it-is"}))
    };
    let got = statuses(AUTH as usize + 1, login).await;
    assert_eq!(count(&got[..AUTH as usize], 429), 0, "{got:?}");
    assert_eq!(got[AUTH as usize], 429, "{got:?}");
    let res = send(sys.http.get(format!("{base}/v1/tickets/keys"))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&res, "ratelimit-remaining"),
        Some(u64::from(BUDGET - AUTH - 1))
    );
    other.stop().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn a_spent_budget_refills_over_time() {
    // 120 a minute: one request every half second.
    let sys = limited_system(120).await;
    let (_, token) = sys.customer(1).await;
    let read = || read_booking(&sys, &sys.base_url, Some(&token));
    let mut passed = 0;
    let limited = loop {
        let res = send(read()).await;
        if res.status() == 429 {
            break res;
        }
        passed += 1;
        assert!(passed <= 1000, "never limited");
    };
    assert!(passed >= 120, "only {passed} passed");
    assert_eq!(header(&limited, "retry-after"), Some(1));

    // The 429 came at most half a second before the next request was due: 600 ms
    // later one (or, at the edge, two) have refilled, not the whole budget.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(send(read()).await.status(), 404, "a request refilled");
    let burst = statuses(5, read).await;
    assert!(count(&burst, 429) >= 4, "{burst:?}");
    sys.shutdown().await;
}

#[tokio::test]
async fn without_redis_requests_are_served_unlimited_until_it_is_back() {
    let sys = limited_system(BUDGET).await;
    let redis = reqwest::Url::parse(&sys.settings.redis.url).unwrap();
    let target = format!(
        "{}:{}",
        redis.host_str().unwrap(),
        redis.port().unwrap_or(6379)
    );
    let proxy = TcpProxy::start(target).await.unwrap();
    let mut settings = sys.settings.clone();
    settings.redis.url = with_port(&sys.settings.redis.url, proxy.port);
    let (base, other) = another_ingress(settings).await;
    // The public keys: a handler that needs no Redis itself.
    let keys = || sys.http.get(format!("{base}/v1/tickets/keys"));
    let res = send(keys()).await;
    assert_eq!(
        header(&res, "ratelimit-remaining"),
        Some(u64::from(BUDGET - 1))
    );

    proxy.cut();
    let n = 2 * BUDGET as usize;
    let started = std::time::Instant::now();
    let got = statuses(n, keys).await;
    assert_eq!(count(&got, 200), n, "served, not limited: {got:?}");
    // The first waits out the limiter's timeout; the next ones skip Redis for a while.
    assert!(
        started.elapsed() < Duration::from_millis(u64::from(BUDGET) * 250),
        "requests waited on the absent Redis: {:?}",
        started.elapsed()
    );
    // The proxied ingress's own process and metrics.
    let metrics = other.metrics().await;
    assert!(metrics.contains("rate_limit_errors_total"), "{metrics}");

    proxy.restore();
    sys.eventually(Duration::from_secs(20), "the limiter is back", || async {
        send(keys())
            .await
            .headers()
            .contains_key("ratelimit-remaining")
    })
    .await;
    other.stop().await;
    sys.shutdown().await;
}

/// `POST /v1/auth/login` at `base` for `email` with a wrong password, with the
/// bearer `token` if any and `X-Forwarded-For: forwarded` if any.
fn wrong_login(
    sys: &TestSystem,
    base: &str,
    email: &str,
    token: Option<&str>,
    forwarded: Option<String>,
) -> RequestBuilder {
    let mut req = sys
        .http
        .post(format!("{base}/v1/auth/login"))
        .json(&json!({"email": email, "password": "not the password"}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(ip) = forwarded {
        req = req.header("x-forwarded-for", ip);
    }
    req
}

#[tokio::test]
async fn tokens_of_many_accounts_do_not_multiply_login_guesses_from_one_ip() {
    let sys = limited_system(BUDGET).await;
    let budget = BUDGET as usize;
    let mut tokens = Vec::new();
    for n in 0..3 {
        tokens.push(sys.customer(n).await.1);
    }
    // Each guess with another account's token, at another target email (so the
    // per-account failed-login budget plays no part).
    let mut got = Vec::new();
    for i in 0..3 * budget {
        let token = &tokens[i % tokens.len()];
        let email = format!("victim{i}@example.com");
        let req = wrong_login(&sys, &sys.base_url, &email, Some(token), None);
        got.push(send(req).await.status().as_u16());
    }
    assert_eq!(count(&got, 401), budget, "{got:?}");
    assert_eq!(count(&got, 429), 2 * budget, "{got:?}");
    // The users' own budgets elsewhere are untouched.
    let res = send(read_booking(&sys, &sys.base_url, Some(&tokens[0]))).await;
    assert_eq!(res.status(), 404);
    sys.shutdown().await;
}

#[tokio::test]
async fn failed_logins_to_one_account_are_limited_whatever_the_ip_and_a_success_does_not_count() {
    let sys = limited_system(BUDGET).await;
    let mut settings = sys.settings.clone();
    settings.rate_limit.trust_forwarded_for = true;
    settings.rate_limit.failed_logins_per_hour = 3;
    let (base, limited) = another_ingress(settings).await;
    let email = "target@example.com";
    let password = "the right password";
    let res = send(
        sys.http
            .post(format!("{base}/v1/auth/register"))
            .json(&json!({"email": email, "password": password, "name": "T"})),
    )
    .await;
    assert_eq!(res.status(), 201);
    // Every guess from a fresh IP: only the account's budget can stop them.
    let mut ip = 0u8;
    let mut next_ip = || {
        ip += 1;
        Some(format!("203.0.113.{ip}"))
    };
    let right = |forwarded: Option<String>| {
        sys.http
            .post(format!("{base}/v1/auth/login"))
            .header("x-forwarded-for", forwarded.unwrap())
            .json(&json!({"email": email, "password": password}))
    };
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(
            send(wrong_login(&sys, &base, email, None, next_ip()))
                .await
                .status()
                .as_u16(),
        );
    }
    got.push(send(right(next_ip())).await.status().as_u16());
    for _ in 0..3 {
        got.push(
            send(wrong_login(&sys, &base, email, None, next_ip()))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(
        got,
        [401, 401, 200, 401, 429, 429],
        "the success gave its attempt back"
    );
    // Spent: even the right password waits (no password work is done at all).
    let res = send(right(next_ip())).await;
    assert_eq!(res.status(), 429);
    assert!(header(&res, "retry-after").is_some_and(|s| s >= 1));
    // Another account is not affected.
    let other = send(wrong_login(
        &sys,
        &base,
        "other@example.com",
        None,
        next_ip(),
    ))
    .await;
    assert_eq!(other.status(), 401);
    limited.stop().await;
    sys.shutdown().await;
}

#[tokio::test]
async fn people_behind_one_ip_sign_in_but_failed_logins_from_it_over_many_accounts_are_limited() {
    // The shipped budgets: a generous `auth` one, failed logins per IP on top.
    let defaults = Settings::load().expect("settings");
    let auth = defaults.rate_limit.per_minute["auth"];
    assert!(auth >= 40, "auth budget {auth} is not generous");
    let sys = spawn_system(SystemOptions {
        workers: 0,
        rate_limit_per_minute: auth,
        ..Default::default()
    })
    .await;
    let mut settings = sys.settings.clone();
    settings.rate_limit.trust_forwarded_for = true;
    settings
        .rate_limit
        .per_minute
        .insert("default".into(), 1000);
    settings.rate_limit.failed_logins_per_ip_per_hour = 5;
    let (base, limited) = another_ingress(settings).await;
    let nat = || Some("198.51.100.7".to_owned());
    let password = "lantern-93-quay";
    // Thirty people behind one NAT, each signing in correctly (one account each:
    // registrations spend the same `auth` budget).
    let people = 30;
    for i in 0..people {
        let res = send(
            sys.http
                .post(format!("{base}/v1/auth/register"))
                .header("x-forwarded-for", "192.0.2.1")
                .json(&json!({"email": format!("p{i}@example.com"), "password": password, "name": "P"})),
        )
        .await;
        assert_eq!(res.status(), 201, "registration {i}");
    }
    let right = |i: usize, ip: Option<String>| {
        sys.http
            .post(format!("{base}/v1/auth/login"))
            .header("x-forwarded-for", ip.unwrap())
            .json(&json!({"email": format!("p{i}@example.com"), "password": password}))
    };
    let mut got = Vec::new();
    for i in 0..people {
        got.push(send(right(i, nat())).await.status().as_u16());
    }
    assert_eq!(count(&got, 200), people, "{got:?}");
    // Guesses over many accounts (never one account twice) from that IP: 5, then 429.
    let mut got = Vec::new();
    for i in 0..8 {
        let email = format!("victim{i}@example.com");
        got.push(
            send(wrong_login(&sys, &base, &email, None, nat()))
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(got, [401, 401, 401, 401, 401, 429, 429, 429]);
    // Spent for that IP (even a right password waits), not for another.
    assert_eq!(send(right(0, nat())).await.status(), 429);
    assert_eq!(
        send(right(0, Some("198.51.100.8".into()))).await.status(),
        200
    );
    limited.stop().await;
    sys.shutdown().await;
}
