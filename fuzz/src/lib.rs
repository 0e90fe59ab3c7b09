//! The checks behind the fuzz targets, shared with the ordinary regression
//! test `tests/fuzz_corpus.rs` (which includes this file with `#[path]`), so a
//! corpus file is replayed through exactly the code the fuzzer ran.
//!
//! Only the public API of `poortwachter` is used. Every `check_*` function
//! takes the raw fuzz input and panics (assert) when an invariant breaks;
//! malformed input that the API is allowed to refuse is simply skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use poortwachter::gateway::http::{TraceContext, parse_path};
use poortwachter::policy::bitset::BitSet;
use poortwachter::policy::fieldpath::{FieldGlob, FieldPath};
use poortwachter::policy::filter::FieldTrie;
use poortwachter::policy::model::{Bron, PolicySet};
use poortwachter::policy::template::{PathTemplate, TemplateSegment, is_valid_variable_value};
use poortwachter::policy::{LoadError, load_dir};
use serde_json::Value;

/// Loads the committed policy set once; the fixtures the targets need.
pub fn load_policies(policies: &Path) -> PolicySet {
    load_dir(policies).expect("the committed policy set loads")
}

// ---------------------------------------------------------------------------
// (1) policy parser / validator
// ---------------------------------------------------------------------------

/// A scratch copy of the policy directory; each input is written into it as
/// one extra (or replaced) file and the whole directory is loaded.
pub struct PolicyDir {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    partners: Vec<u8>,
}

impl PolicyDir {
    pub fn new(policies: &Path) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("policies");
        for sub in ["", "bronnen", "overleggen"] {
            std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
            for e in std::fs::read_dir(policies.join(sub)).expect("read policies") {
                let p = e.expect("dir entry").path();
                if p.extension().is_some_and(|x| x == "toml") {
                    std::fs::copy(&p, dir.join(sub).join(p.file_name().expect("name")))
                        .expect("copy");
                }
            }
        }
        let partners = std::fs::read(dir.join("partners.toml")).expect("partners.toml");
        Self {
            _tmp: tmp,
            dir,
            partners,
        }
    }

    /// Where the input goes: a first line `#bron` makes it `bronnen/fuzz.toml`,
    /// `#partners` replaces `partners.toml`; anything else is
    /// `overleggen/fuzz.toml`.
    fn target(data: &[u8]) -> &'static str {
        if data.starts_with(b"#partners") {
            "partners.toml"
        } else if data.starts_with(b"#bron") {
            "bronnen/fuzz.toml"
        } else {
            "overleggen/fuzz.toml"
        }
    }

    /// Loads the directory with `data` in place; must return Ok or Err, never
    /// panic. Returns whether the set loaded.
    pub fn check(&self, data: &[u8]) -> bool {
        let rel = Self::target(data);
        let path = self.dir.join(rel);
        std::fs::write(&path, data).expect("write input");
        let result = load_dir(&self.dir);
        // Restore the directory for the next input.
        if rel == "partners.toml" {
            std::fs::write(&path, &self.partners).expect("restore partners");
        } else {
            std::fs::remove_file(&path).expect("remove input");
        }
        match result {
            Ok(set) => {
                assert_eq!(set.version.len(), 64, "version is a sha256 hex");
                for bron in set.bronnen.values() {
                    for r in &bron.resources {
                        // A validated template parses again to itself.
                        let again = PathTemplate::parse(r.template.as_str())
                            .expect("validated template reparses");
                        assert_eq!(&again, &r.template);
                        for &i in &r.fields {
                            assert!(i < bron.catalogue.len(), "field index in range");
                        }
                    }
                    // A validated catalogue builds a trie.
                    let _ = FieldTrie::new(&bron.catalogue);
                }
                true
            }
            Err(e @ LoadError::Invalid(_)) => {
                let LoadError::Invalid(problems) = &e else {
                    unreachable!()
                };
                assert!(!problems.is_empty(), "Invalid carries problems");
                let _ = e.to_string();
                false
            }
            Err(e) => {
                // `Io` is how a file that is not UTF-8 is refused.
                let _ = e.to_string();
                false
            }
        }
    }
}

