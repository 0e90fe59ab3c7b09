//! One harness for every integration test: mints a PKI per test (rcgen),
//! writes a configuration into a temp dir, starts demo bronnen and the gateway
//! on port 0 with a fresh audit store (SQLite file, or a fresh PostgreSQL
//! database), and offers an mTLS client per organisation.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use poortwachter::config::Config;
use poortwachter::dev::certs::{ClientSpec, DevCa, Issued};
use poortwachter::gateway::state::AppState;
use poortwachter::lifecycle::{Gateway, Listeners, Running};
use poortwachter::policy;
use tokio::net::TcpListener;

pub const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

/// Copies the policy files into `<tmp>/policies` (named like the original;
/// the version hash does not depend on it, but messages read the same).
pub fn copy_policies() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("policies");
    for sub in ["", "bronnen", "overleggen", "tests"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for e in std::fs::read_dir(Path::new(POLICIES).join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                std::fs::copy(&p, dir.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    (tmp, dir)
}

/// Replaces the first occurrence of `from` (which must exist) in `path`.
pub fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

/// A port for a test that must name its listening address before the
/// process that listens starts (a spawned `serve` or `demo`, or one that is
/// killed and restarted on the same address). Taken *below* the kernel's
/// ephemeral range, so no outgoing connection and no listener on port 0 of
/// any concurrent test can take it in the meantime (a port from `bind(:0)`
/// then released can be reused at once as some client's local port: CI saw
/// `Address already in use` that way). Checked free when chosen; spread by
/// process id and a counter so concurrent tests do not pick the same one.
pub fn spare_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_low: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u32, ephemeral_low.max(10_001));
    let span = high - low;
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = low + seed.wrapping_add(n.wrapping_mul(4099)) % span;
        let port = u16::try_from(port).unwrap();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range {ephemeral_low}");
}

/// Which audit store a test runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

