//! Development PKI, minted with rcgen: server certificates and client
//! certificates carrying an OIN in `subject.serialNumber`, plus CRLs.
//! DEVELOPMENT ONLY: production uses PKIoverheid certificates.
//!
//! Two shapes: [`DevCa`], one CA that is trust anchor and issuer at once
//! (what `certs dev`, the demo and most tests use), and [`DevPki`], a
//! hierarchy like PKIoverheid's (root, domain CA, TSP CAs) in which a
//! client must present its intermediates because the gateway trusts the
//! root only.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, DnValue, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("no such TSP in this development PKI")]
    UnknownTsp,
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A freshly issued certificate and its key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, followed by the intermediate CA certificates a
    /// client presents with it (end entity first, the trust anchor left
    /// out). A [`DevCa`] issues directly under its anchor, so there it is
    /// the certificate alone; a [`DevPki`] certificate carries its TSP CA
    /// and domain CA.
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: u64,
}

impl Issued {
    /// The end-entity certificate alone, without the intermediates.
    pub fn end_entity_pem(&self) -> &str {
        const END: &str = "-----END CERTIFICATE-----";
        let Some(i) = self.cert_pem.find(END) else {
            return &self.cert_pem;
        };
        let end = i + END.len();
        let rest = &self.cert_pem[end..];
        let eol = rest.len() - rest.trim_start_matches(['\r', '\n']).len();
        &self.cert_pem[..end + eol]
    }
}

/// What a client certificate should look like; the defaults give a valid
/// client certificate for one year.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub common_name: String,
    /// `subject.organizationName`; the common name when `None`.
    pub organisation: Option<String>,
    pub oin: Option<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// Extended key usage: `clientAuth` unless overridden (tests use
    /// `serverAuth` to check that a wrong key usage is refused).
    pub eku: ExtendedKeyUsagePurpose,
}

impl ClientSpec {
    pub fn new(common_name: &str, oin: Option<&str>) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            common_name: common_name.to_owned(),
            organisation: None,
            oin: oin.map(str::to_owned),
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
            eku: ExtendedKeyUsagePurpose::ClientAuth,
        }
    }

    /// The same, with `organisation` as `subject.organizationName`.
    #[must_use]
    pub fn with_organisation(mut self, organisation: &str) -> Self {
        self.organisation = Some(organisation.to_owned());
        self
    }

    /// The certificate parameters: C=NL, O, CN, the OIN in
    /// `subject.serialNumber`, key usage digitalSignature and the EKU.
    fn params(&self) -> Result<CertificateParams, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let org = self.organisation.as_deref().unwrap_or(&self.common_name);
        let mut d = dn(&self.common_name, org);
        if let Some(oin) = &self.oin {
            // subject.serialNumber (2.5.4.5), where PKIoverheid carries the OIN.
            d.push(
                DnType::CustomDnType(vec![2, 5, 4, 5]),
                DnValue::Utf8String(oin.clone()),
            );
        }
        params.distinguished_name = d;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![self.eku.clone()];
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        Ok(params)
    }
}

fn dn(cn: &str, org: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "NL");
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, cn);
    dn
}

/// Server certificate parameters for `names` (DNS names or IP addresses).
fn server_params(names: &[&str]) -> Result<CertificateParams, CertError> {
    let mut params =
        CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
    params.distinguished_name = dn(
        names.first().copied().unwrap_or("server"),
        "Poortwachter DEVELOPMENT ONLY",
    );
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(365);
    Ok(params)
}

/// A certificate authority: its certificate and the key that signs for it.
struct Authority {
    params: CertificateParams,
    key: KeyPair,
    cert_pem: String,
}

