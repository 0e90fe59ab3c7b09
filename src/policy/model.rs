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

/// The legal basis of a role, as the policy files name it: the AVG's
/// grounds for lawful processing (art. 6(1)), the exceptions to the ban on
/// special-category data (art. 9(2), and UAVG art. 30 for health data),
/// and art. 10 for criminal-law data. Written in the files as short codes
/// (`6.1.e`, `9.2.h`, `10`, `uavg.30.2.a`), see [`LegalBasis::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LegalBasis {
    /// AVG art. 6(1)(a): consent.
    Consent,
    /// AVG art. 6(1)(b): performance of a contract.
    Contract,
    /// AVG art. 6(1)(c): a legal obligation of the controller.
    LegalObligation,
    /// AVG art. 6(1)(d): vital interests.
    VitalInterests,
    /// AVG art. 6(1)(e): a task in the public interest or official authority.
    PublicTask,
    /// AVG art. 6(1)(f): legitimate interests.
    LegitimateInterests,
    /// AVG art. 9(2)(a): explicit consent.
    ExplicitConsent,
    /// AVG art. 9(2)(b): employment and social security law.
    Employment,
    /// AVG art. 9(2)(c): vital interests where consent cannot be given.
    VitalInterestsNoConsent,
    /// AVG art. 9(2)(d): a not-for-profit body, about its members.
    NotForProfit,
    /// AVG art. 9(2)(e): made public by the data subject.
    MadePublic,
    /// AVG art. 9(2)(f): legal claims, courts.
    LegalClaims,
    /// AVG art. 9(2)(g): substantial public interest, on the basis of law.
    SubstantialPublicInterest,
    /// AVG art. 9(2)(h): health or social care, under professional secrecy.
    HealthCare,
    /// AVG art. 9(2)(i): public health.
    PublicHealth,
    /// AVG art. 9(2)(j): archiving, research, statistics.
    Research,
    /// AVG art. 10: criminal-law data under official authority or as a law
    /// allows (UAVG art. 31-33).
    CriminalData,
    /// UAVG art. 30(2)(a) (under AVG art. 9(2)(g)): health data processed by
    /// schools for special guidance of pupils or special arrangements.
    UavgSchools,
    /// UAVG art. 30(3)(a) (under AVG art. 9(2)(h)): health data processed by
    /// care providers and social services for good treatment or care.
    UavgCareProviders,
}

impl LegalBasis {
    /// Every value, in the order of the law.
    pub const ALL: [LegalBasis; 19] = [
        Self::Consent,
        Self::Contract,
        Self::LegalObligation,
        Self::VitalInterests,
        Self::PublicTask,
        Self::LegitimateInterests,
        Self::ExplicitConsent,
        Self::Employment,
        Self::VitalInterestsNoConsent,
        Self::NotForProfit,
        Self::MadePublic,
        Self::LegalClaims,
        Self::SubstantialPublicInterest,
        Self::HealthCare,
        Self::PublicHealth,
        Self::Research,
        Self::CriminalData,
        Self::UavgSchools,
        Self::UavgCareProviders,
    ];

