//! `audit kennisgeving --leerling X --sinds D [--veld F ...]` (AVG art. 19,
//! issue 16 point 3): after a rectification, erasure or restriction, every
//! recipient of the pupil's data must be told. Only the trail knows who they
//! are: this lists every organisation that received the pupil's data since
//! D (by name, with overleg, role, grondslag, dates and fields), optionally
//! only from records that shared one of the named fields.
//!
//! Notification tracking lives in the trail itself, as `kind =
//! notification` records on the CLI's `<instance>/admin` chain (no table of
//! its own): `--registreer` writes one naming the kennisgeving's id, the
//! period, the fields and the recipients (organisation ids only; the pupil
//! only as pseudonym, in `subject`), and `audit kennisgeving-gemeld` writes
//! one per recipient told, with the FG's reference. A kennisgeving is open
//! while a listed recipient has no such record ([`statuses`]); the
//! dashboard lists the open ones. They are read per admin chain through the
//! primary key, never by a walk of the whole trail.
//!
//! The pupil is named only by pseudonym in every output: the document is
//! the FG's working list, not a report for the parents.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::ControlFlow;

use maud::{Markup, html};
use serde::Serialize;
use sqlx::Row;

use super::inzage::{self, FieldView};
use super::{ReviewError, html, ontvangen, query, when};
use crate::audit::{Pseudonymiser, Store, StoredRow};
use crate::policy::model::PolicySet;
use crate::policy::tools::render::short_version;

/// Records per page while the walk reads the pupil's records.
const PAGE: usize = 10_000;

/// The `kind` of the tracking records.
pub const KIND: &str = "notification";
/// `reason` of the record that registers a kennisgeving.
pub const REGISTERED: &str = "kennisgeving";
/// `reason` of the record that marks one recipient notified.
pub const NOTIFIED: &str = "recipient-notified";

/// What an organisation received in one overleg, in one role.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    pub overleg_id: String,
    pub overleg_name: String,
    pub role_id: String,
    pub role_name: String,
    pub grondslag: String,
    /// First and last disclosure (stored form), and in Dutch.
    pub first: String,
    pub last: String,
    pub first_when: String,
    pub last_when: String,
    pub disclosures: u64,
    /// The fields received (with `--veld`, only the named ones).
    pub fields: Vec<FieldView>,
    /// `instance#seq` of each disclosure.
    pub records: Vec<String>,
}

/// One organisation to notify.
#[derive(Debug, Clone, Serialize)]
pub struct Recipient {
    pub org: String,
    pub name: String,
    pub receipts: Vec<Receipt>,
}

/// The list of recipients of one pupil's data since a moment.
#[derive(Debug, Clone, Serialize)]
pub struct Kennisgeving {
    /// Set once the kennisgeving is registered for notification tracking.
    pub id: Option<String>,
    /// The pupil's current pseudonym (never the clear id).
    pub subject: String,
    /// Inclusive lower bound (stored form), and in Dutch.
    pub since: String,
    pub since_when: String,
    /// `--veld`: only records that shared one of these paths (empty: all).
    pub fields: Vec<String>,
    pub generated_at: String,
    pub policy_version: String,
    pub recipients: Vec<Recipient>,
    /// Records about the pupil read (for the access record).
    #[serde(skip)]
    pub records_read: usize,
}

/// A disclosure kept between the walk and the grouping.
struct Kept {
    instance: String,
    seq: i64,
    time: String,
    recipient: String,
    overleg: String,
    role: String,
    grondslag: String,
    bron: Option<String>,
    fields: Vec<String>,
}

