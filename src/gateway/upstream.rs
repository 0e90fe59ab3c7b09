//! Forwarding to bronnen. [`Upstream::send`] takes a [`Permit`]: nothing
//! reaches a bron without a decision. The request carries only headers the
//! gateway sets itself; no client header is ever passed through.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::UpstreamConfig;
use crate::gateway::problem::UpstreamError;
use crate::gateway::tls::{self, TlsError};
use crate::policy::decision::Permit;
use crate::policy::model::Act;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The upstream HTTP client with its pools and limits.
pub struct Upstream {
    client: Client<Connector, Full<Bytes>>,
    cfg: UpstreamConfig,
}

/// What the bron answered, already size-limited.
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub body: Bytes,
    pub json: bool,
}

/// Headers the gateway sets on every upstream request.
pub struct ForwardHeaders<'a> {
    pub traceparent: &'a str,
    pub request_id: &'a str,
    pub instance: &'a str,
}

impl Upstream {
    pub fn new(cfg: &UpstreamConfig) -> Result<Self, TlsError> {
        let cc = tls::upstream_client_config(cfg)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(cfg.connect_timeout()));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(cc)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_millis(cfg.pool_idle_timeout_ms))
            .pool_max_idle_per_host(cfg.pool_max_idle_per_host)
            .build(connector);
        Ok(Self {
            client,
            cfg: cfg.clone(),
        })
    }

    /// The base URL in force for a bron: the deployment override or the policy's.
    pub fn base_url<'a>(&'a self, permit: &'a Permit) -> &'a str {
        self.cfg
            .base_urls
            .get(&permit.bron().id)
            .map(String::as_str)
            .unwrap_or(&permit.bron().base_url)
    }

    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.cfg.base_urls
    }

    /// Sends the permitted request. `body` is the already filtered body for a
    /// write. The response body is read fully, up to `max_body` bytes, within
    /// the configured response timeout.
    pub async fn send(
        &self,
        permit: &Permit,
        method: Method,
        body: Option<Bytes>,
        fwd: &ForwardHeaders<'_>,
        max_body: usize,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let uri = format!("{}{}", self.base_url(permit), permit.upstream_path());
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, "application/json")
            .body(Full::new(body.clone().unwrap_or_default()))
            .map_err(|_| UpstreamError::Unreachable)?;
        let h = req.headers_mut();
        if permit.act() == Act::Write {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let mut set = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        };
        set("traceparent", fwd.traceparent);
        set("x-request-id", fwd.request_id);
        set("x-poortwachter-organisatie", permit.org());
        set("x-poortwachter-rol", permit.role());
        set("x-poortwachter-overleg", permit.overleg());
        set("x-poortwachter-doelbinding", permit.purpose());
        // A bron a supplier hosts for several organisations is told whose
        // data is asked for (the owner's OIN); a client never sets this.
        if let Some(namens) = permit.hosted_owner_oin() {
            set("x-poortwachter-namens", namens);
        }
        set("x-poortwachter-instance", fwd.instance);

        let work = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|_| UpstreamError::Unreachable)?;
            let status = resp.status();
            let json = resp
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(is_json_media_type);
            if let Some(len) = resp
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                && len > max_body as u64
            {
                return Err(UpstreamError::TooLarge);
            }
            let body = Limited::new(resp.into_body(), max_body)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        UpstreamError::TooLarge
                    } else {
                        UpstreamError::Unreachable
                    }
                })?
                .to_bytes();
            Ok(UpstreamResponse { status, body, json })
        };
        tokio::time::timeout(self.cfg.response_timeout(), work)
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }
}

/// `application/json` or `application/<x>+json`, parameters ignored.
pub fn is_json_media_type(v: &str) -> bool {
    let mt = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mt == "application/json" || (mt.starts_with("application/") && mt.ends_with("+json"))
}
