//! Reading a policy directory into a validated [`PolicySet`], reporting every
//! problem at once with `file:line`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::digest;
use serde::de::DeserializeOwned;
use toml::Spanned;

use super::fieldpath::{FieldGlob, FieldPath};
use super::mandate::Mandates;
use super::model::{
    Bron, CatalogueField, Category, Consent, EmergencyReason, EmergencyTerms, Grondslag,
    LegalBasis, Organisation, Overleg, PolicySet, Purpose, Resource, Role, Rule,
};
use super::raw::{
    self, BronFile, Dropped, OverlegFile, PartnersFile, RawField, RawOrganisation, RawPurpose,
    RawResource, RawRole, RawRule, Read, Shape,
};
use super::template::PathTemplate;

mod hosting;
mod partners;

/// One problem found in a policy file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub line: usize,
    /// Stable code, e.g. `P012`; documented in the README.
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} {}",
            self.file, self.line, self.code, self.message
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read policy directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} problem(s) in the policy set:\n{}", .0.len(), ProblemList(.0))]
    Invalid(Vec<Problem>),
}

struct ProblemList<'a>(&'a [Problem]);
impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in self.0 {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// Maximum size of one policy file; larger files are refused rather than parsed.
const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

const ORG_KINDS: [&str; 7] = ["school", "swv", "wij", "ggd", "gemeente", "opdc", "other"];

fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// A source file, held while validating so spans become line numbers.
struct SourceText {
    display: String,
    text: String,
}

impl SourceText {
    fn line_of(&self, offset: usize) -> usize {
        line_at(&self.text, offset)
    }
}

struct Problems(Vec<Problem>);

impl Problems {
    fn at(&mut self, src: &SourceText, offset: usize, code: &'static str, message: String) {
        self.0.push(Problem {
            file: src.display.clone(),
            line: src.line_of(offset),
            code,
            message,
        });
    }
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(&(p.len() as u64).to_be_bytes());
        ctx.update(p);
    }
    crate::hex::encode(ctx.finish().as_ref())
}

/// Names whose definition could not be read or has problems: those are
/// reported where the name is defined, so references to it are not reported
/// again as undefined.
#[derive(Debug, Default)]
struct Unreadable {
    /// `partners.toml` could not be read at all.
    all_organisations: bool,
    organisations: BTreeSet<String>,
    bronnen: BTreeSet<String>,
}

/// What is defined, for the checks of references to it.
struct Defined<'a> {
    organisations: &'a BTreeMap<String, Organisation>,
    bronnen: &'a BTreeMap<String, Arc<Bron>>,
    unreadable: &'a Unreadable,
}

impl Defined<'_> {
    /// Whether a reference to organisation `id` is not to be reported.
    fn organisation(&self, id: &str) -> bool {
        self.organisations.contains_key(id)
            || self.unreadable.all_organisations
            || self.unreadable.organisations.contains(id)
    }
}

/// Loading one policy directory: the problems so far, the files' texts for
/// the version hash, and what could not be read.
struct Loader<'d> {
    dir: &'d Path,
    problems: Problems,
    hash_parts: Vec<(String, String)>,
    unreadable: Unreadable,
    /// Overleggen named by mandates, checked once the overleggen are read.
    mandate_refs: Vec<partners::OverlegRef>,
}