/// Base URL of the PostgreSQL server used by tests (a fresh database is
/// created per test). `.ci/run` makes sure it is up.
pub fn pg_admin_url() -> String {
    std::env::var("POORTWACHTER_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Creates a fresh PostgreSQL database and returns its URL.
pub async fn fresh_pg_database() -> String {
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let admin = pg_admin_url();
    let name = format!("pw_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("PostgreSQL must be running for the tests (see README)");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
    format!("{base}/{name}")
}

/// The test PKI: a CA and helpers to mint what a test needs.
pub struct Pki {
    pub ca: DevCa,
    pub dir: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Self {
        let mut ca = DevCa::new("Test CA").unwrap();
        let gw = ca.server(&["localhost", "127.0.0.1"]).unwrap();
        std::fs::write(dir.join("ca.pem"), &ca.cert_pem).unwrap();
        std::fs::write(dir.join("gateway.pem"), &gw.cert_pem).unwrap();
        std::fs::write(dir.join("gateway-key.pem"), &gw.key_pem).unwrap();
        std::fs::write(dir.join("crl.pem"), ca.current_crl(&[]).unwrap()).unwrap();
        Self {
            ca,
            dir: dir.to_owned(),
        }
    }

    /// A valid client certificate for an organisation or a software
    /// supplier of the example registry.
    pub fn client_for(&mut self, org: &str) -> Issued {
        let set = policy::load_dir(Path::new(POLICIES)).unwrap();
        let oin = match set.organisations.get(org) {
            Some(o) => o.oin.clone(),
            None => Some(set.mandates.suppliers[org].oin.clone()),
        };
        self.ca
            .client(&ClientSpec::new(org, oin.as_deref()))
            .unwrap()
    }
}

pub struct Options {
    pub store: StoreKind,
    pub policies: PathBuf,
    /// Extra TOML appended to the `[server]` section.
    pub server_extra: String,
    /// Extra TOML appended to the `[tls]` section.
    pub tls_extra: String,
    /// Extra TOML appended to the `[upstream]` section.
    pub upstream_extra: String,
    /// Base URL overrides (bron id → URL) on top of the demo bronnen.
    pub base_urls: BTreeMap<String, String>,
    pub audit_extra: String,
    /// Reuse an existing audit store instead of a fresh one.
    pub store_url: Option<String>,
    /// `server.instance`: each instance has its own hash chain.
    pub instance: String,
    /// Use this signing key (copied) instead of a fresh one.
    pub signing_key_from: Option<PathBuf>,
    /// Use this pseudonym key (copied) instead of a fresh one: instances
    /// that share a store must pseudonymise alike.
    pub pseudonym_key_from: Option<PathBuf>,
    /// Register (aanmelden) [`SEEDED_PUPILS`] in every overleg before the
    /// gateway starts, as a fixture (directly in the store, not audited).
    pub seed_cases: bool,
    /// Start the admin listener (FG dashboard, health, metrics) on port 0.
    pub admin: bool,
    /// `policy.watch`: reload on file changes (off in tests unless asked).
    pub watch: bool,
    /// Extra TOML after the `[policy]` keys (e.g. a `[policy.approval]` table).
    pub policy_extra: String,
    /// Extra TOML in the `[admin]` section (with `admin`).
    pub admin_extra: String,
}

/// Pupils the fixture registers in every overleg: the demo pupils and one
/// the demo bronnen do not know.
pub const SEEDED_PUPILS: [&str; 6] = ["L1001", "L1002", "L1003", "L1004", "L1005", "L9999"];

impl Options {
    /// Default options with one bron pointed at `url`.
    pub fn with_bron_url(bron: &str, url: String) -> Self {
        Self {
            base_urls: BTreeMap::from([(bron.to_owned(), url)]),
            ..Self::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            store: StoreKind::Sqlite,
            policies: PathBuf::from(POLICIES),
            server_extra: String::new(),
            tls_extra: String::new(),
            upstream_extra: String::new(),
            base_urls: BTreeMap::new(),
            audit_extra: String::new(),
            store_url: None,
            instance: "test-1".into(),
            signing_key_from: None,
            pseudonym_key_from: None,
            seed_cases: true,
            admin: false,
            watch: false,
            policy_extra: String::new(),
            admin_extra: String::new(),
        }
    }
}

/// A written configuration (PKI, keys, demo bronnen running in this process),
/// ready to be served in-process or by the real binary.
pub struct Prepared {
    pub tmp: tempfile::TempDir,
    pub pki: Pki,
    pub store_url: String,
    pub config_path: PathBuf,
}

impl Prepared {
    #[allow(
        clippy::too_many_lines,
        reason = "test harness: the configuration template is one literal, read at once"
    )]
    pub async fn new(opts: Options, listen: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::new(tmp.path());
        let set = Arc::new(policy::load_dir(&opts.policies).unwrap());
        let bronnen = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bronnen_addr = bronnen.local_addr().unwrap();
        tokio::spawn(poortwachter::dev::demo::serve_bronnen(
            bronnen,
            Arc::clone(&set),
        ));
        let mut urls: BTreeMap<String, String> = set
            .bronnen
            .keys()
            .map(|id| (id.clone(), format!("http://{bronnen_addr}/{id}")))
            .collect();
        urls.extend(opts.base_urls.clone());
        let store_url = match (&opts.store_url, opts.store) {
            (Some(u), _) => u.clone(),
            (None, StoreKind::Sqlite) => format!("sqlite://{}/audit.db", tmp.path().display()),
            (None, StoreKind::Postgres) => fresh_pg_database().await,
        };
        if let Some(k) = &opts.pseudonym_key_from {
            std::fs::copy(k, tmp.path().join("pseudonym.key")).unwrap();
        } else {
            poortwachter::audit::Pseudonymiser::generate_file(&tmp.path().join("pseudonym.key"))
                .unwrap();
        }
        if let Some(k) = &opts.signing_key_from {
            std::fs::copy(k, tmp.path().join("signing.key")).unwrap();
        } else {
            poortwachter::audit::Signer::generate_file(&tmp.path().join("signing.key")).unwrap();
        }
        let urls_toml: String = urls
            .iter()
            .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
            .collect();
        let cfg_text = format!(
            r#"
[server]
listen = "{listen}"
instance = "{instance}"
{server_extra}

[tls]
cert = "gateway.pem"
key = "gateway-key.pem"
client_ca = ["ca.pem"]
crls = ["crl.pem"]
{tls_extra}

[upstream]
connect_timeout_ms = 500
response_timeout_ms = 1500
{upstream_extra}

[upstream.base_urls]
{urls_toml}

[policy]
dir = "{policies}"
watch = {watch}
{policy_extra}

[audit]
store = "{store_url}"
pseudonym_key = "pseudonym.key"
signing_key = "signing.key"
{audit_extra}
{admin}
"#,
            admin = if opts.admin {
                format!("[admin]\nlisten = \"127.0.0.1:0\"\n{}\n", opts.admin_extra)
            } else {
                String::new()
            },
            server_extra = opts.server_extra,
            watch = opts.watch,
            instance = opts.instance,
            listen = listen,
            tls_extra = opts.tls_extra,
            upstream_extra = opts.upstream_extra,
            audit_extra = opts.audit_extra,
            policy_extra = opts.policy_extra,
            policies = opts.policies.display(),
        );
        let config_path = tmp.path().join("poortwachter.toml");
        std::fs::write(&config_path, cfg_text).unwrap();
        if opts.seed_cases {
            let pseudo =
                poortwachter::audit::Pseudonymiser::from_file(&tmp.path().join("pseudonym.key"))
                    .unwrap();
            let overleggen: Vec<String> = set.overleggen.keys().cloned().collect();
            seed_cases(&store_url, &pseudo, &overleggen, &SEEDED_PUPILS).await;
        }
        Prepared {
            tmp,
            pki,
            store_url,
            config_path,
        }
    }
}

/// Fixture: active, open-ended registrations of `pupils` in `overleggen`.
pub async fn seed_cases(
    store_url: &str,
    pseudo: &poortwachter::audit::Pseudonymiser,
    overleggen: &[String],
    pupils: &[&str],
) {
    let store = poortwachter::audit::Store::connect(store_url)
        .await
        .unwrap();
    for o in overleggen {
        for p in pupils {
            sqlx::query("INSERT INTO case_registrations (id, overleg, subject, reference, begins_at, ends_at, registered_by, registered_role, registered_at) VALUES ($1,$2,$3,'fixture','2020-01-01T00:00:00.000000Z',NULL,'fixture','fixture','2020-01-01T00:00:00.000000Z')")
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(o)
                .bind(pseudo.pseudonymise(p))
                .execute(store.pool())
                .await
                .unwrap();
        }
    }
    store.pool().close().await;
}

pub struct TestGateway {
    pub addr: SocketAddr,
    pub tmp: tempfile::TempDir,
    pub pki: Pki,
    pub state: Arc<AppState>,
    pub tls: Arc<poortwachter::gateway::tls::ServerTls>,
    pub store_url: String,
    pub config_path: PathBuf,
    /// The admin listener's address, when `Options::admin` was set.
    pub admin_addr: Option<SocketAddr>,
    running: Option<Running>,
}

impl TestGateway {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// Starts the gateway through the library's lifecycle, as `serve` does,
    /// on port 0 (and the admin listener on port 0 with `Options::admin`).
    pub async fn start_with(opts: Options) -> Self {
        let p = Prepared::new(opts, "127.0.0.1:0").await;
        let cfg = Config::load(&p.config_path).unwrap();
        let listeners = Listeners::bind(&cfg).await.unwrap();
        let running = Gateway::start(&cfg, listeners, std::future::pending())
            .await
            .unwrap();
        Self {
            addr: running.addr(),
            admin_addr: running.admin_addr(),
            state: Arc::clone(running.state()),
            tls: Arc::clone(running.tls()),
            tmp: p.tmp,
            pki: p.pki,
            store_url: p.store_url,
            config_path: p.config_path,
            running: Some(running),
        }
    }

    /// An HTTPS client presenting a fresh valid certificate of `org`.
    pub fn client(&mut self, org: &str) -> TestClient {
        let issued = self.pki.client_for(org);
        TestClient::new(self.addr, &self.pki.ca.cert_pem, Some(&issued), false)
    }

    /// An HTTPS client for the admin listener presenting a fresh certificate of `org`.
    pub fn admin_client(&mut self, org: &str) -> TestClient {
        let issued = self.pki.client_for(org);
        let addr = self.admin_addr.expect("started with Options::admin");
        TestClient::new(addr, &self.pki.ca.cert_pem, Some(&issued), false)
    }

    /// A client presenting exactly `issued` (or no certificate).
    pub fn client_with(&self, issued: Option<&Issued>, http2: bool) -> TestClient {
        TestClient::new(self.addr, &self.pki.ca.cert_pem, issued, http2)
    }

    /// Stops the gateway (the lifecycle's one shutdown sequence) and waits
    /// until every audit record is written.
    pub async fn stop(mut self) -> (tempfile::TempDir, String) {
        let running = self.running.take();
        drop(self.state);
        drop(self.tls);
        if let Some(r) = running {
            r.stop().await;
        }
        (self.tmp, self.store_url)
    }

    pub async fn audit_rows(&self) -> Vec<poortwachter::audit::StoredRow> {
        let store = poortwachter::audit::Store::connect(&self.store_url)
            .await
            .unwrap();
        store.all_rows().await.unwrap()
    }

    pub fn pseudonym(&self, pupil: &str) -> String {
        self.state.audit.pseudonymise(pupil)
    }
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
    pub fn problem_type(&self) -> String {
        self.json()["type"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches("urn:poortwachter:problem:")
            .to_owned()
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct TestClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    /// How long a request may take before it counts as a timeout (10 s;
    /// the FG bench's pages at 10 M records take longer).
    pub timeout: Duration,
}

/// Every certificate in a PEM text.
pub fn pem_certs(pem: &str) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.unwrap())
        .collect()
}

/// The first private key in a PEM text.
pub fn pem_key(pem: &str) -> rustls::pki_types::PrivateKeyDer<'static> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// A trust store holding every certificate in `ca_pem`.
pub fn pem_roots(ca_pem: &str) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for c in pem_certs(ca_pem) {
        roots.add(c).unwrap();
    }
    roots
}

