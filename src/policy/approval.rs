//! Approvals of a policy set version (issue 18, question (c)): an approver
//! (the FG, or a partner's representative if the covenant wants it) signs
//! the version hash with an Ed25519 key, like the checkpoint key. The
//! signatures are files in `<policy dir>/goedkeuringen/`, outside the files
//! the version hash covers, so approving a version does not change it.
//! `serve` can require approvals (`[policy.approval]`): an unapproved set is
//! refused at start and at every reload, and the refusal is recorded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ring::signature;
use serde::{Deserialize, Serialize};

use crate::audit::checkpoint::{self, Signer, SigningKeyError};
use crate::hex::{decode as unhex, encode as hex};

/// The directory under the policy directory that holds approvals.
pub const DIR: &str = "goedkeuringen";

/// Domain separation: an approval signature can never be taken for a
/// checkpoint signature made with the same kind of key.
const CONTEXT: &str = "poortwachter-policy-approval-v1";

/// One signed approval, as stored in `goedkeuringen/<version>-<approver>.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The full policy version (SHA-256 hex over the policy files).
    pub version: String,
    /// Who approves: an id from `[policy.approval] keys`.
    pub approver: String,
    /// When (RFC 3339 UTC).
    pub time: String,
    pub key_id: String,
    pub signature: String,
}

impl Approval {
    fn message(version: &str, approver: &str, time: &str) -> String {
        format!("{CONTEXT}\n{version}\n{approver}\n{time}")
    }

    /// Signs `version` as `approver` with `signer` at `time`.
    pub fn sign(signer: &Signer, version: &str, approver: &str, time: &str) -> Self {
        let msg = Self::message(version, approver, time);
        Self {
            version: version.to_owned(),
            approver: approver.to_owned(),
            time: time.to_owned(),
            key_id: signer.key_id(),
            signature: signer.sign_bytes(msg.as_bytes()),
        }
    }

    /// Whether the signature is `public_key`'s over this approval.
    pub fn verify(&self, public_key: &[u8]) -> bool {
        let Some(sig) = unhex(&self.signature) else {
            return false;
        };
        let msg = Self::message(&self.version, &self.approver, &self.time);
        signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
            .verify(msg.as_bytes(), &sig)
            .is_ok()
    }

    /// The file name: the version's first 16 hex digits and the approver.
    pub fn file_name(&self) -> String {
        let short = self.version.get(..16).unwrap_or(&self.version);
        format!("{short}-{}.toml", self.approver)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("cannot read {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an approval file")]
    Parse {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] SigningKeyError),
    #[error("cannot encode the approval")]
    Encode(#[source] toml::ser::Error),
}

/// `[policy.approval]`: whose approval a set needs before `serve` uses it,
/// and the public key of every approver.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// Approver ids whose valid approval is required (all of them).
    #[serde(default)]
    pub required: Vec<String>,
    /// Approver id → public key file (64 hex digits, as `policy keygen`
    /// writes it).
    #[serde(default)]
    pub keys: BTreeMap<String, PathBuf>,
}

/// The approvers' public keys, read once.
#[derive(Debug, Clone, Default)]
pub struct Approvers {
    required: Vec<String>,
    keys: BTreeMap<String, Vec<u8>>,
}

/// Which approvals a version has: the valid ones, and the required
/// approvers without one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Standing {
    pub valid: Vec<Approval>,
    pub missing: Vec<String>,
}

impl Standing {
    /// The approvals as the trail records them (no signatures).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.valid
                .iter()
                .map(|a| serde_json::json!({"approver": a.approver, "time": a.time, "key_id": a.key_id}))
                .collect(),
        )
    }
}

impl Approvers {
    /// Reads every configured public key; a required approver without a key
    /// is refused here, at start.
    pub fn from_config(cfg: &ApprovalConfig) -> Result<Self, SigningKeyError> {
        let mut keys = BTreeMap::new();
        for (id, path) in &cfg.keys {
            keys.insert(id.clone(), checkpoint::read_public_key(path)?);
        }
        Ok(Self {
            required: cfg.required.clone(),
            keys,
        })
    }

    /// Whether approvals are required at all.
    pub fn enforced(&self) -> bool {
        !self.required.is_empty()
    }

    /// The approvals of `version` in `dir`'s approval directory: each file
    /// naming this version, from a known approver, whose signature that
    /// approver's key verifies. Unreadable or foreign files are skipped
    /// (they approve nothing).
    pub fn standing(&self, dir: &Path, version: &str) -> Standing {
        let mut valid: Vec<Approval> = read_dir(dir)
            .into_iter()
            .filter(|a| a.version == version)
            .filter(|a| self.keys.get(&a.approver).is_some_and(|k| a.verify(k)))
            .collect();
        valid.sort_by(|a, b| a.approver.cmp(&b.approver).then(a.time.cmp(&b.time)));
        valid.dedup_by(|a, b| a.approver == b.approver);
        let missing = self
            .required
            .iter()
            .filter(|r| !valid.iter().any(|a| &a.approver == *r))
            .cloned()
            .collect();
        Standing { valid, missing }
    }
}

