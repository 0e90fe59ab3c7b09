//! The TLS negative matrix: every way a client certificate or handshake can
//! be wrong is refused, and the positive controls next to them are accepted.
//! Real handshakes on loopback; certificates minted per test. Every case is
//! counted as it runs: a refusal only when the gateway itself logged ending
//! that handshake, a positive control only when it got its HTTP status; the
//! counts must equal the matrix, so a case that did not run fails the test.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use poortwachter::dev::certs::{ClientSpec, DevCa, Issued};
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
    let roots = pem_roots(ca_pem);
    let certs = pem_certs(&issued.cert_pem);
    let key = pem_key(&issued.key_pem);
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
    let der = pem_certs(&issued.cert_pem).remove(0);
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

/// The gateway's own account of the handshakes it ended: the error of every
/// "TLS handshake failed" event of `server::run`, captured in process. A
/// case counts as refused only when the gateway says it refused it, so a
/// client that gave up on its own (or never connected) is not counted.
#[derive(Clone, Default)]
struct GatewayLog(Arc<Mutex<Vec<String>>>);

impl GatewayLog {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The handshake failures logged after `mark`, waiting up to `wait` for
    /// the first one (the gateway logs it in its own task).
    async fn since(&self, mark: usize, wait: std::time::Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + wait;
        while self.len() == mark && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.0.lock().unwrap()[mark..].to_vec()
    }
}

#[derive(Default)]
struct EventFields {
    message: String,
    error: String,
}

impl tracing::field::Visit for EventFields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "error" => self.error = format!("{value:?}"),
            _ => {}
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for GatewayLog {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut f = EventFields::default();
        event.record(&mut f);
        if f.message == "TLS handshake failed" {
            self.0.lock().unwrap().push(f.error);
        }
    }
}

