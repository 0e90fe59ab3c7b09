//! Development PKI, minted with rcgen: a CA, server certificates and client
//! certificates carrying an OIN in `subject.serialNumber`, plus CRLs.
//! DEVELOPMENT ONLY: production uses PKIoverheid certificates.

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
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A freshly issued certificate and its key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: u64,
}

/// What a client certificate should look like; the defaults give a valid
/// client certificate for one year.
#[derive(Debug, Clone)]
pub struct ClientSpec {
    pub common_name: String,
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
            oin: oin.map(str::to_owned),
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
            eku: ExtendedKeyUsagePurpose::ClientAuth,
        }
    }
}

/// A development certificate authority.
pub struct DevCa {
    params: CertificateParams,
    key: KeyPair,
    pub cert_pem: String,
    next_serial: u64,
}

fn dn(cn: &str, org: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "NL");
    dn.push(DnType::OrganizationName, org);
    dn.push(DnType::CommonName, cn);
    dn
}

impl DevCa {
    pub fn new(name: &str) -> Result<Self, CertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(name, "Poortwachter DEVELOPMENT ONLY");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        params.key_identifier_method = KeyIdMethod::Sha256;
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            params,
            key,
            next_serial: 1000,
        })
    }

    fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    fn sign(&mut self, mut params: CertificateParams) -> Result<Issued, CertError> {
        let serial = self.serial();
        params.serial_number = Some(SerialNumber::from(serial));
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate()?;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial,
        })
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn server(&mut self, names: &[&str]) -> Result<Issued, CertError> {
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
        self.sign(params)
    }

    /// A client certificate per `spec`.
    pub fn client(&mut self, spec: &ClientSpec) -> Result<Issued, CertError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut d = dn(&spec.common_name, &spec.common_name);
        if let Some(oin) = &spec.oin {
            // subject.serialNumber (2.5.4.5), where PKIoverheid carries the OIN.
            d.push(
                DnType::CustomDnType(vec![2, 5, 4, 5]),
                DnValue::Utf8String(oin.clone()),
            );
        }
        params.distinguished_name = d;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![spec.eku.clone()];
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        self.sign(params)
    }

    /// A CRL revoking `serials`, valid from `this_update` to `next_update`.
    pub fn crl(
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
        let issuer = Issuer::from_params(&self.params, &self.key);
        Ok(params.signed_by(&issuer)?.pem()?)
    }

    /// A CRL revoking `serials`, valid for a day.
    pub fn current_crl(&self, serials: &[u64]) -> Result<String, CertError> {
        let now = OffsetDateTime::now_utc();
        self.crl(serials, now - Duration::minutes(5), now + Duration::days(1))
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
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const GATEWAY_CERT: &str = "gateway.pem";
pub const GATEWAY_KEY: &str = "gateway-key.pem";

/// Writes a development PKI into `dir`: CA, gateway server certificate (for
/// `localhost` and `127.0.0.1`), one client certificate per `(org id, OIN)`,
/// and an empty CRL. Existing files are replaced.
pub fn write_dev_pki(dir: &Path, orgs: &[(String, Option<String>)]) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let mut ca = DevCa::new("Poortwachter Dev CA (DEVELOPMENT ONLY)")?;
    write(&dir.join(CA_FILE), &ca.cert_pem, false)?;
    let gw = ca.server(&["localhost", "127.0.0.1"])?;
    write(&dir.join(GATEWAY_CERT), &gw.cert_pem, false)?;
    write(&dir.join(GATEWAY_KEY), &gw.key_pem, true)?;
    for (id, oin) in orgs {
        let c = ca.client(&ClientSpec::new(id, oin.as_deref()))?;
        write(&dir.join(format!("{id}.pem")), &c.cert_pem, false)?;
        write(&dir.join(format!("{id}-key.pem")), &c.key_pem, true)?;
    }
    // A long-lived empty CRL: the demo enforces CRL expiry like production,
    // and a development checkout should not start refusing everyone tomorrow.
    let now = OffsetDateTime::now_utc();
    write(
        &dir.join(CRL_FILE),
        &ca.crl(&[], now - Duration::minutes(5), now + Duration::days(3650))?,
        false,
    )?;
    write(&dir.join(CA_KEY_FILE), &ca.key.serialize_pem(), true)?;
    write(
        &dir.join("README.txt"),
        "DEVELOPMENT ONLY. These certificates and keys were generated by `poortwachter certs dev`.\nNever use them outside a development machine.\n",
        false,
    )?;
    Ok(())
}