/// Field paths, globs and templates, one candidate per line.
pub fn check_policy_strings(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<&str> = text.lines().take(16).collect();
    let mut paths = Vec::new();
    let mut globs = Vec::new();
    for line in &lines {
        if let Ok(p) = FieldPath::parse(line) {
            assert_eq!(p.as_str(), *line);
            // Segments join back to the path.
            let joined: Vec<String> = p
                .segments()
                .map(|s| {
                    assert!(!s.name.is_empty());
                    if s.array {
                        format!("{}[]", s.name)
                    } else {
                        s.name
                    }
                })
                .collect();
            assert_eq!(joined.join("."), *line);
            paths.push(p);
        }
        if let Ok(g) = FieldGlob::parse(line) {
            if g.is_literal()
                && let Ok(p) = FieldPath::parse(line)
            {
                assert!(g.matches(&p), "literal glob {line} must match itself");
            }
            globs.push(g);
        }
        if let Ok(t) = PathTemplate::parse(line) {
            check_template_self_match(&t);
        }
    }
    for g in &globs {
        for p in &paths {
            let m = g.matches(p);
            // `**` matches everything.
            if g.as_str() == "**" {
                assert!(m);
            }
        }
    }
}

fn check_template_self_match(t: &PathTemplate) {
    let req: Vec<&str> = t
        .segments()
        .iter()
        .map(|s| match s {
            TemplateSegment::Literal(l) => {
                assert!(!l.is_empty() && l != "." && l != "..");
                l.as_str()
            }
            TemplateSegment::Variable(_) => "x",
        })
        .collect();
    assert!(
        t.matches(&req).is_some(),
        "template {} must match its own literals",
        t.as_str()
    );
}

// ---------------------------------------------------------------------------
// (2) JSON field filter
// ---------------------------------------------------------------------------

/// Input layout: byte 0 picks the bron, byte 1 the depth limit (1..=64),
/// bytes 2..10 the allowed mask (catalogue index i is allowed when bit
/// `i % 64` is set), the rest is the JSON document.
pub struct Filters(Vec<(Arc<Bron>, FieldTrie)>);

impl Filters {
    /// One trie per bron of the set, in id order.
    pub fn new(set: &PolicySet) -> Self {
        Self(
            set.bronnen
                .values()
                .map(|b| (b.clone(), FieldTrie::new(&b.catalogue)))
                .collect(),
        )
    }
}

pub fn check_field_filter(filters: &Filters, data: &[u8]) {
    let bronnen = &filters.0;
    if data.len() < 10 || bronnen.is_empty() {
        return;
    }
    let (bron, trie) = &bronnen[data[0] as usize % bronnen.len()];
    let max_depth = 1 + (data[1] as usize % 64);
    let mask = u64::from_le_bytes(data[2..10].try_into().expect("8 bytes"));
    let input = &data[10..];
    let n = bron.catalogue.len();
    let allowed = BitSet::from_indices(n, (0..n).filter(|i| mask & (1 << (i % 64)) != 0));
    // The gateway's one-pass filter decides as the reference does on the
    // parsed document (it refuses duplicate keys, which the reference
    // resolves by keeping the last).
    let streamed = trie.filter(input, &allowed, max_depth);
    let Ok(mut doc) = serde_json::from_slice::<Value>(input) else {
        assert!(
            streamed.is_err(),
            "the one-pass filter accepted invalid JSON"
        );
        return;
    };
    let mut reference = doc.clone();
    match (
        &streamed,
        trie.filter_value(&mut reference, &allowed, max_depth),
    ) {
        (Ok((bytes, out)), Ok(ref_out)) => {
            let parsed: Value = serde_json::from_slice(bytes).expect("the filter writes JSON");
            assert_eq!(parsed, reference, "the one-pass filter kept other fields");
            assert_eq!(out.shared, ref_out.shared);
            assert_eq!(out.withheld, ref_out.withheld);
            assert_eq!(out.undeclared_count, ref_out.undeclared_count);
        }
        (Err(poortwachter::policy::filter::FilterError::DuplicateKey), _) => {
            assert!(
                has_duplicate_keys(input),
                "a duplicate key that is not there"
            );
        }
        // With a key twice the reference filters another document (the
        // last value of each key), so it may find nothing wrong.
        (Err(_), _) if has_duplicate_keys(input) => {}
        (Err(e), Ok(_)) => panic!("the one-pass filter refused what the reference filters: {e}"),
        (Ok(_), Err(e)) => panic!("the one-pass filter filtered what the reference refuses: {e}"),
        (Err(a), Err(b)) => assert_eq!(a, &b),
    }
    let allowed_paths: BTreeSet<&str> = (0..n)
        .filter(|&i| allowed.contains(i))
        .map(|i| bron.catalogue[i].path.as_str())
        .collect();
    let was_object = doc.is_object();
    if let Ok(out) = trie.filter_value(&mut doc, &allowed, max_depth) {
        assert!(was_object);
        for i in out.shared.iter() {
            assert!(allowed.contains(i), "shared field {i} is not allowed");
        }
        assert!(out.undeclared.len() <= poortwachter::policy::filter::MAX_REPORTED_UNDECLARED);
        assert!(out.undeclared.len() <= out.undeclared_count);
        let Value::Object(map) = &doc else {
            panic!("filtered document is no longer an object")
        };
        for (k, v) in map {
            check_leaves(k, v, &allowed_paths);
        }
    } else {
        // Refused documents are not forwarded; nothing to check.
    }
}

