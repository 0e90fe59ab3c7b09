//! The `serve` configuration file (TOML). Unknown keys are errors; every
//! problem is reported at once with its line; every limit has a named key
//! and a default; relative paths are resolved against the directory of the
//! configuration file. See `deploy/poortwachter.toml` for a commented example
//! of every option.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::policy::load::line_at;
use crate::policy::raw::{self, Nested, Shape};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} problem(s) in the configuration:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}\n")).collect::<String>())]
    Invalid(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    pub tls: TlsConfig,
    #[serde(default)]
    pub upstream: UpstreamConfig,
    #[serde(default)]
    pub policy: PolicyConfig,
    pub audit: crate::audit::AuditConfig,
    #[serde(default)]
    pub registers: RegistersConfig,
    #[serde(default)]
    pub log: LogConfig,
    /// The admin listener (FG dashboard and operations endpoints); off when absent.
    #[serde(default)]
    pub admin: Option<AdminConfig>,
}

/// `[admin]`: a second mTLS listener with the same certificates and trust
/// anchors as the gateway, serving the privacy officer's read-only
/// dashboard (organisations with `privacy_officer = true` only) and the
/// operations endpoints (`/health`, `/ready`, `/metrics`; any verified
/// client certificate).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Concurrent established connections (TLS handshake completed) to the
    /// admin listener.
    #[serde(default = "default_admin_connections")]
    pub max_connections: usize,
    /// Connections to the admin listener still in their TLS handshake; when
    /// all are taken, a new connection closes the one that has been
    /// handshaking longest, so idle TCP connections cannot lock the FG out.
    #[serde(default = "default_admin_handshakes")]
    pub max_handshakes: usize,
    /// TLS handshake deadline of the admin listener (shorter than the
    /// gateway's: its clients are few and close).
    #[serde(default = "default_admin_handshake_timeout")]
    pub handshake_timeout_ms: u64,
    /// Most records a dashboard search shows.
    #[serde(default = "default_admin_page_size")]
    pub page_size: usize,
    /// Largest form body (searches, inzage requests).
    #[serde(default = "default_admin_form_bytes")]
    pub max_form_bytes: usize,
    /// Whole-request deadline (reports over long periods take a while).
    #[serde(default = "default_admin_timeout")]
    pub request_timeout_ms: u64,
}

fn default_admin_connections() -> usize {
    64
}
fn default_admin_handshakes() -> usize {
    16
}
fn default_admin_handshake_timeout() -> u64 {
    2_500
}
fn default_admin_page_size() -> usize {
    200
}
fn default_admin_form_bytes() -> usize {
    16 * 1024
}
fn default_admin_timeout() -> u64 {
    120_000
}

/// `[registers]`: case binding and the consent register (same store as the
/// audit trail).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistersConfig {
    /// How long a revocation (registration ended, consent withdrawn) waits
    /// before it is acknowledged, so that no response that another gateway
    /// process decided before it can still leave afterwards. Unset: 0 on
    /// SQLite (one gateway per store file), and
    /// `server.request_timeout_ms + audit.commit_timeout_ms + 500` on
    /// PostgreSQL, where several instances may serve. Revocations made
    /// through the CLI while a gateway runs always wait this long. With the
    /// status cache on, a non-zero grace is followed by `feed_staleness_ms`
    /// (other processes may use a status they held that much longer).
    #[serde(default)]
    pub revocation_grace_ms: Option<u64>,
    /// Deadline for reading a pupil's registration and consents on the
    /// request path; past it the request is refused (503
    /// `register-unavailable`) instead of waiting for the store's pool.
    #[serde(default = "default_lookup_timeout")]
    pub lookup_timeout_ms: u64,
    /// How long an emergency window (spoed) lasts, per pupil and receiving
    /// organisation, from its first disclosure (1 to 720).
    #[serde(default = "default_emergency_window_hours")]
    pub emergency_window_hours: u64,
    /// Longest `X-Spoed-Toelichting` accepted (characters; 10 to 2000).
    #[serde(default = "default_max_emergency_justification")]
    pub max_emergency_justification_chars: usize,
    /// Most pupil × casusoverleg statuses held in memory, so that requests
    /// need no register query (0: every request reads the store). When
    /// full, the cache starts afresh.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
    /// How often the store's register change feed is read (on PostgreSQL a
    /// notification also wakes the reader at once).
    #[serde(default = "default_feed_poll")]
    pub feed_poll_ms: u64,
    /// Held statuses are used only while the newest read of the change
    /// feed began at most this long ago; revocations wait this long on top
    /// of `revocation_grace_ms` (more than `feed_poll_ms`).
    #[serde(default = "default_feed_staleness")]
    pub feed_staleness_ms: u64,
}

