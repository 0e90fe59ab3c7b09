//! Request-parsing helpers shared by the proxy and the register API: path
//! segments under the same refusals, identifier-valued headers, a bounded
//! JSON body, and W3C trace context.

use bytes::Bytes;
use http::{HeaderMap, Request, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::gateway::problem::{ClientError, ProxyError};
use crate::gateway::upstream::is_json_media_type;

const MAX_TRACEPARENT: usize = 128;

/// A request body that claims to be JSON, within `max_request_body_bytes`.
pub(crate) async fn read_json_body(
    req: Request<Incoming>,
    limit: usize,
) -> Result<Bytes, ProxyError> {
    let ct_ok = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(is_json_media_type);
    if !ct_ok {
        return Err(ClientError::UnsupportedMediaType.into());
    }
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit as u64
    {
        return Err(ClientError::BodyTooLarge(limit).into());
    }
    Ok(Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ProxyError::Client(ClientError::BodyTooLarge(limit))
            } else {
                ProxyError::Client(ClientError::BadJson)
            }
        })?
        .to_bytes())
}

/// Same grammar as policy identifiers: `[a-z0-9][a-z0-9-]{0,63}`.
fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// The one value of header `name`; absent is `None`, repeated an error.
fn single_header<'a>(
    h: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a http::HeaderValue>, ProxyError> {
    let mut values = h.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(ClientError::BadHeader(name).into());
    }
    Ok(first)
}

/// Reads an identifier-valued header; absent is `None`, malformed is an error.
pub(crate) fn ident_header<'a>(
    h: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, ProxyError> {
    let Some(v) = single_header(h, name)? else {
        return Ok(None);
    };
    let s = v.to_str().map_err(|_| ClientError::BadHeader(name))?.trim();
    if !is_ident(s) {
        return Err(ClientError::BadHeader(name).into());
    }
    Ok(Some(s))
}

/// Reads a free-text header (UTF-8, one value, trimmed); absent is `None`,
/// repeated or not UTF-8 is an error.
pub(crate) fn text_header<'a>(
    h: &'a HeaderMap,
    name: &'static str,
) -> Result<Option<&'a str>, ProxyError> {
    let Some(v) = single_header(h, name)? else {
        return Ok(None);
    };
    let s = std::str::from_utf8(v.as_bytes()).map_err(|_| ClientError::BadHeader(name))?;
    Ok(Some(s.trim()))
}

/// Splits `/v1/{overleg}/{bron}/{resource...}`. Refuses anything that could be
/// read two ways: percent-escapes (incl. encoded slashes and double encoding),
/// backslashes, dot segments, empty segments, and query strings.
pub fn parse_path(uri: &http::Uri) -> Result<(&str, &str, Vec<&str>), ClientError> {
    let segs = safe_segments(uri, "/v1/")?;
    match segs.as_slice() {
        [overleg, bron, resource @ ..] if !resource.is_empty() => {
            if !is_ident(overleg) || !is_ident(bron) {
                return Err(ClientError::BadPath);
            }
            Ok((overleg, bron, resource.to_vec()))
        }
        _ => Err(ClientError::BadPath),
    }
}

/// The casusoverleg a request path names (`/v1/{overleg}/...` or the
/// register API's `/registers/v1/{overleg}/...`), read with the same
/// refusals as the routes themselves, so a mandate is checked for the
/// overleg the request is then routed to.
pub fn overleg_of(uri: &http::Uri) -> Option<&str> {
    let segs = safe_segments(uri, "/registers/v1/")
        .or_else(|_| safe_segments(uri, "/v1/"))
        .ok()?;
    segs.first().copied().filter(|s| is_ident(s))
}

