//! Policy administration: the human-readable Bijlage 3 (Markdown and HTML)
//! and the access delta between two policy sets.
//!
//! The committed renderings in `tests/expected/` are compared byte for byte.
//! After an intended change to the policies or the renderers, regenerate them
//! with `UPDATE_EXPECTED=1 cargo test --test policy_admin` and review the diff.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

use std::path::Path;

use poortwachter::policy::decision::Snapshot;
use poortwachter::policy::load_dir;
use poortwachter::policy::model::{Act, PolicySet};
use poortwachter::policy::tools::diff::{self, Delta, Structural};
use poortwachter::policy::tools::render;

mod common;
use common::{POLICIES, copy_policies, edit};

const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/expected");

/// Removes the `[[rules]]` block with rule id `id` from an overleg file.
fn remove_rule(path: &Path, id: &str) {
    let s = std::fs::read_to_string(path).unwrap();
    let at = s.find(&format!("\nid = \"{id}\"\n")).unwrap();
    let start = s[..at].rfind("[[rules]]").unwrap();
    let end = s[at..].find("[[rules]]").map_or(s.len(), |i| at + i);
    std::fs::write(path, format!("{}{}", &s[..start], &s[end..])).unwrap();
}

/// De Borg leaves the werkgroep verdiepend verzuim: out of the `school` role,
/// and its own rule vv-03 (Leerplicht reading De Borg's LAS) goes with it,
/// since a rule whose bron owner holds neither role does not validate.
fn de_borg_leaves_verdiepend_verzuim(dir: &Path) {
    let file = dir.join("overleggen/verdiepend-verzuim-vo.toml");
    edit(
        &file,
        "organisations = [\"vo-noorderlicht\", \"vso-de-borg\"]",
        "organisations = [\"vo-noorderlicht\"]",
    );
    remove_rule(&file, "vv-03");
}

fn example() -> PolicySet {
    load_dir(Path::new(POLICIES)).unwrap()
}