fn default_cache_entries() -> usize {
    50_000
}

fn default_feed_poll() -> u64 {
    100
}

fn default_feed_staleness() -> u64 {
    500
}

fn default_lookup_timeout() -> u64 {
    1_000
}

fn default_emergency_window_hours() -> u64 {
    72
}

fn default_max_emergency_justification() -> usize {
    500
}

impl RegistersConfig {
    pub fn emergency_window(&self) -> Duration {
        Duration::from_secs(self.emergency_window_hours.saturating_mul(3600))
    }

    /// The status cache's limits (see [`crate::registers::cache`]).
    pub fn cache(&self) -> crate::registers::cache::CacheLimits {
        crate::registers::cache::CacheLimits {
            entries: self.cache_entries,
            poll: Duration::from_millis(self.feed_poll_ms),
            staleness: Duration::from_millis(self.feed_staleness_ms),
        }
    }

    /// How long another process may still use a status it held before a
    /// change (zero with the cache off).
    pub fn cache_staleness(&self) -> Duration {
        if self.cache_entries == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(self.feed_staleness_ms)
        }
    }
}

impl Default for RegistersConfig {
    fn default() -> Self {
        Self {
            revocation_grace_ms: None,
            lookup_timeout_ms: default_lookup_timeout(),
            emergency_window_hours: default_emergency_window_hours(),
            max_emergency_justification_chars: default_max_emergency_justification(),
            cache_entries: default_cache_entries(),
            feed_poll_ms: default_feed_poll(),
            feed_staleness_ms: default_feed_staleness(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the mTLS listener.
    pub listen: SocketAddr,
    /// Name of this gateway instance (audit records, headers).
    pub instance: String,
    /// Concurrent established client connections (TLS handshake
    /// completed); while all are taken, further connections wait in the
    /// kernel's accept queue instead of being accepted.
    pub max_connections: usize,
    /// Connections still in their TLS handshake; when all are taken, a new
    /// connection closes the one that has been handshaking longest.
    pub max_handshakes: usize,
    /// A TLS handshake that takes longer is dropped.
    pub handshake_timeout_ms: u64,
    /// Time allowed to receive request headers (HTTP/1.1 slowloris guard).
    pub header_read_timeout_ms: u64,
    /// Whole-request deadline, upstream included.
    pub request_timeout_ms: u64,
    /// Largest request body accepted (POST/PUT); larger gives 413.
    pub max_request_body_bytes: usize,
    /// Largest upstream response body accepted; larger gives 502.
    pub max_response_body_bytes: usize,
    /// Deepest JSON nesting accepted in either direction.
    pub max_json_depth: usize,
    /// Largest request head (request line and headers) for HTTP/1.1.
    pub max_header_bytes: usize,
    /// Concurrent HTTP/2 streams per connection.
    pub http2_max_concurrent_streams: u32,
    /// Milliseconds to let in-flight requests finish on shutdown.
    pub shutdown_grace_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            instance: "poortwachter-1".into(),
            max_connections: 4096,
            max_handshakes: 1024,
            handshake_timeout_ms: 10_000,
            header_read_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_request_body_bytes: 1024 * 1024,
            max_response_body_bytes: 8 * 1024 * 1024,
            max_json_depth: 64,
            max_header_bytes: 64 * 1024,
            http2_max_concurrent_streams: 128,
            shutdown_grace_ms: 10_000,
        }
    }
}

impl ServerConfig {
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    V1_2,
    #[serde(rename = "1.3")]
    V1_3,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The gateway's server certificate chain (PEM).
    pub cert: PathBuf,
    /// The gateway's private key (PEM, PKCS#8/PKCS#1/SEC1).
    pub key: PathBuf,
    /// Trust anchors for client certificates (PEM), e.g. the PKIoverheid Private Root.
    pub client_ca: Vec<PathBuf>,
    /// Certificate revocation lists (PEM or DER). Reloaded with SIGHUP.
    #[serde(default)]
    pub crls: Vec<PathBuf>,
    /// Accept a CRL past its nextUpdate. Off by default: an expired CRL denies.
    #[serde(default)]
    pub allow_expired_crl: bool,
    /// Accept certificates whose issuer has no CRL configured. Off by default
    /// when CRLs are configured.
    #[serde(default)]
    pub allow_unknown_revocation: bool,
    /// Lowest TLS version: "1.3" (default) or "1.2" (opt-in).
    #[serde(default = "default_tls_version")]
    pub min_version: TlsVersion,
}

fn default_tls_version() -> TlsVersion {
    TlsVersion::V1_3
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Trust anchors for https bronnen (PEM). No system roots are used.
    pub ca: Vec<PathBuf>,
    /// The gateway's own client certificate towards bronnen (PEM).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub connect_timeout_ms: u64,
    /// Time until the upstream's response headers and full body have arrived.
    pub response_timeout_ms: u64,
    pub pool_idle_timeout_ms: u64,
    pub pool_max_idle_per_host: usize,
    /// Per-deployment base URL overrides, by bron id.
    pub base_urls: BTreeMap<String, String>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            ca: Vec::new(),
            client_cert: None,
            client_key: None,
            connect_timeout_ms: 2_000,
            response_timeout_ms: 10_000,
            pool_idle_timeout_ms: 30_000,
            pool_max_idle_per_host: 64,
            base_urls: BTreeMap::new(),
        }
    }
}

