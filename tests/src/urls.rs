//! Service URLs of a test: its own database, or a port of its own (a proxy).

/// `url` naming database `db` instead of its own (the query string kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// The database of `current` (a test's own) on the server of `server` instead, with
/// `server`'s query string (TLS settings): a test's system moved to another
/// PostgreSQL, such as a cluster's.
pub fn database_on(server: &str, current: &str) -> String {
    let path = current.split('?').next().unwrap_or(current);
    with_database(server, path.rsplit('/').next().unwrap_or_default())
}

/// `url` with its port replaced (to point a process at a [`proxy::TcpProxy`]).
pub fn with_port(url: &str, port: u16) -> String {
    // postgres://user:pass@host:PORT/db, redis://host:PORT
    let (scheme, rest) = url.split_once("://").expect("url has a scheme");
    let (auth_host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (auth, host) = match auth_host.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, auth_host),
    };
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    match auth {
        Some(a) => format!("{scheme}://{a}@{host}:{port}/{path}"),
        None => format!("{scheme}://{host}:{port}/{path}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tests_database_moves_to_another_server_with_its_query() {
        assert_eq!(
            database_on(
                "postgres://postgres@127.0.0.1:5440/postgres?sslmode=verify-full",
                "postgres://u:p@127.0.0.1:5432/test_abc"
            ),
            "postgres://postgres@127.0.0.1:5440/test_abc?sslmode=verify-full"
        );
    }

    #[test]
    fn database_and_port_are_swapped_in_urls() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/booking", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(
            with_port("postgres://u:p@127.0.0.1:5432/x", 6000),
            "postgres://u:p@127.0.0.1:6000/x"
        );
    }
}
