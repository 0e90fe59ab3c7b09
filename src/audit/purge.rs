//! Retention: erase the personal columns of expired records, keeping a
//! verifiable tombstone (the personal digest stays, so the chain verifies).

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;

use super::store::{Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct PurgeReport {
    pub cutoff_by_overleg: BTreeMap<String, String>,
    pub purged_by_overleg: BTreeMap<String, u64>,
    pub total: u64,
}

fn rfc3339(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

/// Purges expired records. `retention` gives the days per overleg (from the
/// policy set); overleggen found in the trail but no longer in the policy use
/// `default_days`, as do records without an overleg.
pub async fn purge(
    store: &Store,
    retention: &BTreeMap<String, u32>,
    default_days: u32,
    now: OffsetDateTime,
) -> Result<PurgeReport, StoreError> {
    let now_s = rfc3339(now);
    let mut report = PurgeReport {
        cutoff_by_overleg: BTreeMap::new(),
        purged_by_overleg: BTreeMap::new(),
        total: 0,
    };
    let mut overleggen: BTreeMap<String, u32> = retention.clone();
    for o in store.overleggen().await? {
        overleggen.entry(o).or_insert(default_days);
    }
    for (overleg, days) in &overleggen {
        let cutoff = rfc3339(now - time::Duration::days(i64::from(*days)));
        let n = store.purge(Some(overleg), &cutoff, &now_s).await?;
        report.cutoff_by_overleg.insert(overleg.clone(), cutoff);
        if n > 0 {
            report.purged_by_overleg.insert(overleg.clone(), n);
        }
        report.total += n;
    }
    let cutoff = rfc3339(now - time::Duration::days(i64::from(default_days)));
    let n = store.purge(None, &cutoff, &now_s).await?;
    report
        .cutoff_by_overleg
        .insert("(geen overleg)".into(), cutoff);
    if n > 0 {
        report.purged_by_overleg.insert("(geen overleg)".into(), n);
    }
    report.total += n;
    Ok(report)
}
