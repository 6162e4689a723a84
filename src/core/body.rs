//! How a task request's body is to be read.

#![forbid(unsafe_code)]

/// The body kinds the reference tells apart by `content-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// Read, size-limited, parsed by the serializer.
    Json = 0,
    /// `application/octet-stream`: not read; the handler owns the stream.
    Raw = 1,
    /// `multipart/form-data` anywhere in the content type.
    Multipart = 2,
}

pub fn body_kind(content_type: Option<&str>) -> BodyKind {
    let ct = content_type.unwrap_or("").as_bytes();
    const MULTIPART: &[u8] = b"multipart/form-data";
    const RAW: &[u8] = b"application/octet-stream";
    if ct
        .windows(MULTIPART.len())
        .any(|w| w.eq_ignore_ascii_case(MULTIPART))
    {
        return BodyKind::Multipart;
    }
    if ct.len() >= RAW.len() && ct[..RAW.len()].eq_ignore_ascii_case(RAW) {
        let rest = &ct[RAW.len()..];
        if rest.is_empty() || rest[0] == b';' {
            return BodyKind::Raw;
        }
    }
    BodyKind::Json
}

/// Whether a declared `content-length` already exceeds the limit, so the
/// answer can be given before reading anything.
pub fn declared_too_large(content_length: Option<&str>, max: usize) -> bool {
    content_length
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > max as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_are_classified_like_the_reference() {
        assert_eq!(body_kind(None), BodyKind::Json);
        assert_eq!(body_kind(Some("application/json")), BodyKind::Json);
        assert_eq!(body_kind(Some("Application/Octet-Stream")), BodyKind::Raw);
        assert_eq!(
            body_kind(Some("application/octet-stream; x=1")),
            BodyKind::Raw
        );
        assert_eq!(body_kind(Some("application/octet-streamx")), BodyKind::Json);
        assert_eq!(
            body_kind(Some("x; multipart/form-data")),
            BodyKind::Multipart
        );
    }

    #[test]
    fn declared_length_over_the_limit_is_too_large() {
        assert!(declared_too_large(Some("11"), 10));
        assert!(!declared_too_large(Some("10"), 10));
        assert!(!declared_too_large(None, 10));
        assert!(!declared_too_large(Some("x"), 10));
    }
}
