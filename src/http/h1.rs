//! HTTP/1.x on the wire: request heads in, body framing both ways, answer
//! heads out. Pure functions over byte buffers; the connection driver in
//! `conn.rs` does the I/O.

#![forbid(unsafe_code)]

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};

/// Largest request head accepted (Node's default `maxHeaderSize`).
pub const MAX_HEAD: usize = 16 * 1024;
/// Header lines parsed on the stack; a head with more takes the slow path.
const STACK_HEADERS: usize = 128;
/// Header lines one head can hold at all (each takes at least `a:` CRLF).
const MAX_HEADERS: usize = MAX_HEAD / 4;
/// Most chunk-extension bytes on one chunk line (Node's limit; past it, 413).
const MAX_CHUNK_EXTENSIONS: usize = 16 * 1024;
/// Most hex digits in a chunk size, leading zeros included.
const MAX_CHUNK_SIZE_DIGITS: u32 = 64;
/// Most trailer name and value bytes (Node counts these against its header
/// limit; past it, 431).
const MAX_TRAILERS: usize = MAX_HEAD;

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
}

/// Why the parser refused a request; the connection answers and closes.
/// Each is answered with the status Node's server gives for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: not a well-formed HTTP/1.1 request (head or body framing).
    Bad,
    /// 408: the head did not arrive in time.
    Timeout,
    /// 413: the chunk extensions of a body exceed [`MAX_CHUNK_EXTENSIONS`].
    ExtensionsTooLarge,
    /// 431: the head is longer than [`MAX_HEAD`], or the trailers than
    /// [`MAX_TRAILERS`].
    TooLarge,
}

impl Refusal {
    /// The whole answer written before closing: what Node's server sends.
    pub fn answer(self) -> &'static [u8] {
        match self {
            Refusal::Bad => b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n",
            Refusal::Timeout => REQUEST_TIMEOUT,
            Refusal::ExtensionsTooLarge => {
                b"HTTP/1.1 413 Payload Too Large\r\nconnection: close\r\n\r\n"
            }
            Refusal::TooLarge => {
                b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\n\r\n"
            }
        }
    }
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// `tchar` (RFC 9110 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Optional whitespace (RFC 9110 5.6.3): SP and HTAB, nothing else.
fn trim_ows(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &value[start..end]
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

/// The length of the `quoted-string` at the front of `s` (RFC 9110 5.6.4).
fn quoted_string_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while let Some(&b) = s.get(i) {
        match b {
            b'"' => return Some(i + 1),
            b'\\' => {
                if !s.get(i + 1).copied().is_some_and(is_field_value_char) {
                    return None;
                }
                i += 2;
            }
            b if is_qdtext(b) => i += 1,
            _ => return None,
        }
    }
    None
}

fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5B | 0x5D..=0x7E | 0x80..=0xFF)
}

/// `field-value` bytes (RFC 9110 5.5): VCHAR, obs-text, SP and HTAB; also
/// what a `quoted-pair` may escape (RFC 9110 5.6.4).
fn is_field_value_char(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21..=0x7E | 0x80..=0xFF)
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
    // as both llhttp and hyper tolerate them.
    let blank = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
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
        })
    }
}

/// What a body decoder yields from the buffered bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(Bytes),
    /// The buffer holds no more of the body: read more.
    NeedMore,
    /// The body is complete.
    Done,
}

/// Undoes a request body's framing, from the front of the read buffer.
#[derive(Debug)]
pub enum Decoder {
    Length(u64),
    Chunked(Chunked),
}

/// The chunked coding (RFC 9112 7.1) as a state machine over single bytes,
/// so that no input split can change what it decides.
#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
    size: u64,
    digits: u32,
    /// Chunk-extension bytes of this chunk line so far.
    extensions: usize,
    /// Trailer name and value bytes so far.
    trailers: usize,
    /// The start of the current trailer's name, lower-cased, to refuse
    /// framing fields there.
    name: [u8; FRAMING_NAME_LEN],
    name_len: usize,
}

/// Long enough to tell `transfer-encoding` from any longer name.
const FRAMING_NAME_LEN: usize = 18;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// `chunk-size = 1*HEXDIG`.
    #[default]
    Size,
    /// Whitespace after the size: only `;` or CRLF may follow.
    SizeWs,
    /// After `;`: optional whitespace, then an extension name.
    ExtStart,
    ExtName,
    /// Whitespace after a name: `=`, `;` or CRLF may follow.
    ExtNameWs,
    /// After `=`: optional whitespace, then a token or a quoted string.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedPair,
    /// After a value: whitespace, then `;` or CRLF.
    ExtEnd,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// The start of a trailer line, or of the final CRLF.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

impl Decoder {
    pub fn new(framing: Framing) -> Decoder {
        match framing {
            Framing::Length(n) => Decoder::Length(n),
            Framing::Chunked => Decoder::Chunked(Chunked::default()),
        }
    }

    pub fn is_done(&self) -> bool {
        match self {
            Decoder::Length(n) => *n == 0,
            Decoder::Chunked(c) => c.state == ChunkState::Done,
        }
    }

