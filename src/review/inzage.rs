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

use std::fmt::Write as _;

use serde::Serialize;

use super::html::{self, esc};
use super::{ReviewError, query, when};
use crate::audit::{Pseudonymiser, Store, StoredRow};
use crate::policy::compile::rule_direction;
use crate::policy::model::{Act, Category, PolicySet};
use crate::policy::tools::render::category_marker;

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
    let h = crate::registers::history_of(store, pseudonyms, None)
        .await
        .map_err(|e| ReviewError::Registers(e.to_string()))?;
    let overleg_name = |id: &str| {
        set.overleggen
            .get(id)
            .map_or_else(|| id.to_owned(), |o| o.name.clone())
    };
    let org_name = |id: &str| {
        set.organisations
            .get(id)
            .map_or_else(|| id.to_owned(), |o| o.name.clone())
    };
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
    for r in &h.aanmeldingen {
        entries.push(ConsentEntry {
            time: r.aangemeld_op.clone(),
            overleg_name: overleg_name(&r.overleg),
            change: "aangemeld in het overleg".into(),
            by: org_name(&r.aangemeld_door),
            scope: format!(
                "vanaf {}{}",
                r.begin.get(..10).unwrap_or(&r.begin),
                r.einde
                    .as_deref()
                    .map(|e| format!(" tot {}", e.get(..10).unwrap_or(e)))
                    .unwrap_or_default()
            ),
        });
        if let Some(t) = &r.beeindigd_op {
            entries.push(ConsentEntry {
                time: t.clone(),
                overleg_name: overleg_name(&r.overleg),
                change: "aanmelding beëindigd".into(),
                by: org_name(r.beeindigd_door.as_deref().unwrap_or("")),
                scope: String::new(),
            });
        }
    }
    for c in &h.toestemmingen {
        let validity = format!(
            " (geldig vanaf {}{})",
            c.geldig_van.get(..10).unwrap_or(&c.geldig_van),
            c.geldig_tot
                .as_deref()
                .map(|e| format!(" tot {}", e.get(..10).unwrap_or(e)))
                .unwrap_or_default()
        );
        entries.push(ConsentEntry {
            time: c.vastgelegd_op.clone(),
            overleg_name: overleg_name(&c.overleg),
            change: "toestemming gegeven".into(),
            by: by(c.gegeven_door).into(),
            scope: format!("{}{validity}", purposes(&c.overleg, &c.doelen)),
        });
        if let Some(t) = &c.ingetrokken_op {
            entries.push(ConsentEntry {
                time: t.clone(),
                overleg_name: overleg_name(&c.overleg),
                change: "toestemming ingetrokken".into(),
                by: by(c.gegeven_door).into(),
                scope: purposes(&c.overleg, &c.doelen),
            });
        }
    }
    entries.sort_by(|a, b| a.time.cmp(&b.time));
    Ok(ConsentHistory {
        available: true,
        entries,
    })
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
        "not-a-participant" => "de organisatie neemt niet deel aan dit overleg",
        "role-not-held" => "de organisatie heeft deze rol niet in dit overleg",
        "unknown-purpose" | "purpose-required" => "er was geen geldig doel opgegeven",
        "role-required" => "de organisatie gaf niet aan in welke rol zij vroeg",
        "method-not-allowed" => "deze handeling is bij deze bron niet toegestaan",
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

fn org_name(set: &PolicySet, id: &str) -> String {
    set.organisations
        .get(id)
        .map(|o| o.name.clone())
        .unwrap_or_else(|| format!("{id} (niet meer in het partnerregister)"))
}

fn disclosure(set: &PolicySet, r: &StoredRow) -> Disclosure {
    let caller = r.org.clone().unwrap_or_default();
    let overleg = r.overleg.as_deref().and_then(|o| set.overleggen.get(o));
    let bron = r.bron.as_deref().and_then(|b| set.bronnen.get(b));
    let rules = query::list(&r.rules);
    // Direction from the deciding rule: a caller who holds the rule's `to`
    // role received the data; otherwise it delivered data to the bron.
    let act = match (overleg, bron) {
        (Some(o), Some(b)) => rules
            .iter()
            .find_map(|id| o.rules.iter().find(|x| &x.id == id))
            .map(|rule| rule_direction(o, rule, &b.owner).0)
            .unwrap_or(Act::Read),
        _ => Act::Read,
    };
    let owner = bron.map(|b| b.owner.clone()).unwrap_or_default();
    let (recipient, provider) = match act {
        Act::Read => (caller.clone(), owner),
        Act::Write => (owner, caller.clone()),
    };
    let fields = query::list(&r.fields_shared)
        .into_iter()
        .map(|path| {
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
        })
        .collect();
    let purpose_id = r.purpose.clone().unwrap_or_default();
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
        record: format!("{}#{}", r.instance, r.seq),
    }
}

