//! `audit export --format fhir`: FHIR R4 `AuditEvent` resources following
//! IHE BALP's *Audit Event for Privacy Disclosure at Source*
//! (`IHE.BasicAudit.PrivacyDisclosure.Source`), for the NEN 7513 tooling of
//! the JGZ and other care partners.
//!
//! One resource per line (NDJSON, `application/fhir+ndjson`, the FHIR Bulk
//! Data format that servers import with `$import` and bulk loaders read), so
//! the export streams like the other formats; wrapping the lines into a
//! `batch` Bundle is one `jq -s` (README).
//!
//! Mapping of one request record:
//! - `type` DICOM 110106 "Export", `subtype` ISO 21089 `disclose`,
//!   `action` R, `recorded` the record's time, `period` the request;
//! - `outcome` 0 for allowed and filtered, 4 for denied and client-side
//!   errors, 8 for the other errors; `outcomeDesc` the outcome and reason;
//! - `agent` source (DICOM 110153): the gateway instance, which is also
//!   `source.observer` (BALP's `val-audit-source`); recipient (DICOM
//!   110152): the requesting organisation with its OIN (`urn:osb:oin`, the
//!   OIN's identifier type in Digikoppeling), the requestor, with the role,
//!   the purpose, and as `policy` the policy set version and the deciding
//!   rules; custodian (SNOMED CT 159541003): the bron's owner (the record's
//!   `owner` for a hosted bron); the software
//!   supplier, when the request came through one;
//! - `entity` patient: the pupil as its **pseudonym** (never the clear id),
//!   as a logical reference; data: the bron and resource template, the
//!   grondslag and the fields shared and withheld (names, never values).
//!
//! An emergency disclosure (spoed: reason `emergency-window-opened` or
//! `-used`) adds `purposeOfEvent` v3-ActReason `BTG` "break the glass",
//! and the one that opened its window the `subtype` DICOM 110127
//! "Emergency Override Started" (NEN 7513 logs the emergency procedure).
//!
//! Records without a subject (identity refusals, events, purged records)
//! describe no disclosure about a patient and are left out, as in the
//! Logboek format. The trail keeps no client network address, so
//! `agent[recipient].network` (required by the profile) carries the client
//! certificate's SHA-256 as an RFC 6920 `nih:` URI.

use serde_json::{Value, json};

use super::query;
use crate::audit::StoredRow;
use crate::policy::model::PolicySet;

/// The BALP profile the resources claim.
pub const PROFILE: &str =
    "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PrivacyDisclosure.Source";
/// DICOM's code system (audit event and agent role codes).
pub const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// The identifier type of an OIN (Digikoppeling: "Voor de OIN geldt
/// urn:osb:oin").
pub const OIN_SYSTEM: &str = "urn:osb:oin";
/// Poortwachter's pupil pseudonyms (`k1:<HMAC>`); a local naming system.
pub const PSEUDONYM_SYSTEM: &str = "urn:poortwachter:leerling-pseudoniem";
/// Organisation, supplier and instance ids of the policy set (local).
const ORG_SYSTEM: &str = "urn:poortwachter:organisatie";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";

/// The FHIR outcome code of a record's outcome (0 success, 4 minor
/// failure, 8 serious failure).
pub fn outcome_code(outcome: &str, status: i64) -> &'static str {
    match outcome {
        "allowed" | "filtered" => "0",
        "denied" => "4",
        _ if (400..500).contains(&status) => "4",
        _ => "8",
    }
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

/// A reference to an organisation of the policy set: its OIN when it has
/// one, its id otherwise, and its name.
fn organisation(set: &PolicySet, id: &str) -> Value {
    let org = set.organisations.get(id);
    let identifier = match org.and_then(|o| o.oin.as_deref()) {
        Some(oin) => json!({"system": OIN_SYSTEM, "value": oin}),
        None => json!({"system": ORG_SYSTEM, "value": id}),
    };
    json!({
        "type": "Organization",
        "identifier": identifier,
        "display": org.map_or(id, |o| o.name.as_str()),
    })
}

fn purpose_of_use(set: &PolicySet, r: &StoredRow) -> Value {
    let Some(purpose) = r.purpose.as_deref() else {
        return json!([]);
    };
    let overleg = r.overleg.as_deref().unwrap_or("-");
    let text = set
        .overleggen
        .get(overleg)
        .and_then(|o| o.purpose(purpose))
        .map_or(purpose, |p| p.text.as_str());
    json!([{
        "coding": [{"system": format!("urn:poortwachter:doel:{overleg}"), "code": purpose}],
        "text": text,
    }])
}

/// The recipient agent: who asked, in which role, why, under which policy.
fn recipient(set: &PolicySet, r: &StoredRow, org: &str) -> Value {
    let mut policy = vec![format!("urn:poortwachter:beleid:{}", r.policy_version)];
    policy.extend(
        query::list(&r.rules)
            .iter()
            .map(|rule| format!("urn:poortwachter:regel:{rule}")),
    );
    let mut agent = json!({
        "type": {"coding": [coding(DCM, "110152", "Destination Role ID")]},
        "who": organisation(set, org),
        "requestor": true,
        "policy": policy,
        "purposeOfUse": purpose_of_use(set, r),
    });
    if let Some(role) = &r.role {
        agent["role"] =
            json!([{"coding": [{"system": "urn:poortwachter:rol", "code": role}], "text": role}]);
    }
    if let Some(fp) = &r.cert_fingerprint {
        agent["network"] = json!({"address": format!("nih:sha-256;{fp}"), "type": "5"});
    }
    agent
}

