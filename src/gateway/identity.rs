//! Partner identity: maps a client certificate that rustls has *already
//! verified* to an organisation of the partner registry, or to a software
//! supplier acting for one. Identity never comes from request headers alone:
//! the one header that matters, `X-Namens` (the OIN of the organisation a
//! supplier acts for), is honoured only from a supplier's certificate and
//! only while an active mandate covers the casusoverleg; from anyone else it
//! is refused, never ignored.

use http::HeaderMap;
use ring::digest;
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::policy::mandate::Missing;
use crate::policy::model::PolicySet;

/// The request header naming the organisation a supplier acts for: its
/// 20-character OIN (Edukoppeling names the principal by OIN in the message,
/// FSC names the delegator by its peer id, which is the OIN).
pub const PRINCIPAL_HEADER: &str = "x-namens";

/// Who is calling: the organisation everything is decided for, and the
/// supplier the request came through (its certificate is the peer's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub org: String,
    pub supplier: Option<String>,
}

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
    /// A supplier's certificate without `X-Namens`.
    #[error("a supplier must name the organisation it acts for in X-Namens (its OIN)")]
    PrincipalRequired,
    /// `X-Namens` repeated, not an OIN, or named in `Connection`.
    #[error("X-Namens must appear once and hold a 20-character OIN")]
    PrincipalMalformed,
    /// `X-Namens` from an organisation's own certificate.
    #[error("X-Namens is only accepted from a software supplier's certificate")]
    PrincipalNotAllowed,
    /// No active mandate lets the supplier act for the named organisation here.
    #[error("no mandate: {}", .0.as_str())]
    NoMandate(Missing),
}

/// The principal named in `X-Namens`, if any: once, an OIN, and not named
/// in `Connection` (a hop-by-hop header could be stripped by a proxy in
/// front, so a request that tries is refused).
pub fn principal(headers: &HeaderMap) -> Result<Option<String>, IdentityError> {
    let hop_by_hop = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(PRINCIPAL_HEADER));
    let mut values = headers.get_all(PRINCIPAL_HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return if hop_by_hop || headers.contains_key(PRINCIPAL_HEADER) {
            Err(IdentityError::PrincipalMalformed)
        } else {
            Ok(None)
        };
    };
    let oin = value
        .to_str()
        .map_err(|_| IdentityError::PrincipalMalformed)?
        .trim()
        .to_ascii_uppercase();
    if hop_by_hop || crate::policy::oin::Oin::parse(&oin).is_err() {
        return Err(IdentityError::PrincipalMalformed);
    }
    Ok(Some(oin))
}

/// Whom a verified certificate belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Organisation(String),
    Supplier(String),
}

/// The organisation or the software supplier `cert` belongs to: exactly
/// one, or refused (unknown, or matching several).
pub fn holder(set: &PolicySet, cert: &PeerCert) -> Result<Holder, IdentityError> {
    let supplier = set.mandates.suppliers.values().find(|s| {
        cert.serial_number.as_deref() == Some(s.oin.as_str())
            && (s.fingerprints.is_empty() || s.fingerprints.contains(&cert.fingerprint))
    });
    match (supplier, organisation_for(set, cert)) {
        (None, org) => org.map(Holder::Organisation),
        (Some(s), Err(_)) => Ok(Holder::Supplier(s.id.clone())),
        (Some(s), Ok(org)) => Err(IdentityError::Ambiguous(vec![org, s.id.clone()])),
    }
}

/// Who is calling, for a request about `overleg` (when the path names one)
/// at `now` (unix seconds): an organisation for itself (refused when it
/// names a principal), or a supplier for the principal named in
/// `X-Namens` while an active client mandate covers the overleg.
pub fn act_for(
    set: &PolicySet,
    holder: Holder,
    principal: Option<&str>,
    overleg: Option<&str>,
    now: i64,
) -> Result<Caller, IdentityError> {
    let supplier = match holder {
        Holder::Organisation(_) if principal.is_some() => {
            return Err(IdentityError::PrincipalNotAllowed);
        }
        Holder::Organisation(org) => {
            return Ok(Caller {
                org,
                supplier: None,
            });
        }
        Holder::Supplier(s) => s,
    };
    let oin = principal.ok_or(IdentityError::PrincipalRequired)?;
    let org = set
        .mandates
        .principal(oin)
        .ok_or(IdentityError::NoMandate(Missing::UnknownPrincipal))?;
    set.mandates
        .acting_for(&supplier, org, overleg, now)
        .map_err(IdentityError::NoMandate)?;
    Ok(Caller {
        org: org.to_owned(),
        supplier: Some(supplier),
    })
}

/// [`holder`] then [`act_for`].
pub fn caller(
    set: &PolicySet,
    cert: &PeerCert,
    principal: Option<&str>,
    overleg: Option<&str>,
    now: i64,
) -> Result<Caller, IdentityError> {
    act_for(set, holder(set, cert)?, principal, overleg, now)
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
            mandates: crate::policy::mandate::Mandates::default(),
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
