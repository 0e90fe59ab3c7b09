//! A minimal valid policy set for the unit tests of the policy modules,
//! written as TOML into a temporary directory and loaded through the real
//! loader. Tests change it with [`Fixture::edit`] and [`Fixture::append`].
//!
//! The set: one bron `las` (owned by `school`, resources `dossier`,
//! `verzuim`, `zorg` for reading and `notities` for writing) and one
//! casusoverleg `team` with purposes `hulp` and `handhaving`, roles `school`
//! (may register cases), `jeugd` (WIJ), `jgz` (GGD, health), and two hats for
//! the gemeente: `leerplicht` (BSN) and `rmc`. Organisation `buiten` holds no
//! role. It passes every lint rule.

use std::collections::BTreeMap;
use std::path::Path;

use super::decision::Snapshot;
use super::load::{LoadError, load_dir};
use super::model::PolicySet;

pub(crate) const PARTNERS: &str = r#"
[[organisations]]
id = "school"
name = "School"
kind = "school"
oin = "00000099000000000001"

[[organisations]]
id = "wij"
name = "WIJ"
kind = "wij"
oin = "00000099000000000002"

[[organisations]]
id = "ggd"
name = "GGD"
kind = "ggd"
oin = "00000099000000000003"

[[organisations]]
id = "gemeente"
name = "Gemeente"
kind = "gemeente"
oin = "00000099000000000004"

[[organisations]]
id = "buiten"
name = "Buiten"
kind = "other"
oin = "00000099000000000005"
"#;

pub(crate) const LAS: &str = r#"
id = "las"
name = "Leerlingadministratie"
owner = "school"
base_url = "https://las.example/api"
subject = "leerling"

[[resources]]
id = "dossier"
path = "/leerlingen/{leerling}"
methods = ["GET"]

[[resources]]
id = "verzuim"
path = "/leerlingen/{leerling}/verzuim"
methods = ["GET"]
fields = ["leerling.naam", "verzuim.*"]

[[resources]]
id = "zorg"
path = "/leerlingen/{leerling}/zorg"
methods = ["GET"]
fields = ["zorg.diagnose"]

[[resources]]
id = "notities"
path = "/leerlingen/{leerling}/notities"
methods = ["POST"]
fields = ["notities.tekst"]

[[fields]]
path = "leerling.naam"
label = "Naam"
category = "normal"

[[fields]]
path = "leerling.bsn"
label = "BSN"
category = "bsn"

[[fields]]
path = "verzuim.uren"
label = "Uren verzuim"
category = "normal"

[[fields]]
path = "verzuim.toelichting"
label = "Toelichting"
category = "normal"

[[fields]]
path = "zorg.diagnose"
label = "Diagnose"
category = "health"

[[fields]]
path = "notities.tekst"
label = "Notitie"
category = "normal"
"#;

pub(crate) const TEAM: &str = r#"
id = "team"
name = "Team"
description = "Testoverleg"
retention_days = 365

[[purposes]]
id = "hulp"
text = "Hulp bieden"

[[purposes]]
id = "handhaving"
text = "Leerplicht handhaven"

[[roles]]
id = "school"
name = "School"
grondslag = { law = "WVO", article = "art. 8", basis = ["6.1.e"] }
organisations = ["school"]
may_register_cases = true

[[roles]]
id = "jeugd"
name = "Jeugdhulp"
grondslag = { law = "Jeugdwet", article = "art. 2.1", basis = ["6.1.e"] }
organisations = ["wij"]

[[roles]]
id = "jgz"
name = "Jeugdarts"
grondslag = { law = "Wpg", article = "art. 5", basis = ["6.1.e", "9.2.h"] }
organisations = ["ggd"]
special_categories = ["health"]

[[roles]]
id = "leerplicht"
name = "Leerplicht"
grondslag = { law = "Leerplichtwet 1969", article = "art. 16", basis = ["6.1.c"] }
organisations = ["gemeente"]
special_categories = ["bsn"]

