//! Operations metrics for the admin listener's `/metrics`: requests by
//! decision and overleg, request latency, audit commit latency and failures,
//! audit records unwritten, audit queue depth, reloads, certificate expiry
//! and the policy version, in the Prometheus text format 0.0.4 as
//! `prometheus-client` (the official Rust client) encodes it.
//!
//! A plain counters-and-encoding module: it knows nothing of the gateway.
//! The proxy, which owns the fail-closed commit of a request's audit record,
//! counts each request ([`Metrics::observe_request`]) and each commit
//! ([`Metrics::observe_commit`]); the dashboard reads the values that live
//! elsewhere at scrape time ([`Gauges`]) and calls [`render`].

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`render`]'s output (Prometheus text 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the request latency histogram.
const REQUEST_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Upper bounds (seconds) of the audit commit latency histogram.
const COMMIT_BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    decision: &'static str,
    overleg: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EmergencyLabels {
    reason: &'static str,
    /// `opened` or `used`.
    window: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LookupLabels {
    /// `memory` or `store`.
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CertificateLabels {
    certificate: String,
}

/// Counters of one gateway process.
#[derive(Debug)]
pub struct Metrics {
    /// (decision, overleg) -> requests. The caller bounds the overleg label
    /// (ids outside the policy set count as `unknown`), so clients cannot
    /// grow the label set.
    requests: Family<RequestLabels, Counter>,
    request_latency: Histogram,
    commit_latency: Histogram,
    commit_failures: Counter,
    /// (reason, window) -> emergency disclosures (spoed).
    emergencies: Family<EmergencyLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            emergencies: Family::default(),
            requests: Family::default(),
            request_latency: Histogram::new(REQUEST_BUCKETS),
            commit_latency: Histogram::new(COMMIT_BUCKETS),
            commit_failures: Counter::default(),
        }
    }
}

impl Metrics {
    /// Counts one request with its decision (as in the trail), its overleg
    /// label and its whole duration.
    pub fn observe_request(&self, decision: &'static str, overleg: String, duration: Duration) {
        self.request_latency.observe(duration.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels { decision, overleg })
            .inc();
    }

    /// Counts one emergency disclosure (its record is durable): the
    /// reason code, and whether it opened a window or used an open one.
    pub fn observe_emergency(&self, reason: &'static str, opened: bool) {
        let window = if opened { "opened" } else { "used" };
        self.emergencies
            .get_or_create(&EmergencyLabels { reason, window })
            .inc();
    }

    /// Counts one commit of a request's audit record: how long it took,
    /// and whether it failed (the request was answered 503).
    pub fn observe_commit(&self, latency: Duration, durable: bool) {
        self.commit_latency.observe(latency.as_secs_f64());
        if !durable {
            self.commit_failures.inc();
        }
    }
}

/// Reloads by kind and result, read at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reloads {
    pub policy_ok: u64,
    pub policy_failed: u64,
    pub tls_ok: u64,
    pub tls_failed: u64,
}

/// Values that live elsewhere and are read at scrape time.
#[derive(Debug)]
pub struct Gauges<'a> {
    /// Records waiting for the audit writer (`None`: no writer).
    pub audit_queue_depth: Option<usize>,
    /// Records that could not be written at all (see `audit::writer`).
    pub audit_unwritten: Option<u64>,
    pub reloads: Reloads,
    /// (name, expiry in seconds since the epoch) of the certificates whose
    /// expiry is exported.
    pub certificate_expiry: Vec<(String, i64)>,
    pub policy_version: &'a str,
    /// (from memory, from the store) pupil status lookups, when the status
    /// cache is on.
    pub register_lookups: Option<(u64, u64)>,
}

