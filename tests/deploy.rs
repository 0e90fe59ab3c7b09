//! The deployment artefacts in `deploy/` against the code: the example
//! configuration parses with the real parser, the Kubernetes configuration
//! template renders to a valid configuration, the StatefulSet projects every
//! policy file, and the OpenAPI document lists exactly the problem types the
//! gateway can produce, each with the status and side the code gives it.
#![allow(
    clippy::too_many_lines,
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    reason = "a scenario reads top to bottom (tests are exempt from the 80-line rule); test counts are small"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use poortwachter::config::{Config, TlsVersion};
use poortwachter::gateway::identity::IdentityError;
use poortwachter::gateway::problem::{ClientError, ProxyError, UpstreamError};
use poortwachter::policy::decision::Denial;
use poortwachter::policy::model::Act;
use poortwachter::registers::RegisterError;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const URN: &str = "urn:poortwachter:problem:";

fn read(rel: &str) -> String {
    let p = Path::new(ROOT).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

// ---------------------------------------------------------------------------
// deploy/poortwachter.toml

#[test]
fn example_config_parses_with_the_real_parser() {
    let text = read("deploy/poortwachter.toml");
    let cfg = Config::parse(
        &text,
        "deploy/poortwachter.toml",
        Path::new("/etc/poortwachter"),
    )
    .unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(cfg.tls.min_version, TlsVersion::V1_3);
    assert!(!cfg.tls.allow_expired_crl);
    assert!(!cfg.tls.allow_unknown_revocation);
    assert!(!cfg.tls.crls.is_empty(), "production config without CRLs");
    assert!(
        cfg.audit.store.starts_with("postgres://"),
        "{}",
        cfg.audit.store
    );
    assert!(
        !has_url_password(&cfg.audit.store),
        "the store URL must not carry a password"
    );
    assert!(!cfg.server.instance.trim().is_empty());
    assert_ne!(
        cfg.server.instance, "poortwachter-1",
        "set server.instance explicitly"
    );
    assert_eq!(cfg.server.listen.port(), 8443);
    assert_eq!(cfg.log.format, "json");

    // Paths live where the systemd unit and the Kubernetes mounts expect them.
    let under = |p: &Path, dir: &str| p.starts_with(dir);
    assert!(under(&cfg.tls.cert, "/etc/poortwachter/tls"));
    assert!(under(&cfg.tls.key, "/etc/poortwachter/tls"));
    assert!(
        cfg.tls
            .client_ca
            .iter()
            .all(|p| under(p, "/etc/poortwachter/tls"))
    );
    assert!(
        cfg.tls
            .crls
            .iter()
            .all(|p| under(p, "/var/lib/poortwachter/crl"))
    );
    assert!(under(
        &cfg.audit.pseudonym_key,
        "/etc/poortwachter/pseudonym"
    ));
    assert!(under(&cfg.audit.signing_key, "/etc/poortwachter/signing"));
    assert_eq!(cfg.policy.dir, Path::new("/etc/poortwachter/policies"));

    // Base URL overrides name real bronnen (an override for an unknown id
    // would be ignored silently by the gateway).
    let set = poortwachter::policy::load_dir(&Path::new(ROOT).join("policies")).unwrap();
    for bron in cfg.upstream.base_urls.keys() {
        assert!(set.bronnen.contains_key(bron), "unknown bron `{bron}`");
    }
    for url in cfg.upstream.base_urls.values() {
        assert!(!url.ends_with('/'), "{url}: no trailing slash");
    }
}

/// `scheme://user:password@host`: is there a password in the authority?
fn has_url_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// The example documents every option. When a key is added to the
/// configuration, add it here and to deploy/poortwachter.toml.
#[test]
fn example_config_lists_every_option() {
    let expected: BTreeMap<&str, &[&str]> = BTreeMap::from([
        (
            "server",
            &[
                "listen",
                "instance",
                "max_connections",
                "max_handshakes",
                "handshake_timeout_ms",
                "header_read_timeout_ms",
                "request_timeout_ms",
                "max_request_body_bytes",
                "max_response_body_bytes",
                "max_json_depth",
                "max_header_bytes",
                "http2_max_concurrent_streams",
                "shutdown_grace_ms",
            ][..],
        ),
        (
            "tls",
            &[
                "cert",
                "key",
                "client_ca",
                "crls",
                "allow_expired_crl",
                "allow_unknown_revocation",
                "min_version",
            ][..],
        ),
        (
            "upstream",
            &[
                "ca",
                "client_cert",
                "client_key",
                "connect_timeout_ms",
                "response_timeout_ms",
                "pool_idle_timeout_ms",
                "pool_max_idle_per_host",
                "base_urls",
            ][..],
        ),
        ("policy", &["dir", "watch", "watch_debounce_ms"][..]),
        (
            "audit",
            &[
                "store",
                "pseudonym_key",
                "signing_key",
                "verify_key",
                "commit_timeout_ms",
                "queue_capacity",
                "max_batch",
                "checkpoint_interval_ms",
                "default_retention_days",
                "purge_interval_hours",
                "sqlite_cache_mib",
            ][..],
        ),
        (
            "registers",
            &[
                "revocation_grace_ms",
                "lookup_timeout_ms",
                "emergency_window_hours",
                "max_emergency_justification_chars",
                "cache_entries",
                "feed_poll_ms",
                "feed_staleness_ms",
            ][..],
        ),
        ("log", &["format", "filter"][..]),
        (
            "admin",
            &[
                "listen",
                "max_connections",
                "max_handshakes",
                "handshake_timeout_ms",
                "page_size",
                "max_form_bytes",
                "request_timeout_ms",
            ][..],
        ),
    ]);
    let doc: toml::Table = read("deploy/poortwachter.toml").parse().unwrap();
    let sections: BTreeSet<&str> = doc.keys().map(String::as_str).collect();
    assert_eq!(sections, expected.keys().copied().collect());
    for (section, keys) in &expected {
        let table = doc[*section].as_table().unwrap();
        let have: BTreeSet<&str> = table.keys().map(String::as_str).collect();
        let want: BTreeSet<&str> = keys.iter().copied().collect();
        assert_eq!(have, want, "[{section}]");
    }
}

// ---------------------------------------------------------------------------
// deploy/kubernetes/

/// The `poortwachter.toml: |` block scalar of the ConfigMap.
fn configmap_toml() -> String {
    let yaml = read("deploy/kubernetes/configmap-config.yaml");
    let mut lines = yaml
        .lines()
        .skip_while(|l| l.trim_end() != "  poortwachter.toml: |");
    assert!(lines.next().is_some(), "no poortwachter.toml key");
    let mut out = String::new();
    for l in lines {
        if !l.trim().is_empty() && !l.starts_with("    ") {
            break;
        }
        out.push_str(l.strip_prefix("    ").unwrap_or(""));
        out.push('\n');
    }
    out
}

#[test]
fn kubernetes_config_template_renders_to_a_valid_config() {
    let template = configmap_toml();
    assert_eq!(
        template.matches("@POD_NAME@").count(),
        1,
        "exactly one placeholder, in server.instance"
    );
    // What the StatefulSet's init container does.
    let rendered = template.replace("@POD_NAME@", "poortwachter-1");
    let cfg = Config::parse(
        &rendered,
        "configmap-config.yaml",
        Path::new("/run/poortwachter"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.server.instance, "poortwachter-1");
    assert_eq!(cfg.server.listen.port(), 8443);
    assert!(cfg.server.listen.ip().is_unspecified());
    assert_eq!(cfg.tls.min_version, TlsVersion::V1_3);
    assert!(
        cfg.audit
            .store
            .starts_with("postgres://poortwachter@poortwachter-audit-db:"),
        "{}",
        cfg.audit.store
    );
    assert!(!has_url_password(&cfg.audit.store));
    assert!(
        cfg.audit
            .pseudonym_key
            .starts_with("/etc/poortwachter/pseudonym")
    );
    assert!(
        cfg.audit
            .signing_key
            .starts_with("/etc/poortwachter/signing")
    );
}

#[test]
fn statefulset_projects_every_policy_file() {
    let sts = read("deploy/kubernetes/statefulset.yaml");
    assert!(sts.contains("key: partners.toml") && sts.contains("path: partners.toml"));
    for sub in ["bronnen", "overleggen"] {
        let dir = Path::new(ROOT).join("policies").join(sub);
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if std::path::Path::new(&name)
                .extension()
                .is_none_or(|e| e != "toml")
            {
                continue;
            }
            n += 1;
            for needle in [
                format!("key: {sub}__{name}\n"),
                format!("path: {sub}/{name}\n"),
            ] {
                assert!(
                    sts.contains(&needle),
                    "statefulset.yaml lacks `{}`",
                    needle.trim()
                );
            }
        }
        assert!(n > 0, "no policy files in {}", dir.display());
    }
}

// ---------------------------------------------------------------------------
// deploy/openapi.json

/// One value of every variant of every error the gateway answers with. The
/// `*_index` functions match exhaustively (no wildcard): a new variant fails
/// to compile here until it is added to this list and to the OpenAPI document.
fn every_error() -> Vec<ProxyError> {
    let client = vec![
        ClientError::BadPath,
        ClientError::UnsafePath,
        ClientError::QueryNotAllowed,
        ClientError::Method("PATCH".into()),
        ClientError::BadHeader("x-doelbinding"),
        ClientError::BodyTooLarge(1024),
        ClientError::BadJson,
        ClientError::UnsupportedMediaType,
        ClientError::Timeout,
    ];
    let identity = vec![
        IdentityError::NoCertificate,
        IdentityError::Unparsable,
        IdentityError::Unknown,
        IdentityError::Ambiguous(vec!["a".into(), "b".into()]),
        IdentityError::PrincipalRequired,
        IdentityError::PrincipalMalformed,
        IdentityError::PrincipalNotAllowed,
        IdentityError::NoMandate(poortwachter::policy::mandate::Missing::Expired),
    ];
    let s = |v: &str| v.to_owned();
    let denials = vec![
        Denial::UnknownOverleg(s("o")),
        Denial::NotAParticipant {
            org: s("org"),
            overleg: s("o"),
        },
        Denial::RoleRequired {
            org: s("org"),
            overleg: s("o"),
            roles: vec![s("a"), s("b")],
        },
        Denial::RoleNotHeld {
            org: s("org"),
            role: s("r"),
            overleg: s("o"),
        },
        Denial::PurposeRequired {
            purposes: vec![s("p")],
        },
        Denial::UnknownPurpose {
            purpose: s("p"),
            overleg: s("o"),
        },
        Denial::UnknownBron(s("b")),
        Denial::UndeclaredResource { bron: s("b") },
        Denial::MethodNotAllowed {
            bron: s("b"),
            resource: s("r"),
            allow: "GET",
        },
        Denial::NoRule {
            overleg: s("o"),
            role: s("r"),
            purpose: s("p"),
            bron: s("b"),
            act: Act::Read,
        },
        Denial::NotRegistered { overleg: s("o") },
        Denial::ConsentRequired {
            consent: s("parents"),
            purpose: s("p"),
        },
        Denial::NoFieldOfResource { resource: s("r") },
        Denial::Objection {
            overleg: s("o"),
            purpose: s("p"),
            role: s("r"),
            basis: s("6.1.e"),
        },
        Denial::Restricted { resource: s("r") },
        Denial::OwnerRequired {
            bron: s("b"),
            overleg: s("o"),
            owners: vec![s("a"), s("c")],
        },
        Denial::OwnerUnknown {
            bron: s("b"),
            overleg: s("o"),
        },
        Denial::OwnerNotHosted { bron: s("b") },
        Denial::NoHostMandate {
            bron: s("b"),
            owner: s("a"),
            supplier: s("l"),
            overleg: s("o"),
            why: "expired",
        },
        Denial::EmergencyNotApplicable { purpose: s("p") },
        Denial::EmergencyReasonRequired {
            purpose: s("p"),
            reasons: vec![s("meldcode")],
        },
        Denial::EmergencyReasonUnknown,
        Denial::EmergencyReasonNotAllowed {
            purpose: s("p"),
            reason: s("meldcode"),
            allowed: vec![s("acuut-gevaar")],
        },
        Denial::EmergencyJustification("x"),
        Denial::EmergencyWindowEnded { ends_at: s("t") },
    ];
    let upstream = vec![
        UpstreamError::Unreachable,
        UpstreamError::Timeout,
        UpstreamError::TooLarge,
        UpstreamError::NotJson,
        UpstreamError::Status(500),
        UpstreamError::NotFound,
    ];

    assert_complete("ClientError", client.iter().map(client_index), 9);
    assert_complete("IdentityError", identity.iter().map(identity_index), 8);
    let register = vec![
        RegisterError::Invalid(s("x")),
        RegisterError::UnknownOverleg(s("o")),
        RegisterError::NotAllowed {
            org: s("org"),
            overleg: s("o"),
            what: "record objections",
        },
        RegisterError::RoleRequired {
            org: s("org"),
            overleg: s("o"),
            roles: vec![s("a"), s("b")],
        },
        RegisterError::NotFound("consent"),
        RegisterError::Closed("consent"),
        RegisterError::AlreadyDecided("toegewezen"),
        RegisterError::AlreadyRecorded("informing"),
        RegisterError::Store(poortwachter::audit::StoreError::Url),
        RegisterError::Audit(poortwachter::audit::AuditError::Timeout),
        RegisterError::Timeout,
    ];
    assert_complete("Denial", denials.iter().map(denial_index), 25);
    assert_complete("RegisterError", register.iter().map(register_index), 11);
    assert_complete("UpstreamError", upstream.iter().map(upstream_index), 6);

    let mut all: Vec<ProxyError> = Vec::new();
    all.extend(client.into_iter().map(ProxyError::Client));
    all.extend(identity.into_iter().map(ProxyError::Identity));
    all.extend(denials.into_iter().map(ProxyError::Denied));
    all.extend(upstream.into_iter().map(ProxyError::Upstream));
    // Through the one conversion the gateway uses (store failures become
    // RegistersUnavailable).
    all.extend(register.into_iter().map(ProxyError::from));
    all.push(ProxyError::RegistersUnavailable);
    all.push(ProxyError::AuditUnavailable);
    all.push(ProxyError::Internal);
    for e in &all {
        // Exhaustive over ProxyError as well.
        match e {
            ProxyError::Client(_)
            | ProxyError::Identity(_)
            | ProxyError::Denied(_)
            | ProxyError::Upstream(_)
            | ProxyError::Register(_)
            | ProxyError::RegistersUnavailable
            | ProxyError::AuditUnavailable
            | ProxyError::Internal => {}
        }
    }
    all
}

fn assert_complete(name: &str, indices: impl Iterator<Item = usize>, n: usize) {
    let got: BTreeSet<usize> = indices.collect();
    assert_eq!(
        got,
        (0..n).collect(),
        "every_error() must construct every {name} variant"
    );
}

fn client_index(e: &ClientError) -> usize {
    match e {
        ClientError::BadPath => 0,
        ClientError::UnsafePath => 1,
        ClientError::QueryNotAllowed => 2,
        ClientError::Method(_) => 3,
        ClientError::BadHeader(_) => 4,
        ClientError::BodyTooLarge(_) => 5,
        ClientError::BadJson => 6,
        ClientError::UnsupportedMediaType => 7,
        ClientError::Timeout => 8,
    }
}

fn identity_index(e: &IdentityError) -> usize {
    match e {
        IdentityError::NoCertificate => 0,
        IdentityError::Unparsable => 1,
        IdentityError::Unknown => 2,
        IdentityError::Ambiguous(_) => 3,
        IdentityError::PrincipalRequired => 4,
        IdentityError::PrincipalMalformed => 5,
        IdentityError::PrincipalNotAllowed => 6,
        IdentityError::NoMandate(_) => 7,
    }
}

fn denial_index(e: &Denial) -> usize {
    match e {
        Denial::UnknownOverleg(_) => 0,
        Denial::NotAParticipant { .. } => 1,
        Denial::RoleRequired { .. } => 2,
        Denial::RoleNotHeld { .. } => 3,
        Denial::PurposeRequired { .. } => 4,
        Denial::UnknownPurpose { .. } => 5,
        Denial::UnknownBron(_) => 6,
        Denial::UndeclaredResource { .. } => 7,
        Denial::MethodNotAllowed { .. } => 8,
        Denial::NoRule { .. } => 9,
        Denial::ConsentRequired { .. } => 10,
        Denial::NoFieldOfResource { .. } => 11,
        Denial::NotRegistered { .. } => 12,
        Denial::OwnerRequired { .. } => 13,
        Denial::OwnerUnknown { .. } => 14,
        Denial::OwnerNotHosted { .. } => 15,
        Denial::NoHostMandate { .. } => 16,
        Denial::Objection { .. } => 17,
        Denial::Restricted { .. } => 18,
        Denial::EmergencyNotApplicable { .. } => 19,
        Denial::EmergencyReasonRequired { .. } => 20,
        Denial::EmergencyReasonUnknown => 21,
        Denial::EmergencyReasonNotAllowed { .. } => 22,
        Denial::EmergencyJustification(_) => 23,
        Denial::EmergencyWindowEnded { .. } => 24,
    }
}

fn register_index(e: &RegisterError) -> usize {
    match e {
        RegisterError::Invalid(_) => 0,
        RegisterError::UnknownOverleg(_) => 1,
        RegisterError::NotAllowed { .. } => 2,
        RegisterError::RoleRequired { .. } => 3,
        RegisterError::NotFound(_) => 4,
        RegisterError::Closed(_) => 5,
        RegisterError::Store(_) => 6,
        RegisterError::Audit(_) => 7,
        RegisterError::Timeout => 8,
        RegisterError::AlreadyDecided(_) => 9,
        RegisterError::AlreadyRecorded(_) => 10,
    }
}

fn upstream_index(e: &UpstreamError) -> usize {
    match e {
        UpstreamError::Unreachable => 0,
        UpstreamError::Timeout => 1,
        UpstreamError::TooLarge => 2,
        UpstreamError::NotJson => 3,
        UpstreamError::Status(_) => 4,
        UpstreamError::NotFound => 5,
    }
}

fn openapi() -> serde_json::Value {
    serde_json::from_str(&read("deploy/openapi.json")).expect("deploy/openapi.json is JSON")
}

/// code -> (status, side), from the code.
fn codes_from_the_code() -> BTreeMap<&'static str, (u16, &'static str)> {
    let mut out = BTreeMap::new();
    for e in every_error() {
        let v = (e.status().as_u16(), e.side().as_str());
        if let Some(prev) = out.insert(e.code(), v) {
            assert_eq!(prev, v, "code {} maps to two statuses/sides", e.code());
        }
    }
    out
}

