//! Human-readable Bijlage 3 (Markdown and HTML) from the policy set.
//!
//! Bijlage 3 is the covenant annex the partners sign: per casusoverleg the
//! participants, the grondslag each takes part under, the purposes, and the
//! concrete fields that flow from whom to whom. Rendering it from the same
//! validated [`PolicySet`] the gateway enforces means the signed text and the
//! enforced rules cannot drift apart.
//!
//! After the overleggen, a last section lists per organisation its processors:
//! the software suppliers it gave a mandate (machtiging), in which direction,
//! for which overleggen, how long, and under which processing agreement.
//!
//! Both renderers are pure functions of the set and byte-for-byte stable: every
//! list is sorted (overleggen, purposes, roles and rules by id, organisations by
//! name, fields in catalogue order, mandates by supplier name, direction and
//! first day), nothing depends on the clock or on hash-map iteration, so a
//! committed rendering can be compared with a fresh one.

use std::fmt::Write as _;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::policy::compile::rule_act;
use crate::policy::mandate::{Coverage, Direction, Mandate, Supplier};
use crate::policy::model::{
    Act, CatalogueField, Category, Consent, Grondslag, Overleg, PolicySet, Purpose, Role, Rule,
};

/// Marker for a catalogue category that needs extra care, in the covenant's
/// words; `None` for ordinary personal data.
pub fn category_marker(category: Category) -> Option<&'static str> {
    match category {
        Category::Normal => None,
        Category::Health => Some("bijzonder persoonsgegeven, art. 9 AVG"),
        Category::Criminal => Some("strafrechtelijk, art. 10 AVG"),
        Category::Bsn => Some("BSN"),
    }
}

/// Dutch label of a category for the field tables.
fn category_label(category: Category) -> &'static str {
    category_marker(category).unwrap_or("gewoon persoonsgegeven")
}

/// Dutch label of a special category a role may receive (deelnemers table).
fn special_label(category: Category) -> &'static str {
    match category {
        Category::Normal => "gewone persoonsgegevens",
        Category::Health => "gezondheid (art. 9 AVG)",
        Category::Criminal => "strafrechtelijk (art. 10 AVG)",
        Category::Bsn => "BSN",
    }
}

/// Whose consent a rule requires, in Dutch ("geen" when none).
pub fn consent_label(consent: Consent) -> &'static str {
    match consent {
        Consent::None => "geen",
        Consent::Parents => "ouders",
        Consent::Youth => "jongere",
        Consent::ParentsAndYouth => "ouders en jongere",
    }
}

/// How a rule is carried out, from the caller's side (see [`rule_act`]).
fn act_label(act: Act) -> &'static str {
    match act {
        Act::Read => "de ontvanger raadpleegt de bron (GET)",
        Act::Write => "de verstrekker levert aan bij de bron (POST/PUT)",
    }
}

/// The first 16 hex characters of a policy version: enough to tell versions
/// apart on paper; the full hash goes in a footnote.
pub fn short_version(version: &str) -> &str {
    version.get(..16).unwrap_or(version)
}