/// The registry of one scrape: the process's counters and the scrape-time
/// values. Names are given without the suffixes the encoder adds (`_total`
/// for counters, the unit, `_info`); help texts without their final full
/// stop, which it adds too.
fn registry(m: &Metrics, g: &Gauges<'_>) -> Registry {
    let mut r = Registry::default();
    r.register(
        "poortwachter_requests",
        "Requests by decision and casusoverleg",
        m.requests.clone(),
    );
    r.register_with_unit(
        "poortwachter_request_duration",
        "Request latency, audit commit included",
        Unit::Seconds,
        m.request_latency.clone(),
    );
    r.register_with_unit(
        "poortwachter_audit_commit",
        "Time until a request's audit record was durable",
        Unit::Seconds,
        m.commit_latency.clone(),
    );
    r.register(
        "poortwachter_audit_commit_failures",
        "Audit records not durable in time (answered 503)",
        m.commit_failures.clone(),
    );
    r.register(
        "poortwachter_emergency_disclosures",
        "Emergency disclosures (spoed) by reason and whether they opened a window or used an open one",
        m.emergencies.clone(),
    );
    if let Some(n) = g.audit_unwritten {
        r.register(
            "poortwachter_audit_records_unwritten",
            "Records that could not be written at all (queue full past the deadline, backlog overflow during an outage)",
            ConstCounter::new(n),
        );
    }
    if let Some(depth) = g.audit_queue_depth {
        r.register(
            "poortwachter_audit_queue_depth",
            "Records waiting for the audit writer",
            ConstGauge::new(i64::try_from(depth).unwrap_or(i64::MAX)),
        );
    }
    r.register(
        "poortwachter_reloads",
        "Reloads of policies and TLS material by result",
        reloads(g.reloads),
    );
    if let Some((memory, store)) = g.register_lookups {
        let family = Family::<LookupLabels, Counter>::default();
        for (source, n) in [("memory", memory), ("store", store)] {
            family.get_or_create(&LookupLabels { source }).inc_by(n);
        }
        r.register(
            "poortwachter_register_lookups",
            "Pupil status lookups by where they were answered (status cache on)",
            family,
        );
    }
    let expiry = Family::<CertificateLabels, Gauge>::default();
    for (certificate, t) in &g.certificate_expiry {
        expiry
            .get_or_create(&CertificateLabels {
                certificate: certificate.clone(),
            })
            .set(*t);
    }
    r.register_with_unit(
        "poortwachter_certificate_expiry_timestamp",
        "When a configured certificate expires (Unix time)",
        Unit::Seconds,
        expiry,
    );
    r.register(
        "poortwachter_policy",
        "The policy version in force",
        Info::new([("version", g.policy_version.to_owned())]),
    );
    r
}

fn reloads(n: Reloads) -> Family<ReloadLabels, Counter> {
    let family = Family::<ReloadLabels, Counter>::default();
    for (kind, result, v) in [
        ("policy", "ok", n.policy_ok),
        ("policy", "failed", n.policy_failed),
        ("tls", "ok", n.tls_ok),
        ("tls", "failed", n.tls_failed),
    ] {
        family
            .get_or_create(&ReloadLabels { kind, result })
            .inc_by(v);
    }
    family
}

