//! Answer heads and chunk framing on the way out.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Version};

use super::grammar::has_token;

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
