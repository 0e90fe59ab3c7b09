//! Policy loading: every problem reported with file and line; a broken set
//! never replaces a good one; the decision table agrees with casbin.

mod common;

use std::path::{Path, PathBuf};

use casbin::prelude::CoreApi;
use common::POLICIES;
use poortwachter::policy::{self, LoadError, PolicyStore, compile};

fn copy_policies() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("policies");
    for sub in ["", "bronnen", "overleggen"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        for e in std::fs::read_dir(Path::new(POLICIES).join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                std::fs::copy(&p, dir.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    (tmp, dir)
}

fn edit(path: &Path, from: &str, to: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, s.replacen(from, to, 1)).unwrap();
}

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
    let text: Vec<String> = p.iter().map(|p| p.to_string()).collect();
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

#[tokio::test]
async fn a_broken_reload_keeps_the_old_snapshot() {
    let (_tmp, dir) = copy_policies();
    let store = PolicyStore::open(&dir).await.unwrap();
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
    let store = PolicyStore::open(&dir).await.unwrap();
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
    let snap = poortwachter::decision::Snapshot::build(set.clone(), None)
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
                    let allowed_any = poortwachter::policy::set::Consent::ALL.iter().any(|c| {
                        e.enforce((
                            key.org.as_str(),
                            key.role.as_str(),
                            key.overleg.as_str(),
                            key.purpose.as_str(),
                            key.bron.as_str(),
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
                expected: 8,
                ..
            }
        ),
        "{err}"
    );
}
