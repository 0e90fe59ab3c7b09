//! The audit record and its canonical hash.

use ring::digest;
use serde::Serialize;

/// How a request ended, from the FG's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Everything the bron sent was permitted.
    Allowed,
    /// Shared, with fields withheld.
    Filtered,
    /// Refused by identity or policy.
    Denied,
    /// Failed (client, upstream or gateway side); nothing shared.
    Error,
    /// An administrative event (reload, purge, trail access).
    Event,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Filtered => "filtered",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
            Outcome::Event => "event",
        }
    }
}

/// One audit record, as the proxy fills it. Holds the betrokkene only as a
/// pseudonym, and field names only, never values.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord {
    pub kind: &'static str,
    /// RFC 3339 UTC with microseconds; set when the record is created.
    pub time: String,
    pub instance: String,
    pub request_id: String,
    pub trace_id: String,
    pub org: Option<String>,
    pub cert_fingerprint: Option<String>,
    /// The software supplier the request came through (see `StoredRow`).
    pub supplier: Option<String>,
    /// The owner of the data of a bron a supplier hosts (see `StoredRow`).
    pub owner: Option<String>,
    pub role: Option<String>,
    pub grondslag: Option<String>,
    pub overleg: Option<String>,
    pub purpose: Option<String>,
    pub bron: Option<String>,
    pub resource: Option<String>,
    /// Keyed pseudonym of the betrokkene (see [`super::Pseudonymiser`]).
    /// The pupil, as its keyed pseudonym (`k1:<hex>`); never the clear id.
    #[serde(rename = "subject")]
    pub pupil: Option<String>,
    pub outcome: Outcome,
    pub reason: String,
    pub side: Option<&'static str>,
    pub rules: Vec<String>,
    pub fields_shared: Vec<String>,
    pub fields_withheld: Vec<String>,
    pub status: u16,
    pub upstream_status: Option<u16>,
    pub duration_us: u64,
    pub policy_version: String,
    /// JSON object with details of administrative events; `{}` for requests.
    pub detail: String,
}

pub fn now_rfc3339() -> String {
    format_rfc3339(time::OffsetDateTime::now_utc())
}

/// The trail's one time format: RFC 3339, UTC, microseconds, so that text
/// order is time order (the registers compare times as text in SQL).
pub fn format_rfc3339(t: time::OffsetDateTime) -> String {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000000Z"))
}

impl AuditRecord {
    pub fn new(instance: &str, request_id: &str, trace_id: &str) -> Self {
        Self {
            kind: "request",
            time: now_rfc3339(),
            instance: instance.to_owned(),
            request_id: request_id.to_owned(),
            trace_id: trace_id.to_owned(),
            org: None,
            cert_fingerprint: None,
            supplier: None,
            owner: None,
            role: None,
            grondslag: None,
            overleg: None,
            purpose: None,
            bron: None,
            resource: None,
            pupil: None,
            outcome: Outcome::Error,
            reason: "internal".into(),
            side: None,
            rules: Vec::new(),
            fields_shared: Vec::new(),
            fields_withheld: Vec::new(),
            status: 0,
            upstream_status: None,
            duration_us: 0,
            policy_version: String::new(),
            detail: "{}".into(),
        }
    }
}

/// Length-prefixed, tagged encoding, so no two different column sets hash
/// alike (`None` differs from `Some("")`, "ab"+"c" from "a"+"bc"). The
/// encoding is gathered in one buffer and hashed in one call: feeding the
/// digest three small pieces per column cost more than the hashing itself
/// (profile of `audit verify`, benches/RESULTS.md).
pub(crate) struct Canon(Vec<u8>);

