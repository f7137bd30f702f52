//! Typed settings: defaults compiled in from `config/default.toml`, then (only with
//! `APP_ENV=development`) the development secrets of `config/development.toml`, then
//! the file named by `APP_CONFIG`, then `APP__SECTION__KEY` environment variables,
//! then the conventional `DATABASE_URL` / `AMQP_URL` / `REDIS_URL` where the `APP__`
//! form is unset. [`Settings::load`] then checks the secrets ([`secrets`]): a process
//! never starts with a missing, weak or (in production) publicly known one.

pub mod env;
pub mod secrets;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

const DEFAULTS: &str = include_str!("../../config/default.toml");
/// The well-known development secrets (see [`secrets::shipped`]).
const DEVELOPMENT: &str = include_str!("../../config/development.toml");

/// The environment variable that names the [`AppEnv`].
pub const APP_ENV_VAR: &str = "APP_ENV";

/// What kind of deployment a process belongs to (`APP_ENV`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppEnv {
    /// A developer's machine, the tests, the compose trial stack: the shipped
    /// development secrets are layered in and accepted.
    Development,
    /// Anything else, and the default: every secret must be set, and none may be a
    /// value shipped in the repository.
    #[default]
    Production,
}

impl AppEnv {
    /// `APP_ENV` from the environment (unset: production).
    pub fn from_env() -> Result<Self, SettingsError> {
        match std::env::var(APP_ENV_VAR) {
            Err(std::env::VarError::NotPresent) => Ok(Self::Production),
            Ok(v) => v.parse(),
            Err(e) => Err(SettingsError::AppEnv(format!("{e}"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AppEnv::Development => "development",
            AppEnv::Production => "production",
        }
    }
}

impl std::str::FromStr for AppEnv {
    type Err = SettingsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" => Ok(Self::Development),
            "production" => Ok(Self::Production),
            other => Err(SettingsError::AppEnv(format!(
                "{other:?} is neither \"development\" nor \"production\""
            ))),
        }
    }
}

/// Why a process cannot start with these settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{APP_ENV_VAR}: {0}")]
    AppEnv(String),
    /// Every secret problem found, one per line, each naming its setting.
    #[error("refusing to start ({APP_ENV_VAR}={env}):\n  - {}", .problems.join("\n  - "))]
    Secrets {
        env: &'static str,
        problems: Vec<String>,
    },
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Settings {
    /// Set from `APP_ENV` by [`Settings::load`], never from a file.
    #[serde(skip)]
    pub app_env: AppEnv,
    pub database: DatabaseSettings,
    pub amqp: AmqpSettings,
    pub redis: RedisSettings,
    pub auth: AuthSettings,
    pub ingress: IngressSettings,
    pub workers: WorkerSettings,
    pub payments: PaymentSettings,
    pub telemetry: TelemetrySettings,
    pub notifier: NotifierSettings,
    pub catalog: CatalogSettings,
    pub rate_limit: RateLimitSettings,
    pub door: DoorSettings,
}

/// Theater scopes and check-in at the door.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DoorSettings {
    /// How long ingress trusts a looked-up theater scope of an account (0 = never):
    /// a revoked grant stops working at most this late.
    pub scope_cache_ttl_ms: u64,
    /// Most check-ins in one `POST /v1/checkins/batch`.
    pub batch_items_max: usize,
    /// An offline scan may claim a `scanned_at` at most this far past the server's
    /// clock (a scanner's clock runs a little fast); later ones are `invalid`.
    pub scan_clock_skew_max_secs: u64,
}

