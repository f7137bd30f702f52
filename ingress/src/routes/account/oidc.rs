//! Sign in with a provider (OpenID Connect, authorization code + PKCE; API.md Round 2
//! "Accounts").
//!
//! - `GET /v1/auth/oidc`: the configured providers (the sign-in page's buttons).
//! - `GET /v1/auth/oidc/{provider}/start?redirect_uri=`: `302` to the provider with a
//!   fresh `state`, `nonce` and PKCE challenge. The three are kept in Redis under the
//!   state's hash for `auth.oidc_state_ttl_secs`, and taken out (so used once) by the
//!   callback. `redirect_uri`, where the browser goes back with its tokens, must be
//!   one of `auth.oidc_redirect_uris` exactly: a sign-in link cannot hand tokens to
//!   another site.
//! - `GET /v1/auth/oidc/{provider}/callback?code=&state=`: exchanges the code (with
//!   the client secret and the PKCE verifier) and verifies the ID token with
//!   `openidconnect`: signature against the provider's JWKS, issuer, audience, nonce,
//!   expiry. Then the account: the one linked to this provider subject, else the
//!   one of the provider's *verified* email (linked from then on), else a new
//!   customer account with that email (verified). An address the provider has not
//!   verified is never linked: it could be anyone's.
//!
//! The answer is a login's: the token pair, or the MFA challenge when the account
//! has two-factor authentication on (a provider sign-in is one factor, like a
//! password). With a `redirect_uri`, a `302` there carrying it in the fragment (which
//! browsers never send to a server, so it stays out of logs).

use super::session::{LoginAnswer, issue};
use super::{MAX_NAME_CHARS, clean_text, mfa, normalize_email, parse_role};
use crate::extract::{ApiPath, ApiQuery};
use crate::problem::ApiError;
use crate::state::AppState;
use ::auth::passwords;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use contracts::UserId;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    Scope, TokenResponse,
};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::IntoParams;
use uuid::Uuid;

/// Longest `code` or `state` accepted from the provider's redirect.
const MAX_PARAM_CHARS: usize = 2048;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartParams {
    /// Where the browser is sent back with the tokens (one of
    /// `auth.oidc_redirect_uris`, e.g. `/account`). Absent: the callback answers
    /// the tokens as JSON.
    pub redirect_uri: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's refusal (`access_denied`, ...), instead of a code.
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// What a started sign-in keeps until its callback.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    provider: String,
    nonce: String,
    verifier: String,
    redirect_uri: Option<String>,
}

fn state_key(app: &AppState, state: &str) -> String {
    app.keys
        .oidc_state(&hex::encode(Sha256::digest(state.as_bytes())))
}

fn redis_down(e: redis::RedisError) -> ApiError {
    ApiError::Unavailable(anyhow::anyhow!("redis: {e}"))
}

/// A provider people can sign in with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderEntry {
    /// The `{provider}` of the sign-in routes.
    pub name: String,
    /// What the button says: "Sign in with <display_name>".
    pub display_name: String,
    /// Where a browser starts the sign-in (back to `/account`).
    pub start_url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProviderList {
    pub items: Vec<ProviderEntry>,
}

/// The configured sign-in providers (for the sign-in page's buttons).
#[utoipa::path(
    get,
    path = "/v1/auth/oidc",
    tag = "auth",
    responses((status = 200, description = "The providers", body = ProviderList))
)]
pub async fn providers(State(app): State<AppState>) -> axum::Json<ProviderList> {
    let items = app
        .oidc
        .names()
        .into_iter()
        .map(|(name, display_name)| ProviderEntry {
            start_url: format!("/v1/auth/oidc/{name}/start?redirect_uri=/account"),
            name,
            display_name,
        })
        .collect();
    axum::Json(ProviderList { items })
}