impl Loader<'_> {
    /// Reads one file; `None` (with the problem recorded) when it is too
    /// large or not UTF-8.
    fn source(&mut self, path: &Path) -> Result<Option<SourceText>, LoadError> {
        let display = display(self.dir, path);
        let io = |source| LoadError::Io {
            path: path.to_owned(),
            source,
        };
        let problem = |line, message| Problem {
            file: display.clone(),
            line,
            code: "P001",
            message,
        };
        if std::fs::metadata(path).map_err(io)?.len() > MAX_FILE_BYTES {
            let message = format!("file is larger than {MAX_FILE_BYTES} bytes");
            self.problems.0.push(problem(1, message));
            return Ok(None);
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let line = 1 + bytecount_newlines(&e.as_bytes()[..valid]);
                self.problems
                    .0
                    .push(problem(line, "file is not UTF-8".into()));
                return Ok(None);
            }
        };
        self.hash_parts
            .push((relative(self.dir, path), text.clone()));
        Ok(Some(SourceText { display, text }))
    }

    /// Reads a file into a `T` of `shape`, with every problem recorded.
    fn read<T: DeserializeOwned>(&mut self, src: &SourceText, shape: &Shape) -> Read<T> {
        let read = raw::read::<T>(&src.text, shape);
        for p in &read.problems {
            self.problems.at(src, p.offset, "P002", p.message.clone());
        }
        read
    }

    /// The organisations, and the suppliers with their mandates, of
    /// `partners.toml`.
    fn partners(&mut self) -> Result<(BTreeMap<String, Organisation>, Mandates), LoadError> {
        let path = self.dir.join("partners.toml");
        let Some(src) = self.source(&path)? else {
            self.unreadable.all_organisations = true;
            return Ok(Default::default());
        };
        let read = self.read::<PartnersFile>(&src, &raw::PARTNERS);
        let ids = read.dropped.into_iter().filter_map(|d| d.id);
        self.unreadable.organisations.extend(ids);
        let Some(mut f) = read.value else {
            self.unreadable.all_organisations = true;
            return Ok(Default::default());
        };
        let raw_suppliers = std::mem::take(&mut f.suppliers);
        let raw_mandates = std::mem::take(&mut f.mandates);
        let organisations = validate_partners(&src, f, &mut self.problems);
        let suppliers =
            partners::suppliers(&src, raw_suppliers, &organisations, &mut self.problems);
        let (mandates, refs) = partners::mandates(
            &src,
            raw_mandates,
            suppliers,
            &organisations,
            &mut self.problems,
        );
        self.mandate_refs = refs;
        Ok((organisations, mandates))
    }

    /// Every casusoverleg a mandate names has a file in `overleggen/`.
    fn check_mandate_refs(&mut self) -> Result<(), LoadError> {
        let known: BTreeSet<String> = toml_files(&self.dir.join("overleggen"))?
            .iter()
            .map(|p| stem(p))
            .collect();
        for r in std::mem::take(&mut self.mandate_refs) {
            if !known.contains(&r.overleg) {
                self.problems.0.push(Problem {
                    file: r.file,
                    line: r.line,
                    code: "P086",
                    message: format!("mandate: casusoverleg `{}` does not exist", r.overleg),
                });
            }
        }
        Ok(())
    }

    fn bronnen(
        &mut self,
        orgs: &BTreeMap<String, Organisation>,
        mandates: &Mandates,
    ) -> Result<BTreeMap<String, Arc<Bron>>, LoadError> {
        let mut bronnen = BTreeMap::new();
        for path in toml_files(&self.dir.join("bronnen"))? {
            // Rules name a bron by its id, which is its file name.
            self.unreadable.bronnen.insert(stem(&path));
            let Some(src) = self.source(&path)? else {
                continue;
            };
            let Some(raw) = self.read::<BronFile>(&src, &raw::BRON).value else {
                continue;
            };
            self.unreadable.bronnen.insert(raw.id.get_ref().clone());
            let defined = Defined {
                organisations: orgs,
                bronnen: &BTreeMap::new(),
                unreadable: &self.unreadable,
            };
            let Some(b) = validate_bron(&src, &path, raw, &defined, mandates, &mut self.problems)
            else {
                continue;
            };
            if bronnen.contains_key(&b.id) {
                let message = format!("bron `{}` is defined twice", b.id);
                self.problems.at(&src, 0, "P020", message);
            }
            self.unreadable.bronnen.remove(&b.id);
            self.unreadable.bronnen.remove(&stem(&path));
            bronnen.insert(b.id.clone(), Arc::new(b));
        }
        Ok(bronnen)
    }

    fn overleggen(
        &mut self,
        orgs: &BTreeMap<String, Organisation>,
        bronnen: &BTreeMap<String, Arc<Bron>>,
    ) -> Result<BTreeMap<String, Overleg>, LoadError> {
        let mut overleggen = BTreeMap::new();
        let files = toml_files(&self.dir.join("overleggen"))?;
        if files.is_empty() {
            self.problems.0.push(Problem {
                file: display(self.dir, &self.dir.join("overleggen")),
                line: 1,
                code: "P030",
                message: "no casusoverleg files (overleggen/*.toml)".into(),
            });
        }
        for path in files {
            let Some(src) = self.source(&path)? else {
                continue;
            };
            let read = self.read::<OverlegFile>(&src, &raw::OVERLEG);
            let Some(raw) = read.value else {
                continue;
            };
            let defined = Defined {
                organisations: orgs,
                bronnen,
                unreadable: &self.unreadable,
            };
            let file = OverlegInput {
                src: &src,
                path: &path,
                dropped: &read.dropped,
            };
            if let Some(o) = validate_overleg(&file, raw, &defined, &mut self.problems) {
                overleggen.insert(o.id.clone(), o);
            }
        }
        Ok(overleggen)
    }

    fn hash(&self) -> String {
        sha256_hex(
            &self
                .hash_parts
                .iter()
                .flat_map(|(n, t)| [n.as_bytes(), t.as_bytes()])
                .collect::<Vec<_>>(),
        )
    }
}