/// Escapes free text for inline Markdown (also inside table cells): policy
/// text is prose, never markup, so characters Markdown would interpret are
/// backslash-escaped (so is `<`, which would start raw HTML), and line breaks (which would end a table row
/// or list item) are folded into single spaces.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, word) in s.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let mut chars = word.chars().peekable();
        while let Some(c) = chars.next() {
            // CommonMark lets any ASCII punctuation be backslash-escaped; that
            // keeps the source readable, unlike HTML entities. `&` only starts
            // an entity when a name or `#` follows it.
            let escape = match c {
                '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '<' | '>' => true,
                '&' => chars
                    .peek()
                    .is_some_and(|n| n.is_ascii_alphanumeric() || *n == '#'),
                _ => false,
            };
            if escape {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// Everything one overleg section shows, resolved and sorted once so the
/// Markdown and HTML renderings cannot disagree.
struct OverlegView<'a> {
    overleg: &'a Overleg,
    purposes: Vec<&'a Purpose>,
    roles: Vec<RoleView<'a>>,
    rules: Vec<RuleView<'a>>,
}

/// Who may bring pupils into the overleg (case binding) and record consent.
fn registering_sentence(roles: &[RoleView<'_>]) -> String {
    let ids: Vec<&str> = roles
        .iter()
        .filter(|r| r.role.may_register_cases)
        .map(|r| r.role.id.as_str())
        .collect();
    if ids.is_empty() {
        return "Geen rol mag leerlingen in dit overleg aanmelden; er worden dus geen gegevens gedeeld.".to_owned();
    }
    let mut out = format!(
        "Alleen over leerlingen die in dit overleg zijn aangemeld worden gegevens gedeeld. Aanmelden en toestemming vastleggen: {}.",
        ids.join(", ")
    );
    for (what, may) in [
        (
            "Bezwaar (AVG art. 21) vastleggen en erover besluiten",
            (|r: &Role| r.may_record_objections) as fn(&Role) -> bool,
        ),
        (
            "Beperking (AVG art. 18) vastleggen en opheffen",
            |r: &Role| r.may_record_restrictions,
        ),
    ] {
        let ids: Vec<&str> = roles
            .iter()
            .filter(|r| may(r.role))
            .map(|r| r.role.id.as_str())
            .collect();
        if !ids.is_empty() {
            let _ = write!(out, " {what}: {}.", ids.join(", "));
        }
    }
    out
}

struct RoleView<'a> {
    role: &'a Role,
    /// Registry names, sorted.
    organisations: Vec<&'a str>,
    /// Sorted, unique.
    special: Vec<Category>,
}

struct RuleView<'a> {
    rule: &'a Rule,
    from: Option<&'a Role>,
    to: Option<&'a Role>,
    /// The bron's name, or its id if the set does not know it (cannot happen
    /// for a validated set, but rendering must not fail on it).
    bron_name: &'a str,
    /// For a bron a supplier hosts: the supplier's name (or id), shown
    /// beside the bron, since the data then comes from its API.
    host_name: Option<&'a str>,
    act: Act,
    /// Catalogue order (the rule's indices are sorted).
    fields: Vec<&'a CatalogueField>,
}

