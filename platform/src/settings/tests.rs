use super::*;

#[test]
fn a_file_variable_names_its_setting() {
    let vars = [
        ("APP__AUTH__JWT_SECRET_FILE", "/run/secrets/jwt"),
        (
            "APP__NOTIFIER__TICKET_SIGNING_KEYS__K1_FILE",
            "/run/secrets/k1",
        ),
        ("APP__AUTH__JWT_SECRET", "not a file variable"),
        ("OTHER_FILE", "/x"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let found: Vec<_> = secret_files(vars.into_iter()).collect();
    assert_eq!(
        found,
        [
            (
                "APP__AUTH__JWT_SECRET_FILE".to_owned(),
                "auth.jwt_secret".to_owned(),
                "/run/secrets/jwt".to_owned()
            ),
            (
                "APP__NOTIFIER__TICKET_SIGNING_KEYS__K1_FILE".to_owned(),
                "notifier.ticket_signing_keys.k1".to_owned(),
                "/run/secrets/k1".to_owned()
            ),
        ]
    );
}

#[test]
fn the_compiled_in_defaults_parse() {
    let s: Settings = config::Config::builder()
        .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
        .add_source(config::File::from_str(
            DEVELOPMENT,
            config::FileFormat::Toml,
        ))
        .build()
        .unwrap()
        .try_deserialize()
        .unwrap();
    assert_eq!(s.amqp.partitions, 16);
    assert_eq!(s.ingress.hold_ttl_secs, 480);
    assert!(s.workers.partitions.is_empty());
    assert!(
        s.notifier
            .ticket_signing_keys
            .contains_key(&s.notifier.ticket_current_kid)
    );
}
