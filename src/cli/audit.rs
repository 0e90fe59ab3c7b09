//! `audit …`: verification, checkpoints, purge, keys, and the FG's review
//! commands. Every command that reads the trail records its access on the
//! `<instance>/admin` chain (through a `review::session::Session`) before
//! it shows anything.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::{TextOrJson, exit, out, out_json, outln};
use poortwachter::audit::{Pseudonymiser, Signer, admin};
use poortwachter::config::Config;
use poortwachter::review::session::Session;
use poortwachter::review::session::{QueryFormat, ReportFormat};
use poortwachter::review::{self, export, inzage, query};

#[derive(Subcommand)]
pub enum AuditCmd {
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
        /// Incremental: the file (kept outside the database) with the heads
        /// the last run verified. When it exists only what was appended since
        /// is verified, after checking those heads are unchanged; after a run
        /// without findings it holds the new heads.
        #[arg(long, conflicts_with = "checkpoints")]
        state: Option<PathBuf>,
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
        #[arg(long, alias = "leerling")]
        pupil: String,
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
        #[arg(long, default_value_t = query::DEFAULT_LIMIT)]
        limit: usize,
        #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
        format: QueryFormat,
    },
    /// Export matching records: csv, jsonl, logboek (Logboek Dataverwerkingen: one line per data subject), or fhir (R4 AuditEvent NDJSON, IHE BALP Privacy Disclosure).
    Export {
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, value_enum, default_value_t = export::Format::JsonLines)]
        format: export::Format,
    },
    /// The AVG art. 15 report for one pupil: every disclosure, named recipients, purposes, grondslag, fields.
    Inzage {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, alias = "leerling")]
        pupil: String,
        /// Also list refused requests (flagged; nothing was shared).
        #[arg(long, alias = "met-weigeringen")]
        with_refusals: bool,
        #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
    },
    /// Disclosures that relied on a consent, each checked against the consent register; exit 1 on any finding.
    Toestemming(ConsentArgs),
    /// Every policy change in a period: reloads and refusals, access delta, who approved the version.
    Wijzigingen {
        #[arg(long)]
        config: PathBuf,
        /// From this day (YYYY-MM-DD) or UTC time.
        #[arg(long, alias = "van")]
        from: Option<String>,
        /// Up to and including this day, or before this UTC time.
        #[arg(long, alias = "tot")]
        to: Option<String>,
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// What an organisation received in a casusoverleg in a period, per field: how often, about how many pupils, under which rules and grondslag.
    Ontvangen(ReceivedArgs),
    /// AVG art. 19: every organisation that received a pupil's data since a date (by name, with overleg, role, dates and fields); --registreer tracks their notification.
    Kennisgeving(NoticeArgs),
    /// Record that a recipient of a registered kennisgeving was notified (shown on the dashboard until every recipient is).
    KennisgevingGemeld(NotifiedArgs),
    /// Check the aggregates the DPIA report reads against a walk of every record (exit 1 on a difference); --recompute replaces them with the walk's (gateways stopped).
    Aggregates {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        recompute: bool,
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// The FG's review queue of emergency disclosures (spoed): windows to review, and reviewed ones still held back from inzage.
    Spoed {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
    },
    /// Record the FG's review of an emergency window (gerechtvaardigd / niet-gerechtvaardigd, with a note); closes the window.
    SpoedBeoordelen {
        #[arg(long)]
        config: PathBuf,
        /// The window id `audit spoed` shows.
        #[arg(long, alias = "venster")]
        window: String,
        /// gerechtvaardigd or niet-gerechtvaardigd.
        #[arg(long, alias = "oordeel")]
        verdict: String,
        /// The FG's reasons; never the pupil's name.
        #[arg(long, alias = "notitie")]
        note: String,
    },
    /// Release a reviewed emergency window: its disclosures then appear in the pupil's inzage report.
    SpoedVrijgeven {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, alias = "venster")]
        window: String,
    },
    /// DPIA accountability report for a period: volume, fields per role, denials, policy changes, anomalies.
    Rapport {
        #[arg(long)]
        config: PathBuf,
        /// First day (YYYY-MM-DD) or UTC time.
        #[arg(long, alias = "van")]
        from: String,
        /// Last day, inclusive (YYYY-MM-DD), or UTC time (exclusive).
        #[arg(long, alias = "tot")]
        to: String,
        #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
        format: ReportFormat,
    },
}