/// Whether some object in the JSON document `input` has a key twice.
fn has_duplicate_keys(input: &[u8]) -> bool {
    struct Unique;
    impl<'de> serde::Deserialize<'de> for Unique {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(UniqueVisitor)
        }
    }
    struct UniqueVisitor;
    impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
        type Value = Unique;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Unique, A::Error> {
            let mut keys = BTreeSet::new();
            while let Some(k) = m.next_key::<String>()? {
                if !keys.insert(k) {
                    return Err(serde::de::Error::custom("duplicate key"));
                }
                m.next_value::<Unique>()?;
            }
            Ok(Unique)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut s: A) -> Result<Unique, A::Error> {
            while s.next_element::<Unique>()?.is_some() {}
            Ok(Unique)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_unit<E>(self) -> Result<Unique, E> {
            Ok(Unique)
        }
    }
    serde_json::from_slice::<Unique>(input).is_err()
        && serde_json::from_slice::<Value>(input).is_ok()
}

/// Every leaf left in the output must be an allowed catalogue path.
fn check_leaves(path: &str, v: &Value, allowed: &BTreeSet<&str>) {
    match v {
        Value::Object(m) => {
            assert!(!m.is_empty(), "empty container `{path}` left in output");
            for (k, child) in m {
                check_leaves(&format!("{path}.{k}"), child, allowed);
            }
        }
        Value::Array(items) => {
            let apath = format!("{path}[]");
            if items.iter().all(|x| !x.is_object() && !x.is_array()) {
                // An array of scalars is one leaf.
                assert!(
                    allowed.contains(apath.as_str()),
                    "leaf `{apath}` is not allowed but was kept"
                );
            } else {
                for item in items {
                    let Value::Object(m) = item else {
                        panic!("mixed array `{apath}` left in output");
                    };
                    assert!(!m.is_empty(), "empty element of `{apath}` left in output");
                    for (k, child) in m {
                        check_leaves(&format!("{apath}.{k}"), child, allowed);
                    }
                }
            }
        }
        Value::Null => assert!(
            allowed.contains(path) || allowed.contains(format!("{path}[]").as_str()),
            "leaf `{path}` is not allowed but was kept"
        ),
        _ => assert!(
            allowed.contains(path),
            "leaf `{path}` is not allowed but was kept"
        ),
    }
}

