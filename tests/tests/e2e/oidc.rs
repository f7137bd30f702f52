//! Sign in with a provider (API.md, Round 2 "Accounts"): OpenID Connect with the
//! authorization code and PKCE against the local provider over HTTP, account
//! creation and linking by verified email, and what must be refused: a forged or
//! expired ID token, a reused state, an unverified email, a foreign redirect.

use crate::accounts::{PASSWORD, login, me, pair, register};
use serde_json::{Value, json};
use tests::{SystemOptions, TestSystem, spawn_system};

/// The whole sign-in of `email`: answers the callback's status and JSON body.
async fn sign_in(sys: &TestSystem, email: &str) -> (u16, Value) {
    let (_, callback) = sys.oidc_to_callback(email, None).await;
    let hop = sys.browse(&callback).await;
    (
        hop.status,
        serde_json::from_str(&hop.body).unwrap_or(Value::Null),
    )
}

async fn identities(sys: &TestSystem) -> i64 {
    sqlx::query_scalar("select count(*) from user_identities")
        .fetch_one(&sys.pool)
        .await
        .unwrap()
}

async fn accounts(sys: &TestSystem, email: &str) -> i64 {
    sqlx::query_scalar("select count(*) from users where email = $1")
        .bind(email)
        .fetch_one(&sys.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_first_provider_sign_in_with_pkce_creates_a_verified_account_and_the_next_finds_it() {
    let sys = spawn_system(SystemOptions::default()).await;
    let email = "ravi.oidc@example.com";
    let (authorize, callback) = sys.oidc_to_callback(email, None).await;
    // The provider was asked for a code with PKCE (S256), a state and a nonce.
    for part in [
        "response_type=code",
        "code_challenge=",
        "code_challenge_method=S256",
        "state=",
        "nonce=",
        "scope=openid",
    ] {
        assert!(authorize.contains(part), "{part} missing in {authorize}");
    }
    assert!(
        callback.contains("/v1/auth/oidc/local/callback?"),
        "{callback}"
    );
    let hop = sys.browse(&callback).await;
    assert_eq!(hop.status, 200, "{}", hop.body);
    let body: Value = serde_json::from_str(&hop.body).unwrap();
    let (access, _) = pair(&body);
    let (status, profile) = me(&sys, &access).await;
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["email"], email);
    let verified: bool =
        sqlx::query_scalar("select email_verified_at is not null from users where email = $1")
            .bind(email)
            .fetch_one(&sys.pool)
            .await
            .unwrap();
    assert!(verified, "the provider verified the address");

    let (status, again) = sign_in(&sys, email).await;
    assert_eq!(status, 200, "{again}");
    let (status, same) = me(&sys, &pair(&again).0).await;
    assert_eq!(status, 200);
    assert_eq!(same["id"], profile["id"], "the same account signs in again");
    assert_eq!(accounts(&sys, email).await, 1);
    assert_eq!(identities(&sys).await, 1);
    // The account has no password anyone knows.
    assert_eq!(login(&sys, email, PASSWORD).await.0, 401);
}

#[tokio::test]
async fn a_provider_sign_in_links_the_existing_account_of_its_verified_email() {
    let sys = spawn_system(SystemOptions::default()).await;
    let email = "meera.oidc@example.com";
    let registered = register(&sys, email).await;
    let (status, body) = sign_in(&sys, email).await;
    assert_eq!(status, 200, "{body}");
    let (_, profile) = me(&sys, &pair(&body).0).await;
    assert_eq!(profile["id"], registered["user"]["id"]);
    assert_eq!(identities(&sys).await, 1);
    // The password keeps working beside the provider.
    assert_eq!(login(&sys, email, PASSWORD).await.0, 200);
}

#[tokio::test]
async fn an_email_the_provider_has_not_verified_is_not_linked_to_an_existing_account() {
    let sys = spawn_system(SystemOptions::default()).await;
    let email = "victim.oidc@example.com";
    register(&sys, email).await;
    sys.oidc_control(
        "/test/users",
        json!({"email": email, "email_verified": false}),
    )
    .await;
    let (status, body) = sign_in(&sys, email).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["code"], "provider_email_not_verified");
    assert!(body.get("access_token").is_none());
    assert_eq!(identities(&sys).await, 0);
    // Nor does it make a second account.
    let other = "nobody.oidc@example.com";
    sys.oidc_control(
        "/test/users",
        json!({"email": other, "email_verified": false}),
    )
    .await;
    assert_eq!(sign_in(&sys, other).await.0, 403);
    assert_eq!(accounts(&sys, other).await, 0);
}

#[tokio::test]
async fn an_id_token_signed_by_another_key_or_expired_is_refused() {
    let sys = spawn_system(SystemOptions::default()).await;
    for kind in ["wrong_key", "expired"] {
        sys.oidc_control("/test/mischief", json!({ "kind": kind }))
            .await;
        let email = format!("{kind}.oidc@example.com");
        let (status, body) = sign_in(&sys, &email).await;
        assert_eq!(status, 401, "{kind}: {body}");
        assert_eq!(body["code"], "provider_sign_in_refused", "{kind}");
        assert!(body.get("access_token").is_none());
        assert_eq!(accounts(&sys, &email).await, 0, "{kind}");
    }
    assert_eq!(identities(&sys).await, 0);
    // The provider itself is fine: the next honest token signs in.
    assert_eq!(sign_in(&sys, "honest.oidc@example.com").await.0, 200);
}

#[tokio::test]
async fn a_sign_in_state_works_once() {
    let sys = spawn_system(SystemOptions::default()).await;
    let (_, callback) = sys.oidc_to_callback("once.oidc@example.com", None).await;
    assert_eq!(sys.browse(&callback).await.status, 200);
    let hop = sys.browse(&callback).await;
    assert_eq!(hop.status, 400, "{}", hop.body);
    let body: Value = serde_json::from_str(&hop.body).unwrap();
    assert_eq!(body["code"], "invalid_state");
    // A state nobody started.
    let forged = sys
        .browse(&sys.url("/v1/auth/oidc/local/callback?code=abc&state=made-up"))
        .await;
    assert_eq!(forged.status, 400);
    assert_eq!(identities(&sys).await, 1);
}

#[tokio::test]
async fn a_sign_in_goes_back_only_to_an_allowed_redirect_uri_with_the_tokens_in_the_fragment() {
    let sys = spawn_system(SystemOptions::default()).await;
    for foreign in [
        "https://evil.example/steal",
        "//evil.example/account",
        "/account/../x",
    ] {
        let hop = sys
            .browse(&sys.url(&format!("/v1/auth/oidc/local/start?redirect_uri={foreign}")))
            .await;
        assert_eq!(hop.status, 422, "{foreign}: {}", hop.body);
        assert!(hop.location.is_none());
    }
    let unknown = sys.browse(&sys.url("/v1/auth/oidc/nope/start")).await;
    assert_eq!(unknown.status, 404);

    let (_, callback) = sys
        .oidc_to_callback("web.oidc@example.com", Some("/account"))
        .await;
    let hop = sys.browse(&callback).await;
    assert_eq!(hop.status, 302, "{}", hop.body);
    let location = hop.location.unwrap();
    let fragment = location
        .strip_prefix("/account#")
        .unwrap_or_else(|| panic!("{location}"));
    let access = fragment
        .split('&')
        .find_map(|kv| kv.strip_prefix("access_token="))
        .unwrap();
    assert!(fragment.contains("refresh_token="), "{fragment}");
    assert_eq!(me(&sys, access).await.0, 200);
}
