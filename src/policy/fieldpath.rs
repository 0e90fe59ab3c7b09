//! Field paths (`verzuim.meldingen[].datum`) and globs over them.
//!
//! A path is a dot-separated list of segments; each segment is a name
//! (`[a-z0-9_]+`) optionally followed by `[]`, meaning "every element of the
//! array at this key". Catalogue entries are leaves: a scalar or an array of
//! scalars.

use std::fmt;

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Segment {
    pub name: String,
    pub array: bool,
}

/// A validated field path. Construct with [`FieldPath::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(String);

impl FieldPath {
    /// Parses and validates a catalogue path.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty field path".into());
        }
        if s.len() > 256 {
            return Err("field path longer than 256 characters".into());
        }
        for seg in s.split('.') {
            let name = seg.strip_suffix("[]").unwrap_or(seg);
            if name.is_empty() {
                return Err(format!("field path `{s}` has an empty segment"));
            }
            if !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(format!(
                    "field path `{s}`: segment `{seg}` may only contain a-z, 0-9 and _ (optionally followed by [])"
                ));
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The segments of this path, in order.
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        self.0.split('.').map(|seg| match seg.strip_suffix("[]") {
            Some(name) => Segment {
                name: name.to_owned(),
                array: true,
            },
            None => Segment {
                name: seg.to_owned(),
                array: false,
            },
        })
    }

    /// True when `other` lies strictly below this path (this path is a
    /// container of `other`), e.g. `verzuim` is a prefix of `verzuim.uren`.
    pub fn is_strict_prefix_of(&self, other: &FieldPath) -> bool {
        let a = self.0.as_str();
        let b = other.0.as_str();
        b.len() > a.len()
            && b.starts_with(a)
            && matches!(b.as_bytes().get(a.len()), Some(b'.' | b'['))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A glob over field paths: `*` matches within one segment (no `.`), `**`
/// matches any sequence including dots. Everything else is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldGlob(String);

impl FieldGlob {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("empty field pattern".into());
        }
        if s.contains("***") {
            return Err(format!("field pattern `{s}`: `***` is not meaningful"));
        }
        if s.len() > 256 {
            return Err("field pattern longer than 256 characters".into());
        }
        let literal: String = s.chars().filter(|c| *c != '*').collect();
        if !literal.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || b == b'_'
                || b == b'.'
                || b == b'['
                || b == b']'
        }) {
            return Err(format!(
                "field pattern `{s}` may only contain a-z, 0-9, _, ., [], * and **"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_literal(&self) -> bool {
        !self.0.contains('*')
    }

    /// True when the glob matches the whole path.
    pub fn matches(&self, path: &FieldPath) -> bool {
        glob_match(self.0.as_bytes(), path.0.as_bytes())
    }
}

impl fmt::Display for FieldGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Dynamic-programming matcher: O(pattern × path) time and O(path) memory
/// whatever the pattern (a backtracking matcher is exponential in the number
/// of `**`, which a single hostile policy file could use to stall a reload).
fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    // Tokens: Some(b) literal byte, None(false) `*`, None(true) `**`.
    let mut tokens: Vec<Result<u8, bool>> = Vec::with_capacity(pat.len());
    let mut i = 0;
    while i < pat.len() {
        if pat[i] == b'*' {
            let double = pat.get(i + 1) == Some(&b'*');
            tokens.push(Err(double));
            i += if double { 2 } else { 1 };
        } else {
            tokens.push(Ok(pat[i]));
            i += 1;
        }
    }
    // reach[j]: the tokens so far can match s[..j].
    let mut reach = vec![false; s.len() + 1];
    reach[0] = true;
    for t in &tokens {
        let mut next = vec![false; s.len() + 1];
        match t {
            Ok(c) => {
                for j in 0..s.len() {
                    if reach[j] && s[j] == *c {
                        next[j + 1] = true;
                    }
                }
            }
            Err(double) => {
                // A star matches empty, or extends a match by one byte
                // (for a single star: any byte but '.').
                for j in 0..=s.len() {
                    next[j] = reach[j] || (j > 0 && next[j - 1] && (*double || s[j - 1] != b'.'));
                }
            }
        }
        reach = next;
    }
    reach[s.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> FieldPath {
        FieldPath::parse(s).unwrap()
    }
    fn g(s: &str) -> FieldGlob {
        FieldGlob::parse(s).unwrap()
    }

    #[test]
    fn parses_valid_paths_and_rejects_bad_ones() {
        assert!(FieldPath::parse("verzuim.meldingen[].datum").is_ok());
        assert!(FieldPath::parse("ouders[]").is_ok());
        for bad in ["", "a..b", "A.b", "a.b[", "a-b", "a.[]", "a b"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn segments_split_arrays() {
        let segs: Vec<_> = p("a.b[].c").segments().collect();
        assert_eq!(segs.len(), 3);
        assert!(segs[1].array && segs[1].name == "b");
        assert!(!segs[2].array);
    }

    #[test]
    fn single_star_stays_within_a_segment() {
        assert!(g("verzuim.*").matches(&p("verzuim.uren")));
        assert!(!g("verzuim.*").matches(&p("verzuim.meldingen[].datum")));
        assert!(g("verzuim.*[].datum").matches(&p("verzuim.meldingen[].datum")));
        assert!(g("leerling.*naam").matches(&p("leerling.achternaam")));
    }

    #[test]
    fn double_star_crosses_segments() {
        assert!(g("verzuim.**").matches(&p("verzuim.meldingen[].datum")));
        assert!(!g("verzuim.**").matches(&p("verzuimx.a")));
        assert!(g("**.datum").matches(&p("a.b[].datum")));
        assert!(!g("**.datum").matches(&p("a.b[].datum2")));
    }

    #[test]
    fn many_double_stars_stay_fast() {
        // A backtracking matcher would not finish this (12 `**` over 250
        // bytes); the DP matcher answers in 13 × 251 steps.
        let g = g("**a**a**a**a**a**a**a**a**a**a**a**a**b");
        assert!(!g.matches(&p(&"a".repeat(250))));
        assert!(g.matches(&p(&format!("{}b", "a".repeat(249)))));
    }

    #[test]
    fn literal_glob_matches_exactly() {
        assert!(g("leerling.naam").matches(&p("leerling.naam")));
        assert!(!g("leerling.naam").matches(&p("leerling.naam2")));
        assert!(g("leerling.naam").is_literal());
    }

    #[test]
    fn strict_prefix() {
        assert!(p("a").is_strict_prefix_of(&p("a.b")));
        assert!(p("a").is_strict_prefix_of(&p("a[].b")));
        assert!(!p("a").is_strict_prefix_of(&p("ab")));
        assert!(!p("a").is_strict_prefix_of(&p("a")));
    }
}
