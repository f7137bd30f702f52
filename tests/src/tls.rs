//! A certificate authority of the test's own, made at run time (no key is ever
//! committed): a CA and a server certificate for `localhost` and `127.0.0.1` signed by
//! it, as PEM files in a temporary folder removed with the value.

use std::path::PathBuf;

pub struct LocalCa {
    dir: PathBuf,
    /// The CA's certificate (what clients trust).
    pub ca_file: PathBuf,
    /// The server's certificate chain (leaf, then the CA) and its private key.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    ca_pem: String,
}

impl LocalCa {
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "booking tests' local CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let key = KeyPair::generate().expect("server key");
        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = server.signed_by(&key, &ca).expect("server certificate");
        let dir = std::env::temp_dir().join(format!("local-ca-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("CA folder");
        let ca_pem = ca.pem();
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write a PEM file");
            path
        };
        Self {
            ca_file: write("ca.pem", &ca_pem),
            cert_file: write("server.pem", &format!("{}{ca_pem}", cert.pem())),
            key_file: write("server.key", &key.serialize_pem()),
            ca_pem,
            dir,
        }
    }

    /// The folder of the three files (`ca.pem`, `server.pem`, `server.key`), as the
    /// scripts under `scripts/cluster/` take it.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The CA's certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

impl Default for LocalCa {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for LocalCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