/// The notifier: SMTP server, sender, e-ticket keys and send retries.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct NotifierSettings {
    pub enabled: bool,
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `none` (plain, local sinks), `starttls` (required) or `tls` (implicit TLS).
    pub smtp_tls: String,
    pub smtp_username: String,
    #[serde(serialize_with = "env::expose")]
    pub smtp_password: SecretString,
    pub smtp_timeout_ms: u64,
    pub from: String,
    /// Unacked events per notifier consumer.
    pub prefetch: u16,
    /// Events handled at once (at most `prefetch`).
    pub concurrency: usize,
    /// Delay before a failed event is requeued: this, doubled per redelivery...
    pub requeue_initial_ms: u64,
    /// ...up to this.
    pub requeue_max_ms: u64,
    /// In-process attempts of one send on a transient failure, with backoff.
    pub send_attempts_max: usize,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// Key id of the key that signs new e-tickets.
    pub ticket_current_kid: String,
    /// 32-byte Ed25519 secret seeds (base64) by key id.
    #[serde(default, serialize_with = "env::expose_all")]
    pub ticket_signing_keys: std::collections::BTreeMap<String, SecretString>,
    /// Retired public keys (base64) by key id: old tickets still verify.
    #[serde(default)]
    pub ticket_public_keys: std::collections::BTreeMap<String, String>,
    /// The SMS provider's base URL (Twilio's Messages API shape; empty: no SMS).
    pub sms_url: String,
    /// The provider's account sid (the basic-auth user and part of the path).
    pub sms_account_sid: String,
    /// The provider's auth token (the basic-auth password).
    #[serde(serialize_with = "env::expose")]
    pub sms_auth_token: SecretString,
    /// The sender number (E.164) or name.
    #[serde(deserialize_with = "env::number_or_name")]
    pub sms_from: String,
    pub sms_timeout_ms: u64,
    /// How long before its show a confirmed booking gets its reminder (by email
    /// and/or SMS, as the buyer's `preferences.notify` says); 0: no reminders.
    pub reminder_before_secs: u64,
    /// How often the workers look for shows whose reminders are due.
    pub reminder_sweep_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PaymentSettings {
    pub gateway_url: String,
    #[serde(serialize_with = "env::expose")]
    pub gateway_api_key: SecretString,
    pub gateway_timeout_ms: u64,
    pub gateway_max_attempts: usize,
    #[serde(serialize_with = "env::expose")]
    pub webhook_secret: SecretString,
    pub webhook_tolerance_secs: i64,
    pub cancellation_fee_permille: u16,
    /// Unacked messages per saga consumer.
    pub saga_prefetch: u16,
    /// Saga messages handled at once (at most `saga_prefetch`).
    pub saga_concurrency: usize,
    /// Delay before a failed saga message is requeued: this, doubled per
    /// redelivery...
    pub saga_requeue_initial_ms: u64,
    /// ...up to this.
    pub saga_requeue_max_ms: u64,
    pub pending_grace_secs: u64,
    /// A pending payment is asked about at the gateway this long after its start
    /// (whether or not its webhook came), then on a doubling backoff up to
    /// `poll_max_interval_ms`.
    pub poll_first_ms: u64,
    pub poll_max_interval_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub acquire_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AmqpSettings {
    pub url: String,
    pub prefix: String,
    pub partitions: u16,
    pub delivery_limit: u32,
    pub publish_confirm_timeout_ms: u64,
    /// On how many nodes of a cluster each new quorum queue gets a replica (0: the
    /// broker's default, every node); see [`crate::amqp::QueueShape`].
    #[serde(default)]
    pub quorum_initial_group_size: u16,
}

fn default_master_name() -> String {
    "booking".to_owned()
}

impl AmqpSettings {
    /// How the pipeline's queues are declared.
    pub fn queue_shape(&self) -> crate::amqp::QueueShape {
        crate::amqp::QueueShape {
            delivery_limit: self.delivery_limit,
            quorum_group_size: self.quorum_initial_group_size,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RedisSettings {
    pub url: String,
    /// Sentinels' addresses (`host:port`, comma-separated); when set, `url` is not
    /// used and the clients connect to the primary they name for `master_name`.
    #[serde(default)]
    pub sentinels: String,
    #[serde(default = "default_master_name")]
    pub master_name: String,
    /// A PEM file of the certificate authority to trust for `rediss://` (the url,
    /// or Sentinels written `rediss://host:port`) instead of the public ones.
    #[serde(default)]
    pub tls_ca_path: String,
    pub key_prefix: String,
    pub queued_marker_ttl_secs: u64,
    /// How long a show's live seat map lives after its last write (dead shows expire).
    pub seatmap_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AuthSettings {
    #[serde(serialize_with = "env::expose")]
    pub jwt_secret: SecretString,
    /// Key material of the TOTP secrets at rest; empty: derived from `jwt_secret`
    /// (then rotating that secret means enrolled accounts enrol again).
    #[serde(serialize_with = "env::expose")]
    pub mfa_encryption_key: SecretString,
    pub access_token_ttl_secs: u64,
    /// How long a refresh token may be exchanged for a new pair.
    pub refresh_token_ttl_secs: u64,
    /// Whether paying (a booking with a payment method, or `POST .../payment`)
    /// needs a verified email (`403 email_not_verified` otherwise).
    pub require_verified_email_to_pay: bool,
    /// Roles that must sign in with a second factor: without one they are refused
    /// on the admin and ops routes (`403 mfa_enrollment_required`) but can still
    /// sign in and enrol. Production refuses to start without `admin` and `operator`.
    pub mfa_required_roles: Vec<String>,
    /// Lifetime of the emailed verification link.
    pub email_verification_ttl_secs: u64,
    /// Lifetime of the emailed password-reset link.
    pub password_reset_ttl_secs: u64,
    /// How long the second step of a login with MFA may follow the password, and
    /// how many codes it may try.
    pub mfa_challenge_ttl_secs: u64,
    pub mfa_challenge_attempts_max: i32,
    /// Phone verification: a code's lifetime, its tries, and codes sent per account
    /// per hour.
    pub phone_code_ttl_secs: u64,
    pub phone_code_attempts_max: i32,
    pub phone_codes_per_hour: i32,
    /// Sign in with a provider (OpenID Connect): the providers by name (the name is
    /// the `{provider}` of `/v1/auth/oidc/{provider}/...`).
    #[serde(default)]
    pub oidc_providers: std::collections::BTreeMap<String, OidcProvider>,
    /// Where a provider sign-in may send the browser back to with its tokens
    /// (`redirect_uri` of `/start`), exact matches only: anything else is refused,
    /// so a sign-in link cannot hand tokens to another site.
    pub oidc_redirect_uris: Vec<String>,
    /// How long a started provider sign-in may take to come back (its state, nonce
    /// and PKCE verifier are kept in Redis that long, and used once).
    pub oidc_state_ttl_secs: u64,
}

/// An OpenID provider the platform accepts sign-ins from.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OidcProvider {
    /// The issuer URL; its `/.well-known/openid-configuration` is read.
    pub issuer: String,
    pub client_id: String,
    #[serde(serialize_with = "env::expose")]
    pub client_secret: SecretString,
    /// What the sign-in button says ("Sign in with <display_name>").
    #[serde(default)]
    pub display_name: String,
}

impl AuthSettings {
    /// What the TOTP secrets at rest are sealed with: `mfa_encryption_key`, or
    /// `jwt_secret` when that is empty.
    pub fn mfa_key_material(&self) -> Vec<u8> {
        use secrecy::ExposeSecret;
        let own = self.mfa_encryption_key.expose_secret();
        if own.is_empty() {
            self.jwt_secret.expose_secret().as_bytes().to_vec()
        } else {
            own.as_bytes().to_vec()
        }
    }

    /// The roles of [`AuthSettings::mfa_required_roles`], trimmed, without blanks
    /// (an empty environment variable means none).
    pub fn mfa_roles(&self) -> Vec<String> {
        self.mfa_required_roles
            .iter()
            .map(|r| r.trim().to_ascii_lowercase())
            .filter(|r| !r.is_empty())
            .collect()
    }
}

/// Scheduling rules of the catalog.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CatalogSettings {
    /// Minutes a screen stays busy after a show ends (cleaning, ads); a show may not
    /// start on the screen before that.
    pub cleaning_buffer_min: u32,
    /// How long ingress reuses a computed movie list or search answer (0 = never).
    pub list_cache_ttl_ms: u64,
    /// How long ingress reuses the set of movies with upcoming shows per city and day
    /// (0 = never).
    pub availability_ttl_ms: u64,
}

/// The shared request budget (Redis-backed GCRA, one budget across every ingress).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Requests per minute per caller (user, or client IP when anonymous), by route
    /// class: `default`, `auth`, `bookings`, `search`.
    pub per_minute: std::collections::BTreeMap<String, u32>,
    /// Roles never limited (the load generator runs with an operator token).
    pub exempt_roles: Vec<String>,
    /// Take the client IP from the first `X-Forwarded-For` entry (only behind a
    /// proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Longest wait for Redis's verdict; past it the request is served unlimited
    /// (fail open: a slow or absent Redis must not take the API down with it).
    pub timeout_ms: u64,
    /// Wrong passwords one account takes per hour, from any number of IPs (a burst
    /// of this many, refilled evenly); past it, logins to it answer `429`.
    pub failed_logins_per_hour: u32,
    /// Wrong passwords one client IP makes per hour, over every account (a burst of
    /// this many, refilled evenly); past it, logins from it answer `429`.
    pub failed_logins_per_ip_per_hour: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct IngressSettings {
    pub listen: String,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    /// A connection must send a complete request head within this long of opening
    /// and of its previous response (so also the idle keep-alive timeout).
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line and headers); larger ones get `431`.
    pub header_bytes_max: usize,
    /// Most open connections; at the cap, new ones wait in the accept backlog.
    pub connections_max: usize,
    /// Where `/metrics` (and `/healthz`) are served, apart from the API ("" = off):
    /// the API's own port answers 404 for `/metrics`.
    pub metrics_listen: String,
    pub hold_ttl_secs: u64,
    pub show_cache_ttl_secs: u64,
    pub poll_interval_secs: u64,
    /// Origins (e.g. `https://app.example.com`) whose browser apps may call the API
    /// (CORS). Empty: no CORS headers; the web app needs none (same origin).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// After SIGTERM: how long `/readyz` answers 503 (`draining`) while requests are
    /// still served, before the listener closes and in-flight requests drain, so a
    /// load balancer or Kubernetes stops routing here first.
    pub drain_delay_ms: u64,
    /// The web app's address as people reach it (links in account emails), e.g.
    /// `https://tickets.example.com`. Empty: `http://` and the `listen` address.
    #[serde(default)]
    pub public_base_url: String,
    /// HTTPS on `listen`: the certificate chain (leaf first) and its private key, PEM
    /// files. Both empty: plain HTTP (behind a load balancer that terminates TLS on
    /// the same host). One without the other refuses to start.
    #[serde(default)]
    pub tls_cert_path: String,
    #[serde(default)]
    pub tls_key_path: String,
}

impl IngressSettings {
    /// `https` when a certificate is configured, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert_path.trim().is_empty() {
            "http"
        } else {
            "https"
        }
    }

    /// [`IngressSettings::public_base_url`] without a trailing slash, or the listen
    /// address when unset.
    pub fn public_url(&self) -> String {
        let url = self.public_base_url.trim().trim_end_matches('/');
        if url.is_empty() {
            format!("{}://{}", self.scheme(), self.listen)
        } else {
            url.to_owned()
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct WorkerSettings {
    pub partitions: Vec<u16>,
    pub prefetch: u16,
    pub batch_size_max: usize,
    pub show_idle_secs: u64,
    pub expiry_sweep_ms: u64,
    /// Days `processed_messages` and `payment_webhooks` rows are kept.
    pub retention_days: u32,
    pub retention_sweep_secs: u64,
    pub outbox_relay_ms: u64,
    pub outbox_grace_ms: u64,
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    pub shutdown_grace_secs: u64,
    pub metrics_listen: String,
    /// Serve `GET`/`POST /faults` on the metrics listener: the end-to-end tests arm
    /// injected failures (a runner crash before or after its commit, a failed saga
    /// send, a failed notifier record) in a running `workers` process through it.
    /// [`Settings::load`] refuses it in production.
    #[serde(default)]
    pub fault_injection: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TelemetrySettings {
    pub format: String,
    pub filter: String,
    /// Base URL of an OpenTelemetry collector's OTLP/HTTP receiver (e.g.
    /// `http://127.0.0.1:4318`); spans are exported to `{url}/v1/traces` as JSON.
    /// Empty: no export.
    pub otlp_endpoint: String,
}

/// `APP__SECTION__KEY_FILE=/path` sets `section.key` to the file's contents (without
/// its final newline), over every other source: how secret stores hand secrets to a
/// process (Docker and Kubernetes secrets mounted as files), so a secret need not sit
/// in the environment. Yields (variable, setting key, path).
fn secret_files(
    vars: impl Iterator<Item = (String, String)>,
) -> impl Iterator<Item = (String, String, String)> {
    vars.filter_map(|(var, path)| {
        let key = var.strip_prefix("APP__")?.strip_suffix("_FILE")?;
        let key = key.to_lowercase().replace("__", ".");
        Some((var, key, path))
    })
}

impl Settings {
    /// Loads the layered settings of a process in the environment `APP_ENV` names
    /// and checks its secrets: what every process calls at startup.
    pub fn load() -> Result<Self, SettingsError> {
        Self::load_for(AppEnv::from_env()?)
    }

    /// Like [`Settings::load`], in `env` whatever `APP_ENV` says (the test harness
    /// runs in development).
    pub fn load_for(env: AppEnv) -> Result<Self, SettingsError> {
        Self::load_from(env, std::env::vars())
    }

    /// Like [`Settings::load_for`], with `vars` standing in for the process
    /// environment (what a parent hands a child, see [`env::to_vars`]).
    pub fn load_from(
        env: AppEnv,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut s = Self::layered(env, vars.into_iter().collect())?;
        s.app_env = env;
        s.check_secrets()?;
        Ok(s)
    }

    /// Every secret problem of these settings in their [`AppEnv`], all at once.
    pub fn check_secrets(&self) -> Result<(), SettingsError> {
        let problems = secrets::problems(self);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SettingsError::Secrets {
                env: self.app_env.as_str(),
                problems,
            })
        }
    }

    fn layered(
        env: AppEnv,
        vars: std::collections::HashMap<String, String>,
    ) -> Result<Self, config::ConfigError> {
        let mut b = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if env == AppEnv::Development {
            b = b.add_source(config::File::from_str(
                DEVELOPMENT,
                config::FileFormat::Toml,
            ));
        }
        if let Some(path) = vars.get("APP_CONFIG") {
            b = b.add_source(config::File::with_name(path));
        }
        b = b.add_source(
            config::Environment::with_prefix("APP")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("workers.partitions")
                .with_list_parse_key("rate_limit.exempt_roles")
                .with_list_parse_key("ingress.cors_origins")
                .with_list_parse_key("auth.mfa_required_roles")
                .with_list_parse_key("auth.oidc_redirect_uris")
                .try_parsing(true)
                .source(Some(vars.clone().into_iter().collect())),
        );
        for (var, key, path) in secret_files(vars.clone().into_iter()) {
            let value = std::fs::read_to_string(&path).map_err(|e| {
                config::ConfigError::Message(format!("{var}: cannot read {path}: {e}"))
            })?;
            b = b.set_override(key, value.trim_end_matches(['\n', '\r']))?;
        }
        for (plain, key, app) in [
            ("DATABASE_URL", "database.url", "APP__DATABASE__URL"),
            ("AMQP_URL", "amqp.url", "APP__AMQP__URL"),
            ("REDIS_URL", "redis.url", "APP__REDIS__URL"),
        ] {
            if !vars.contains_key(app)
                && let Some(v) = vars.get(plain)
            {
                b = b.set_override(key, v.as_str())?;
            }
        }
        b.build()?.try_deserialize()
    }

    /// The RabbitMQ names of this deployment.
    pub fn topology(&self) -> contracts::Topology {
        contracts::Topology::new(self.amqp.prefix.clone(), self.amqp.partitions)
    }
}

#[cfg(test)]
mod tests;
