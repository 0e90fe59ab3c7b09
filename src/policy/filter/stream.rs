//! The filter in one pass from the document's bytes to the filtered bytes:
//! the parser's events drive the walk of the [`FieldTrie`], and what is kept
//! is written out as it is read; no tree of values is built (issue 17 point
//! 3: the bron's document was parsed into a `serde_json::Value` of one
//! allocation per key and value, filtered, and serialised again).
//!
//! Decisions are those of [`FieldTrie::filter_value`], the reference this
//! is tested against (unit tests here and the `field_filter` fuzz target),
//! with two differences: keys keep the document's order (the reference
//! sorts them), and a document with a key twice in one object is refused
//! (the reference keeps the last; which one a client would read is
//! anybody's guess, so neither is shared).
//!
//! Writing: a key and its value are written as they are parsed; when the
//! value turns out not to be kept (withheld, the wrong shape, an empty
//! container), the output is cut back to where the key began.

use std::borrow::Cow;
use std::fmt;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{FieldTrie, FilterError, FilterOutcome, Node, Walk};
use crate::policy::bitset::BitSet;

impl FieldTrie {
    /// Filters the JSON document `input`, keeping only fields in `allowed`;
    /// returns the filtered document's bytes and what was done.
    pub fn filter(
        &self,
        input: &[u8],
        allowed: &BitSet,
        max_depth: usize,
    ) -> Result<(Vec<u8>, FilterOutcome), FilterError> {
        let mut out = FilterOutcome::empty(self.len);
        let mut s = Stream {
            walk: Walk {
                allowed,
                out: &mut out,
                max_depth,
                prefix: String::new(),
            },
            bytes: Vec::with_capacity(input.len()),
            fault: None,
        };
        // Checked whole, once: the parser does not check the strings it
        // skips, and a document is refused whole or filtered whole.
        let input = std::str::from_utf8(input).map_err(|_| FilterError::NotJson)?;
        let mut de = serde_json::Deserializer::from_str(input);
        let parsed = de
            .deserialize_any(Top(&mut s, &self.root))
            .and_then(|()| de.end());
        match (parsed, s.fault) {
            (Ok(()), _) => Ok((s.bytes, out)),
            (Err(_), Some(fault)) => Err(fault),
            (Err(_), None) => Err(FilterError::NotJson),
        }
    }
}

/// The walk with its output.
struct Stream<'a> {
    walk: Walk<'a>,
    bytes: Vec<u8>,
    /// Why the walk stopped, when it was not the parser's own finding.
    fault: Option<FilterError>,
}

impl Stream<'_> {
    fn stop<E: de::Error>(&mut self, fault: FilterError) -> E {
        let e = E::custom(&fault);
        self.fault = Some(fault);
        e
    }

    fn write_str(&mut self, s: &str) {
        // Writing a `str` to a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut self.bytes, s);
    }
}

/// The document: an object, or refused.
struct Top<'s, 'a>(&'s mut Stream<'a>, &'a Node);

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let Top(s, node) = self;
        object(s, node, 1, map).map(|_| ())
    }

    // Anything else is not an object: refused whatever it holds.
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.0.stop(FilterError::NotAnObject))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.0.stop(FilterError::NotAnObject))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.0.stop(FilterError::NotAnObject))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.0.stop(FilterError::NotAnObject))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.0.stop(FilterError::NotAnObject))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.0.stop(FilterError::NotAnObject))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(self.0.stop(FilterError::NotAnObject))
    }
}

/// Walks one object below `node`, writing what is kept. Returns whether
/// any key was kept (the output holds `{}` otherwise).
fn object<'de, A: MapAccess<'de>>(
    s: &mut Stream<'_>,
    node: &Node,
    depth: usize,
    mut map: A,
) -> Result<bool, A::Error> {
    if depth > s.walk.max_depth {
        return Err(s.stop(FilterError::TooDeep(s.walk.max_depth)));
    }
    s.bytes.push(b'{');
    let mut kept = 0usize;
    let mut keys: Vec<Cow<'de, str>> = Vec::new();
    while let Some(key) = map.next_key_seed(Key)? {
        let Some(child) = node.children.get(key.as_ref()) else {
            s.walk.undeclared(&key);
            map.next_value::<IgnoredAny>()?;
            keys.push(key);
            continue;
        };
        let mark = s.bytes.len();
        if kept > 0 {
            s.bytes.push(b',');
        }
        s.write_str(&key);
        s.bytes.push(b':');
        let container = child.leaf.is_none().then(|| s.walk.enter(&key));
        let keep = map.next_value_seed(Field {
            s: &mut *s,
            node: child,
            depth,
        })?;
        if let Some(saved) = container {
            s.walk.prefix.truncate(saved);
        }
        if keep {
            kept += 1;
        } else {
            s.bytes.truncate(mark);
        }
        keys.push(key);
    }
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return Err(s.stop(FilterError::DuplicateKey));
    }
    s.bytes.push(b'}');
    Ok(kept > 0)
}

