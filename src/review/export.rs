//! `audit export`: the trail (or a filtered part of it) as CSV, JSON lines,
//! or in the shape of Logius' *Logboek Dataverwerkingen*.
//!
//! The Logboek shape is one line per processing of one data subject, linked
//! to its processing activity and to the W3C trace. Poortwachter stores one
//! record per request, and a request concerns exactly one betrokkene, so
//! every request record with a subject gives one line; records without a
//! subject (identity refusals, administrative events) are not processings of
//! a data subject and are left out. The subject stays pseudonymised.
//!
//! The FHIR format writes one R4 `AuditEvent` per such record, following IHE
//! BALP's Privacy Disclosure profile ([`super::fhir`]).

use serde_json::json;

use super::query;
use crate::audit::StoredRow;
use crate::policy::model::PolicySet;

/// Export formats (`audit export --format csv|jsonl|logboek|fhir`; any
/// other value is refused by the argument parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    #[value(name = "jsonl", alias = "json-lines")]
    JsonLines,
    Logboek,
    /// FHIR R4 `AuditEvent` resources (IHE BALP Privacy Disclosure), NDJSON.
    #[value(name = "fhir", alias = "fhir-ndjson")]
    Fhir,
}

/// Columns of the CSV export, in order (every stored column except the
/// purge bookkeeping, which JSON lines carries).
pub const CSV_COLUMNS: [&str; 29] = [
    "instance",
    "seq",
    "kind",
    "time",
    "request_id",
    "trace_id",
    "org",
    "supplier",
    "owner",
    "cert_fingerprint",
    "role",
    "grondslag",
    "overleg",
    "purpose",
    "bron",
    "resource",
    "subject",
    "outcome",
    "reason",
    "side",
    "rules",
    "fields_shared",
    "fields_withheld",
    "status",
    "upstream_status",
    "duration_us",
    "policy_version",
    "detail",
    "hash",
];

/// Characters that make a spreadsheet run a cell as a formula when they
/// come first (OWASP's list for CSV injection; `-` too: `-2+3+cmd|…`).
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A cell's text, defused: a cell that a spreadsheet would run as a formula
/// gets a leading `'` (an export must never execute on the FG's machine).
/// Quoting is left to the CSV writer.
fn defuse(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(FORMULA_START) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// One CSV record (RFC 4180: a field with a comma, quote, CR or LF is
/// quoted and its quotes doubled), CRLF-terminated, every cell defused.
fn csv_record<I, S>(cells: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    // Writing valid UTF-8 into memory cannot fail (the JSON lines below rely
    // on the same).
    encode_record(cells).unwrap_or_default()
}

fn encode_record<I, S>(cells: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .buffer_capacity(1024)
        .from_writer(Vec::new());
    for cell in cells {
        w.write_field(defuse(cell.as_ref()).as_bytes()).ok()?;
    }
    w.write_record(None::<&[u8]>).ok()?;
    String::from_utf8(w.into_inner().ok()?).ok()
}

/// One CSV line of `cells` (RFC 4180, CRLF, every cell defused), for other
/// review outputs (`audit toestemming`).
pub fn csv_line<I, S>(cells: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    csv_record(cells)
}

fn csv_row(r: &StoredRow) -> [String; CSV_COLUMNS.len()] {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        r.instance.clone(),
        r.seq.to_string(),
        r.kind.clone(),
        r.time.clone(),
        r.request_id.clone(),
        r.trace_id.clone(),
        o(&r.org),
        o(&r.supplier),
        o(&r.owner),
        o(&r.cert_fingerprint),
        o(&r.role),
        o(&r.grondslag),
        o(&r.overleg),
        o(&r.purpose),
        o(&r.bron),
        o(&r.resource),
        o(&r.pupil),
        r.outcome.clone(),
        r.reason.clone(),
        o(&r.side),
        r.rules.clone(),
        r.fields_shared.clone(),
        r.fields_withheld.clone(),
        r.status.to_string(),
        r.upstream_status.map(|s| s.to_string()).unwrap_or_default(),
        r.duration_us.to_string(),
        r.policy_version.clone(),
        r.detail.clone(),
        r.hash.clone(),
    ]
}

