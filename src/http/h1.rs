//! HTTP/1.x on the wire: request heads in, body framing both ways, answer
//! heads out. Pure functions over byte buffers; the connection driver in
//! `conn.rs` does the I/O.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};

/// Largest request head accepted (Node's default `maxHeaderSize`).
pub const MAX_HEAD: usize = 16 * 1024;
/// Most header lines accepted in one request head.
pub const MAX_HEADERS: usize = 128;
/// Longest chunk-size line (with extensions) or trailer section accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;

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

/// Why a request head was refused; the connection answers and closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// 400: not a well-formed HTTP/1.x request head.
    Bad,
    /// 431: the head is longer than [`MAX_HEAD`] or has too many lines.
    TooLarge,
}

impl HeadError {
    /// The whole answer written before closing: what Node's parser sends.
    pub fn answer(self) -> &'static [u8] {
        match self {
            HeadError::Bad => b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n",
            HeadError::TooLarge => {
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

/// Parses one request head from the front of `buf`. `Ok(None)`: incomplete,
/// read more. On success the head's bytes are taken out of `buf` (header
/// values share them, uncopied).
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, HeadError> {
    // Leading empty lines before a request line are tolerated (RFC 9112 2.2).
    let blank = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if blank > 0 {
        let _ = buf.split_to(blank);
    }
    // Header slots are left uninitialised: httparse writes those it uses.
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() >= MAX_HEAD {
                Err(HeadError::TooLarge)
            } else {
                Ok(None)
            };
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Bad),
    };
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let method =
        Method::from_bytes(req.method.unwrap_or("").as_bytes()).map_err(|_| HeadError::Bad)?;
    // The target, as a range of the head (it shares the head's bytes).
    let path = req.path.ok_or(HeadError::Bad)?;
    let path_start = (path.as_ptr() as usize)
        .checked_sub(buf.as_ptr() as usize)
        .ok_or(HeadError::Bad)?;
    let path_range = path_start..path_start + path.len();
    let version = match req.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(HeadError::Bad),
    };

    // Header names now, values as ranges of the head (sliced once it is
    // split off the buffer).
    let base = buf.as_ptr() as usize;
    let mut fields: Vec<(HeaderName, usize, usize)> = Vec::with_capacity(req.headers.len());
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoding = false;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| HeadError::Bad)?;
        let value = h.value;
        if name == header::CONTENT_LENGTH {
            let text = std::str::from_utf8(value)
                .map_err(|_| HeadError::Bad)?
                .trim();
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::Bad);
            }
            let n: u64 = text.parse().map_err(|_| HeadError::Bad)?;
            if length.is_some_and(|m| m != n) {
                return Err(HeadError::Bad);
            }
            length = Some(n);
        } else if name == header::TRANSFER_ENCODING {
            transfer_encoding = true;
            // Only `chunked` as the final coding delimits a request body.
            let last = value.rsplit(|&b| b == b',').next().unwrap_or(b"");
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name == header::CONNECTION {
            close |= has_token(value, "close");
            keep_alive_token |= has_token(value, "keep-alive");
        } else if name == header::EXPECT {
            expect_continue |= value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        }
        let start = value.as_ptr() as usize - base;
        fields.push((name, start, start + value.len()));
    }
    let framing = if transfer_encoding {
        // A body length given two ways is how requests get smuggled: refuse.
        if !chunked || length.is_some() || version == Version::HTTP_10 {
            return Err(HeadError::Bad);
        }
        Framing::Chunked
    } else {
        Framing::Length(length.unwrap_or(0))
    };
    let keep_alive = match version {
        Version::HTTP_11 => !close,
        _ => keep_alive_token && !close,
    };

    let head = buf.split_to(len).freeze();
    let uri = Uri::from_maybe_shared(head.slice(path_range)).map_err(|_| HeadError::Bad)?;
    let mut headers = HeaderMap::with_capacity(fields.len());
    for (name, start, end) in fields {
        let value =
            HeaderValue::from_maybe_shared(head.slice(start..end)).map_err(|_| HeadError::Bad)?;
        headers.append(name, value);
    }
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = headers;
    Ok(Some(Head {
        request,
        framing,
        keep_alive,
        expect_continue: expect_continue && version == Version::HTTP_11,
    }))
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

#[derive(Debug, Default)]
pub struct Chunked {
    state: ChunkState,
    size: u64,
    digits: u32,
    line: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    EndLf,
    Done,
}

