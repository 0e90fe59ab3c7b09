//! The FG's questions at a province's scale (issue 18): one SQLite trail of
//! `FG_RECORDS` request records (default 10,000,000) over the working hours
//! of 2026, with valid chains, a signed checkpoint for every 10-second
//! interval in which the chain grew (as the writer seals them), the
//! aggregates the writer keeps (written by the store's own batch insert),
//! the case and consent registers, and a policy reload each month. Then
//! every accountability question is answered through the library function
//! its command (and the dashboard page) calls, timed, with the peak RSS it
//! adds, and printed as one table.
//!
//! Records come from the example policies (`policies/`): every rule of
//! every overleg is a request template (organisation, role, grondslag,
//! purpose, bron, resource and the rule's fields; 10% refused, the rest
//! filtered with the bron's other fields withheld); pupils belong to one
//! overleg each and some are asked about far more often than others.
//!
//! Run: `cargo bench --bench fg`. `FG_RECORDS=1000000` for a quicker run;
//! `FG_DIR=/var/tmp/fg` keeps the store (and its keys) there and reuses it
//! on the next run with the same `FG_RECORDS` (generating 10 M records
//! takes minutes). `FG_PUPILS` (default 50,000). `FG_STORE=postgres` asks
//! the same questions of PostgreSQL (a database `fg_<records>` on the tests'
//! server, kept for a rerun like the SQLite file; its keys in
//! `FG_DIR/postgres`).
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    clippy::cast_possible_wrap,
    reason = "a benchmark reads top to bottom; shares of the year index by truncated floats"
)]

mod support;
// The integration tests' harness: the dashboard pages are timed through a
// real gateway's admin listener (mTLS on loopback) over the generated store.
#[path = "../tests/common/mod.rs"]
mod common;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use support::peak_rss_mib;

use poortwachter::audit::record::{GENESIS, format_rfc3339};
use poortwachter::audit::store::{Batch, WriteConnection};
use poortwachter::audit::verify::Anchor;
use poortwachter::audit::{
    AuditConfig, AuditRecord, Outcome, Pseudonymiser, Signer, Store, StoredRow,
};
use poortwachter::policy::model::Consent;
use poortwachter::policy::model::PolicySet;
use poortwachter::review::{changes, inzage, ontvangen, query, rapport, toestemming, when};

const INSTANCE: &str = "gw-1";
/// 2026-01-01T00:00:00Z.
const YEAR_START: i64 = 1_767_225_600;
/// Working hours, UTC (08:00–17:00 in winter, 09:00–18:00 in summer, Dutch time).
const OFFICE_FROM: i64 = 7 * 3_600;
const OFFICE_SECS: i64 = 9 * 3_600;
/// Rows per insert transaction.
const CHUNK: usize = 4_096;
/// The pupil whose inzage is timed.
const TARGET: &str = "L1001";
/// Working days between two discussions of one case.
const MEETING_EVERY: usize = 20;

/// One kind of request: a rule of an overleg, as its recipient asks it.
struct Template {
    overleg: String,
    org: String,
    role: String,
    grondslag: String,
    purpose: String,
    bron: String,
    resource: String,
    rule: String,
    shared: Vec<String>,
    withheld: Vec<String>,
    consent: bool,
}

fn templates(set: &PolicySet) -> Vec<Template> {
    let mut out = Vec::new();
    for o in set.overleggen.values() {
        for r in o.rules.iter().filter(|r| !r.emergency) {
            let (Some(role), Some(bron)) = (
                o.roles.iter().find(|x| x.id == r.to),
                set.bronnen.get(&r.bron),
            ) else {
                continue;
            };
            let path = |i: &usize| bron.catalogue[*i].path.as_str().to_owned();
            let shared: Vec<String> = r.fields.iter().map(path).collect();
            let withheld = (0..bron.catalogue.len())
                .filter(|i| !r.fields.contains(i))
                .take(4)
                .map(|i| path(&i))
                .collect();
            out.push(Template {
                overleg: o.id.clone(),
                org: role.organisations[0].clone(),
                role: role.id.clone(),
                grondslag: role.grondslag.to_string(),
                purpose: r.purpose.clone(),
                bron: bron.id.clone(),
                resource: bron.resources[0].template.as_str().to_owned(),
                rule: r.id.clone(),
                shared,
                withheld,
                consent: r.consent != Consent::None,
            });
        }
    }
    out
}

