//! Data minimisation: filters a JSON document down to the permitted catalogue
//! fields.
//!
//! A [`FieldTrie`] is built once per bron from its catalogue; filtering walks
//! the document and the trie together, so no path strings are built except for
//! undeclared keys (which are reported by name). Anything that does not fit the
//! catalogue's shape is withheld, never passed through.
//!
//! The gateway filters bytes to bytes in one pass ([`FieldTrie::filter`],
//! `stream`); [`FieldTrie::filter_value`] filters a parsed document and is
//! the reference that pass is tested against.

use std::collections::HashMap;

mod stream;

use serde_json::{Map, Value};

use crate::policy::bitset::BitSet;
use crate::policy::model::CatalogueField;

#[derive(Debug, Default)]
struct Node {
    /// Catalogue index when this key is a leaf.
    leaf: Option<usize>,
    /// The value at this key is an array whose elements are described by `children`
    /// (or, for a leaf, an array of scalars).
    array: bool,
    children: HashMap<String, Node>,
}

/// The shape of a bron's documents, for filtering.
#[derive(Debug, Default)]
pub struct FieldTrie {
    root: Node,
    len: usize,
}

/// What a filter pass did, by catalogue index and by name for undeclared keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterOutcome {
    pub shared: BitSet,
    pub withheld: BitSet,
    /// Paths of keys not in the catalogue (or of the wrong shape), capped at
    /// [`MAX_REPORTED_UNDECLARED`].
    pub undeclared: Vec<String>,
    /// Total undeclared keys, including those beyond the cap.
    pub undeclared_count: usize,
}

impl FilterOutcome {
    /// Nothing done yet, for a catalogue of `len` fields.
    fn empty(len: usize) -> Self {
        Self {
            shared: BitSet::new(len),
            withheld: BitSet::new(len),
            undeclared: Vec::new(),
            undeclared_count: 0,
        }
    }

    /// Distinct withheld fields: declared ones plus undeclared keys.
    pub fn withheld_count(&self) -> usize {
        self.withheld.len() + self.undeclared_count
    }
}

/// Undeclared key names kept for the audit record; the count is always exact.
pub const MAX_REPORTED_UNDECLARED: usize = 64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("the document is not a JSON object")]
    NotAnObject,
    #[error("the document nests deeper than {0} levels")]
    TooDeep(usize),
    #[error("the document is not JSON")]
    NotJson,
    #[error("the document has an object with a key twice")]
    DuplicateKey,
}

impl FieldTrie {
    pub fn new(catalogue: &[CatalogueField]) -> Self {
        let mut root = Node::default();
        for (idx, f) in catalogue.iter().enumerate() {
            let mut node = &mut root;
            for seg in f.path.segments() {
                node = node.children.entry(seg.name).or_default();
                node.array = seg.array;
            }
            node.leaf = Some(idx);
        }
        Self {
            root,
            len: catalogue.len(),
        }
    }

    pub fn catalogue_len(&self) -> usize {
        self.len
    }

    /// Filters `doc` in place, keeping only fields in `allowed` (the
    /// reference for [`FieldTrie::filter`]).
    pub fn filter_value(
        &self,
        doc: &mut Value,
        allowed: &BitSet,
        max_depth: usize,
    ) -> Result<FilterOutcome, FilterError> {
        let Value::Object(map) = doc else {
            return Err(FilterError::NotAnObject);
        };
        let mut out = FilterOutcome::empty(self.len);
        let mut w = Walk {
            allowed,
            out: &mut out,
            max_depth,
            prefix: String::new(),
        };
        w.object(map, &self.root, 1)?;
        Ok(out)
    }
}

struct Walk<'a> {
    allowed: &'a BitSet,
    out: &'a mut FilterOutcome,
    max_depth: usize,
    /// Path of the current object, only used to name undeclared keys.
    prefix: String,
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

