//! The TLS negative matrix: every way a client certificate or handshake can
//! be wrong is refused, and the positive controls next to them are accepted.
//! Real handshakes on loopback; certificates minted per test.

mod common;

use std::sync::Arc;

use common::*;
use poortwachter::certs::{ClientSpec, DevCa, Issued};
use time::{Duration, OffsetDateTime};

const VERZUIM: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim";

/// Outcome of one attempt: refused at the TLS level, or an HTTP status.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Refused,
    Http(u16),
}

async fn attempt(client: &TestClient) -> Outcome {
    match client
        .request(
            http::Method::GET,
            VERZUIM,
            &[("x-doelbinding", "aanpak-verzuim")],
            None,
        )
        .await
    {
        Ok(r) => Outcome::Http(r.status.as_u16()),
        Err(_) => Outcome::Refused,
    }
}

fn tls12_config(ca_pem: &str, issued: &Issued) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let certs: Vec<_> = rustls_pemfile::certs(&mut issued.cert_pem.as_bytes())
        .map(|c| c.unwrap())
        .collect();
    let key = rustls_pemfile::private_key(&mut issued.key_pem.as_bytes())
        .unwrap()
        .unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .unwrap()
}

/// A certificate that is self-signed but otherwise a copy of a valid one.
fn self_signed_copy(org: &str, oin: &str) -> Issued {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "NL");
    dn.push(rcgen::DnType::OrganizationName, org);
    dn.push(rcgen::DnType::CommonName, org);
    dn.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]),
        rcgen::DnValue::Utf8String(oin.into()),
    );
    p.distinguished_name = dn;
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.self_signed(&key).unwrap();
    Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        serial: 0,
    }
}

/// A valid certificate whose signature bytes were altered.
fn tampered(issued: &Issued) -> Issued {
    let der = rustls_pemfile::certs(&mut issued.cert_pem.as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let mut bytes = der.as_ref().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    let pem = pem::encode(&pem::Pem::new("CERTIFICATE", bytes));
    Issued {
        cert_pem: pem,
        key_pem: issued.key_pem.clone(),
        serial: issued.serial,
    }
}

/// Tries an old protocol version with the openssl command line client; true
/// when no session was established.
async fn openssl_refused(gw: &TestGateway, issued: &Issued, flag: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.pem"), &issued.cert_pem).unwrap();
    std::fs::write(dir.path().join("k.pem"), &issued.key_pem).unwrap();
    std::fs::write(dir.path().join("ca.pem"), &gw.pki.ca.cert_pem).unwrap();
    // tokio's process API: the gateway runs on this test's runtime and must
    // keep serving while openssl talks to it.
    let out = tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &gw.addr.to_string(),
            flag,
            "-cipher",
            "DEFAULT:@SECLEVEL=0",
        ])
        .arg("-cert")
        .arg(dir.path().join("c.pem"))
        .arg("-key")
        .arg(dir.path().join("k.pem"))
        .arg("-CAfile")
        .arg(dir.path().join("ca.pem"))
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("openssl is on this machine");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // An established session prints its cipher; a refused one prints
    // "Cipher is (NONE)" or an alert.
    !text.contains("Cipher is ") || text.contains("Cipher is (NONE)")
}