fn views(set: &PolicySet) -> Vec<OverlegView<'_>> {
    // BTreeMap iteration: overleggen sorted by id.
    set.overleggen
        .values()
        .map(|overleg| {
            let mut purposes: Vec<&Purpose> = overleg.purposes.iter().collect();
            purposes.sort_by(|a, b| a.id.cmp(&b.id));

            let mut roles: Vec<RoleView<'_>> = overleg
                .roles
                .iter()
                .map(|role| {
                    let mut organisations: Vec<&str> = role
                        .organisations
                        .iter()
                        .map(|id| {
                            set.organisations
                                .get(id)
                                .map_or(id.as_str(), |o| o.name.as_str())
                        })
                        .collect();
                    organisations.sort_unstable();
                    organisations.dedup();
                    let mut special = role.special_categories.clone();
                    special.sort_unstable();
                    special.dedup();
                    RoleView {
                        role,
                        organisations,
                        special,
                    }
                })
                .collect();
            roles.sort_by(|a, b| a.role.id.cmp(&b.role.id));

            let mut rules: Vec<RuleView<'_>> = overleg
                .rules
                .iter()
                .map(|rule| {
                    let bron = set.bronnen.get(&rule.bron);
                    let act = bron.map_or(Act::Read, |b| rule_act(overleg, rule, b));
                    RuleView {
                        rule,
                        from: overleg.role(&rule.from),
                        to: overleg.role(&rule.to),
                        bron_name: bron.map_or(rule.bron.as_str(), |b| b.name.as_str()),
                        host_name: bron
                            .and_then(|b| b.hosted_by.as_deref())
                            .map(|h| set.mandates.suppliers.get(h).map_or(h, |s| s.name.as_str())),
                        act,
                        fields: bron
                            .map(|b| {
                                rule.fields
                                    .iter()
                                    .filter_map(|&i| b.catalogue.get(i))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    }
                })
                .collect();
            rules.sort_by(|a, b| a.rule.id.cmp(&b.rule.id));

            OverlegView {
                overleg,
                purposes,
                roles,
                rules,
            }
        })
        .collect()
}

const TITLE: &str =
    "Bijlage 3 bij het privacyconvenant: casusoverleggen, deelnemers en gedeelde gegevens";

const INTRO: &str = "Deze bijlage beschrijft per casusoverleg de deelnemers, de wettelijke taak (grondslag) van waaruit zij deelnemen, de doelen waarvoor persoonsgegevens worden gedeeld en welke gegevens van wie naar wie gaan. Zij is gegenereerd uit de policybestanden die de gateway afdwingt; gegevens die hier niet staan, worden niet gedeeld.";

/// A role as "Name (`id`)" in Markdown; a rule may name a role the set lacks
/// only if validation was bypassed, so fall back to the bare id.
fn md_role(role: Option<&Role>, id: &str) -> String {
    match role {
        Some(r) => format!("{} (`{}`)", escape_markdown(&r.name), r.id),
        None => format!("`{id}`"),
    }
}

/// Renders the policy set as the Markdown Bijlage 3. Stable: the same set
/// gives the same bytes.
pub fn markdown(set: &PolicySet) -> String {
    let views = views(set);
    let mut out = String::new();
    // `write!` into a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "# {TITLE}\n");
    let _ = writeln!(
        out,
        "Policyversie `{}`[^versie]\n",
        short_version(&set.version)
    );
    let _ = writeln!(out, "{INTRO}\n");

    let _ = writeln!(out, "## Inhoud\n");
    for (n, v) in views.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. [{}](#{}) (`{}`)",
            n + 1,
            escape_markdown(&v.overleg.name),
            v.overleg.id,
            v.overleg.id
        );
    }
    let _ = writeln!(
        out,
        "{}. [{PROCESSORS_TITLE}](#verwerkers)",
        views.len() + 1
    );
    out.push('\n');

    for (n, v) in views.iter().enumerate() {
        md_overleg(&mut out, n + 1, v);
    }
    md_processors(&mut out, views.len() + 1, &processors(set));

    let _ = writeln!(
        out,
        "[^versie]: Volledige policyversie (SHA-256 over alle policybestanden): `{}`",
        set.version
    );
    out
}

/// Overleg number `n`: its particulars, purposes, participants and rules.
fn md_overleg(out: &mut String, n: usize, v: &OverlegView<'_>) {
    let o = v.overleg;
    // Explicit anchor: heading-derived anchors differ between renderers,
    // and ids are `[a-z0-9-]`, so they are safe as HTML ids.
    let _ = writeln!(out, "<a id=\"{}\"></a>\n", o.id);
    let _ = writeln!(out, "## {n}. {}\n", escape_markdown(&o.name));
    let _ = writeln!(out, "- **Id:** `{}`", o.id);
    let _ = writeln!(out, "- **Bewaartermijn:** {} dagen", o.retention_days);
    let _ = writeln!(
        out,
        "- **Omschrijving:** {}\n",
        escape_markdown(&o.description)
    );

    let _ = writeln!(out, "### Doelen\n");
    for p in &v.purposes {
        let _ = writeln!(
            out,
            "- **`{}`**: {}{}",
            p.id,
            escape_markdown(&p.text),
            p.emergency
                .as_ref()
                .map(|t| format!(" *{}*", emergency_sentence(t)))
                .unwrap_or_default()
        );
    }
    out.push('\n');

    md_participants(out, &v.roles);
    let _ = writeln!(
        out,
        "{}\n",
        escape_markdown(&registering_sentence(&v.roles))
    );

    let _ = writeln!(out, "### Welke gegevens worden gedeeld\n");
    for r in &v.rules {
        md_rule(out, r);
    }
}

