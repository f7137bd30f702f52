//! The real `ingress` binary refuses to start in production (the default `APP_ENV`)
//! with missing or shipped secrets, and says which setting is wrong. It checks
//! before connecting to anything, so no service is needed.

use std::process::{Command, Output};
use std::time::Duration;

/// Runs the binary with a clean `APP_*` environment plus `env`.
fn ingress(env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ingress"));
    for (k, _) in std::env::vars() {
        if k.starts_with("APP_") {
            cmd.env_remove(k);
        }
    }
    // Were a check missing, the process would serve: on a port nobody uses.
    cmd.env("APP__INGRESS__LISTEN", "127.0.0.1:0")
        .env("APP__AMQP__URL", "amqp://127.0.0.1:1/%2f");
    cmd.envs(env.iter().copied());
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the ingress binary");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("ingress did not refuse to start within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn without_app_env_and_secrets_ingress_refuses_and_names_each_missing_secret() {
    let out = ingress(&[]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("APP_ENV=production"), "{err}");
    assert!(err.contains("auth.jwt_secret is 0 bytes"), "{err}");
    assert!(err.contains("payments.webhook_secret is 0 bytes"), "{err}");
    assert!(
        err.contains("notifier.ticket_current_kid is not set"),
        "{err}"
    );
}

#[test]
fn in_production_ingress_refuses_the_shipped_development_secrets() {
    let out = ingress(&[
        ("APP_ENV", "production"),
        (
            "APP__AUTH__JWT_SECRET",
            "dev-only-secret-change-me-0123456789abcdef",
        ),
        ("APP__PAYMENTS__WEBHOOK_SECRET", "whsec_local_dev_is_16"),
        ("APP__NOTIFIER__TICKET_CURRENT_KID", "dev1"),
        (
            "APP__NOTIFIER__TICKET_SIGNING_KEYS__DEV1",
            "ZGV2LW9ubHktdGlja2V0LXNlZWQtY2hhbmdlLW1lISE=",
        ),
    ]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("auth.jwt_secret is a development secret"),
        "{err}"
    );
    assert!(
        err.contains("notifier.ticket_signing_keys.dev1 is a development secret"),
        "{err}"
    );
    assert!(!err.contains("payments.webhook_secret"), "{err}");
}

#[test]
fn weak_secrets_are_refused_even_in_development() {
    let out = ingress(&[
        ("APP_ENV", "development"),
        ("APP__AUTH__JWT_SECRET", "x"),
        ("APP__PAYMENTS__WEBHOOK_SECRET", ""),
    ]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("auth.jwt_secret is 1 bytes"), "{err}");
    assert!(err.contains("payments.webhook_secret is 0 bytes"), "{err}");
}

/// A file in the temporary folder with `contents`, removed when dropped.
struct SecretFile(std::path::PathBuf);

impl SecretFile {
    fn new(contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("secret-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for SecretFile {
    fn drop(&mut self) {
        drop(std::fs::remove_file(&self.0));
    }
}

#[test]
fn secrets_may_come_from_files_and_are_checked_the_same() {
    // The file's contents are the setting (its final newline dropped): a shipped
    // development secret in a file is refused like one in the environment.
    let jwt = SecretFile::new("dev-only-secret-change-me-0123456789abcdef\n");
    let webhook = SecretFile::new("x\n");
    let out = ingress(&[
        ("APP_ENV", "production"),
        ("APP__AUTH__JWT_SECRET_FILE", jwt.path()),
        ("APP__PAYMENTS__WEBHOOK_SECRET_FILE", webhook.path()),
        ("APP__NOTIFIER__TICKET_CURRENT_KID", "dev1"),
    ]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("auth.jwt_secret is a development secret"),
        "{err}"
    );
    assert!(err.contains("payments.webhook_secret is 1 bytes"), "{err}");
}

#[test]
fn a_secret_file_that_cannot_be_read_is_named() {
    let out = ingress(&[
        ("APP_ENV", "production"),
        ("APP__AUTH__JWT_SECRET_FILE", "/nonexistent/jwt"),
    ]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("APP__AUTH__JWT_SECRET_FILE: cannot read /nonexistent/jwt"),
        "{err}"
    );
}
