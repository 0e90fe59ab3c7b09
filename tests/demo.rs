//! `poortwachter demo` end to end: the real binary creates its PKI and keys,
//! starts, and the curl commands it prints give an allowed, a filtered and a
//! denied response (run with the machine's curl, exactly as printed).
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn the_printed_demo_commands_work() {
    let tmp = tempfile::tempdir().unwrap();
    let port = common::spare_port();
    let admin_port = common::spare_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .arg("demo")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
        .args(["--policies", common::POLICIES])
        .arg("--certs")
        .arg(tmp.path().join("certs"))
        .arg("--data")
        .arg(tmp.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut commands = Vec::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.trim_start().starts_with("curl ") {
                commands.push(line.trim().to_owned());
                if commands.len() == 16 {
                    break;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_mins(1), read)
        .await
        .expect("demo printed no commands");
    assert_eq!(commands.len(), 16);
    // The FG dashboard instructions, then the demo traffic.
    let mut dashboard = None;
    let mut traffic = 0;
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(cmd) = line.trim().strip_prefix("with curl:") {
                dashboard = Some(cmd.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("sent ") {
                traffic = rest.split(' ').next().unwrap().parse().unwrap();
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_mins(1), read)
        .await
        .expect("demo sent no traffic");
    let dashboard = dashboard.expect("demo printed no dashboard command");
    assert!(dashboard.contains(&format!("https://localhost:{admin_port}/zoeken")));
    assert!(traffic >= 5);
    assert!(tmp.path().join("certs/ca.pem").exists());
    // The PKIoverheid shape: each client file holds the chain it presents
    // (end entity, TSP CA, domain CA) under the one root the gateway trusts.
    for holder in ["gemeente-groningen", "las-leverancier"] {
        let pem = std::fs::read_to_string(tmp.path().join(format!("certs/{holder}.pem"))).unwrap();
        assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 3, "{holder}");
    }
    let crls = std::fs::read_to_string(tmp.path().join("certs/crl.pem")).unwrap();
    assert_eq!(
        crls.matches("BEGIN X509 CRL").count(),
        4,
        "root, domain, two TSPs"
    );
    assert!(tmp.path().join("data/pseudonym.key").exists());

    let mut outputs = Vec::new();
    for cmd in &commands {
        let out = tokio::process::Command::new("bash")
            .args(["-c", cmd])
            .output()
            .await
            .unwrap();
        outputs.push(String::from_utf8_lossy(&out.stdout).to_lowercase());
    }
    // 1. allowed: nothing withheld.
    assert!(outputs[0].starts_with("http/2 200"), "{}", outputs[0]);
    assert!(
        outputs[0].contains("x-poortwachter-withheld: 0"),
        "{}",
        outputs[0]
    );
    // 2. filtered: some fields withheld.
    assert!(outputs[1].starts_with("http/2 200"), "{}", outputs[1]);
    let withheld: usize = outputs[1]
        .lines()
        .find_map(|l| l.strip_prefix("x-poortwachter-withheld: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(withheld > 0);
    // 3. denied, as problem+json.
    assert!(outputs[2].starts_with("http/2 403"), "{}", outputs[2]);
    assert!(outputs[2].contains("application/problem+json"));
    assert!(outputs[2].contains("urn:poortwachter:problem:no-rule"));
    // 4. an unregistered pupil: case binding.
    assert!(outputs[3].starts_with("http/2 403"), "{}", outputs[3]);
    assert!(outputs[3].contains("urn:poortwachter:problem:not-registered"));
    // 5. allowed with the parents' consent.
    assert!(outputs[4].starts_with("http/2 200"), "{}", outputs[4]);
    assert!(
        outputs[4].contains("schoolbelastbaarheid"),
        "{}",
        outputs[4]
    );
    // 6. withdrawn.
    assert!(outputs[5].starts_with("http/2 200"), "{}", outputs[5]);
    assert!(
        outputs[5].contains("\"ingetrokken_op\":\"20"),
        "{}",
        outputs[5]
    );
    // 7. denied after the withdrawal.
    assert!(outputs[6].starts_with("http/2 403"), "{}", outputs[6]);
    assert!(outputs[6].contains("urn:poortwachter:problem:consent-required"));
    // 8. via the school's supplier under its mandate.
    assert!(outputs[7].starts_with("http/2 200"), "{}", outputs[7]);
    assert!(outputs[7].contains("zaak"), "{}", outputs[7]);
    // 9. the supplier names a school whose mandate does not cover the overleg.
    assert!(outputs[8].starts_with("http/2 403"), "{}", outputs[8]);
    assert!(outputs[8].contains("urn:poortwachter:problem:no-mandate"));
    // 10. the supplier names nobody.
    assert!(outputs[9].starts_with("http/2 400"), "{}", outputs[9]);
    assert!(outputs[9].contains("urn:poortwachter:problem:principal-required"));
    // 11. a bron the supplier hosts for several schools, the owner named:
    // De Wadden's rule (mazl-08) decides, the parent's free text stays out.
    assert!(outputs[10].starts_with("http/2 200"), "{}", outputs[10]);
    assert!(outputs[10].contains("gemeld_door"), "{}", outputs[10]);
    assert!(!outputs[10].contains("reden"), "{}", outputs[10]);
    // 12. an owner that did not switch the supplier on for this overleg.
    assert!(outputs[11].starts_with("http/2 403"), "{}", outputs[11]);
    assert!(outputs[11].contains("urn:poortwachter:problem:no-host-mandate"));
    // 13. an objection recorded; 14. it stops WIJ's 6(1)(e) flow; 15. not
    // leerplicht's 6(1)(c) one.
    assert!(outputs[12].starts_with("http/2 201"), "{}", outputs[12]);
    assert!(outputs[13].starts_with("http/2 403"), "{}", outputs[13]);
    assert!(outputs[13].contains("urn:poortwachter:problem:objection"));
    assert!(outputs[14].starts_with("http/2 200"), "{}", outputs[14]);
    // 16. an emergency disclosure about the unregistered pupil: the
    // parents' phone, nothing outside the emergency rule.
    assert!(outputs[15].starts_with("http/2 200"), "{}", outputs[15]);
    assert!(outputs[15].contains("telefoon"), "{}", outputs[15]);
    assert!(!outputs[15].contains("verzuim"), "{}", outputs[15]);

    // The FG dashboard, as printed, lists the demo traffic.
    let out = tokio::process::Command::new("bash")
        .args(["-c", &dashboard])
        .output()
        .await
        .unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains("<h1>Zoeken in het logboek</h1>"), "{page}");
    assert!(page.contains("gemeente-groningen"));
    // ... and its review queue has command 16's window, to review.
    let out = tokio::process::Command::new("bash")
        .args(["-c", &dashboard.replace("/zoeken", "/spoed")])
        .output()
        .await
        .unwrap();
    let queue = String::from_utf8_lossy(&out.stdout);
    assert!(queue.contains("1 te beoordelen"), "{queue}");
    assert!(queue.contains("mentor ongerust"), "{queue}");

    child.start_kill().unwrap();
    let _ = child.wait().await;
    // All were audited, besides the demo's own register changes.
    let store = poortwachter::audit::Store::connect(&format!(
        "sqlite://{}/data/audit.db",
        tmp.path().display()
    ))
    .await
    .unwrap();
    let rows = store.all_rows().await.unwrap();
    let outcomes: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "request")
        .map(|r| r.outcome.as_str())
        .collect();
    // The sixteen printed commands (the withdrawal and the objection are
    // register changes) and the demo traffic.
    assert_eq!(outcomes.len(), traffic + 14);
    for o in ["allowed", "filtered", "denied"] {
        assert!(outcomes.contains(&o), "{outcomes:?}");
    }
    assert_eq!(
        &outcomes[traffic..],
        [
            "allowed", "filtered", "denied", "denied", "filtered", "denied", "filtered", "denied",
            "denied", "filtered", "denied", "denied", "allowed", "filtered"
        ]
    );
    // The hosted bron's records name the school whose data it was, not the
    // supplier that hosts it (nobody connected through a supplier).
    let mut requests: Vec<_> = rows.iter().filter(|r| r.kind == "request").collect();
    // The emergency disclosure: a record of its own, opening the window.
    let spoed = requests.pop().unwrap();
    assert_eq!(spoed.reason, "emergency-window-opened");
    assert!(
        spoed.detail.contains("\"reden\":\"acuut-gevaar\""),
        "{}",
        spoed.detail
    );
    let n = requests.len();
    let hosted = &requests[n - 4..n - 2];
    assert_eq!(hosted[0].owner.as_deref(), Some("po-de-wadden"));
    assert_eq!(hosted[1].owner.as_deref(), Some("vso-de-borg"));
    assert!(hosted.iter().all(|r| r.supplier.is_none()));
    assert!(requests[..n - 4].iter().all(|r| r.owner.is_none()));
    // The objection: WIJ refused with it, leerplicht's record says why it
    // did not apply.
    assert_eq!(requests[n - 2].reason, "objection");
    assert!(
        requests[n - 1].detail.contains("6.1.c"),
        "{}",
        requests[n - 1].detail
    );
    let register: Vec<&str> = rows
        .iter()
        .filter(|r| r.kind == "register")
        .map(|r| r.reason.as_str())
        .collect();
    assert!(register.contains(&"case-registered"));
    assert_eq!(register.last(), Some(&"objection-lodged"));
    assert!(register.contains(&"consent-withdrawn"));
    // The dashboard view is itself in the trail.
    assert!(
        rows.iter()
            .any(|r| r.kind == "access" && r.org.as_deref() == Some("fg-convenant"))
    );
}
