//! SHA-256 as Potluck writes it everywhere (seals, input files, model files):
//! 64 lowercase hex digits.

use sha2::{Digest, Sha256};

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut hex, b| {
            let _ = write!(hex, "{b:02x}"); // Writing to a String cannot fail.
            hex
        })
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Whether `text` is a SHA-256 as Potluck writes it. Uppercase is refused:
/// a digest is compared as a string, so another spelling would never match.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(to_hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }

    #[test]
    fn sha256_of_known_input() {
        let abc = sha256_hex(b"abc");
        assert_eq!(
            abc,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(is_sha256_hex(&abc));
        assert!(!is_sha256_hex(&abc.to_uppercase()));
        assert!(!is_sha256_hex(&abc[1..]));
        assert!(!is_sha256_hex(&format!("{}g", &abc[1..])));
    }
}
