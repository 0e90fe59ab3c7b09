//! Helpers shared by the benchmark binaries (each includes this module).
#![allow(dead_code, reason = "each benchmark uses some of these")]

/// The audit settings of a bench store at `url`, its keys in `dir` (`p.key`,
/// `s.key`).
pub fn audit_config(url: &str, dir: &std::path::Path) -> poortwachter::audit::AuditConfig {
    poortwachter::audit::AuditConfig {
        store: url.into(),
        pseudonym_key: dir.join("p.key"),
        signing_key: dir.join("s.key"),
        verify_key: None,
        commit_timeout_ms: 10_000,
        queue_capacity: 16_384,
        max_batch: 1_024,
        transaction_timeout_ms: 5_000,
        backlog_capacity: 16_384,
        checkpoint_interval_ms: 10_000,
        default_retention_days: 365,
        purge_interval_hours: None,
        sqlite_cache_mib: poortwachter::audit::DEFAULT_SQLITE_CACHE_MIB,
    }
}

/// Peak resident memory of this process so far (VmHWM), MiB. A high-water
/// mark: measure the frugal variant first.
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024.0
}
