//! `audit rapport --van --tot`: the DPIA accountability report. Per
//! casusoverleg: the volume over time (inline SVG), the fields shared per
//! role, denials and their reasons, purposes and rules never used; for the
//! whole gateway: policy changes (`kind = reload`) and anomalies. The report
//! aggregates: it names organisations, roles, fields and counts, never a
//! pupil or a pseudonym.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::ControlFlow;

use serde::Serialize;

use super::html::{self, Series, esc};
use super::query::{self, Filter};
use super::{ReviewError, when};
use crate::audit::{Store, StoredRow};
use crate::policy::model::PolicySet;

/// Thresholds of the anomaly rules. Every one is named and has a default.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Office hours, Dutch time, Monday to Friday: from this hour...
    pub office_start_hour: u8,
    /// ...until this hour (exclusive).
    pub office_end_hour: u8,
    /// A day counts as a surge when an organisation asks about at least
    /// `surge_factor` times its usual number of distinct pupils...
    pub surge_factor: u64,
    /// ...and at least this many more than usual.
    pub surge_min_extra: u64,
    /// Days of history before the period used to learn what is usual.
    pub baseline_days: i64,
    /// Fewest other active days needed before "usual" means anything.
    pub baseline_min_days: usize,
    /// Denials of one organisation in one overleg that count as repeated.
    pub repeated_denials: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            office_start_hour: 7,
            office_end_hour: 19,
            surge_factor: 3,
            surge_min_extra: 5,
            baseline_days: 28,
            baseline_min_days: 3,
            repeated_denials: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    /// `surge`, `outside-office-hours`, `repeated-denials`, `purpose-unused`, `rule-unused`.
    pub kind: &'static str,
    pub overleg: String,
    pub org: Option<String>,
    /// Plain-Dutch description (counts, never pupils).
    pub description: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Volume {
    /// Bucket labels (days `YYYY-MM-DD`, or months `YYYY-MM` for long periods).
    pub buckets: Vec<String>,
    pub allowed: Vec<u64>,
    pub filtered: Vec<u64>,
    pub denied: Vec<u64>,
    pub error: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldCount {
    pub role: String,
    pub role_name: String,
    pub field: String,
    pub label: String,
    pub category: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DenialCount {
    pub reason: String,
    pub org: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverlegReport {
    pub id: String,
    pub name: String,
    pub requests: u64,
    pub distinct_pupils: u64,
    pub volume: Volume,
    pub fields: Vec<FieldCount>,
    pub denials: Vec<DenialCount>,
    pub unused_purposes: Vec<String>,
    pub unused_rules: Vec<String>,
    pub anomalies: Vec<Anomaly>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PolicyChange {
    pub time: String,
    pub reason: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Rapport {
    pub from: String,
    pub to: String,
    pub generated_at: String,
    pub policy_version: String,
    pub total_requests: u64,
    pub overleggen: Vec<OverlegReport>,
    pub policy_changes: Vec<PolicyChange>,
    /// Requests that named no (known) overleg: identity and path refusals.
    pub outside_overleggen: u64,
    /// Accesses to the trail itself in the period.
    pub trail_accesses: u64,
    #[serde(skip)]
    pub records_read: usize,
}

fn day_of(r: &StoredRow) -> Option<String> {
    when::parse_stored(&r.time).map(when::dutch_day)
}

fn median(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[v.len() / 2]
}

/// The buckets of the period: every day, or every month when the period is
/// longer than `MAX_DAILY_BUCKETS` days.
const MAX_DAILY_BUCKETS: i64 = 62;

fn buckets(from: &str, to: &str) -> (Vec<String>, bool) {
    let (Some(a), Some(b)) = (when::parse_stored(from), when::parse_stored(to)) else {
        return (Vec::new(), false);
    };
    if b <= a {
        return (Vec::new(), false);
    }
    let monthly = (b - a).whole_days() > MAX_DAILY_BUCKETS;
    // Walk Dutch calendar dates (not instants plus 24 h, which would drift
    // across a daylight-saving switch) from the first to the last day.
    let first = when::dutch(a).date();
    let last = when::dutch(b - time::Duration::microseconds(1)).date();
    let mut out: Vec<String> = Vec::new();
    let mut d = Some(first);
    while let Some(day) = d.filter(|day| *day <= last) {
        let mut label = format!(
            "{:04}-{:02}-{:02}",
            day.year(),
            u8::from(day.month()),
            day.day()
        );
        if monthly {
            label.truncate(7);
        }
        if out.last() != Some(&label) {
            out.push(label);
        }
        d = day.next_day();
    }
    (out, monthly)
}

/// Records per page while the report walks the period and its baseline.
const PAGE: usize = 10_000;

/// Builds the report for `[from, to)` (stored-form bounds from [`when::bound`]).
/// Walks the records page by page and keeps only the aggregates (counts per
/// day, field and reason; distinct pseudonyms per overleg and per
/// organisation-day), so its memory follows the period's variety, not its
/// volume.
pub async fn build(
    store: &Store,
    set: &PolicySet,
    from: &str,
    to: &str,
    th: Thresholds,
) -> Result<Rapport, ReviewError> {
    build_paged(store, set, from, to, th, PAGE).await
}

/// [`build`], fetching `page` records at a time (the report does not depend
/// on `page`; the tests check that it does not).
pub async fn build_paged(
    store: &Store,
    set: &PolicySet,
    from: &str,
    to: &str,
    th: Thresholds,
    page: usize,
) -> Result<Rapport, ReviewError> {
    let mut acc = Acc::new(set, from, to, th);
    let period = Filter {
        from: Some(from.to_owned()),
        to: Some(to.to_owned()),
        kind: None,
        ..Default::default()
    };
    query::for_each(store, &period, page, |r| {
        acc.period(r);
        ControlFlow::Continue(())
    })
    .await?;
    let baseline_from = when::parse_stored(from)
        .map(|t| when::stored(t - time::Duration::days(th.baseline_days)))
        .unwrap_or_else(|| from.to_owned());
    let history = Filter {
        from: Some(baseline_from),
        to: Some(from.to_owned()),
        kind: Some("request".into()),
        ..Default::default()
    };
    query::for_each(store, &history, page, |r| {
        acc.history(r);
        ControlFlow::Continue(())
    })
    .await?;
    Ok(acc.finish())
}

/// The report from the records of the period and of the baseline window before it.
pub fn from_rows(
    set: &PolicySet,
    from: &str,
    to: &str,
    period: &[StoredRow],
    history: &[StoredRow],
    th: Thresholds,
) -> Rapport {
    let mut acc = Acc::new(set, from, to, th);
    for r in period {
        acc.period(r);
    }
    for r in history {
        acc.history(r);
    }
    acc.finish()
}

/// The report's running aggregates: fed one record at a time.
struct Acc<'a> {
    set: &'a PolicySet,
    from: String,
    to: String,
    th: Thresholds,
    monthly: bool,
    index: BTreeMap<String, usize>,
    /// Per overleg of the policy set.
    overleggen: BTreeMap<String, OverlegAcc>,
    total_requests: u64,
    policy_changes: Vec<PolicyChange>,
    outside_overleggen: u64,
    trail_accesses: u64,
    records_read: usize,
}

/// One overleg's aggregates.
struct OverlegAcc {
    requests: u64,
    volume: Volume,
    /// (role, field) -> times shared.
    fields: BTreeMap<(String, String), u64>,
    /// (reason, org) -> denials.
    denials: BTreeMap<(String, String), u64>,
    used_purposes: BTreeSet<String>,
    used_rules: BTreeSet<String>,
    pupils: BTreeSet<String>,
    /// org -> requests outside office hours.
    outside: BTreeMap<String, u64>,
    /// (org, day) -> distinct pseudonyms, over the period and its baseline.
    daily: BTreeMap<(String, String), BTreeSet<String>>,
    /// (org, day) pairs that fall in the period.
    in_period: BTreeSet<(String, String)>,
}

impl<'a> Acc<'a> {
    fn new(set: &'a PolicySet, from: &str, to: &str, th: Thresholds) -> Self {
        let (labels, monthly) = buckets(from, to);
        let index = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i))
            .collect();
        let n = labels.len();
        let overleggen = set
            .overleggen
            .keys()
            .map(|id| {
                let acc = OverlegAcc {
                    requests: 0,
                    volume: Volume {
                        buckets: labels.clone(),
                        allowed: vec![0; n],
                        filtered: vec![0; n],
                        denied: vec![0; n],
                        error: vec![0; n],
                    },
                    fields: BTreeMap::new(),
                    denials: BTreeMap::new(),
                    used_purposes: BTreeSet::new(),
                    used_rules: BTreeSet::new(),
                    pupils: BTreeSet::new(),
                    outside: BTreeMap::new(),
                    daily: BTreeMap::new(),
                    in_period: BTreeSet::new(),
                };
                (id.clone(), acc)
            })
            .collect();
        Self {
            set,
            from: from.to_owned(),
            to: to.to_owned(),
            th,
            monthly,
            index,
            overleggen,
            total_requests: 0,
            policy_changes: Vec::new(),
            outside_overleggen: 0,
            trail_accesses: 0,
            records_read: 0,
        }
    }

    /// A record of the period (any kind).
    fn period(&mut self, r: &StoredRow) {
        self.records_read += 1;
        match r.kind.as_str() {
            "reload" => self.policy_changes.push(PolicyChange {
                time: r.time.clone(),
                reason: r.reason.clone(),
                detail: serde_json::from_str(&r.detail).unwrap_or(serde_json::Value::Null),
            }),
            "access" => self.trail_accesses += 1,
            "request" => self.request(r),
            _ => {}
        }
    }

    fn request(&mut self, r: &StoredRow) {
        self.total_requests += 1;
        let Some(o) = r
            .overleg
            .as_deref()
            .and_then(|id| self.overleggen.get_mut(id))
        else {
            self.outside_overleggen += 1;
            return;
        };
        o.requests += 1;
        let day = day_of(r);
        if let Some(mut d) = day.clone() {
            if self.monthly {
                d.truncate(7);
            }
            if let Some(&i) = self.index.get(d.as_str()) {
                let v = match r.outcome.as_str() {
                    "allowed" => &mut o.volume.allowed,
                    "filtered" => &mut o.volume.filtered,
                    "denied" => &mut o.volume.denied,
                    _ => &mut o.volume.error,
                };
                v[i] += 1;
            }
        }
        if let Some(s) = &r.subject {
            o.pupils.insert(s.clone());
        }
        if let Some(p) = &r.purpose {
            o.used_purposes.insert(p.clone());
        }
        o.used_rules.extend(query::list(&r.rules));
        let org = r.org.clone().unwrap_or_else(|| "-".into());
        match r.outcome.as_str() {
            "allowed" | "filtered" => {
                let role = r.role.clone().unwrap_or_else(|| "-".into());
                for f in query::list(&r.fields_shared) {
                    *o.fields.entry((role.clone(), f)).or_default() += 1;
                }
            }
            "denied" => {
                *o.denials
                    .entry((r.reason.clone(), org.clone()))
                    .or_default() += 1
            }
            _ => {}
        }
        if let Some(t) = when::parse_stored(&r.time)
            && !when::in_office_hours(t, self.th.office_start_hour, self.th.office_end_hour)
        {
            *o.outside.entry(org).or_default() += 1;
        }
        if let (Some(org), Some(day)) = (&r.org, day) {
            o.in_period.insert((org.clone(), day.clone()));
            if let Some(s) = &r.subject {
                o.daily
                    .entry((org.clone(), day))
                    .or_default()
                    .insert(s.clone());
            }
        }
    }

    /// A request of the baseline window before the period.
    fn history(&mut self, r: &StoredRow) {
        self.records_read += 1;
        let Some(o) = r
            .overleg
            .as_deref()
            .and_then(|id| self.overleggen.get_mut(id))
        else {
            return;
        };
        if let (Some(org), Some(day), Some(s)) = (&r.org, day_of(r), &r.subject) {
            o.daily
                .entry((org.clone(), day))
                .or_default()
                .insert(s.clone());
        }
    }

    fn finish(self) -> Rapport {
        let (set, th) = (self.set, self.th);
        let mut overleggen = Vec::new();
        for (id, o) in self.overleggen {
            let Some(overleg) = set.overleggen.get(&id) else {
                continue;
            };
            let mut anomalies = Vec::new();
            for (org, count) in &o.outside {
                anomalies.push(Anomaly {
                    kind: "outside-office-hours",
                    overleg: id.clone(),
                    org: Some(org.clone()),
                    description: format!(
                        "{} deed {count} verzoek(en) buiten kantoortijd (werkdagen {:02}:00-{:02}:00)",
                        org_name(set, org),
                        th.office_start_hour,
                        th.office_end_hour
                    ),
                });
            }
            let mut per_org_denials: BTreeMap<&str, u64> = BTreeMap::new();
            for ((_, org), n) in &o.denials {
                *per_org_denials.entry(org.as_str()).or_default() += n;
            }
            for (org, n) in per_org_denials {
                if n as usize >= th.repeated_denials {
                    anomalies.push(Anomaly {
                        kind: "repeated-denials",
                        overleg: id.clone(),
                        org: Some(org.to_owned()),
                        description: format!("{} werd {n} keer geweigerd", org_name(set, org)),
                    });
                }
            }
            anomalies.extend(surges(set, &id, &o.daily, &o.in_period, th));
            let unused_purposes: Vec<String> = overleg
                .purposes
                .iter()
                .filter(|p| !o.used_purposes.contains(&p.id))
                .map(|p| p.id.clone())
                .collect();
            let unused_rules: Vec<String> = overleg
                .rules
                .iter()
                .filter(|r| !o.used_rules.contains(&r.id))
                .map(|r| r.id.clone())
                .collect();
            for p in &unused_purposes {
                anomalies.push(Anomaly {
                    kind: "purpose-unused",
                    overleg: id.clone(),
                    org: None,
                    description: format!("doel `{p}` is in deze periode niet gebruikt"),
                });
            }
            if !unused_rules.is_empty() {
                anomalies.push(Anomaly {
                    kind: "rule-unused",
                    overleg: id.clone(),
                    org: None,
                    description: format!(
                        "{} van de {} regels zijn in deze periode niet gebruikt: {}",
                        unused_rules.len(),
                        overleg.rules.len(),
                        unused_rules.join(", ")
                    ),
                });
            }
            let fields = o
                .fields
                .into_iter()
                .map(|((role, field), count)| {
                    let entry = overleg.rules.iter().find_map(|rule| {
                        let b = set.bronnen.get(&rule.bron)?;
                        b.field_index(&field).map(|i| &b.catalogue[i])
                    });
                    FieldCount {
                        role_name: overleg
                            .role(&role)
                            .map(|r| r.name.clone())
                            .unwrap_or_else(|| role.clone()),
                        role,
                        label: entry
                            .map(|f| f.label.clone())
                            .unwrap_or_else(|| field.clone()),
                        category: entry
                            .map(|f| f.category.as_str().to_owned())
                            .unwrap_or_else(|| "unknown".into()),
                        field,
                        count,
                    }
                })
                .collect();
            overleggen.push(OverlegReport {
                name: overleg.name.clone(),
                requests: o.requests,
                distinct_pupils: o.pupils.len() as u64,
                volume: o.volume,
                fields,
                denials: o
                    .denials
                    .into_iter()
                    .map(|((reason, org), count)| DenialCount { reason, org, count })
                    .collect(),
                unused_purposes,
                unused_rules,
                anomalies,
                id,
            });
        }
        Rapport {
            from: self.from,
            to: self.to,
            generated_at: crate::audit::record::now_rfc3339(),
            policy_version: set.version.clone(),
            total_requests: self.total_requests,
            overleggen,
            policy_changes: self.policy_changes,
            outside_overleggen: self.outside_overleggen,
            trail_accesses: self.trail_accesses,
            records_read: self.records_read,
        }
    }
}

fn org_name(set: &PolicySet, id: &str) -> String {
    set.organisations
        .get(id)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| id.to_owned())
}

/// Days on which an organisation asked about far more distinct pupils than
/// it usually does (its median over the other active days of the period and
/// the baseline before it).
fn surges(
    set: &PolicySet,
    overleg: &str,
    daily: &BTreeMap<(String, String), BTreeSet<String>>,
    in_period: &BTreeSet<(String, String)>,
    th: Thresholds,
) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for ((org, day), pupils) in daily {
        if !in_period.contains(&(org.clone(), day.clone())) {
            continue;
        }
        let others: Vec<u64> = daily
            .iter()
            .filter(|((o, d), _)| o == org && d != day)
            .map(|(_, s)| s.len() as u64)
            .collect();
        if others.len() < th.baseline_min_days {
            continue;
        }
        let usual = median(others).max(1);
        let n = pupils.len() as u64;
        if n >= usual * th.surge_factor && n >= usual + th.surge_min_extra {
            out.push(Anomaly {
                kind: "surge",
                overleg: overleg.to_owned(),
                org: Some(org.clone()),
                description: format!(
                    "{} vroeg op {day} naar {n} verschillende leerlingen; gewoonlijk {usual} per dag",
                    org_name(set, org)
                ),
            });
        }
    }
    out
}

