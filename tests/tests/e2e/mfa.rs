//! Two-factor authentication with TOTP (API.md, Round 2 "Accounts"): enrolment,
//! the login's code step, recovery codes, replayed codes, and the policy that staff
//! roles sign in with a second factor.

use crate::accounts::{PASSWORD, login, me, pair, register};
use auth::{Amr, Role, totp};
use base64::Engine;
use reqwest::Method;
use serde_json::{Value, json};
use tests::{SystemOptions, TestSystem, spawn_system};

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Enrols the account of `access` and confirms it; answers (secret, recovery codes).
pub async fn enrol(sys: &TestSystem, access: &str) -> (Vec<u8>, Vec<String>) {
    let (status, e) = sys.post(access, "/v1/me/mfa/totp", None).await;
    assert_eq!(status, 201, "{e}");
    let secret = totp::secret_from_base32(e["secret"].as_str().unwrap()).unwrap();
    let code = totp::code_at(&secret, now_secs()).unwrap();
    let (status, c) = sys
        .post(
            access,
            "/v1/me/mfa/totp/confirm",
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(status, 200, "{c}");
    let codes = c["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes)
}

async fn complete(sys: &TestSystem, mfa_token: &str, code: &str) -> (u16, Value) {
    sys.call(
        Method::POST,
        "/v1/auth/mfa",
        None,
        Some(json!({"mfa_token": mfa_token, "code": code})),
    )
    .await
}

/// Logs in an enrolled account: the challenge's token.
async fn challenge(sys: &TestSystem, email: &str) -> String {
    let (status, body) = login(sys, email, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["mfa_required"], true, "{body}");
    assert!(
        body.get("access_token").is_none(),
        "no tokens before the code"
    );
    assert_eq!(body["expires_in"], 300);
    body["mfa_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn totp_enrolment_then_login_takes_a_code_once_and_a_recovery_code_once() {
    let sys = spawn_system(SystemOptions::default()).await;
    let email = "mfa@example.com";
    let (access, _) = pair(&register(&sys, email).await);

    // Enrolment: the secret, its URI and QR; not active until confirmed.
    let (status, e) = sys.post(&access, "/v1/me/mfa/totp", None).await;
    assert_eq!(status, 201, "{e}");
    let b32 = e["secret"].as_str().unwrap();
    let uri = e["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Booking:mfa%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={b32}")), "{uri}");
    let png = base64::engine::general_purpose::STANDARD
        .decode(e["qr_png_base64"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    assert!(
        login(&sys, email, PASSWORD)
            .await
            .1
            .get("access_token")
            .is_some()
    );
    let secret = totp::secret_from_base32(b32).unwrap();
    let (status, wrong) = sys
        .post(
            &access,
            "/v1/me/mfa/totp/confirm",
            Some(json!({"code": "000000"})),
        )
        .await;
    assert_eq!(
        (status, wrong["code"].as_str()),
        (403, Some("invalid_mfa_code"))
    );
    let code = totp::code_at(&secret, now_secs()).unwrap();
    let (status, c) = sys
        .post(
            &access,
            "/v1/me/mfa/totp/confirm",
            Some(json!({ "code": code })),
        )
        .await;
    assert_eq!(status, 200, "{c}");
    let recovery: Vec<String> = serde_json::from_value(c["recovery_codes"].clone()).unwrap();
    assert_eq!(recovery.len(), 10);
    let (_, profile) = me(&sys, &access).await;
    assert_eq!(profile["mfa_enabled"], true);
    assert!(
        !profile.to_string().contains(b32),
        "the secret is never shown again"
    );
    assert_eq!(sys.post(&access, "/v1/me/mfa/totp", None).await.0, 409);
    let stored: i64 =
        sqlx::query_scalar("select count(*) from mfa_recovery_codes where code_hash = any($1)")
            .bind(
                recovery
                    .iter()
                    .map(|c| c.as_bytes().to_vec())
                    .collect::<Vec<_>>(),
            )
            .fetch_one(&sys.pool)
            .await
            .unwrap();
    assert_eq!(stored, 0, "recovery codes are stored hashed");
    let sealed: Vec<u8> = sqlx::query_scalar("select mfa_secret from users where email = $1")
        .bind(email)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    assert!(
        !sealed.windows(secret.len()).any(|w| w == secret.as_slice()),
        "the secret is stored sealed"
    );

    // Login: a challenge, then a code of the next step (the confirmation used this one).
    let mfa_token = challenge(&sys, email).await;
    let next = totp::code_at(&secret, now_secs() + 30).unwrap();
    let (status, tokens) = complete(&sys, &mfa_token, &next).await;
    assert_eq!(status, 200, "{tokens}");
    let (access, _) = pair(&tokens);
    assert_eq!(sys.tokens.check(&access).unwrap().amr, Amr::Mfa);
    assert_eq!(me(&sys, &access).await.0, 200);
    assert_eq!(
        complete(&sys, &mfa_token, &next).await.1["code"],
        "invalid_mfa_token",
        "a challenge completes once"
    );

    // The same code again, in a new login: a replay, refused.
    let mfa_token = challenge(&sys, email).await;
    let (status, replay) = complete(&sys, &mfa_token, &next).await;
    assert_eq!(
        (status, replay["code"].as_str()),
        (403, Some("invalid_mfa_code"))
    );
    // A recovery code works, however it is typed, and only once.
    let typed = recovery[0].replace('-', "").to_uppercase();
    let (status, tokens) = complete(&sys, &mfa_token, &typed).await;
    assert_eq!(status, 200, "{tokens}");
    let mfa_token = challenge(&sys, email).await;
    let (status, again) = complete(&sys, &mfa_token, &recovery[0]).await;
    assert_eq!(
        (status, again["code"].as_str()),
        (403, Some("invalid_mfa_code"))
    );

    // A challenge allows five codes, then it is spent.
    for _ in 0..4 {
        assert_eq!(complete(&sys, &mfa_token, "123456").await.0, 403);
    }
    let (status, spent) = complete(&sys, &mfa_token, &recovery[1]).await;
    assert_eq!(
        (status, spent["code"].as_str()),
        (401, Some("invalid_mfa_token"))
    );
    assert_eq!(complete(&sys, "forged", &recovery[1]).await.0, 401);

    // Turning it off takes a code; then the password alone signs in again.
    let (access, _) = pair(&tokens);
    let off = |code: String| {
        let sys = &sys;
        let access = access.clone();
        async move {
            sys.call(
                Method::DELETE,
                "/v1/me/mfa/totp",
                Some(&access),
                Some(json!({ "code": code })),
            )
            .await
        }
    };
    assert_eq!(off("000000".into()).await.0, 403);
    assert_eq!(off(recovery[1].clone()).await.0, 204);
    let (_, plain) = login(&sys, email, PASSWORD).await;
    assert!(plain.get("access_token").is_some(), "{plain}");
    assert_eq!(me(&sys, &pair(&plain).0).await.1["mfa_enabled"], false);
    sys.shutdown().await;
}

async fn staff_with_password(sys: &TestSystem, role: Role, email: &str) {
    let hash = auth::passwords::hash(PASSWORD.into()).await.unwrap();
    sqlx::query(
        "insert into users (id, email, password_hash, name, role) values ($1, $2, $3, 'Staff', $4)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(email)
    .bind(hash)
    .bind(role.as_str())
    .execute(&sys.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn staff_without_mfa_are_refused_on_privileged_routes_until_they_enrol() {
    let sys = spawn_system(SystemOptions {
        mfa_required_roles: vec!["admin".into(), "operator".into()],
        ..Default::default()
    })
    .await;
    staff_with_password(&sys, Role::Admin, "admin@example.com").await;
    staff_with_password(&sys, Role::Operator, "ops@example.com").await;

    let (status, body) = login(&sys, "admin@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let (admin, _) = pair(&body);
    let (status, refused) = sys
        .call(Method::GET, "/v1/admin/theaters", Some(&admin), None)
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], "mfa_enrollment_required");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("/v1/me/mfa/totp")
    );
    let (_, body) = login(&sys, "ops@example.com", PASSWORD).await;
    let (ops, _) = pair(&body);
    let (status, refused) = sys.call(Method::GET, "/v1/ops/dlq", Some(&ops), None).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("mfa_enrollment_required"))
    );

    // It can still see its profile and enrol; then a login with a code is let in.
    assert_eq!(me(&sys, &admin).await.0, 200);
    let (secret, _) = enrol(&sys, &admin).await;
    let mfa_token = challenge(&sys, "admin@example.com").await;
    let code = totp::code_at(&secret, now_secs() + 30).unwrap();
    let (status, tokens) = complete(&sys, &mfa_token, &code).await;
    assert_eq!(status, 200, "{tokens}");
    let (admin, refresh) = pair(&tokens);
    let (status, list) = sys
        .call(Method::GET, "/v1/admin/theaters", Some(&admin), None)
        .await;
    assert_eq!(status, 200, "{list}");
    // A refreshed token of that login is still a two-factor one.
    let (status, renewed) = crate::accounts::refresh(&sys, &refresh).await;
    assert_eq!(status, 200, "{renewed}");
    let (status, _) = sys
        .call(
            Method::GET,
            "/v1/admin/theaters",
            Some(&pair(&renewed).0),
            None,
        )
        .await;
    assert_eq!(status, 200);

    // A token minted with the signing key (bookctl mint-token, the harness) is let in.
    let (_, minted) = sys.user_with_role(Role::Operator).await;
    assert_eq!(
        sys.call(Method::GET, "/v1/ops/dlq", Some(&minted), None)
            .await
            .0,
        200
    );
    sys.shutdown().await;
}
