//! Request heads (RFC 9112 2-3, 6): the request line and fields, checked
//! strictly, and the body framing they announce.

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};

use super::grammar::{has_token, is_tchar, quoted_string_len, trim_ows};
use super::{Refusal, MAX_HEAD, MAX_HEADERS, STACK_HEADERS};

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `content-length` bytes follow (0: no body).
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    pub request: Request<()>,
    pub framing: Framing,
    /// The client allows the connection to stay open after this exchange.
    pub keep_alive: bool,
    /// `expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// Bytes the head took on the wire.
    pub len: usize,
}

/// `content-length = 1*DIGIT` (RFC 9110 8.6), within `u64`. A list, even of
/// equal values, is refused: llhttp refuses it, hyper accepts it, and no
/// client needs it.
fn content_length(value: &[u8]) -> Result<u64, Refusal> {
    let digits = trim_ows(value);
    if digits.is_empty() {
        return Err(Refusal::Bad);
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return Err(Refusal::Bad);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(Refusal::Bad)
    })
}

/// Reads one `transfer-encoding` field value on top of the codings seen so
/// far; `ends_chunked` says whether the list now ends in `chunked`. Each
/// element is a `transfer-coding` (a token, with optional parameters);
/// `chunked` may only come last, once, and without parameters (RFC 9112
/// 6.1, 7).
fn transfer_codings(value: &[u8], ends_chunked: &mut bool) -> Result<(), Refusal> {
    for element in value.split(|&b| b == b',') {
        let element = trim_ows(element);
        if *ends_chunked {
            // Nothing may follow `chunked`, not even an empty element (both
            // llhttp and hyper refuse `chunked,`).
            return Err(Refusal::Bad);
        }
        if element.is_empty() {
            // Empty list elements are ignored (RFC 9110 5.6.1), as both
            // llhttp and hyper ignore them.
            continue;
        }
        let name_end = element
            .iter()
            .position(|&b| !is_tchar(b))
            .unwrap_or(element.len());
        if name_end == 0 {
            return Err(Refusal::Bad);
        }
        let (name, params) = element.split_at(name_end);
        if name.eq_ignore_ascii_case(b"chunked") {
            if !params.is_empty() {
                return Err(Refusal::Bad);
            }
            *ends_chunked = true;
        } else if !valid_parameters(params) {
            return Err(Refusal::Bad);
        }
    }
    Ok(())
}

/// Transfer-coding parameters: `*( OWS ";" OWS token "=" ( token /
/// quoted-string ) )`, a stricter subset of RFC 9110 5.6.6 (no whitespace
/// around `=`, no empty parameter, and no comma inside a quoted value, as the
/// list was split on commas); what it refuses is refused, never misread.
fn valid_parameters(mut rest: &[u8]) -> bool {
    loop {
        rest = trim_ows(rest);
        let Some(after) = rest.strip_prefix(b";") else {
            return rest.is_empty();
        };
        let after = trim_ows(after);
        let name_end = after
            .iter()
            .position(|&b| !is_tchar(b))
            .unwrap_or(after.len());
        if name_end == 0 || after.get(name_end) != Some(&b'=') {
            return false;
        }
        let value = &after[name_end + 1..];
        let used = if value.first() == Some(&b'"') {
            match quoted_string_len(value) {
                Some(n) => n,
                None => return false,
            }
        } else {
            value
                .iter()
                .position(|&b| !is_tchar(b))
                .unwrap_or(value.len())
        };
        if used == 0 {
            return false;
        }
        rest = &value[used..];
    }
}