impl Rapport {
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// The HTML body (without page chrome), for the dashboard.
    pub fn html_body(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "<h1>Verantwoordingsrapportage (DPIA)</h1>\n<p class=\"meta\">Periode van {} tot {} (Nederlandse tijd; <code>{}</code> tot <code>{}</code> UTC). Opgesteld op {}. Policyversie <code>{}</code>.</p>",
            esc(&when::dutch_readable(&self.from)),
            esc(&when::dutch_readable(&self.to)),
            esc(&self.from),
            esc(&self.to),
            esc(&when::dutch_readable(&self.generated_at)),
            esc(crate::policy::tools::render::short_version(
                &self.policy_version
            ))
        );
        let anomalies: Vec<&Anomaly> = self
            .overleggen
            .iter()
            .flat_map(|x| x.anomalies.iter())
            .filter(|a| !matches!(a.kind, "purpose-unused" | "rule-unused"))
            .collect();
        let _ = writeln!(
            o,
            "<h2>Samenvatting</h2>\n<dl class=\"kenmerken\"><dt>Verzoeken</dt><dd>{}</dd><dt>Buiten een overleg (geweigerd)</dt><dd>{}</dd><dt>Beleidswijzigingen</dt><dd>{}</dd><dt>Inzage in het logboek</dt><dd>{}</dd><dt>Opvallendheden</dt><dd>{}</dd></dl>",
            self.total_requests,
            self.outside_overleggen,
            self.policy_changes.len(),
            self.trail_accesses,
            anomalies.len()
        );
        if !anomalies.is_empty() {
            let _ = writeln!(o, "<div class=\"let-op\"><ul>");
            for a in anomalies {
                let _ = writeln!(
                    o,
                    "<li><strong>{}</strong> ({}): {}</li>",
                    esc(anomaly_label(a.kind)),
                    esc(&a.overleg),
                    esc(&a.description)
                );
            }
            let _ = writeln!(o, "</ul></div>");
        }
        let _ = writeln!(o, "<h2>Beleidswijzigingen in de periode</h2>");
        if self.policy_changes.is_empty() {
            let _ = writeln!(o, "<p>Geen.</p>");
        } else {
            let _ = writeln!(
                o,
                "<table><thead><tr><th>Tijd</th><th>Wat</th><th>Aanleiding</th><th>Van → naar</th><th>Velden erbij / eraf</th><th>Overleggen</th></tr></thead><tbody>"
            );
            for c in &self.policy_changes {
                let d = &c.detail;
                let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
                let short = |v: &serde_json::Value| {
                    s(v).get(..16).map(str::to_owned).unwrap_or_else(|| s(v))
                };
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code> → <code>{}</code></td><td class=\"num\">{} / {}</td><td>{}</td></tr>",
                    esc(&when::dutch_readable(&c.time)),
                    esc(&c.reason),
                    esc(&s(&d["trigger"])),
                    esc(&short(&d["old_version"])),
                    esc(&short(&d["new_version"])),
                    d["delta"]["fields_gained"].as_u64().unwrap_or(0),
                    d["delta"]["fields_lost_or_changed"].as_u64().unwrap_or(0),
                    esc(&d["delta"]["overleggen"]
                        .as_array()
                        .map(|a| a.iter().map(s).collect::<Vec<_>>().join(", "))
                        .unwrap_or_default())
                );
            }
            let _ = writeln!(o, "</tbody></table>");
        }
        for x in &self.overleggen {
            let _ = writeln!(
                o,
                "<section class=\"overleg\" id=\"{}\"><h2>{}</h2>\n<p>{} verzoek(en) over {} verschillende leerling(en).</p>",
                esc(&x.id),
                esc(&x.name),
                x.requests,
                x.distinct_pupils
            );
            let v = &x.volume;
            let _ = writeln!(
                o,
                "<h3>Volume</h3>\n{}",
                html::bar_chart(
                    &format!("Verzoeken per periode, {}", x.name),
                    &v.buckets,
                    &[
                        Series {
                            label: "volledig verstrekt",
                            colour: "#2e7d32",
                            values: v.allowed.clone()
                        },
                        Series {
                            label: "gefilterd verstrekt",
                            colour: "#1565c0",
                            values: v.filtered.clone()
                        },
                        Series {
                            label: "geweigerd",
                            colour: "#c62828",
                            values: v.denied.clone()
                        },
                        Series {
                            label: "fout (niets verstrekt)",
                            colour: "#9e9e9e",
                            values: v.error.clone()
                        },
                    ],
                )
            );
            let _ = writeln!(o, "<h3>Gedeelde gegevens per rol</h3>");
            if x.fields.is_empty() {
                let _ = writeln!(o, "<p>Geen gegevens gedeeld.</p>");
            } else {
                let _ = writeln!(
                    o,
                    "<table><thead><tr><th>Rol</th><th>Gegeven</th><th>Soort</th><th class=\"num\">Keer gedeeld</th></tr></thead><tbody>"
                );
                for f in &x.fields {
                    let _ = writeln!(
                        o,
                        "<tr{}><td>{}</td><td>{} <code>{}</code></td><td>{}</td><td class=\"num\">{}</td></tr>",
                        if f.category != "normal" {
                            " class=\"bijzonder\""
                        } else {
                            ""
                        },
                        esc(&f.role_name),
                        esc(&f.label),
                        esc(&f.field),
                        esc(&f.category),
                        f.count
                    );
                }
                let _ = writeln!(o, "</tbody></table>");
            }
            let _ = writeln!(o, "<h3>Weigeringen</h3>");
            if x.denials.is_empty() {
                let _ = writeln!(o, "<p>Geen.</p>");
            } else {
                let _ = writeln!(
                    o,
                    "<table><thead><tr><th>Reden</th><th>Organisatie</th><th class=\"num\">Aantal</th></tr></thead><tbody>"
                );
                for d in &x.denials {
                    let _ = writeln!(
                        o,
                        "<tr><td><code>{}</code>: {}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                        esc(&d.reason),
                        esc(super::inzage::explain_reason(&d.reason)),
                        esc(&d.org),
                        d.count
                    );
                }
                let _ = writeln!(o, "</tbody></table>");
            }
            let _ = writeln!(o, "<h3>Opvallendheden</h3>");
            if x.anomalies.is_empty() {
                let _ = writeln!(o, "<p>Geen.</p>");
            } else {
                let _ = writeln!(o, "<ul>");
                for a in &x.anomalies {
                    let _ = writeln!(
                        o,
                        "<li><strong>{}</strong>: {}</li>",
                        esc(anomaly_label(a.kind)),
                        esc(&a.description)
                    );
                }
                let _ = writeln!(o, "</ul>");
            }
            let _ = writeln!(o, "</section>");
        }
        o
    }

    pub fn html(&self) -> String {
        html::page(
            &format!("Verantwoordingsrapportage {} tot {}", self.from, self.to),
            &self.html_body(),
        )
    }
}

fn anomaly_label(kind: &str) -> &'static str {
    match kind {
        "surge" => "Ongewoon veel leerlingen",
        "outside-office-hours" => "Buiten kantoortijd",
        "repeated-denials" => "Herhaalde weigeringen",
        "purpose-unused" => "Doel niet gebruikt",
        "rule-unused" => "Regels niet gebruikt",
        _ => "Opvallend",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_dutch_days_across_daylight_saving_switches() {
        let from = when::bound("2026-10-24", false).unwrap();
        let to = when::bound("2026-10-26", true).unwrap();
        let (b, monthly) = buckets(&from, &to);
        assert!(!monthly);
        assert_eq!(b, ["2026-10-24", "2026-10-25", "2026-10-26"]);
        let from = when::bound("2026-07-01", false).unwrap();
        let to = when::bound("2026-12-31", true).unwrap();
        let (b, monthly) = buckets(&from, &to);
        assert!(monthly);
        assert_eq!(b.first().map(String::as_str), Some("2026-07"));
        assert_eq!(b.last().map(String::as_str), Some("2026-12"));
        assert_eq!(b.len(), 6);
    }
}