/// The records as CSV with a header line.
pub fn csv(rows: &[StoredRow]) -> String {
    let mut out = header(Format::Csv);
    for r in rows {
        out.push_str(&csv_record(csv_row(r)));
    }
    out
}

/// What precedes the records in `format` (the CSV header line).
pub fn header(format: Format) -> String {
    match format {
        Format::Csv => csv_record(CSV_COLUMNS),
        Format::JsonLines | Format::Logboek | Format::Fhir => String::new(),
    }
}

/// One record in `format`, with its line ending; empty when the format has
/// no line for it (Logboek and FHIR: only requests about a data subject).
/// `set` names organisations (FHIR: their OINs and bron owners).
pub fn line(r: &StoredRow, format: Format, set: &PolicySet) -> String {
    match format {
        Format::Csv => csv_record(csv_row(r)),
        Format::JsonLines => {
            let mut out = serde_json::to_string(r).unwrap_or_default();
            out.push('\n');
            out
        }
        Format::Logboek => logboek_line(r)
            .map(|l| format!("{l}\n"))
            .unwrap_or_default(),
        Format::Fhir => super::fhir::line(set, r),
    }
}

/// Renders `rows` in `format` (header and every line).
pub fn render(rows: &[StoredRow], format: Format, set: &PolicySet) -> String {
    let mut out = header(format);
    for r in rows {
        out.push_str(&line(r, format, set));
    }
    out
}

/// A span id for a record: the records do not keep the span the gateway
/// made for its upstream hop, so the first 16 hex digits of the record hash
/// stand in (unique per record, stable, and tying the line to the chain).
pub fn span_id(r: &StoredRow) -> String {
    r.hash.get(..16).unwrap_or(&r.hash).to_owned()
}

/// Status of a processing in Logboek terms.
fn status_code(outcome: &str) -> &'static str {
    match outcome {
        "allowed" | "filtered" => "OK",
        _ => "ERROR",
    }
}

