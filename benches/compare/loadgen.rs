//! Load generator and fixture writer for the side-by-side benchmark
//! (`bash benches/compare/run.sh`). Not a test and not part of `cargo test`'s
//! measurements; built with `cargo build --release --locked --example loadgen`.
//!
//! One generator drives all three targets (the bron directly, nginx as a plain
//! mTLS reverse proxy, the gateway) in the same way, so the figures can be put
//! side by side:
//!
//! - `run --mode keepalive`: `concurrency` connections, each sends its next
//!   request as soon as the previous answer is read (closed loop).
//! - `run --mode newconn`: the same, but every request opens a new TCP (and
//!   TLS) connection; TLS session resumption is disabled, so every request
//!   costs a full handshake with client-certificate verification (the gateway
//!   never resumes sessions either).
//! - `run --mode rate`: an open-loop constant rate over a pool of keep-alive
//!   connections. A request that starts late because every connection was
//!   busy is timed from its scheduled start (no coordinated omission); the
//!   generator's own timer slack (tokio sleeps have 1 ms granularity) is not
//!   counted.
//! - `idle`: opens N connections, sends one request on each, and holds them
//!   open (for measuring the server's memory with many open connections).
//! - `fixtures`: writes the bron documents and the synthetic policy sets.
//! - `report`: prints the JSON lines written by `run` as a side-by-side table.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a benchmark reads top to bottom; percentiles index by truncated floats"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Mode {
    Keepalive,
    Newconn,
    Rate,
}

#[derive(clap::Args, Clone)]
struct Target {
    /// http://host:port/path (plain) or https://localhost:port/path (mTLS).
    #[arg(long)]
    url: Uri,
    /// Extra request header, `name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
    /// CA to verify the server with (https).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Client certificate (PEM) for mTLS.
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Client key (PEM) for mTLS.
    #[arg(long)]
    key: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Drive one target and append one JSON line with the figures to --out.
    Run {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum)]
        mode: Mode,
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Measured seconds (after the warm-up).
        #[arg(long, default_value_t = 10)]
        duration: u64,
        #[arg(long, default_value_t = 2)]
        warmup: u64,
        /// Requests per second for --mode rate.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        /// Scenario name (a row of the table).
        #[arg(long)]
        scenario: String,
        /// Audit store of the gateway in this scenario (or "-").
        #[arg(long, default_value = "-")]
        store: String,
        /// direct, nginx or gateway (a column of the table).
        #[arg(long)]
        label: String,
        /// JSON lines file the result is appended to.
        #[arg(long)]
        out: PathBuf,
        /// Server processes whose CPU time (utime + stime) is charged to this
        /// run, to report CPU per request (comma-separated PIDs).
        #[arg(long, value_delimiter = ',')]
        pids: Vec<u32>,
    },
    /// Open N connections, one request on each, then hold them for --hold seconds.
    Idle {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 1000)]
        conns: usize,
        #[arg(long, default_value_t = 10)]
        hold: u64,
    },
    /// Write the bron documents (docroot) and the synthetic policy sets.
    Fixtures {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "policies")]
        policies: PathBuf,
    },
    /// Print the results (JSON lines) side by side with ratios, as Markdown.
    Report {
        #[arg(long)]
        results: PathBuf,
    },
}

#[derive(Serialize, Deserialize, Clone, Debug)]
struct RunResult {
    scenario: String,
    store: String,
    label: String,
    mode: String,
    concurrency: usize,
    rate: u64,
    duration_s: f64,
    ok: u64,
    /// Responses other than 200, by status, plus connection failures ("io").
    failures: BTreeMap<String, u64>,
    rps: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    /// Body bytes of the first 200 response and its X-Poortwachter-Withheld.
    body_bytes: usize,
    withheld: Option<String>,
    /// CPU time of the server processes (--pids) per completed request,
    /// warm-up included (user + system, 10 ms clock ticks).
    #[serde(default)]
    server_cpu_us_per_req: Option<f64>,
}