fn denied(set: &PolicySet, r: &StoredRow) -> DeniedAttempt {
    let requester = r.org.clone().unwrap_or_default();
    let overleg = r.overleg.as_deref().and_then(|o| set.overleggen.get(o));
    let purpose = r.purpose.clone().unwrap_or_default();
    DeniedAttempt {
        time: r.time.clone(),
        when: when::dutch_readable(&r.time),
        requester_name: org_name(set, &requester),
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
    Ok(from_rows(set, pupil, &rows, opts, consent))
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
                disclosures.push(disclosure(set, r))
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
    pub fn html_body(&self, who: &str) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "<h1>Overzicht van verstrekte gegevens</h1>\n<p class=\"meta\">Inzageverzoek (artikel 15 AVG) voor leerling <strong>{}</strong>. Opgesteld op {}.</p>",
            esc(who),
            esc(&when::dutch_readable(&self.generated_at))
        );
        let _ = writeln!(
            o,
            "<p>Dit overzicht laat zien welke gegevens over deze leerling via Poortwachter zijn gedeeld tussen de partners van het privacyconvenant: met welke organisatie, wanneer, waarvoor (het doel) en op welke wettelijke grondslag. Poortwachter legt elke verstrekking vast voordat de gegevens worden doorgegeven; dit overzicht is daaruit samengesteld.</p>"
        );
        let _ = writeln!(o, "<h2>Verstrekkingen ({})</h2>", self.disclosures.len());
        if self.disclosures.is_empty() {
            let _ = writeln!(
                o,
                "<p>Er zijn via Poortwachter geen gegevens over deze leerling verstrekt.</p>"
            );
        }
        for (i, d) in self.disclosures.iter().enumerate() {
            let _ = writeln!(
                o,
                "<section class=\"verstrekking\"><h3>{}. {} ontving gegevens van {}</h3>",
                i + 1,
                esc(&d.recipient_name),
                esc(&d.provider_name)
            );
            let _ = writeln!(
                o,
                "<dl class=\"kenmerken\"><dt>Datum</dt><dd>{}</dd><dt>Ontvanger</dt><dd>{} (als {})</dd><dt>Overleg</dt><dd>{}</dd><dt>Doel</dt><dd>{}</dd><dt>Grondslag</dt><dd>{}</dd><dt>Bron</dt><dd>{}</dd></dl>",
                esc(&d.when),
                esc(&d.recipient_name),
                esc(&d.role_name),
                esc(&d.overleg_name),
                esc(&d.purpose_text),
                esc(&d.grondslag),
                esc(&d.bron_name)
            );
            let _ = writeln!(
                o,
                "<table><thead><tr><th>Gegeven</th><th>Soort gegeven</th></tr></thead><tbody>"
            );
            for f in &d.fields {
                let special = f.category != "normal";
                let _ = writeln!(
                    o,
                    "<tr{}><td>{}</td><td>{}{}</td></tr>",
                    if special { " class=\"bijzonder\"" } else { "" },
                    esc(&f.label),
                    if special {
                        "<span class=\"markering\">"
                    } else {
                        ""
                    },
                    esc(&f.category_label) + if special { "</span>" } else { "" }
                );
            }
            let _ = writeln!(
                o,
                "</tbody></table><p class=\"meta\">Vastlegging {}</p></section>",
                esc(&d.record)
            );
        }
        if self.include_denied {
            let _ = writeln!(
                o,
                "<h2>Geweigerde verzoeken ({})</h2>\n<p>Bij deze verzoeken zijn <strong>geen</strong> gegevens verstrekt; Poortwachter heeft ze geweigerd.</p>",
                self.denied.len()
            );
            if !self.denied.is_empty() {
                let _ = writeln!(
                    o,
                    "<table><thead><tr><th>Datum</th><th>Organisatie</th><th>Overleg</th><th>Doel</th><th>Waarom geweigerd</th></tr></thead><tbody>"
                );
                for d in &self.denied {
                    let _ = writeln!(
                        o,
                        "<tr class=\"geweigerd\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"markering\">geweigerd</span>: {}</td></tr>",
                        esc(&d.when),
                        esc(&d.requester_name),
                        esc(&d.overleg_name),
                        esc(&d.purpose_text),
                        esc(&d.explanation)
                    );
                }
                let _ = writeln!(o, "</tbody></table>");
            }
        }
        let _ = writeln!(o, "<h2>Aanmeldingen en toestemmingen</h2>");
        if !self.consent.available {
            let _ = writeln!(
                o,
                "<p>Poortwachter houdt nog geen register van toestemmingen bij. Gegevens waarvoor toestemming nodig is, zijn daarom niet verstrekt.</p>"
            );
        } else if self.consent.entries.is_empty() {
            let _ = writeln!(
                o,
                "<p>Er is geen toestemming gegeven of ingetrokken, en de leerling is in geen overleg aangemeld.</p>"
            );
        } else {
            let _ = writeln!(
                o,
                "<table><thead><tr><th>Datum</th><th>Overleg</th><th>Wijziging</th><th>Door</th><th>Waarvoor</th></tr></thead><tbody>"
            );
            for c in &self.consent.entries {
                let _ = writeln!(
                    o,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&when::dutch_readable(&c.time)),
                    esc(&c.overleg_name),
                    esc(&c.change),
                    esc(&c.by),
                    esc(&c.scope)
                );
            }
            let _ = writeln!(o, "</tbody></table>");
        }
        let _ = writeln!(
            o,
            "<h2>Uw rechten</h2>\n<p>Kloppen gegevens niet, of wilt u bezwaar maken tegen het delen ervan, neem dan contact op met de functionaris gegevensbescherming (FG) van de school of organisatie. U kunt ook een klacht indienen bij de Autoriteit Persoonsgegevens.</p>\n<footer><p>Gegevens die met een <span class=\"markering\">gemarkeerd</span> soort staan, zijn bijzondere persoonsgegevens (zoals gezondheid) of strafrechtelijke gegevens; daarvoor gelden extra strenge regels. Policyversie <code>{}</code>.</p></footer>",
            esc(crate::policy::tools::render::short_version(
                &self.policy_version
            ))
        );
        o
    }

    /// The report as one self-contained, printable HTML page.
    pub fn html(&self) -> String {
        html::page(
            &format!("Inzage: verstrekte gegevens over leerling {}", self.pupil),
            &self.html_body(&self.pupil),
        )
    }
}