/// The roles of an overleg as a table: who fills them, under which
/// grondslag, and which special categories they may receive.
fn md_participants(out: &mut String, roles: &[RoleView<'_>]) {
    let _ = writeln!(out, "### Deelnemers\n");
    let _ = writeln!(
        out,
        "| Rol | Naam | Organisaties | Grondslag | Bijzondere gegevens toegestaan |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for r in roles {
        let g = &r.role.grondslag;
        let special = if r.special.is_empty() {
            "geen".to_owned()
        } else {
            r.special
                .iter()
                .map(|c| special_label(*c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | **{}**: {}; {} | {} |",
            r.role.id,
            escape_markdown(&r.role.name),
            r.organisations
                .iter()
                .map(|s| escape_markdown(s))
                .collect::<Vec<_>>()
                .join("; "),
            escape_markdown(&g.law),
            escape_markdown(&g.article),
            escape_markdown(&basis_lines(g).join("; ")),
            special
        );
    }
    out.push('\n');
}

/// Each AVG ground and exception of a grondslag, cited and explained:
/// `AVG art. 6(1)(e) (taak van algemeen belang of openbaar gezag)`.
fn basis_lines(g: &Grondslag) -> Vec<String> {
    g.basis
        .iter()
        .map(|b| format!("{} ({})", b.citation(), b.label()))
        .collect()
}

/// What an emergency purpose allows, in one Dutch sentence.
fn emergency_sentence(t: &crate::policy::model::EmergencyTerms) -> String {
    let reasons: Vec<&str> = t.reasons.iter().map(|r| r.label()).collect();
    format!(
        "Spoeddoel: alleen met een reden ({}) en een toelichting, binnen een venster per leerling en organisatie, achteraf beoordeeld door de FG{}.",
        reasons.join("; "),
        if t.case_binding {
            ""
        } else {
            "; aanmelding in het overleg niet vereist"
        }
    )
}

/// One rule: its particulars and the table of its fields.
fn md_rule(out: &mut String, r: &RuleView<'_>) {
    let rule = r.rule;
    let _ = writeln!(out, "#### {}: `{}` → `{}`\n", rule.id, rule.from, rule.to);
    let _ = writeln!(out, "- **Van:** {}", md_role(r.from, &rule.from));
    let _ = writeln!(out, "- **Naar:** {}", md_role(r.to, &rule.to));
    let _ = writeln!(
        out,
        "- **Doel:** `{}`{}",
        rule.purpose,
        if rule.emergency { " (spoedregel)" } else { "" }
    );
    let _ = writeln!(
        out,
        "- **Bron:** {} (`{}`){}",
        escape_markdown(r.bron_name),
        rule.bron,
        r.host_name
            .map(|h| format!(", gehost door {} (verwerker)", escape_markdown(h)))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "- **Verstrekking:** {}", act_label(r.act));
    let _ = writeln!(out, "- **Toestemming:** {}", consent_label(rule.consent));
    let _ = writeln!(
        out,
        "- **Noodzaak:** {}\n",
        escape_markdown(&rule.justification)
    );
    let _ = writeln!(out, "| Veld | Omschrijving | Categorie |");
    let _ = writeln!(out, "|---|---|---|");
    for f in &r.fields {
        let cat = match category_marker(f.category) {
            Some(m) => format!("**{m}**"),
            None => category_label(f.category).to_owned(),
        };
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            f.path.as_str(),
            escape_markdown(&f.label),
            cat
        );
    }
    out.push('\n');
}

/// One organisation's processors: the mandates it gave, resolved once so
/// the Markdown and HTML renderings cannot disagree.
struct ProcessorsView<'a> {
    org_id: &'a str,
    /// The registry name (the id if the registry lacks it).
    org_name: &'a str,
    mandates: Vec<MandateView<'a>>,
}

struct MandateView<'a> {
    mandate: &'a Mandate,
    supplier: Option<&'a Supplier>,
    /// The covered overleggen as (id, name), sorted by id; empty for all.
    overleggen: Vec<(&'a str, &'a str)>,
}