/// The disclosure `r` describes, when it counts: allowed or filtered, with
/// fields, and (with `named`) sharing one of the named fields, of which
/// only those are kept.
fn kept(set: &PolicySet, r: &StoredRow, named: &[String]) -> Option<Kept> {
    if r.kind != "request" || !matches!(r.outcome.as_str(), "allowed" | "filtered") {
        return None;
    }
    let mut fields = query::list(&r.fields_shared);
    if !named.is_empty() {
        fields.retain(|f| named.contains(f));
    }
    if fields.is_empty() {
        return None;
    }
    let parties = inzage::parties(set, r);
    let (role, grondslag) = ontvangen::recipient_role(set, r, &parties);
    Some(Kept {
        instance: r.instance.clone(),
        seq: r.seq,
        time: r.time.clone(),
        recipient: parties.recipient,
        overleg: r.overleg.clone().unwrap_or_default(),
        role,
        grondslag: grondslag.unwrap_or_default(),
        bron: r.bron.clone(),
        fields,
    })
}

/// Checks the pupil id, the moment and the field paths.
fn parse(
    pupil: &str,
    since: &str,
    fields: &[String],
) -> Result<(String, Vec<String>), ReviewError> {
    if pupil.trim().is_empty() || pupil.trim().len() > 128 {
        return Err(ReviewError::Filter(
            "a pupil id of 1 to 128 characters is needed".into(),
        ));
    }
    let since = when::bound(since, false)?;
    let mut named: Vec<String> = Vec::new();
    for f in fields {
        let f = f.trim();
        if !query::is_field_path(f) {
            return Err(ReviewError::Filter(
                "field must be a catalogue path such as verzuim.meldingen[].datum".into(),
            ));
        }
        if !named.iter().any(|n| n == f) {
            named.push(f.to_owned());
        }
    }
    Ok((since, named))
}

/// Lists the recipients of `pupil`'s data since `since` (a date or UTC
/// time), walking the records under the pupil's pseudonyms (every key
/// version, through the `subject` index) page by page.
pub async fn build(
    store: &Store,
    set: &PolicySet,
    pseudo: &Pseudonymiser,
    pupil: &str,
    since: &str,
    fields: &[String],
) -> Result<Kennisgeving, ReviewError> {
    let (since, named) = parse(pupil, since, fields)?;
    let filter = query::Filter {
        from: Some(since.clone()),
        pseudonyms: Some(pseudo.all_pseudonyms(pupil.trim())),
        pupil: true,
        ..Default::default()
    };
    let mut read = 0usize;
    let mut disclosures = Vec::new();
    // A record the writer later corrected was never delivered; its
    // correction comes after it and names the pupil too.
    let mut corrected: HashSet<(String, i64)> = HashSet::new();
    query::for_each(store, &filter, PAGE, |r| {
        read += 1;
        if r.kind == "correction" {
            if let Some(c) = corrects(&r.detail) {
                corrected.insert(c);
            }
        } else if let Some(k) = kept(set, r, &named) {
            disclosures.push(k);
        }
        ControlFlow::Continue(())
    })
    .await?;
    disclosures.retain(|k| !corrected.contains(&(k.instance.clone(), k.seq)));
    Ok(Kennisgeving {
        id: None,
        subject: pseudo.pseudonymise(pupil.trim()),
        since_when: when::dutch_readable(&since),
        since,
        fields: named,
        generated_at: crate::audit::record::now_rfc3339(),
        policy_version: set.version.clone(),
        recipients: group(set, disclosures),
        records_read: read,
    })
}

/// The (instance, seq) a correction record names.
fn corrects(detail: &str) -> Option<(String, i64)> {
    let d: serde_json::Value = serde_json::from_str(detail).ok()?;
    let c = &d["corrects"];
    Some((c["instance"].as_str()?.to_owned(), c["seq"].as_i64()?))
}

/// The (path, bron) pairs a recipient received in one overleg and role.
type FieldsSeen = BTreeSet<(String, Option<String>)>;

