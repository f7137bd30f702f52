//! Settings as `APP__SECTION__KEY` environment variables: what a parent process hands
//! a child so that the child loads exactly these settings through
//! [`Settings::load`](super::Settings::load), the way production configures it. The
//! end-to-end harness starts the real `ingress` and `workers` binaries with them.

use super::Settings;
use secrecy::{ExposeSecret, SecretString};
use serde::Serializer;
use serde_json::Value;
use std::collections::BTreeMap;

/// Serializes a secret as its value: only [`to_vars`] serializes settings, to hand
/// them to a child process (never to a log).
pub(super) fn expose<S: Serializer>(v: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v.expose_secret())
}

/// [`expose`] for a map of secrets.
pub(super) fn expose_all<S: Serializer>(
    v: &BTreeMap<String, SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(v.iter().map(|(k, v)| (k, v.expose_secret())))
}

/// A sender number or name. From the environment `+15005550006` parses as a number
/// (and loses its `+`): a number is an E.164 phone number, so the `+` comes back.
pub(super) fn number_or_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    Ok(match <Raw as serde::Deserialize>::deserialize(d)? {
        Raw::Number(n) => format!("+{n}"),
        Raw::Text(t) => t,
    })
}

/// Every setting of `s` as one `APP__SECTION__KEY` variable (maps one level deeper,
/// `APP__RATE_LIMIT__PER_MINUTE__AUTH`; lists joined with commas). An empty list is
/// left out: one variable cannot say "empty" to the loader, so the files' value
/// stands (every list of the development settings is empty or not set by tests).
pub fn to_vars(s: &Settings) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let value = serde_json::to_value(s).expect("settings serialize to JSON");
    flatten("APP", &value, &mut out);
    out
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{prefix}__{}", k.to_ascii_uppercase()), v, out);
            }
        }
        Value::Array(items) if items.is_empty() => {}
        Value::Array(items) => {
            let joined: Vec<String> = items.iter().map(scalar).collect();
            out.push((prefix.to_owned(), joined.join(",")));
        }
        other => out.push((prefix.to_owned(), scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::AppEnv;

    /// Settings whose every section differs from the files somewhere.
    fn changed() -> Settings {
        let mut s = Settings::load_from(AppEnv::Development, []).unwrap();
        s.database.url = "postgres://u:p@db:5433/test_x".into();
        s.amqp.prefix = "tabc.".into();
        s.amqp.partitions = 2;
        s.redis.key_prefix = "tabc:".into();
        s.auth.jwt_secret = SecretString::from("j".repeat(40));
        s.auth.mfa_required_roles = vec!["admin".into(), "operator".into()];
        s.ingress.listen = "127.0.0.1:0".into();
        s.ingress.cors_origins = vec!["https://a.example".into(), "https://b.example".into()];
        s.workers.partitions = vec![0, 1];
        s.workers.fault_injection = true;
        s.payments.webhook_secret = SecretString::from("whsec_0123456789abcdefgh".to_owned());
        s.notifier.smtp_port = 2526;
        s.notifier.smtp_password = SecretString::from("12345".to_owned());
        s.notifier
            .ticket_signing_keys
            .insert("k2".into(), SecretString::from("A".repeat(43)));
        s.rate_limit.per_minute.insert("auth".into(), 7);
        s.rate_limit.exempt_roles = vec!["operator".into(), "admin".into()];
        s.telemetry.filter = "info,lapin=warn".into();
        s
    }

    #[test]
    fn a_child_loads_from_the_variables_exactly_the_settings_they_came_from() {
        let s = changed();
        let loaded = Settings::load_from(AppEnv::Development, to_vars(&s)).unwrap();
        assert_eq!(
            serde_json::to_value(&loaded).unwrap(),
            serde_json::to_value(&s).unwrap()
        );
    }

    #[test]
    fn maps_go_one_level_deeper_and_lists_are_joined() {
        let vars: BTreeMap<String, String> = to_vars(&changed()).into_iter().collect();
        assert_eq!(vars["APP__RATE_LIMIT__PER_MINUTE__AUTH"], "7");
        assert_eq!(vars["APP__WORKERS__PARTITIONS"], "0,1");
        assert_eq!(vars["APP__NOTIFIER__SMTP_PASSWORD"], "12345");
        assert_eq!(vars["APP__WORKERS__FAULT_INJECTION"], "true");
    }
}
