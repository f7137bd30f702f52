//! The secret checks every process runs at startup ([`super::Settings::load`]).
//!
//! In every environment: the JWT secret is at least [`JWT_SECRET_MIN_BYTES`], the
//! webhook secret at least [`WEBHOOK_SECRET_MIN_BYTES`] (an empty one would let
//! anyone sign a webhook), and the current ticket key has a signing seed.
//!
//! In production, also: no secret equals a value shipped in the repository
//! ([`shipped`]): the development secrets of `config/development.toml` and the ones
//! earlier versions wrote into `compose.yml`. Anyone who reads the repository could
//! mint admin tokens, sign webhooks and forge tickets with them.

use super::{AppEnv, DEVELOPMENT, Settings};
use secrecy::{ExposeSecret, SecretString};

/// Least length of `auth.jwt_secret` (HS256: as long as the hash).
pub const JWT_SECRET_MIN_BYTES: usize = 32;
/// Least length of `payments.webhook_secret`.
pub const WEBHOOK_SECRET_MIN_BYTES: usize = 16;

/// Secrets written into files of earlier versions of the repository: still
/// public, so still refused in production.
const FORMERLY_SHIPPED: [&str; 2] = ["change-me-in-production-please-32b", "whsec_local_dev"];

/// Every secret value the repository ships: the development layer's and
/// [`FORMERLY_SHIPPED`].
pub fn shipped() -> Vec<String> {
    let mut values: Vec<String> = FORMERLY_SHIPPED.iter().map(|s| (*s).to_owned()).collect();
    if let Ok(dev) = config::Config::builder()
        .add_source(config::File::from_str(
            DEVELOPMENT,
            config::FileFormat::Toml,
        ))
        .build()
    {
        for key in [
            "auth.jwt_secret",
            "payments.webhook_secret",
            "payments.gateway_api_key",
            "notifier.sms_auth_token",
        ] {
            values.extend(dev.get_string(key).ok());
        }
        if let Ok(providers) = dev.get_table("auth.oidc_providers") {
            values.extend(providers.into_values().filter_map(|p| {
                p.into_table()
                    .ok()?
                    .remove("client_secret")?
                    .into_string()
                    .ok()
            }));
        }
        if let Ok(seeds) = dev.get_table("notifier.ticket_signing_keys") {
            values.extend(seeds.into_values().filter_map(|v| v.into_string().ok()));
        }
    }
    values
}

/// What is wrong with the secrets of `s`, one line per problem naming its setting
/// and the environment variable that sets it. Empty: all good.
pub fn problems(s: &Settings) -> Vec<String> {
    let mut out = Vec::new();
    let jwt = s.auth.jwt_secret.expose_secret();
    if jwt.len() < JWT_SECRET_MIN_BYTES {
        out.push(format!(
            "auth.jwt_secret is {} bytes, at least {JWT_SECRET_MIN_BYTES} are needed \
             (set APP__AUTH__JWT_SECRET, e.g. to the output of `openssl rand -base64 48`)",
            jwt.len()
        ));
    }
    let webhook = s.payments.webhook_secret.expose_secret();
    if webhook.len() < WEBHOOK_SECRET_MIN_BYTES {
        out.push(format!(
            "payments.webhook_secret is {} bytes, at least {WEBHOOK_SECRET_MIN_BYTES} are needed \
             (set APP__PAYMENTS__WEBHOOK_SECRET to the secret your payment provider shows)",
            webhook.len()
        ));
    }
    let n = &s.notifier;
    if n.ticket_current_kid.is_empty() {
        out.push(
            "notifier.ticket_current_kid is not set (set APP__NOTIFIER__TICKET_CURRENT_KID \
             and the seed APP__NOTIFIER__TICKET_SIGNING_KEYS__<kid>)"
                .to_owned(),
        );
    } else if n
        .ticket_signing_keys
        .get(&n.ticket_current_kid)
        .is_none_or(|seed| seed.expose_secret().is_empty())
    {
        out.push(format!(
            "notifier.ticket_signing_keys.{kid} is not set: the current ticket key has no seed \
             (set APP__NOTIFIER__TICKET_SIGNING_KEYS__{upper})",
            kid = n.ticket_current_kid,
            upper = n.ticket_current_kid.to_ascii_uppercase(),
        ));
    }
    for (name, p) in &s.auth.oidc_providers {
        if p.client_secret.expose_secret().is_empty() {
            out.push(format!(
                "auth.oidc_providers.{name}.client_secret is not set \
                 (set APP__AUTH__OIDC_PROVIDERS__{}__CLIENT_SECRET to the secret the provider shows)",
                name.to_ascii_uppercase()
            ));
        }
    }
    if !n.sms_url.is_empty()
        && (n.sms_account_sid.is_empty() || n.sms_auth_token.expose_secret().is_empty())
    {
        out.push(
            "notifier.sms_url is set but notifier.sms_account_sid or notifier.sms_auth_token \
             is not (set APP__NOTIFIER__SMS_ACCOUNT_SID and APP__NOTIFIER__SMS_AUTH_TOKEN to \
             the provider's, or unset APP__NOTIFIER__SMS_URL)"
                .to_owned(),
        );
    }
    if s.app_env == AppEnv::Production {
        out.extend(shipped_in_use(s));
        if s.workers.fault_injection {
            out.push(
                "workers.fault_injection is a test hook (it lets anyone who reaches the \
                 metrics listener crash the runners): unset APP__WORKERS__FAULT_INJECTION"
                    .to_owned(),
            );
        }
        // Only the development layer may relax two-factor sign-in for staff.
        let roles = s.auth.mfa_roles();
        for needed in ["admin", "operator"] {
            if !roles.iter().any(|r| r == needed) {
                out.push(format!(
                    "auth.mfa_required_roles must include {needed} in production \
                     (APP__AUTH__MFA_REQUIRED_ROLES=admin,operator)"
                ));
            }
        }
    }
    out
}

