//! The test's local OpenID provider (`local-oidc`, over real HTTP on port 0) as the
//! `local` sign-in provider, and walking a browser through a sign-in.

use crate::TestSystem;
use platform::Settings;
use platform::settings::OidcProvider;
use tokio_util::sync::CancellationToken;

/// The name ingress knows the test provider by (`/v1/auth/oidc/local/...`).
pub const PROVIDER: &str = "local";

/// Starts the provider of `cfg` and makes it ingress's `local` provider; answers
/// its issuer URL.
pub(crate) async fn start_oidc_provider(
    cfg: local_oidc::ProviderConfig,
    settings: &mut Settings,
    stop: &CancellationToken,
) -> String {
    let provider = local_oidc::LocalProvider::build(cfg.clone())
        .await
        .expect("start the local OpenID provider");
    let issuer = provider.issuer();
    settings.auth.oidc_providers.insert(
        PROVIDER.into(),
        OidcProvider {
            issuer: issuer.clone(),
            client_id: cfg.client_id,
            client_secret: cfg.client_secret.into(),
            display_name: "Local ID".into(),
        },
    );
    tokio::spawn(provider.run_until_stopped(stop.clone().cancelled_owned()));
    issuer
}

/// Where a step of a sign-in sends the browser.
pub struct Hop {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl TestSystem {
    /// A GET as a browser sends it, without following a redirect.
    pub async fn browse(&self, url: &str) -> Hop {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        let res = client.get(url).send().await.expect("get");
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Hop {
            status,
            location,
            body: res.text().await.unwrap_or_default(),
        }
    }

    /// Starts a sign-in with the local provider and lets the provider sign in
    /// `email` (its `login_hint`): answers the authorize URL it was sent to and the
    /// callback URL the provider sends the browser back to (with `code` and `state`).
    pub async fn oidc_to_callback(
        &self,
        email: &str,
        redirect_uri: Option<&str>,
    ) -> (String, String) {
        let mut start = self.url(&format!("/v1/auth/oidc/{PROVIDER}/start"));
        if let Some(r) = redirect_uri {
            start.push_str(&format!("?redirect_uri={r}"));
        }
        let hop = self.browse(&start).await;
        assert_eq!(hop.status, 302, "start: {}", hop.body);
        let authorize = hop.location.expect("start redirects to the provider");
        let hop = self
            .browse(&format!("{authorize}&login_hint={email}"))
            .await;
        assert_eq!(hop.status, 302, "authorize: {}", hop.body);
        let callback = hop.location.expect("the provider redirects back");
        (authorize, callback)
    }

    /// POSTs JSON to the local provider (its `/test/...` controls).
    pub async fn oidc_control(&self, path: &str, body: serde_json::Value) {
        let issuer = &self.settings.auth.oidc_providers[PROVIDER].issuer;
        let res = self
            .http
            .post(format!("{issuer}{path}"))
            .json(&body)
            .send()
            .await
            .expect("provider control");
        assert!(res.status().is_success(), "provider control {path}");
    }
}
