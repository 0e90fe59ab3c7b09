//! `audit inzage --leerling ID`: the AVG art. 15 report for one pupil (or
//! the parents). Every disclosure of the pupil's data through the gateway,
//! with the recipient organisation by name, the date, the purpose in the
//! covenant's words, the grondslag and the fields with readable labels and
//! categories; denied attempts only when the FG asks for them.
//!
//! Completeness and isolation come from one query: the records whose
//! `subject` is one of the pupil's pseudonyms (under every key version, via
//! the `subject` index). Everything shown is derived from those records and
//! the policy set's names and labels; nothing else in the trail is read.

use maud::{Markup, html};
use serde::Serialize;

use super::html;
use super::{ReviewError, query, when};
use crate::audit::{Pseudonymiser, Store, StoredRow};
use crate::policy::compile::rule_act;
use crate::policy::model::{Act, Category, PolicySet};
use crate::policy::tools::render::{category_marker, short_version};

/// What the report includes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Include refused requests (flagged as such). Off by default: the
    /// right of access is about data that was processed, and the FG decides
    /// whether refused attempts help the person asking.
    pub include_denied: bool,
}

/// One field in a disclosure.
#[derive(Debug, Clone, Serialize)]
pub struct FieldView {
    pub path: String,
    /// The catalogue's Dutch label (the path when the bron no longer lists it).
    pub label: String,
    /// normal / health / criminal / bsn.
    pub category: String,
    /// Dutch wording of the category.
    pub category_label: String,
}

/// One disclosure: data about the pupil that left a bron for a recipient.
#[derive(Debug, Clone, Serialize)]
pub struct Disclosure {
    pub time: String,
    /// Dutch date and time for people.
    pub when: String,
    pub recipient_id: String,
    pub recipient_name: String,
    /// The organisation that provided the data (the bron's owner for a
    /// read; the caller for a delivery to a bron).
    pub provider_id: String,
    pub provider_name: String,
    pub bron_name: String,
    pub overleg_id: String,
    pub overleg_name: String,
    pub purpose_id: String,
    pub purpose_text: String,
    pub role_name: String,
    pub grondslag: String,
    pub fields: Vec<FieldView>,
    /// The software supplier the caller's request came through, under the
    /// caller's mandate (`None` when the organisation connected itself).
    pub supplier_id: Option<String>,
    /// Its name in the partner registry, or its id when no longer listed.
    pub supplier_name: Option<String>,
    /// The sentence the report shows for it: "ontvangen door X, via
    /// leverancier Y" (or "aangeleverd door ..." for a delivery to a bron).
    pub via: Option<String>,
    /// `instance#seq` of the audit record, for the FG.
    pub record: String,
}

/// A refused request about the pupil: nothing was shared.
#[derive(Debug, Clone, Serialize)]
pub struct DeniedAttempt {
    pub time: String,
    pub when: String,
    pub requester_id: String,
    pub requester_name: String,
    /// The supplier the request came through, by name (or id).
    pub supplier_name: Option<String>,
    pub overleg_name: String,
    pub purpose_text: String,
    pub reason: String,
    /// Plain-Dutch explanation of the reason code.
    pub explanation: String,
    pub record: String,
}

/// One entry of the consent and registration history.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentEntry {
    pub time: String,
    pub overleg_name: String,
    /// `gegeven` or `ingetrokken`.
    pub change: String,
    /// Who consented: ouders / jongere / ouders en jongere.
    pub by: String,
    pub scope: String,
}

/// The consent section: consents given and withdrawn, and the pupil's
/// registrations in casusoverleggen (`available` is false only for reports
/// built without the registers).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConsentHistory {
    pub available: bool,
    pub entries: Vec<ConsentEntry>,
}

/// The pupil's consent history (and registrations in casusoverleggen) from
/// the registers, looked up by the same `pseudonyms` the disclosures use, so
/// the report stays complete for this pupil and about nobody else.
pub async fn consent_history(
    store: &Store,
    set: &PolicySet,
    pseudonyms: &[String],
) -> Result<ConsentHistory, ReviewError> {
    let h = crate::registers::history_of(store, pseudonyms, None).await?;
    let mut entries = registration_entries(set, &h.registrations);
    entries.extend(consent_entries(set, &h.consents));
    entries.extend(objection_entries(set, &h.objections));
    entries.extend(restriction_entries(set, &h.restrictions));
    entries.sort_by(|a, b| a.time.cmp(&b.time));
    Ok(ConsentHistory {
        available: true,
        entries,
    })
}