/// Compares `actual` with `tests/expected/<name>`, or rewrites the file when
/// `UPDATE_EXPECTED=1`.
fn check_expected(name: &str, actual: &str) {
    let path = Path::new(EXPECTED).join(name);
    if std::env::var("UPDATE_EXPECTED").as_deref() == Ok("1") {
        std::fs::create_dir_all(EXPECTED).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with UPDATE_EXPECTED=1",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the rendering, first at line {}:\n expected: {:?}\n actual:   {:?}\n(after an intended change: UPDATE_EXPECTED=1 cargo test --test policy_admin)",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

#[test]
fn bijlage3_markdown_matches_the_committed_rendering() {
    check_expected("bijlage3.md", &render::markdown(&example()));
}

#[test]
fn bijlage3_html_matches_the_committed_rendering() {
    check_expected("bijlage3.html", &render::html(&example()));
}

#[test]
fn bijlage3_covers_every_overleg_rule_and_category() {
    let set = example();
    let md = render::markdown(&set);
    let html = render::html(&set);
    assert!(md.contains(&set.version), "full version in the footnote");
    assert!(md.contains(&format!("`{}`[^versie]", &set.version[..16])));
    for (id, o) in &set.overleggen {
        assert!(
            md.contains(&format!("](#{id})")),
            "{id} in the table of contents"
        );
        assert!(
            html.contains(&format!("href=\"#overleg-{id}\"")),
            "{id} in the toc"
        );
        assert!(
            html.contains(&format!("id=\"overleg-{id}\"")),
            "{id} section"
        );
        for r in &o.rules {
            assert!(md.contains(&format!("#### {}: ", r.id)), "rule {}", r.id);
        }
    }
    // Organisations appear by their registry name, not their id.
    assert!(md.contains("| WIJ Groningen (demo) |"));
    // Special categories are marked.
    assert!(md.contains("**bijzonder persoonsgegeven, art. 9 AVG**"));
    assert!(md.contains("**BSN**"));
    assert!(md.contains("- **Toestemming:** ouders\n"));
    assert!(md.contains("- **Toestemming:** ouders en jongere\n"));
    assert!(html.contains("<span class=\"markering\">BSN</span>"));
}

#[test]
fn html_is_self_contained_and_printable() {
    let html = render::html(&example());
    assert!(!html.contains("http://"), "external reference in the HTML");
    assert!(!html.contains("https://"), "external reference in the HTML");
    assert!(!html.contains("<link"), "external stylesheet");
    assert!(!html.contains("<script"), "scripts");
    assert!(html.contains("@media print"));
    assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"nl\">"));
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn html_and_markdown_escape_policy_text() {
    let (_tmp, dir) = copy_policies();
    edit(
        &dir.join("overleggen/mazl.toml"),
        "\nname = \"",
        "\nname = \"<script>alert('x')</script> & \\\"Co\\\" | &copy; ",
    );
    let set = load_dir(&dir).unwrap();
    let html = render::html(&set);
    assert!(!html.contains("<script>"), "unescaped name in the HTML");
    assert!(
        html.contains("&lt;script&gt;alert('x')&lt;/script&gt; &amp; &quot;Co&quot; | &amp;copy; ")
    );
    let md = render::markdown(&set);
    assert!(!md.contains("<script>"), "unescaped name in the Markdown");
    assert!(md.contains(r#"\<script\>alert('x')\</script\> & "Co" \| \&copy; "#));
}

#[test]
fn bijlage3_html_escapes_organisation_names_and_field_labels() {
    // TOML basic strings: `\"` is a double quote.
    let hostile = r#"<script>alert(1)</script>\"'&"#;
    let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;";
    let (_tmp, dir) = copy_policies();
    edit(
        &dir.join("partners.toml"),
        "name = \"Noorderlicht College (demo VO-school)\"",
        &format!("name = \"{hostile}\""),
    );
    edit(
        &dir.join("bronnen/las-noorderlicht.toml"),
        "label = \"Voornaam leerling\"",
        &format!("label = \"{hostile}\""),
    );
    let set = load_dir(&dir).unwrap();
    let html = render::html(&set);
    assert!(!html.contains("<script"), "unescaped markup in the HTML");
    // Every occurrence escaped: the school's name where it fills a role
    // (six overleggen, once next to another school) and as the heading of
    // its processors, and the label wherever the first name flows (twelve
    // rules).
    assert_eq!(html.matches("alert(1)").count(), 19);
    assert_eq!(html.matches(escaped).count(), 19);
    assert!(html.contains(&format!("<td>{escaped}</td><td><strong>WVO</strong>")));
    assert!(html.contains(&format!("<td>{escaped}<br>De Borg (demo VSO-school)</td>")));
    assert!(html.contains(&format!(
        "<td>{escaped}</td><td>gewoon persoonsgegeven</td>"
    )));
}

/// The last section of Bijlage 3 lists, per organisation, the software
/// suppliers it gave a mandate: direction, overleggen, validity and the
/// processing agreement.
#[test]
fn bijlage3_lists_the_processors_of_each_organisation() {
    let (_tmp, dir) = copy_policies();
    let partners = dir.join("partners.toml");
    // The second school's mandate covers every overleg; the supplier's
    // agreement reference is gone.
    edit(
        &partners,
        "overleggen = [\"expertteam-po\"]",
        "overleggen = [\"*\"]",
    );
    edit(
        &partners,
        "processor_agreement = \"VWO-2026-LAS-001\"\n",
        "",
    );
    for set in [example(), load_dir(&dir).unwrap()] {
        let md = render::markdown(&set);
        let html = render::html(&set);
        let n = set.overleggen.len() + 1;
        let at = md.find("<a id=\"verwerkers\"></a>").unwrap();
        let section = &md[at..];
        assert!(section.contains(&format!(
            "## {n}. Verwerkers: softwareleveranciers per organisatie\n"
        )));
        assert!(md[..at].contains(&format!(
            "{n}. [Verwerkers: softwareleveranciers per organisatie](#verwerkers)\n"
        )));
        assert!(html.contains("<li><a href=\"#verwerkers\">"));
        assert!(html.contains("<section class=\"overleg\" id=\"verwerkers\">"));
        assert!(!set.mandates.all.is_empty());
        let with_mandate: std::collections::BTreeSet<&str> = set
            .mandates
            .all
            .iter()
            .map(|m| m.organisation.as_str())
            .collect();
        for (id, o) in &set.organisations {
            let heading = format!("### {} (`{id}`)\n", render::escape_markdown(&o.name));
            assert_eq!(
                section.contains(&heading),
                with_mandate.contains(id.as_str()),
                "{id}"
            );
        }
        for m in &set.mandates.all {
            let s = &set.mandates.suppliers[&m.supplier];
            let overleggen = match &m.overleggen {
                poortwachter::policy::mandate::Coverage::All => "alle casusoverleggen".to_owned(),
                poortwachter::policy::mandate::Coverage::Only(ids) => ids
                    .iter()
                    .map(|id| format!("{} (`{id}`)", set.overleggen[id].name))
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            let until = m
                .valid_until
                .as_ref()
                .map(|u| format!(" tot en met {u}"))
                .unwrap_or_default();
            let direction = match m.direction {
                poortwachter::policy::mandate::Direction::Client => {
                    "client: vraagt op en levert aan namens de organisatie"
                }
                poortwachter::policy::mandate::Direction::Bron => {
                    "bron: host de bronnen van de organisatie"
                }
            };
            let row = format!(
                "| {} (`{}`) | {direction} | {overleggen} | vanaf {}{until} | {} |",
                s.name,
                s.id,
                m.valid_from,
                s.processor_agreement.as_deref().unwrap_or("ontbreekt")
            );
            assert!(section.contains(&row), "{row}\n{section}");
        }
    }
}

#[test]
fn rendering_is_stable() {
    let a = example();
    let b = example();
    assert_eq!(render::markdown(&a), render::markdown(&b));
    assert_eq!(render::html(&a), render::html(&b));
    assert_eq!(render::markdown(&a), render::markdown(&a));
    assert_eq!(render::html(&a), render::html(&a));
}

async fn delta(old: &PolicySet, new_dir: &Path) -> (Delta, PolicySet) {
    let new = load_dir(new_dir).unwrap();
    (diff::diff(old, &new).await.unwrap(), new)
}

#[tokio::test]
async fn the_example_set_has_no_delta_with_itself() {
    let set = example();
    let d = diff::diff(&set, &set).await.unwrap();
    assert!(d.is_empty(), "{}", d.text());
    assert!(d.text().contains("Geen wijzigingen."));
    // An unchanged copy compiles to the same table too.
    let (_tmp, dir) = copy_policies();
    let (d, _) = delta(&set, &dir).await;
    assert!(d.is_empty(), "{}", d.text());
}

#[tokio::test]
async fn an_added_field_is_gained_by_every_organisation_of_the_receiving_role() {
    let old = example();
    let (_tmp, dir) = copy_policies();
    // aoj-02 (school → jeugdwet, aanpak-verzuim) deliberately leaves out the
    // hours per registration; add them.
    edit(
        &dir.join("overleggen/aoj-vo-noorderlicht.toml"),
        "  \"verzuim.meldingen[].soort\",\n]\nconsent = \"none\"\njustification = \"Om te beoordelen",
        "  \"verzuim.meldingen[].soort\",\n  \"verzuim.meldingen[].uren\",\n]\nconsent = \"none\"\njustification = \"Om te beoordelen",
    );
    let (d, new) = delta(&old, &dir).await;
    assert!(d.partners.is_empty());
    assert_eq!(d.overleggen.len(), 1, "{}", d.text());
    let o = &d.overleggen[0];
    assert_eq!(o.id, "aoj-vo-noorderlicht");
    assert!(o.structural.is_empty(), "{:?}", o.structural);

    let to = new.overleggen["aoj-vo-noorderlicht"]
        .role("jeugdwet")
        .unwrap();
    let mut orgs: Vec<&str> = o.access.iter().map(|a| a.org.as_str()).collect();
    orgs.sort_unstable();
    let mut expected: Vec<&str> = to.organisations.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(orgs, expected, "{}", d.text());
    for a in &o.access {
        assert_eq!(
            (a.role.as_str(), a.purpose.as_str(), a.bron.as_str(), a.act),
            ("jeugdwet", "aanpak-verzuim", "las-noorderlicht", Act::Read)
        );
        let gained: Vec<&str> = a.gained.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(gained, ["verzuim.meldingen[].uren"]);
        assert_eq!(a.gained[0].label, "Aantal verzuimde uren");
        assert!(a.lost.is_empty() && a.consent_changed.is_empty());
    }
    assert!(d.text().contains(
        "WIJ Groningen (demo) als jeugdwet krijgt er bij, doel aanpak-verzuim, uit Leerlingadministratie Noorderlicht College:\n      + verzuim.meldingen[].uren (Aantal verzuimde uren)\n"
    ), "{}", d.text());
}

#[tokio::test]
async fn an_organisation_leaving_a_role_loses_exactly_what_it_had() {
    let old = example();
    let (_tmp, dir) = copy_policies();
    de_borg_leaves_verdiepend_verzuim(&dir);
    let (d, _) = delta(&old, &dir).await;
    assert_eq!(d.overleggen.len(), 1, "{}", d.text());
    let o = &d.overleggen[0];
    assert_eq!(o.id, "verdiepend-verzuim-vo");
    assert!(
        matches!(
            o.structural.as_slice(),
            [Structural::OrganisationLeft { role, org, org_name }]
                if role == "school" && org == "vso-de-borg" && org_name == "De Borg (demo VSO-school)"
        ),
        "{:?}",
        o.structural
    );

    // De Borg loses everything the old table granted it in this overleg, and
    // nothing else changes for it.
    let snap = Snapshot::build(old.clone(), None).await.unwrap();
    let mut had: Vec<(String, String, Act, String)> = Vec::new();
    for (key, grant) in snap.table.iter() {
        if key.org != "vso-de-borg" || key.overleg != "verdiepend-verzuim-vo" {
            continue;
        }
        let bron = &old.bronnen[&key.bron];
        for (idx, slot) in grant.fields.iter().enumerate() {
            if slot.is_some() {
                had.push((
                    key.purpose.clone(),
                    key.bron.clone(),
                    key.act,
                    bron.catalogue[idx].path.as_str().to_owned(),
                ));
            }
        }
    }
    had.sort();
    assert!(!had.is_empty());
    let mut lost: Vec<(String, String, Act, String)> = Vec::new();
    for a in o.access.iter().filter(|a| a.org == "vso-de-borg") {
        assert_eq!(a.role, "school");
        assert!(a.gained.is_empty() && a.consent_changed.is_empty());
        for f in &a.lost {
            lost.push((a.purpose.clone(), a.bron.clone(), a.act, f.path.clone()));
        }
    }
    lost.sort();
    assert_eq!(lost, had);

    // The only other change: Leerplicht no longer reads De Borg's LAS (vv-03).
    for a in o.access.iter().filter(|a| a.org != "vso-de-borg") {
        assert_eq!(
            (a.org.as_str(), a.role.as_str(), a.bron.as_str(), a.act),
            ("gemeente-groningen", "leerplicht", "las-de-borg", Act::Read),
            "{}",
            d.text()
        );
        assert!(a.gained.is_empty() && !a.lost.is_empty());
    }
}

#[tokio::test]
async fn a_consent_change_is_reported_as_such() {
    let old = example();
    let (_tmp, dir) = copy_policies();
    let aoj = dir.join("overleggen/aoj-vo-noorderlicht.toml");
    edit(
        &aoj,
        "consent = \"parents-and-youth\"",
        "consent = \"youth\"",
    );
    let (d, _) = delta(&old, &dir).await;
    assert_eq!(d.overleggen.len(), 1, "{}", d.text());
    let a = &d.overleggen[0].access;
    assert!(!a.is_empty());
    for a in a {
        assert!(a.gained.is_empty() && a.lost.is_empty(), "{}", d.text());
        assert!(!a.consent_changed.is_empty());
    }
    assert!(
        d.text().contains("toestemming ouders en jongere → jongere"),
        "{}",
        d.text()
    );
}

/// Who may register pupils (and record consent) decides whose data can flow
/// at all: taking that right away, or granting it, is a change the FG sees.
#[tokio::test]
async fn a_change_in_who_may_register_cases_is_reported() {
    let old = example();
    let (_tmp, dir) = copy_policies();
    let aoj = dir.join("overleggen/aoj-vo-noorderlicht.toml");
    // The leerplicht role loses the right (its line is followed by the bsn comment).
    edit(
        &aoj,
        "may_register_cases = true\n# bsn:",
        "may_register_cases = false\n# bsn:",
    );
    let (d, _) = delta(&old, &dir).await;
    assert_eq!(d.overleggen.len(), 1, "{}", d.text());
    let o = &d.overleggen[0];
    assert!(
        o.access.is_empty(),
        "no field flows differently: {}",
        d.text()
    );
    assert!(
        matches!(
            o.structural.as_slice(),
            [Structural::CaseRegistrationChanged { role, may: false }] if role == "leerplicht"
        ),
        "{:?}",
        o.structural
    );
    assert!(!d.is_empty());
    assert!(
        d.text()
            .contains("rol leerplicht mag niet meer leerlingen aanmelden"),
        "{}",
        d.text()
    );
    // And back: the reverse diff grants it.
    let new = load_dir(&dir).unwrap();
    let back = diff::diff(&new, &old).await.unwrap();
    assert!(matches!(
        back.overleggen[0].structural.as_slice(),
        [Structural::CaseRegistrationChanged { role, may: true }] if role == "leerplicht"
    ));
    assert!(
        back.text()
            .contains("rol leerplicht mag nu leerlingen aanmelden")
    );
}

#[tokio::test]
async fn diff_text_matches_the_committed_example() {
    let old = example();
    let (_tmp, dir) = copy_policies();
    let aoj = dir.join("overleggen/aoj-vo-noorderlicht.toml");
    // A field gained (aoj-02, see above), a retention change and a purpose
    // reworded in one overleg; an organisation leaving a role in another.
    edit(
        &aoj,
        "  \"verzuim.meldingen[].soort\",\n]\nconsent = \"none\"\njustification = \"Om te beoordelen",
        "  \"verzuim.meldingen[].soort\",\n  \"verzuim.meldingen[].uren\",\n]\nconsent = \"none\"\njustification = \"Om te beoordelen",
    );
    edit(&aoj, "retention_days = 1825", "retention_days = 730");
    edit(
        &aoj,
        "text = \"Het advies van de jeugdarts",
        "text = \"Het schriftelijke advies van de jeugdarts",
    );
    de_borg_leaves_verdiepend_verzuim(&dir);
    let (d, _) = delta(&old, &dir).await;
    check_expected("diff-example.txt", &d.text());
    check_expected("diff-example.md", &d.markdown());
    // Stable: the same two sets give the same text.
    let (again, _) = delta(&old, &dir).await;
    assert_eq!(again.text(), d.text());
    assert_eq!(again.markdown(), d.markdown());
}

/// Mandates gained and lost (here: a wider coverage is the old mandate lost
/// and the new one gained) and a supplier added, in text and Markdown; no
/// access changes, since a mandate changes who may connect, not what flows.
#[tokio::test]
async fn mandate_and_supplier_changes_are_reported() {
    let old = example();
    let (_tmp, dir) = copy_policies();
    let partners = dir.join("partners.toml");
    edit(
        &partners,
        "overleggen = [\"aoj-vo-noorderlicht\"]",
        "overleggen = [\"aoj-vo-noorderlicht\", \"mazl\"]",
    );
    let mut text = std::fs::read_to_string(&partners).unwrap();
    text.push_str("\n[[suppliers]]\nid = \"ander-pakket\"\nname = \"Ander Pakket B.V. (demo)\"\noin = \"00000099000000000902\"\nprocessor_agreement = \"VWO-2026-AP-007\"\n\n[[mandates]]\nsupplier = \"ander-pakket\"\norganisation = \"po-de-wadden\"\ndirection = \"client\"\noverleggen = [\"*\"]\nvalid_from = \"2026-09-01\"\n");
    std::fs::write(&partners, text).unwrap();
    let (d, _) = delta(&old, &dir).await;
    assert!(
        d.overleggen.is_empty() && d.partners.is_empty(),
        "{}",
        d.text()
    );
    let las = "Demo LAS-leverancier B.V. (SaaS-leerlingadministratie) (las-leverancier) namens Noorderlicht College (demo VO-school) (vo-noorderlicht), richting client";
    let expected = [
        "nieuwe leverancier (verwerker) Ander Pakket B.V. (demo) (ander-pakket), verwerkersovereenkomst VWO-2026-AP-007".to_owned(),
        "machtiging erbij: Ander Pakket B.V. (demo) (ander-pakket) namens Basisschool De Wadden (demo PO) (po-de-wadden), richting client, alle casusoverleggen, geldig vanaf 2026-09-01".to_owned(),
        format!("machtiging vervalt: {las}, overleg aoj-vo-noorderlicht (was geldig vanaf 2026-08-01 tot en met 2031-07-31)"),
        format!("machtiging erbij: {las}, overleg aoj-vo-noorderlicht, mazl, geldig vanaf 2026-08-01 tot en met 2031-07-31"),
    ];
    let text = d.text();
    let section: String = expected.iter().map(|l| format!("  - {l}\n")).collect();
    assert!(
        text.ends_with(&format!("\nLeveranciers en machtigingen\n{section}")),
        "{text}"
    );
    let md = d.markdown();
    let section: String = expected.iter().map(|l| format!("- {l}\n")).collect();
    assert!(
        md.ends_with(&format!("\n## Leveranciers en machtigingen\n\n{section}\n")),
        "{md}"
    );
    // And back: what was gained is lost.
    let new = load_dir(&dir).unwrap();
    let back = diff::diff(&new, &old).await.unwrap().text();
    assert!(back.contains("leverancier Ander Pakket B.V. (demo) (ander-pakket) verwijderd"));
    assert!(back.contains("machtiging vervalt: Ander Pakket"));
}

/// Runs the real binary with `args`.
fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_poortwachter"))
        .args(args)
        .output()
        .unwrap()
}

/// Every command that takes `--format`: the command, the other arguments it
/// needs to parse, and the values it accepts, as clap lists them.
const FORMAT_COMMANDS: [(&str, &[&str], &str); 17] = [
    ("policy test", &[], "text, json"),
    ("policy render", &[], "md, html"),
    ("policy diff", &["old", "new"], "text, md"),
    (
        "policy explain",
        &[
            "--org",
            "o",
            "--overleg",
            "x",
            "--purpose",
            "p",
            "--bron",
            "b",
            "--field",
            "f",
        ],
        "text, json",
    ),
    ("policy check", &[], "text, json"),
    ("audit verify", &["--config", "absent.toml"], "text, json"),
    ("audit spoed", &["--config", "absent.toml"], "text, json"),
    (
        "audit aggregates",
        &["--config", "absent.toml"],
        "text, json",
    ),
    (
        "audit query",
        &["--config", "absent.toml"],
        "table, json, csv",
    ),
    (
        "audit export",
        &["--config", "absent.toml"],
        "csv, jsonl, logboek, fhir",
    ),
    (
        "audit toestemming",
        &["--config", "absent.toml", "--overleg", "mazl"],
        "table, json, csv",
    ),
    (
        "audit wijzigingen",
        &["--config", "absent.toml"],
        "text, json",
    ),
    (
        "audit inzage",
        &["--config", "absent.toml", "--leerling", "L1001"],
        "html, json",
    ),
    (
        "audit ontvangen",
        &[
            "--config",
            "absent.toml",
            "--org",
            "o",
            "--overleg",
            "x",
            "--van",
            "2026-01-01",
            "--tot",
            "2026-01-31",
        ],
        "table, json, csv",
    ),
    (
        "audit kennisgeving",
        &[
            "--config",
            "absent.toml",
            "--leerling",
            "L1001",
            "--sinds",
            "2026-01-01",
        ],
        "html, json",
    ),
    (
        "audit rapport",
        &[
            "--config",
            "absent.toml",
            "--van",
            "2026-01-01",
            "--tot",
            "2026-01-31",
        ],
        "html, json",
    ),
    (
        "cases list",
        &["--config", "absent.toml", "--leerling", "L1001"],
        "text, json",
    ),
];

/// An unknown `--format` is refused by the argument parser (exit 2, the
/// allowed values named) before anything runs, instead of falling back to a
/// default.
#[test]
fn an_unknown_format_is_refused_with_the_allowed_values() {
    for (command, args, allowed) in FORMAT_COMMANDS {
        let mut argv: Vec<&str> = command.split(' ').collect();
        argv.extend(args);
        argv.extend(["--format", "xml"]);
        let out = cli(&argv);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains("invalid value 'xml' for '--format <FORMAT>'")
                && err.contains(&format!("[possible values: {allowed}]")),
            "{command}: {err}"
        );
        assert!(out.stdout.is_empty(), "{command} printed output");
    }
}

/// The subcommands of `poortwachter <path>` according to its help.
fn subcommands(path: &[&str]) -> Vec<String> {
    let mut argv = path.to_vec();
    argv.push("--help");
    let help = String::from_utf8(cli(&argv).stdout).unwrap();
    help.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// The list above is complete: every command whose help offers `--format`
/// is in it (and every command in it offers one).
#[test]
fn every_command_with_a_format_flag_is_checked() {
    let mut with_format = Vec::new();
    for group in subcommands(&[]) {
        let leaves = subcommands(&[&group]);
        let paths: Vec<String> = if leaves.is_empty() {
            vec![group.clone()]
        } else {
            leaves.iter().map(|l| format!("{group} {l}")).collect()
        };
        for path in paths {
            let mut argv: Vec<&str> = path.split(' ').collect();
            argv.push("--help");
            if String::from_utf8_lossy(&cli(&argv).stdout).contains("--format <FORMAT>") {
                with_format.push(path);
            }
        }
    }
    let mut listed: Vec<String> = FORMAT_COMMANDS.iter().map(|c| c.0.to_owned()).collect();
    listed.sort();
    with_format.sort();
    assert_eq!(with_format, listed);
}

/// One valid run of each policy command in a format other than its default
/// (they need no store), and the defaults unchanged.
#[test]
fn the_policy_commands_produce_each_format() {
    let ok = |args: &[&str]| {
        let out = cli(args);
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    // Every JSON value the command printed (`policy check` prints its lint
    // findings and its result as two).
    let json = |args: &[&str]| -> Vec<serde_json::Value> {
        let text = ok(args);
        let values = serde_json::Deserializer::from_str(&text).into_iter();
        values.collect::<Result<_, _>>().unwrap()
    };
    let check = json(&["policy", "check", "--dir", POLICIES, "--format", "json"]);
    assert_eq!(check.len(), 2, "{check:?}");
    assert!(check[0]["lint"].is_array());
    assert_eq!(check[1]["ok"], true);
    assert!(ok(&["policy", "check", "--dir", POLICIES]).starts_with("ok: "));
    let md = ok(&["policy", "render", "--dir", POLICIES, "--format", "md"]);
    assert_eq!(md, render::markdown(&example()));
    assert_eq!(
        ok(&["policy", "render", "--dir", POLICIES]),
        md,
        "md is the default"
    );
    let html = ok(&["policy", "render", "--dir", POLICIES, "--format", "html"]);
    assert_eq!(html, render::html(&example()));
    let diff_md = ok(&["policy", "diff", POLICIES, POLICIES, "--format", "md"]);
    assert!(diff_md.starts_with("# Toegangswijzigingen"), "{diff_md}");
    let diff_text = ok(&["policy", "diff", POLICIES, POLICIES]);
    assert!(
        diff_text.starts_with("Toegangswijzigingen van policyversie"),
        "{diff_text}"
    );
    let tests = json(&["policy", "test", "--dir", POLICIES, "--format", "json"]);
    assert!(!tests[0]["results"].as_array().unwrap().is_empty());
    let explain = json(&[
        "policy",
        "explain",
        "--dir",
        POLICIES,
        "--org",
        "wij-groningen",
        "--overleg",
        "aoj-vo-noorderlicht",
        "--purpose",
        "aanpak-verzuim",
        "--bron",
        "las-noorderlicht",
        "--field",
        "verzuim.meldingen[].datum",
        "--format",
        "json",
    ]);
    assert_eq!(
        (&explain[0]["allowed"], &explain[0]["casbin"]),
        (&true.into(), &true.into())
    );
}

/// `log.format` in the configuration is checked when the file is loaded: an
/// unknown value stops `serve` (exit 2) with the allowed values.
#[test]
fn an_unknown_log_format_stops_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("poortwachter.toml");
    std::fs::write(
        &config,
        "[tls]\ncert = \"gw.pem\"\nkey = \"gw-key.pem\"\nclient_ca = [\"ca.pem\"]\n\n\
         [audit]\nstore = \"sqlite://audit.db\"\npseudonym_key = \"pseudonym.key\"\nsigning_key = \"signing.key\"\n\n\
         [log]\nformat = \"xml\"\n",
    )
    .unwrap();
    let out = cli(&["serve", "--config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("log.format must be \"text\" or \"json\""),
        "{err}"
    );
}