/// Starts a sign-in with `provider`: a redirect to it.
#[utoipa::path(
    get,
    path = "/v1/auth/oidc/{provider}/start",
    tag = "auth",
    params(("provider" = String, Path, description = "A configured provider, e.g. `google`"), StartParams),
    responses(
        (status = 302, description = "To the provider's sign-in (authorization code + PKCE, `state`, `nonce`)"),
        (status = 404, description = "No such provider (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "`redirect_uri` is not an allowed one (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn start(
    State(app): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(p): ApiQuery<StartParams>,
) -> Result<Response, ApiError> {
    if !app.oidc.knows(&provider) {
        return Err(ApiError::NotFound(format!(
            "no sign-in provider {provider:?}"
        )));
    }
    if let Some(uri) = &p.redirect_uri
        && !app
            .settings
            .auth
            .oidc_redirect_uris
            .iter()
            .any(|u| u == uri)
    {
        return Err(ApiError::Validation(
            "redirect_uri is not one this site sends sign-ins back to".into(),
        ));
    }
    let client = app.oidc.client(&provider).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let pending = Pending {
        provider,
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        redirect_uri: p.redirect_uri,
    };
    let value = serde_json::to_string(&pending).map_err(|e| ApiError::Internal(e.into()))?;
    let mut redis = app.redis.clone();
    let _: () = redis
        .set_ex(
            state_key(&app, state.secret()),
            value,
            app.settings.auth.oidc_state_ttl_secs,
        )
        .await
        .map_err(redis_down)?;
    Ok(found(url.as_str()))
}

/// A `302` to `location`, never cached.
fn found(location: &str) -> Response {
    let mut res = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Completes a sign-in with `provider`: the provider sends the browser here.
#[utoipa::path(
    get,
    path = "/v1/auth/oidc/{provider}/callback",
    tag = "auth",
    params(("provider" = String, Path, description = "The provider the sign-in started with"), CallbackParams),
    responses(
        (status = 200, description = "Tokens, or `{mfa_required: true, mfa_token, expires_in}` when the account has two-factor authentication on", body = LoginAnswer),
        (status = 302, description = "Back to the sign-in's `redirect_uri`, the answer in the URL's fragment"),
        (status = 400, description = "Unknown, expired or used `state` (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "The provider refused, or its ID token did not verify (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The provider has not verified the email address (problem+json)", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn callback(
    State(app): State<AppState>,
    ApiPath(provider): ApiPath<String>,
    ApiQuery(p): ApiQuery<CallbackParams>,
) -> Result<Response, ApiError> {
    let state = p
        .state
        .filter(|s| !s.is_empty() && s.len() <= MAX_PARAM_CHARS)
        .ok_or(ApiError::InvalidSignInState)?;
    // Taken out whatever happens next: a state works once.
    let mut redis = app.redis.clone();
    let stored: Option<String> = redis
        .get_del(state_key(&app, &state))
        .await
        .map_err(redis_down)?;
    let pending: Pending = stored
        .and_then(|s| serde_json::from_str(&s).ok())
        .filter(|p: &Pending| p.provider == provider)
        .ok_or(ApiError::InvalidSignInState)?;
    if let Some(error) = p.error {
        return Err(ApiError::ProviderSignInRefused(format!(
            "the provider did not sign you in ({}{})",
            shown(&error, 64),
            p.error_description
                .map(|d| format!(": {}", shown(&d, 200)))
                .unwrap_or_default()
        )));
    }
    let code = p
        .code
        .filter(|c| !c.is_empty() && c.len() <= MAX_PARAM_CHARS)
        .ok_or_else(|| ApiError::Validation("code is required".into()))?;
    let identity = verified_identity(&app, &provider, code, &pending).await?;
    let answer = sign_in(&app, &provider, identity).await?;
    match pending.redirect_uri {
        None => Ok(axum::Json(answer).into_response()),
        Some(uri) => Ok(found(&format!("{uri}#{}", fragment(&answer)))),
    }
}

/// A provider's error text as we repeat it: printable ASCII, at most `max` characters.
fn shown(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(max)
        .collect()
}

/// Who the provider says signed in, from a verified ID token.
struct Identity {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
}

/// Exchanges `code` and verifies the ID token (signature, issuer, audience, nonce,
/// expiry); any failure is `401 provider_sign_in_refused`.
async fn verified_identity(
    app: &AppState,
    provider: &str,
    code: String,
    pending: &Pending,
) -> Result<Identity, ApiError> {
    let client = app.oidc.client(provider).await?;
    let http = app.oidc.http_client();
    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("provider {provider}: {e}")))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier.clone()))
        .request_async(&http)
        .await
        .map_err(|e| {
            tracing::warn!(provider, error = %e, "the provider refused the code");
            ApiError::ProviderSignInRefused("the provider refused the sign-in code".into())
        })?;
    let id_token = response.id_token().ok_or_else(|| {
        ApiError::ProviderSignInRefused("the provider answered no ID token".into())
    })?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(pending.nonce.clone()))
        .map_err(|e| {
            tracing::warn!(provider, error = %e, "an ID token was refused");
            ApiError::ProviderSignInRefused(format!("the provider's ID token is not valid: {e}"))
        })?;
    // The access token is not used (no user info is asked for), but it must be the
    // one the ID token names when it names one.
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token
            .signing_alg()
            .map_err(|e| ApiError::ProviderSignInRefused(e.to_string()))?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|e| ApiError::ProviderSignInRefused(e.to_string()))?;
        let actual = openidconnect::AccessTokenHash::from_token(response.access_token(), alg, key)
            .map_err(|e| ApiError::ProviderSignInRefused(e.to_string()))?;
        if actual != *expected {
            return Err(ApiError::ProviderSignInRefused(
                "the access token is not the one the ID token names".into(),
            ));
        }
    }
    Ok(Identity {
        subject: claims.subject().as_str().to_owned(),
        email: claims.email().map(|e| e.as_str().to_owned()),
        email_verified: claims.email_verified() == Some(true),
        name: claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned()),
    })
}