impl Authority {
    /// A CA certificate for `name`, valid for ten years: self-signed without
    /// `parent`, else issued by `parent` under `serial`.
    fn new(
        name: DistinguishedName,
        constraints: BasicConstraints,
        parent: Option<(&Authority, u64)>,
    ) -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(constraints);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = match parent {
            None => params.self_signed(&key)?,
            Some((parent, serial)) => {
                params.serial_number = Some(SerialNumber::from(serial));
                params.use_authority_key_identifier_extension = true;
                params.signed_by(&key, &parent.issuer())?
            }
        };
        Ok(Self {
            cert_pem: cert.pem(),
            params,
            key,
        })
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// Signs `params` under `serial` for a fresh key; the certificate and
    /// the key, PEM-encoded.
    fn sign(&self, mut params: CertificateParams, serial: u64) -> Result<Issued, CertError> {
        params.serial_number = Some(SerialNumber::from(serial));
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer())?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        })
    }

    /// A CRL revoking `serials`, valid from `this_update` to `next_update`.
    fn crl(
        &self,
        serials: &[u64],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<String, CertError> {
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: SerialNumber::from(*s),
                    revocation_time: this_update,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer())?.pem()?)
    }
}

/// A development certificate authority: one CA that is both the trust
/// anchor and the issuer of every certificate.
pub struct DevCa {
    ca: Authority,
    pub cert_pem: String,
    next_serial: u64,
}

impl DevCa {
    pub fn new(name: &str) -> Result<Self, CertError> {
        let ca = Authority::new(
            dn(name, "Poortwachter DEVELOPMENT ONLY"),
            BasicConstraints::Unconstrained,
            None,
        )?;
        Ok(Self {
            cert_pem: ca.cert_pem.clone(),
            ca,
            next_serial: 1000,
        })
    }

    fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&mut self, names: &[&str]) -> Result<Issued, CertError> {
        let serial = self.serial();
        self.ca.sign(server_params(names)?, serial)
    }

    /// A client certificate per `spec`.
    pub fn client(&mut self, spec: &ClientSpec) -> Result<Issued, CertError> {
        let serial = self.serial();
        self.ca.sign(spec.params()?, serial)
    }

    /// A CRL revoking `serials`, valid from `this_update` to `next_update`.
    pub fn crl(
        &self,
        serials: &[u64],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<String, CertError> {
        self.ca.crl(serials, this_update, next_update)
    }

    /// A CRL revoking `serials`, valid for a day.
    pub fn current_crl(&self, serials: &[u64]) -> Result<String, CertError> {
        let now = OffsetDateTime::now_utc();
        self.crl(serials, now - Duration::minutes(5), now + Duration::days(1))
    }
}

/// The names of the development PKIoverheid hierarchy [`DevPki::new`] builds.
pub const DEV_ROOT_CA: &str = "Staat der Nederlanden Private Root CA - G1 (dev)";
pub const DEV_DOMAIN_CA: &str = "Staat der Nederlanden Private Services CA - G1 (dev)";
const DEV_STATE: &str = "Staat der Nederlanden (DEVELOPMENT ONLY)";

/// A TSP CA of a [`DevPki`], as [`DevPki::tsp`] returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tsp(usize);

/// A TSP CA: the authority and the serial its domain CA gave it.
struct TspCa {
    ca: Authority,
    serial: u64,
}

/// Which CA of a [`DevPki`] issued a serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IssuedBy {
    Root,
    Domain,
    Tsp(usize),
}

/// A development PKI shaped like PKIoverheid's private hierarchy:
///
/// ```text
/// Staat der Nederlanden Private Root CA - G1 (dev)        trust anchor
/// └── Staat der Nederlanden Private Services CA - G1 (dev)  domain CA
///     ├── <TSP A> CA                                          TSP CA
///     │   └── organisation certificate (OIN in serialNumber)
///     └── <TSP B> CA ...
/// ```
///
/// A gateway trusts the root only, so a client presents its certificate
/// together with its TSP CA and the domain CA ([`Issued::cert_pem`] holds
/// that chain). Serial numbers are unique across the whole PKI, so a list
/// of revoked serials is enough to write every CA's CRL ([`DevPki::crls`]).
pub struct DevPki {
    root: Authority,
    domain: Authority,
    tsps: Vec<TspCa>,
    serials: Serials,
}

/// Serial numbers handed out in a [`DevPki`], and which CA issued each.
struct Serials {
    last: u64,
    issued: Vec<(u64, IssuedBy)>,
}

