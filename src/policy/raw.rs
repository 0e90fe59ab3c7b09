//! The policy files exactly as written (serde shapes), and [`read`], the
//! strict reader they (and the serve configuration) are read with. Everything
//! here is unvalidated; [`super::load`] turns it into the types in
//! [`super::model`]. Unknown keys are rejected: a typo must never silently drop
//! a restriction. [`read`] reports every unknown key and every wrong value of
//! a file, not just the first, and still returns what it could read, so the
//! rest of the file is validated too.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Visitor};
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnersFile {
    #[serde(default)]
    pub organisations: Vec<Spanned<RawOrganisation>>,
    #[serde(default)]
    pub suppliers: Vec<Spanned<RawSupplier>>,
    #[serde(default)]
    pub mandates: Vec<Spanned<RawMandate>>,
}

/// A software supplier (processor) that connects for organisations.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSupplier {
    pub id: String,
    pub name: String,
    pub oin: String,
    #[serde(default)]
    pub fingerprints: Vec<String>,
    /// Reference of the verwerkersovereenkomst.
    #[serde(default)]
    pub processor_agreement: Option<String>,
}

/// Supplier `supplier` acts for `organisation`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMandate {
    pub supplier: String,
    pub organisation: String,
    /// `client` or `bron`.
    pub direction: String,
    /// Overleg ids, or `["*"]` for all.
    pub overleggen: Vec<String>,
    /// `YYYY-MM-DD`, a Dutch calendar day.
    pub valid_from: String,
    #[serde(default)]
    pub valid_until: Option<String>,
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
    /// The organisation whose bron this is; or, for a bron a supplier
    /// hosts, `hosted_by` and `owners`.
    #[serde(default)]
    pub owner: Option<Spanned<String>>,
    #[serde(default)]
    pub hosted_by: Option<Spanned<String>>,
    #[serde(default)]
    pub owners: Option<Spanned<Vec<String>>>,
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
    /// Makes this an emergency purpose (spoed): its rules must say
    /// `emergency = true`.
    #[serde(default)]
    pub emergency: Option<RawEmergency>,
}

/// `emergency = { reasons = [...], case_binding = false }` of a purpose.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmergency {
    /// Codes from [`super::model::EmergencyReason`].
    pub reasons: Vec<String>,
    /// Whether the pupil must be registered in the overleg (default true).
    #[serde(default = "yes")]
    pub case_binding: bool,
}

fn yes() -> bool {
    true
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
    /// Whether this role may record objections (bezwaren, AVG art. 21)
    /// and decide on them.
    #[serde(default)]
    pub may_record_objections: bool,
    /// Whether this role may record and lift restrictions (beperkingen,
    /// AVG art. 18).
    #[serde(default)]
    pub may_record_restrictions: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrondslag {
    pub law: String,
    pub article: String,
    /// Codes of the AVG basis: `6.1.a`..`6.1.f`, `9.2.a`..`9.2.j`, `10`,
    /// `uavg.30.2.a`, `uavg.30.3.a` (validated in [`super::load`]).
    pub basis: Vec<Spanned<String>>,
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
    /// Marks an emergency rule; its purpose must be an emergency purpose.
    #[serde(default)]
    pub emergency: bool,
}

/// `partners.toml`.
pub static PARTNERS: Shape = Shape::of::<PartnersFile>(&[
    (
        "organisations",
        Nested::Tables(&Shape::of::<RawOrganisation>(&[])),
    ),
    ("suppliers", Nested::Tables(&Shape::of::<RawSupplier>(&[]))),
    ("mandates", Nested::Tables(&Shape::of::<RawMandate>(&[]))),
]);

/// `bronnen/<bron>.toml`.
pub static BRON: Shape = Shape::of::<BronFile>(&[
    ("resources", Nested::Tables(&Shape::of::<RawResource>(&[]))),
    ("fields", Nested::Tables(&Shape::of::<RawField>(&[]))),
]);

/// `overleggen/<id>.toml`.
pub static OVERLEG: Shape = Shape::of::<OverlegFile>(&[
    (
        "purposes",
        Nested::Tables(&Shape::of::<RawPurpose>(&[(
            "emergency",
            Nested::Table(&Shape::of::<RawEmergency>(&[])),
        )])),
    ),
    (
        "roles",
        Nested::Tables(&Shape::of::<RawRole>(&[(
            "grondslag",
            Nested::Table(&Shape::of::<RawGrondslag>(&[])),
        )])),
    ),
    ("rules", Nested::Tables(&Shape::of::<RawRule>(&[]))),
]);

/// How a TOML table is read: the keys its struct declares (taken from the
/// struct's own `Deserialize`, so they cannot drift apart), a type check of
/// the table on its own, and the shape of the keys that hold tables.
pub struct Shape {
    keys: fn() -> &'static [&'static str],
    check: for<'i> fn(Spanned<DeValue<'i>>) -> Result<(), toml::de::Error>,
    nested: &'static [(&'static str, Nested)],
}