impl UpstreamConfig {
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn response_timeout(&self) -> Duration {
        Duration::from_millis(self.response_timeout_ms)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Directory with partners.toml, bronnen/ and overleggen/.
    pub dir: PathBuf,
    /// Reload policies (and TLS files) when they change on disk, besides SIGHUP.
    pub watch: bool,
    /// Quiet time after the last change before a reload starts.
    pub watch_debounce_ms: u64,
    /// `[policy.approval]`: approvals a set needs before it is served.
    pub approval: crate::policy::approval::ApprovalConfig,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("policies"),
            watch: true,
            watch_debounce_ms: 500,
            approval: crate::policy::approval::ApprovalConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// "text" or "json".
    pub format: String,
    /// tracing filter directive, e.g. "info" or "poortwachter=debug".
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
            filter: "info".into(),
        }
    }
}

impl Config {
    /// The longest a request can take from its register lookup to its
    /// response: every process serving the store is past a revocation after
    /// this long.
    pub fn request_lifetime(&self) -> Duration {
        self.server.request_timeout() + Duration::from_millis(self.audit.commit_timeout_ms + 500)
    }

    /// See [`RegistersConfig::revocation_grace_ms`].
    pub fn revocation_grace(&self) -> Duration {
        match self.registers.revocation_grace_ms {
            Some(ms) => Duration::from_millis(ms),
            None if self.audit.store.starts_with("sqlite:") => Duration::ZERO,
            None => self.request_lifetime(),
        }
    }