/// The segments of a path below `prefix`, under the same refusals as
/// [`parse_path`] (shared with the register API).
pub(crate) fn safe_segments<'a>(
    uri: &'a http::Uri,
    prefix: &str,
) -> Result<Vec<&'a str>, ClientError> {
    if uri.query().is_some() {
        return Err(ClientError::QueryNotAllowed);
    }
    let path = uri.path();
    let rest = path.strip_prefix(prefix).ok_or(ClientError::BadPath)?;
    if path.len() > 1024 {
        return Err(ClientError::BadPath);
    }
    let segs: Vec<&str> = rest.split('/').collect();
    for s in &segs {
        if s.is_empty()
            || *s == "."
            || *s == ".."
            || s.bytes()
                .any(|b| matches!(b, b'%' | b'\\' | b';') || b.is_ascii_control())
        {
            return Err(ClientError::UnsafePath);
        }
    }
    Ok(segs)
}

/// W3C trace context: the incoming `traceparent` if valid, else a new one.
pub struct TraceContext {
    pub trace_id: String,
    /// The `traceparent` we answer with (the incoming one, or the one we made).
    pub header: String,
}

impl TraceContext {
    pub fn from_headers(h: &HeaderMap) -> Self {
        if let Some(tp) = h
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .filter(|v| v.len() <= MAX_TRACEPARENT)
            && let Some(trace_id) = parse_traceparent(tp)
        {
            return Self {
                trace_id: trace_id.to_owned(),
                header: tp.to_owned(),
            };
        }
        let trace_id = uuid::Uuid::new_v4().simple().to_string();
        let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
        Self {
            header: format!("00-{trace_id}-{span}-01"),
            trace_id,
        }
    }

    /// A `traceparent` for the upstream hop: same trace, new span id.
    pub fn child_header(&self) -> String {
        let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
        format!("00-{}-{span}-01", self.trace_id)
    }
}

fn parse_traceparent(tp: &str) -> Option<&str> {
    let parts: Vec<&str> = tp.split('-').collect();
    let [version, trace, span, flags] = parts.as_slice() else {
        return None;
    };
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if *version != "00" || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    if trace.bytes().all(|b| b == b'0') || span.bytes().all(|b| b == b'0') {
        return None;
    }
    Some(trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn p(s: &str) -> Result<(String, String, Vec<String>), ClientError> {
        let uri: http::Uri = s.parse().unwrap();
        parse_path(&uri).map(|(a, b, c)| {
            (
                a.into(),
                b.into(),
                c.into_iter().map(String::from).collect(),
            )
        })
    }

    #[test]
    fn parses_good_paths() {
        let (o, b, r) = p("/v1/aoj/las/leerlingen/L1/verzuim").unwrap();
        assert_eq!((o.as_str(), b.as_str()), ("aoj", "las"));
        assert_eq!(r, vec!["leerlingen", "L1", "verzuim"]);
    }

    #[test]
    fn refuses_traversal_and_encodings() {
        for bad in [
            "/v1/aoj/las/leerlingen/../verzuim",
            "/v1/aoj/las/leerlingen/./x",
            "/v1/aoj/las/leerlingen/a%2Fb",
            "/v1/aoj/las/leerlingen/a%252Fb",
            "/v1/aoj/las/leerlingen//x",
            "/v1/aoj/las/leerlingen/a;b",
            "/v1/aoj/las/leerlingen/%2e%2e/x",
        ] {
            assert_eq!(p(bad), Err(ClientError::UnsafePath), "{bad}");
        }
        assert_eq!(p("/v1/aoj/las/x?y=1"), Err(ClientError::QueryNotAllowed));
        assert_eq!(p("/v2/aoj/las/x"), Err(ClientError::BadPath));
        assert_eq!(p("/v1/aoj/las"), Err(ClientError::BadPath));
        assert_eq!(p("/v1/AOJ/las/x"), Err(ClientError::BadPath));
    }

    #[test]
    fn traceparent_is_kept_or_made() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        let t = TraceContext::from_headers(&h);
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(t.child_header().contains(&t.trace_id));
        h.insert("traceparent", HeaderValue::from_static("garbage"));
        let t = TraceContext::from_headers(&h);
        assert_eq!(t.trace_id.len(), 32);
        assert!(parse_traceparent(&t.header).is_some());
    }
}
