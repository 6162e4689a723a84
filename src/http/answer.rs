#![forbid(unsafe_code)]

use std::borrow::Cow;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::core::cors::CorsHeader;
use crate::core::envelope::{ProtocolError, JSON_CONTENT_TYPE};
use crate::core::request_id::REQUEST_ID_HEADER;

use super::stream::ChunkStream;

/// A handler's reply, from which the answer is made.
pub struct Reply {
    pub status: u16,
    pub body: ReplyBody,
}

/// What a handler replies with.
pub enum ReplyBody {
    /// A serialized JSON envelope.
    Json(Bytes),
    /// A streamed answer with the handler's headers (already filtered).
    /// `bare`: written through `ctx.res`, which (as in the reference) gets
    /// only the request id besides the handler's own headers.
    Stream {
        headers: Vec<(String, String)>,
        body: ChunkStream,
        bare: bool,
    },
}

/// An answer's body: whole, or streamed with backpressure.
pub enum Body {
    Full(Bytes),
    Stream(ChunkStream),
}

fn full(bytes: Bytes) -> Body {
    Body::Full(bytes)
}

/// Headers every answer carries besides the body's own.
pub struct AnswerHeaders<'a> {
    pub request_id: Option<&'a HeaderValue>,
    pub cors: &'a [CorsHeader],
}

// Header names given as constants: a name given as a string is parsed and
// checked again for every answer.
const REQUEST_ID: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);
const CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");
const FRAME_OPTIONS: HeaderName = HeaderName::from_static("x-frame-options");

/// The names of the CORS headers the core chooses.
fn cors_name(name: &'static str) -> HeaderName {
    match name {
        "access-control-allow-origin" => header::ACCESS_CONTROL_ALLOW_ORIGIN,
        "access-control-allow-credentials" => header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        "access-control-allow-methods" => header::ACCESS_CONTROL_ALLOW_METHODS,
        "access-control-allow-headers" => header::ACCESS_CONTROL_ALLOW_HEADERS,
        "access-control-expose-headers" => header::ACCESS_CONTROL_EXPOSE_HEADERS,
        "access-control-max-age" => header::ACCESS_CONTROL_MAX_AGE,
        "vary" => header::VARY,
        other => HeaderName::from_static(other),
    }
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A CORS header; a fixed value is used as it is, not copied.
fn cors_header((name, v): &CorsHeader) -> (HeaderName, HeaderValue) {
    let value = match v {
        Cow::Borrowed(s) => HeaderValue::from_maybe_shared(Bytes::from_static(s.as_bytes()))
            .unwrap_or_else(|_| value(s)),
        Cow::Owned(s) => value(s),
    };
    (cors_name(name), value)
}

/// An answer's headers, with room for the ones every answer carries.
fn headers_with_room() -> HeaderMap {
    HeaderMap::with_capacity(8)
}

/// A JSON answer with content type, length, CORS and the security headers.
pub fn json(status: u16, body: Bytes, extra: &AnswerHeaders<'_>) -> Response<Body> {
    let len = body.len();
    let mut res = Response::new(full(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *res.headers_mut() = headers_with_room();
    let h = res.headers_mut();
    if let Some(id) = extra.request_id {
        h.insert(REQUEST_ID, id.clone());
    }
    for header in extra.cors {
        let (name, v) = cors_header(header);
        h.append(name, v);
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

pub fn error(err: &ProtocolError, extra: &AnswerHeaders<'_>) -> Response<Body> {
    json(err.status(), Bytes::from(err.body()), extra)
}

/// A CORS preflight answer: 204, no body, no security headers (as the
/// reference).
pub fn preflight(cors: &[CorsHeader]) -> Response<Body> {
    let mut res = Response::new(full(Bytes::new()));
    *res.status_mut() = StatusCode::NO_CONTENT;
    let h = res.headers_mut();
    for header in cors {
        let (name, v) = cors_header(header);
        h.append(name, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    res
}

/// A streamed answer: the handler's headers (content type first), then CORS,
/// request id and the security headers, which the handler cannot override.
pub fn stream(
    status: u16,
    headers: Vec<(String, String)>,
    body: ChunkStream,
    bare: bool,
    extra: &AnswerHeaders<'_>,
) -> Response<Body> {
    let mut res = Response::new(Body::Stream(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let h = res.headers_mut();
    if let Some(id) = extra.request_id {
        h.insert(REQUEST_ID, id.clone());
    }
    for (name, v) in headers {
        if let (Ok(name), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            h.append(name, v);
        }
    }
    if bare {
        return res;
    }
    for header in extra.cors {
        let (name, v) = cors_header(header);
        h.insert(name, v);
    }
    h.insert(CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}