/// The value of a key that holds tables. A struct-typed key must be listed,
/// or the keys inside it are not checked one by one.
pub enum Nested {
    /// One table (`[server]`, `grondslag = { ... }`).
    Table(&'static Shape),
    /// An array of tables (`[[rules]]`): an entry with a value of the wrong
    /// type is left out (and reported), the others are read.
    Tables(&'static Shape),
    /// A table with free-form keys (a map).
    Free,
}

impl Shape {
    /// The shape of struct `T`, with the shapes of its table-valued keys.
    pub const fn of<T: DeserializeOwned>(nested: &'static [(&'static str, Nested)]) -> Self {
        Self {
            keys: struct_keys::<T>,
            check: check_as::<T>,
            nested,
        }
    }
}

/// A problem found while reading a file: where (byte offset) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadProblem {
    pub offset: usize,
    pub message: String,
}

/// An entry of an array of tables that was left out because it could not be
/// read (its problems are reported): validation must not report references
/// to it as undefined as well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Dotted path of the array, e.g. `roles`.
    pub array: String,
    /// The entry's `id`, when it has a string one.
    pub id: Option<String>,
}

/// What [`read`] made of a file.
#[derive(Debug)]
pub struct Read<T> {
    /// The file without its unreadable parts; `None` when the file as a
    /// whole could not be read (a syntax error, or a required top-level
    /// key missing or of the wrong type).
    pub value: Option<T>,
    /// Every problem found, in no particular order. Empty only when the file
    /// was read completely.
    pub problems: Vec<ReadProblem>,
    pub dropped: Vec<Dropped>,
}

/// Most wrong values reported for one table before giving up on it.
const MAX_CHECKS: usize = 32;

/// Reads `text` as a `T` of `shape`, reporting every unknown key and every
/// value of the wrong type: they are left out and the rest is read, so one
/// problem never hides another. A syntax error ends the reading (only the
/// first is reported: the parser's guesses after it are mostly its echoes).
pub fn read<T: DeserializeOwned>(text: &str, shape: &Shape) -> Read<T> {
    let mut walk = Walk::default();
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            walk.report(offset(&e, 0), e.message().trim().to_owned());
            return walk.finish(None);
        }
    };
    let span = root.span();
    let mut root = Spanned::new(span.clone(), DeValue::Table(root.into_inner()));
    if walk.table(&mut root, shape, "") == Status::Failed {
        return walk.finish(None);
    }
    let DeValue::Table(table) = root.into_inner() else {
        return walk.finish(None);
    };
    let value = T::deserialize(toml::de::Deserializer::from(Spanned::new(span, table)));
    // The table passed its own check above; this only fails if `shape` is
    // not the shape of `T`.
    let value = value
        .map_err(|e| walk.report(offset(&e, 0), e.message().trim().to_owned()))
        .ok();
    walk.finish(value)
}

#[derive(Default)]
struct Walk {
    problems: Vec<ReadProblem>,
    dropped: Vec<Dropped>,
}