    /// The code the policy files use.
    pub fn code(self) -> &'static str {
        self.texts().0
    }

    /// The value a policy file's code names.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.code() == code)
    }

    /// The provision as a person cites it, e.g. `AVG art. 6(1)(e)`.
    pub fn citation(self) -> &'static str {
        self.texts().1
    }

    /// What the provision allows, in Dutch (Bijlage 3).
    pub fn label(self) -> &'static str {
        self.texts().2
    }

    /// Code, citation and Dutch label.
    fn texts(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Consent => ("6.1.a", "AVG art. 6(1)(a)", "toestemming"),
            Self::Contract => (
                "6.1.b",
                "AVG art. 6(1)(b)",
                "uitvoering van een overeenkomst",
            ),
            Self::LegalObligation => ("6.1.c", "AVG art. 6(1)(c)", "wettelijke verplichting"),
            Self::VitalInterests => ("6.1.d", "AVG art. 6(1)(d)", "vitaal belang"),
            Self::PublicTask => (
                "6.1.e",
                "AVG art. 6(1)(e)",
                "taak van algemeen belang of openbaar gezag",
            ),
            Self::LegitimateInterests => ("6.1.f", "AVG art. 6(1)(f)", "gerechtvaardigd belang"),
            Self::ExplicitConsent => ("9.2.a", "AVG art. 9(2)(a)", "uitdrukkelijke toestemming"),
            Self::Employment => (
                "9.2.b",
                "AVG art. 9(2)(b)",
                "arbeidsrecht en sociale zekerheid",
            ),
            Self::VitalInterestsNoConsent => (
                "9.2.c",
                "AVG art. 9(2)(c)",
                "vitaal belang, betrokkene kan geen toestemming geven",
            ),
            Self::NotForProfit => (
                "9.2.d",
                "AVG art. 9(2)(d)",
                "instantie zonder winstoogmerk, over haar leden",
            ),
            Self::MadePublic => (
                "9.2.e",
                "AVG art. 9(2)(e)",
                "door betrokkene openbaar gemaakt",
            ),
            Self::LegalClaims => (
                "9.2.f",
                "AVG art. 9(2)(f)",
                "rechtsvordering of rechtspraak",
            ),
            Self::SubstantialPublicInterest => (
                "9.2.g",
                "AVG art. 9(2)(g)",
                "zwaarwegend algemeen belang, bij wet geregeld",
            ),
            Self::HealthCare => (
                "9.2.h",
                "AVG art. 9(2)(h)",
                "gezondheidszorg of sociale diensten, onder beroepsgeheim",
            ),
            Self::PublicHealth => ("9.2.i", "AVG art. 9(2)(i)", "volksgezondheid"),
            Self::Research => (
                "9.2.j",
                "AVG art. 9(2)(j)",
                "archivering, wetenschappelijk of historisch onderzoek, statistiek",
            ),
            Self::CriminalData => (
                "10",
                "AVG art. 10",
                "strafrechtelijke gegevens, onder toezicht van de overheid of bij wet toegestaan",
            ),
            Self::UavgSchools => (
                "uavg.30.2.a",
                "UAVG art. 30(2)(a)",
                "gezondheidsgegevens door scholen, voor speciale begeleiding of bijzondere voorzieningen",
            ),
            Self::UavgCareProviders => (
                "uavg.30.3.a",
                "UAVG art. 30(3)(a)",
                "gezondheidsgegevens door hulpverleners en instellingen voor zorg of maatschappelijke dienstverlening",
            ),
        }
    }

    /// A ground for lawful processing (AVG art. 6(1)); every role needs one.
    pub fn is_lawful_ground(self) -> bool {
        matches!(
            self,
            Self::Consent
                | Self::Contract
                | Self::LegalObligation
                | Self::VitalInterests
                | Self::PublicTask
                | Self::LegitimateInterests
        )
    }

    /// An exception to the ban on special-category data (AVG art. 9(2), or
    /// UAVG art. 30 for health data).
    pub fn is_special_category_exception(self) -> bool {
        !self.is_lawful_ground() && self != Self::CriminalData
    }

    /// Whether the betrokkene may object to processing on this ground (AVG
    /// art. 21(1)): only against 6(1)(e) and 6(1)(f). Not against a legal
    /// obligation (6(1)(c)); consent is withdrawn rather than objected to.
    pub fn objectable(self) -> bool {
        matches!(self, Self::PublicTask | Self::LegitimateInterests)
    }
}

impl fmt::Display for LegalBasis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.citation())
    }
}

/// The legal task a role takes part under: the law and article, as text,
/// and its AVG basis as values.
#[derive(Debug, Clone)]
pub struct Grondslag {
    pub law: String,
    pub article: String,
    /// At least one art. 6(1) ground, then any exceptions; sorted, unique.
    pub basis: Vec<LegalBasis>,
}

impl Grondslag {
    /// Whether an objection (AVG art. 21) applies to what this role
    /// receives: its grounds include 6(1)(e) or (f) and no legal obligation
    /// (6(1)(c)). A role that also names 6(1)(c) processes what a law
    /// obliges it to, which an objection cannot stop.
    pub fn objectable(&self) -> bool {
        self.basis.iter().any(|b| b.objectable())
            && !self.basis.contains(&LegalBasis::LegalObligation)
    }

    /// Whether `basis` is among the role's grounds and exceptions.
    pub fn names(&self, basis: LegalBasis) -> bool {
        self.basis.contains(&basis)
    }

    /// The basis as a person cites it: `AVG art. 6(1)(e); art. 9(2)(h)`
    /// (the law named once per run of provisions of the same law).
    pub fn basis_text(&self) -> String {
        let mut out = String::new();
        let mut law = "";
        for b in &self.basis {
            let (this_law, provision) = b.citation().split_once(' ').unwrap_or(("", b.citation()));
            if !out.is_empty() {
                out.push_str("; ");
            }
            if this_law != law {
                out.push_str(this_law);
                out.push(' ');
                law = this_law;
            }
            out.push_str(provision);
        }
        out
    }
}

impl fmt::Display for Grondslag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}; {})", self.law, self.article, self.basis_text())
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
    /// May record objections (bezwaren) and decide on them.
    pub may_record_objections: bool,
    /// May record and lift restrictions (beperkingen).
    pub may_record_restrictions: bool,
    pub line: usize,
}

#[derive(Debug, Clone)]
pub struct Purpose {
    pub id: String,
    pub text: String,
    /// Set for an emergency purpose (spoed): its rules are emergency rules,
    /// used only with a reason code and a justification (see
    /// [`EmergencyTerms`]).
    pub emergency: Option<EmergencyTerms>,
}

