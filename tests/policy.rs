//! Policy loading: every problem reported with file and line; a broken set
//! never replaces a good one; the decision table agrees with casbin.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use std::path::Path;

use casbin::prelude::CoreApi;
use common::{POLICIES, copy_policies, edit};
use poortwachter::policy::{self, LoadError, PolicyStore, compile};

fn problems(dir: &Path) -> Vec<policy::Problem> {
    match policy::load_dir(dir) {
        Err(LoadError::Invalid(p)) => p,
        Ok(_) => panic!("expected problems"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn example_policies_are_valid() {
    let set = policy::load_dir(Path::new(POLICIES)).unwrap();
    for id in [
        "aoj-vo-noorderlicht",
        "ect-swv-vo",
        "mpl-swv-vo",
        "expertteam-po",
        "verdiepend-verzuim-vo",
        "mazl",
    ] {
        assert!(set.overleggen.contains_key(id), "{id} missing");
    }
}

#[test]
fn reports_every_problem_with_file_and_line() {
    let (_tmp, dir) = copy_policies();
    let aoj = dir.join("overleggen/aoj-vo-noorderlicht.toml");
    edit(&aoj, "from = \"school\"", "from = \"schoool\"");
    edit(&aoj, "\"verzuim.**\"", "\"verzuim.bestaat_niet\"");
    let mpl = dir.join("overleggen/mpl-swv-vo.toml");
    edit(&mpl, "retention_days", "bewaar = 1\nretention_days");
    let bron = dir.join("bronnen/wij-dossier.toml");
    edit(&bron, "category = \"normal\"", "category = \"gewoon\"");
    let p = problems(&dir);
    let text: Vec<String> = p.iter().map(std::string::ToString::to_string).collect();
    let has = |file: &str, code: &str| {
        p.iter()
            .any(|x| x.file.ends_with(file) && x.code == code && x.line > 1)
    };
    assert!(has("aoj-vo-noorderlicht.toml", "P073"), "{text:#?}");
    assert!(has("aoj-vo-noorderlicht.toml", "P040"), "{text:#?}");
    assert!(
        p.iter().any(|x| x.file.ends_with("mpl-swv-vo.toml")
            && x.code == "P002"
            && x.message.contains("bewaar")),
        "{text:#?}"
    );
    assert!(has("wij-dossier.toml", "P026"), "{text:#?}");
    // The line points at the offending entry.
    let line = p.iter().find(|x| x.code == "P073").unwrap().line;
    let src = std::fs::read_to_string(&aoj).unwrap();
    let snippet: Vec<&str> = src.lines().skip(line - 1).take(8).collect();
    assert!(
        snippet.iter().any(|l| l.contains("schoool")),
        "line {line}: {snippet:?}"
    );
}

/// 1-based line of the `n`th (0-based) line containing `needle`.
fn nth_line(text: &str, needle: &str, n: usize) -> usize {
    let at = text
        .match_indices(needle)
        .nth(n)
        .unwrap_or_else(|| panic!("{needle} #{n} not found"))
        .0;
    text[..at].matches('\n').count() + 1
}

/// Line of the `[[...]]` header of the entry whose `n`th line with `needle`
/// it holds: where problems about an entry point.
fn entry_line(text: &str, needle: &str, n: usize) -> usize {
    let line = nth_line(text, needle, n);
    let lines: Vec<&str> = text.lines().collect();
    (1..=line)
        .rev()
        .find(|l| lines[l - 1].starts_with("[["))
        .expect("an entry header above")
}

/// Breaks one overleg file in four independent ways: an unknown key, a
/// duplicate rule id, a rule with an unknown role, a rule with a field path
/// that matches nothing. Returns the (line, code) each must be reported at.
fn break_four_ways(
    path: &Path,
    key: (&str, &str),
    dup: (&str, &str),
    role: (&str, &str),
    field: (&str, &str),
) -> Vec<(usize, &'static str)> {
    for (from, to) in [key, dup, role, field] {
        edit(path, from, to);
    }
    let text = std::fs::read_to_string(path).unwrap();
    let unknown_key = key.1.lines().find(|l| !key.0.contains(l)).unwrap();
    let mut want = vec![
        (nth_line(&text, unknown_key, 0), "P002"),
        (entry_line(&text, dup.1, 1), "P071"),
        (entry_line(&text, role.1, 0), "P073"),
        (entry_line(&text, field.1, 0), "P040"),
    ];
    want.sort_unstable();
    want
}

fn aoj_broken_four_ways(dir: &Path) -> Vec<(usize, &'static str)> {
    break_four_ways(
        &dir.join("overleggen/aoj-vo-noorderlicht.toml"),
        (
            "id = \"aoj-05\"",
            "id = \"aoj-05\"\ntoestemmming = \"geen\"",
        ),
        ("id = \"aoj-06\"", "id = \"aoj-02\""),
        ("from = \"school\"", "from = \"schoool\""),
        ("\"verzuim.**\"", "\"verzuim.bestaat_niet\""),
    )
}

/// (line, code) of the problems reported for files ending in `file`.
fn reported(p: &[policy::Problem], file: &str) -> Vec<(usize, &'static str)> {
    let mut got: Vec<(usize, &'static str)> = p
        .iter()
        .filter(|x| x.file.ends_with(file))
        .map(|x| (x.line, x.code))
        .collect();
    got.sort_unstable();
    got
}

/// An unknown key used to abort the file, hiding everything else in it.
#[test]
fn an_unknown_key_does_not_hide_the_other_problems_of_its_file() {
    let (_tmp, dir) = copy_policies();
    let want = aoj_broken_four_ways(&dir);
    let p = problems(&dir);
    let text: Vec<String> = p.iter().map(std::string::ToString::to_string).collect();
    assert_eq!(reported(&p, "aoj-vo-noorderlicht.toml"), want, "{text:#?}");
    assert_eq!(p.len(), 4, "nothing else, no echoes: {text:#?}");
    let key = p.iter().find(|x| x.code == "P002").unwrap();
    assert!(key.message.contains("`rules[].toestemmming`"), "{text:#?}");
    assert!(
        key.to_string()
            .starts_with("policies/overleggen/aoj-vo-noorderlicht.toml:"),
        "{text:#?}"
    );
}

#[test]
fn two_broken_files_report_all_their_problems_at_once() {
    let (_tmp, dir) = copy_policies();
    let aoj = aoj_broken_four_ways(&dir);
    let mpl = break_four_ways(
        &dir.join("overleggen/mpl-swv-vo.toml"),
        ("retention_days", "bewaar = 1\nretention_days"),
        ("id = \"mpl-04\"", "id = \"mpl-03\""),
        (
            "from = \"school-noorderlicht\"",
            "from = \"school-noorderlict\"",
        ),
        ("\"tlv.soort\"", "\"tlv.sort\""),
    );
    let p = problems(&dir);
    let text: Vec<String> = p.iter().map(std::string::ToString::to_string).collect();
    assert_eq!(reported(&p, "aoj-vo-noorderlicht.toml"), aoj, "{text:#?}");
    assert_eq!(reported(&p, "mpl-swv-vo.toml"), mpl, "{text:#?}");
    assert_eq!(p.len(), 8, "{text:#?}");
}

/// A definition that cannot be read is reported where it is, once: the
/// references to it are not reported as undefined as well.
#[test]
fn an_unreadable_definition_is_reported_once_not_at_every_reference() {
    let (_tmp, dir) = copy_policies();
    // A role whose organisations are not a list: the rules naming it.
    let aoj = dir.join("overleggen/aoj-vo-noorderlicht.toml");
    edit(
        &aoj,
        "organisations = [\"vo-noorderlicht\"]",
        "organisations = \"vo-noorderlicht\"",
    );
    // An organisation with a malformed entry: the roles and the bron naming it.
    let partners = dir.join("partners.toml");
    edit(&partners, "oin = \"00000099000000000301\"", "oin = 301");
    // A bron with an invalid field: the rules of every overleg naming it.
    let bron = dir.join("bronnen/wij-dossier.toml");
    edit(&bron, "category = \"normal\"", "category = \"gewoon\"");
    let p = problems(&dir);
    let text: Vec<String> = p.iter().map(std::string::ToString::to_string).collect();
    let aoj_text = std::fs::read_to_string(&aoj).unwrap();
    let partners_text = std::fs::read_to_string(&partners).unwrap();
    let bron_text = std::fs::read_to_string(&bron).unwrap();
    assert_eq!(
        reported(&p, "aoj-vo-noorderlicht.toml"),
        [(
            nth_line(&aoj_text, "organisations = \"vo-noorderlicht\"", 0),
            "P002"
        )],
        "{text:#?}"
    );
    assert_eq!(
        reported(&p, "partners.toml"),
        [(nth_line(&partners_text, "oin = 301", 0), "P002")],
        "{text:#?}"
    );
    assert_eq!(
        reported(&p, "wij-dossier.toml"),
        [(entry_line(&bron_text, "\"gewoon\"", 0), "P026")],
        "{text:#?}"
    );
    assert_eq!(p.len(), 3, "{text:#?}");
}

#[tokio::test]
async fn a_broken_reload_keeps_the_old_snapshot() {
    let (_tmp, dir) = copy_policies();
    let store = PolicyStore::open(&dir, poortwachter::policy::approval::Approvers::default())
        .await
        .unwrap();
    let before = store.current().version.clone();
    let aoj = dir.join("overleggen/aoj-vo-noorderlicht.toml");
    edit(&aoj, "consent = \"none\"", "consent = \"maybe\"");
    assert!(store.reload().await.is_err());
    assert_eq!(store.current().version, before);
    // Decisions are unchanged while the file is broken.
    assert!(store.current().table.len() > 20);
    // Restoring the file reloads to the identical version.
    edit(&aoj, "consent = \"maybe\"", "consent = \"none\"");
    let r = store.reload().await.unwrap();
    assert_eq!(r.new_version, before.to_string());
}

#[tokio::test]
async fn a_good_reload_publishes_and_reuses_unchanged_overleggen() {
    let (_tmp, dir) = copy_policies();
    let store = PolicyStore::open(&dir, poortwachter::policy::approval::Approvers::default())
        .await
        .unwrap();
    let before = store.current();
    let aoj = dir.join("overleggen/aoj-vo-noorderlicht.toml");
    edit(&aoj, "name = \"", "name = \"(herzien) ");
    let r = store.reload().await.unwrap();
    assert_eq!(r.old_version, before.version.to_string());
    assert_ne!(r.new_version, r.old_version);
    assert_eq!(store.current().table.len(), before.table.len());
}

#[tokio::test]
async fn every_table_entry_is_allowed_by_casbin_and_nothing_else_is() {
    let set = policy::load_dir(Path::new(POLICIES)).unwrap();
    let snap = poortwachter::policy::decision::Snapshot::build(set.clone(), None)
        .await
        .unwrap();
    assert!(snap.table.len() > 20);
    // Independent check: rebuild casbin per overleg and compare every
    // (key, field) the table holds, and every catalogue field it does not.
    for (id, overleg) in &set.overleggen {
        for (role, p) in compile::p_rows(&set, overleg) {
            let e = compile::enforcer(id, p, compile::g_rows(overleg, &role))
                .await
                .unwrap();
            for (key, grant) in snap
                .table
                .iter()
                .filter(|(k, _)| &k.overleg == id && k.role == role)
            {
                let bron = &set.bronnen[&key.bron];
                for (idx, f) in bron.catalogue.iter().enumerate() {
                    let allowed_any = poortwachter::policy::model::Consent::ALL.iter().any(|c| {
                        e.enforce((
                            key.org.as_str(),
                            key.role.as_str(),
                            key.overleg.as_str(),
                            key.purpose.as_str(),
                            key.bron.as_str(),
                            key.owner.as_str(),
                            key.act.as_str(),
                            f.path.as_str(),
                            c.as_str(),
                        ))
                        .unwrap()
                    });
                    assert_eq!(grant.fields[idx].is_some(), allowed_any, "{key} {}", f.path);
                }
            }
        }
    }
}

#[tokio::test]
async fn a_row_with_the_wrong_arity_is_refused_before_casbin_sees_it() {
    let Err(err) = compile::enforcer("x", vec![vec!["a".into(), "b".into()]], vec![]).await else {
        panic!("a two-column row was accepted");
    };
    assert!(
        matches!(
            err,
            compile::CompileError::Arity {
                got: 2,
                expected: 9,
                ..
            }
        ),
        "{err}"
    );
}

/// Hot reload under load: a storm of reloads (good and broken files) never
/// fails or wrongly decides a request, a broken file leaves decisions as they
/// were, and every reload is in the audit trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_storm_under_load_never_fails_a_request() {
    use common::{Options, TestGateway};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let (_tmp, dir) = copy_policies();
    let mut gw = TestGateway::start_with(Options {
        policies: dir.clone(),
        server_extra: String::new(),
        ..Options::default()
    })
    .await;
    let cert_lp = gw.pki.client_for("gemeente-groningen");
    let cert_wij = gw.pki.client_for("wij-groningen");
    let stop = Arc::new(AtomicBool::new(false));
    let wrong = Arc::new(AtomicUsize::new(0));
    let total = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for (cert, purpose, expect_withheld_zero) in [
        (cert_lp.clone(), "aanpak-verzuim", true),
        (cert_wij.clone(), "afstemming-ondersteuning", false),
    ] {
        let c = gw.client_with(Some(&cert), true);
        let (stop, wrong, total) = (Arc::clone(&stop), Arc::clone(&wrong), Arc::clone(&total));
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = c
                    .get(
                        "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim",
                        purpose,
                    )
                    .await;
                total.fetch_add(1, Ordering::Relaxed);
                let withheld_zero = r.header("x-poortwachter-withheld") == Some("0");
                if r.status != 200 || withheld_zero != expect_withheld_zero {
                    wrong.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let mazl = dir.join("overleggen/mazl.toml");
    let original = std::fs::read_to_string(&mazl).unwrap();
    let stats = poortwachter::gateway::reload::ReloadStats::default();
    let audit = gw.state.audit.downgrade();
    for i in 0..30 {
        // Alternate: a harmless change, a broken file, the original.
        let text = match i % 3 {
            0 => original.replacen("name = \"", "name = \"(herzien) ", 1),
            1 => format!("{original}\n[[rules]]\nid = \"kapot\"\n"),
            _ => original.clone(),
        };
        std::fs::write(&mazl, text).unwrap();
        let ok =
            poortwachter::gateway::reload::reload_policy(&gw.state.policy, &audit, &stats, "test")
                .await;
        assert_eq!(ok, i % 3 != 1, "reload {i}");
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    assert!(total.load(Ordering::Relaxed) > 20);
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "of {}",
        total.load(Ordering::Relaxed)
    );
    assert_eq!(stats.policy_failed.load(Ordering::Relaxed), 10);
    let rows = gw.audit_rows().await;
    let reloads: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "reload")
        .map(|r| r.reason.as_str())
        .collect();
    assert_eq!(reloads.len(), 30);
    assert_eq!(
        reloads
            .iter()
            .filter(|r| **r == "policy-reload-failed")
            .count(),
        10
    );
    let first = rows.iter().find(|r| r.kind == "reload").unwrap();
    let detail: serde_json::Value = serde_json::from_str(&first.detail).unwrap();
    assert_eq!(detail["trigger"], "test");
    assert!(detail["delta"]["fields_gained"].is_number());
}

/// Editing a policy file on disk reloads it (watcher, debounced) and the
/// change takes effect; the reload is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_change_reloads_the_policy() {
    use common::{Options, TestGateway};
    let (_tmp, dir) = copy_policies();
    // `policy.watch` on: the lifecycle starts the watcher, as `serve` does.
    let mut gw = TestGateway::start_with(Options {
        policies: dir.clone(),
        watch: true,
        ..Options::default()
    })
    .await;
    let lp = gw.client("gemeente-groningen");
    let path = "/v1/aoj-vo-noorderlicht/jgz-dossier/jeugdigen/L1001/advies";
    assert_eq!(lp.get(path, "aanpak-verzuim").await.status, 403);
    // Give leerplicht a rule on the JGZ advice (for the test only).
    let aoj = dir.join("overleggen/aoj-vo-noorderlicht.toml");
    let mut text = std::fs::read_to_string(&aoj).unwrap();
    text.push_str("\n[[rules]]\nid = \"test-99\"\npurpose = \"aanpak-verzuim\"\nfrom = \"jgz\"\nto = \"leerplicht\"\nbron = \"jgz-dossier\"\nfields = [\"advies.datum\"]\nconsent = \"none\"\njustification = \"test\"\n");
    std::fs::write(&aoj, text).unwrap();
    let mut status = 0;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        status = lp.get(path, "aanpak-verzuim").await.status.as_u16();
        if status == 200 {
            break;
        }
    }
    let reloads: Vec<String> = gw
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.kind == "reload")
        .map(|r| format!("{} {}", r.reason, r.detail))
        .collect();
    assert_eq!(
        status, 200,
        "the changed file was not picked up: {reloads:?}"
    );
    let rows = gw.audit_rows().await;
    assert!(rows.iter().any(|r| r.kind == "reload"
        && r.reason == "policy-reloaded"
        && r.detail.contains("file-change")));
}

/// `policy explain` agrees with the decision table for every (key, field) of
/// the example set, and its casbin check agrees with its rules.
#[tokio::test]
async fn explain_agrees_with_every_decision() {
    use poortwachter::policy::tools::explain::{Question, explain};
    let set = policy::load_dir(Path::new(POLICIES)).unwrap();
    let snap = poortwachter::policy::decision::Snapshot::build(set.clone(), None)
        .await
        .unwrap();
    let mut checked = 0;
    for (key, grant) in snap
        .table
        .iter()
        .filter(|(k, _)| k.overleg == "aoj-vo-noorderlicht")
    {
        let bron = &set.bronnen[&key.bron];
        for (idx, f) in bron.catalogue.iter().enumerate() {
            let q = Question {
                org: &key.org,
                role: Some(&key.role),
                overleg: &key.overleg,
                purpose: &key.purpose,
                bron: &key.bron,
                field: f.path.as_str(),
                act: key.act,
                // Named only where a supplier hosts the bron for several.
                owner: bron.hosted_by.as_ref().map(|_| key.owner.as_str()),
                // An emergency purpose is asked with one of its reasons.
                emergency: set.overleggen[&key.overleg]
                    .purpose(&key.purpose)
                    .and_then(|p| p.emergency.as_ref())
                    .and_then(|t| t.reasons.first())
                    .map(|r| r.code()),
            };
            let e = explain(&snap, &q).await.unwrap();
            assert_eq!(e.allowed, grant.fields[idx].is_some(), "{key} {}", f.path);
            assert_eq!(e.casbin, e.allowed, "{key} {}", f.path);
            if e.allowed {
                let rules: Vec<&str> = e.allowing.iter().map(|r| r.id.as_str()).collect();
                let table: Vec<&str> = grant.fields[idx]
                    .as_ref()
                    .unwrap()
                    .rules
                    .iter()
                    .map(|r| &**r)
                    .collect();
                assert_eq!(rules, table);
            }
            checked += 1;
        }
    }
    assert!(checked > 100);
}