#[test]
fn openapi_lists_exactly_the_problem_types_of_the_code() {
    let doc = openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let code = codes_from_the_code();
    let pt = &doc["components"]["schemas"]["ProblemType"];

    // The enum: exactly the codes the gateway can produce.
    let listed: BTreeSet<String> = pt["enum"]
        .as_array()
        .expect("ProblemType.enum")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect();
    let produced: BTreeSet<String> = code.keys().map(|c| format!("{URN}{c}")).collect();
    let missing: Vec<_> = produced.difference(&listed).collect();
    let extra: Vec<_> = listed.difference(&produced).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "ProblemType.enum: missing {missing:?}, not produced by the code {extra:?}"
    );

    // The table: same status and side as the code.
    let table = pt["x-poortwachter-problems"]
        .as_array()
        .expect("ProblemType.x-poortwachter-problems");
    assert_eq!(table.len(), code.len(), "one table row per code");
    for row in table {
        let c = row["code"].as_str().expect("code");
        let (status, side) = code
            .get(c)
            .unwrap_or_else(|| panic!("table lists unknown code {c}"));
        assert_eq!(row["type"], format!("{URN}{c}"));
        assert_eq!(row["status"], u64::from(*status), "status of {c}");
        assert_eq!(row["side"], *side, "side of {c}");
        let description = pt["description"].as_str().unwrap_or("");
        assert!(
            description.contains(&format!("| `{URN}{c}` | {status} | {side} |")),
            "description table row of {c}"
        );
    }

    // Problem.status lists exactly the statuses in use.
    let statuses: BTreeSet<u64> = code.values().map(|(s, _)| u64::from(*s)).collect();
    let schema_statuses: BTreeSet<u64> =
        doc["components"]["schemas"]["Problem"]["properties"]["status"]["enum"]
            .as_array()
            .expect("Problem.status.enum")
            .iter()
            .filter_map(serde_json::Value::as_u64)
            .collect();
    assert_eq!(schema_statuses, statuses);

    // Every status is a documented response: proxy writes can produce all
    // but the register API's own (409); reads also not the body problems
    // (413, 415). Register API calls can produce every status but the bron's.
    let register_only: BTreeSet<u64> = [409].into();
    let upstream_only: BTreeSet<u64> = [502, 504].into();
    let path = &doc["paths"]["/v1/{overleg}/{bron}/{resourcePath}"];
    for method in ["get", "post", "put"] {
        let responses = path[method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} has responses"));
        for s in statuses.difference(&register_only) {
            if method == "get" && (*s == 413 || *s == 415) {
                continue;
            }
            assert!(
                responses.contains_key(&s.to_string()),
                "{method} lacks response {s}"
            );
        }
    }
    let register_paths: Vec<(&str, &str)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with("/registers/v1/"))
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| *m == "get" || *m == "post")
                .map(move |m| (p.as_str(), m.as_str()))
        })
        .collect();
    assert_eq!(register_paths.len(), 10, "the ten register operations");
    for (p, method) in register_paths {
        let responses = doc["paths"][p][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{p} {method} has responses"));
        for s in statuses.difference(&upstream_only) {
            if method == "get" && (*s == 413 || *s == 415 || *s == 409) {
                continue;
            }
            assert!(
                responses.contains_key(&s.to_string()),
                "{p} {method} lacks response {s}"
            );
        }
    }
}