    /// Bytes worth reading at once for this body.
    pub fn wanted(&self) -> usize {
        match self {
            Decoder::Length(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            Decoder::Chunked(c) if c.state == ChunkState::Data => {
                usize::try_from(c.size).unwrap_or(usize::MAX)
            }
            Decoder::Chunked(_) => 64,
        }
    }

    /// Takes the next piece of body out of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Refusal> {
        match self {
            Decoder::Length(0) => Ok(Decoded::Done),
            Decoder::Length(n) => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let take = usize::try_from(*n).unwrap_or(usize::MAX).min(buf.len());
                *n -= take as u64;
                Ok(Decoded::Data(buf.split_to(take).freeze()))
            }
            Decoder::Chunked(c) => c.decode(buf),
        }
    }
}

impl Chunked {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Refusal> {
        let mut used = 0usize;
        let result = loop {
            match self.state {
                ChunkState::Done => break Ok(Decoded::Done),
                ChunkState::Data => {
                    let have = buf.len() - used;
                    if have == 0 {
                        break Ok(Decoded::NeedMore);
                    }
                    let take = usize::try_from(self.size).unwrap_or(usize::MAX).min(have);
                    self.size -= take as u64;
                    if self.size == 0 {
                        self.state = ChunkState::DataCr;
                    }
                    let _ = buf.split_to(used);
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                _ => {}
            }
            let Some(&b) = buf.get(used) else {
                break Ok(Decoded::NeedMore);
            };
            used += 1;
            self.state = self.step(b)?;
        };
        let _ = buf.split_to(used);
        result
    }

    /// One byte of framing. Every line ends in CRLF; anything the grammar
    /// does not allow is refused.
    fn step(&mut self, b: u8) -> Result<ChunkState, Refusal> {
        use ChunkState::*;
        if matches!(
            self.state,
            ExtStart
                | ExtName
                | ExtNameWs
                | ExtValueStart
                | ExtToken
                | ExtQuoted
                | ExtQuotedPair
                | ExtEnd
        ) {
            self.extensions += 1;
            if self.extensions > MAX_CHUNK_EXTENSIONS {
                return Err(Refusal::ExtensionsTooLarge);
            }
        }
        if matches!(self.state, TrailerStart | TrailerName | TrailerValue)
            && (is_tchar(b) || (self.state == TrailerValue && is_field_value_char(b)))
        {
            self.trailers += 1;
            if self.trailers > MAX_TRAILERS {
                return Err(Refusal::TooLarge);
            }
        }
        let ows = b == b' ' || b == b'\t';
        Ok(match (self.state, b) {
            (Size, b) if b.is_ascii_hexdigit() => {
                self.digits += 1;
                let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|n| n.checked_add(digit))
                    .filter(|_| self.digits <= MAX_CHUNK_SIZE_DIGITS)
                    .ok_or(Refusal::Bad)?;
                Size
            }
            (Size, _) if self.digits == 0 => return Err(Refusal::Bad),
            // Whitespace after the size is allowed before `;` (the BWS of RFC
            // 9112's chunk-ext) and, outside the RFC's grammar, before CRLF:
            // some senders pad sizes, and hyper and Go accept both (llhttp
            // neither). The size it ends is unambiguous either way.
            (Size | SizeWs, _) if ows => SizeWs,
            (Size | SizeWs | ExtName | ExtNameWs | ExtToken | ExtEnd, b';') => ExtStart,
            (Size | SizeWs | ExtName | ExtNameWs | ExtToken | ExtEnd, b'\r') => SizeLf,
            (ExtStart, _) if ows => ExtStart,
            (ExtStart | ExtName, b) if is_tchar(b) => ExtName,
            (ExtName | ExtNameWs, _) if ows => ExtNameWs,
            (ExtName | ExtNameWs, b'=') => ExtValueStart,
            (ExtValueStart, _) if ows => ExtValueStart,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart | ExtToken, b) if is_tchar(b) => ExtToken,
            (ExtToken | ExtEnd, _) if ows => ExtEnd,
            (ExtQuoted, b'"') => ExtEnd,
            (ExtQuoted, b'\\') => ExtQuotedPair,
            (ExtQuoted, b) if is_qdtext(b) => ExtQuoted,
            (ExtQuotedPair, b) if is_field_value_char(b) => ExtQuoted,
            (SizeLf, b'\n') => {
                self.digits = 0;
                self.extensions = 0;
                if self.size == 0 {
                    TrailerStart
                } else {
                    Data
                }
            }
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size,
            // Trailer fields: `field-name ":" OWS field-value OWS` CRLF (RFC
            // 9112 7.1.2); no obs-fold, no bare LF (llhttp refuses both).
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart | TrailerName, b) if is_tchar(b) => {
                if self.state == TrailerStart {
                    self.name_len = 0;
                }
                if let Some(slot) = self.name.get_mut(self.name_len) {
                    *slot = b.to_ascii_lowercase();
                }
                self.name_len += 1;
                TrailerName
            }
            (TrailerName, b':') => {
                // Framing fields cannot come after the body they frame (RFC
                // 9110 6.5.1); llhttp refuses them there too.
                let name = &self.name[..self.name_len.min(FRAMING_NAME_LEN)];
                if name == b"content-length" || name == b"transfer-encoding" {
                    return Err(Refusal::Bad);
                }
                TrailerValue
            }
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, b) if is_field_value_char(b) => TrailerValue,
            (TrailerLf, b'\n') => TrailerStart,
            (EndLf, b'\n') => Done,
            _ => return Err(Refusal::Bad),
        })
    }
}

