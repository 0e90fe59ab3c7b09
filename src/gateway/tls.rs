//! Everything rustls: the mTLS server configuration (client certificates
//! verified against configured trust anchors and CRLs), its hot reload, and
//! the client configuration for https bronnen. No other module builds TLS
//! configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};
use tokio::sync::mpsc;

use crate::config::{TlsConfig, TlsVersion, UpstreamConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not readable as PEM")]
    Pem {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path}: no {what} found")]
    Missing { path: PathBuf, what: &'static str },
    #[error("{path}: not a usable trust anchor")]
    Anchor {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("client certificate verifier rejected")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("TLS configuration rejected")]
    Rustls(#[from] rustls::Error),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Reads every certificate in a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(&bytes).collect();
    let certs = certs.map_err(|source| TlsError::Pem {
        path: path.to_owned(),
        source,
    })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

/// Seconds since the epoch at which the first certificate in `path` expires
/// (for `/metrics`).
pub fn certificate_not_after(path: &Path) -> Option<i64> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let certs = load_certs(path).ok()?;
    let der = certs.first()?;
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Reads the first private key in a PEM file. The key is never logged.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|source| match source {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Missing {
            path: path.to_owned(),
            what: "private key",
        },
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    })
}

/// Reads CRLs from a PEM file (one or more `X509 CRL` blocks) or a DER file.
pub fn load_crls(path: &Path) -> Result<Vec<CertificateRevocationListDer<'static>>, TlsError> {
    let bytes = read(path)?;
    if bytes.starts_with(b"-----") {
        let crls: Result<Vec<_>, _> =
            CertificateRevocationListDer::pem_slice_iter(&bytes).collect();
        crls.map_err(|source| TlsError::Pem {
            path: path.to_owned(),
            source,
        })
    } else {
        Ok(vec![CertificateRevocationListDer::from(bytes)])
    }
}

fn roots(paths: &[PathBuf]) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    for p in paths {
        for c in load_certs(p)? {
            store.add(c).map_err(|source| TlsError::Anchor {
                path: p.clone(),
                source,
            })?;
        }
    }
    Ok(store)
}

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
static TLS13_AND_12: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn versions(min: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    match min {
        TlsVersion::V1_3 => TLS13_ONLY,
        TlsVersion::V1_2 => TLS13_AND_12,
    }
}

/// A client certificate refused during the handshake. `genuine` is true when
/// the certificate chains to a trust anchor and was refused only for its
/// validity period, revocation or key usage: then its subject really is the
/// organisation it names, and the refusal belongs in the audit trail.
#[derive(Debug, Clone)]
pub struct TlsRefusal {
    pub end_entity: Vec<u8>,
    pub reason: &'static str,
    pub genuine: bool,
}

fn refusal_reason(e: &rustls::Error) -> (&'static str, bool) {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                ("certificate-expired", true)
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                ("certificate-not-yet-valid", true)
            }
            CertificateError::Revoked => ("certificate-revoked", true),
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                ("certificate-wrong-key-usage", true)
            }
            CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. } => ("crl-expired", true),
            CertificateError::UnknownRevocationStatus => ("revocation-status-unknown", true),
            CertificateError::UnknownIssuer => ("certificate-unknown-issuer", false),
            CertificateError::BadSignature => ("certificate-bad-signature", false),
            _ => ("certificate-refused", false),
        },
        _ => ("certificate-refused", false),
    }
}

/// Wraps the webpki verifier to report refusals (never changing a decision).
#[derive(Debug)]
struct ReportingVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    refusals: mpsc::Sender<TlsRefusal>,
}

impl ClientCertVerifier for ReportingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let r = self
            .inner
            .verify_client_cert(end_entity, intermediates, now);
        if let Err(e) = &r {
            let (reason, genuine) = refusal_reason(e);
            // Never block the handshake on reporting: drop when the queue is full.
            let _ = self.refusals.try_send(TlsRefusal {
                end_entity: end_entity.as_ref().to_vec(),
                reason,
                genuine,
            });
        }
        r
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Builds the mTLS server configuration: a client certificate is mandatory
/// and must chain to `client_ca`; configured CRLs are enforced (an expired
/// CRL denies unless `allow_expired_crl`). ALPN offers h2 and http/1.1.
/// Refused certificates are reported on `refusals` when given.
pub fn server_config(
    cfg: &TlsConfig,
    refusals: Option<mpsc::Sender<TlsRefusal>>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = provider();
    let roots = Arc::new(roots(&cfg.client_ca)?);
    let mut crls = Vec::new();
    for p in &cfg.crls {
        crls.extend(load_crls(p)?);
    }
    let mut vb = WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(&provider));
    if !crls.is_empty() {
        vb = vb.with_crls(crls);
        if !cfg.allow_expired_crl {
            vb = vb.enforce_revocation_expiration();
        }
        if cfg.allow_unknown_revocation {
            vb = vb.allow_unknown_revocation_status();
        }
    }
    let mut verifier = vb.build()?;
    if let Some(tx) = refusals {
        verifier = Arc::new(ReportingVerifier {
            inner: verifier,
            refusals: tx,
        });
    }
    let certs = load_certs(&cfg.cert)?;
    let key = load_key(&cfg.key)?;
    let mut sc = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions(cfg.min_version))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    sc.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Session resumption skips client certificate verification on the
    // resumed connection; identity must come from a fresh verification (and
    // a revocation must bite immediately), so resumption is off.
    sc.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    sc.send_tls13_tickets = 0;
    Ok(Arc::new(sc))
}

/// The server configuration currently in force. New connections pick up a
/// reloaded configuration (certificates, trust anchors, CRLs); established
/// connections keep theirs.
pub struct ServerTls {
    cfg: TlsConfig,
    current: ArcSwap<ServerConfig>,
    refusals: Option<mpsc::Sender<TlsRefusal>>,
}

impl ServerTls {
    pub fn new(cfg: TlsConfig) -> Result<Self, TlsError> {
        Self::with_refusals(cfg, None)
    }

    /// Like [`ServerTls::new`], reporting refused client certificates on `refusals`.
    pub fn with_refusals(
        cfg: TlsConfig,
        refusals: Option<mpsc::Sender<TlsRefusal>>,
    ) -> Result<Self, TlsError> {
        let sc = server_config(&cfg, refusals.clone())?;
        Ok(Self {
            cfg,
            current: ArcSwap::new(sc),
            refusals,
        })
    }

    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }

    /// Re-reads certificates, trust anchors and CRLs; on error the current
    /// configuration stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let sc = server_config(&self.cfg, self.refusals.clone())?;
        self.current.store(sc);
        Ok(())
    }
}

/// Client configuration for https bronnen: only the configured trust
/// anchors, and the gateway's own client certificate when configured.
pub fn upstream_client_config(cfg: &UpstreamConfig) -> Result<ClientConfig, TlsError> {
    let roots = roots(&cfg.ca)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(TLS13_AND_12)?
        .with_root_certificates(roots);
    let mut cc = match (&cfg.client_cert, &cfg.client_key) {
        (Some(c), Some(k)) => builder.with_client_auth_cert(load_certs(c)?, load_key(k)?)?,
        _ => builder.with_no_client_auth(),
    };
    // ALPN is left to the connector (hyper-rustls sets it from the enabled
    // HTTP versions and refuses a pre-set list).
    cc.alpn_protocols.clear();
    Ok(cc)
}
