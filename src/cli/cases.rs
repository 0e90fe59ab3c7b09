//! `poortwachter cases …` and `poortwachter consent …`: the registers from
//! the command line, on the store of a configuration file. Changes are made
//! on behalf of an organisation in a role the policy lets register
//! (`--door`, `--rol`), and recorded in the `<instance>/admin` audit chain.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use poortwachter::audit::{Store, admin};
use poortwachter::config::Config;
use poortwachter::policy;
use poortwachter::registers::{
    self, ChangeContext, GivenBy, History, NewConsent, NewRegistration, Origin,
};

/// CLI changes carry no request: their audit records get fresh ids.
static CLI_ORIGIN: Origin = Origin {
    request_id: None,
    trace_id: None,
    cert_fingerprint: None,
};

#[derive(Subcommand)]
pub enum CasesCmd {
    /// Register (aanmelden) a pupil in a casusoverleg.
    Register {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        overleg: String,
        #[arg(long)]
        leerling: String,
        /// Organisation that registers (partners.toml id); its role must have may_register_cases.
        #[arg(long)]
        door: String,
        /// Role, when the organisation holds several registering roles.
        #[arg(long)]
        rol: Option<String>,
        /// The overleg's own case reference.
        #[arg(long)]
        referentie: String,
        /// Start (YYYY-MM-DD or RFC 3339); default now.
        #[arg(long)]
        begin: Option<String>,
        /// Planned end, exclusive (YYYY-MM-DD or RFC 3339); default open.
        #[arg(long)]
        einde: Option<String>,
    },
    /// End a registration now.
    End {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        overleg: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        leerling: String,
        #[arg(long)]
        door: String,
        #[arg(long)]
        rol: Option<String>,
    },
    /// Registrations and consents of a pupil (this read is recorded in the trail).
    List {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        leerling: String,
        #[arg(long)]
        overleg: Option<String>,
        #[arg(long, value_enum, default_value_t = crate::TextOrJson::Text)]
        format: crate::TextOrJson,
    },
}

#[derive(Subcommand)]
pub enum ConsentCmd {
    /// Record consent (toestemming) for purposes of a casusoverleg.
    Give {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        overleg: String,
        #[arg(long)]
        leerling: String,
        #[arg(long)]
        door: String,
        #[arg(long)]
        rol: Option<String>,
        /// parents, youth or parents-and-youth
        #[arg(long)]
        gegeven_door: String,
        /// Purpose id of the overleg; repeat for several.
        #[arg(long = "doel", required = true)]
        doelen: Vec<String>,
        /// Reference to the signed consent form.
        #[arg(long)]
        formulier: String,
        #[arg(long)]
        geldig_van: Option<String>,
        #[arg(long)]
        geldig_tot: Option<String>,
    },
    /// Withdraw a consent; acknowledged once no response relying on it can still leave.
    Withdraw {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        overleg: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        leerling: String,
        #[arg(long)]
        door: String,
        #[arg(long)]
        rol: Option<String>,
        /// Reference to the withdrawal (letter, e-mail, conversation note).
        #[arg(long)]
        referentie: Option<String>,
    },
}

/// The registers of a configuration's store, with the admin audit chain.
struct Opened {
    set: poortwachter::policy::model::PolicySet,
    regs: registers::Registers,
    auditor: poortwachter::audit::Auditor,
    writer: tokio::task::JoinHandle<()>,
}

impl Opened {
    async fn open(config: &Path) -> anyhow::Result<Self> {
        let cfg = Config::load(config)?;
        let set = policy::load_dir(&cfg.policy.dir)?;
        let store = Store::connect(&cfg.audit.store).await?;
        let grace = cli_grace(&store, &cfg).await;
        let (auditor, writer) =
            admin::admin_auditor(&store, &cfg.audit, &cfg.server.instance).await?;
        let regs = registers::Registers::new(
            store,
            auditor.clone(),
            grace,
            cfg.request_lifetime(),
            std::time::Duration::from_millis(cfg.registers.lookup_timeout_ms),
        );
        Ok(Self {
            set,
            regs,
            auditor,
            writer,
        })
    }

    fn cx<'a>(&'a self, overleg: &'a str, actor: &'a registers::Actor) -> ChangeContext<'a> {
        ChangeContext {
            origin: &CLI_ORIGIN,
            set: &self.set,
            overleg,
            actor,
            deadline: None,
        }
    }

    async fn close(self) {
        drop(self.regs);
        drop(self.auditor);
        let _ = self.writer.await;
    }
}

