//! The end-to-end harness: `spawn_system()` starts the real `ingress` and `workers`
//! binaries as child processes (configured with `APP__...` variables as in
//! production, on port 0; see [`process`]) against the real PostgreSQL, RabbitMQ and
//! Redis, with a fresh database, queue prefix and key prefix per test, so tests run
//! in parallel. The local payment gateway and SMTP sink (stand-ins for outside
//! systems) run inside the test.
//!
//! Services come from `DATABASE_URL`, `AMQP_URL`, `REDIS_URL` (defaults: the local
//! ports). When one does not answer, the harness fails and names it; it never skips.

mod children;
pub mod cluster;
mod db;
mod fixtures;
mod leftovers;
mod mail;
mod money;
pub mod oidc;
pub mod openapi;
pub mod process;
pub mod proxy;
pub mod tls;
mod urls;
pub use children::{Faults, IngressHandle, WorkerHandle, start_ingress};
pub use db::TestDb;
pub use urls::{database_on, with_database, with_port};

use auth::{Role, TokenKeys};
use contracts::UserId;
use leftovers::Leftovers;
use mail::{start_sms_provider, start_smtp_sink};
use platform::Settings;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the tests' waits look again.
pub const POLL: Duration = Duration::from_millis(50);

/// Longest wait for a booking to reach a state (the sequencer, the saga and the
/// gateway on a loaded machine).
pub const BOOKING_WAIT: Duration = Duration::from_secs(30);

/// Partition count in tests: small, so topology declaration is quick.
pub const TEST_PARTITIONS: u16 = 2;

/// The rate-limit budgets (the /v1 one and auth's) in tests unless a test lowers them: the
/// limiter stays on (so every test goes through it) but no test that sends
/// thousands of requests per user comes near it.
pub const TEST_RATE_LIMIT_PER_MINUTE: u32 = 1_000_000;

/// Options of a test system.
#[derive(Clone)]
pub struct SystemOptions {
    pub workers: usize,
    pub hold_ttl_secs: u64,
    pub expiry_sweep_ms: u64,
    /// Database URL the workers use (defaults to the test database directly); set
    /// to go through a [`proxy::TcpProxy`].
    pub workers_db_port: Option<u16>,
    /// Port of the Redis the workers use (defaults to the real one); set to go
    /// through a [`proxy::TcpProxy`].
    pub workers_redis_port: Option<u16>,
    /// The bundled local payment gateway the system talks to (a real HTTP server
    /// sending signed webhooks to ingress).
    pub gateway: local_gateway::LocalGatewayConfig,
    /// The local SMTP sink every test gets: refuse this many transactions with 451
    /// first, and reject recipients containing this text with 550.
    pub smtp_refuse_first: u32,
    pub smtp_reject_pattern: Option<String>,
    /// Requests per minute per caller in every budget (see
    /// [`TEST_RATE_LIMIT_PER_MINUTE`]).
    pub rate_limit_per_minute: u32,
    /// Whether the gateway sends its webhooks to ingress (off: every one is lost).
    pub deliver_webhooks: bool,
    /// `auth.mfa_required_roles`. Tests run with the development settings, which
    /// relax it (none), so staff tokens of the harness and password logins of staff
    /// work as before; a test of the policy sets it.
    pub mfa_required_roles: Vec<String>,
    /// `auth.require_verified_email_to_pay`.
    pub require_verified_email_to_pay: bool,
    /// The processes' log filter (`telemetry.filter`; default: `APP__TELEMETRY__FILTER`
    /// of the test's environment, `warn` in scripts/test.sh).
    pub log_filter: Option<String>,
    /// `telemetry.otlp_endpoint` of the processes (default: none).
    pub otlp_endpoint: Option<String>,
    /// The local OpenID provider every test gets as sign-in provider `local`.
    pub oidc: local_oidc::ProviderConfig,
    /// Applied last to the test's settings (e.g. the nodes of a cluster the test
    /// started itself as `amqp.url`).
    pub settings_override: Option<SettingsOverride>,
    /// `notifier.reminder_before_secs`: 0 (no reminders) unless a test of them sets
    /// it, so that the shows other tests make starting within hours send no
    /// reminders those tests would have to count.
    pub reminder_before_secs: u64,
}

