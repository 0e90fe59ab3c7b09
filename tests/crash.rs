//! Reliability of the real `poortwachter serve` process (issue 4):
//! - kill -9 under load, repeatedly: every response a client received has its
//!   audit record, the chains verify, and the aggregates equal a walk of the
//!   records;
//! - clients that abort mid-request (partial head, partial body, gone before
//!   the answer): no half records, and every request that reached the bron
//!   has exactly one complete record;
//! - the PostgreSQL audit store stopped under load: every request after the
//!   stop gets 503 and not one byte of pupil data, and service resumes with
//!   an intact chain when the store is back (needs a private throwaway
//!   cluster, so it is `#[ignore]`d in the normal test run).
//!
//! Bounded here (a few cycles); `benches/reliability/run.sh` runs hundreds
//! through the environment variables read by [`env_count`].
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use poortwachter::audit::{Store, StoredRow, admin};
use poortwachter::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const VERZUIM: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim";
const MELDING: &str = "/v1/aoj-vo-noorderlicht/leerplicht-register/leerlingen/L1001/meldingen";

/// A count from the environment (the reliability run raises them), or `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Registers the pupils in the overleg (case binding), through the binary's
/// `cases register`, when this build has that command; a no-op before.
/// Every pupil these tests request goes through here before the gateway starts.
async fn register_cases(config: &Path, overleg: &str, org: &str, role: &str, pupils: &[&str]) {
    let exe = env!("CARGO_BIN_EXE_poortwachter");
    let has_cases = tokio::process::Command::new(exe)
        .args(["cases", "--help"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !has_cases {
        return;
    }
    for pupil in pupils {
        let out = tokio::process::Command::new(exe)
            .arg("cases")
            .arg("register")
            .arg("--config")
            .arg(config)
            .args(["--overleg", overleg, "--leerling", pupil, "--door", org])
            .args(["--rol", role, "--referentie", "reliability"])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "cases register {overleg}/{pupil}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn spawn_gateway(config: &Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Waits until the gateway answers a request; a gateway that exits instead
/// (it could not bind its address, say) fails the test at once, saying so.
async fn wait_ready(child: &mut tokio::process::Child, client: &TestClient, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the gateway exited before it answered: {status}");
        }
        if let Ok(r) = client
            .request(
                http::Method::GET,
                VERZUIM,
                &[("x-doelbinding", "aanpak-verzuim")],
                None,
            )
            .await
            && r.status == 200
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn stored_rows(config: &Path) -> (Config, Store, Vec<StoredRow>) {
    let cfg = Config::load(config).unwrap();
    let store = Store::connect(&cfg.audit.store).await.unwrap();
    let rows = store.all_rows().await.unwrap();
    (cfg, store, rows)
}

async fn kill_under_load(kind: StoreKind, cycles: usize) {
    let port = spare_port();
    let mut p = Prepared::new(
        Options {
            store: kind,
            ..Options::default()
        },
        &format!("127.0.0.1:{port}"),
    )
    .await;
    register_cases(
        &p.config_path,
        "aoj-vo-noorderlicht",
        "gemeente-groningen",
        "leerplicht",
        &["L1001"],
    )
    .await;
    let cert = p.pki.client_for("gemeente-groningen");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut total_acked = 0;
    let started = Instant::now();
    for cycle in 0..cycles {
        let mut child = spawn_gateway(&p.config_path);
        let probe = TestClient::new(addr, &p.pki.ca.cert_pem, Some(&cert), false);
        assert!(
            wait_ready(&mut child, &probe, 20).await,
            "gateway did not come up in cycle {cycle}"
        );
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut load = Vec::new();
        for _ in 0..4 {
            let c = TestClient::new(addr, &p.pki.ca.cert_pem, Some(&cert), false);
            let acked = Arc::clone(&acked);
            let stop = Arc::clone(&stop);
            load.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match c
                        .request(
                            http::Method::GET,
                            VERZUIM,
                            &[("x-doelbinding", "aanpak-verzuim")],
                            None,
                        )
                        .await
                    {
                        Ok(r) if r.status == 200 => {
                            let id = r.header("x-request-id").unwrap().to_owned();
                            acked.lock().unwrap().insert(id);
                        }
                        _ => {}
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(150 + (cycle as u64 * 97) % 300)).await;
        child.start_kill().unwrap(); // SIGKILL
        let _ = child.wait().await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for l in load {
            let _ = l.await;
        }
        total_acked = acked.lock().unwrap().len();
    }
    assert!(total_acked > cycles * 10, "too little load: {total_acked}");

    let (cfg, store, rows) = stored_rows(&p.config_path).await;
    let stored: HashSet<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    let missing: Vec<_> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .cloned()
        .collect();
    let report = admin::verify(&store, &cfg.audit, None, None).await.unwrap();
    println!(
        "reliability: kill -9 {kind:?}: {cycles} cycles in {:.0}s, {total_acked} acknowledged responses, {} records, {} acknowledged-but-missing, chain verifies: {}",
        started.elapsed().as_secs_f64(),
        rows.len(),
        missing.len(),
        report.ok()
    );
    assert!(
        missing.is_empty(),
        "{} acknowledged responses have no record: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    assert!(report.ok(), "{report}");
    // The aggregates were written in the transactions of their records:
    // killed mid-batch, they still equal a walk of what is in the trail.
    let (check, _) = poortwachter::review::aggregates::check(&store)
        .await
        .unwrap();
    assert!(check.ok(), "aggregates after kill -9: {}", check.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_9_under_load_loses_no_acknowledged_record() {
    kill_under_load(
        StoreKind::Sqlite,
        env_count("POORTWACHTER_CRASH_CYCLES_SQLITE", 6),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_under_load_loses_no_acknowledged_record() {
    kill_under_load(
        StoreKind::Postgres,
        env_count("POORTWACHTER_CRASH_CYCLES_PG", 4),
    )
    .await;
}

/// The trace id of a `traceparent` header value.
fn trace_of(headers: &http::HeaderMap) -> Option<String> {
    let v = headers.get("traceparent")?.to_str().ok()?;
    v.split('-').nth(1).map(str::to_owned)
}

/// Reads one HTTP/1.1 response with a Content-Length body; its status.
async fn read_response<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<u16> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())?;
            while buf.len() < end + 4 + len {
                let k = s.read(&mut chunk).await.ok()?;
                if k == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..k]);
            }
            return head.get(9..12).and_then(|c| c.parse().ok());
        }
        let k = s.read(&mut chunk).await.ok()?;
        if k == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..k]);
    }
}

/// How a client gives up. Except for `MidHead`, the connection first
/// completes one ordinary request, so that the aborted one really is in
/// the gateway's hands (a head that arrives together with the close may be
/// dropped by the HTTP layer before any handler runs).
#[derive(Clone, Copy, Debug)]
enum Abort {
    /// Sends the whole GET, waits a little, closes without reading the answer.
    AfterHead,
    /// Closes halfway through the request head.
    MidHead,
    /// Sends a POST head and part of its body, then closes.
    MidBody,
    /// Sends the whole GET and closes at once.
    Immediately,
}

/// Clients abort `n` requests in four ways against a bron that answers after
/// 15–34 ms, 16 at a time. No half records: every record recomputes to its
/// hash and carries an outcome and a status; no trace has two records; every
/// request that reached the bron has exactly one complete record saying the
/// bron answered; the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_aborts_mid_request_leave_no_half_records() {
    use futures_util::StreamExt;
    let n = env_count("POORTWACHTER_CLIENT_ABORTS", 80);
    // The bron: records which traces reached it, answers after 0-12 ms.
    let reached: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&reached);
    let bron = spawn_upstream(Arc::new(move |method, _path, headers| {
        let trace = trace_of(headers).unwrap_or_default();
        let delay = 15 + trace.bytes().map(u64::from).sum::<u64>() % 20;
        seen.lock().unwrap().push(trace);
        let (status, body) = if method == http::Method::POST {
            (201, br#"{"ontvangen":true}"#.to_vec())
        } else {
            (
                200,
                br#"{"leerling":{"voornaam":"Sanne","achternaam":"de Vries"},"verzuim":{"totaal_uren":12}}"#
                    .to_vec(),
            )
        };
        (
            status,
            "application/json",
            body,
            Duration::from_millis(delay),
        )
    }))
    .await;
    let port = spare_port();
    let mut opts = Options::with_bron_url("las-noorderlicht", format!("http://{bron}"));
    opts.base_urls
        .insert("leerplicht-register".into(), format!("http://{bron}"));
    let mut p = Prepared::new(opts, &format!("127.0.0.1:{port}")).await;
    register_cases(
        &p.config_path,
        "aoj-vo-noorderlicht",
        "gemeente-groningen",
        "leerplicht",
        &["L1001"],
    )
    .await;
    register_cases(
        &p.config_path,
        "aoj-vo-noorderlicht",
        "vo-noorderlicht",
        "school",
        &["L1001"],
    )
    .await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let lp = p.pki.client_for("gemeente-groningen");
    let school = p.pki.client_for("vo-noorderlicht");
    let mut child = spawn_gateway(&p.config_path);
    let probe = TestClient::new(addr, &p.pki.ca.cert_pem, Some(&lp), false);
    assert!(
        wait_ready(&mut child, &probe, 30).await,
        "gateway did not come up"
    );

    let lp_tls = Arc::new(client_config(&p.pki.ca.cert_pem, Some(&lp)));
    let school_tls = Arc::new(client_config(&p.pki.ca.cert_pem, Some(&school)));
    // (kind, answered before the client closed)
    let outcomes: Arc<Mutex<Vec<(Abort, bool)>>> = Arc::default();
    let sent_traces: Arc<Mutex<HashSet<String>>> = Arc::default();
    futures_util::stream::iter(0..n)
        .for_each_concurrent(16, |i| {
            let (lp_tls, school_tls) = (Arc::clone(&lp_tls), Arc::clone(&school_tls));
            let (outcomes, sent_traces) = (Arc::clone(&outcomes), Arc::clone(&sent_traces));
            async move {
                let kind = [
                    Abort::AfterHead,
                    Abort::MidHead,
                    Abort::MidBody,
                    Abort::Immediately,
                ][i % 4];
                let trace = format!("{:032x}", 0x5eed_0000_0000u64 + i as u64);
                sent_traces.lock().unwrap().insert(trace.clone());
                let cfg = if matches!(kind, Abort::MidBody) {
                    school_tls
                } else {
                    lp_tls
                };
                let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let Ok(mut tls) = tokio_rustls::TlsConnector::from(cfg)
                    .connect(name, tcp)
                    .await
                else {
                    return;
                };
                let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
                let get = format!(
                    "GET {VERZUIM} HTTP/1.1\r\nhost: localhost\r\nx-doelbinding: aanpak-verzuim\r\ntraceparent: {traceparent}\r\n\r\n"
                );
                let wait = Duration::from_millis(5 + (i as u64 * 7) % 25);
                let mut buf = [0u8; 256];
                if !matches!(kind, Abort::MidHead) {
                    let first = format!(
                        "GET {VERZUIM} HTTP/1.1\r\nhost: localhost\r\nx-doelbinding: aanpak-verzuim\r\n\r\n"
                    );
                    let _ = tls.write_all(first.as_bytes()).await;
                    if read_response(&mut tls).await.is_none() {
                        return;
                    }
                }
                let answered = match kind {
                    Abort::AfterHead => {
                        let _ = tls.write_all(get.as_bytes()).await;
                        matches!(
                            tokio::time::timeout(wait, tls.read(&mut buf)).await,
                            Ok(Ok(k)) if k > 0
                        )
                    }
                    Abort::MidHead => {
                        let cut = 10 + (i * 13) % (get.len() - 12);
                        let _ = tls.write_all(&get.as_bytes()[..cut]).await;
                        tokio::time::sleep(wait).await;
                        false
                    }
                    Abort::MidBody => {
                        let body = br#"{"melding":{"datum":"2026-11-20","soort":"ongeoorloofd","uren":8}}"#;
                        let head = format!(
                            "POST {MELDING} HTTP/1.1\r\nhost: localhost\r\nx-doelbinding: aanpak-verzuim\r\ncontent-type: application/json\r\ncontent-length: {}\r\ntraceparent: {traceparent}\r\n\r\n",
                            body.len()
                        );
                        let _ = tls.write_all(head.as_bytes()).await;
                        let _ = tls.write_all(&body[..=(i % (body.len() - 1))]).await;
                        let _ = tls.flush().await;
                        tokio::time::sleep(wait).await;
                        false
                    }
                    Abort::Immediately => {
                        let _ = tls.write_all(get.as_bytes()).await;
                        let _ = tls.flush().await;
                        false
                    }
                };
                drop(tls); // gone: TCP FIN without reading the answer
                outcomes.lock().unwrap().push((kind, answered));
            }
        })
        .await;

    // Let every request still running inside the gateway finish (the bron
    // answers within 34 ms; the request deadline is far away).
    let mut last = usize::MAX;
    let rows = loop {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let (_, _, rows) = stored_rows(&p.config_path).await;
        if rows.len() == last {
            break rows;
        }
        last = rows.len();
    };
    let (cfg, store, _) = stored_rows(&p.config_path).await;
    let report = admin::verify(&store, &cfg.audit, None, None).await.unwrap();
    child.start_kill().unwrap();
    let _ = child.wait().await;

    let outcomes = outcomes.lock().unwrap().clone();
    let aborted = outcomes.iter().filter(|(_, answered)| !answered).count();
    let sent = sent_traces.lock().unwrap().clone();
    let mut per_trace: HashMap<&str, Vec<&StoredRow>> = HashMap::new();
    let mut half = Vec::new();
    for r in rows.iter().filter(|r| r.kind == "request") {
        per_trace.entry(r.trace_id.as_str()).or_default().push(r);
        let complete = r.compute_hash() == r.hash
            && r.status >= 100
            && !r.reason.is_empty()
            && ["allowed", "filtered", "denied", "error"].contains(&r.outcome.as_str())
            && (!["allowed", "filtered"].contains(&r.outcome.as_str())
                || r.upstream_status.is_some());
        if !complete {
            half.push(format!("#{} {} {}", r.seq, r.outcome, r.reason));
        }
    }
    let doubled: Vec<_> = per_trace
        .iter()
        .filter(|(t, v)| sent.contains(**t) && v.len() > 1)
        .map(|(t, _)| t.to_string())
        .collect();
    // Every request that reached the bron has one record that says so.
    let reached = reached.lock().unwrap().clone();
    let unrecorded: Vec<_> = reached
        .iter()
        .filter(|t| {
            per_trace.get(t.as_str()).is_none_or(|v| {
                v.len() != 1
                    || !matches!(v[0].upstream_status, Some(200 | 201))
                    || !["allowed", "filtered"].contains(&v[0].outcome.as_str())
            })
        })
        .cloned()
        .collect();
    let ours = rows.iter().filter(|r| sent.contains(&r.trace_id)).count();
    let mut reasons: HashMap<&str, usize> = HashMap::new();
    for r in rows.iter().filter(|r| sent.contains(&r.trace_id)) {
        *reasons.entry(r.reason.as_str()).or_default() += 1;
    }
    println!(
        "reliability: client aborts: {n} requests, {aborted} aborted before any answer byte ({} by kind {:?}), {ours} recorded ({reasons:?}), {} reached the bron, {} half records, {} traces with two records, {} bron requests without a complete record, chain verifies: {}",
        outcomes.len(),
        [
            Abort::AfterHead,
            Abort::MidHead,
            Abort::MidBody,
            Abort::Immediately
        ]
        .map(|k| outcomes
            .iter()
            .filter(|(x, a)| !a && std::mem::discriminant(x) == std::mem::discriminant(&k))
            .count()),
        reached.len(),
        half.len(),
        doubled.len(),
        unrecorded.len(),
        report.ok()
    );
    assert!(half.is_empty(), "half records: {half:?}");
    assert!(
        doubled.is_empty(),
        "traces with several records: {doubled:?}"
    );
    assert!(
        unrecorded.is_empty(),
        "bron requests without a complete record: {unrecorded:?}"
    );
    assert!(report.ok(), "{report}");
    assert!(aborted >= n / 2, "only {aborted} of {n} were real aborts");
    assert!(ours > 0, "no aborted request reached the gateway's handler");
}

/// Every string value of the document the demo bron serves for `VERZUIM`
/// (the pupil data that must never appear in a refusal).
fn pupil_data() -> Vec<String> {
    let set = poortwachter::policy::load_dir(Path::new(POLICIES)).unwrap();
    let bron = &set.bronnen["las-noorderlicht"];
    let ri = bron
        .resources
        .iter()
        .position(|r| r.id == "verzuim")
        .unwrap();
    let doc = poortwachter::dev::demo::document(bron, ri, 0);
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) if s.len() >= 4 => out.push(s.clone()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(m) => m.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let mut out = vec!["L1001".to_owned()];
    walk(&doc, &mut out);
    out
}

/// Runs `pg_ctl` of the private cluster (as the postgres user when root).
async fn private_pg_ctl(dir: &Path, args: &[&str]) {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(std::result::Result::ok)
        .map(|e| e.path().join("bin/pg_ctl"))
        .filter(|p| p.exists())
        .max()
        .expect("pg_ctl under /usr/lib/postgresql");
    let data = dir.join("data");
    let log = dir.join("server.log");
    let root = std::env::var("USER").is_ok_and(|u| u == "root")
        || tokio::process::Command::new("id")
            .arg("-u")
            .output()
            .await
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let mut cmd = if root {
        let mut c = tokio::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&bin);
        c
    } else {
        tokio::process::Command::new(&bin)
    };
    let out = cmd
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "pg_ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The PostgreSQL audit store is stopped (immediate shutdown, like a crash)
/// under load: every request sent after the stop gets 503 audit-unavailable
/// with not one byte of pupil data; when the store is back, service resumes,
/// every acknowledged response has its record and the chain verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops a PostgreSQL server: needs a private throwaway cluster \
            (POORTWACHTER_PRIVATE_PG_DIR, POORTWACHTER_TEST_PG); run by benches/reliability/run.sh"]
async fn postgres_store_stopped_under_load_gives_503_and_no_pupil_data() {
    let dir = std::path::PathBuf::from(
        std::env::var("POORTWACHTER_PRIVATE_PG_DIR").expect("POORTWACHTER_PRIVATE_PG_DIR"),
    );
    let admin_url = pg_admin_url();
    // Never stop the shared server others' tests use.
    assert!(
        !admin_url.contains(":5432/"),
        "POORTWACHTER_TEST_PG must point at the private cluster, not {admin_url}"
    );
    let conf = std::fs::read_to_string(dir.join("data/postgresql.conf")).unwrap();
    let port = admin_url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap();
    assert!(
        conf.contains(&format!("port = {port}")),
        "the cluster in {} is not the one on port {port}",
        dir.display()
    );
    let secs = env_count("POORTWACHTER_OUTAGE_SECS", 5) as u64;
    let gw_port = spare_port();
    let mut p = Prepared::new(
        Options {
            store: StoreKind::Postgres,
            audit_extra: "commit_timeout_ms = 1000".into(),
            ..Options::default()
        },
        &format!("127.0.0.1:{gw_port}"),
    )
    .await;
    register_cases(
        &p.config_path,
        "aoj-vo-noorderlicht",
        "gemeente-groningen",
        "leerplicht",
        &["L1001"],
    )
    .await;
    let cert = p.pki.client_for("gemeente-groningen");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{gw_port}").parse().unwrap();
    let mut child = spawn_gateway(&p.config_path);
    let probe = TestClient::new(addr, &p.pki.ca.cert_pem, Some(&cert), false);
    assert!(
        wait_ready(&mut child, &probe, 30).await,
        "gateway did not come up"
    );

    // (sent at, status, request id, body)
    type Seen = Vec<(Instant, u16, String, bytes::Bytes)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..8 {
        let c = TestClient::new(addr, &p.pki.ca.cert_pem, Some(&cert), false);
        let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
        load.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                if let Ok(r) = c
                    .request(
                        http::Method::GET,
                        VERZUIM,
                        &[("x-doelbinding", "aanpak-verzuim")],
                        None,
                    )
                    .await
                {
                    let id = r.header("x-request-id").unwrap_or("").to_owned();
                    seen.lock()
                        .unwrap()
                        .push((t, r.status.as_u16(), id, r.body));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    private_pg_ctl(&dir, &["-m", "immediate", "-w", "stop"]).await;
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for l in load {
        let _ = l.await;
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    let after: Vec<_> = seen.iter().filter(|(t, ..)| *t >= stopped).collect();
    let data = pupil_data();
    let not_503: Vec<_> = after.iter().filter(|(_, s, ..)| *s != 503).collect();
    let leaked: usize = after
        .iter()
        .filter(|(_, _, _, body)| {
            let b = String::from_utf8_lossy(body);
            data.iter().any(|d| b.contains(d.as_str()))
                || !b.contains("urn:poortwachter:problem:audit-unavailable")
        })
        .count();
    let pupil_bytes: usize = after
        .iter()
        .filter(|(_, s, ..)| *s == 200)
        .map(|(.., b)| b.len())
        .sum();

    // The store comes back: service resumes, acknowledged records are there.
    private_pg_ctl(&dir, &["-w", "-t", "60", "start"]).await;
    let resumed = wait_ready(&mut child, &probe, 60).await;
    let acked: Vec<&str> = seen
        .iter()
        .filter(|(_, s, ..)| *s == 200)
        .map(|(_, _, id, _)| id.as_str())
        .collect();
    let (cfg, store, rows) = stored_rows(&p.config_path).await;
    let stored: HashSet<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    let missing = acked.iter().filter(|id| !stored.contains(**id)).count();
    // Records that say "200" for a request the client got a 503 for: a batch
    // whose COMMIT reached the store just before the connection broke is in
    // the store although its requests were refused. Reported, not asserted:
    // it records a disclosure that did not happen, never hides one.
    let refused: HashSet<&str> = seen
        .iter()
        .filter(|(_, s, ..)| *s == 503)
        .map(|(_, _, id, _)| id.as_str())
        .collect();
    let over_recorded = rows
        .iter()
        .filter(|r| refused.contains(r.request_id.as_str()) && r.status == 200)
        .count();
    let report = admin::verify(&store, &cfg.audit, None, None).await.unwrap();
    child.start_kill().unwrap();
    let _ = child.wait().await;
    println!(
        "reliability: PostgreSQL stopped under load: {} requests before the stop ({} acknowledged), {} after it: {} answered 503 audit-unavailable, {} otherwise, {} carried pupil data ({} bytes of 200 bodies); service resumed: {resumed}; {missing} acknowledged-but-missing; {over_recorded} records of status 200 for requests answered 503; chain verifies: {}",
        seen.len() - after.len(),
        acked.len(),
        after.len(),
        after.len() - not_503.len(),
        not_503.len(),
        leaked,
        pupil_bytes,
        report.ok()
    );
    assert!(
        after.len() >= 8,
        "too few requests during the outage: {}",
        after.len()
    );
    assert!(
        not_503.is_empty(),
        "statuses after the stop: {:?}",
        not_503.iter().map(|(_, s, ..)| s).collect::<Vec<_>>()
    );
    assert_eq!(
        leaked, 0,
        "a refusal carried pupil data or was not a problem"
    );
    assert!(resumed, "service did not resume when the store came back");
    assert_eq!(missing, 0, "acknowledged responses without a record");
    assert!(report.ok(), "{report}");
}
