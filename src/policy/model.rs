//! The validated policy set: the only shape the rest of the gateway sees.
//! Every value here has passed [`super::load`]; invariants are documented on
//! the types and relied upon by the decision table.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::fieldpath::{FieldGlob, FieldPath};
use super::template::PathTemplate;

/// Category of a catalogue field; drives lint rules and inzage labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    Normal,
    /// Special category personal data (AVG art. 9), e.g. health.
    Health,
    /// Criminal-law data (AVG art. 10).
    Criminal,
    /// Citizen service number: only where a law allows it.
    Bsn,
}

impl Category {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "normal" => Self::Normal,
            "health" => Self::Health,
            "criminal" => Self::Criminal,
            "bsn" => Self::Bsn,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Health => "health",
            Self::Criminal => "criminal",
            Self::Bsn => "bsn",
        }
    }
}

/// Consent required by a rule. Ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Consent {
    None,
    Parents,
    Youth,
    ParentsAndYouth,
}

impl Consent {
    pub const ALL: [Consent; 4] = [
        Consent::None,
        Consent::Parents,
        Consent::Youth,
        Consent::ParentsAndYouth,
    ];
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Self::None,
            "parents" => Self::Parents,
            "youth" => Self::Youth,
            "parents-and-youth" => Self::ParentsAndYouth,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Parents => "parents",
            Self::Youth => "youth",
            Self::ParentsAndYouth => "parents-and-youth",
        }
    }
}

/// Direction of a flow relative to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Act {
    /// Caller receives data from the bron (GET): caller holds the rule's `to` role.
    Read,
    /// Caller sends data to the bron (POST/PUT): caller holds the rule's `from` role.
    Write,
}

impl Act {
    pub fn as_str(self) -> &'static str {
        match self {
            Act::Read => "read",
            Act::Write => "write",
        }
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Organisation {
    pub id: String,
    pub name: String,
    pub kind: String,
    /// 20-character OIN, upper-case; matched against `subject.serialNumber`.
    pub oin: Option<String>,
    pub brin: Option<String>,
    /// SHA-256 certificate fingerprints; when non-empty the certificate must match one.
    pub fingerprints: Vec<[u8; 32]>,
    pub privacy_officer: bool,
}

/// One catalogue entry of a bron.
#[derive(Debug, Clone)]
pub struct CatalogueField {
    pub path: FieldPath,
    pub label: String,
    pub category: Category,
}

#[derive(Debug, Clone)]
pub struct Resource {
    pub id: String,
    pub template: PathTemplate,
    pub read: bool,
    pub write: bool,
    /// Indices into the bron's catalogue of the fields this resource serves.
    pub fields: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Bron {
    pub id: String,
    pub name: String,
    /// The organisations whose data the bron holds (controllers): one for
    /// a bron of its own, several for a bron a supplier hosts.
    pub owners: Vec<String>,
    /// The software supplier that hosts the bron for its `owners`, each of
    /// which gave it a mandate in direction `bron`; the owner is chosen per
    /// request.
    pub hosted_by: Option<String>,
    /// `scheme://authority[/base path]` without a trailing slash; https, or
    /// http only for loopback hosts.
    pub base_url: String,
    /// The template variable that names the betrokkene.
    pub pupil_variable: String,
    pub resources: Vec<Resource>,
    pub catalogue: Vec<CatalogueField>,
    /// Source file, for messages.
    pub file: String,
}

impl Bron {
    pub fn field_index(&self, path: &str) -> Option<usize> {
        self.catalogue.iter().position(|f| f.path.as_str() == path)
    }

    /// The owners, comma-separated, for messages and reports.
    pub fn owner_names(&self) -> String {
        self.owners.join(", ")
    }
}

#[derive(Debug, Clone)]
pub struct Grondslag {
    pub law: String,
    pub article: String,
    pub basis: String,
}

impl fmt::Display for Grondslag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}; {})", self.law, self.article, self.basis)
    }
}

#[derive(Debug, Clone)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub grondslag: Grondslag,
    pub organisations: Vec<String>,
    pub special_categories: Vec<Category>,
    pub may_register_cases: bool,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Purpose {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub purpose: String,
    pub from: String,
    pub to: String,
    pub bron: String,
    pub patterns: Vec<FieldGlob>,
    /// Catalogue indices the patterns expand to (sorted, unique).
    pub fields: Vec<usize>,
    pub consent: Consent,
    pub justification: String,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Overleg {
    pub id: String,
    pub name: String,
    pub description: String,
    pub retention_days: u32,
    pub purposes: Vec<Purpose>,
    pub roles: Vec<Role>,
    pub rules: Vec<Rule>,
    pub file: String,
    /// SHA-256 of this overleg's file contents (hex), for incremental compiles.
    pub content_hash: String,
}

impl Overleg {
    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }
    pub fn purpose(&self, id: &str) -> Option<&Purpose> {
        self.purposes.iter().find(|p| p.id == id)
    }
    /// Roles `org` holds in this overleg, in file order.
    pub fn roles_of<'a, 'o>(
        &'a self,
        org: &'o str,
    ) -> impl Iterator<Item = &'a Role> + use<'a, 'o> {
        self.roles
            .iter()
            .filter(move |r| r.organisations.iter().any(|o| o == org))
    }
}

/// A complete, validated policy set. Immutable once built.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// SHA-256 over every file (name and contents), hex: the policy version.
    pub version: String,
    pub organisations: BTreeMap<String, Organisation>,
    pub bronnen: BTreeMap<String, Arc<Bron>>,
    pub overleggen: BTreeMap<String, Overleg>,
    /// Hash of partners + all bronnen; overleg compiles depend on it.
    pub shared_hash: String,
    /// Software suppliers and the mandates organisations gave them.
    pub mandates: super::mandate::Mandates,
}

impl PolicySet {
    /// Everyone a certificate can be issued to: each organisation and each
    /// software supplier, by id, with its OIN (development PKI, demo).
    pub fn certificate_holders(&self) -> Vec<(String, Option<String>)> {
        let orgs = self
            .organisations
            .values()
            .map(|o| (o.id.clone(), o.oin.clone()));
        let suppliers = self
            .mandates
            .suppliers
            .values()
            .map(|s| (s.id.clone(), Some(s.oin.clone())));
        orgs.chain(suppliers).collect()
    }
}