/// How a case reaches the gateway.
enum Via {
    Client(Box<TestClient>),
    /// The openssl command line client with this protocol flag.
    Openssl(&'static str),
}

/// What a case must get.
#[derive(Debug)]
enum Expect {
    /// Refused in the handshake by the gateway, whose logged error contains this.
    Refused(&'static str),
    Http(u16),
}

struct Case {
    name: &'static str,
    via: Via,
    expected: Expect,
}

/// Runs the openssl client with `flag` and sends one HTTP/1.1 request over
/// it: `Http(status)` when an answer came, `Refused` when none did. Err when
/// openssl itself could not run (or hung): that case did not run.
async fn openssl_attempt(gw: &TestGateway, good: &Issued, flag: &str) -> Result<Outcome, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.pem"), &good.cert_pem).unwrap();
    std::fs::write(dir.path().join("k.pem"), &good.key_pem).unwrap();
    std::fs::write(dir.path().join("ca.pem"), &gw.pki.ca.cert_pem).unwrap();
    // tokio's process API: the gateway runs on this test's runtime and must
    // keep serving while openssl talks to it.
    let mut child = tokio::process::Command::new("openssl")
        .args(["s_client", "-connect", &gw.addr.to_string(), flag])
        .args(["-cipher", "DEFAULT:@SECLEVEL=0", "-ign_eof"])
        .arg("-cert")
        .arg(dir.path().join("c.pem"))
        .arg("-key")
        .arg(dir.path().join("k.pem"))
        .arg("-CAfile")
        .arg(dir.path().join("ca.pem"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("openssl could not be started: {e}"))?;
    let request = format!(
        "GET {VERZUIM} HTTP/1.1\r\nHost: localhost\r\nX-Doelbinding: aanpak-verzuim\r\nConnection: close\r\n\r\n"
    );
    if let Some(mut stdin) = child.stdin.take() {
        use tokio::io::AsyncWriteExt;
        // A refused handshake may close the pipe before the request is read.
        let _ = stdin.write_all(request.as_bytes()).await;
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output())
        .await
        .map_err(|_| "openssl did not finish within 20 s".to_string())?
        .map_err(|e| format!("openssl failed: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    Ok(stdout
        .lines()
        .find_map(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3)?.parse().ok())
        .map_or(Outcome::Refused, Outcome::Http))
}

/// What the matrix saw, counted as it ran.
#[derive(Default)]
struct Tally {
    /// Expected refusals the gateway refused in the handshake.
    refused: Vec<&'static str>,
    /// Cases that got the HTTP status they expected.
    answered: Vec<&'static str>,
    failures: Vec<String>,
}

impl Tally {
    async fn run(&mut self, gw: &TestGateway, log: &GatewayLog, good: &Issued, case: &Case) {
        let mark = log.len();
        let got = match &case.via {
            Via::Client(c) => attempt(c).await,
            Via::Openssl(flag) => match openssl_attempt(gw, good, flag).await {
                Ok(o) => o,
                Err(e) => {
                    self.failures
                        .push(format!("{}: did not run: {e}", case.name));
                    return;
                }
            },
        };
        // A refusal is logged by the gateway; wait for it only when one is due.
        let wait = std::time::Duration::from_secs(if got == Outcome::Refused { 5 } else { 0 });
        let ended = log.since(mark, wait).await;
        match (&case.expected, got) {
            // Exactly this handshake, ended by the gateway for the expected
            // reason: not a client that gave up, nor one that never connected.
            (Expect::Refused(why), Outcome::Refused)
                if ended.len() == 1 && ended[0].contains(why) =>
            {
                self.refused.push(case.name);
            }
            (Expect::Http(want), Outcome::Http(got)) if *want == got && ended.is_empty() => {
                self.answered.push(case.name);
            }
            (want, got) => self.failures.push(format!(
                "{}: expected {want:?}, got {got:?}; handshakes the gateway ended meanwhile: {ended:?}",
                case.name
            )),
        }
    }
}

/// Every certificate the matrix presents.
struct Minted {
    good: Issued,
    expired: Issued,
    not_yet: Issued,
    server_eku: Issued,
    code_eku: Issued,
    revoked: Issued,
    foreign: Issued,
    self_signed: Issued,
    ca_as_client: Issued,
    bad_sig: Issued,
    stranger: Issued,
}

fn mint(gw: &mut TestGateway, now: OffsetDateTime) -> Minted {
    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let oin = set.organisations["gemeente-groningen"].oin.clone().unwrap();
    let mut mint = |f: &dyn Fn(&mut ClientSpec)| {
        let mut spec = ClientSpec::new("gemeente-groningen", Some(&oin));
        f(&mut spec);
        gw.pki.ca.client(&spec).unwrap()
    };
    let expired = mint(&|s| {
        s.not_before = now - Duration::days(30);
        s.not_after = now - Duration::days(1);
    });
    let not_yet = mint(&|s| {
        s.not_before = now + Duration::days(1);
        s.not_after = now + Duration::days(30);
    });
    let server_eku = mint(&|s| s.eku = rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let code_eku = mint(&|s| s.eku = rcgen::ExtendedKeyUsagePurpose::CodeSigning);
    let good = gw.pki.client_for("gemeente-groningen");
    let foreign = DevCa::new("Other CA")
        .unwrap()
        .client(&ClientSpec::new("gemeente-groningen", Some(&oin)))
        .unwrap();
    let ca_as_client = {
        // A CA's own certificate and key, presented as a client certificate.
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
    Minted {
        bad_sig: tampered(&good),
        self_signed: self_signed_copy("gemeente-groningen", &oin),
        revoked: gw.pki.client_for("gemeente-groningen"),
        stranger: gw
            .pki
            .ca
            .client(&ClientSpec::new("stranger", Some("00000099000000009999")))
            .unwrap(),
        good,
        expired,
        not_yet,
        server_eku,
        code_eku,
        foreign,
        ca_as_client,
    }
}

/// The certificates the gateway must refuse: (case, certificate presented,
/// what the gateway's logged refusal names).
fn refused_certificates(m: &Minted) -> [(&'static str, Option<&Issued>, &'static str); 10] {
    [
        ("no certificate", None, "peer sent no certificates"),
        (
            "certificate of another CA, same subject",
            Some(&m.foreign),
            "UnknownIssuer",
        ),
        (
            "self-signed copy of a valid subject",
            Some(&m.self_signed),
            "UnknownIssuer",
        ),
        ("expired", Some(&m.expired), "certificate expired"),
        (
            "not yet valid",
            Some(&m.not_yet),
            "certificate not valid yet",
        ),
        ("revoked", Some(&m.revoked), "Revoked"),
        (
            "server-auth key usage only",
            Some(&m.server_eku),
            "extended key usage",
        ),
        (
            "code-signing key usage only",
            Some(&m.code_eku),
            "extended key usage",
        ),
        (
            "CA certificate as client certificate",
            Some(&m.ca_as_client),
            "CaUsedAsEndEntity",
        ),
        ("tampered signature", Some(&m.bad_sig), "BadSignature"),
    ]
}

/// The matrix run while the CRL revokes `m.revoked`.
fn matrix(gw: &TestGateway, m: &Minted) -> Vec<Case> {
    let client = |i: Option<&Issued>, http2| Via::Client(Box::new(gw.client_with(i, http2)));
    let case = |name, via, expected| Case {
        name,
        via,
        expected,
    };
    let tls12 = TestClient::from_config(gw.addr, tls12_config(&gw.pki.ca.cert_pem, &m.good), false);
    let mut cases = vec![
        case(
            "positive control, HTTP/1.1",
            client(Some(&m.good), false),
            Expect::Http(200),
        ),
        case(
            "positive control, HTTP/2",
            client(Some(&m.good), true),
            Expect::Http(200),
        ),
        case(
            "positive control, openssl TLS 1.3",
            Via::Openssl("-tls1_3"),
            Expect::Http(200),
        ),
        case(
            "valid chain, unknown organisation",
            client(Some(&m.stranger), false),
            Expect::Http(403),
        ),
    ];
    for (name, cert, why) in refused_certificates(m) {
        cases.push(case(name, client(cert, false), Expect::Refused(why)));
    }
    cases.extend([
        case(
            "TLS 1.2 while 1.3 is required",
            Via::Client(Box::new(tls12)),
            Expect::Refused("Tls12NotOffered"),
        ),
        case(
            "TLS 1.1 (openssl)",
            Via::Openssl("-tls1_1"),
            Expect::Refused("peer is incompatible"),
        ),
        case(
            "TLS 1.0 (openssl)",
            Via::Openssl("-tls1"),
            Expect::Refused("peer is incompatible"),
        ),
    ]);
    cases
}

#[tokio::test]
async fn every_bad_certificate_and_handshake_is_refused_and_good_ones_pass() {
    use tracing_subscriber::layer::SubscriberExt;
    let log = GatewayLog::default();
    // This test's runtime is single-threaded: the gateway's tasks log here.
    let _log = tracing::subscriber::set_default(tracing_subscriber::registry().with(log.clone()));
    let mut gw = TestGateway::start().await;
    let now = OffsetDateTime::now_utc();
    let m = mint(&mut gw, now);

    // Revoke one certificate (CRL reloaded without restart).
    std::fs::write(
        gw.pki.dir.join("crl.pem"),
        gw.pki.ca.current_crl(&[m.revoked.serial]).unwrap(),
    )
    .unwrap();
    gw.tls.reload().unwrap();
    let mut cases = matrix(&gw, &m);
    let mut tally = Tally::default();
    for case in &cases {
        tally.run(&gw, &log, &m.good, case).await;
    }

    // An expired CRL denies even a good certificate.
    let stale = gw
        .pki
        .ca
        .crl(&[], now - Duration::days(10), now - Duration::days(1))
        .unwrap();
    std::fs::write(gw.pki.dir.join("crl.pem"), stale).unwrap();
    gw.tls.reload().unwrap();
    let expired_crl = Case {
        name: "good certificate, expired CRL",
        via: Via::Client(Box::new(gw.client_with(Some(&m.good), false))),
        expected: Expect::Refused("revocation list expired"),
    };
    tally.run(&gw, &log, &m.good, &expired_crl).await;
    cases.push(expired_crl);

    assert!(tally.failures.is_empty(), "{:#?}", tally.failures);
    let expected = |refusal: bool| -> Vec<&str> {
        let is_refusal = |c: &&Case| matches!(c.expected, Expect::Refused(_)) == refusal;
        cases.iter().filter(is_refusal).map(|c| c.name).collect()
    };
    assert_eq!(tally.refused, expected(true), "refusals counted");
    assert_eq!(tally.answered, expected(false), "answers counted");
    // The matrix the README documents: 14 refusals, three positive controls
    // and the unknown organisation's 403.
    assert_eq!((tally.refused.len(), tally.answered.len()), (14, 4));
}

// --- A PKIoverheid-shaped front door (issue 15) -----------------------------
//
// The gateway trusts the (development) Staat der Nederlanden root only, as a
// production gateway trusts the PKIoverheid Private Root; organisations get
// their certificates from a TSP CA under the domain CA and present that
// chain in the handshake.

use poortwachter::dev::certs::DevPki;

const TSP_A: &str = "Dev TSP A PKIoverheid Organisatie Services CA - G3";
const TSP_B: &str = "Dev TSP B PKIoverheid Organisatie Services CA - G3";

/// Gemeente Groningen's certificate request, as a TSP would see it.
fn groningen_spec() -> ClientSpec {
    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let org = &set.organisations["gemeente-groningen"];
    ClientSpec::new("gemeente-groningen", org.oin.as_deref()).with_organisation(&org.name)
}

/// SHA-256 of the end-entity certificate, as the audit trail records it.
fn fingerprint(issued: &Issued) -> String {
    let der = pem_certs(issued.end_entity_pem()).remove(0);
    poortwachter::hex::encode(ring::digest::digest(&ring::digest::SHA256, der.as_ref()).as_ref())
}

/// Runs `cases` one after the other and checks each got what it expected,
/// counted as in the matrix above (a refusal only when the gateway logged
/// ending exactly that handshake for the expected reason).
async fn run_cases(gw: &TestGateway, log: &GatewayLog, good: &Issued, cases: &[Case]) {
    let mut tally = Tally::default();
    for case in cases {
        tally.run(gw, log, good, case).await;
    }
    assert!(tally.failures.is_empty(), "{:#?}", tally.failures);
    assert_eq!(
        tally.refused.len() + tally.answered.len(),
        cases.len(),
        "every case ran"
    );
}

fn logged() -> (GatewayLog, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::layer::SubscriberExt;
    let log = GatewayLog::default();
    // The test's runtime is single-threaded: the gateway's tasks log here.
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(log.clone()));
    (log, guard)
}

/// (a) Only the root is configured; Gemeente Groningen holds a certificate
/// from TSP A and one from TSP B (a rotation from one TSP to another): both
/// are accepted at the same time and both map to Gemeente Groningen.
#[tokio::test]
async fn certificates_of_two_tsps_under_the_trusted_root_identify_the_same_organisation() {
    let mut pki = DevPki::new().unwrap();
    let a = pki.tsp(TSP_A).unwrap();
    let b = pki.tsp(TSP_B).unwrap();
    let from_a = pki.client(a, &groningen_spec()).unwrap();
    let from_b = pki.client(b, &groningen_spec()).unwrap();
    let gw = TestGateway::start_trusting(
        Options::default(),
        pki.root_pem(),
        &pki.current_crls(&[]).unwrap(),
    )
    .await;
    // The one configured trust anchor is the root: no TSP or domain CA.
    let anchors = std::fs::read_to_string(gw.pki.dir.join("ca.pem")).unwrap();
    assert_eq!(pem_certs(&anchors), pem_certs(pki.root_pem()));

    // Both at the same time, on connections of their own, over HTTP/1.1 and h2.
    let (old, new) = (
        gw.client_with(Some(&from_a), false),
        gw.client_with(Some(&from_b), true),
    );
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(
            old.get(VERZUIM, "aanpak-verzuim"),
            new.get(VERZUIM, "aanpak-verzuim")
        );
        assert_eq!((ra.status.as_u16(), rb.status.as_u16()), (200, 200));
    }
    let rows = gw.audit_rows().await;
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter()
            .all(|r| r.org.as_deref() == Some("gemeente-groningen") && r.reason == "allowed"),
        "{rows:#?}"
    );
    let mut seen: Vec<String> = rows
        .iter()
        .filter_map(|r| r.cert_fingerprint.clone())
        .collect();
    seen.sort();
    seen.dedup();
    let mut want = vec![fingerprint(&from_a), fingerprint(&from_b)];
    want.sort();
    assert_eq!(
        seen, want,
        "each certificate was used and recorded as itself"
    );
}

/// (b) A TSP CA outside the configured hierarchy is refused in the
/// handshake: one under another root, and a look-alike that copies every
/// name of the trusted hierarchy but not its keys.
#[tokio::test]
async fn a_tsp_outside_the_trusted_hierarchy_is_refused_in_the_handshake() {
    let (log, _guard) = logged();
    let mut pki = DevPki::new().unwrap();
    let a = pki.tsp(TSP_A).unwrap();
    let good = pki.client(a, &groningen_spec()).unwrap();

    let mut other = DevPki::named("Other Root CA (dev)", "Other Services CA (dev)").unwrap();
    let x = other
        .tsp("Dev TSP X PKIoverheid Organisatie Services CA - G3")
        .unwrap();
    let foreign = other.client(x, &groningen_spec()).unwrap();
    let mut lookalike = DevPki::new().unwrap();
    let a2 = lookalike.tsp(TSP_A).unwrap();
    let impostor = lookalike.client(a2, &groningen_spec()).unwrap();
    // The foreign TSP's certificate presented with the trusted domain CA:
    // the chain does not link up.
    let spliced = Issued {
        cert_pem: format!(
            "{}{}{}",
            foreign.end_entity_pem(),
            other.tsp_pem(x).unwrap(),
            pki.domain_pem()
        ),
        ..foreign.clone()
    };

    let gw = TestGateway::start_trusting(
        Options::default(),
        pki.root_pem(),
        &pki.current_crls(&[]).unwrap(),
    )
    .await;
    let client = |i: &Issued| Via::Client(Box::new(gw.client_with(Some(i), false)));
    let cases = [
        Case {
            name: "positive control: TSP A under the trusted root",
            via: client(&good),
            expected: Expect::Http(200),
        },
        Case {
            name: "TSP under another root",
            via: client(&foreign),
            expected: Expect::Refused("UnknownIssuer"),
        },
        Case {
            name: "TSP under another root, presented with the trusted domain CA",
            via: client(&spliced),
            expected: Expect::Refused("UnknownIssuer"),
        },
        Case {
            name: "look-alike hierarchy: same names, other keys",
            via: client(&impostor),
            expected: Expect::Refused("BadSignature"),
        },
    ];
    run_cases(&gw, &log, &good, &cases).await;
    // Certificates that do not chain to the root are not attributable to
    // an organisation: nothing but the positive control is in the trail.
    let rows = gw.audit_rows().await;
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0].reason, "allowed");
}