fn toml_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(LoadError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|source| LoadError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "toml") {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// Loads and validates the policy set in `dir` (`partners.toml`,
/// `bronnen/*.toml`, `overleggen/*.toml`). Returns every problem found, never
/// a partially valid set: a file that cannot be read completely (an unknown
/// key, a value of the wrong type) is reported and the rest of it is still
/// validated.
pub fn load_dir(dir: &Path) -> Result<PolicySet, LoadError> {
    let mut loader = Loader {
        dir,
        problems: Problems(Vec::new()),
        hash_parts: Vec::new(),
        unreadable: Unreadable::default(),
        mandate_refs: Vec::new(),
    };
    let (organisations, mandates) = loader.partners()?;
    let bronnen = loader.bronnen(&organisations, &mandates)?;
    let shared_hash = loader.hash();
    let overleggen = loader.overleggen(&organisations, &bronnen)?;
    loader.check_mandate_refs()?;
    if !loader.problems.0.is_empty() {
        let mut p = loader.problems.0;
        p.sort();
        p.dedup();
        return Err(LoadError::Invalid(p));
    }
    Ok(PolicySet {
        version: loader.hash(),
        organisations,
        bronnen,
        overleggen,
        shared_hash,
        mandates,
    })
}

/// Path inside the policy directory, for the version hash: the same files
/// have the same version wherever the directory lives or however it is named.
fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn display(dir: &Path, path: &Path) -> String {
    let base = dir.file_name().map(PathBuf::from).unwrap_or_default();
    match path.strip_prefix(dir) {
        Ok(rel) => base.join(rel).display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let hexs = s.strip_prefix("sha256:")?;
    let hexs: String = hexs.chars().filter(|c| *c != ':').collect();
    if hexs.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in hexs.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn validate_partners(
    src: &SourceText,
    f: PartnersFile,
    problems: &mut Problems,
) -> BTreeMap<String, Organisation> {
    let mut out = BTreeMap::new();
    let mut oins: BTreeMap<String, String> = BTreeMap::new();
    for o in f.organisations {
        let at = o.span().start;
        let org = validate_organisation(src, at, o.into_inner(), &mut oins, problems);
        if out.contains_key(&org.id) {
            problems.at(
                src,
                at,
                "P017",
                format!("organisation `{}` is defined twice", org.id),
            );
        }
        out.insert(org.id.clone(), org);
    }
    out
}

fn validate_organisation(
    src: &SourceText,
    at: usize,
    o: RawOrganisation,
    oins: &mut BTreeMap<String, String>,
    problems: &mut Problems,
) -> Organisation {
    if !is_ident(&o.id) {
        problems.at(
            src,
            at,
            "P010",
            format!("organisation id `{}` is not a valid identifier", o.id),
        );
    }
    if o.name.trim().is_empty() {
        problems.at(
            src,
            at,
            "P011",
            format!("organisation `{}` has no name", o.id),
        );
    }
    if !ORG_KINDS.contains(&o.kind.as_str()) {
        problems.at(
            src,
            at,
            "P012",
            format!(
                "organisation `{}`: kind `{}` is not one of {}",
                o.id,
                o.kind,
                ORG_KINDS.join(", ")
            ),
        );
    }
    let oin = organisation_oin(src, at, &o, oins, problems);
    let mut fingerprints = Vec::new();
    for fp in &o.fingerprints {
        match parse_fingerprint(fp) {
            Some(b) => fingerprints.push(b),
            None => problems.at(
                src,
                at,
                "P015",
                format!(
                    "organisation `{}`: fingerprint `{fp}` must be sha256:<64 hex digits>",
                    o.id
                ),
            ),
        }
    }
    if oin.is_none() && fingerprints.is_empty() {
        problems.at(src, at, "P016", format!(
            "organisation `{}` has neither an OIN nor a fingerprint pin: no certificate could ever map to it", o.id));
    }
    Organisation {
        id: o.id,
        name: o.name,
        kind: o.kind,
        oin,
        brin: o.brin,
        fingerprints,
        privacy_officer: o.privacy_officer,
    }
}

/// The organisation's OIN, normalised, checked and unique.
fn organisation_oin(
    src: &SourceText,
    at: usize,
    o: &RawOrganisation,
    oins: &mut BTreeMap<String, String>,
    problems: &mut Problems,
) -> Option<String> {
    let oin = o.oin.as_ref().map(|s| s.trim().to_ascii_uppercase())?;
    if let Err(e) = super::oin::Oin::parse(&oin) {
        problems.at(
            src,
            at,
            "P013",
            format!("organisation `{}`: OIN `{oin}`: {e}", o.id),
        );
    }
    if let Some(other) = oins.insert(oin.clone(), o.id.clone()) {
        problems.at(
            src,
            at,
            "P014",
            format!("organisation `{}` has the same OIN as `{other}`", o.id),
        );
    }
    Some(oin)
}

/// Validates a base URL: https anywhere, plain http only on loopback.
pub(crate) fn validate_base_url(s: &str) -> Result<String, String> {
    let uri: http::Uri = s.parse().map_err(|_| format!("`{s}` is not a valid URL"))?;
    let host = uri.host().ok_or_else(|| format!("`{s}` has no host"))?;
    if uri.query().is_some() {
        return Err(format!("`{s}`: a base URL may not have a query"));
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") => {
            let h = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = h == "localhost"
                || h.parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(format!(
                    "`{s}`: plain http is only allowed to a loopback host; use https"
                ));
            }
        }
        _ => return Err(format!("`{s}`: scheme must be https (or http on loopback)")),
    }
    Ok(s.trim_end_matches('/').to_owned())
}

fn validate_bron(
    src: &SourceText,
    path: &Path,
    raw: BronFile,
    defined: &Defined<'_>,
    mandates: &Mandates,
    problems: &mut Problems,
) -> Option<Bron> {
    let before = problems.0.len();
    let id = raw.id.get_ref().clone();
    if !is_ident(&id) {
        problems.at(
            src,
            raw.id.span().start,
            "P021",
            format!("bron id `{id}` is not a valid identifier"),
        );
    }
    if id != stem(path) {
        problems.at(
            src,
            raw.id.span().start,
            "P022",
            format!("bron id `{id}` must equal the file name `{}`", stem(path)),
        );
    }
    let ownership = hosting::ownership(
        src,
        hosting::RawOwnership {
            owner: raw.owner,
            hosted_by: raw.hosted_by,
            owners: raw.owners,
        },
        defined,
        mandates,
        problems,
    );
    let base_url = match validate_base_url(raw.base_url.get_ref()) {
        Ok(u) => u,
        Err(m) => {
            problems.at(src, raw.base_url.span().start, "P024", m);
            String::new()
        }
    };
    let pupil_variable = raw.subject.get_ref().clone();
    let catalogue = validate_catalogue(src, &raw.fields, problems);
    if catalogue.is_empty() {
        problems.at(src, 0, "P031", format!("bron `{id}` declares no fields"));
    }
    let mut resources: Vec<Resource> = Vec::new();
    for r in &raw.resources {
        if let Some(res) =
            validate_resource(src, r, &pupil_variable, &catalogue, &resources, problems)
        {
            resources.push(res);
        }
    }
    if resources.is_empty() {
        problems.at(src, 0, "P038", format!("bron `{id}` declares no resources"));
    }
    let ownership = ownership?;
    if problems.0.len() != before {
        return None;
    }
    Some(Bron {
        id,
        name: raw.name,
        owners: ownership.owners,
        hosted_by: ownership.hosted_by,
        base_url,
        pupil_variable,
        resources,
        catalogue,
        file: src.display.clone(),
    })
}

/// The bron's field catalogue: valid, unique leaf paths with a label and a
/// category.
fn validate_catalogue(
    src: &SourceText,
    fields: &[Spanned<RawField>],
    problems: &mut Problems,
) -> Vec<CatalogueField> {
    let mut catalogue: Vec<CatalogueField> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    let mut seen = BTreeSet::new();
    for f in fields {
        let at = f.span().start;
        let f = f.get_ref();
        let path = match FieldPath::parse(&f.path) {
            Ok(p) => p,
            Err(m) => {
                problems.at(src, at, "P025", m);
                continue;
            }
        };
        let Some(category) = Category::parse(&f.category) else {
            problems.at(
                src,
                at,
                "P026",
                format!(
                    "field `{}`: category `{}` is not one of normal, health, criminal, bsn",
                    f.path, f.category
                ),
            );
            continue;
        };
        if f.label.trim().is_empty() {
            problems.at(src, at, "P027", format!("field `{}` has no label", f.path));
        }
        if !seen.insert(f.path.clone()) {
            problems.at(
                src,
                at,
                "P028",
                format!("field `{}` is declared twice", f.path),
            );
        }
        catalogue.push(CatalogueField {
            path,
            label: f.label.clone(),
            category,
        });
        lines.push(at);
    }
    // Catalogue entries are leaves: a path that contains another would make
    // "withheld" ambiguous (withholding the container withholds the leaf).
    for (a, at) in catalogue.iter().zip(&lines) {
        for b in &catalogue {
            if a.path.is_strict_prefix_of(&b.path) {
                problems.at(
                    src,
                    *at,
                    "P029",
                    format!(
                        "field `{}` contains field `{}`: the catalogue lists leaves only",
                        a.path, b.path
                    ),
                );
            }
        }
    }
    catalogue
}

/// One resource of a bron; `None` when its path template is invalid.
fn validate_resource(
    src: &SourceText,
    r: &Spanned<RawResource>,
    pupil_variable: &str,
    catalogue: &[CatalogueField],
    earlier: &[Resource],
    problems: &mut Problems,
) -> Option<Resource> {
    let at = r.span().start;
    let r = r.get_ref();
    if !is_ident(&r.id) {
        problems.at(
            src,
            at,
            "P032",
            format!("resource id `{}` is not a valid identifier", r.id),
        );
    }
    if earlier.iter().any(|x| x.id == r.id) {
        problems.at(
            src,
            at,
            "P033",
            format!("resource `{}` is declared twice", r.id),
        );
    }
    let template = PathTemplate::parse(&r.path)
        .map_err(|m| problems.at(src, at, "P034", m))
        .ok()?;
    if !template.has_variable(pupil_variable) {
        problems.at(src, at, "P035", format!(
            "resource `{}`: path `{}` must contain {{{pupil_variable}}}: every request names exactly one betrokkene", r.id, r.path));
    }
    if earlier.iter().any(|x| x.template == template) {
        problems.at(
            src,
            at,
            "P036",
            format!("resource `{}`: path `{}` is declared twice", r.id, r.path),
        );
    }
    let (read, write) = resource_methods(src, at, r, problems);
    let fields = match &r.fields {
        None => (0..catalogue.len()).collect(),
        Some(globs) => expand(
            src,
            at,
            globs,
            catalogue,
            problems,
            &format!("resource `{}`", r.id),
        ),
    };
    Some(Resource {
        id: r.id.clone(),
        template,
        read,
        write,
        fields,
    })
}

/// Whether a resource may be read (GET) and written (POST, PUT).
fn resource_methods(
    src: &SourceText,
    at: usize,
    r: &RawResource,
    problems: &mut Problems,
) -> (bool, bool) {
    let (mut read, mut write) = (false, false);
    for m in &r.methods {
        match m.as_str() {
            "GET" => read = true,
            "POST" | "PUT" => write = true,
            other => problems.at(
                src,
                at,
                "P037",
                format!(
                    "resource `{}`: method `{other}` is not GET, POST or PUT",
                    r.id
                ),
            ),
        }
    }
    if r.methods.is_empty() {
        problems.at(
            src,
            at,
            "P037",
            format!("resource `{}` lists no methods", r.id),
        );
    }
    (read, write)
}

/// Expands globs against a catalogue; a glob that matches nothing is an error
/// (it is almost always a typo that would silently share less than intended,
/// or worse, more once someone adds a matching field).
fn expand(
    src: &SourceText,
    at: usize,
    globs: &[String],
    catalogue: &[CatalogueField],
    problems: &mut Problems,
    what: &str,
) -> Vec<usize> {
    let mut out = BTreeSet::new();
    for g in globs {
        match FieldGlob::parse(g) {
            Ok(glob) => {
                let before = out.len();
                let mut any = false;
                for (i, f) in catalogue.iter().enumerate() {
                    if glob.matches(&f.path) {
                        out.insert(i);
                        any = true;
                    }
                }
                let _ = before;
                if !any {
                    problems.at(
                        src,
                        at,
                        "P040",
                        format!("{what}: `{g}` matches no field in the catalogue"),
                    );
                }
            }
            Err(m) => problems.at(src, at, "P041", format!("{what}: {m}")),
        }
    }
    out.into_iter().collect()
}

/// One overleg file: its text, path, and the entries left out because they
/// could not be read.
struct OverlegInput<'a> {
    src: &'a SourceText,
    path: &'a Path,
    dropped: &'a [Dropped],
}