/// How the answer's body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyOut {
    /// Exactly this many bytes (a `content-length` is written if absent).
    Known(u64),
    /// Unknown length: chunked, or until the connection closes (HTTP/1.0).
    Streamed,
}

/// How the answer head was written, for the body that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadOut {
    /// The body is written at all (not for HEAD, 1xx, 204 or 304).
    pub body: bool,
    /// Body data is framed in chunks.
    pub chunked: bool,
    /// The connection stays open after this answer.
    pub keep_alive: bool,
}

/// Whether a connection may carry another request after an answer, and how
/// long it then waits for one. Like Node's server, a keep-alive answer says
/// so (`connection: keep-alive`) and announces the idle limit in whole
/// seconds (`keep-alive: timeout=5`), so clients that pool connections stop
/// reusing one before the server closes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reuse {
    Close,
    KeepAlive { idle_secs: Option<u64> },
}

/// Writes an answer head. `reuse`: whether the request and the server allow
/// the connection to stay open, and for how long it may then idle.
pub fn encode_head(
    out: &mut Vec<u8>,
    status: StatusCode,
    headers: &HeaderMap,
    body: BodyOut,
    request_method: &Method,
    request_version: Version,
    reuse: Reuse,
) -> HeadOut {
    let code = status.as_u16();
    let bodiless = (100..200).contains(&code) || code == 204 || code == 304;
    let mut keep_alive = matches!(reuse, Reuse::KeepAlive { .. })
        && !headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| has_token(v.as_bytes(), "close"));
    let has_length = headers.contains_key(header::CONTENT_LENGTH);
    let chunked = !bodiless
        && !has_length
        && body == BodyOut::Streamed
        && request_version == Version::HTTP_11;
    if !bodiless && !has_length && body == BodyOut::Streamed && !chunked {
        // HTTP/1.0 has no chunks: the end of the body is the end of the
        // connection.
        keep_alive = false;
    }

    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if bodiless && (name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING) {
            continue;
        }
        if name == header::TRANSFER_ENCODING || name == header::CONNECTION {
            // Framing and connection handling are decided here.
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !bodiless && !has_length {
        match body {
            BodyOut::Known(n) => {
                let _ = std::io::Write::write_fmt(out, format_args!("content-length: {n}\r\n"));
            }
            BodyOut::Streamed if chunked => {
                out.extend_from_slice(b"transfer-encoding: chunked\r\n")
            }
            BodyOut::Streamed => {}
        }
    }
    if !headers.contains_key(header::DATE) {
        out.extend_from_slice(b"date: ");
        with_date(|d| out.extend_from_slice(d));
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else {
        out.extend_from_slice(b"connection: keep-alive\r\n");
        if let Reuse::KeepAlive {
            idle_secs: Some(secs),
        } = reuse
        {
            let _ = std::io::Write::write_fmt(out, format_args!("keep-alive: timeout={secs}\r\n"));
        }
    }
    out.extend_from_slice(b"\r\n");
    HeadOut {
        body: !bodiless && request_method != Method::HEAD,
        chunked,
        keep_alive,
    }
}

/// Frames one chunk of a chunked body.
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    let _ = std::io::Write::write_fmt(out, format_args!("{:x}\r\n", data.len()));
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// A request whose body did not arrive within the request timeout (the
/// connection then closes, as Node's does).
pub const REQUEST_TIMEOUT: &[u8] = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n";

/// The interim answer to `expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

thread_local! {
    /// The `date` header value, formatted once a second per thread.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

fn with_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now();
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let text = httpdate::fmt_http_date(now);
            let mut bytes = [0u8; 29];
            let n = text.len().min(29);
            bytes[..n].copy_from_slice(&text.as_bytes()[..n]);
            *cached = (secs, bytes);
        }
        f(&cached.1);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<Head>, Refusal> {
        parse_head(&mut BytesMut::from(text.as_bytes()))
    }

    #[test]
    fn parses_a_post_with_length() {
        let mut buf = BytesMut::from(
            &b"POST /__runner/task/a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nX-A: 1\r\nx-a: 2\r\n\r\nabcNEXT"[..],
        );
        let head = parse_head(&mut buf).expect("valid").expect("complete");
        assert_eq!(head.request.method(), Method::POST);
        assert_eq!(head.request.uri().path(), "/__runner/task/a");
        assert_eq!(head.request.uri().query(), Some("x=1"));
        assert_eq!(head.framing, Framing::Length(3));
        assert!(head.keep_alive);
        let values: Vec<_> = head.request.headers().get_all("x-a").iter().collect();
        assert_eq!(values, ["1", "2"]);
        assert_eq!(&buf[..], b"abcNEXT");
    }

    #[test]
    fn waits_for_a_complete_head_and_bounds_it() {
        assert!(matches!(parse("POST / HTTP/1.1\r\nHost: h\r\n"), Ok(None)));
        let long = format!("GET / HTTP/1.1\r\nx: {}\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(parse(&long).err(), Some(Refusal::TooLarge));
        // More lines than the stack holds are still parsed, as Node parses
        // them, up to a head's worth of bytes.
        let many: String = (0..=STACK_HEADERS * 2)
            .map(|i| format!("h{i}: v\r\n"))
            .collect();
        let head = parse(&format!("GET / HTTP/1.1\r\nhost: h\r\n{many}\r\n"))
            .expect("valid")
            .expect("complete");
        assert_eq!(head.request.headers().len(), STACK_HEADERS * 2 + 2);
        // What follows a head with many lines is not part of it (a bare LF there
        // is the body's business).
        let many: String = (0..STACK_HEADERS * 2).map(|_| "a:\r\n").collect();
        let mut buf =
            BytesMut::from(format!("GET / HTTP/1.1\r\nhost: h\r\n{many}\r\nx\ny").as_bytes());
        assert!(matches!(parse_head(&mut buf), Ok(Some(_))));
        assert_eq!(&buf[..], b"x\ny");
        let lines: String = (0..MAX_HEAD / 4).map(|_| "a:\r\n").collect();
        assert_eq!(
            parse(&format!("GET / HTTP/1.1\r\n{lines}\r\n")).err(),
            Some(Refusal::TooLarge)
        );
    }

    #[test]
    fn refuses_ambiguous_or_broken_framing() {
        let bad = [
            "content-length: 3\r\ntransfer-encoding: chunked",
            "transfer-encoding: gzip",
            "transfer-encoding: chunked, gzip",
            "transfer-encoding: chunked\r\ntransfer-encoding: gzip",
            "transfer-encoding: chunked, chunked",
            "transfer-encoding: chunked\r\ntransfer-encoding: chunked",
            "transfer-encoding: chunked,",
            "transfer-encoding: ,",
            "transfer-encoding: chunked;q=1",
            "transfer-encoding: x;=1, chunked",
            "transfer-encoding: \"chunked\"",
            "transfer-encoding: chunked\x0b",
            "content-length: 3\r\ncontent-length: 4",
            // A repeated length, even an equal one, as llhttp refuses it.
            "content-length: 3\r\ncontent-length: 3",
            "content-length: 3, 3",
            "content-length: -1",
            "content-length: +1",
            "content-length: 1e3",
            "content-length: 0x10",
            "content-length: ",
            "content-length: 1 2",
            "content-length: 18446744073709551616",
            "content-length: \u{a0}3",
            "content-length: 3\u{3000}",
            "content-length: 3\u{85}",
            "host: i",
        ];
        for fields in bad {
            let text = format!("POST / HTTP/1.1\r\nhost: h\r\n{fields}\r\n\r\n");
            assert_eq!(parse(&text).err(), Some(Refusal::Bad), "{text:?}");
        }
        let bad_heads = [
            "POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n",
            "POST / HTTP/2.0\r\nhost: h\r\n\r\n",
            "POST / HTTP/1.2\r\nhost: h\r\n\r\n",
            "NOT A REQUEST\r\n\r\n",
            // HTTP/1.1 needs a host (RFC 9112 3.2), as Node's server requires.
            "POST / HTTP/1.1\r\n\r\n",
            // Methods Node's parser does not know.
            "FOO / HTTP/1.1\r\nhost: h\r\n\r\n",
            "get / HTTP/1.1\r\nhost: h\r\n\r\n",
            // Every line ends in CRLF.
            "POST / HTTP/1.1\nhost: h\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: h\n\r\n",
            "POST / HTTP/1.1\r\nhost: h\r\n\n",
            "POST / HTTP/1.1\r\nhost: h\rx: y\r\n\r\n",
            // Raw non-ASCII in the target.
            "POST /\u{e9} HTTP/1.1\r\nhost: h\r\n\r\n",
            // obs-fold and whitespace before the colon.
            "POST / HTTP/1.1\r\nhost: h\r\nx: 1\r\n 2\r\n\r\n",
            "POST / HTTP/1.1\r\nhost : h\r\n\r\n",
        ];
        for text in bad_heads {
            assert_eq!(parse(text).err(), Some(Refusal::Bad), "{text:?}");
        }
        // HTTP/1.0 may leave the host out.
        assert!(matches!(parse("GET / HTTP/1.0\r\n\r\n"), Ok(Some(_))));
        // A bare LF is refused before the head is complete.
        assert_eq!(parse("POST / HTTP/1.1\nho").err(), Some(Refusal::Bad));
    }

    #[test]
    fn lengths_and_codings_that_are_accepted() {
        let framing = |fields: &str| {
            parse(&format!("POST / HTTP/1.1\r\nhost: h\r\n{fields}\r\n\r\n"))
                .expect("valid")
                .expect("complete")
                .framing
        };
        assert_eq!(framing("content-length: 007"), Framing::Length(7));
        assert_eq!(framing("content-length:\t 7 \t"), Framing::Length(7));
        assert_eq!(
            framing("content-length: 18446744073709551615"),
            Framing::Length(u64::MAX)
        );
        assert_eq!(framing("transfer-encoding: CHUNKED"), Framing::Chunked);
        assert_eq!(
            framing("transfer-encoding: gzip , chunked"),
            Framing::Chunked
        );
        assert_eq!(
            framing("transfer-encoding: gzip\r\ntransfer-encoding: chunked"),
            Framing::Chunked
        );
        assert_eq!(
            framing("transfer-encoding: x;a=1;b=\"q\\\"\", chunked"),
            Framing::Chunked
        );
        // Empty list elements are ignored, as llhttp and hyper ignore them.
        assert_eq!(
            framing("transfer-encoding: , gzip, , chunked"),
            Framing::Chunked
        );
        assert_eq!(framing(""), Framing::Length(0));
        // Leading empty lines are skipped, as both llhttp and hyper do.
        assert!(matches!(
            parse("\r\n\nGET / HTTP/1.1\r\nhost: h\r\n\r\n"),
            Ok(Some(_))
        ));
    }

    #[test]
    fn connection_rules_per_version() {
        let h = |t: &str| parse(t).expect("valid").expect("complete");
        assert!(!h("GET / HTTP/1.1\r\nhost: h\r\nconnection: Close\r\n\r\n").keep_alive);
        assert!(!h("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(h("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n").keep_alive);
        assert!(
            h("POST / HTTP/1.1\r\nhost: h\r\nexpect: 100-Continue\r\ncontent-length: 1\r\n\r\n")
                .expect_continue
        );
        assert_eq!(
            h("POST / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: gzip, chunked\r\n\r\n").framing,
            Framing::Chunked
        );
    }

    /// Feeds `input` `step` bytes at a time; `Err(None)`: it ended early.
    fn decode_all(
        decoder: &mut Decoder,
        input: &[u8],
        step: usize,
    ) -> Result<Vec<u8>, Option<Refusal>> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf).map_err(Some)? {
                Decoded::Data(d) => out.extend_from_slice(&d),
                Decoded::Done => return Ok(out),
                Decoded::NeedMore => {
                    if fed >= input.len() {
                        return Err(None);
                    }
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn decodes_chunked_bodies_split_anywhere() {
        let wire =
            b"5;name=v\r\nhello\r\n1\r\n \r\n10\r\n0123456789abcdef\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in [1, 2, 3, 7, wire.len()] {
            let mut d = Decoder::new(Framing::Chunked);
            assert_eq!(
                decode_all(&mut d, wire, step).expect("valid"),
                b"hello 0123456789abcdef",
                "step {step}"
            );
            assert!(d.is_done());
        }
    }

    #[test]
    fn refuses_broken_chunks() {
        for wire in [
            &b"x\r\n"[..],
            b"5\r\nhelloXX",
            b"5\r\nhello\n",
            b"5\r\nhello\r\r",
            b"\r\n",
            b";a\r\n",
            b"5\nhello\r\n",
            b"5\r\rhello\r\n",
            // Past u64.
            b"10000000000000000\r\n",
            b"ffffffffffffffff0\r\n",
            // Junk after the size, bad or empty extensions.
            b"2 xyz\r\n",
            b"2 2\r\n",
            b"2;\r\n",
            b"2; \r\n",
            b"2;a b\r\n",
            b"2;a=\r\n",
            b"2;a=b c\r\n",
            b"2;a=\"b\r\n",
            b"2;a=\"\x01\"\r\n",
            b"2;a=b\n",
            b"2;=b\r\n",
            b"2;a==b\r\n",
            b"2;a=\"b\"c\r\n",
            b"2\x0b\r\n",
            b"-2\r\n",
            b"0x2\r\n",
            // Trailers: a line without a colon, a bare LF, obs-fold, bad names.
            b"0\r\nfoo\r\n\r\n",
            b"0\r\nx: y\n\r\n",
            b"0\r\nx: y\r\n\n",
            b"0\r\n\n",
            b"0\r\nx: y\r\n z\r\n\r\n",
            b"0\r\nx : y\r\n\r\n",
            b"0\r\n: y\r\n\r\n",
            b"0\r\nx: \x00\r\n\r\n",
            b"0\r\n\r\r",
            // Framing fields as trailers.
            b"0\r\nContent-Length: 5\r\n\r\n",
            b"0\r\ntransfer-encoding: chunked\r\n\r\n",
        ] {
            for step in [1, 3, wire.len()] {
                let mut d = Decoder::new(Framing::Chunked);
                assert_eq!(
                    decode_all(&mut d, wire, step),
                    Err(Some(Refusal::Bad)),
                    "{:?}",
                    String::from_utf8_lossy(wire)
                );
            }
        }
    }

    #[test]
    fn accepts_every_chunk_form_the_grammar_allows() {
        for (wire, body) in [
            (&b"2\r\nab\r\n0\r\n\r\n"[..], &b"ab"[..]),
            (b"000002\r\nab\r\n0000\r\n\r\n", b"ab"),
            (b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"2 \t\r\nab\r\n0\r\n\r\n", b"ab"),
            (b"2 ;a\r\nab\r\n0\r\n\r\n", b"ab"),
            (b"2;a;b=c ; d = \"e;\\\"f\" \r\nab\r\n0;z\r\n\r\n", b"ab"),
            (b"2;a=\"\"\r\nab\r\n0\r\n\r\n", b"ab"),
            (b"2\r\nab\r\n0\r\nx: y\r\nz:\r\nq:\t\xe9 \r\n\r\n", b"ab"),
            (
                b"2\r\nab\r\n0\r\ncontent-lengths: 1\r\nhost: h\r\n\r\n",
                b"ab",
            ),
            (b"0\r\n\r\n", b""),
        ] {
            for step in [1, 2, 5, wire.len()] {
                let mut d = Decoder::new(Framing::Chunked);
                assert_eq!(
                    decode_all(&mut d, wire, step).as_deref(),
                    Ok(body),
                    "{:?}",
                    String::from_utf8_lossy(wire)
                );
            }
        }
    }

    #[test]
    fn chunk_extensions_and_trailers_are_bounded() {
        // Node answers 413 to more than 16 KiB of chunk extensions on a line.
        let long = format!("1;{}\r\na\r\n0\r\n\r\n", "e".repeat(MAX_CHUNK_EXTENSIONS));
        let mut d = Decoder::new(Framing::Chunked);
        assert_eq!(
            decode_all(&mut d, long.as_bytes(), 100),
            Err(Some(Refusal::ExtensionsTooLarge))
        );
        // The limit is per line, as Node's is.
        let ext = format!("1;{}\r\na\r\n", "e".repeat(MAX_CHUNK_EXTENSIONS - 1));
        let mut d = Decoder::new(Framing::Chunked);
        let some = format!("{}0\r\n\r\n", ext.repeat(3));
        assert_eq!(
            decode_all(&mut d, some.as_bytes(), 100).map(|b| b.len()),
            Ok(3)
        );

        // Name and value bytes count, as Node counts them.
        let trailers = format!("0\r\n{}\r\n", "x: y\r\n".repeat(MAX_TRAILERS / 2 + 1));
        let mut d = Decoder::new(Framing::Chunked);
        assert_eq!(
            decode_all(&mut d, trailers.as_bytes(), 64),
            Err(Some(Refusal::TooLarge))
        );
        let digits = format!("{}1\r\na\r\n0\r\n\r\n", "0".repeat(64));
        let mut d = Decoder::new(Framing::Chunked);
        assert_eq!(
            decode_all(&mut d, digits.as_bytes(), 7),
            Err(Some(Refusal::Bad))
        );
    }

    #[test]
    fn decodes_length_bodies_and_leaves_the_rest() {
        let mut d = Decoder::new(Framing::Length(4));
        let mut buf = BytesMut::from(&b"abcdefg"[..]);
        assert_eq!(
            d.decode(&mut buf),
            Ok(Decoded::Data(Bytes::from_static(b"abcd")))
        );
        assert_eq!(d.decode(&mut buf), Ok(Decoded::Done));
        assert_eq!(&buf[..], b"efg");
    }

    /// A keep-alive answer on a connection with a 5 s idle limit.
    const KEEP: Reuse = Reuse::KeepAlive { idle_secs: Some(5) };

    fn head_text(
        status: u16,
        headers: &[(&str, &str)],
        body: BodyOut,
        method: Method,
        v: Version,
        reuse: Reuse,
    ) -> (String, HeadOut) {
        let mut map = HeaderMap::new();
        for (k, val) in headers {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(val).expect("value"),
            );
        }
        let mut out = Vec::new();
        let how = encode_head(
            &mut out,
            StatusCode::from_u16(status).expect("status"),
            &map,
            body,
            &method,
            v,
            reuse,
        );
        (String::from_utf8(out).expect("ascii"), how)
    }

    #[test]
    fn answer_heads() {
        let (t, how) = head_text(
            200,
            &[("content-type", "application/json")],
            BodyOut::Known(12),
            Method::POST,
            Version::HTTP_11,
            KEEP,
        );
        assert!(
            t.starts_with(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\ndate: "
            ),
            "{t}"
        );
        // As Node's server writes them for a keep-alive answer.
        assert!(
            t.ends_with(" GMT\r\nconnection: keep-alive\r\nkeep-alive: timeout=5\r\n\r\n"),
            "{t}"
        );
        assert_eq!(
            how,
            HeadOut {
                body: true,
                chunked: false,
                keep_alive: true
            }
        );

        let (t, how) = head_text(
            200,
            &[],
            BodyOut::Streamed,
            Method::POST,
            Version::HTTP_11,
            Reuse::Close,
        );
        assert!(
            t.contains("transfer-encoding: chunked\r\n") && t.contains("connection: close\r\n"),
            "{t}"
        );
        assert_eq!(
            how,
            HeadOut {
                body: true,
                chunked: true,
                keep_alive: false
            }
        );

        let (t, how) = head_text(
            200,
            &[],
            BodyOut::Streamed,
            Method::POST,
            Version::HTTP_10,
            KEEP,
        );
        assert!(
            !t.contains("transfer-encoding") && t.contains("connection: close\r\n"),
            "{t}"
        );
        assert!(!how.chunked && !how.keep_alive);

        let (t, how) = head_text(
            204,
            &[("content-length", "0")],
            BodyOut::Known(0),
            Method::OPTIONS,
            Version::HTTP_11,
            KEEP,
        );
        assert!(
            t.starts_with("HTTP/1.1 204 No Content\r\ndate: ") && !t.contains("content-length"),
            "{t}"
        );
        assert!(!how.body);

        let (t, how) = head_text(
            405,
            &[],
            BodyOut::Known(7),
            Method::HEAD,
            Version::HTTP_10,
            KEEP,
        );
        assert!(
            t.contains("content-length: 7\r\n") && t.contains("connection: keep-alive\r\n"),
            "{t}"
        );
        assert!(!how.body && how.keep_alive);

        let (_, how) = head_text(
            400,
            &[("connection", "close")],
            BodyOut::Known(0),
            Method::GET,
            Version::HTTP_11,
            KEEP,
        );
        assert!(!how.keep_alive);
    }

    #[test]
    fn keep_alive_without_an_idle_limit_announces_no_timeout() {
        let answer = |reuse| {
            head_text(
                200,
                &[],
                BodyOut::Known(0),
                Method::POST,
                Version::HTTP_11,
                reuse,
            )
            .0
        };
        let t = answer(Reuse::KeepAlive { idle_secs: None });
        assert!(t.contains("connection: keep-alive\r\n"), "{t}");
        assert!(!t.contains("keep-alive: timeout"), "{t}");
        let t = answer(Reuse::Close);
        assert!(t.ends_with("connection: close\r\n\r\n"), "{t}");
    }

    #[test]
    fn chunk_framing() {
        let mut out = Vec::new();
        encode_chunk(&mut out, &[b'x'; 26]);
        assert_eq!(&out[..4], b"1a\r\n");
        assert!(out.ends_with(b"x\r\n"));
    }

    /// Property tests over generated inputs: no panic, the same decisions
    /// however the bytes are split, and nothing consumed beyond the input.
    /// `H1_PROPERTY_SEED` replays a run; the seed is printed.
    mod properties {
        use super::*;

        /// xorshift64*: small, seedable, good enough to pick mutations.
        struct Rng(u64);
        impl Rng {
            fn next(&mut self) -> u64 {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
            }
            fn below(&mut self, n: usize) -> usize {
                (self.next() % n.max(1) as u64) as usize
            }
            fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
                &items[self.below(items.len())]
            }
        }

        fn seed() -> u64 {
            let seed = std::env::var("H1_PROPERTY_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| {
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_nanos() as u64)
                        .unwrap_or(1)
                });
            println!("H1_PROPERTY_SEED={seed}");
            seed | 1
        }

        const SEPARATORS: &[&[u8]] = &[
            b" ",
            b"\t",
            b"\r",
            b"\n",
            b"\r\n",
            b",",
            b";",
            b":",
            b"=",
            b"\"",
            b"\\",
            b"\0",
            b"\x0b",
            b"\x0c",
            b"\x7f",
            b"\xc2\xa0",
            b"\xe3\x80\x80",
            b"\xff",
            b"0",
            b"f",
            b"chunked",
            b"content-length: 1\r\n",
            b"transfer-encoding: chunked\r\n",
        ];

        /// Flips, inserts, deletes and duplicates bytes of `base`.
        fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
            let mut v = base.to_vec();
            if rng.below(10) == 0 {
                return (0..rng.below(300)).map(|_| rng.next() as u8).collect();
            }
            for _ in 0..rng.below(4) {
                let at = rng.below(v.len() + 1);
                match rng.below(5) {
                    0 if !v.is_empty() => {
                        let at = at.min(v.len() - 1);
                        v[at] ^= 1 << rng.below(8);
                    }
                    1 if !v.is_empty() => {
                        v.remove(at.min(v.len() - 1));
                    }
                    2 => {
                        // Duplicate a line.
                        let start = v[..at]
                            .iter()
                            .rposition(|&b| b == b'\n')
                            .map_or(0, |i| i + 1);
                        let end = v[at..]
                            .iter()
                            .position(|&b| b == b'\n')
                            .map_or(v.len(), |i| at + i + 1);
                        let line = v[start..end].to_vec();
                        v.splice(end..end, line);
                    }
                    _ => {
                        let sep = *rng.pick(SEPARATORS);
                        v.splice(at..at, sep.iter().copied());
                    }
                }
            }
            v
        }

        /// Random split points of `len` bytes.
        fn splits(rng: &mut Rng, len: usize) -> Vec<usize> {
            let mut at: Vec<usize> = (0..rng.below(6)).map(|_| rng.below(len + 1)).collect();
            if len < 2048 && rng.below(4) == 0 {
                at = (0..=len).collect();
            }
            at.push(len);
            at.sort_unstable();
            at
        }

        #[derive(Debug, PartialEq)]
        enum HeadOutcome {
            Head(String, Vec<u8>),
            Refused(Refusal),
            Incomplete,
        }

        fn describe(head: &Head) -> String {
            format!(
                "{} {} {:?} {:?} {:?} {} {}",
                head.request.method(),
                head.request.uri(),
                head.request.version(),
                head.request.headers(),
                head.framing,
                head.keep_alive,
                head.expect_continue
            )
        }

        /// Feeds `input` in the pieces `cuts` gives, parsing after each as
        /// the connection does.
        fn parse_split(input: &[u8], cuts: &[usize]) -> HeadOutcome {
            let mut buf = BytesMut::new();
            let mut fed = 0;
            for &cut in cuts {
                buf.extend_from_slice(&input[fed..cut]);
                fed = cut;
                if buf.is_empty() {
                    continue;
                }
                match parse_head(&mut buf) {
                    Ok(Some(head)) => {
                        buf.extend_from_slice(&input[fed..]);
                        return HeadOutcome::Head(describe(&head), buf.to_vec());
                    }
                    Ok(None) => {}
                    Err(e) => return HeadOutcome::Refused(e),
                }
            }
            HeadOutcome::Incomplete
        }

        const HEADS: &[&[u8]] = &[
            b"POST /__runner/task/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
            b"POST /__runner/task/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            b"GET /__runner/discovery HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"POST /x?y=1 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\nX-A: 1\r\nx-a: 2\r\n\r\na",
            b"\r\nPOST http://x/__runner/event/e HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        ];

        /// A head near the size limit: one long field or many short lines.
        fn long_head(rng: &mut Rng) -> Vec<u8> {
            let mut v = b"POST / HTTP/1.1\r\nHost: x\r\n".to_vec();
            if rng.below(2) == 0 {
                v.extend_from_slice(b"X-Long: ");
                v.resize(v.len() + MAX_HEAD - 64 + rng.below(128), b'v');
                v.extend_from_slice(b"\r\n");
            } else {
                let line: &[u8] = if rng.below(2) == 0 {
                    b"a:\r\n"
                } else {
                    b"a:\n"
                };
                for _ in 0..(MAX_HEADERS - 16 + rng.below(32)) {
                    v.extend_from_slice(line);
                }
            }
            v.extend_from_slice(b"\r\n");
            v
        }

        #[test]
        fn heads_decide_the_same_however_split() {
            let mut rng = Rng(seed());
            for i in 0..20_000 {
                let base = if i % 40 == 0 {
                    long_head(&mut rng)
                } else {
                    rng.pick(HEADS).to_vec()
                };
                let input = mutate(&mut rng, &base);
                let whole = parse_split(&input, &[input.len()]);
                let cuts = splits(&mut rng, input.len());
                let split = parse_split(&input, &cuts);
                assert_eq!(
                    whole,
                    split,
                    "input {:?} cuts {cuts:?}",
                    String::from_utf8_lossy(&input)
                );
                if let HeadOutcome::Head(_, rest) = &whole {
                    // What is left is the input's own tail.
                    assert!(input.ends_with(rest) && rest.len() < input.len());
                }
            }
        }

        #[derive(Debug, PartialEq)]
        enum BodyOutcome {
            Done(Vec<u8>, Vec<u8>),
            Refused(Vec<u8>, Refusal),
            Incomplete(Vec<u8>),
        }

        fn decode_split(input: &[u8], cuts: &[usize]) -> BodyOutcome {
            let mut decoder = Decoder::new(Framing::Chunked);
            let mut buf = BytesMut::new();
            let mut data = Vec::new();
            let mut fed = 0;
            for &cut in cuts {
                buf.extend_from_slice(&input[fed..cut]);
                fed = cut;
                loop {
                    match decoder.decode(&mut buf) {
                        Ok(Decoded::Data(d)) => {
                            assert!(!d.is_empty());
                            data.extend_from_slice(&d);
                        }
                        Ok(Decoded::NeedMore) => break,
                        Ok(Decoded::Done) => {
                            buf.extend_from_slice(&input[fed..]);
                            return BodyOutcome::Done(data, buf.to_vec());
                        }
                        Err(e) => return BodyOutcome::Refused(data, e),
                    }
                }
                assert!(
                    buf.is_empty(),
                    "a decoder that needs more has taken all it was given"
                );
            }
            BodyOutcome::Incomplete(data)
        }

        fn chunked_body(rng: &mut Rng) -> Vec<u8> {
            let mut v = Vec::new();
            for _ in 0..rng.below(4) {
                let len = rng.below(20) + 1;
                v.extend_from_slice(format!("{len:x}").as_bytes());
                if rng.below(3) == 0 {
                    const EXTENSIONS: &[&[u8]] = &[b";a", b";a=b", b" ;q=\"x y\"", b";a;b=c"];
                    let ext = *rng.pick(EXTENSIONS);
                    v.extend_from_slice(ext);
                }
                v.extend_from_slice(b"\r\n");
                v.extend((0..len).map(|_| b'a' + rng.below(26) as u8));
                v.extend_from_slice(b"\r\n");
            }
            v.extend_from_slice(b"0\r\n");
            if rng.below(3) == 0 {
                v.extend_from_slice(b"x-t: 1\r\n");
            }
            v.extend_from_slice(b"\r\nNEXT");
            v
        }

        #[test]
        fn chunked_bodies_decode_the_same_however_split() {
            let mut rng = Rng(seed());
            for _ in 0..20_000 {
                let base = chunked_body(&mut rng);
                let input = if rng.below(5) == 0 {
                    base
                } else {
                    mutate(&mut rng, &base)
                };
                let whole = decode_split(&input, &[input.len()]);
                let cuts = splits(&mut rng, input.len());
                let split = decode_split(&input, &cuts);
                assert_eq!(
                    whole,
                    split,
                    "input {:?} cuts {cuts:?}",
                    String::from_utf8_lossy(&input)
                );
                if let BodyOutcome::Done(data, rest) = &whole {
                    assert!(input.ends_with(rest));
                    assert!(data.len() + rest.len() <= input.len());
                }
            }
        }
    }
}
