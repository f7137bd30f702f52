//! HTTPS on ingress's own listener (`ingress.tls_cert_path`, `ingress.tls_key_path`):
//! rustls with the certificate chain and key read once at start, HTTP/1.1 only (as
//! the server loop, [`crate::serve`]). Without them ingress speaks plain HTTP, for a
//! load balancer on the same host that terminates TLS.

use platform::settings::IngressSettings;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Why the TLS settings cannot be used; ingress refuses to start with it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "ingress.tls_cert_path and ingress.tls_key_path go together (APP__INGRESS__TLS_CERT_PATH, APP__INGRESS__TLS_KEY_PATH): {0} is empty"
    )]
    Half(&'static str),
    #[error("cannot read {what} from {path}: {source}")]
    Pem {
        what: &'static str,
        path: String,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(String),
    #[error("the certificate and key do not make a TLS server: {0}")]
    Config(#[from] rustls::Error),
}

/// The acceptor for `s`, or `None` for plain HTTP.
pub fn acceptor(s: &IngressSettings) -> Result<Option<TlsAcceptor>, TlsError> {
    let (cert, key) = (s.tls_cert_path.trim(), s.tls_key_path.trim());
    match (cert.is_empty(), key.is_empty()) {
        (true, true) => return Ok(None),
        (false, true) => return Err(TlsError::Half("tls_key_path")),
        (true, false) => return Err(TlsError::Half("tls_cert_path")),
        (false, false) => {}
    }
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Pem {
            what: "certificates",
            path: cert.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Pem {
        what: "a private key",
        path: key.to_owned(),
        source,
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cert: &str, key: &str) -> IngressSettings {
        let mut s = platform::Settings::load_for(platform::settings::AppEnv::Development)
            .expect("settings")
            .ingress;
        s.tls_cert_path = cert.into();
        s.tls_key_path = key.into();
        s
    }

    #[test]
    fn no_files_is_plain_http_and_one_file_alone_is_refused() {
        assert!(acceptor(&settings("", "")).unwrap().is_none());
        assert!(matches!(
            acceptor(&settings("/x/cert.pem", "")),
            Err(TlsError::Half("tls_key_path"))
        ));
        assert!(matches!(
            acceptor(&settings("", "/x/key.pem")),
            Err(TlsError::Half("tls_cert_path"))
        ));
    }

    #[test]
    fn a_missing_or_empty_file_is_refused_naming_it() {
        let dir = std::env::temp_dir().join(format!("tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let empty = empty.to_str().unwrap();
        let missing = dir.join("missing.pem");
        let missing = missing.to_str().unwrap();
        let e = acceptor(&settings(missing, empty)).err().expect("refused");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let e = acceptor(&settings(empty, empty)).err().expect("refused");
        assert!(
            matches!(e, TlsError::NoCertificate(_)) && e.to_string().contains("empty.pem"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
