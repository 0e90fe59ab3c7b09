//! Resource path templates such as `/leerlingen/{leerling}/verzuim`.

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSegment {
    Literal(String),
    Variable(String),
}

/// A validated path template. Literals match `[A-Za-z0-9._~-]+` exactly; a
/// variable matches one request segment of `[A-Za-z0-9_-]{1,64}`. Anything
/// else in a request (dots-only segments, percent-escapes, empty segments) is
/// refused before matching, so a template can never match a traversal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    raw: String,
    segments: Vec<TemplateSegment>,
}

/// Characters a variable value may contain.
pub fn is_valid_variable_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl PathTemplate {
    pub fn parse(s: &str) -> Result<Self, String> {
        let Some(rest) = s.strip_prefix('/') else {
            return Err(format!("path template `{s}` must start with /"));
        };
        let mut segments = Vec::new();
        for seg in rest.split('/') {
            if let Some(inner) = seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
                if inner.is_empty()
                    || !inner
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    return Err(format!(
                        "path template `{s}`: variable `{seg}` must be {{[a-z0-9_]+}}"
                    ));
                }
                if segments
                    .iter()
                    .any(|x| matches!(x, TemplateSegment::Variable(v) if v == inner))
                {
                    return Err(format!("path template `{s}`: variable `{inner}` repeats"));
                }
                segments.push(TemplateSegment::Variable(inner.to_owned()));
            } else if !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
            {
                segments.push(TemplateSegment::Literal(seg.to_owned()));
            } else {
                return Err(format!(
                    "path template `{s}`: segment `{seg}` is not a literal or {{variable}}"
                ));
            }
        }
        Ok(Self {
            raw: s.to_owned(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    pub fn has_variable(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, TemplateSegment::Variable(v) if v == name))
    }

    pub fn segments(&self) -> &[TemplateSegment] {
        &self.segments
    }

    /// Matches already-split request segments. Returns the variable bindings
    /// in template order, or `None`.
    pub fn matches<'a>(&self, request: &[&'a str]) -> Option<Vec<(&str, &'a str)>> {
        if request.len() != self.segments.len() {
            return None;
        }
        let mut vars = Vec::new();
        for (t, r) in self.segments.iter().zip(request) {
            match t {
                TemplateSegment::Literal(l) if l == r => {}
                TemplateSegment::Literal(_) => return None,
                TemplateSegment::Variable(name) => {
                    if !is_valid_variable_value(r) {
                        return None;
                    }
                    vars.push((name.as_str(), *r));
                }
            }
        }
        Some(vars)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_and_binds() {
        let t = PathTemplate::parse("/leerlingen/{leerling}/verzuim").unwrap();
        let m = t.matches(&["leerlingen", "L1001", "verzuim"]).unwrap();
        assert_eq!(m, vec![("leerling", "L1001")]);
        assert!(t.matches(&["leerlingen", "L1001"]).is_none());
        assert!(t.matches(&["leerlingen", "..", "verzuim"]).is_none());
        assert!(t.matches(&["leerlingen", "a%2Fb", "verzuim"]).is_none());
        assert!(t.matches(&["leerlingen", "", "verzuim"]).is_none());
        assert!(t.matches(&["leerlingen", "L1", "Verzuim"]).is_none());
    }

    #[test]
    fn rejects_bad_templates() {
        for bad in [
            "leerlingen",
            "/a//b",
            "/a/{B}",
            "/a/{x}/{x}",
            "/a/..",
            "/a/%2F",
            "/a/{}",
        ] {
            assert!(PathTemplate::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