    /// Reads, parses and validates a configuration file. Relative paths are
    /// resolved against the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base)
    }

    /// Parses and validates configuration `text` (named `file` in
    /// messages). Every problem is reported, each as `file:line: message`:
    /// unknown keys and values of the wrong type are left out so the rest
    /// is still read and validated.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Self, ConfigError> {
        let read = raw::read::<Config>(text, &SHAPE);
        let mut problems: Vec<(usize, String)> = read
            .problems
            .into_iter()
            .map(|p| (p.offset, p.message))
            .collect();
        if let Some(mut cfg) = read.value {
            cfg.resolve(base);
            for (key, message) in cfg.validate() {
                problems.push((raw::key_offset(text, &key), message));
            }
            if problems.is_empty() {
                return Ok(cfg);
            }
        }
        problems.sort();
        Err(ConfigError::Invalid(
            problems
                .into_iter()
                .map(|(at, m)| format!("{file}:{}: {m}", line_at(text, at)))
                .collect(),
        ))
    }

    fn resolve(&mut self, base: &Path) {
        let r = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        r(&mut self.tls.cert);
        r(&mut self.tls.key);
        self.tls.client_ca.iter_mut().for_each(r);
        self.tls.crls.iter_mut().for_each(r);
        self.upstream.ca.iter_mut().for_each(r);
        if let Some(p) = &mut self.upstream.client_cert {
            r(p);
        }
        if let Some(p) = &mut self.upstream.client_key {
            r(p);
        }
        r(&mut self.policy.dir);
        self.policy.approval.keys.values_mut().for_each(r);
        for url in self.upstream.base_urls.values_mut() {
            let trimmed = url.trim_end_matches('/').len();
            url.truncate(trimmed);
        }
        r(&mut self.audit.pseudonym_key);
        r(&mut self.audit.signing_key);
        if let Some(p) = &mut self.audit.verify_key {
            r(p);
        }
        // A relative SQLite path is relative to the configuration file too.
        if let Some(rest) = self.audit.store.strip_prefix("sqlite://")
            && !rest.starts_with('/')
        {
            self.audit.store = format!("sqlite://{}", base.join(rest).display());
        }
    }

    /// Semantic checks; returns every problem, with the key it is about.
    fn validate(&self) -> Vec<Problem> {
        let mut p = self.limit_problems();
        p.extend(self.server_problems());
        p.extend(self.admin_problems());
        p.extend(self.upstream.base_url_problems());
        p.extend(self.approval_problems());
        p.extend(self.emergency_problems());
        p
    }

    /// The emergency window and justification limits lie in their ranges.
    fn emergency_problems(&self) -> Vec<Problem> {
        let r = &self.registers;
        let mut p = Vec::new();
        if !(1..=720).contains(&r.emergency_window_hours) {
            p.push(problem(
                &["registers", "emergency_window_hours"],
                "registers.emergency_window_hours must be between 1 and 720".into(),
            ));
        }
        if !(10..=2000).contains(&r.max_emergency_justification_chars) {
            p.push(problem(
                &["registers", "max_emergency_justification_chars"],
                "registers.max_emergency_justification_chars must be between 10 and 2000".into(),
            ));
        }
        if !(10..=10_000).contains(&r.feed_poll_ms) {
            p.push(problem(
                &["registers", "feed_poll_ms"],
                "registers.feed_poll_ms must be between 10 and 10000".into(),
            ));
        }
        if r.feed_staleness_ms <= r.feed_poll_ms || r.feed_staleness_ms > 60_000 {
            p.push(problem(
                &["registers", "feed_staleness_ms"],
                "registers.feed_staleness_ms must be more than registers.feed_poll_ms and at most 60000"
                    .into(),
            ));
        }
        p
    }

    /// Every required approver has a public key.
    fn approval_problems(&self) -> Vec<Problem> {
        let a = &self.policy.approval;
        a.required
            .iter()
            .filter(|id| !a.keys.contains_key(*id))
            .map(|id| {
                problem(
                    &["policy", "approval", "required"],
                    format!("policy.approval.required names `{id}`, which has no key in policy.approval.keys"),
                )
            })
            .collect()
    }

    /// Limits that must be greater than 0 (or, for headers, at least 8 KiB).
    fn limit_problems(&self) -> Vec<Problem> {
        let s = &self.server;
        let a = &self.audit;
        let named = [
            ("server", "max_connections", s.max_connections as u64),
            ("server", "max_handshakes", s.max_handshakes as u64),
            ("server", "handshake_timeout_ms", s.handshake_timeout_ms),
            ("server", "header_read_timeout_ms", s.header_read_timeout_ms),
            ("server", "request_timeout_ms", s.request_timeout_ms),
            (
                "server",
                "max_request_body_bytes",
                s.max_request_body_bytes as u64,
            ),
            (
                "server",
                "max_response_body_bytes",
                s.max_response_body_bytes as u64,
            ),
            ("server", "max_json_depth", s.max_json_depth as u64),
            (
                "server",
                "http2_max_concurrent_streams",
                u64::from(s.http2_max_concurrent_streams),
            ),
            ("audit", "commit_timeout_ms", a.commit_timeout_ms),
            ("audit", "transaction_timeout_ms", a.transaction_timeout_ms),
            ("audit", "queue_capacity", a.queue_capacity as u64),
            ("audit", "max_batch", a.max_batch as u64),
            ("audit", "backlog_capacity", a.backlog_capacity as u64),
            ("audit", "sqlite_cache_mib", u64::from(a.sqlite_cache_mib)),
        ];
        let mut p: Vec<Problem> = named
            .into_iter()
            .filter(|(_, _, v)| *v == 0)
            .map(|(section, name, _)| {
                problem(
                    &[section, name],
                    format!("{section}.{name} must be greater than 0"),
                )
            })
            .collect();
        if s.max_header_bytes < 8192 {
            p.push(problem(
                &["server", "max_header_bytes"],
                "server.max_header_bytes must be at least 8192".into(),
            ));
        }
        p
    }

    /// Trust anchors, the upstream client identity, the instance name and
    /// the log format.
    fn server_problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.tls.client_ca.is_empty() {
            p.push(problem(
                &["tls", "client_ca"],
                "tls.client_ca must list at least one trust anchor".into(),
            ));
        }
        if self.upstream.client_cert.is_some() != self.upstream.client_key.is_some() {
            p.push(problem(
                &["upstream", "client_cert"],
                "upstream.client_cert and upstream.client_key go together".into(),
            ));
        }
        let instance = &self.server.instance;
        if instance.is_empty()
            || !instance
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            p.push(problem(
                &["server", "instance"],
                "server.instance may only contain letters, digits, '.', '_' and '-'".into(),
            ));
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            p.push(problem(
                &["log", "format"],
                "log.format must be \"text\" or \"json\"".into(),
            ));
        }
        p
    }

    /// The admin listener: its own address and limits greater than 0.
    fn admin_problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        let Some(a) = &self.admin else {
            return p;
        };
        if a.listen == self.server.listen && a.listen.port() != 0 {
            p.push(problem(
                &["admin", "listen"],
                "admin.listen must differ from server.listen".into(),
            ));
        }
        if a.max_connections == 0
            || a.max_handshakes == 0
            || a.handshake_timeout_ms == 0
            || a.page_size == 0
            || a.max_form_bytes == 0
        {
            p.push(problem(
                &["admin"],
                "admin.max_connections, admin.max_handshakes, admin.handshake_timeout_ms, admin.page_size and admin.max_form_bytes must be greater than 0".into(),
            ));
        }
        p
    }
}

