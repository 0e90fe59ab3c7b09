//! Policy approvals (issue 18, question (c)): a version signed by the
//! approvers `[policy.approval]` requires is served; an unapproved one is
//! refused at start and at reload, and every refusal and every accepted
//! change is in the trail, with who approved it, for `audit wijzigingen`.

#![allow(
    clippy::too_many_lines,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule)"
)]

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use poortwachter::config::Config;
use poortwachter::gateway::reload::{ReloadStats, reload_policy};
use poortwachter::lifecycle::{AppError, Gateway, Listeners};
use poortwachter::policy::ReloadError;

fn cli(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = cli(args);
    assert!(
        out.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn approve(dir: &Path, key: &Path) {
    let out = ok(&[
        "policy",
        "approve",
        "--dir",
        dir.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--approver",
        "fg",
    ]);
    assert!(out.contains("approved policy version"), "{out}");
}

#[tokio::test]
async fn only_an_approved_policy_set_is_served_and_every_change_is_recorded() {
    let (keys, dir) = copy_policies();
    let key = keys.path().join("fg-approval.key");
    ok(&["policy", "keygen", "--out", key.to_str().unwrap()]);
    let opts = || Options {
        policies: dir.clone(),
        policy_extra: format!(
            "[policy.approval]\nrequired = [\"fg\"]\nkeys = {{ fg = \"{}.pub\" }}\n",
            key.display()
        ),
        ..Options::default()
    };

    // Unapproved: serve refuses to start, says why, and records it.
    let p = Prepared::new(opts(), "127.0.0.1:0").await;
    let cfg = Config::load(&p.config_path).unwrap();
    let listeners = Listeners::bind(&cfg).await.unwrap();
    let Err(err) = Gateway::start(&cfg, listeners, std::future::pending()).await else {
        panic!("an unapproved set was served");
    };
    let AppError::Policy(ReloadError::Unapproved { missing, .. }) = &err else {
        panic!("{err:?}");
    };
    assert_eq!(missing, &["fg"]);
    let store_url = p.store_url.clone();
    let rows = poortwachter::audit::Store::connect(&store_url)
        .await
        .unwrap()
        .all_rows()
        .await
        .unwrap();
    assert!(
        rows.iter()
            .any(|r| r.kind == "reload" && r.reason == "policy-refused-unapproved"),
        "the refusal at start is recorded"
    );

    // Approved: it starts; the approval is in the version's directory.
    approve(&dir, &key);
    let gw = TestGateway::start_with(Options {
        store_url: Some(store_url.clone()),
        ..opts()
    })
    .await;
    assert_eq!(gw.state.policy.approvals().valid[0].approver, "fg");
    let served = gw.state.policy.current().version.to_string();

    // A change nobody approved is refused at reload; the old set stays.
    let mazl = dir.join("overleggen/mazl.toml");
    edit(&mazl, "name = \"", "name = \"(herzien) ");
    let stats = ReloadStats::default();
    let audit = gw.state.audit.downgrade();
    assert!(!reload_policy(&gw.state.policy, &audit, &stats, "test").await);
    assert_eq!(&*gw.state.policy.current().version, served.as_str());
    // Approved, the same change goes in.
    approve(&dir, &key);
    assert!(reload_policy(&gw.state.policy, &audit, &stats, "test").await);
    let new_version = gw.state.policy.current().version.to_string();
    assert_ne!(new_version, served);

    let rows = gw.audit_rows().await;
    let reloads: Vec<(&str, serde_json::Value)> = rows
        .iter()
        .filter(|r| r.kind == "reload")
        .map(|r| (r.reason.as_str(), serde_json::from_str(&r.detail).unwrap()))
        .collect();
    assert_eq!(reloads.len(), 3, "{reloads:?}");
    assert_eq!(reloads[1].0, "policy-refused-unapproved");
    assert_eq!(reloads[1].1["missing_approvals"], serde_json::json!(["fg"]));
    assert_eq!(reloads[1].1["kept_version"], served);
    assert_eq!(reloads[2].0, "policy-reloaded");
    assert_eq!(reloads[2].1["approvals"][0]["approver"], "fg");

    // audit wijzigingen lists all three with their approvals, and records
    // its access.
    let config = gw.config_path.to_str().unwrap().to_owned();
    let json = ok(&[
        "audit",
        "wijzigingen",
        "--config",
        &config,
        "--format",
        "json",
    ]);
    let changes: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let outcomes: Vec<&str> = changes
        .iter()
        .map(|c| c["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "policy-refused-unapproved",
            "policy-refused-unapproved",
            "policy-reloaded"
        ]
    );
    assert_eq!(changes[0]["trigger"], "start");
    assert_eq!(changes[2]["approved_by"], serde_json::json!(["fg"]));
    assert_eq!(changes[2]["new_version"], new_version);
    assert!(changes[2]["fields_gained"].is_u64());
    let table = ok(&["audit", "wijzigingen", "--config", &config]);
    assert!(
        table.contains("ONTBREEKT: fg") && table.contains("3 wijziging(en)"),
        "{table}"
    );
    let rows = gw.audit_rows().await;
    assert!(
        rows.iter()
            .filter(|r| r.kind == "access" && r.reason == "wijzigingen")
            .count()
            >= 2
    );

    // policy diff names the approval of the new version, verified with the
    // configured key (and says so when it cannot verify).
    let (_old_tmp, old) = copy_policies();
    let diff = ok(&[
        "policy",
        "diff",
        old.to_str().unwrap(),
        dir.to_str().unwrap(),
        "--config",
        &config,
    ]);
    assert!(diff.contains("Goedkeuringen van versie"), "{diff}");
    assert!(diff.contains("fg op ") && diff.contains("geldig"), "{diff}");
    let unverified = ok(&[
        "policy",
        "diff",
        old.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert!(unverified.contains("niet gecontroleerd"), "{unverified}");
    gw.stop().await;
}