/// The account of `identity` (linked, linked now by verified email, or created) and
/// a login's answer for it.
async fn sign_in(
    app: &AppState,
    provider: &str,
    identity: Identity,
) -> Result<LoginAnswer, ApiError> {
    let mut tx = app.db.begin().await?;
    let linked: Option<(Uuid, String, bool)> = sqlx::query_as(
        "select u.id, u.role, u.mfa_enabled_at is not null
           from user_identities i join users u on u.id = i.user_id
          where i.provider = $1 and i.subject = $2",
    )
    .bind(provider)
    .bind(&identity.subject)
    .fetch_optional(&mut *tx)
    .await?;
    let (id, role, mfa_on) = match linked {
        Some(found) => found,
        None => link_or_create(&mut tx, provider, identity).await?,
    };
    if mfa_on {
        tx.commit().await?;
        let challenge = mfa::challenge(app, UserId(id)).await?;
        return Ok(LoginAnswer::Mfa(challenge));
    }
    let tokens = issue(app, &mut tx, UserId(id), parse_role(&role)?, None, false).await?;
    tx.commit().await?;
    tracing::info!(user_id = %id, provider, "signed in with a provider");
    Ok(LoginAnswer::Tokens(tokens))
}

/// A first sign-in of this provider subject: links the account of the provider's
/// verified email, or creates one. An unverified or missing email: `403`.
async fn link_or_create(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    provider: &str,
    identity: Identity,
) -> Result<(Uuid, String, bool), ApiError> {
    let email = match (&identity.email, identity.email_verified) {
        (Some(e), true) => normalize_email(e).map_err(|_| {
            ApiError::ProviderSignInRefused("the provider's email address is not usable".into())
        })?,
        _ => return Err(ApiError::ProviderEmailNotVerified),
    };
    let existing: Option<(Uuid, String, bool)> = sqlx::query_as(
        "update users set email_verified_at = coalesce(email_verified_at, now())
          where email = $1
         returning id, role, mfa_enabled_at is not null",
    )
    .bind(&email)
    .fetch_optional(&mut **tx)
    .await?;
    let account = match existing {
        Some(found) => found,
        None => {
            let name = identity
                .name
                .as_deref()
                .and_then(|n| clean_text("name", n, MAX_NAME_CHARS).ok())
                .unwrap_or_else(|| email.split('@').next().unwrap_or("").to_owned());
            // No password anyone knows: a password reset sets one.
            let hash = passwords::hash(super::new_token())
                .await
                .map_err(ApiError::Internal)?;
            let id = UserId::new_v7();
            sqlx::query(
                "insert into users (id, email, password_hash, name, role, email_verified_at)
                 values ($1, $2, $3, $4, 'customer', now())",
            )
            .bind(id.0)
            .bind(&email)
            .bind(&hash)
            .bind(&name)
            .execute(&mut **tx)
            .await?;
            tracing::info!(user_id = %id, provider, "account created by a provider sign-in");
            (id.0, "customer".to_owned(), false)
        }
    };
    sqlx::query(
        "insert into user_identities (provider, subject, user_id, email) values ($1, $2, $3, $4)",
    )
    .bind(provider)
    .bind(&identity.subject)
    .bind(account.0)
    .bind(&email)
    .execute(&mut **tx)
    .await?;
    Ok(account)
}

/// A login's answer as a URL fragment (`access_token=...&refresh_token=...`).
fn fragment(answer: &LoginAnswer) -> String {
    let pairs: Vec<(&str, String)> = match answer {
        LoginAnswer::Tokens(t) => vec![
            ("access_token", t.access_token.clone()),
            ("refresh_token", t.refresh_token.clone()),
            ("token_type", t.token_type.to_owned()),
            ("expires_in", t.expires_in.to_string()),
        ],
        LoginAnswer::Mfa(c) => vec![
            ("mfa_required", "true".to_owned()),
            ("mfa_token", c.mfa_token.clone()),
            ("expires_in", c.expires_in.to_string()),
        ],
    };
    // Tokens are base64url and JWTs: nothing to escape.
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}