/// A configuration problem: the key it is about (for the line number) and
/// what is wrong.
type Problem = (Vec<String>, String);

fn problem(key: &[&str], message: String) -> Problem {
    (key.iter().map(|k| (*k).to_owned()).collect(), message)
}

impl UpstreamConfig {
    fn base_url_problems(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        for (bron, url) in &self.base_urls {
            if let Err(m) = crate::policy::load::validate_base_url(url) {
                let key = ["upstream", "base_urls", bron].map(String::from).to_vec();
                p.push((key, format!("upstream.base_urls.{bron}: {m}")));
            }
        }
        p
    }
}

/// How the configuration file is read (see [`raw::read`]).
static SHAPE: Shape = Shape::of::<Config>(&[
    ("server", Nested::Table(&Shape::of::<ServerConfig>(&[]))),
    ("tls", Nested::Table(&Shape::of::<TlsConfig>(&[]))),
    (
        "upstream",
        Nested::Table(&Shape::of::<UpstreamConfig>(&[("base_urls", Nested::Free)])),
    ),
    ("policy", Nested::Table(&Shape::of::<PolicyConfig>(&[]))),
    (
        "audit",
        Nested::Table(&Shape::of::<crate::audit::AuditConfig>(&[])),
    ),
    (
        "registers",
        Nested::Table(&Shape::of::<RegistersConfig>(&[])),
    ),
    ("log", Nested::Table(&Shape::of::<LogConfig>(&[]))),
    ("admin", Nested::Table(&Shape::of::<AdminConfig>(&[]))),
]);

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[tls]
cert = "gw.pem"
key = "gw-key.pem"
client_ca = ["ca.pem"]

