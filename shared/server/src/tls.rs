//! TLS for the gRPC servers and for the clients one service uses to call another, with optional
//! mutual TLS.
//!
//! Certificates and keys are PEM files named by environment variables, read once at start-up:
//!
//! | variable | meaning |
//! | --- | --- |
//! | `<PREFIX>_TLS_CERT`, `<PREFIX>_TLS_KEY` | the service's own certificate chain and key: its server identity, and its client identity towards peers that ask for one |
//! | `<PREFIX>_TLS_CLIENT_CA` | CA bundle for mutual TLS: only clients with a certificate it signed are served |
//! | `<PREFIX>_<PEER>_TLS_CA` | CA bundle that verifies the peer `<PEER>` when its URL is `https://` |
//! | `<PREFIX>_<PEER>_TLS_DOMAIN` | the name checked in the peer's certificate instead of the URL's host |
//!
//! tonic is built with `tls-ring` only, which bundles no root certificates (neither
//! `tls-webpki-roots` nor `tls-native-roots`), so an `https://` peer needs its CA configured.

use std::error::Error as StdError;
use std::fmt;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use http::Uri;
use http::uri::Scheme;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, Server, ServerTlsConfig};

use crate::config::{ConfigError, Env};

/// How long a TLS handshake may take, so that a peer that connects and then stalls cannot hold a
/// connection open.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why TLS settings could not be turned into a server or client configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file could not be read.
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file or buffer does not hold the PEM blocks expected of it.
    #[error("{origin}: {problem}")]
    Pem {
        /// The file, or what was given in code.
        origin: String,
        /// What is wrong.
        problem: String,
    },
    /// A peer's URL is not an `http://` or `https://` URL with a host.
    #[error("invalid peer URL '{url}': {reason}")]
    Url {
        /// The URL.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// An `https://` peer with no CA to verify it against.
    #[error(
        "{url} is https but no CA certificate is configured to verify it{hint}; tonic is built without bundled root \
         certificates"
    )]
    NoTrustedCa {
        /// The URL.
        url: String,
        /// Which variable to set, when the settings came from the environment.
        hint: String,
    },
    /// The files were read but tonic refused them: a corrupt certificate, a key that does not
    /// match its certificate, an invalid domain name.
    #[error("{subject}: {reason}")]
    Refused {
        /// Which settings.
        subject: String,
        /// tonic's error with its causes.
        reason: String,
    },
}

/// TLS for a service's gRPC server, and mutual TLS when `client_ca` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    /// The server's PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// The PEM private key of the leaf (PKCS#8, PKCS#1 or SEC1, unencrypted).
    pub key: PathBuf,
    /// The PEM CA bundle that client certificates must chain to; when set, a client without such
    /// a certificate is refused during the handshake.
    pub client_ca: Option<PathBuf>,
}

impl ServerTls {
    /// Reads `<PREFIX>_TLS_CERT` and `<PREFIX>_TLS_KEY` (both or neither) and
    /// `<PREFIX>_TLS_CLIENT_CA` (only with them); `None` when TLS is not configured.
    pub fn from_env(env: &Env, prefix: &str) -> Result<Option<Self>, ConfigError> {
        let client_ca_variable = format!("{prefix}_TLS_CLIENT_CA");
        let client_ca = env.get(&client_ca_variable).map(|path| PathBuf::from(path.trim()));
        match (identity_paths(env, prefix)?, client_ca) {
            (None, None) => Ok(None),
            (None, Some(client_ca)) => Err(ConfigError {
                variable: client_ca_variable,
                value: client_ca.display().to_string(),
                reason: format!(
                    "mutual TLS needs the server's own certificate: set {prefix}_TLS_CERT and {prefix}_TLS_KEY"
                ),
            }),
            (Some((cert, key)), client_ca) => Ok(Some(Self { cert, key, client_ca })),
        }
    }