impl Serials {
    fn take(&mut self, by: IssuedBy) -> u64 {
        self.last += 1;
        self.issued.push((self.last, by));
        self.last
    }

    /// Those of `revoked` that `by` issued.
    fn revoked_by(&self, by: IssuedBy, revoked: &[u64]) -> Vec<u64> {
        self.issued
            .iter()
            .filter(|(s, b)| *b == by && revoked.contains(s))
            .map(|(s, _)| *s)
            .collect()
    }
}

impl DevPki {
    /// The development hierarchy under [`DEV_ROOT_CA`] and [`DEV_DOMAIN_CA`],
    /// with no TSP yet.
    pub fn new() -> Result<Self, CertError> {
        Self::named(DEV_ROOT_CA, DEV_DOMAIN_CA)
    }

    /// A hierarchy with other names for its root and domain CA (another
    /// root, for tests of what a gateway must not trust).
    pub fn named(root: &str, domain: &str) -> Result<Self, CertError> {
        let mut serials = Serials {
            last: 2000,
            issued: Vec::new(),
        };
        let root = Authority::new(dn(root, DEV_STATE), BasicConstraints::Unconstrained, None)?;
        // The domain CA issues TSP CAs, which issue end entities: one CA
        // below it at most.
        let domain = Authority::new(
            dn(domain, DEV_STATE),
            BasicConstraints::Constrained(1),
            Some((&root, serials.take(IssuedBy::Root))),
        )?;
        Ok(Self {
            root,
            domain,
            tsps: Vec::new(),
            serials,
        })
    }

    /// The root certificate: the one trust anchor a gateway configures.
    pub fn root_pem(&self) -> &str {
        &self.root.cert_pem
    }

    /// The domain CA's certificate.
    pub fn domain_pem(&self) -> &str {
        &self.domain.cert_pem
    }

    /// Adds a TSP CA named `name` (its common name and organisation),
    /// issued by the domain CA and allowed to issue end entities only.
    pub fn tsp(&mut self, name: &str) -> Result<Tsp, CertError> {
        let serial = self.serials.take(IssuedBy::Domain);
        let ca = Authority::new(
            dn(name, name),
            BasicConstraints::Constrained(0),
            Some((&self.domain, serial)),
        )?;
        self.tsps.push(TspCa { ca, serial });
        Ok(Tsp(self.tsps.len() - 1))
    }

    fn tsp_ca(&self, tsp: Tsp) -> Result<&TspCa, CertError> {
        self.tsps.get(tsp.0).ok_or(CertError::UnknownTsp)
    }

    /// The TSP CA's certificate.
    pub fn tsp_pem(&self, tsp: Tsp) -> Result<&str, CertError> {
        Ok(&self.tsp_ca(tsp)?.ca.cert_pem)
    }

    /// The serial number of the TSP CA's certificate (to revoke the TSP
    /// itself on the domain CA's CRL).
    pub fn tsp_serial(&self, tsp: Tsp) -> Result<u64, CertError> {
        Ok(self.tsp_ca(tsp)?.serial)
    }

    /// The intermediates a certificate of `tsp` is presented with: the TSP
    /// CA, then the domain CA.
    pub fn intermediates_pem(&self, tsp: Tsp) -> Result<String, CertError> {
        Ok(format!("{}{}", self.tsp_pem(tsp)?, self.domain.cert_pem))
    }

    fn issue(&mut self, tsp: Tsp, params: CertificateParams) -> Result<Issued, CertError> {
        let intermediates = self.intermediates_pem(tsp)?;
        let serial = self.serials.take(IssuedBy::Tsp(tsp.0));
        let mut issued = self.tsp_ca(tsp)?.ca.sign(params, serial)?;
        issued.cert_pem.push_str(&intermediates);
        Ok(issued)
    }

    /// An organisation certificate per `spec`, issued by `tsp`; its
    /// `cert_pem` is the chain a client presents (end entity, TSP CA,
    /// domain CA).
    pub fn client(&mut self, tsp: Tsp, spec: &ClientSpec) -> Result<Issued, CertError> {
        self.issue(tsp, spec.params()?)
    }

