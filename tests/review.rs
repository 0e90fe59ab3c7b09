//! Privacy-officer review (issue 6): `audit query` filters on both stores,
//! exports, the inzage report (complete for one pupil, nothing about anyone
//! else), the DPIA report and its anomaly rules, and that every access to
//! the trail is itself recorded.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use common::*;
use poortwachter::audit::{AuditRecord, Outcome, Store, StoredRow};
use poortwachter::config::Config;
use poortwachter::review::session::Session;
use poortwachter::review::{self, inzage, query::FilterInput, rapport};

fn verzuim(pupil: &str) -> String {
    format!("/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/{pupil}/verzuim")
}
fn jgz(pupil: &str) -> String {
    format!("/v1/aoj-vo-noorderlicht/jgz-dossier/jeugdigen/{pupil}/advies")
}

/// Traffic for four pupils: per pupil `n` allowed (Leerplicht), one
/// filtered (WIJ) and one denied (Leerplicht asking the JGZ dossier).
/// Returns the stopped gateway's temp dir (keeps the files), config path
/// and the pseudonyms by pupil.
async fn traffic(
    store: StoreKind,
) -> (tempfile::TempDir, std::path::PathBuf, Vec<(String, String)>) {
    let mut gw = TestGateway::start_with(Options {
        store,
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let wij = gw.client("wij-groningen");
    let pupils = ["L1001", "L1002", "L1003", "L1004"];
    for (i, p) in pupils.iter().enumerate() {
        for _ in 0..=i {
            assert_eq!(lp.get(&verzuim(p), "aanpak-verzuim").await.status, 200);
        }
        assert_eq!(
            wij.get(&verzuim(p), "afstemming-ondersteuning")
                .await
                .status,
            200
        );
        assert_eq!(lp.get(&jgz(p), "aanpak-verzuim").await.status, 403);
    }
    let pseudonyms = pupils
        .iter()
        .map(|p| (p.to_string(), gw.pseudonym(p)))
        .collect();
    let config = gw.config_path.clone();
    let (tmp, _) = gw.stop().await;
    (tmp, config, pseudonyms)
}

async fn query_filters(store: StoreKind) {
    let (_tmp, config, pseudonyms) = traffic(store).await;
    let cfg = Config::load(&config).unwrap();
    let session = Session::open(&cfg).await.unwrap();
    let run = |f: FilterInput| {
        let session = &session;
        async move {
            let filter = f.parse(&session.pseudo).unwrap();
            review::query::run(&session.store, &filter).await.unwrap()
        }
    };
    // 4 pupils: 1+2+3+4 allowed, 4 filtered, 4 denied.
    assert_eq!(run(FilterInput::default()).await.len(), 18);
    let l3 = run(FilterInput {
        pupil: Some("L1003".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(l3.len(), 5);
    assert!(
        l3.iter()
            .all(|r| r.pupil.as_deref() == Some(pseudonyms[2].1.as_str()))
    );
    let denied = run(FilterInput {
        decision: Some("denied".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(denied.len(), 4);
    assert!(denied.iter().all(|r| r.reason == "no-rule"));
    let wij = run(FilterInput {
        org: Some("wij-groningen".into()),
        role: Some("jeugdwet".into()),
        purpose: Some("afstemming-ondersteuning".into()),
        overleg: Some("aoj-vo-noorderlicht".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(wij.len(), 4);
    assert!(wij.iter().all(|r| r.outcome == "filtered"));
    // A field only Leerplicht receives: the WIJ records do not match.
    let field = run(FilterInput {
        field: Some("verzuim.ongeoorloofd_uren".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(field.len(), 10);
    assert!(
        field
            .iter()
            .all(|r| r.org.as_deref() == Some("gemeente-groningen"))
    );
    let limited = run(FilterInput {
        limit: Some(3),
        ..Default::default()
    })
    .await;
    assert_eq!(limited.len(), 3);
    let future = run(FilterInput {
        from: Some("2999-01-01".into()),
        ..Default::default()
    })
    .await;
    assert!(future.is_empty());
    let all_until_far = run(FilterInput {
        to: Some("2999-12-31".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(all_until_far.len(), 18);

    // Through the session (as the CLI runs it): output and the access record.
    let table = session
        .query(
            &FilterInput {
                pupil: Some("L1002".into()),
                ..Default::default()
            },
            review::session::QueryFormat::Table,
        )
        .await
        .unwrap();
    assert!(table.contains("4 record(s)"), "{table}");
    assert!(!table.contains("L1002"));
    let csv = session
        .export(&FilterInput::default(), review::export::Format::Csv)
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 19, "{csv}");
    let logboek = session
        .export(&FilterInput::default(), review::export::Format::Logboek)
        .await
        .unwrap();
    let lines: Vec<serde_json::Value> = logboek
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 18);
    for l in &lines {
        assert_eq!(l["trace_id"].as_str().unwrap().len(), 32);
        assert_eq!(l["span_id"].as_str().unwrap().len(), 16);
        let subject = l["attributes"]["dpl.core.data_subject_id"]
            .as_str()
            .unwrap();
        assert!(pseudonyms.iter().any(|(_, p)| p == subject));
        assert!(
            l["attributes"]["dpl.core.processing_activity_id"]
                .as_str()
                .unwrap()
                .starts_with("aoj-vo-noorderlicht/")
        );
    }
    // Everything, streamed: the earlier accesses are in it, this export's
    // own access record is not (the export stops where it started), and
    // that record counts exactly the lines written.
    let everything = session
        .export(
            &FilterInput {
                kind: Some("all".into()),
                ..Default::default()
            },
            review::export::Format::JsonLines,
        )
        .await
        .unwrap();
    let kinds: Vec<String> = everything
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "access").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| *k == "request").count(), 18);
    session.close().await;

    // Every access is recorded on the admin chain, without the clear pupil id.
    let store_rows = Store::connect(&cfg.audit.store)
        .await
        .unwrap()
        .all_rows()
        .await
        .unwrap();
    let access: Vec<&StoredRow> = store_rows.iter().filter(|r| r.kind == "access").collect();
    assert_eq!(
        access.len(),
        4,
        "query, export csv, export logboek, export everything"
    );
    assert!(
        access[3]
            .detail
            .contains(&format!("\"records\":{}", kinds.len())),
        "{}",
        access[3].detail
    );
    assert!(access.iter().all(|r| r.instance == "test-1/admin"));
    assert_eq!(access[0].reason, "query");
    assert_eq!(access[0].pupil.as_deref(), Some(pseudonyms[1].1.as_str()));
    assert!(
        access[0].detail.contains("\"records\":4"),
        "{}",
        access[0].detail
    );
    assert!(store_rows.iter().all(|r| !r.detail.contains("L100")));
    // The pseudonym is in `subject` (erased by a purge), never in `detail` (kept).
    assert!(
        access.iter().all(|r| !r.detail.contains("k1:")),
        "{}",
        access[0].detail
    );
    assert!(access[0].detail.contains("\"pupil\":true"));
}

#[tokio::test]
async fn sqlite_query_filters_exports_and_records_access() {
    query_filters(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_query_filters_exports_and_records_access() {
    query_filters(StoreKind::Postgres).await;
}

#[tokio::test]
async fn inzage_is_complete_for_the_pupil_and_about_nobody_else() {
    let (_tmp, config, pseudonyms) = traffic(StoreKind::Sqlite).await;
    let cfg = Config::load(&config).unwrap();
    let session = Session::open(&cfg).await.unwrap();
    // The first pupil's parents gave consent in the expertteam PO and later
    // withdrew it (a register fixture): only that pupil's report shows it.
    sqlx::query("INSERT INTO consents (id, overleg, subject, given_by, purposes, valid_from, valid_until, form_reference, recorded_by, recorded_role, recorded_at, withdrawn_at, withdrawn_by) VALUES ('c-1', 'expertteam-po', $1, 'parents', '[\"passende-plek\"]', '2026-01-01T00:00:00.000000Z', NULL, 'TF-1', 'po-de-wadden', 'school', '2026-01-01T00:00:00.000000Z', '2026-02-01T00:00:00.000000Z', 'po-de-wadden')")
        .bind(&pseudonyms[0].1)
        .execute(session.store.pool())
        .await
        .unwrap();
    let all = session.store.all_rows().await.unwrap();
    for (i, (pupil, pseudonym)) in pseudonyms.iter().enumerate() {
        let report = inzage::build(
            &session.store,
            &session.set,
            &session.pseudo,
            pupil,
            inzage::Options {
                include_denied: true,
            },
        )
        .await
        .unwrap();
        // Complete: every allowed/filtered record of this pupil, and only those.
        let mine: Vec<&StoredRow> = all
            .iter()
            .filter(|r| r.pupil.as_deref() == Some(pseudonym.as_str()))
            .collect();
        let shared: Vec<String> = mine
            .iter()
            .filter(|r| r.outcome == "allowed" || r.outcome == "filtered")
            .map(|r| format!("{}#{}", r.instance, r.seq))
            .collect();
        let got: Vec<String> = report
            .disclosures
            .iter()
            .map(|d| d.record.clone())
            .collect();
        assert_eq!(got, shared, "{pupil}");
        assert_eq!(report.disclosures.len(), i + 2);
        assert_eq!(report.denied.len(), 1);
        let lp = report
            .disclosures
            .iter()
            .find(|d| d.recipient_id == "gemeente-groningen")
            .unwrap();
        assert_eq!(
            lp.recipient_name,
            "Gemeente Groningen, Leerplicht/RMC (demo)"
        );
        assert_eq!(lp.provider_id, "vo-noorderlicht");
        assert!(lp.purpose_text.starts_with("Vroegtijdig signaleren"));
        assert!(lp.grondslag.contains("Leerplichtwet"), "{}", lp.grondslag);
        assert!(
            lp.fields
                .iter()
                .any(|f| f.label == "Ongeoorloofd verzuim dit schooljaar (uren)")
        );
        let html = report.html();
        let json = report.json();
        assert!(html.contains("WIJ Groningen (demo)"));
        assert!(html.contains("geweigerd"));
        assert!(html.contains("Aanmeldingen, toestemmingen, bezwaren en beperkingen"));
        // Consent history: complete for this pupil, nobody else's.
        let changes: Vec<&str> = report
            .consent
            .entries
            .iter()
            .map(|c| c.change.as_str())
            .filter(|c| c.starts_with("toestemming"))
            .collect();
        if i == 0 {
            assert_eq!(changes, ["toestemming gegeven", "toestemming ingetrokken"]);
            assert!(html.contains("Expertteam onderwijs-zorg SWV PO Groningen"));
            assert!(html.contains("ouders"));
        } else {
            assert!(changes.is_empty(), "{pupil}: {changes:?}");
        }
        // Registrations (the fixture registers each pupil in every overleg).
        assert_eq!(
            report
                .consent
                .entries
                .iter()
                .filter(|c| c.change == "aangemeld in het overleg")
                .count(),
            session.set.overleggen.len()
        );
        assert!(!html.contains("<script"));
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "no external assets"
        );
        // Nothing about anyone else: no other pupil's id, pseudonym or record.
        for (other, other_pseudonym) in pseudonyms.iter().filter(|(p, _)| p != pupil) {
            for text in [&html, &json] {
                assert!(
                    !text.contains(other.as_str()),
                    "{pupil} report names {other}"
                );
                assert!(!text.contains(&other_pseudonym[3..]));
            }
            for r in all
                .iter()
                .filter(|r| r.pupil.as_deref() == Some(other_pseudonym.as_str()))
            {
                let marker = format!("{}#{}<", r.instance, r.seq);
                assert!(!html.contains(&marker), "{pupil} report shows {marker}");
                assert!(!json.contains(&format!("\"{}#{}\"", r.instance, r.seq)));
            }
        }
        // Denied attempts only when asked for.
        let without = inzage::build(
            &session.store,
            &session.set,
            &session.pseudo,
            pupil,
            inzage::Options::default(),
        )
        .await
        .unwrap();
        assert!(without.denied.is_empty());
        assert!(!without.html().contains("Geweigerde verzoeken"));
    }
    // A pupil without records gets an empty, still complete report.
    let none = session
        .inzage(
            "L9999",
            inzage::Options::default(),
            review::session::ReportFormat::Json,
        )
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&none).unwrap();
    assert_eq!(v["disclosures"].as_array().unwrap().len(), 0);
    session.close().await;
}

/// Runs `poortwachter <args> --config <config>`, asserts it succeeded
/// (showing its output otherwise) and returns its stdout.
async fn cli_ok(args: &[&str], config: &std::path::Path) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `audit export` as the FG runs it: streamed to stdout; a reader that
/// stops early (`| head`) is not an error.
#[tokio::test]
async fn export_cli_streams_csv_and_tolerates_a_closed_pipe() {
    let (_tmp, config, _pseudonyms) = traffic(StoreKind::Sqlite).await;
    let csv = cli_ok(&["audit", "export", "--format", "csv"], &config).await;
    assert_eq!(csv.lines().count(), 19, "header and 18 requests: {csv}");
    assert!(csv.starts_with("instance,"));
    assert!(!csv.contains("L100"));
    // A reader that closes the pipe after the first bytes.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args([
            "audit", "export", "--format", "jsonl", "--kind", "all", "--config",
        ])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let done = child.wait_with_output().await.unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}

#[tokio::test]
async fn inzage_cli_writes_html_and_records_the_access() {
    let (tmp, config, pseudonyms) = traffic(StoreKind::Sqlite).await;
    let html = cli_ok(
        &[
            "audit",
            "inzage",
            "--leerling",
            "L1001",
            "--met-weigeringen",
        ],
        &config,
    )
    .await;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("Gemeente Groningen, Leerplicht/RMC (demo)"));
    assert!(!html.contains("L1002"));
    let cfg = Config::load(&config).unwrap();
    let rows = Store::connect(&cfg.audit.store)
        .await
        .unwrap()
        .all_rows()
        .await
        .unwrap();
    let access: Vec<&StoredRow> = rows.iter().filter(|r| r.kind == "access").collect();
    assert_eq!(access.len(), 1);
    assert_eq!(access[0].reason, "inzage");
    assert_eq!(access[0].pupil.as_deref(), Some(pseudonyms[0].1.as_str()));
    // The admin chain (with its closing checkpoint) verifies with the rest.
    cli_ok(&["audit", "verify"], &config).await;
    // Verifying reads the whole trail: that access is recorded too.
    let rows = Store::connect(&cfg.audit.store)
        .await
        .unwrap()
        .all_rows()
        .await
        .unwrap();
    let reasons: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "access")
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(reasons, ["inzage", "verify"]);
    drop(tmp);
}

/// A synthetic request record at `time` (stored form) for the report tests.
fn synthetic(
    seq: i64,
    time: &str,
    org: &str,
    subject: &str,
    outcome: Outcome,
    fields: &[&str],
) -> StoredRow {
    let mut rec = AuditRecord::new("synth-1", &format!("r{seq}"), &format!("{seq:032x}"));
    rec.time = time.to_owned();
    rec.org = Some(org.to_owned());
    rec.role = Some(
        if org == "wij-groningen" {
            "jeugdwet"
        } else {
            "leerplicht"
        }
        .to_owned(),
    );
    rec.overleg = Some("aoj-vo-noorderlicht".into());
    rec.purpose = Some("aanpak-verzuim".into());
    rec.bron = Some("las-noorderlicht".into());
    rec.pupil = Some(format!("k1:{subject}"));
    rec.outcome = outcome;
    rec.reason = if outcome == Outcome::Denied {
        "no-rule"
    } else {
        "allowed"
    }
    .into();
    rec.rules = if outcome == Outcome::Denied {
        vec![]
    } else {
        vec!["aoj-02".into()]
    };
    rec.fields_shared = fields
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    StoredRow::from_owned(rec, seq, "0")
}

#[tokio::test]
async fn sqlite_rapport_counts_flags_anomalies_and_names_no_pupil() {
    let tmp = tempfile::tempdir().unwrap();
    rapport_counts_flags_anomalies_and_names_no_pupil(&format!(
        "sqlite://{}/a.db",
        tmp.path().display()
    ))
    .await;
}

#[tokio::test]
async fn postgres_rapport_counts_flags_anomalies_and_names_no_pupil() {
    rapport_counts_flags_anomalies_and_names_no_pupil(&fresh_pg_database().await).await;
}

/// The report as JSON without its generation time, for comparisons.
fn comparable(r: &rapport::Rapport) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
    v["generated_at"] = serde_json::Value::Null;
    v
}

async fn rapport_counts_flags_anomalies_and_names_no_pupil(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let mut rows = Vec::new();
    let mut seq = 0;
    let mut push = |rows: &mut Vec<StoredRow>, t: &str, org: &str, s: &str, o: Outcome| {
        seq += 1;
        let f: &[&str] = if o == Outcome::Denied {
            &[]
        } else {
            &["verzuim.ongeoorloofd_uren"]
        };
        rows.push(synthetic(seq, t, org, s, o, f));
    };
    // Baseline: Leerplicht asks about 2 pupils a day, on 5 weekdays before the period.
    for day in 2..=6 {
        for p in 0..2 {
            push(
                &mut rows,
                &format!("2026-11-{day:02}T09:00:00.000000Z"),
                "gemeente-groningen",
                &format!("base{p}"),
                Outcome::Allowed,
            );
        }
    }
    // In the period (9-13 Nov): a normal Monday, then 12 distinct pupils on Tuesday.
    for p in 0..2 {
        push(
            &mut rows,
            "2026-11-09T09:00:00.000000Z",
            "gemeente-groningen",
            &format!("mon{p}"),
            Outcome::Allowed,
        );
    }
    for p in 0..12 {
        push(
            &mut rows,
            "2026-11-10T10:00:00.000000Z",
            "gemeente-groningen",
            &format!("tue{p}"),
            Outcome::Allowed,
        );
    }
    // WIJ: a request at 23:30 Dutch time and three denials.
    push(
        &mut rows,
        "2026-11-11T22:30:00.000000Z",
        "wij-groningen",
        "night",
        Outcome::Filtered,
    );
    for p in 0..3 {
        push(
            &mut rows,
            "2026-11-12T10:00:00.000000Z",
            "wij-groningen",
            &format!("den{p}"),
            Outcome::Denied,
        );
    }
    // A policy reload in the period.
    let mut reload = AuditRecord::new("synth-1", "reload", &format!("{:032x}", 999));
    reload.kind = "reload";
    reload.outcome = Outcome::Event;
    reload.reason = "policy-reloaded".into();
    reload.time = "2026-11-12T12:00:00.000000Z".into();
    reload.detail = serde_json::json!({"trigger": "SIGHUP", "old_version": "a".repeat(64), "new_version": "b".repeat(64), "delta": {"fields_gained": 2, "fields_lost_or_changed": 1, "overleggen": ["aoj-vo-noorderlicht"]}}).to_string();
    rows.push(StoredRow::from_owned(reload, 999, "0"));
    store.insert_batch(&rows, &[], None).await.unwrap();

    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let from = review::when::bound("2026-11-09", false).unwrap();
    let to = review::when::bound("2026-11-13", true).unwrap();
    let r = rapport::build(&store, &set, &from, &to, rapport::Thresholds::default())
        .await
        .unwrap();
    // The report walks the records in pages; it must not depend on where
    // the pages break (12 records share one timestamp), nor differ from the
    // report over all records held in memory.
    // (`build` read the aggregates: the period is whole Dutch days; it
    // reads aggregate rows, not records, so only the walks' counts of
    // records read are compared.)
    let walk = rapport::build_paged(
        &store,
        &set,
        &from,
        &to,
        rapport::Thresholds::default(),
        10_000,
    )
    .await
    .unwrap();
    assert_eq!(comparable(&walk), comparable(&r));
    for page in [1, 2, 5] {
        let paged = rapport::build_paged(
            &store,
            &set,
            &from,
            &to,
            rapport::Thresholds::default(),
            page,
        )
        .await
        .unwrap();
        assert_eq!(comparable(&paged), comparable(&r), "page size {page}");
        assert_eq!(paged.records_read, walk.records_read, "page size {page}");
    }
    let all = |from: &str, to: &str, kind: Option<&str>| {
        let filter = review::query::Filter {
            from: Some(from.to_owned()),
            to: Some(to.to_owned()),
            kind: kind.map(str::to_owned),
            ..Default::default()
        };
        let store = store.clone();
        async move { review::query::all(&store, &filter).await.unwrap() }
    };
    let baseline_from = review::when::bound("2026-10-12", false).unwrap();
    let in_memory = rapport::from_rows(
        &set,
        &from,
        &to,
        &all(&from, &to, None).await,
        &all(&baseline_from, &from, Some("request")).await,
        rapport::Thresholds::default(),
    );
    assert_eq!(comparable(&in_memory), comparable(&r), "in memory");
    assert_eq!(r.total_requests, 2 + 12 + 1 + 3);
    let aoj = r
        .overleggen
        .iter()
        .find(|o| o.id == "aoj-vo-noorderlicht")
        .unwrap();
    assert_eq!(aoj.requests, 18);
    assert_eq!(aoj.distinct_pupils, 18);
    assert_eq!(aoj.volume.buckets.len(), 5);
    assert_eq!(aoj.volume.allowed, vec![2, 12, 0, 0, 0]);
    assert_eq!(aoj.volume.filtered, vec![0, 0, 1, 0, 0]);
    assert_eq!(aoj.volume.denied, vec![0, 0, 0, 3, 0]);
    let lp_field = aoj
        .fields
        .iter()
        .find(|f| f.role == "leerplicht" && f.field == "verzuim.ongeoorloofd_uren")
        .unwrap();
    assert_eq!(lp_field.count, 14);
    assert_eq!(aoj.denials.len(), 1);
    assert_eq!(aoj.denials[0].count, 3);
    let kinds: Vec<(&str, Option<&str>)> = aoj
        .anomalies
        .iter()
        .map(|a| (a.kind, a.org.as_deref()))
        .collect();
    assert!(
        kinds.contains(&("surge", Some("gemeente-groningen"))),
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| k.0 == "surge").count(),
        1,
        "only Tuesday: {kinds:?}"
    );
    assert!(kinds.contains(&("outside-office-hours", Some("wij-groningen"))));
    assert!(!kinds.contains(&("outside-office-hours", Some("gemeente-groningen"))));
    assert!(kinds.contains(&("repeated-denials", Some("wij-groningen"))));
    assert!(aoj.unused_purposes.contains(&"belastbaarheid".to_owned()));
    assert!(!aoj.unused_purposes.contains(&"aanpak-verzuim".to_owned()));
    assert!(aoj.unused_rules.iter().all(|r| r != "aoj-02"));
    // Other overleggen: no traffic, every purpose unused.
    let mazl = r.overleggen.iter().find(|o| o.id == "mazl").unwrap();
    assert_eq!(mazl.requests, 0);
    assert!(!mazl.unused_purposes.is_empty());
    assert_eq!(r.policy_changes.len(), 1);
    assert_eq!(r.policy_changes[0].reason, "policy-reloaded");
    // The baseline records are not in the period.
    assert!(
        !aoj.anomalies
            .iter()
            .any(|a| a.description.contains("2026-11-02"))
    );

    let html = r.html();
    assert!(html.contains("<svg"));
    assert!(html.contains("Ongewoon veel leerlingen"));
    assert!(html.contains("Herhaalde weigeringen"));
    assert!(html.contains("Buiten kantoortijd"));
    assert!(html.contains("policy-reloaded"));
    assert!(!html.contains("<script") && !html.contains("https://"));
    // Aggregates only: no pupil pseudonym appears anywhere.
    for text in [html, r.json()] {
        assert!(!text.contains("k1:"), "a pseudonym leaked into the report");
        for p in ["tue0", "mon1", "night", "den2", "base0"] {
            assert!(!text.contains(p));
        }
    }
}

#[tokio::test]
async fn inzage_and_query_find_a_pupil_across_key_rotations() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}/a.db", tmp.path().display()))
        .await
        .unwrap();
    let keys = format!("k1 {}\nk2 {}\n", "11".repeat(32), "22".repeat(32));
    let rotated = poortwachter::audit::Pseudonymiser::parse(&keys, "t").unwrap();
    let old_only =
        poortwachter::audit::Pseudonymiser::parse(&format!("k1 {}\n", "11".repeat(32)), "t")
            .unwrap();
    // Two records of L1001 before the rotation (k1), one after (k2), and one
    // of L1002 under each key.
    let mut rows = Vec::new();
    for (seq, (pupil, p)) in [
        ("L1001", &old_only),
        ("L1001", &old_only),
        ("L1002", &old_only),
        ("L1001", &rotated),
        ("L1002", &rotated),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = synthetic(
            seq as i64 + 1,
            &format!("2026-11-1{seq}T10:00:00.000000Z"),
            "gemeente-groningen",
            "x",
            Outcome::Allowed,
            &["verzuim.ongeoorloofd_uren"],
        );
        r.pupil = Some(p.pseudonymise(pupil));
        r.personal_digest = r.compute_personal_digest();
        r.hash = r.compute_hash();
        rows.push(r);
    }
    store.insert_batch(&rows, &[], None).await.unwrap();
    assert!(rows[0].pupil.as_deref().unwrap().starts_with("k1:"));
    assert!(rows[3].pupil.as_deref().unwrap().starts_with("k2:"));

    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let report = inzage::build(&store, &set, &rotated, "L1001", inzage::Options::default())
        .await
        .unwrap();
    let records: Vec<&str> = report
        .disclosures
        .iter()
        .map(|d| d.record.as_str())
        .collect();
    assert_eq!(records, ["synth-1#1", "synth-1#2", "synth-1#4"]);
    let found = review::query::run(
        &store,
        &FilterInput {
            pupil: Some("L1001".into()),
            ..Default::default()
        }
        .parse(&rotated)
        .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(found.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 4]);
}

/// Every `--format` value of the store-backed review commands through the
/// real binary: each gives its own shape, the alias `json-lines` still works,
/// and leaving `--format` out gives the default.
#[tokio::test]
async fn every_review_format_through_the_binary() {
    let (_tmp, config, _pseudonyms) = traffic(StoreKind::Sqlite).await;
    let run = |args: &'static [&'static str]| cli_ok(args, &config);
    let table = run(&["audit", "query", "--format", "table"]).await;
    assert!(table.contains("18 record(s)"), "{table}");
    assert_eq!(
        run(&["audit", "query"]).await,
        table,
        "table is the default"
    );
    let json: serde_json::Value =
        serde_json::from_str(&run(&["audit", "query", "--format", "json"]).await).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(18), "{json}");
    let csv = run(&["audit", "query", "--format", "csv"]).await;
    assert!(csv.starts_with("instance,seq,"), "{csv}");
    assert_eq!(csv.lines().count(), 19);

    let jsonl = run(&["audit", "export", "--format", "jsonl"]).await;
    assert_eq!(jsonl.lines().count(), 18);
    for line in jsonl.lines() {
        assert!(serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"].is_number());
    }
    assert_eq!(
        run(&["audit", "export", "--format", "json-lines"]).await,
        jsonl
    );
    assert_eq!(
        run(&["audit", "export"]).await,
        jsonl,
        "jsonl is the default"
    );
    let logboek = run(&["audit", "export", "--format", "logboek"]).await;
    assert_eq!(logboek.lines().count(), 18);
    assert_ne!(logboek, jsonl);

    let inzage = run(&["audit", "inzage", "--leerling", "L1001", "--format", "json"]).await;
    let inzage: serde_json::Value = serde_json::from_str(&inzage).unwrap();
    assert!(inzage["disclosures"].is_array(), "{inzage}");
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let rapport = cli_ok(
        &[
            "audit", "rapport", "--van", &today, "--tot", &today, "--format", "json",
        ],
        &config,
    )
    .await;
    assert!(
        serde_json::from_str::<serde_json::Value>(&rapport)
            .unwrap()
            .is_object()
    );
}

/// The school reading its leerplicht case in the AOJ (rule aoj-09), at
/// `time`, about pupil pseudonym `subject`, through `supplier` or itself.
fn school_reads_zaak(
    seq: i64,
    time: &str,
    org: Option<&str>,
    subject: &str,
    supplier: Option<&str>,
    outcome: Outcome,
) -> StoredRow {
    let mut rec = AuditRecord::new("synth-1", &format!("r{seq}"), &format!("{seq:032x}"));
    rec.time = time.to_owned();
    rec.org = org.map(str::to_owned);
    rec.supplier = supplier.map(str::to_owned);
    rec.role = org.map(|_| "school".to_owned());
    rec.overleg = Some("aoj-vo-noorderlicht".into());
    rec.purpose = Some("aanpak-verzuim".into());
    rec.bron = Some("leerplicht-register".into());
    rec.grondslag = Some("WVO".into());
    rec.pupil = Some(subject.to_owned());
    rec.outcome = outcome;
    if outcome == Outcome::Denied {
        rec.reason = if org.is_some() {
            "no-rule"
        } else {
            "no-mandate"
        }
        .into();
    } else {
        rec.reason = "allowed".into();
        rec.rules = vec!["aoj-09".into()];
        rec.fields_shared = vec!["zaak.status".into()];
    }
    StoredRow::from_owned(rec, seq, "0")
}

fn test_pseudonymiser() -> poortwachter::audit::Pseudonymiser {
    poortwachter::audit::Pseudonymiser::parse(&format!("k1 {}\n", "11".repeat(32)), "t").unwrap()
}

/// `--via`: only the requests that came through that supplier, on its own
/// column and combined with the other filters.
async fn via_filter(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let t = "2026-11-10T09:00:00.000000Z";
    let nl = Some("vo-noorderlicht");
    let las = Some("las-leverancier");
    let rows = vec![
        school_reads_zaak(1, t, nl, "k1:a", las, Outcome::Allowed),
        school_reads_zaak(2, t, nl, "k1:b", las, Outcome::Allowed),
        school_reads_zaak(3, t, nl, "k1:c", None, Outcome::Allowed),
        school_reads_zaak(4, t, nl, "k1:d", Some("ander-pakket"), Outcome::Allowed),
        school_reads_zaak(5, t, None, "k1:e", las, Outcome::Denied),
        synthetic(6, t, "gemeente-groningen", "f", Outcome::Allowed, &[]),
    ];
    store.insert_batch(&rows, &[], None).await.unwrap();
    let pseudo = test_pseudonymiser();
    let run = |f: FilterInput| {
        let filter = f.parse(&pseudo).unwrap();
        let store = store.clone();
        async move {
            review::query::run(&store, &filter)
                .await
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>()
        }
    };
    let via = |s: &str| FilterInput {
        via: Some(s.into()),
        ..Default::default()
    };
    assert_eq!(run(FilterInput::default()).await, [1, 2, 3, 4, 5, 6]);
    assert_eq!(run(via("las-leverancier")).await, [1, 2, 5]);
    assert_eq!(run(via("ander-pakket")).await, [4]);
    assert!(run(via("onbekend")).await.is_empty());
    assert_eq!(
        run(FilterInput {
            org: Some("vo-noorderlicht".into()),
            ..via("las-leverancier")
        })
        .await,
        [1, 2]
    );
    assert_eq!(
        run(FilterInput {
            decision: Some("denied".into()),
            ..via("las-leverancier")
        })
        .await,
        [5]
    );
    assert!(
        run(FilterInput {
            org: Some("gemeente-groningen".into()),
            ..via("las-leverancier")
        })
        .await
        .is_empty()
    );
    // Validated like the other identifiers: no free text reaches the store.
    assert!(via("las' OR 1=1").parse(&pseudo).is_err());
}

#[tokio::test]
async fn sqlite_query_via_a_supplier() {
    let tmp = tempfile::tempdir().unwrap();
    via_filter(&format!("sqlite://{}/a.db", tmp.path().display())).await;
}

#[tokio::test]
async fn postgres_query_via_a_supplier() {
    via_filter(&fresh_pg_database().await).await;
}

/// `audit query --via` (and its alias `--leverancier`) through the binary.
#[tokio::test]
async fn query_cli_filters_via_a_supplier() {
    let (_tmp, config, _pseudonyms) = traffic(StoreKind::Sqlite).await;
    let cfg = Config::load(&config).unwrap();
    let store = Store::connect(&cfg.audit.store).await.unwrap();
    let t = "2026-11-10T09:00:00.000000Z";
    let rows = vec![
        school_reads_zaak(
            1,
            t,
            Some("vo-noorderlicht"),
            "k1:a",
            Some("las-leverancier"),
            Outcome::Allowed,
        ),
        school_reads_zaak(
            2,
            t,
            Some("po-de-wadden"),
            "k1:b",
            Some("las-leverancier"),
            Outcome::Allowed,
        ),
    ];
    store.insert_batch(&rows, &[], None).await.unwrap();
    drop(store);
    for flag in ["--via", "--leverancier"] {
        let out = cli_ok(
            &[
                "audit",
                "query",
                flag,
                "las-leverancier",
                "--format",
                "json",
            ],
            &config,
        )
        .await;
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let found = v.as_array().unwrap();
        assert_eq!(found.len(), 2, "{out}");
        assert!(found.iter().all(|r| r["supplier"] == "las-leverancier"));
    }
    let all = cli_ok(&["audit", "query", "--format", "json"], &config).await;
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 18 + 2);
}

/// A disclosure through a supplier names it: "ontvangen door X, via
/// leverancier Y", Y by its registry name or, once no longer listed, its id.
#[tokio::test]
async fn inzage_names_the_supplier_a_disclosure_came_through() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}/a.db", tmp.path().display()))
        .await
        .unwrap();
    let pseudo = test_pseudonymiser();
    let me = pseudo.pseudonymise("L1001");
    let nl = Some("vo-noorderlicht");
    let rows = vec![
        school_reads_zaak(
            1,
            "2026-11-10T09:00:00.000000Z",
            nl,
            &me,
            Some("las-leverancier"),
            Outcome::Allowed,
        ),
        school_reads_zaak(
            2,
            "2026-11-11T09:00:00.000000Z",
            nl,
            &me,
            Some("vertrokken-leverancier"),
            Outcome::Allowed,
        ),
        school_reads_zaak(
            3,
            "2026-11-12T09:00:00.000000Z",
            nl,
            &me,
            None,
            Outcome::Allowed,
        ),
        school_reads_zaak(
            4,
            "2026-11-13T09:00:00.000000Z",
            None,
            &me,
            Some("las-leverancier"),
            Outcome::Denied,
        ),
    ];
    store.insert_batch(&rows, &[], None).await.unwrap();
    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let report = inzage::build(
        &store,
        &set,
        &pseudo,
        "L1001",
        inzage::Options {
            include_denied: true,
        },
    )
    .await
    .unwrap();
    let school = &set.organisations["vo-noorderlicht"].name;
    let las = &set.mandates.suppliers["las-leverancier"].name;
    let d = &report.disclosures;
    assert_eq!(d.len(), 3);
    assert_eq!(d[0].recipient_id, "vo-noorderlicht");
    assert_eq!(d[0].supplier_id.as_deref(), Some("las-leverancier"));
    assert_eq!(d[0].supplier_name.as_deref(), Some(las.as_str()));
    let via_las = format!("ontvangen door {school}, via leverancier {las}");
    assert_eq!(d[0].via.as_deref(), Some(via_las.as_str()));
    let via_gone = format!("ontvangen door {school}, via leverancier vertrokken-leverancier");
    assert_eq!(d[1].via.as_deref(), Some(via_gone.as_str()));
    assert_eq!(d[2].supplier_id, None);
    assert_eq!(d[2].via, None);
    // The refusal before the supplier could act for anyone names it.
    assert_eq!(report.denied.len(), 1);
    assert_eq!(
        report.denied[0].requester_name,
        format!("leverancier {las}")
    );
    assert!(report.denied[0].explanation.contains("machtiging"));

    let html = report.html();
    assert!(
        html.contains(&format!("<dt>Via leverancier</dt><dd>{via_las}</dd>")),
        "{html}"
    );
    assert!(html.contains(&format!("<dt>Via leverancier</dt><dd>{via_gone}</dd>")));
    assert_eq!(html.matches("<dt>Via leverancier</dt>").count(), 2);
    assert!(html.contains("als verwerker in opdracht van die organisatie"));
    let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
    assert_eq!(json["disclosures"][0]["via"], via_las.as_str());
    assert_eq!(json["disclosures"][0]["supplier_id"], "las-leverancier");
    assert!(json["disclosures"][2]["via"].is_null());

    // Without suppliers the report does not mention them.
    let own = inzage::from_rows(
        &set,
        "L1001",
        &rows[2..3],
        inzage::Options::default(),
        inzage::ConsentHistory::default(),
    );
    assert!(!own.html().contains("leverancier"));
}

