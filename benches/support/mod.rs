//! Helpers shared by the benchmark binaries (each includes this module).

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