/// The Logboek Dataverwerkingen line of a record: one per data subject per
/// processing, so only for requests about a (pseudonymised) pupil.
fn logboek_line(r: &StoredRow) -> Option<serde_json::Value> {
    let pseudonym = r.pupil.as_ref()?;
    if r.kind != "request" {
        return None;
    }
    let activity = format!(
        "{}/{}",
        r.overleg.as_deref().unwrap_or("-"),
        r.purpose.as_deref().unwrap_or("-")
    );
    let end = super::when::parse_stored(&r.time)
        .map(|t| super::when::stored(t + time::Duration::microseconds(r.duration_us)));
    Some(json!({
        "trace_id": r.trace_id,
        "span_id": span_id(r),
        "name": format!("{} {}", r.bron.as_deref().unwrap_or("-"), r.resource.as_deref().unwrap_or("-")),
        "start_time": r.time,
        "end_time": end.unwrap_or_else(|| r.time.clone()),
        "status_code": status_code(&r.outcome),
        "resource": {"service.name": "poortwachter", "service.instance.id": r.instance},
        "attributes": {
            "dpl.core.processing_activity_id": activity,
            "dpl.core.data_subject_id": pseudonym,
            "dpl.core.data_subject_id_type": "pseudoniem",
            "dpl.core.recipient": r.org,
            "poortwachter.supplier": r.supplier,
            "poortwachter.owner": r.owner,
            "dpl.core.role": r.role,
            "dpl.core.grondslag": r.grondslag,
            "poortwachter.outcome": r.outcome,
            "poortwachter.reason": r.reason,
            "poortwachter.fields_shared": query::list(&r.fields_shared),
            "poortwachter.record": format!("{}#{}", r.instance, r.seq),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(s: &str) -> String {
        csv_record([s])
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(cell("plain"), "plain\r\n");
        assert_eq!(cell("a,b"), "\"a,b\"\r\n");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"\r\n");
        assert_eq!(cell("=HYPERLINK(1)"), "'=HYPERLINK(1)\r\n");
        assert_eq!(
            cell("-2+3+cmd|' /C calc'!A0"),
            "'-2+3+cmd|' /C calc'!A0\r\n"
        );
        assert_eq!(cell("a-b"), "a-b\r\n");
        assert_eq!(cell("[\"a\",\"b\"]"), "\"[\"\"a\"\",\"\"b\"\"]\"\r\n");
    }

    fn row() -> StoredRow {
        let s = String::from;
        StoredRow {
            instance: s("test-1"),
            seq: 7,
            kind: s("request"),
            time: s("2026-11-22T08:11:33.419376Z"),
            request_id: s("r-1"),
            trace_id: s("6184714baa804635910363d55a6a7e51"),
            org: Some(s("=cmd|' /C calc'!A0")),
            cert_fingerprint: None,
            role: Some(s("+1+1")),
            grondslag: Some(s("Wet \"X\", art. 1\nen art. 2")),
            overleg: Some(s("@SUM(A1)")),
            purpose: Some(s("\tdoel")),
            bron: Some(s("\rbron")),
            resource: Some(s("/leerlingen/{leerling}")),
            pupil: Some(s("k1:ab")),
            outcome: s("allowed"),
            reason: s("allowed"),
            side: None,
            rules: s("[\"r-1\",\"r-2\"]"),
            fields_shared: s("[\"a.b\",\"c\"]"),
            fields_withheld: s("[]"),
            status: 200,
            upstream_status: Some(200),
            duration_us: 1500,
            policy_version: s("abc"),
            detail: s("{\"referentie\":\"a,b\\\"c\"}"),
            personal_digest: s("digest"),
            purged_at: Some(s("2027-01-01T00:00:00.000000Z")),
            prev_hash: s("prev"),
            hash: s("0123456789abcdef0123"),
            supplier: None,
            owner: None,
        }
    }

    /// Quotes, commas, newlines and formula cells survive a round trip
    /// through an independent RFC 4180 reader: same columns, same order,
    /// the values back (formula cells with their leading `'`).
    #[test]
    fn csv_round_trips_quotes_commas_newlines_and_formulas() {
        let out = csv(&[row(), row()]);
        assert!(out.starts_with("instance,seq,kind,time,"), "{out}");
        assert!(out.ends_with("\r\n"));
        assert!(
            out.contains(",\"Wet \"\"X\"\", art. 1\nen art. 2\","),
            "{out}"
        );
        assert!(out.contains(",\"'\rbron\","), "{out}");
        let mut reader = ::csv::Reader::from_reader(out.as_bytes());
        let header = reader.headers().unwrap().clone();
        assert_eq!(header.iter().collect::<Vec<_>>(), CSV_COLUMNS);
        let records: Vec<::csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(records.len(), 2);
        let got = |name: &str| {
            let i = CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
            records[1][i].to_owned()
        };
        assert_eq!(got("org"), "'=cmd|' /C calc'!A0");
        assert_eq!(got("role"), "'+1+1");
        assert_eq!(got("overleg"), "'@SUM(A1)");
        assert_eq!(got("purpose"), "'\tdoel");
        assert_eq!(got("bron"), "'\rbron");
        assert_eq!(got("grondslag"), "Wet \"X\", art. 1\nen art. 2");
        assert_eq!(got("detail"), "{\"referentie\":\"a,b\\\"c\"}");
        assert_eq!(got("rules"), "[\"r-1\",\"r-2\"]");
        assert_eq!(got("cert_fingerprint"), "");
        assert_eq!(got("upstream_status"), "200");
        assert_eq!(got("hash"), "0123456789abcdef0123");
        // The purge bookkeeping is not a CSV column.
        assert!(!out.contains("2027-01-01") && !out.contains("digest"));
    }
}