/// Every approval file in `<dir>/goedkeuringen/` that parses.
pub fn read_dir(dir: &Path) -> Vec<Approval> {
    let Ok(rd) = std::fs::read_dir(dir.join(DIR)) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths.iter().filter_map(|p| read_file(p).ok()).collect()
}

/// One approval file.
pub fn read_file(path: &Path) -> Result<Approval, ApprovalError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ApprovalError::Io {
        path: p.clone(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ApprovalError::Parse { path: p, source })
}

/// Writes `approval` into `<dir>/goedkeuringen/`, returning its path.
pub fn write(dir: &Path, approval: &Approval) -> Result<PathBuf, ApprovalError> {
    let target = dir.join(DIR);
    let err = |path: &Path| {
        let path = path.display().to_string();
        move |source| ApprovalError::Write { path, source }
    };
    std::fs::create_dir_all(&target).map_err(err(&target))?;
    let path = target.join(approval.file_name());
    let body = toml::to_string(approval).map_err(ApprovalError::Encode)?;
    let text = format!(
        "# Goedkeuring van policyversie {} door {} ({}).\n# Gemaakt met `poortwachter policy approve`; de handtekening dekt versie, goedkeurder en tijd.\n{body}",
        approval.version, approval.approver, approval.time
    );
    std::fs::write(&path, text).map_err(err(&path))?;
    Ok(path)
}

/// The public key of `signer`, hex (for messages).
pub fn public_hex(signer: &Signer) -> String {
    hex(&signer.public_key())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dir: &Path, name: &str) -> (Signer, PathBuf) {
        let path = dir.join(name);
        Signer::generate_file(&path).unwrap();
        let mut public = path.as_os_str().to_owned();
        public.push(".pub");
        (Signer::from_file(&path).unwrap(), PathBuf::from(public))
    }

    #[test]
    fn a_signed_approval_verifies_and_a_changed_one_does_not() {
        let tmp = tempfile::tempdir().unwrap();
        let (fg, fg_pub) = key(tmp.path(), "fg.key");
        let (other, _) = key(tmp.path(), "other.key");
        let version = "ab".repeat(32);
        let a = Approval::sign(&fg, &version, "fg", "2026-12-03T12:00:00Z");
        let public = checkpoint::read_public_key(&fg_pub).unwrap();
        assert!(a.verify(&public));
        for bad in [
            Approval {
                version: "cd".repeat(32),
                ..a.clone()
            },
            Approval {
                approver: "partner".into(),
                ..a.clone()
            },
            Approval {
                time: "2026-12-04T12:00:00Z".into(),
                ..a.clone()
            },
        ] {
            assert!(!bad.verify(&public));
        }
        let forged = Approval::sign(&other, &version, "fg", "2026-12-03T12:00:00Z");
        assert!(!forged.verify(&public));
    }

    #[test]
    fn standing_counts_only_valid_approvals_of_this_version() {
        let tmp = tempfile::tempdir().unwrap();
        let (fg, fg_pub) = key(tmp.path(), "fg.key");
        let (partner, partner_pub) = key(tmp.path(), "p.key");
        let (stranger, _) = key(tmp.path(), "s.key");
        let approvers = Approvers::from_config(&ApprovalConfig {
            required: vec!["fg".into(), "partner".into()],
            keys: BTreeMap::from([("fg".into(), fg_pub), ("partner".into(), partner_pub)]),
        })
        .unwrap();
        let dir = tmp.path().join("policies");
        let v1 = "11".repeat(32);
        let v2 = "22".repeat(32);
        let t = "2026-12-03T12:00:00Z";
        assert_eq!(approvers.standing(&dir, &v1).missing, ["fg", "partner"]);
        write(&dir, &Approval::sign(&fg, &v1, "fg", t)).unwrap();
        // Signed by someone else's key, for another version, or garbage.
        write(&dir, &Approval::sign(&stranger, &v1, "partner", t)).unwrap();
        write(&dir, &Approval::sign(&partner, &v2, "partner", t)).unwrap();
        std::fs::write(dir.join(DIR).join("junk.toml"), "x = 1").unwrap();
        let s = approvers.standing(&dir, &v1);
        assert_eq!(s.valid.len(), 1);
        assert_eq!(s.valid[0].approver, "fg");
        assert_eq!(s.missing, ["partner"]);
        write(&dir, &Approval::sign(&partner, &v1, "partner", t)).unwrap();
        let s = approvers.standing(&dir, &v1);
        assert!(s.missing.is_empty(), "{s:?}");
        assert_eq!(approvers.standing(&dir, &v2).missing, ["fg"]);
        let summary = s.summary().to_string();
        assert!(
            summary.contains("\"approver\":\"fg\"") && !summary.contains(&s.valid[0].signature)
        );
    }
}