/// A change to a test's settings (see [`SystemOptions::settings_override`]).
pub type SettingsOverride = Arc<dyn Fn(&mut Settings) + Send + Sync>;

impl Default for SystemOptions {
    fn default() -> Self {
        Self {
            workers: 1,
            hold_ttl_secs: 480,
            expiry_sweep_ms: 500,
            workers_db_port: None,
            workers_redis_port: None,
            gateway: local_gateway::LocalGatewayConfig {
                ok_delay_ms: 10,
                slow_delay_ms: 300,
                hang_ms: 1500,
                ..Default::default()
            },
            smtp_refuse_first: 0,
            smtp_reject_pattern: None,
            rate_limit_per_minute: TEST_RATE_LIMIT_PER_MINUTE,
            deliver_webhooks: true,
            mfa_required_roles: vec![],
            require_verified_email_to_pay: false,
            log_filter: None,
            otlp_endpoint: None,
            oidc: local_oidc::ProviderConfig::default(),
            settings_override: None,
            reminder_before_secs: 0,
        }
    }
}

pub struct TestSystem {
    pub settings: Settings,
    pub base_url: String,
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub tokens: TokenKeys,
    pub workers: Vec<WorkerHandle>,
    pub db_name: String,
    /// Base URL of the local payment gateway.
    pub gateway_url: String,
    /// The folder the test's SMTP sink stores mail in, and what the sink did.
    pub mail_dir: std::path::PathBuf,
    pub smtp: Arc<smtp_sink::SinkStats>,
    /// The test's local SMS provider: the messages it took, and its failures to order.
    pub sms: Arc<smtp_sink::sms::SmsState>,
    /// The Redis URL workers get (see [`SystemOptions::workers_redis_port`]).
    pub workers_redis_url: String,
    /// Where ingress serves `/metrics` (its own listener, not the API's port).
    pub ingress_metrics_addr: std::net::SocketAddr,
    /// The ingress process.
    pub ingress: IngressHandle,
    /// Stops what runs inside the test (the gateway, the SMTP sink).
    stop: CancellationToken,
    /// The test's database and queues; last, so the processes are gone first.
    leftovers: Leftovers,
}

/// Fails clearly when a service does not answer.
async fn require_services(s: &Settings) {
    let pg = sqlx::PgPool::connect(&with_database(&s.database.url, "postgres")).await;
    assert!(
        pg.is_ok(),
        "PostgreSQL is not reachable at {} ({:?}): start it (scripts/services.sh ensure) or set DATABASE_URL",
        s.database.url,
        pg.err()
    );
    let amqp = platform::amqp::connect(&s.amqp.url, "test-probe").await;
    assert!(
        amqp.is_ok(),
        "RabbitMQ is not reachable at {} ({:?}): start it (scripts/services.sh ensure, which also restarts a node that listens but answers no handshake) or set AMQP_URL",
        s.amqp.url,
        amqp.err()
    );
    let redis = platform::cache::connect(&s.redis).await;
    assert!(
        redis.is_ok(),
        "Redis is not reachable at {} ({:?}): start it (scripts/services.sh ensure) or set REDIS_URL",
        s.redis.url,
        redis.err()
    );
}