/// Groups the disclosures (in time order) per recipient, then per
/// (overleg, role); recipients by name.
fn group(set: &PolicySet, disclosures: Vec<Kept>) -> Vec<Recipient> {
    let mut by_org: BTreeMap<String, BTreeMap<(String, String), Receipt>> = BTreeMap::new();
    let mut fields: BTreeMap<(String, String, String), FieldsSeen> = BTreeMap::new();
    for k in disclosures {
        let o = set.overleggen.get(&k.overleg);
        let key = (k.overleg.clone(), k.role.clone());
        let receipt = by_org
            .entry(k.recipient.clone())
            .or_default()
            .entry(key.clone())
            .or_insert_with(|| Receipt {
                overleg_name: o.map_or_else(|| k.overleg.clone(), |o| o.name.clone()),
                overleg_id: k.overleg.clone(),
                role_name: o
                    .and_then(|o| o.role(&k.role))
                    .map_or_else(|| k.role.clone(), |x| x.name.clone()),
                role_id: k.role.clone(),
                grondslag: k.grondslag.clone(),
                first_when: when::dutch_readable(&k.time),
                first: k.time.clone(),
                last: String::new(),
                last_when: String::new(),
                disclosures: 0,
                fields: Vec::new(),
                records: Vec::new(),
            });
        receipt.last_when = when::dutch_readable(&k.time);
        receipt.last = k.time;
        receipt.disclosures += 1;
        receipt.records.push(format!("{}#{}", k.instance, k.seq));
        let seen = fields.entry((k.recipient, key.0, key.1)).or_default();
        seen.extend(k.fields.into_iter().map(|f| (f, k.bron.clone())));
    }
    let mut out: Vec<Recipient> = by_org
        .into_iter()
        .map(|(org, receipts)| Recipient {
            name: inzage::org_name(set, &org),
            receipts: receipts
                .into_iter()
                .map(|((overleg, role), mut r)| {
                    let seen = fields
                        .remove(&(org.clone(), overleg, role))
                        .unwrap_or_default();
                    r.fields = field_list(set, seen);
                    r
                })
                .collect(),
            org,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.org.cmp(&b.org)));
    out
}

/// The fields (each once, by path) with labels from their bron's catalogue.
fn field_list(set: &PolicySet, seen: FieldsSeen) -> Vec<FieldView> {
    let mut out: Vec<FieldView> = Vec::new();
    for (path, bron) in seen {
        if out.last().is_some_and(|f| f.path == path) {
            continue;
        }
        let bron = bron.as_deref().and_then(|b| set.bronnen.get(b));
        out.push(inzage::field_view(bron.map(AsRef::as_ref), path));
    }
    out
}

impl Kennisgeving {
    /// The organisation ids to notify.
    pub fn recipient_ids(&self) -> Vec<String> {
        self.recipients.iter().map(|r| r.org.clone()).collect()
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }

    /// The list as one self-contained, printable HTML page.
    pub fn html(&self) -> String {
        html::page(
            &format!(
                "Kennisgeving (artikel 19 AVG): ontvangers sinds {}",
                self.since_when
            ),
            self.html_body(),
        )
    }

    /// The HTML body (without the page chrome).
    pub fn html_body(&self) -> Markup {
        html! {
            h1 { "Kennisgeving aan ontvangers (artikel 19 AVG)" } "\n"
            p.meta {
                "Leerling (pseudoniem) " code { (self.subject) } "; verstrekkingen vanaf "
                (self.since_when)
                @if !self.fields.is_empty() { ", alleen met " (self.fields.join(", ")) }
                ". Opgesteld op " (when::dutch_readable(&self.generated_at)) "."
            } "\n"
            p { "Na een rectificatie, wissing of beperking van gegevens moet elke organisatie die de gegevens heeft ontvangen, daarvan op de hoogte worden gebracht (artikel 19 AVG), tenzij dat onmogelijk blijkt of onevenredig veel inspanning vergt. Dit overzicht noemt die organisaties, uit het logboek van Poortwachter." } "\n"
            @if let Some(id) = &self.id {
                p.let-op id="registratie" {
                    "Geregistreerd als kennisgeving " code { (id) } ". Leg per ontvanger vast dat die is ingelicht: "
                    code { "poortwachter audit kennisgeving-gemeld --kennisgeving " (id) " --org ORGANISATIE --referentie TEKST" }
                    ". Het FG-overzicht toont de kennisgeving tot elke ontvanger is gemeld."
                } "\n"
            }
            h2 { "Ontvangers (" (self.recipients.len()) ")" } "\n"
            @if self.recipients.is_empty() {
                p { "Sinds " (self.since_when) " heeft via Poortwachter geen organisatie deze gegevens over de leerling ontvangen." } "\n"
            }
            @for r in &self.recipients { (recipient_html(r)) "\n" }
            footer { p { "Policyversie " code { (short_version(&self.policy_version)) } "." } } "\n"
        }
    }
}