#[test]
fn openapi_describes_the_request_contract() {
    let doc = openapi();
    assert_eq!(
        doc["components"]["securitySchemes"]["mtls"]["type"],
        "mutualTLS"
    );
    let path = &doc["paths"]["/v1/{overleg}/{bron}/{resourcePath}"];
    let params = path["parameters"].as_array().expect("parameters");
    let param = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("parameter {name}"))
    };
    assert_eq!(param("X-Doelbinding")["required"], true);
    assert_eq!(param("X-Doelbinding")["in"], "header");
    assert_eq!(param("X-Rol")["required"], false);
    assert_eq!(param("traceparent")["required"], false);
    for p in ["overleg", "bron", "resourcePath"] {
        assert_eq!(param(p)["in"], "path");
    }
    assert!(
        params.iter().all(|p| p["in"] != "query"),
        "no query parameters exist"
    );
    let ok = &path["get"]["responses"]["200"];
    for h in [
        "X-Poortwachter-Withheld",
        "X-Request-ID",
        "traceparent",
        "Cache-Control",
    ] {
        assert!(ok["headers"].get(h).is_some(), "200 lacks header {h}");
    }
    assert_eq!(
        doc["components"]["headers"]["Cache-Control"]["schema"]["const"],
        "no-store"
    );
    let problem = &doc["components"]["schemas"]["Problem"]["required"];
    for f in ["type", "title", "status", "detail", "instance", "side"] {
        assert!(
            problem.as_array().unwrap().iter().any(|v| v == f),
            "Problem requires {f}"
        );
    }
}
