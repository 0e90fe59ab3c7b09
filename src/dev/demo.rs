//! The embedded demo: development certificates, in-process bronnen serving
//! synthetic pupils, and the gateway on the example policies with the
//! embedded SQLite audit store.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Map, Value, json};
use tokio::net::TcpListener;

use crate::policy::model::{Bron, Category, PolicySet};

/// Synthetic pupils served by every demo bron. Not real people.
pub const DEMO_PUPILS: [&str; 5] = ["L1001", "L1002", "L1003", "L1004", "L1005"];

const FIRST: [&str; 5] = ["Sanne", "Daan", "Noor", "Milan", "Lotte"];
const LAST: [&str; 5] = ["de Vries", "Bakker", "Visser", "Smit", "Meijer"];

/// A deterministic synthetic value for a catalogue field.
fn value_for(path: &str, category: Category, pupil: usize, element: usize) -> Value {
    let leaf = path
        .rsplit('.')
        .next()
        .unwrap_or(path)
        .trim_end_matches("[]");
    let p = pupil % FIRST.len();
    if category == Category::Bsn {
        // Fake, invalid-by-construction numbers (no real BSN starts with 0000).
        return json!(format!("00009{:04}", 1000 + pupil));
    }
    if leaf.contains("datum")
        || leaf.starts_with("geldig")
        || leaf.ends_with("_van")
        || leaf.ends_with("_tot")
        || leaf == "start"
        || leaf.contains("einddatum")
    {
        return json!(format!(
            "2026-{:02}-{:02}",
            9 + element % 3,
            1 + (pupil * 3 + element) % 27
        ));
    }
    if leaf.contains("uren") || leaf.contains("aantal") || leaf == "leerjaar" || leaf == "groep" {
        return json!(2 + (pupil * 5 + element) % 9);
    }
    if leaf == "voornaam" {
        return json!(FIRST[p]);
    }
    if leaf == "achternaam" {
        return json!(LAST[p]);
    }
    if leaf == "naam" {
        return json!(format!(
            "{} {}",
            FIRST[(p + element + 1) % 5],
            LAST[(p + 2) % 5]
        ));
    }
    if leaf.contains("telefoon") {
        return json!(format!("050-5550{:03}", 100 + pupil * 7 + element));
    }
    if leaf == "aanwezig" || leaf.starts_with("signaal") {
        return json!(pupil.is_multiple_of(2));
    }
    if path.ends_with("[]") {
        return json!([format!("{leaf} 1 (demo)"), format!("{leaf} 2 (demo)")]);
    }
    let sensitive = match category {
        Category::Health => " [gezondheid]",
        Category::Criminal => " [strafrechtelijk]",
        _ => "",
    };
    json!(format!(
        "{leaf} van leerling {} (synthetisch){sensitive}",
        DEMO_PUPILS[pupil]
    ))
}

fn insert(
    doc: &mut Map<String, Value>,
    segs: &[crate::policy::fieldpath::Segment],
    leaf_path: &str,
    category: Category,
    pupil: usize,
    element: usize,
) {
    let Some((first, rest)) = segs.split_first() else {
        return;
    };
    if rest.is_empty() {
        doc.insert(
            first.name.clone(),
            value_for(leaf_path, category, pupil, element),
        );
        return;
    }
    if first.array {
        let arr = doc
            .entry(first.name.clone())
            .or_insert_with(|| json!([{}, {}]));
        if let Value::Array(items) = arr {
            for (i, item) in items.iter_mut().enumerate() {
                if let Value::Object(m) = item {
                    insert(m, rest, leaf_path, category, pupil, i);
                }
            }
        }
    } else {
        let obj = doc.entry(first.name.clone()).or_insert_with(|| json!({}));
        if let Value::Object(m) = obj {
            insert(m, rest, leaf_path, category, pupil, element);
        }
    }
}