/// The settings of a new test: its own database, queue prefix and key prefix.
pub async fn test_settings(opts: &SystemOptions) -> (Settings, String) {
    let mut s = Settings::load_for(platform::settings::AppEnv::Development).expect("settings load");
    require_services(&s).await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let db_name = format!("test_{}", &id[..16]);
    s.database.url = with_database(&s.database.url, &db_name);
    s.database.max_connections = 8;
    s.amqp.prefix = format!("t{}.", &id[..12]);
    s.amqp.partitions = TEST_PARTITIONS;
    s.redis.key_prefix = format!("t{}:", &id[..12]);
    s.ingress.listen = "127.0.0.1:0".into();
    s.ingress.hold_ttl_secs = opts.hold_ttl_secs;
    s.ingress.show_cache_ttl_secs = 1;
    // Tests look for rows they just added: no memoised movie availability.
    s.catalog.availability_ttl_ms = 0;
    s.workers.metrics_listen = "127.0.0.1:0".into();
    s.ingress.metrics_listen = "127.0.0.1:0".into();
    s.workers.expiry_sweep_ms = opts.expiry_sweep_ms;
    s.workers.outbox_relay_ms = 200;
    s.workers.outbox_grace_ms = 500;
    s.workers.retry_max_ms = 1000;
    s.workers.shutdown_grace_secs = 5;
    s.payments.gateway_timeout_ms = 500;
    s.payments.pending_grace_secs = 0;
    s.notifier.reminder_before_secs = opts.reminder_before_secs;
    s.notifier.reminder_sweep_ms = 200;
    s.auth.mfa_required_roles = opts.mfa_required_roles.clone();
    s.auth.require_verified_email_to_pay = opts.require_verified_email_to_pay;
    s.rate_limit.enabled = true;
    s.rate_limit.per_minute = ["default", "auth"]
        .into_iter()
        .map(|class| (class.to_owned(), opts.rate_limit_per_minute))
        .collect();
    if let Some(filter) = &opts.log_filter {
        s.telemetry.filter.clone_from(filter);
    }
    if let Some(endpoint) = &opts.otlp_endpoint {
        s.telemetry.otlp_endpoint.clone_from(endpoint);
    }
    if let Some(change) = &opts.settings_override {
        change(&mut s);
    }
    (s, db_name)
}

/// The one wait of the tests: calls `attempt` every `every` until it gives `Ok`, for
/// at most `max`; at the deadline, the last `Err` it gave.
pub async fn poll<T, E, F, Fut>(max: Duration, every: Duration, mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + max;
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(every).await,
        }
    }
}

/// Starts a system: migrated database, topology, ingress and `opts.workers` workers.
pub async fn spawn_system(opts: SystemOptions) -> TestSystem {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (settings, db_name) = test_settings(&opts).await;
    platform::db::migrate(&settings.database.url)
        .await
        .expect("migrate test database");
    let pool = platform::db::pool(&settings.database).expect("pool");
    let stop = CancellationToken::new();
    // The sink first: ingress sends account emails (verification, reset) to it too.
    let mut settings = settings;
    let (mail_dir, smtp) = start_smtp_sink(&opts, &mut settings, &stop).await;
    let sms = start_sms_provider(&mut settings, &stop).await;
    oidc::start_oidc_provider(opts.oidc.clone(), &mut settings, &stop).await;
    // The gateway is bound first (ingress asks it too, to reconcile) and sends its
    // webhooks to ingress once ingress is bound.
    let mut gw = opts.gateway.clone();
    gw.webhook_secret =
        secrecy::ExposeSecret::expose_secret(&settings.payments.webhook_secret).to_owned();
    gw.api_key =
        secrecy::ExposeSecret::expose_secret(&settings.payments.gateway_api_key).to_owned();
    let gateway = local_gateway::LocalGateway::build(gw)
        .await
        .expect("build local gateway");
    let gateway_url = gateway.base_url();
    settings.payments.gateway_url = gateway_url.clone();
    let ingress = start_ingress(&settings).await;
    let base_url = ingress.base_url();
    let ingress_metrics_addr = ingress.metrics_addr.expect("ingress serves /metrics");
    let gateway = gateway
        .webhooks_to(
            opts.deliver_webhooks
                .then(|| format!("{base_url}/v1/payments/webhook")),
        )
        .expect("webhooks to ingress");
    tokio::spawn(gateway.run_until_stopped(stop.clone().cancelled_owned()));
    let tokens = TokenKeys::new(&settings.auth.jwt_secret, 3600);
    let workers_redis_url = match opts.workers_redis_port {
        Some(port) => with_port(&settings.redis.url, port),
        None => settings.redis.url.clone(),
    };
    let leftovers = Leftovers {
        amqp_url: settings.amqp.url.clone(),
        topology: settings.topology(),
        db_url: settings.database.url.clone(),
        db_name: db_name.clone(),
        removed: false,
    };
    let mut sys = TestSystem {
        settings,
        base_url,
        pool,
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            // Shorter than ingress's idle keep-alive (`header_read_timeout_ms`, 10 s):
            // a client that reuses a connection the server is closing at that very
            // moment gets no answer (the fuzzer saw it once in 7,700 requests).
            .pool_idle_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
        tokens,
        workers: vec![],
        db_name,
        gateway_url,
        mail_dir,
        smtp,
        sms,
        workers_redis_url,
        ingress_metrics_addr,
        ingress,
        stop,
        leftovers,
    };
    for _ in 0..opts.workers {
        let w = sys
            .start_worker(opts.workers_db_port, Faults::default())
            .await;
        sys.workers.push(w);
    }
    sys
}

