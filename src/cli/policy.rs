//! `policy check|test|render|diff|explain|approve|keygen`: the administrators' tools (the
//! library's `policy::tools`). Operator output is English; the rendered
//! Bijlage 3 and the access delta (`diff`, for the FG to approve) are Dutch
//! documents.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::{TextOrJson, exit, out, out_json, outln};
use poortwachter::policy::decision::Snapshot;
use poortwachter::policy::tools::{diff, explain, lint, render, test};
use poortwachter::policy::{self, model::Act};

/// `--format md|html` (`policy render`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MdOrHtml {
    Md,
    Html,
}

/// `--format text|md` (`policy diff`).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TextOrMd {
    Text,
    Md,
}

#[derive(Subcommand)]
pub enum PolicyCmd {
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
        /// The gateway configuration whose `[policy.approval]` keys verify
        /// the approvals of the new version (without it they are listed
        /// unverified).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Approve the policy set version of a directory: sign its version hash
    /// with an approver's Ed25519 key into <dir>/goedkeuringen/.
    Approve {
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
        /// The approver's private key (from `policy keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The approver's id, as in `[policy.approval] keys`.
        #[arg(long, alias = "goedkeurder")]
        approver: String,
    },
    /// Create an approver's Ed25519 key pair (<out> and <out>.pub; give the .pub to the gateway's operators).
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Explain whether a field may flow: the rules and grondslag that decide it, confirmed by casbin.
    Explain(Box<ExplainArgs>),
    /// Validate a policy directory, run the covenant lint rules (L001-L016) and
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

#[derive(clap::Args)]
pub struct ExplainArgs {
    #[arg(long, default_value = "policies")]
    dir: PathBuf,
    /// Organisation id (partners.toml).
    #[arg(long, alias = "organisatie")]
    org: String,
    /// A software supplier asking for --org (X-Namens): the mandate is
    /// checked first, as serving does, for today.
    #[arg(long, alias = "via-leverancier")]
    via: Option<String>,
    /// Role ("hat"); needed only when the organisation holds several in the overleg.
    #[arg(long, alias = "rol")]
    role: Option<String>,
    #[arg(long)]
    overleg: String,
    #[arg(long, alias = "doel")]
    purpose: String,
    #[arg(long)]
    bron: String,
    /// Catalogue field path, e.g. verzuim.meldingen[].datum
    #[arg(long, alias = "veld")]
    field: String,
    /// The caller sends the data (POST/PUT) instead of receiving it.
    #[arg(long)]
    write: bool,
    /// For a bron a supplier hosts for several organisations: whose data
    /// (id or OIN), as X-Bron-Eigenaar.
    #[arg(long, alias = "eigenaar")]
    owner: Option<String>,
    /// For an emergency purpose (spoed): the reason code, as X-Spoed-Reden
    /// (meldcode, veilig-thuis, acuut-gevaar). Not with --pupil: a pupil's
    /// emergency window is only looked up by a request.
    #[arg(long, alias = "spoed", conflicts_with = "pupil")]
    emergency: Option<String>,
    /// Also check this pupil's case binding and consent in the registers
    /// of --config's store (the read is recorded in the audit trail).
    #[arg(long, alias = "leerling", requires = "config")]
    pupil: Option<String>,
    /// Configuration whose store holds the registers (with --pupil).
    #[arg(long, requires = "pupil")]
    config: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
    format: TextOrJson,
}

pub async fn run(cmd: PolicyCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCmd::Test { dir, tests, format } => run_tests(&dir, tests, format).await,
        PolicyCmd::Render { dir, format } => {
            let set = policy::load_dir(&dir)?;
            match format {
                MdOrHtml::Html => out(&render::html(&set))?,
                MdOrHtml::Md => out(&render::markdown(&set))?,
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCmd::Diff {
            old,
            new,
            format,
            config,
        } => {
            let (_old_tmp, old_dir) = policy_source(&old)?;
            let (_new_tmp, new_dir) = policy_source(&new)?;
            let old_set = policy::load_dir(&old_dir)?;
            let new_set = policy::load_dir(&new_dir)?;
            let delta = diff::diff(&old_set, &new_set).await?;
            match format {
                TextOrMd::Md => out(&delta.markdown())?,
                TextOrMd::Text => out(&delta.text())?,
            }
            out(&approvals_text(
                &new_dir,
                &new_set.version,
                config.as_deref(),
            )?)?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCmd::Approve { dir, key, approver } => approve(&dir, &key, &approver),
        PolicyCmd::Keygen { out: path } => {
            poortwachter::audit::Signer::generate_file(&path)
                .with_context(|| path.display().to_string())?;
            outln(&format!(
                "wrote {0} and {0}.pub (the .pub goes into [policy.approval] keys)",
                path.display()
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        PolicyCmd::Explain(args) => run_explain(*args).await,
        PolicyCmd::Check {
            dir,
            format,
            deny_warnings,
        } => check(&dir, format, deny_warnings).await,
    }
}

async fn run_tests(
    dir: &Path,
    tests: Option<PathBuf>,
    format: TextOrJson,
) -> anyhow::Result<ExitCode> {
    let snap = Snapshot::build(policy::load_dir(dir)?, None).await?;
    let tests = tests.unwrap_or_else(|| dir.join("tests"));
    let report = test::run(&snap, &tests).await?;
    if format == TextOrJson::Json {
        out_json(&report)?;
        return Ok(exit(report.failed() == 0));
    }
    for r in &report.results {
        if r.passed {
            outln(&format!("ok   {} ({})", r.name, r.got))?;
        } else {
            outln(&format!(
                "FAIL {}:{}: {}: expected {}, got {}: {}",
                r.file, r.line, r.name, r.expected, r.got, r.reason
            ))?;
        }
    }
    let covered = report.total_rules - report.uncovered_rules.len();
    outln(&format!(
        "{} case(s), {} failed; {covered} of {} rules exercised",
        report.results.len(),
        report.failed(),
        report.total_rules
    ))?;
    if !report.uncovered_rules.is_empty() {
        outln(&format!(
            "rules no case exercises: {}",
            report.uncovered_rules.join(", ")
        ))?;
    }
    Ok(exit(report.failed() == 0))
}

async fn run_explain(a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let snap = Snapshot::build(policy::load_dir(&a.dir)?, None).await?;
    let q = explain::Question {
        org: &a.org,
        role: a.role.as_deref(),
        overleg: &a.overleg,
        purpose: &a.purpose,
        bron: &a.bron,
        field: &a.field,
        act: if a.write { Act::Write } else { Act::Read },
        owner: a.owner.as_deref(),
        emergency: a.emergency.as_deref(),
    };
    let via = match a.via.as_deref() {
        Some(supplier) => match mandate_of(&snap, supplier, &a.org, &a.overleg) {
            Ok(m) => Some(m),
            Err(why) => {
                refuse_without_mandate(supplier, &why, a.format)?;
                return Ok(exit(false));
            }
        },
        None => None,
    };
    let mut e = explain::explain(&snap, &q).await?;
    if let (Some(pupil), Some(config)) = (&a.pupil, &a.config) {
        let status = super::cases::status_for_explain(config, &a.overleg, pupil).await?;
        e = e.with_case(&snap, &q, &status);
    }
    if a.format == TextOrJson::Json {
        let mut v = serde_json::to_value(&e)?;
        if let (Some(m), Some(o)) = (&via, v.as_object_mut()) {
            o.insert("via".into(), m.clone());
        }
        out_json(&v)?;
    } else {
        if let Some(m) = &via {
            outln(&format!(
                "via supplier {} under its client mandate of {} (valid {} until {})",
                m["supplier"].as_str().unwrap_or(""),
                a.org,
                m["valid_from"].as_str().unwrap_or(""),
                m["valid_until"].as_str().unwrap_or("further notice"),
            ))?;
        }
        print_explanation(&e)?;
    }
    if e.casbin != e.allowed {
        anyhow::bail!("casbin and the rules disagree; this is a bug");
    }
    Ok(exit(e.allowed))
}

/// The active client mandate that lets `supplier` ask for `org` in
/// `overleg` today: the lookup serving does for X-Namens
/// (`identity::caller`), so explain refuses what the gateway refuses.
fn mandate_of(
    snap: &Snapshot,
    supplier: &str,
    org: &str,
    overleg: &str,
) -> Result<serde_json::Value, String> {
    use poortwachter::policy::mandate;
    let m = snap
        .set
        .mandates
        .acting_for(supplier, org, Some(overleg), mandate::now())
        .map_err(|why| format!("no mandate: {}", why.as_str()))?;
    Ok(serde_json::json!({
        "supplier": m.supplier,
        "organisation": m.organisation,
        "valid_from": m.valid_from,
        "valid_until": m.valid_until,
    }))
}

fn refuse_without_mandate(supplier: &str, why: &str, format: TextOrJson) -> anyhow::Result<()> {
    if format == TextOrJson::Json {
        out_json(&serde_json::json!({
            "allowed": false,
            "reason": why,
            "via": {"supplier": supplier},
        }))
    } else {
        outln(&format!("DENIED: {why} (via supplier {supplier})"))
    }
}

fn print_explanation(e: &explain::Explanation) -> anyhow::Result<()> {
    let verdict = if e.allowed { "ALLOWED" } else { "DENIED" };
    outln(&format!("{verdict}: {}", e.reason))?;
    if let (Some(r), Some(g)) = (&e.role, &e.grondslag) {
        outln(&format!("  role {r}, grondslag {g}"))?;
    }
    for r in &e.allowing {
        outln(&format!(
            "  rule {} ({} -> {}, consent {}, line {}): {}",
            r.id, r.from, r.to, r.consent, r.line, r.justification
        ))?;
    }
    for r in &e.near_misses {
        outln(&format!(
            "  does not include it: rule {} ({} -> {}, line {})",
            r.id, r.from, r.to, r.line
        ))?;
    }
    if let Some(c) = &e.case {
        let flows = if c.flows { "FLOWS" } else { "DOES NOT FLOW" };
        outln(&format!("  for this pupil: {flows} ({})", c.reason))?;
    }
    let casbin = if e.casbin { "allow" } else { "deny" };
    outln(&format!("  casbin enforce(): {casbin}"))
}

/// A policy directory, or `git:<rev>`: `policies/` at that revision of the
/// repository in the working directory, extracted into a temporary directory.
/// Signs the version of `dir` as `approver`.
fn approve(dir: &Path, key: &Path, approver: &str) -> anyhow::Result<ExitCode> {
    use poortwachter::policy::approval::{self, Approval};
    let set = policy::load_dir(dir)?;
    let signer = poortwachter::audit::Signer::from_file(key)?;
    let time = poortwachter::audit::record::now_rfc3339();
    let a = Approval::sign(&signer, &set.version, approver, &time);
    let path = approval::write(dir, &a)?;
    outln(&format!(
        "approved policy version {} as {approver} (key {}): {}",
        &set.version[..16.min(set.version.len())],
        a.key_id,
        path.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The approvals of `version` in `dir`, verified with the keys of
/// `config` when given, for the end of `policy diff`.
fn approvals_text(dir: &Path, version: &str, config: Option<&Path>) -> anyhow::Result<String> {
    use poortwachter::policy::approval::{self, Approvers};
    let short = &version[..16.min(version.len())];
    let mut text = format!("\nGoedkeuringen van versie {short}:\n");
    let Some(config) = config else {
        let found: Vec<_> = approval::read_dir(dir)
            .into_iter()
            .filter(|a| a.version == version)
            .collect();
        if found.is_empty() {
            text.push_str("  geen\n");
        }
        for a in found {
            text.push_str(&format!(
                "  {} op {} (handtekening niet gecontroleerd: geef --config)\n",
                a.approver, a.time
            ));
        }
        return Ok(text);
    };
    let cfg = poortwachter::config::Config::load(config)?;
    let standing = Approvers::from_config(&cfg.policy.approval)?.standing(dir, version);
    if standing.valid.is_empty() {
        text.push_str("  geen geldige\n");
    }
    for a in &standing.valid {
        text.push_str(&format!(
            "  {} op {} (sleutel {}, geldig)\n",
            a.approver, a.time, a.key_id
        ));
    }
    if !standing.missing.is_empty() {
        text.push_str(&format!(
            "  ontbreekt (vereist): {}\n",
            standing.missing.join(", ")
        ));
    }
    Ok(text)
}

fn policy_source(spec: &str) -> anyhow::Result<(Option<tempfile::TempDir>, PathBuf)> {
    let Some(rev) = spec.strip_prefix("git:") else {
        return Ok((None, PathBuf::from(spec)));
    };
    let tmp = tempfile::Builder::new().prefix("poortwachter-").tempdir()?;
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

fn report_lint(findings: &[lint::Finding], format: TextOrJson) -> anyhow::Result<()> {
    if format == TextOrJson::Json {
        return outln(&serde_json::json!({ "lint": findings }).to_string());
    }
    for f in findings {
        outln(&f.to_string())?;
    }
    Ok(())
}

/// `policy check`: validation (every problem of every file), the covenant
/// lint rules, and the casbin compilation.
async fn check(dir: &Path, format: TextOrJson, deny_warnings: bool) -> anyhow::Result<ExitCode> {
    let set = match policy::load_dir(dir) {
        Ok(set) => set,
        Err(policy::LoadError::Invalid(problems)) => return report_problems(&problems, format),
        Err(e) => return Err(e.into()),
    };
    let overleggen = set.overleggen.len();
    let rules: usize = set.overleggen.values().map(|o| o.rules.len()).sum();
    let findings = lint::lint(&set);
    let errors = findings
        .iter()
        .filter(|f| f.severity == lint::Severity::Error)
        .count();
    let snap = match Snapshot::build(set, None).await {
        Ok(snap) => snap,
        Err(e) => {
            let p = policy::Problem {
                file: dir.display().to_string(),
                line: 1,
                code: "P090",
                message: e.to_string(),
            };
            return report_problems(&[p], format);
        }
    };
    report_lint(&findings, format)?;
    if errors > 0 || (deny_warnings && !findings.is_empty()) {
        return Ok(ExitCode::from(1));
    }
    if format == TextOrJson::Json {
        outln(&serde_json::json!({"ok": true, "version": &*snap.version, "overleggen": overleggen, "rules": rules, "casbin_rows": snap.table.p_rows, "grants": snap.table.len(), "problems": []}).to_string())?;
    } else {
        outln(&format!(
            "ok: {overleggen} casusoverleggen, {rules} rules, {} casbin rows, {} grants verified; version {}",
            snap.table.p_rows,
            snap.table.len(),
            &snap.version[..16]
        ))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn report_problems(problems: &[policy::Problem], format: TextOrJson) -> anyhow::Result<ExitCode> {
    if format == TextOrJson::Json {
        outln(&serde_json::json!({"ok": false, "problems": problems}).to_string())?;
    } else {
        for p in problems {
            outln(&p.to_string())?;
        }
        outln(&format!("{} problem(s)", problems.len()))?;
    }
    Ok(ExitCode::from(1))
}