/// One step from a table down to a value inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl Walk {
    fn report(&mut self, offset: usize, message: String) {
        self.problems.push(ReadProblem { offset, message });
    }

    fn finish<T>(self, value: Option<T>) -> Read<T> {
        Read {
            value,
            problems: self.problems,
            dropped: self.dropped,
        }
    }

    /// Reads one table of `shape` at `path`: reports and removes unknown
    /// keys, reads the nested tables, then checks the table's own values.
    /// Problems are reported; the status says what is left of the table.
    fn table(&mut self, value: &mut Spanned<DeValue<'_>>, shape: &Shape, path: &str) -> Status {
        let span = value.span();
        // A table where a value belongs (or the reverse) is the parent's
        // type error to report.
        let DeValue::Table(table) = value.get_mut() else {
            return Status::Complete;
        };
        self.unknown_keys(table, shape, path);
        let mut removed = Vec::new();
        let mut status = Status::Complete;
        for (key, nested) in shape.nested {
            let Some(child) = table.get_mut(*key) else {
                continue;
            };
            let child_path = join(path, key);
            match nested {
                Nested::Table(s) => match self.table(child, s, &child_path) {
                    Status::Complete => {}
                    Status::Repaired => status = Status::Repaired,
                    Status::Failed => {
                        table.remove(*key);
                        removed.push((*key).to_owned());
                        status = Status::Repaired;
                    }
                },
                Nested::Tables(s) => self.tables(child, s, &child_path),
                Nested::Free => {}
            }
        }
        status.max(self.check(table, span, shape, path, removed))
    }

    fn unknown_keys(&mut self, table: &mut DeTable<'_>, shape: &Shape, path: &str) {
        let known = (shape.keys)();
        let mut unknown = Vec::new();
        for key in table.keys() {
            if !known.contains(&key.get_ref().as_ref()) {
                unknown.push(key.clone());
            }
        }
        for key in unknown {
            let expected = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            self.report(
                key.span().start,
                format!(
                    "unknown key `{}`, expected one of {expected}",
                    join(path, key.get_ref())
                ),
            );
            table.remove(key.get_ref().as_ref());
        }
    }

    /// Reads each entry of an array of tables; an entry with a value of the
    /// wrong type is left out as a whole (validating the rest of it would
    /// report what is missing from it once more).
    fn tables(&mut self, value: &mut Spanned<DeValue<'_>>, shape: &Shape, path: &str) {
        let DeValue::Array(items) = value.get_mut() else {
            return;
        };
        let entry_path = format!("{path}[]");
        let mut kept = DeArray::new();
        for mut item in std::mem::replace(items, DeArray::new()) {
            let is_table = matches!(item.get_ref(), DeValue::Table(_));
            if !is_table || self.table(&mut item, shape, &entry_path) == Status::Complete {
                kept.push(item);
            } else {
                self.dropped.push(Dropped {
                    array: path.to_owned(),
                    id: id_of(&item),
                });
            }
        }
        *items = kept;
    }

    /// Type-checks `table` on its own; a value of the wrong type is reported
    /// and taken out (the innermost array entry holding it, or its key), and
    /// the check repeated, so every wrong value is reported. `removed` are
    /// keys already taken out after their problems were reported: that they
    /// are now missing is no news.
    fn check(
        &mut self,
        table: &mut DeTable<'_>,
        span: Range<usize>,
        shape: &Shape,
        path: &str,
        mut removed: Vec<String>,
    ) -> Status {
        for round in 0..MAX_CHECKS {
            let whole = Spanned::new(span.clone(), DeValue::Table(table.clone()));
            let Err(e) = (shape.check)(whole) else {
                return if round == 0 {
                    Status::Complete
                } else {
                    Status::Repaired
                };
            };
            let message = e.message().trim().to_owned();
            if missing_field(&message).is_some_and(|k| removed.iter().any(|r| r == k)) {
                return Status::Failed;
            }
            let steps = e
                .span()
                .filter(|s| !s.is_empty())
                .and_then(|s| locate(table, &s));
            let Some(steps) = steps.filter(|s| !s.is_empty()) else {
                self.report(offset(&e, span.start), prefixed(path, &message));
                return Status::Failed;
            };
            self.report(
                offset(&e, span.start),
                prefixed(&render(path, &steps), &message),
            );
            match self.take_out(table, &steps, path) {
                Taken::Entry => {}
                Taken::Key(key) => removed.push(key),
                Taken::Nothing => return Status::Failed,
            }
        }
        self.report(
            span.start,
            prefixed(path, "too many problems, the rest is not checked"),
        );
        Status::Failed
    }

    /// Removes the innermost array entry on `steps`, or else the key the
    /// steps start with.
    fn take_out(&mut self, table: &mut DeTable<'_>, steps: &[Step], path: &str) -> Taken {
        let last_index = steps.iter().rposition(|s| matches!(s, Step::Index(_)));
        if let Some(i) = last_index
            && let Step::Index(index) = steps[i]
            && let Some(array) = value_at(table, &steps[..i])
            && let DeValue::Array(items) = array.get_mut()
            && index < items.len()
        {
            let old = std::mem::replace(items, DeArray::new());
            for (n, item) in old.into_iter().enumerate() {
                if n == index {
                    if matches!(item.get_ref(), DeValue::Table(_)) {
                        self.dropped.push(Dropped {
                            array: render(path, &steps[..i]),
                            id: id_of(&item),
                        });
                    }
                } else {
                    items.push(item);
                }
            }
            return Taken::Entry;
        }
        match steps.first() {
            Some(Step::Key(key)) if table.remove(key.as_str()).is_some() => Taken::Key(key.clone()),
            _ => Taken::Nothing,
        }
    }
}