impl OverlegInput<'_> {
    /// Ids of the entries of `array` left out because they could not be read.
    fn dropped(&self, array: &str) -> BTreeSet<String> {
        self.dropped
            .iter()
            .filter(|d| d.array == array)
            .filter_map(|d| d.id.clone())
            .collect()
    }
}

fn validate_overleg(
    file: &OverlegInput<'_>,
    raw: OverlegFile,
    defined: &Defined<'_>,
    problems: &mut Problems,
) -> Option<Overleg> {
    let (src, path) = (file.src, file.path);
    let before = problems.0.len();
    let id = raw.id.get_ref().clone();
    if !is_ident(&id) {
        problems.at(
            src,
            raw.id.span().start,
            "P050",
            format!("overleg id `{id}` is not a valid identifier"),
        );
    }
    if id != stem(path) {
        problems.at(
            src,
            raw.id.span().start,
            "P051",
            format!(
                "overleg id `{id}` must equal the file name `{}`",
                stem(path)
            ),
        );
    }
    let retention = *raw.retention_days.get_ref();
    if !(1..=36_500).contains(&retention) {
        problems.at(
            src,
            raw.retention_days.span().start,
            "P052",
            format!("retention_days must be between 1 and 36500, not {retention}"),
        );
    }
    let purposes = validate_purposes(src, &id, &raw.purposes, problems);
    let mut roles: Vec<Role> = Vec::new();
    for r in &raw.roles {
        let role = validate_role(src, r, &roles, defined, problems);
        roles.push(role);
    }
    let scope = OverlegScope {
        purposes: &purposes,
        roles: &roles,
        dropped_purposes: file.dropped("purposes"),
        dropped_roles: file.dropped("roles"),
        defined,
    };
    let mut rules: Vec<Rule> = Vec::new();
    for r in &raw.rules {
        if let Some(rule) = validate_rule(src, r, &scope, &rules, problems) {
            rules.push(rule);
        }
    }
    if problems.0.len() != before {
        return None;
    }
    Some(Overleg {
        id,
        name: raw.name,
        description: raw.description,
        retention_days: u32::try_from(retention).unwrap_or(1),
        purposes,
        roles,
        rules,
        file: src.display.clone(),
        content_hash: sha256_hex(&[src.text.as_bytes()]),
    })
}