fn overleg_name(set: &PolicySet, id: &str) -> String {
    if id == crate::registers::ALL_OVERLEGGEN {
        return "alle casusoverleggen".to_owned();
    }
    set.overleggen
        .get(id)
        .map_or_else(|| id.to_owned(), |o| o.name.clone())
}

/// "vanaf <day>[ tot <day>]".
fn period_text(from: &str, until: Option<&str>) -> String {
    format!(
        "vanaf {}{}",
        from.get(..10).unwrap_or(from),
        until
            .map(|e| format!(" tot {}", e.get(..10).unwrap_or(e)))
            .unwrap_or_default()
    )
}

/// Each registration in a casusoverleg, and its end.
fn registration_entries(
    set: &PolicySet,
    registrations: &[crate::registers::Registration],
) -> Vec<ConsentEntry> {
    let name = |id: &str| {
        set.organisations
            .get(id)
            .map_or_else(|| id.to_owned(), |o| o.name.clone())
    };
    let mut entries = Vec::new();
    for r in registrations {
        entries.push(ConsentEntry {
            time: r.registered_at.clone(),
            overleg_name: overleg_name(set, &r.overleg),
            change: "aangemeld in het overleg".into(),
            by: name(&r.registered_by),
            scope: period_text(&r.begin, r.end.as_deref()),
        });
        // AVG art. 13/14: when and how the pupil and parents were informed.
        entries.push(match (&r.informed_at, &r.informed_how) {
            (Some(t), how) => ConsentEntry {
                time: t.clone(),
                overleg_name: overleg_name(set, &r.overleg),
                change: "leerling en ouders geïnformeerd".into(),
                by: name(&r.registered_by),
                scope: how.clone().unwrap_or_default(),
            },
            (None, _) => ConsentEntry {
                time: r.registered_at.clone(),
                overleg_name: overleg_name(set, &r.overleg),
                change: "niet vastgelegd dat leerling en ouders zijn geïnformeerd".into(),
                by: name(&r.registered_by),
                scope: String::new(),
            },
        });
        if let Some(t) = &r.ended_at {
            entries.push(ConsentEntry {
                time: t.clone(),
                overleg_name: overleg_name(set, &r.overleg),
                change: "aanmelding beëindigd".into(),
                by: name(r.ended_by.as_deref().unwrap_or("")),
                scope: String::new(),
            });
        }
    }
    entries
}

/// Each consent given, and its withdrawal.
/// Each objection (bezwaar, AVG art. 21) and the decision on it.
fn objection_entries(
    set: &PolicySet,
    objections: &[crate::registers::ObjectionEntry],
) -> Vec<ConsentEntry> {
    let mut entries = Vec::new();
    for o in objections {
        let scope = match &o.purpose {
            Some(p) => set
                .overleggen
                .get(&o.overleg)
                .and_then(|x| x.purpose(p))
                .map_or_else(|| p.clone(), |x| x.text.clone()),
            None => "alle doelen".to_owned(),
        };
        entries.push(ConsentEntry {
            time: o.lodged_at.clone(),
            overleg_name: overleg_name(set, &o.overleg),
            change: "bezwaar gemaakt (artikel 21 AVG)".into(),
            by: org_name(set, &o.recorded_by),
            scope: scope.clone(),
        });
        if let (Some(t), Some(by)) = (&o.decided_at, &o.decided_by) {
            entries.push(ConsentEntry {
                time: t.clone(),
                overleg_name: overleg_name(set, &o.overleg),
                change: format!("bezwaar {}", o.state.dutch()),
                by: org_name(set, by),
                scope,
            });
        }
    }
    entries
}