pub fn client_config(ca_pem: &str, issued: Option<&Issued>) -> rustls::ClientConfig {
    let roots = pem_roots(ca_pem);
    let b = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    match issued {
        Some(i) => b
            .with_client_auth_cert(pem_certs(&i.cert_pem), pem_key(&i.key_pem))
            .unwrap(),
        None => b.with_no_client_auth(),
    }
}

impl TestClient {
    pub fn new(addr: SocketAddr, ca_pem: &str, issued: Option<&Issued>, http2: bool) -> Self {
        Self::from_config(addr, client_config(ca_pem, issued), http2)
    }

    pub fn from_config(addr: SocketAddr, cfg: rustls::ClientConfig, http2: bool) -> Self {
        let b = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(cfg)
            .https_only();
        let connector = if http2 {
            b.enable_http2().build()
        } else {
            b.enable_http1().build()
        };
        let client = Client::builder(TokioExecutor::new())
            .http2_only(http2)
            .build(connector);
        Self {
            client,
            base: format!("https://localhost:{}", addr.port()),
            timeout: Duration::from_secs(10),
        }
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<TestResponse, String> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(self.timeout, self.client.request(req))
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(|e| format!("{e:?}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(TestResponse {
            status,
            headers,
            body,
        })
    }

    /// GET with a purpose (and optional role).
    pub async fn get(&self, path: &str, purpose: &str) -> TestResponse {
        self.request(Method::GET, path, &[("x-doelbinding", purpose)], None)
            .await
            .unwrap()
    }
}