const PROCESSORS_TITLE: &str = "Verwerkers: softwareleveranciers per organisatie";

const PROCESSORS_INTRO: &str = "Een organisatie kan een softwareleverancier machtigen om namens haar gegevens via de gateway op te vragen of aan te leveren (richting client), of om haar bronnen te hosten (richting bron). De leverancier is dan verwerker (art. 28 AVG) van de organisatie, die verwerkingsverantwoordelijke blijft; de gateway laat de leverancier alleen toe binnen een geldige machtiging hieronder, en het logboek noemt bij elk verzoek de organisatie én de leverancier.";

/// How a supplier acts for the organisation, in Dutch.
fn direction_label(d: Direction) -> &'static str {
    match d {
        Direction::Client => "client: vraagt op en levert aan namens de organisatie",
        Direction::Bron => "bron: host de bronnen van de organisatie",
    }
}

/// "vanaf <day>" or "vanaf <day> tot en met <day>".
fn validity_label(m: &Mandate) -> String {
    match &m.valid_until {
        Some(until) => format!("vanaf {} tot en met {until}", m.valid_from),
        None => format!("vanaf {}", m.valid_from),
    }
}

/// Every organisation with at least one mandate, sorted by name (then id),
/// its mandates by supplier name, direction and first day.
fn processors(set: &PolicySet) -> Vec<ProcessorsView<'_>> {
    let mut by_org: std::collections::BTreeMap<&str, Vec<MandateView<'_>>> =
        std::collections::BTreeMap::new();
    for m in &set.mandates.all {
        let overleggen = match &m.overleggen {
            Coverage::All => Vec::new(),
            Coverage::Only(ids) => ids
                .iter()
                .map(|id| {
                    let name = set
                        .overleggen
                        .get(id)
                        .map_or(id.as_str(), |o| o.name.as_str());
                    (id.as_str(), name)
                })
                .collect(),
        };
        by_org
            .entry(m.organisation.as_str())
            .or_default()
            .push(MandateView {
                mandate: m,
                supplier: set.mandates.suppliers.get(&m.supplier),
                overleggen,
            });
    }
    let mut out: Vec<ProcessorsView<'_>> = by_org
        .into_iter()
        .map(|(org_id, mut mandates)| {
            mandates.sort_by(|a, b| {
                (
                    supplier_name(a),
                    &a.mandate.supplier,
                    a.mandate.direction,
                    &a.mandate.valid_from,
                )
                    .cmp(&(
                        supplier_name(b),
                        &b.mandate.supplier,
                        b.mandate.direction,
                        &b.mandate.valid_from,
                    ))
            });
            ProcessorsView {
                org_id,
                org_name: set
                    .organisations
                    .get(org_id)
                    .map_or(org_id, |o| o.name.as_str()),
                mandates,
            }
        })
        .collect();
    out.sort_by(|a, b| (a.org_name, a.org_id).cmp(&(b.org_name, b.org_id)));
    out
}

/// A mandate's supplier name (its id if the registry lacks it).
fn supplier_name<'a>(m: &MandateView<'a>) -> &'a str {
    m.supplier
        .map_or(m.mandate.supplier.as_str(), |s| s.name.as_str())
}

/// The processing agreement reference, or that it is missing.
fn agreement_label<'a>(m: &MandateView<'a>) -> &'a str {
    m.supplier
        .and_then(|s| s.processor_agreement.as_deref())
        .unwrap_or("ontbreekt")
}