    /// A server certificate for `names` issued by `tsp`, with its chain.
    pub fn server(&mut self, tsp: Tsp, names: &[&str]) -> Result<Issued, CertError> {
        self.issue(tsp, server_params(names)?)
    }

    /// One CRL from every CA of the hierarchy (root, domain CA, each TSP
    /// CA, PEM blocks in that order), each revoking those of `revoked` it
    /// issued, valid from `this_update` to `next_update`. A gateway checks
    /// revocation along the whole chain, so it needs all of them.
    pub fn crls(
        &self,
        revoked: &[u64],
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<String, CertError> {
        let by = |who| self.serials.revoked_by(who, revoked);
        let mut out = self
            .root
            .crl(&by(IssuedBy::Root), this_update, next_update)?;
        out.push_str(
            &self
                .domain
                .crl(&by(IssuedBy::Domain), this_update, next_update)?,
        );
        for (i, t) in self.tsps.iter().enumerate() {
            out.push_str(&t.ca.crl(&by(IssuedBy::Tsp(i)), this_update, next_update)?);
        }
        Ok(out)
    }

    /// [`DevPki::crls`] valid for a day.
    pub fn current_crls(&self, revoked: &[u64]) -> Result<String, CertError> {
        let now = OffsetDateTime::now_utc();
        self.crls(revoked, now - Duration::minutes(5), now + Duration::days(1))
    }
}

fn write(path: &Path, contents: &str, secret: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.display().to_string(),
        source,
    };
    if secret {
        let _ = std::fs::remove_file(path);
        crate::audit::pseudonym::write_secret(path, contents.as_bytes()).map_err(io)
    } else {
        std::fs::write(path, contents).map_err(io)
    }
}

/// Files `certs dev` writes, relative to its directory.
pub const CA_FILE: &str = "ca.pem";
pub const CRL_FILE: &str = "crl.pem";
pub const GATEWAY_CERT: &str = "gateway.pem";
pub const GATEWAY_KEY: &str = "gateway-key.pem";

/// The development TSPs: certificate holders alternate between them, as
/// partners in a real region buy their certificates from different TSPs.
const DEV_TSPS: [&str; 2] = [
    "Dev TSP A PKIoverheid Organisatie Services CA - G3",
    "Dev TSP B PKIoverheid Organisatie Services CA - G3",
];

