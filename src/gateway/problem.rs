//! The one place where errors become HTTP responses: RFC 9457
//! `application/problem+json` with a stable `type` per cause. Messages name
//! the side that failed (client, upstream, gateway) and never carry internals
//! (paths, addresses, library errors) or pupil data.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde::Serialize;

use crate::gateway::identity::IdentityError;
use crate::policy::decision::Denial;
use crate::registers::RegisterError;

/// Which side caused a failure (pingora-style), recorded in logs and audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Upstream,
    Gateway,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
            Side::Gateway => "gateway",
        }
    }
}

/// Request problems caused by the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("the path is not of the form /v1/{{overleg}}/{{bron}}/{{resource path}}")]
    BadPath,
    #[error("the path contains encoded characters, dot segments or empty segments")]
    UnsafePath,
    #[error("query parameters are not part of any declared resource")]
    QueryNotAllowed,
    #[error("method {0} is not supported; use GET, POST or PUT")]
    Method(String),
    #[error("header {0} has an invalid value")]
    BadHeader(&'static str),
    #[error("the request body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("the request body is not one JSON object (unique keys, within the nesting limit)")]
    BadJson,
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("the request took longer than allowed")]
    Timeout,
}

/// Problems with the bron (upstream).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("the bron could not be reached")]
    Unreachable,
    #[error("the bron did not answer in time")]
    Timeout,
    #[error("the bron's answer is larger than allowed")]
    TooLarge,
    #[error("the bron did not answer with one JSON object (unique keys, within the nesting limit)")]
    NotJson,
    #[error("the bron answered with an error (status {0})")]
    Status(u16),
    #[error("the bron does not know this resource or betrokkene")]
    NotFound,
}

/// Every way a request can fail, by side.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Denied(#[from] Denial),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A register (case or consent) request was refused or invalid. Holds
    /// only client-side variants: store failures become
    /// [`ProxyError::RegistersUnavailable`] (see the `From` impl).
    #[error(transparent)]
    Register(RegisterError),
    /// The case and consent registers could not be read or written: nothing
    /// is shared, nothing changed.
    #[error("the case and consent registers are unavailable")]
    RegistersUnavailable,
    /// The audit record could not be made durable: nothing is shared.
    #[error("the audit trail is unavailable")]
    AuditUnavailable,
    #[error("internal gateway error")]
    Internal,
}

impl From<RegisterError> for ProxyError {
    fn from(e: RegisterError) -> Self {
        match e {
            RegisterError::Store(_) | RegisterError::Audit(_) => ProxyError::RegistersUnavailable,
            RegisterError::Timeout => ProxyError::Client(ClientError::Timeout),
            other => ProxyError::Register(other),
        }
    }
}

impl ProxyError {
    pub fn side(&self) -> Side {
        match self {
            ProxyError::Client(_)
            | ProxyError::Identity(_)
            | ProxyError::Denied(_)
            | ProxyError::Register(_) => Side::Client,
            ProxyError::Upstream(_) => Side::Upstream,
            ProxyError::RegistersUnavailable
            | ProxyError::AuditUnavailable
            | ProxyError::Internal => Side::Gateway,
        }
    }

