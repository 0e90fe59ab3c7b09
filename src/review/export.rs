//! `audit export`: the trail (or a filtered part of it) as CSV, JSON lines,
//! or in the shape of Logius' *Logboek Dataverwerkingen*.
//!
//! The Logboek shape is one line per processing of one data subject, linked
//! to its processing activity and to the W3C trace. Poortwachter stores one
//! record per request, and a request concerns exactly one betrokkene, so
//! every request record with a subject gives one line; records without a
//! subject (identity refusals, administrative events) are not processings of
//! a data subject and are left out. The subject stays pseudonymised.

use serde_json::json;

use super::query;
use crate::audit::StoredRow;

/// Export formats (`audit export --format csv|jsonl|logboek`; any other
/// value is refused by the argument parser).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    #[value(name = "jsonl", alias = "json-lines")]
    JsonLines,
    Logboek,
}

/// Columns of the CSV export, in order (every stored column except the
/// purge bookkeeping, which JSON lines carries).
pub const CSV_COLUMNS: [&str; 27] = [
    "instance",
    "seq",
    "kind",
    "time",
    "request_id",
    "trace_id",
    "org",
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

/// One CSV cell (RFC 4180). Cells that a spreadsheet would run as a formula
/// get a leading `'`: an export must never execute on the FG's machine.
pub fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_row(r: &StoredRow) -> [String; 27] {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    [
        r.instance.clone(),
        r.seq.to_string(),
        r.kind.clone(),
        r.time.clone(),
        r.request_id.clone(),
        r.trace_id.clone(),
        o(&r.org),
        o(&r.cert_fingerprint),
        o(&r.role),
        o(&r.grondslag),
        o(&r.overleg),
        o(&r.purpose),
        o(&r.bron),
        o(&r.resource),
        o(&r.subject),
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
    render(rows, Format::Csv)
}

/// What precedes the records in `format` (the CSV header line).
pub fn header(format: Format) -> String {
    match format {
        Format::Csv => {
            let mut out = CSV_COLUMNS.join(",");
            out.push_str("\r\n");
            out
        }
        Format::JsonLines | Format::Logboek => String::new(),
    }
}

/// One record in `format`, with its line ending; empty when the format has
/// no line for it (Logboek: only requests about a data subject).
pub fn line(r: &StoredRow, format: Format) -> String {
    match format {
        Format::Csv => {
            let cells: Vec<String> = csv_row(r).iter().map(|c| csv_cell(c)).collect();
            let mut out = cells.join(",");
            out.push_str("\r\n");
            out
        }
        Format::JsonLines => {
            let mut out = serde_json::to_string(r).unwrap_or_default();
            out.push('\n');
            out
        }
        Format::Logboek => logboek_line(r)
            .map(|l| format!("{l}\n"))
            .unwrap_or_default(),
    }
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
    let subject = r.subject.as_ref()?;
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
            "dpl.core.data_subject_id": subject,
            "dpl.core.data_subject_id_type": "pseudoniem",
            "dpl.core.recipient": r.org,
            "dpl.core.role": r.role,
            "dpl.core.grondslag": r.grondslag,
            "poortwachter.outcome": r.outcome,
            "poortwachter.reason": r.reason,
            "poortwachter.fields_shared": query::list(&r.fields_shared),
            "poortwachter.record": format!("{}#{}", r.instance, r.seq),
        }
    }))
}

/// Renders `rows` in `format` (header and every line).
pub fn render(rows: &[StoredRow], format: Format) -> String {
    let mut out = header(format);
    for r in rows {
        out.push_str(&line(r, format));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("[\"a\",\"b\"]"), "\"[\"\"a\"\",\"\"b\"\"]\"");
    }
}