type Sender = SendRequest<Empty<Bytes>>;

struct Client {
    addr: SocketAddr,
    tls: Option<tokio_rustls::TlsConnector>,
    request: http::request::Builder,
    uri: Uri,
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("loadgen: {msg}");
    std::process::exit(2)
}

impl Client {
    fn new(t: &Target) -> Self {
        let host = t.url.host().unwrap_or_else(|| die("url without host"));
        let https = t.url.scheme_str() == Some("https");
        let port = t.url.port_u16().unwrap_or(if https { 443 } else { 80 });
        let ip = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        let addr: SocketAddr = format!("{ip}:{port}")
            .parse()
            .unwrap_or_else(|e| die(format!("address {ip}:{port}: {e}")));
        let tls = https.then(|| tokio_rustls::TlsConnector::from(Arc::new(client_config(t))));
        let mut request = Request::builder()
            .method("GET")
            .header("host", format!("{host}:{port}"));
        for h in &t.headers {
            let (k, v) = h
                .split_once(':')
                .unwrap_or_else(|| die(format!("header {h:?}")));
            request = request.header(k.trim(), v.trim());
        }
        let uri: Uri = t
            .url
            .path_and_query()
            .map_or("/", http::uri::PathAndQuery::as_str)
            .parse()
            .unwrap_or_else(|e| die(e));
        Self {
            addr,
            tls,
            request,
            uri,
        }
    }

    async fn connect(&self) -> Result<Sender, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some(tls) => {
                let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
                let s = tls.connect(name, tcp).await.map_err(|e| e.to_string())?;
                handshake(s).await
            }
            None => handshake(tcp).await,
        }
    }

    fn request(&self) -> Request<Empty<Bytes>> {
        let mut r = Request::new(Empty::new());
        *r.uri_mut() = self.uri.clone();
        if let Some(h) = self.request.headers_ref() {
            *r.headers_mut() = h.clone();
        }
        r
    }

    /// Sends one request; Ok((status, body length, withheld header)).
    async fn send(&self, s: &mut Sender) -> Result<(u16, usize, Option<String>), String> {
        s.ready().await.map_err(|e| e.to_string())?;
        let resp = s
            .send_request(self.request())
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let withheld = resp
            .headers()
            .get("x-poortwachter-withheld")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body.len(), withheld))
    }
}

async fn handshake<IO>(io: IO) -> Result<Sender, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn client_config(t: &Target) -> rustls::ClientConfig {
    let read = |p: &Option<PathBuf>, what: &str| -> Vec<u8> {
        let p = p
            .as_ref()
            .unwrap_or_else(|| die(format!("https needs --{what}")));
        std::fs::read(p).unwrap_or_else(|e| die(format!("{}: {e}", p.display())))
    };
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    for c in CertificateDer::pem_slice_iter(&read(&t.ca, "ca")) {
        roots
            .add(c.unwrap_or_else(|e| die(e)))
            .unwrap_or_else(|e| die(e));
    }
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&read(&t.cert, "cert"))
        .map(|c| c.unwrap_or_else(|e| die(e)))
        .collect();
    let key = PrivateKeyDer::from_pem_slice(&read(&t.key, "key")).unwrap_or_else(|e| die(e));
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap_or_else(|e| die(e))
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .unwrap_or_else(|e| die(e));
    // Every new connection is a full handshake, for nginx and the gateway alike.
    cfg.resumption = rustls::client::Resumption::disabled();
    cfg
}

#[derive(Default)]
struct Tally {
    /// Completed requests, warm-up and failures included.
    all: u64,
    latencies_us: Vec<u32>,
    failures: BTreeMap<String, u64>,
    first: Option<(usize, Option<String>)>,
}