/// A key, borrowed from the input unless it had escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// The value of a declared key: a leaf (scalar or array of scalars) or a
/// container (object, or array of objects). Returns whether it is kept.
struct Field<'s, 'a, 'n> {
    s: &'s mut Stream<'a>,
    node: &'n Node,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Field<'_, '_, '_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        let Field { s, node, depth } = self;
        match node.leaf {
            Some(idx) => {
                let array = node.array;
                let shape_ok = d.deserialize_any(Leaf { s: &mut *s, array })?;
                Ok(s.walk.leaf(idx, shape_ok))
            }
            None => d.deserialize_any(Container { s, node, depth }),
        }
    }
}

/// A leaf's value, written out; returns whether it has the declared shape.
struct Leaf<'s, 'a> {
    s: &'s mut Stream<'a>,
    /// Declared as an array of scalars (`doelen[]`).
    array: bool,
}

impl<'de> Visitor<'de> for Leaf<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut all_scalars = self.array;
        self.s.bytes.push(b'[');
        let mut first = true;
        while let Some(scalar) = seq.next_element_seed(Scalar(&mut *self.s, first))? {
            all_scalars &= scalar;
            first = false;
        }
        self.s.bytes.push(b']');
        Ok(all_scalars)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        IgnoredAny.visit_map(map)?;
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        self.s.bytes.extend_from_slice(b"null");
        // `null` stands for an empty list as well as for no value.
        Ok(true)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        write_scalar(self.s, &v);
        Ok(!self.array)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        write_scalar(self.s, &v);
        Ok(!self.array)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        write_scalar(self.s, &v);
        Ok(!self.array)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        write_scalar(self.s, &v);
        Ok(!self.array)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.s.write_str(v);
        Ok(!self.array)
    }
}

fn write_scalar<T: serde::Serialize>(s: &mut Stream<'_>, v: &T) {
    // A number or a bool written to a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut s.bytes, v);
}

/// One element of an array leaf: written out; returns whether it is a
/// scalar (an object or array inside makes the whole leaf the wrong shape).
struct Scalar<'s, 'a>(&'s mut Stream<'a>, bool);

impl<'de> DeserializeSeed<'de> for Scalar<'_, '_> {
    type Value = bool;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        let Scalar(s, first) = self;
        if !first {
            s.bytes.push(b',');
        }
        d.deserialize_any(ScalarVisitor(s))
    }
}

struct ScalarVisitor<'s, 'a>(&'s mut Stream<'a>);

impl<'de> Visitor<'de> for ScalarVisitor<'_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<bool, A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(false)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        IgnoredAny.visit_map(map)?;
        Ok(false)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        self.0.bytes.extend_from_slice(b"null");
        Ok(true)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        write_scalar(self.0, &v);
        Ok(true)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        write_scalar(self.0, &v);
        Ok(true)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        write_scalar(self.0, &v);
        Ok(true)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        write_scalar(self.0, &v);
        Ok(true)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        self.0.write_str(v);
        Ok(true)
    }
}

/// The value of a declared container. Returns whether anything in it is kept.
struct Container<'s, 'a, 'n> {
    s: &'s mut Stream<'a>,
    node: &'n Node,
    depth: usize,
}

impl Container<'_, '_, '_> {
    /// A scalar, or the wrong kind of container: everything the catalogue
    /// declares below it is withheld (so the record names the fields).
    fn wrong_shape(self) -> bool {
        self.s.walk.withhold_all(self.node);
        false
    }
}

impl<'de> Visitor<'de> for Container<'_, '_, '_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<bool, A::Error> {
        if self.node.array {
            IgnoredAny.visit_map(map)?;
            return Ok(self.wrong_shape());
        }
        object(self.s, self.node, self.depth + 1, map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        if !self.node.array {
            IgnoredAny.visit_seq(seq)?;
            return Ok(self.wrong_shape());
        }
        let Container { s, node, depth } = self;
        let saved = s.walk.prefix.len();
        s.walk.prefix.push_str("[]");
        s.bytes.push(b'[');
        let mut kept = 0usize;
        while let Some(()) = seq.next_element_seed(Element {
            s: &mut *s,
            node,
            depth,
            kept: &mut kept,
        })? {}
        s.bytes.push(b']');
        s.walk.prefix.truncate(saved);
        Ok(kept > 0)
    }

    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(self.wrong_shape())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(self.wrong_shape())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(self.wrong_shape())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(self.wrong_shape())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(self.wrong_shape())
    }
}

/// One element of an array of objects: an object is walked and kept when
/// anything in it is; anything else is dropped.
struct Element<'s, 'a, 'n, 'k> {
    s: &'s mut Stream<'a>,
    node: &'n Node,
    depth: usize,
    kept: &'k mut usize,
}

impl<'de> DeserializeSeed<'de> for Element<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Element<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let mark = self.s.bytes.len();
        if *self.kept > 0 {
            self.s.bytes.push(b',');
        }
        if object(self.s, self.node, self.depth + 1, map)? {
            *self.kept += 1;
        } else {
            self.s.bytes.truncate(mark);
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        IgnoredAny.visit_seq(seq)?;
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
}
