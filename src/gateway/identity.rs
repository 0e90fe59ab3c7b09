//! Partner identity: maps a client certificate that rustls has *already
//! verified* to an organisation of the partner registry. Identity never comes
//! from request headers.

use ring::digest;
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::policy::model::PolicySet;

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
        crate::hex::encode(&self.fingerprint)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::model::{Organisation, PolicySet};
    use std::collections::BTreeMap;

    fn org(id: &str, oin: Option<&str>, pins: &[[u8; 32]]) -> Organisation {
        Organisation {
            id: id.into(),
            name: id.into(),
            kind: "other".into(),
            oin: oin.map(str::to_owned),
            brin: None,
            fingerprints: pins.to_vec(),
            privacy_officer: false,
        }
    }

    fn set(orgs: Vec<Organisation>) -> PolicySet {
        PolicySet {
            version: String::new(),
            organisations: orgs.into_iter().map(|o| (o.id.clone(), o)).collect(),
            bronnen: BTreeMap::new(),
            overleggen: BTreeMap::new(),
            shared_hash: String::new(),
        }
    }

    fn cert(fp: u8, serial: Option<&str>) -> PeerCert {
        PeerCert {
            fingerprint: [fp; 32],
            serial_number: serial.map(str::to_owned),
            not_after: 0,
        }
    }

    #[test]
    fn maps_by_oin_by_pin_and_by_both() {
        let s = set(vec![
            org("a", Some("00000099000000000001"), &[]),
            org("b", None, &[[7; 32]]),
            org("c", Some("00000099000000000003"), &[[9; 32]]),
        ]);
        assert_eq!(
            organisation_for(&s, &cert(1, Some("00000099000000000001"))),
            Ok("a".into())
        );
        assert_eq!(organisation_for(&s, &cert(7, None)), Ok("b".into()));
        // OIN matches but the certificate is not the pinned one.
        assert_eq!(
            organisation_for(&s, &cert(1, Some("00000099000000000003"))),
            Err(IdentityError::Unknown)
        );
        assert_eq!(
            organisation_for(&s, &cert(9, Some("00000099000000000003"))),
            Ok("c".into())
        );
        assert_eq!(
            organisation_for(&s, &cert(1, None)),
            Err(IdentityError::Unknown)
        );
    }

    #[test]
    fn ambiguous_certificates_are_refused() {
        let s = set(vec![
            org("a", Some("00000099000000000001"), &[]),
            org("b", None, &[[5; 32]]),
        ]);
        let r = organisation_for(&s, &cert(5, Some("00000099000000000001")));
        assert_eq!(
            r,
            Err(IdentityError::Ambiguous(vec!["a".into(), "b".into()]))
        );
    }
}