/// The request methods Node's parser knows; it refuses every other with
/// 400, and so does this server (the protocol needs only POST and GET).
fn known_method(method: &[u8]) -> bool {
    matches!(
        method,
        b"GET"
            | b"POST"
            | b"PUT"
            | b"DELETE"
            | b"HEAD"
            | b"OPTIONS"
            | b"PATCH"
            | b"TRACE"
            | b"COPY"
            | b"LOCK"
            | b"MKCOL"
            | b"MOVE"
            | b"PROPFIND"
            | b"PROPPATCH"
            | b"SEARCH"
            | b"UNLOCK"
            | b"BIND"
            | b"REBIND"
            | b"UNBIND"
            | b"ACL"
            | b"REPORT"
            | b"MKACTIVITY"
            | b"CHECKOUT"
            | b"MERGE"
            | b"M-SEARCH"
            | b"NOTIFY"
            | b"SUBSCRIBE"
            | b"UNSUBSCRIBE"
            | b"PURGE"
            | b"MKCALENDAR"
            | b"LINK"
            | b"UNLINK"
            | b"SOURCE"
            | b"QUERY"
    )
}

/// Every line of a head ends in CRLF (RFC 9112 2.2): a bare LF is refused,
/// as llhttp refuses it (hyper accepts it). A bare CR never gets this far
/// (httparse refuses it).
fn crlf_only(head: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', head).all(|i| i > 0 && head[i - 1] == b'\r')
}

/// Parses one request head from the front of `buf`. `Ok(None)`: incomplete,
/// read more. On success the head's bytes are taken out of `buf` (header
/// values share them, uncopied).
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, Refusal> {
    // Leading empty lines before a request line are tolerated (RFC 9112 2.2),
    // as both llhttp and hyper tolerate them; a CR that does not end a line
    // is refused there, as they refuse it (a CR last waits for its LF).
    let mut blank = 0;
    loop {
        match (buf.get(blank), buf.get(blank + 1)) {
            (Some(b'\n'), _) => blank += 1,
            (Some(b'\r'), Some(b'\n')) => blank += 2,
            (Some(b'\r'), Some(_)) => return Err(Refusal::Bad),
            _ => break,
        }
    }
    if blank > 0 {
        let _ = buf.split_to(blank);
    }
    // Only a head's worth is looked at, so what is decided never depends on
    // how much more the client had sent by then.
    let window = &buf[..buf.len().min(MAX_HEAD)];
    // Header slots are left uninitialised: httparse writes those it uses.
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let checked = match req.parse_with_uninit_headers(window, &mut slots) {
        Ok(httparse::Status::Complete(n)) => check_head(window, &req, n)?,
        Ok(httparse::Status::Partial) => return incomplete(window),
        Err(httparse::Error::TooManyHeaders) => {
            // Rare: more lines than the stack holds, but Node takes up to a
            // head's worth of them. CRLF-ended lines are at least 4 bytes, so
            // more than MAX_HEADERS of them in a head's worth of bytes means
            // bare LFs: refused as they are whenever they are seen.
            let mut many = Box::new_uninit_slice(MAX_HEADERS);
            let mut req = httparse::Request::new(&mut []);
            match req.parse_with_uninit_headers(window, &mut many) {
                Ok(httparse::Status::Complete(n)) => check_head(window, &req, n)?,
                Ok(httparse::Status::Partial) => return incomplete(window),
                Err(_) => return Err(Refusal::Bad),
            }
        }
        Err(_) => return Err(Refusal::Bad),
    };
    checked.into_head(buf).map(Some)
}

/// A head not yet complete: wait for more, unless what came is already
/// refused (a bare LF is looked for first, so that the answer does not
/// depend on how much of the head had come).
fn incomplete(buf: &[u8]) -> Result<Option<Head>, Refusal> {
    if !crlf_only(buf) {
        Err(Refusal::Bad)
    } else if buf.len() >= MAX_HEAD {
        Err(Refusal::TooLarge)
    } else {
        Ok(None)
    }
}

/// A head that passed every check, its values as ranges of the buffer.
struct Checked {
    len: usize,
    method: Method,
    path_range: std::ops::Range<usize>,
    version: Version,
    fields: Vec<(HeaderName, usize, usize)>,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
}

