use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::core::envelope::{ProtocolError, JSON_CONTENT_TYPE};
use crate::core::request_id::REQUEST_ID_HEADER;

/// A handler's answer: a status and a serialized JSON envelope.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

pub type Body = Full<Bytes>;

/// Headers every answer carries besides the body's own.
pub struct AnswerHeaders<'a> {
    pub request_id: Option<&'a str>,
    pub cors: &'a [(&'static str, String)],
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A JSON answer with content type, length, CORS and the security headers.
pub fn json(status: u16, body: Bytes, extra: &AnswerHeaders<'_>) -> Response<Body> {
    let len = body.len();
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = res.headers_mut();
    if let Some(id) = extra.request_id {
        h.insert(REQUEST_ID_HEADER, value(id));
    }
    for (name, v) in extra.cors {
        h.append(*name, value(v));
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(JSON_CONTENT_TYPE),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    res
}

pub fn error(err: &ProtocolError, extra: &AnswerHeaders<'_>) -> Response<Body> {
    json(err.status(), Bytes::from(err.body()), extra)
}

/// A CORS preflight answer: 204, no body, no security headers (as the
/// reference).
pub fn preflight(cors: &[(&'static str, String)]) -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::NO_CONTENT;
    let h = res.headers_mut();
    for (name, v) in cors {
        h.append(*name, value(v));
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    res
}

/// What Node's HTTP parser answers to a request it cannot parse.
pub fn bad_request() -> Response<Body> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::BAD_REQUEST;
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}