/// The DPIA report per overleg: requests and distinct pupils per supplier,
/// and the mandates used (supplier → organisation).
#[tokio::test]
async fn rapport_shows_volume_per_supplier_and_the_mandates_used() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}/a.db", tmp.path().display()))
        .await
        .unwrap();
    let t = "2026-11-10T09:00:00.000000Z";
    let nl = Some("vo-noorderlicht");
    let las = Some("las-leverancier");
    let mut wadden =
        school_reads_zaak(6, t, Some("po-de-wadden"), "k1:via5", las, Outcome::Allowed);
    wadden.overleg = Some("expertteam-po".into());
    wadden.hash = wadden.compute_hash();
    let rows = vec![
        school_reads_zaak(1, t, nl, "k1:via1", las, Outcome::Allowed),
        school_reads_zaak(2, t, nl, "k1:via1", las, Outcome::Allowed),
        school_reads_zaak(3, t, nl, "k1:via2", las, Outcome::Allowed),
        school_reads_zaak(4, t, None, "k1:via3", las, Outcome::Denied),
        school_reads_zaak(5, t, nl, "k1:own4", None, Outcome::Allowed),
        wadden,
    ];
    store.insert_batch(&rows, &[], None).await.unwrap();
    let set = poortwachter::policy::load_dir(std::path::Path::new(POLICIES)).unwrap();
    let from = review::when::bound("2026-11-09", false).unwrap();
    let to = review::when::bound("2026-11-13", true).unwrap();
    let r = rapport::build(&store, &set, &from, &to, rapport::Thresholds::default())
        .await
        .unwrap();
    assert_eq!(r.total_requests, 6);
    assert_eq!(r.supplier_requests, 5);
    let overleg = |id: &str| r.overleggen.iter().find(|o| o.id == id).unwrap();
    let las_name = &set.mandates.suppliers["las-leverancier"].name;
    let aoj = &overleg("aoj-vo-noorderlicht").suppliers;
    assert_eq!(aoj.len(), 1);
    assert_eq!(aoj[0].supplier, "las-leverancier");
    assert_eq!(&aoj[0].supplier_name, las_name);
    assert_eq!((aoj[0].requests, aoj[0].distinct_pupils), (4, 3));
    let used: Vec<(&str, u64)> = aoj[0]
        .mandates
        .iter()
        .map(|m| (m.organisation.as_str(), m.requests))
        .collect();
    assert_eq!(
        used,
        [("vo-noorderlicht", 3)],
        "the refusal used no mandate"
    );
    let po = &overleg("expertteam-po").suppliers;
    assert_eq!((po[0].requests, po[0].distinct_pupils), (1, 1));
    assert_eq!(po[0].mandates[0].organisation, "po-de-wadden");
    assert_eq!(
        po[0].mandates[0].organisation_name,
        set.organisations["po-de-wadden"].name
    );
    assert!(overleg("mazl").suppliers.is_empty());

    let html = r.html();
    assert_eq!(html.matches("<table class=\"leveranciers\">").count(), 2);
    assert!(html.contains(&format!(
        "<td>{las_name} <code>las-leverancier</code></td><td class=\"num\">4</td><td class=\"num\">3</td><td>Noorderlicht College (demo VO-school): 3</td>"
    )), "{html}");
    assert!(html.contains("<dt>Via een softwareleverancier</dt><dd>5</dd>"));
    assert!(html.contains("Geen verzoeken via een softwareleverancier."));
    let json: serde_json::Value = serde_json::from_str(&r.json()).unwrap();
    assert_eq!(json["supplier_requests"], 5);
    // Aggregates only: no pseudonym.
    for text in [html, r.json()] {
        assert!(!text.contains("k1:"));
        assert!(!text.contains("via1") && !text.contains("own4"));
    }
}