/// Checks a complete head of `len` bytes at the front of `buf` against the
/// framing rules.
fn check_head(buf: &[u8], req: &httparse::Request<'_, '_>, len: usize) -> Result<Checked, Refusal> {
    if !crlf_only(&buf[..len]) {
        return Err(Refusal::Bad);
    }
    let method = req.method.unwrap_or("");
    if !known_method(method.as_bytes()) {
        return Err(Refusal::Bad);
    }
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| Refusal::Bad)?;
    // The target, as a range of the head (it shares the head's bytes).
    let path = req.path.ok_or(Refusal::Bad)?;
    if !path.is_ascii() {
        // Both llhttp and hyper refuse raw non-ASCII bytes in the target.
        return Err(Refusal::Bad);
    }
    let path_start = (path.as_ptr() as usize)
        .checked_sub(buf.as_ptr() as usize)
        .ok_or(Refusal::Bad)?;
    let path_range = path_start..path_start + path.len();
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(Refusal::Bad),
    };

    // Header names now, values as ranges of the head (sliced once it is
    // split off the buffer).
    let base = buf.as_ptr() as usize;
    let mut fields: Vec<(HeaderName, usize, usize)> = Vec::with_capacity(req.headers.len());
    let mut length: Option<u64> = None;
    let mut transfer_encoding = false;
    let mut chunked = false;
    let mut hosts = 0usize;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| Refusal::Bad)?;
        let value = h.value;
        if name == header::CONTENT_LENGTH {
            // A second content-length, even an equal one, is refused (see
            // `content_length`).
            if length.is_some() {
                return Err(Refusal::Bad);
            }
            length = Some(content_length(value)?);
        } else if name == header::TRANSFER_ENCODING {
            transfer_encoding = true;
            transfer_codings(value, &mut chunked)?;
        } else if name == header::HOST {
            hosts += 1;
        } else if name == header::CONNECTION {
            close |= has_token(value, "close");
            keep_alive_token |= has_token(value, "keep-alive");
        } else if name == header::EXPECT {
            expect_continue |= trim_ows(value).eq_ignore_ascii_case(b"100-continue");
        }
        let start = value.as_ptr() as usize - base;
        fields.push((name, start, start + value.len()));
    }
    // One host for HTTP/1.1 and at most one for 1.0 (RFC 9112 3.2), as
    // Node's server requires.
    if hosts > 1 || (hosts == 0 && version == Version::HTTP_11) {
        return Err(Refusal::Bad);
    }
    let framing = if transfer_encoding {
        // A body length given two ways is how requests get smuggled: refuse
        // (RFC 9112 6.1), and any transfer coding of a request that does not
        // end in chunked (its length could not be known).
        if !chunked || length.is_some() || version == Version::HTTP_10 {
            return Err(Refusal::Bad);
        }
        Framing::Chunked
    } else {
        Framing::Length(length.unwrap_or(0))
    };
    let keep_alive = match version {
        Version::HTTP_11 => !close,
        _ => keep_alive_token && !close,
    };

    Ok(Checked {
        len,
        method,
        path_range,
        version,
        fields,
        framing,
        keep_alive,
        expect_continue: expect_continue && version == Version::HTTP_11,
    })
}

impl Checked {
    /// Takes the head's bytes out of `buf` and builds the request on them.
    fn into_head(self, buf: &mut BytesMut) -> Result<Head, Refusal> {
        let head = buf.split_to(self.len).freeze();
        let uri = Uri::from_maybe_shared(head.slice(self.path_range)).map_err(|_| Refusal::Bad)?;
        let mut headers = HeaderMap::with_capacity(self.fields.len());
        for (name, start, end) in self.fields {
            let value =
                HeaderValue::from_maybe_shared(head.slice(start..end)).map_err(|_| Refusal::Bad)?;
            headers.append(name, value);
        }
        let mut request = Request::new(());
        *request.method_mut() = self.method;
        *request.uri_mut() = uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = headers;
        Ok(Head {
            request,
            framing: self.framing,
            keep_alive: self.keep_alive,
            expect_continue: self.expect_continue,
            len: self.len,
        })
    }
}
