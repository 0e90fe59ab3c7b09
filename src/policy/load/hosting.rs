//! Who owns a bron (P023, P090–P094): one organisation (`owner`), or, for a
//! bron a software supplier hosts for several organisations, `hosted_by`
//! with `owners`, each of which gave that supplier a mandate in direction
//! `bron`.

use std::collections::BTreeSet;

use toml::Spanned;

use super::{Defined, Problems, SourceText};
use crate::policy::mandate::{Direction, Mandates};
use crate::policy::model::Role;

/// A bron's validated owners and host.
pub(super) struct Ownership {
    pub owners: Vec<String>,
    pub hosted_by: Option<String>,
}

/// The three ownership keys of a bron file, as read.
pub(super) struct RawOwnership {
    pub owner: Option<Spanned<String>>,
    pub hosted_by: Option<Spanned<String>>,
    pub owners: Option<Spanned<Vec<String>>>,
}

/// Checks the ownership keys; `None` when they are not usable.
pub(super) fn ownership(
    src: &SourceText,
    raw: RawOwnership,
    defined: &Defined<'_>,
    mandates: &Mandates,
    problems: &mut Problems,
) -> Option<Ownership> {
    match (raw.owner, raw.hosted_by, raw.owners) {
        (Some(owner), None, None) => {
            check_organisation(src, &owner, owner.get_ref(), defined, problems);
            Some(Ownership {
                owners: vec![owner.into_inner()],
                hosted_by: None,
            })
        }
        (None, Some(host), Some(owners)) => {
            Some(hosted(src, &host, owners, defined, mandates, problems))
        }
        _ => {
            problems.at(
                src,
                0,
                "P093",
                "a bron names either its `owner`, or the supplier that hosts it (`hosted_by`) with its `owners`".to_owned(),
            );
            None
        }
    }
}

/// A hosted bron: a known supplier, a non-empty list of distinct known
/// organisations, each with a `bron` mandate for that supplier.
fn hosted(
    src: &SourceText,
    host: &Spanned<String>,
    owners: Spanned<Vec<String>>,
    defined: &Defined<'_>,
    mandates: &Mandates,
    problems: &mut Problems,
) -> Ownership {
    let partners_known = !defined.unreadable.all_organisations;
    let supplier = host.get_ref();
    if partners_known && !mandates.suppliers.contains_key(supplier) {
        let message = format!("hosted_by `{supplier}` is not a supplier in partners.toml");
        problems.at(src, host.span().start, "P090", message);
    }
    let at = owners.span().start;
    let owners = owners.into_inner();
    let mut seen = BTreeSet::new();
    for o in &owners {
        if !seen.insert(o.as_str()) {
            problems.at(src, at, "P091", format!("owner `{o}` is listed twice"));
        }
    }
    if owners.is_empty() {
        let message = "a hosted bron lists at least one owner".to_owned();
        problems.at(src, at, "P091", message);
    }
    for o in &owners {
        let spanned = Spanned::new(at..at, o.clone());
        check_organisation(src, &spanned, o, defined, problems);
        let mandated = mandates
            .between(supplier, o)
            .any(|m| m.direction == Direction::Bron);
        if partners_known && defined.organisations.contains_key(o) && !mandated {
            let message = format!(
                "owner `{o}` gave `{supplier}` no mandate with direction = \"bron\" in partners.toml"
            );
            problems.at(src, at, "P092", message);
        }
    }
    Ownership {
        owners,
        hosted_by: Some(supplier.clone()),
    }
}

fn check_organisation(
    src: &SourceText,
    at: &Spanned<String>,
    id: &str,
    defined: &Defined<'_>,
    problems: &mut Problems,
) {
    if !defined.organisation(id) {
        let message = format!("owner `{id}` is not in partners.toml");
        problems.at(src, at.span().start, "P023", message);
    }
}

/// P094: a rule on a hosted bron must read for every owner that takes part
/// or write for every one: one owner holding `from` and another only `to`
/// would make the same rule a read for one school and a write for another.
pub(super) fn direction_agrees(roles: &[Role], from: &str, to: &str, owners: &[String]) -> bool {
    let holds = |role: &str, owner: &str| {
        roles
            .iter()
            .any(|r| r.id == role && r.organisations.iter().any(|o| o == owner))
    };
    let reads = owners.iter().any(|o| holds(from, o));
    let writes_only = owners.iter().any(|o| holds(to, o) && !holds(from, o));
    !(reads && writes_only)
}