[[roles]]
id = "rmc"
name = "RMC"
grondslag = { law = "RMC-wet", article = "art. 8", basis = ["6.1.e"] }
organisations = ["gemeente"]

[[rules]]
id = "t-01"
purpose = "hulp"
from = "school"
to = "jeugd"
bron = "las"
fields = ["leerling.naam", "verzuim.uren"]
consent = "none"
justification = "Naam en verzuim voor de hulp."

[[rules]]
id = "t-02"
purpose = "hulp"
from = "school"
to = "jeugd"
bron = "las"
fields = ["verzuim.toelichting"]
consent = "parents"
justification = "De toelichting alleen met toestemming."

[[rules]]
id = "t-03"
purpose = "hulp"
from = "school"
to = "jgz"
bron = "las"
fields = ["zorg.diagnose"]
consent = "parents-and-youth"
justification = "De jeugdarts ziet de diagnose met toestemming."

[[rules]]
id = "t-04"
purpose = "handhaving"
from = "school"
to = "leerplicht"
bron = "las"
fields = ["leerling.naam", "leerling.bsn", "verzuim.*"]
consent = "none"
justification = "Het hele verzuim voor de handhaving."

[[rules]]
id = "t-05"
purpose = "hulp"
from = "jeugd"
to = "school"
bron = "las"
fields = ["notities.tekst"]
consent = "none"
justification = "WIJ legt een notitie vast bij school."

[[rules]]
id = "t-06"
purpose = "handhaving"
from = "school"
to = "rmc"
bron = "las"
fields = ["leerling.naam"]
consent = "none"
justification = "De naam voor het RMC."
"#;

/// A policy directory as file name -> contents.
#[derive(Debug, Clone)]
pub(crate) struct Fixture {
    files: BTreeMap<String, String>,
}

impl Fixture {
    /// The base set described in the module documentation.
    pub(crate) fn new() -> Self {
        let files = [
            ("partners.toml", PARTNERS),
            ("bronnen/las.toml", LAS),
            ("overleggen/team.toml", TEAM),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self { files }
    }

    /// Replaces the only occurrence of `from` in `file` by `to`.
    pub(crate) fn edit(mut self, file: &str, from: &str, to: &str) -> Self {
        let text = self.files.get_mut(file).unwrap();
        assert_eq!(text.matches(from).count(), 1, "{file}: `{from}`");
        *text = text.replace(from, to);
        self
    }

    /// Appends `more` to `file` (creating it when absent).
    pub(crate) fn append(mut self, file: &str, more: &str) -> Self {
        self.files
            .entry(file.to_owned())
            .or_default()
            .push_str(more);
        self
    }

    /// Writes the files into a new temporary directory.
    pub(crate) fn write(&self) -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        write_into(&self.files, tmp.path());
        tmp
    }

    pub(crate) fn load(&self) -> Result<PolicySet, LoadError> {
        let tmp = self.write();
        load_dir(tmp.path())
    }

    pub(crate) fn set(&self) -> PolicySet {
        self.load().unwrap_or_else(|e| panic!("{e}"))
    }

    pub(crate) async fn snapshot(&self) -> Snapshot {
        Snapshot::build(self.set(), None).await.unwrap()
    }
}

fn write_into(files: &BTreeMap<String, String>, dir: &Path) {
    for (name, text) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
    }
}

#[test]
fn the_fixture_loads() {
    let set = Fixture::new().set();
    assert_eq!(set.overleggen["team"].rules.len(), 6);
    assert_eq!(set.bronnen["las"].catalogue.len(), 6);
    let edited = Fixture::new()
        .edit(
            "overleggen/team.toml",
            "retention_days = 365",
            "retention_days = 30",
        )
        .set();
    assert_eq!(edited.overleggen["team"].retention_days, 30);
}