fn agents(set: &PolicySet, r: &StoredRow, gateway: &Value) -> Vec<Value> {
    let mut agents = vec![json!({
        "type": {"coding": [coding(DCM, "110153", "Source Role ID")]},
        "who": gateway,
        "requestor": false,
        "network": {"address": r.instance, "type": "1"},
    })];
    if let Some(org) = &r.org {
        agents.push(recipient(set, r, org));
    }
    // The record names the owner of a hosted bron; a bron of its own has one.
    let owner = r.owner.as_deref().or_else(|| {
        r.bron
            .as_deref()
            .and_then(|b| set.bronnen.get(b))
            .and_then(|b| b.owners.first())
            .map(String::as_str)
    });
    if let Some(owner) = owner {
        agents.push(json!({
            "type": {"coding": [coding("http://snomed.info/sct", "159541003", "Record keeping/library clerk")]},
            "who": organisation(set, owner),
            "requestor": false,
        }));
    }
    if let Some(s) = &r.supplier {
        agents.push(json!({
            "type": {"text": "leverancier (verwerker) namens de ontvanger"},
            "who": {"identifier": {"system": ORG_SYSTEM, "value": s}, "display": s},
            "requestor": false,
        }));
    }
    agents
}

fn entities(r: &StoredRow, pseudonym: &str) -> Value {
    let mut detail: Vec<Value> = Vec::new();
    if let Some(g) = &r.grondslag {
        detail.push(json!({"type": "grondslag", "valueString": g}));
    }
    for f in query::list(&r.fields_shared) {
        detail.push(json!({"type": "gedeeld", "valueString": f}));
    }
    for f in query::list(&r.fields_withheld) {
        detail.push(json!({"type": "achtergehouden", "valueString": f}));
    }
    let what = format!(
        "{} {}",
        r.bron.as_deref().unwrap_or("-"),
        r.resource.as_deref().unwrap_or("-")
    );
    let mut data = json!({
        "what": {
            "identifier": {"system": "urn:poortwachter:record", "value": format!("{}#{}", r.instance, r.seq)},
            "display": what,
        },
        "type": coding(ENTITY_TYPE, "2", "System Object"),
        "role": coding(OBJECT_ROLE, "4", "Domain Resource"),
        "name": what,
    });
    if !detail.is_empty() {
        data["detail"] = Value::Array(detail);
    }
    json!([
        {
            "what": {"type": "Patient", "identifier": {"system": PSEUDONYM_SYSTEM, "value": pseudonym}},
            "type": coding(ENTITY_TYPE, "1", "Person"),
            "role": coding(OBJECT_ROLE, "1", "Patient"),
        },
        data,
    ])
}

/// The `AuditEvent` of a request record about a pupil; `None` for records
/// without a subject or of another kind.
pub fn audit_event(set: &PolicySet, r: &StoredRow) -> Option<Value> {
    let pseudonym = r.pupil.as_deref()?;
    if r.kind != "request" {
        return None;
    }
    let end = super::when::parse_stored(&r.time)
        .map(|t| super::when::stored(t + time::Duration::microseconds(r.duration_us)));
    let gateway = json!({
        "type": "Device",
        "identifier": {"system": "urn:poortwachter:instance", "value": r.instance},
        "display": format!("Poortwachter {}", r.instance),
    });
    let id: String = r.hash.chars().take(32).collect();
    let mut subtype = vec![coding(
        "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle",
        "disclose",
        "Disclose Record Lifecycle Event",
    )];
    let mut purpose = purpose_of_use(set, r);
    if r.reason.starts_with("emergency-window-") {
        if r.reason == "emergency-window-opened" {
            subtype.push(coding(DCM, "110127", "Emergency Override Started"));
        }
        if let Some(p) = purpose.as_array_mut() {
            p.push(json!({"coding": [coding(
                "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                "BTG",
                "break the glass",
            )]}));
        }
    }
    Some(json!({
        "resourceType": "AuditEvent",
        "id": format!("pw-{id}"),
        "meta": {"profile": [PROFILE]},
        "type": coding(DCM, "110106", "Export"),
        "subtype": subtype,
        "action": "R",
        "period": {"start": r.time, "end": end.unwrap_or_else(|| r.time.clone())},
        "recorded": r.time,
        "outcome": outcome_code(&r.outcome, r.status),
        "outcomeDesc": format!("{} ({})", r.outcome, r.reason),
        "purposeOfEvent": purpose,
        "agent": agents(set, r, &gateway),
        "source": {
            "site": "poortwachter",
            "observer": gateway,
            "type": [coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server")],
        },
        "entity": entities(r, pseudonym),
    }))
}

/// One NDJSON line, or empty when the record has no `AuditEvent`.
pub fn line(set: &PolicySet, r: &StoredRow) -> String {
    audit_event(set, r)
        .map(|e| format!("{e}\n"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_fhir_codes() {
        assert_eq!(outcome_code("allowed", 200), "0");
        assert_eq!(outcome_code("filtered", 200), "0");
        assert_eq!(outcome_code("denied", 403), "4");
        assert_eq!(outcome_code("error", 400), "4");
        assert_eq!(outcome_code("error", 502), "8");
        assert_eq!(outcome_code("error", 503), "8");
    }
}