/// Writes a development PKI shaped like PKIoverheid into `dir`: the root
/// (`ca.pem`, the one trust anchor), the gateway's server certificate (for
/// `localhost` and `127.0.0.1`), one client certificate per `(id, OIN)`
/// (OIN in `subject.serialNumber`), each file holding the chain a client
/// presents (end entity, TSP CA, domain CA), and one CRL per CA
/// (`crl.pem`). Existing files are replaced.
pub fn write_dev_pki(dir: &Path, orgs: &[(String, Option<String>)]) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut pki = DevPki::new()?;
    let tsps = [pki.tsp(DEV_TSPS[0])?, pki.tsp(DEV_TSPS[1])?];
    write(&dir.join(CA_FILE), pki.root_pem(), false)?;
    let gw = pki.server(tsps[0], &["localhost", "127.0.0.1"])?;
    write(&dir.join(GATEWAY_CERT), &gw.cert_pem, false)?;
    write(&dir.join(GATEWAY_KEY), &gw.key_pem, true)?;
    for (i, (id, oin)) in orgs.iter().enumerate() {
        let c = pki.client(tsps[i % 2], &ClientSpec::new(id, oin.as_deref()))?;
        write(&dir.join(format!("{id}.pem")), &c.cert_pem, false)?;
        write(&dir.join(format!("{id}-key.pem")), &c.key_pem, true)?;
    }
    // Long-lived empty CRLs: the demo enforces CRL expiry like production,
    // and a development checkout should not start refusing everyone tomorrow.
    let now = OffsetDateTime::now_utc();
    write(
        &dir.join(CRL_FILE),
        &pki.crls(&[], now - Duration::minutes(5), now + Duration::days(3650))?,
        false,
    )?;
    write(
        &dir.join("README.txt"),
        "DEVELOPMENT ONLY. These certificates and keys were generated by `poortwachter certs dev`.\nNever use them outside a development machine.\n",
        false,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
    use x509_parser::prelude::{FromDer, X509Certificate};

    fn ders(pem: &str) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(Result::unwrap)
            .collect()
    }

    fn subject_cn(der: &CertificateDer<'_>) -> String {
        let (_, c) = X509Certificate::from_der(der.as_ref()).unwrap();
        c.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_pki_client_certificate_carries_its_chain_end_entity_first() {
        let mut pki = DevPki::new().unwrap();
        let a = pki
            .tsp("Dev TSP A PKIoverheid Organisatie Services CA - G3")
            .unwrap();
        let spec = ClientSpec::new("Leerplicht", Some("00000099000000000101"))
            .with_organisation("Gemeente Groningen");
        let issued = pki.client(a, &spec).unwrap();
        let chain = ders(&issued.cert_pem);
        let names: Vec<String> = chain.iter().map(subject_cn).collect();
        assert_eq!(
            names,
            [
                "Leerplicht",
                "Dev TSP A PKIoverheid Organisatie Services CA - G3",
                DEV_DOMAIN_CA
            ]
        );
        let (_, ee) = X509Certificate::from_der(chain[0].as_ref()).unwrap();
        let serial_number = ee
            .subject()
            .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
            .next()
            .unwrap();
        assert_eq!(serial_number.as_str().unwrap(), "00000099000000000101");
        let org = ee.subject().iter_organization().next().unwrap();
        assert_eq!(org.as_str().unwrap(), "Gemeente Groningen");
        assert!(ee.extended_key_usage().unwrap().unwrap().value.client_auth);
        assert!(ee.key_usage().unwrap().unwrap().value.digital_signature());
        assert!(!ee.is_ca());
        assert_eq!(
            ders(issued.end_entity_pem()),
            chain[..1],
            "the end entity alone"
        );
        assert_eq!(subject_cn(&ders(pki.root_pem())[0]), DEV_ROOT_CA);
    }

    #[test]
    fn crls_come_from_every_ca_and_route_each_serial_to_its_issuer() {
        let mut pki = DevPki::new().unwrap();
        let a = pki.tsp("TSP A").unwrap();
        let b = pki.tsp("TSP B").unwrap();
        let from_a = pki.client(a, &ClientSpec::new("x", None)).unwrap();
        let from_b = pki.client(b, &ClientSpec::new("y", None)).unwrap();
        assert_ne!(from_a.serial, from_b.serial);
        let pem = pki
            .current_crls(&[from_b.serial, pki.tsp_serial(a).unwrap()])
            .unwrap();
        let crls: Vec<_> = CertificateRevocationListDer::pem_slice_iter(pem.as_bytes())
            .map(Result::unwrap)
            .collect();
        // root, domain CA, TSP A, TSP B.
        let revoked: Vec<Vec<u64>> = crls
            .iter()
            .map(|c| {
                let (_, crl) =
                    x509_parser::revocation_list::CertificateRevocationList::from_der(c.as_ref())
                        .unwrap();
                crl.iter_revoked_certificates()
                    .map(|r| u64::try_from(r.serial()).unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(
            revoked,
            [
                vec![],
                vec![pki.tsp_serial(a).unwrap()],
                vec![],
                vec![from_b.serial]
            ]
        );
        assert!(matches!(pki.tsp_pem(Tsp(9)), Err(CertError::UnknownTsp)));
    }

    #[test]
    fn a_dev_ca_certificate_is_its_own_end_entity() {
        let mut ca = DevCa::new("Test CA").unwrap();
        let c = ca.client(&ClientSpec::new("x", None)).unwrap();
        assert_eq!(c.end_entity_pem(), c.cert_pem);
        assert_eq!(ders(&c.cert_pem).len(), 1);
    }
}