    /// Reads the files into tonic's server configuration.
    ///
    /// tonic only parses the PEM when a server takes the configuration; this does it here as well, so
    /// that a corrupt file or a key that does not match the certificate fails start-up with the
    /// paths named.
    pub fn config(&self) -> Result<ServerTlsConfig, TlsError> {
        let cert = Pem::File(self.cert.clone()).load(Contents::Certificates)?;
        let key = Pem::File(self.key.clone()).load(Contents::PrivateKey)?;
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key)).timeout(HANDSHAKE_TIMEOUT);
        if let Some(client_ca) = &self.client_ca {
            let roots = Pem::File(client_ca.clone()).load(Contents::Certificates)?;
            // Mandatory is tonic's default too; said here because it is the point of the setting.
            config = config.client_ca_root(Certificate::from_pem(roots)).client_auth_optional(false);
        }
        Server::builder()
            .tls_config(config.clone())
            .map_err(|error| TlsError::Refused { subject: self.describe(), reason: error_chain(&error) })?;
        Ok(config)
    }

    fn describe(&self) -> String {
        let mut subject = format!("server TLS from {} and {}", self.cert.display(), self.key.display());
        if let Some(client_ca) = &self.client_ca {
            subject.push_str(&format!(" with client CA {}", client_ca.display()));
        }
        subject
    }
}

/// TLS for calls to another service.
///
/// For an `https://` peer the peer's certificate is verified against the configured CA, under the
/// URL's host or the domain override. The client identity is presented when the peer asks for one
/// (mutual TLS). It is the service's own certificate, the one its server presents, so that
/// certificate needs the `clientAuth` extended key usage next to `serverAuth`: a certificate that
/// lists extended key usages without `clientAuth` is refused by a mutual-TLS peer. For an `http://`
/// peer all of this is ignored.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    ca: Option<Pem>,
    identity: Option<(Pem, Pem)>,
    domain: Option<String>,
    /// The variable naming the CA, for the error when it is missing.
    ca_variable: Option<String>,
}

impl ClientTls {
    /// No CA, identity or domain: enough for `http://` peers only.
    pub fn plain() -> Self {
        Self::default()
    }

    /// Settings given in code, for tests and tools: the PEM CA bundle that verifies the peer, the
    /// PEM certificate chain and key presented to it, and the name checked in its certificate.
    pub fn new(ca_pem: Option<Vec<u8>>, identity: Option<(Vec<u8>, Vec<u8>)>, domain: Option<String>) -> Self {
        Self {
            ca: ca_pem.map(Pem::Bytes),
            identity: identity.map(|(cert, key)| (Pem::Bytes(cert), Pem::Bytes(key))),
            domain,
            ca_variable: None,
        }
    }

    /// Reads the settings the service `prefix` uses to call `peer`: `<PREFIX>_<PEER>_TLS_CA`,
    /// `<PREFIX>_<PEER>_TLS_DOMAIN`, and the identity from `<PREFIX>_TLS_CERT` and `<PREFIX>_TLS_KEY`
    /// (both or neither). Files are read by [`endpoint`].
    pub fn from_env(env: &Env, prefix: &str, peer: &str) -> Result<Self, ConfigError> {
        let ca_variable = format!("{prefix}_{peer}_TLS_CA");
        Ok(Self {
            ca: env.get(&ca_variable).map(|path| Pem::File(path.trim().into())),
            identity: identity_paths(env, prefix)?.map(|(cert, key)| (Pem::File(cert), Pem::File(key))),
            domain: env.get(&format!("{prefix}_{peer}_TLS_DOMAIN")).map(|domain| domain.trim().to_owned()),
            ca_variable: Some(ca_variable),
        })
    }