/// Each restriction (beperking, AVG art. 18) and its lifting.
fn restriction_entries(
    set: &PolicySet,
    restrictions: &[crate::registers::RestrictionEntry],
) -> Vec<ConsentEntry> {
    let mut entries = Vec::new();
    for r in restrictions {
        let fields = r
            .fields
            .as_ref()
            .map_or_else(|| "alle gegevens".to_owned(), |f| f.join(", "));
        entries.push(ConsentEntry {
            time: r.recorded_at.clone(),
            overleg_name: overleg_name(set, &r.overleg),
            change: "verwerking beperkt (artikel 18 AVG)".into(),
            by: org_name(set, &r.recorded_by),
            scope: format!("{fields} ({})", period_text(&r.begin, r.end.as_deref())),
        });
        if let (Some(t), Some(by)) = (&r.lifted_at, &r.lifted_by) {
            entries.push(ConsentEntry {
                time: t.clone(),
                overleg_name: overleg_name(set, &r.overleg),
                change: "beperking opgeheven".into(),
                by: org_name(set, by),
                scope: fields,
            });
        }
    }
    entries
}

fn consent_entries(
    set: &PolicySet,
    consents: &[crate::registers::ConsentEntry],
) -> Vec<ConsentEntry> {
    let purposes = |overleg: &str, ids: &[String]| {
        ids.iter()
            .map(|p| {
                set.overleggen
                    .get(overleg)
                    .and_then(|o| o.purpose(p))
                    .map_or_else(|| p.clone(), |x| x.text.clone())
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let by = |g: crate::registers::GivenBy| match g {
        crate::registers::GivenBy::Parents => "ouders",
        crate::registers::GivenBy::Youth => "jongere",
        crate::registers::GivenBy::ParentsAndYouth => "ouders en jongere",
    };
    let mut entries = Vec::new();
    for c in consents {
        let validity = period_text(&c.valid_from, c.valid_until.as_deref());
        entries.push(ConsentEntry {
            time: c.recorded_at.clone(),
            overleg_name: overleg_name(set, &c.overleg),
            change: "toestemming gegeven".into(),
            by: by(c.given_by).into(),
            scope: format!("{} (geldig {validity})", purposes(&c.overleg, &c.purposes)),
        });
        if let Some(t) = &c.withdrawn_at {
            entries.push(ConsentEntry {
                time: t.clone(),
                overleg_name: overleg_name(set, &c.overleg),
                change: "toestemming ingetrokken".into(),
                by: by(c.given_by).into(),
                scope: purposes(&c.overleg, &c.purposes),
            });
        }
    }
    entries
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Inzage {
    /// The pupil id as the FG entered it (the report is for this pupil).
    pub pupil: String,
    pub generated_at: String,
    pub policy_version: String,
    pub include_denied: bool,
    pub disclosures: Vec<Disclosure>,
    pub denied: Vec<DeniedAttempt>,
    pub consent: ConsentHistory,
    /// Emergency disclosures (spoed) the FG has not released are left
    /// out; the report then says that something is held back (AVG art. 15
    /// with UAVG art. 41), never what, when or to whom.
    #[serde(rename = "achtergehouden")]
    pub held_back: bool,
    /// How many audit records about the pupil were read (for the access record).
    #[serde(skip)]
    pub records_read: usize,
}

/// Plain-Dutch explanation of a refusal code.
pub fn explain_reason(code: &str) -> &'static str {
    match code {
        "no-rule" => "het convenant staat deze verstrekking voor dit doel niet toe",
        "consent-required" => "hiervoor is toestemming nodig, en die was er niet",
        "no-field-of-resource" => "geen van de gevraagde gegevens mocht worden verstrekt",
        "objection" => {
            "er was bezwaar gemaakt tegen deze verwerking (AVG art. 21), en de ontvanger verwerkt op een grondslag waartegen bezwaar mogelijk is"
        }
        "restricted" => {
            "de verwerking van deze gegevens was beperkt (AVG art. 18), bijvoorbeeld omdat de juistheid werd betwist"
        }
        "not-a-participant" => "de organisatie neemt niet deel aan dit overleg",
        "role-not-held" => "de organisatie heeft deze rol niet in dit overleg",
        "unknown-purpose" | "purpose-required" => "er was geen geldig doel opgegeven",
        "role-required" => "de organisatie gaf niet aan in welke rol zij vroeg",
        "method-not-allowed" => "deze handeling is bij deze bron niet toegestaan",
        "no-mandate" => {
            "de softwareleverancier had geen geldige machtiging van de organisatie voor dit overleg"
        }
        "principal-required" | "principal-malformed" | "principal-not-allowed" => {
            "niet duidelijk was namens welke organisatie de softwareleverancier vroeg"
        }
        "owner-required" | "owner-unknown" | "owner-not-hosted" => {
            "niet duidelijk was van welke organisatie de gegevens bij de leverancier werden gevraagd"
        }
        "no-host-mandate" => {
            "de organisatie had de softwareleverancier niet gemachtigd haar gegevens voor dit overleg te leveren"
        }
        _ => "het verzoek voldeed niet aan de afspraken",
    }
}

fn category_view(c: Category) -> (String, String) {
    (
        c.as_str().to_owned(),
        category_marker(c)
            .unwrap_or("gewoon persoonsgegeven")
            .to_owned(),
    )
}

pub fn org_name(set: &PolicySet, id: &str) -> String {
    set.organisations
        .get(id)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| format!("{id} (niet meer in het partnerregister)"))
}

/// A supplier's name in the registry, or its id when no longer listed.
fn supplier_name(set: &PolicySet, id: &str) -> String {
    set.mandates
        .suppliers
        .get(id)
        .map_or_else(|| id.to_owned(), |s| s.name.clone())
}

/// The shared fields of a record, with the catalogue's label and category.
pub fn field_views(bron: Option<&crate::policy::model::Bron>, shared: &str) -> Vec<FieldView> {
    query::list(shared)
        .into_iter()
        .map(|path| field_view(bron, path))
        .collect()
}

/// One field path with the catalogue's label and category (the path and
/// "onbekend" when the bron no longer lists it).
pub fn field_view(bron: Option<&crate::policy::model::Bron>, path: String) -> FieldView {
    let entry = bron.and_then(|b| b.field_index(&path).map(|i| &b.catalogue[i]));
    let (category, category_label) = entry
        .map(|f| category_view(f.category))
        .unwrap_or_else(|| ("unknown".into(), "onbekend".into()));
    FieldView {
        label: entry
            .map(|f| f.label.clone())
            .unwrap_or_else(|| path.clone()),
        path,
        category,
        category_label,
    }
}

/// The supplier acted for the caller: it received the data for it (a read)
/// or delivered the caller's data (a write).
fn via_text(act: Act, caller_name: &str, supplier_name: &str) -> String {
    let verb = match act {
        Act::Read => "ontvangen",
        Act::Write => "aangeleverd",
    };
    format!("{verb} door {caller_name}, via leverancier {supplier_name}")
}

/// Who received the data of a disclosure record and who provided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parties {
    /// Read: the caller received data from the bron; write: the caller
    /// delivered data to the bron's owner.
    pub act: Act,
    pub recipient: String,
    pub provider: String,
}

/// The recipient and the provider of record `r` (also used by `audit
/// ontvangen` and `audit kennisgeving`, so every review command agrees on
/// who received what).
pub fn parties(set: &PolicySet, r: &StoredRow) -> Parties {
    let caller = r.org.clone().unwrap_or_default();
    let overleg = r.overleg.as_deref().and_then(|o| set.overleggen.get(o));
    let bron = r.bron.as_deref().and_then(|b| set.bronnen.get(b));
    // Direction from the deciding rule: a caller who holds the rule's `to`
    // role received the data; otherwise it delivered data to the bron.
    let act = match (overleg, bron) {
        (Some(o), Some(b)) => query::list(&r.rules)
            .iter()
            .find_map(|id| o.rules.iter().find(|x| &x.id == id))
            .map(|rule| rule_act(o, rule, b))
            .unwrap_or(Act::Read),
        _ => Act::Read,
    };
    // A hosted bron's record names the owner the data was for; a bron of
    // its own has one.
    let owner = r
        .owner
        .clone()
        .or_else(|| bron.and_then(|b| b.owners.first().cloned()))
        .unwrap_or_default();
    let (recipient, provider) = match act {
        Act::Read => (caller, owner),
        Act::Write => (owner, caller),
    };
    Parties {
        act,
        recipient,
        provider,
    }
}

/// The disclosure that record `r` (allowed or filtered) describes.
pub fn disclosure(set: &PolicySet, r: &StoredRow) -> Disclosure {
    let caller = r.org.clone().unwrap_or_default();
    let overleg = r.overleg.as_deref().and_then(|o| set.overleggen.get(o));
    let bron = r.bron.as_deref().and_then(|b| set.bronnen.get(b));
    let Parties {
        act,
        recipient,
        provider,
    } = parties(set, r);
    let fields = field_views(bron.map(AsRef::as_ref), &r.fields_shared);
    let purpose_id = r.purpose.clone().unwrap_or_default();
    let supplier = r.supplier.as_deref().map(|id| supplier_name(set, id));
    let via = supplier
        .as_deref()
        .map(|name| via_text(act, &org_name(set, &caller), name));
    Disclosure {
        time: r.time.clone(),
        when: when::dutch_readable(&r.time),
        recipient_name: org_name(set, &recipient),
        recipient_id: recipient,
        provider_name: org_name(set, &provider),
        provider_id: provider,
        bron_name: bron
            .map(|b| b.name.clone())
            .unwrap_or_else(|| r.bron.clone().unwrap_or_default()),
        overleg_id: r.overleg.clone().unwrap_or_default(),
        overleg_name: overleg
            .map(|o| o.name.clone())
            .unwrap_or_else(|| r.overleg.clone().unwrap_or_default()),
        purpose_text: overleg
            .and_then(|o| o.purpose(&purpose_id))
            .map(|p| p.text.clone())
            .unwrap_or_else(|| purpose_id.clone()),
        purpose_id,
        role_name: overleg
            .zip(r.role.as_deref())
            .and_then(|(o, role)| o.role(role))
            .map(|x| x.name.clone())
            .unwrap_or_else(|| r.role.clone().unwrap_or_default()),
        grondslag: r.grondslag.clone().unwrap_or_default(),
        fields,
        supplier_id: r.supplier.clone(),
        supplier_name: supplier,
        via,
        record: format!("{}#{}", r.instance, r.seq),
    }
}

fn denied(set: &PolicySet, r: &StoredRow) -> DeniedAttempt {
    let requester = r.org.clone().unwrap_or_default();
    let overleg = r.overleg.as_deref().and_then(|o| set.overleggen.get(o));
    let purpose = r.purpose.clone().unwrap_or_default();
    let supplier = r.supplier.as_deref().map(|id| supplier_name(set, id));
    // A supplier refused before it could act for anyone names no organisation.
    let requester_name = match (&r.org, &supplier) {
        (None, Some(s)) => format!("leverancier {s}"),
        (Some(_), Some(s)) => format!("{}, via leverancier {s}", org_name(set, &requester)),
        _ => org_name(set, &requester),
    };
    DeniedAttempt {
        time: r.time.clone(),
        when: when::dutch_readable(&r.time),
        requester_name,
        supplier_name: supplier,
        requester_id: requester,
        overleg_name: overleg
            .map(|o| o.name.clone())
            .unwrap_or_else(|| r.overleg.clone().unwrap_or_default()),
        purpose_text: overleg
            .and_then(|o| o.purpose(&purpose))
            .map(|p| p.text.clone())
            .unwrap_or(purpose),
        explanation: explain_reason(&r.reason).to_owned(),
        reason: r.reason.clone(),
        record: format!("{}#{}", r.instance, r.seq),
    }
}

/// Builds the report for `pupil` from the records under its pseudonyms.
pub async fn build(
    store: &Store,
    set: &PolicySet,
    pseudo: &Pseudonymiser,
    pupil: &str,
    opts: Options,
) -> Result<Inzage, ReviewError> {
    let pupil = pupil.trim();
    if pupil.is_empty() || pupil.len() > 128 {
        return Err(ReviewError::Filter(
            "a pupil id of 1 to 128 characters is needed".into(),
        ));
    }
    let pseudonyms = pseudo.all_pseudonyms(pupil);
    let mut rows = store.rows_for_subject(&pseudonyms).await?;
    rows.sort_by(|a, b| (&a.time, &a.instance, a.seq).cmp(&(&b.time, &b.instance, b.seq)));
    let consent = consent_history(store, set, &pseudonyms).await?;
    let released = crate::registers::emergency::released(store, &pseudonyms).await?;
    let held_back = hold_back(&mut rows, &released, opts.include_denied);
    let mut report = from_rows(set, pupil, &rows, opts, consent);
    report.held_back = held_back;
    Ok(report)
}

/// Leaves out every request record made on the emergency path (its
/// `detail` has `spoed`) unless its window was released by the FG; a
/// refused emergency request has no window and always stays out. Returns
/// whether anything the report would have shown was left out (a refusal
/// counts only when refusals are asked for).
pub fn hold_back<S: std::hash::BuildHasher>(
    rows: &mut Vec<StoredRow>,
    released: &std::collections::HashSet<String, S>,
    include_denied: bool,
) -> bool {
    let mut held = false;
    rows.retain(|r| {
        if r.kind != "request" || !r.detail.contains("\"spoed\"") {
            return true;
        }
        let d: serde_json::Value = serde_json::from_str(&r.detail).unwrap_or_default();
        let keep = match d.get("spoed") {
            None => true,
            Some(s) => s["venster"].as_str().is_some_and(|w| released.contains(w)),
        };
        if !keep {
            held |= r.outcome != "denied" || include_denied;
        }
        keep
    });
    held
}

/// The report from already selected records (all of them about `pupil`).
pub fn from_rows(
    set: &PolicySet,
    pupil: &str,
    rows: &[StoredRow],
    opts: Options,
    consent: ConsentHistory,
) -> Inzage {
    // A record the writer later corrected (it landed while its client was
    // answered 503, see `audit::writer`) was never delivered: no disclosure.
    let corrected: std::collections::HashSet<(String, i64)> = rows
        .iter()
        .filter(|r| r.kind == "correction")
        .filter_map(|r| {
            let d: serde_json::Value = serde_json::from_str(&r.detail).ok()?;
            let c = &d["corrects"];
            Some((c["instance"].as_str()?.to_owned(), c["seq"].as_i64()?))
        })
        .collect();
    let requests = rows
        .iter()
        .filter(|r| r.kind == "request" && !corrected.contains(&(r.instance.clone(), r.seq)));
    let mut disclosures = Vec::new();
    let mut refused = Vec::new();
    for r in requests {
        match r.outcome.as_str() {
            "allowed" | "filtered" if r.fields_shared != "[]" => {
                disclosures.push(disclosure(set, r));
            }
            "denied" if opts.include_denied => refused.push(denied(set, r)),
            _ => {}
        }
    }
    Inzage {
        pupil: pupil.to_owned(),
        generated_at: crate::audit::record::now_rfc3339(),
        policy_version: set.version.clone(),
        include_denied: opts.include_denied,
        disclosures,
        denied: refused,
        consent,
        held_back: false,
        records_read: rows.len(),
    }
}

impl Inzage {
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// The HTML body (without the page chrome), naming the pupil as `who`:
    /// the pupil id in the document for the pupil ([`Inzage::html`]), the
    /// pseudonym on the dashboard, which never echoes the id to a browser.
    pub fn html_body(&self, who: &str) -> Markup {
        html! {
            h1 { "Overzicht van verstrekte gegevens" } "\n"
            p.meta {
                "Inzageverzoek (artikel 15 AVG) voor leerling " strong { (who) }
                ". Opgesteld op " (when::dutch_readable(&self.generated_at)) "."
            } "\n"
            p { "Dit overzicht laat zien welke gegevens over deze leerling via Poortwachter zijn gedeeld tussen de partners van het privacyconvenant: met welke organisatie, wanneer, waarvoor (het doel) en op welke wettelijke grondslag. Poortwachter legt elke verstrekking vast voordat de gegevens worden doorgegeven; dit overzicht is daaruit samengesteld." } "\n"
            @if self.disclosures.iter().any(|d| d.via.is_some()) {
                p { "Sommige organisaties laten hun softwareleverancier (bijvoorbeeld de leverancier van de leerlingadministratie) de gegevens voor hen ophalen of aanleveren. De leverancier doet dat als verwerker in opdracht van die organisatie en alleen met haar machtiging; de organisatie blijft verantwoordelijk. Bij zo'n verstrekking staat hieronder via welke leverancier dat ging." } "\n"
            }
            @if self.held_back {
                p.achtergehouden { "Niet alle verstrekkingen staan in dit overzicht. Sommige gegevens worden op grond van artikel 41 van de Uitvoeringswet AVG op dit moment niet getoond; de functionaris gegevensbescherming beoordeelt wanneer dat wel kan. U kunt daarover contact met hem of haar opnemen." } "\n"
            }
            (self.disclosures_html())
            @if self.include_denied { (self.denied_html()) }
            (self.consent_html())
            h2 { "Uw rechten" } "\n"
            p { "Kloppen gegevens niet, of wilt u bezwaar maken tegen het delen ervan, neem dan contact op met de functionaris gegevensbescherming (FG) van de school of organisatie. U kunt ook een klacht indienen bij de Autoriteit Persoonsgegevens." } "\n"
            footer {
                p {
                    "Gegevens die met een " span.markering { "gemarkeerd" }
                    " soort staan, zijn bijzondere persoonsgegevens (zoals gezondheid) of strafrechtelijke gegevens; daarvoor gelden extra strenge regels. Policyversie "
                    code { (short_version(&self.policy_version)) } "."
                }
            } "\n"
        }
    }

    /// Every disclosure, each as a section with its fields.
    fn disclosures_html(&self) -> Markup {
        html! {
            h2 { "Verstrekkingen (" (self.disclosures.len()) ")" } "\n"
            @if self.disclosures.is_empty() {
                p { "Er zijn via Poortwachter geen gegevens over deze leerling verstrekt." } "\n"
            }
            @for (i, d) in self.disclosures.iter().enumerate() {
                (disclosure_html(i + 1, d)) "\n"
            }
        }
    }

    /// The refused requests (only when the FG asked for them).
    fn denied_html(&self) -> Markup {
        html! {
            h2 { "Geweigerde verzoeken (" (self.denied.len()) ")" } "\n"
            p {
                "Bij deze verzoeken zijn " strong { "geen" }
                " gegevens verstrekt; Poortwachter heeft ze geweigerd."
            } "\n"
            @if !self.denied.is_empty() {
                table {
                    thead { tr { th { "Datum" } th { "Organisatie" } th { "Overleg" } th { "Doel" } th { "Waarom geweigerd" } } }
                    tbody {
                        "\n"
                        @for d in &self.denied {
                            tr.geweigerd {
                                td { (d.when) } td { (d.requester_name) } td { (d.overleg_name) }
                                td { (d.purpose_text) }
                                td { span.markering { "geweigerd" } ": " (d.explanation) }
                            } "\n"
                        }
                    }
                } "\n"
            }
        }
    }

    /// Registrations in casusoverleggen and consents given or withdrawn.
    fn consent_html(&self) -> Markup {
        html! {
            h2 { "Aanmeldingen, toestemmingen, bezwaren en beperkingen" } "\n"
            @if !self.consent.available {
                p { "Poortwachter houdt nog geen register van toestemmingen bij. Gegevens waarvoor toestemming nodig is, zijn daarom niet verstrekt." } "\n"
            } @else if self.consent.entries.is_empty() {
                p { "Er is geen toestemming gegeven of ingetrokken, geen bezwaar gemaakt of beperking vastgelegd, en de leerling is in geen overleg aangemeld." } "\n"
            } @else {
                table {
                    thead { tr { th { "Datum" } th { "Overleg" } th { "Wijziging" } th { "Door" } th { "Waarvoor" } } }
                    tbody {
                        "\n"
                        @for c in &self.consent.entries {
                            tr {
                                td { (when::dutch_readable(&c.time)) } td { (c.overleg_name) }
                                td { (c.change) } td { (c.by) } td { (c.scope) }
                            } "\n"
                        }
                    }
                } "\n"
            }
        }
    }

    /// The report as one self-contained, printable HTML page.
    pub fn html(&self) -> String {
        html::page(
            &format!("Inzage: verstrekte gegevens over leerling {}", self.pupil),
            self.html_body(&self.pupil),
        )
    }
}

/// Disclosure number `n`: who received what from whom, when, why and on
/// which grondslag, and the fields with their kind.
fn disclosure_html(n: usize, d: &Disclosure) -> Markup {
    html! {
        section.verstrekking {
            h3 { (n) ". " (d.recipient_name) " ontving gegevens van " (d.provider_name) } "\n"
            dl.kenmerken {
                dt { "Datum" } dd { (d.when) }
                dt { "Ontvanger" } dd { (d.recipient_name) " (als " (d.role_name) ")" }
                @if let Some(via) = &d.via { dt { "Via leverancier" } dd { (via) } }
                dt { "Overleg" } dd { (d.overleg_name) }
                dt { "Doel" } dd { (d.purpose_text) }
                dt { "Grondslag" } dd { (d.grondslag) }
                dt { "Bron" } dd { (d.bron_name) }
            } "\n"
            table {
                thead { tr { th { "Gegeven" } th { "Soort gegeven" } } }
                tbody {
                    "\n"
                    @for f in &d.fields {
                        @let special = f.category != "normal";
                        tr class=[special.then_some("bijzonder")] {
                            td { (f.label) }
                            td {
                                @if special { span.markering { (f.category_label) } }
                                @else { (f.category_label) }
                            }
                        } "\n"
                    }
                }
            }
            p.meta { "Vastlegging " (d.record) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::html::hostile::{self, TEXT};

    fn hostile_report() -> Inzage {
        let field = |category: &str| FieldView {
            path: TEXT.into(),
            label: TEXT.into(),
            category: category.into(),
            category_label: TEXT.into(),
        };
        Inzage {
            pupil: TEXT.into(),
            generated_at: "2026-11-10T09:00:00.000000Z".into(),
            policy_version: "0123456789abcdef0123456789abcdef".into(),
            include_denied: true,
            held_back: true,
            disclosures: vec![Disclosure {
                time: "2026-11-10T09:00:00.000000Z".into(),
                when: TEXT.into(),
                recipient_id: TEXT.into(),
                recipient_name: TEXT.into(),
                provider_id: TEXT.into(),
                provider_name: TEXT.into(),
                bron_name: TEXT.into(),
                overleg_id: TEXT.into(),
                overleg_name: TEXT.into(),
                purpose_id: TEXT.into(),
                purpose_text: TEXT.into(),
                role_name: TEXT.into(),
                grondslag: TEXT.into(),
                fields: vec![field("normal"), field("health")],
                supplier_id: Some(TEXT.into()),
                supplier_name: Some(TEXT.into()),
                via: Some(TEXT.into()),
                record: TEXT.into(),
            }],
            denied: vec![DeniedAttempt {
                time: "2026-11-10T09:00:00.000000Z".into(),
                when: TEXT.into(),
                requester_id: TEXT.into(),
                requester_name: TEXT.into(),
                supplier_name: Some(TEXT.into()),
                overleg_name: TEXT.into(),
                purpose_text: TEXT.into(),
                reason: TEXT.into(),
                explanation: TEXT.into(),
                record: TEXT.into(),
            }],
            consent: ConsentHistory {
                available: true,
                entries: vec![ConsentEntry {
                    time: "2026-11-10T09:00:00.000000Z".into(),
                    overleg_name: TEXT.into(),
                    change: TEXT.into(),
                    by: TEXT.into(),
                    scope: TEXT.into(),
                }],
            },
            records_read: 2,
        }
    }

    #[test]
    fn every_text_of_the_report_is_escaped() {
        let html = hostile_report().html();
        // Title and heading (pupil); disclosure: heading (2), date,
        // recipient, role, via supplier, overleg, purpose, grondslag, bron,
        // two fields (label and kind each), record; denial: 5 columns;
        // consent: 4.
        hostile::assert_escaped(&html, 26);
        assert!(html.contains("<tr class=\"bijzonder\"><td>"));
        assert!(html.contains(&format!(
            "<span class=\"markering\">{}</span>",
            hostile::ESCAPED
        )));
    }

    #[test]
    fn the_dashboard_body_names_whom_it_is_given() {
        let body = hostile_report().html_body("k1:abc").into_string();
        assert!(body.contains("voor leerling <strong>k1:abc</strong>."));
        assert!(!body.contains("<title>"), "no page chrome");
    }
}
