//! The OpenID providers accepted for sign-in ([`platform::settings::OidcProvider`]):
//! their discovered metadata and keys (refreshed every [`METADATA_TTL`]), and the
//! relying-party client of each, built with the `openidconnect` crate. Its HTTP goes
//! through our `reqwest` client, which never follows redirects (a provider cannot
//! steer ingress's requests elsewhere).

use crate::problem::ApiError;
use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, HttpRequest,
    HttpResponse, IssuerUrl, RedirectUrl,
};
use secrecy::ExposeSecret;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// How long a provider's discovery document and keys are trusted; a provider that
/// rotates its keys is followed within this long.
pub const METADATA_TTL: Duration = Duration::from_secs(600);

/// Longest wait for a provider's answer.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);

/// A relying-party client of a discovered provider.
pub type RelyingParty = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The configured providers and what was discovered of them.
#[derive(Clone)]
pub struct Providers {
    configured: Arc<BTreeMap<String, platform::settings::OidcProvider>>,
    discovered: Arc<RwLock<HashMap<String, (Instant, RelyingParty)>>>,
    http: reqwest::Client,
    /// This site's address as providers send browsers back to it.
    callback_base: Arc<OnceLock<String>>,
}

impl Providers {
    pub fn new(
        configured: &BTreeMap<String, platform::settings::OidcProvider>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .build()?;
        Ok(Self {
            configured: Arc::new(configured.clone()),
            discovered: Arc::default(),
            http,
            callback_base: Arc::default(),
        })
    }

    /// Sets where providers send browsers back (once, when the listener is bound).
    pub fn set_callback_base(&self, base: String) {
        let _ = self
            .callback_base
            .set(base.trim_end_matches('/').to_owned());
    }

    /// The providers by name and what their sign-in button says.
    pub fn names(&self) -> Vec<(String, String)> {
        self.configured
            .iter()
            .map(|(name, p)| {
                let shown = if p.display_name.is_empty() {
                    name.clone()
                } else {
                    p.display_name.clone()
                };
                (name.clone(), shown)
            })
            .collect()
    }

    /// Whether `name` is a configured provider.
    pub fn knows(&self, name: &str) -> bool {
        self.configured.contains_key(name)
    }

    /// The redirect URI registered with the provider: our callback route.
    pub fn callback_url(&self, name: &str) -> String {
        format!(
            "{}/v1/auth/oidc/{name}/callback",
            self.callback_base.get().map_or("", String::as_str)
        )
    }

    /// The client of provider `name`, discovering it when not known or stale.
    /// Unknown: `404`; the provider not answering: `503`.
    pub async fn client(&self, name: &str) -> Result<RelyingParty, ApiError> {
        let Some(cfg) = self.configured.get(name) else {
            return Err(ApiError::NotFound(format!("no sign-in provider {name:?}")));
        };
        if let Some((at, c)) = self.discovered.read().await.get(name)
            && at.elapsed() < METADATA_TTL
        {
            return Ok(c.clone());
        }
        let issuer = IssuerUrl::new(cfg.issuer.clone()).map_err(|e| {
            ApiError::Internal(anyhow::anyhow!("auth.oidc_providers.{name}.issuer: {e}"))
        })?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http_client())
            .await
            .map_err(|e| {
                ApiError::Unavailable(anyhow::anyhow!(
                    "discovery of the OpenID provider {name} failed: {e}"
                ))
            })?;
        let redirect = RedirectUrl::new(self.callback_url(name))
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("callback URL: {e}")))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(cfg.client_id.clone()),
            Some(ClientSecret::new(
                cfg.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect);
        self.discovered
            .write()
            .await
            .insert(name.to_owned(), (Instant::now(), client.clone()));
        Ok(client)
    }

    /// The HTTP client `openidconnect` calls the provider with.
    pub fn http_client(
        &self,
    ) -> impl Fn(
        HttpRequest,
    ) -> futures::future::BoxFuture<'static, Result<HttpResponse, reqwest::Error>>
    + use<> {
        let http = self.http.clone();
        move |req: HttpRequest| {
            let http = http.clone();
            Box::pin(send(http, req))
        }
    }
}

/// One request to a provider, as `openidconnect` hands it over.
async fn send(http: reqwest::Client, req: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let (parts, body) = req.into_parts();
    let res = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.bytes().await?.to_vec();
    let mut out = HttpResponse::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}
