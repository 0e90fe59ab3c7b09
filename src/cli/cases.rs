//! `poortwachter cases …` and `poortwachter consent …`: the registers
//! (registrations, consent, objections and restrictions) from
//! the command line, on the store of a configuration file. Changes are made
//! on behalf of an organisation in a role the policy lets register (`--org`,
//! `--role`), and recorded in the `<instance>/admin` audit chain.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::{TextOrJson, out_json, outln};
use poortwachter::audit::Store;
use poortwachter::config::Config;
use poortwachter::registers::{
    self, Capability, ChangeContext, GivenBy, History, NewConsent, NewObjection, NewRegistration,
    NewRestriction, ObjectionState, Origin, Registers, RestrictionReason,
};
use poortwachter::review::session::Session;

/// CLI changes carry no request: their audit records get fresh ids.
static CLI_ORIGIN: Origin = Origin {
    request_id: None,
    trace_id: None,
    cert_fingerprint: None,
    supplier: None,
};

/// Who makes a change: the organisation and, when it holds several
/// registering roles, the role.
#[derive(clap::Args)]
pub struct Actor {
    /// Organisation that acts (partners.toml id); its role must have may_register_cases.
    #[arg(long, alias = "door")]
    org: String,
    /// Role, when the organisation holds several registering roles.
    #[arg(long, alias = "rol")]
    role: Option<String>,
    /// The software supplier making the change for --org: its client
    /// mandate must cover the overleg today, and the record names it.
    #[arg(long, alias = "via-leverancier")]
    via: Option<String>,
}

/// Who makes a change, and the origin its record carries.
struct Who {
    actor: registers::Actor,
    origin: Origin,
}

#[derive(Subcommand)]
pub enum CasesCmd {
    /// Register (aanmelden) a pupil in a casusoverleg.
    Register {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        overleg: String,
        #[arg(long, alias = "leerling")]
        pupil: String,
        #[command(flatten)]
        actor: Actor,
        /// The overleg's own case reference.
        #[arg(long, alias = "referentie")]
        reference: String,
        /// Start (YYYY-MM-DD or RFC 3339); default now.
        #[arg(long)]
        begin: Option<String>,
        /// Planned end, exclusive (YYYY-MM-DD or RFC 3339); default open.
        #[arg(long, alias = "einde")]
        end: Option<String>,
        /// When the pupil and parents were informed (AVG art. 13/14), with
        /// --informed-how.
        #[arg(long, alias = "geinformeerd-op", requires = "informed_how")]
        informed_at: Option<String>,
        /// How they were informed (a reference, e.g. "brief 2026-09-02").
        #[arg(long, alias = "geinformeerd-hoe", requires = "informed_at")]
        informed_how: Option<String>,
    },
    /// End a registration now.
    End {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        overleg: String,
        #[arg(long)]
        id: String,
        #[arg(long, alias = "leerling")]
        pupil: String,
        #[command(flatten)]
        actor: Actor,
    },
    /// Record an objection (bezwaar, AVG art. 21); the role needs may_record_objections.
    Object {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        overleg: String,
        #[arg(long, alias = "leerling")]
        pupil: String,
        #[command(flatten)]
        actor: Actor,
        /// The objection's reference (letter, form, note).
        #[arg(long, alias = "referentie")]
        reference: String,
        /// The one purpose of the overleg it is against; default every purpose.
        #[arg(long, alias = "doel")]
        purpose: Option<String>,
        /// When it was lodged (YYYY-MM-DD or RFC 3339); default now.
        #[arg(long, alias = "ingediend-op")]
        lodged: Option<String>,
        /// Against every casusoverleg, not only --overleg (no --purpose then).
        #[arg(long, alias = "alle-overleggen", conflicts_with = "purpose")]
        all_overleggen: bool,
    },
    /// Decide a lodged objection: upheld (toegewezen) or rejected (afgewezen), once.
    Decide {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        overleg: String,
        #[arg(long)]
        id: String,
        #[arg(long, alias = "leerling")]
        pupil: String,
        #[command(flatten)]
        actor: Actor,
        /// upheld (toegewezen) or rejected (afgewezen)
        #[arg(long, alias = "besluit")]
        decision: String,
        /// Reference to the decision.
        #[arg(long, alias = "referentie")]
        reference: String,
    },
    /// Record a restriction (beperking, AVG art. 18); the role needs may_record_restrictions.
    Restrict {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        overleg: String,
        #[arg(long, alias = "leerling")]
        pupil: String,
        #[command(flatten)]
        actor: Actor,
        /// Catalogue path (`path` or `bron:path`); repeat for several; none: every field.
        #[arg(long = "field", alias = "veld")]
        fields: Vec<String>,
        /// juistheid-betwist, onrechtmatige-verwerking, rechtsvordering or bezwaar-in-behandeling
        #[arg(long, alias = "reden")]
        reason: String,
        #[arg(long, alias = "referentie")]
        reference: String,
        #[arg(long)]
        begin: Option<String>,
        #[arg(long, alias = "einde")]
        end: Option<String>,
    },
    /// Lift a restriction now (opheffen).
    Lift {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        overleg: String,
        #[arg(long)]
        id: String,
        #[arg(long, alias = "leerling")]
        pupil: String,
        #[command(flatten)]
        actor: Actor,
        #[arg(long, alias = "referentie")]
        reference: Option<String>,
    },
    /// Registrations, consents, objections and restrictions of a pupil (this read is recorded in the trail).
    List {
        #[arg(long)]
        config: PathBuf,
        #[arg(long, alias = "leerling")]
        pupil: String,
        #[arg(long)]
        overleg: Option<String>,
        #[arg(long, value_enum, default_value_t = TextOrJson::Text)]
        format: TextOrJson,
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
        #[arg(long, alias = "leerling")]
        pupil: String,
        #[command(flatten)]
        actor: Actor,
        /// parents, youth or parents-and-youth
        #[arg(long, alias = "gegeven-door")]
        given_by: String,
        /// Purpose id of the overleg; repeat for several.
        #[arg(long = "purpose", alias = "doel", required = true)]
        purposes: Vec<String>,
        /// Reference to the signed consent form.
        #[arg(long, alias = "formulier")]
        form: String,
        #[arg(long, alias = "geldig-van")]
        valid_from: Option<String>,
        #[arg(long, alias = "geldig-tot")]
        valid_until: Option<String>,
    },
    /// Withdraw a consent; acknowledged once no response relying on it can still leave.
    Withdraw {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        overleg: String,
        #[arg(long)]
        id: String,
        #[arg(long, alias = "leerling")]
        pupil: String,
        #[command(flatten)]
        actor: Actor,
        /// Reference to the withdrawal (letter, e-mail, conversation note).
        #[arg(long, alias = "referentie")]
        reference: Option<String>,
    },
}