/// splitmix64: a fixed, fast sequence, so every run generates the same trail.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The weekdays of 2026, as days since 1 January (a Thursday).
fn weekdays() -> Vec<i64> {
    (0..365).filter(|d| (3 + d) % 7 < 5).collect()
}

fn stored_time(unix_micros: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_micros) * 1_000).unwrap();
    format_rfc3339(t)
}

/// The chain as it grows, with its checkpoints.
struct Chain {
    seq: i64,
    hash: String,
    ck_no: i64,
    ck_seq: i64,
    interval: i64,
    rows: Vec<StoredRow>,
    checkpoints: Vec<poortwachter::audit::checkpoint::Checkpoint>,
    signer: Signer,
}

impl Chain {
    fn push(&mut self, mut rec: AuditRecord, unix_micros: i64) {
        let interval = unix_micros / 10_000_000;
        if interval > self.interval && self.seq > self.ck_seq {
            self.seal((self.interval + 1) * 10_000_000);
        }
        self.interval = interval;
        rec.time = stored_time(unix_micros);
        self.append(rec);
    }

    fn append(&mut self, rec: AuditRecord) {
        self.seq += 1;
        let row = StoredRow::from_owned(rec, self.seq, &self.hash);
        self.hash.clone_from(&row.hash);
        self.rows.push(row);
    }

    /// A checkpoint at the end of the interval, and its chain record, as
    /// the writer seals them.
    fn seal(&mut self, at_micros: i64) {
        let time = stored_time(at_micros);
        let ck = self
            .signer
            .sign(INSTANCE, self.ck_no + 1, self.seq, &self.hash, &time);
        self.ck_no = ck.ck_no;
        self.ck_seq = ck.seq;
        let mut rec = ck.chain_record(&format!("ck-{}", ck.ck_no), "checkpoint");
        rec.time = time;
        self.checkpoints.push(ck);
        self.append(rec);
    }

    fn anchor(&self) -> Anchor {
        Anchor {
            seq: self.seq,
            hash: self.hash.clone(),
            ck_no: self.ck_no,
            ck_seq: self.ck_seq,
        }
    }

    async fn flush(&mut self, to: &mut Writer<'_>) {
        let rows = std::mem::take(&mut self.rows);
        let checkpoints = std::mem::take(&mut self.checkpoints);
        match to {
            Writer::Sqlite(conn) => conn
                .insert(Batch {
                    rows: rows.into_iter().map(std::sync::Arc::new).collect(),
                    sides: Vec::new(),
                    checkpoints,
                })
                .await
                .unwrap(),
            Writer::Postgres(store, conn) => {
                // The writer's own statement for the records and their
                // aggregates; the chunk's checkpoints after them.
                store.insert_batch_on(conn, &rows, &[], None).await.unwrap();
                for c in &checkpoints {
                    poortwachter::audit::store::insert_checkpoint(conn, c)
                        .await
                        .unwrap();
                }
            }
        }
    }
}

/// How the generator writes: SQLite through the writer's connection,
/// PostgreSQL through its batch statement on a pooled connection.
enum Writer<'a> {
    Sqlite(WriteConnection),
    Postgres(&'a Store, sqlx::pool::PoolConnection<sqlx::Any>),
}

