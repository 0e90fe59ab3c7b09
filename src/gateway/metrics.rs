//! Operations metrics for the admin listener's `/metrics` (Prometheus text
//! format 0.0.4): requests by decision and overleg, request latency, audit
//! commit latency and failures, audit queue depth, reloads, certificate
//! expiry. Hand-written (a few counters and two histograms do not justify a
//! metrics crate); lock-free except the small decision/overleg map.
//!
//! The proxy's only hook is [`commit_observed`], which wraps the commit of a
//! request's audit record: at that point the decision, overleg and duration
//! are final, and the commit latency is measured where it happens.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::audit::{AuditError, AuditRecord};
use crate::gateway::state::AppState;

/// Upper bounds (seconds) of the request latency histogram.
const REQUEST_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Upper bounds (seconds) of the audit commit latency histogram.
const COMMIT_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
];

/// A cumulative histogram with fixed bounds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One counter per bound, plus +Inf.
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

/// Counters of one gateway process.
#[derive(Debug)]
pub struct Metrics {
    /// (decision, overleg) -> requests. Overleg ids outside the policy set
    /// are counted as `unknown` so clients cannot grow the label set.
    requests: Mutex<BTreeMap<(&'static str, String), u64>>,
    pub request_latency: Histogram,
    pub commit_latency: Histogram,
    pub commit_failures: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Mutex::new(BTreeMap::new()),
            request_latency: Histogram::new(&REQUEST_BUCKETS),
            commit_latency: Histogram::new(&COMMIT_BUCKETS),
            commit_failures: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn observe_request(&self, decision: &'static str, overleg: String, duration: Duration) {
        self.request_latency.observe(duration);
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((decision, overleg)).or_default() += 1;
        }
    }

    /// Requests counted for `(decision, overleg)`.
    pub fn requests(&self, decision: &str, overleg: &str) -> u64 {
        self.requests
            .lock()
            .map(|m| {
                m.iter()
                    .filter(|((d, o), _)| *d == decision && o == overleg)
                    .map(|(_, n)| *n)
                    .sum()
            })
            .unwrap_or(0)
    }
}

/// Commits a request's audit record (see [`crate::audit::Auditor::commit`])
/// and counts the request, its latency and the commit latency.
pub async fn commit_observed(state: &AppState, rec: AuditRecord) -> Result<(), AuditError> {
    let decision = rec.outcome.as_str();
    let overleg = overleg_label(state, rec.overleg.as_deref());
    let duration = Duration::from_micros(rec.duration_us);
    let started = Instant::now();
    let result = state.audit.commit(rec).await;
    let m = &state.metrics;
    m.commit_latency.observe(started.elapsed());
    if result.is_err() {
        m.commit_failures.fetch_add(1, Ordering::Relaxed);
    }
    m.observe_request(decision, overleg, duration + started.elapsed());
    result
}

/// Counts a request whose record was committed elsewhere: a register change
/// commits its own record in the change's transaction (decision `event`,
/// as in the trail).
pub fn observe_recorded(
    state: &AppState,
    decision: &'static str,
    overleg: Option<&str>,
    duration: Duration,
) {
    let overleg = overleg_label(state, overleg);
    state.metrics.observe_request(decision, overleg, duration);
}

/// The overleg label: ids outside the policy set count as `unknown`.
fn overleg_label(state: &AppState, overleg: Option<&str>) -> String {
    match overleg {
        Some(o) if state.policy.current().set.overleggen.contains_key(o) => o.to_owned(),
        Some(_) => "unknown".to_owned(),
        None => "none".to_owned(),
    }
}

/// Label values are policy identifiers, but escape anyway.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Seconds since the epoch at which the first certificate in `path` expires.
pub fn certificate_not_after(path: &Path) -> Option<i64> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let certs = crate::gateway::tls::load_certs(path).ok()?;
    let der = certs.first()?;
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// Values that live elsewhere and are read at scrape time.
pub struct Gauges<'a> {
    pub audit_queue_depth: Option<usize>,
    /// Records that could not be written at all (see `audit::writer`).
    pub audit_unwritten: Option<u64>,
    pub reloads: &'a crate::gateway::reload::ReloadStats,
    /// (name, file) of certificates whose expiry is exported.
    pub certificates: Vec<(String, &'a Path)>,
    pub policy_version: &'a str,
}

/// The Prometheus text exposition.
pub fn render(m: &Metrics, g: &Gauges<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP poortwachter_requests_total Requests by decision and casusoverleg.\n# TYPE poortwachter_requests_total counter"
    );
    if let Ok(map) = m.requests.lock() {
        for ((decision, overleg), n) in map.iter() {
            let _ = writeln!(
                out,
                "poortwachter_requests_total{{decision=\"{decision}\",overleg=\"{}\"}} {n}",
                label(overleg)
            );
        }
    }
    m.request_latency.render(
        &mut out,
        "poortwachter_request_duration_seconds",
        "Request latency, audit commit included.",
    );
    m.commit_latency.render(
        &mut out,
        "poortwachter_audit_commit_seconds",
        "Time until a request's audit record was durable.",
    );
    let _ = writeln!(
        out,
        "# HELP poortwachter_audit_commit_failures_total Audit records not durable in time (answered 503).\n# TYPE poortwachter_audit_commit_failures_total counter\npoortwachter_audit_commit_failures_total {}",
        m.commit_failures.load(Ordering::Relaxed)
    );
    if let Some(n) = g.audit_unwritten {
        let _ = writeln!(
            out,
            "# HELP poortwachter_audit_records_unwritten_total Records that could not be written at all (queue full past the deadline, backlog overflow during an outage).\n# TYPE poortwachter_audit_records_unwritten_total counter\npoortwachter_audit_records_unwritten_total {n}"
        );
    }
    if let Some(depth) = g.audit_queue_depth {
        let _ = writeln!(
            out,
            "# HELP poortwachter_audit_queue_depth Records waiting for the audit writer.\n# TYPE poortwachter_audit_queue_depth gauge\npoortwachter_audit_queue_depth {depth}"
        );
    }
    let r = g.reloads;
    let _ = writeln!(
        out,
        "# HELP poortwachter_reloads_total Reloads of policies and TLS material by result.\n# TYPE poortwachter_reloads_total counter"
    );
    for (kind, result, v) in [
        ("policy", "ok", &r.policy_ok),
        ("policy", "failed", &r.policy_failed),
        ("tls", "ok", &r.tls_ok),
        ("tls", "failed", &r.tls_failed),
    ] {
        let _ = writeln!(
            out,
            "poortwachter_reloads_total{{kind=\"{kind}\",result=\"{result}\"}} {}",
            v.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP poortwachter_certificate_expiry_timestamp_seconds When a configured certificate expires (Unix time).\n# TYPE poortwachter_certificate_expiry_timestamp_seconds gauge"
    );
    for (name, path) in &g.certificates {
        if let Some(t) = certificate_not_after(path) {
            let _ = writeln!(
                out,
                "poortwachter_certificate_expiry_timestamp_seconds{{certificate=\"{}\"}} {t}",
                label(name)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP poortwachter_policy_info The policy version in force.\n# TYPE poortwachter_policy_info gauge\npoortwachter_policy_info{{version=\"{}\"}} 1",
        label(g.policy_version)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::new(&COMMIT_BUCKETS);
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(5));
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"2\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"));
        assert_eq!(h.count(), 3);
    }
}