impl Tally {
    fn record(&mut self, r: &Result<(u16, usize, Option<String>), String>, took: Duration) {
        match r {
            Ok((200, len, withheld)) => {
                self.latencies_us
                    .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                if self.first.is_none() {
                    self.first = Some((*len, withheld.clone()));
                }
            }
            Ok((status, _, _)) => *self.failures.entry(status.to_string()).or_default() += 1,
            Err(_) => *self.failures.entry("io".into()).or_default() += 1,
        }
    }
    fn merge(&mut self, o: Tally) {
        self.all += o.all;
        self.latencies_us.extend(o.latencies_us);
        for (k, v) in o.failures {
            *self.failures.entry(k).or_default() += v;
        }
        if self.first.is_none() {
            self.first = o.first;
        }
    }
}

struct Clock {
    measure_from: Instant,
    end: Instant,
}

async fn closed_loop(client: Arc<Client>, clock: Arc<Clock>, fresh: bool) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<Sender> = None;
    while Instant::now() < clock.end {
        let t = Instant::now();
        let sender = match conn.take() {
            Some(s) if !fresh => Ok(s),
            _ => client.connect().await,
        };
        let r = match sender {
            Ok(mut s) => {
                let r = client.send(&mut s).await;
                if r.is_ok() && !fresh {
                    conn = Some(s);
                }
                r
            }
            Err(e) => {
                // Do not spin on a refused connect.
                tokio::time::sleep(Duration::from_millis(1)).await;
                Err(e)
            }
        };
        let done = Instant::now();
        tally.all += 1;
        if t >= clock.measure_from && done <= clock.end {
            tally.record(&r, done - t);
        }
    }
    tally
}

async fn open_loop(
    client: Arc<Client>,
    clock: Arc<Clock>,
    start: Instant,
    interval: Duration,
    next: Arc<AtomicU64>,
) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<Sender> = None;
    loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        let Some(offset) = interval.checked_mul(u32::try_from(k).unwrap_or(u32::MAX)) else {
            break;
        };
        let intended = start + offset;
        if intended >= clock.end {
            break;
        }
        let grabbed = Instant::now();
        tokio::time::sleep_until(intended.into()).await;
        // Late because this connection was busy: time from the schedule.
        // Early and woken late by the timer: time from the actual send.
        let t0 = if grabbed > intended {
            intended
        } else {
            Instant::now()
        };
        let sender = match conn.take() {
            Some(s) => Ok(s),
            None => client.connect().await,
        };
        let r = match sender {
            Ok(mut s) => {
                let r = client.send(&mut s).await;
                if r.is_ok() {
                    conn = Some(s);
                }
                r
            }
            Err(e) => Err(e),
        };
        tally.all += 1;
        if intended >= clock.measure_from {
            tally.record(&r, t0.elapsed());
        }
    }
    tally
}

/// utime + stime of the processes, in clock ticks (USER_HZ, 100 on Linux).
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

#[allow(clippy::too_many_arguments)]
async fn run(
    target: Target,
    mode: Mode,
    concurrency: usize,
    duration: u64,
    warmup: u64,
    rate: u64,
    scenario: String,
    store: String,
    label: String,
    pids: Vec<u32>,
) -> RunResult {
    let client = Arc::new(Client::new(&target));
    let cpu_before = cpu_ticks(&pids);
    let now = Instant::now();
    let clock = Arc::new(Clock {
        measure_from: now + Duration::from_secs(warmup),
        end: now + Duration::from_secs(warmup + duration),
    });
    let next = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, clock) = (Arc::clone(&client), Arc::clone(&clock));
        tasks.push(match mode {
            Mode::Keepalive => tokio::spawn(closed_loop(client, clock, false)),
            Mode::Newconn => tokio::spawn(closed_loop(client, clock, true)),
            Mode::Rate => tokio::spawn(open_loop(client, clock, now, interval, Arc::clone(&next))),
        });
    }
    let mut tally = Tally::default();
    for t in tasks {
        if let Ok(t) = t.await {
            tally.merge(t);
        }
    }
    let cpu_us = cpu_ticks(&pids).saturating_sub(cpu_before) * 10_000;
    let server_cpu_us_per_req =
        (!pids.is_empty() && tally.all > 0).then(|| cpu_us as f64 / tally.all as f64);
    let mut l = std::mem::take(&mut tally.latencies_us);
    l.sort_unstable();
    let (body_bytes, withheld) = tally.first.clone().unwrap_or((0, None));
    RunResult {
        scenario,
        store,
        label,
        mode: format!("{mode:?}").to_lowercase(),
        concurrency,
        rate: if mode == Mode::Rate { rate } else { 0 },
        duration_s: duration as f64,
        ok: l.len() as u64,
        failures: tally.failures,
        rps: l.len() as f64 / duration as f64,
        p50_ms: pct(&l, 0.50),
        p90_ms: pct(&l, 0.90),
        p99_ms: pct(&l, 0.99),
        p999_ms: pct(&l, 0.999),
        max_ms: l.last().map_or(f64::NAN, |v| f64::from(*v) / 1000.0),
        body_bytes,
        withheld,
        server_cpu_us_per_req,
    }
}