// ---------------------------------------------------------------------------
// Issue 18 (e) and 6: `audit toestemming` and the FHIR AuditEvent export.

const EPT: &str = "/registers/v1/expertteam-po";

fn advies(pupil: &str) -> String {
    format!("/v1/expertteam-po/jgz-dossier/jeugdigen/{pupil}/advies")
}

async fn post_json(c: &TestClient, path: &str, body: serde_json::Value) -> TestResponse {
    c.request(
        http::Method::POST,
        path,
        &[("content-type", "application/json")],
        Some(body.to_string().into_bytes()),
    )
    .await
    .unwrap()
}

/// The parents' consent for `pupil` (purpose passende-plek), then the SWV
/// reads the advies, which relies on it. Returns the consent id.
async fn consent_and_disclose(school: &TestClient, swv: &TestClient, pupil: &str) -> String {
    let r = post_json(
        school,
        &format!("{EPT}/toestemmingen"),
        serde_json::json!({"leerling": pupil, "gegeven_door": "parents", "doelen": ["passende-plek"], "formulier": "F-1"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let ok = swv.get(&advies(pupil), "passende-plek").await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    r.json()["id"].as_str().unwrap().to_owned()
}

/// Three consent-relying disclosures (L1001..L1003), one refusal before any
/// consent (L1004), and L1001's consent withdrawn after its disclosure.
/// Returns the stopped gateway's dir, config, store URL and consent ids.
async fn consent_traffic(
    store: StoreKind,
) -> (tempfile::TempDir, std::path::PathBuf, String, Vec<String>) {
    let mut gw = TestGateway::start_with(Options {
        store,
        server_extra: "request_timeout_ms = 1000".into(),
        ..Options::default()
    })
    .await;
    let swv = gw.client("swv-po-groningen");
    let school = gw.client("po-de-wadden");
    let refused = swv.get(&advies("L1004"), "passende-plek").await;
    assert_eq!(refused.problem_type(), "consent-required");
    let mut ids = Vec::new();
    for p in ["L1001", "L1002", "L1003"] {
        ids.push(consent_and_disclose(&school, &swv, p).await);
    }
    let r = post_json(
        &school,
        &format!("{EPT}/toestemmingen/{}/intrekken", ids[0]),
        serde_json::json!({"leerling": "L1001"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let (config, url) = (gw.config_path.clone(), gw.store_url.clone());
    let (tmp, _) = gw.stop().await;
    (tmp, config, url, ids)
}

async fn consent_reliance(store: StoreKind) {
    let (_tmp, config, url, ids) = consent_traffic(store).await;
    let cfg = Config::load(&config).unwrap();
    let s = Session::open(&cfg).await.unwrap();
    let fmt = review::session::QueryFormat::Json;

    // Relied on and active (L1001's withdrawal came after its disclosure).
    let r = s
        .toestemming("expertteam-po", None, None, fmt)
        .await
        .unwrap();
    assert_eq!(r.disclosures, 3, "{}", r.table());
    assert_eq!(r.lines.len(), 3);
    assert!(r.ok(), "{}", r.table());
    let consents: Vec<&str> = r.lines.iter().map(|l| l.consent.as_str()).collect();
    assert_eq!(consents, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        r.lines
            .iter()
            .all(|l| l.findings.is_empty() && l.note.is_none())
    );
    assert!(r.lines[0].withdrawn_at.is_some());
    // Another overleg, or a period before the traffic: nothing.
    let other = s
        .toestemming("aoj-vo-noorderlicht", None, None, fmt)
        .await
        .unwrap();
    assert_eq!((other.disclosures, other.records_read), (0, 0));
    let before = s
        .toestemming("expertteam-po", Some("2020-01-01"), Some("2020-12-31"), fmt)
        .await
        .unwrap();
    assert_eq!(before.disclosures, 0);

    // The register manipulated: L1002's consent withdrawn before its
    // disclosure, L1003's for another purpose only.
    let store = Store::connect(&url).await.unwrap();
    sqlx::query("UPDATE consents SET withdrawn_at = '2026-01-01T00:00:00.000000Z' WHERE id = $1")
        .bind(&ids[1])
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE consents SET purposes = '[\"onderwijs-zorgarrangement\"]' WHERE id = $1")
        .bind(&ids[2])
        .execute(store.pool())
        .await
        .unwrap();
    let r = s
        .toestemming("expertteam-po", None, None, fmt)
        .await
        .unwrap();
    assert_eq!(r.findings, 2, "{}", r.table());
    assert!(!r.ok());
    assert!(r.lines[0].findings.is_empty(), "{:?}", r.lines[0]);
    assert!(
        r.lines[1].findings[0].contains("ingetrokken"),
        "{:?}",
        r.lines[1]
    );
    assert_eq!(r.lines[1].findings.len(), 1);
    assert!(
        r.lines[2].findings[0].contains("doel passende-plek"),
        "{:?}",
        r.lines[2]
    );
    let table = r.table();
    assert!(
        table.contains("BEVINDING") && table.contains("2 bevinding(en)"),
        "{table}"
    );
    // A consent of another pupil, and one not in the register at all.
    sqlx::query("UPDATE consents SET subject = (SELECT subject FROM consents WHERE id = $2), purposes = '[\"passende-plek\"]' WHERE id = $1")
        .bind(&ids[2])
        .bind(&ids[0])
        .execute(store.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM consents WHERE id = $1")
        .bind(&ids[1])
        .execute(store.pool())
        .await
        .unwrap();
    let r = s
        .toestemming("expertteam-po", None, None, fmt)
        .await
        .unwrap();
    assert_eq!(r.findings, 2, "{}", r.table());
    assert!(
        r.lines[1].findings[0].contains("niet in het register"),
        "{:?}",
        r.lines[1]
    );
    assert!(
        r.lines[2].findings[0].contains("andere leerling"),
        "{:?}",
        r.lines[2]
    );
    for text in [r.json(), r.csv(), r.table()] {
        assert!(!text.contains("L100"), "no clear pupil id: {text}");
    }

    // Every run is an access, recorded on the admin chain, without a pupil.
    s.close().await;
    let store = Store::connect(&url).await.unwrap();
    let accesses = review::query::all(
        &store,
        &review::query::Filter {
            kind: Some("access".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mine: Vec<&StoredRow> = accesses
        .iter()
        .filter(|a| a.reason == "toestemming")
        .collect();
    assert_eq!(mine.len(), 5);
    assert!(
        mine.iter()
            .all(|a| a.pupil.is_none() && a.instance.ends_with("/admin"))
    );
    let last: serde_json::Value = serde_json::from_str(&mine[4].detail).unwrap();
    assert_eq!(last["parameters"]["overleg"], "expertteam-po");
    assert_eq!(last["parameters"]["findings"], 2);
    assert_eq!(last["records"], 3);
    // The records and the admin chain still verify.
    let (code, _) = cli_status(&["audit", "verify"], &config).await;
    assert_eq!(code, 0);
}

#[tokio::test]
async fn sqlite_consent_reliance_is_checked_against_the_register() {
    consent_reliance(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_consent_reliance_is_checked_against_the_register() {
    consent_reliance(StoreKind::Postgres).await;
}

async fn cli_status(args: &[&str], config: &std::path::Path) -> (i32, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// The command line: exit 0 without findings, 1 with; the walk uses the
/// partial index (SQLite's plan names it).
#[tokio::test]
async fn toestemming_cli_exits_non_zero_on_a_finding() {
    let (_tmp, config, url, ids) = consent_traffic(StoreKind::Sqlite).await;
    let args = ["audit", "toestemming", "--overleg", "expertteam-po"];
    let (code, table) = cli_status(&args, &config).await;
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("OK: elke toestemming was actief"), "{table}");
    let store = Store::connect(&url).await.unwrap();
    sqlx::query("UPDATE consents SET recorded_at = '2099-01-01T00:00:00.000000Z', valid_from = '2099-01-01T00:00:00.000000Z' WHERE id = $1")
        .bind(&ids[2])
        .execute(store.pool())
        .await
        .unwrap();
    let (code, json) = cli_status(
        &[
            "audit",
            "toestemming",
            "--overleg",
            "expertteam-po",
            "--van",
            "2026-01-01",
            "--format",
            "json",
        ],
        &config,
    )
    .await;
    assert_eq!(code, 1, "{json}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["findings"], 1);
    assert_eq!(
        json["lines"][2]["findings"].as_array().unwrap().len(),
        2,
        "{json}"
    );
    let (code, csv) = cli_status(
        &[
            "audit",
            "toestemming",
            "--overleg",
            "expertteam-po",
            "--format",
            "csv",
        ],
        &config,
    )
    .await;
    assert_eq!(code, 1);
    assert!(csv.starts_with("time,record,"), "{csv}");
    assert_eq!(csv.lines().count(), 4);

    let sql = format!(
        "EXPLAIN QUERY PLAN SELECT * FROM audit_records WHERE overleg = $1 AND {} AND time >= $2 ORDER BY time, instance, seq",
        review::query::CONSENT_RELIED
    );
    let plan: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind("expertteam-po")
        .bind("2026-01-01")
        .fetch_all(store.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| sqlx::Row::get::<String, _>(r, 3))
        .collect();
    assert!(
        plan.iter()
            .any(|p| p.contains("audit_records_consent_relied")),
        "{plan:?}"
    );
}

/// `audit export --format fhir`: R4 AuditEvents in IHE BALP's Privacy
/// Disclosure shape, the pupil only as its pseudonym.
async fn fhir_export(store: StoreKind) {
    let (_tmp, config, _url, _ids) = consent_traffic(store).await;
    let cfg = Config::load(&config).unwrap();
    let s = Session::open(&cfg).await.unwrap();
    let input = FilterInput {
        overleg: Some("expertteam-po".into()),
        ..Default::default()
    };
    let out = s
        .export(&input, review::export::Format::Fhir)
        .await
        .unwrap();
    let swv_oin = s.set.organisations["swv-po-groningen"].oin.clone();
    let pseudonyms: Vec<String> = ["L1001", "L1002", "L1003", "L1004"]
        .iter()
        .map(|p| s.pseudo.pseudonymise(p))
        .collect();
    s.close().await;
    assert!(!out.contains("L100"), "no clear pupil id: {out}");
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // 1 refusal + 3 disclosures (register changes are not requests).
    assert_eq!(events.len(), 4, "{out}");
    let outcomes: Vec<&str> = events
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["4", "0", "0", "0"]);
    for (e, pseudonym) in events.iter().zip([
        &pseudonyms[3],
        &pseudonyms[0],
        &pseudonyms[1],
        &pseudonyms[2],
    ]) {
        check_audit_event(e, pseudonym, swv_oin.as_deref());
    }
    let policy = events[1]["agent"][1]["policy"].as_array().unwrap();
    assert!(
        policy[0]
            .as_str()
            .unwrap()
            .starts_with("urn:poortwachter:beleid:")
    );
    assert!(policy.len() >= 2, "deciding rules: {policy:?}");
}

/// The required elements and codes of IHE.BasicAudit.PrivacyDisclosure.Source.
fn check_audit_event(e: &serde_json::Value, pseudonym: &str, oin: Option<&str>) {
    assert_eq!(e["resourceType"], "AuditEvent");
    assert_eq!(e["meta"]["profile"][0], review::fhir::PROFILE);
    assert_eq!(e["type"]["system"], review::fhir::DCM);
    assert_eq!(e["type"]["code"], "110106");
    assert_eq!(e["subtype"][0]["code"], "disclose");
    assert_eq!(e["action"], "R");
    assert!(e["recorded"].as_str().unwrap().ends_with('Z'));
    assert_eq!(e["purposeOfEvent"][0]["coding"][0]["code"], "passende-plek");
    let agents = e["agent"].as_array().unwrap();
    let by_code = |code: &str| {
        agents
            .iter()
            .find(|a| a["type"]["coding"][0]["code"] == code)
            .unwrap_or_else(|| panic!("agent {code} in {e}"))
    };
    let source = by_code("110153");
    assert_eq!(source["who"], e["source"]["observer"], "val-audit-source");
    assert!(source["network"]["address"].is_string());
    let recipient = by_code("110152");
    assert_eq!(recipient["requestor"], true);
    assert!(
        recipient["network"]["address"]
            .as_str()
            .unwrap()
            .starts_with("nih:sha-256;")
    );
    let id = &recipient["who"]["identifier"];
    match oin {
        Some(oin) => {
            assert_eq!(id["system"], review::fhir::OIN_SYSTEM);
            assert_eq!(id["value"], oin);
        }
        None => assert_eq!(id["value"], "swv-po-groningen"),
    }
    assert_eq!(by_code("159541003")["requestor"], false);
    assert!(agents.iter().all(|a| a["requestor"].is_boolean()));
    let patient = &e["entity"][0];
    assert_eq!(patient["type"]["code"], "1");
    assert_eq!(patient["role"]["code"], "1");
    assert_eq!(patient["what"]["type"], "Patient");
    assert_eq!(
        patient["what"]["identifier"]["system"],
        review::fhir::PSEUDONYM_SYSTEM
    );
    assert_eq!(patient["what"]["identifier"]["value"], pseudonym);
    assert!(e["entity"].as_array().unwrap().len() >= 2);
}

#[tokio::test]
async fn sqlite_fhir_export_is_balp_shaped_and_pseudonymous() {
    fhir_export(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_fhir_export_is_balp_shaped_and_pseudonymous() {
    fhir_export(StoreKind::Postgres).await;
}

// ---------------------------------------------------------------------------
// Issue 18 (b): `audit ontvangen`; issue 16 point 3: `audit kennisgeving`
// and the tracking of its notifications.

/// `audit ontvangen` against the trail itself: per field, the number of
/// disclosures to the organisation that shared it and their distinct
/// pupils; refusals not counted; the access recorded.
async fn ontvangen_counts(store: StoreKind) {
    let (_tmp, config, pseudonyms) = traffic(store).await;
    let cfg = Config::load(&config).unwrap();
    let s = Session::open(&cfg).await.unwrap();
    let rows = s.store.all_rows().await.unwrap();
    let fmt = review::session::QueryFormat::Json;
    for org in ["gemeente-groningen", "wij-groningen"] {
        let r = s
            .ontvangen(org, "aoj-vo-noorderlicht", "2020-01-01", "2999-12-31", fmt)
            .await
            .unwrap();
        // What the trail says the organisation received.
        let mine: Vec<&StoredRow> = rows
            .iter()
            .filter(|x| {
                x.kind == "request"
                    && x.org.as_deref() == Some(org)
                    && matches!(x.outcome.as_str(), "allowed" | "filtered")
            })
            .collect();
        let (expected, refused) = if org == "gemeente-groningen" {
            (10, 4)
        } else {
            (4, 0)
        };
        assert_eq!(mine.len(), expected);
        assert_eq!(r.disclosures, expected as u64, "{}", r.table());
        assert_eq!(
            (r.pupils, r.refused, r.corrected, r.purged),
            (4, refused, 0, 0)
        );
        assert_eq!(r.records_read, 18);
        let mut paths: Vec<String> = mine
            .iter()
            .flat_map(|x| review::query::list(&x.fields_shared))
            .collect();
        paths.sort();
        paths.dedup();
        assert_eq!(r.fields.len(), paths.len(), "{}", r.table());
        for line in &r.fields {
            let with: Vec<&&StoredRow> = mine
                .iter()
                .filter(|x| review::query::list(&x.fields_shared).contains(&line.path))
                .collect();
            let pupils: std::collections::BTreeSet<&str> =
                with.iter().filter_map(|x| x.pupil.as_deref()).collect();
            assert_eq!(line.times, with.len() as u64, "{}", line.path);
            assert_eq!(line.pupils, pupils.len(), "{}", line.path);
            assert_eq!(line.grondslag.len(), 1);
            assert!(!line.rules.is_empty());
        }
        if org == "gemeente-groningen" {
            let uren = r
                .fields
                .iter()
                .find(|l| l.path == "verzuim.ongeoorloofd_uren")
                .unwrap();
            assert_eq!((uren.times, uren.pupils), (10, 4));
            assert_eq!(uren.role, "leerplicht");
            assert_eq!(uren.rules, ["aoj-03"]);
            assert!(uren.grondslag[0].starts_with("Leerplichtwet 1969"));
            assert_eq!(uren.label, "Ongeoorloofd verzuim dit schooljaar (uren)");
        } else {
            assert!(
                r.fields
                    .iter()
                    .all(|l| l.path != "verzuim.ongeoorloofd_uren")
            );
        }
        // No pupil or pseudonym in any output: only counts.
        for text in [r.table(), r.json(), r.csv()] {
            assert!(!text.contains("k1:") && !text.contains("L100"), "{text}");
        }
    }
    let before = s
        .ontvangen(
            "gemeente-groningen",
            "aoj-vo-noorderlicht",
            "2020-01-01",
            "2020-12-31",
            fmt,
        )
        .await
        .unwrap();
    assert_eq!((before.disclosures, before.records_read), (0, 0));
    assert!(before.fields.is_empty());
    assert!(
        s.ontvangen(
            "x' OR 1=1",
            "aoj-vo-noorderlicht",
            "2020-01-01",
            "2020-12-31",
            fmt
        )
        .await
        .is_err()
    );
    s.close().await;
    let rows = Store::connect(&cfg.audit.store)
        .await
        .unwrap()
        .all_rows()
        .await
        .unwrap();
    let access: Vec<&StoredRow> = rows.iter().filter(|r| r.kind == "access").collect();
    let reasons: Vec<&str> = access.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["ontvangen", "ontvangen", "ontvangen"],
        "the refused one records nothing"
    );
    assert!(
        access
            .iter()
            .all(|r| r.pupil.is_none() && r.instance == "test-1/admin")
    );
    assert!(
        access[0].detail.contains("\"org\":\"gemeente-groningen\""),
        "{}",
        access[0].detail
    );
    assert!(
        access[0].detail.contains("\"disclosures\":10"),
        "{}",
        access[0].detail
    );
    assert!(
        access[0].detail.contains("\"records\":18"),
        "{}",
        access[0].detail
    );
    drop(pseudonyms);
}

#[tokio::test]
async fn sqlite_ontvangen_counts_per_field_what_the_trail_holds() {
    ontvangen_counts(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_ontvangen_counts_per_field_what_the_trail_holds() {
    ontvangen_counts(StoreKind::Postgres).await;
}

/// `audit ontvangen` through the binary, with the Dutch flag names.
#[tokio::test]
async fn ontvangen_cli_prints_table_json_and_csv() {
    let (_tmp, config, _pseudonyms) = traffic(StoreKind::Sqlite).await;
    let args = |format: &'static str| {
        [
            "audit",
            "ontvangen",
            "--organisatie",
            "wij-groningen",
            "--overleg",
            "aoj-vo-noorderlicht",
            "--van",
            "2020-01-01",
            "--tot",
            "2999-12-31",
            "--format",
            format,
        ]
    };
    let table = cli_ok(&args("table"), &config).await;
    assert!(table.starts_with("role "), "{table}");
    assert!(
        table.contains("ontving in aoj-vo-noorderlicht van 1 januari 2020, 00:00 tot 1 januari 3000, 00:00: 4 verstrekking(en) over 4 leerling(en)"),
        "{table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&cli_ok(&args("json"), &config).await).unwrap();
    assert_eq!(json["disclosures"], 4);
    let csv = cli_ok(&args("csv"), &config).await;
    assert_eq!(
        csv.lines().count(),
        json["fields"].as_array().unwrap().len() + 1
    );
    assert!(csv.starts_with("role,bron,path,label,category,times,pupils,rules,grondslag\r\n"));
}

/// Traffic about L1001 before and after a moment, and about L1002:
/// Leerplicht reads L1001 before `since`; after it WIJ reads L1001
/// (filtered), Leerplicht is refused L1001's JGZ dossier, Leerplicht reads
/// L1001 and L1002 again. Returns the stopped gateway's dir, config and
/// the moment.
async fn notice_traffic(store: StoreKind) -> (tempfile::TempDir, std::path::PathBuf, String) {
    let mut gw = TestGateway::start_with(Options {
        store,
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let wij = gw.client("wij-groningen");
    assert_eq!(
        lp.get(&verzuim("L1001"), "aanpak-verzuim").await.status,
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let since = poortwachter::audit::record::now_rfc3339();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        wij.get(&verzuim("L1001"), "afstemming-ondersteuning")
            .await
            .status,
        200
    );
    assert_eq!(lp.get(&jgz("L1001"), "aanpak-verzuim").await.status, 403);
    assert_eq!(
        lp.get(&verzuim("L1001"), "aanpak-verzuim").await.status,
        200
    );
    assert_eq!(
        lp.get(&verzuim("L1002"), "aanpak-verzuim").await.status,
        200
    );
    let config = gw.config_path.clone();
    let (tmp, _) = gw.stop().await;
    (tmp, config, since)
}

async fn kennisgeving_lists_and_tracks(store: StoreKind) {
    let (_tmp, config, since) = notice_traffic(store).await;
    let cfg = Config::load(&config).unwrap();
    let s = Session::open(&cfg).await.unwrap();
    let pseudonym = s.pseudo.pseudonymise("L1001");
    let html = review::session::ReportFormat::Html;
    let orgs = |k: &review::kennisgeving::Kennisgeving| k.recipient_ids();

    // Since the start: both recipients, by name; Leerplicht twice.
    let all = s
        .kennisgeving("L1001", "2020-01-01", &[], false, html)
        .await
        .unwrap();
    assert_eq!(orgs(&all), ["gemeente-groningen", "wij-groningen"]);
    assert_eq!(
        all.recipients[0].name,
        "Gemeente Groningen, Leerplicht/RMC (demo)"
    );
    let lp = &all.recipients[0].receipts;
    assert_eq!(lp.len(), 1);
    assert_eq!(lp[0].disclosures, 2, "the refusal is no disclosure");
    assert_eq!(lp[0].overleg_name, "AOJ-team Noorderlicht College");
    assert_eq!(lp[0].role_name, "Leerplichtambtenaar gemeente Groningen");
    assert!(lp[0].grondslag.starts_with("Leerplichtwet 1969"));
    assert!(lp[0].first < lp[0].last);
    assert!(
        lp[0]
            .fields
            .iter()
            .any(|f| f.path == "verzuim.ongeoorloofd_uren")
    );
    // Since the moment: Leerplicht's first read is out, both still in.
    let later = s
        .kennisgeving("L1001", &since, &[], false, html)
        .await
        .unwrap();
    assert_eq!(orgs(&later), ["gemeente-groningen", "wij-groningen"]);
    assert_eq!(later.recipients[0].receipts[0].disclosures, 1);
    assert!(later.recipients[0].receipts[0].first > since);
    // Only records that shared a field WIJ never receives: Leerplicht only,
    // and only that field listed.
    let uren = vec!["verzuim.ongeoorloofd_uren".to_owned()];
    let by_field = s
        .kennisgeving("L1001", "2020-01-01", &uren, false, html)
        .await
        .unwrap();
    assert_eq!(orgs(&by_field), ["gemeente-groningen"]);
    let paths: Vec<&str> = by_field.recipients[0].receipts[0]
        .fields
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, ["verzuim.ongeoorloofd_uren"]);
    // Nothing since a later day.
    let none = s
        .kennisgeving("L1001", "2999-01-01", &[], false, html)
        .await
        .unwrap();
    assert!(none.recipients.is_empty());
    // The pupil only as pseudonym, in every format.
    for text in [all.html(), all.json()] {
        assert!(!text.contains("L1001") && !text.contains("L1002"), "{text}");
        assert!(text.contains(&pseudonym));
    }
    assert!(!all.html().contains(&s.pseudo.pseudonymise("L1002")));

    // Registered: open until each recipient is marked notified.
    let reg = s
        .kennisgeving("L1001", "2020-01-01", &[], true, html)
        .await
        .unwrap();
    let id = reg.id.clone().unwrap();
    assert!(reg.html().contains(&format!("--kennisgeving {id}")));
    let (statuses, _) = review::kennisgeving::statuses(&s.store).await.unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].open, ["gemeente-groningen", "wij-groningen"]);
    assert_eq!(
        statuses[0].kennisgeving.subject.as_deref(),
        Some(pseudonym.as_str())
    );
    let st = s
        .kennisgeving_gemeld(&id, "gemeente-groningen", "brief 2026-118")
        .await
        .unwrap();
    assert_eq!(st.open, ["wij-groningen"]);
    // Refused: twice, not a recipient, unknown id, bad reference.
    for (kid, org, reference) in [
        (id.as_str(), "gemeente-groningen", "nog eens"),
        (id.as_str(), "ggd-groningen", "brief"),
        (
            "8351c7a9-ab56-4080-b2fc-04a8856e447a",
            "wij-groningen",
            "brief",
        ),
        ("geen-id", "wij-groningen", "brief"),
        (id.as_str(), "wij-groningen", "a\nb"),
    ] {
        assert!(
            s.kennisgeving_gemeld(kid, org, reference).await.is_err(),
            "{kid} {org} {reference}"
        );
    }
    let (statuses, _) = review::kennisgeving::statuses(&s.store).await.unwrap();
    assert_eq!(statuses[0].open, ["wij-groningen"]);
    assert_eq!(statuses[0].notified[0].reference, "brief 2026-118");
    let st = s
        .kennisgeving_gemeld(&id, "wij-groningen", "mail 12")
        .await
        .unwrap();
    assert!(st.open.is_empty());
    let (statuses, read) = review::kennisgeving::statuses(&s.store).await.unwrap();
    assert!(statuses[0].open.is_empty());
    assert_eq!(read, 3);
    s.close().await;

    // The records: notification records carry the pupil only as its
    // pseudonym in `subject`; no record holds the clear id anywhere.
    let rows = Store::connect(&cfg.audit.store)
        .await
        .unwrap()
        .all_rows()
        .await
        .unwrap();
    for r in &rows {
        let text = serde_json::to_string(r).unwrap();
        assert!(!text.contains("L1001") && !text.contains("L1002"), "{text}");
    }
    let notes: Vec<&StoredRow> = rows.iter().filter(|r| r.kind == "notification").collect();
    let reasons: Vec<&str> = notes.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["kennisgeving", "recipient-notified", "recipient-notified"]
    );
    assert!(
        notes
            .iter()
            .all(|r| r.pupil.as_deref() == Some(pseudonym.as_str()))
    );
    assert!(notes.iter().all(|r| !r.detail.contains("k1:")));
    assert!(
        notes[0]
            .detail
            .contains("\"recipients\":[\"gemeente-groningen\",\"wij-groningen\"]")
    );
    let access: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "access")
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(
        access,
        [
            "kennisgeving",
            "kennisgeving",
            "kennisgeving",
            "kennisgeving",
            "kennisgeving",
            "kennisgeving-gemeld",
            "kennisgeving-gemeld"
        ],
        "refused markings record nothing"
    );
    assert!(
        rows.iter()
            .filter(|r| r.kind == "access")
            .all(|r| r.pupil.as_deref() == Some(pseudonym.as_str()))
    );
}

#[tokio::test]
async fn sqlite_kennisgeving_lists_the_recipients_and_tracks_their_notification() {
    kennisgeving_lists_and_tracks(StoreKind::Sqlite).await;
}

#[tokio::test]
async fn postgres_kennisgeving_lists_the_recipients_and_tracks_their_notification() {
    kennisgeving_lists_and_tracks(StoreKind::Postgres).await;
}

/// `audit kennisgeving` and `kennisgeving-gemeld` through the binary.
#[tokio::test]
async fn kennisgeving_cli_registers_and_marks() {
    let (_tmp, config, _since) = notice_traffic(StoreKind::Sqlite).await;
    let json = cli_ok(
        &[
            "audit",
            "kennisgeving",
            "--leerling",
            "L1001",
            "--sinds",
            "2020-01-01",
            "--veld",
            "verzuim.ongeoorloofd_uren",
            "--veld",
            "leerling.voornaam",
            "--registreer",
            "--format",
            "json",
        ],
        &config,
    )
    .await;
    assert!(!json.contains("L1001"));
    let k: serde_json::Value = serde_json::from_str(&json).unwrap();
    let id = k["id"].as_str().unwrap().to_owned();
    assert_eq!(k["recipients"].as_array().unwrap().len(), 2);
    let html = cli_ok(
        &[
            "audit",
            "kennisgeving",
            "--leerling",
            "L1001",
            "--sinds",
            "2020-01-01",
        ],
        &config,
    )
    .await;
    assert!(html.starts_with("<!DOCTYPE html>") && !html.contains("L1001"));
    assert!(html.contains("WIJ Groningen (demo)"));
    let first = cli_ok(
        &[
            "audit",
            "kennisgeving-gemeld",
            "--kennisgeving",
            &id,
            "--org",
            "wij-groningen",
            "--referentie",
            "brief 7",
        ],
        &config,
    )
    .await;
    assert!(
        first.contains(
            "nog te melden: Gemeente Groningen, Leerplicht/RMC (demo) (gemeente-groningen)"
        ),
        "{first}"
    );
    let last = cli_ok(
        &[
            "audit",
            "kennisgeving-gemeld",
            "--kennisgeving",
            &id,
            "--org",
            "gemeente-groningen",
            "--referentie",
            "brief 8",
        ],
        &config,
    )
    .await;
    assert!(last.contains("alle ontvangers zijn gemeld"), "{last}");
    // The admin chain with the new records verifies.
    cli_ok(&["audit", "verify"], &config).await;
}