/// (c) The gateway trusts the root only, so it can build a path from an
/// organisation's certificate to its trust anchor only through the TSP CA
/// and the domain CA the client presents: a client that sends its
/// end-entity certificate alone (or leaves out the domain CA) is refused,
/// because the gateway neither configures intermediates nor fetches them
/// (no AIA chasing).
#[tokio::test]
async fn a_client_that_leaves_out_its_intermediates_is_refused() {
    let (log, _guard) = logged();
    let mut pki = DevPki::new().unwrap();
    let a = pki.tsp(TSP_A).unwrap();
    let good = pki.client(a, &groningen_spec()).unwrap();
    let end_entity_only = Issued {
        cert_pem: good.end_entity_pem().to_owned(),
        ..good.clone()
    };
    let without_domain_ca = Issued {
        cert_pem: format!("{}{}", good.end_entity_pem(), pki.tsp_pem(a).unwrap()),
        ..good.clone()
    };
    assert_eq!(pem_certs(&good.cert_pem).len(), 3);
    assert_eq!(pem_certs(&end_entity_only.cert_pem).len(), 1);

    let gw = TestGateway::start_trusting(
        Options::default(),
        pki.root_pem(),
        &pki.current_crls(&[]).unwrap(),
    )
    .await;
    let client = |i: &Issued| Via::Client(Box::new(gw.client_with(Some(i), false)));
    let cases = [
        Case {
            name: "positive control: end entity, TSP CA and domain CA",
            via: client(&good),
            expected: Expect::Http(200),
        },
        Case {
            name: "end entity only",
            via: client(&end_entity_only),
            expected: Expect::Refused("UnknownIssuer"),
        },
        Case {
            name: "end entity and TSP CA, no domain CA",
            via: client(&without_domain_ca),
            expected: Expect::Refused("UnknownIssuer"),
        },
    ];
    run_cases(&gw, &log, &good, &cases).await;
}