fn validate_purposes(
    src: &SourceText,
    overleg: &str,
    raw: &[Spanned<RawPurpose>],
    problems: &mut Problems,
) -> Vec<Purpose> {
    let mut purposes: Vec<Purpose> = Vec::new();
    for p in raw {
        let at = p.span().start;
        let p = p.get_ref();
        if !is_ident(&p.id) {
            problems.at(
                src,
                at,
                "P053",
                format!("purpose id `{}` is not a valid identifier", p.id),
            );
        }
        if p.text.trim().is_empty() {
            problems.at(
                src,
                at,
                "P054",
                format!(
                    "purpose `{}` has no text: doelbinding needs a concrete purpose",
                    p.id
                ),
            );
        }
        if purposes.iter().any(|x| x.id == p.id) {
            problems.at(
                src,
                at,
                "P055",
                format!("purpose `{}` is declared twice", p.id),
            );
        }
        let emergency = p
            .emergency
            .as_ref()
            .map(|e| emergency_terms(src, at, &p.id, e, problems));
        purposes.push(Purpose {
            id: p.id.clone(),
            text: p.text.clone(),
            emergency,
        });
    }
    if purposes.is_empty() {
        problems.at(
            src,
            0,
            "P056",
            format!("overleg `{overleg}` declares no purposes"),
        );
    }
    purposes
}

/// P095: the reasons of an emergency purpose, each from the fixed list, at
/// least one.
fn emergency_terms(
    src: &SourceText,
    at: usize,
    purpose: &str,
    raw: &crate::policy::raw::RawEmergency,
    problems: &mut Problems,
) -> EmergencyTerms {
    let mut reasons = Vec::new();
    for code in &raw.reasons {
        match EmergencyReason::parse(code) {
            Some(r) => reasons.push(r),
            None => problems.at(
                src,
                at,
                "P095",
                format!(
                    "purpose `{purpose}`: emergency reason `{code}` is not one of {}",
                    EmergencyReason::all_codes()
                ),
            ),
        }
    }
    if raw.reasons.is_empty() {
        problems.at(
            src,
            at,
            "P095",
            format!(
                "purpose `{purpose}` is an emergency purpose without reasons: name at least one of {}",
                EmergencyReason::all_codes()
            ),
        );
    }
    reasons.sort();
    reasons.dedup();
    EmergencyTerms {
        reasons,
        case_binding: raw.case_binding,
    }
}

fn validate_role(
    src: &SourceText,
    r: &Spanned<RawRole>,
    earlier: &[Role],
    defined: &Defined<'_>,
    problems: &mut Problems,
) -> Role {
    let at = r.span().start;
    let r = r.get_ref();
    if !is_ident(&r.id) {
        problems.at(
            src,
            at,
            "P057",
            format!("role id `{}` is not a valid identifier", r.id),
        );
    }
    if earlier.iter().any(|x| x.id == r.id) {
        problems.at(
            src,
            at,
            "P058",
            format!("role `{}` is declared twice", r.id),
        );
    }
    let grondslag = validate_grondslag(src, at, r, problems);
    for o in &r.organisations {
        if !defined.organisation(o) {
            problems.at(
                src,
                at,
                "P060",
                format!(
                    "role `{}`: organisation `{o}` is not in partners.toml",
                    r.id
                ),
            );
        }
    }
    if r.organisations.is_empty() {
        problems.at(
            src,
            at,
            "P061",
            format!("role `{}` has no organisations", r.id),
        );
    }
    Role {
        id: r.id.clone(),
        name: r.name.clone(),
        grondslag,
        organisations: r.organisations.clone(),
        special_categories: special_categories(src, at, r, problems),
        may_register_cases: r.may_register_cases,
        may_record_objections: r.may_record_objections,
        may_record_restrictions: r.may_record_restrictions,
        line: src.line_of(at),
    }
}

/// A role's grondslag: law and article as text, the AVG basis as codes of
/// [`LegalBasis`], each known (P063) and listed once (P064), with at least
/// one ground of AVG art. 6(1) (P065): an art. 9 or 10 exception lifts a
/// ban, it does not make processing lawful on its own.
fn validate_grondslag(
    src: &SourceText,
    at: usize,
    r: &RawRole,
    problems: &mut Problems,
) -> Grondslag {
    let g = &r.grondslag;
    if g.law.trim().is_empty() || g.article.trim().is_empty() || g.basis.is_empty() {
        problems.at(
            src,
            at,
            "P059",
            format!("role `{}`: grondslag needs law, article and basis", r.id),
        );
    }
    let mut basis = Vec::new();
    for code in &g.basis {
        let value_at = code.span().start;
        let code = code.get_ref();
        match LegalBasis::parse(code) {
            None => problems.at(
                src,
                value_at,
                "P063",
                format!(
                    "role `{}`: grondslag basis `{code}` is not one of {}",
                    r.id,
                    LegalBasis::ALL.map(LegalBasis::code).join(", ")
                ),
            ),
            Some(b) if basis.contains(&b) => problems.at(
                src,
                value_at,
                "P064",
                format!("role `{}`: grondslag basis `{code}` is listed twice", r.id),
            ),
            Some(b) => basis.push(b),
        }
    }
    // An unknown code (P063) may have been meant as the art. 6 ground.
    let all_known = g
        .basis
        .iter()
        .all(|c| LegalBasis::parse(c.get_ref()).is_some());
    if all_known && !basis.is_empty() && !basis.iter().any(|b| b.is_lawful_ground()) {
        let first = g.basis.first().map_or(at, |c| c.span().start);
        problems.at(
            src,
            first,
            "P065",
            format!(
                "role `{}`: grondslag basis names no ground of AVG art. 6(1) (`6.1.a` to `6.1.f`); an exception of art. 9 or 10 is not one",
                r.id
            ),
        );
    }
    basis.sort_unstable();
    Grondslag {
        law: g.law.clone(),
        article: g.article.clone(),
        basis,
    }
}