/// `audit toestemming`'s arguments.
#[derive(clap::Args)]
pub struct ConsentArgs {
    #[arg(long)]
    config: PathBuf,
    /// The casusoverleg whose disclosures are checked.
    #[arg(long)]
    overleg: String,
    /// From this day (YYYY-MM-DD) or UTC time.
    #[arg(long, alias = "van")]
    from: Option<String>,
    /// Up to and including this day, or before this UTC time (default: now).
    #[arg(long, alias = "tot")]
    to: Option<String>,
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    format: QueryFormat,
}

/// `audit ontvangen`'s arguments.
#[derive(clap::Args)]
pub struct ReceivedArgs {
    #[arg(long)]
    config: PathBuf,
    /// The organisation that received the data.
    #[arg(long, alias = "organisatie")]
    org: String,
    #[arg(long)]
    overleg: String,
    /// From this day (YYYY-MM-DD) or UTC time.
    #[arg(long, alias = "van")]
    from: String,
    /// Up to and including this day, or before this UTC time.
    #[arg(long, alias = "tot")]
    to: String,
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    format: QueryFormat,
}

/// `audit kennisgeving`'s arguments.
#[derive(clap::Args)]
pub struct NoticeArgs {
    #[arg(long)]
    config: PathBuf,
    /// Pupil id: searched as its pseudonym under every key version; the output names only the pseudonym.
    #[arg(long, alias = "leerling")]
    pupil: String,
    /// Disclosures from this day (YYYY-MM-DD) or UTC time on.
    #[arg(long, alias = "sinds")]
    since: String,
    /// Only records that shared this catalogue path (repeatable); only these fields are listed.
    #[arg(long = "field", alias = "veld")]
    fields: Vec<String>,
    /// Register the kennisgeving: its recipients stay on the dashboard until each is marked notified.
    #[arg(long, alias = "registreer")]
    register: bool,
    #[arg(long, value_enum, default_value_t = ReportFormat::Html)]
    format: ReportFormat,
}

/// `audit kennisgeving-gemeld`'s arguments.
#[derive(clap::Args)]
pub struct NotifiedArgs {
    #[arg(long)]
    config: PathBuf,
    /// The id `audit kennisgeving --registreer` printed.
    #[arg(long)]
    kennisgeving: String,
    /// The recipient organisation that was notified.
    #[arg(long, alias = "organisatie")]
    org: String,
    /// How it was notified (letter, case number); never the pupil's name.
    #[arg(long, alias = "referentie")]
    reference: String,
}

/// Search filters shared by `audit query` and `audit export`.
#[derive(clap::Args)]
pub struct FilterArgs {
    /// From this day (YYYY-MM-DD) or UTC time.
    #[arg(long, alias = "van")]
    from: Option<String>,
    /// Up to and including this day, or before this UTC time.
    #[arg(long, alias = "tot")]
    to: Option<String>,
    #[arg(long)]
    overleg: Option<String>,
    /// Requesting organisation id.
    #[arg(long, alias = "organisatie")]
    org: Option<String>,
    /// Software supplier id: only requests that came through it (under a mandate of the organisation).
    #[arg(long, alias = "leverancier")]
    via: Option<String>,
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
    /// Record kind: request (default), reload, purge, access, checkpoint, correction or all.
    #[arg(long, alias = "soort")]
    kind: Option<String>,
    /// Pupil id: searched as its pseudonym under every key version, never stored.
    #[arg(long, alias = "leerling")]
    pupil: Option<String>,
}

impl FilterArgs {
    fn input(self, limit: Option<usize>) -> query::FilterInput {
        query::FilterInput {
            from: self.from,
            to: self.to,
            overleg: self.overleg,
            org: self.org,
            via: self.via,
            role: self.role,
            purpose: self.purpose,
            field: self.field,
            decision: self.decision,
            kind: self.kind,
            pupil: self.pupil,
            limit,
        }
    }
}