/// What the generator decided, kept beside the store for a rerun.
#[derive(serde::Serialize, serde::Deserialize)]
struct Generated {
    records: i64,
    /// The chain at the start of the last working day (the FG's witnessed
    /// state of the day before).
    before_last_day: Anchor,
    last_day_records: i64,
    org: String,
    overleg: String,
    consent_overleg: String,
}

struct Plan<'a> {
    set: &'a PolicySet,
    templates: Vec<Template>,
    /// Pupils' pseudonyms, by number; pupil p belongs to overleg p % n.
    pupils: Vec<String>,
    overleggen: Vec<String>,
    total: i64,
}

impl Plan<'_> {
    /// The `i`-th request, on working day `wd` (0-based): a template, and a
    /// pupil of its overleg whose case is discussed that day. A case comes
    /// up every fourth week (pupil k of an overleg on the working days where
    /// `(wd + overleg) % 20 == k % 20`), and a fifth of each day's cases
    /// draw half of its requests.
    fn request(&self, rng: &mut Rng, i: i64, wd: usize) -> AuditRecord {
        let t = &self.templates[rng.below(self.templates.len() as u64) as usize];
        let o = self
            .overleggen
            .iter()
            .position(|x| *x == t.overleg)
            .unwrap();
        let n = self.overleggen.len();
        let pool = (self.pupils.len() - o).div_ceil(n);
        let today = (wd + o) % MEETING_EVERY;
        let cases = ((pool - today).div_ceil(MEETING_EVERY)) as u64;
        let j = if rng.below(2) == 0 {
            rng.below(cases.div_ceil(5))
        } else {
            rng.below(cases)
        };
        let p = o + n * (today + MEETING_EVERY * j as usize);
        let mut r = AuditRecord::new(INSTANCE, &format!("req-{i}"), &format!("{i:032x}"));
        r.org = Some(t.org.clone());
        r.cert_fingerprint = Some(format!("{:064x}", t.org.len()));
        r.role = Some(t.role.clone());
        r.grondslag = Some(t.grondslag.clone());
        r.overleg = Some(t.overleg.clone());
        r.purpose = Some(t.purpose.clone());
        r.bron = Some(t.bron.clone());
        r.resource = Some(t.resource.clone());
        r.pupil = Some(self.pupils[p].clone());
        r.rules = vec![t.rule.clone()];
        r.policy_version = format!("{:064x}", 1 + i * 12 / self.total);
        r.duration_us = 700 + rng.below(900);
        r.upstream_status = Some(200);
        r.status = 200;
        let consents = if t.consent {
            vec![format!("c-{p}")]
        } else {
            Vec::new()
        };
        r.detail = serde_json::json!({"aanmelding": format!("reg-{p}"), "toestemmingen": consents})
            .to_string();
        if rng.below(10) == 0 {
            r.outcome = Outcome::Denied;
            r.reason = "no-rule".into();
            r.rules.clear();
            r.status = 403;
            r.upstream_status = None;
            r.detail = "{}".into();
        } else {
            r.outcome = Outcome::Filtered;
            r.reason = "allowed".into();
            r.fields_shared.clone_from(&t.shared);
            r.fields_withheld.clone_from(&t.withheld);
        }
        r
    }
}

fn reload(i: i64, month: i64, plan: &Plan<'_>) -> AuditRecord {
    let mut r = AuditRecord::new(INSTANCE, &format!("reload-{month}"), "reload");
    r.kind = "reload";
    r.outcome = Outcome::Event;
    r.reason = "policy-reloaded".into();
    r.policy_version = format!("{:064x}", 1 + month);
    r.detail = serde_json::json!({
        "trigger": "sighup",
        "old_version": format!("{:064x}", month),
        "new_version": format!("{:064x}", 1 + month),
        "delta": {"fields_gained": 1 + i % 3, "fields_lost_or_changed": i % 2,
                  "overleggen": [plan.overleggen[month as usize % plan.overleggen.len()]]},
        "approvals": [{"approver": "fg", "at": "2026-01-01T00:00:00.000000Z", "key_id": "fg-1"}],
    })
    .to_string();
    r
}