/// The processors section in Markdown, numbered `n`.
fn md_processors(out: &mut String, n: usize, views: &[ProcessorsView<'_>]) {
    let _ = writeln!(out, "<a id=\"verwerkers\"></a>\n");
    let _ = writeln!(out, "## {n}. {PROCESSORS_TITLE}\n");
    let _ = writeln!(out, "{PROCESSORS_INTRO}\n");
    if views.is_empty() {
        let _ = writeln!(
            out,
            "Geen organisatie heeft een softwareleverancier gemachtigd.\n"
        );
        return;
    }
    for v in views {
        let _ = writeln!(
            out,
            "### {} (`{}`)\n",
            escape_markdown(v.org_name),
            v.org_id
        );
        let _ = writeln!(
            out,
            "| Leverancier | Richting | Overleggen | Geldig | Verwerkersovereenkomst |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|");
        for m in &v.mandates {
            let overleggen = if m.overleggen.is_empty() {
                "alle casusoverleggen".to_owned()
            } else {
                m.overleggen
                    .iter()
                    .map(|(id, name)| format!("{} (`{id}`)", escape_markdown(name)))
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            let _ = writeln!(
                out,
                "| {} (`{}`) | {} | {} | {} | {} |",
                escape_markdown(supplier_name(m)),
                m.mandate.supplier,
                direction_label(m.mandate.direction),
                overleggen,
                validity_label(m.mandate),
                escape_markdown(agreement_label(m))
            );
        }
        out.push('\n');
    }
}

const CSS: &str = r#"
:root { color-scheme: light; }
body { font-family: "Segoe UI", "Helvetica Neue", Arial, sans-serif; font-size: 11pt; line-height: 1.45; color: #1a1a1a; max-width: 60rem; margin: 2rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.3rem; }
h2 { font-size: 1.35rem; border-bottom: 2px solid #1a1a1a; padding-bottom: 0.2rem; margin-top: 2.5rem; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
h4 { font-size: 1rem; margin: 1.4rem 0 0.4rem; }
code { font-family: "DejaVu Sans Mono", Consolas, monospace; font-size: 0.9em; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #999; padding: 0.25rem 0.45rem; text-align: left; vertical-align: top; }
th { background: #eee; }
dl.kenmerken, dl.regel { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 0.8rem; margin: 0.4rem 0; }
dl.kenmerken dt, dl.regel dt { font-weight: 600; }
dl.kenmerken dd, dl.regel dd { margin: 0; }
dl.doelen dt { font-weight: 600; }
dl.doelen dd { margin: 0 0 0.5rem 1.5rem; }
tr.bijzonder td { background: #fff3cd; }
.markering { font-weight: 700; }
.versie { color: #444; }
nav.inhoud ol { padding-left: 1.5rem; }
section.regel { margin-bottom: 1.5rem; }
footer { margin-top: 3rem; border-top: 1px solid #999; font-size: 0.9em; }
@media print {
  body { max-width: none; margin: 0; padding: 0; font-size: 10pt; }
  a { color: inherit; text-decoration: none; }
  nav.inhoud { break-after: page; }
  section.overleg { break-before: page; }
  section.regel, tr { break-inside: avoid; }
  h2, h3, h4 { break-after: avoid; }
  thead { display: table-header-group; }
  th, tr.bijzonder td { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

/// A role as "Name (`id`)" in HTML.
fn html_role(role: Option<&Role>, id: &str) -> Markup {
    html! {
        @match role {
            Some(r) => { (r.name) " (" code { (r.id) } ")" }
            None => { code { (id) } }
        }
    }
}

/// Renders the policy set as one self-contained HTML page (inline CSS, no
/// external assets, print styles) with a table of contents. Every text from
/// the set is escaped by the template engine. Stable: the same set gives the
/// same bytes.
pub fn html(set: &PolicySet) -> String {
    let views = views(set);
    let short = short_version(&set.version);
    html! {
        (DOCTYPE) "\n"
        html lang="nl" {
            "\n"
            head {
                "\n" meta charset="utf-8"; "\n"
                meta name="viewport" content="width=device-width, initial-scale=1"; "\n"
                title { "Bijlage 3: casusoverleggen (policyversie " (short) ")" } "\n"
                // The stylesheet is a constant of this module, not data.
                style { (PreEscaped(CSS)) } "\n"
            }
            "\n"
            body {
                "\n"
                (html_header(short)) "\n"
                (html_contents(&views)) "\n"
                main {
                    "\n"
                    @for (n, v) in views.iter().enumerate() { (html_overleg(n + 1, v)) "\n" }
                    (html_processors(views.len() + 1, &processors(set))) "\n"
                }
                "\n"
                (html_footer(&set.version)) "\n"
            }
            "\n"
        }
        "\n"
    }
    .into_string()
}

/// Title, policy version (with a footnote to the full hash) and introduction.
fn html_header(short: &str) -> Markup {
    html! {
        header {
            "\n" h1 { (TITLE) } "\n"
            p.versie {
                "Policyversie " code { (short) }
                sup { a href="#voetnoot-versie" id="verwijzing-versie" { "1" } }
            } "\n"
            p { (INTRO) } "\n"
        }
    }
}

/// The table of contents: one entry per overleg.
fn html_contents(views: &[OverlegView<'_>]) -> Markup {
    html! {
        nav.inhoud {
            "\n" h2 { "Inhoud" } "\n"
            ol {
                "\n"
                @for v in views {
                    li {
                        a href={ "#overleg-" (v.overleg.id) } { (v.overleg.name) }
                        " (" code { (v.overleg.id) } ")"
                    } "\n"
                }
                li { a href="#verwerkers" { (PROCESSORS_TITLE) } } "\n"
            } "\n"
        }
    }
}

/// Overleg number `n`: its particulars, purposes, participants and rules.
fn html_overleg(n: usize, v: &OverlegView<'_>) -> Markup {
    let o = v.overleg;
    html! {
        section.overleg id={ "overleg-" (o.id) } {
            "\n" h2 { (n) ". " (o.name) } "\n"
            dl.kenmerken {
                "\n"
                dt { "Id" } dd { code { (o.id) } } "\n"
                dt { "Bewaartermijn" } dd { (o.retention_days) " dagen" } "\n"
                dt { "Omschrijving" } dd { (o.description) } "\n"
            } "\n"
            h3 { "Doelen" } "\n"
            dl.doelen {
                "\n"
                @for p in &v.purposes {
                    dt { code { (p.id) } }
                    dd {
                        (p.text)
                        @if let Some(t) = &p.emergency { " " em.spoed { (emergency_sentence(t)) } }
                    } "\n"
                }
            } "\n"
            h3 { "Deelnemers" } "\n"
            (html_participants(&v.roles)) "\n"
            p { (registering_sentence(&v.roles)) } "\n"
            h3 { "Welke gegevens worden gedeeld" } "\n"
            @for r in &v.rules { (html_rule(&o.id, r)) "\n" }
        }
    }
}

/// The roles of an overleg: who fills them, under which grondslag, and
/// which special categories they may receive.
fn html_participants(roles: &[RoleView<'_>]) -> Markup {
    html! {
        table.deelnemers {
            "\n"
            thead { tr {
                th { "Rol" } th { "Naam" } th { "Organisaties" } th { "Grondslag" }
                th { "Bijzondere gegevens toegestaan" }
            } } "\n"
            tbody {
                "\n"
                @for r in roles {
                    @let g = &r.role.grondslag;
                    tr {
                        td { code { (r.role.id) } }
                        td { (r.role.name) }
                        td { @for (i, org) in r.organisations.iter().enumerate() { @if i > 0 { br; } (org) } }
                        td {
                            strong { (g.law) } br; (g.article)
                            @for line in basis_lines(g) { br; (line) }
                        }
                        td {
                            @if r.special.is_empty() { "geen" }
                            @for (i, c) in r.special.iter().enumerate() {
                                @if i > 0 { br; } (special_label(*c))
                            }
                        }
                    } "\n"
                }
            } "\n"
        }
    }
}

/// One rule: from whom to whom, for which purpose, from which bron, under
/// which consent, why, and its fields.
fn html_rule(overleg: &str, r: &RuleView<'_>) -> Markup {
    let rule = r.rule;
    html! {
        section.regel id={ "regel-" (overleg) "-" (rule.id) } {
            "\n"
            h4 { (rule.id) ": " code { (rule.from) } " → " code { (rule.to) } } "\n"
            dl.regel {
                "\n"
                dt { "Van" } dd { (html_role(r.from, &rule.from)) } "\n"
                dt { "Naar" } dd { (html_role(r.to, &rule.to)) } "\n"
                dt { "Doel" } dd { code { (rule.purpose) } @if rule.emergency { " (spoedregel)" } } "\n"
                dt { "Bron" } dd {
                    (r.bron_name) " (" code { (rule.bron) } ")"
                    @if let Some(h) = r.host_name { ", gehost door " (h) " (verwerker)" }
                } "\n"
                dt { "Verstrekking" } dd { (act_label(r.act)) } "\n"
                dt { "Toestemming" } dd { (consent_label(rule.consent)) } "\n"
                dt { "Noodzaak" } dd { (rule.justification) } "\n"
            } "\n"
            (html_fields(&r.fields)) "\n"
        }
    }
}

/// The fields a rule lets flow, special categories marked.
fn html_fields(fields: &[&CatalogueField]) -> Markup {
    html! {
        table.velden {
            "\n"
            thead { tr { th { "Veld" } th { "Omschrijving" } th { "Categorie" } } } "\n"
            tbody {
                "\n"
                @for f in fields {
                    @let marker = category_marker(f.category);
                    tr class=[marker.map(|_| "bijzonder")] {
                        td { code { (f.path.as_str()) } }
                        td { (f.label) }
                        td {
                            @match marker {
                                Some(m) => { span.markering { (m) } }
                                None => { (category_label(f.category)) }
                            }
                        }
                    } "\n"
                }
            } "\n"
        }
    }
}

/// The processors section, numbered `n`: per organisation the suppliers it
/// gave a mandate.
fn html_processors(n: usize, views: &[ProcessorsView<'_>]) -> Markup {
    html! {
        section.overleg id="verwerkers" {
            "\n" h2 { (n) ". " (PROCESSORS_TITLE) } "\n"
            p { (PROCESSORS_INTRO) } "\n"
            @if views.is_empty() {
                p { "Geen organisatie heeft een softwareleverancier gemachtigd." } "\n"
            }
            @for v in views {
                h3 { (v.org_name) " (" code { (v.org_id) } ")" } "\n"
                table.verwerkers {
                    "\n"
                    thead { tr {
                        th { "Leverancier" } th { "Richting" } th { "Overleggen" } th { "Geldig" }
                        th { "Verwerkersovereenkomst" }
                    } } "\n"
                    tbody {
                        "\n"
                        @for m in &v.mandates {
                            tr {
                                td { (supplier_name(m)) " (" code { (m.mandate.supplier) } ")" }
                                td { (direction_label(m.mandate.direction)) }
                                td {
                                    @if m.overleggen.is_empty() { "alle casusoverleggen" }
                                    @for (i, (id, name)) in m.overleggen.iter().enumerate() {
                                        @if i > 0 { br; }
                                        (name) " (" code { (id) } ")"
                                    }
                                }
                                td { (validity_label(m.mandate)) }
                                td { (agreement_label(m)) }
                            } "\n"
                        }
                    } "\n"
                } "\n"
            }
        }
    }
}

/// The footnote with the full policy version.
fn html_footer(version: &str) -> Markup {
    html! {
        footer {
            "\n"
            ol.voetnoten {
                "\n"
                li id="voetnoot-versie" {
                    "Volledige policyversie (SHA-256 over alle policybestanden): " code { (version) }
                    " " a href="#verwijzing-versie" { "↩" }
                } "\n"
            } "\n"
        }
    }
}
