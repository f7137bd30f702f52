//! The limiter's pure parts: classes, identities, budgets, headers.

use super::*;
use crate::auth::Role;
use contracts::UserId;
use secrecy::SecretString;

fn settings() -> RateLimitSettings {
    RateLimitSettings {
        enabled: true,
        per_minute: [("default", 100), ("auth", 20)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        exempt_roles: vec!["operator".into()],
        trust_forwarded_for: false,
        timeout_ms: 250,
        failed_logins_per_hour: 20,
        failed_logins_per_ip_per_hour: 60,
    }
}

fn keys() -> TokenKeys {
    TokenKeys::new(&SecretString::from("k".repeat(32)), 60)
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    h
}

const PEER: &str = "198.51.100.4:5555";

#[test]
fn routes_fall_into_their_classes() {
    let cases = [
        (Method::POST, "/v1/auth/login", Some(RouteClass::Auth)),
        (Method::POST, "/v1/auth/register", Some(RouteClass::Auth)),
        // One budget for the rest of /v1: bookings, searches and reads alike.
        (Method::POST, "/v1/bookings", Some(RouteClass::Default)),
        (
            Method::POST,
            "/v1/bookings/x/cancel",
            Some(RouteClass::Default),
        ),
        (Method::GET, "/v1/bookings/x", Some(RouteClass::Default)),
        (Method::GET, "/v1/movies", Some(RouteClass::Default)),
        (Method::GET, "/v1/shows/x/seats", Some(RouteClass::Default)),
        (Method::HEAD, "/v1/shows/x", Some(RouteClass::Default)),
        (Method::GET, "/v1/showsx", Some(RouteClass::Default)),
        (Method::GET, "/v1/me", Some(RouteClass::Default)),
        (Method::GET, "/v1/nope", Some(RouteClass::Default)),
        (Method::GET, "/healthz", None),
        (Method::GET, "/readyz", None),
        (Method::GET, "/metrics", None),
        (Method::GET, "/docs", None),
        (Method::GET, "/v1/openapi.json", None),
        (Method::POST, "/v1/payments/webhook", None),
        (Method::GET, "/v1x", None),
    ];
    for (method, path, class) in cases {
        assert_eq!(classify(&method, path), class, "{method} {path}");
    }
}

#[test]
fn a_valid_token_names_the_user_and_an_exempt_role_is_not_limited() {
    let p = Policy::new(&settings(), keys()).unwrap();
    let peer = Some(PEER.parse().unwrap());
    let user = UserId(uuid::Uuid::from_u128(42));
    let customer = keys().mint(user, Role::Customer).unwrap();
    let default = RouteClass::Default;
    assert_eq!(
        p.identify(default, &bearer(&customer), peer),
        Identity::Limited(Subject::User(user))
    );
    let operator = keys().mint(user, Role::Operator).unwrap();
    assert_eq!(
        p.identify(default, &bearer(&operator), peer),
        Identity::Exempt
    );
    let admin = keys().mint(user, Role::Admin).unwrap();
    assert_eq!(
        p.identify(default, &bearer(&admin), peer),
        Identity::Limited(Subject::User(user))
    );
}

#[test]
fn an_invalid_token_counts_as_anonymous_by_peer_address() {
    let p = Policy::new(&settings(), keys()).unwrap();
    let peer: SocketAddr = PEER.parse().unwrap();
    let forged = TokenKeys::new(&SecretString::from("f".repeat(32)), 60)
        .mint(UserId(uuid::Uuid::from_u128(1)), Role::Operator)
        .unwrap();
    let ip = Identity::Limited(Subject::Ip(peer.ip()));
    let default = RouteClass::Default;
    assert_eq!(p.identify(default, &bearer(&forged), Some(peer)), ip);
    assert_eq!(p.identify(default, &HeaderMap::new(), Some(peer)), ip);
    assert_eq!(
        p.identify(default, &HeaderMap::new(), None),
        Identity::Limited(Subject::Unknown)
    );
}

#[test]
fn auth_routes_are_limited_by_client_ip_whatever_token_is_sent() {
    let p = Policy::new(&settings(), keys()).unwrap();
    let peer: SocketAddr = PEER.parse().unwrap();
    let ip = Identity::Limited(Subject::Ip(peer.ip()));
    let user = UserId(uuid::Uuid::from_u128(7));
    for role in [Role::Customer, Role::Admin, Role::Operator] {
        let token = keys().mint(user, role).unwrap();
        assert_eq!(
            p.identify(RouteClass::Auth, &bearer(&token), Some(peer)),
            ip,
            "{role:?}"
        );
    }
}

#[test]
fn forwarded_for_is_used_only_when_trusted_and_well_formed() {
    let peer: SocketAddr = PEER.parse().unwrap();
    let mut h = HeaderMap::new();
    h.insert(
        "x-forwarded-for",
        HeaderValue::from_static("203.0.113.9, 10.0.0.1"),
    );
    let untrusted = Policy::new(&settings(), keys()).unwrap();
    let d = RouteClass::Default;
    assert_eq!(
        untrusted.identify(d, &h, Some(peer)),
        Identity::Limited(Subject::Ip(peer.ip()))
    );
    let mut s = settings();
    s.trust_forwarded_for = true;
    let trusted = Policy::new(&s, keys()).unwrap();
    assert_eq!(
        trusted.identify(d, &h, Some(peer)),
        Identity::Limited(Subject::Ip("203.0.113.9".parse().unwrap()))
    );
    h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
    assert_eq!(
        trusted.identify(d, &h, Some(peer)),
        Identity::Limited(Subject::Ip(peer.ip()))
    );
}

#[test]
fn auth_spends_its_stricter_budget_then_the_v1_one_and_the_rest_only_the_v1_one() {
    let p = Policy::new(&settings(), keys()).unwrap();
    assert_eq!(p.budget(RouteClass::Auth).per_minute, 20);
    assert_eq!(p.budget(RouteClass::Default).per_minute, 100);
    assert_eq!(p.budget(RouteClass::Auth).interval_us, 3_000_000);
    assert_eq!(
        RouteClass::Auth.budgets(),
        &[RouteClass::Auth, RouteClass::Default]
    );
    assert_eq!(RouteClass::Default.budgets(), &[RouteClass::Default]);
    // A missing auth budget is the /v1 one.
    let mut s = settings();
    s.per_minute.remove("auth");
    let p = Policy::new(&s, keys()).unwrap();
    assert_eq!(p.budget(RouteClass::Auth).per_minute, 100);
}

#[test]
fn bad_settings_are_refused() {
    let mut s = settings();
    s.per_minute.insert("serach".into(), 5);
    assert!(Policy::new(&s, keys()).is_err());
    let mut s = settings();
    s.per_minute.insert("auth".into(), 0);
    assert!(Policy::new(&s, keys()).is_err());
    let mut s = settings();
    s.exempt_roles = vec!["root".into()];
    assert!(Policy::new(&s, keys()).is_err());
    let mut s = settings();
    s.per_minute.remove("default");
    assert!(Policy::new(&s, keys()).is_err());
    // The budgets per route class of earlier versions are gone: say so.
    let mut s = settings();
    s.per_minute.insert("bookings".into(), 100);
    let e = Policy::new(&s, keys()).err().unwrap().to_string();
    assert!(e.contains("no longer a budget"), "{e}");
}

#[test]
fn headers_round_seconds_up() {
    let d = Decision::from_reply(10, (0, 0, 500_000, 59_500_001));
    assert!(!d.allowed);
    assert_eq!(ceil_secs(d.retry_after), 1);
    let mut h = HeaderMap::new();
    d.write_headers(&mut h);
    assert_eq!(h["ratelimit-limit"], "10");
    assert_eq!(h["ratelimit-remaining"], "0");
    assert_eq!(h["ratelimit-reset"], "60");
    assert_eq!(h["ratelimit-policy"], "10;w=60");
}