#[tokio::test]
async fn every_bad_certificate_and_handshake_is_refused_and_good_ones_pass() {
    let mut gw = TestGateway::start().await;
    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let oin = set.organisations["gemeente-groningen"].oin.clone().unwrap();
    let now = OffsetDateTime::now_utc();
    let good = gw.pki.client_for("gemeente-groningen");
    let ca_pem = gw.pki.ca.cert_pem.clone();
    let mint = |gw: &mut TestGateway, f: &dyn Fn(&mut ClientSpec)| {
        let mut spec = ClientSpec::new("gemeente-groningen", Some(&oin));
        f(&mut spec);
        gw.pki.ca.client(&spec).unwrap()
    };
    let expired = mint(&mut gw, &|s| {
        s.not_before = now - Duration::days(30);
        s.not_after = now - Duration::days(1);
    });
    let not_yet = mint(&mut gw, &|s| {
        s.not_before = now + Duration::days(1);
        s.not_after = now + Duration::days(30);
    });
    let server_eku = mint(&mut gw, &|s| {
        s.eku = rcgen::ExtendedKeyUsagePurpose::ServerAuth
    });
    let code_eku = mint(&mut gw, &|s| {
        s.eku = rcgen::ExtendedKeyUsagePurpose::CodeSigning
    });
    let to_revoke = gw.pki.client_for("gemeente-groningen");
    let mut other = DevCa::new("Other CA").unwrap();
    let foreign = other
        .client(&ClientSpec::new("gemeente-groningen", Some(&oin)))
        .unwrap();
    let self_signed = self_signed_copy("gemeente-groningen", &oin);
    let ca_as_client = {
        // The other CA's own certificate and key, presented as a client certificate.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "ca-as-client");
        let c = p.self_signed(&key).unwrap();
        Issued {
            cert_pem: c.pem(),
            key_pem: key.serialize_pem(),
            serial: 0,
        }
    };
    let bad_sig = tampered(&good);
    let stranger = gw
        .pki
        .ca
        .client(&ClientSpec::new("stranger", Some("00000099000000009999")))
        .unwrap();

    // Revoke one certificate (CRL reloaded without restart).
    std::fs::write(
        gw.pki.dir.join("crl.pem"),
        gw.pki.ca.current_crl(&[to_revoke.serial]).unwrap(),
    )
    .unwrap();
    gw.tls.reload().unwrap();

    let cases: Vec<(&str, TestClient, Outcome)> = vec![
        (
            "positive control, HTTP/1.1",
            gw.client_with(Some(&good), false),
            Outcome::Http(200),
        ),
        (
            "positive control, HTTP/2",
            gw.client_with(Some(&good), true),
            Outcome::Http(200),
        ),
        (
            "no certificate",
            gw.client_with(None, false),
            Outcome::Refused,
        ),
        (
            "certificate of another CA, same subject",
            gw.client_with(Some(&foreign), false),
            Outcome::Refused,
        ),
        (
            "self-signed copy of a valid subject",
            gw.client_with(Some(&self_signed), false),
            Outcome::Refused,
        ),
        (
            "expired",
            gw.client_with(Some(&expired), false),
            Outcome::Refused,
        ),
        (
            "not yet valid",
            gw.client_with(Some(&not_yet), false),
            Outcome::Refused,
        ),
        (
            "revoked",
            gw.client_with(Some(&to_revoke), false),
            Outcome::Refused,
        ),
        (
            "server-auth key usage only",
            gw.client_with(Some(&server_eku), false),
            Outcome::Refused,
        ),
        (
            "code-signing key usage only",
            gw.client_with(Some(&code_eku), false),
            Outcome::Refused,
        ),
        (
            "CA certificate as client certificate",
            gw.client_with(Some(&ca_as_client), false),
            Outcome::Refused,
        ),
        (
            "tampered signature",
            gw.client_with(Some(&bad_sig), false),
            Outcome::Refused,
        ),
        (
            "TLS 1.2 while 1.3 is required",
            TestClient::from_config(gw.addr, tls12_config(&ca_pem, &good), false),
            Outcome::Refused,
        ),
        (
            "valid chain, unknown organisation",
            gw.client_with(Some(&stranger), false),
            Outcome::Http(403),
        ),
    ];
    let mut failures = Vec::new();
    for (name, client, expected) in &cases {
        let got = attempt(client).await;
        if &got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    for flag in ["-tls1", "-tls1_1"] {
        if !openssl_refused(&gw, &good, flag).await {
            failures.push(format!("openssl {flag}: a session was established"));
        }
    }
    // Positive control for the openssl path: TLS 1.3 with a good certificate.
    if openssl_refused(&gw, &good, "-tls1_3").await {
        failures.push("openssl -tls1_3 positive control was refused".into());
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(cases.len() + 3 >= 15);

    // An expired CRL denies even a good certificate.
    let stale = gw
        .pki
        .ca
        .crl(&[], now - Duration::days(10), now - Duration::days(1))
        .unwrap();
    std::fs::write(gw.pki.dir.join("crl.pem"), stale).unwrap();
    gw.tls.reload().unwrap();
    assert_eq!(
        attempt(&gw.client_with(Some(&good), false)).await,
        Outcome::Refused
    );
}