/// The settings whose secret is one the repository ships.
fn shipped_in_use(s: &Settings) -> Vec<String> {
    let shipped = shipped();
    let is_shipped = |v: &SecretString| {
        let v = v.expose_secret();
        !v.is_empty() && shipped.iter().any(|k| k == v)
    };
    let mut named: Vec<(String, &SecretString)> = vec![
        ("auth.jwt_secret".into(), &s.auth.jwt_secret),
        ("payments.webhook_secret".into(), &s.payments.webhook_secret),
        (
            "payments.gateway_api_key".into(),
            &s.payments.gateway_api_key,
        ),
        ("notifier.smtp_password".into(), &s.notifier.smtp_password),
        ("notifier.sms_auth_token".into(), &s.notifier.sms_auth_token),
    ];
    for (name, p) in &s.auth.oidc_providers {
        named.push((
            format!("auth.oidc_providers.{name}.client_secret"),
            &p.client_secret,
        ));
    }
    for (kid, seed) in &s.notifier.ticket_signing_keys {
        named.push((format!("notifier.ticket_signing_keys.{kid}"), seed));
    }
    named
        .into_iter()
        .filter(|(_, v)| is_shipped(v))
        .map(|(name, _)| {
            format!(
                "{name} is a development secret shipped in the repository: set a secret of \
                 your own (or {}=development on a developer machine only)",
                super::APP_ENV_VAR
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layered(env: AppEnv) -> Settings {
        let mut b = config::Config::builder().add_source(config::File::from_str(
            super::super::DEFAULTS,
            config::FileFormat::Toml,
        ));
        if env == AppEnv::Development {
            b = b.add_source(config::File::from_str(
                DEVELOPMENT,
                config::FileFormat::Toml,
            ));
        }
        let mut s: Settings = b.build().unwrap().try_deserialize().unwrap();
        s.app_env = env;
        s
    }

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    /// Production settings with secrets of the operator's own.
    fn own_production() -> Settings {
        let mut s = layered(AppEnv::Production);
        s.auth.jwt_secret = secret(&"j".repeat(48));
        s.payments.webhook_secret = secret("whsec_0123456789abcdef");
        s.payments.gateway_api_key = secret("sk_live_abc");
        s.notifier.ticket_current_kid = "k2026".into();
        s.notifier
            .ticket_signing_keys
            .insert("k2026".into(), secret(&"A".repeat(43)));
        s
    }

    #[test]
    fn development_accepts_its_shipped_secrets() {
        assert_eq!(
            problems(&layered(AppEnv::Development)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn production_without_secrets_names_every_missing_one() {
        let p = problems(&layered(AppEnv::Production)).join("\n");
        assert!(p.contains("auth.jwt_secret is 0 bytes"), "{p}");
        assert!(p.contains("payments.webhook_secret is 0 bytes"), "{p}");
        assert!(p.contains("notifier.ticket_current_kid is not set"), "{p}");
    }

    #[test]
    fn production_accepts_secrets_of_its_own() {
        assert_eq!(problems(&own_production()), Vec::<String>::new());
    }

    #[test]
    fn only_development_may_relax_two_factor_sign_in_for_staff() {
        assert!(layered(AppEnv::Development).auth.mfa_roles().is_empty());
        assert_eq!(
            layered(AppEnv::Production).auth.mfa_roles(),
            ["admin", "operator"]
        );
        let mut s = own_production();
        s.auth.mfa_required_roles = vec!["admin".into(), " ".into()];
        let p = problems(&s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("auth.mfa_required_roles must include operator"));
    }

    #[test]
    fn production_refuses_fault_injection_and_development_allows_it() {
        let mut s = own_production();
        s.workers.fault_injection = true;
        let p = problems(&s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("workers.fault_injection is a test hook"),
            "{p:?}"
        );
        let mut dev = layered(AppEnv::Development);
        dev.workers.fault_injection = true;
        assert_eq!(problems(&dev), Vec::<String>::new());
    }

    #[test]
    fn production_refuses_each_shipped_secret_and_names_its_setting() {
        let dev = layered(AppEnv::Development);
        let mut s = own_production();
        s.auth.jwt_secret = dev.auth.jwt_secret.clone();
        let p = problems(&s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("auth.jwt_secret is a development secret"));

        let mut s = own_production();
        s.auth.jwt_secret = secret("change-me-in-production-please-32b");
        s.payments.webhook_secret = dev.payments.webhook_secret.clone();
        s.payments.gateway_api_key = dev.payments.gateway_api_key.clone();
        let p = problems(&s).join("\n");
        for name in [
            "auth.jwt_secret",
            "payments.webhook_secret",
            "payments.gateway_api_key",
        ] {
            assert!(
                p.contains(&format!("{name} is a development secret")),
                "{p}"
            );
        }

        // The bundled SMS provider's token, and an SMS provider without credentials.
        let mut s = own_production();
        s.notifier.sms_url = "https://api.twilio.com".into();
        s.notifier.sms_account_sid = dev.notifier.sms_account_sid.clone();
        s.notifier.sms_auth_token = dev.notifier.sms_auth_token.clone();
        let p = problems(&s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("notifier.sms_auth_token is a development secret"));
        s.notifier.sms_auth_token = secret("");
        let p = problems(&s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("notifier.sms_url is set but"), "{p:?}");

        // A shipped ticket seed kept under any kid (not only the current one) would
        // still verify forged tickets.
        let mut s = own_production();
        s.notifier.ticket_signing_keys.insert(
            "old".into(),
            dev.notifier.ticket_signing_keys["dev1"].clone(),
        );
        let p = problems(&s);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("notifier.ticket_signing_keys.old is a development secret"));
    }

    #[test]
    fn weak_secrets_are_refused_in_every_environment() {
        for env in [AppEnv::Development, AppEnv::Production] {
            let mut s = own_production();
            s.app_env = env;
            s.auth.jwt_secret = secret("x");
            s.payments.webhook_secret = secret("");
            s.notifier.ticket_current_kid = "missing".into();
            let p = problems(&s).join("\n");
            assert!(p.contains("auth.jwt_secret is 1 bytes, at least 32"), "{p}");
            assert!(
                p.contains("payments.webhook_secret is 0 bytes, at least 16"),
                "{p}"
            );
            assert!(
                p.contains("notifier.ticket_signing_keys.missing is not set"),
                "{p}"
            );
        }
    }

    #[test]
    fn a_provider_secret_is_required_and_the_shipped_one_refused_in_production() {
        let dev = layered(AppEnv::Development);
        let local = dev
            .auth
            .oidc_providers
            .get("local")
            .expect("the local provider");
        let mut s = own_production();
        s.auth.oidc_providers.insert("local".into(), local.clone());
        let p = problems(&s).join("\n");
        assert!(
            p.contains("auth.oidc_providers.local.client_secret is a development secret"),
            "{p}"
        );
        let mut empty = local.clone();
        empty.client_secret = secret("");
        s.auth.oidc_providers.insert("local".into(), empty);
        let p = problems(&s).join("\n");
        assert!(
            p.contains("auth.oidc_providers.local.client_secret is not set"),
            "{p}"
        );
        let mut own = local.clone();
        own.client_secret = secret("a-secret-of-our-own");
        s.auth.oidc_providers.insert("local".into(), own);
        assert_eq!(problems(&s), Vec::<String>::new());
    }

    #[test]
    fn app_env_parses_only_its_two_values() {
        assert_eq!(
            "development".parse::<AppEnv>().unwrap(),
            AppEnv::Development
        );
        assert_eq!(
            " Production ".parse::<AppEnv>().unwrap(),
            AppEnv::Production
        );
        assert!("prod".parse::<AppEnv>().is_err());
        assert!("".parse::<AppEnv>().is_err());
    }
}
