//! TLS to RabbitMQ (`amqps://`), configured in the node's URL with the query
//! parameters RabbitMQ's own clients take
//! (<https://www.rabbitmq.com/docs/uri-query-parameters>):
//!
//! - `cacertfile=PATH`: a PEM file of the certificate authorities to trust besides
//!   the public ones (a private CA);
//! - `certfile=PATH` and `keyfile=PATH`: a client certificate (PEM chain) and its
//!   PKCS#8 key, for a broker that asks for one (`ssl_options.verify = verify_peer`
//!   with `fail_if_no_peer_cert`).
//!
//! The broker's certificate is always verified against its host name; there is no
//! parameter that turns that off. The parameters are taken out of the URL before it
//! reaches lapin, which would otherwise ignore them; the rest of the query
//! (`heartbeat`, `connection_timeout`, ...) stays.

use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use percent_encoding::percent_decode_str;

/// The URL without its TLS parameters, and the TLS configuration they give.
pub fn split(url: &str) -> Result<(String, OwnedTLSConfig), lapin::Error> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => return Ok((url.to_owned(), OwnedTLSConfig::default())),
    };
    let (mut ca, mut cert, mut key) = (None, None, None);
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match k {
            "cacertfile" => &mut ca,
            "certfile" => &mut cert,
            "keyfile" => &mut key,
            _ => {
                rest.push(pair);
                continue;
            }
        };
        *slot = Some(percent_decode_str(v).decode_utf8_lossy().into_owned());
    }
    if (ca.is_some() || cert.is_some() || key.is_some()) && !base.starts_with("amqps://") {
        return Err(invalid(
            "cacertfile, certfile and keyfile are for an amqps:// URL".to_owned(),
        ));
    }
    let identity = match (cert, key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 {
            pem: read(&cert, "certfile")?,
            key: read(&key, "keyfile")?,
        }),
        _ => {
            return Err(invalid(
                "certfile and keyfile go together (a client certificate and its key)".to_owned(),
            ));
        }
    };
    let cert_chain = ca
        .map(|path| {
            String::from_utf8(read(&path, "cacertfile")?)
                .map_err(|_| invalid(format!("cacertfile {path} is not PEM text")))
        })
        .transpose()?;
    let uri = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((
        uri,
        OwnedTLSConfig {
            identity,
            cert_chain,
        },
    ))
}

fn read(path: &str, what: &str) -> Result<Vec<u8>, lapin::Error> {
    std::fs::read(path).map_err(|e| invalid(format!("{what} {path}: {e}")))
}

fn invalid(msg: String) -> lapin::Error {
    lapin::Error::from(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("amqp.url: {msg}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn a_url_without_tls_parameters_is_left_alone() {
        let (uri, tls) = split("amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=10").unwrap();
        assert_eq!(uri, "amqp://guest:guest@127.0.0.1:5672/%2f?heartbeat=10");
        assert!(tls.cert_chain.is_none() && tls.identity.is_none());
    }

    #[test]
    fn the_ca_file_is_read_and_taken_out_of_the_url() {
        let dir = std::env::temp_dir().join(format!("amqp-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("my ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let url = format!(
            "amqps://u:p@broker:5671/%2f?heartbeat=10&cacertfile={}",
            ca.display().to_string().replace(' ', "%20")
        );
        let (uri, tls) = split(&url).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(uri, "amqps://u:p@broker:5671/%2f?heartbeat=10");
        assert_eq!(
            tls.cert_chain.as_deref(),
            Some("-----BEGIN CERTIFICATE-----\n")
        );
    }

    #[test]
    fn tls_parameters_on_a_plain_url_or_half_a_client_certificate_are_refused() {
        let plain = split("amqp://h/%2f?cacertfile=/etc/ca.pem").unwrap_err();
        assert!(plain.to_string().contains("amqps://"), "{plain}");
        let half = split("amqps://h/%2f?certfile=/etc/c.pem").unwrap_err();
        assert!(half.to_string().contains("go together"), "{half}");
        let missing = split("amqps://h/%2f?cacertfile=/nonexistent/ca.pem").unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/ca.pem"),
            "{missing}"
        );
    }
}