/// The registers of a configuration's store, on an admin session.
struct Opened {
    session: Session,
    regs: Registers,
}

impl Opened {
    async fn open(config: &Path) -> anyhow::Result<Self> {
        let cfg = Config::load(config)?;
        let session = Session::open(&cfg).await?;
        let grace = cli_grace(&session.store, &cfg).await;
        // A gateway may be running (a grace is due): it may still use a
        // status it held for the feed's staleness after a change.
        let settle = if grace.is_zero() {
            Duration::ZERO
        } else {
            cfg.registers.cache_staleness()
        };
        let regs = Registers::new(
            session.store.clone(),
            session.auditor().clone(),
            grace,
            cfg.request_lifetime(),
            Duration::from_millis(cfg.registers.lookup_timeout_ms),
        )
        .with_settle(settle);
        Ok(Self { session, regs })
    }

    /// The acting organisation in its registering role; with `--via`, only
    /// under an active client mandate for the overleg (the lookup serving
    /// does for X-Namens).
    fn actor(&self, overleg: &str, a: &Actor) -> anyhow::Result<Who> {
        self.actor_for(overleg, a, Capability::Cases)
    }

    /// [`Self::actor`] in a role that may do `what`.
    fn actor_for(&self, overleg: &str, a: &Actor, what: Capability) -> anyhow::Result<Who> {
        use poortwachter::policy::mandate;
        let set = &self.session.set;
        let mut origin = CLI_ORIGIN.clone();
        if let Some(supplier) = &a.via {
            set.mandates
                .acting_for(supplier, &a.org, Some(overleg), mandate::now())
                .map_err(|why| anyhow::anyhow!("no mandate: {}", why.as_str()))?;
            origin.supplier = Some(supplier.clone());
        }
        let actor = registers::actor_for(set, overleg, &a.org, a.role.as_deref(), what)?;
        Ok(Who { actor, origin })
    }