/// The document a demo bron returns for one resource and pupil, including
/// for `dossier` resources one key that is not in the catalogue.
pub fn document(bron: &Bron, resource: usize, pupil: usize) -> Value {
    let mut doc = Map::new();
    if let Some(r) = bron.resources.get(resource) {
        for &i in &r.fields {
            let f = &bron.catalogue[i];
            let segs: Vec<_> = f.path.segments().collect();
            insert(&mut doc, &segs, f.path.as_str(), f.category, pupil, 0);
        }
    }
    // The full dossier also carries a key that is not in the catalogue, to
    // show that undeclared data is withheld by default.
    if bron
        .resources
        .get(resource)
        .is_some_and(|r| r.id == "dossier")
    {
        doc.insert(
            "interne_notitie".into(),
            json!("niet in de catalogus: wordt nooit gedeeld"),
        );
    }
    Value::Object(doc)
}

fn respond(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Serves every bron of `set` under `/{bron id}/...` on `listener`.
pub async fn serve_bronnen(listener: TcpListener, set: Arc<PolicySet>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let set = Arc::clone(&set);
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let set = Arc::clone(&set);
                async move {
                    let namens = req
                        .headers()
                        .get("x-poortwachter-namens")
                        .and_then(|v| v.to_str().ok());
                    Ok::<_, Infallible>(bron_response(&set, req.method(), req.uri().path(), namens))
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

fn bron_response(
    set: &PolicySet,
    method: &Method,
    path: &str,
    namens: Option<&str>,
) -> Response<Full<Bytes>> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let Some((bron_id, rest)) = segs.split_first() else {
        return respond(StatusCode::NOT_FOUND, &json!({}));
    };
    let Some(bron) = set.bronnen.get(*bron_id) else {
        return respond(StatusCode::NOT_FOUND, &json!({}));
    };
    // A supplier's API for several schools must be told whose data: the
    // owner's OIN in X-Poortwachter-Namens, as the gateway sends it.
    if bron.hosted_by.is_some() && !names_an_owner(set, bron, namens) {
        return respond(
            StatusCode::BAD_REQUEST,
            &json!({"fout": "X-Poortwachter-Namens noemt geen school van deze bron"}),
        );
    }
    for (ri, r) in bron.resources.iter().enumerate() {
        if let Some(vars) = r.template.matches(rest) {
            let pupil_id = vars
                .iter()
                .find(|(n, _)| *n == bron.pupil_variable)
                .map(|(_, v)| *v);
            let Some(pupil) = pupil_id.and_then(|s| DEMO_PUPILS.iter().position(|p| *p == s))
            else {
                return respond(
                    StatusCode::NOT_FOUND,
                    &json!({"fout": "onbekende leerling"}),
                );
            };
            return match *method {
                Method::GET => respond(StatusCode::OK, &document(bron, ri, pupil)),
                _ => respond(StatusCode::CREATED, &json!({"ontvangen": true})),
            };
        }
    }
    respond(StatusCode::NOT_FOUND, &json!({}))
}

/// Whether `namens` is the OIN (or id) of one of `bron`'s owners.
fn names_an_owner(set: &PolicySet, bron: &Bron, namens: Option<&str>) -> bool {
    let Some(namens) = namens else {
        return false;
    };
    bron.owners.iter().any(|o| {
        o == namens || set.organisations.get(o).and_then(|org| org.oin.as_deref()) == Some(namens)
    })
}

/// Paths the demo uses, relative to the working directory.
pub struct DemoPaths {
    pub policies: PathBuf,
    pub certs: PathBuf,
    pub data: PathBuf,
}

/// Makes sure `certs` holds a development PKI for every organisation of the
/// policy set; creates it when anything is missing.
/// Makes sure `data` holds a pseudonym key and a checkpoint signing key.
pub fn ensure_keys(data: &Path) -> Result<(), DemoKeyError> {
    std::fs::create_dir_all(data)?;
    let key = data.join("pseudonym.key");
    if !key.exists() {
        crate::audit::Pseudonymiser::generate_file(&key)?;
    }
    let signing = data.join("signing.key");
    if !signing.exists() {
        crate::audit::Signer::generate_file(&signing)?;
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the demo keys")]
pub struct DemoKeyError(#[from] std::io::Error);

pub fn ensure_certs(certs: &Path, set: &PolicySet) -> Result<bool, crate::dev::certs::CertError> {
    let complete = [
        crate::dev::certs::CA_FILE,
        crate::dev::certs::CRL_FILE,
        crate::dev::certs::GATEWAY_CERT,
        crate::dev::certs::GATEWAY_KEY,
    ]
    .iter()
    .all(|f| certs.join(f).exists())
        && set
            .certificate_holders()
            .iter()
            .all(|(o, _)| certs.join(format!("{o}.pem")).exists());
    if complete {
        return Ok(false);
    }
    crate::dev::certs::write_dev_pki(certs, &set.certificate_holders())?;
    Ok(true)
}

/// The demo configuration (TOML) for a gateway on `listen` with demo bronnen
/// at `bronnen_addr`.
pub fn config_toml(
    paths: &DemoPaths,
    listen: SocketAddr,
    bronnen_addr: SocketAddr,
    set: &PolicySet,
    admin: Option<SocketAddr>,
) -> String {
    let abs = |p: &Path| {
        std::path::absolute(p)
            .unwrap_or_else(|_| p.to_owned())
            .display()
            .to_string()
    };
    let mut urls = BTreeMap::new();
    for id in set.bronnen.keys() {
        urls.insert(id.clone(), format!("http://{bronnen_addr}/{id}"));
    }
    let urls: String = urls
        .iter()
        .map(|(k, v)| format!("\"{k}\" = \"{v}\"\n"))
        .collect();
    let admin = admin
        .map(|a| format!("\n[admin]\nlisten = \"{a}\"\n"))
        .unwrap_or_default();
    format!(
        r#"# Generated by `poortwachter demo`. DEVELOPMENT ONLY.
[server]
listen = "{listen}"
instance = "demo-1"

[tls]
cert = "{certs}/gateway.pem"
key = "{certs}/gateway-key.pem"
client_ca = ["{certs}/ca.pem"]
crls = ["{certs}/crl.pem"]

[policy]
dir = "{policies}"

[audit]
store = "sqlite://{data}/audit.db"
pseudonym_key = "{data}/pseudonym.key"
signing_key = "{data}/signing.key"
{admin}
[upstream.base_urls]
{urls}"#,
        certs = abs(&paths.certs),
        policies = abs(&paths.policies),
        data = abs(&paths.data),
    )
}

/// Ready-to-paste curl commands showing an allowed, a filtered and a denied request.
/// Demo registrations: every demo pupil but the last is registered
/// (aangemeld) in every casusoverleg, by the overleg's first role that may
/// register; the last pupil stays unregistered to show case binding.
pub const DEMO_UNREGISTERED: &str = "L1005";
/// The demo consent: parents of L1001 consent to the expertteam PO using JGZ
/// data for "passende-plek".
const DEMO_CONSENT: (&str, &str, &str) = ("expertteam-po", "L1001", "passende-plek");

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Register(#[from] crate::registers::RegisterError),
    #[error("the example policies lack what the demo needs: {0}")]
    Policies(String),
}

/// Seeds the demo registers (idempotent across restarts: only what is not
/// active yet) and returns the id of the active demo consent. Every change
/// goes through the registers, so it is in the audit trail like any other.
pub async fn seed_registers(state: &crate::gateway::state::AppState) -> Result<String, DemoError> {
    let snapshot = state.policy.current();
    let set = &snapshot.set;
    for o in set.overleggen.values() {
        let Some((role, org)) = o
            .roles
            .iter()
            .filter(|r| r.may_register_cases)
            .find_map(|r| r.organisations.first().map(|org| (r, org)))
        else {
            continue;
        };
        register_demo_pupils(state, set, o, role, org).await?;
    }
    demo_consent(state, set).await
}

/// Registers every demo pupil (except the one left unregistered) in `o`,
/// as `org` in `role`, where not registered yet.
async fn register_demo_pupils(
    state: &crate::gateway::state::AppState,
    set: &crate::policy::model::PolicySet,
    o: &crate::policy::model::Overleg,
    role: &crate::policy::model::Role,
    org: &str,
) -> Result<(), DemoError> {
    use crate::registers::{ChangeContext, NewRegistration, Origin, RegisterError, actor};
    let origin = Origin::default();
    let who = actor(set, &o.id, org, Some(&role.id))?;
    let cx = ChangeContext {
        origin: &origin,
        set,
        overleg: &o.id,
        actor: &who,
        deadline: None,
    };
    for pupil in DEMO_PUPILS.iter().filter(|p| **p != DEMO_UNREGISTERED) {
        let status = state
            .registers
            .status(&o.id, pupil)
            .await
            .map_err(RegisterError::from)?;
        if status.registration.is_none() {
            let new = NewRegistration {
                pupil: (*pupil).to_owned(),
                reference: format!("demo-{}-{pupil}", o.id),
                begins_at: None,
                ends_at: None,
                informed_at: None,
                informed_how: None,
            };
            state.registers.register(&cx, new).await?;
        }
    }
    Ok(())
}

/// The demo consent: the active one, or a new one given by the parents.
async fn demo_consent(
    state: &crate::gateway::state::AppState,
    set: &crate::policy::model::PolicySet,
) -> Result<String, DemoError> {
    use crate::registers::{ChangeContext, GivenBy, NewConsent, Origin, RegisterError, actor};
    let (overleg, pupil, purpose) = DEMO_CONSENT;
    let status = state
        .registers
        .status(overleg, pupil)
        .await
        .map_err(RegisterError::from)?;
    if let Some(ids) = status.consent_for(purpose, crate::policy::model::Consent::Parents)
        && let Some(id) = ids.first()
    {
        return Ok((*id).to_owned());
    }
    let o = set
        .overleggen
        .get(overleg)
        .ok_or_else(|| DemoError::Policies(format!("no casusoverleg {overleg}")))?;
    let role = o
        .roles
        .iter()
        .find(|r| r.may_register_cases)
        .ok_or_else(|| DemoError::Policies(format!("no registering role in {overleg}")))?;
    let org = role
        .organisations
        .first()
        .ok_or_else(|| DemoError::Policies(format!("role {} has no organisation", role.id)))?;
    let origin = Origin::default();
    let who = actor(set, overleg, org, Some(&role.id))?;
    let cx = ChangeContext {
        origin: &origin,
        set,
        overleg,
        actor: &who,
        deadline: None,
    };
    let new = NewConsent {
        pupil: pupil.to_owned(),
        given_by: GivenBy::Parents,
        purposes: vec![purpose.to_owned()],
        valid_from: None,
        valid_until: None,
        form_reference: format!("demo-toestemmingsformulier-{pupil}"),
    };
    Ok(state.registers.give_consent(&cx, new).await?.id)
}

// Over 80 lines: one literal, the numbered commands the demo prints, read
// at once like the output it produces.
pub fn curl_examples(certs: &Path, listen: SocketAddr, consent_id: &str) -> String {
    let c = certs.display();
    let port = listen.port();
    let base = format!("https://localhost:{port}/v1");
    let registers = format!("https://localhost:{port}/registers/v1");
    let curl = |org: &str| {
        format!("curl -sS -i --cacert {c}/ca.pem --cert {c}/{org}.pem --key {c}/{org}-key.pem")
    };
    format!(
        r#"
1. Allowed: Leerplicht (gemeente) reads the verzuim overview of pupil L1001 for the AOJ-team's
   purpose "aanpak-verzuim"; every field is permitted (X-Poortwachter-Withheld: 0):
   {lp} -H 'X-Doelbinding: aanpak-verzuim' {base}/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim

2. Filtered: WIJ Groningen (Jeugdwet) reads the same document for "afstemming-ondersteuning" and
   receives only the fields its rule permits (X-Poortwachter-Withheld says how many were withheld):
   {wij} -H 'X-Doelbinding: afstemming-ondersteuning' {base}/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1001/verzuim

3. Denied: Leerplicht may not read the JGZ dossier in the AOJ-team (403 problem+json):
   {lp} -H 'X-Doelbinding: aanpak-verzuim' {base}/aoj-vo-noorderlicht/jgz-dossier/jeugdigen/L1001/advies

4. Case binding: pupil {unregistered} is not registered (aangemeld) in the AOJ-team, so nothing about
   it is shared although the rule would allow every field (403 not-registered):
   {lp} -H 'X-Doelbinding: aanpak-verzuim' {base}/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/{unregistered}/verzuim

5. Allowed with consent: the expertteam PO (SWV) reads the JGZ advice on L1001; the rule needs the
   parents' consent, which the demo registered (toestemming {consent_id}):
   {swv} -H 'X-Doelbinding: passende-plek' {base}/expertteam-po/jgz-dossier/jeugdigen/L1001/advies

6. The school withdraws that consent (acknowledged once no response relying on it can still leave):
   {school} -H 'Content-Type: application/json' -d '{{"leerling":"L1001","referentie":"demo: ouders trekken toestemming in"}}' {registers}/expertteam-po/toestemmingen/{consent_id}/intrekken

7. Denied after the withdrawal: the same request as 5 now gets 403 consent-required:
   {swv} -H 'X-Doelbinding: passende-plek' {base}/expertteam-po/jgz-dossier/jeugdigen/L1001/advies

(Restarting the demo registers a new consent for L1001, so 5-7 can be replayed.)

8. Via a supplier: the school's SaaS pupil administration (las-leverancier) connects with its own
   certificate and names the school in X-Namens (its OIN); it holds the school's mandate for the
   AOJ-team, so it gets exactly what the school gets, and the trail names school and supplier:
   {lev} -H 'X-Namens: {noorderlicht}' -H 'X-Doelbinding: aanpak-verzuim' {base}/aoj-vo-noorderlicht/leerplicht-register/leerlingen/L1001/zaak

9. No mandate: the same supplier names Basisschool De Wadden, whose mandate covers only the
   expertteam PO, not the AOJ-team (403 no-mandate):
   {lev} -H 'X-Namens: {wadden}' -H 'X-Doelbinding: aanpak-verzuim' {base}/aoj-vo-noorderlicht/leerplicht-register/leerlingen/L1001/zaak

10. No principal: a supplier's certificate without X-Namens is refused (400 principal-required):
   {lev} -H 'X-Doelbinding: aanpak-verzuim' {base}/aoj-vo-noorderlicht/leerplicht-register/leerlingen/L1001/zaak

11. A bron the supplier hosts for several schools: the jeugdarts (MAZL) reads De Wadden's sick
   reports from the supplier's one API and names the school in X-Bron-Eigenaar; the gateway tells
   the API whose data in X-Poortwachter-Namens, applies De Wadden's rule (mazl-08) and records
   De Wadden as the owner. Without X-Bron-Eigenaar it is refused (400 owner-required); naming
   De Borg, which switched the app on only for its own CvB, gives 403 no-host-mandate:
   {ggd} -H 'X-Bron-Eigenaar: {wadden}' -H 'X-Doelbinding: medisch-advies' {base}/mazl/ziekmeldingen-saas/leerlingen/L1001/ziekmeldingen
   {ggd} -H 'X-Bron-Eigenaar: {borg}' -H 'X-Doelbinding: medisch-advies' {base}/mazl/ziekmeldingen-saas/leerlingen/L1001/ziekmeldingen

13. Bezwaar (AVG art. 21): the parents of L1002 object; Noorderlicht records it in the AOJ-team:
   {noorderlicht_school} -H 'Content-Type: application/json' -d '{{"leerling":"L1002","referentie":"demo: ouders maken bezwaar"}}' {registers}/aoj-vo-noorderlicht/bezwaren

14. The objection stops a public-task flow: WIJ (Jeugdwet, AVG 6(1)(e)) no longer receives L1002's data
   (403 objection):
   {wij} -H 'X-Doelbinding: afstemming-ondersteuning' {base}/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1002/verzuim

15. but not a legal obligation: Leerplicht (Leerplichtwet, 6(1)(c)) still receives it, and the record
   says why the objection did not apply:
   {lp} -H 'X-Doelbinding: aanpak-verzuim' {base}/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/L1002/verzuim

16. Spoed (Meldcode, Veilig Thuis, acute danger): WIJ reaches {unregistered}'s parents at once, although
   the pupil is not registered in the AOJ-team, under the emergency rule with a reason and a
   justification (never the pupil's name). It opens a 72-hour window for WIJ and this pupil, is a
   record of its own (emergency-window-opened), and waits in the FG's queue ("Te beoordelen", /spoed
   on the admin listener) to be reviewed; until the FG releases it, inzage holds it back:
   {wij} -H 'X-Doelbinding: spoed-veiligheid' -H 'X-Spoed-Reden: acuut-gevaar' -H 'X-Spoed-Toelichting: leerling meldt geweld thuis, mentor ongerust' {base}/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/{unregistered}
"#,
        wij = curl("wij-groningen"),
        lp = curl("gemeente-groningen"),
        swv = curl("swv-po-groningen"),
        school = curl("po-de-wadden"),
        lev = curl("las-leverancier"),
        ggd = curl("ggd-groningen"),
        noorderlicht_school = curl("vo-noorderlicht"),
        borg = "00000099000000000102",
        noorderlicht = "00000099000000000101",
        wadden = "00000099000000000103",
        unregistered = DEMO_UNREGISTERED,
    )
}

/// How to open the FG dashboard of the demo: the privacy officer's
/// development certificate (an organisation with `privacy_officer = true`).
pub fn dashboard_instructions(certs: &Path, admin: SocketAddr, set: &PolicySet) -> String {
    let c = certs.display();
    let port = admin.port();
    let Some(fg) = set.organisations.values().find(|o| o.privacy_officer) else {
        return format!(
            "Admin listener on https://localhost:{port}/ (no organisation has privacy_officer = true: only /health, /ready and /metrics)"
        );
    };
    let id = &fg.id;
    format!(
        r#"FG dashboard (read-only, mTLS, only for {name}): https://localhost:{port}/
   with curl:    curl -sS --cacert {c}/ca.pem --cert {c}/{id}.pem --key {c}/{id}-key.pem https://localhost:{port}/zoeken
   in a browser: openssl pkcs12 -export -in {c}/{id}.pem -inkey {c}/{id}-key.pem -out {id}.p12 -passout pass:demo
                 then import {id}.p12 (password "demo") as your certificate and {c}/ca.pem as a trusted authority
   operations:   curl -sS --cacert {c}/ca.pem --cert {c}/{id}.pem --key {c}/{id}-key.pem https://localhost:{port}/metrics   (also /health, /ready)
   review queue: https://localhost:{port}/spoed   (emergency disclosures to review and release, e.g. after command 16)
"#,
        name = fg.name,
    )
}

#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error(transparent)]
    Tls(#[from] crate::gateway::tls::TlsError),
    #[error("the demo request could not be built")]
    Build(#[from] http::Error),
    #[error("the demo request failed")]
    Request(#[from] hyper_util::client::legacy::Error),
}

/// Sends a little traffic through the demo gateway (allowed, filtered and
/// denied requests about the demo pupils), so the FG dashboard is not empty.
/// Returns the number of requests answered.
pub async fn generate_traffic(certs: &Path, gateway: SocketAddr) -> Result<usize, TrafficError> {
    use http_body_util::BodyExt;
    let base = format!("https://localhost:{}/v1", gateway.port());
    let client = |org: &str| -> Result<_, TrafficError> {
        let cfg = crate::gateway::tls::upstream_client_config(&crate::config::UpstreamConfig {
            ca: vec![certs.join(crate::dev::certs::CA_FILE)],
            client_cert: Some(certs.join(format!("{org}.pem"))),
            client_key: Some(certs.join(format!("{org}-key.pem"))),
            ..Default::default()
        })?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(cfg)
            .https_only()
            .enable_http1()
            .build();
        Ok(
            hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .build::<_, Full<Bytes>>(connector),
        )
    };
    let leerplicht = client("gemeente-groningen")?;
    let wij = client("wij-groningen")?;
    let mut plan: Vec<(&_, String, &str)> = Vec::new();
    for (i, p) in DEMO_PUPILS.iter().enumerate() {
        let verzuim = format!("{base}/aoj-vo-noorderlicht/las-noorderlicht/leerlingen/{p}/verzuim");
        plan.push((&leerplicht, verzuim.clone(), "aanpak-verzuim"));
        if i % 2 == 0 {
            plan.push((&wij, verzuim, "afstemming-ondersteuning"));
        }
        if i % 3 == 0 {
            plan.push((
                &leerplicht,
                format!("{base}/aoj-vo-noorderlicht/jgz-dossier/jeugdigen/{p}/advies"),
                "aanpak-verzuim",
            ));
        }
    }
    let mut answered = 0;
    for (c, url, purpose) in plan {
        let req = Request::builder()
            .uri(url)
            .header("x-doelbinding", purpose)
            .body(Full::new(Bytes::new()))?;
        let resp = c.request(req).await?;
        let _ = resp.into_body().collect().await;
        answered += 1;
    }
    Ok(answered)
}
