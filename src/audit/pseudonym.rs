//! Keyed pseudonyms for betrokkenen: HMAC-SHA256 under a versioned key kept
//! outside the audit database. The same pupil id always gives the same
//! pseudonym under one key version, so the FG can find records by computing
//! it; without the key the pseudonym reveals nothing.

use std::path::Path;

use ring::hmac;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read pseudonym key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("pseudonym key file {path}, line {line}: expected `<version> <64 or more hex digits>`")]
    Format { path: String, line: usize },
    #[error("pseudonym key file {0} holds no key")]
    Empty(String),
}

/// The keys, oldest first; the last one is used for new records.
#[derive(Clone)]
pub struct Pseudonymiser {
    keys: Vec<(String, hmac::Key)>,
}

impl std::fmt::Debug for Pseudonymiser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("Pseudonymiser")
            .field(
                "versions",
                &self.keys.iter().map(|(v, _)| v).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Pseudonymiser {
    /// Parses a key file: one `<version> <hex key>` per line, `#` comments.
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: p.clone(),
            source,
        })?;
        Self::parse(&text, &p)
    }

    pub fn parse(text: &str, path: &str) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fmt = || KeyError::Format {
                path: path.to_owned(),
                line: i + 1,
            };
            let (version, key) = line.split_once(char::is_whitespace).ok_or_else(fmt)?;
            let key = crate::hex::decode(key.trim())
                .filter(|k| k.len() >= 32)
                .ok_or_else(fmt)?;
            if version.is_empty() || !version.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(fmt());
            }
            keys.push((version.to_owned(), hmac::Key::new(hmac::HMAC_SHA256, &key)));
        }
        if keys.is_empty() {
            return Err(KeyError::Empty(path.to_owned()));
        }
        Ok(Self { keys })
    }

    /// Writes a new key file with one fresh random key (version `k1`).
    pub fn generate_file(path: &Path) -> std::io::Result<()> {
        use ring::rand::SecureRandom;
        let mut key = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| std::io::Error::other("no randomness available"))?;
        let text = format!(
            "# Poortwachter pseudonym key (HMAC-SHA256). Keep outside the audit database; back it up.\n# Add a new line to rotate; the last line is used for new records.\nk1 {}\n",
            crate::hex::encode(&key)
        );
        write_secret(path, text.as_bytes())
    }

    /// Pseudonym under the current key: `<version>:<hex>`.
    pub fn pseudonymise(&self, id: &str) -> String {
        let Some((v, k)) = self.keys.last() else {
            return String::new();
        };
        Self::with(v, k, id)
    }

    /// Pseudonyms of `id` under every key version (for lookups across rotations).
    pub fn all_pseudonyms(&self, id: &str) -> Vec<String> {
        self.keys
            .iter()
            .map(|(v, k)| Self::with(v, k, id))
            .collect()
    }

    fn with(version: &str, key: &hmac::Key, id: &str) -> String {
        let tag = hmac::sign(key, id.as_bytes());
        format!("{version}:{}", crate::hex::encode(tag.as_ref()))
    }
}

/// Writes a file readable only by its owner.
pub fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_keyed_and_versioned() {
        let a = Pseudonymiser::parse(&format!("k1 {}\n", "11".repeat(32)), "t").unwrap();
        let b = Pseudonymiser::parse(
            &format!("k1 {}\nk2 {}\n", "11".repeat(32), "22".repeat(32)),
            "t",
        )
        .unwrap();
        assert_eq!(a.pseudonymise("L1001"), a.pseudonymise("L1001"));
        assert_ne!(a.pseudonymise("L1001"), a.pseudonymise("L1002"));
        assert!(a.pseudonymise("L1001").starts_with("k1:"));
        assert!(!a.pseudonymise("L1001").contains("L1001"));
        assert!(b.pseudonymise("L1001").starts_with("k2:"));
        assert_eq!(b.all_pseudonyms("L1001")[0], a.pseudonymise("L1001"));
        assert!(!format!("{b:?}").contains("1111"));
    }

    #[test]
    fn rejects_short_or_malformed_keys() {
        assert!(Pseudonymiser::parse("k1 abcd\n", "t").is_err());
        assert!(Pseudonymiser::parse("# only a comment\n", "t").is_err());
        assert!(Pseudonymiser::parse(&format!("k-1 {}\n", "11".repeat(32)), "t").is_err());
    }
}