/// A gateway that is serving this store may have requests in flight that
/// this process cannot see: wait out their lifetime before acknowledging a
/// revocation, unless the store is SQLite and no gateway holds its lock.
async fn cli_grace(store: &Store, cfg: &Config) -> Duration {
    let sqlite = cfg.audit.store.starts_with("sqlite:");
    if sqlite && store.lock_instance(&cfg.server.instance).await.is_ok() {
        // The lock is released again when the guard drops here.
        return Duration::ZERO;
    }
    cfg.revocation_grace().max(cfg.request_lifetime())
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub async fn cases(cmd: CasesCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CasesCmd::Register {
            config,
            overleg,
            leerling,
            door,
            rol,
            referentie,
            begin,
            einde,
        } => {
            let o = Opened::open(&config).await?;
            let who = registers::actor(&o.set, &overleg, &door, rol.as_deref())?;
            let new = NewRegistration {
                leerling,
                reference: referentie,
                begins_at: begin,
                ends_at: einde,
            };
            let r = o.regs.register(&o.cx(&overleg, &who), new).await;
            o.close().await;
            print_json(&r?)?;
            Ok(ExitCode::SUCCESS)
        }
        CasesCmd::End {
            config,
            overleg,
            id,
            leerling,
            door,
            rol,
        } => {
            let o = Opened::open(&config).await?;
            let who = registers::actor(&o.set, &overleg, &door, rol.as_deref())?;
            announce_grace(o.regs.grace());
            let r = o
                .regs
                .end_registration(&o.cx(&overleg, &who), &id, &leerling)
                .await;
            o.close().await;
            print_json(&r?)?;
            Ok(ExitCode::SUCCESS)
        }
        CasesCmd::List {
            config,
            leerling,
            overleg,
            format,
        } => list(&config, &leerling, overleg.as_deref(), format).await,
    }
}

pub async fn consent(cmd: ConsentCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ConsentCmd::Give {
            config,
            overleg,
            leerling,
            door,
            rol,
            gegeven_door,
            doelen,
            formulier,
            geldig_van,
            geldig_tot,
        } => {
            let given_by = GivenBy::parse(&gegeven_door).ok_or_else(|| {
                anyhow::anyhow!("--gegeven-door must be parents, youth or parents-and-youth")
            })?;
            let o = Opened::open(&config).await?;
            let who = registers::actor(&o.set, &overleg, &door, rol.as_deref())?;
            let new = NewConsent {
                leerling,
                given_by,
                purposes: doelen,
                valid_from: geldig_van,
                valid_until: geldig_tot,
                form_reference: formulier,
            };
            let r = o.regs.give_consent(&o.cx(&overleg, &who), new).await;
            o.close().await;
            print_json(&r?)?;
            Ok(ExitCode::SUCCESS)
        }
        ConsentCmd::Withdraw {
            config,
            overleg,
            id,
            leerling,
            door,
            rol,
            referentie,
        } => {
            let o = Opened::open(&config).await?;
            let who = registers::actor(&o.set, &overleg, &door, rol.as_deref())?;
            announce_grace(o.regs.grace());
            let r = o
                .regs
                .withdraw_consent(&o.cx(&overleg, &who), &id, &leerling, referentie)
                .await;
            o.close().await;
            print_json(&r?)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn announce_grace(grace: Duration) {
    if !grace.is_zero() {
        eprintln!(
            "a gateway may be serving this store: waiting {:.1} s after the change for its in-flight requests before acknowledging",
            grace.as_secs_f64()
        );
    }
}

async fn list(
    config: &Path,
    leerling: &str,
    overleg: Option<&str>,
    format: crate::TextOrJson,
) -> anyhow::Result<ExitCode> {
    let o = Opened::open(config).await?;
    registers::check_pupil(leerling)?;
    let history = o.regs.history(overleg, leerling).await;
    // Reading a pupil's registers is an access to personal data: recorded.
    let recorded = o.regs.record_read(overleg, leerling, "cases list").await;
    o.close().await;
    recorded?;
    let history = history?;
    if format == crate::TextOrJson::Json {
        print_json(&history)?;
    } else {
        print_text(&history);
    }
    Ok(ExitCode::SUCCESS)
}

/// A pupil's case and consent status for `policy explain`; the read is
/// recorded in the admin chain like every register read.
pub async fn status_for_explain(
    config: &Path,
    overleg: &str,
    leerling: &str,
) -> anyhow::Result<registers::CaseStatus> {
    registers::check_pupil(leerling)?;
    let o = Opened::open(config).await?;
    let status = o.regs.status(overleg, leerling).await;
    let recorded = o
        .regs
        .record_read(Some(overleg), leerling, "policy explain")
        .await;
    o.close().await;
    recorded?;
    Ok(status?)
}

fn print_text(h: &History) {
    println!("aanmeldingen ({}):", h.aanmeldingen.len());
    for r in &h.aanmeldingen {
        println!(
            "  {} {} [{}] ref {} from {} until {} by {} ({}){}",
            r.id,
            r.overleg,
            if r.actief { "actief" } else { "niet actief" },
            r.referentie,
            r.begin,
            r.einde.as_deref().unwrap_or("-"),
            r.aangemeld_door,
            r.rol,
            r.beeindigd_op
                .as_deref()
                .map(|t| format!(", beëindigd {t}"))
                .unwrap_or_default()
        );
    }
    println!("toestemmingen ({}):", h.toestemmingen.len());
    for c in &h.toestemmingen {
        println!(
            "  {} {} [{}] {} for {} from {} until {} form {}{}",
            c.id,
            c.overleg,
            if c.actief { "actief" } else { "niet actief" },
            c.gegeven_door.as_str(),
            c.doelen.join(", "),
            c.geldig_van,
            c.geldig_tot.as_deref().unwrap_or("-"),
            c.formulier,
            c.ingetrokken_op
                .as_deref()
                .map(|t| format!(", ingetrokken {t}"))
                .unwrap_or_default()
        );
    }
}