thread_local! {
    /// The last finished [`Canon`]'s buffer, emptied, for the next one on
    /// this thread: verification hashes every record twice, and a fresh
    /// buffer each time (allocated, grown, freed) showed in its profile.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Canon {
    pub fn new() -> Self {
        let reused = SCRATCH.with(|s| s.try_borrow_mut().map(|mut v| std::mem::take(&mut *v)));
        match reused {
            Ok(v) if v.capacity() > 0 => Self(v),
            // Most records' columns fit: no reallocation while they are added.
            _ => Self(Vec::with_capacity(2_048)),
        }
    }
    pub fn str<T: AsRef<[u8]> + ?Sized>(&mut self, s: &T) -> &mut Self {
        let s = s.as_ref();
        self.0.push(b's');
        self.0.extend_from_slice(&(s.len() as u64).to_be_bytes());
        self.0.extend_from_slice(s);
        self
    }
    pub fn opt<T: AsRef<[u8]> + ?Sized>(&mut self, s: Option<&T>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => {
                self.0.push(b'n');
                self
            }
        }
    }
    pub fn int(&mut self, v: i64) -> &mut Self {
        self.0.push(b'i');
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn opt_int(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(v) => self.int(v),
            None => {
                self.0.push(b'n');
                self
            }
        }
    }
    pub fn finish_bytes(mut self) -> [u8; 32] {
        let mut out = [0; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, &self.0).as_ref());
        self.0.clear();
        SCRATCH.with(|s| {
            if let Ok(mut v) = s.try_borrow_mut() {
                *v = std::mem::take(&mut self.0);
            }
        });
        out
    }
}

/// The columns exactly as stored; hashing works on these so that `audit
/// verify` can recompute every hash from the database alone. Serialises with
/// the column names as keys (the batch insert relies on it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRow {
    pub instance: String,
    pub seq: i64,
    pub kind: String,
    pub time: String,
    pub request_id: String,
    pub trace_id: String,
    pub org: Option<String>,
    pub cert_fingerprint: Option<String>,
    pub role: Option<String>,
    pub grondslag: Option<String>,
    pub overleg: Option<String>,
    pub purpose: Option<String>,
    pub bron: Option<String>,
    pub resource: Option<String>,
    /// The pupil, as its keyed pseudonym (`k1:<hex>`); never the clear id.
    #[serde(rename = "subject")]
    pub pupil: Option<String>,
    pub outcome: String,
    pub reason: String,
    pub side: Option<String>,
    pub rules: String,
    pub fields_shared: String,
    pub fields_withheld: String,
    pub status: i64,
    pub upstream_status: Option<i64>,
    pub duration_us: i64,
    pub policy_version: String,
    pub detail: String,
    pub personal_digest: String,
    pub purged_at: Option<String>,
    pub prev_hash: String,
    pub hash: String,
    /// The software supplier the request came through, under a mandate of
    /// `org` (its certificate is `cert_fingerprint`).
    pub supplier: Option<String>,
    /// For a bron a supplier hosts for several organisations: the
    /// organisation whose data was asked for or delivered (the controller,
    /// not the supplier). NULL for a bron of its own, whose owner is fixed.
    pub owner: Option<String>,
}

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A record's columns borrowed from wherever they are (a [`StoredRow`], or a
/// database row while `audit verify` streams past it): what hashing reads.
/// The one definition of both hashes. Text columns are `str`, or (for
/// verification, which hashes what is stored without checking each column
/// is UTF-8) the bytes SQLite holds: `RowRef<'_, [u8]>`.
#[derive(Debug)]
pub struct RowRef<'a, T: ?Sized = str> {
    pub instance: &'a T,
    pub seq: i64,
    pub kind: &'a T,
    pub time: &'a T,
    pub request_id: &'a T,
    pub trace_id: &'a T,
    pub org: Option<&'a T>,
    pub cert_fingerprint: Option<&'a T>,
    pub role: Option<&'a T>,
    pub grondslag: Option<&'a T>,
    pub overleg: Option<&'a T>,
    pub purpose: Option<&'a T>,
    pub bron: Option<&'a T>,
    pub resource: Option<&'a T>,
    pub pupil: Option<&'a T>,
    pub outcome: &'a T,
    pub reason: &'a T,
    pub side: Option<&'a T>,
    pub rules: &'a T,
    pub fields_shared: &'a T,
    pub fields_withheld: &'a T,
    pub status: i64,
    pub upstream_status: Option<i64>,
    pub duration_us: i64,
    pub policy_version: &'a T,
    pub detail: &'a T,
    pub personal_digest: &'a T,
    pub purged_at: Option<&'a T>,
    pub prev_hash: &'a T,
    pub hash: &'a T,
    pub supplier: Option<&'a T>,
    pub owner: Option<&'a T>,
}