async fn idle(target: Target, conns: usize, hold: u64) {
    let client = Arc::new(Client::new(&target));
    let opened = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let release = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(tokio::sync::Semaphore::new(32));
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (client, opened, failed, release, gate) = (
            Arc::clone(&client),
            Arc::clone(&opened),
            Arc::clone(&failed),
            Arc::clone(&release),
            Arc::clone(&gate),
        );
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let s = match client.connect().await {
                Ok(mut s) => match client.send(&mut s).await {
                    Ok((200, _, _)) => Some(s),
                    _ => None,
                },
                Err(_) => None,
            };
            drop(permit);
            match s {
                Some(s) => {
                    opened.fetch_add(1, Ordering::Relaxed);
                    while !release.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    drop(s);
                }
                None => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let t = Instant::now();
    while opened.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < conns as u64 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "ready: {} connections open, {} failed, in {:.2}s",
        opened.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        t.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(hold)).await;
    release.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
}

/// The bron documents the scenarios request, written where a static file
/// server finds them under the bron's path, and the synthetic policy sets.
fn fixtures(out: &Path, policies: &Path) {
    use poortwachter::dev::synth;
    use poortwachter::policy;
    let set = policy::load_dir(policies).unwrap_or_else(|e| die(e));
    let docroot = out.join("docroot");
    let write = |rel: String, v: &serde_json::Value| {
        let p = docroot.join(rel.trim_start_matches('/'));
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap_or_else(|e| die(e));
        }
        std::fs::write(&p, serde_json::to_vec(v).unwrap_or_else(|e| die(e)))
            .unwrap_or_else(|e| die(e));
    };
    // Every leaf resource of every example bron for every demo pupil (a
    // resource whose path is the prefix of another one is skipped: a static
    // file server cannot serve a file and a directory under one name).
    let mut written = 0;
    for bron in set.bronnen.values() {
        for (ri, r) in bron.resources.iter().enumerate() {
            let tpl = r.template.as_str();
            let prefix_of_other = bron.resources.iter().any(|o| {
                o.template.as_str() != tpl && o.template.as_str().starts_with(&format!("{tpl}/"))
            });
            if prefix_of_other || tpl.contains('{') && tpl.matches('{').count() > 1 {
                continue;
            }
            for (pi, pupil) in poortwachter::dev::demo::DEMO_PUPILS.iter().enumerate() {
                let path = tpl.replace(&format!("{{{}}}", bron.pupil_variable), pupil);
                write(
                    format!("{}{path}", bron.id),
                    &poortwachter::dev::demo::document(bron, ri, pi),
                );
                written += 1;
            }
        }
    }
    // The synthetic bron: a 200-field document for every demo pupil.
    let doc = synth::document(200);
    for pupil in poortwachter::dev::demo::DEMO_PUPILS {
        write(format!("synth/leerlingen/{pupil}"), &doc);
    }
    // A small synthetic set (one overleg, 200-field catalogue) and the
    // 50,000-line one; same partners, so one PKI serves both.
    let small = synth::SynthSpec {
        overleggen: 1,
        ..synth::SynthSpec::FIFTY_THOUSAND
    };
    synth::write(&out.join("policies-synth-small"), small).unwrap_or_else(|e| die(e));
    synth::write(
        &out.join("policies-synth-50k"),
        synth::SynthSpec::FIFTY_THOUSAND,
    )
    .unwrap_or_else(|e| die(e));
    println!(
        "wrote {written} example documents, the 200-field synthetic document, and synthetic sets of {} and {} casbin rows to {}",
        small.p_rows(),
        synth::SynthSpec::FIFTY_THOUSAND.p_rows(),
        out.display()
    );
}