// ---------------------------------------------------------------------------
// (3) route matching
// ---------------------------------------------------------------------------

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// The input is a request target; it goes through `parse_path` and every
/// resource template of every bron. Also tried as a template itself.
pub fn check_route(set: &PolicySet, data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(t) = PathTemplate::parse(text)
    {
        assert_eq!(t.as_str(), text);
        check_template_self_match(&t);
    }
    let Ok(uri) = Uri::try_from(data) else {
        return;
    };
    let Ok((overleg, bron, segs)) = parse_path(&uri) else {
        return;
    };
    assert!(uri.query().is_none(), "query accepted");
    assert!(is_ident(overleg), "overleg `{overleg}` accepted");
    assert!(is_ident(bron), "bron `{bron}` accepted");
    assert!(!segs.is_empty());
    for s in &segs {
        assert!(
            !s.is_empty()
                && *s != "."
                && *s != ".."
                && !s.contains(['%', '\\', ';'])
                && !s.bytes().any(|b| b.is_ascii_control()),
            "unsafe segment {s:?} accepted in {uri}"
        );
    }
    for b in set.bronnen.values() {
        for r in &b.resources {
            let Some(vars) = r.template.matches(&segs) else {
                continue;
            };
            let tsegs = r.template.segments();
            assert_eq!(tsegs.len(), segs.len());
            let nvars = tsegs
                .iter()
                .filter(|s| matches!(s, TemplateSegment::Variable(_)))
                .count();
            assert_eq!(vars.len(), nvars);
            for (t, s) in tsegs.iter().zip(&segs) {
                if let TemplateSegment::Literal(l) = t {
                    assert_eq!(l, s);
                }
            }
            for (name, value) in vars {
                assert!(r.template.has_variable(name));
                assert!(
                    is_valid_variable_value(value),
                    "variable {name}={value:?} bound"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// (4) header handling
// ---------------------------------------------------------------------------

fn lower_hex(s: &str, n: usize) -> bool {
    s.len() == n
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A reference reading of W3C `traceparent` version 00, as the gateway
/// documents it: `00-<32 hex>-<16 hex>-<2 hex>`, ids not all zero.
fn reference_trace_id(tp: &str) -> Option<&str> {
    if tp.len() > 128 {
        return None;
    }
    let parts: Vec<&str> = tp.split('-').collect();
    let [v, t, s, f] = parts.as_slice() else {
        return None;
    };
    (*v == "00"
        && lower_hex(t, 32)
        && lower_hex(s, 16)
        && lower_hex(f, 2)
        && t.bytes().any(|b| b != b'0')
        && s.bytes().any(|b| b != b'0'))
    .then_some(*t)
}

fn check_outgoing(header: &str, trace_id: &str) {
    assert!(
        reference_trace_id(header) == Some(trace_id),
        "outgoing traceparent {header:?} invalid or not for trace {trace_id}"
    );
}

/// Input lines: `name: value` adds a header, a line without `:` adds a
/// `traceparent` with that value. Invalid names/values are skipped (hyper
/// would refuse them before the gateway sees them).
pub fn check_headers(data: &[u8]) {
    let mut h = HeaderMap::new();
    for line in data.split(|b| *b == b'\n').take(32) {
        let (name, value) = match line.iter().position(|b| *b == b':') {
            Some(i) => (&line[..i], line[i + 1..].trim_ascii_start()),
            None => (&b"traceparent"[..], line),
        };
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        else {
            continue;
        };
        h.append(name, value);
    }
    let tc = TraceContext::from_headers(&h);
    assert!(
        lower_hex(&tc.trace_id, 32) && tc.trace_id.bytes().any(|b| b != b'0'),
        "trace id {:?}",
        tc.trace_id
    );
    check_outgoing(&tc.header, &tc.trace_id);
    check_outgoing(&tc.child_header(), &tc.trace_id);
    // A valid incoming traceparent is continued verbatim; otherwise a new
    // trace starts.
    let incoming = h.get("traceparent").and_then(|v| v.to_str().ok());
    match incoming.and_then(reference_trace_id) {
        Some(t) => {
            assert_eq!(tc.trace_id, t);
            assert_eq!(Some(tc.header.as_str()), incoming);
        }
        None => assert_ne!(Some(tc.header.as_str()), incoming),
    }
    // Identifier headers (x-doelbinding, x-rol) are read by a private
    // function in proxy.rs (`ident_header`), not reachable from here.
}
