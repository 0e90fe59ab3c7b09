//! kill -9 the real gateway process under load, repeatedly: every response a
//! client received has its audit record, and the chains verify. Bounded: a
//! few cycles per store here; `issue 4`'s reliability run does hundreds.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use poortwachter::audit::{Store, admin};
use poortwachter::config::Config;

const VERZUIM: &str = "/v1/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_ready(client: &TestClient) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = client
            .request(
                http::Method::GET,
                VERZUIM,
                &[("x-doelbinding", "aanpak-verzuim")],
                None,
            )
            .await
            && r.status == 200
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn kill_under_load(kind: StoreKind, cycles: usize) {
    let port = free_port();
    let mut p = Prepared::new(
        Options {
            store: kind,
            ..Options::default()
        },
        &format!("127.0.0.1:{port}"),
    )
    .await;
    let cert = p.pki.client_for("gemeente-groningen");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut total_acked = 0;
    for cycle in 0..cycles {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
            .arg("serve")
            .arg("--config")
            .arg(&p.config_path)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let probe = TestClient::new(addr, &p.pki.ca.cert_pem, Some(&cert), false);
        assert!(
            wait_ready(&probe).await,
            "gateway did not come up in cycle {cycle}"
        );
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut load = Vec::new();
        for _ in 0..4 {
            let c = TestClient::new(addr, &p.pki.ca.cert_pem, Some(&cert), false);
            let acked = Arc::clone(&acked);
            let stop = Arc::clone(&stop);
            load.push(tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match c
                        .request(
                            http::Method::GET,
                            VERZUIM,
                            &[("x-doelbinding", "aanpak-verzuim")],
                            None,
                        )
                        .await
                    {
                        Ok(r) if r.status == 200 => {
                            let id = r.header("x-request-id").unwrap().to_owned();
                            acked.lock().unwrap().insert(id);
                        }
                        _ => {}
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(150 + (cycle as u64 * 97) % 300)).await;
        child.start_kill().unwrap(); // SIGKILL
        let _ = child.wait().await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for l in load {
            let _ = l.await;
        }
        total_acked = acked.lock().unwrap().len();
    }
    assert!(total_acked > cycles * 10, "too little load: {total_acked}");

    let cfg = Config::load(&p.config_path).unwrap();
    let store = Store::connect(&cfg.audit.store).await.unwrap();
    let rows = store.all_rows().await.unwrap();
    let stored: HashSet<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    let missing: Vec<_> = acked
        .lock()
        .unwrap()
        .iter()
        .filter(|id| !stored.contains(id.as_str()))
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged responses have no record: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let report = admin::verify(&store, &cfg.audit, None, None).await.unwrap();
    assert!(report.ok(), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kill_9_under_load_loses_no_acknowledged_record() {
    kill_under_load(StoreKind::Sqlite, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kill_9_under_load_loses_no_acknowledged_record() {
    kill_under_load(StoreKind::Postgres, 4).await;
}