/// A programmable upstream: `handler(method, path, headers) -> (status, content type, body, delay)`.
pub type Handler =
    Arc<dyn Fn(&Method, &str, &HeaderMap) -> (u16, &'static str, Vec<u8>, Duration) + Send + Sync>;

pub async fn spawn_upstream(handler: Handler) -> SocketAddr {
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let handler = Arc::clone(&handler);
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let handler = Arc::clone(&handler);
                    async move {
                        let (status, ct, body, delay) =
                            handler(req.method(), req.uri().path(), req.headers());
                        tokio::time::sleep(delay).await;
                        let mut r = http::Response::new(Full::new(Bytes::from(body)));
                        *r.status_mut() = StatusCode::from_u16(status).unwrap();
                        r.headers_mut()
                            .insert("content-type", http::HeaderValue::from_static(ct));
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// Takes `table` in ACCESS EXCLUSIVE mode on a session of its own, so that
/// for the gateway the store stops answering about it; the lock holds until
/// the returned transaction is rolled back or dropped.
pub async fn lock_table(
    store: &poortwachter::audit::Store,
    table: &str,
) -> sqlx::Transaction<'static, sqlx::Any> {
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
    )))
    .execute(&mut *tx)
    .await
    .unwrap();
    tx
}

impl TestGateway {
    /// Like [`TestGateway::start_with`], but the gateway's configured client
    /// trust anchors (`tls.client_ca`) are exactly `client_ca_pem` and its
    /// CRLs (`tls.crls`) exactly `crls_pem`, in force from the start. The
    /// gateway's own certificate still comes from the test CA, so
    /// [`TestGateway::client_with`] clients verify it as usual.
    pub async fn start_trusting(opts: Options, client_ca_pem: &str, crls_pem: &str) -> Self {
        let p = Prepared::new(opts, "127.0.0.1:0").await;
        std::fs::write(p.pki.dir.join("ca.pem"), client_ca_pem).unwrap();
        std::fs::write(p.pki.dir.join("crl.pem"), crls_pem).unwrap();
        let cfg = Config::load(&p.config_path).unwrap();
        assert_eq!(cfg.tls.client_ca, [p.pki.dir.join("ca.pem")]);
        assert_eq!(cfg.tls.crls, [p.pki.dir.join("crl.pem")]);
        let listeners = Listeners::bind(&cfg).await.unwrap();
        let running = Gateway::start(&cfg, listeners, std::future::pending())
            .await
            .unwrap();
        Self {
            addr: running.addr(),
            admin_addr: running.admin_addr(),
            state: Arc::clone(running.state()),
            tls: Arc::clone(running.tls()),
            tmp: p.tmp,
            pki: p.pki,
            store_url: p.store_url,
            config_path: p.config_path,
            running: Some(running),
        }
    }
}