    fn config(&self, url: &str) -> Result<ClientTlsConfig, TlsError> {
        let Some(ca) = &self.ca else {
            return Err(TlsError::NoTrustedCa {
                url: url.to_owned(),
                hint: self.ca_variable.as_ref().map(|variable| format!(" (set {variable})")).unwrap_or_default(),
            });
        };
        let roots = Certificate::from_pem(ca.load(Contents::Certificates)?);
        let mut config = ClientTlsConfig::new().ca_certificate(roots).timeout(HANDSHAKE_TIMEOUT);
        if let Some((cert, key)) = &self.identity {
            let cert = cert.load(Contents::Certificates)?;
            config = config.identity(Identity::from_pem(cert, key.load(Contents::PrivateKey)?));
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        Ok(config)
    }
}

/// An endpoint for the peer at `url`: TLS as `tls` says for `https://`, plaintext for `http://`.
///
/// The files are read and the TLS settings checked here, so call it at start-up.
pub fn endpoint(url: &str, tls: &ClientTls) -> Result<Endpoint, TlsError> {
    let url = url.trim();
    let refuse = |reason: &str| TlsError::Url { url: url.to_owned(), reason: reason.to_owned() };
    let uri: Uri = url.parse().map_err(|error: http::uri::InvalidUri| refuse(&error.to_string()))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(refuse("no host"));
    }
    match uri.scheme() {
        Some(scheme) if *scheme == Scheme::HTTP => {
            if tls.ca.is_some() || tls.domain.is_some() {
                tracing::warn!(url, "a CA or domain is configured for a plaintext http peer; tls settings are ignored");
            }
            Ok(Endpoint::from(uri))
        }
        Some(scheme) if *scheme == Scheme::HTTPS => {
            let config = tls.config(url)?;
            Endpoint::from(uri).tls_config(config).map_err(|error| TlsError::Refused {
                subject: format!("TLS settings for {url}"),
                reason: error_chain(&error),
            })
        }
        _ => Err(refuse("the scheme must be http:// or https://")),
    }
}

/// `<PREFIX>_TLS_CERT` and `<PREFIX>_TLS_KEY`, both or neither.
fn identity_paths(env: &Env, prefix: &str) -> Result<Option<(PathBuf, PathBuf)>, ConfigError> {
    let cert_variable = format!("{prefix}_TLS_CERT");
    let key_variable = format!("{prefix}_TLS_KEY");
    let missing = |variable: &str, other: &str, value: &str| ConfigError {
        variable: variable.to_owned(),
        value: String::new(),
        reason: format!("must be set together with {other} (set to '{value}')"),
    };
    match (env.get(&cert_variable), env.get(&key_variable)) {
        (Some(cert), Some(key)) => Ok(Some((cert.trim().into(), key.trim().into()))),
        (None, None) => Ok(None),
        (Some(cert), None) => Err(missing(&key_variable, &cert_variable, cert)),
        (None, Some(key)) => Err(missing(&cert_variable, &key_variable, key)),
    }
}

/// PEM from a file, read when a configuration is built, or given in code.
#[derive(Clone)]
enum Pem {
    File(PathBuf),
    Bytes(Vec<u8>),
}

/// What a PEM source must hold.
#[derive(Clone, Copy)]
enum Contents {
    Certificates,
    PrivateKey,
}

impl Pem {
    /// The bytes, once they are known to hold the PEM blocks `contents` needs. tonic would accept
    /// anything here and fail later without saying which file was wrong.
    fn load(&self, contents: Contents) -> Result<Vec<u8>, TlsError> {
        let bytes = match self {
            Self::File(path) => fs::read(path).map_err(|source| TlsError::Read { path: path.clone(), source })?,
            Self::Bytes(bytes) => bytes.clone(),
        };
        check_pem(&bytes, contents).map_err(|problem| TlsError::Pem { origin: self.origin(contents), problem })?;
        Ok(bytes)
    }

