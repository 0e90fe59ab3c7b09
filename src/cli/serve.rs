//! `serve`, `demo` and `certs dev`: the gateway's lifecycle from the command
//! line (the lifecycle itself is the library's, `poortwachter::lifecycle`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use poortwachter::config::Config;
use poortwachter::dev::{certs, demo};
use poortwachter::lifecycle::{Gateway, Listeners, Running};
use poortwachter::policy;

#[derive(clap::Args)]
pub struct DemoArgs {
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    #[arg(long, default_value = "policies")]
    policies: PathBuf,
    #[arg(long, default_value = "certs-dev")]
    certs: PathBuf,
    #[arg(long, default_value = "demo-data")]
    data: PathBuf,
    /// The admin listener: FG dashboard, health, readiness, metrics.
    #[arg(long, default_value = "127.0.0.1:9443")]
    admin_listen: SocketAddr,
}

#[derive(Subcommand)]
pub enum CertsCmd {
    /// Write a development PKI (CA, gateway, one client per organisation). DEVELOPMENT ONLY.
    Dev {
        #[arg(long, default_value = "certs-dev")]
        dir: PathBuf,
        #[arg(long, default_value = "policies")]
        policies: PathBuf,
    },
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let kind = tokio::signal::unix::SignalKind::terminate();
        let Ok(mut term) = tokio::signal::unix::signal(kind) else {
            let _ = ctrl_c.await;
            return;
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn start(cfg: &Config) -> anyhow::Result<Running> {
    let listeners = Listeners::bind(cfg).await?;
    Ok(Gateway::start(cfg, listeners, shutdown_signal()).await?)
}

/// `serve --config FILE`: until SIGINT/SIGTERM.
pub async fn serve(config: &Path) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    init_logging(&cfg.log.filter, cfg.log.format == "json");
    start(&cfg).await?.wait().await;
    Ok(ExitCode::SUCCESS)
}

/// `demo`: a development PKI, demo bronnen, the registers seeded, the
/// gateway and its admin listener, printed curl commands, some traffic.
pub async fn demo(a: DemoArgs) -> anyhow::Result<ExitCode> {
    init_logging("info", false);
    let set = policy::load_dir(&a.policies)?;
    if demo::ensure_certs(&a.certs, &set)? {
        println!("created a DEVELOPMENT-ONLY PKI in {}", a.certs.display());
    }
    demo::ensure_keys(&a.data).with_context(|| format!("cannot prepare {}", a.data.display()))?;
    let bronnen = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bronnen_addr = bronnen.local_addr()?;
    tokio::spawn(demo::serve_bronnen(
        bronnen,
        std::sync::Arc::new(set.clone()),
    ));
    let paths = demo::DemoPaths {
        policies: a.policies.clone(),
        certs: a.certs.clone(),
        data: a.data.clone(),
    };
    let cfg_path = a.data.join("demo.toml");
    let text = demo::config_toml(&paths, a.listen, bronnen_addr, &set, Some(a.admin_listen));
    std::fs::write(&cfg_path, text)?;
    let cfg = Config::load(&cfg_path)?;
    let running = start(&cfg).await?;
    println!(
        "poortwachter demo: gateway on https://localhost:{} (config {}), demo bronnen on {bronnen_addr}, audit in {}/audit.db",
        a.listen.port(),
        cfg_path.display(),
        a.data.display()
    );
    let consent_id = demo::seed_registers(running.state()).await?;
    println!("{}", demo::curl_examples(&a.certs, a.listen, &consent_id));
    if let Some(addr) = running.admin_addr() {
        println!("{}", demo::dashboard_instructions(&a.certs, addr, &set));
    }
    let traffic = spawn_traffic(a.certs.clone(), a.listen);
    running.wait().await;
    traffic.abort();
    Ok(ExitCode::SUCCESS)
}

/// Some traffic, so the FG dashboard has something to show.
fn spawn_traffic(certs: PathBuf, listen: SocketAddr) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match demo::generate_traffic(&certs, listen).await {
            Ok(n) => println!(
                "sent {n} demo requests (allowed, filtered and denied) so the FG dashboard has something to show"
            ),
            Err(e) => tracing::warn!(error = %e, "demo traffic failed"),
        }
    })
}

/// `certs dev`.
pub fn certs(cmd: CertsCmd) -> anyhow::Result<ExitCode> {
    let CertsCmd::Dev { dir, policies } = cmd;
    let set = policy::load_dir(&policies)?;
    let orgs = set.certificate_holders();
    certs::write_dev_pki(&dir, &orgs)?;
    println!(
        "wrote a DEVELOPMENT-ONLY PKI to {} ({} client certificates)",
        dir.display(),
        orgs.len()
    );
    Ok(ExitCode::SUCCESS)
}
