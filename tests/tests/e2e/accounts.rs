//! Account security (API.md, Round 2 "Accounts"): email verification, password change
//! and reset, and what "every login ends" means for the tokens handed out before.
//! Two-factor authentication is in `mfa.rs`.

use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tests::{SystemOptions, TestSystem, spawn_system};

pub const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a brand new horse battery";

pub async fn register(sys: &TestSystem, email: &str) -> Value {
    let (status, body) = sys
        .call(
            Method::POST,
            "/v1/auth/register",
            None,
            Some(json!({"email": email, "password": PASSWORD, "name": "Asha Rao"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

pub async fn login(sys: &TestSystem, email: &str, password: &str) -> (u16, Value) {
    sys.call(
        Method::POST,
        "/v1/auth/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await
}

pub async fn refresh(sys: &TestSystem, token: &str) -> (u16, Value) {
    sys.call(
        Method::POST,
        "/v1/auth/refresh",
        None,
        Some(json!({"refresh_token": token})),
    )
    .await
}

pub fn pair(body: &Value) -> (String, String) {
    (
        body["access_token"].as_str().expect("access token").into(),
        body["refresh_token"]
            .as_str()
            .expect("refresh token")
            .into(),
    )
}

pub async fn me(sys: &TestSystem, access: &str) -> (u16, Value) {
    sys.call(Method::GET, "/v1/me", Some(access), None).await
}

/// The text part of every email the sink received for `to`, oldest first.
pub fn texts_to(sys: &TestSystem, to: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    for m in sys.emails() {
        let mail = mailparse::parse_mail(&m.raw).unwrap();
        let headers = mail.get_headers();
        let rcpt = mailparse::MailHeaderMap::get_first_value(&headers, "To").unwrap_or_default();
        if !rcpt.contains(to) {
            continue;
        }
        let subject =
            mailparse::MailHeaderMap::get_first_value(&headers, "Subject").unwrap_or_default();
        let mut stack = vec![&mail];
        while let Some(p) = stack.pop() {
            if p.ctype.mimetype == "text/plain" {
                out.push((subject.clone(), p.get_body().unwrap()));
            }
            stack.extend(p.subparts.iter());
        }
    }
    out
}

/// Waits for the `n`th email to `to` whose subject contains `subject`, and answers
/// the token of its link (`...?token=`).
pub async fn emailed_token(sys: &TestSystem, to: &str, subject: &str, n: usize) -> String {
    let found: Vec<String> = sys
        .until_some(
            Duration::from_secs(10),
            &format!("email {n} {subject:?} to {to}"),
            || async {
                let found: Vec<String> = texts_to(sys, to)
                    .into_iter()
                    .filter(|(s, _)| s.contains(subject))
                    .map(|(_, t)| t)
                    .collect();
                (found.len() >= n).then_some(found)
            },
        )
        .await;
    let text = &found[n - 1];
    let at = text.find("?token=").expect("a link with a token") + "?token=".len();
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test]
async fn a_new_account_verifies_its_email_with_a_single_use_token() {
    let sys = spawn_system(SystemOptions::default()).await;
    let body = register(&sys, "verify@example.com").await;
    assert_eq!(body["user"]["email_verified"], false);
    let (access, _) = pair(&body);
    let token = emailed_token(&sys, "verify@example.com", "Confirm your email", 1).await;
    let texts = texts_to(&sys, "verify@example.com");
    assert!(
        texts[0].1.contains(&format!(
            "{}/verify-email?token=",
            sys.settings.ingress.public_url()
        )),
        "the link points at the web app: {}",
        texts[0].1
    );

    let verify = |t: String| {
        let sys = &sys;
        async move {
            sys.call(
                Method::POST,
                "/v1/auth/verify-email",
                None,
                Some(json!({ "token": t })),
            )
            .await
        }
    };
    let (status, bad) = verify("not-a-token".into()).await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("invalid_token")));
    assert_eq!(verify(token.clone()).await.0, 204);
    assert_eq!(me(&sys, &access).await.1["email_verified"], true);
    let (status, again) = verify(token).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (400, Some("invalid_token")),
        "the token works once"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn paying_needs_a_verified_email_only_when_the_setting_says_so() {
    let sys = spawn_system(SystemOptions {
        require_verified_email_to_pay: true,
        ..Default::default()
    })
    .await;
    let show = sys.show(2, 4).await;
    let body = register(&sys, "payer@example.com").await;
    let (access, _) = pair(&body);

    // Booking without paying is allowed; paying (either way) is not.
    let (status, held) = sys
        .submit(&access, "k1", json!({"show_id": show.0, "seats": ["A1"]}))
        .await;
    assert_eq!(status, 202, "{held}");
    let (status, refused) = sys
        .submit(
            &access,
            "k2",
            json!({"show_id": show.0, "seats": ["A2"], "payment_method": "pm_card_ok"}),
        )
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], "email_not_verified");
    let id = held["booking_id"].as_str().unwrap().to_owned();
    let booking = uuid::Uuid::parse_str(&id).unwrap();
    sys.wait_decided(&[booking], Duration::from_secs(10)).await;
    let pay = json!({"payment_method": "pm_card_ok"});
    let (status, refused) = sys
        .post(
            &access,
            &format!("/v1/bookings/{id}/payment"),
            Some(pay.clone()),
        )
        .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("email_not_verified"))
    );

    let token = emailed_token(&sys, "payer@example.com", "Confirm your email", 1).await;
    let (status, _) = sys
        .call(
            Method::POST,
            "/v1/auth/verify-email",
            None,
            Some(json!({ "token": token })),
        )
        .await;
    assert_eq!(status, 204);
    let (status, paid) = sys
        .post(&access, &format!("/v1/bookings/{id}/payment"), Some(pay))
        .await;
    assert_eq!(status, 202, "{paid}");
    sys.shutdown().await;
}

/// Concurrent authenticated requests share their reads of the session generation
/// (one query answers many), and each still sees its own account's generation as
/// stored: 200 requests at once from 20 accounts, one of which was revoked just
/// before (its generation bumped, as a password change does), are all answered 200
/// but the revoked account's, all 401.
#[tokio::test]
async fn a_burst_of_authenticated_requests_shares_its_session_reads_and_each_sees_its_own() {
    let sys = spawn_system(SystemOptions::default()).await;
    let mut users = vec![];
    for n in 0..20 {
        users.push(sys.customer(n).await);
    }
    let revoked = users[0].0;
    sqlx::query("update users set auth_epoch = auth_epoch + 1 where id = $1")
        .bind(revoked.0)
        .execute(&sys.pool)
        .await
        .unwrap();
    let answers = futures::future::join_all((0..200).map(|i| {
        let (user, token) = users[i % users.len()].clone();
        let sys = &sys;
        async move { (user, me(sys, &token).await.0) }
    }))
    .await;
    for (user, status) in answers {
        let want = if user == revoked { 401 } else { 200 };
        assert_eq!(status, want, "user {user}");
    }
    let metrics = sys.ingress_metrics().await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    let (reads, asked) = (
        value("ingress_auth_epoch_batch_size_count"),
        value("ingress_auth_epoch_batch_size_sum"),
    );
    assert!(asked >= 200.0, "{asked} generations asked for");
    assert!(
        reads < asked,
        "{reads} queries for {asked} requests: none shared"
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn changing_the_password_ends_every_other_login_at_once() {
    let sys = spawn_system(SystemOptions::default()).await;
    let email = "change@example.com";
    register(&sys, email).await;
    let (_, here) = login(&sys, email, PASSWORD).await;
    let (here_access, here_refresh) = pair(&here);
    let (_, other) = login(&sys, email, PASSWORD).await;
    let (other_access, other_refresh) = pair(&other);
    assert_eq!(me(&sys, &other_access).await.0, 200);

    let change = |current: &'static str| {
        let sys = &sys;
        let here_access = here_access.clone();
        async move {
            sys.post(
                &here_access,
                "/v1/me/password",
                Some(json!({"current_password": current, "new_password": NEW_PASSWORD})),
            )
            .await
        }
    };
    let (status, wrong) = change("not my password").await;
    assert_eq!(
        (status, wrong["code"].as_str()),
        (403, Some("wrong_password"))
    );
    assert_eq!(change(PASSWORD).await.0, 204);

    // The other login: both tokens refused at once.
    assert_eq!(me(&sys, &other_access).await.0, 401);
    assert_eq!(refresh(&sys, &other_refresh).await.0, 401);
    // This login's access token is of the old generation too; its refresh token
    // carries on with a pair of the new one.
    assert_eq!(me(&sys, &here_access).await.0, 401);
    let (status, renewed) = refresh(&sys, &here_refresh).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(me(&sys, &pair(&renewed).0).await.0, 200);

    assert_eq!(login(&sys, email, PASSWORD).await.0, 401);
    let (status, fresh) = login(&sys, email, NEW_PASSWORD).await;
    assert_eq!(status, 200, "{fresh}");
    assert_eq!(me(&sys, &pair(&fresh).0).await.0, 200);
    sys.shutdown().await;
}

#[tokio::test]
async fn a_password_reset_answers_alike_for_unknown_emails_and_ends_every_login() {
    let sys = spawn_system(SystemOptions::default()).await;
    let email = "reset@example.com";
    register(&sys, email).await;
    let (_, before) = login(&sys, email, PASSWORD).await;
    let (old_access, old_refresh) = pair(&before);

    let ask = |e: &'static str| {
        let sys = &sys;
        async move {
            let res = sys
                .http
                .post(sys.url("/v1/auth/password-reset"))
                .json(&json!({ "email": e }))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let known = ask(email).await;
    let unknown = ask("nobody@example.com").await;
    let malformed = ask("not an email").await;
    assert_eq!(known, (202, String::new()));
    assert_eq!(unknown, known, "the same answer whether the email exists");
    assert_eq!(malformed, known);

    let token = emailed_token(&sys, email, "Reset your password", 1).await;
    assert!(
        texts_to(&sys, "nobody@example.com").is_empty(),
        "nothing is sent to an unknown address"
    );
    let confirm = |t: String, p: &'static str| {
        let sys = &sys;
        async move {
            sys.call(
                Method::POST,
                "/v1/auth/password-reset/confirm",
                None,
                Some(json!({"token": t, "new_password": p})),
            )
            .await
        }
    };
    assert_eq!(confirm(token.clone(), "short").await.0, 422);
    assert_eq!(confirm(token.clone(), NEW_PASSWORD).await.0, 204);
    let (status, again) = confirm(token, "yet another horse battery").await;
    assert_eq!(
        (status, again["code"].as_str()),
        (400, Some("invalid_token"))
    );

    // Every login ended, and the new password is the one.
    assert_eq!(me(&sys, &old_access).await.0, 401);
    assert_eq!(refresh(&sys, &old_refresh).await.0, 401);
    assert_eq!(login(&sys, email, PASSWORD).await.0, 401);
    let (status, fresh) = login(&sys, email, NEW_PASSWORD).await;
    assert_eq!(status, 200, "{fresh}");
    assert_eq!(me(&sys, &pair(&fresh).0).await.1["email_verified"], true);

    // An expired link is refused (30 minutes by default; aged here in the database).
    assert_eq!(ask(email).await.0, 202);
    let late = emailed_token(&sys, email, "Reset your password", 2).await;
    sqlx::query(
        "update account_tokens set expires_at = now() - interval '1 second' where used_at is null",
    )
    .execute(&sys.pool)
    .await
    .unwrap();
    let (status, expired) = confirm(late, "yet another horse battery").await;
    assert_eq!(
        (status, expired["code"].as_str()),
        (400, Some("invalid_token"))
    );
    sys.shutdown().await;
}

#[tokio::test]
async fn a_reset_link_lives_thirty_minutes_by_default() {
    let sys = spawn_system(SystemOptions::default()).await;
    let email = "ttl@example.com";
    register(&sys, email).await;
    let (status, _) = sys
        .call(
            Method::POST,
            "/v1/auth/password-reset",
            None,
            Some(json!({ "email": email })),
        )
        .await;
    assert_eq!(status, 202);
    let secs: f64 = sqlx::query_scalar(
        "select extract(epoch from expires_at - created_at)::float8 from account_tokens
          where purpose = 'password_reset'",
    )
    .fetch_one(&sys.pool)
    .await
    .unwrap();
    assert!((1795.0..=1805.0).contains(&secs), "{secs}");
    sys.shutdown().await;
}

/// `POST /v1/bookings` with `token`: its status, content type and body.
async fn book_with(sys: &TestSystem, token: &str, show: uuid::Uuid) -> (u16, String, Value) {
    let res = sys
        .http
        .post(sys.url("/v1/bookings"))
        .bearer_auth(token)
        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
        .json(&json!({"show_id": show.to_string(), "quantity": 1}))
        .send()
        .await
        .expect("booking request");
    let status = res.status().as_u16();
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, kind, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_tokens_of_a_deleted_account_book_nothing_whether_from_a_login_or_minted() {
    let sys = spawn_system(SystemOptions::default()).await;
    let show = sys.show(5, 5).await;
    // A login's token, and one minted with the key (as `bookctl mint-token` does).
    let registered = register(&sys, "leaving@example.com").await;
    let (from_login, _) = pair(&registered);
    let (minted_for, minted) = sys.customer(1).await;
    for token in [&from_login, &minted] {
        let (status, _, body) = book_with(&sys, token, show.0).await;
        assert_eq!(status, 202, "a live account books: {body}");
    }
    let deleted = sqlx::query("delete from users where email = $1 or id = $2")
        .bind("leaving@example.com")
        .bind(minted_for.0)
        .execute(&sys.pool)
        .await
        .expect("delete the accounts")
        .rows_affected();
    assert_eq!(deleted, 2);
    for token in [&from_login, &minted] {
        let (status, kind, body) = book_with(&sys, token, show.0).await;
        assert_eq!(
            (status, kind.as_str(), body["code"].as_str()),
            (401, "application/problem+json", Some("unauthenticated")),
            "{body}"
        );
    }
    sys.shutdown().await;
}

#[tokio::test]
async fn easy_passwords_are_refused_with_a_reason_and_change_nothing() {
    let sys = spawn_system(SystemOptions::default()).await;
    let email = "asha.rao@example.com";
    for (password, reason) in [
        ("password1234", "too_common"),
        ("Iloveyou", "too_common"),
        ("asha.rao-2026!", "contains_email"),
        ("          ", "whitespace_only"),
    ] {
        let (status, body) = sys
            .call(
                Method::POST,
                "/v1/auth/register",
                None,
                Some(json!({"email": email, "password": password, "name": "Asha Rao"})),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str(), body["reason"].as_str()),
            (422, Some("weak_password"), Some(reason)),
            "{password:?}: {body}"
        );
    }
    let accounts: i64 = sqlx::query_scalar("select count(*) from users where email = $1")
        .bind(email)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert_eq!(accounts, 0, "a refused registration created an account");

    // A change to an easy password is refused too; the old one still signs in.
    let (access, _) = pair(&register(&sys, email).await);
    let (status, body) = sys
        .call(
            Method::POST,
            "/v1/me/password",
            Some(&access),
            Some(json!({"current_password": PASSWORD, "new_password": "qwertyuiop"})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str(), body["reason"].as_str()),
        (422, Some("weak_password"), Some("too_common")),
        "{body}"
    );
    let (status, body) = login(&sys, email, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    sys.shutdown().await;
}
