//! `audit toestemming`: the disclosures in one casusoverleg that relied on a
//! consent, each checked against the consent register (issue 18 (e)).
//!
//! A request record names the consents it relied on in `detail`
//! (`{"aanmelding":…,"toestemmingen":["<id>",…]}`). The walk reads only
//! those records, through the partial index of
//! `migrations/20261203000003_consent_reliance.sql`
//! ([`query::CONSENT_RELIED`]), page by page. Every (disclosure, consent)
//! pair is then checked: the consent is in the register, belongs to the
//! same casusoverleg and the same pupil pseudonym, covers the purpose, and
//! was active during the request (recorded and valid from before its end,
//! not expired or withdrawn before its start). A request holds its register
//! lookup between its start (`time`) and its end (`time + duration_us`), so
//! a consent given while a request was under way is not a finding, and a
//! withdrawal waits for the requests in flight (see `registers`), so a
//! legitimate disclosure always starts before the withdrawal.
//!
//! Memory: one page of records, plus one line per consent-relying
//! disclosure in the period and the distinct consents they name.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::ControlFlow;

use serde::Serialize;
use sqlx::Row;

use super::{ReviewError, query, when};
use crate::audit::{Store, StoredRow};

/// Records per page while the walk reads the trail.
const PAGE: usize = 10_000;
/// Consent ids per register lookup.
const LOOKUP_CHUNK: usize = 500;

/// One consent relied on by one disclosure, with what the register says.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// `instance#seq`.
    pub record: String,
    pub time: String,
    pub org: Option<String>,
    pub supplier: Option<String>,
    pub role: Option<String>,
    pub purpose: Option<String>,
    pub bron: Option<String>,
    /// The pupil's pseudonym (never the clear id); `None` once purged.
    pub subject: Option<String>,
    pub outcome: String,
    /// The consent id the record names.
    pub consent: String,
    pub given_by: Option<String>,
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    pub withdrawn_at: Option<String>,
    /// What does not hold (Dutch); empty when the consent was active.
    pub findings: Vec<String>,
    /// What could not be checked, and why (Dutch); not a finding.
    pub note: Option<String>,
}

/// The check of one casusoverleg over one period.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub overleg: String,
    pub from: Option<String>,
    pub to: String,
    /// Records read (the consent-relying records of the overleg, every outcome).
    pub records_read: usize,
    /// Disclosures (allowed or filtered) that relied on at least one consent.
    pub disclosures: usize,
    pub lines: Vec<Line>,
    pub findings: usize,
}

impl Report {
    /// No finding: every consent relied on was active at the time.
    pub fn ok(&self) -> bool {
        self.findings == 0
    }
}

/// A consent as the register holds it.
#[derive(Debug, Clone)]
struct Registered {
    overleg: String,
    subject: String,
    given_by: String,
    purposes: Vec<String>,
    valid_from: String,
    valid_until: Option<String>,
    recorded_at: String,
    withdrawn_at: Option<String>,
}

/// A disclosure that named consents, as kept between the walk and the check.
struct Relied {
    row: StoredRow,
    consents: Vec<String>,
}

/// Walks the consent-relying records of `overleg` in [`from`, `to`) and
/// checks each consent they name against the register.
pub async fn build(
    store: &Store,
    overleg: &str,
    from: Option<String>,
    to: String,
) -> Result<Report, ReviewError> {
    let filter = query::Filter {
        from: from.clone(),
        to: Some(to.clone()),
        overleg: Some(overleg.to_owned()),
        kind: Some("request".into()),
        consent_relied: true,
        ..Default::default()
    };
    let mut read = 0usize;
    let mut relied: Vec<Relied> = Vec::new();
    query::for_each(store, &filter, PAGE, |r| {
        read += 1;
        if matches!(r.outcome.as_str(), "allowed" | "filtered") {
            let consents = consents_named(&r.detail);
            if !consents.is_empty() {
                let mut row = r.clone();
                // Not needed for the check; keeps the kept rows small.
                row.fields_shared.clear();
                row.fields_withheld.clear();
                relied.push(Relied { row, consents });
            }
        }
        ControlFlow::Continue(())
    })
    .await?;
    let register = lookup(store, &relied).await?;
    let mut lines = Vec::new();
    for d in &relied {
        for id in &d.consents {
            lines.push(check(&d.row, id, register.get(id)));
        }
    }
    uncorrected_findings(store, &mut lines).await?;
    let findings = lines.iter().filter(|l| !l.findings.is_empty()).count();
    Ok(Report {
        overleg: overleg.to_owned(),
        from,
        to,
        records_read: read,
        disclosures: relied.len(),
        lines,
        findings,
    })
}