    fn cx<'a>(&'a self, overleg: &'a str, who: &'a Who) -> ChangeContext<'a> {
        ChangeContext {
            origin: &who.origin,
            set: &self.session.set,
            overleg,
            actor: &who.actor,
            deadline: None,
        }
    }

    async fn close(self) {
        drop(self.regs);
        self.session.close().await;
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

pub async fn cases(cmd: CasesCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        CasesCmd::Register {
            config,
            overleg,
            pupil,
            actor,
            reference,
            begin,
            end,
            informed_at,
            informed_how,
        } => {
            let o = Opened::open(&config).await?;
            let who = o.actor(&overleg, &actor)?;
            let new = NewRegistration {
                pupil,
                reference,
                begins_at: begin,
                ends_at: end,
                informed_at,
                informed_how,
            };
            let r = o.regs.register(&o.cx(&overleg, &who), new).await;
            o.close().await;
            out_json(&r?)?;
        }
        CasesCmd::End {
            config,
            overleg,
            id,
            pupil,
            actor,
        } => {
            let o = Opened::open(&config).await?;
            let who = o.actor(&overleg, &actor)?;
            announce_grace(o.regs.grace());
            let cx = o.cx(&overleg, &who);
            let r = o.regs.end_registration(&cx, &id, &pupil).await;
            o.close().await;
            out_json(&r?)?;
        }
        CasesCmd::List {
            config,
            pupil,
            overleg,
            format,
        } => list(&config, &pupil, overleg.as_deref(), format).await?,
        cmd @ (CasesCmd::Object { .. }
        | CasesCmd::Decide { .. }
        | CasesCmd::Restrict { .. }
        | CasesCmd::Lift { .. }) => Box::pin(objections(cmd)).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `cases object` and `cases decide`; the restriction commands go on to
/// [`restrictions`].
async fn objections(cmd: CasesCmd) -> anyhow::Result<()> {
    match cmd {
        CasesCmd::Object {
            config,
            overleg,
            pupil,
            actor,
            reference,
            purpose,
            lodged,
            all_overleggen,
        } => {
            let o = Opened::open(&config).await?;
            let who = o.actor_for(&overleg, &actor, Capability::Objections)?;
            announce_grace(o.regs.grace());
            let new = NewObjection {
                pupil,
                purpose,
                reference,
                lodged_at: lodged,
                all_overleggen,
            };
            let r = o.regs.lodge_objection(&o.cx(&overleg, &who), new).await;
            o.close().await;
            out_json(&r?)?;
        }
        CasesCmd::Decide {
            config,
            overleg,
            id,
            pupil,
            actor,
            decision,
            reference,
        } => {
            let decision = match decision.as_str() {
                "upheld" | "toegewezen" => ObjectionState::Upheld,
                "rejected" | "afgewezen" => ObjectionState::Rejected,
                _ => {
                    anyhow::bail!("--decision must be upheld (toegewezen) or rejected (afgewezen)")
                }
            };
            let o = Opened::open(&config).await?;
            let who = o.actor_for(&overleg, &actor, Capability::Objections)?;
            let cx = o.cx(&overleg, &who);
            let r = o
                .regs
                .decide_objection(&cx, &id, &pupil, decision, reference)
                .await;
            o.close().await;
            out_json(&r?)?;
        }
        other => Box::pin(restrictions(other)).await?,
    }
    Ok(())
}

/// `cases restrict` and `cases lift`.
async fn restrictions(cmd: CasesCmd) -> anyhow::Result<()> {
    match cmd {
        CasesCmd::Restrict {
            config,
            overleg,
            pupil,
            actor,
            fields,
            reason,
            reference,
            begin,
            end,
        } => {
            let reason = RestrictionReason::parse(&reason).ok_or_else(|| {
                anyhow::anyhow!("--reason must be juistheid-betwist, onrechtmatige-verwerking, rechtsvordering or bezwaar-in-behandeling")
            })?;
            let o = Opened::open(&config).await?;
            let who = o.actor_for(&overleg, &actor, Capability::Restrictions)?;
            announce_grace(o.regs.grace());
            let new = NewRestriction {
                pupil,
                fields: (!fields.is_empty()).then_some(fields),
                reason,
                reference,
                begins_at: begin,
                ends_at: end,
            };
            let r = o.regs.restrict(&o.cx(&overleg, &who), new).await;
            o.close().await;
            out_json(&r?)?;
        }
        CasesCmd::Lift {
            config,
            overleg,
            id,
            pupil,
            actor,
            reference,
        } => {
            let o = Opened::open(&config).await?;
            let who = o.actor_for(&overleg, &actor, Capability::Restrictions)?;
            let cx = o.cx(&overleg, &who);
            let r = o.regs.lift_restriction(&cx, &id, &pupil, reference).await;
            o.close().await;
            out_json(&r?)?;
        }
        _ => anyhow::bail!("not a restriction command"),
    }
    Ok(())
}

pub async fn consent(cmd: ConsentCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ConsentCmd::Give {
            config,
            overleg,
            pupil,
            actor,
            given_by,
            purposes,
            form,
            valid_from,
            valid_until,
        } => {
            let given_by = GivenBy::parse(&given_by).ok_or_else(|| {
                anyhow::anyhow!("--given-by must be parents, youth or parents-and-youth")
            })?;
            let o = Opened::open(&config).await?;
            let who = o.actor(&overleg, &actor)?;
            let new = NewConsent {
                pupil,
                given_by,
                purposes,
                valid_from,
                valid_until,
                form_reference: form,
            };
            let r = o.regs.give_consent(&o.cx(&overleg, &who), new).await;
            o.close().await;
            out_json(&r?)?;
        }
        ConsentCmd::Withdraw {
            config,
            overleg,
            id,
            pupil,
            actor,
            reference,
        } => {
            let o = Opened::open(&config).await?;
            let who = o.actor(&overleg, &actor)?;
            announce_grace(o.regs.grace());
            let cx = o.cx(&overleg, &who);
            let r = o.regs.withdraw_consent(&cx, &id, &pupil, reference).await;
            o.close().await;
            out_json(&r?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
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
    pupil: &str,
    overleg: Option<&str>,
    format: TextOrJson,
) -> anyhow::Result<()> {
    registers::check_pupil(pupil)?;
    let o = Opened::open(config).await?;
    let history = o.regs.history(overleg, pupil).await;
    // Reading a pupil's registers is an access to personal data: recorded.
    let recorded = o.regs.record_read(overleg, pupil, "cases list").await;
    o.close().await;
    recorded?;
    let history = history?;
    if format == TextOrJson::Json {
        out_json(&history)
    } else {
        print_text(&history)
    }
}

/// A pupil's case and consent status for `policy explain`; the read is
/// recorded in the admin chain like every register read.
pub async fn status_for_explain(
    config: &Path,
    overleg: &str,
    pupil: &str,
) -> anyhow::Result<registers::CaseStatus> {
    registers::check_pupil(pupil)?;
    let o = Opened::open(config).await?;
    let status = o.regs.status(overleg, pupil).await;
    let recorded = o
        .regs
        .record_read(Some(overleg), pupil, "policy explain")
        .await;
    o.close().await;
    recorded?;
    Ok(status?)
}

fn active(yes: bool) -> &'static str {
    if yes { "active" } else { "not active" }
}

fn print_text(h: &History) -> anyhow::Result<()> {
    outln(&format!("registrations ({}):", h.registrations.len()))?;
    for r in &h.registrations {
        let ended = r.ended_at.as_deref().map(|t| format!(", ended {t}"));
        outln(&format!(
            "  {} {} [{}] ref {} from {} until {} by {} ({}){}",
            r.id,
            r.overleg,
            active(r.active),
            r.reference,
            r.begin,
            r.end.as_deref().unwrap_or("-"),
            r.registered_by,
            r.role,
            ended.unwrap_or_default()
        ))?;
    }
    outln(&format!("consents ({}):", h.consents.len()))?;
    for c in &h.consents {
        let withdrawn = c
            .withdrawn_at
            .as_deref()
            .map(|t| format!(", withdrawn {t}"));
        outln(&format!(
            "  {} {} [{}] {} for {} from {} until {} form {}{}",
            c.id,
            c.overleg,
            active(c.active),
            c.given_by.as_str(),
            c.purposes.join(", "),
            c.valid_from,
            c.valid_until.as_deref().unwrap_or("-"),
            c.form,
            withdrawn.unwrap_or_default()
        ))?;
    }
    print_rights(h)
}

fn print_rights(h: &History) -> anyhow::Result<()> {
    outln(&format!("objections ({}):", h.objections.len()))?;
    for b in &h.objections {
        let decided = b.decided_at.as_deref().map(|t| format!(", decided {t}"));
        outln(&format!(
            "  {} {} [{}] {} for {} lodged {} ref {} by {} ({}){}",
            b.id,
            b.overleg,
            active(b.active),
            b.state.dutch(),
            b.purpose.as_deref().unwrap_or("every purpose"),
            b.lodged_at,
            b.reference,
            b.recorded_by,
            b.role,
            decided.unwrap_or_default()
        ))?;
    }
    outln(&format!("restrictions ({}):", h.restrictions.len()))?;
    for r in &h.restrictions {
        let lifted = r.lifted_at.as_deref().map(|t| format!(", lifted {t}"));
        outln(&format!(
            "  {} {} [{}] {} of {} from {} until {} ref {}{}",
            r.id,
            r.overleg,
            active(r.active),
            r.reason.as_str(),
            r.fields
                .as_ref()
                .map_or_else(|| "every field".to_owned(), |f| f.join(", ")),
            r.begin,
            r.end.as_deref().unwrap_or("-"),
            r.reference,
            lifted.unwrap_or_default()
        ))?;
    }
    Ok(())
}
