//! `x-runner-request-id`: kept when well-formed, otherwise a fresh UUID.

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

pub fn fresh() -> String {
    uuid::Uuid::new_v4().to_string()
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
    fn fresh_ids_are_uuids() {
        let id = fresh();
        assert_eq!(id.len(), 36);
        assert!(normalize(Some(&id)).is_some());
    }
}