/// Why a professional invokes the emergency path (spoed), from a fixed
/// list: the request names one in `X-Spoed-Reden`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EmergencyReason {
    /// Meldcode huiselijk geweld en kindermishandeling (Wmo 2015 art. 5.2.6).
    Meldcode,
    /// A report to or consultation of Veilig Thuis (Jeugdwet art. 7.1.4.1,
    /// Wmo 2015 art. 4.1.1).
    VeiligThuis,
    /// Acute danger for the pupil or others.
    AcuutGevaar,
}

impl EmergencyReason {
    pub const ALL: [EmergencyReason; 3] = [Self::Meldcode, Self::VeiligThuis, Self::AcuutGevaar];

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == s)
    }

    /// The code on the wire and in the policy files.
    pub fn code(self) -> &'static str {
        match self {
            Self::Meldcode => "meldcode",
            Self::VeiligThuis => "veilig-thuis",
            Self::AcuutGevaar => "acuut-gevaar",
        }
    }

    /// What it means, in Dutch, for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::Meldcode => "Meldcode huiselijk geweld en kindermishandeling",
            Self::VeiligThuis => "melding aan of advies van Veilig Thuis",
            Self::AcuutGevaar => "acuut gevaar voor de leerling of anderen",
        }
    }

    /// The codes, comma-separated, for messages.
    pub fn all_codes() -> String {
        Self::ALL.map(Self::code).join(", ")
    }
}

/// The terms of an emergency purpose: which reasons may invoke it, and
/// whether a disclosure needs the pupil's registration in the overleg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyTerms {
    /// Sorted, unique, not empty.
    pub reasons: Vec<EmergencyReason>,
    /// `false`: the pupil need not be registered (aangemeld) in the overleg.
    pub case_binding: bool,
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
    /// An emergency rule (its purpose is an emergency purpose).
    pub emergency: bool,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_and_cites_its_provision() {
        for b in LegalBasis::ALL {
            assert_eq!(LegalBasis::parse(b.code()), Some(b), "{b}");
            assert!(!b.label().is_empty());
        }
        assert_eq!(LegalBasis::parse("6.1.e"), Some(LegalBasis::PublicTask));
        assert_eq!(LegalBasis::parse("9.2.h"), Some(LegalBasis::HealthCare));
        assert_eq!(LegalBasis::parse("10"), Some(LegalBasis::CriminalData));
        for unknown in [
            "6.1.g",
            "6(1)(e)",
            "AVG art. 6(1)(e)",
            "9.2.k",
            "",
            " 6.1.e",
        ] {
            assert_eq!(LegalBasis::parse(unknown), None, "{unknown}");
        }
        assert_eq!(LegalBasis::LegalObligation.to_string(), "AVG art. 6(1)(c)");
        assert_eq!(LegalBasis::ExplicitConsent.to_string(), "AVG art. 9(2)(a)");
        assert_eq!(LegalBasis::CriminalData.to_string(), "AVG art. 10");
        assert_eq!(LegalBasis::UavgSchools.to_string(), "UAVG art. 30(2)(a)");
    }

    #[test]
    fn only_public_task_and_legitimate_interests_are_objectable() {
        let objectable: Vec<&str> = LegalBasis::ALL
            .into_iter()
            .filter(|b| b.objectable())
            .map(LegalBasis::code)
            .collect();
        assert_eq!(objectable, ["6.1.e", "6.1.f"]);
        let g = |basis: &[LegalBasis]| Grondslag {
            law: "Wet".into(),
            article: "art. 1".into(),
            basis: basis.to_vec(),
        };
        use LegalBasis::{HealthCare, LegalObligation, LegitimateInterests, PublicTask};
        assert!(g(&[PublicTask]).objectable());
        assert!(g(&[PublicTask, HealthCare]).objectable());
        assert!(g(&[LegitimateInterests]).objectable());
        assert!(!g(&[LegalObligation]).objectable());
        // What a law obliges, an objection cannot stop.
        assert!(!g(&[LegalObligation, PublicTask]).objectable());
        assert!(!g(&[LegalBasis::Consent]).objectable());
    }

    #[test]
    fn the_basis_reads_as_cited_with_each_law_named_once() {
        let g = |basis: &[LegalBasis]| {
            Grondslag {
                law: "Wpg".into(),
                article: "art. 5".into(),
                basis: basis.to_vec(),
            }
            .to_string()
        };
        use LegalBasis::{
            CriminalData, HealthCare, LegalObligation, PublicTask, UavgCareProviders,
        };
        assert_eq!(g(&[PublicTask]), "Wpg (art. 5; AVG art. 6(1)(e))");
        assert_eq!(
            g(&[PublicTask, HealthCare]),
            "Wpg (art. 5; AVG art. 6(1)(e); art. 9(2)(h))"
        );
        assert_eq!(
            g(&[LegalObligation, PublicTask, CriminalData]),
            "Wpg (art. 5; AVG art. 6(1)(c); art. 6(1)(e); art. 10)"
        );
        assert_eq!(
            g(&[PublicTask, UavgCareProviders]),
            "Wpg (art. 5; AVG art. 6(1)(e); UAVG art. 30(3)(a))"
        );
    }
}
