//! `x-runner-request-id`: kept when well-formed, otherwise a fresh UUID.

#![forbid(unsafe_code)]

pub const REQUEST_ID_HEADER: &str = "x-runner-request-id";
const MAX_LEN: usize = 128;

/// The characters JavaScript's `String.prototype.trim` removes that can occur
/// in a latin1-decoded header value (it does not remove U+0085).
fn is_js_trim_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | ' ' | '\u{A0}')
}

/// The client's id when it is 1..=128 characters of `[A-Za-z0-9._:-]` after
/// trimming.
pub fn normalize(value: Option<&str>) -> Option<&str> {
    let trimmed = value?.trim_matches(is_js_trim_char);
    if trimmed.is_empty() || trimmed.len() > MAX_LEN {
        return None;
    }
    trimmed
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        .then_some(trimmed)
}

/// Length of a fresh id (a hyphenated UUID).
pub const FRESH_LEN: usize = uuid::fmt::Hyphenated::LENGTH;

/// A fresh id written into `buf`, without allocating.
pub fn fresh_into(buf: &mut [u8; FRESH_LEN]) -> &str {
    uuid::Uuid::new_v4().hyphenated().encode_lower(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_id_is_kept_trimmed() {
        assert_eq!(normalize(Some("  req-1:a.b_c ")), Some("req-1:a.b_c"));
    }

    #[test]
    fn malformed_or_long_ids_are_replaced() {
        assert_eq!(normalize(Some("a b")), None);
        assert_eq!(normalize(Some("a, b")), None);
        assert_eq!(normalize(Some("")), None);
        assert_eq!(normalize(None), None);
        assert_eq!(normalize(Some(&"x".repeat(129))), None);
        assert_eq!(normalize(Some(&"x".repeat(128))).map(str::len), Some(128));
        assert_eq!(normalize(Some("\u{85}abc")), None);
    }

    #[test]
    fn fresh_ids_are_version_4_uuids() {
        let (mut a, mut b) = ([0u8; FRESH_LEN], [0u8; FRESH_LEN]);
        let (a, b) = (fresh_into(&mut a), fresh_into(&mut b));
        assert_eq!(a.len(), 36);
        assert_ne!(a, b);
        assert_eq!(a.as_bytes()[14], b'4');
        assert_eq!(a.matches('-').count(), 4);
        assert!(normalize(Some(a)).is_some());
    }
}