impl TestSystem {
    /// A customer with a token.
    pub async fn customer(&self, n: usize) -> (UserId, String) {
        let id = UserId::new_v7();
        sqlx::query(
            "insert into users (id, email, password_hash, name, role) values ($1, $2, 'x', 'Test', 'customer')",
        )
        .bind(id.0)
        .bind(format!("user{n}-{}@test.local", id.0.simple()))
        .execute(&self.pool)
        .await
        .expect("insert user");
        (id, self.tokens.mint(id, Role::Customer).expect("token"))
    }

    /// Publishes one raw message with a publisher confirm (a poison or hand-made
    /// command, a dead letter), straight to `exchange` with routing key `key`.
    pub async fn publish_raw(
        &self,
        exchange: &str,
        key: &str,
        body: &[u8],
        id: &str,
        headers: lapin::types::FieldTable,
    ) {
        use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
        let conn = platform::amqp::connect(&self.settings.amqp.url, "test")
            .await
            .expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirm select");
        let confirm = ch
            .basic_publish(
                exchange.into(),
                key.into(),
                BasicPublishOptions::default(),
                body,
                platform::amqp::json_properties(id, headers),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(confirm.is_ack(), "the broker refused the message");
        drop(conn.close(200, "done".into()).await);
    }

    /// An unauthenticated GET of `path`; returns (status, json body or null).
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let res = self.http.get(self.url(path)).send().await.expect("get");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// A Redis connection to the test's Redis (keys under `settings.redis.key_prefix`).
    pub async fn redis(&self) -> platform::cache::Redis {
        platform::cache::connect(&self.settings.redis)
            .await
            .expect("connect redis")
    }

    /// An authenticated POST of `body` (JSON, or no body when `None`) to `path`;
    /// returns (status, json body).
    pub async fn post(
        &self,
        token: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::POST, path, Some(token), body)
            .await
    }

    /// Any request: `token` as bearer when given, `body` as JSON when given; returns
    /// (status, json body or null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Ingress's Prometheus text, from its metrics listener.
    pub async fn ingress_metrics(&self) -> String {
        self.http
            .get(format!("http://{}/metrics", self.ingress_metrics_addr))
            .send()
            .await
            .expect("ingress /metrics")
            .text()
            .await
            .expect("ingress /metrics text")
    }

