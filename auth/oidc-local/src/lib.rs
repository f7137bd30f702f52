//! A small local OpenID provider: the stand-in for Google and the like, speaking the
//! real protocol over HTTP, for the run command and the tests.
//!
//! - `GET /.well-known/openid-configuration`: discovery (OpenID Connect Discovery 1.0).
//! - `GET /jwks`: the public signing key (ES256).
//! - `GET /authorize`: the authorization code flow with PKCE (`S256` only). There is
//!   no login form: it signs in the user `login_hint` names (a verified address
//!   unless `/test/users` said otherwise), or the configured default user, and
//!   redirects back with `code` and `state`.
//! - `POST /token`: the client authenticates (HTTP Basic or form fields), the code
//!   works once and only with its PKCE verifier and redirect URI; answers an access
//!   token and an ES256-signed ID token (`iss`, `sub`, `aud`, `exp`, `iat`, `nonce`,
//!   `email`, `email_verified`, `name`).
//! - `POST /test/users {email, email_verified, name?}`: a user as the provider knows
//!   them (e.g. an address it has not verified).
//! - `POST /test/mischief {kind}`: the next ID token is `wrong_key` (signed by a key
//!   the JWKS does not hold) or `expired`, as a compromised or confused provider
//!   would answer; the relying party must refuse both.

mod flows;
pub mod jws;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// How the provider runs.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub listen: String,
    /// The issuer URL (`iss`); empty: `http://<bound address>`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Redirect URIs the client registered (exact match); empty: any.
    pub redirect_uris: Vec<String>,
    /// Who `/authorize` signs in without a `login_hint`.
    pub default_email: String,
    /// Lifetime of an ID token, seconds.
    pub id_token_ttl_secs: u64,
    /// Lifetime of an authorization code, seconds.
    pub code_ttl_secs: u64,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".into(),
            issuer: String::new(),
            client_id: "booking-local".into(),
            client_secret: "oidc-local-development-secret".into(),
            redirect_uris: vec![],
            default_email: "asha.oidc@example.com".into(),
            id_token_ttl_secs: 300,
            code_ttl_secs: 60,
        }
    }
}

/// A user as the provider knows them.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct User {
    pub email: String,
    #[serde(default = "yes")]
    pub email_verified: bool,
    #[serde(default)]
    pub name: Option<String>,
}

fn yes() -> bool {
    true
}

/// What the next ID token does wrong (`POST /test/mischief`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mischief {
    WrongKey,
    Expired,
}

/// An issued authorization code, until it is exchanged.
struct Grant {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    nonce: Option<String>,
    user: User,
    expires: std::time::Instant,
}

/// What the handlers share.
struct Inner {
    cfg: ProviderConfig,
    issuer: String,
    key: jws::Key,
    /// Same key id, another key: what a forger would sign with.
    forger: jws::Key,
    codes: Mutex<HashMap<String, Grant>>,
    users: Mutex<HashMap<String, User>>,
    mischief: Mutex<Option<Mischief>>,
    /// Codes exchanged, for the tests.
    tokens_issued: std::sync::atomic::AtomicU64,
}

#[derive(Clone)]
struct Shared(Arc<Inner>);

/// A bound provider, not yet serving.
pub struct LocalProvider {
    listener: TcpListener,
    shared: Shared,
}

impl LocalProvider {
    /// Binds `cfg.listen` and makes a fresh signing key.
    pub async fn build(cfg: ProviderConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&cfg.listen).await?;
        let addr = listener.local_addr()?;
        let issuer = if cfg.issuer.is_empty() {
            format!("http://{addr}")
        } else {
            cfg.issuer.trim_end_matches('/').to_owned()
        };
        let kid = format!("local-{}", rand::random::<u32>());
        let inner = Inner {
            key: jws::Key::random(&kid),
            forger: jws::Key::random(&kid),
            issuer,
            cfg,
            codes: Mutex::default(),
            users: Mutex::default(),
            mischief: Mutex::default(),
            tokens_issued: Default::default(),
        };
        Ok(Self {
            listener,
            shared: Shared(Arc::new(inner)),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The issuer URL relying parties configure.
    pub fn issuer(&self) -> String {
        self.shared.0.issuer.clone()
    }

    /// A handle on what the provider did, usable after [`Self::run_until_stopped`].
    pub fn stats(&self) -> ProviderStats {
        ProviderStats(self.shared.clone())
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let app = flows::router(self.shared);
        if let Err(err) = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%err, "local OpenID provider stopped");
        }
    }
}

/// What the provider did.
#[derive(Clone)]
pub struct ProviderStats(Shared);

impl ProviderStats {
    /// ID tokens issued (codes exchanged).
    pub fn tokens_issued(&self) -> u64 {
        self.0
            .0
            .tokens_issued
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}
