//! The provider's routes: discovery, JWKS, the authorization code flow with PKCE,
//! and the tests' controls.

use crate::{Grant, Mischief, Shared, User};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

pub(crate) fn router(shared: Shared) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/test/users", post(add_user))
        .route("/test/mischief", post(mischief))
        .with_state(shared)
}

async fn discovery(State(s): State<Shared>) -> Json<serde_json::Value> {
    let iss = &s.0.issuer;
    Json(json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/authorize"),
        "token_endpoint": format!("{iss}/token"),
        "jwks_uri": format!("{iss}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["openid", "email", "profile"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name"],
        "grant_types_supported": ["authorization_code"],
    }))
}

async fn jwks(State(s): State<Shared>) -> Json<serde_json::Value> {
    Json(json!({"keys": [s.0.key.jwk()]}))
}

#[derive(Debug, Deserialize)]
struct AuthorizeParams {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    login_hint: Option<String>,
}

fn bad_request(why: &str) -> Response {
    (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response()
}

/// The authorization endpoint: checks the client and its redirect URI (errors about
/// those are shown here, never sent to an unchecked URI), then redirects back with
/// a code, or with an OAuth error.
async fn authorize(State(s): State<Shared>, Query(p): Query<AuthorizeParams>) -> Response {
    let cfg = &s.0.cfg;
    if p.client_id.as_deref() != Some(cfg.client_id.as_str()) {
        return bad_request("unknown client_id");
    }
    let Some(redirect_uri) = p.redirect_uri.filter(|u| {
        (u.starts_with("http://") || u.starts_with("https://"))
            && (cfg.redirect_uris.is_empty() || cfg.redirect_uris.contains(u))
    }) else {
        return bad_request("redirect_uri is missing or not registered for this client");
    };
    let back = |params: Vec<(&str, String)>| {
        let mut url = redirect_uri.clone();
        url.push(if url.contains('?') { '&' } else { '?' });
        let query: Vec<String> = params
            .into_iter()
            .chain(p.state.clone().map(|st| ("state", st)))
            .map(|(k, v)| format!("{k}={}", encode(&v)))
            .collect();
        url.push_str(&query.join("&"));
        // 302, as providers answer (RFC 6749 section 4.1.2 examples).
        (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
    };
    let error = |code: &str, description: &str| {
        back(vec![
            ("error", code.to_owned()),
            ("error_description", description.to_owned()),
        ])
    };
    if p.response_type.as_deref() != Some("code") {
        return error("unsupported_response_type", "only response_type=code");
    }
    if !p
        .scope
        .as_deref()
        .is_some_and(|sc| sc.split(' ').any(|x| x == "openid"))
    {
        return error("invalid_scope", "scope must include openid");
    }
    let Some(challenge) = p
        .code_challenge
        .filter(|_| p.code_challenge_method.as_deref() == Some("S256"))
    else {
        return error(
            "invalid_request",
            "PKCE is required: code_challenge with code_challenge_method=S256",
        );
    };
    let email = p
        .login_hint
        .filter(|h| h.contains('@'))
        .unwrap_or_else(|| cfg.default_email.clone())
        .to_lowercase();
    let user =
        s.0.users
            .lock()
            .expect("users lock")
            .get(&email)
            .cloned()
            .unwrap_or(User {
                email,
                email_verified: true,
                name: None,
            });
    let code = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>());
    s.0.codes.lock().expect("codes lock").insert(
        code.clone(),
        Grant {
            client_id: cfg.client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            code_challenge: challenge,
            nonce: p.nonce,
            user,
            expires: Instant::now() + Duration::from_secs(cfg.code_ttl_secs),
        },
    );
    back(vec![("code", code)])
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// An OAuth 2.0 token error (RFC 6749 section 5.2).
fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// The client's id and secret from HTTP Basic (form-urlencoded parts, RFC 6749
/// section 2.3.1) or from the form.
fn client_credentials(headers: &HeaderMap, form: &TokenForm) -> Option<(String, String)> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            Some((decode(id), decode(secret)))
        });
    basic.or_else(|| Some((form.client_id.clone()?, form.client_secret.clone()?)))
}

/// Undoes form-urlencoding (`+` and `%XX`).
fn decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The token endpoint: the authorization code grant with PKCE.
async fn token(State(s): State<Shared>, headers: HeaderMap, Form(f): Form<TokenForm>) -> Response {
    let cfg = &s.0.cfg;
    let Some((id, secret)) = client_credentials(&headers, &f) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "no client credentials",
        );
    };
    let id_ok = id.as_bytes().ct_eq(cfg.client_id.as_bytes());
    let secret_ok = secret.as_bytes().ct_eq(cfg.client_secret.as_bytes());
    if !bool::from(id_ok & secret_ok) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "wrong client id or secret",
        );
    }
    if f.grant_type.as_deref() != Some("authorization_code") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "authorization_code only",
        );
    }
    // A code works once, whatever happens next.
    let grant = f
        .code
        .as_deref()
        .and_then(|c| s.0.codes.lock().expect("codes lock").remove(c));
    let Some(grant) = grant.filter(|g| g.expires > Instant::now() && g.client_id == id) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown, used or expired code",
        );
    };
    if f.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization's",
        );
    }
    let verified = f.code_verifier.as_deref().is_some_and(|v| {
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
        bool::from(computed.as_bytes().ct_eq(grant.code_challenge.as_bytes()))
    });
    if !verified {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verification failed",
        );
    }
    let mischief = s.0.mischief.lock().expect("mischief lock").take();
    let now = now_secs();
    let (iat, exp) = match mischief {
        Some(Mischief::Expired) => (now - 2 * cfg.id_token_ttl_secs - 600, now - 600),
        _ => (now, now + cfg.id_token_ttl_secs),
    };
    let user = &grant.user;
    let claims = json!({
        "iss": s.0.issuer,
        "sub": format!("local-{}", hex_sha(&user.email)),
        "aud": cfg.client_id,
        "iat": iat,
        "exp": exp,
        "nonce": grant.nonce,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
    });
    let key = match mischief {
        Some(Mischief::WrongKey) => &s.0.forger,
        _ => &s.0.key,
    };
    s.0.tokens_issued.fetch_add(1, Ordering::Relaxed);
    Json(json!({
        "access_token": URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>()),
        "token_type": "Bearer",
        "expires_in": cfg.id_token_ttl_secs,
        "scope": "openid email profile",
        "id_token": key.sign(&claims),
    }))
    .into_response()
}

/// A stable subject per email (what the provider calls the user, never reused).
fn hex_sha(email: &str) -> String {
    Sha256::digest(email.as_bytes())[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn add_user(State(s): State<Shared>, Json(mut u): Json<User>) -> StatusCode {
    u.email = u.email.to_lowercase();
    s.0.users
        .lock()
        .expect("users lock")
        .insert(u.email.clone(), u);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct MischiefBody {
    kind: Mischief,
}

async fn mischief(State(s): State<Shared>, Json(m): Json<MischiefBody>) -> StatusCode {
    *s.0.mischief.lock().expect("mischief lock") = Some(m.kind);
    StatusCode::NO_CONTENT
}