fn special_categories(
    src: &SourceText,
    at: usize,
    r: &RawRole,
    problems: &mut Problems,
) -> Vec<Category> {
    let mut special = Vec::new();
    for c in &r.special_categories {
        match Category::parse(c) {
            Some(Category::Normal) | None => problems.at(
                src,
                at,
                "P062",
                format!(
                    "role `{}`: special category `{c}` is not one of health, criminal, bsn",
                    r.id
                ),
            ),
            Some(c) => special.push(c),
        }
    }
    special
}

/// What the rules of one overleg are checked against.
struct OverlegScope<'a> {
    purposes: &'a [Purpose],
    roles: &'a [Role],
    /// Purposes and roles of this overleg that could not be read.
    dropped_purposes: BTreeSet<String>,
    dropped_roles: BTreeSet<String>,
    defined: &'a Defined<'a>,
}

impl OverlegScope<'_> {
    fn has_purpose(&self, id: &str) -> bool {
        self.purposes.iter().any(|p| p.id == id) || self.dropped_purposes.contains(id)
    }

    fn has_role(&self, id: &str) -> bool {
        self.roles.iter().any(|r| r.id == id) || self.dropped_roles.contains(id)
    }
}

/// One rule; `None` when its bron is unknown (its fields cannot be checked).
fn validate_rule(
    src: &SourceText,
    r: &Spanned<RawRule>,
    scope: &OverlegScope<'_>,
    earlier: &[Rule],
    problems: &mut Problems,
) -> Option<Rule> {
    let at = r.span().start;
    let r = r.get_ref();
    if !is_ident(&r.id) {
        problems.at(
            src,
            at,
            "P070",
            format!("rule id `{}` is not a valid identifier", r.id),
        );
    }
    if earlier.iter().any(|x| x.id == r.id) {
        problems.at(
            src,
            at,
            "P071",
            format!("rule `{}` is declared twice", r.id),
        );
    }
    let consent = rule_flow(src, at, r, scope, problems);
    let Some(bron) = scope.defined.bronnen.get(&r.bron) else {
        if scope.defined.unreadable.bronnen.contains(&r.bron) {
            return None;
        }
        problems.at(
            src,
            at,
            "P076",
            format!(
                "rule `{}`: bron `{}` is not defined in bronnen/",
                r.id, r.bron
            ),
        );
        return None;
    };
    rule_owners(src, at, r, bron, scope.roles, problems);
    rule_emergency(src, at, r, scope, problems);
    let (patterns, fields) = rule_fields(src, at, r, bron, problems);
    Some(Rule {
        id: r.id.clone(),
        purpose: r.purpose.clone(),
        from: r.from.clone(),
        to: r.to.clone(),
        bron: r.bron.clone(),
        patterns,
        fields,
        consent,
        justification: r.justification.clone(),
        emergency: r.emergency,
        line: src.line_of(at),
    })
}

/// P096: a rule is an emergency rule exactly when its purpose is an
/// emergency purpose, and says so (`emergency = true`), so that a reader of
/// the rule sees it and no purpose mixes emergency and ordinary rules.
fn rule_emergency(
    src: &SourceText,
    at: usize,
    r: &RawRule,
    scope: &OverlegScope<'_>,
    problems: &mut Problems,
) {
    let Some(purpose) = scope.purposes.iter().find(|p| p.id == r.purpose) else {
        return;
    };
    let message = match (purpose.emergency.is_some(), r.emergency) {
        (true, false) => format!(
            "rule `{}`: purpose `{}` is an emergency purpose; mark the rule `emergency = true`",
            r.id, r.purpose
        ),
        (false, true) => format!(
            "rule `{}` is an emergency rule, but purpose `{}` is not an emergency purpose (give it `emergency = {{ reasons = [...] }}`)",
            r.id, r.purpose
        ),
        _ => return,
    };
    problems.at(src, at, "P096", message);
}

/// P077 and P094: an owner of the rule's bron gives (`from`) or receives
/// (`to`), and for a hosted bron all owners that take part agree on which.
fn rule_owners(
    src: &SourceText,
    at: usize,
    r: &RawRule,
    bron: &Bron,
    roles: &[Role],
    problems: &mut Problems,
) {
    // With a role unknown (reported above) or unreadable, who holds what
    // cannot be judged.
    let roles_known = [&r.from, &r.to]
        .iter()
        .all(|x| roles.iter().any(|role| &role.id == *x));
    if roles_known && !owner_holds(roles, &r.from, bron) && !owner_holds(roles, &r.to, bron) {
        problems.at(
            src,
            at,
            "P077",
            format!(
                "rule `{}`: no owner of bron `{}` ({}) holds the `from` or the `to` role",
                r.id,
                r.bron,
                bron.owner_names()
            ),
        );
    }
    if roles_known && !hosting::direction_agrees(roles, &r.from, &r.to, &bron.owners) {
        problems.at(
            src,
            at,
            "P094",
            format!(
                "rule `{}`: one owner of bron `{}` gives (`from`) and another only receives (`to`); split the rule",
                r.id, r.bron
            ),
        );
    }
}

/// The rule's field patterns and the catalogue fields they expand to.
fn rule_fields(
    src: &SourceText,
    at: usize,
    r: &RawRule,
    bron: &Bron,
    problems: &mut Problems,
) -> (Vec<FieldGlob>, Vec<usize>) {
    let patterns = r
        .fields
        .iter()
        .filter_map(|g| FieldGlob::parse(g).ok())
        .collect();
    if r.fields.is_empty() {
        problems.at(src, at, "P078", format!("rule `{}` lists no fields", r.id));
    }
    let what = format!("rule `{}`", r.id);
    let fields = expand(src, at, &r.fields, &bron.catalogue, problems, &what);
    (patterns, fields)
}

/// Whether an owner of `bron` is one of the organisations of `role`.
fn owner_holds(roles: &[Role], role: &str, bron: &Bron) -> bool {
    roles
        .iter()
        .any(|x| x.id == role && bron.owners.iter().any(|o| x.organisations.contains(o)))
}

