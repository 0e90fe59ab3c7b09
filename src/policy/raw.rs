//! The policy files exactly as written (serde shapes). Everything here is
//! unvalidated; [`super::load`] turns it into the types in [`super::set`].
//! Unknown keys are rejected: a typo must never silently drop a restriction.

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnersFile {
    #[serde(default)]
    pub organisations: Vec<Spanned<RawOrganisation>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrganisation {
    pub id: String,
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub oin: Option<String>,
    #[serde(default)]
    pub brin: Option<String>,
    #[serde(default)]
    pub fingerprints: Vec<String>,
    /// Certificates of this organisation may use the privacy officer's
    /// (FG) read-only dashboard.
    #[serde(default)]
    pub privacy_officer: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BronFile {
    pub id: Spanned<String>,
    pub name: String,
    pub owner: Spanned<String>,
    pub base_url: Spanned<String>,
    pub subject: Spanned<String>,
    #[serde(default)]
    pub resources: Vec<Spanned<RawResource>>,
    #[serde(default)]
    pub fields: Vec<Spanned<RawField>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResource {
    pub id: String,
    pub path: String,
    pub methods: Vec<String>,
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    pub path: String,
    pub label: String,
    pub category: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlegFile {
    pub id: Spanned<String>,
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub retention_days: Spanned<i64>,
    #[serde(default)]
    pub purposes: Vec<Spanned<RawPurpose>>,
    #[serde(default)]
    pub roles: Vec<Spanned<RawRole>>,
    #[serde(default)]
    pub rules: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPurpose {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub id: String,
    pub name: String,
    pub grondslag: RawGrondslag,
    pub organisations: Vec<String>,
    #[serde(default)]
    pub special_categories: Vec<String>,
    /// Whether this role may register (aanmelden) pupils in the overleg.
    #[serde(default)]
    pub may_register_cases: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrondslag {
    pub law: String,
    pub article: String,
    pub basis: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: String,
    pub purpose: String,
    pub from: String,
    pub to: String,
    pub bron: String,
    pub fields: Vec<String>,
    pub consent: String,
    #[serde(default)]
    pub justification: String,
}
