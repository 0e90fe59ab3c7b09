//! Hostile HTTP/1.1 over real mTLS: request-smuggling shapes (CL/TE
//! conflicts, duplicate Content-Length, obs-fold, bare CR/LF, bad chunking)
//! must never desynchronise the gateway from its client or reach a bron.
//! The gateway builds every upstream request from scratch, so the upstream
//! must only ever see requests the gateway itself decided to send.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PATH: &str = "/v1/aoj-vo-noorderlicht/leerplicht-register/leerlingen/L1003/meldingen";

/// Sends raw bytes over one mTLS connection and returns everything the
/// gateway answered until it closed or went quiet.
async fn raw(gw: &mut TestGateway, bytes: &[u8]) -> String {
    let cert = gw.pki.client_for("vo-noorderlicht");
    let mut cfg = client_config(&gw.pki.ca.cert_pem, Some(&cert));
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_millis(1500), tls.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn responses(s: &str) -> Vec<u16> {
    s.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| s.get(i + 9..i + 12).and_then(|c| c.parse().ok()))
        .collect()
}

#[tokio::test]
async fn smuggling_shapes_never_desync_or_reach_the_bron() {
    let seen = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let seen2 = Arc::clone(&seen);
    let upstream = spawn_upstream(Arc::new(move |m, p, _h| {
        seen2.lock().unwrap().push((m.to_string(), p.to_owned()));
        (201, "application/json", b"{}".to_vec(), Duration::ZERO)
    }))
    .await;
    let mut gw = TestGateway::start_with(Options::with_bron_url(
        "leerplicht-register",
        format!("http://{upstream}"),
    ))
    .await;
    let body = r#"{"melding":{"datum":"2026-11-20"}}"#;
    let n = body.len();
    let head = |extra: &str| {
        format!(
            "POST {PATH} HTTP/1.1\r\nHost: localhost\r\nX-Doelbinding: aanpak-verzuim\r\nContent-Type: application/json\r\n{extra}"
        )
    };
    let smuggled = "GET /v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim HTTP/1.1\r\nHost: localhost\r\nX-Doelbinding: aanpak-verzuim\r\n\r\n";
    let cases: Vec<(&str, String)> = vec![
        (
            "CL and TE",
            format!(
                "{}Content-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
                head(""),
                5
            ),
        ),
        (
            "TE and CL",
            format!(
                "{}Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n{smuggled}\r\n0\r\n\r\n",
                head("")
            ),
        ),
        (
            "duplicate CL",
            format!(
                "{}Content-Length: {n}\r\nContent-Length: {}\r\n\r\n{body}{smuggled}",
                head(""),
                n + smuggled.len()
            ),
        ),
        (
            "CL list",
            format!("{}Content-Length: {n}, {n}\r\n\r\n{body}", head("")),
        ),
        (
            "obs-fold",
            format!(
                "{}Content-Length: {n}\r\nX-Folded: a\r\n b\r\n\r\n{body}",
                head("")
            ),
        ),
        (
            "TE obfuscated",
            format!(
                "{}Transfer-Encoding: xchunked\r\nContent-Length: {n}\r\n\r\n{body}",
                head("")
            ),
        ),
        (
            "TE with space before colon",
            format!("{}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", head("")),
        ),
        (
            "bare LF in headers",
            format!("POST {PATH} HTTP/1.1\nHost: localhost\nContent-Length: {n}\n\n{body}"),
        ),
        (
            "bare CR in header",
            format!("{}Content-Length: {n}\rX-Evil: 1\r\n\r\n{body}", head("")),
        ),
        (
            "negative CL",
            format!("{}Content-Length: -1\r\n\r\n{body}", head("")),
        ),
        (
            "huge chunk size",
            format!(
                "{}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n",
                head("")
            ),
        ),
        (
            "chunk size with garbage",
            format!(
                "{}Transfer-Encoding: chunked\r\n\r\n5;x=\"\r\n\"\r\n{body}\r\n0\r\n\r\n",
                head("")
            ),
        ),
        (
            "absolute-form to another host",
            format!("GET http://evil.example{PATH} HTTP/1.1\r\nHost: evil.example\r\n\r\n"),
        ),
        (
            "CONNECT",
            "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example\r\n\r\n".to_string(),
        ),
        (
            "TRACE",
            format!("TRACE {PATH} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        ),
        (
            "NUL in path",
            format!("GET {PATH}\0 HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        ),
    ];
    for (name, req) in &cases {
        seen.lock().unwrap().clear();
        let answer = raw(&mut gw, req.as_bytes()).await;
        let statuses = responses(&answer);
        let upstream_saw = seen.lock().unwrap().clone();
        // Never two answers for one request on the wire: the smuggled GET
        // must not be answered as a second request.
        assert!(statuses.len() <= 1, "{name}: {statuses:?}\n{answer}");
        // Whatever reached the bron is a request the gateway sent itself,
        // for the declared resource, and never the smuggled one.
        assert!(upstream_saw.len() <= 1, "{name}: {upstream_saw:?}");
        for (m, p) in &upstream_saw {
            assert_eq!(
                (m.as_str(), p.as_str()),
                ("POST", "/leerlingen/L1003/meldingen"),
                "{name}"
            );
        }
        assert!(
            !answer.contains("Sanne"),
            "{name}: pupil data in the answer"
        );
        if let Some(s) = statuses.first() {
            assert!(*s == 201 || (400..500).contains(s), "{name}: status {s}");
        }
    }
    // A well-formed request on a fresh connection still works.
    let ok = raw(
        &mut gw,
        format!(
            "{}Content-Length: {n}\r\nConnection: close\r\n\r\n{body}",
            head("")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(responses(&ok), vec![201], "{ok}");
}