impl<T: ?Sized> Clone for RowRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for RowRef<'_, T> {}

impl RowRef<'_> {
    /// The row, owned (what the FG's walks hand their callers).
    pub fn to_stored(&self) -> StoredRow {
        let own = |s: &str| s.to_owned();
        let opt = |s: Option<&str>| s.map(str::to_owned);
        StoredRow {
            instance: own(self.instance),
            seq: self.seq,
            kind: own(self.kind),
            time: own(self.time),
            request_id: own(self.request_id),
            trace_id: own(self.trace_id),
            org: opt(self.org),
            cert_fingerprint: opt(self.cert_fingerprint),
            role: opt(self.role),
            grondslag: opt(self.grondslag),
            overleg: opt(self.overleg),
            purpose: opt(self.purpose),
            bron: opt(self.bron),
            resource: opt(self.resource),
            pupil: opt(self.pupil),
            outcome: own(self.outcome),
            reason: own(self.reason),
            side: opt(self.side),
            rules: own(self.rules),
            fields_shared: own(self.fields_shared),
            fields_withheld: own(self.fields_withheld),
            status: self.status,
            upstream_status: self.upstream_status,
            duration_us: self.duration_us,
            policy_version: own(self.policy_version),
            detail: own(self.detail),
            personal_digest: own(self.personal_digest),
            purged_at: opt(self.purged_at),
            prev_hash: own(self.prev_hash),
            hash: own(self.hash),
            supplier: opt(self.supplier),
            owner: opt(self.owner),
        }
    }
}

impl<T: AsRef<[u8]> + ?Sized> RowRef<'_, T> {
    /// Digest of the personal columns; kept when a purge erases them.
    pub fn compute_personal_digest(&self) -> String {
        crate::hex::encode(&self.personal_digest_bytes())
    }

    /// [`RowRef::compute_personal_digest`], not yet hex.
    pub fn personal_digest_bytes(&self) -> [u8; 32] {
        let mut c = Canon::new();
        c.opt(self.pupil)
            .str(self.fields_shared)
            .str(self.fields_withheld);
        c.finish_bytes()
    }

    /// The record hash: covers the previous hash, every non-personal column
    /// and the personal digest.
    pub fn compute_hash(&self) -> String {
        crate::hex::encode(&self.hash_bytes())
    }

    /// [`RowRef::compute_hash`], not yet hex.
    pub fn hash_bytes(&self) -> [u8; 32] {
        let mut c = Canon::new();
        c.str(self.prev_hash)
            .str(self.instance)
            .int(self.seq)
            .str(self.kind)
            .str(self.time)
            .str(self.request_id)
            .str(self.trace_id)
            .opt(self.org)
            .opt(self.cert_fingerprint)
            .opt(self.role)
            .opt(self.grondslag)
            .opt(self.overleg)
            .opt(self.purpose)
            .opt(self.bron)
            .opt(self.resource)
            .str(self.outcome)
            .str(self.reason)
            .opt(self.side)
            .str(self.rules)
            .int(self.status)
            .opt_int(self.upstream_status)
            .int(self.duration_us)
            .str(self.policy_version)
            .str(self.detail)
            .str(self.personal_digest);
        // Covered only when set: records from before the column keep their
        // hashes.
        if let Some(s) = self.supplier {
            c.str("supplier").str(s);
        }
        if let Some(o) = self.owner {
            c.str("owner").str(o);
        }
        c.finish_bytes()
    }
}