/// The consent ids a record's `detail` names (`toestemmingen`).
pub fn consents_named(detail: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(detail)
        .ok()
        .and_then(|d| {
            d.get("toestemmingen")?.as_array().map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// The register's consents by id, for every id the disclosures name.
async fn lookup(
    store: &Store,
    relied: &[Relied],
) -> Result<HashMap<String, Registered>, ReviewError> {
    let mut ids: Vec<&str> = relied
        .iter()
        .flat_map(|d| d.consents.iter().map(String::as_str))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut found = HashMap::new();
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let mut sql = String::from(
            "SELECT id, overleg, subject, given_by, purposes, valid_from, valid_until, recorded_at, withdrawn_at FROM consents WHERE id IN (",
        );
        for i in 1..=chunk.len() {
            let _ = write!(sql, "{}${i}", if i > 1 { "," } else { "" });
        }
        sql.push(')');
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        for r in q.fetch_all(store.pool()).await? {
            let purposes: String = r.try_get("purposes")?;
            found.insert(
                r.try_get::<String, _>("id")?,
                Registered {
                    overleg: r.try_get("overleg")?,
                    subject: r.try_get("subject")?,
                    given_by: r.try_get("given_by")?,
                    purposes: serde_json::from_str(&purposes).unwrap_or_default(),
                    valid_from: r.try_get("valid_from")?,
                    valid_until: r.try_get("valid_until")?,
                    recorded_at: r.try_get("recorded_at")?,
                    withdrawn_at: r.try_get("withdrawn_at")?,
                },
            );
        }
    }
    Ok(found)
}

/// The key version of a pseudonym (`k1` of `k1:<hex>`).
fn key_version(pseudonym: &str) -> &str {
    pseudonym.split_once(':').map_or("", |(v, _)| v)
}

/// Checks one consent relied on by one disclosure.
fn check(r: &StoredRow, id: &str, c: Option<&Registered>) -> Line {
    let mut line = Line {
        record: format!("{}#{}", r.instance, r.seq),
        time: r.time.clone(),
        org: r.org.clone(),
        supplier: r.supplier.clone(),
        role: r.role.clone(),
        purpose: r.purpose.clone(),
        bron: r.bron.clone(),
        subject: r.pupil.clone(),
        outcome: r.outcome.clone(),
        consent: id.to_owned(),
        given_by: None,
        valid_from: None,
        valid_until: None,
        withdrawn_at: None,
        findings: Vec::new(),
        note: None,
    };
    let Some(c) = c else {
        line.findings
            .push("toestemming staat niet in het register".into());
        return line;
    };
    line.given_by = Some(c.given_by.clone());
    line.valid_from = Some(c.valid_from.clone());
    line.valid_until.clone_from(&c.valid_until);
    line.withdrawn_at.clone_from(&c.withdrawn_at);
    let start = r.time.as_str();
    let end = when::parse_stored(&r.time)
        .map(|t| when::stored(t + time::Duration::microseconds(r.duration_us)))
        .unwrap_or_else(|| r.time.clone());
    let f = &mut line.findings;
    if r.overleg.as_deref() != Some(c.overleg.as_str()) {
        f.push(format!("toestemming hoort bij casusoverleg {}", c.overleg));
    }
    match r.pupil.as_deref() {
        Some(s) if key_version(s) == key_version(&c.subject) => {
            if s != c.subject {
                f.push("toestemming is van een andere leerling".into());
            }
        }
        Some(_) => {
            line.note = Some(
                "leerling niet te vergelijken: pseudoniemen onder verschillende sleutelversies"
                    .into(),
            );
        }
        None => line.note = Some("leerling niet te vergelijken: record is gepurged".into()),
    }
    if !r
        .purpose
        .as_ref()
        .is_some_and(|p| c.purposes.iter().any(|x| x == p))
    {
        f.push(format!(
            "doel {} valt niet onder de toestemming ({})",
            r.purpose.as_deref().unwrap_or("-"),
            c.purposes.join(", ")
        ));
    }
    if c.recorded_at.as_str() > end.as_str() {
        f.push(format!(
            "toestemming pas vastgelegd op {}, na de verstrekking",
            c.recorded_at
        ));
    }
    if c.valid_from.as_str() > end.as_str() {
        f.push(format!("toestemming pas geldig vanaf {}", c.valid_from));
    }
    if let Some(u) = c.valid_until.as_deref().filter(|u| *u <= start) {
        f.push(format!("toestemming verlopen op {u}"));
    }
    if let Some(w) = c.withdrawn_at.as_deref().filter(|w| *w <= start) {
        f.push(format!(
            "toestemming ingetrokken op {w}, vóór de verstrekking"
        ));
    }
    line
}

/// A record the writer later corrected (it landed while its client was
/// answered 503, see `audit::writer`) was never delivered: its findings are
/// dropped, with a note. Looked up only for lines with findings, through
/// the subject index.
async fn uncorrected_findings(store: &Store, lines: &mut [Line]) -> Result<(), ReviewError> {
    for line in lines.iter_mut().filter(|l| !l.findings.is_empty()) {
        let Some(subject) = &line.subject else {
            continue;
        };
        let rows = sqlx::query(
            "SELECT detail FROM audit_records WHERE subject = $1 AND kind = 'correction'",
        )
        .bind(subject)
        .fetch_all(store.pool())
        .await?;
        let corrected = rows.iter().any(|r| {
            let detail: String = r.try_get("detail").unwrap_or_default();
            serde_json::from_str::<serde_json::Value>(&detail).is_ok_and(|d| {
                let c = &d["corrects"];
                c["instance"].as_str().zip(c["seq"].as_i64())
                    == line
                        .record
                        .rsplit_once('#')
                        .and_then(|(i, s)| Some((i, s.parse().ok()?)))
            })
        });
        if corrected {
            line.findings.clear();
            line.note = Some("niet afgeleverd (gecorrigeerd record): geen verstrekking".into());
        }
    }
    Ok(())
}

/// Columns of the table and CSV output.
pub const COLUMNS: [&str; 11] = [
    "time",
    "record",
    "org",
    "role",
    "purpose",
    "subject",
    "consent",
    "given_by",
    "valid_from",
    "withdrawn_at",
    "bevinding",
];

fn cells(l: &Line, short: bool) -> [String; COLUMNS.len()] {
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let verdict = if l.findings.is_empty() {
        l.note.clone().unwrap_or_else(|| "ok".into())
    } else {
        l.findings.join("; ")
    };
    [
        l.time.clone(),
        l.record.clone(),
        o(&l.org),
        o(&l.role),
        o(&l.purpose),
        match (&l.subject, short) {
            (Some(s), true) => query::short_subject(s),
            (s, _) => o(s),
        },
        l.consent.clone(),
        o(&l.given_by),
        o(&l.valid_from),
        o(&l.withdrawn_at),
        verdict,
    ]
}

impl Report {
    /// The plain-text table, then one `BEVINDING` line per finding and a
    /// verdict (as `audit verify` ends with `OK` or its findings).
    pub fn table(&self) -> String {
        let data: Vec<[String; COLUMNS.len()]> =
            self.lines.iter().map(|l| cells(l, true)).collect();
        let mut width = COLUMNS.map(str::len);
        for row in &data {
            for (w, c) in width.iter_mut().zip(row.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = &str>| {
            let parts: Vec<String> = cells
                .zip(width.iter())
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        };
        line(&mut COLUMNS.iter().copied());
        for row in &data {
            line(&mut row.iter().map(String::as_str));
        }
        let _ = writeln!(
            out,
            "{} verstrekking(en) op grond van toestemming in {}",
            self.disclosures, self.overleg
        );
        for l in self.lines.iter().filter(|l| !l.findings.is_empty()) {
            let _ = writeln!(
                out,
                "BEVINDING {} toestemming {}: {}",
                l.record,
                l.consent,
                l.findings.join("; ")
            );
        }
        if self.ok() {
            out.push_str("OK: elke toestemming was actief op het moment van de verstrekking\n");
        } else {
            let _ = writeln!(out, "{} bevinding(en)", self.findings);
        }
        out
    }

    /// The report as JSON (every line with full pseudonyms).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// One CSV line per (disclosure, consent), with a header line.
    pub fn csv(&self) -> String {
        let mut out = super::export::csv_line(COLUMNS);
        for l in &self.lines {
            out.push_str(&super::export::csv_line(cells(l, false)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(time: &str, duration_us: i64) -> StoredRow {
        let mut rec = crate::audit::AuditRecord::new("gw-1", "r", "t");
        rec.time = time.to_owned();
        rec.duration_us = u64::try_from(duration_us).unwrap();
        rec.overleg = Some("ept".into());
        rec.purpose = Some("plek".into());
        rec.pupil = Some("k2:aa".into());
        rec.outcome = crate::audit::Outcome::Allowed;
        StoredRow::from_owned(rec, 1, crate::audit::record::GENESIS)
    }

    fn consent() -> Registered {
        Registered {
            overleg: "ept".into(),
            subject: "k2:aa".into(),
            given_by: "parents".into(),
            purposes: vec!["plek".into()],
            valid_from: "2026-11-01T10:00:00.000000Z".into(),
            valid_until: None,
            recorded_at: "2026-11-01T10:00:00.000000Z".into(),
            withdrawn_at: None,
        }
    }

    #[test]
    fn the_request_interval_decides_and_key_versions_are_noted() {
        let c = consent();
        assert!(
            check(&row("2026-11-01T10:00:01.000000Z", 0), "c", Some(&c))
                .findings
                .is_empty()
        );
        // Given while the request was under way (after its start, before
        // its end): not a finding.
        let l = check(&row("2026-11-01T09:59:59.900000Z", 200_000), "c", Some(&c));
        assert!(l.findings.is_empty(), "{l:?}");
        let l = check(&row("2026-11-01T09:59:59.900000Z", 50_000), "c", Some(&c));
        assert_eq!(l.findings.len(), 2, "recorded and valid only after: {l:?}");
        // Withdrawn at the very start: a finding; just after: none.
        let mut w = consent();
        w.withdrawn_at = Some("2026-11-02T00:00:00.000000Z".into());
        assert_eq!(
            check(&row("2026-11-02T00:00:00.000000Z", 0), "c", Some(&w))
                .findings
                .len(),
            1
        );
        assert!(
            check(&row("2026-11-01T23:59:59.999999Z", 5), "c", Some(&w))
                .findings
                .is_empty()
        );
        // Another key version: not comparable, noted, no finding.
        let mut k = consent();
        k.subject = "k1:bb".into();
        let l = check(&row("2026-11-03T00:00:00.000000Z", 0), "c", Some(&k));
        assert!(l.findings.is_empty() && l.note.is_some(), "{l:?}");
        k.subject = "k2:bb".into();
        assert_eq!(
            check(&row("2026-11-03T00:00:00.000000Z", 0), "c", Some(&k))
                .findings
                .len(),
            1
        );
        assert_eq!(
            check(&row("2026-11-03T00:00:00.000000Z", 0), "c", None)
                .findings
                .len(),
            1
        );
    }

    #[test]
    fn consent_ids_come_from_detail() {
        assert_eq!(
            consents_named(r#"{"aanmelding":"a","toestemmingen":["c1","c2"]}"#),
            ["c1", "c2"]
        );
        assert!(consents_named(r#"{"aanmelding":"a","toestemmingen":[]}"#).is_empty());
        assert!(consents_named("{}").is_empty());
    }
}