/// The rule's purpose, roles and consent, checked against its overleg.
fn rule_flow(
    src: &SourceText,
    at: usize,
    r: &RawRule,
    scope: &OverlegScope<'_>,
    problems: &mut Problems,
) -> Consent {
    if !scope.has_purpose(&r.purpose) {
        problems.at(
            src,
            at,
            "P072",
            format!(
                "rule `{}`: purpose `{}` is not declared in this overleg",
                r.id, r.purpose
            ),
        );
    }
    for (what, role) in [("from", &r.from), ("to", &r.to)] {
        if !scope.has_role(role) {
            problems.at(
                src,
                at,
                "P073",
                format!(
                    "rule `{}`: {what} role `{role}` is not a participant of this overleg",
                    r.id
                ),
            );
        }
    }
    if r.from == r.to {
        problems.at(
            src,
            at,
            "P074",
            format!("rule `{}`: from and to are the same role", r.id),
        );
    }
    Consent::parse(&r.consent).unwrap_or_else(|| {
        problems.at(
            src,
            at,
            "P075",
            format!(
                "rule `{}`: consent `{}` is not one of none, parents, youth, parents-and-youth",
                r.id, r.consent
            ),
        );
        Consent::ParentsAndYouth
    })
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + bytecount_newlines(&text.as_bytes()[..end])
}

/// Newlines in `bytes`.
#[allow(
    clippy::naive_bytecount,
    reason = "only on error paths; not worth the bytecount crate"
)]
fn bytecount_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\n').count()
}

#[cfg(test)]
#[allow(
    clippy::too_many_lines,
    reason = "table-driven tests list their cases in one place"
)]
mod tests {
    use super::*;
    use crate::policy::fixture::Fixture;

    const TEAM: &str = "overleggen/team.toml";
    const LAS: &str = "bronnen/las.toml";
    const PARTNERS: &str = "partners.toml";
    /// A catalogue field of an unknown category (no resource names it).
    const EXTRA: &str =
        "\n[[fields]]\npath = \"extra\"\nlabel = \"Extra\"\ncategory = \"medisch\"\n";

    /// 1-based line of the `[[...]]` header of the entry that contains the
    /// first occurrence of `anchor` (the line itself when it is a key of the
    /// file's top level, marked by `top`).
    fn entry_line(text: &str, anchor: &str, top: bool) -> usize {
        let at = text.find(anchor).unwrap_or_else(|| panic!("{anchor}"));
        let line = line_at(text, at);
        if top {
            return line;
        }
        let header = text[..at].rfind("[[").unwrap();
        line_at(text, header)
    }

    /// Each (change, code, file, anchor): the set is refused with exactly
    /// that problem, at the line of the entry the anchor is in.
    #[test]
    fn problems_name_their_code_file_and_line() {
        let base = Fixture::new();
        let cases: Vec<(Fixture, &str, &str, &str, bool)> = vec![
            (
                base.clone().edit(
                    TEAM,
                    "retention_days = 365",
                    "retention_days = 365\nbewaar = 1",
                ),
                "P002",
                TEAM,
                "bewaar",
                true,
            ),
            (
                base.clone()
                    .edit(PARTNERS, "kind = \"other\"", "kind = \"vereniging\""),
                "P012",
                PARTNERS,
                "id = \"buiten\"",
                false,
            ),
            (
                base.clone().edit(PARTNERS, "00000099000000000005", "123"),
                "P013",
                PARTNERS,
                "id = \"buiten\"",
                false,
            ),
            (
                base.clone()
                    .edit(PARTNERS, "00000099000000000005", "00000099000000000004"),
                "P014",
                PARTNERS,
                "id = \"buiten\"",
                false,
            ),
            (
                base.clone().append(LAS, EXTRA),
                "P026",
                LAS,
                "path = \"extra\"",
                false,
            ),
            (
                base.clone().edit(
                    LAS,
                    "path = \"/leerlingen/{leerling}/zorg\"",
                    "path = \"leerlingen/{leerling}/zorg\"",
                ),
                "P034",
                LAS,
                "id = \"zorg\"",
                false,
            ),
            (
                base.clone().edit(
                    LAS,
                    "path = \"/leerlingen/{leerling}/zorg\"",
                    "path = \"/zorg/{dossier}\"",
                ),
                "P035",
                LAS,
                "id = \"zorg\"",
                false,
            ),
            (
                base.clone().edit(
                    TEAM,
                    "fields = [\"leerling.naam\"]",
                    "fields = [\"leerling.adres\"]",
                ),
                "P040",
                TEAM,
                "id = \"t-06\"",
                false,
            ),
            (
                base.clone().edit(TEAM, "id = \"team\"", "id = \"teams\""),
                "P051",
                TEAM,
                "id = \"teams\"",
                true,
            ),
            (
                base.clone()
                    .edit(TEAM, "retention_days = 365", "retention_days = 0"),
                "P052",
                TEAM,
                "retention_days",
                true,
            ),
            (
                base.clone().edit(
                    TEAM,
                    "organisations = [\"wij\"]",
                    "organisations = [\"wie\"]",
                ),
                "P060",
                TEAM,
                "id = \"jeugd\"",
                false,
            ),
            (
                base.clone().edit(
                    TEAM,
                    "id = \"t-06\"\npurpose = \"handhaving\"",
                    "id = \"t-06\"\npurpose = \"nazorg\"",
                ),
                "P072",
                TEAM,
                "id = \"t-06\"",
                false,
            ),
            (
                base.clone().edit(TEAM, "to = \"rmc\"", "to = \"rmk\""),
                "P073",
                TEAM,
                "id = \"t-06\"",
                false,
            ),
            (
                base.clone().edit(TEAM, "to = \"rmc\"", "to = \"school\""),
                "P074",
                TEAM,
                "id = \"t-06\"",
                false,
            ),
            (
                base.clone().edit(
                    TEAM,
                    "consent = \"parents-and-youth\"",
                    "consent = \"jongere\"",
                ),
                "P075",
                TEAM,
                "id = \"t-03\"",
                false,
            ),
            (
                base.clone().edit(
                    TEAM,
                    "from = \"school\"\nto = \"rmc\"",
                    "from = \"jeugd\"\nto = \"rmc\"",
                ),
                "P077",
                TEAM,
                "id = \"t-06\"",
                false,
            ),
            (
                base.clone()
                    .edit(TEAM, "fields = [\"leerling.naam\"]", "fields = []"),
                "P078",
                TEAM,
                "id = \"t-06\"",
                false,
            ),
            (
                base.clone().edit(TEAM, "basis = [\"6.1.c\"]", "basis = []"),
                "P059",
                TEAM,
                "id = \"leerplicht\"",
                false,
            ),
            (
                base.clone().edit(TEAM, "\"9.2.h\"]", "\"9(2)(h)\"]"),
                "P063",
                TEAM,
                "9(2)(h)",
                true,
            ),
            (
                base.clone()
                    .edit(TEAM, "[\"6.1.c\"]", "[\"6.1.c\", \"6.1.c\"]"),
                "P064",
                TEAM,
                "[\"6.1.c\", \"6.1.c\"]",
                true,
            ),
            (
                base.clone()
                    .edit(TEAM, "[\"6.1.e\", \"9.2.h\"]", "[\"9.2.h\"]"),
                "P065",
                TEAM,
                "[\"9.2.h\"]",
                true,
            ),
        ];
        for (fixture, code, file, anchor, top) in cases {
            let tmp = fixture.write();
            let problems = match load_dir(tmp.path()) {
                Err(LoadError::Invalid(p)) => p,
                other => panic!("{code}: {other:?}"),
            };
            let text = std::fs::read_to_string(tmp.path().join(file)).unwrap();
            let expected = entry_line(&text, anchor, top);
            let found: Vec<String> = problems
                .iter()
                .map(std::string::ToString::to_string)
                .collect();
            assert_eq!(problems.len(), 1, "{code}: {found:#?}");
            let p = &problems[0];
            assert_eq!((p.code, p.line), (code, expected), "{}", found[0]);
            assert!(p.file.ends_with(file), "{}", p.file);
            assert!(
                found[0].contains(&format!("{file}:{expected}: {code} ")),
                "{}",
                found[0]
            );
        }
    }