/// One recipient with what it received, per overleg and role.
fn recipient_html(r: &Recipient) -> Markup {
    html! {
        section.verstrekking {
            h3 { (r.name) " " code { (r.org) } } "\n"
            @for x in &r.receipts {
                dl.kenmerken {
                    dt { "Overleg" } dd { (x.overleg_name) }
                    dt { "Rol" } dd { (x.role_name) }
                    dt { "Grondslag" } dd { (x.grondslag) }
                    dt { "Periode" } dd { (x.first_when) " tot en met " (x.last_when) }
                    dt { "Verstrekkingen" } dd { (x.disclosures) }
                } "\n"
                table {
                    thead { tr { th { "Gegeven" } th { "Soort gegeven" } } }
                    tbody {
                        "\n"
                        @for f in &x.fields {
                            @let special = f.category != "normal";
                            tr class=[special.then_some("bijzonder")] {
                                td { (f.label) " " code { (f.path) } }
                                td { @if special { span.markering { (f.category_label) } } @else { (f.category_label) } }
                            } "\n"
                        }
                    }
                } "\n"
                p.meta { "Vastleggingen " (x.records.join(", ")) }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Notification tracking, from the `notification` records.

/// A registered kennisgeving, as its record states it.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub id: String,
    pub time: String,
    /// The pupil's pseudonym; `None` once a retention purge erased it.
    pub subject: Option<String>,
    pub since: String,
    pub fields: Vec<String>,
    pub recipients: Vec<String>,
    /// `instance#seq`.
    pub record: String,
}

/// A recipient marked notified.
#[derive(Debug, Clone, Serialize)]
pub struct Notified {
    pub org: String,
    pub time: String,
    pub reference: String,
    pub record: String,
}

/// A kennisgeving and how far its notification got.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub kennisgeving: Registered,
    pub notified: Vec<Notified>,
    /// Recipients not yet marked notified (empty: done).
    pub open: Vec<String>,
}

/// Every kennisgeving registered and its status, oldest first, and the
/// number of tracking records read.
pub async fn statuses(store: &Store) -> Result<(Vec<Status>, usize), ReviewError> {
    let mut registered: Vec<Registered> = Vec::new();
    let mut notified: BTreeMap<String, Vec<Notified>> = BTreeMap::new();
    let mut read = 0usize;
    for chain in admin_chains(store).await? {
        let sql = format!(
            "SELECT {} FROM audit_records WHERE instance = $1 AND kind = '{KIND}' ORDER BY seq",
            crate::audit::store::COLUMNS
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&chain)
            .fetch_all(store.pool())
            .await?;
        for row in &rows {
            let r = crate::audit::store::row_from(row)?;
            read += 1;
            let d: serde_json::Value = serde_json::from_str(&r.detail).unwrap_or_default();
            let text = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            let list = |k: &str| -> Vec<String> {
                d[k].as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let record = format!("{}#{}", r.instance, r.seq);
            match r.reason.as_str() {
                REGISTERED => registered.push(Registered {
                    id: text("kennisgeving"),
                    time: r.time.clone(),
                    subject: r.pupil.clone(),
                    since: text("since"),
                    fields: list("fields"),
                    recipients: list("recipients"),
                    record,
                }),
                NOTIFIED => notified
                    .entry(text("kennisgeving"))
                    .or_default()
                    .push(Notified {
                        org: text("org"),
                        time: r.time.clone(),
                        reference: text("referentie"),
                        record,
                    }),
                _ => {}
            }
        }
    }
    registered.sort_by(|a, b| a.time.cmp(&b.time));
    let out = registered
        .into_iter()
        .map(|k| {
            let done = notified.remove(&k.id).unwrap_or_default();
            let open = k
                .recipients
                .iter()
                .filter(|o| !done.iter().any(|n| &n.org == *o))
                .cloned()
                .collect();
            Status {
                kennisgeving: k,
                notified: done,
                open,
            }
        })
        .collect();
    Ok((out, read))
}

/// The administrative chains (`…/admin`), found with a loose index scan on
/// the primary key (one index probe per chain, on both stores), so no walk
/// of the trail is needed.
async fn admin_chains(store: &Store) -> Result<Vec<String>, ReviewError> {
    let rows = sqlx::query(
        "WITH RECURSIVE chains(instance) AS (
             SELECT MIN(instance) FROM audit_records
             UNION ALL
             SELECT (SELECT MIN(a.instance) FROM audit_records a WHERE a.instance > chains.instance)
             FROM chains WHERE chains.instance IS NOT NULL
         )
         SELECT instance FROM chains WHERE instance IS NOT NULL",
    )
    .fetch_all(store.pool())
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let chain: String = r.try_get(0)?;
        if chain.ends_with("/admin") {
            out.push(chain);
        }
    }
    Ok(out)
}

/// A kennisgeving id as `--registreer` makes it (a UUID).
pub fn is_id(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// The FG's reference for a notification: 1 to 200 printable characters.
/// It is kept in the record's `detail`, which a purge keeps: it should
/// name a letter or case number, not the pupil.
pub fn check_reference(s: &str) -> Result<(), ReviewError> {
    if s.trim().is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(ReviewError::Filter(
            "referentie: 1 to 200 printable characters".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::html::hostile::{self, TEXT};

    #[test]
    fn every_text_of_the_document_is_escaped() {
        let field = FieldView {
            path: TEXT.into(),
            label: TEXT.into(),
            category: "health".into(),
            category_label: TEXT.into(),
        };
        let k = Kennisgeving {
            id: Some(TEXT.into()),
            subject: TEXT.into(),
            since: "2026-11-01T00:00:00.000000Z".into(),
            since_when: TEXT.into(),
            fields: vec![TEXT.into()],
            generated_at: "2026-11-10T09:00:00.000000Z".into(),
            policy_version: "0123456789abcdef".into(),
            recipients: vec![Recipient {
                org: TEXT.into(),
                name: TEXT.into(),
                receipts: vec![Receipt {
                    overleg_id: TEXT.into(),
                    overleg_name: TEXT.into(),
                    role_id: TEXT.into(),
                    role_name: TEXT.into(),
                    grondslag: TEXT.into(),
                    first: TEXT.into(),
                    last: TEXT.into(),
                    first_when: TEXT.into(),
                    last_when: TEXT.into(),
                    disclosures: 1,
                    fields: vec![field],
                    records: vec![TEXT.into()],
                }],
            }],
            records_read: 1,
        };
        // Title (since); subject, since, fields, id twice; name, org,
        // overleg, role, grondslag, both dates, label, path, kind, records.
        hostile::assert_escaped(&k.html(), 17);
    }

    #[test]
    fn inputs_are_checked() {
        assert!(parse("", "2026-11-01", &[]).is_err());
        assert!(parse("L1", "gisteren", &[]).is_err());
        assert!(parse("L1", "2026-11-01", &["a%b".into()]).is_err());
        let (_, named) = parse("L1", "2026-11-01", &["a.b".into(), " a.b ".into()]).unwrap();
        assert_eq!(named, ["a.b"]);
        assert!(check_reference("brief 2026-118").is_ok());
        assert!(check_reference(" ").is_err() && check_reference("a\nb").is_err());
        assert!(is_id("8351c7a9-ab56-4080-b2fc-04a8856e447a") && !is_id("x"));
    }
}