pub async fn run(cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::Verify {
            config,
            checkpoints,
            public_key,
            state,
            format,
        } => {
            let files = VerifyFiles {
                checkpoints,
                public_key,
                state,
            };
            verify(&config, files, format).await
        }
        AuditCmd::Checkpoints { config } => {
            let s = Session::open(&Config::load(&config)?).await?;
            let text = admin::export(&s.store).await;
            let shown = text.as_ref().map_or(0, |t| t.lines().count());
            let recorded = s
                .record("checkpoints", serde_json::json!({}), shown, None)
                .await;
            s.close().await;
            recorded?;
            out(&text?)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Purge { config } => purge(&config).await,
        AuditCmd::Pseudonym { config, pupil } => {
            let cfg = Config::load(&config)?;
            let p = Pseudonymiser::from_file(&cfg.audit.pseudonym_key)?;
            for x in p.all_pseudonyms(&pupil) {
                outln(&x)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Keygen { dir } => keygen(&dir),
        AuditCmd::Toestemming(args) => toestemming(args).await,
        AuditCmd::Wijzigingen {
            config,
            from,
            to,
            format,
        } => changes(&config, from.as_deref(), to.as_deref(), format).await,
        AuditCmd::Ontvangen(args) => ontvangen(args).await,
        AuditCmd::Kennisgeving(args) => kennisgeving(args).await,
        AuditCmd::KennisgevingGemeld(args) => kennisgeving_gemeld(args).await,
        AuditCmd::Spoed { config, format } => spoed_queue(&config, format).await,
        AuditCmd::Aggregates {
            config,
            recompute,
            format,
        } => aggregates(&config, recompute, format).await,
        AuditCmd::SpoedBeoordelen {
            config,
            window,
            verdict,
            note,
        } => spoed_change(&config, &window, Some((&verdict, &note))).await,
        AuditCmd::SpoedVrijgeven { config, window } => spoed_change(&config, &window, None).await,
        review_cmd => review_command(review_cmd).await,
    }
}

/// `audit query|export|inzage|rapport`.
async fn review_command(cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    let text = match cmd {
        AuditCmd::Query {
            config,
            filter,
            limit,
            format,
        } => {
            let s = Session::open(&Config::load(&config)?).await?;
            let text = s.query(&filter.input(Some(limit)), format).await;
            s.close().await;
            text?
        }
        AuditCmd::Export {
            config,
            filter,
            format,
        } => return export_cmd(&config, filter, format).await,
        AuditCmd::Inzage {
            config,
            pupil,
            with_refusals,
            format,
        } => {
            let s = Session::open(&Config::load(&config)?).await?;
            let opts = inzage::Options {
                include_denied: with_refusals,
            };
            let text = s.inzage(&pupil, opts, format).await;
            s.close().await;
            text?
        }
        AuditCmd::Rapport {
            config,
            from,
            to,
            format,
        } => {
            let s = Session::open(&Config::load(&config)?).await?;
            let text = s.rapport(&from, &to, format).await;
            s.close().await;
            text?
        }
        _ => anyhow::bail!("not a review command"),
    };
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `audit export`: streamed, so an export of any size needs the memory of
/// one page; a reader that closes the pipe early is not an error.
async fn export_cmd(
    config: &std::path::Path,
    filter: FilterArgs,
    format: export::Format,
) -> anyhow::Result<ExitCode> {
    let s = Session::open(&Config::load(config)?).await?;
    let stdout = std::io::stdout();
    let mut sink = std::io::BufWriter::new(stdout.lock());
    let written = s
        .export_to(&filter.input(None), format, &mut sink)
        .await
        .and_then(|n| {
            std::io::Write::flush(&mut sink)?;
            Ok(n)
        });
    s.close().await;
    match written {
        Err(review::ReviewError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => {
            r?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit toestemming`: like `audit verify`, exit 1 when there is a finding.
async fn toestemming(a: ConsentArgs) -> anyhow::Result<ExitCode> {
    let s = Session::open(&Config::load(&a.config)?).await?;
    let report = s
        .toestemming(&a.overleg, a.from.as_deref(), a.to.as_deref(), a.format)
        .await;
    s.close().await;
    let report = report?;
    out(&match a.format {
        QueryFormat::Table => report.table(),
        QueryFormat::Json => report.json(),
        QueryFormat::Csv => report.csv(),
    })?;
    Ok(exit(report.ok()))
}

/// `audit ontvangen`.
async fn ontvangen(a: ReceivedArgs) -> anyhow::Result<ExitCode> {
    let s = Session::open(&Config::load(&a.config)?).await?;
    let report = s
        .ontvangen(&a.org, &a.overleg, &a.from, &a.to, a.format)
        .await;
    s.close().await;
    let report = report?;
    out(&match a.format {
        QueryFormat::Table => report.table(),
        QueryFormat::Json => report.json(),
        QueryFormat::Csv => report.csv(),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `audit kennisgeving`: the document on stdout; with `--registreer` the
/// id to mark recipients with on stderr too.
async fn kennisgeving(a: NoticeArgs) -> anyhow::Result<ExitCode> {
    let s = Session::open(&Config::load(&a.config)?).await?;
    let k = s
        .kennisgeving(&a.pupil, &a.since, &a.fields, a.register, a.format)
        .await;
    s.close().await;
    let k = k?;
    out(&match a.format {
        ReportFormat::Html => k.html(),
        ReportFormat::Json => k.json(),
    })?;
    if let Some(id) = &k.id {
        eprintln!(
            "kennisgeving {id} geregistreerd: {} ontvanger(s) te melden",
            k.recipients.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit aggregates`: exit 1 when the table differs from the walk (after
/// `--recompute` it no longer does).
async fn aggregates(
    config: &Path,
    recompute: bool,
    format: TextOrJson,
) -> anyhow::Result<ExitCode> {
    let s = Session::open(&Config::load(config)?).await?;
    let check = s.aggregates(recompute).await;
    s.close().await;
    let check = check?;
    out(&match format {
        TextOrJson::Text => check.text(),
        TextOrJson::Json => serde_json::to_string_pretty(&check)?,
    })?;
    if recompute {
        out("recomputed: the table now equals the walk and is complete from the start\n")?;
        return Ok(ExitCode::SUCCESS);
    }
    Ok(exit(check.ok()))
}

/// `audit spoed`: the queue, as text or JSON.
async fn spoed_queue(config: &Path, format: TextOrJson) -> anyhow::Result<ExitCode> {
    let s = Session::open(&Config::load(config)?).await?;
    let queue = s.spoed().await;
    s.close().await;
    let queue = queue?;
    out(&match format {
        TextOrJson::Text => queue.table(),
        TextOrJson::Json => queue.json(),
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `audit spoed-beoordelen` (with a verdict and note) or `audit
/// spoed-vrijgeven` (without).
async fn spoed_change(
    config: &Path,
    window: &str,
    review: Option<(&str, &str)>,
) -> anyhow::Result<ExitCode> {
    let s = Session::open(&Config::load(config)?).await?;
    let done = match review {
        Some((verdict, note)) => s.spoed_review(window, verdict, note).await,
        None => s.spoed_release(window).await,
    };
    s.close().await;
    let w = done?;
    let text = match (review, w.review) {
        (Some(_), Some(r)) => format!(
            "spoedvenster {}: beoordeeld als {}; het venster is gesloten en blijft achtergehouden tot het wordt vrijgegeven\n",
            w.id,
            r.dutch()
        ),
        _ => format!(
            "spoedvenster {}: vrijgegeven; de verstrekkingen staan vanaf nu in het inzageoverzicht\n",
            w.id
        ),
    };
    out(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `audit kennisgeving-gemeld`: what is still to be notified.
async fn kennisgeving_gemeld(a: NotifiedArgs) -> anyhow::Result<ExitCode> {
    let s = Session::open(&Config::load(&a.config)?).await?;
    let status = s
        .kennisgeving_gemeld(&a.kennisgeving, &a.org, &a.reference)
        .await;
    let name = |id: &str| {
        s.set
            .organisations
            .get(id)
            .map_or_else(|| id.to_owned(), |o| format!("{} ({id})", o.name))
    };
    let text = status.map(|st| {
        let mut text = format!(
            "kennisgeving {}: {} gemeld (referentie {})\n",
            st.kennisgeving.id,
            name(a.org.trim()),
            a.reference.trim()
        );
        if st.open.is_empty() {
            text.push_str("alle ontvangers zijn gemeld; de kennisgeving is afgerond\n");
        } else {
            let open: Vec<String> = st.open.iter().map(|o| name(o)).collect();
            text.push_str(&format!("nog te melden: {}\n", open.join(", ")));
        }
        text
    });
    s.close().await;
    out(&text?)?;
    Ok(ExitCode::SUCCESS)
}

async fn changes(
    config: &std::path::Path,
    from: Option<&str>,
    to: Option<&str>,
    format: TextOrJson,
) -> anyhow::Result<ExitCode> {
    let s = Session::open(&Config::load(config)?).await?;
    let changes = s.changes(from, to).await;
    s.close().await;
    let changes = changes?;
    match format {
        TextOrJson::Json => out_json(&changes)?,
        TextOrJson::Text => out(&poortwachter::review::changes::table(&changes))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The files `audit verify` reads (and, for `--state`, writes).
struct VerifyFiles {
    checkpoints: Option<PathBuf>,
    public_key: Option<PathBuf>,
    state: Option<PathBuf>,
}

async fn verify(
    config: &std::path::Path,
    files: VerifyFiles,
    format: TextOrJson,
) -> anyhow::Result<ExitCode> {
    let cfg = Config::load(config)?;
    let anchors = match &files.state {
        Some(p) if p.exists() => Some(read_state(p)?),
        _ => None,
    };
    let s = Session::open(&cfg).await?;
    let report = match &anchors {
        Some(a) => admin::verify_from(&s.store, &cfg.audit, files.public_key.as_deref(), a).await,
        None => {
            let (ck, key) = (files.checkpoints.as_deref(), files.public_key.as_deref());
            admin::verify(&s.store, &cfg.audit, ck, key).await
        }
    };
    // Verification reads the trail: an access, recorded (after the
    // verification, so it does not change what was verified) before the
    // result is shown.
    let recorded = match &report {
        Ok(r) => {
            let records: usize = r.chains.iter().map(|c| c.records).sum();
            let params = serde_json::json!({ "ok": r.ok(), "findings": r.findings.len(), "incremental": anchors.is_some() });
            s.record("verify", params, records, None).await
        }
        Err(_) => Ok(()),
    };
    s.close().await;
    recorded?;
    let report = report?;
    if format == TextOrJson::Json {
        out_json(&report)?;
    } else {
        if anchors.is_some() {
            outln("incremental: from the heads the last verification witnessed")?;
        }
        out(&report.to_string())?;
    }
    if let Some(p) = files.state.as_deref().filter(|_| report.ok()) {
        write_state(p, &report.witness)?;
    }
    Ok(exit(report.ok()))
}

/// The witnessed heads of the last verification.
fn read_state(
    path: &std::path::Path,
) -> anyhow::Result<std::collections::BTreeMap<String, poortwachter::audit::verify::Anchor>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a verification state", path.display()))
}

/// Replaces the state file atomically (a crash leaves the old one).
fn write_state(
    path: &std::path::Path,
    witness: &std::collections::BTreeMap<String, poortwachter::audit::verify::Anchor>,
) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, serde_json::to_string_pretty(witness)?)
        .with_context(|| tmp.display().to_string())?;
    std::fs::rename(&tmp, path).with_context(|| path.display().to_string())?;
    Ok(())
}

async fn purge(config: &std::path::Path) -> anyhow::Result<ExitCode> {
    let s = Session::open(&Config::load(config)?).await?;
    let retention = s
        .set
        .overleggen
        .values()
        .map(|o| (o.id.clone(), o.retention_days))
        .collect();
    let default_days = s.config().audit.default_retention_days;
    let now = time::OffsetDateTime::now_utc();
    let report =
        admin::purge_and_record(&s.store, s.auditor(), &retention, default_days, now).await;
    s.close().await;
    let report = report?;
    outln(&format!(
        "purged the personal columns of {} record(s)",
        report.total
    ))?;
    for (o, n) in &report.purged_by_overleg {
        let before = report.cutoff_by_overleg.get(o).map_or("?", String::as_str);
        outln(&format!("  {o}: {n} (before {before})"))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn keygen(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir)?;
    Pseudonymiser::generate_file(&dir.join("pseudonym.key")).context("pseudonym.key")?;
    Signer::generate_file(&dir.join("signing.key")).context("signing.key")?;
    outln(&format!(
        "wrote {0}/pseudonym.key, {0}/signing.key and {0}/signing.key.pub (give the .pub to the FG)",
        dir.display()
    ))?;
    Ok(ExitCode::SUCCESS)
}