/// The body's framing is broken.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFraming;

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
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, BadFraming> {
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
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, BadFraming> {
        let mut used = 0usize;
        let result = loop {
            if self.state == ChunkState::Done {
                break Ok(Decoded::Done);
            }
            if self.state == ChunkState::Data {
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
            let Some(&b) = buf.get(used) else {
                break Ok(Decoded::NeedMore);
            };
            used += 1;
            self.line += 1;
            if self.line > MAX_CHUNK_LINE {
                return Err(BadFraming);
            }
            self.state = match (self.state, b) {
                (ChunkState::Size, b) if b.is_ascii_hexdigit() => {
                    self.digits += 1;
                    if self.digits > 15 {
                        return Err(BadFraming);
                    }
                    self.size = self.size * 16 + u64::from((b as char).to_digit(16).unwrap_or(0));
                    ChunkState::Size
                }
                (ChunkState::Size, b';' | b' ' | b'\t') if self.digits > 0 => ChunkState::Extension,
                (ChunkState::Size, b'\r') if self.digits > 0 => ChunkState::SizeLf,
                (ChunkState::Extension, b'\r') => ChunkState::SizeLf,
                (ChunkState::Extension, b'\n') => return Err(BadFraming),
                (ChunkState::Extension, _) => ChunkState::Extension,
                (ChunkState::SizeLf, b'\n') => {
                    self.line = 0;
                    self.digits = 0;
                    if self.size == 0 {
                        ChunkState::TrailerStart
                    } else {
                        ChunkState::Data
                    }
                }
                (ChunkState::DataCr, b'\r') => ChunkState::DataLf,
                (ChunkState::DataLf, b'\n') => {
                    self.line = 0;
                    ChunkState::Size
                }
                (ChunkState::TrailerStart, b'\r') => ChunkState::EndLf,
                (ChunkState::TrailerStart, b'\n') => return Err(BadFraming),
                (ChunkState::TrailerLine, b'\n') => ChunkState::TrailerStart,
                (ChunkState::TrailerStart | ChunkState::TrailerLine, _) => ChunkState::TrailerLine,
                (ChunkState::EndLf, b'\n') => ChunkState::Done,
                _ => return Err(BadFraming),
            };
        };
        let _ = buf.split_to(used);
        result
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

    fn parse(text: &str) -> Result<Option<Head>, HeadError> {
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
        assert_eq!(parse(&long).err(), Some(HeadError::TooLarge));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        assert_eq!(
            parse(&format!("GET / HTTP/1.1\r\n{many}\r\n")).err(),
            Some(HeadError::TooLarge)
        );
    }

    #[test]
    fn refuses_ambiguous_or_broken_framing() {
        let bad = [
            "POST / HTTP/1.1\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            "POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: 3\r\ncontent-length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\ncontent-length: 1e3\r\n\r\n",
            "POST / HTTP/2.0\r\n\r\n",
            "NOT A REQUEST\r\n\r\n",
        ];
        for text in bad {
            assert_eq!(parse(text).err(), Some(HeadError::Bad), "{text:?}");
        }
        let same_twice = parse("POST / HTTP/1.1\r\ncontent-length: 3\r\ncontent-length: 3\r\n\r\n");
        assert_eq!(
            same_twice.expect("valid").expect("complete").framing,
            Framing::Length(3)
        );
    }

    #[test]
    fn connection_rules_per_version() {
        let h = |t: &str| parse(t).expect("valid").expect("complete");
        assert!(!h("GET / HTTP/1.1\r\nconnection: Close\r\n\r\n").keep_alive);
        assert!(!h("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(h("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n").keep_alive);
        assert!(
            h("POST / HTTP/1.1\r\nexpect: 100-Continue\r\ncontent-length: 1\r\n\r\n")
                .expect_continue
        );
        assert_eq!(
            h("POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n").framing,
            Framing::Chunked
        );
    }

    fn decode_all(decoder: &mut Decoder, input: &[u8], step: usize) -> Result<Vec<u8>, BadFraming> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buf)? {
                Decoded::Data(d) => out.extend_from_slice(&d),
                Decoded::Done => return Ok(out),
                Decoded::NeedMore => {
                    if fed >= input.len() {
                        return Err(BadFraming);
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
            b"\r\n",
            b"5\nhello\r\n",
            b"1234567890123456\r\n",
        ] {
            let mut d = Decoder::new(Framing::Chunked);
            assert_eq!(decode_all(&mut d, wire, 1), Err(BadFraming), "{wire:?}");
        }
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
}