#[cfg(test)]
mod tests {
    use crate::policy::fixture::Fixture;
    use crate::policy::load::LoadError;

    const SUPPLIER: &str = r#"
[[suppliers]]
id = "lev"
name = "Leverancier"
oin = "00000099000000000901"
processor_agreement = "VWO-1"

[[mandates]]
supplier = "lev"
organisation = "school"
direction = "bron"
overleggen = ["team"]
valid_from = "2026-01-01"
"#;

    /// A hosted bron for `owners` (a TOML array body).
    fn hosted(host: &str, owners: &str) -> String {
        format!(
            "id = \"app\"\nname = \"App\"\nhosted_by = \"{host}\"\nowners = [{owners}]\nbase_url = \"https://app.example\"\nsubject = \"leerling\"\n\n[[resources]]\nid = \"doc\"\npath = \"/leerlingen/{{leerling}}\"\nmethods = [\"GET\"]\n\n[[fields]]\npath = \"a\"\nlabel = \"A\"\ncategory = \"normal\"\n"
        )
    }

    fn codes(f: &Fixture) -> Vec<&'static str> {
        match f.load() {
            Err(LoadError::Invalid(p)) => p.iter().map(|p| p.code).collect(),
            Ok(_) => Vec::new(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_hosted_bron_loads_with_its_owners_and_host() {
        let set = Fixture::new()
            .append("partners.toml", SUPPLIER)
            .append("bronnen/app.toml", &hosted("lev", "\"school\""))
            .set();
        let app = &set.bronnen["app"];
        assert_eq!(app.owners, ["school"]);
        assert_eq!(app.hosted_by.as_deref(), Some("lev"));
        assert_eq!(set.bronnen["las"].hosted_by, None);
    }

    #[test]
    fn every_ownership_problem_has_its_code() {
        let with = |bron: String| {
            Fixture::new()
                .append("partners.toml", SUPPLIER)
                .append("bronnen/app.toml", &bron)
        };
        // Not a supplier; an owner twice; an unknown owner; an owner
        // without a bron mandate of the host.
        let got = codes(&with(hosted("niemand", "\"school\"")));
        assert!(got.contains(&"P090"), "{got:?}");
        let got = codes(&with(hosted("lev", "\"school\", \"school\"")));
        assert!(got.contains(&"P091"), "{got:?}");
        let got = codes(&with(hosted("lev", "")));
        assert!(got.contains(&"P091"), "{got:?}");
        let got = codes(&with(hosted("lev", "\"school\", \"onbekend\"")));
        assert!(got.contains(&"P023"), "{got:?}");
        let got = codes(&with(hosted("lev", "\"school\", \"wij\"")));
        assert!(got.contains(&"P092"), "{got:?}");
        // Both `owner` and `hosted_by`, or neither.
        let both = hosted("lev", "\"school\"")
            .replace("name = \"App\"", "name = \"App\"\nowner = \"school\"");
        assert!(codes(&with(both)).contains(&"P093"));
        let neither = hosted("lev", "\"school\"")
            .replace("hosted_by = \"lev\"\n", "")
            .replace("owners = [\"school\"]\n", "");
        assert!(codes(&with(neither)).contains(&"P093"));
    }

    /// P094: one owner gives in a rule while another only receives.
    #[test]
    fn a_rule_that_reads_for_one_owner_and_writes_for_another_is_refused() {
        let partners = format!(
            "{SUPPLIER}\n[[mandates]]\nsupplier = \"lev\"\norganisation = \"wij\"\ndirection = \"bron\"\noverleggen = [\"team\"]\nvalid_from = \"2026-01-01\"\n"
        );
        let rule = "\n[[rules]]\nid = \"t-90\"\npurpose = \"hulp\"\nfrom = \"school\"\nto = \"jeugd\"\nbron = \"app\"\nfields = [\"a\"]\nconsent = \"none\"\njustification = \"x\"\n";
        let f = Fixture::new()
            .append("partners.toml", &partners)
            .append("bronnen/app.toml", &hosted("lev", "\"school\", \"wij\""))
            .append("overleggen/team.toml", rule);
        assert!(codes(&f).contains(&"P094"), "{:?}", codes(&f));
    }
}