impl StoredRow {
    /// The row's columns, borrowed.
    pub fn as_ref(&self) -> RowRef<'_> {
        RowRef {
            instance: &self.instance,
            seq: self.seq,
            kind: &self.kind,
            time: &self.time,
            request_id: &self.request_id,
            trace_id: &self.trace_id,
            org: self.org.as_deref(),
            cert_fingerprint: self.cert_fingerprint.as_deref(),
            role: self.role.as_deref(),
            grondslag: self.grondslag.as_deref(),
            overleg: self.overleg.as_deref(),
            purpose: self.purpose.as_deref(),
            bron: self.bron.as_deref(),
            resource: self.resource.as_deref(),
            pupil: self.pupil.as_deref(),
            outcome: &self.outcome,
            reason: &self.reason,
            side: self.side.as_deref(),
            rules: &self.rules,
            fields_shared: &self.fields_shared,
            fields_withheld: &self.fields_withheld,
            status: self.status,
            upstream_status: self.upstream_status,
            duration_us: self.duration_us,
            policy_version: &self.policy_version,
            detail: &self.detail,
            personal_digest: &self.personal_digest,
            purged_at: self.purged_at.as_deref(),
            prev_hash: &self.prev_hash,
            hash: &self.hash,
            supplier: self.supplier.as_deref(),
            owner: self.owner.as_deref(),
        }
    }

    /// Digest of the personal columns; kept when a purge erases them.
    pub fn compute_personal_digest(&self) -> String {
        self.as_ref().compute_personal_digest()
    }

    /// The record hash: covers the previous hash, every non-personal column
    /// and the personal digest.
    pub fn compute_hash(&self) -> String {
        self.as_ref().compute_hash()
    }

    /// Builds the stored row for `rec` at position `seq` after `prev_hash`.
    pub fn from_record(rec: &AuditRecord, seq: i64, prev_hash: &str) -> Self {
        Self::from_owned(rec.clone(), seq, prev_hash)
    }

    /// Like [`StoredRow::from_record`], moving the strings out of `rec`.
    pub fn from_owned(rec: AuditRecord, seq: i64, prev_hash: &str) -> Self {
        let mut row = Self::unlinked(rec);
        row.link(seq, prev_hash);
        row
    }

    /// Puts the row at position `seq` after `prev_hash` (its hash follows).
    pub fn link(&mut self, seq: i64, prev_hash: &str) {
        self.seq = seq;
        prev_hash.clone_into(&mut self.prev_hash);
        self.hash = self.compute_hash();
    }

    /// The row for `rec` with its personal digest, not yet in a chain: the
    /// writer [`links`](StoredRow::link) it when it commits.
    pub fn unlinked(rec: AuditRecord) -> Self {
        let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
        let mut row = StoredRow {
            rules: json(&rec.rules),
            fields_shared: json(&rec.fields_shared),
            fields_withheld: json(&rec.fields_withheld),
            instance: rec.instance,
            seq: 0,
            kind: rec.kind.to_owned(),
            time: rec.time,
            request_id: rec.request_id,
            trace_id: rec.trace_id,
            org: rec.org,
            cert_fingerprint: rec.cert_fingerprint,
            role: rec.role,
            grondslag: rec.grondslag,
            overleg: rec.overleg,
            purpose: rec.purpose,
            bron: rec.bron,
            resource: rec.resource,
            pupil: rec.pupil,
            outcome: rec.outcome.as_str().to_owned(),
            reason: rec.reason,
            side: rec.side.map(str::to_owned),
            status: i64::from(rec.status),
            upstream_status: rec.upstream_status.map(i64::from),
            duration_us: i64::try_from(rec.duration_us).unwrap_or(i64::MAX),
            policy_version: rec.policy_version,
            detail: rec.detail,
            personal_digest: String::new(),
            purged_at: None,
            prev_hash: String::new(),
            hash: String::new(),
            supplier: rec.supplier,
            owner: rec.owner,
        };
        row.personal_digest = row.compute_personal_digest();
        row
    }
}
