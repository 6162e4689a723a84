//! Content codings: which one an answer is sent in, chosen from the
//! request's `Accept-Encoding` (RFC 9110 12.5.3), and which answers are worth
//! compressing at all.

#![forbid(unsafe_code)]

/// A content coding the server can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Br,
}

impl Coding {
    /// The `content-encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Br => "br",
        }
    }
}

/// What a request's `Accept-Encoding` allows for a compressible answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// No `Accept-Encoding` at all: the answer goes exactly as without
    /// compression (no `Vary` either), as clients such as Node's `http`
    /// expect.
    Absent,
    /// Sent, but neither coding is preferred to `identity`.
    Identity,
    Coding(Coding),
}

/// A weight in thousandths, 0 (not acceptable) to 1000.
type Q = u16;

/// Chooses the coding from every `Accept-Encoding` field line of a request.
///
/// - a coding's weight is its own `q` (default 1), else that of `*`, else 0;
/// - `q=0` refuses a coding; `x-gzip` is `gzip` (RFC 9110 12.5.3);
/// - the heavier of `br` and `gzip` wins, `br` on a tie (it is smaller);
/// - `identity` wins only when given (by name or `*`) a larger weight than
///   the best coding; when no coding is acceptable the answer is identity
///   even if `identity;q=0` (the server never answers 406);
/// - a list item that does not parse is ignored.
pub fn negotiate<'a>(fields: impl IntoIterator<Item = &'a [u8]>) -> Accepted {
    let mut any = false;
    let (mut br, mut gzip, mut identity, mut star) = (None, None, None, None);
    for field in fields {
        any = true;
        for item in field.split(|&b| b == b',') {
            let Some((name, q)) = parse_item(item) else {
                continue;
            };
            let slot = if name.eq_ignore_ascii_case(b"br") {
                &mut br
            } else if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
                &mut gzip
            } else if name.eq_ignore_ascii_case(b"identity") {
                &mut identity
            } else if name == b"*" {
                &mut star
            } else {
                continue;
            };
            // The first mention of a coding counts.
            slot.get_or_insert(q);
        }
    }
    if !any {
        return Accepted::Absent;
    }
    let weight = |q: Option<Q>| q.or(star).unwrap_or(0);
    let (br, gzip) = (weight(br), weight(gzip));
    let (coding, q) = if br >= gzip {
        (Coding::Br, br)
    } else {
        (Coding::Gzip, gzip)
    };
    if q == 0 || identity.or(star).is_some_and(|id| id > q) {
        return Accepted::Identity;
    }
    Accepted::Coding(coding)
}

/// One list item: `coding *( OWS ";" OWS param )`, of whose parameters only
/// `q` counts. `None`: empty or malformed.
fn parse_item(item: &[u8]) -> Option<(&[u8], Q)> {
    let mut parts = item.split(|&b| b == b';');
    let name = parts.next().map(<[u8]>::trim_ascii)?;
    if name.is_empty() || !(name == b"*" || name.iter().all(|&b| is_tchar(b))) {
        return None;
    }
    let mut q = 1000;
    for param in parts {
        let param = param.trim_ascii();
        let (key, value) = match param.iter().position(|&b| b == b'=') {
            Some(i) => (param[..i].trim_ascii(), param[i + 1..].trim_ascii()),
            None => return None,
        };
        if key.eq_ignore_ascii_case(b"q") {
            q = parse_qvalue(value)?;
        }
    }
    Some((name, q))
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )` in
/// thousandths.
fn parse_qvalue(v: &[u8]) -> Option<Q> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &[][..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths: Q = 0;
    for i in 0..3 {
        thousandths = thousandths * 10 + Q::from(frac.get(i).map_or(0, |d| d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// `tchar` (RFC 9110 5.6.2).
fn is_tchar(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'^'..=b'`' | b'|' | b'~')
}