    fn origin(&self, contents: Contents) -> String {
        match (self, contents) {
            (Self::File(path), _) => path.display().to_string(),
            (Self::Bytes(_), Contents::Certificates) => "the PEM certificates given".to_owned(),
            (Self::Bytes(_), Contents::PrivateKey) => "the PEM private key given".to_owned(),
        }
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            // Never the bytes: they may be a private key.
            Self::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}

/// Checks the labels of the PEM blocks; the blocks themselves are parsed by tonic.
fn check_pem(pem: &[u8], contents: Contents) -> Result<(), String> {
    let text = String::from_utf8_lossy(pem);
    let labels: Vec<&str> =
        text.lines().filter_map(|line| line.trim().strip_prefix("-----BEGIN ")?.strip_suffix("-----")).collect();
    match contents {
        Contents::Certificates if labels.contains(&"CERTIFICATE") => Ok(()),
        Contents::Certificates => Err("no PEM certificate (-----BEGIN CERTIFICATE-----) found".to_owned()),
        Contents::PrivateKey if labels.contains(&"ENCRYPTED PRIVATE KEY") => {
            Err("the private key is encrypted; an unencrypted PKCS#8, PKCS#1 or SEC1 key is needed".to_owned())
        }
        Contents::PrivateKey
            if labels.iter().any(|label| ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"].contains(label)) =>
        {
            Ok(())
        }
        Contents::PrivateKey => Err("no PEM private key (-----BEGIN PRIVATE KEY-----) found".to_owned()),
    }
}

/// An error and its causes: tonic's transport error alone only says "transport error".
pub fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // An `io::Error` wrapping an error shows that error's text and also returns it as its source.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use tokio::net::TcpListener;
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;

    use super::*;
    use crate::testing::{BOTH, CLIENT_AUTH, SERVER_AUTH, Scratch, TestCa as Ca};

    /// Serves the health service on a free port with `tls`; returns the port.
    async fn serve(tls: &ServerTls) -> u16 {
        let config = tls.config().expect("valid TLS settings");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("bound address").port();
        let (_reporter, health) = tonic_health::server::health_reporter();
        let router = Server::builder().tls_config(config).expect("TLS accepted").add_service(health);
        tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
        port
    }

    /// Asks for the server's health through `url`; the error says why the call failed.
    async fn check(url: &str, tls: &ClientTls) -> Result<ServingStatus, String> {
        let endpoint = endpoint(url, tls).expect("valid endpoint");
        let call = async {
            let channel = endpoint.connect().await.map_err(|error| error_chain(&error))?;
            let response = HealthClient::new(channel)
                .check(HealthCheckRequest { service: String::new() })
                .await
                .map_err(|status| status.to_string())?;
            Ok(response.into_inner().status())
        };
        tokio::time::timeout(Duration::from_secs(10), call).await.expect("the call ends one way or the other")
    }

    fn server_tls(scratch: &Scratch, ca: &Ca, client_ca: Option<&Ca>) -> ServerTls {
        let (cert, key) = ca.leaf(SERVER_AUTH);
        let mut env = Env::from_pairs([
            ("INVENTORY_TLS_CERT", scratch.write("server.pem", cert).as_str()),
            ("INVENTORY_TLS_KEY", scratch.write("server.key", key).as_str()),
        ]);
        if let Some(client_ca) = client_ca {
            env = env.with([("INVENTORY_TLS_CLIENT_CA", scratch.write("client-ca.pem", &client_ca.pem).as_str())]);
        }
        ServerTls::from_env(&env, "INVENTORY").expect("valid settings").expect("TLS is configured")
    }

    #[test]
    fn without_variables_there_is_no_tls() {
        assert_eq!(ServerTls::from_env(&Env::default(), "INVENTORY").expect("valid"), None);
        let client = ClientTls::from_env(&Env::default(), "CATALOG", "INVENTORY").expect("valid");
        assert!(endpoint("http://127.0.0.1:50052", &client).is_ok());
    }

    #[test]
    fn a_certificate_without_its_key_names_the_missing_variable() {
        let env = Env::from_pairs([("INVENTORY_TLS_CERT", "/etc/tls/inventory.pem")]);
        let error = ServerTls::from_env(&env, "INVENTORY").expect_err("the key is missing");
        assert_eq!(error.variable, "INVENTORY_TLS_KEY");
        assert!(error.reason.contains("INVENTORY_TLS_CERT"), "{error}");

        let env = Env::from_pairs([("CATALOG_TLS_KEY", "/etc/tls/catalog.key")]);
        let error = ServerTls::from_env(&env, "CATALOG").expect_err("the certificate is missing");
        assert_eq!(error.variable, "CATALOG_TLS_CERT");
        let error = ClientTls::from_env(&env, "CATALOG", "INVENTORY").expect_err("same rule for the client identity");
        assert_eq!(error.variable, "CATALOG_TLS_CERT");
    }

    #[test]
    fn a_client_ca_without_the_servers_own_certificate_is_refused() {
        let env = Env::from_pairs([("INVENTORY_TLS_CLIENT_CA", "/etc/tls/clients.pem")]);
        let error = ServerTls::from_env(&env, "INVENTORY").expect_err("no server certificate");
        assert_eq!(error.variable, "INVENTORY_TLS_CLIENT_CA");
        assert_eq!(error.value, "/etc/tls/clients.pem");
        assert!(error.reason.contains("INVENTORY_TLS_CERT"), "{error}");
    }

    #[test]
    fn client_settings_come_from_the_service_and_peer_variables() {
        let env = Env::from_pairs([
            ("CATALOG_INVENTORY_TLS_CA", "/tls/ca.pem"),
            ("CATALOG_INVENTORY_TLS_DOMAIN", "inventory.internal"),
            ("CATALOG_TLS_CERT", "/tls/catalog.pem"),
            ("CATALOG_TLS_KEY", "/tls/catalog.key"),
            ("INVENTORY_TLS_CERT", "/tls/not-this-one.pem"),
        ]);
        let client = ClientTls::from_env(&env, "CATALOG", "INVENTORY").expect("valid");
        let error = endpoint("https://inventory:50052", &client).expect_err("no such files here");
        assert!(matches!(&error, TlsError::Read { path, .. } if path == Path::new("/tls/ca.pem")), "{error}");
        assert_eq!(client.domain.as_deref(), Some("inventory.internal"));
        let shown = format!("{client:?}");
        assert!(shown.contains("/tls/catalog.pem") && shown.contains("/tls/catalog.key"), "{shown}");
        assert!(!shown.contains("not-this-one"), "{shown}");
    }

    #[test]
    fn unreadable_and_unexpected_files_are_named() {
        let scratch = Scratch::new();
        let ca = Ca::new("suite CA");
        let (cert, key) = ca.leaf(SERVER_AUTH);
        let tls = |cert: &str, key: &str| ServerTls { cert: cert.into(), key: key.into(), client_ca: None };

        let missing = scratch.path("missing.pem");
        let error = tls(&missing, &scratch.write("server.key", &key)).config().expect_err("no such file");
        assert!(matches!(&error, TlsError::Read { path, .. } if path == Path::new(&missing)), "{error}");
        assert!(error.to_string().contains(&missing), "{error}");

        let cert = scratch.write("server.pem", &cert);
        let not_pem = scratch.write("notes.txt", "hello");
        let error = tls(&cert, &not_pem).config().expect_err("not a key");
        assert!(matches!(&error, TlsError::Pem { origin, .. } if *origin == not_pem), "{error}");
        let error = tls(&not_pem, &cert).config().expect_err("not a certificate");
        assert!(error.to_string().contains(&not_pem), "{error}");

        let encrypted = scratch.write("encrypted.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n");
        let error = tls(&cert, &encrypted).config().expect_err("encrypted");
        assert!(error.to_string().contains("encrypted"), "{error}");

        let client_ca = Some(scratch.write("client-ca.pem", "no certificates here").into());
        let error = ServerTls { client_ca, ..tls(&cert, &scratch.write("server.key", &key)) }
            .config()
            .expect_err("an empty client CA");
        assert!(error.to_string().contains("client-ca.pem"), "{error}");
    }

    #[test]
    fn a_key_that_does_not_match_its_certificate_fails_at_start_up() {
        let scratch = Scratch::new();
        let ca = Ca::new("suite CA");
        let (cert, _) = ca.leaf(SERVER_AUTH);
        let (_, other_key) = ca.leaf(SERVER_AUTH);
        let tls = ServerTls {
            cert: scratch.write("server.pem", cert).into(),
            key: scratch.write("other.key", other_key).into(),
            client_ca: None,
        };
        let error = tls.config().expect_err("mismatched key");
        assert!(matches!(error, TlsError::Refused { .. }), "{error}");
        assert!(error.to_string().contains("other.key"), "{error}");
    }

    #[test]
    fn bad_urls_are_errors_not_panics() {
        for url in ["", "not a url", "localhost:50052", "ftp://inventory:21", "https://", "unix:///tmp/socket"] {
            let error = endpoint(url, &ClientTls::plain()).expect_err(url);
            assert!(matches!(error, TlsError::Url { .. }), "{url}: {error}");
        }
    }

    #[test]
    fn an_https_peer_needs_a_ca() {
        let client = ClientTls::from_env(&Env::default(), "CATALOG", "INVENTORY").expect("valid");
        let error = endpoint("https://inventory:50052", &client).expect_err("nothing to verify against");
        assert!(matches!(error, TlsError::NoTrustedCa { .. }), "{error}");
        assert!(error.to_string().contains("CATALOG_INVENTORY_TLS_CA"), "{error}");
    }

    #[test]
    fn an_http_peer_ignores_the_tls_settings() {
        let client = ClientTls::new(Some(b"not PEM".to_vec()), None, Some("not a domain!".to_owned()));
        assert!(endpoint("http://127.0.0.1:50052", &client).is_ok());
        let error = endpoint("https://127.0.0.1:50052", &client).expect_err("https reads the CA");
        assert!(matches!(error, TlsError::Pem { .. }), "{error}");
    }

    #[test]
    fn an_invalid_domain_override_is_refused_when_building() {
        let ca = Ca::new("suite CA");
        let error = endpoint("https://127.0.0.1:50052", &ca.client(None, Some("not a domain!"))).expect_err("bad name");
        assert!(matches!(error, TlsError::Refused { .. }), "{error}");
    }

    #[test]
    fn keys_given_in_code_do_not_print() {
        let client = ClientTls::new(None, Some((b"CERT".to_vec(), b"SECRET KEY".to_vec())), None);
        assert!(!format!("{client:?}").contains("SECRET"));
    }

    #[tokio::test]
    async fn a_client_trusting_the_ca_is_served_and_others_are_not() {
        let scratch = Scratch::new();
        let ca = Ca::new("suite CA");
        let port = serve(&server_tls(&scratch, &ca, None)).await;
        let url = format!("https://localhost:{port}");

        assert_eq!(check(&url, &ca.client(None, None)).await, Ok(ServingStatus::Serving));
        assert!(check(&format!("http://127.0.0.1:{port}"), &ClientTls::plain()).await.is_err(), "plaintext");
        let error = check(&url, &Ca::new("other CA").client(None, None)).await.expect_err("another CA");
        assert!(error.contains("UnknownIssuer"), "{error}");
        let by_address = format!("https://127.0.0.1:{port}");
        let error = check(&by_address, &ca.client(None, None)).await.expect_err("the certificate names localhost");
        assert!(error.contains("not valid for name"), "{error}");
        assert_eq!(check(&by_address, &ca.client(None, Some("localhost"))).await, Ok(ServingStatus::Serving));
    }

    #[tokio::test]
    async fn mutual_tls_serves_only_clients_certified_by_the_client_ca() {
        let scratch = Scratch::new();
        let server_ca = Ca::new("server CA");
        let client_ca = Ca::new("client CA");
        let port = serve(&server_tls(&scratch, &server_ca, Some(&client_ca))).await;
        let url = format!("https://localhost:{port}");

        // Under TLS 1.3 the client finishes its side of the handshake before the server checks its
        // certificate, so the refusal arrives as an alert on the first call rather than at connect.
        let error = check(&url, &server_ca.client(None, None)).await.expect_err("no client certificate");
        assert!(error.contains("CertificateRequired"), "{error}");
        let stranger = server_ca.client(Some(Ca::new("other CA").leaf(CLIENT_AUTH)), None);
        let error = check(&url, &stranger).await.expect_err("a certificate from another CA");
        assert!(error.contains("UnknownCA"), "{error}");
        let server_only = server_ca.client(Some(client_ca.leaf(SERVER_AUTH)), None);
        let error = check(&url, &server_only).await.expect_err("a certificate without clientAuth");
        assert!(error.contains("UnsupportedCertificate"), "{error}");

        // The caller's own server certificate, usable both ways, read from files as in production.
        let (cert, key) = client_ca.leaf(BOTH);
        let env = Env::from_pairs([
            ("CATALOG_TLS_CERT", scratch.write("catalog.pem", cert).as_str()),
            ("CATALOG_TLS_KEY", scratch.write("catalog.key", key).as_str()),
            ("CATALOG_INVENTORY_TLS_CA", scratch.write("server-ca.pem", &server_ca.pem).as_str()),
        ]);
        let catalog = ClientTls::from_env(&env, "CATALOG", "INVENTORY").expect("valid");
        assert_eq!(check(&url, &catalog).await, Ok(ServingStatus::Serving));
    }
}
