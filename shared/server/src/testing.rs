//! Helpers for tests of a running service: a throwaway certificate authority, a scratch folder for
//! the files a service reads its certificates from, and a plain HTTP GET for the metrics port.
//! Built with the `testing` feature (and in this crate's tests).

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use rcgen::ExtendedKeyUsagePurpose;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

use crate::tls::ClientTls;

/// Good for a server only.
pub const SERVER_AUTH: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ServerAuth];
/// Good for a client only.
pub const CLIENT_AUTH: &[ExtendedKeyUsagePurpose] = &[ExtendedKeyUsagePurpose::ClientAuth];
/// Good both ways, as a service's own certificate is (it serves and it calls the Inventory).
pub const BOTH: &[ExtendedKeyUsagePurpose] =
    &[ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];

/// A certificate authority that signs leaf certificates for `localhost`.
pub struct TestCa {
    /// Its own certificate, as PEM: what a peer trusts.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// A new authority called `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        Self { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// A certificate and its key for `localhost`, as PEM, with the extended key usages `usages`.
    pub fn leaf(&self, usages: &[ExtendedKeyUsagePurpose]) -> (String, String) {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("valid name");
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.extended_key_usages = usages.to_vec();
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("leaf certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// Client settings trusting this authority, presenting `identity` (certificate and key PEM) and
    /// checking the server's certificate for `domain` rather than the URL's host.
    pub fn client(&self, identity: Option<(String, String)>, domain: Option<&str>) -> ClientTls {
        let identity = identity.map(|(cert, key)| (cert.into_bytes(), key.into_bytes()));
        ClientTls::new(Some(self.pem.clone().into_bytes()), identity, domain.map(str::to_owned))
    }
}

/// A folder of its own under the system temporary folder, removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A new, empty folder.
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("fulfillment-tls-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = std::env::temp_dir().join(name);
        fs::create_dir_all(&dir).expect("scratch directory");
        Self(dir)
    }

    /// Writes `name` and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.0.join(name);
        fs::write(&path, contents).expect("scratch file");
        path.display().to_string()
    }

    /// The path `name` would have, written or not.
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `GET path` on `address` over plain HTTP/1.1: the status line and the body.
pub async fn http_get(address: SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("the endpoint accepts");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).await.expect("an answer");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers, then a body");
    (head.lines().next().unwrap_or_default().to_owned(), body.to_owned())
}