    /// Stable code; the problem `type` is `urn:poortwachter:problem:<code>`.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::Client(c) => match c {
                ClientError::BadPath => "bad-path",
                ClientError::UnsafePath => "unsafe-path",
                ClientError::QueryNotAllowed => "query-not-allowed",
                ClientError::Method(_) => "method-not-supported",
                ClientError::BadHeader(_) => "bad-header",
                ClientError::BodyTooLarge(_) => "body-too-large",
                ClientError::BadJson => "bad-json",
                ClientError::UnsupportedMediaType => "unsupported-media-type",
                ClientError::Timeout => "request-timeout",
            },
            ProxyError::Identity(i) => match i {
                IdentityError::NoCertificate => "no-certificate",
                IdentityError::Unparsable => "bad-certificate",
                IdentityError::Unknown => "unknown-organisation",
                IdentityError::Ambiguous(_) => "ambiguous-organisation",
                IdentityError::PrincipalRequired => "principal-required",
                IdentityError::PrincipalMalformed => "principal-malformed",
                IdentityError::PrincipalNotAllowed => "principal-not-allowed",
                IdentityError::NoMandate(_) => "no-mandate",
            },
            ProxyError::Denied(d) => d.code(),
            ProxyError::Upstream(u) => match u {
                UpstreamError::Unreachable => "upstream-unreachable",
                UpstreamError::Timeout => "upstream-timeout",
                UpstreamError::TooLarge => "upstream-too-large",
                UpstreamError::NotJson => "upstream-not-json",
                UpstreamError::Status(_) => "upstream-error",
                UpstreamError::NotFound => "upstream-not-found",
            },
            ProxyError::Register(r) => r.code(),
            ProxyError::RegistersUnavailable => "register-unavailable",
            ProxyError::AuditUnavailable => "audit-unavailable",
            ProxyError::Internal => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::Client(c) => match c {
                ClientError::BadPath | ClientError::UnsafePath => StatusCode::NOT_FOUND,
                ClientError::QueryNotAllowed | ClientError::BadHeader(_) | ClientError::BadJson => {
                    StatusCode::BAD_REQUEST
                }
                ClientError::Method(_) => StatusCode::METHOD_NOT_ALLOWED,
                ClientError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                ClientError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ClientError::Timeout => StatusCode::REQUEST_TIMEOUT,
            },
            ProxyError::Identity(
                IdentityError::PrincipalRequired | IdentityError::PrincipalMalformed,
            ) => StatusCode::BAD_REQUEST,
            ProxyError::Identity(_) => StatusCode::FORBIDDEN,
            ProxyError::Denied(d) => match d {
                Denial::UnknownOverleg(_)
                | Denial::UnknownBron(_)
                | Denial::UndeclaredResource { .. } => StatusCode::NOT_FOUND,
                Denial::RoleRequired { .. }
                | Denial::PurposeRequired { .. }
                | Denial::OwnerRequired { .. }
                | Denial::OwnerNotHosted { .. }
                | Denial::EmergencyNotApplicable { .. }
                | Denial::EmergencyReasonRequired { .. }
                | Denial::EmergencyReasonUnknown
                | Denial::EmergencyJustification(_) => StatusCode::BAD_REQUEST,
                Denial::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
                _ => StatusCode::FORBIDDEN,
            },
            ProxyError::Upstream(u) => match u {
                UpstreamError::Timeout => StatusCode::GATEWAY_TIMEOUT,
                UpstreamError::NotFound => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_GATEWAY,
            },
            ProxyError::Register(r) => match r {
                RegisterError::Invalid(_) | RegisterError::RoleRequired { .. } => {
                    StatusCode::BAD_REQUEST
                }
                RegisterError::UnknownOverleg(_) | RegisterError::NotFound(_) => {
                    StatusCode::NOT_FOUND
                }
                RegisterError::NotAllowed { .. } => StatusCode::FORBIDDEN,
                RegisterError::Closed(_)
                | RegisterError::AlreadyDecided(_)
                | RegisterError::AlreadyRecorded(_) => StatusCode::CONFLICT,
                // Not constructed (see `From<RegisterError>`); fail as the gateway.
                RegisterError::Store(_) | RegisterError::Audit(_) | RegisterError::Timeout => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            },
            ProxyError::RegistersUnavailable | ProxyError::AuditUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self.side() {
            Side::Client => match self {
                ProxyError::Denied(_) | ProxyError::Identity(_) | ProxyError::Register(_) => {
                    "Verzoek geweigerd (request refused)"
                }
                _ => "Ongeldig verzoek (bad request)",
            },
            Side::Upstream => "Fout bij de bron (upstream error)",
            Side::Gateway => "Fout in de gateway (gateway error)",
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    instance: String,
    /// Which side failed: client, upstream or gateway.
    side: &'static str,
}

/// Security headers of the Dutch API Design Rules, on every response.
pub fn add_security_headers(headers: &mut http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

/// Renders `err` as problem+json. `request_id` becomes the `instance`.
pub fn response(err: &ProxyError, request_id: &str) -> Response<Full<Bytes>> {
    let status = err.status();
    let p = Problem {
        kind: format!("urn:poortwachter:problem:{}", err.code()),
        title: err.title(),
        status: status.as_u16(),
        // Display texts are written for clients: they name policy terms, never
        // internals or pupil data. Store errors are never shown.
        detail: match err {
            ProxyError::Register(RegisterError::Store(_) | RegisterError::Audit(_)) => {
                ProxyError::RegistersUnavailable.to_string()
            }
            _ => err.to_string(),
        },
        instance: format!("urn:uuid:{request_id}"),
        side: err.side().as_str(),
    };
    let body = serde_json::to_vec(&p).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    // RFC 9110: a 405 names the methods that would work.
    let allow = match err {
        ProxyError::Client(ClientError::Method(_)) => Some("GET, POST, PUT"),
        ProxyError::Denied(Denial::MethodNotAllowed { allow, .. }) => Some(*allow),
        _ => None,
    };
    if let Some(a) = allow {
        h.insert(header::ALLOW, HeaderValue::from_static(a));
    }
    add_security_headers(h);
    resp
}