impl Walk<'_> {
    fn undeclared(&mut self, key: &str) {
        self.out.undeclared_count += 1;
        if self.out.undeclared.len() < MAX_REPORTED_UNDECLARED {
            let name = if self.prefix.is_empty() {
                key.to_owned()
            } else {
                format!("{}.{key}", self.prefix)
            };
            if !self.out.undeclared.contains(&name) {
                self.out.undeclared.push(name);
            }
        }
    }

    /// Extends the path by the container `key`; returns the length to cut
    /// it back to.
    fn enter(&mut self, key: &str) -> usize {
        let saved = self.prefix.len();
        if !self.prefix.is_empty() {
            self.prefix.push('.');
        }
        self.prefix.push_str(key);
        saved
    }

    /// Decides the leaf `idx` whose value has (or lacks) the declared
    /// shape; returns whether it is kept.
    fn leaf(&mut self, idx: usize, shape_ok: bool) -> bool {
        if !shape_ok {
            // Declared as a leaf, but carries structure: it could hide
            // anything, so it is withheld and named.
            self.out.withheld.insert(idx);
            return false;
        }
        if self.allowed.contains(idx) {
            self.out.shared.insert(idx);
            return true;
        }
        self.out.withheld.insert(idx);
        false
    }

    /// Withholds everything below `node` that is in the catalogue (so the
    /// record names the fields, not just the container).
    fn withhold_all(&mut self, node: &Node) {
        if let Some(i) = node.leaf {
            self.out.withheld.insert(i);
        }
        for child in node.children.values() {
            self.withhold_all(child);
        }
    }

    fn object(
        &mut self,
        map: &mut Map<String, Value>,
        node: &Node,
        depth: usize,
    ) -> Result<(), FilterError> {
        if depth > self.max_depth {
            return Err(FilterError::TooDeep(self.max_depth));
        }
        let mut result = Ok(());
        map.retain(|key, value| {
            if result.is_err() {
                return false;
            }
            match self.keep(key, value, node, depth) {
                Ok(k) => k,
                Err(e) => {
                    result = Err(e);
                    false
                }
            }
        });
        result
    }

    /// Decides one key of an object; filters its value in place. Returns
    /// whether the key stays.
    fn keep(
        &mut self,
        key: &str,
        value: &mut Value,
        parent: &Node,
        depth: usize,
    ) -> Result<bool, FilterError> {
        let Some(node) = parent.children.get(key) else {
            self.undeclared(key);
            return Ok(false);
        };
        if let Some(idx) = node.leaf {
            let shape_ok = match (node.array, &*value) {
                (true, Value::Array(items)) => items.iter().all(is_scalar),
                (true, Value::Null) => true,
                (true, _) => false,
                (false, v) => is_scalar(v),
            };
            return Ok(self.leaf(idx, shape_ok));
        }
        // A container.
        let saved = self.enter(key);
        let keep = match value {
            Value::Object(map) if !node.array => {
                self.object(map, node, depth + 1)?;
                !map.is_empty()
            }
            Value::Array(items) if node.array => {
                self.prefix.push_str("[]");
                let mut err = Ok(());
                items.retain_mut(|item| {
                    if err.is_err() {
                        return false;
                    }
                    match item {
                        Value::Object(m) => match self.object(m, node, depth + 1) {
                            Ok(()) => !m.is_empty(),
                            Err(e) => {
                                err = Err(e);
                                false
                            }
                        },
                        _ => false,
                    }
                });
                err?;
                !items.is_empty()
            }
            Value::Null => false,
            _ => {
                self.withhold_all(node);
                false
            }
        };
        self.prefix.truncate(saved);
        Ok(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fieldpath::FieldPath;
    use crate::policy::model::Category;
    use serde_json::json;

    fn catalogue(paths: &[&str]) -> Vec<CatalogueField> {
        paths
            .iter()
            .map(|p| CatalogueField {
                path: FieldPath::parse(p).unwrap(),
                label: (*p).into(),
                category: Category::Normal,
            })
            .collect()
    }

    const CAT: &[&str] = &[
        "leerling.naam",             // 0
        "leerling.bsn",              // 1
        "verzuim.uren",              // 2
        "verzuim.meldingen[].datum", // 3
        "verzuim.meldingen[].reden", // 4
        "doelen[]",                  // 5
    ];

    /// Filters `doc` both ways, asserts they agree, returns the result.
    fn run(doc: Value, allowed: &[usize]) -> (Value, FilterOutcome) {
        let trie = FieldTrie::new(&catalogue(CAT));
        let allowed = BitSet::from_indices(CAT.len(), allowed.iter().copied());
        let bytes = serde_json::to_vec(&doc).unwrap();
        let mut doc = doc;
        let out = trie.filter_value(&mut doc, &allowed, 32).unwrap();
        let (streamed, streamed_out) = trie.filter(&bytes, &allowed, 32).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&streamed).unwrap(), doc);
        assert_eq!(streamed_out, out);
        (doc, out)
    }

    /// A deterministic stream of pseudo-random numbers (xorshift).
    struct Dice(u64);

    impl Dice {
        fn roll(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// A document made of the catalogue's names, some undeclared ones, and
    /// values of every shape, nested up to `depth`.
    fn random_value(d: &mut Dice, depth: u32) -> Value {
        const NAMES: &[&str] = &[
            "leerling",
            "naam",
            "bsn",
            "verzuim",
            "uren",
            "meldingen",
            "datum",
            "reden",
            "doelen",
            "x",
            "geheim",
        ];
        let leaf = depth == 0 || d.roll(3) == 0;
        match d.roll(if leaf { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(d.roll(2) == 0),
            2 => json!(d.roll(1000) as f64 / 7.0 - 50.0),
            3 => json!(format!("w\"{}\u{e9}", d.roll(100))),
            4 => json!(i64::try_from(d.roll(1 << 40)).unwrap() - (1 << 39)),
            5 => (0..d.roll(4)).map(|_| random_value(d, depth - 1)).collect(),
            _ => Value::Object(
                (0..d.roll(5))
                    .map(|_| {
                        let name = NAMES[usize::try_from(d.roll(NAMES.len() as u64)).unwrap()];
                        (name.to_owned(), random_value(d, depth - 1))
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn the_one_pass_filter_decides_as_the_reference_on_random_documents() {
        let mut d = Dice(0x9e37_79b9_7f4a_7c15);
        let mut objects = 0;
        for _ in 0..5_000 {
            let doc = random_value(&mut d, 5);
            let allowed: Vec<usize> = (0..CAT.len()).filter(|_| d.roll(2) == 0).collect();
            if doc.is_object() {
                objects += 1;
                run(doc, &allowed);
            } else {
                let trie = FieldTrie::new(&catalogue(CAT));
                let bytes = serde_json::to_vec(&doc).unwrap();
                let all = BitSet::from_indices(CAT.len(), allowed.iter().copied());
                assert_eq!(
                    trie.filter(&bytes, &all, 32).map(|_| ()),
                    Err(FilterError::NotAnObject)
                );
            }
        }
        assert!(objects > 300, "{objects} objects generated");
    }

    #[test]
    fn the_one_pass_filter_keeps_the_documents_order_and_its_escapes() {
        let trie = FieldTrie::new(&catalogue(CAT));
        let all = BitSet::from_indices(CAT.len(), 0..CAT.len());
        let doc = br#"{"verzuim": {"uren": 4.5}, "leerling": {"naam": "A\"\u00e9\n", "bsn": "1"}, "doelen": [1, -2, null, "z"]}"#;
        let (out, _) = trie.filter(doc, &all, 32).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"verzuim":{"uren":4.5},"leerling":{"naam":"A\"é\n","bsn":"1"},"doelen":[1,-2,null,"z"]}"#
        );
    }

    #[test]
    fn the_one_pass_filter_refuses_what_is_not_one_json_object_with_unique_keys() {
        let trie = FieldTrie::new(&catalogue(CAT));
        let all = BitSet::from_indices(CAT.len(), 0..CAT.len());
        let cases: &[(&[u8], FilterError)] = &[
            (
                br#"{"leerling": {"naam": "A", "naam": "B"}}"#,
                FilterError::DuplicateKey,
            ),
            (br#"{"geheim": 1, "geheim": 2}"#, FilterError::DuplicateKey),
            (br#"{"leerling": {"naam": "A"}} {}"#, FilterError::NotJson),
            (br#"{"leerling": {"naam": "A"}"#, FilterError::NotJson),
            (br#"{"doelen": [1, 2,]}"#, FilterError::NotJson),
            (b"\"text\"", FilterError::NotAnObject),
            (b"[{}]", FilterError::NotAnObject),
            (b"{\"geheim\": \"\xe3(\"}", FilterError::NotJson),
            (
                br#"{"verzuim": {"meldingen": [{"datum": "x"}]}}"#,
                FilterError::TooDeep(2),
            ),
        ];
        for (doc, want) in cases {
            let depth = if *want == FilterError::TooDeep(2) {
                2
            } else {
                32
            };
            assert_eq!(
                trie.filter(doc, &all, depth).map(|_| ()).as_ref(),
                Err(want),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    #[test]
    fn keeps_exactly_the_allowed_fields_nested_and_in_arrays() {
        let (doc, out) = run(
            json!({
                "leerling": {"naam": "A", "bsn": "123"},
                "verzuim": {"uren": 4, "meldingen": [{"datum": "d1", "reden": "r1"}, {"datum": "d2", "reden": "r2"}]},
                "doelen": ["x", "y"],
                "geheim": {"a": 1}
            }),
            &[0, 3, 5],
        );
        assert_eq!(
            doc,
            json!({"leerling": {"naam": "A"}, "verzuim": {"meldingen": [{"datum": "d1"}, {"datum": "d2"}]}, "doelen": ["x", "y"]})
        );
        assert_eq!(out.shared.iter().collect::<Vec<_>>(), vec![0, 3, 5]);
        assert_eq!(out.withheld.iter().collect::<Vec<_>>(), vec![1, 2, 4]);
        assert_eq!(out.undeclared, vec!["geheim".to_string()]);
        assert_eq!(out.withheld_count(), 4);
    }

    #[test]
    fn removes_empty_containers() {
        let (doc, _) = run(
            json!({"leerling": {"bsn": "1"}, "verzuim": {"meldingen": [{"reden": "r"}]}}),
            &[0],
        );
        assert_eq!(doc, json!({}));
    }

    #[test]
    fn withholds_wrong_shapes() {
        // A leaf that carries an object, an array where an object is declared,
        // an array leaf with objects inside: all withheld, nothing leaks.
        let (doc, out) = run(
            json!({"leerling": {"naam": {"hidden": "x"}}, "verzuim": [1, 2], "doelen": [{"x": 1}]}),
            &[0, 2, 3, 4, 5],
        );
        assert_eq!(doc, json!({}));
        assert!(out.withheld.contains(0) && out.withheld.contains(5));
        assert!(out.withheld.contains(2) && out.withheld.contains(3));
        assert!(out.shared.is_empty());
    }

    #[test]
    fn names_undeclared_keys_with_their_path() {
        let (_, out) = run(
            json!({"verzuim": {"meldingen": [{"datum": "d", "extra": 1}], "x": 2}}),
            &[3],
        );
        assert_eq!(
            out.undeclared,
            vec![
                "verzuim.meldingen[].extra".to_string(),
                "verzuim.x".to_string()
            ]
        );
        assert_eq!(out.undeclared_count, 2);
    }

    #[test]
    fn rejects_non_objects_and_deep_documents() {
        let trie = FieldTrie::new(&catalogue(CAT));
        let all = BitSet::from_indices(CAT.len(), 0..CAT.len());
        assert_eq!(
            trie.filter_value(&mut json!([1]), &all, 8),
            Err(FilterError::NotAnObject)
        );
        let mut deep = json!({"verzuim": {"meldingen": [{"datum": "x"}]}});
        assert_eq!(
            trie.filter_value(&mut deep, &all, 2),
            Err(FilterError::TooDeep(2))
        );
    }
}
