//! Signed checkpoints of the hash chains (Ed25519, ring). The signing key is
//! a PKCS#8 file outside the database; verification needs only the public
//! key, which the FG keeps elsewhere.

use std::path::Path;

use ring::signature::{self, Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

use crate::hex::{decode as unhex, encode as hex};

#[derive(Debug, thiserror::Error)]
pub enum SigningKeyError {
    #[error("cannot read signing key {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("public key {path} is not 64 hexadecimal digits")]
    PublicKey { path: String },
    #[error("signing key {path} is not readable as PEM")]
    Pem {
        path: String,
        #[source]
        source: pem::PemError,
    },
    #[error("signing key {path} is not an Ed25519 PKCS#8 key (PEM or DER)")]
    Format {
        path: String,
        #[source]
        source: ring::error::KeyRejected,
    },
}

/// One checkpoint: the chain of `instance` up to `seq` ends in `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub instance: String,
    pub ck_no: i64,
    pub seq: i64,
    pub hash: String,
    pub time: String,
    pub key_id: String,
    pub signature: String,
}

impl Checkpoint {
    /// The checkpoint's own record in its chain, as the writer appends it:
    /// its `detail` names every column of the checkpoint row, which lets the
    /// chain vouch for the row (`audit::verify`, `RecordedCheckpoint`).
    pub fn chain_record(&self, request_id: &str, trace_id: &str) -> super::AuditRecord {
        let mut rec = super::AuditRecord::new(&self.instance, request_id, trace_id);
        rec.kind = "checkpoint";
        rec.outcome = super::Outcome::Event;
        rec.reason = "checkpoint".into();
        rec.detail = serde_json::json!({
            "ck_no": self.ck_no, "seq": self.seq, "hash": self.hash, "key_id": self.key_id,
            "signature": self.signature, "time": self.time,
        })
        .to_string();
        rec
    }

    /// The exact bytes that are signed.
    pub fn message(instance: &str, ck_no: i64, seq: i64, hash: &str, time: &str) -> String {
        format!("poortwachter-checkpoint-v1\n{instance}\n{ck_no}\n{seq}\n{hash}\n{time}\n")
    }

    /// Checks the signature against `public_key` (32 raw bytes).
    pub fn verify(&self, public_key: &[u8]) -> bool {
        let Some(sig) = unhex(&self.signature) else {
            return false;
        };
        let msg = Self::message(&self.instance, self.ck_no, self.seq, &self.hash, &self.time);
        signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
            .verify(msg.as_bytes(), &sig)
            .is_ok()
    }
}

/// Key id: first 16 hex digits of SHA-256 of the public key.
pub fn key_id(public_key: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, public_key);
    hex(&d.as_ref()[..8])
}

/// The checkpoint signer.
pub struct Signer {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("key_id", &self.key_id())
            .finish()
    }
}

const PEM_LABEL: &str = "PRIVATE KEY";

impl Signer {
    pub fn from_file(path: &Path) -> Result<Self, SigningKeyError> {
        let p = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| SigningKeyError::Io {
            path: p.clone(),
            source,
        })?;
        let der = if bytes.starts_with(b"-----") {
            pem::parse(&bytes)
                .map_err(|source| SigningKeyError::Pem {
                    path: p.clone(),
                    source,
                })?
                .into_contents()
        } else {
            bytes
        };
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|source| SigningKeyError::Format { path: p, source })?;
        Ok(Self { pair })
    }

    /// Writes a new Ed25519 key (PKCS#8 PEM, mode 0600) and its public key
    /// (hex) next to it as `<path>.pub`.
    pub fn generate_file(path: &Path) -> std::io::Result<()> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| std::io::Error::other("no randomness available"))?;
        let pem = pem::encode(&pem::Pem::new(PEM_LABEL, pkcs8.as_ref().to_vec()));
        super::pseudonym::write_secret(path, pem.as_bytes())?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| std::io::Error::other("generated key rejected"))?;
        let mut pub_path = path.as_os_str().to_owned();
        pub_path.push(".pub");
        std::fs::write(pub_path, format!("{}\n", hex(pair.public_key().as_ref())))
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    pub fn key_id(&self) -> String {
        key_id(self.pair.public_key().as_ref())
    }

    /// Signs `msg` (hex signature); callers separate their domain in `msg`.
    pub fn sign_bytes(&self, msg: &[u8]) -> String {
        hex(self.pair.sign(msg).as_ref())
    }

    pub fn sign(&self, instance: &str, ck_no: i64, seq: i64, hash: &str, time: &str) -> Checkpoint {
        let msg = Checkpoint::message(instance, ck_no, seq, hash, time);
        Checkpoint {
            instance: instance.to_owned(),
            ck_no,
            seq,
            hash: hash.to_owned(),
            time: time.to_owned(),
            key_id: self.key_id(),
            signature: hex(self.pair.sign(msg.as_bytes()).as_ref()),
        }
    }
}

/// Reads a public key file: 64 hex digits (as written by `generate_file`).
pub fn read_public_key(path: &Path) -> Result<Vec<u8>, SigningKeyError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| SigningKeyError::Io {
        path: p.clone(),
        source,
    })?;
    unhex(text.trim())
        .filter(|k| k.len() == 32)
        .ok_or(SigningKeyError::PublicKey { path: p })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_detect_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("signing.key");
        Signer::generate_file(&path).unwrap();
        let signer = Signer::from_file(&path).unwrap();
        let public = read_public_key(&dir.path().join("signing.key.pub")).unwrap();
        assert_eq!(public, signer.public_key());
        let ck = signer.sign(
            "gw-1",
            3,
            120,
            &"ab".repeat(32),
            "2026-11-22T00:00:00.000000Z",
        );
        assert!(ck.verify(&public));
        let mut bad = ck.clone();
        bad.seq = 119;
        assert!(!bad.verify(&public));
        let mut bad = ck.clone();
        bad.hash = "cd".repeat(32);
        assert!(!bad.verify(&public));
        let other = tempfile::tempdir().unwrap();
        Signer::generate_file(&other.path().join("k")).unwrap();
        let other_pub = read_public_key(&other.path().join("k.pub")).unwrap();
        assert!(!ck.verify(&other_pub));
    }
}