/// The Prometheus text exposition (format 0.0.4, [`CONTENT_TYPE`]).
pub fn render(m: &Metrics, g: &Gauges<'_>) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry(m, g))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges<'static> {
        Gauges {
            audit_queue_depth: Some(0),
            audit_unwritten: Some(0),
            reloads: Reloads {
                policy_ok: 2,
                ..Reloads::default()
            },
            certificate_expiry: vec![("gateway".into(), 1_826_871_091)],
            policy_version: "206736dd7c512ea3",
            register_lookups: Some((40, 2)),
        }
    }

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe_commit(Duration::from_micros(300), true);
        m.observe_commit(Duration::from_millis(3), true);
        m.observe_commit(Duration::from_secs(5), false);
        let out = render(&m, &gauges()).unwrap();
        let h = "poortwachter_audit_commit_seconds";
        assert!(
            out.contains(&format!("{h}_bucket{{le=\"0.0005\"}} 1\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{h}_bucket{{le=\"0.005\"}} 2\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{h}_bucket{{le=\"2\"}} 2\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{h}_bucket{{le=\"+Inf\"}} 3\n")),
            "{out}"
        );
        assert!(out.contains(&format!("{h}_count 3\n")), "{out}");
        assert!(out.contains(&format!("# TYPE {h} histogram\n")), "{out}");
        assert!(
            out.contains("poortwachter_audit_commit_failures_total 1\n"),
            "{out}"
        );
    }

    /// The names and lines as scraped are the ones the README documents,
    /// with a HELP and TYPE line each, in the classic text format.
    #[test]
    fn exposition_keeps_the_documented_names() {
        let m = Metrics::default();
        m.observe_request(
            "allowed",
            "aoj-vo-noorderlicht".into(),
            Duration::from_millis(2),
        );
        m.observe_request(
            "allowed",
            "aoj-vo-noorderlicht".into(),
            Duration::from_millis(3),
        );
        m.observe_request("denied", "unknown".into(), Duration::from_millis(1));
        let out = render(&m, &gauges()).unwrap();
        for line in [
            "# TYPE poortwachter_requests_total counter\n",
            "poortwachter_requests_total{decision=\"allowed\",overleg=\"aoj-vo-noorderlicht\"} 2\n",
            "poortwachter_requests_total{decision=\"denied\",overleg=\"unknown\"} 1\n",
            "# HELP poortwachter_request_duration_seconds Request latency, audit commit included.\n",
            "poortwachter_request_duration_seconds_bucket{le=\"0.0025\"} 2\n",
            "poortwachter_request_duration_seconds_bucket{le=\"+Inf\"} 3\n",
            "poortwachter_request_duration_seconds_count 3\n",
            "poortwachter_audit_commit_seconds_count 0\n",
            "poortwachter_audit_commit_failures_total 0\n",
            "# TYPE poortwachter_audit_records_unwritten_total counter\n",
            "poortwachter_audit_records_unwritten_total 0\n",
            "# TYPE poortwachter_audit_queue_depth gauge\n",
            "poortwachter_audit_queue_depth 0\n",
            "poortwachter_reloads_total{kind=\"policy\",result=\"ok\"} 2\n",
            "poortwachter_reloads_total{kind=\"policy\",result=\"failed\"} 0\n",
            "poortwachter_reloads_total{kind=\"tls\",result=\"ok\"} 0\n",
            "poortwachter_reloads_total{kind=\"tls\",result=\"failed\"} 0\n",
            "# TYPE poortwachter_certificate_expiry_timestamp_seconds gauge\n",
            "poortwachter_certificate_expiry_timestamp_seconds{certificate=\"gateway\"} 1826871091\n",
            "# TYPE poortwachter_policy_info gauge\n",
            "poortwachter_policy_info{version=\"206736dd7c512ea3\"} 1\n",
            "# TYPE poortwachter_register_lookups_total counter\n",
            "poortwachter_register_lookups_total{source=\"memory\"} 40\n",
            "poortwachter_register_lookups_total{source=\"store\"} 2\n",
        ] {
            assert!(out.contains(line), "missing {line:?} in\n{out}");
        }
        assert!(!out.contains("# EOF"), "{out}");
        assert!(!out.contains("_total_total"), "{out}");
    }

    #[test]
    fn absent_writer_leaves_its_lines_out_and_labels_are_escaped() {
        let m = Metrics::default();
        m.observe_request("error", "a\"b\\c\nd".into(), Duration::ZERO);
        let g = Gauges {
            audit_queue_depth: None,
            audit_unwritten: None,
            ..gauges()
        };
        let out = render(&m, &g).unwrap();
        assert!(!out.contains("poortwachter_audit_queue_depth"), "{out}");
        assert!(
            !out.contains("poortwachter_audit_records_unwritten"),
            "{out}"
        );
        assert!(
            out.contains(
                "poortwachter_requests_total{decision=\"error\",overleg=\"a\\\"b\\\\c\\nd\"} 1\n"
            ),
            "{out}"
        );
    }
}