/// (d) Revocation along the hierarchy: a certificate on its TSP's CRL is
/// refused while the organisation's other certificates still work; a TSP CA
/// revoked on the domain CA's CRL takes every certificate it issued with
/// it; and a TSP whose CRL the gateway lacks is refused (revocation status
/// unknown), so every TSP's CRL must be configured.
#[tokio::test]
async fn certificates_revoked_on_their_tsps_crl_are_refused() {
    let (log, _guard) = logged();
    let mut pki = DevPki::new().unwrap();
    let a = pki.tsp(TSP_A).unwrap();
    let b = pki.tsp(TSP_B).unwrap();
    let revoked = pki.client(a, &groningen_spec()).unwrap();
    let good_a = pki.client(a, &groningen_spec()).unwrap();
    let good_b = pki.client(b, &groningen_spec()).unwrap();
    let crls = pki.current_crls(&[revoked.serial]).unwrap();
    let gw = TestGateway::start_trusting(Options::default(), pki.root_pem(), &crls).await;
    // A TSP added after the gateway's CRLs were written.
    let c = pki
        .tsp("Dev TSP C PKIoverheid Organisatie Services CA - G3")
        .unwrap();
    let from_c = pki.client(c, &groningen_spec()).unwrap();

    let client =
        |gw: &TestGateway, i: &Issued| Via::Client(Box::new(gw.client_with(Some(i), false)));
    let cases = [
        Case {
            name: "revoked on TSP A's CRL",
            via: client(&gw, &revoked),
            expected: Expect::Refused("Revoked"),
        },
        Case {
            name: "another certificate of TSP A",
            via: client(&gw, &good_a),
            expected: Expect::Http(200),
        },
        Case {
            name: "a certificate of TSP B",
            via: client(&gw, &good_b),
            expected: Expect::Http(200),
        },
        Case {
            name: "a TSP whose CRL is not configured",
            via: client(&gw, &from_c),
            expected: Expect::Refused("UnknownRevocationStatus"),
        },
    ];
    run_cases(&gw, &log, &good_a, &cases).await;

    // The domain CA revokes TSP B itself; reloaded without restart.
    let crls = pki
        .current_crls(&[revoked.serial, pki.tsp_serial(b).unwrap()])
        .unwrap();
    std::fs::write(gw.pki.dir.join("crl.pem"), crls).unwrap();
    gw.tls.reload().unwrap();
    let cases = [
        Case {
            name: "a certificate of the revoked TSP B",
            via: client(&gw, &good_b),
            expected: Expect::Refused("Revoked"),
        },
        Case {
            name: "TSP A is unaffected",
            via: client(&gw, &good_a),
            expected: Expect::Http(200),
        },
        Case {
            name: "TSP C, its CRL now configured",
            via: client(&gw, &from_c),
            expected: Expect::Http(200),
        },
    ];
    run_cases(&gw, &log, &good_a, &cases).await;

    // Refusals of certificates that do chain to the root are attributable
    // and audited under the organisation they name.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let rows = gw.audit_rows().await;
    let mut reasons: Vec<&str> = rows.iter().map(|r| r.reason.as_str()).collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        [
            "allowed",
            "allowed",
            "allowed",
            "allowed",
            "certificate-revoked",
            "certificate-revoked",
            "revocation-status-unknown"
        ]
    );
    assert!(
        rows.iter()
            .all(|r| r.org.as_deref() == Some("gemeente-groningen"))
    );
}