    /// `POST /v1/bookings` with `body`; returns (status, json body).
    pub async fn submit(
        &self,
        token: &str,
        key: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let res = self
            .http
            .post(self.url("/v1/bookings"))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
            .await
            .expect("submit");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// `GET /v1/bookings/{id}`; returns (status, json body).
    pub async fn booking(&self, token: &str, id: &str) -> (u16, serde_json::Value) {
        let res = self
            .http
            .get(self.url(&format!("/v1/bookings/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .expect("get booking");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Waits until every booking in `ids` has a decided row, or panics after `max`.
    pub async fn wait_decided(&self, ids: &[uuid::Uuid], max: Duration) {
        let decided = poll(max, POLL, || async {
            let n: i64 = sqlx::query_scalar("select count(*) from bookings where id = any($1)")
                .bind(ids)
                .fetch_one(&self.pool)
                .await
                .expect("count bookings");
            if n == ids.len() as i64 {
                Ok(())
            } else {
                Err(n)
            }
        })
        .await;
        if let Err(n) = decided {
            panic!("only {n} of {} bookings decided within {max:?}", ids.len());
        }
    }

    /// Waits until `check` holds (polled), or panics with `what`.
    pub async fn eventually<F, Fut>(&self, max: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        self.until_some(max, what, || {
            let done = check();
            async move { done.await.then_some(()) }
        })
        .await
    }

    /// The first value `f` yields, polling every [`POLL`] for at most `max`; panics
    /// naming `what` at the deadline.
    pub async fn until_some<T, F, Fut>(&self, max: Duration, what: &str, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        poll(max, POLL, || {
            let v = f();
            async move { v.await.ok_or(()) }
        })
        .await
        .unwrap_or_else(|()| panic!("timed out waiting for: {what}"))
    }

    /// The booking's answer once `done` holds of it (within [`BOOKING_WAIT`]); panics
    /// with the last answer seen.
    pub async fn booking_until(
        &self,
        token: &str,
        id: &str,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        poll(BOOKING_WAIT, POLL, || async {
            let (_, b) = self.booking(token, id).await;
            if done(&b) { Ok(b) } else { Err(b) }
        })
        .await
        .unwrap_or_else(|b| panic!("booking {id} never {what}; last seen {b}"))
    }

    /// Asserts that `check` holds all through `window` (something that must not
    /// happen, such as a duplicate e-mail, did not happen in that time), failing as
    /// soon as it does not.
    pub async fn holds_for<F, Fut>(&self, window: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        // Polled to the end of the window: "done" never comes, only a failure.
        let never: Result<(), ()> = poll(window, POLL, || {
            let holds = check();
            async move {
                assert!(holds.await, "no longer true: {what}");
                Err(())
            }
        })
        .await;
        assert!(never.is_err());
        assert!(check().await, "no longer true: {what}");
    }

    /// Stops everything and drops the test's database and queues. The processes are
    /// killed (nothing of them is checked any more; a test that checks a graceful
    /// stop calls [`WorkerHandle::stop`]).
    pub async fn shutdown(self) {
        for w in self.workers {
            w.kill().await;
        }
        let _ = self.ingress.process.kill().await;
        self.stop.cancel();
        drop(std::fs::remove_dir_all(&self.mail_dir));
        self.pool.close().await;
        let mut leftovers = self.leftovers;
        leftovers.remove().await;
    }
}

impl TestSystem {
    /// A user of `role` (admin, operator, customer) with a token.
    pub async fn user_with_role(&self, role: Role) -> (UserId, String) {
        let id = UserId::new_v7();
        sqlx::query(
            "insert into users (id, email, password_hash, name, role) values ($1, $2, 'x', 'Test', $3)",
        )
        .bind(id.0)
        .bind(format!("{}-{}@test.local", role.as_str(), id.0.simple()))
        .bind(role.as_str())
        .execute(&self.pool)
        .await
        .expect("insert user");
        (id, self.tokens.mint(id, role).expect("token"))
    }
}