[audit]
store = "sqlite://audit.db"
pseudonym_key = "pseudonym.key"
signing_key = "signing.key"
"#;

    #[test]
    fn minimal_config_gets_defaults_and_resolves_paths() {
        let c = Config::parse(MIN, "x.toml", Path::new("/etc/pw")).unwrap();
        assert_eq!(c.tls.cert, PathBuf::from("/etc/pw/gw.pem"));
        assert_eq!(c.tls.min_version, TlsVersion::V1_3);
        assert_eq!(c.server.max_connections, 4096);
        assert_eq!(c.server.max_handshakes, 1024);
        assert_eq!(c.policy.dir, PathBuf::from("/etc/pw/policies"));
    }

    #[test]
    fn admin_listener_is_off_unless_configured_and_strict() {
        let c = Config::parse(MIN, "x.toml", Path::new("/")).unwrap();
        assert!(c.admin.is_none());
        let text = format!("{MIN}\n[admin]\nlisten = \"127.0.0.1:9443\"\n");
        let c = Config::parse(&text, "x.toml", Path::new("/")).unwrap();
        let a = c.admin.unwrap();
        assert_eq!(a.listen.port(), 9443);
        assert_eq!(a.page_size, 200);
        assert_eq!((a.max_connections, a.max_handshakes), (64, 16));
        assert_eq!(a.handshake_timeout_ms, 2_500);
        let text = format!("{MIN}\n[admin]\nlisten = \"127.0.0.1:9443\"\nmax_handshakes = 0\n");
        assert!(Config::parse(&text, "x.toml", Path::new("/")).is_err());
        let text = format!("{MIN}\n[admin]\nlisten = \"127.0.0.1:9443\"\npage_sise = 5\n");
        assert!(Config::parse(&text, "x.toml", Path::new("/")).is_err());
        let text = format!("{MIN}\n[admin]\nlisten = \"127.0.0.1:8443\"\n");
        assert!(Config::parse(&text, "x.toml", Path::new("/")).is_err());
    }

    #[test]
    fn unknown_keys_are_rejected_with_a_line() {
        let text = format!("{MIN}\n[server]\nmax_conections = 5\n");
        let err = Config::parse(&text, "x.toml", Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml:13"), "{err}");
        assert!(err.contains("max_conections"), "{err}");
    }

    #[test]
    fn reports_every_semantic_problem() {
        let text = format!(
            "{MIN}\n[server]\nmax_connections = 0\nrequest_timeout_ms = 0\n[upstream.base_urls]\nx = \"http://example.org\"\n"
        );
        let ConfigError::Invalid(p) = Config::parse(&text, "x.toml", Path::new("/")).unwrap_err()
        else {
            panic!("expected Invalid")
        };
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(
            p[0].starts_with("x.toml:13: server.max_connections"),
            "{p:?}"
        );
        assert!(
            p[2].starts_with("x.toml:16: upstream.base_urls.x:"),
            "{p:?}"
        );
    }

    #[test]
    fn reports_every_problem_of_every_section_at_once() {
        let text = r#"[server]
max_conections = 5
max_connections = 0
listen = 8443

[tls]
cert = "gw.pem"
key = "gw-key.pem"
client_ca = ["ca.pem", 3]
min_version = "1.1"

[audit]
store = "sqlite://audit.db"
pseudonym_key = "pseudonym.key"
signing_key = "signing.key"
commit_timout_ms = 5
sqlite_cache_mib = 0

[log]
format = "xml"
"#;
        let ConfigError::Invalid(p) = Config::parse(text, "x.toml", Path::new("/")).unwrap_err()
        else {
            panic!("expected Invalid")
        };
        let want = [
            "x.toml:2: unknown key `server.max_conections`",
            "x.toml:3: server.max_connections must be greater than 0",
            "x.toml:4: `server.listen`: invalid type: integer `8443`",
            "x.toml:9: `tls.client_ca[]`: invalid type: integer `3`",
            "x.toml:10: `tls.min_version`: unknown variant `1.1`",
            "x.toml:16: unknown key `audit.commit_timout_ms`",
            "x.toml:17: audit.sqlite_cache_mib must be greater than 0",
            "x.toml:20: log.format must be",
        ];
        assert_eq!(p.len(), want.len(), "{p:#?}");
        for (got, want) in p.iter().zip(want) {
            assert!(got.starts_with(want), "{got:?} should start with {want:?}");
        }
    }

    #[test]
    fn a_required_section_that_cannot_be_read_does_not_hide_the_others() {
        let text = format!(
            "{MIN}
[server]
max_connections = \"veel\"
bogus = 1
"
        )
        .replace("cert = \"gw.pem\"", "cert = 1");
        let ConfigError::Invalid(p) = Config::parse(&text, "x.toml", Path::new("/")).unwrap_err()
        else {
            panic!("expected Invalid")
        };
        assert_eq!(p.len(), 3, "{p:#?}");
        assert!(
            p[0].starts_with("x.toml:3: `tls.cert`: invalid type"),
            "{p:#?}"
        );
        assert!(
            p[1].starts_with("x.toml:13: `server.max_connections`"),
            "{p:#?}"
        );
        assert!(
            p[2].starts_with("x.toml:14: unknown key `server.bogus`"),
            "{p:#?}"
        );
    }
}