/// Whether a streamed answer of this content type gains from compression:
/// everything but media and archive formats, which are compressed already.
pub fn compressible_type(content_type: Option<&[u8]>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let essence = ct
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let starts = |prefix: &[u8]| {
        essence.len() >= prefix.len() && essence[..prefix.len()].eq_ignore_ascii_case(prefix)
    };
    let is = |name: &[u8]| essence.eq_ignore_ascii_case(name);
    if starts(b"image/") {
        // SVG is text.
        return is(b"image/svg+xml");
    }
    !(starts(b"audio/")
        || starts(b"video/")
        || starts(b"font/woff")
        || [
            &b"application/zip"[..],
            b"application/gzip",
            b"application/x-gzip",
            b"application/zstd",
            b"application/x-bzip2",
            b"application/x-xz",
            b"application/x-7z-compressed",
            b"application/x-rar-compressed",
            b"application/vnd.rar",
        ]
        .iter()
        .any(|name| is(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(fields: &[&str]) -> Accepted {
        negotiate(fields.iter().map(|f| f.as_bytes()))
    }

    const BR: Accepted = Accepted::Coding(Coding::Br);
    const GZIP: Accepted = Accepted::Coding(Coding::Gzip);

    #[test]
    fn no_accept_encoding_is_absent_and_an_empty_one_is_identity() {
        assert_eq!(pick(&[]), Accepted::Absent);
        assert_eq!(pick(&[""]), Accepted::Identity);
        assert_eq!(pick(&["deflate, compress"]), Accepted::Identity);
    }

    #[test]
    fn br_wins_a_tie_and_the_heavier_coding_wins_otherwise() {
        assert_eq!(pick(&["gzip, deflate, br"]), BR);
        assert_eq!(pick(&["gzip, br;q=1.0"]), BR);
        assert_eq!(pick(&["gzip"]), GZIP);
        assert_eq!(pick(&["br;q=0.5, gzip;q=0.8"]), GZIP);
        assert_eq!(pick(&["br;q=0.8, gzip;q=0.5"]), BR);
        assert_eq!(pick(&["x-gzip"]), GZIP);
        assert_eq!(pick(&["GZip;Q=0.3"]), GZIP);
    }

    #[test]
    fn q_zero_refuses_a_coding() {
        assert_eq!(pick(&["br;q=0, gzip"]), GZIP);
        assert_eq!(pick(&["br;q=0, gzip;q=0"]), Accepted::Identity);
        assert_eq!(pick(&["gzip;q=0.000"]), Accepted::Identity);
    }

    #[test]
    fn star_covers_the_codings_not_named() {
        assert_eq!(pick(&["*"]), BR);
        assert_eq!(pick(&["br;q=0, *"]), GZIP);
        assert_eq!(pick(&["*;q=0"]), Accepted::Identity);
        assert_eq!(pick(&["gzip;q=0.2, *;q=0.5"]), BR);
    }

    #[test]
    fn identity_wins_only_with_a_larger_weight() {
        assert_eq!(pick(&["gzip, identity"]), GZIP);
        assert_eq!(pick(&["gzip;q=0.5, identity"]), Accepted::Identity);
        assert_eq!(pick(&["gzip;q=0.1, br;q=0, *;q=0.5"]), Accepted::Identity);
        assert_eq!(pick(&["identity;q=0"]), Accepted::Identity);
        assert_eq!(pick(&["gzip, identity;q=0"]), GZIP);
    }

    #[test]
    fn fields_on_several_lines_are_one_list() {
        assert_eq!(pick(&["deflate", "gzip"]), GZIP);
        assert_eq!(pick(&["gzip", "br"]), BR);
    }

    #[test]
    fn malformed_items_are_ignored() {
        for bad in [
            "br;q=2",
            "br;q=1.5",
            "br;q=0.1234",
            "br;q=",
            "br;q=abc",
            "br;q",
            "b r",
            ";q=1",
        ] {
            assert_eq!(pick(&[&format!("{bad}, gzip;q=0.5")]), GZIP, "{bad}");
        }
        assert_eq!(pick(&[" br ; q=0.9 ,gzip;q=0.5"]), BR);
        assert_eq!(pick(&["br;level=5"]), BR);
        assert_eq!(pick(&[",,gzip,"]), GZIP);
    }

    #[test]
    fn tchar_is_the_rfc_set() {
        for b in 0..=255u8 {
            let rfc = b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
            assert_eq!(is_tchar(b), rfc, "{b}");
        }
    }

    #[test]
    fn qvalues_parse_to_thousandths() {
        assert_eq!(parse_qvalue(b"0"), Some(0));
        assert_eq!(parse_qvalue(b"0.5"), Some(500));
        assert_eq!(parse_qvalue(b"0.001"), Some(1));
        assert_eq!(parse_qvalue(b"1"), Some(1000));
        assert_eq!(parse_qvalue(b"1.000"), Some(1000));
        assert_eq!(parse_qvalue(b"1.001"), None);
        assert_eq!(parse_qvalue(b".5"), None);
    }

    #[test]
    fn media_and_archives_are_not_compressed_text_is() {
        for yes in [
            None,
            Some("application/json; charset=utf-8"),
            Some("application/octet-stream"),
            Some("text/event-stream"),
            Some("application/x-ndjson"),
            Some("image/svg+xml"),
        ] {
            assert!(compressible_type(yes.map(str::as_bytes)), "{yes:?}");
        }
        for no in [
            "image/png",
            "IMAGE/JPEG",
            "video/mp4",
            "audio/ogg",
            "application/zip",
            "application/gzip; x=1",
            "font/woff2",
        ] {
            assert!(!compressible_type(Some(no.as_bytes())), "{no}");
        }
    }
}