async fn registers(store: &Store, plan: &Plan<'_>) {
    let mut tx = store.pool().begin().await.unwrap();
    let consent: Vec<&str> = plan
        .templates
        .iter()
        .filter(|t| t.consent)
        .map(|t| t.overleg.as_str())
        .collect();
    for (p, pupil) in plan.pupils.iter().enumerate() {
        let overleg = &plan.overleggen[p % plan.overleggen.len()];
        sqlx::query("INSERT INTO case_registrations (id, overleg, subject, reference, begins_at, ends_at, registered_by, registered_role, registered_at, informed_at, informed_how) VALUES ($1, $2, $3, $4, '2025-09-01T00:00:00.000000Z', NULL, 'bench', 'bench', '2025-09-01T00:00:00.000000Z', '2025-09-02T00:00:00.000000Z', 'brief')")
            .bind(format!("reg-{p}"))
            .bind(overleg)
            .bind(pupil)
            .bind(format!("ref-{p}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        if consent.contains(&overleg.as_str()) {
            let purposes: Vec<&str> = plan.set.overleggen[overleg]
                .purposes
                .iter()
                .map(|x| x.id.as_str())
                .collect();
            sqlx::query("INSERT INTO consents (id, overleg, subject, given_by, purposes, valid_from, valid_until, form_reference, recorded_by, recorded_role, recorded_at) VALUES ($1, $2, $3, 'parents', $4, '2025-09-01T00:00:00.000000Z', NULL, 'form', 'bench', 'bench', '2025-09-01T00:00:00.000000Z')")
                .bind(format!("c-{p}"))
                .bind(overleg)
                .bind(pupil)
                .bind(serde_json::to_string(&purposes).unwrap())
                .execute(&mut *tx)
                .await
                .unwrap();
        }
    }
    tx.commit().await.unwrap();
}

async fn generate(store: &Store, plan: &Plan<'_>, signer: Signer, total: i64) -> Generated {
    let mut conn = if on_postgres() {
        Writer::Postgres(store, store.pool().acquire().await.unwrap())
    } else {
        Writer::Sqlite(
            store
                .write_connection(std::time::Duration::from_mins(1), 64)
                .await
                .unwrap(),
        )
    };
    registers(store, plan).await;
    let days = weekdays();
    let office_total = days.len() as i64 * OFFICE_SECS * 1_000_000;
    let mut chain = Chain {
        seq: 0,
        hash: GENESIS.to_string(),
        ck_no: 0,
        ck_seq: 0,
        interval: 0,
        rows: Vec::with_capacity(CHUNK + 8),
        checkpoints: Vec::new(),
        signer,
    };
    let mut rng = Rng(18);
    let (mut before_last_day, mut last_day_from) = (None, 0);
    let mut month = 0;
    let t = Instant::now();
    for i in 0..total {
        // The i-th record's moment among the year's working microseconds.
        let office = (i128::from(i) * i128::from(office_total) / i128::from(total)) as i64;
        let wd = (office / (OFFICE_SECS * 1_000_000)) as usize;
        let day = days[wd];
        let micros = YEAR_START * 1_000_000
            + day * 86_400_000_000
            + OFFICE_FROM * 1_000_000
            + office % (OFFICE_SECS * 1_000_000);
        if day == *days.last().unwrap() && before_last_day.is_none() {
            chain.seal((chain.interval + 1) * 10_000_000);
            before_last_day = Some(chain.anchor());
            last_day_from = i;
        }
        // A policy reload at the first request of each month.
        let m = (day * 12 / 365).min(11);
        if m >= month {
            month = m + 1;
            chain.push(reload(i, m, plan), micros - 1);
        }
        let rec = plan.request(&mut rng, i, wd);
        chain.push(rec, micros);
        if chain.rows.len() >= CHUNK {
            chain.flush(&mut conn).await;
        }
        if i > 0 && i % 1_000_000 == 0 {
            println!(
                "  generated {i} records, {} checkpoints, {:.0?}",
                chain.ck_no,
                t.elapsed()
            );
        }
    }
    chain.seal((chain.interval + 1) * 10_000_000);
    chain.flush(&mut conn).await;
    drop(conn);
    let settle = if on_postgres() {
        "VACUUM ANALYZE"
    } else {
        "PRAGMA wal_checkpoint(TRUNCATE)"
    };
    sqlx::query(settle).execute(store.pool()).await.unwrap();
    println!(
        "generated {total} records and {} checkpoints in {:.0?} ({:.0} records/s)",
        chain.ck_no,
        t.elapsed(),
        total as f64 / t.elapsed().as_secs_f64()
    );
    let first = &plan.templates[0];
    Generated {
        records: total,
        before_last_day: before_last_day.unwrap(),
        last_day_records: total - last_day_from,
        org: first.org.clone(),
        overleg: first.overleg.clone(),
        consent_overleg: plan
            .templates
            .iter()
            .find(|t| t.consent)
            .map_or_else(|| first.overleg.clone(), |t| t.overleg.clone()),
    }
}

/// One line of the table.
struct Line {
    question: &'static str,
    command: &'static str,
    secs: f64,
    rss_mib: f64,
    answer: String,
}

/// Runs `f`, with the peak RSS it adds (VmHWM reset first).
async fn timed<T>(f: impl std::future::Future<Output = T>) -> (T, f64, f64) {
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let base = peak_rss_mib();
    let t = Instant::now();
    let out = f.await;
    (out, t.elapsed().as_secs_f64(), peak_rss_mib() - base)
}

async fn questions(
    dir: &Path,
    store: &Store,
    set: &PolicySet,
    cfg: &AuditConfig,
    g: &Generated,
) -> Vec<Line> {
    let pseudo = Pseudonymiser::from_file(&dir.join("p.key")).unwrap();
    let year = (
        when::bound("2026-01-01", false).unwrap(),
        when::bound("2026-12-31", true).unwrap(),
    );
    let quarter = (
        when::bound("2026-10-01", false).unwrap(),
        when::bound("2026-12-31", true).unwrap(),
    );
    // `FG_ONLY=rapport` (any part of a question's name) answers only those.
    let only = std::env::var("FG_ONLY").ok();
    let want = |q: &str| only.as_deref().is_none_or(|o| q.contains(o));
    let mut lines = Vec::new();
    let mut line = |question, command, (answer, secs, rss_mib): (String, f64, f64)| {
        println!("  {question}: {secs:.2} s, +{rss_mib:.0} MiB: {answer}");
        lines.push(Line {
            question,
            command,
            secs,
            rss_mib,
            answer,
        });
    };

    if want("(a) everything shared about one pupil") {
        line(
            "(a) everything shared about one pupil",
            "audit inzage",
            timed(async {
                let r = inzage::build(
                    store,
                    set,
                    &pseudo,
                    TARGET,
                    inzage::Options {
                        include_denied: true,
                    },
                )
                .await
                .unwrap();
                let html = r.html();
                format!(
                    "{} disclosures, {} refused, {} KiB HTML",
                    r.disclosures.len(),
                    r.denied.len(),
                    html.len() / 1024
                )
            })
            .await,
        );
    }
    if want("(b) what an organisation received in an overleg, a quarter") {
        line(
            "(b) what an organisation received in an overleg, a quarter",
            "audit ontvangen",
            timed(async {
                let r = ontvangen::build(
                    store,
                    set,
                    &g.org,
                    &g.overleg,
                    quarter.0.clone(),
                    quarter.1.clone(),
                )
                .await
                .unwrap();
                format!("{} lines", r.json().matches("\"path\"").count())
            })
            .await,
        );
    }
    if want("(c) policy changes of the year, with approvals") {
        line(
            "(c) policy changes of the year, with approvals",
            "audit wijzigingen",
            timed(async {
                let filter = query::Filter {
                    from: Some(year.0.clone()),
                    to: Some(year.1.clone()),
                    ..Default::default()
                };
                let (c, read) = changes::list(store, &filter).await.unwrap();
                format!("{} changes, {read} records read", c.len())
            })
            .await,
        );
    }
    if want("(d) full verification") {
        line(
            "(d) full verification",
            "audit verify",
            timed(async {
                let t0 = Instant::now();
                let r = poortwachter::audit::admin::verify(store, cfg, None, None)
                    .await
                    .unwrap();
                assert!(r.ok(), "{r}");
                // Every chain: the trail's, and the dashboard runs' own.
                let records: usize = r.chains.iter().map(|c| c.records).sum();
                let checkpoints: usize = r.chains.iter().map(|c| c.checkpoints).sum();
                format!(
                    "{records} records ({checkpoints} checkpoints, {} chains), 0 findings, {:.0}k records/s",
                    r.chains.len(),
                    records as f64 / t0.elapsed().as_secs_f64() / 1000.0
                )
            })
            .await,
        );
    }
    if want("(d) incremental verification of the last day") {
        line(
            "(d) incremental verification of the last day",
            "audit verify --state",
            timed(async {
                let anchors = BTreeMap::from([(INSTANCE.to_owned(), g.before_last_day.clone())]);
                let r = poortwachter::audit::admin::verify_from(store, cfg, None, &anchors)
                    .await
                    .unwrap();
                assert!(r.ok(), "{r}");
                format!(
                    "{} requests appended that day, 0 findings",
                    g.last_day_records
                )
            })
            .await,
        );
    }
    if want("(e) disclosures relying on consent, checked") {
        line(
            "(e) disclosures relying on consent, checked",
            "audit toestemming",
            timed(async {
                let r = toestemming::build(
                    store,
                    &g.consent_overleg,
                    Some(year.0.clone()),
                    year.1.clone(),
                )
                .await
                .unwrap();
                format!("{} disclosures, {} findings", r.disclosures, r.findings)
            })
            .await,
        );
    }
    for (label, period) in [
        ("DPIA report, a quarter", &quarter),
        ("DPIA report, the year", &year),
    ] {
        if !want(label) {
            continue;
        }
        line(
            label,
            "audit rapport",
            timed(async {
                let r = rapport::build(
                    store,
                    set,
                    &period.0,
                    &period.1,
                    rapport::Thresholds::default(),
                )
                .await
                .unwrap();
                format!(
                    "{} requests, {} aggregate rows read",
                    r.total_requests, r.records_read
                )
            })
            .await,
        );
    }
    lines
}

/// Every dashboard page over HTTP: a gateway (its own chain, the trail's
/// keys) started on the generated store with its admin listener, the FG's
/// client timing each page (the page limit is the dashboard's default,
/// 120 s). The verification page's first view runs a full verification;
/// an incremental one is then started and polled until it is done.
async fn dashboard(dir: &Path, url: &str, g: &Generated) -> Vec<Line> {
    let mut gw = common::TestGateway::start_with(common::Options {
        store_url: Some(url.to_owned()),
        signing_key_from: Some(dir.join("s.key")),
        pseudonym_key_from: Some(dir.join("p.key")),
        seed_cases: false,
        admin: true,
        instance: "fg-dashboard".into(),
        ..common::Options::default()
    })
    .await;
    let mut fg = gw.admin_client("fg-convenant");
    // The dashboard's own page limit (120 s) decides, not the client.
    fg.timeout = std::time::Duration::from_mins(3);
    let form = ("content-type", "application/x-www-form-urlencoded");
    let ontvangen = format!(
        "/ontvangen?org={}&overleg={}&van=2026-10-01&tot=2026-12-31",
        g.org, g.overleg
    );
    let pages: [(&'static str, http::Method, String, Option<&str>); 10] = [
        ("dashboard: start", http::Method::GET, "/".into(), None),
        (
            "dashboard: zoeken, one pupil",
            http::Method::POST,
            "/zoeken".into(),
            Some("leerling=L1001"),
        ),
        (
            "dashboard: inzage, one pupil",
            http::Method::POST,
            "/inzage".into(),
            Some("leerling=L1001&weigeringen=ja"),
        ),
        (
            "dashboard: ontvangen, a quarter",
            http::Method::GET,
            ontvangen,
            None,
        ),
        (
            "dashboard: rapport, the year",
            http::Method::GET,
            "/rapport?van=2026-01-01&tot=2026-12-31".into(),
            None,
        ),
        (
            "dashboard: wijzigingen",
            http::Method::GET,
            "/wijzigingen".into(),
            None,
        ),
        (
            "dashboard: kennisgevingen",
            http::Method::GET,
            "/kennisgevingen".into(),
            None,
        ),
        ("dashboard: spoed", http::Method::GET, "/spoed".into(), None),
        (
            "dashboard: verificatie, first view (full)",
            http::Method::GET,
            "/verificatie".into(),
            None,
        ),
        (
            "dashboard: verificatie, start incremental",
            http::Method::POST,
            "/verificatie".into(),
            Some("soort=incrementeel"),
        ),
    ];
    let mut lines = Vec::new();
    for (question, method, path, body) in pages {
        let headers: &[(&str, &str)] = if body.is_some() { &[form] } else { &[] };
        let body = body.map(|b| b.as_bytes().to_vec());
        let (r, secs, rss_mib) = timed(fg.request(method, &path, headers, body)).await;
        let r = r.unwrap();
        let page = String::from_utf8_lossy(&r.body);
        let verdict = if page.contains("p class=\"ok\" id=\"status\"") {
            ", chain in order"
        } else if page.contains("NIET in orde") {
            ", chain NOT in order"
        } else {
            ""
        };
        let kib = r.body.len() / 1024;
        let answer = format!("HTTP {}, {kib} KiB{verdict}", r.status.as_u16());
        println!("  {question}: {secs:.2} s, +{rss_mib:.0} MiB: {answer}");
        lines.push(Line {
            question,
            command: "admin listener",
            secs,
            rss_mib,
            answer,
        });
    }
    // The incremental verification runs in its own task: wait for it.
    let t = Instant::now();
    loop {
        let r = fg
            .request(http::Method::GET, "/verificatie", &[], None)
            .await
            .unwrap();
        let page = String::from_utf8_lossy(&r.body).into_owned();
        if !page.contains("id=\"bezig\"") {
            let answer = format!(
                "HTTP {}, done; listener answered while it ran",
                r.status.as_u16()
            );
            lines.push(Line {
                question: "dashboard: incremental verification, until done",
                command: "admin listener",
                secs: t.elapsed().as_secs_f64(),
                rss_mib: 0.0,
                answer,
            });
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    gw.stop().await;
    lines
}

/// `FG_STORE=postgres`: the trail is generated into, and the questions
/// asked of, PostgreSQL.
fn on_postgres() -> bool {
    std::env::var("FG_STORE").is_ok_and(|s| s == "postgres")
}

/// Where the trail is kept: a SQLite file `fg.db` in `dir` (the default), or
/// with `FG_STORE=postgres` a database `fg_<records>` on the tests'
/// PostgreSQL server (`POORTWACHTER_TEST_PG`), its keys in `dir/postgres`.
struct Place {
    dir: PathBuf,
    url: String,
    postgres: Option<String>,
}

impl Place {
    fn new(dir: &Path, total: i64) -> Self {
        if on_postgres() {
            let admin = common::pg_admin_url();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
            let name = format!("fg_{total}");
            Self {
                dir: dir.join("postgres"),
                url: format!("{base}/{name}"),
                postgres: Some(name),
            }
        } else {
            Self {
                dir: dir.to_owned(),
                url: format!("sqlite://{}/fg.db", dir.display()),
                postgres: None,
            }
        }
    }

    /// Removes the trail and its keys, for a fresh generation.
    async fn clear(&self) {
        for f in ["fg.db", "fg.db-wal", "fg.db-shm", "p.key", "s.key"] {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
        if let Some(name) = &self.postgres {
            use sqlx::{Connection, Executor};
            let mut admin = sqlx::AnyConnection::connect(&common::pg_admin_url())
                .await
                .unwrap();
            for sql in [
                format!("DROP DATABASE IF EXISTS {name}"),
                format!("CREATE DATABASE {name}"),
            ] {
                admin.execute(sqlx::AssertSqlSafe(sql)).await.unwrap();
            }
        }
    }

    async fn size_bytes(&self, store: &Store) -> u64 {
        if self.postgres.is_some() {
            let n: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                .fetch_one(store.pool())
                .await
                .unwrap();
            n as u64
        } else {
            std::fs::metadata(self.dir.join("fg.db")).map_or(0, |m| m.len())
        }
    }
}

#[tokio::main]
async fn main() {
    let total: i64 = std::env::var("FG_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let pupils: usize = std::env::var("FG_PUPILS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let temp = tempfile::tempdir().unwrap();
    let base: PathBuf =
        std::env::var("FG_DIR").map_or_else(|_| temp.path().to_owned(), PathBuf::from);
    sqlx::any::install_default_drivers();
    let place = Place::new(&base, total);
    let (dir, url) = (&place.dir, &place.url);
    std::fs::create_dir_all(dir).unwrap();
    let set =
        poortwachter::policy::load_dir(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/policies")))
            .unwrap();
    let cfg = AuditConfig {
        default_retention_days: 3_650,
        ..support::audit_config(url, dir)
    };
    let saved = dir.join("generated.json");
    let reuse = std::fs::read_to_string(&saved)
        .ok()
        .and_then(|s| serde_json::from_str::<Generated>(&s).ok())
        .filter(|g| g.records == total);
    let store;
    let g = if let Some(g) = reuse {
        println!("reusing the {total}-record trail at {url}");
        store = Store::connect(url).await.unwrap();
        g
    } else {
        let _ = std::fs::remove_file(&saved);
        place.clear().await;
        Pseudonymiser::generate_file(&cfg.pseudonym_key).unwrap();
        Signer::generate_file(&cfg.signing_key).unwrap();
        let pseudo = Pseudonymiser::from_file(&cfg.pseudonym_key).unwrap();
        let plan = Plan {
            set: &set,
            templates: templates(&set),
            pupils: (0..pupils)
                .map(|p| pseudo.pseudonymise(&format!("L{p}")))
                .collect(),
            overleggen: set.overleggen.keys().cloned().collect(),
            total,
        };
        store = Store::connect(url).await.unwrap();
        let g = generate(
            &store,
            &plan,
            Signer::from_file(&cfg.signing_key).unwrap(),
            total,
        )
        .await;
        std::fs::write(&saved, serde_json::to_string(&g).unwrap()).unwrap();
        g
    };
    let size = place.size_bytes(&store).await;
    println!(
        "trail: {total} requests, store {:.1} GiB; questions:",
        size as f64 / f64::from(1u32 << 30)
    );
    let mut lines = questions(dir, &store, &set, &cfg, &g).await;
    if std::env::var("FG_ONLY").map_or(true, |o| o.contains("dashboard")) {
        lines.extend(dashboard(dir, url, &g).await);
    }
    println!();
    println!("| question | command | {total} records | peak RSS added | answer |");
    println!("|---|---|---:|---:|---|");
    for l in &lines {
        println!(
            "| {} | `{}` | {:.2} s | +{:.0} MiB | {} |",
            l.question, l.command, l.secs, l.rss_mib, l.answer
        );
    }
}
