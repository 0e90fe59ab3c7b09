//! Lower-case hexadecimal encoding, for hashes, fingerprints and keys.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Encodes `bytes` as lower-case hex (a table lookup per nibble: hashes are
/// encoded for every record written and every record verified, and
/// formatting each byte through `fmt` showed in the profiles).
pub fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Decodes hex (either case); `None` for odd length or a non-hex digit.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// [`encode`] of a 32-byte hash, on the stack: verification compares two
/// computed hashes per record with their stored text.
pub fn encode_32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        if let [hi, lo] = pair {
            *hi = DIGITS[usize::from(b >> 4)];
            *lo = DIGITS[usize::from(b & 0x0f)];
        }
    }
    out
}

/// Decodes exactly 64 lower-case hex digits (a stored hash as the writer
/// writes it) into its 32 bytes without an allocation; `None` for anything
/// else.
pub fn lower_32(s: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (o, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *o = (nibble(*hi)? << 4) | nibble(*lo)?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn roundtrip_and_rejects() {
        assert_eq!(super::encode(&[0, 15, 255]), "000fff");
        assert_eq!(super::decode("000fFF"), Some(vec![0, 15, 255]));
        assert_eq!(super::decode("abc"), None);
        assert_eq!(super::decode("zz"), None);
        let bytes: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 37 % 256).unwrap());
        assert_eq!(
            super::encode_32(&bytes).as_slice(),
            super::encode(&bytes).as_bytes()
        );
        let h = super::encode(&bytes);
        assert_eq!(super::lower_32(&h), Some(bytes));
        assert_eq!(super::lower_32(&h.to_uppercase()), None);
        assert_eq!(super::lower_32(&h[..62]), None);
        assert_eq!(super::lower_32(&format!("{}g", &h[..63])), None);
    }
}