fn f(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn report(results: &Path) {
    let text = std::fs::read_to_string(results).unwrap_or_else(|e| die(e));
    let rows: Vec<RunResult> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Group by (scenario, store) in order of appearance.
    let mut groups: Vec<(String, String)> = Vec::new();
    for r in &rows {
        let k = (r.scenario.clone(), r.store.clone());
        if !groups.contains(&k) {
            groups.push(k);
        }
    }
    println!(
        "| scenario | gateway store | target | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | failures | server CPU µs/req | gateway / nginx req/s | p99 added over direct |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|");
    for (scenario, store) in groups {
        let of = |label: &str| {
            rows.iter()
                .rev()
                .find(|r| r.scenario == scenario && r.store == store && r.label == label)
        };
        let direct = of("direct");
        let nginx = of("nginx");
        for label in ["direct", "nginx", "gateway"] {
            let Some(r) = of(label) else { continue };
            let ratio = match (label, nginx) {
                ("gateway", Some(n)) if n.rps > 0.0 => format!("**{:.2}x**", r.rps / n.rps),
                _ => String::new(),
            };
            let added = match (label, direct) {
                ("direct", _) | (_, None) => String::new(),
                (_, Some(d)) => format!("{:+.2} ms", r.p99_ms - d.p99_ms),
            };
            let failures = if r.failures.is_empty() {
                "0".to_owned()
            } else {
                r.failures
                    .iter()
                    .map(|(k, v)| format!("{v}×{k}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let what = match r.mode.as_str() {
                "rate" => format!("{scenario} ({} req/s)", r.rate),
                _ => format!("{scenario} (c={})", r.concurrency),
            };
            let cpu = r
                .server_cpu_us_per_req
                .map_or_else(String::new, |c| format!("{c:.0}"));
            println!(
                "| {what} | {store} | {label} | {:.0} | {} | {} | {} | {} | {} | {failures} | {cpu} | {ratio} | {added} |",
                r.rps,
                f(r.p50_ms),
                f(r.p90_ms),
                f(r.p99_ms),
                f(r.p999_ms),
                f(r.max_ms),
            );
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(e));
    match cli.cmd {
        Cmd::Run {
            target,
            mode,
            concurrency,
            duration,
            warmup,
            rate,
            scenario,
            store,
            label,
            out,
            pids,
        } => {
            let r = rt.block_on(run(
                target,
                mode,
                concurrency,
                duration,
                warmup,
                rate,
                scenario,
                store,
                label,
                pids,
            ));
            let line = serde_json::to_string(&r).unwrap_or_else(|e| die(e));
            eprintln!(
                "  {:<8} {:>9.0} req/s  p50 {} ms  p99 {} ms  p99.9 {} ms  failures {:?}",
                r.label,
                r.rps,
                f(r.p50_ms),
                f(r.p99_ms),
                f(r.p999_ms),
                r.failures
            );
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&out)
                .unwrap_or_else(|e| die(e));
            writeln!(file, "{line}").unwrap_or_else(|e| die(e));
        }
        Cmd::Idle {
            target,
            conns,
            hold,
        } => rt.block_on(idle(target, conns, hold)),
        Cmd::Fixtures { out, policies } => fixtures(&out, &policies),
        Cmd::Report { results } => report(&results),
    }
}
