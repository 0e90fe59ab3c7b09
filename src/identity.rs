//! Partner identity: maps a client certificate that rustls has *already
//! verified* to an organisation of the partner registry. Identity never comes
//! from request headers.

use ring::digest;
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::policy::set::PolicySet;

/// The verified peer, as far as the certificate tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCert {
    /// SHA-256 of the end-entity certificate (DER).
    pub fingerprint: [u8; 32],
    /// `subject.serialNumber`, upper-cased, when present (the OIN for PKIoverheid).
    pub serial_number: Option<String>,
    /// Seconds since the epoch when the certificate expires.
    pub not_after: i64,
}

impl PeerCert {
    pub fn fingerprint_hex(&self) -> String {
        crate::policy::load::hex(&self.fingerprint)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("no client certificate was presented")]
    NoCertificate,
    #[error("the client certificate cannot be parsed")]
    Unparsable,
    #[error("the client certificate maps to no organisation in the partner registry")]
    Unknown,
    #[error("the client certificate maps to more than one organisation ({})", .0.join(", "))]
    Ambiguous(Vec<String>),
}

/// Reads the end-entity certificate of a verified chain.
pub fn peer_cert(chain: Option<&[CertificateDer<'_>]>) -> Result<PeerCert, IdentityError> {
    let ee = chain
        .and_then(|c| c.first())
        .ok_or(IdentityError::NoCertificate)?;
    let fp = digest::digest(&digest::SHA256, ee.as_ref());
    let mut fingerprint = [0u8; 32];
    fingerprint.copy_from_slice(fp.as_ref());
    let (_, cert) =
        X509Certificate::from_der(ee.as_ref()).map_err(|_| IdentityError::Unparsable)?;
    let mut serials = cert
        .subject()
        .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER);
    let serial_number = serials
        .next()
        .and_then(|a| a.as_str().ok())
        .map(|s| s.trim().to_ascii_uppercase());
    // Two serialNumber attributes would make the OIN ambiguous.
    if serials.next().is_some() {
        return Err(IdentityError::Unparsable);
    }
    Ok(PeerCert {
        fingerprint,
        serial_number,
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Maps a verified certificate to exactly one organisation id.
///
/// An organisation matches when its OIN equals the certificate's
/// `subject.serialNumber` (and, if it lists pins, the fingerprint is pinned),
/// or, without an OIN, when the fingerprint is pinned.
pub fn organisation_for(set: &PolicySet, cert: &PeerCert) -> Result<String, IdentityError> {
    let matches: Vec<&str> = set
        .organisations
        .values()
        .filter(|o| {
            let pinned = o.fingerprints.contains(&cert.fingerprint);
            match &o.oin {
                Some(oin) => {
                    cert.serial_number.as_deref() == Some(oin.as_str())
                        && (o.fingerprints.is_empty() || pinned)
                }
                None => pinned,
            }
        })
        .map(|o| o.id.as_str())
        .collect();
    match matches.as_slice() {
        [] => Err(IdentityError::Unknown),
        [one] => Ok((*one).to_owned()),
        many => Err(IdentityError::Ambiguous(
            many.iter().map(|s| (*s).to_owned()).collect(),
        )),
    }
}