/// What is left of a table after reading it; ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    /// Everything but unknown keys was read.
    Complete,
    /// Values of the wrong type were taken out; the rest was read.
    Repaired,
    /// It cannot be read (a required key is missing or was taken out).
    Failed,
}

/// What [`Walk::take_out`] removed.
enum Taken {
    Entry,
    Key(String),
    Nothing,
}

/// The `id` of a table entry, when it is a string.
fn id_of(item: &Spanned<DeValue<'_>>) -> Option<String> {
    let DeValue::Table(t) = item.get_ref() else {
        return None;
    };
    t.get("id")
        .and_then(|v| v.get_ref().as_str())
        .map(str::to_owned)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `path` and `steps` as one dotted path, `[]` for an array entry (as in
/// field paths).
fn render(path: &str, steps: &[Step]) -> String {
    let mut out = path.to_owned();
    for s in steps {
        match s {
            Step::Key(k) => out = join(&out, k),
            Step::Index(_) => out.push_str("[]"),
        }
    }
    out
}

fn prefixed(place: &str, message: &str) -> String {
    if place.is_empty() {
        message.to_owned()
    } else {
        format!("`{place}`: {message}")
    }
}

fn offset(e: &toml::de::Error, fallback: usize) -> usize {
    e.span().map_or(fallback, |s| s.start)
}

/// The key a serde "missing field" message names.
fn missing_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
}

/// The steps from `table` to the innermost key or value whose span contains
/// `span`; `None` when nothing inside the table does (the span is the
/// table's own, as for a missing key).
fn locate(table: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<Step>> {
    for (key, value) in table {
        let inner = locate_value(value, span);
        if inner.is_some() || contains(&key.span(), span) {
            let mut steps = vec![Step::Key(key.get_ref().to_string())];
            steps.extend(inner.unwrap_or_default());
            return Some(steps);
        }
    }
    None
}

/// Steps below `value` to the innermost part containing `span`: empty when
/// only `value` itself does, `None` when it does not.
fn locate_value(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<Vec<Step>> {
    match value.get_ref() {
        DeValue::Table(t) => {
            if let Some(steps) = locate(t, span) {
                return Some(steps);
            }
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(inner) = locate_value(item, span) {
                    let mut steps = vec![Step::Index(i)];
                    steps.extend(inner);
                    return Some(steps);
                }
            }
        }
        _ => {}
    }
    contains(&value.span(), span).then(Vec::new)
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && !outer.is_empty()
}

fn value_at<'t, 'i>(
    table: &'t mut DeTable<'i>,
    steps: &[Step],
) -> Option<&'t mut Spanned<DeValue<'i>>> {
    let (Step::Key(first), rest) = steps.split_first()? else {
        return None;
    };
    let mut value = table.get_mut(first.as_str())?;
    for step in rest {
        value = match (step, value.get_mut()) {
            (Step::Key(k), DeValue::Table(t)) => t.get_mut(k.as_str())?,
            (Step::Index(i), DeValue::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(value)
}

fn check_as<T: DeserializeOwned>(value: Spanned<DeValue<'_>>) -> Result<(), toml::de::Error> {
    T::deserialize(toml::de::ValueDeserializer::from(value)).map(drop)
}

/// The keys struct `T` declares: serde's derive hands them to
/// `deserialize_struct`, where this probe catches them.
fn struct_keys<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut keys: &'static [&'static str] = &[];
    // The probe always ends deserialisation with an error, by design.
    let _ = T::deserialize(KeyProbe(&mut keys));
    keys
}

struct KeyProbe<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Probed;

impl fmt::Display for Probed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probed")
    }
}

impl std::error::Error for Probed {}

impl serde::de::Error for Probed {
    fn custom<M: fmt::Display>(_: M) -> Self {
        Probed
    }
}

impl<'de> serde::Deserializer<'de> for KeyProbe<'_> {
    type Error = Probed;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Probed> {
        Err(Probed)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Probed> {
        *self.0 = fields;
        Err(Probed)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// Byte offset in `text` of the key at `path` (of its deepest existing
/// ancestor when it is absent, 0 when none is), so problems found in the
/// values read can name a line.
pub fn key_offset(text: &str, path: &[impl AsRef<str>]) -> usize {
    let Ok(root) = DeTable::parse(text) else {
        return 0;
    };
    let mut table = root.get_ref();
    let mut at = 0;
    for segment in path {
        let Some((key, value)) = table.get_key_value(segment.as_ref()) else {
            break;
        };
        at = key.span().start;
        match value.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str, problems: &[ReadProblem]) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, String)> = problems
            .iter()
            .map(|p| {
                (
                    super::super::load::line_at(text, p.offset),
                    p.message.clone(),
                )
            })
            .collect();
        out.sort();
        out
    }

    const OVERLEG_OK: &str = r#"id = "x"
name = "X"
retention_days = 30

[[purposes]]
id = "p"
text = "P"

[[roles]]
id = "a"
name = "A"
organisations = ["o"]
grondslag = { law = "l", article = "a", basis = ["6.1.e"] }

[[rules]]
id = "r1"
purpose = "p"
from = "a"
to = "b"
bron = "s"
fields = ["f"]
consent = "none"
"#;

    #[test]
    fn the_keys_of_a_struct_come_from_its_deserialize() {
        assert_eq!(
            struct_keys::<RawGrondslag>(),
            &["law", "article", "basis"][..]
        );
        assert!(struct_keys::<OverlegFile>().contains(&"retention_days"));
    }

    #[test]
    fn a_valid_file_reads_without_problems() {
        let r = read::<OverlegFile>(OVERLEG_OK, &OVERLEG);
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        let f = r.value.unwrap();
        assert_eq!(f.rules.len(), 1);
        let basis = &f.roles[0].get_ref().grondslag.basis;
        assert_eq!(basis.len(), 1);
        assert_eq!(basis[0].get_ref(), "6.1.e");
    }

    #[test]
    fn every_unknown_key_is_reported_and_the_rest_is_read() {
        let text = OVERLEG_OK
            .replace("retention_days = 30", "retention_days = 30\nbewaar = 1")
            .replace("text = \"P\"", "text = \"P\"\ntekst = \"P\"")
            .replace("basis = [\"6.1.e\"] }", "basis = [\"6.1.e\"], wet = 1 }")
            .replace(
                "consent = \"none\"",
                "consent = \"none\"\ntoestemming = \"geen\"",
            );
        let r = read::<OverlegFile>(&text, &OVERLEG);
        let got = lines(&text, &r.problems);
        assert_eq!(got.len(), 4, "{got:#?}");
        let want = [
            (4, "unknown key `bewaar`"),
            (9, "unknown key `purposes[].tekst`"),
            (15, "unknown key `roles[].grondslag.wet`"),
            (25, "unknown key `rules[].toestemming`"),
        ];
        for ((line, msg), (want_line, want_msg)) in got.iter().zip(want) {
            assert_eq!(*line, want_line, "{got:#?}");
            assert!(msg.starts_with(want_msg), "{got:#?}");
        }
        // Nothing was left out: the file still reads completely.
        let f = r.value.unwrap();
        assert_eq!((f.purposes.len(), f.roles.len(), f.rules.len()), (1, 1, 1));
        assert!(r.dropped.is_empty());
    }

    #[test]
    fn an_entry_of_the_wrong_type_is_left_out_and_named() {
        let text = format!(
            "{OVERLEG_OK}\n[[roles]]\nid = \"b\"\nname = \"B\"\norganisations = \"o\"\ngrondslag = {{ law = \"l\", article = \"a\", basis = [\"6.1.e\"] }}\n"
        );
        let r = read::<OverlegFile>(&text, &OVERLEG);
        let got = lines(&text, &r.problems);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0].0, 27, "{got:#?}");
        assert!(
            got[0]
                .1
                .starts_with("`roles[].organisations`: invalid type"),
            "{got:#?}"
        );
        assert_eq!(
            r.dropped,
            vec![Dropped {
                array: "roles".into(),
                id: Some("b".into())
            }]
        );
        let f = r.value.unwrap();
        assert_eq!(f.roles.len(), 1);
        assert_eq!(f.rules.len(), 1);
    }

    #[test]
    fn an_entry_with_a_wrong_value_anywhere_is_left_out() {
        let text = OVERLEG_OK
            .replace("fields = [\"f\"]", "fields = [\"f\", 3, \"g\"]")
            .replace("basis = [\"6.1.e\"] }", "basis = 4 }");
        let r = read::<OverlegFile>(&text, &OVERLEG);
        let got = lines(&text, &r.problems);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0]
                .1
                .starts_with("`roles[].grondslag.basis`: invalid type"),
            "{got:#?}"
        );
        assert!(
            got[1].1.starts_with("`rules[].fields[]`: invalid type"),
            "{got:#?}"
        );
        let ids: Vec<_> = r
            .dropped
            .iter()
            .map(|d| (d.array.as_str(), d.id.as_deref()))
            .collect();
        assert_eq!(ids, [("roles", Some("a")), ("rules", Some("r1"))]);
        let f = r.value.unwrap();
        assert!(f.roles.is_empty() && f.rules.is_empty());
        assert_eq!(f.purposes.len(), 1);
    }

    #[test]
    fn a_required_key_of_the_wrong_type_is_reported_once_and_others_still_are() {
        let text = OVERLEG_OK
            .replace("retention_days = 30", "retention_days = \"dertig\"")
            .replace("consent = \"none\"", "consent = \"none\"\ntoestemming = 1");
        let r = read::<OverlegFile>(&text, &OVERLEG);
        let got = lines(&text, &r.problems);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert_eq!(got[0].0, 3);
        assert!(
            got[0].1.starts_with("`retention_days`: invalid type"),
            "{got:#?}"
        );
        assert!(!got[0].1.contains("missing"), "{got:#?}");
        assert_eq!(got[1].0, 23);
        assert!(r.value.is_none());
    }

    #[test]
    fn every_wrong_value_of_one_table_is_reported() {
        let text = OVERLEG_OK.replace("id = \"r1\"\npurpose = \"p\"", "id = 1\npurpose = [\"p\"]");
        let r = read::<OverlegFile>(&text, &OVERLEG);
        let got = lines(&text, &r.problems);
        let places: Vec<(usize, &str)> = got
            .iter()
            .map(|(l, m)| (*l, m.split(':').next().unwrap_or("")))
            .collect();
        assert_eq!(
            places,
            [(16, "`rules[].id`"), (17, "`rules[].purpose`")],
            "{got:#?}"
        );
        assert_eq!(r.dropped.len(), 1);
        assert_eq!(r.dropped[0].id, None);
    }

    #[test]
    fn a_syntax_error_ends_the_reading_with_one_problem() {
        let text = OVERLEG_OK.replace("name = \"X\"", "name = \"X");
        let r = read::<OverlegFile>(&text, &OVERLEG);
        assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
        assert_eq!(lines(&text, &r.problems)[0].0, 2);
        assert!(r.value.is_none());
    }

    #[test]
    fn key_offset_finds_the_key_or_its_nearest_ancestor() {
        let text = "a = 1\n[server]\nx = 2\ny = 3\n";
        let line = |path: &[&str]| super::super::load::line_at(text, key_offset(text, path));
        assert_eq!(line(&["server", "y"]), 4);
        assert_eq!(line(&["server", "z"]), 2);
        assert_eq!(line(&["a"]), 1);
        assert_eq!(line(&["tls", "cert"]), 1);
    }
}
