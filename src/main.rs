//! The `poortwachter` binary: subcommands over the library.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use poortwachter::dev::{certs, demo};
use poortwachter::gateway::server;
use poortwachter::lifecycle as app;
use poortwachter::{config::Config, policy, review};

mod cli;

#[derive(Parser)]
#[command(
    name = "poortwachter",
    version,
    about = "Privacy-covenant-aware data-sharing gateway"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

/// `--format text|json`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TextOrJson {
    Text,
    Json,
}

/// `--format md|html` (`policy render`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum MdOrHtml {
    Md,
    Html,
}

/// `--format text|md` (`policy diff`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TextOrMd {
    Text,
    Md,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway with a configuration file.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the embedded demo: dev certificates, demo bronnen, SQLite audit.
    Demo {
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
    },
    /// Certificates.
    Certs {
        #[command(subcommand)]
        cmd: CertsCmd,
    },
    /// Policy administration.
    Policy {
        #[command(subcommand)]
        cmd: PolicyCmd,
    },
    /// The audit trail: verify, export checkpoints, purge, keys.
    Audit {
        #[command(subcommand)]
        cmd: AuditCmd,
    },
    /// Case binding: register (aanmelden) pupils in a casusoverleg, end, list.
    Cases {
        #[command(subcommand)]
        cmd: cli::cases::CasesCmd,
    },
    /// The consent register: record and withdraw toestemming.
    Consent {
        #[command(subcommand)]
        cmd: cli::cases::ConsentCmd,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Recompute every hash, follow every chain, check every checkpoint; exit 1 on any finding.
    Verify {
        #[arg(long)]
        config: PathBuf,
        /// Checkpoints exported earlier (JSON lines), to detect dropped checkpoints and removed newest records.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// Public key (hex) to verify checkpoint signatures with.
        #[arg(long)]
        public_key: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Print all signed checkpoints as JSON lines, for safekeeping elsewhere.
    Checkpoints {
        #[arg(long)]
        config: PathBuf,
    },
    /// Erase personal columns of records past their overleg's retention (tombstones keep the chain verifiable).
    Purge {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the pseudonym(s) of a pupil id under every key version, to find its records.
    Pseudonym {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        leerling: String,
    },
    /// Create a pseudonym key and a checkpoint signing key (refuses to overwrite).
    Keygen {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Search the trail (the search is itself recorded, kind = access).
    Query {
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
        /// Most records shown.
        #[arg(long, default_value_t = poortwachter::review::query::DEFAULT_LIMIT)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = review::cli::QueryFormat::Table)]
        format: review::cli::QueryFormat,
    },
    /// Export matching records: csv, jsonl, or logboek (Logboek Dataverwerkingen: one line per data subject).
    Export {
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_enum, default_value_t = review::export::Format::JsonLines)]
        format: review::export::Format,
    },
    /// The AVG art. 15 report for one pupil: every disclosure, named recipients, purposes, grondslag, fields.
    Inzage {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        leerling: String,
        /// Also list refused requests (flagged; nothing was shared).
        #[arg(long)]
        met_weigeringen: bool,
        #[arg(long, value_enum, default_value_t = review::cli::ReportFormat::Html)]
        format: review::cli::ReportFormat,
    },
    /// DPIA accountability report for a period: volume, fields per role, denials, policy changes, anomalies.
    Rapport {
        #[arg(long)]
        config: PathBuf,
        /// First day (YYYY-MM-DD) or UTC time.
        #[arg(long)]
        van: String,
        /// Last day, inclusive (YYYY-MM-DD), or UTC time (exclusive).
        #[arg(long)]
        tot: String,
        #[arg(long, value_enum, default_value_t = review::cli::ReportFormat::Html)]
        format: review::cli::ReportFormat,
    },
}

/// Search filters shared by `audit query` and `audit export`.
#[derive(clap::Args)]
struct FilterArgs {
    /// From this day (YYYY-MM-DD) or UTC time.
    #[arg(long, alias = "from")]
    van: Option<String>,
    /// Up to and including this day, or before this UTC time.
    #[arg(long, alias = "to")]
    tot: Option<String>,
    #[arg(long)]
    overleg: Option<String>,
    /// Requesting organisation id.
    #[arg(long, alias = "organisatie")]
    org: Option<String>,
    #[arg(long, alias = "rol")]
    role: Option<String>,
    #[arg(long, alias = "doel")]
    purpose: Option<String>,
    /// A catalogue field path that was shared, e.g. verzuim.meldingen[].datum
    #[arg(long, alias = "veld")]
    field: Option<String>,
    /// allowed, filtered, denied, error or event
    #[arg(long, alias = "besluit")]
    decision: Option<String>,
    /// Record kind: request (default), reload, purge, access, checkpoint or all.
    #[arg(long)]
    kind: Option<String>,
    /// Pupil id: searched as its pseudonym under every key version, never stored.
    #[arg(long)]
    leerling: Option<String>,
}

impl FilterArgs {
    fn input(self, limit: Option<usize>) -> poortwachter::review::query::FilterInput {
        poortwachter::review::query::FilterInput {
            from: self.van,
            to: self.tot,
            overleg: self.overleg,
            org: self.org,
            role: self.role,
            purpose: self.purpose,
            field: self.field,
            decision: self.decision,
            kind: self.kind,
            pupil: self.leerling,
            limit,
        }
    }
}

#[derive(Subcommand)]
enum CertsCmd {
    /// Write a development PKI (CA, gateway, one client per organisation). DEVELOPMENT ONLY.
    Dev {
        #[arg(long, default_value = "certs-dev")]
        dir: PathBuf,
        #[arg(long, default_value = "policies")]
        policies: PathBuf,
    },
}

#[derive(Subcommand)]
enum PolicyCmd {
    /// Run the expected-decision cases (policies/tests/*.toml) and report rules no case exercises.
    Test {
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
        /// Directory of case files; default <dir>/tests.
        #[arg(long)]
        tests: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Render the policy set as the human-readable Bijlage 3 (stable output, for review and signing).
    Render {
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
        #[arg(long, value_enum, default_value_t = MdOrHtml::Md)]
        format: MdOrHtml,
    },
    /// The access delta between two policy sets: directories, or git revisions as `git:<rev>` (of policies/).
    Diff {
        old: String,
        new: String,
        #[arg(long, value_enum, default_value_t = TextOrMd::Text)]
        format: TextOrMd,
    },
    /// Explain whether a field may flow: the rules and grondslag that decide it, confirmed by casbin.
    Explain {
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
        /// Organisation id (partners.toml).
        #[arg(long)]
        org: String,
        /// Role ("hat"); needed only when the organisation holds several in the overleg.
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        overleg: String,
        #[arg(long)]
        purpose: String,
        #[arg(long)]
        bron: String,
        /// Catalogue field path, e.g. verzuim.meldingen[].datum
        #[arg(long)]
        field: String,
        /// The caller sends the data (POST/PUT) instead of receiving it.
        #[arg(long)]
        write: bool,
        /// Also check this pupil's case binding and consent in the registers
        /// of --config's store (the read is recorded in the audit trail).
        #[arg(long, requires = "config")]
        leerling: Option<String>,
        /// Configuration whose store holds the registers (with --leerling).
        #[arg(long, requires = "leerling")]
        config: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Validate a policy directory, run the covenant lint rules (L001-L009) and
    /// compile it through casbin; exit 1 on any problem or lint error.
    Check {
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
        /// Fail on lint warnings too.
        #[arg(long)]
        deny_warnings: bool,
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
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

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Serve { config } => {
            let cfg = Config::load(&config)?;
            init_logging(&cfg.log.filter, cfg.log.format == "json");
            serve(cfg).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo {
            listen,
            policies,
            certs,
            data,
            admin_listen,
        } => {
            init_logging("info", false);
            run_demo(listen, admin_listen, policies, certs, data).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Certs {
            cmd: CertsCmd::Dev { dir, policies },
        } => {
            let set = policy::load_dir(&policies)?;
            let orgs: Vec<_> = set
                .organisations
                .values()
                .map(|o| (o.id.clone(), o.oin.clone()))
                .collect();
            certs::write_dev_pki(&dir, &orgs)?;
            println!(
                "wrote a DEVELOPMENT-ONLY PKI to {} ({} client certificates)",
                dir.display(),
                orgs.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Policy {
            cmd: PolicyCmd::Test { dir, tests, format },
        } => {
            let snap = policy::decision::Snapshot::build(policy::load_dir(&dir)?, None).await?;
            let tests = tests.unwrap_or_else(|| dir.join("tests"));
            let report = policy::tools::test::run(&snap, &tests).await?;
            if format == TextOrJson::Json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for r in &report.results {
                    if r.passed {
                        println!("ok   {} ({})", r.name, r.got);
                    } else {
                        println!(
                            "FAIL {}:{}: {}: expected {}, got {}: {}",
                            r.file, r.line, r.name, r.expected, r.got, r.reason
                        );
                    }
                }
                let covered = report.total_rules - report.uncovered_rules.len();
                println!(
                    "{} case(s), {} failed; {covered} of {} rules exercised",
                    report.results.len(),
                    report.failed(),
                    report.total_rules
                );
                if !report.uncovered_rules.is_empty() {
                    println!(
                        "rules no case exercises: {}",
                        report.uncovered_rules.join(", ")
                    );
                }
            }
            Ok(if report.failed() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Policy {
            cmd: PolicyCmd::Render { dir, format },
        } => {
            let set = policy::load_dir(&dir)?;
            match format {
                MdOrHtml::Html => out(&policy::tools::render::html(&set))?,
                MdOrHtml::Md => out(&policy::tools::render::markdown(&set))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Policy {
            cmd: PolicyCmd::Diff { old, new, format },
        } => {
            let (_old_tmp, old_dir) = policy_source(&old)?;
            let (_new_tmp, new_dir) = policy_source(&new)?;
            let old_set = policy::load_dir(&old_dir)?;
            let new_set = policy::load_dir(&new_dir)?;
            let delta = policy::tools::diff::diff(&old_set, &new_set).await?;
            match format {
                TextOrMd::Md => out(&delta.markdown())?,
                TextOrMd::Text => out(&delta.text())?,
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Policy {
            cmd:
                PolicyCmd::Check {
                    dir,
                    format,
                    deny_warnings,
                },
        } => policy_check(&dir, format, deny_warnings).await,
        Cmd::Policy {
            cmd:
                PolicyCmd::Explain {
                    dir,
                    org,
                    role,
                    overleg,
                    purpose,
                    bron,
                    field,
                    write,
                    leerling,
                    config,
                    format,
                },
        } => {
            use poortwachter::policy::tools::explain::{Question, explain};
            let snap = policy::decision::Snapshot::build(policy::load_dir(&dir)?, None).await?;
            let q = Question {
                org: &org,
                role: role.as_deref(),
                overleg: &overleg,
                purpose: &purpose,
                bron: &bron,
                field: &field,
                act: if write {
                    poortwachter::policy::model::Act::Write
                } else {
                    poortwachter::policy::model::Act::Read
                },
            };
            let mut e = explain(&snap, &q).await?;
            if let (Some(leerling), Some(config)) = (&leerling, &config) {
                let status = cli::cases::status_for_explain(config, &overleg, leerling).await?;
                e = e.with_case(&snap, &q, &status);
            }
            if format == TextOrJson::Json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                println!(
                    "{}: {}",
                    if e.allowed { "ALLOWED" } else { "DENIED" },
                    e.reason
                );
                if let (Some(r), Some(g)) = (&e.role, &e.grondslag) {
                    println!("  role {r}, grondslag {g}");
                }
                for r in &e.allowing {
                    println!(
                        "  rule {} ({} -> {}, consent {}, line {}): {}",
                        r.id, r.from, r.to, r.consent, r.line, r.justification
                    );
                }
                for r in &e.near_misses {
                    println!(
                        "  does not include it: rule {} ({} -> {}, line {})",
                        r.id, r.from, r.to, r.line
                    );
                }
                if let Some(c) = &e.case {
                    println!(
                        "  for this pupil: {} ({})",
                        if c.flows { "FLOWS" } else { "DOES NOT FLOW" },
                        c.reason
                    );
                }
                println!(
                    "  casbin enforce(): {}",
                    if e.casbin { "allow" } else { "deny" }
                );
            }
            if e.casbin != e.allowed {
                anyhow::bail!("casbin and the rules disagree; this is a bug");
            }
            Ok(if e.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Audit { cmd } => audit_cmd(cmd).await,
        Cmd::Cases { cmd } => cli::cases::cases(cmd).await,
        Cmd::Consent { cmd } => cli::cases::consent(cmd).await,
    }
}

async fn audit_cmd(cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    use poortwachter::audit::{Store, admin};
    match cmd {
        AuditCmd::Verify {
            config,
            checkpoints,
            public_key,
            format,
        } => {
            let cfg = Config::load(&config)?;
            let store = Store::connect(&cfg.audit.store).await?;
            let report = admin::verify(
                &store,
                &cfg.audit,
                checkpoints.as_deref(),
                public_key.as_deref(),
            )
            .await?;
            // Verification reads the whole trail: an access, recorded (after
            // the verification, so it does not change what was verified)
            // before the result is shown.
            let records: usize = report.chains.iter().map(|c| c.records).sum();
            record_cli_access(
                &store,
                &cfg,
                "verify",
                serde_json::json!({ "ok": report.ok(), "findings": report.findings.len() }),
                records,
            )
            .await?;
            if format == TextOrJson::Json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{report}");
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCmd::Checkpoints { config } => {
            let cfg = Config::load(&config)?;
            let store = Store::connect(&cfg.audit.store).await?;
            let text = admin::export(&store).await?;
            record_cli_access(
                &store,
                &cfg,
                "checkpoints",
                serde_json::json!({}),
                text.lines().count(),
            )
            .await?;
            out(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Purge { config } => {
            let cfg = Config::load(&config)?;
            let set = policy::load_dir(&cfg.policy.dir)?;
            let retention = set
                .overleggen
                .values()
                .map(|o| (o.id.clone(), o.retention_days))
                .collect();
            let store = Store::connect(&cfg.audit.store).await?;
            let (auditor, writer) =
                admin::admin_auditor(&store, &cfg.audit, &cfg.server.instance).await?;
            let report = admin::purge_and_record(
                &store,
                &auditor,
                &retention,
                cfg.audit.default_retention_days,
                time::OffsetDateTime::now_utc(),
            )
            .await?;
            drop(auditor);
            let _ = writer.await;
            println!("purged the personal columns of {} record(s)", report.total);
            for (o, n) in &report.purged_by_overleg {
                println!(
                    "  {o}: {n} (before {})",
                    report
                        .cutoff_by_overleg
                        .get(o)
                        .map(String::as_str)
                        .unwrap_or("?")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Pseudonym { config, leerling } => {
            let cfg = Config::load(&config)?;
            let p = poortwachter::audit::Pseudonymiser::from_file(&cfg.audit.pseudonym_key)?;
            for x in p.all_pseudonyms(&leerling) {
                println!("{x}");
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Query {
            config,
            filter,
            limit,
            format,
        } => {
            let cfg = Config::load(&config)?;
            let session = review::cli::Session::open(&cfg).await?;
            let text = session.query(&filter.input(Some(limit)), format).await;
            session.close().await;
            out(&text?)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Export {
            config,
            filter,
            format,
        } => {
            let cfg = Config::load(&config)?;
            let session = review::cli::Session::open(&cfg).await?;
            // Streamed: an export of any size needs the memory of one page.
            let stdout = std::io::stdout();
            let mut sink = std::io::BufWriter::new(stdout.lock());
            let written = session
                .export_to(&filter.input(None), format, &mut sink)
                .await
                .and_then(|n| {
                    std::io::Write::flush(&mut sink)?;
                    Ok(n)
                });
            session.close().await;
            match written {
                Err(review::ReviewError::Output(e))
                    if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                r => {
                    r?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Inzage {
            config,
            leerling,
            met_weigeringen,
            format,
        } => {
            let cfg = Config::load(&config)?;
            let session = review::cli::Session::open(&cfg).await?;
            let opts = review::inzage::Options {
                include_denied: met_weigeringen,
            };
            let text = session.inzage(&leerling, opts, format).await;
            session.close().await;
            out(&text?)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Rapport {
            config,
            van,
            tot,
            format,
        } => {
            let cfg = Config::load(&config)?;
            let session = review::cli::Session::open(&cfg).await?;
            let text = session.rapport(&van, &tot, format).await;
            session.close().await;
            out(&text?)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Keygen { dir } => {
            std::fs::create_dir_all(&dir)?;
            poortwachter::audit::Pseudonymiser::generate_file(&dir.join("pseudonym.key"))
                .context("pseudonym.key")?;
            poortwachter::audit::Signer::generate_file(&dir.join("signing.key"))
                .context("signing.key")?;
            println!(
                "wrote {0}/pseudonym.key, {0}/signing.key and {0}/signing.key.pub (give the .pub to the FG)",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Records a CLI access to the trail on the `<instance>/admin` chain; returns
/// once it is durable (the caller shows nothing otherwise).
async fn record_cli_access(
    store: &poortwachter::audit::Store,
    cfg: &Config,
    action: &'static str,
    parameters: serde_json::Value,
    records: usize,
) -> anyhow::Result<()> {
    use poortwachter::review::access::{self, Access, Viewer};
    let (auditor, writer) =
        poortwachter::audit::admin::admin_auditor(store, &cfg.audit, &cfg.server.instance).await?;
    let viewer = Viewer::cli_from_env();
    let recorded = access::record(
        &auditor,
        Access {
            viewer: &viewer,
            action,
            parameters,
            records,
            subject: None,
        },
    )
    .await;
    drop(auditor);
    let _ = writer.await;
    recorded?;
    Ok(())
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

/// A policy directory, or `git:<rev>`: `policies/` at that revision of the
/// repository in the working directory, extracted into a temporary directory.
fn policy_source(spec: &str) -> anyhow::Result<(Option<TempDir>, PathBuf)> {
    let Some(rev) = spec.strip_prefix("git:") else {
        return Ok((None, PathBuf::from(spec)));
    };
    let tmp = TempDir::new()?;
    let archive = std::process::Command::new("git")
        .args(["archive", "--format=tar", rev, "--", "policies"])
        .output()
        .context("running git archive")?;
    if !archive.status.success() {
        anyhow::bail!(
            "git archive {rev} failed: {}",
            String::from_utf8_lossy(&archive.stderr).trim()
        );
    }
    let mut tar = std::process::Command::new("tar")
        .args(["-x", "-C"])
        .arg(tmp.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .context("running tar")?;
    if let Some(mut stdin) = tar.stdin.take() {
        use std::io::Write;
        stdin.write_all(&archive.stdout)?;
    }
    if !tar.wait()?.success() {
        anyhow::bail!("could not unpack policies/ of {rev}");
    }
    let dir = tmp.path().join("policies");
    Ok((Some(tmp), dir))
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<Self> {
        let p =
            std::env::temp_dir().join(format!("poortwachter-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn report_lint(findings: &[policy::tools::lint::Finding], format: TextOrJson) {
    if format == TextOrJson::Json {
        println!("{}", serde_json::json!({"lint": findings}));
    } else {
        for f in findings {
            println!("{f}");
        }
    }
}

async fn policy_check(
    dir: &std::path::Path,
    format: TextOrJson,
    deny_warnings: bool,
) -> anyhow::Result<ExitCode> {
    let problems = match policy::load_dir(dir) {
        Ok(set) => {
            let overleggen = set.overleggen.len();
            let rules: usize = set.overleggen.values().map(|o| o.rules.len()).sum();
            let findings = policy::tools::lint::lint(&set);
            let errors = findings
                .iter()
                .filter(|f| f.severity == policy::tools::lint::Severity::Error)
                .count();
            match poortwachter::policy::decision::Snapshot::build(set, None).await {
                Ok(snap) if errors > 0 || (deny_warnings && !findings.is_empty()) => {
                    let _ = snap;
                    report_lint(&findings, format);
                    return Ok(ExitCode::from(1));
                }
                Ok(snap) => {
                    report_lint(&findings, format);
                    if format == TextOrJson::Json {
                        println!(
                            "{}",
                            serde_json::json!({"ok": true, "version": &*snap.version, "overleggen": overleggen, "rules": rules, "casbin_rows": snap.table.p_rows, "grants": snap.table.len(), "problems": []})
                        );
                    } else {
                        println!(
                            "ok: {overleggen} casusoverleggen, {rules} rules, {} casbin rows, {} grants verified; version {}",
                            snap.table.p_rows,
                            snap.table.len(),
                            &snap.version[..16]
                        );
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                Err(e) => vec![policy::Problem {
                    file: dir.display().to_string(),
                    line: 1,
                    code: "P090",
                    message: e.to_string(),
                }],
            }
        }
        Err(policy::LoadError::Invalid(p)) => p,
        Err(e) => return Err(e.into()),
    };
    if format == TextOrJson::Json {
        println!("{}", serde_json::json!({"ok": false, "problems": problems}));
    } else {
        for p in &problems {
            println!("{p}");
        }
        println!("{} problem(s)", problems.len());
    }
    Ok(ExitCode::from(1))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
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

/// Runs the retention purge every `hours`, recorded in the gateway's own chain.
async fn spawn_purge(
    gw: &app::Gateway,
    cfg: &Config,
    hours: u64,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let store = poortwachter::audit::Store::connect(&cfg.audit.store).await?;
    let auditor = gw.state.audit.clone();
    let policy = std::sync::Arc::clone(&gw.state.policy);
    let default_days = cfg.audit.default_retention_days;
    // The task holds an Auditor handle; `serve` aborts it at shutdown so the
    // audit writer can drain and write its final checkpoint.
    Ok(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(hours.max(1) * 3600));
        loop {
            tick.tick().await;
            let retention = policy
                .current()
                .set
                .overleggen
                .values()
                .map(|o| (o.id.clone(), o.retention_days))
                .collect();
            match poortwachter::audit::admin::purge_and_record(
                &store,
                &auditor,
                &retention,
                default_days,
                time::OffsetDateTime::now_utc(),
            )
            .await
            {
                Ok(r) => tracing::info!(records = r.total, "retention purge done"),
                Err(e) => tracing::error!(error = %e, "retention purge failed"),
            }
        }
    }))
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let gw = app::build(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.server.listen))?;
    tracing::info!(addr = %cfg.server.listen, instance = %cfg.server.instance, "poortwachter listening");
    let _watcher = app::start_reloading(&gw, &cfg)?;
    let purge_task = match cfg.audit.purge_interval_hours {
        Some(hours) => Some(spawn_purge(&gw, &cfg, hours).await?),
        None => None,
    };
    let stop_admin = tokio_util::sync::CancellationToken::new();
    let admin = app::start_admin(&gw, &cfg, stop_admin.clone().cancelled_owned()).await?;
    let app::Gateway {
        state,
        tls,
        audit_writer,
        ..
    } = gw;
    server::run(listener, tls, state, shutdown_signal()).await;
    stop_admin.cancel();
    if let Some((_, h)) = admin {
        let _ = h.await;
    }
    if let Some(t) = purge_task {
        t.abort();
        let _ = t.await;
    }
    // The last Auditor handle went with the state: the writer drains, writes
    // a final checkpoint and stops.
    let _ = audit_writer.await;
    Ok(())
}

async fn run_demo(
    listen: SocketAddr,
    admin_listen: SocketAddr,
    policies: PathBuf,
    certs_dir: PathBuf,
    data: PathBuf,
) -> anyhow::Result<()> {
    let set = policy::load_dir(&policies)?;
    if demo::ensure_certs(&certs_dir, &set)? {
        println!("created a DEVELOPMENT-ONLY PKI in {}", certs_dir.display());
    }
    std::fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    let key = data.join("pseudonym.key");
    if !key.exists() {
        poortwachter::audit::Pseudonymiser::generate_file(&key)?;
    }
    let signing = data.join("signing.key");
    if !signing.exists() {
        poortwachter::audit::Signer::generate_file(&signing)?;
    }
    let bronnen = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let bronnen_addr = bronnen.local_addr()?;
    tokio::spawn(demo::serve_bronnen(
        bronnen,
        std::sync::Arc::new(set.clone()),
    ));
    let paths = demo::DemoPaths {
        policies,
        certs: certs_dir.clone(),
        data: data.clone(),
    };
    let cfg_path = data.join("demo.toml");
    std::fs::write(
        &cfg_path,
        demo::config_toml(&paths, listen, bronnen_addr, &set, Some(admin_listen)),
    )?;
    let cfg = Config::load(&cfg_path)?;
    let gw = app::build(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    println!(
        "poortwachter demo: gateway on https://localhost:{} (config {}), demo bronnen on {bronnen_addr}, audit in {}/audit.db",
        listen.port(),
        cfg_path.display(),
        data.display()
    );
    let consent_id = demo::seed_registers(&gw.state).await?;
    println!("{}", demo::curl_examples(&certs_dir, listen, &consent_id));
    let _watcher = app::start_reloading(&gw, &cfg)?;
    let stop_admin = tokio_util::sync::CancellationToken::new();
    let admin = app::start_admin(&gw, &cfg, stop_admin.clone().cancelled_owned()).await?;
    if let Some((addr, _)) = &admin {
        println!("{}", demo::dashboard_instructions(&certs_dir, *addr, &set));
    }
    let app::Gateway {
        state,
        tls,
        audit_writer,
        ..
    } = gw;
    // Some traffic, so the FG dashboard has something to show.
    let traffic_certs = certs_dir.clone();
    let traffic = tokio::spawn(async move {
        match demo::generate_traffic(&traffic_certs, listen).await {
            Ok(n) => println!(
                "sent {n} demo requests (allowed, filtered and denied) so the FG dashboard has something to show"
            ),
            Err(e) => tracing::warn!(error = %e, "demo traffic failed"),
        }
    });
    server::run(listener, tls, state, shutdown_signal()).await;
    traffic.abort();
    stop_admin.cancel();
    if let Some((_, h)) = admin {
        let _ = h.await;
    }
    let _ = audit_writer.await;
    Ok(())
}