    /// Every unknown or repeated basis value is reported at its own line
    /// (an array may span lines), all at once; the known ones are kept and
    /// ordered as the law orders them.
    #[test]
    fn every_basis_value_is_checked_at_its_own_line() {
        let fixture = Fixture::new()
            .edit(
                TEAM,
                "basis = [\"6.1.e\", \"9.2.h\"]",
                "basis = [\n  \"9.2.h\",\n  \"AVG art. 6(1)(e)\",\n  \"6.1.e\",\n  \"9.2.h\",\n]",
            )
            .edit(
                TEAM,
                "basis = [\"6.1.c\"]",
                "basis = [\"6.1.c\", \"6.1.g\"]",
            );
        let Err(LoadError::Invalid(problems)) = fixture.load() else {
            panic!("loaded");
        };
        let text = fixture.write();
        let text = std::fs::read_to_string(text.path().join(TEAM)).unwrap();
        let line_of = |s: &str| line_at(&text, text.find(s).unwrap());
        let got: Vec<(usize, &str)> = problems.iter().map(|p| (p.line, p.code)).collect();
        assert_eq!(
            got,
            [
                (line_of("\"AVG art. 6(1)(e)\""), "P063"),
                (line_at(&text, text.rfind("\"9.2.h\"").unwrap()), "P064"),
                (line_of("\"6.1.g\""), "P063"),
            ],
            "{problems:#?}"
        );
        // The values of the code are named in the message.
        assert!(
            problems[0]
                .message
                .contains("`AVG art. 6(1)(e)` is not one of 6.1.a, 6.1.b")
        );
        assert!(
            problems[0]
                .message
                .contains("9.2.j, 10, uavg.30.2.a, uavg.30.3.a")
        );
        let good = Fixture::new()
            .edit(
                TEAM,
                "basis = [\"6.1.e\", \"9.2.h\"]",
                "basis = [\"9.2.h\", \"6.1.e\"]",
            )
            .set();
        let jgz = good.overleggen["team"].role("jgz").unwrap();
        assert_eq!(
            jgz.grondslag.basis,
            [LegalBasis::PublicTask, LegalBasis::HealthCare]
        );
        assert_eq!(
            jgz.grondslag.to_string(),
            "Wpg (art. 5; AVG art. 6(1)(e); art. 9(2)(h))"
        );
    }

    /// Problems in several files are reported together, sorted, and a set
    /// with any problem is never returned.
    #[test]
    fn every_problem_of_every_file_at_once() {
        let fixture = Fixture::new()
            .edit(PARTNERS, "kind = \"other\"", "kind = \"vereniging\"")
            .append(LAS, EXTRA)
            .edit(TEAM, "to = \"rmc\"", "to = \"school\"")
            .edit(TEAM, "retention_days = 365", "retention_days = 0");
        let Err(LoadError::Invalid(problems)) = fixture.load() else {
            panic!("loaded");
        };
        let codes: Vec<&str> = problems.iter().map(|p| p.code).collect();
        assert_eq!(codes.len(), 4, "{problems:#?}");
        for code in ["P012", "P026", "P052", "P074"] {
            assert!(codes.contains(&code), "{code}: {codes:?}");
        }
        let mut sorted = problems.clone();
        sorted.sort();
        assert_eq!(problems, sorted);
    }

    #[test]
    fn the_version_follows_the_contents() {
        let a = Fixture::new().set();
        let b = Fixture::new().set();
        let c = Fixture::new()
            .edit(TEAM, "text = \"Hulp bieden\"", "text = \"Hulp geven\"")
            .set();
        assert_eq!(a.version, b.version);
        assert_ne!(a.version, c.version);
        // Only the overleg changed: the shared part (partners, bronnen) did not.
        assert_eq!(a.shared_hash, c.shared_hash);
        assert_ne!(
            a.overleggen["team"].content_hash,
            c.overleggen["team"].content_hash
        );
    }

    #[test]
    fn line_at_counts_from_one() {
        let cases = [
            ("", 0, 1),
            ("a\nb\nc", 0, 1),
            ("a\nb\nc", 2, 2),
            ("a\nb\nc", 4, 3),
            ("a\n", 99, 2),
        ];
        for (text, offset, line) in cases {
            assert_eq!(line_at(text, offset), line, "{text:?} {offset}");
        }
    }
}
